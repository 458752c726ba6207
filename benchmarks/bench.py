"""convt against the plain lhs-dilated lowering and torch's CPU conv_transpose.

    python benchmarks/bench.py [--repeats 15] [--quick] [--out benchmarks/results]

Layers from real models, forward and forward+backward (gradients with respect to
input, weight and bias). Each layer's candidates are timed in one process, interleaved
(round-robin, so drift hits all alike); the report gives medians, ratios against torch,
GFLOP/s (useful multiply-adds of the scatter form, x2) and the fraction of a same-run
float32 GEMM's GFLOP/s. Writes RESULTS.md, results.json and results.png under --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

import convt.torch as ct
from convt import choose_method

torch.set_num_threads(os.cpu_count() or 1)


@dataclass(frozen=True)
class Layer:
    name: str
    model: str
    x_shape: tuple[int, ...]
    c_out: int
    kernel: int
    stride: int
    padding: int = 0
    output_padding: int = 0
    groups: int = 1
    dilation: int = 1

    @property
    def ndim(self) -> int:
        return len(self.x_shape) - 2

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.x_shape[1], self.c_out // self.groups, *(self.kernel,) * self.ndim)

    @property
    def kwargs(self) -> dict:
        return dict(
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            groups=self.groups,
            dilation=self.dilation,
        )

    def flops(self) -> float:
        """2 x the useful multiply-adds: every input element meets its group's kernel."""
        n, c_in, *spatial = self.x_shape
        return (
            2.0
            * n
            * c_in
            * (self.c_out // self.groups)
            * self.kernel**self.ndim
            * math.prod(spatial)
        )


LAYERS = [
    Layer("dcgan_mid", "DCGAN 512->256 k4 s2 p1", (16, 512, 4, 4), 256, 4, 2, 1),
    Layer("dcgan_out", "DCGAN 128->3 k4 s2 p1", (16, 128, 32, 32), 3, 4, 2, 1),
    Layer("unet_up", "U-Net up 256->128 k2 s2", (4, 256, 32, 32), 128, 2, 2),
    Layer("hifigan_up", "HiFi-GAN up 512->256 k16 s8 p4 (1-D)", (2, 512, 128), 256, 16, 8, 4),
    Layer("unet3d_up", "3-D U-Net up 128->64 k2 s2", (1, 128, 12, 12, 12), 64, 2, 2),
    Layer("vnet_up", "V-Net-like up 64->32 k4 s2 p1 (3-D)", (1, 64, 12, 12, 12), 32, 4, 2, 1),
    Layer("depthwise", "depthwise 64 groups k4 s2 p1", (8, 64, 32, 32), 64, 4, 2, 1, groups=64),
    Layer("grouped", "grouped 128->128 g8 k4 s2 p1", (4, 128, 16, 16), 128, 4, 2, 1, groups=8),
    Layer("stride1", "stride 1, 64->64 k3 p1", (8, 64, 32, 32), 64, 3, 1, 1),
    Layer("fsrcnn", "super-resolution FSRCNN 56->3 k9 s3 p4 op2", (1, 56, 48, 48), 3, 9, 3, 4, 2),
    Layer("shallow", "large-spatial shallow 16->8 k4 s2 p1", (2, 16, 128, 128), 8, 4, 2, 1),
    Layer("batch1", "batch-1 inference 256->128 k4 s2 p1", (1, 256, 32, 32), 128, 4, 2, 1),
    Layer("dilated", "dilated 64->64 k3 s2 d2 p2", (4, 64, 24, 24), 64, 3, 2, 2, dilation=2),
]

TORCH_FN = {
    1: torch.nn.functional.conv_transpose1d,
    2: torch.nn.functional.conv_transpose2d,
    3: torch.nn.functional.conv_transpose3d,
}
JAX_FN = {1: ct.conv_transpose1d, 2: ct.conv_transpose2d, 3: ct.conv_transpose3d}


def candidates(layer: Layer, backward: bool, methods=()):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.x_shape).astype(np.float32)
    w = (rng.standard_normal(layer.w_shape) * 0.05).astype(np.float32)
    b = rng.standard_normal(layer.c_out).astype(np.float32)
    y_shape = tuple(
        TORCH_FN[layer.ndim](torch.tensor(x[:1]), torch.tensor(w), None, **layer.kwargs).shape[1:]
    )
    c = rng.standard_normal((layer.x_shape[0], *y_shape)).astype(np.float32)
    xj, wj, bj, cj = map(jnp.asarray, (x, w, b, c))

    def jax_runner(method):
        f = JAX_FN[layer.ndim]
        if backward:
            loss = lambda x, w, b: jnp.vdot(f(x, w, b, **layer.kwargs, method=method), cj)  # noqa: E731
            fn = jax.jit(jax.grad(loss, (0, 1, 2)))
        else:
            fn = jax.jit(lambda x, w, b: f(x, w, b, **layer.kwargs, method=method))
        return lambda: jax.block_until_ready(fn(xj, wj, bj))

    xt, wt, bt, cjt = map(torch.tensor, (x, w, b, c))
    tf = TORCH_FN[layer.ndim]

    def torch_run():
        if backward:
            xr, wr, br = (t.detach().requires_grad_() for t in (xt, wt, bt))
            tf(xr, wr, br, **layer.kwargs).backward(cjt)
        else:
            with torch.no_grad():
                tf(xt, wt, bt, **layer.kwargs)

    runs = {
        "convt": jax_runner("auto"),
        "lhs_dilated": jax_runner("lhs_dilated"),
        "torch": torch_run,
    }
    for method in methods:  # --methods: every lowering side by side, to set the auto rules
        try:
            runs[method] = jax_runner(method)
            runs[method]()
        except ValueError:  # not applicable to this layer (matmul, tapsum)
            runs.pop(method)
    return runs


