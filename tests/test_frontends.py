"""Front-end behaviour beyond the fixtures: seed examples, documented deviations,
chainerx's outsize rule, and jit / vmap / grad through every front-end."""

import itertools

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
from convt import ConvTransposeSpec
from helpers import assert_close, randn, reference_conv_transpose
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


def chainerx_accepts(in_dims, kernel, stride, pad, outsize) -> bool:
    """chainerx's own decision, transcribed from ``chainerx_cc/chainerx/routines/
    connection.cc`` (``ConvTranspose`` and ``internal::GetConvOutDim``), independently of
    convt: sizes must be >= 0; ``cover_all`` is detected axis by axis with a
    ``GetConvOutDim`` that throws on a negative numerator; then every axis must agree."""

    def get_conv_out_dim(l, k, s, p, cover_all):
        numerator = l + 2 * p - k + (s - 1 if cover_all else 0)
        if numerator < 0:
            raise ArithmeticError("Output size should be positive.")
        return numerator // s + 1

    if any(l < 0 for l in outsize):
        return False
    try:
        cover_all = any(
            d != get_conv_out_dim(l, k, s, p, False)
            for d, l, k, s, p in zip(in_dims, outsize, kernel, stride, pad)
        )
        return all(
            d == get_conv_out_dim(l, k, s, p, cover_all)
            for d, l, k, s, p in zip(in_dims, outsize, kernel, stride, pad)
        )
    except ArithmeticError:
        return False


def test_chainerx_against_chainer_fixtures():
    """chainerx computes what chainer computes; whether it accepts an outsize is
    decided by chainerx's own rule (above), not by convt's."""
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
            if not chainerx_accepts(n, k, s, p, kw["outsize"]):
                with pytest.raises(ValueError, match="outsize"):
                    cx.conv_transpose(x, w, b, **kw)
                rejected += 1
                continue
        assert_close(cx.conv_transpose(x, w, b, **kw), arrays[f"{i}/y"])
        checked += 1
    assert checked >= 50 and rejected >= 1


def test_chainerx_outsize_rule_exhaustively():
    """convt's acceptance equals chainerx's on every small 2-axis configuration."""
    agree = 0
    for n0, n1, k, s0, s1, p in itertools.product(
        range(1, 4), range(1, 3), range(1, 4), range(1, 4), range(1, 3), range(0, 3)
    ):
        for l0, l1 in itertools.product(range(0, 11), range(0, 7)):
            want = chainerx_accepts((n0, n1), (k, k), (s0, s1), (p, p), (l0, l1))
            try:
                cx.to_spec(
                    2,
                    stride=(s0, s1),
                    pad=(p, p),
                    outsize=(l0, l1),
                    kernel_size=(k, k),
                    input_size=(n0, n1),
                )
                got = True
            except ValueError:
                got = False
            assert got == want, ((n0, n1), k, (s0, s1), p, (l0, l1))
            agree += 1
    assert agree > 10000


def test_chainerx_negative_numerator_is_rejected():
    """l + 2p - k < 0 on an axis: chainerx throws even though cover_all would hold there."""
    x, w = jnp.ones((1, 1, 1)), jnp.ones((1, 1, 3))
    with pytest.raises(ValueError, match="outsize"):
        cx.conv_transpose(x, w, stride=2, outsize=(2,))
    assert cc.deconvolution_nd(x, w, stride=2, outsize=(2,)).shape == (1, 1, 2)  # chainer: ok


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
    """Each front-end on a layer torch can express, with torch's parameters for it."""
    rng = np.random.default_rng(5)
    x2 = jnp.asarray(randn(rng, (3, 4, 5, 5)))
    w2 = jnp.asarray(randn(rng, (4, 2, 3, 3)))
    x2l = jnp.moveaxis(x2, 1, -1)
    return {
        "torch": (
            lambda x, w: ct.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
            x2,
            w2,
            dict(stride=2, padding=1, output_padding=1, groups=2),
        ),
        "chainer": (
            lambda x, w: cc.deconvolution_2d(x, w, stride=2, pad=1, outsize=(10, 9), groups=2),
            x2,
            w2,
            dict(stride=2, padding=1, output_padding=(1, 0), groups=2),
        ),
        "chainerx": (
            lambda x, w: cx.conv_transpose(x, w, stride=2, pad=1, outsize=(10, 9)),
            x2,
            w2,
            dict(stride=2, padding=1, output_padding=(1, 0)),
        ),
        "paddle": (
            lambda x, w: cp.conv2d_transpose(
                x, w, stride=2, padding="SAME", data_format="NHWC", groups=2
            ),
            x2l,
            w2,
            dict(stride=2, padding=1, groups=2),  # SAME: pads (1, 1) for n=5, k=3, s=2
        ),
        "megengine": (
            lambda x, w: cm.conv_transpose2d(
                x, w.reshape(2, 2, 2, 3, 3), stride=2, padding=1, groups=2
            ),
            x2,
            w2,
            dict(stride=2, padding=1, groups=2),
        ),
    }


