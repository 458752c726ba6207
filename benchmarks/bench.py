"""convt against the plain lhs-dilated lowering and torch's CPU conv_transpose.

    python benchmarks/bench.py [--repeats 15] [--quick] [--out benchmarks/results]

Layers from real models, forward and forward+backward (the values and the gradients
with respect to input, weight and bias), then whole decoders (forward, and one SGD
training step).
Each layer's candidates (convt's ``auto``, every applicable lowering, torch) are timed
in one process, interleaved (rotated round-robin, so drift hits all alike); the report
gives medians, ratios against torch, ``auto`` against the best lowering of the same run,
GFLOP/s (useful multiply-adds of the scatter form, x2) and the fraction of a same-run
float32 GEMM's GFLOP/s, the compile time of ``jit(grad(...))`` against the plain
lowering's, and the peak memory of a large-spatial layer's forward+backward against
torch's. Writes RESULTS.md, results.json and results.png under --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

import convt
import convt.torch as ct
from convt import choose_method, lowering
from zoo import ZOO, ZooLayer

torch.set_num_threads(os.cpu_count() or 1)


# The benchmark's layers are zoo layers (benchmarks/zoo.py), channels-first as in torch.
Layer = ZooLayer


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
    Layer("unet3d_out", "3-D decoder head 64->32 k4 s2 p1", (1, 64, 24, 24, 24), 32, 4, 2, 1),
    # mixed-precision inference and training: bfloat16 arrays (torch's oneDNN and XLA
    # both accumulate in float32)
    Layer(
        "dcgan_bf16",
        "DCGAN 512->256 k4 s2 p1, bfloat16",
        (16, 512, 4, 4),
        256,
        4,
        2,
        1,
        dtype="bfloat16",
    ),
    Layer(
        "unet_bf16",
        "U-Net up 256->128 k2 s2, bfloat16",
        (4, 256, 32, 32),
        128,
        2,
        2,
        dtype="bfloat16",
    ),
]

TORCH_FN = {
    1: torch.nn.functional.conv_transpose1d,
    2: torch.nn.functional.conv_transpose2d,
    3: torch.nn.functional.conv_transpose3d,
}
JAX_FN = {1: ct.conv_transpose1d, 2: ct.conv_transpose2d, 3: ct.conv_transpose3d}


TORCH_CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


def candidates(layer: Layer, backward: bool, methods=()):
    """The timed calls of one layer: convt's ``auto``, the plain lowering, each of
    ``methods`` that applies, and torch. A channels-last layer runs convt on
    channels-last arrays and torch on its channels-last memory format (2-D and 3-D;
    torch has none for 1-D, which runs channels-first there)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.x_shape).astype(np.float32)
    w = (rng.standard_normal(layer.w_shape) * 0.05).astype(np.float32)
    b = (rng.standard_normal(layer.c_out) if layer.bias else np.zeros(0)).astype(np.float32)
    y_shape = tuple(
        TORCH_FN[layer.ndim](torch.tensor(x[:1]), torch.tensor(w), None, **layer.kwargs).shape[1:]
    )
    c = rng.standard_normal((layer.x_shape[0], *y_shape)).astype(np.float32)
    laid_out = (lambda a: np.moveaxis(a, 1, -1)) if layer.channels_last else (lambda a: a)
    xj, wj, bj, cj = (jnp.asarray(a, layer.dtype) for a in (laid_out(x), w, b, laid_out(c)))
    spec = layer.spec()

    def jax_runner(method):
        def f(x, w, b):
            return convt.conv_transpose(x, w, b if layer.bias else None, spec=spec, method=method)

        if backward:
            # what torch's forward and backward compute: the values, then the gradients
            # for a cotangent that is an argument (a constant one let XLA fold the
            # cotangent's im2col at compile time, which made backwards look 2x faster)
            def fn(x, w, b, c):
                y, pullback = jax.vjp(f, x, w, b)
                return y, pullback(c)

            fn = jax.jit(fn)
        else:
            fn = jax.jit(lambda x, w, b, c: f(x, w, b))
        return lambda: jax.block_until_ready(fn(xj, wj, bj, cj))

    xt, wt, bt, cjt = (torch.tensor(a).to(getattr(torch, layer.dtype)) for a in (x, w, b, c))
    if layer.channels_last and layer.ndim in TORCH_CHANNELS_LAST:
        fmt = TORCH_CHANNELS_LAST[layer.ndim]
        xt, cjt = xt.to(memory_format=fmt), cjt.to(memory_format=fmt)
    tf = TORCH_FN[layer.ndim]

    def torch_run():
        if backward:
            xr, wr, br = (t.detach().requires_grad_() for t in (xt, wt, bt))
            tf(xr, wr, br if layer.bias else None, **layer.kwargs).backward(cjt)
        else:
            with torch.no_grad():
                tf(xt, wt, bt if layer.bias else None, **layer.kwargs)

    runs = {
        "convt": jax_runner("auto"),
        "lhs_dilated": jax_runner("lhs_dilated"),
        "torch": torch_run,
    }
    for method in methods:  # every lowering side by side: auto against the best
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


