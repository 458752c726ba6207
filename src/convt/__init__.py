"""convt: transposed convolution for JAX in every framework's convention."""

from convt.core import METHODS, choose_method, conv_transpose
from convt.spec import ConvTransposeSpec

__all__ = ["METHODS", "ConvTransposeSpec", "choose_method", "conv_transpose"]
__version__ = "0.1.0"
