"""Every lowering equals the definition (an independent numpy scatter, helpers.py), values
and gradients, on random specs; one compile per example."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convt import ConvTransposeSpec, choose_method, conv_transpose, lowering
from helpers import (
    TOL,
    assert_close,
    randn,
    reference_conv_transpose,
    reference_vjp,
    xla_swap_hazard_axes,
)


@st.composite
def specs(draw, depthwise=False, nonoverlapping=False):
    ndim = draw(st.integers(1, 3))
    cap = {1: 7, 2: 5, 3: 3}[ndim]
    stride, dilation, kernel, n, crop = [], [], [], [], []
    for _ in range(ndim):
        s = draw(st.integers(1, 4))
        d = draw(st.integers(1, 3))
        # nonoverlapping: the dilated kernel within the stride (kernel == stride mostly)
        k = draw(st.sampled_from([s, s, 1 + (s - 1) // d])) if nonoverlapping else None
        d = 1 if nonoverlapping and k == s else d
        k = k if nonoverlapping else draw(st.integers(1, 5))
        m = draw(st.integers(1, cap))
        full = (m - 1) * s + d * (k - 1) + 1
        lo = draw(st.integers(-2, full - 1))
        hi = draw(st.integers(-2, full - lo - 1))
        stride.append(s), dilation.append(d), kernel.append(k), n.append(m), crop.append((lo, hi))
    groups = draw(st.integers(1, 3))
    c_in = groups if depthwise else groups * draw(st.integers(1, 2))
    layout = draw(st.sampled_from(["channels_first", "channels_last"]))
    spec = ConvTransposeSpec(
        stride=tuple(stride),
        dilation=tuple(dilation),
        crop=tuple(crop),
        groups=groups,
        layout=layout,
    )
    c_out_g = draw(st.integers(1, 3))
    x_shape = (
        (draw(st.integers(1, 2)), c_in, *n)
        if layout == "channels_first"
        else (draw(st.integers(1, 2)), *n, c_in)
    )
    return spec, x_shape, (c_in, c_out_g, *kernel)


def compare_with_reference(spec, x_shape, w_shape, method, seed, dtype="float64"):
    """``method``'s output and its VJP, in one ``jit``, against the numpy definition."""
    rng = np.random.default_rng(seed)
    x, w = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype)
    b = randn(rng, (w_shape[1] * spec.groups,), dtype)
    g = randn(rng, spec.output_shape(x_shape, w_shape), dtype)

    @jax.jit
    def run(x, w, b, g):
        f = lambda x, w, b: conv_transpose(x, w, b, spec=spec, method=method)  # noqa: E731
        y, vjp = jax.vjp(f, x, w, b)
        return (y, *vjp(g))

    got = run(x, w, b, g)
    want = [reference_conv_transpose(x, w, spec, b), *reference_vjp(x, w, spec, g)]
    for a, r in zip(got[:3], want[:3]):
        assert a.dtype == np.dtype(dtype)
        assert_close(a, r, dtype)
    # the bias gradient sums the cotangent over batch and space: its rounding error is
    # relative to the sum of magnitudes, which cancellation can leave far above |sum|
    assert got[3].dtype == np.dtype(dtype)
    channel = spec.channel_axis
    magnitude = np.abs(g).sum(axis=tuple(a for a in range(g.ndim) if a != channel)).max()
    assert np.abs(np.asarray(got[3], np.float64) - want[3]).max() <= TOL[dtype] * magnitude


# The layers each lowering applies to (the record's ``requires``) or is mostly run on;
# the others take any.
LAYERS_FOR = {
    "tapsum": specs(depthwise=True),
    "tapsum_adjoint": specs(depthwise=True),
    # the stamps side by side (the common case: one term per axis) or overlapping
    "matmul": st.one_of(specs(nonoverlapping=True), specs()),
}


@pytest.mark.parametrize("method", lowering.LOWERINGS)
@given(data=st.data(), seed=st.integers(0, 2**20))
def test_lowering_equals_definition(method, data, seed):
    """Every registered lowering: values and the three gradients against the numpy
    definition, float64."""
    case = data.draw(LAYERS_FOR.get(method, specs()))
    compare_with_reference(*case, method, seed)


