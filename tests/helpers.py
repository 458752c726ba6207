"""Shared test helpers: tolerances (DESIGN.md) and random arrays."""

import numpy as np

TOL = {"float32": 1e-5, "float64": 1e-12, "bfloat16": 1e-2, "float16": 1e-2}


def rel_err(actual, expected) -> float:
    """``max|actual - expected| / max|expected|``; shapes must match."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.abs(expected).max()
    if scale == 0:  # zero by the layer's structure (the crop keeps only gaps): exact
        return 0.0 if not np.any(actual) else float("inf")
    return float(np.abs(actual - expected).max() / scale)


def assert_close(actual, expected, dtype="float32", factor=1.0):
    err = rel_err(actual, expected)
    assert err <= TOL[str(dtype)] * factor, (
        f"relative error {err:.3g} > {TOL[str(dtype)] * factor:.3g}"
    )


def randn(rng, shape, dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)