def time_interleaved(runs: dict, repeats: int, budget_s: float) -> dict:
    for fn in runs.values():  # compile and warm up
        fn()
        fn()
    samples = {k: [] for k in runs}
    names = list(runs)
    start = time.perf_counter()
    for round_ in range(repeats):
        # Rotated each round, and each timed call preceded by an untimed one: whichever
        # candidate ran right after torch was measured up to 1.4x slower (torch's worker
        # threads still busy), while a pause before each call made torch up to 2x slower
        # (its threads asleep); back-to-back calls, as in a model, are what is timed.
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            runs[name]()
            t0 = time.perf_counter()
            runs[name]()
            samples[name].append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s and len(samples["torch"]) >= 3:
            break
    return {k: statistics.median(v) for k, v in samples.items()}


def gemm_gflops(size=1024, repeats=10) -> float:
    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e9


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per layer and pass")
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke run")
    parser.add_argument("--only", nargs="*", help="layer names")
    parser.add_argument("--methods", nargs="*", default=(), help="also time these lowerings")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    layers = [lay for lay in LAYERS if not args.only or lay.name in args.only]
    gemm = gemm_gflops()
    rows = []
    for layer in layers:
        for backward in (False, True):
            med = time_interleaved(candidates(layer, backward, args.methods), repeats, args.budget)
            flops = layer.flops() * (3 if backward else 1)
            method = choose_method(
                ct.to_spec(layer.ndim, **{k: v for k, v in layer.kwargs.items()}),
                layer.w_shape,
                jax.default_backend(),
                layer.x_shape,
            )
            row = dict(
                layer=layer.name,
                model=layer.model,
                pass_="fwd+bwd" if backward else "fwd",
                method=method,
                **{f"{k}_ms": v * 1e3 for k, v in med.items()},
                convt_vs_torch=med["convt"] / med["torch"],
                lhs_vs_torch=med["lhs_dilated"] / med["torch"],
                convt_vs_lhs=med["convt"] / med["lhs_dilated"],
                convt_gflops=flops / med["convt"] / 1e9,
                torch_gflops=flops / med["torch"] / 1e9,
                lhs_gflops=flops / med["lhs_dilated"] / 1e9,
            )
            row["convt_gemm_fraction"] = row["convt_gflops"] / gemm
            rows.append(row)
            print(
                f"{layer.name:11s} {row['pass_']:7s} {method:11s} convt {row['convt_ms']:8.2f} ms  "
                f"lhs {row['lhs_dilated_ms']:8.2f} ms  torch {row['torch_ms']:8.2f} ms  "
                f"convt/torch {row['convt_vs_torch']:5.2f}  lhs/torch {row['lhs_vs_torch']:6.2f}  "
                f"{row['convt_gflops']:6.1f} GFLOP/s",
                flush=True,
            )
            for m in args.methods:
                if m in med:
                    print(
                        f"{'':20s}{m:11s} {med[m] * 1e3:8.2f} ms  "
                        f"/torch {med[m] / med['torch']:5.2f}"
                    )
    summary = {}
    for p in ("fwd", "fwd+bwd"):
        sel = [r for r in rows if r["pass_"] == p]
        summary[p] = dict(
            geomean_convt_vs_torch=geomean([r["convt_vs_torch"] for r in sel]),
            geomean_lhs_vs_torch=geomean([r["lhs_vs_torch"] for r in sel]),
            worst_convt_vs_torch=max(r["convt_vs_torch"] for r in sel),
            worst_convt_vs_lhs=max(r["convt_vs_lhs"] for r in sel),
        )
    env = dict(
        jax=jax.__version__,
        torch=torch.__version__,
        backend=jax.default_backend(),
        cpus=os.cpu_count(),
        machine=platform.machine(),
        gemm_gflops=gemm,
        layers=[asdict(lay) for lay in layers],
    )
    write(Path(args.out), rows, summary, env)