SPLITS = [
    "col2im/phase",
    "phase_gemm/col2im",
    "lhs_dilated/phase_gemm",
    "phase/lhs_dilated",
    "phase_conv/adjoint",  # the GPU's choice for grouped and dilated layers
]


@pytest.mark.parametrize("method", SPLITS)
@given(case=specs(), seed=st.integers(0, 2**20))
def test_split_equals_definition(method, case, seed):
    """Values from one lowering, derivatives from another: both against the definition."""
    compare_with_reference(*case, method, seed)


# The lowerings whose records carry their own derivatives (custom JVPs)
CUSTOM = [name for name, record in lowering.LOWERINGS.items() if record.tangent_rule]


@pytest.mark.parametrize("method", [*CUSTOM, "col2im/phase_gemm", "phase_conv/adjoint"])
@given(data=st.data(), seed=st.integers(0, 2**20))
def test_forward_mode_equals_reference(method, data, seed):
    """The custom JVPs (`phase`, a split): jvp in both arguments, and jvp-of-grad
    (Hessian-vector products), against the lhs-dilated reference; one compile."""
    method_ = method
    spec, x_shape, w_shape = data.draw(LAYERS_FOR.get(method, specs()))
    rng = np.random.default_rng(seed)
    x, w, dx, dw = (randn(rng, s, "float64") for s in (x_shape, w_shape, x_shape, w_shape))

    @jax.jit
    def forward_mode(x, w, dx, dw):
        results = []
        for method in (method_, "lhs_dilated"):
            f = lambda x, w, m=method: conv_transpose(x, w, spec=spec, method=m)  # noqa: E731
            loss = lambda x, w, f=f: jnp.sum(jnp.sin(f(x, w)))  # noqa: E731
            y, dy = jax.jvp(f, (x, w), (dx, dw))
            hvp = jax.jvp(jax.grad(loss, 1), (x, w), (dx, dw))[1]
            results.append((y, dy, hvp))
        return results

    (y, dy, hvp), (y_ref, dy_ref, hvp_ref) = forward_mode(x, w, dx, dw)
    assert_close(y, reference_conv_transpose(x, w, spec), "float64")
    assert_close(y, y_ref, "float64")
    assert_close(dy, dy_ref, "float64")
    assert_close(hvp, hvp_ref, "float64", 10)


@pytest.mark.parametrize("method", [*CUSTOM, "phase_gemm/col2im"])
@given(data=st.data(), seed=st.integers(0, 2**20))
def test_one_argument_derivatives(method, data, seed):
    """Gradients and JVPs in one argument, the other a symbolic zero in the custom
    JVPs (`split`'s tangents with ``dx`` or ``dw`` absent), against the definition."""
    spec, x_shape, w_shape = data.draw(LAYERS_FOR.get(method, specs()))
    rng = np.random.default_rng(seed)
    x, w, dx, dw = (randn(rng, s, "float64") for s in (x_shape, w_shape, x_shape, w_shape))
    g = randn(rng, spec.output_shape(x_shape, w_shape), "float64")

    @jax.jit
    def run(x, w, g, dx, dw):
        f = lambda x, w: conv_transpose(x, w, spec=spec, method=method)  # noqa: E731
        grad_x = jax.vjp(lambda x: f(x, w), x)[1](g)[0]
        grad_w = jax.vjp(lambda w: f(x, w), w)[1](g)[0]
        tangent_x = jax.jvp(lambda x: f(x, w), (x,), (dx,))[1]
        tangent_w = jax.jvp(lambda w: f(x, w), (w,), (dw,))[1]
        return grad_x, grad_w, tangent_x, tangent_w

    grad_x, grad_w, tangent_x, tangent_w = run(x, w, g, dx, dw)
    want_x, want_w, _ = reference_vjp(x, w, spec, g)
    assert_close(grad_x, want_x, "float64")
    assert_close(grad_w, want_w, "float64")
    assert_close(tangent_x, reference_conv_transpose(dx, w, spec), "float64")
    assert_close(tangent_w, reference_conv_transpose(x, dw, spec), "float64")


@given(case=specs(), seed=st.integers(0, 2**20))
def test_auto_equals_definition_float32(case, seed):
    compare_with_reference(*case, "auto", seed, dtype="float32")


