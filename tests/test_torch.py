"""convt.torch against torch itself: values and gradients on random configurations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import convt.torch as ct
from helpers import assert_close, randn

FUNCS = {1: ct.conv_transpose1d, 2: ct.conv_transpose2d, 3: ct.conv_transpose3d}
TORCH = {
    1: torch.nn.functional.conv_transpose1d,
    2: torch.nn.functional.conv_transpose2d,
    3: torch.nn.functional.conv_transpose3d,
}


@st.composite
def torch_layers(draw, max_ndim=3):
    """A valid torch layer: parameters, shapes and a flag for unbatched input."""
    ndim = draw(st.integers(1, max_ndim))
    size_cap = {1: 9, 2: 6, 3: 4}[ndim]
    axes = []
    for _ in range(ndim):
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 3))
        n = draw(st.integers(1, size_cap))
        op = draw(st.integers(0, max(s, d) - 1))
        full = (n - 1) * s + d * (k - 1) + 1
        p_max = (full + op - 1) // 2  # output length >= 1
        p = draw(st.integers(0, max(0, min(p_max, d * (k - 1) + 1))))
        axes.append((k, s, d, n, op, p))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out_g = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2))
    k, s, d, n, op, p = (tuple(v) for v in zip(*axes))
    layer = dict(
        stride=s,
        padding=p,
        output_padding=op,
        groups=groups,
        dilation=d,
    )
    # scalars where all axes agree, as users write them
    for key in ("stride", "padding", "output_padding", "dilation"):
        if draw(st.booleans()) and len(set(layer[key])) == 1:
            layer[key] = layer[key][0]
    return dict(
        ndim=ndim,
        layer=layer,
        x_shape=(batch, c_in, *n),
        w_shape=(c_in, c_out_g, *k),
        bias=draw(st.booleans()),
        unbatched=draw(st.booleans()),
    )


def run_torch(cfg, x, w, b, g):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    y = TORCH[cfg["ndim"]](xt, wt, bt, **cfg["layer"])
    y.backward(torch.tensor(g))
    grads = [xt.grad.numpy(), wt.grad.numpy()] + ([] if b is None else [bt.grad.numpy()])
    return y.detach().numpy(), grads


def run_convt(cfg, x, w, b, g, **kwargs):
    """convt's output and VJP, in one ``jit`` (one compile per configuration)."""
    f = FUNCS[cfg["ndim"]]
    args = [jnp.asarray(x), jnp.asarray(w)] + ([] if b is None else [jnp.asarray(b)])

    @jax.jit
    def run(g, *args):
        def fn(*args):
            return f(*args[:2], args[2] if len(args) > 2 else None, **cfg["layer"], **kwargs)

        y, vjp = jax.vjp(fn, *args)
        return y, vjp(g)

    y, grads = run(jnp.asarray(g), *args)
    return np.asarray(y), [np.asarray(v) for v in grads]


def check_against_torch(cfg, dtype, seed, **kwargs):
    rng = np.random.default_rng(seed)
    x = randn(rng, cfg["x_shape"], dtype)
    if cfg["unbatched"]:
        x = x[0]
    w = randn(rng, cfg["w_shape"], dtype)
    b = randn(rng, (cfg["w_shape"][1] * cfg["layer"]["groups"],), dtype) if cfg["bias"] else None
    xt = torch.tensor(x)
    y_shape = TORCH[cfg["ndim"]](
        xt, torch.tensor(w), None if b is None else torch.tensor(b), **cfg["layer"]
    ).shape
    g = randn(rng, tuple(y_shape), dtype)
    y_ref, grads_ref = run_torch(cfg, x, w, b, g)
    y, grads = run_convt(cfg, x, w, b, g, **kwargs)
    assert y.dtype == np.dtype(dtype)
    assert_close(y, y_ref, dtype)
    for got, want in zip(grads, grads_ref):
        assert_close(got, want, dtype)


@given(cfg=torch_layers(), seed=st.integers(0, 2**31 - 1))
def test_matches_torch_float32(cfg, seed):
    check_against_torch(cfg, "float32", seed)


@given(cfg=torch_layers(), seed=st.integers(0, 2**31 - 1))
def test_matches_torch_float64(cfg, seed):
    check_against_torch(cfg, "float64", seed)


@given(
    cfg=torch_layers(),
    seed=st.integers(0, 2**31 - 1),
    method=st.sampled_from(["lhs_dilated", "phase"]),
)
def test_matches_torch_each_lowering(cfg, seed, method):
    check_against_torch(cfg, "float64", seed, method=method)


