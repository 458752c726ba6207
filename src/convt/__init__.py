"""convt: transposed convolution for JAX in every framework's convention.

The canonical function and spec are imported here; each framework's module
(``convt.torch``, ``convt.paddle``, ...) is imported on first use, so ``import convt``
then ``convt.torch.conv_transpose2d(...)`` works without importing the others.
"""

import importlib

from convt.core import METHODS, choose_method, conv_transpose
from convt.spec import ConvTransposeSpec

__all__ = ["METHODS", "ConvTransposeSpec", "choose_method", "conv_transpose"]
__version__ = "0.1.0"

# Submodules loaded on attribute access: the conventions and the supporting modules.
_LAZY = (
    "torch",
    "chainer",
    "chainerx",
    "paddle",
    "megengine",
    "lax",
    "onnx",
    "tensorflow",
    "keras",
    "mindspore",
    "mxnet",
    "flax",
    "equinox",
    "haiku",
    "convention",
    "lowering",
    "cli",
)


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f"convt.{name}")
    raise AttributeError(f"module 'convt' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
