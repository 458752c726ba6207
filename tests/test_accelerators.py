"""``method="auto"`` chooses per platform when a program is lowered (`jax.lax.
platform_dependent`), and what XLA:GPU makes of the zoo's layers.

The export and CPU tests run everywhere. The H100 check compiles every zoo layer for an
H100 target without a GPU and runs only where jax's CUDA plugin is installed (the
environment of ``../shared/tools/accelerator-aot.sh``; see docs/accelerators.md).
"""

import dataclasses
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convt
from convt import ConvTransposeSpec, choose_method
from helpers import assert_close, randn, reference_conv_transpose, reference_vjp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from accelerators import (  # noqa: E402
    choice_ratios,
    embedded,
    gpu_structure,
    is_clean,
    recorded_layers,
)
from zoo import ZOO  # noqa: E402

LAYERS = [  # (x shape, w shape, spec): the CPU's choice differs from the GPU's on each
    ((2, 8, 5, 5), (8, 4, 4, 4), ConvTransposeSpec.create(2, stride=2, crop=1)),
    ((2, 6, 7), (6, 1, 3), ConvTransposeSpec.create(1, stride=2, crop=[(1, 0)], groups=6)),
    (
        (2, 4, 4, 4, 3),
        (3, 2, 3, 3, 3),
        ConvTransposeSpec.create(3, stride=2, crop=[(1, 0)] * 3, layout="channels_last"),
    ),
]


@pytest.mark.parametrize("x_shape, w_shape, spec", LAYERS)
def test_export_for_every_platform(x_shape, w_shape, spec):
    """``jax.export`` for CPU, CUDA and TPU at once: each platform's lowering is in the
    module, and the CPU call of the exported program (values and gradients) equals the
    definition."""
    assert choose_method(spec, w_shape, "cpu", x_shape) != choose_method(spec, w_shape, "gpu")
    rng = np.random.default_rng(0)
    x, w = randn(rng, x_shape, "float64"), randn(rng, w_shape, "float64")
    g = randn(rng, spec.output_shape(x_shape, w_shape), "float64")

    def run(x, w, g):
        y, vjp = jax.vjp(functools.partial(convt.conv_transpose, spec=spec), x, w)
        return y, *vjp(g)

    structs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (x, w, g)]
    exported = jax.export.export(jax.jit(run), platforms=("cpu", "cuda", "tpu"))(*structs)
    assert exported.platforms == ("cpu", "cuda", "tpu")
    assert "stablehlo.case" in exported.mlir_module()
    y, grad_x, grad_w = exported.call(x, w, g)
    assert_close(y, reference_conv_transpose(x, w, spec), "float64")
    want_x, want_w, _ = reference_vjp(x, w, spec, g)
    assert_close(grad_x, want_x, "float64")
    assert_close(grad_w, want_w, "float64")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU's rules")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("x_shape, w_shape, spec", LAYERS)
def test_jit_on_cpu_runs_the_cpu_choice(x_shape, w_shape, spec, dtype):
    """Under ``jax.jit`` on the CPU, ``auto`` computes what the CPU's choice computes,
    bit for bit (bfloat16 widened to float32 as before)."""
    rng = np.random.default_rng(1)
    x, w = (jnp.asarray(randn(rng, s), dtype) for s in (x_shape, w_shape))
    g = jnp.asarray(randn(rng, spec.output_shape(x_shape, w_shape)), dtype)
    method = choose_method(spec, w_shape, "cpu", x_shape)

    def layer(x, w, method):
        f = functools.partial(convt.conv_transpose, spec=spec, method=method)
        if method == "auto" or dtype == "float32":
            return f(x, w)
        return f(x.astype(jnp.float32), w.astype(jnp.float32)).astype(x.dtype)  # auto's widening

    def run(x, w, g, method):
        y, vjp = jax.vjp(functools.partial(layer, method=method), x, w)
        return y, *vjp(g)

    auto = jax.jit(functools.partial(run, method="auto"))(x, w, g)
    chosen = jax.jit(functools.partial(run, method=method))(x, w, g)
    for a, b in zip(auto, chosen):
        assert a.dtype == b.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


