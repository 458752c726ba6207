"""Algebraic properties, shapes, and jit / vmap / grad composition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import convt.torch as ct
from convt import ConvTransposeSpec, conv_transpose
from convt.spec import full_length
from helpers import assert_close, randn, reference_conv_transpose
from test_lowering import specs


@given(case=specs())
def test_output_shape_formula(case):
    spec, x_shape, w_shape = case
    y = jax.eval_shape(
        lambda x, w: conv_transpose(x, w, spec=spec),
        jax.ShapeDtypeStruct(x_shape, jnp.float32),
        jax.ShapeDtypeStruct(w_shape, jnp.float32),
    )
    assert y.shape == spec.output_shape(x_shape, w_shape)
    spatial = [x_shape[a] for a in spec.spatial_axes]
    for o, n, k, s, d, (lo, hi) in zip(
        [y.shape[a] for a in spec.spatial_axes],
        spatial,
        w_shape[2:],
        spec.stride,
        spec.dilation,
        spec.crop,
    ):
        assert o == (n - 1) * s + d * (k - 1) + 1 - lo - hi == full_length(n, k, s, d) - lo - hi


@given(
    n=st.integers(1, 8),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
    p=st.integers(0, 4),
    seed=st.integers(0, 1000),
)
def test_adjoint_of_forward_convolution(n, k, s, d, p, seed):
    """<conv(z), x> == <z, conv_transpose(x)> for the matching strided convolution."""
    full = (n - 1) * s + d * (k - 1) + 1
    lo, hi = min(p, (full - 1) // 2), min(p, (full - 1) // 2)
    spec = ConvTransposeSpec(stride=(s,), dilation=(d,), crop=((lo, hi),))
    out_len = full - lo - hi
    rng = np.random.default_rng(seed)
    w = randn(rng, (3, 2, k), "float64")
    x = randn(rng, (1, 3, n), "float64")
    z = randn(rng, (1, 2, out_len), "float64")
    # forward conv of z with w (O=3, I=2): output length must be n
    conv_z = lax.conv_general_dilated(
        z,
        w,
        (s,),
        [(lo, hi + (n - 1) * s + d * (k - 1) + 1 - lo - hi - out_len)],
        rhs_dilation=(d,),
        dimension_numbers=("NCH", "OIH", "NCH"),
    )
    assert conv_z.shape == x.shape
    lhs = float(jnp.vdot(conv_z, x))
    rhs = float(jnp.vdot(z, conv_transpose(x, w, spec=spec)))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


@given(case=specs(), seed=st.integers(0, 1000))
def test_linearity(case, seed):
    """Linear in x and in w, and equal to the definition (so a zero map fails)."""
    spec, x_shape, w_shape = case
    rng = np.random.default_rng(seed)
    x1, x2 = randn(rng, x_shape, "float64"), randn(rng, x_shape, "float64")
    w1, w2 = randn(rng, w_shape, "float64"), randn(rng, w_shape, "float64")

    @jax.jit
    def outputs(x1, x2, w1, w2):
        f = lambda x, w: conv_transpose(x, w, spec=spec)  # noqa: E731
        return f(2.5 * x1 - x2, w1), f(x1, w1), f(x2, w1), f(x1, w1 + 3 * w2), f(x1, w2)

    mixed_x, y11, y21, mixed_w, y12 = outputs(x1, x2, w1, w2)
    assert_close(y11, reference_conv_transpose(x1, w1, spec), "float64")
    assert_close(mixed_x, 2.5 * y11 - y21, "float64", 10)
    assert_close(mixed_w, y11 + 3 * y12, "float64", 10)


def layer():
    rng = np.random.default_rng(0)
    x = jnp.asarray(randn(rng, (3, 4, 5, 6)))
    w = jnp.asarray(randn(rng, (4, 3, 4, 3)))
    b = jnp.asarray(randn(rng, (6,)))
    kw = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))
    return x, w, b, kw


def test_jit_equals_eager_and_nested_jit():
    x, w, b, kw = layer()
    eager = ct.conv_transpose2d(x, w, b, **kw)
    jitted = jax.jit(lambda x, w, b: ct.conv_transpose2d(x, w, b, **kw))(x, w, b)
    assert_close(jitted, eager)
    with jax.disable_jit():
        assert_close(ct.conv_transpose2d(x, w, b, **kw), eager)


def test_vmap_over_batch_and_weight_equals_loop():
    x, w, b, kw = layer()
    xs = jnp.stack([x, 2 * x + 1])
    ws = jnp.stack([w, -w * 0.5 + 0.1])
    f = lambda x, w: ct.conv_transpose2d(x, w, b, **kw)  # noqa: E731
    got = jax.vmap(f)(xs, ws)
    for i in range(2):
        assert_close(got[i], f(xs[i], ws[i]))
    got_w = jax.vmap(f, in_axes=(None, 0))(x, ws)
    for i in range(2):
        assert_close(got_w[i], f(x, ws[i]))
    # vmap over unbatched examples is a batch
    got_u = jax.vmap(lambda xi: ct.conv_transpose2d(xi, w, b, **kw))(x)
    assert_close(got_u, f(x, w))


@pytest.mark.parametrize("method", ["lhs_dilated", "phase", "auto"])
def test_grad_wrt_input_weight_bias(method):
    x, w, b, kw = layer()

    def loss(x, w, b):
        return jnp.sum(jnp.sin(ct.conv_transpose2d(x, w, b, **kw, method=method)))

    gx, gw, gb = jax.jit(jax.grad(loss, (0, 1, 2)))(x, w, b)
    y = ct.conv_transpose2d(x, w, b, **kw)
    assert_close(gb, jnp.cos(y).sum(axis=(0, 2, 3)), "float32", 10)
    # finite-difference check of one weight entry in float64
    x64, w64, b64 = (a.astype(jnp.float64) for a in (x, w, b))
    g64 = jax.grad(loss, 1)(x64, w64, b64)
    e = jnp.zeros_like(w64).at[1, 2, 3, 1].set(1e-6)
    fd = (loss(x64, w64 + e, b64) - loss(x64, w64 - e, b64)) / 2e-6
    assert abs(float(g64[1, 2, 3, 1]) - float(fd)) < 1e-6 * max(1.0, abs(float(fd)))
    assert gx.shape == x.shape and gw.shape == w.shape


def test_spec_is_static_and_hashable():
    a = ConvTransposeSpec.create(2, stride=2, crop=1)
    b = ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=[[1, 1], [1, 1]])
    assert a == b and hash(a) == hash(b)
    assert a.output_shape((1, 3, 4, 4), (3, 5, 4, 4)) == (1, 5, 8, 8)
    cl = ConvTransposeSpec.create(2, stride=2, crop=1, layout="channels_last")
    assert cl.output_shape((1, 4, 4, 3), (3, 5, 4, 4)) == (1, 8, 8, 5)


def test_four_spatial_axes():
    spec = ConvTransposeSpec.create(4, stride=2, crop=(0, 1, (1, 0), (-1, 2)))
    rng = np.random.default_rng(1)
    x, w = randn(rng, (1, 2, 2, 3, 2, 3), "float64"), randn(rng, (2, 1, 2, 3, 2, 3), "float64")
    want = conv_transpose(x, w, spec=spec, method="lhs_dilated")
    assert want.shape == spec.output_shape(x.shape, w.shape)
    assert_close(conv_transpose(x, w, spec=spec, method="phase"), want, "float64")