def gemm_gflops(size=1024, repeats=10, dtype="float32") -> dict:
    """GFLOP/s of a square GEMM in XLA (the reference of the "of GEMM" column) and in
    torch, in ``dtype``."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), dtype)
    f = jax.jit(lambda a: a @ a)
    at = torch.tensor(np.asarray(a, np.float32)).to(getattr(torch, dtype))
    rates = {}
    for name, run in (("xla", lambda: f(a).block_until_ready()), ("torch", lambda: at @ at)):
        run()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        rates[name] = 2 * size**3 / statistics.median(times) / 1e9
    return rates


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


# ---------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Model:
    """A decoder of transposed convolutions (torch's arguments), each followed by
    ``activation`` (the last by ``last``); ``skips`` adds a fixed tensor after each
    hidden layer (a U-Net's skip connections, as sums: the concatenation and the
    convolutions after it are not transposed convolutions); ``layer_norm`` normalises
    each hidden layer's output over its channels (SAM's ``LayerNorm2d``, affine
    included; the JAX port moves the channels last for it); ``weight_norm`` computes
    each weight from ``(g, v)`` inside the step, as
    ``torch.nn.utils.parametrizations.weight_norm(module, dim=0)`` does (HiFi-GAN)."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[tuple, ...]  # (C_in, C_out, kernel, stride, padding)
    skips: bool = False
    activation: str = "relu"
    last: str = "tanh"
    layer_norm: bool = False
    weight_norm: bool = False


MODELS = [
    Model(
        "DCGAN generator",
        (16, 100, 1, 1),
        (
            (100, 512, 4, 1, 0),
            (512, 256, 4, 2, 1),
            (256, 128, 4, 2, 1),
            (128, 64, 4, 2, 1),
            (64, 3, 4, 2, 1),
        ),
    ),
    Model(
        "U-Net decoder (skips)",
        (4, 512, 8, 8),
        ((512, 256, 2, 2, 0), (256, 128, 2, 2, 0), (128, 64, 2, 2, 0), (64, 3, 4, 2, 1)),
        skips=True,
    ),
    Model(
        "HiFi-GAN upsampler (1-D, weight norm)",
        (2, 512, 64),
        ((512, 256, 16, 8, 4), (256, 128, 16, 8, 4), (128, 64, 4, 2, 1), (64, 32, 4, 2, 1)),
        activation="leaky_relu",
        weight_norm=True,
    ),
    Model(
        "3-D U-Net decoder",
        (1, 256, 6, 6, 6),
        ((256, 128, 2, 2, 0), (128, 64, 2, 2, 0), (64, 32, 4, 2, 1)),
    ),
    Model(
        "SAM upscaling head",
        (1, 256, 64, 64),
        ((256, 64, 2, 2, 0), (64, 32, 2, 2, 0)),
        activation="gelu",
        last="gelu",
        layer_norm=True,
    ),
]