FIXTURES = ROOT / "tests" / "fixtures" / "h100_hlo"


@pytest.mark.parametrize(
    "name, layer, clean, kernels",
    [
        ("sam_up1_adjoint_weight_gradient", "sam_up1", True, ["bw-filter 2x2"]),
        ("sam_up1_lhs_dilated_weight_gradient", "sam_up1", False, ["forward 64x64"]),
        ("kokoro_adjoint_weight_gradient", "kokoro", False, ["forward 511"]),
        ("unetr_matmul_input_gradient", "unetr", True, ["gemm"]),
    ],
)
def test_gpu_structure_reads_recorded_h100_programs(name, layer, clean, kernels):
    """The structure check on XLA:GPU programs recorded from an H100 compile: it tells a
    backward-filter weight gradient from one whose window is the whole image (with
    zero-stuffing, for a depthwise layer's grouped ``adjoint``)."""
    zoo_layer = next(z for z in ZOO if z.name == layer)
    structure = gpu_structure((FIXTURES / f"{name}.txt").read_text(), zoo_layer)
    assert structure["kernels"] == kernels
    assert is_clean(structure) == clean
    if name.startswith("kokoro"):
        assert structure["interior_pads"] == 1 and not structure["windows_ok"]


def _cuda_plugin_installed() -> bool:
    return (
        importlib.util.find_spec("jax_plugins") is not None
        and importlib.util.find_spec("jax_plugins.xla_cuda13") is not None
    )


@pytest.mark.skipif(
    not _cuda_plugin_installed(),
    reason="jax's CUDA plugin is not installed (../shared/tools/accelerator-aot.sh builds it)",
)
def test_zoo_is_clean_on_an_h100_target(tmp_path):
    """Every zoo layer's forward, input gradient and weight gradient under ``auto``,
    compiled for an H100 from this host: cuDNN/cuBLAS kernels with the kernel's window,
    no zero-stuffing, no buffer above 2x the largest operand."""
    env = dict(
        os.environ,
        JAX_SKIP_CUDA_CONSTRAINTS_CHECK="1",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks")]),
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "accelerators.py"),
            "gpu",
            "--methods",
            "auto",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "accelerators_gpu.json").read_text())["rows"]
    assert len(rows) == len(ZOO)
    assert [row["layer"] for row in rows if not row["clean"]] == []


def _small(layer):
    """The zoo layer with few channels and a short input in float64 (same kernel, stride,
    crop, groups structure and layout)."""
    n, c_in, *spatial = layer.x_shape
    depthwise = layer.groups == c_in
    c = 4 if depthwise else min(c_in, 6)
    groups = c if depthwise else 1
    c_out = c if depthwise else min(layer.c_out, 5)
    return dataclasses.replace(
        layer, x_shape=(2, c, *[3] * len(spatial)), c_out=c_out, groups=groups, dtype="float64"
    )


@pytest.mark.parametrize("layer", ZOO, ids=lambda layer: layer.name)
def test_gpu_benchmark_computes_the_layer(layer):
    """benchmarks/gpu.py's competitors (torch's call, run here on the CPU;
    ``jax.lax.conv_transpose``; the interior-pad form) compute the zoo layer, values and
    gradients, against the definition."""
    gpu = pytest.importorskip("gpu")  # benchmarks/gpu.py imports torch
    small = _small(layer)
    spec = small.spec()
    rng = np.random.default_rng(2)
    x, w = randn(rng, small.input_shape, "float64"), randn(rng, small.w_shape, "float64")
    b = randn(rng, (small.c_out,), "float64")
    g = randn(rng, spec.output_shape(small.input_shape, small.w_shape), "float64")
    want = reference_conv_transpose(x, w, spec, b)
    want_x, want_w, _ = reference_vjp(x, w, spec, g)
    forward, forward_backward = gpu.torch_runners(small, [x, w, b, g], device="cpu")
    to_layout = (
        (lambda t: np.moveaxis(t.detach().numpy(), 1, -1))
        if small.channels_last
        else (lambda t: t.detach().numpy())
    )
    assert_close(to_layout(forward()), want, "float64")
    grad_x, grad_w = forward_backward()
    assert_close(to_layout(grad_x), want_x, "float64")
    assert_close(grad_w.numpy(), want_w, "float64")
    for name in ("lax", "interior_pad"):
        f = functools.partial(gpu.JAX_FUNCTIONS[name], layer=small)
        y, vjp = jax.vjp(f, x, w, b)
        grad_x, grad_w, _ = vjp(g)
        assert_close(y, want, "float64")
        assert_close(grad_x, want_x, "float64")
        assert_close(grad_w, want_w, "float64")


