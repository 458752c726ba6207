"""Checkpoints that are pickles of numpy arrays (paddle's ``.pdparams``, megengine's
saved state dicts), read without the framework and without running code the file
names: only numpy arrays, numpy scalars and Python containers are accepted."""

from __future__ import annotations

import io
import os
import pickle
from typing import Any, BinaryIO

import numpy as np

# (module, name) pairs a numpy-only pickle refers to
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
}


class _NumpyOnly(pickle.Unpickler):
    def __init__(self, file: BinaryIO, framework: str, loader: str):
        super().__init__(file)
        self.framework, self.loader = framework, loader

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "numpy" or module.startswith("numpy.dtypes"):
            if name.endswith("DType"):  # numpy 2's dtype classes
                return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"{self.framework}: the checkpoint holds a {module}.{name} object, not only numpy "
            f"arrays; load it with {self.loader} (or save the state dict's arrays)"
        )


def load_numpy_pickle(source: str | os.PathLike | bytes | BinaryIO, *, framework: str, loader: str):
    """The object pickled in ``source`` (a path, bytes or a binary file), refusing any
    class but numpy's arrays and Python's containers (``loader``: what to use instead)."""
    if isinstance(source, bytes):
        return _NumpyOnly(io.BytesIO(source), framework, loader).load()
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            return _NumpyOnly(file, framework, loader).load()
    return _NumpyOnly(source, framework, loader).load()


def numpy_state_dict(obj: Any, *, framework: str, skip: tuple[str, ...] = ()) -> dict:
    """A loaded state dict as ``{name: numpy array}`` (entries named in ``skip``, such
    as paddle's name table, left out)."""
    if not isinstance(obj, dict):
        raise TypeError(
            f"{framework}: the checkpoint holds a {type(obj).__name__}, not a state dict"
        )
    return {key: np.asarray(value) for key, value in obj.items() if key not in skip}
