"""The command line: ``convt spec FRAMEWORK ...`` and ``convt translate``, with argv
written as the shell takes it; every error exits 2 with one message, never a traceback."""

import subprocess
import sys
from shlex import split

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convt.cli import main


def test_spec_torch(capsys):
    assert main(split("spec torch --kernel-size 4 --stride 2 --padding 1 --input-size 32 32")) == 0
    out = capsys.readouterr().out
    assert "crop:     ((1, 1), (1, 1))" in out
    assert "output spatial shape: 64 64" in out


def test_spec_torch_output_size(capsys):
    assert main(split("spec torch -k 3 -s 2 -p 1 -i 6 6 --output-size 12 11")) == 0
    out = capsys.readouterr().out
    assert "crop:     ((1, 0), (1, 1))" in out
    assert "output spatial shape: 12 11" in out


def test_spec_errors_name_the_parameter(capsys):
    assert main(split("spec torch -k 3 -s 2 -i 6 --output-padding 2")) == 2
    assert "output_padding" in capsys.readouterr().err
    assert main(split("spec torch -k 3 -s 1 -i 6 -p 9")) == 2
    assert "output size" in capsys.readouterr().err


def test_console_script_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "convt.cli", *split("spec torch -k 4 -s 2 -p 1 -i 32 32")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "64 64" in proc.stdout


@pytest.mark.parametrize(
    "argv, crop, shape",
    [
        (
            split("chainer -k 3 -s 2 -p 1 -i 5 --outsize 8"),
            "((1, 2),)",
            "8",
        ),
        (
            split("chainerx -k 10 -s 2 4 6 -p 5 -i 5 10 15 --outsize 9 38 87"),
            "((5, 4), (5, 3), (5, 2))",
            "9 38 87",
        ),
        (
            split("paddle -k 3 -s 2 -p SAME -i 5 5 --data-format NHWC"),
            "((1, 1), (1, 1))",
            "9 9",
        ),
        (
            split("paddle -k 3 -s 2 -p 1 2 0 1 -i 5 5"),
            "((1, 2), (0, 1))",
            "8 10",
        ),
        (
            split("megengine -k 3 -s 2 -p 1 -i 5 5 --output-padding 1 0"),
            "((1, 0), (1, 1))",
            "10 9",
        ),
    ],
)
def test_spec_every_framework(capsys, argv, crop, shape):
    assert main(["spec", *argv]) == 0
    out = capsys.readouterr().out
    assert f"crop:     {crop}" in out
    assert f"output spatial shape: {shape}" in out


def test_spec_framework_errors(capsys):
    assert main(split("spec chainer -k 3 -s 2 -p 1 -i 5 --outsize 12")) == 2
    assert "outsize" in capsys.readouterr().err
    assert main(split("spec paddle -k 3 -i 5 --data-format NHWC")) == 2
    assert "data_format" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            split("--from torch --to paddle -k 3 -s 2 -p 1 --output-padding 1 -i 5 5"),
            "paddle: stride=2, padding=[1, 0, 1, 0]",
        ),
        (
            split("--from torch --to chainer -k 3 -s 2 -p 1 --output-padding 1 -i 5 5"),
            "chainer: stride=2, pad=1, outsize=(10, 10)",
        ),
        (
            split("--from chainer --to megengine -k 3 -s 2 -p 1 --outsize 10 10 -i 5 5"),
            "megengine: stride=2, padding=1, output_padding=1",
        ),
    ],
)
def test_cli_translate(capsys, argv, expected):
    assert main(["translate", *argv]) == 0
    assert capsys.readouterr().out.startswith(expected)


