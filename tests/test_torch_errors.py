"""Invalid torch configurations: torch rejects them, convt raises ValueError/TypeError
naming the parameter, at trace time."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import convt.torch as ct

X = np.ones((1, 4, 5, 5), np.float32)
W = np.ones((4, 2, 3, 3), np.float32)

CASES = [
    # (description, kwargs, x, w, b, words expected in the message)
    ("stride 0", dict(stride=0), X, W, None, "stride"),
    ("negative stride", dict(stride=(1, -1)), X, W, None, "stride"),
    ("dilation 0", dict(dilation=0), X, W, None, "dilation"),
    ("negative padding", dict(padding=-1), X, W, None, "padding"),
    (
        "output_padding >= max(stride, dilation)",
        dict(stride=2, output_padding=2),
        X,
        W,
        None,
        "output_padding",
    ),
    ("output_padding with stride 1", dict(output_padding=1), X, W, None, "output_padding"),
    ("negative output_padding", dict(stride=2, output_padding=-1), X, W, None, "output_padding"),
    (
        "groups not dividing channels",
        dict(groups=3),
        X,
        np.ones((4, 2, 3, 3), np.float32),
        None,
        "groups",
    ),
    ("channel mismatch", {}, X, np.ones((3, 2, 3, 3), np.float32), None, "weight"),
    ("bias length", {}, X, W, np.ones((3,), np.float32), "bias"),
    ("wrong input rank", {}, np.ones((1, 1, 4, 5, 5), np.float32), W, None, "input"),
    ("wrong weight rank", {}, X, np.ones((4, 2, 3), np.float32), None, "weight"),
    ("tuple too long", dict(stride=(1, 2, 3)), X, W, None, "stride"),
    (
        "output too small",
        dict(padding=4),
        np.ones((1, 4, 1, 1), np.float32),
        W,
        None,
        "output size",
    ),
    ("float stride", dict(stride=1.5), X, W, None, "stride"),
    ("string padding", dict(padding="same"), X, W, None, "padding"),
    ("groups 0", dict(groups=0), X, W, None, "groups"),
]


@pytest.mark.parametrize("desc, kwargs, x, w, b, words", CASES, ids=[c[0] for c in CASES])
def test_rejected_like_torch(desc, kwargs, x, w, b, words):
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        torch.nn.functional.conv_transpose2d(
            torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), **kwargs
        )
    with pytest.raises((ValueError, TypeError), match=words):
        ct.conv_transpose2d(
            jnp.asarray(x), jnp.asarray(w), None if b is None else jnp.asarray(b), **kwargs
        )
    # the same error at trace time, inside a user's jit
    with pytest.raises((ValueError, TypeError), match=words):
        jax.jit(
            lambda x, w: ct.conv_transpose2d(x, w, None if b is None else jnp.asarray(b), **kwargs)
        )(x, w)


def test_padding_mode_zeros_only():
    y = ct.conv_transpose2d(jnp.asarray(X), jnp.asarray(W), padding_mode="zeros")
    assert y.shape == (1, 2, 7, 7)
    for mode in ["reflect", "replicate", "circular"]:
        with pytest.raises(ValueError, match="padding_mode"):
            ct.conv_transpose2d(jnp.asarray(X), jnp.asarray(W), padding_mode=mode)


def test_single_element_tuples_broadcast_like_torch():
    ref = torch.nn.functional.conv_transpose2d(
        torch.tensor(X), torch.tensor(W), stride=[2], padding=[1]
    )
    got = ct.conv_transpose2d(jnp.asarray(X), jnp.asarray(W), stride=[2], padding=[1])
    assert got.shape == tuple(ref.shape)
    np.testing.assert_allclose(np.asarray(got), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_integer_inputs_rejected():
    with pytest.raises(TypeError, match="floating"):
        ct.conv_transpose2d(jnp.ones((1, 4, 5, 5), jnp.int32), jnp.ones((4, 2, 3, 3), jnp.int32))
