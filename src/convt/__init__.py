"""convt: transposed convolution for JAX in every framework's convention.

The canonical function and spec are imported here; each framework's module
(``convt.torch``, ``convt.paddle``, ...) is imported on first use, so ``import convt``
then ``convt.torch.conv_transpose2d(...)`` works without importing the others.
"""

import importlib

from convt import convention as _registry
from convt.core import METHODS, choose_method, conv_transpose
from convt.spec import ConvTransposeSpec

__all__ = ["METHODS", "ConvTransposeSpec", "choose_method", "conv_transpose"]
__version__ = "0.1.0"

# Submodules loaded on attribute access: every registered convention's module, and the
# supporting modules.
_SUPPORTING = ("convention", "core", "spec", "lowering", "auto", "layers", "cli")
_LAZY = (*(module.rpartition(".")[2] for module in _registry.MODULES.values()), *_SUPPORTING)


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f"convt.{name}")
    raise AttributeError(f"module 'convt' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