@pytest.mark.parametrize("method", lowering.LOWERINGS)
@given(data=st.data(), seed=st.integers(0, 2**20))
def test_float32_equals_definition(method, data, seed):
    """float32 through XLA's CPU kernels (whose float32 input gradients were wrong for
    convolutions padded beyond the kernel, as extending crops once made them)."""
    case = data.draw(LAYERS_FOR.get(method, specs()))
    compare_with_reference(*case, method, seed, dtype="float32")


@pytest.mark.parametrize(
    "method",
    [
        "lhs_dilated",
        "phase",
        "phase_gemm",
        "col2im",
        "tapsum",
        "tapsum_adjoint",
        "adjoint",
        "phase_conv",
        "auto",
    ],
)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_empty_batch(method, ndim):
    """A batch of 0 (torch gives (0, C_out, *out)); gradients too, every lowering."""
    spec = ConvTransposeSpec.create(ndim, stride=2, crop=1, groups=4)
    compare_with_reference(spec, (0, 4, *(4,) * ndim), (4, 1, *(3,) * ndim), method, 0)


@pytest.mark.parametrize(
    "method",
    ["lhs_dilated", "phase", "phase_gemm", "col2im", "matmul", "adjoint", "phase_conv", "auto"],
)
@pytest.mark.parametrize("groups", [1, 2])
def test_no_spatial_axes(method, groups):
    """Zero spatial axes: a (grouped) matrix product, as chainerx's own tests use it."""
    spec = ConvTransposeSpec(stride=(), dilation=(), crop=(), groups=groups)
    compare_with_reference(spec, (3, 4), (4, 5), method, 1)
    x, w = np.arange(8.0).reshape(2, 4), np.arange(20.0).reshape(4, 5)
    if groups == 1:
        np.testing.assert_allclose(conv_transpose(x, w, spec=spec, method=method), x @ w)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize(
    "method",
    [
        "lhs_dilated",
        "phase",
        "phase_gemm",
        "col2im",
        "matmul",
        "tapsum",
        "tapsum_adjoint",
        "adjoint",
        "phase_conv",
    ],
)
def test_low_precision(dtype, method):
    spec = ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=((0, 0), (0, 0)), groups=4)
    rng = np.random.default_rng(3)
    x, w = randn(rng, (2, 4, 5, 5)), randn(rng, (4, 2, 2, 2))
    want = conv_transpose(x, w, spec=spec, method="lhs_dilated")
    got = conv_transpose(jnp.asarray(x, dtype), jnp.asarray(w, dtype), spec=spec, method=method)
    assert got.dtype == jnp.dtype(dtype)
    assert_close(got, want, dtype)


def test_promotion_follows_jax():
    spec = ConvTransposeSpec.create(1, stride=2)
    x = jnp.ones((1, 2, 3), jnp.float32)
    w = jnp.ones((2, 1, 2), jnp.bfloat16)
    assert conv_transpose(x, w, spec=spec).dtype == jnp.promote_types(jnp.float32, jnp.bfloat16)
    y = conv_transpose(x, w, spec=spec, preferred_element_type=jnp.float64)
    assert y.dtype == jnp.float64


def test_method_errors():
    spec = ConvTransposeSpec.create(1, stride=2)
    x, w = jnp.ones((1, 2, 3)), jnp.ones((2, 1, 3))
    with pytest.raises(ValueError, match="method"):
        conv_transpose(x, w, spec=spec, method="fft")
    with pytest.raises(ValueError, match="depthwise"):
        conv_transpose(x, w, spec=spec, method="tapsum")
    with pytest.raises(ValueError, match="depthwise"):
        conv_transpose(x, w, spec=spec, method="phase/tapsum")
    with pytest.raises(ValueError, match="forward/backward"):
        conv_transpose(x, w, spec=spec, method="phase/col2im/matmul")
    with pytest.raises(TypeError, match="string"):
        conv_transpose(x, w, spec=spec, method=None)


