"""from_spec inverts to_spec: every framework either expresses a spec exactly or says why not."""

from hypothesis import given
from hypothesis import strategies as st

import convt.paddle
from convt import ConvTransposeSpec
from convt.convention import NotExpressible, conventions


@st.composite
def specs(draw):
    ndim = draw(st.integers(1, 3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    size = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    crop = []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        full = (n - 1) * s + d * (k - 1) + 1
        lo = draw(st.integers(-1, full - 1))
        crop.append((lo, draw(st.integers(-2, full - lo - 1))))
    layout = draw(st.sampled_from(["channels_first", "channels_first", "channels_last"]))
    spec = ConvTransposeSpec(
        stride=stride,
        dilation=dilation,
        crop=tuple(crop),
        groups=draw(st.integers(1, 2)),
        layout=layout,
    )
    return spec, size, kernel


@given(case=specs())
def test_round_trip(case):
    """Through the written interface, for every registered convention."""
    spec, size, kernel = case
    for convention in conventions():
        try:
            params = convention.from_spec(spec, kernel_size=kernel, input_size=size)
        except NotExpressible as err:
            assert str(err).startswith(f"cannot be expressed in {convention.name}")
            continue
        again = convention.spec(spec.ndim, params, kernel_size=kernel, input_size=size)
        assert again == spec, (convention.name, params)


def test_paddle_expresses_every_nonnegative_left_crop():
    spec = ConvTransposeSpec(stride=(2, 3), dilation=(1, 2), crop=((0, 3), (2, -2)))
    params = convt.paddle.from_spec(spec)
    assert params["padding"] == [0, 3, 2, 0] and params["output_padding"] == (0, 2)
    assert convt.paddle.to_spec(2, **params) == spec