def _activation(name: str, lib):
    """``name``'s function in ``lib`` (``jax.nn``/``jnp`` or ``torch``), with torch's
    defaults (leaky slope 0.1 as HiFi-GAN sets it; exact GELU)."""
    if lib is torch:
        table = dict(
            relu=torch.relu,
            tanh=torch.tanh,
            gelu=torch.nn.functional.gelu,
            leaky_relu=lambda h: torch.nn.functional.leaky_relu(h, 0.1),
        )
    else:
        table = dict(
            relu=jax.nn.relu,
            tanh=jnp.tanh,
            gelu=functools.partial(jax.nn.gelu, approximate=False),
            leaky_relu=lambda h: jax.nn.leaky_relu(h, 0.1),
        )
    return table[name]


def model_candidates(model: Model, train: bool, plain: bool = True):
    """convt (auto; channels-first as ported, and channels-last), the plain lowering
    (unless not ``plain``) and torch: forward, or one SGD step."""
    rng = np.random.default_rng(1)
    ndim = len(model.input_shape) - 2
    weights = [
        (
            (rng.standard_normal((ci, co, *(k,) * ndim)) * (1 / math.sqrt(ci * k**ndim))).astype(
                np.float32
            ),
            (rng.standard_normal(co) * 0.1).astype(np.float32),
        )
        for ci, co, k, _, _ in model.layers
    ]
    if model.weight_norm:  # (v, b, g): g starts as the norm of v over all axes but 0
        weights = [
            (w, b, np.sqrt((w**2).sum(axis=tuple(range(1, w.ndim)), keepdims=True)))
            for w, b in weights
        ]
    if model.layer_norm:  # LayerNorm2d's affine, per hidden layer
        norms = [
            (np.ones(co, np.float32), np.zeros(co, np.float32)) for _, co, *_ in model.layers[:-1]
        ]
    else:
        norms = []
    x = rng.standard_normal(model.input_shape).astype(np.float32)
    shapes, h = [], torch.tensor(x)
    with torch.no_grad():
        for (w, b, *_), (_, _, _, s, p) in zip(weights, model.layers):
            h = TORCH_FN[ndim](h, torch.tensor(w), torch.tensor(b), stride=s, padding=p)
            shapes.append(tuple(h.shape))
    skips = [rng.standard_normal(sh).astype(np.float32) for sh in shapes[:-1]]
    target = rng.standard_normal(shapes[-1]).astype(np.float32)
    last = len(model.layers) - 1

    def jax_forward(params, x, skips, method, layout):
        weights, norms = params
        channel_axis = 1 if layout == "channels_first" else -1
        act, act_last = _activation(model.activation, jnp), _activation(model.last, jnp)
        h = x
        for i, (wb, (_, _, _, s, p)) in enumerate(zip(weights, model.layers)):
            w, b = wb[0], wb[1]
            if model.weight_norm:
                w = convt.layers.fold_weight_norm(wb[2], w, (0,))
            if layout == "channels_first":
                h = JAX_FN[ndim](h, w, b, stride=s, padding=p, method=method)
            else:  # the same layer on channels-last activations, as a JAX model holds them
                spec = dataclasses.replace(
                    ct.to_spec(ndim, stride=s, padding=p), layout="channels_last"
                )
                h = convt.conv_transpose(h, w, b, spec=spec, method=method)
            if i < last and model.layer_norm:
                # over the channels moved last: XLA's CPU gradient of a mean over axis 1
                # took 28x as long (docs/benchmarks.md, "Whole decoders")
                h = jnp.moveaxis(h, channel_axis, -1)
                mean = jnp.mean(h, axis=-1, keepdims=True)
                var = jnp.mean((h - mean) ** 2, axis=-1, keepdims=True)
                h = (h - mean) / jnp.sqrt(var + 1e-6) * norms[i][0] + norms[i][1]
                h = jnp.moveaxis(h, -1, channel_axis)
            h = act_last(h) if i == last else act(h)
            if model.skips and i < len(skips):
                h = h + skips[i]
        return h

    def jax_runner(method, layout="channels_first"):
        def to_layout(a):
            return a if layout == "channels_first" else np.moveaxis(a, 1, -1)

        params = jax.tree_util.tree_map(jnp.asarray, (weights, norms))
        xj, tj = jnp.asarray(to_layout(x)), jnp.asarray(to_layout(target))
        sj = [jnp.asarray(to_layout(k)) for k in skips]
        forward = functools.partial(jax_forward, skips=sj, method=method, layout=layout)
        if train:

            def step(params, x):
                loss = lambda p: jnp.mean((forward(p, x) - tj) ** 2)  # noqa: E731
                grads = jax.grad(loss)(params)
                return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)

            fn = jax.jit(step)
        else:
            fn = jax.jit(forward)
        return lambda: jax.block_until_ready(fn(params, xj))

    tw = [tuple(torch.tensor(a, requires_grad=True) for a in wb) for wb in weights]
    tn = [tuple(torch.tensor(a, requires_grad=True) for a in sb) for sb in norms]
    xt, tt, st = torch.tensor(x), torch.tensor(target), [torch.tensor(k) for k in skips]
    act, act_last = _activation(model.activation, torch), _activation(model.last, torch)

    def torch_forward():
        h = xt
        for i, (wb, (_, _, _, s, p)) in enumerate(zip(tw, model.layers)):
            w, b = wb[0], wb[1]
            if model.weight_norm:  # what the parametrization computes on each access
                w = torch._weight_norm(w, wb[2], 0)
            h = TORCH_FN[ndim](h, w, b, stride=s, padding=p)
            if i < last and model.layer_norm:  # SAM's LayerNorm2d
                mean = h.mean(1, keepdim=True)
                var = (h - mean).pow(2).mean(1, keepdim=True)
                h = (h - mean) / torch.sqrt(var + 1e-6)
                h = tn[i][0][:, None, None] * h + tn[i][1][:, None, None]
            h = act_last(h) if i == last else act(h)
            if model.skips and i < len(st):
                h = h + st[i]
        return h

    params_t = [a for group in (*tw, *tn) for a in group]

    def torch_run():
        """The output, or the parameters after the step (for `tests/test_benchmarks.py`)."""
        if train:
            for a in params_t:
                a.grad = None
            torch.mean((torch_forward() - tt) ** 2).backward()
            with torch.no_grad():
                for a in params_t:
                    a -= 0.01 * a.grad
            return params_t
        with torch.no_grad():
            return torch_forward()

    runs = {
        "convt": jax_runner("auto"),
        "convt_channels_last": jax_runner("auto", "channels_last"),
        "torch": torch_run,
    }
    if plain:
        runs["lhs_dilated"] = jax_runner("lhs_dilated")
    return runs


