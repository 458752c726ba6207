"""Layers with many taps (CPU): compile time and speed of ``auto``'s many-tap rules.

    python benchmarks/many_taps.py [--only TEXT] [--repeats 7] [--out FILE.json]

A phase form traces every tap of the kernel (``tapsum``, ``col2im``, and the phase forms
once per phase), so a 512-tap kernel compiles for seconds. For each layer (channels
first, float32, ``jit(grad)`` of a squared-error loss in both arguments) this times the
compile and the forward+backward of ``auto``; of what ``auto`` ran before the rules of
``MAX_TAPS`` (``before``: the same table without them); of the plain lhs-dilated
lowering; and torch's ``conv_transpose`` forward+backward, interleaved, medians; with
the same-run 1024^2 GEMM rate. Prints a markdown table (docs/benchmarks.md, "Kernels
with many taps").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

from bench import TORCH_FN, gemm_gflops, time_interleaved
from convt import ConvTransposeSpec, auto, conv_transpose

HERE = Path(__file__).resolve().parent


def layers():
    """(name, input shape, canonical weight shape, spec keywords)."""
    for s in (4, 8, 16, 32, 64, 128, 256):
        yield f"1-D 64->32 k{2 * s} s{s}", (4, 64, 256), (64, 32, 2 * s), {"stride": s}
    for s in (64, 128):
        yield (
            f"1-D depthwise 64 k{2 * s} s{s}",
            (4, 64, 256),
            (64, 1, 2 * s),
            {
                "stride": s,
                "groups": 64,
            },
        )
    yield "1-D 64->32 k32 s8", (4, 64, 256), (64, 32, 32), {"stride": 8}
    yield "1-D 64->32 k256 s64", (4, 64, 256), (64, 32, 256), {"stride": 64}
    yield "1-D iSTFT 514->1 k512 s128", (4, 514, 200), (514, 1, 512), {"stride": 128}
    yield "2-D 16->16 k8 s4", (4, 16, 32, 32), (16, 16, 8, 8), {"stride": 4}
    yield "2-D 16->16 k16 s8", (4, 16, 32, 32), (16, 16, 16, 16), {"stride": 8}
    yield "2-D 16->16 k15 s1 p7", (4, 16, 32, 32), (16, 16, 15, 15), {"stride": 1, "crop": 7}
    yield (
        "2-D depthwise 64 k31 s1 p15",
        (1, 64, 32, 32),
        (64, 1, 31, 31),
        {
            "stride": 1,
            "crop": 15,
            "groups": 64,
        },
    )


def before(spec, weight_shape, input_shape) -> str:
    """What ``auto`` ran on the CPU without the many-tap rules."""
    layer = auto.features(spec, weight_shape, input_shape)
    picks = [
        auto.first_rule([r for r in auto.RULES["cpu"][d] if r not in auto.CPU_MANY_TAPS], layer)
        for d in ("forward", "backward")
    ]
    forward, backward = (r.method for r in picks)
    return forward if forward == backward else f"{forward}/{backward}"


def run(name, x_shape, w_shape, keywords, repeats):
    spec = ConvTransposeSpec.create(len(x_shape) - 2, **keywords)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal(w_shape), jnp.float32)
    methods = {
        "auto": auto.choose(spec, w_shape, "cpu", x_shape),
        "before": before(spec, w_shape, x_shape),
        "lhs_dilated": "lhs_dilated",
        "matmul": "matmul",
    }
    row = {"layer": name, "taps": int(np.prod(w_shape[2:])), **methods}
    calls = {}
    for label, method in methods.items():
        loss = lambda x, w, m=method: (conv_transpose(x, w, spec=spec, method=m) ** 2).sum()  # noqa: E731
        start = time.perf_counter()
        compiled = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).compile()
        row[f"{label} compile s"] = round(time.perf_counter() - start, 2)
        jax.block_until_ready(compiled(x, w))
        calls[label] = lambda c=compiled: jax.block_until_ready(c(x, w))
    xt = torch.tensor(np.asarray(x), requires_grad=True)
    wt = torch.tensor(np.asarray(w), requires_grad=True)
    pad = spec.crop[0][0]

    def torch_step():
        y = TORCH_FN[spec.ndim](xt, wt, stride=spec.stride, padding=pad, groups=spec.groups)
        torch.autograd.grad((y**2).sum(), (xt, wt))

    calls["torch"] = torch_step
    torch_step()
    for label, seconds in time_interleaved(calls, repeats, budget_s=600.0).items():
        row[f"{label} ms"] = round(1e3 * seconds, 2)
    return row


def markdown(rows, gemm) -> str:
    lines = [
        f"Same-run 1024^2 float32 GEMM: XLA {gemm['xla']:.0f} GFLOP/s, torch "
        f"{gemm['torch']:.0f}. Forward+backward ms (medians), `jit(grad)` compile s.",
        "",
        "| layer | taps | auto | before | auto ms | before ms | matmul ms | lhs-dilated ms "
        "| torch ms | auto compile s | before compile s | matmul compile s |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['layer']} | {r['taps']} | `{r['auto']}` | `{r['before']}` | {r['auto ms']} "
            f"| {r['before ms']} | {r['matmul ms']} | {r['lhs_dilated ms']} | {r['torch ms']} "
            f"| {r['auto compile s']} | {r['before compile s']} | {r['matmul compile s']} |"
        )
    compiles = [r["lhs_dilated compile s"] for r in rows]
    lines += ["", f"`lhs_dilated` compiled in {min(compiles)}-{max(compiles)} s on every layer."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "many_taps.json")
    args = parser.parse_args()
    gemm = gemm_gflops()
    rows = []
    for name, x_shape, w_shape, keywords in layers():
        if args.only in name:
            rows.append(run(name, x_shape, w_shape, keywords, args.repeats))
            print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps({"gemm_gflops": gemm, "rows": rows}, indent=1) + "\n")
    print(markdown(rows, gemm))


if __name__ == "__main__":
    main()
