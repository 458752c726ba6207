"""Run in a child process with 8 host CPU devices: every lowering on sharded inputs.

Prints one JSON line per case: equal values and gradients, the output's sharding, and the
collectives in the compiled forward and input gradient.
"""

import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import json  # noqa: E402
import re  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import convt  # noqa: E402
from convt import ConvTransposeSpec  # noqa: E402

jax.config.update("jax_enable_x64", True)
COLLECTIVES = re.compile(r"all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter")

METHODS = ["auto", "lhs_dilated", "phase", "phase_gemm", "col2im", "adjoint", "phase_conv/adjoint"]
LAYERS = {  # name: (x shape, w shape, spec, methods)
    "2d": (
        (8, 4, 6, 6),
        (4, 3, 4, 4),
        ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=((1, 1), (1, 1))),
        METHODS,
    ),
    "3d": (
        (8, 2, 3, 3, 3),
        (2, 2, 4, 4, 4),
        ConvTransposeSpec(stride=(2,) * 3, dilation=(1,) * 3, crop=((1, 1),) * 3),
        [*METHODS, "matmul"],
    ),
    "1d_last": (
        (8, 9, 3),
        (3, 2, 5),
        ConvTransposeSpec(
            stride=(3,), dilation=(1,), crop=((1, 0),), groups=1, layout="channels_last"
        ),
        METHODS,
    ),
    "depthwise": (
        (8, 4, 5, 5),
        (4, 1, 3, 3),
        ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=((1, 0), (1, 0)), groups=4),
        [*METHODS, "tapsum", "tapsum_adjoint"],
    ),
    "depthwise_1d": (  # auto: tapsum/tapsum_adjoint on the CPU
        (8, 4, 7),
        (4, 2, 4),
        ConvTransposeSpec(stride=(2,), dilation=(1,), crop=((1, 1),), groups=4),
        ["auto", "tapsum", "tapsum_adjoint"],
    ),
    "gapped": (  # kernel < stride: matmul pads each stamp to the stride
        (8, 4, 5, 5),
        (4, 3, 2, 2),
        ConvTransposeSpec(stride=(3, 3), dilation=(1, 1), crop=((1, 0), (1, 0))),
        ["auto", "lhs_dilated", "matmul", "adjoint"],
    ),
    "many_taps": (  # auto: matmul's shifted input copies on the CPU (beyond 128 taps)
        (8, 4, 3),
        (4, 2, 256),
        ConvTransposeSpec(stride=(128,), dilation=(1,), crop=((64, 64),)),
        ["auto", "matmul"],
    ),
    "k_eq_s": (
        (8, 4, 5, 5),
        (4, 3, 2, 2),
        ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=((0, 0), (0, 0))),
        [*METHODS, "matmul"],
    ),
}


def collectives(fn, *args):
    return sorted(set(COLLECTIVES.findall(jax.jit(fn).lower(*args).compile().as_text())))


def layer_fn(spec, method):
    def fwd(x, w):
        return convt.conv_transpose(x, w, spec=spec, method=method)

    def grad(x, w):
        return jax.grad(lambda x: (fwd(x, w) ** 2).sum())(x)

    return fwd, grad


def check(mesh, name, method, x_np, w_np, spec, want, want_g):
    row = dict(axis_type=str(mesh.axis_types[0]), layer=name, method=method)
    fwd, grad = layer_fn(spec, method)
    try:
        x = jax.device_put(x_np, NamedSharding(mesh, P("batch")))
        w = jnp.asarray(w_np)
        y, g = jax.jit(fwd)(x, w), jax.jit(grad)(x, w)
        row.update(
            values=bool(np.allclose(np.asarray(y), np.asarray(want), atol=1e-10)),
            grads=bool(np.allclose(np.asarray(g), np.asarray(want_g), atol=1e-9)),
            out_batch_sharded=y.sharding.spec[0] == "batch",
            forward_collectives=collectives(fwd, x, w),
            grad_collectives=collectives(grad, x, w),
        )
        # a weight sharded on its output channels (where they divide): the same values
        w_spec = P(None, "batch") if w_np.shape[1] % 8 == 0 else P()
        w_sharded = jax.device_put(w_np, NamedSharding(mesh, w_spec))
        row["weight_sharded_values"] = bool(
            np.allclose(np.asarray(jax.jit(fwd)(x, w_sharded)), np.asarray(want), atol=1e-10)
        )
    except Exception as err:  # noqa: BLE001 - reported to the test
        row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
    print(json.dumps(row), flush=True)


def run(axis_type):
    mesh = jax.make_mesh((8,), ("batch",), axis_types=(axis_type,))
    rng = np.random.default_rng(0)
    for name, (xs, ws, spec, methods) in LAYERS.items():
        x_np, w_np = rng.standard_normal(xs), rng.standard_normal(ws)
        fwd, grad = layer_fn(spec, "lhs_dilated")
        want, want_g = fwd(jnp.asarray(x_np), jnp.asarray(w_np)), grad(x_np, jnp.asarray(w_np))
        with jax.set_mesh(mesh):
            for method in methods:
                check(mesh, name, method, x_np, w_np, spec, want, want_g)


def shard_map_case():
    """convt inside jax.shard_map: each device runs the layer on its slice of the batch."""
    mesh = jax.make_mesh((8,), ("batch",), axis_types=(AxisType.Explicit,))
    spec = ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=((1, 1), (1, 1)))
    rng = np.random.default_rng(1)
    x_np, w_np = rng.standard_normal((16, 4, 5, 5)), rng.standard_normal((4, 3, 4, 4))
    want = convt.conv_transpose(jnp.asarray(x_np), jnp.asarray(w_np), spec=spec)
    f = jax.shard_map(
        lambda x, w: convt.conv_transpose(x, w, spec=spec),
        mesh=mesh,
        in_specs=(P("batch"), P()),
        out_specs=P("batch"),
    )
    with jax.set_mesh(mesh):
        y = jax.jit(f)(jax.device_put(x_np, NamedSharding(mesh, P("batch"))), jnp.asarray(w_np))
    print(
        json.dumps(
            dict(
                axis_type="shard_map",
                layer="2d",
                method="auto",
                values=bool(np.allclose(np.asarray(y), np.asarray(want), atol=1e-10)),
                grads=True,
                out_batch_sharded=True,
                forward_collectives=[],
                grad_collectives=[],
                weight_sharded_values=True,
            )
        ),
        flush=True,
    )


if __name__ == "__main__":
    run(AxisType.Explicit)
    run(AxisType.Auto)
    shard_map_case()
