import subprocess
import sys

from convt.cli import main


def test_spec_torch(capsys):
    assert (
        main(
            [
                "spec",
                "torch",
                "--kernel-size",
                "4",
                "--stride",
                "2",
                "--padding",
                "1",
                "--input-size",
                "32",
                "32",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "crop:     ((1, 1), (1, 1))" in out
    assert "output spatial shape: 64 64" in out


def test_spec_torch_output_size(capsys):
    assert (
        main(
            [
                "spec",
                "torch",
                "-k",
                "3",
                "-s",
                "2",
                "-p",
                "1",
                "-i",
                "6",
                "6",
                "--output-size",
                "12",
                "11",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "crop:     ((1, 0), (1, 1))" in out
    assert "output spatial shape: 12 11" in out


def test_spec_errors_name_the_parameter(capsys):
    assert main(["spec", "torch", "-k", "3", "-s", "2", "-i", "6", "--output-padding", "2"]) == 2
    assert "output_padding" in capsys.readouterr().err
    assert main(["spec", "torch", "-k", "3", "-s", "1", "-i", "6", "-p", "9"]) == 2
    assert "output size" in capsys.readouterr().err


def test_console_script_runs():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "convt.cli",
            "spec",
            "torch",
            "-k",
            "4",
            "-s",
            "2",
            "-p",
            "1",
            "-i",
            "32",
            "32",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "64 64" in proc.stdout


import pytest  # noqa: E402


@pytest.mark.parametrize(
    "argv, crop, shape",
    [
        (
            ["chainer", "-k", "3", "-s", "2", "-p", "1", "-i", "5", "--outsize", "8"],
            "((1, 2),)",
            "8",
        ),
        (
            [
                "chainerx",
                "-k",
                "10",
                "-s",
                "2",
                "4",
                "6",
                "-p",
                "5",
                "-i",
                "5",
                "10",
                "15",
                "--outsize",
                "9",
                "38",
                "87",
            ],
            "((5, 4), (5, 3), (5, 2))",
            "9 38 87",
        ),
        (
            ["paddle", "-k", "3", "-s", "2", "-p", "SAME", "-i", "5", "5", "--data-format", "NHWC"],
            "((1, 1), (1, 1))",
            "9 9",
        ),
        (
            ["paddle", "-k", "3", "-s", "2", "-p", "1", "2", "0", "1", "-i", "5", "5"],
            "((1, 2), (0, 1))",
            "8 10",
        ),
        (
            [
                "megengine",
                "-k",
                "3",
                "-s",
                "2",
                "-p",
                "1",
                "-i",
                "5",
                "5",
                "--output-padding",
                "1",
                "0",
            ],
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
    assert (
        main(["spec", "chainer", "-k", "3", "-s", "2", "-p", "1", "-i", "5", "--outsize", "12"])
        == 2
    )
    assert "outsize" in capsys.readouterr().err
    assert main(["spec", "paddle", "-k", "3", "-i", "5", "--data-format", "NHWC"]) == 2
    assert "data_format" in capsys.readouterr().err
