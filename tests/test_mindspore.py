"""convt.mindspore beyond the fixtures: 2-D output_padding is zeros after the bias."""

import numpy as np
import pytest

import convt.mindspore
import convt.torch


def test_2d_output_padding_appends_zeros_after_the_bias():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    y = np.asarray(convt.mindspore.conv2d_transpose(x, w, b, 2, "pad", 1, output_padding=1))
    inner = np.asarray(convt.torch.conv_transpose2d(x, w, b, 2, 1))  # (1, 3, 7, 7)
    assert y.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(y[:, :, :7, :7], inner, rtol=1e-6)
    assert not y[:, :, 7, :].any() and not y[:, :, :, 7].any()
    with pytest.raises(ValueError, match="appends zeros"):
        convt.mindspore.to_spec(
            2, stride=2, pad_mode="pad", padding=1, output_padding=1, kernel_size=(3, 3)
        )


def test_3d_output_padding_is_computed_as_torch_does():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 3, 3, 3)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3, 3)).astype(np.float32)
    y = convt.mindspore.conv3d_transpose(x, w, None, 2, "pad", 1, output_padding=1)
    want = convt.torch.conv_transpose3d(x, w, None, 2, 1, output_padding=1)
    np.testing.assert_allclose(np.asarray(y), np.asarray(want), rtol=1e-6)
