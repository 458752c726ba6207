"""convt.lax.conv_transpose against jax.lax.conv_transpose itself, run in child processes
(XLA's CPU compiler aborts the process on some valid layers); where jax aborts, convt
must give what torch gives for the same layer."""

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import convt.lax as cl
import convt.torch as ct
from convt.convention import NotExpressible
from helpers import assert_close, reference_conv_transpose

LETTERS = "HWD"

# Run by the child: raw jax.lax.conv_transpose, values and VJP, one file per config, so
# an abort loses only the configuration that caused it.
CHILD = textwrap.dedent(
    """
    import json, sys, pathlib
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    out = pathlib.Path(sys.argv[2])
    for index, cfg in json.loads(pathlib.Path(sys.argv[1]).read_text()):
        (out / f"{index}.started").write_text("")
        rng = np.random.default_rng(cfg["seed"])
        x = rng.standard_normal(cfg["lhs"]); w = rng.standard_normal(cfg["rhs"])
        kw = cfg["kwargs"]
        if not isinstance(kw["padding"], str):  # jax wants tuples (lists: "Invalid padding mode")
            kw["padding"] = tuple(tuple(p) for p in kw["padding"])
        f = lambda x, w: jax.lax.conv_transpose(x, w, **kw)
        def run(x, w, g):
            y, vjp = jax.vjp(f, x, w)
            return (y, *vjp(g))
        try:
            shape = jax.eval_shape(f, x, w).shape
            g = np.random.default_rng(cfg["seed"] + 1).standard_normal(shape)
            y, gx, gw = jax.jit(run)(x, w, g)
            np.savez(out / f"{index}.npz", y=y, gx=gx, gw=gw, g=g)
        except Exception as err:
            (out / f"{index}.err").write_text(type(err).__name__ + ": " + str(err))
    """
)


def random_config(rng, seed):
    """A random jax.lax.conv_transpose call: every padding form and several layouts."""
    nd = int(rng.integers(1, 4))
    letters = LETTERS[:nd]
    k = [int(rng.integers(1, 5)) for _ in range(nd)]
    s = [int(rng.integers(1, 4)) for _ in range(nd)]
    d = [int(rng.integers(1, 3)) for _ in range(nd)]
    n = [int(rng.integers(1, 6)) for _ in range(nd)]
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    form = str(rng.choice(["SAME", "VALID", "pairs", "consistent", "same"]))
    if form == "pairs":
        padding = [[int(rng.integers(-2, kk * dd + 1)) for _ in range(2)] for kk, dd in zip(k, d)]
    elif form == "consistent":
        padding = [[int(rng.integers(0, 3)) for _ in range(2)] for _ in range(nd)]
    else:
        padding = form
    if form == "same":  # conv_general_dilated's own string padding: unit strides only
        s = [1] * nd
    transpose_kernel = bool(rng.integers(0, 2))
    o, i = (c_in, c_out) if transpose_kernel else (c_out, c_in)
    layout = str(rng.choice(["default", "channels_first", "mixed", "permuted"]))
    if layout == "permuted" and nd == 1:
        layout = "default"
    shapes = {"N": int(rng.integers(1, 3)), "C": c_in, "O": o, "I": i}
    shapes.update(zip(letters, n))
    kernel_sizes = dict(zip(letters, k))
    if layout == "default":
        dn = None
        lhs_spec, rhs_spec = "N" + letters + "C", letters + "IO"
    else:
        spatial = letters[::-1] if layout == "permuted" else letters
        lhs_spec = {"channels_first": "NC", "mixed": "N", "permuted": "C"}[layout]
        lhs_spec += spatial + {"channels_first": "", "mixed": "C", "permuted": "N"}[layout]
        rhs_spec = "OI" + letters if layout != "permuted" else spatial + "OI"
        out_spec = "NC" + letters if layout != "channels_first" else "N" + letters + "C"
        dn = [lhs_spec, rhs_spec, out_spec]
    lhs = [shapes[c] for c in lhs_spec]
    rhs = [kernel_sizes.get(c, shapes.get(c)) for c in rhs_spec]
    kwargs = dict(
        strides=s,
        padding=padding,
        rhs_dilation=d,
        dimension_numbers=dn,
        transpose_kernel=transpose_kernel,
        use_consistent_padding=form == "consistent",
    )
    return dict(seed=seed, lhs=lhs, rhs=rhs, kwargs=kwargs)


def known_triggers():
    """torch layers on which XLA's CPU compiler aborts (test_abort.py), as jax.lax calls:
    NCHW, the torch weight with transpose_kernel=True, raw pads k_e - 1 - padding."""
    triggers = [
        ((1, 3, 2, 6), (3, 1, 4, 2), (1, 2)),
        ((1, 3, 1, 6), (3, 1, 3, 2), (1, 2)),
        ((1, 3, 1, 3, 6), (3, 1, 4, 2, 2), (1, 3, 2)),
    ]
    configs = []
    for x_shape, w_shape, stride in triggers:
        nd = len(stride)
        spec = "NC" + LETTERS[:nd]
        kwargs = dict(
            strides=list(stride),
            padding=[[k - 2, k - 2] for k in w_shape[2:]],  # torch padding=1
            dimension_numbers=[spec, "OI" + LETTERS[:nd], spec],
            transpose_kernel=True,
        )
        configs.append(dict(seed=len(configs), lhs=list(x_shape), rhs=list(w_shape), kwargs=kwargs))
    return configs


