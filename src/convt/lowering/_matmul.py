"""`matmul`: each input pixel's stamp from one matrix product, then a depth-to-space
(stamps that overlap: the product of a few shifted copies of the input)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from convt.lowering._record import Lowering
from convt.lowering._xla import crop_axes, reshape, spatial_shape
from convt.spec import ConvTransposeSpec, effective_kernel


def stamp_widths(kernel: Sequence[int], spec: ConvTransposeSpec) -> tuple[int, ...]:
    """Strides each stamp spans, ``ceil((dilation * (k - 1) + 1) / stride)`` per axis
    (1 where the stamps do not overlap)."""
    return tuple(
        -(-effective_kernel(k, d) // s) for k, s, d in zip(kernel, spec.stride, spec.dilation)
    )


def stamps_apart(kernel: Sequence[int], spec: ConvTransposeSpec) -> bool:
    """Whether the stamps never overlap: ``dilation * (kernel - 1) + 1 <= stride`` on
    every axis (each spans one stride)."""
    return all(width == 1 for width in stamp_widths(kernel, spec))


def _kernel_padding(kernel, spec: ConvTransposeSpec, widths):
    """Each kernel axis padded to ``width * stride`` taps, the taps ``dilation`` apart
    (an interior and a high padding, ``lax.pad``'s triples), and the output crop that
    drops the last stamp's padding past the output."""
    padding, crop = [], []
    for k, s, d, width, (lo, hi) in zip(kernel, spec.stride, spec.dilation, widths, spec.crop):
        extent = effective_kernel(k, d)
        padding.append((0, width * s - extent, d - 1))
        crop.append((lo, hi + width * s - extent))
    return padding, crop


def matmul(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """One matrix product and a depth-to-space, then the crop (without bias).

    Where the dilated kernel is within the stride on every axis (`stamps_apart`), each
    input pixel's stamp is one column of the product (padded to the stride where the
    kernel is shorter, so tracing costs the same whatever the stride). Where stamps
    overlap, see `_overlapping_stamps`: the same program size whatever the number of taps.
    """
    if not stamps_apart(w.shape[2:], spec):
        return _overlapping_stamps(x, w, spec, precision, preferred_element_type)
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    letters = "abcdefgh"[:n]
    klet = "stuvwxyz"[:n]
    wg = reshape(w, (groups, c_in // groups, c_out_g, *kernel))
    spatial = spatial_shape(x, spec)
    if spec.layout == "channels_first":
        xg = reshape(x, (x.shape[0], groups, c_in // groups, *spatial))
        lhs = "NGI" + letters
        out = "NGO" + "".join(a + b for a, b in zip(letters, klet))
    else:
        xg = reshape(x, (x.shape[0], *spatial, groups, c_in // groups))
        lhs = "N" + letters + "GI"
        out = "N" + "".join(a + b for a, b in zip(letters, klet)) + "GO"
    y = jnp.einsum(
        f"{lhs},GIO{klet}->{out}",
        xg,
        wg,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    # Each stamp's taps sit `dilation` apart in a window of `stride`: the zeros between
    # and after them are an interior and a high padding of the kernel axes.
    first = 3 if spec.layout == "channels_first" else 1
    padding, crop = _kernel_padding(kernel, spec, (1,) * n)
    config = [(0, 0, 0)] * y.ndim
    for axis, axis_padding in enumerate(padding):
        config[first + 2 * axis + 1] = axis_padding
    if any(c != (0, 0, 0) for c in config):
        y = lax.pad(y, jnp.zeros((), y.dtype), config)
    full = [m * s for m, s in zip(spatial, spec.stride)]
    return _output(y, spec, shape=(x.shape[0], groups * c_out_g, *full), crop=crop)


def _overlapping_stamps(x, w, spec: ConvTransposeSpec, precision, preferred_element_type):
    """Stamps that overlap, ``width`` (`stamp_widths`) strides long: with the kernel
    padded to ``width * stride`` taps, output block ``q`` (``stride`` long) is
    ``y[q * s + r] = sum_m x[q - m] w[m * s + r]`` over ``m < width``. One GEMM of the
    ``prod(width)`` shifted copies of the input (``C_in / g * prod(width)`` deep) with
    the kernel's blocks (``C_out / g * prod(stride)`` wide) gives every block: no
    product tensor larger than the output, and ``prod(width)`` windows whatever the
    number of taps (a 512-tap kernel at stride 128 is 4 windows, where the phase forms
    trace 512 taps)."""
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    widths = stamp_widths(kernel, spec)
    spatial = spatial_shape(x, spec)
    blocks = [m + width - 1 for m, width in zip(spatial, widths)]
    # the kernel in `width` strides per axis, then each axis split (m, r)
    padding, crop = _kernel_padding(kernel, spec, widths)
    wg = reshape(w, (groups, c_in // groups, c_out_g, *kernel))
    wg = lax.pad(wg, jnp.zeros((), wg.dtype), [(0, 0, 0)] * 3 + padding)
    wg = reshape(wg, (*wg.shape[:3], *(v for ws in zip(widths, spec.stride) for v in ws)))
    # the shifted copies: block q reads pixel q - m, from the input padded width - 1 on
    # both sides
    space = spec.spatial_axes
    pad = [(0, 0, 0)] * x.ndim
    for a, width in zip(space, widths):
        pad[a] = (width - 1, width - 1, 0)
    xp = lax.pad(x, jnp.zeros((), x.dtype), pad)
    windows = []
    for shift in itertools.product(*(range(width) for width in widths)):
        start = [0] * x.ndim
        limit = list(xp.shape)
        for a, m, width, z in zip(space, shift, widths, blocks):
            start[a], limit[a] = width - 1 - m, width - 1 - m + z
        windows.append(lax.slice(xp, start, limit))
    letters, rlet = "abcdefgh"[:n], "stuvwxyz"[:n]
    window = "W"  # the shifts, flattened
    xw = jnp.stack(windows, axis=1)  # (N, W, *x's other axes)
    shape = (xw.shape[0], len(windows))
    if spec.layout == "channels_first":
        xw = reshape(xw, (*shape, groups, c_in // groups, *blocks))
        lhs = "N" + window + "GI" + letters
        out = "NGO" + "".join(a + r for a, r in zip(letters, rlet))
    else:
        xw = reshape(xw, (*shape, *blocks, groups, c_in // groups))
        lhs = "N" + window + letters + "GI"
        out = "N" + "".join(a + r for a, r in zip(letters, rlet)) + "GO"
    wg = reshape(
        jnp.transpose(wg, (0, 1, 2, *range(3, 3 + 2 * n, 2), *range(4, 4 + 2 * n, 2))),
        (groups, c_in // groups, c_out_g, len(windows), *spec.stride),
    )
    y = jnp.einsum(
        f"{lhs},GIO{window}{rlet}->{out}",
        xw,
        wg,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    full = [z * s for z, s in zip(blocks, spec.stride)]
    return _output(y, spec, shape=(x.shape[0], groups * c_out_g, *full), crop=crop)


def _output(y, spec: ConvTransposeSpec, *, shape, crop):
    """The blocks ``y``, each axis's pixels and taps adjacent, as the uncropped output
    (``shape``: ``(N, C_out, *spatial)``, laid out as the spec says), cropped."""
    if spec.layout == "channels_last":
        shape = (shape[0], *shape[2:], shape[1])
    return crop_axes(reshape(y, shape), spec, crop)


MATMUL = Lowering(name="matmul", values=matmul)
