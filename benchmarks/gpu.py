"""convt against torch + cuDNN, ``jax.lax.conv_transpose`` and the interior-pad form, on a
GPU: one command, on a machine with jax[cuda] and a CUDA build of torch.

    PYTHONPATH=src:benchmarks python3 benchmarks/gpu.py [--repeats 7] [--variants]
        [--layers NAME ...] [--out benchmarks/results]

For every zoo layer (`zoo.ZOO`: its dtype and layout; ``--variants`` adds a bfloat16 and
a channels-last copy of each float32 channels-first layer) and four implementations:

* ``torch``: ``torch.nn.functional.conv_transpose{1,2,3}d`` with
  ``torch.backends.cudnn.benchmark = True`` (channels-last as ``torch.channels_last``
  memory format, 1-D layers stay NCL: torch has no NLC format);
* ``convt``: ``convt.conv_transpose`` with ``method="auto"``;
* ``lax``: ``jax.lax.conv_transpose`` (``transpose_kernel=True``, torch's padding);
  grouped layers, which it cannot express, run convt's ``lhs_dilated``, the same
  lhs-dilated convolution;
* ``interior_pad``: the input zero-stuffed by ``lax.pad`` with interior padding, then a
  stride-1 convolution (the form equinox adopted in PR #1259).

Timed: the forward (with bias) and forward + backward (values and the gradients with
respect to input, weight and bias, the cotangent an argument), each implementation
warmed up, then ``--repeats`` rounds rotated round-robin (drift hits all alike), each
round the median of several back-to-back calls. Reported: medians, ratios against
torch, TFLOP/s of useful work (2 x the multiply-adds of the scatter form; x3 for
forward + backward). Writes ``gpu.json`` and ``GPU.md`` under ``--out``. Made to finish
within 10 minutes on one H100/H200 (``--layers`` to cut it down).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

import convt
from zoo import ZOO, ZooLayer

IMPLEMENTATIONS = ("torch", "convt", "lax", "interior_pad")


# ----------------------------------------------------------------------------------------
# The JAX implementations


def _lhs_padding(layer: ZooLayer, spec) -> list[tuple[int, int]]:
    reach = layer.dilation * (layer.kernel - 1)
    return [(reach - lo, reach - hi) for lo, hi in spec.crop]


def lax_conv_transpose(x, w, b, *, layer: ZooLayer):
    """``jax.lax.conv_transpose`` with torch's padding: the canonical weight is the
    kernel of the forward convolution it transposes (``OIHW``), which
    ``transpose_kernel=True`` flips and swaps."""
    spec = layer.spec()
    if layer.groups > 1:
        y = convt.conv_transpose(x, w, spec=spec, method="lhs_dilated")
    else:
        n = layer.ndim
        letters = "DHW"[-n:]
        data = ("NC" + letters) if not layer.channels_last else ("N" + letters + "C")
        y = jax.lax.conv_transpose(
            x,
            w,
            strides=spec.stride,
            padding=_lhs_padding(layer, spec),
            rhs_dilation=spec.dilation,
            dimension_numbers=(data, "OI" + letters, data),
            transpose_kernel=True,
        )
    return _add_bias(y, b, layer)


def interior_pad(x, w, b, *, layer: ZooLayer):
    """Zero-stuff the input (``lax.pad`` with interior padding ``stride - 1`` and the
    crop as edge padding), then a stride-1 convolution with the flipped, regrouped
    kernel."""
    spec = layer.spec()
    config = [(0, 0, 0)] * x.ndim
    for axis, (lo, hi), s in zip(spec.spatial_axes, _lhs_padding(layer, spec), spec.stride):
        config[axis] = (lo, hi, s - 1)
    xp = jax.lax.pad(x, jnp.zeros((), x.dtype), config)
    rhs = jnp.flip(convt.lowering.regroup_kernel(w, spec.groups), range(2, w.ndim))
    y = jax.lax.conv_general_dilated(
        xp,
        rhs,
        window_strides=(1,) * spec.ndim,
        padding=[(0, 0)] * spec.ndim,
        rhs_dilation=spec.dilation,
        dimension_numbers=convt.lowering.dimension_numbers(spec),
        feature_group_count=spec.groups,
    )
    return _add_bias(y, b, layer)


def _add_bias(y, b, layer):
    shape = [1] * y.ndim
    shape[-1 if layer.channels_last else 1] = -1
    return y + b.reshape(shape)


def convt_auto(x, w, b, *, layer: ZooLayer):
    return convt.conv_transpose(x, w, b, spec=layer.spec())


JAX_FUNCTIONS = {"convt": convt_auto, "lax": lax_conv_transpose, "interior_pad": interior_pad}


def jax_runners(name: str, layer: ZooLayer, arrays):
    f = functools.partial(JAX_FUNCTIONS[name], layer=layer)
    forward = jax.jit(f)

    @jax.jit
    def forward_backward(x, w, b, g):
        y, vjp = jax.vjp(f, x, w, b)
        return y, *vjp(g)

    x, w, b, g = arrays
    return (
        lambda: forward(x, w, b).block_until_ready(),
        lambda: jax.block_until_ready(forward_backward(x, w, b, g)),
    )


# ----------------------------------------------------------------------------------------
# torch


def torch_runners(layer: ZooLayer, arrays_np, device: str = "cuda"):
    """torch's forward and forward + backward, each returning what it computed (the
    output; the input and weight gradients) once the device is done."""
    dtype = getattr(torch, layer.dtype)
    x_np, w_np, b_np, g_np = arrays_np
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}.get(layer.ndim)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def tensor(a, grad=False, activation=False):
        t = torch.tensor(a, dtype=dtype, device=device)
        if activation and layer.channels_last and fmt is not None:
            t = t.contiguous(memory_format=fmt)
        return t.requires_grad_(grad)

    # the activations as channels-first arrays (torch's indexing), laid out as the layer is
    to_first = (lambda a: np.moveaxis(a, -1, 1)) if layer.channels_last else (lambda a: a)
    x, g = tensor(to_first(x_np), True, True), tensor(to_first(g_np), False, True)
    w, b = tensor(w_np, True), tensor(b_np, True)
    conv = getattr(F, f"conv_transpose{layer.ndim}d")
    kwargs = dict(
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        groups=layer.groups,
        dilation=layer.dilation,
    )

    def forward():
        with torch.no_grad():
            y = conv(x, w, b, **kwargs)
        sync()
        return y

    def forward_backward():
        x.grad = w.grad = b.grad = None
        conv(x, w, b, **kwargs).backward(g)
        sync()
        return x.grad, w.grad

    return forward, forward_backward


# ----------------------------------------------------------------------------------------


def time_round(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure(layer: ZooLayer, repeats: int, calls: int) -> dict:
    rng = np.random.default_rng(0)
    spec = layer.spec()
    shapes = [
        layer.input_shape,
        layer.w_shape,
        (layer.c_out,),
        spec.output_shape(layer.input_shape, layer.w_shape),
    ]
    arrays_np = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    arrays = [jnp.asarray(a, layer.dtype) for a in arrays_np]
    runners = {"torch": torch_runners(layer, arrays_np)}
    runners.update({name: jax_runners(name, layer, arrays) for name in JAX_FUNCTIONS})
    result = dict(layer=layer.name, model=layer.model, dtype=layer.dtype)
    result["layout"] = "channels_last" if layer.channels_last else "channels_first"
    result["method"] = convt.choose_method(spec, layer.w_shape, "gpu", layer.input_shape)
    for d, direction in enumerate(("forward", "forward+backward")):
        for name in IMPLEMENTATIONS:  # warm-up: compiles, cuDNN autotuning
            for _ in range(3):
                runners[name][d]()
        times = {name: [] for name in IMPLEMENTATIONS}
        for r in range(repeats):
            order = IMPLEMENTATIONS[r % 4 :] + IMPLEMENTATIONS[: r % 4]
            for name in order:
                times[name].append(time_round(runners[name][d], calls))
        work = layer.flops() * (1 if d == 0 else 3)
        for name in IMPLEMENTATIONS:
            median = statistics.median(times[name])
            result[f"{direction} {name} ms"] = round(median * 1e3, 4)
            result[f"{direction} {name} TFLOP/s"] = round(work / median / 1e12, 2)
        for name in JAX_FUNCTIONS:
            torch_ms = result[f"{direction} torch ms"]
            result[f"{direction} {name} / torch"] = round(
                result[f"{direction} {name} ms"] / torch_ms, 3
            )
    return result


def variants(layers):
    out = []
    for layer in layers:
        out.append(layer)
        if layer.dtype == "float32" and not layer.channels_last:
            out.append(dataclasses.replace(layer, name=layer.name + "_bf16", dtype="bfloat16"))
            out.append(dataclasses.replace(layer, name=layer.name + "_cl", channels_last=True))
    return out


def geomean(values):
    return float(np.exp(np.mean(np.log(values))))


def report(rows) -> str:
    lines = [
        "| layer | dtype, layout | convt method | fwd: convt / torch | lax / torch | "
        "interior pad / torch | fwd+bwd: convt / torch | lax / torch | interior pad / torch "
        "| torch ms fwd / fwd+bwd | convt TFLOP/s fwd / fwd+bwd |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        f, fb = "forward", "forward+backward"
        lines.append(
            f"| {r['model']} | {r['dtype']}, {r['layout']} | `{r['method']}` "
            f"| {r[f + ' convt / torch']:.2f} | {r[f + ' lax / torch']:.2f} "
            f"| {r[f + ' interior_pad / torch']:.2f} | {r[fb + ' convt / torch']:.2f} "
            f"| {r[fb + ' lax / torch']:.2f} | {r[fb + ' interior_pad / torch']:.2f} "
            f"| {r[f + ' torch ms']:.3f} / {r[fb + ' torch ms']:.3f} "
            f"| {r[f + ' convt TFLOP/s']:.1f} / {r[fb + ' convt TFLOP/s']:.1f} |"
        )
    cells = []
    for d in ("forward", "forward+backward"):
        for name in JAX_FUNCTIONS:
            cells.append(f"{geomean([r[f'{d} {name} / torch'] for r in rows]):.2f}")
        speedup = geomean([r[f"{d} lax ms"] / r[f"{d} convt ms"] for r in rows])
        cells.append(f"convt {speedup:.1f}x faster than lax")
    lines.append(
        f"| **geometric mean** | | | {cells[0]} | {cells[1]} | {cells[2]} | {cells[4]} "
        f"| {cells[5]} | {cells[6]} | | {cells[3]}; {cells[7]} |"
    )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10, help="back-to-back calls per round")
    parser.add_argument("--layers", nargs="*")
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() or jax.default_backend() != "gpu":
        sys.exit("benchmarks/gpu.py needs a GPU visible to both torch and jax")
    torch.backends.cudnn.benchmark = True
    layers = [z for z in ZOO if not args.layers or z.name in args.layers]
    layers = variants(layers) if args.variants else layers
    device = torch.cuda.get_device_name()
    print(f"{device}; torch {torch.__version__}, jax {jax.__version__}", flush=True)
    rows = []
    for layer in layers:
        start = time.perf_counter()
        rows.append(measure(layer, args.repeats, args.calls))
        rows[-1]["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = dict(device=device, torch=torch.__version__, jax=jax.__version__)
    (args.out / "gpu.json").write_text(json.dumps(dict(**meta, rows=rows), indent=1) + "\n")
    text = f"# GPU: {device} (torch {torch.__version__}, jax {jax.__version__})\n\n"
    (args.out / "GPU.md").write_text(text + report(rows) + "\n")
    print(report(rows))


if __name__ == "__main__":
    main()