# ---------------------------------------------------------------------------- compile time, memory


def compile_seconds(layer: Layer, method: str) -> float:
    """Wall time of lowering and compiling ``jit(grad(loss))`` (the best of two)."""
    x = jnp.zeros(layer.x_shape, jnp.float32)
    w = jnp.zeros(layer.w_shape, jnp.float32)
    f = JAX_FN[layer.ndim]
    times = []
    for _ in range(2):
        loss = lambda x, w: jnp.sum(f(x, w, **layer.kwargs, method=method) ** 2)  # noqa: E731
        t0 = time.perf_counter()
        jax.jit(jax.grad(loss, (0, 1))).lower(x, w).compile()
        times.append(time.perf_counter() - t0)
    return min(times)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes(run) -> int:
    """Peak resident memory above the starting level while ``run()`` runs (sampled
    every 0.2 ms from /proc, so it sees torch's allocations and XLA's alike)."""
    run()  # compiled and warm: later calls allocate what a training loop allocates
    base, peak, done = _rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run()
    done.set()
    sampler.join()
    return max(peak[0] - base, 0)


MEMORY_LAYER = Layer("large", "large-spatial 16->8 k4 s2 p1", (4, 16, 256, 256), 8, 4, 2, 1)


def torch_peak_bytes(layer_name: str = "large") -> int:
    """torch's forward+backward on the layer called ``layer_name`` (``MEMORY_LAYER``
    by default, or a zoo layer): the growth of the resident size during a warm call
    (median of three), sampled in a child process whose allocator returns every large
    block when it is freed (a fixed ``mmap`` threshold; with glibc's adaptive one,
    freed blocks stayed resident and were reused)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    child = subprocess.run(
        [sys.executable, __file__, "--torch-memory", layer_name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout.strip().splitlines()[-1])


def _named_layer(name: str) -> Layer:
    return next(lay for lay in (MEMORY_LAYER, *ZOO, *LAYERS) if lay.name == name)


def xla_peak_bytes(layer: Layer, method: str = "auto") -> int:
    """XLA's account of the timed forward+backward (`candidates`): temporaries and
    outputs of the compiled program."""
    spec = layer.spec()
    x = jnp.zeros(layer.input_shape, layer.dtype)
    w = jnp.zeros(layer.w_shape, layer.dtype)
    b = jnp.zeros((layer.c_out,) if layer.bias else (0,), layer.dtype)
    y = jax.eval_shape(lambda x, w: convt.conv_transpose(x, w, spec=spec, method=method), x, w)
    c = jnp.zeros(y.shape, layer.dtype)

    def fn(x, w, b, c):
        f = lambda x, w, b: convt.conv_transpose(  # noqa: E731
            x, w, b if layer.bias else None, spec=spec, method=method
        )
        y, pullback = jax.vjp(f, x, w, b)
        return y, pullback(c)

    stats = jax.jit(fn).lower(x, w, b, c).compile().memory_analysis()
    return stats.temp_size_in_bytes + stats.output_size_in_bytes


def zoo_memory_rows(layers) -> list[dict]:
    """Peak memory of each layer's forward+backward, ``auto`` against torch."""
    rows = []
    for layer in layers:
        ours, theirs = xla_peak_bytes(layer), torch_peak_bytes(layer.name)
        rows.append(
            dict(
                layer=layer.name,
                peak_mb=ours / 1e6,
                torch_peak_mb=theirs / 1e6,
                vs_torch=ours / max(theirs, 1),
            )
        )
        print(
            f"memory {layer.name:18s} auto {ours / 1e6:8.1f} MB  torch {theirs / 1e6:8.1f} MB",
            flush=True,
        )
    return rows


