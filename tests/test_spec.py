"""The canonical spec: construction, validation and its integer arguments."""

import numpy as np
import pytest

from convt import ConvTransposeSpec


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
