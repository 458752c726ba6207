"""``method="auto"``: its rules as one table (`convt.auto`), the docs generated from
it, and the choices it makes on layers whose measurements chose them."""

import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from convt import ConvTransposeSpec, auto, choose_method, conv_transpose, lowering

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_docs_print_the_rules():
    """docs/lowerings.md holds `convt.auto.rules_markdown()` (tools/docs_tables.py)."""
    page = (ROOT / "docs" / "lowerings.md").read_text()
    start = page.index("<!-- auto_rules -->\n") + len("<!-- auto_rules -->\n")
    assert page[start : page.index("<!-- end -->", start)].strip() == (
        auto.rules_markdown().strip()
    ), "run: python tools/docs_tables.py"


def test_every_table_names_lowerings_and_ends_in_a_default():
    for platform, directions in auto.RULES.items():
        for direction, rules in directions.items():
            assert all(rule.method in lowering.LOWERINGS for rule in rules)
            assert rules[-1].condition.startswith("otherwise"), (platform, direction)
            assert all(rule.reason and rule.source for rule in rules)


def _layers():
    """A grid of layers: every feature the rules read, on and off."""
    for ndim, stride, kernel, groups, c_in_g, c_out_g, dilation, layout, batch in itertools.product(
        (1, 2, 3),
        (1, 2, 40),
        (1, 2, 3, 4),
        (1, 4),
        (1, 16),
        (3, 64),
        (1, 2),
        ("channels_first", "channels_last"),
        (1, 16),
    ):
        spec = ConvTransposeSpec.create(
            ndim, stride=stride, dilation=dilation, groups=groups, layout=layout
        )
        spatial = (16,) * ndim
        c_in = c_in_g * groups
        shape = (batch, c_in, *spatial) if layout == "channels_first" else (batch, *spatial, c_in)
        yield spec, (c_in, c_out_g, *(kernel,) * ndim), shape
    for stride, kernel in ((1, 129), (128, 256), (16, 256)):  # many taps (auto.MAX_TAPS)
        yield ConvTransposeSpec.create(1, stride=stride), (4, 4, kernel), (1, 4, 16)


def test_no_rule_is_dead():
    """Every rule is the first match for some layer (a rule shadowed by those before it
    would be a copy that can drift)."""
    used = set()
    for spec, weight_shape, input_shape in _layers():
        layer = auto.features(spec, weight_shape, input_shape)
        for platform, directions in auto.RULES.items():
            for direction, rules in directions.items():
                used.add((platform, direction, auto.first_rule(rules, layer).condition))
    every = {
        (platform, direction, rule.condition)
        for platform, directions in auto.RULES.items()
        for direction, rules in directions.items()
        for rule in rules
        if "stride phases" not in rule.condition  # needs a stride above 32 per axis
    }
    assert every <= used, every - used


def test_too_many_phases_and_gaps():
    spec = ConvTransposeSpec.create(2, stride=(64, 32))
    assert choose_method(spec, (2, 3, 65, 33), "cpu") == "lhs_dilated"
    assert choose_method(spec, (2, 3, 65, 33), "tpu") == "lhs_dilated"
    assert choose_method(spec, (2, 3, 65, 33), "cuda") == "adjoint"
    for backend in ("cpu", "gpu", "tpu"):
        assert choose_method(spec, (2, 3, 3, 3), backend) == "matmul"