def memory_rows(methods) -> list[dict]:
    """Peak memory of forward+backward on ``MEMORY_LAYER`` per lowering, against
    torch's. XLA's CPU runtime allocates a program's temporaries as one arena, once
    (sampling the resident size saw nothing new on warm calls), so its peak is the
    compiled program's own account (temporaries and outputs, ``memory_analysis``);
    torch's is measured (`torch_peak_bytes`)."""
    torch_peak = torch_peak_bytes()
    f = JAX_FN[MEMORY_LAYER.ndim]
    x = jnp.zeros(MEMORY_LAYER.x_shape, jnp.float32)
    w = jnp.zeros(MEMORY_LAYER.w_shape, jnp.float32)
    rows = []
    for method in ("auto", *methods):
        loss = lambda x, w, m=method: jnp.sum(f(x, w, **MEMORY_LAYER.kwargs, method=m) ** 2)  # noqa: E731
        try:
            stats = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).compile().memory_analysis()
        except ValueError:  # not applicable (matmul, tapsum)
            continue
        peak = stats.temp_size_in_bytes + stats.output_size_in_bytes
        rows.append(
            dict(
                method=method,
                peak_mb=peak / 1e6,
                torch_peak_mb=torch_peak / 1e6,
                vs_torch=peak / max(torch_peak, 1),
            )
        )
    return rows


