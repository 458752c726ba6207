"""from_spec inverts to_spec: every framework either expresses a spec exactly or says why not."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

import convt.paddle
from convt import ConvTransposeSpec
from convt.cli import main
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


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            [
                "--from",
                "torch",
                "--to",
                "paddle",
                "-k",
                "3",
                "-s",
                "2",
                "-p",
                "1",
                "--output-padding",
                "1",
                "-i",
                "5",
                "5",
            ],
            "paddle: stride=2, padding=[1, 0, 1, 0]",
        ),
        (
            [
                "--from",
                "torch",
                "--to",
                "chainer",
                "-k",
                "3",
                "-s",
                "2",
                "-p",
                "1",
                "--output-padding",
                "1",
                "-i",
                "5",
                "5",
            ],
            "chainer: stride=2, pad=1, outsize=(10, 10)",
        ),
        (
            [
                "--from",
                "chainer",
                "--to",
                "megengine",
                "-k",
                "3",
                "-s",
                "2",
                "-p",
                "1",
                "--outsize",
                "10",
                "10",
                "-i",
                "5",
                "5",
            ],
            "megengine: stride=2, padding=1, output_padding=1",
        ),
    ],
)
def test_cli_translate(capsys, argv, expected):
    assert main(["translate", *argv]) == 0
    assert capsys.readouterr().out.startswith(expected)


def test_cli_translate_says_why_not(capsys):
    argv = [
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
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot be expressed in torch" in err and "symmetric" in err
    argv = [
        "translate",
        "--from",
        "paddle",
        "--to",
        "chainerx",
        "-k",
        "3",
        "-s",
        "2",
        "--dilation",
        "2",
        "-i",
        "5",
        "5",
    ]
    assert main(argv) == 2
    assert "no dilation" in capsys.readouterr().err