def test_large_strides_trace_in_bounded_work():
    """A kernel smaller than the stride leaves gaps between the stamps: ``auto`` takes
    the matrix product (each stamp padded to the stride), whose program is the same size
    whatever the stride, on every platform; the stride-phase lowerings refuse more than
    `MAX_PHASES` phases instead of tracing them one by one; an output too large to
    allocate is refused before any work."""
    x, w = jnp.ones((1, 2, 5, 5)), jnp.ones((2, 3, 3, 3))

    def equations(stride):
        spec = ConvTransposeSpec.create(2, stride=stride, crop=1)
        for backend in ("cpu", "gpu", "tpu"):
            assert choose_method(spec, w.shape, backend, x.shape) == "matmul"
        f = lambda x, w: conv_transpose(x, w, spec=spec)  # noqa: E731
        return len(jax.make_jaxpr(jax.grad(lambda x, w: f(x, w).sum(), (0, 1)))(x, w).eqns)

    assert equations(8) == equations(4096)
    spec = ConvTransposeSpec.create(2, stride=64)
    with pytest.raises(ValueError, match="4096 of them"):
        conv_transpose(x, w, spec=spec, method="col2im")
    overlapping = ConvTransposeSpec.create(2, stride=(64, 32))
    big_kernel = jnp.ones((2, 3, 65, 33))
    assert choose_method(overlapping, big_kernel.shape, "cpu", x.shape) == "lhs_dilated"
    assert choose_method(overlapping, big_kernel.shape, "gpu", x.shape) == "adjoint"
    y = conv_transpose(x, big_kernel, spec=overlapping)
    assert y.shape == (1, 3, 4 * 64 + 65, 4 * 32 + 33)
    with pytest.raises(ValueError, match="TiB"):
        conv_transpose(
            jnp.ones((1, 1, 5, 5)),
            jnp.ones((1, 1, 3, 3)),
            spec=ConvTransposeSpec.create(2, stride=10**6),
        )