def time_models(repeats: int, budget_s: float, plain: bool = True) -> list[dict]:
    """Forward and one training step of every decoder of `MODELS`, interleaved."""
    rows = []
    for model in MODELS:
        for train in (False, True):
            med = time_interleaved(model_candidates(model, train, plain), repeats, budget_s)
            row = dict(
                model=model.name,
                pass_="train step" if train else "fwd",
                **{f"{k}_ms": v * 1e3 for k, v in med.items()},
                convt_vs_torch=med["convt"] / med["torch"],
                channels_last_vs_torch=med["convt_channels_last"] / med["torch"],
            )
            if plain:
                row["lhs_vs_torch"] = med["lhs_dilated"] / med["torch"]
            rows.append(row)
            print(
                f"model {model.name:38s} {row['pass_']:10s} convt {row['convt_ms']:8.2f} ms  "
                f"torch {row['torch_ms']:8.2f} ms  convt/torch {row['convt_vs_torch']:5.2f}  "
                f"channels-last {row['channels_last_vs_torch']:5.2f}",
                flush=True,
            )
    return rows


def model_table(rows: list[dict]) -> list[str]:
    """The decoders' table (markdown lines); the plain lowering's columns where timed."""
    plain = all("lhs_dilated_ms" in r for r in rows)
    head = "| model | pass | convt ms | channels-last ms | "
    head += "lhs-dilated ms | " if plain else ""
    head += "torch ms | convt / torch | channels-last / torch |"
    head += " lhs-dilated / torch |" if plain else ""
    lines = [head, "| --- | --- |" + " ---: |" * (head.count("|") - 3)]
    for r in rows:
        cells = [
            r["model"],
            r["pass_"],
            f"{r['convt_ms']:.2f}",
            f"{r['convt_channels_last_ms']:.2f}",
        ]
        cells += [f"{r['lhs_dilated_ms']:.2f}"] if plain else []
        cells += [
            f"{r['torch_ms']:.2f}",
            f"{r['convt_vs_torch']:.2f}",
            f"{r['channels_last_vs_torch']:.2f}",
        ]
        cells += [f"{r['lhs_vs_torch']:.2f}"] if plain else []
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per layer and pass")
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke run")
    parser.add_argument("--only", nargs="*", help="layer names")
    parser.add_argument(
        "--methods", nargs="*", default=list(lowering.LOWERINGS), help="lowerings timed"
    )
    parser.add_argument("--no-models", action="store_true", help="layers only")
    parser.add_argument(
        "--models-only",
        action="store_true",
        help="only the whole decoders (writes models.json; the plain lowering's column "
        "only when --methods names lhs_dilated)",
    )
    parser.add_argument(
        "--zoo",
        action="store_true",
        help="the model zoo's layers (benchmarks/zoo.py, bfloat16 and channels-last "
        "variants included) instead of the benchmark's own",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--torch-memory", help=argparse.SUPPRESS)
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the peak memory of each layer's forward+backward against torch's",
    )
    args = parser.parse_args()
    if args.torch_memory:
        runs = candidates(_named_layer(args.torch_memory), True, ())
        print(int(statistics.median(peak_bytes(runs["torch"]) for _ in range(3))))
        return
    repeats = 3 if args.quick else args.repeats
    layers = [
        lay for lay in (ZOO if args.zoo else LAYERS) if not args.only or lay.name in args.only
    ]
    if args.models_only:
        rows = time_models(repeats, args.budget, plain="lhs_dilated" in args.methods)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "models.json").write_text(json.dumps(rows, indent=1))
        print("\n".join(model_table(rows)))
        return
    if args.memory_only:
        rows = zoo_memory_rows(layers)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "memory.json").write_text(json.dumps(rows, indent=1))
        print("| layer | auto peak MB (XLA's account) | torch peak MB (measured) | / torch |")
        print("| --- | ---: | ---: | ---: |")
        for r in rows:
            print(
                f"| {r['layer']} | {r['peak_mb']:.1f} | {r['torch_peak_mb']:.1f} | "
                f"{r['vs_torch']:.2f} |"
            )
        return
    gemms = {dtype: gemm_gflops(dtype=dtype) for dtype in sorted({lay.dtype for lay in layers})}
    rows = []
    for layer in layers:
        for backward in (False, True):
            med = time_interleaved(candidates(layer, backward, args.methods), repeats, args.budget)
            flops = layer.flops() * (3 if backward else 1)
            method = choose_method(
                layer.spec(), layer.w_shape, jax.default_backend(), layer.input_shape
            )
            lowerings = {m: med[m] for m in med if m not in ("convt", "torch")}
            best = min(lowerings, key=lowerings.get)
            row = dict(
                layer=layer.name,
                model=layer.model,
                pass_="fwd+bwd" if backward else "fwd",
                method=method,
                best=best,
                **{f"{k}_ms": v * 1e3 for k, v in med.items()},
                convt_vs_torch=med["convt"] / med["torch"],
                lhs_vs_torch=med["lhs_dilated"] / med["torch"],
                convt_vs_lhs=med["convt"] / med["lhs_dilated"],
                convt_vs_best=med["convt"] / lowerings[best],
                convt_gflops=flops / med["convt"] / 1e9,
                torch_gflops=flops / med["torch"] / 1e9,
                lhs_gflops=flops / med["lhs_dilated"] / 1e9,
            )
            row["convt_gemm_fraction"] = row["convt_gflops"] / gemms[layer.dtype]["xla"]
            rows.append(row)
            print(
                f"{layer.name:11s} {row['pass_']:7s} {method:22s} convt {row['convt_ms']:8.2f} ms  "
                f"best {best} {lowerings[best] * 1e3:8.2f} ms  torch {row['torch_ms']:8.2f} ms  "
                f"convt/torch {row['convt_vs_torch']:5.2f}  lhs/torch {row['lhs_vs_torch']:6.2f}  "
                f"{row['convt_gflops']:6.1f} GFLOP/s",
                flush=True,
            )
    compile_rows = []
    for layer in layers:
        auto_s, plain_s = compile_seconds(layer, "auto"), compile_seconds(layer, "lhs_dilated")
        compile_rows.append(
            dict(layer=layer.name, auto_s=auto_s, plain_s=plain_s, ratio=auto_s / plain_s)
        )
        print(f"compile {layer.name:11s} auto {auto_s:6.2f} s  plain {plain_s:6.2f} s", flush=True)
    model_rows = [] if args.no_models else time_models(repeats, args.budget)
    memory = memory_rows(args.methods)
    for r in memory:
        print(
            f"memory {r['method']:11s} {r['peak_mb']:8.1f} MB  torch {r['torch_peak_mb']:8.1f} MB"
        )
    summary = {}
    for p in ("fwd", "fwd+bwd"):
        sel = [r for r in rows if r["pass_"] == p]
        summary[p] = dict(
            geomean_convt_vs_torch=geomean([r["convt_vs_torch"] for r in sel]),
            geomean_lhs_vs_torch=geomean([r["lhs_vs_torch"] for r in sel]),
            worst_convt_vs_torch=max(r["convt_vs_torch"] for r in sel),
            worst_convt_vs_lhs=max(r["convt_vs_lhs"] for r in sel),
            worst_convt_vs_best=max(r["convt_vs_best"] for r in sel),
        )
    env = dict(
        jax=jax.__version__,
        torch=torch.__version__,
        backend=jax.default_backend(),
        cpus=os.cpu_count(),
        machine=platform.machine(),
        gemm_gflops=gemms["float32"]["xla"],
        gemms=gemms,
        layers=[asdict(lay) for lay in layers],
    )
    write(
        Path(args.out),
        dict(
            env=env,
            rows=rows,
            summary=summary,
            models=model_rows,
            compile=compile_rows,
            memory=memory,
        ),
    )