@pytest.mark.parametrize("name", ["torch", "chainer", "chainerx", "paddle", "megengine"])
def test_jit_vmap_grad_through_frontend(name):
    """Values and gradients through jit, vmap and grad, against torch."""
    f, x, w, torch_kw = every_frontend()[name]
    channels_last = name == "paddle"

    def to_torch(a):
        return torch.tensor(np.moveaxis(np.asarray(a), -1, 1) if channels_last else np.asarray(a))

    def torch_value_and_grads(x, w):
        xt = to_torch(x).requires_grad_()
        wt = torch.tensor(np.asarray(w), requires_grad=True)
        y = torch.nn.functional.conv_transpose2d(xt, wt, **torch_kw)
        (y**2).sum().backward()
        back = (lambda a: np.moveaxis(a, 1, -1)) if channels_last else (lambda a: a)
        return back(y.detach().numpy()), back(xt.grad.numpy()), wt.grad.numpy()

    y_ref, gx_ref, gw_ref = torch_value_and_grads(x, w)
    assert_close(jax.jit(f)(x, w), y_ref)
    # vmap over a stack of batches and of weights equals torch on each
    xs, ws = jnp.stack([x, 0.5 * x]), jnp.stack([w, -w])
    batched = jax.vmap(f)(xs, ws)
    for i in range(2):
        assert_close(batched[i], torch_value_and_grads(xs[i], ws[i])[0])
    gx, gw = jax.jit(jax.grad(lambda x, w: jnp.sum(f(x, w) ** 2), (0, 1)))(x, w)
    assert_close(gx, gx_ref)
    assert_close(gw, gw_ref)


def test_paddle_output_size_length_and_tensor_forms():
    rng = np.random.default_rng(2)
    x, w = randn(rng, (1, 2, 8, 8)), randn(rng, (2, 3, 3, 3))
    with pytest.raises(ValueError, match="output_size"):  # paddle: "length must be 2"
        cp.conv2d_transpose(x, w, stride=2, padding=1, output_size=[17])
    with pytest.raises(ValueError, match="stride"):  # paddle: convert_to_list, length 2
        cp.conv2d_transpose(x, w, stride=[2], padding=1)
    spec = ConvTransposeSpec.create(2, stride=2, crop=((1, 0), (1, 0)))
    want = reference_conv_transpose(x, w, spec)
    for size in (16, [16, 16], np.array([16, 16]), jnp.array([16]), np.array([16], np.int64)):
        got = cp.conv2d_transpose(x, w, stride=2, padding=1, output_size=size, name="up1")
        assert_close(got, want)
    with pytest.raises(ValueError, match="output_size"):
        cp.conv2d_transpose(x, w, stride=2, padding=1, output_size=np.array([16, 16, 16]))


@pytest.mark.parametrize(
    "call",
    [
        lambda x, w, b: cc.deconvolution_2d(x, w, b),
        lambda x, w, b: cc.deconvolution_nd(x, w, b),
        lambda x, w, b: cx.conv_transpose(x, w, b),
        lambda x, w, b: ct.conv_transpose2d(x, w, b),
        lambda x, w, b: cp.conv2d_transpose(x, w, b),
    ],
)
@pytest.mark.parametrize("which", [0, 1, 2])
def test_integer_inputs_rejected(call, which):
    """chainer raises InvalidType on integer x, W or b; torch raises too ('not implemented
    for Long'). convt raises TypeError naming the array."""
    arrays = [np.ones((1, 2, 3, 3), np.float32), np.ones((2, 3, 2, 2), np.float32)]
    arrays.append(np.ones((3,), np.float32))
    arrays[which] = arrays[which].astype(np.int32)
    with pytest.raises(TypeError, match="floating-point"):
        call(*arrays)


def test_megengine_promotes_one_integer_array_and_rejects_two():
    """megengine 1.13: int inp with float weight (or the reverse) gives float32; both int
    raise ("runtime does not support input / diff DType: Int32 x Int32")."""
    x, w = np.arange(18, dtype=np.int32).reshape(1, 2, 3, 3), np.ones((2, 3, 2, 2), np.float32)
    y = cm.conv_transpose2d(x, w)
    assert y.dtype == jnp.float32
    assert_close(y, cm.conv_transpose2d(x.astype(np.float32), w))
    w_int = np.arange(24, dtype=np.int32).reshape(2, 3, 2, 2)
    y = cm.conv_transpose2d(x.astype(np.float32), w_int)
    assert y.dtype == jnp.float32
    assert_close(y, cm.conv_transpose2d(x.astype(np.float32), w_int.astype(np.float32)))
    with pytest.raises(TypeError, match="both integer"):
        cm.conv_transpose2d(x, w.astype(np.int32))


@pytest.mark.parametrize("with_bias", [False, True])
def test_zero_spatial_axes(with_bias):
    """chainerx's tests: x (1, 3), w (3, 5), b (5,) is valid; chainer returns (1, 5)."""
    rng = np.random.default_rng(3)
    x, w, b = randn(rng, (1, 3)), randn(rng, (3, 5)), randn(rng, (5,))
    bias = b if with_bias else None
    want = x.astype(np.float64) @ w + (b if with_bias else 0)
    assert_close(cx.conv_transpose(x, w, bias), want)
    assert_close(cc.deconvolution_nd(x, w, bias), want)
    gx = jax.grad(lambda x: cx.conv_transpose(x, w, bias).sum())(x)
    assert_close(gx, np.broadcast_to(w.sum(axis=1), (1, 3)))