def run_jax_in_children(configs, workdir: Path):
    """Raw jax results per index: ('ok', arrays), ('error', message) or ('aborted', code)."""
    results, start = {}, 0
    while start < len(configs):
        todo = workdir / f"todo{start}.json"
        todo.write_text(json.dumps(list(enumerate(configs))[start:]))
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(todo), str(workdir)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        for index in range(start, len(configs)):
            if (workdir / f"{index}.npz").exists():
                results[index] = ("ok", dict(np.load(workdir / f"{index}.npz")))
            elif (workdir / f"{index}.err").exists():
                results[index] = ("error", (workdir / f"{index}.err").read_text())
            elif (workdir / f"{index}.started").exists():  # the child died on this one
                assert proc.returncode != 0, proc.stderr[-2000:]
                results[index] = ("aborted", proc.returncode)
                start = index + 1
                break
            else:
                raise AssertionError(f"child stopped early ({proc.returncode}): {proc.stderr}")
        else:
            start = len(configs)
    return results


def convt_values_and_vjp(cfg, g):
    rng = np.random.default_rng(cfg["seed"])
    x, w = rng.standard_normal(cfg["lhs"]), rng.standard_normal(cfg["rhs"])
    kwargs = dict(cfg["kwargs"])

    @jax.jit
    def run(x, w, g):
        y, vjp = jax.vjp(lambda x, w: cl.conv_transpose(x, w, **kwargs), x, w)
        return (y, *vjp(g))

    return x, w, run(x, w, g)


def torch_reference(x, w, cfg):
    """What torch computes for the same layer (channels-first views), or ``None``."""
    kwargs = cfg["kwargs"]
    nd = len(cfg["lhs"]) - 2
    dn = jax.lax.conv_dimension_numbers(
        x.shape, w.shape, kwargs["dimension_numbers"] or cl.DEFAULT_DIMENSION_NUMBERS[nd + 2]
    )
    x_cf = np.transpose(x, dn.lhs_spec)
    w_canonical = np.asarray(
        cl._canonical_operands(jnp.asarray(x), jnp.asarray(w), dn, kwargs["transpose_kernel"])[1]
    )
    spec = cl.to_spec(
        nd,
        strides=kwargs["strides"],
        padding=kwargs["padding"]
        if isinstance(kwargs["padding"], str)
        else [tuple(p) for p in kwargs["padding"]],
        rhs_dilation=kwargs.get("rhs_dilation"),
        dimension_numbers=("NC" + LETTERS[:nd],) * 3,
        use_consistent_padding=kwargs.get("use_consistent_padding", False),
        kernel_size=w_canonical.shape[2:],
        input_size=x_cf.shape[2:],
    )
    try:
        params = ct.from_spec(spec)
    except NotExpressible:
        return None, spec, x_cf, w_canonical
    y = getattr(torch.nn.functional, f"conv_transpose{nd}d")(
        torch.tensor(x_cf), torch.tensor(w_canonical), **params
    )
    return y.numpy(), spec, x_cf, w_canonical


def check_configs(configs):
    with tempfile.TemporaryDirectory() as tmp:
        results = run_jax_in_children(configs, Path(tmp))
    counts = dict(ok=0, error=0, aborted=0)
    for index, cfg in enumerate(configs):
        status, payload = results[index]
        counts[status] += 1
        if status == "error":  # jax rejects the call: so must convt, with a ValueError/TypeError
            rng = np.random.default_rng(cfg["seed"])
            x, w = rng.standard_normal(cfg["lhs"]), rng.standard_normal(cfg["rhs"])
            with pytest.raises((ValueError, TypeError)):
                cl.conv_transpose(x, w, **cfg["kwargs"])
            continue
        if status == "ok":
            x, w, (y, gx, gw) = convt_values_and_vjp(cfg, payload["g"])
            assert_close(y, payload["y"], "float64")
            assert_close(gx, payload["gx"], "float64")
            assert_close(gw, payload["gw"], "float64")
            continue
        # jax aborted the process: convt gives torch's numbers (or the definition's)
        rng = np.random.default_rng(cfg["seed"])
        x, w = rng.standard_normal(cfg["lhs"]), rng.standard_normal(cfg["rhs"])
        want, spec, x_cf, w_canonical = torch_reference(x, w, cfg)
        if want is None:
            want = reference_conv_transpose(x_cf, w_canonical, spec)
        got = cl.conv_transpose(x, w, **cfg["kwargs"])
        dn = jax.lax.conv_dimension_numbers(
            x.shape,
            w.shape,
            cfg["kwargs"]["dimension_numbers"] or cl.DEFAULT_DIMENSION_NUMBERS[x.ndim],
        )
        assert_close(np.transpose(np.asarray(got), dn.out_spec), want)
    return counts


def test_known_abort_triggers_give_torchs_numbers():
    counts = check_configs(known_triggers())
    assert sum(counts.values()) == 3


def test_matches_jax_lax_on_random_configurations():
    rng = np.random.default_rng(2026)
    counts = check_configs([random_config(rng, seed) for seed in range(60)])
    assert counts["ok"] >= 35, counts


@pytest.mark.slow
def test_matches_jax_lax_sweep():
    rng = np.random.default_rng(11)
    counts = check_configs([random_config(rng, seed) for seed in range(250)])
    assert counts["ok"] >= 160, counts