def test_many_taps_trace_in_bounded_work():
    """Beyond ``auto.MAX_TAPS`` taps, ``auto``'s CPU program does not grow with the
    kernel: `matmul` adds as many shifted stamps as a stamp spans strides (2 here at
    any kernel), and an unstrided layer is one convolution. The phase forms would trace
    every tap (docs/benchmarks.md: 12 s to compile a 512-tap kernel)."""
    x = jnp.ones((1, 4, 8))

    def equations(kernel, groups=1, stride=None):
        spec = ConvTransposeSpec.create(
            1, stride=kernel // 2 if stride is None else stride, groups=groups
        )
        w = jnp.ones((4, 4 // groups, kernel))
        f = lambda x, w: conv_transpose(x, w, spec=spec, method="auto")  # noqa: E731
        with jax.default_device(jax.devices("cpu")[0]):
            jaxpr = jax.make_jaxpr(jax.grad(lambda x, w: f(x, w).sum(), (0, 1)))(x, w)
        return len(jaxpr.eqns)

    for groups in (1, 4):
        assert equations(256, groups) == equations(2048, groups)
    assert equations(129, stride=1) == equations(999, stride=1)


@pytest.mark.parametrize(
    "stride, crop, kernel",
    [
        ((2, 2), ((1, 0), (1, 0)), (3, 3)),  # 9 taps: one slice and pad per piece
        ((2, 2, 2), ((1, 0),) * 3, (3, 3, 3)),  # 27 taps: one frame per phase
        ((2, 1), ((4, -2), (0, 5)), (5, 4)),  # 20 taps, crops some pieces never reach
        ((3,), ((7, 6),), (17,)),  # 1-D, 17 taps, most of the output cropped
    ],
)
def test_col2im_derivative_forms(stride, crop, kernel, monkeypatch):
    """`col2im`'s derivatives sum each phase's taps per piece up to ``FRAMED_TAPS``
    taps and in one padded frame beyond (`_framed_sum`): both against the definition
    (values, the three gradients), and the frame taken only where the kernel is
    larger."""
    from convt.lowering import _col2im

    n = len(kernel)
    spec = ConvTransposeSpec.create(n, stride=stride, crop=crop)
    x_shape, w_shape = (2, 3, *(5,) * n), (3, 2, *kernel)
    framed = []
    original = _col2im._framed_sum
    monkeypatch.setattr(_col2im, "_framed_sum", lambda *a: framed.append(1) or original(*a))
    jax.clear_caches()  # trace anew, through the patched module
    compare_with_reference(spec, x_shape, w_shape, "col2im", seed=7)
    assert bool(framed) == (np.prod(kernel) > _col2im.FRAMED_TAPS)
    # a 3-D k3 kernel's per-piece derivatives compiled for 7 s (docs/benchmarks.md)
    assert _col2im.FRAMED_TAPS < 27


@pytest.mark.parametrize(
    "layout, stride, crop, groups, x_shape, w_shape, channel_major",
    [
        ("channels_first", (2, 2), ((1, 0), (1, 0)), 1, (1, 4, 6, 5), (4, 3, 3, 3), True),
        ("channels_first", (2, 2), ((1, 1), (0, 2)), 2, (3, 4, 5, 6), (4, 2, 4, 4), True),
        (
            "channels_first",
            (3, 1, 2),
            ((0, 0), (1, 1), (1, 0)),
            1,
            (2, 2, 3, 4, 3),
            (2, 3, 2, 3, 3),
            True,
        ),
        ("channels_first", (4,), ((5, 6),), 1, (2, 3, 7), (3, 2, 3), True),  # empty phases
        ("channels_first", (2,), ((1, 1),), 1, (2, 3, 4), (3, 4, 4), False),  # weight > input
        ("channels_last", (2, 2), ((1, 0), (1, 0)), 1, (1, 6, 5, 4), (4, 3, 3, 3), False),
    ],
)
def test_col2im_channel_major_values(
    layout, stride, crop, groups, x_shape, w_shape, channel_major, monkeypatch
):
    """`col2im`'s values multiply channel-major for channels-first layers whose weight
    is no larger than the input (`_channel_major`) and channels-last otherwise: both
    against the definition (values and the three gradients, which keep the
    channels-last products), grouped, batched, 1-D to 3-D, with phases no tap
    reaches."""
    from convt.lowering import _col2im

    spec = ConvTransposeSpec.create(
        len(stride), stride=stride, crop=crop, groups=groups, layout=layout
    )
    taken = []
    original = _col2im.assemble_channels_first
    monkeypatch.setattr(
        _col2im,
        "assemble_channels_first",
        lambda *a, **k: taken.append(1) or original(*a, **k),
    )
    jax.clear_caches()  # trace anew, through the patched module
    compare_with_reference(spec, x_shape, w_shape, "col2im", seed=3)
    assert bool(taken) == channel_major


def test_hazard_axes():
    spec = ConvTransposeSpec(stride=(1, 2), dilation=(1, 1), crop=((1, 1), (1, 1)))
    assert xla_swap_hazard_axes(spec, (4, 2)) == (1,)
    assert xla_swap_hazard_axes(spec, (4, 3)) == ()


@given(spec_and_shapes=specs())
def test_lhs_dilated_pads_every_hazard_axis(spec_and_shapes):
    """Every axis XLA's operand swap could misread gets a nonzero low padding in
    ``lhs_dilated``'s convolution (and its weight gradient keeps it)."""
    spec, x_shape, w_shape = spec_and_shapes
    jaxpr = jax.make_jaxpr(lambda x, w: lowering.lhs_dilated(x, w, spec))(
        jnp.zeros(x_shape), jnp.zeros(w_shape)
    )
    (conv,) = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    for axis in xla_swap_hazard_axes(spec, w_shape[2:]):
        # a one-tap kernel is never larger than the input, so XLA never swaps it
        if w_shape[2 + axis] > 1:
            assert conv.params["padding"][axis][0] >= 1, (spec, w_shape)


@pytest.mark.parametrize("method", ["lhs_dilated", "phase", "phase_gemm", "col2im"])
@pytest.mark.parametrize("jit", [False, True])
def test_float32_input_gradient_with_padding_beyond_the_kernel(method, jit):
    """A crop that extends on the left (crop lo = -1 with a 2-tap phase kernel) once gave
    XLA's CPU backend a negative-padding input-gradient convolution, which it computed
    wrongly in float32 (found by flax's fixtures): compared with the numpy definition."""
    spec = ConvTransposeSpec(
        stride=(1, 3), dilation=(1, 1), crop=((-1, 1), (2, 2)), groups=1, layout="channels_last"
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 2, 1)).astype(np.float32)
    w = rng.standard_normal((1, 2, 2, 3)).astype(np.float32)
    g = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    want_gx, want_gw, _ = reference_vjp(x, w, spec, g)

    def vjp(x, w, g):
        return jax.vjp(lambda x, w: conv_transpose(x, w, spec=spec, method=method), x, w)[1](g)

    gx, gw = (jax.jit(vjp) if jit else vjp)(x, w, g)
    np.testing.assert_allclose(np.asarray(gx), want_gx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gw), want_gw, rtol=1e-4, atol=1e-5)