RESULTS = ROOT / "benchmarks" / "results"


@pytest.mark.parametrize("name", ["accelerators_gpu.md", "accelerators_tpu.md"])
def test_docs_show_the_recorded_reports(name):
    """docs/accelerators.md shows the reports as recorded (``accelerators.py`` writes
    both)."""
    page = (ROOT / "docs" / "accelerators.md").read_text()
    assert embedded(page, name) == (RESULTS / name).read_text().strip()


def test_recorded_gpu_report_is_today_s_gpu_rule():
    """The recorded H100 report was made with the GPU rules of this checkout (change a
    rule, compile the zoo again), and found every layer clean."""
    rows = json.loads((RESULTS / "accelerators_gpu.json").read_text())["rows"]
    auto = {row["layer"]: row for row in rows if row["method"] == "auto"}
    assert set(auto) == {layer.name for layer in ZOO}
    for layer in ZOO:
        chosen = choose_method(layer.spec(), layer.w_shape, "gpu", layer.input_shape)
        assert auto[layer.name]["chosen"] == chosen, layer.name
        assert auto[layer.name]["clean"] and auto[layer.name]["same_as_gpu_host"], layer.name


# Where the TPU's rules are more than 10% from the best estimate: (generation, layer,
# "forward" or "forward+backward"). Each is explained in docs/accelerators.md; a rule
# change that fixes or adds one must update this set.
TPU_MISSES = {
    # YOLO's k2 s2 layer: phase_gemm's forward is estimated 0.8x the lhs-dilated one,
    # which is the best forward on the other k2 s2 layers (phase_gemm there 1.1-2.7x)
    ("v6e", "yolo_proto", "forward"),
    ("v6e", "yolo_proto", "forward+backward"),
    ("v5e", "yolo_proto", "forward"),
    ("v5e", "yolo_proto", "forward+backward"),
    # Kokoro: phase_conv's forward 0.83x the lhs-dilated one; on Mimi, the other
    # depthwise layer, phase_conv's is 2.9x slower
    ("v6e", "kokoro", "forward"),
    ("v5e", "kokoro", "forward"),
    # v5e: libtpu gives no estimate for tapsum's weight gradient on Kokoro
    ("v5e", "kokoro", "forward+backward"),
}


def test_tpu_rules_within_10_percent_of_the_best_estimate():
    """On every recorded layer, the TPU's choice is within 10% of the best forward and of
    the best forward + backward the lowerings and their pairs reach, by the TPU
    compiler's own estimates (v6e and v5e), except where documented."""
    rows = json.loads((RESULTS / "accelerators_tpu.json").read_text())["rows"]
    misses, checked = set(), 0
    for generation in {row["generation"] for row in rows}:
        for layer, estimates in recorded_layers(rows, generation):
            chosen = choose_method(layer.spec(), layer.w_shape, "tpu", layer.input_shape)
            ratio_f, ratio_fb = choice_ratios(estimates, chosen)
            if ratio_f > 1.1:
                misses.add((generation, layer.name, "forward"))
            if ratio_fb > 1.1 or ratio_fb < 0:  # negative: no estimate for the choice
                misses.add((generation, layer.name, "forward+backward"))
            checked += 1
    assert checked >= 20
    assert misses == TPU_MISSES
