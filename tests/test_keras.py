"""convt.keras beyond the fixtures: the whole small-configuration grid, by an independent route."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import convt.keras
import convt.tensorflow
from convt.spec import effective_kernel
from helpers import assert_close


def test_tensorflow_backend_is_tf_nn_at_keras_output_length():
    """Keras's TensorFlow backend is tf.nn.conv_transpose at Keras's output length:
    convt.keras (closed-form crops from the JAX backend's padding) must give the crop that
    convt.tensorflow (checked against TensorFlow's fixtures) gives, and reject exactly
    what it rejects, on every configuration of a grid."""
    accepted = rejected = 0
    for n, k, s, d, padding, op in itertools.product(
        range(1, 5),
        range(1, 6),
        range(1, 5),
        range(1, 3),
        ("valid", "same"),
        (None, -1, 0, 1, 2, 3, 4),
    ):
        length = convt.keras._output_length(n, effective_kernel(k, d), s, padding, op)
        if length == 0:  # TensorFlow returns an empty array unchecked (see the fixtures)
            continue
        try:
            want = convt.tensorflow.to_spec(
                1,
                output_shape=(length,),
                strides=s,
                padding=padding.upper(),
                dilations=d,
                kernel_size=(k,),
                input_size=(n,),
            )
        except ValueError:
            want = None
        try:
            got = convt.keras.to_spec(
                1,
                strides=s,
                padding=padding,
                output_padding=op,
                dilation_rate=d,
                kernel_size=(k,),
                input_size=(n,),
            )
        except ValueError as err:
            assert "backend='jax'" in str(err)
            got = None
        assert (got is None) == (want is None), (n, k, s, d, padding, op)
        if got is not None:
            assert got.crop == want.crop and got.output_spatial_shape((n,), (k,)) == (length,)
        accepted += got is not None
        rejected += got is None
    assert accepted > 1000 and rejected > 1000


def test_jax_backend_accepts_every_output_padding():
    spec = convt.keras.to_spec(
        1, strides=2, padding="same", output_padding=0, kernel_size=(4,), backend="jax"
    )
    assert spec.output_spatial_shape((5,), (4,)) == (8,)  # (n - 1) s + k_e % 2 + op
    with pytest.raises(ValueError, match="backend='jax'"):
        convt.keras.to_spec(1, strides=2, padding="same", output_padding=0, kernel_size=(4,))


def test_default_is_channels_last_and_keras_doc_shapes():
    """keras.ops.conv_transpose's docstring shapes: inputs (batch, *spatial, channels),
    kernel (*kernel, out, in)."""
    x = np.ones((2, 5, 5, 3), np.float32)
    w = np.ones((3, 3, 4, 3), np.float32)
    assert convt.keras.conv_transpose(x, w, 2, "same").shape == (2, 10, 10, 4)
    assert convt.keras.conv_transpose(x, w, 2, "valid").shape == (2, 11, 11, 4)
    y = convt.keras.conv_transpose(
        np.ones((2, 3, 5, 5), np.float32), w, 2, "SAME", data_format="channels_first"
    )
    assert y.shape == (2, 4, 10, 10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(strides=2, output_padding=2), "output_padding"),
        (dict(strides=2, dilation_rate=2), "dilation_rate"),
        (dict(padding="causal"), "padding"),
        (dict(data_format="NHWC"), "data_format"),
    ],
)
def test_layer_checks(kwargs, match):
    x, w = np.ones((1, 5, 2), np.float32), np.ones((3, 4, 2), np.float32)
    with pytest.raises(ValueError, match=match):
        convt.keras.conv_transpose_layer(x, w, **kwargs)


def test_groups_are_not_expressible():
    from convt import ConvTransposeSpec
    from convt.convention import NotExpressible

    with pytest.raises(NotExpressible, match="no groups"):
        convt.keras.from_spec(
            ConvTransposeSpec(stride=(2,), dilation=(1,), crop=((0, 0),), groups=2),
            kernel_size=(3,),
            input_size=(4,),
        )


def _activation_fixture():
    import json
    import pathlib

    data = np.load(pathlib.Path(__file__).parent / "fixtures" / "keras_activations.npz")
    return json.loads(str(data["meta"]))["cases"], data


@pytest.mark.parametrize("index", range(20))
def test_keras_activations_as_keras_computes_them(index):
    """``Conv2DTranspose(..., activation=name)`` for Keras 3's built-in activations,
    through ``from_config`` (the layer's own config value): the output and the input's
    gradient equal Keras's (recorded with TensorFlow, ``tools/fixtures``)."""
    import jax

    cases, data = _activation_fixture()
    case = cases[index]
    config = dict(
        filters=3,
        kernel_size=(3, 3),
        strides=(2, 2),
        padding="same",
        activation=case["config_activation"],
    )
    params, layer = convt.keras.from_config(
        config, [data[f"{index}/w"], data[f"{index}/b"]], backend="tensorflow"
    )
    x, cot = data[f"{index}/x"], data[f"{index}/g"]
    assert_close(layer(params, x), data[f"{index}/y"])
    gx = jax.grad(lambda x: jnp.sum(layer(params, x) * cot))(jnp.asarray(x))
    assert_close(gx, data[f"{index}/gx"])


def test_custom_activations_are_refused_by_name():
    with pytest.raises(ValueError, match="activation=.*not one of Keras's built-in"):
        convt.keras.Conv2DTranspose(3, 3, activation=lambda x: x, in_channels=4)
    with pytest.raises(ValueError, match="'celu'"):
        convt.keras.Conv2DTranspose(3, 3, activation="celu", in_channels=4)
