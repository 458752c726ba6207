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
