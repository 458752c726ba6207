"""Shared test helpers: tolerances (docs/spec.md) and random arrays."""

import numpy as np

TOL = {"float32": 1e-5, "float64": 1e-12, "bfloat16": 1e-2, "float16": 1e-2}


def rel_err(actual, expected) -> float:
    """``max|actual - expected| / max|expected|``; shapes must match."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.size == 0:
        return 0.0
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


# ----------------------------------------------------------------------------------------
# An independent reference: the canonical spec's definition, in numpy, by scatter.


def _channels_first(a, spec):
    return a if spec.layout == "channels_first" else np.moveaxis(a, -1, 1)


def _channels_back(a, spec):
    return a if spec.layout == "channels_first" else np.moveaxis(a, 1, -1)


def _taps(spec, x_spatial, kernel):
    """For every kernel tap: the slices of ``y_full`` its stamp writes (one per axis)."""
    import itertools

    for tap in itertools.product(*(range(k) for k in kernel)):
        yield (
            tap,
            tuple(
                slice(j * d, j * d + (n - 1) * s + 1, s)
                for j, d, n, s in zip(tap, spec.dilation, x_spatial, spec.stride)
            ),
        )


def _crop_window(spec, full):
    """Per axis: padding of ``y_full`` for negative crops, then the kept slice."""
    pads, keep = [], []
    for (lo, hi), f in zip(spec.crop, full):
        pads.append((max(0, -lo), max(0, -hi)))
        start = max(0, lo)
        keep.append(slice(start, start + f - lo - hi))
    return pads, keep


def reference_conv_transpose(x, w, spec, b=None):
    """``y`` by the definition (docs/spec.md): every input stamps the dilated kernel at
    ``i * stride``; then crop ``(lo, hi)`` (negative extends). float64 numpy."""
    x = _channels_first(np.asarray(x, np.float64), spec)
    w = np.asarray(w, np.float64)
    g = spec.groups
    batch, c_in, *x_spatial = x.shape
    c_out_g, kernel = w.shape[1], w.shape[2:]
    full = spec.full_spatial_shape(x_spatial, kernel)
    y = np.zeros((batch, g * c_out_g, *full))
    xg = x.reshape(batch, g, c_in // g, *x_spatial)
    wg = w.reshape(g, c_in // g, c_out_g, *kernel)
    for tap, window in _taps(spec, x_spatial, kernel):
        stamp = np.einsum("ngi...,gio->ngo...", xg, wg[(..., *tap)])
        y[(slice(None), slice(None), *window)] += stamp.reshape(batch, g * c_out_g, *x_spatial)
    pads, keep = _crop_window(spec, full)
    y = np.pad(y, [(0, 0), (0, 0), *pads])[(slice(None), slice(None), *keep)]
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape(1, -1, *([1] * len(full)))
    return _channels_back(y, spec)


def reference_vjp(x, w, spec, cotangent):
    """``(dx, dw, db)`` of ``sum(cotangent * y)``, by the same definition (a gather)."""
    x = _channels_first(np.asarray(x, np.float64), spec)
    w = np.asarray(w, np.float64)
    ct = _channels_first(np.asarray(cotangent, np.float64), spec)
    g = spec.groups
    batch, c_in, *x_spatial = x.shape
    c_out_g, kernel = w.shape[1], w.shape[2:]
    full = spec.full_spatial_shape(x_spatial, kernel)
    pads, keep = _crop_window(spec, full)
    padded = [f + lo + hi for f, (lo, hi) in zip(full, pads)]
    ct_full = np.zeros((batch, ct.shape[1], *padded))
    ct_full[(slice(None), slice(None), *keep)] = ct
    unpad = tuple(slice(lo, lo + f) for (lo, _), f in zip(pads, full))
    ct_full = ct_full[(slice(None), slice(None), *unpad)].reshape(batch, g, c_out_g, *full)
    xg = x.reshape(batch, g, c_in // g, *x_spatial)
    wg = w.reshape(g, c_in // g, c_out_g, *kernel)
    dx, dw = np.zeros_like(xg), np.zeros_like(wg)
    for tap, window in _taps(spec, x_spatial, kernel):
        ct_tap = ct_full[(slice(None), slice(None), slice(None), *window)]
        dx += np.einsum("ngo...,gio->ngi...", ct_tap, wg[(..., *tap)])
        size = int(np.prod(x_spatial))
        dw[(..., *tap)] = np.einsum(
            "ngis,ngos->gio",
            xg.reshape(batch, g, c_in // g, size),
            ct_tap.reshape(batch, g, c_out_g, size),
        )
    db = ct.sum(axis=(0, *range(2, ct.ndim)))
    return _channels_back(dx.reshape(x.shape), spec), dw.reshape(w.shape), db


def xla_swap_hazard_axes(spec, kernel) -> tuple[int, ...]:
    """Axes on which an lhs-dilated convolution could make XLA abort the process.

    XLA's convolution operand swap (run by the algebraic simplifier when the kernel
    is larger than the input) keeps unchanged the window of an axis it takes for a
    "group" dimension -- zero padding, no window dilation, ``base_dilation == size``,
    window stride ``size - 1`` -- although the swapped operands have other sizes there.
    Shape inference then fails inside a CHECK and the process aborts ("Window
    dimensions do not match RHS shape"). The forward convolution matches the pattern
    on an axis with ``k == 2, stride == 2, dilation == 1`` and crop ``(1, 1)``; the
    weight-gradient convolution JAX derives from it keeps the forward's low padding
    and matches it in other cases (output length == stride, dilation == stride - 1).
    Both need a zero low padding, so every axis with zero low padding is a hazard:
    convt's ``lhs_dilated`` gives each of them one (tests/test_lowering.py checks it).
    """
    return tuple(
        a
        for a, (k, d, (lo, _)) in enumerate(zip(kernel, spec.dilation, spec.crop))
        if d * (k - 1) - lo == 0
    )