def test_many_taps():
    """Beyond `auto.MAX_TAPS` taps the CPU runs a form whose program does not grow with
    them: one convolution when unstrided, `matmul`'s few shifted stamps for 1-D layers
    whose stamps span at most `auto.MAX_STAMP_STRIDES` strides; the other platforms'
    choices are unchanged."""
    one_d = ConvTransposeSpec.create(1, stride=256, crop=128)
    assert choose_method(one_d, (64, 32, 512), "cpu", (4, 64, 256)) == "matmul"
    assert choose_method(one_d, (64, 32, 1024), "cpu", (4, 64, 256)) == "matmul"
    assert choose_method(one_d, (64, 32, 1025), "cpu", (4, 64, 256)) == "phase_gemm"
    assert choose_method(one_d, (64, 32, 128), "cpu", (4, 64, 256)) == "matmul"  # k < s
    not_beyond = ConvTransposeSpec.create(1, stride=64)  # 128 taps: not beyond
    assert choose_method(not_beyond, (64, 32, 128), "cpu", (4, 64, 256)) == "phase_gemm"
    depthwise = ConvTransposeSpec.create(1, stride=128, groups=64)
    assert choose_method(depthwise, (64, 1, 256), "cpu", (4, 64, 256)) == "matmul"
    assert choose_method(depthwise, (64, 1, 256), "tpu", (4, 64, 256)) == "lhs_dilated/tapsum"
    unstrided = ConvTransposeSpec.create(2, crop=15, groups=64)
    assert choose_method(unstrided, (64, 1, 31, 31), "cpu", (1, 64, 32, 32)) == "lhs_dilated"
    assert choose_method(unstrided, (64, 1, 11, 11), "cpu", (1, 64, 32, 32)) == (
        "tapsum/tapsum_adjoint"
    )
    two_d = ConvTransposeSpec.create(2, stride=8)  # the phase forms won: one per phase
    assert choose_method(two_d, (16, 16, 16, 16), "cpu", (4, 16, 32, 32)) == "phase/phase_gemm"


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU's rule")
def test_auto_multiplies_half_precision_in_float32_on_cpu():
    """XLA's CPU GEMM is faster in float32: "auto" widens bfloat16 operands, multiplies
    in float32 and rounds once, returning (and differentiating in) bfloat16."""
    spec = ConvTransposeSpec.create(2, stride=2, crop=1)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 16, 5, 5)), jnp.bfloat16)
    w = jnp.asarray(rng.standard_normal((16, 8, 4, 4)), jnp.bfloat16)
    method = choose_method(spec, w.shape, "cpu", x.shape)
    y = conv_transpose(x, w, spec=spec)
    assert y.dtype == jnp.bfloat16
    f32 = jnp.float32
    wide = conv_transpose(x.astype(f32), w.astype(f32), spec=spec, method=method)
    np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(wide.astype(y.dtype), f32))
    # bfloat16 products round differently, so the check above can fail
    narrow = conv_transpose(x, w, spec=spec, method=method)
    assert not np.array_equal(np.asarray(narrow, f32), np.asarray(y, f32))
    grads = jax.grad(lambda x, w: conv_transpose(x, w, spec=spec).astype(f32).sum(), (0, 1))(x, w)
    assert [g.dtype for g in grads] == [jnp.bfloat16, jnp.bfloat16]
    assert conv_transpose(x, w, spec=spec, preferred_element_type=f32).dtype == f32