def write(out: Path, rows, summary, env):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(dict(env=env, rows=rows, summary=summary), indent=1)
    )
    lines = [
        "# Benchmark results",
        "",
        f"jax {env['jax']} ({env['backend']}), torch {env['torch']}, {env['cpus']} CPUs "
        f"({env['machine']}); same-run float32 GEMM: {env['gemm_gflops']:.0f} GFLOP/s. "
        "Medians of interleaved runs; ratios are time / torch's time (lower is faster).",
        "",
        "| layer | pass | convt method | convt ms | lhs-dilated ms | torch ms | convt / torch "
        "| lhs-dilated / torch | convt GFLOP/s | of GEMM |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['pass_']} | {r['method']} | {r['convt_ms']:.2f} | "
            f"{r['lhs_dilated_ms']:.2f} | {r['torch_ms']:.2f} | {r['convt_vs_torch']:.2f} | "
            f"{r['lhs_vs_torch']:.2f} | {r['convt_gflops']:.1f} | {r['convt_gemm_fraction']:.0%} |"
        )
    lines.append("")
    for p, s in summary.items():
        lines.append(
            f"- {p}: geometric mean convt / torch **{s['geomean_convt_vs_torch']:.2f}**, "
            f"lhs-dilated / torch {s['geomean_lhs_vs_torch']:.2f}; worst layer convt / torch "
            f"{s['worst_convt_vs_torch']:.2f}; worst convt / lhs-dilated "
            f"{s['worst_convt_vs_lhs']:.2f}"
        )
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    try:
        plot(out, rows)
    except ImportError:
        print("matplotlib not installed: no plot")
    print("\n".join(lines[-2:]))


def plot(out: Path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    for ax, p in zip(axes, ("fwd", "fwd+bwd")):
        sel = [r for r in rows if r["pass_"] == p]
        pos = np.arange(len(sel))
        ax.barh(
            pos - 0.2,
            [r["lhs_vs_torch"] for r in sel],
            0.4,
            label="lhs-dilated (jax.lax.conv_transpose)",
        )
        ax.barh(pos + 0.2, [r["convt_vs_torch"] for r in sel], 0.4, label="convt (auto)")
        ax.axvline(1.0, color="k", lw=1)
        ax.set_xscale("log")
        ax.set_yticks(pos, [r["layer"] for r in sel])
        ax.set_xlabel("time / torch's time (log; < 1 is faster than torch)")
        ax.set_title(p)
        ax.invert_yaxis()
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=110)


if __name__ == "__main__":
    main()
