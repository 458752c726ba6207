"""convt.mxnet beyond the fixtures: the bias rules and the measured native-kernel example."""

import numpy as np
import pytest

import convt.mxnet


def test_no_bias_defaults_to_true_and_rejects_a_bias():
    x, w, b = np.ones((1, 2, 5), np.float32), np.ones((2, 3, 3), np.float32), np.ones(3)
    assert convt.mxnet.deconvolution(x, w, kernel=(3,), num_filter=3).shape == (1, 3, 7)
    with pytest.raises(ValueError, match="no_bias"):  # MXNet: "expects 2 inputs, but got 3"
        convt.mxnet.deconvolution(x, w, b.astype(np.float32), kernel=(3,), num_filter=3)
    with pytest.raises(ValueError, match="no_bias"):  # MXNet: "expects 3 inputs, but got 2"
        convt.mxnet.deconvolution(x, w, kernel=(3,), num_filter=3, no_bias=False)


def test_definition_where_mxnet_native_kernels_differ():
    """MKL-DNN's numbers (and the definition); MXNet's own kernels give 200 at the end."""
    y = convt.mxnet.deconvolution(
        np.array([[[1.0, 2.0]]]),
        np.array([[[1.0, 10.0, 100.0, 1000.0]]]),
        kernel=(4,),
        stride=(3,),
        dilate=(2,),
        pad=(1,),
        num_filter=1,
    )
    np.testing.assert_array_equal(np.asarray(y).ravel(), [0, 10, 2, 100, 20, 1000, 200, 0])


def test_target_shape_crops_the_odd_unit_on_the_left():
    spec = convt.mxnet.to_spec(
        2, stride=(2, 2), target_shape=(10, 10), kernel_size=(3, 3), input_size=(5, 5)
    )
    assert spec.crop == ((1, 0), (1, 0))


@pytest.mark.parametrize("layout", ["NHWC", "NCW"])
def test_layout(layout):
    with pytest.raises(ValueError, match="layout"):
        convt.mxnet.deconvolution(
            np.ones((1, 2, 5, 5), np.float32),
            np.ones((2, 3, 3, 3), np.float32),
            kernel=(3, 3),
            num_filter=3,
            layout=layout,
        )
