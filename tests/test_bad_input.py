"""Bad input gets a ValueError or a TypeError naming the parameter, never a hang, a crash
or another exception (issue texts, then hypothesis fuzzing of the public functions and
the command line)."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convt
import convt.keras
import convt.onnx
import convt.paddle
import convt.tensorflow
import convt.torch as ct
from convt import ConvTransposeSpec

PARAMETERS = (
    "input",
    "weight",
    "bias",
    "stride",
    "padding",
    "output_padding",
    "groups",
    "dilation",
    "ndim",
    "kernel",
    "spec",
    "crop",
    "strides",
    "pads",
    "dilations",
    "output_shape",
    "--kernel-size",
    "--input-size",
    "the output",
    "channels",
    "rngs",
    "key",
    "filters",
)


X, W = jnp.ones((1, 2, 3, 3)), jnp.ones((2, 2, 3, 3))


def _flax():
    import convt.layers.flax

    return convt.layers.flax


def _equinox():
    import convt.layers.equinox

    return convt.layers.equinox


def _rngs():
    from flax import nnx

    return nnx.Rngs(0)


def raises_named(exc_info) -> None:
    assert exc_info.type in (ValueError, TypeError), exc_info.type
    message = str(exc_info.value)
    assert any(name in message for name in PARAMETERS), message


@pytest.mark.parametrize(
    "call",
    [
        lambda: ct.to_spec(-1),
        lambda: ct.to_spec("2"),
        lambda: convt.paddle.to_spec(-1),
        lambda: convt.tensorflow.to_spec(4),
        lambda: convt.mxnet.to_spec(-1),
        lambda: ConvTransposeSpec(stride=2, dilation=1, crop=1),
        lambda: convt.onnx.conv_transpose(X, W, strides=2),
        lambda: convt.onnx.conv_transpose(X, W, pads=1),
        lambda: ct.conv_transpose2d(None, jnp.ones((2, 2, 3, 3))),
        lambda: ct.conv_transpose2d(jnp.ones((1, 2, 3, 3)), None),
        lambda: ct.conv_transpose2d([[[[1.0] * 3] * 3] * 2], jnp.ones((2, 2, 3, 3))),
        lambda: convt.conv_transpose(
            jnp.ones((1, 2, 3, 3)), jnp.ones((2, 2, 3, 3)), spec=dict(stride=(1, 1))
        ),
        # TensorFlow refuses a full output_shape whose batch or channels disagree
        lambda: convt.tensorflow.conv2d_transpose(
            jnp.ones((2, 4, 4, 3)), jnp.ones((3, 3, 5, 3)), [3, 8, 8, 5], 2, "SAME"
        ),
        lambda: convt.tensorflow.conv2d_transpose(
            jnp.ones((2, 4, 4, 3)), jnp.ones((3, 3, 5, 3)), [2, 8, 8, 7], 2, "SAME"
        ),
        # the layer classes and constructors name their own parameters
        lambda: _flax().ConvTranspose2d(4, 3, 3),
        lambda: _flax().ConvTranspose2d(features=3, kernel_size=(3, 3), rngs=_rngs()),
        lambda: _equinox().ConvTranspose2d(4, 3, 3),
        lambda: convt.keras.Conv2DTranspose(0, 3, in_channels=4),
        lambda: convt.keras.Conv2DTranspose(4, 3),
        # more output than anything can hold, refused before any work
        lambda: ct.conv_transpose2d(jnp.ones((1, 1, 5, 5)), jnp.ones((1, 1, 3, 3)), stride=10**6),
    ],
)
def test_issue_cases(call):
    with pytest.raises(Exception) as exc_info:
        call()
    raises_named(exc_info)


def _garbage():
    return st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=True),
        st.text(max_size=3),
        st.integers(-3, 7),
        st.lists(st.integers(-3, 7), max_size=3),
        st.tuples(st.integers(-3, 7), st.integers(-3, 7)),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    )


ARRAYS = [
    None,
    [[1.0, 2.0]],
    "x",
    np.ones((1, 2, 4, 4), np.float32),
    np.ones((2, 4, 4), np.float32),
    np.ones((1, 2, 4, 4), np.int32),
    np.ones((1, 2, 4), np.float32),
]


@given(
    x=st.sampled_from(ARRAYS),
    w=st.sampled_from([None, np.ones((2, 3, 3, 3), np.float32), np.ones((3, 3), np.float32)]),
    stride=_garbage(),
    padding=_garbage(),
    output_padding=_garbage(),
    groups=_garbage(),
    dilation=_garbage(),
)
def test_fuzz_torch_functional(x, w, stride, padding, output_padding, groups, dilation):
    """Any argument of torch's functional signature: a result or a named error."""
    kwargs = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    try:
        y = ct.conv_transpose2d(x, w, None, **kwargs)
    except Exception as err:  # noqa: BLE001 - the type is what is checked
        assert type(err) in (ValueError, TypeError), repr(err)
        assert any(name in str(err) for name in PARAMETERS), str(err)
    else:
        assert y.ndim == 4


@given(
    ndim=_garbage(),
    stride=_garbage(),
    dilation=_garbage(),
    crop=_garbage(),
    groups=_garbage(),
)
def test_fuzz_spec(ndim, stride, dilation, crop, groups):
    """``ConvTransposeSpec.create`` on anything: a spec or a named error."""
    try:
        ConvTransposeSpec.create(ndim, stride=stride, dilation=dilation, crop=crop, groups=groups)
    except Exception as err:  # noqa: BLE001 - the type is what is checked
        assert type(err) in (ValueError, TypeError), repr(err)
        assert any(name in str(err) for name in PARAMETERS), str(err)