def write(out: Path, results: dict):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    env, rows, summary = results["env"], results["rows"], results["summary"]
    lines = [
        "# Benchmark results",
        "",
        f"jax {env['jax']} ({env['backend']}), torch {env['torch']}, {env['cpus']} CPUs "
        f"({env['machine']}); same-run 1024x1024 GEMM, XLA / torch: "
        + ", ".join(
            f"{dtype} {g['xla']:.0f} / {g['torch']:.0f} GFLOP/s"
            for dtype, g in env["gemms"].items()
        )
        + " (a layer's \"of GEMM\" is against XLA's in its dtype). Medians of interleaved "
        "runs; ratios are time / torch's time (lower is faster).",
        "",
        "## Layers",
        "",
        "| layer | pass | auto's lowering | auto ms | best lowering (ms) | auto / best "
        "| lhs-dilated ms | torch ms | auto / torch | lhs-dilated / torch | auto GFLOP/s "
        "| of GEMM |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['pass_']} | {r['method']} | {r['convt_ms']:.2f} | "
            f"{r['best']} ({r[r['best'] + '_ms']:.2f}) | {r['convt_vs_best']:.2f} | "
            f"{r['lhs_dilated_ms']:.2f} | {r['torch_ms']:.2f} | {r['convt_vs_torch']:.2f} | "
            f"{r['lhs_vs_torch']:.2f} | {r['convt_gflops']:.1f} | {r['convt_gemm_fraction']:.0%} |"
        )
    lines.append("")
    for p, s in summary.items():
        lines.append(
            f"- {p}: geometric mean convt / torch **{s['geomean_convt_vs_torch']:.2f}**, "
            f"lhs-dilated / torch {s['geomean_lhs_vs_torch']:.2f}; worst layer convt / torch "
            f"{s['worst_convt_vs_torch']:.2f}; worst auto / best lowering "
            f"{s['worst_convt_vs_best']:.2f}; worst convt / lhs-dilated "
            f"{s['worst_convt_vs_lhs']:.2f}"
        )
    if results["models"]:
        lines += [
            "",
            "## Whole decoders",
            "",
            "convt runs torch's channels-first layout (as a port of the torch model "
            "would), and the same decoder on channels-last activations (no re-layout "
            "between layers); torch runs channels-first.",
            "",
        ]
        lines += model_table(results["models"])
    lines += [
        "",
        "## Compile time of `jit(grad(loss))`",
        "",
        "| layer | auto s | lhs-dilated s | auto / lhs-dilated |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results["compile"]:
        lines.append(
            f"| {r['layer']} | {r['auto_s']:.2f} | {r['plain_s']:.2f} | {r['ratio']:.2f} |"
        )
    lines += [
        "",
        f"## Peak memory, forward+backward of {MEMORY_LAYER.model}, input {MEMORY_LAYER.x_shape}",
        "",
        "| lowering | peak MB (XLA's temporaries and outputs) | torch peak MB (measured) "
        "| / torch |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results["memory"]:
        lines.append(
            f"| {r['method']} | {r['peak_mb']:.1f} | {r['torch_peak_mb']:.1f} | "
            f"{r['vs_torch']:.2f} |"
        )
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    try:
        plot(out, rows)
    except ImportError:
        print("matplotlib not installed: no plot")
    print("\n".join(line for line in lines if line.startswith("- ")))


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
