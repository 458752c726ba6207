"""Configurations from the frameworks' own test suites that convt used to get wrong, and
the rough edges a newcomer met (issue: robustness)."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import convt
import convt.chainer as cc
import convt.chainerx as cx
import convt.megengine as cm
import convt.paddle as cp
import convt.torch as ct
from convt import ConvTransposeSpec
from convt.cli import main
from helpers import assert_close, randn, reference_conv_transpose

TORCH = {
    1: torch.nn.functional.conv_transpose1d,
    2: torch.nn.functional.conv_transpose2d,
    3: torch.nn.functional.conv_transpose3d,
}
CONVT = {1: ct.conv_transpose1d, 2: ct.conv_transpose2d, 3: ct.conv_transpose3d}


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_empty_batch_like_torch(ndim):
    """x (0, 4, 4, ...), w (4, 4, 3, ...), stride 2, padding 1: torch gives (0, 4, 7, ...)."""
    x = np.zeros((0, 4, *(4,) * ndim), np.float32)
    w = randn(np.random.default_rng(0), (4, 4, *(3,) * ndim))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = TORCH[ndim](xt, wt, stride=2, padding=1)
    yt.sum().backward()
    f = lambda x, w: CONVT[ndim](x, w, stride=2, padding=1)  # noqa: E731
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
    got = CONVT[ndim](x, w, stride=stride, padding=padding, output_size=output_size)
    assert_close(got, want)


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


def test_numpy_integers_everywhere():
    spec = ConvTransposeSpec.create(1, stride=np.int64(2), crop=np.int32(1))
    assert spec == ConvTransposeSpec.create(1, stride=2, crop=1)
    assert type(spec.stride[0]) is int and type(spec.crop[0][0]) is int
    spec = ConvTransposeSpec(
        stride=(np.int64(2),), dilation=(np.int8(1),), crop=((np.int64(0), 1),), groups=np.int64(1)
    )
    assert spec.stride == (2,) and type(spec.groups) is int
    with pytest.raises(TypeError, match="stride"):
        ConvTransposeSpec.create(1, stride=2.0)


def test_import_convt_reaches_every_frontend():
    code = (
        "import convt, jax.numpy as jnp\n"
        "x, w = jnp.ones((1, 2, 3, 3)), jnp.ones((2, 1, 2, 2))\n"
        "print(convt.torch.conv_transpose2d(x, w, stride=2).shape)\n"
        "print(all(hasattr(convt, n) for n in ('chainer', 'chainerx', 'paddle', 'megengine')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["(1, 1, 6, 6)", "True"]
    assert convt.megengine is cm


@pytest.mark.parametrize(
    "argv, words",
    [
        (["spec", "torch", "-k", "4", "4", "4", "-i", "32", "32"], "kernel_size"),
        (
            [
                "translate",
                "--from",
                "paddle",
                "--to",
                "torch",
                "-k",
                "3",
                "-s",
                "2",
                "-p",
                "0",
                "2",
                "0",
                "2",
                "-i",
                "5",
                "5",
            ],
            "cannot be expressed in torch",
        ),  # fmt: skip
        (
            ["spec", "chainer", "-k", "3", "-s", "2", "-p", "1", "-i", "5", "--outsize", "12"],
            "outsize must lie in [8, 10]",
        ),  # fmt: skip
    ],
)
def test_cli_errors_have_one_prefix(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convt: error: ") and err.count("convt:") == 1
    assert words in err


def test_cli_accepts_framework_spellings_and_aliases(capsys):
    argv = ["--kernel_size", "4", "--stride", "2", "--padding", "1", "--output_padding", "1"]
    assert main(["spec", "pytorch", *argv, "--input_size", "8"]) == 0
    assert "output spatial shape: 17" in capsys.readouterr().out
    assert main(["translate", "--from", "pytorch", "--to", "mge", *argv, "-i", "8"]) == 0
    assert capsys.readouterr().out.startswith("megengine: stride=2, padding=1, output_padding=1")