@pytest.mark.parametrize(
    "ndim, x_shape, w_shape, layer",
    [
        (2, (1, 16, 6, 6), (16, 16, 3, 3), dict(stride=2, padding=1)),
        (1, (2, 4, 5), (4, 3, 4), dict(stride=3, padding=2, dilation=2)),
        (3, (1, 2, 3, 2, 4), (2, 2, 2, 3, 2), dict(stride=(1, 2, 3), padding=(0, 1, 1))),
    ],
)
def test_output_size_matches_torch_module(ndim, x_shape, w_shape, layer):
    """``output_size`` as ``ConvTransposeNd.forward`` takes it, over its whole range."""
    rng = np.random.default_rng(0)
    x, w = randn(rng, x_shape), randn(rng, w_shape)
    module_cls = {
        1: torch.nn.ConvTranspose1d,
        2: torch.nn.ConvTranspose2d,
        3: torch.nn.ConvTranspose3d,
    }[ndim]
    m = module_cls(w_shape[0], w_shape[1], w_shape[2:], bias=False, **layer)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(w))
    base = m(torch.tensor(x)).shape[2:]
    stride = layer["stride"] if isinstance(layer["stride"], tuple) else (layer["stride"],) * ndim
    for extra in np.ndindex(*stride):
        size = [b + e for b, e in zip(base, extra)]
        ref = m(torch.tensor(x), output_size=size).detach().numpy()
        got = FUNCS[ndim](jnp.asarray(x), jnp.asarray(w), **layer, output_size=size)
        assert_close(got, ref)
        full = [x_shape[0], w_shape[1], *size]  # the form with batch and channels
        got_full = FUNCS[ndim](jnp.asarray(x), jnp.asarray(w), **layer, output_size=full)
        assert_close(got_full, ref)
    too_big = [b + s for b, s in zip(base, stride)]
    with pytest.raises(ValueError):
        m(torch.tensor(x), output_size=too_big)
    with pytest.raises(ValueError, match="output_size"):
        FUNCS[ndim](jnp.asarray(x), jnp.asarray(w), **layer, output_size=too_big)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_empty_batch_like_torch(ndim):
    """x (0, 4, 4, ...), w (4, 4, 3, ...), stride 2, padding 1: torch gives (0, 4, 7, ...)."""
    x = np.zeros((0, 4, *(4,) * ndim), np.float32)
    w = randn(np.random.default_rng(0), (4, 4, *(3,) * ndim))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = TORCH[ndim](xt, wt, stride=2, padding=1)
    yt.sum().backward()
    f = lambda x, w: FUNCS[ndim](x, w, stride=2, padding=1)  # noqa: E731
    y = f(x, w)
    gx, gw = jax.grad(lambda x, w: f(x, w).sum(), (0, 1))(x, w)
    assert y.shape == tuple(yt.shape) == (0, 4, *(7,) * ndim)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, wt.grad.numpy())  # zeros, as in torch


@pytest.mark.parametrize(
    "ndim, x_shape, w_shape, stride, padding, output_size",
    [
        (2, (1, 15, 13), (1, 1, 16, 16), 16, 7, [1, 240, 200]),  # from torch's own tests
        (2, (1, 15, 13), (1, 1, 16, 16), 16, 7, [240, 200]),
        (1, (2, 5), (2, 3, 4), 3, 1, [3, 15]),
        (3, (2, 3, 2, 3), (2, 1, 3, 2, 2), 2, 1, [1, 6, 3, 5]),
        (2, (2, 3, 5, 5), (3, 2, 3, 3), 2, 1, [2, 2, 10, 9]),
    ],
)
def test_output_size_with_non_spatial_sizes(ndim, x_shape, w_shape, stride, padding, output_size):
    """torch's module accepts the spatial sizes, or those led by the input's non-spatial
    sizes (channels for an unbatched input, batch and channels for a batched one)."""
    rng = np.random.default_rng(1)
    x, w = randn(rng, x_shape), randn(rng, w_shape)
    module = getattr(torch.nn, f"ConvTranspose{ndim}d")(
        w_shape[0], w_shape[1], w_shape[2:], stride=stride, padding=padding, bias=False
    )
    with torch.no_grad():
        module.weight.copy_(torch.tensor(w))
        want = module(torch.tensor(x), output_size=output_size).numpy()
    got = FUNCS[ndim](x, w, stride=stride, padding=padding, output_size=output_size)
    assert_close(got, want)


def test_torch_tensor_gets_a_conversion_hint():
    x, w = torch.ones(1, 2, 3, 3), torch.ones(2, 1, 2, 2)
    with pytest.raises(TypeError, match=r"input is a torch Tensor.*jnp\.asarray"):
        ct.conv_transpose2d(x, w)
    with pytest.raises(TypeError, match=r"weight is a torch Tensor"):
        ct.conv_transpose2d(jnp.ones((1, 2, 3, 3)), w)


def test_traced_stride_says_to_mark_it_static():
    x, w = jnp.ones((1, 2, 3, 3)), jnp.ones((2, 1, 2, 2))
    with pytest.raises(TypeError, match=r"static_argnames=\('stride',\)"):
        jax.jit(ct.conv_transpose2d)(x, w, None, 2)
    y = jax.jit(ct.conv_transpose2d, static_argnames=("stride",))(x, w, None, stride=2)
    assert y.shape == (1, 1, 6, 6)
