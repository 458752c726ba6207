"""The public faces: every public module declares ``__all__``, and every name in it
exists and has a docstring (the API reference renders what ``__all__`` lists)."""

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import convt
import convt.megengine as cm

PUBLIC = sorted(
    info.name
    for info in pkgutil.walk_packages(convt.__path__, "convt.")
    if not any(part.startswith("_") for part in info.name.split("."))
)


def test_the_public_modules_are_the_expected_ones():
    assert "convt.layers.flax" in PUBLIC and "convt.lowering" in PUBLIC
    assert not [name for name in PUBLIC if "._" in name]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_module_declares_all(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), name
    for member in module.__all__:
        value = getattr(module, member)
        if callable(value) and getattr(value, "__module__", "").startswith("convt"):
            assert getattr(value, "__doc__", None), f"{name}.{member} has no docstring"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_function_is_annotated(name):
    """Every parameter and the return of each public function carry a type (mypy and
    pyright check them in CI), so users' type checkers see the API."""
    module = importlib.import_module(name)
    unannotated = {}
    for member in module.__all__:
        value = getattr(module, member)
        if not inspect.isfunction(inspect.unwrap(value)) or not getattr(
            value, "__module__", ""
        ).startswith("convt"):
            continue
        signature = inspect.signature(value)
        missing = [p for p, v in signature.parameters.items() if v.annotation is v.empty]
        if signature.return_annotation is signature.empty:
            missing.append("return")
        if missing:
            unannotated[member] = missing
    assert not unannotated, f"{name}: {unannotated}"


def test_import_convt_reaches_every_frontend():
    code = (
        "import convt, jax.numpy as jnp\n"
        "x, w = jnp.ones((1, 2, 3, 3)), jnp.ones((2, 1, 2, 2))\n"
        "print(convt.torch.conv_transpose2d(x, w, stride=2).shape)\n"
        "print(all(hasattr(convt, n) for n in ('chainer', 'chainerx', 'paddle', 'megengine')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["(1, 1, 6, 6)", "True"]
    assert convt.megengine is cm