def test_auto_choice_on_cpu():
    s2 = ConvTransposeSpec.create(2, stride=2)
    s3 = ConvTransposeSpec.create(3, stride=2)
    assert choose_method(s2, (8, 4, 2, 2), "cpu") == "matmul/phase_gemm"
    assert choose_method(s2, (8, 4, 4, 4), "cpu") == "phase/phase_gemm"  # few channels
    # U-Net (k == s): the GEMM forward, phase_gemm's backward
    assert choose_method(s2, (256, 128, 2, 2), "cpu", (4, 256, 32, 32)) == "matmul/phase_gemm"
    assert choose_method(s3, (128, 64, 2, 2, 2), "cpu", (1, 128, 12, 12, 12)) == "matmul/phase_gemm"
    # col2im's products 1.6x the windows: phase_gemm's im2col copies less (DCGAN 128->64)
    assert choose_method(s2, (128, 64, 4, 4), "cpu", (16, 128, 16, 16)) == "phase/phase_gemm"
    assert choose_method(s2, (512, 256, 4, 4), "cpu", (16, 512, 4, 4)) == "col2im"  # DCGAN
    # products 0.97x the windows (batch 1): past col2im's 0.9
    assert choose_method(s2, (256, 128, 4, 4), "cpu", (1, 256, 32, 32)) == "phase/phase_gemm"
    assert choose_method(s2, (256, 128, 4, 4), "cpu", (16, 256, 8, 8)) == "col2im"  # 0.88x
    assert choose_method(s2, (128, 3, 4, 4), "cpu", (16, 128, 32, 32)) == "col2im"  # 0.09x
    # 3 output channels: col2im only at 0.25x the windows (FSRCNN 0.43x)
    fsrcnn = ConvTransposeSpec.create(2, stride=3, crop=((4, 2), (4, 2)))
    assert choose_method(fsrcnn, (56, 3, 9, 9), "cpu", (1, 56, 48, 48)) == "phase/phase_gemm"
    assert choose_method(s3, (8, 4, 4, 4, 4), "cpu") == "phase_gemm"
    s1 = ConvTransposeSpec.create(1, stride=4)
    assert choose_method(s1, (8, 4, 8), "cpu") == "phase_gemm"
    assert choose_method(s1, (512, 256, 16), "cpu", (2, 512, 128)) == "col2im"  # HiFi-GAN
    grouped = ConvTransposeSpec.create(2, stride=2, groups=2)
    assert choose_method(grouped, (8, 4, 4, 4), "cpu") == "phase_gemm"
    assert choose_method(grouped, (8, 4, 2, 2), "cpu") == "matmul"
    unstrided = ConvTransposeSpec.create(2, stride=1, crop=1)
    assert choose_method(unstrided, (8, 4, 3, 3), "cpu") == "lhs_dilated"
    assert choose_method(unstrided, (64, 64, 3, 3), "cpu", (8, 64, 32, 32)) == "col2im"
    # depthwise: tapsum's shifted products forward (channels first too: contiguous
    # windows, no re-layout); backward the adjoint's strided windows where 1-D or
    # unstrided, phase_gemm's weight gradient on strided 2-D layers
    depthwise1 = ConvTransposeSpec.create(2, stride=1, groups=8)
    assert choose_method(depthwise1, (8, 1, 3, 3), "cpu") == "tapsum/tapsum_adjoint"
    depthwise = ConvTransposeSpec.create(2, stride=2, groups=8)
    assert choose_method(depthwise, (8, 1, 4, 4), "cpu") == "tapsum/phase_gemm"
    mimi = ConvTransposeSpec.create(1, stride=2, groups=512)
    assert choose_method(mimi, (512, 1, 4), "cpu", (4, 512, 100)) == "tapsum/tapsum_adjoint"
    # kernel == stride, small: the GEMM forward, phase_gemm's GEMMs backward (SAM)
    k2s2 = ConvTransposeSpec.create(2, stride=2)
    assert choose_method(k2s2, (256, 64, 2, 2), "cpu", (1, 256, 64, 64)) == "matmul/phase_gemm"
    assert choose_method(s2, (8, 4, 4, 4), "gpu") == "adjoint"
    # col2im's product tensor past COL2IM_LIMIT_BYTES (memory, caches): the phase forms
    assert choose_method(s2, (16, 8, 4, 4), "cpu", (4, 16, 256, 256)) == "phase/phase_gemm"
    assert choose_method(s3, (64, 32, 4, 4, 4), "cpu", (1, 64, 24, 24, 24)) == "phase_gemm"
    # a 4x4 kernel on a 1x1 latent (DCGAN's first layer): the GEMM, not a convolution
    s_one = ConvTransposeSpec.create(2)
    assert choose_method(s_one, (100, 512, 4, 4), "cpu", (16, 100, 1, 1)) == "col2im"


def test_auto_choice_on_cpu_channels_last():
    """Channels-last inputs keep the rules measured before phase_gemm's flat windows."""

    def last(ndim, **kwargs):
        return ConvTransposeSpec.create(ndim, layout="channels_last", **kwargs)

    depthwise = last(2, stride=2, groups=8)
    assert choose_method(depthwise, (8, 1, 4, 4), "cpu") == "tapsum"
    mimi = last(1, stride=2, groups=512)
    assert choose_method(mimi, (512, 1, 4), "cpu", (4, 100, 512)) == "tapsum"
    # one sequence: tapsum's transposes compile slowly (Kokoro, channels last)
    kokoro = last(1, stride=2, crop=((1, 0),), groups=1090)
    assert choose_method(kokoro, (1090, 1, 3), "cpu", (1, 256, 1090)) == "tapsum/tapsum_adjoint"
    assert choose_method(kokoro, (1090, 1, 3), "cpu", (2, 256, 1090)) == "tapsum"
    assert choose_method(last(2, stride=2, groups=8), (8, 1, 4, 4), "cpu", (1, 8, 8, 8)) == "tapsum"
    s3 = last(3, stride=2)
    assert choose_method(s3, (64, 32, 4, 4, 4), "cpu", (1, 24, 24, 24, 64)) == "phase/phase_gemm"
    assert choose_method(s3, (64, 32, 4, 4, 4), "cpu", (1, 12, 12, 12, 64)) == "phase_gemm/col2im"
    s2 = last(2, stride=2)
    assert choose_method(s2, (128, 64, 4, 4), "cpu", (16, 16, 16, 128)) == "phase/phase_gemm"
    assert choose_method(s2, (512, 256, 4, 4), "cpu", (16, 4, 4, 512)) == "col2im"