def test_cli_translate_says_why_not(capsys):
    argv = split("translate --from paddle --to torch -k 3 -s 2 -p 0 2 0 2 -i 5 5")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot be expressed in torch" in err and "symmetric" in err
    argv = split("translate --from paddle --to chainerx -k 3 -s 2 --dilation 2 -i 5 5")
    assert main(argv) == 2
    assert "no dilation" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, words",
    [
        (split("spec torch -k 4 4 4 -i 32 32"), "kernel_size"),
        (
            split("translate --from paddle --to torch -k 3 -s 2 -p 0 2 0 2 -i 5 5"),
            "cannot be expressed in torch",
        ),  # fmt: skip
        (
            split("spec chainer -k 3 -s 2 -p 1 -i 5 --outsize 12"),
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
    argv = split("--kernel_size 4 --stride 2 --padding 1 --output_padding 1")
    assert main(["spec", "pytorch", *argv, "--input_size", "8"]) == 0
    assert "output spatial shape: 17" in capsys.readouterr().out
    assert main(["translate", "--from", "pytorch", "--to", "mge", *argv, "-i", "8"]) == 0
    assert capsys.readouterr().out.startswith("megengine: stride=2, padding=1, output_padding=1")


@pytest.mark.parametrize("argv", ["-k 0 -i 5 5", "-k 3 -i 0 0", "-k 3 -i 5 5 -s 0"])
def test_cli_refuses_sizes_below_one(argv, capsys):
    assert main(["spec", "torch", *argv.split()]) == 2
    assert "must be >= 1" in capsys.readouterr().err


@given(
    argv=st.lists(
        st.sampled_from(split("-k -i -s -p --output-padding -d -g") + split("0 1 3 -1 x 2.5")),
        max_size=8,
    )
)
def test_fuzz_cli(argv):
    """``convt spec torch ...`` with any arguments: it prints a spec or exits 2 with a
    message, never a traceback."""
    try:
        code = main(["spec", "torch", *argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code in (0, 2)


@pytest.mark.parametrize(
    "argv",
    [
        "--from torch --to flax -k 3 -s 2 -p 1 --output-padding 1 -i 5 5",
        "--from torch --to tensorflow -k 3 2 -s 2 -p 1 -i 5 6",
        "--from torch --to equinox -k 4 -s 2 -p 1 -i 5 5",
        "--from torch --to haiku -k 3 -s 2 -p 1 --output-padding 1 -i 5 5",
        "--from torch --to jax.lax -k 3 -s 2 -i 5",
        "--from keras --to torch -k 4 -s 2 -p same -i 5 5",
        "--from torch --to megengine -k 3 -s 2 -p 1 -i 5 5",
    ],
)
def test_translate_says_how_to_convert_the_weight_and_the_data(capsys, argv):
    """The printed weight expression turns the source framework's weight into the
    target's (checked against convt's own conversions), and a change of data layout is
    spelled out."""
    import numpy as np

    from convt import convention as registry

    assert main(["translate", *split(argv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    source, target = (registry.get(n) for n in (split(argv)[1], split(argv)[3]))
    kernel = [int(k) for k in argv.split("-k ")[1].split(" -")[0].split()]
    ndim = len(argv.split("-i ")[1].split())
    kernel = kernel * ndim if len(kernel) == 1 else kernel
    canonical = np.random.default_rng(0).standard_normal((4, 3, *kernel))
    w = np.asarray(source.weight_from_canonical(canonical, ndim=ndim, groups=1))
    want = np.asarray(target.weight_from_canonical(canonical, ndim=ndim, groups=1))
    (weight,) = [line for line in lines if line.startswith("weight: ")]
    expression = weight.removeprefix("weight: ").split("  (convt:")[0]
    got = w if expression == "w (the same layout)" else eval(expression, {"np": np, "w": w})
    np.testing.assert_array_equal(got, want)
    if source.name == "torch" and target.name == "flax":
        assert lines[1].startswith("data: flax takes the channels last: x.transpose(0, 2, 3, 1)")


def test_the_command_line_page_names_every_convention():
    import pathlib

    from convt import convention as registry

    page = (pathlib.Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    for convention in registry.conventions():
        assert f"`{convention.name}`" in page, convention.name
        for alias in convention.aliases:
            assert f"`{alias}`" in page, alias


@pytest.mark.parametrize(
    "argv",
    [
        "--from torch --to tensorflow -k 3 -s 2 -p 1 --output-padding 1 -i 5 6",
        "--from paddle --to tensorflow -k 3 -s 2 -p 1 --data-format NHWC -i 5 5",
        "--from torch --to tensorflow -k 4 -s 3 -p 1 -i 7",
    ],
)
def test_translate_gives_tensorflow_its_full_output_shape(capsys, argv):
    """The printed TensorFlow call, pasted with ``x`` and ``filters``, computes the
    source framework's layer (the batch and channels of ``output_shape`` included)."""
    import jax.numpy as jnp
    import numpy as np

    import convt
    from convt import convention as registry
    from convt.cli import build_parser, spec_from_args

    assert main(["translate", *split(argv)]) == 0
    call = capsys.readouterr().out.splitlines()[0].removeprefix("tensorflow: ")
    assert "output_shape=[x.shape[0], " in call
    words = split(argv)
    source = registry.get(words[1])
    spec, sizes, kernel = spec_from_args(
        build_parser().parse_args(["spec", words[1], *words[4:]]), source
    )
    rng = np.random.default_rng(0)
    canonical = rng.standard_normal((4, 3, *kernel)).astype(np.float32)
    x = rng.standard_normal((2, 4, *sizes)).astype(np.float32)
    if spec.layout == "channels_last":
        x = np.moveaxis(x, 1, -1)
    want = convt.conv_transpose(jnp.asarray(x), jnp.asarray(canonical), spec=spec)
    tensorflow = registry.get("tensorflow")
    filters = np.asarray(tensorflow.weight_from_canonical(canonical, ndim=spec.ndim, groups=1))
    kwargs = eval(f"dict({call})", {"x": x, "filters": filters})
    got = getattr(convt.tensorflow, f"conv{spec.ndim}d_transpose")(x, filters, **kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
