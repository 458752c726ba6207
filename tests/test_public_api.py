"""The public faces: every public module declares ``__all__``, and every name in it
exists and has a docstring (the API reference renders what ``__all__`` lists)."""

import importlib
import pkgutil

import pytest

import convt

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
