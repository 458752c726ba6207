"""Front-end behaviour beyond the fixtures: seed examples, documented deviations,
chainerx's outsize rule, and jit / vmap / grad through every front-end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import convt.chainer as cc
import convt.chainerx as cx
import convt.megengine as cm
import convt.paddle as cp
import convt.torch as ct
from convt._frontend import conv_out_size
from helpers import assert_close, randn
from test_fixtures import load


def test_chainerx_seed_examples():
    x, w, b = jnp.ones((10, 3, 5, 10, 15)), jnp.ones((3, 1, 10, 10, 10)), jnp.ones((1,))
    kw = dict(stride=(2, 4, 6), pad=(5, 5, 5))
    assert cx.conv_transpose(x, w, b, **kw).shape == (10, 1, 8, 36, 84)
    assert cx.conv_transpose(x, w, b, **kw, outsize=(9, 38, 87)).shape == (10, 1, 9, 38, 87)
    assert cc.deconvolution_nd(x, w, b, **kw).shape == (10, 1, 8, 36, 84)
    assert cc.deconvolution_3d(x, w, b, **kw, outsize=(9, 38, 87)).shape == (10, 1, 9, 38, 87)


def test_paddle_seed_example():
    x = jnp.asarray([[[4, 0, 9, 7], [8, 0, 9, 2]]], jnp.float32)
    w = jnp.asarray([[[7, 0]], [[4, 2]]], jnp.float32)
    np.testing.assert_array_equal(
        np.asarray(cp.conv1d_transpose(x, w)), [[[60.0, 16.0, 99.0, 75.0, 4.0]]]
    )


def test_chainerx_against_chainer_fixtures():
    """chainerx computes what chainer computes; its outsize check is all-or-nothing."""
    meta, arrays = load("chainer")
    checked = rejected = 0
    for i, case in enumerate(meta["cases"]):
        kw = dict(case["kwargs"])
        if kw.pop("groups", 1) != 1 or any(np.atleast_1d(kw.pop("dilate", 1)) != 1):
            continue
        x, w, b = arrays[f"{i}/x"], arrays[f"{i}/w"], arrays.get(f"{i}/b")
        if "outsize" in kw:
            n, k = x.shape[2:], w.shape[2:]
            s = np.broadcast_to(kw["stride"], len(n))
            p = np.broadcast_to(kw["pad"], len(n))
            ok = any(
                all(
                    d == conv_out_size(l, kk, ss, pp, cover_all=c)
                    for d, l, kk, ss, pp in zip(n, kw["outsize"], k, s, p)
                )
                for c in (False, True)
            )
            if not ok:
                with pytest.raises(ValueError, match="outsize"):
                    cx.conv_transpose(x, w, b, **kw)
                rejected += 1
                continue
        assert_close(cx.conv_transpose(x, w, b, **kw), arrays[f"{i}/y"])
        checked += 1
    assert checked >= 50


def test_chainer_outsize_must_be_a_tuple():
    with pytest.raises(TypeError, match="outsize"):
        cc.deconvolution_nd(jnp.ones((1, 2, 5)), jnp.ones((2, 1, 3)), stride=2, pad=1, outsize=9)


def test_chainer_rejects_what_it_silently_mishandles():
    x, w = jnp.ones((1, 4, 5)), jnp.ones((4, 3, 3))
    with pytest.raises(ValueError, match="pad"):
        cc.deconvolution_nd(x, w, pad=-1)
    with pytest.raises(ValueError, match="dilate"):
        cc.deconvolution_nd(x, w, dilate=0)
    with pytest.raises(ValueError, match="dilation"):
        cp.conv1d_transpose(x, w, dilation=0)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("output_padding", [(1, 1), (0, 1), (1, 0)])
def test_megengine_follows_documented_formula(groups, output_padding):
    """Where megengine 1.13 crashes or ignores output_padding, convt follows its docs
    (torch's formula); checked against torch."""
    rng = np.random.default_rng(0)
    x = randn(rng, (2, 4, 5, 4))
    w_mge = randn(rng, (groups, 4 // groups, 3, 3, 3)) if groups > 1 else randn(rng, (4, 3, 3, 3))
    w_torch = w_mge.reshape(4, 3, 3, 3)
    bias = randn(rng, (1, 3 * groups, 1, 1))
    kw = dict(stride=(2, 3), padding=(1, 1), dilation=(1, 2))
    got = cm.conv_transpose2d(x, w_mge, bias, **kw, output_padding=output_padding, groups=groups)
    ref = torch.nn.functional.conv_transpose2d(
        torch.tensor(x),
        torch.tensor(w_torch),
        torch.tensor(bias.reshape(-1)),
        **kw,
        output_padding=output_padding,
        groups=groups,
    )
    assert_close(got, ref.numpy())
    # integer stride/padding with output_padding (megengine 1.13 raises TypeError)
    got_int = cm.conv_transpose2d(
        x, w_mge, None, stride=2, padding=1, output_padding=1, groups=groups
    )
    ref_int = torch.nn.functional.conv_transpose2d(
        torch.tensor(x),
        torch.tensor(w_torch),
        None,
        stride=2,
        padding=1,
        output_padding=1,
        groups=groups,
    )
    assert_close(got_int, ref_int.numpy())


def test_megengine_3d_grouped_and_unbatched():
    rng = np.random.default_rng(1)
    x = randn(rng, (4, 3, 3, 2))
    w = randn(rng, (2, 2, 3, 2, 2, 2))
    got = cm.conv_transpose3d(x, w, None, stride=2, output_padding=(1, 0, 1), groups=2)
    ref = torch.nn.functional.conv_transpose3d(
        torch.tensor(x),
        torch.tensor(w.reshape(4, 3, 2, 2, 2)),
        None,
        stride=2,
        output_padding=(1, 0, 1),
        groups=2,
    )
    assert_close(got, ref.numpy())


def test_megengine_compute_mode_and_errors():
    rng = np.random.default_rng(2)
    x, w = (
        jnp.asarray(randn(rng, (1, 4, 5, 5)), jnp.float16),
        jnp.asarray(randn(rng, (4, 3, 3, 3)), jnp.float16),
    )
    y = cm.conv_transpose2d(x, w, compute_mode="float32")
    assert y.dtype == jnp.float16
    assert_close(y, cm.conv_transpose2d(x.astype(jnp.float32), w.astype(jnp.float32)), "float16")
    with pytest.raises(ValueError, match="compute_mode"):
        cm.conv_transpose2d(x, w, compute_mode="fast")
    with pytest.raises(ValueError, match="bias"):
        cm.conv_transpose2d(x, w, jnp.ones((1, 3, 2, 1)))
    with pytest.raises(ValueError, match="groups"):
        cm.conv_transpose2d(x, jnp.ones((3, 2, 3, 3, 3)), groups=2)


def test_paddle_same_differs_from_doc_formula():
    """paddle's doc says (L + s - 1) / s for "SAME"; paddle (and convt) give otherwise."""
    x, w = jnp.ones((1, 1, 3)), jnp.ones((1, 1, 1))
    assert cp.conv1d_transpose(x, w, stride=2, padding="SAME").shape[-1] == 5
    x, w = jnp.ones((1, 1, 4)), jnp.ones((1, 1, 4))
    assert cp.conv1d_transpose(x, w, stride=2, padding="same", dilation=3).shape[-1] == 8


def every_frontend():
    rng = np.random.default_rng(5)
    x2 = jnp.asarray(randn(rng, (3, 4, 5, 5)))
    w2 = jnp.asarray(randn(rng, (4, 2, 3, 3)))
    x2l = jnp.moveaxis(x2, 1, -1)
    return {
        "torch": (
            lambda x, w: ct.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
            x2,
            w2,
        ),
        "chainer": (
            lambda x, w: cc.deconvolution_2d(x, w, stride=2, pad=1, outsize=(10, 9), groups=2),
            x2,
            w2,
        ),
        "chainerx": (
            lambda x, w: cx.conv_transpose(x, w, stride=2, pad=1, outsize=(10, 9)),
            x2,
            w2,
        ),
        "paddle": (
            lambda x, w: cp.conv2d_transpose(
                x, w, stride=2, padding="SAME", data_format="NHWC", groups=2
            ),
            x2l,
            w2,
        ),
        "megengine": (
            lambda x, w: cm.conv_transpose2d(
                x, w.reshape(2, 2, 2, 3, 3), stride=2, padding=1, groups=2
            ),
            x2,
            w2,
        ),
    }


@pytest.mark.parametrize("name", ["torch", "chainer", "chainerx", "paddle", "megengine"])
def test_jit_vmap_grad_through_frontend(name):
    f, x, w = every_frontend()[name]
    eager = f(x, w)
    assert_close(jax.jit(f)(x, w), eager)
    # vmap over a stack of batches and of weights equals a loop
    xs, ws = jnp.stack([x, 0.5 * x]), jnp.stack([w, -w])
    batched = jax.vmap(f)(xs, ws)
    for i in range(2):
        assert_close(batched[i], f(xs[i], ws[i]))
    gx, gw = jax.jit(jax.grad(lambda x, w: jnp.sum(f(x, w) ** 2), (0, 1)))(x, w)
    assert gx.shape == x.shape and gw.shape == w.shape
