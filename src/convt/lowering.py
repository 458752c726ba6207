"""Lowerings of the canonical spec to XLA.

Every function here computes exactly the same result, without bias:

* :func:`lhs_dilated` -- the reference (DESIGN.md): one lhs-dilated
  ``lax.conv_general_dilated`` with the kernel regrouped and flipped.
* :func:`phase` -- the sub-pixel decomposition: output positions with the same residue
  modulo the stride receive only the kernel taps of that residue. Phases whose input
  offsets agree modulo the reduced dilation share one stride-1 convolution (all of them
  when ``dilation`` divides ``stride``); the results interleave by depth-to-space.
* :func:`matmul` -- ``kernel == stride`` and ``dilation == 1``: the stamps do not
  overlap, so one matrix product and a depth-to-space give the full output.
* :func:`tapsum` -- depthwise layers (one input channel per group): the phase
  decomposition evaluated as a sum of shifted elementwise products, which XLA's CPU
  backend runs far faster than its grouped convolution.

Arrays: ``x`` is ``(N, C_in, *spatial)`` or ``(N, *spatial, C_in)`` as the spec's layout
says; ``w`` is canonical, ``(C_in, C_out // groups, *kernel)``. Inputs are validated by
:mod:`convt.core`; nothing here checks them again.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from convt.spec import ConvTransposeSpec

# ----------------------------------------------------------------------------------------
# Shared helpers


def dimension_numbers(spec: ConvTransposeSpec) -> lax.ConvDimensionNumbers:
    """Dimension numbers for ``x`` in the spec's layout and an ``(O, I, *k)`` kernel."""
    n = spec.ndim
    spatial = tuple(range(2, n + 2))
    rhs = (0, 1, *spatial)
    if spec.layout == "channels_first":
        lhs = (0, 1, *spatial)
    else:
        lhs = (0, n + 1, *range(1, n + 1))
    return lax.ConvDimensionNumbers(lhs_spec=lhs, rhs_spec=rhs, out_spec=lhs)


def regroup_kernel(w: jnp.ndarray, groups: int) -> jnp.ndarray:
    """``(C_in, C_out // g, *k)`` -> ``(C_out, C_in // g, *k)`` keeping group order."""
    c_in, c_out_g, *k = w.shape
    w = w.reshape(groups, c_in // groups, c_out_g, *k)
    w = jnp.swapaxes(w, 1, 2)
    return w.reshape(groups * c_out_g, c_in // groups, *k)


def _spatial_shape(x: jnp.ndarray, spec: ConvTransposeSpec) -> tuple[int, ...]:
    return tuple(x.shape[a] for a in spec.spatial_axes)


def _output_lengths(x, w, spec) -> tuple[int, ...]:
    return spec.output_spatial_shape(_spatial_shape(x, spec), w.shape[2:])


def crop_axes(
    y: jnp.ndarray, spec: ConvTransposeSpec, crop: Sequence[tuple[int, int]]
) -> jnp.ndarray:
    """Crops (positive) or zero-extends (negative) the spatial axes of ``y``."""
    config = [(0, 0, 0)] * y.ndim
    for axis, (lo, hi) in zip(spec.spatial_axes, crop):
        config[axis] = (-lo, -hi, 0)
    if all(c == (0, 0, 0) for c in config):
        return y
    return lax.pad(y, jnp.zeros((), y.dtype), config)


def _conv(x, rhs, spec, padding, rhs_dilation, lhs_dilation, precision, preferred_element_type):
    return lax.conv_general_dilated(
        x,
        rhs,
        window_strides=(1,) * spec.ndim,
        padding=tuple(padding),
        lhs_dilation=tuple(lhs_dilation),
        rhs_dilation=tuple(rhs_dilation),
        dimension_numbers=dimension_numbers(spec),
        feature_group_count=spec.groups,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )


# ----------------------------------------------------------------------------------------
# The reference: lhs-dilated convolution


def xla_swap_hazard_axes(spec: ConvTransposeSpec, kernel: Sequence[int]) -> tuple[int, ...]:
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
    Both need a zero low padding, so every axis with zero low padding is a hazard.
    """
    return tuple(
        a
        for a, (k, d, (lo, _)) in enumerate(zip(kernel, spec.dilation, spec.crop))
        if d * (k - 1) - lo == 0
    )


def lhs_dilated(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """DESIGN.md's reference lowering (without bias).

    Axes from :func:`xla_swap_hazard_axes` get one more low padding, cropped again
    afterwards: the same values, and no window XLA can misread, forward or backward.
    """
    kernel = w.shape[2:]
    hazards = xla_swap_hazard_axes(spec, kernel)
    padding, post_crop = [], []
    for a, (k, d, (lo, hi)) in enumerate(zip(kernel, spec.dilation, spec.crop)):
        reach = d * (k - 1)
        shift = 1 if a in hazards else 0
        padding.append((reach - lo + shift, reach - hi))
        post_crop.append((shift, 0))
    rhs = jnp.flip(regroup_kernel(w, spec.groups), axis=tuple(range(2, w.ndim)))
    y = _conv(x, rhs, spec, padding, spec.dilation, spec.stride, precision, preferred_element_type)
    return crop_axes(y, spec, post_crop)


# ----------------------------------------------------------------------------------------
# The phase (sub-pixel) decomposition


class _AxisPhase(NamedTuple):
    taps: tuple[int, ...]  # kernel indices in correlation order (may be empty)
    offset: int  # input index read by correlation tap 0 for phase output 0


class _AxisPlan(NamedTuple):
    phases: tuple[_AxisPhase, ...]  # one per output residue 0 .. stride-1
    reduced_dilation: int  # dilation // gcd(stride, dilation): spacing of a phase's taps
    count: int  # outputs per phase: ceil(length / stride)


def _axis_plan(k: int, stride: int, dilation: int, lo: int, length: int) -> _AxisPlan:
    """Per-axis phase decomposition of ``y[t] = y_full[t + lo]``, ``0 <= t < length``.

    Output ``t = q * stride + rho`` reads ``y_full[o]``, ``o = t + lo``; the taps ``j``
    with ``j * dilation == o (mod stride)`` contribute ``x[(o - j * dilation) / stride]``.
    Those taps are spaced by ``period = stride / gcd``; consecutive ones read inputs
    ``dilation / gcd`` apart, so each phase is a stride-1 correlation.
    """
    g = math.gcd(stride, dilation)
    period, reduced = stride // g, dilation // g
    phases = []
    for rho in range(stride):
        residue, shift = (rho + lo) % stride, (rho + lo) // stride
        first = next((j for j in range(min(k, period)) if (j * dilation) % stride == residue), None)
        if first is None:
            phases.append(_AxisPhase((), 0))
            continue
        taps = tuple(range(first, k, period))
        base = (residue - first * dilation) // stride
        # Correlation order: the last tap reads the smallest input index.
        offset = shift + base - (len(taps) - 1) * reduced
        phases.append(_AxisPhase(tuple(reversed(taps)), offset))
    return _AxisPlan(tuple(phases), reduced, -(-length // stride))


class _Block(NamedTuple):
    """Phases of one axis that share a convolution: same offset modulo the dilation."""

    residues: tuple[int, ...]
    start: int  # smallest input index read (the convolution's negated low padding)
    index: np.ndarray  # (len(residues), width): kernel tap, or k for a zero tap


def _axis_blocks(plan: _AxisPlan, k: int) -> list[_Block]:
    d = plan.reduced_dilation
    live = [r for r, p in enumerate(plan.phases) if p.taps]
    if not live:  # every phase is empty: one zero tap keeps the shapes simple
        return [_Block(tuple(range(len(plan.phases))), 0, np.full((len(plan.phases), 1), k))]
    classes: dict[int, list[int]] = {}
    for r in live:
        classes.setdefault(plan.phases[r].offset % d, []).append(r)
    dead = [r for r, p in enumerate(plan.phases) if not p.taps]
    if dead:  # empty phases ride along with the first class, with zero taps
        classes[next(iter(classes))].extend(dead)
    blocks = []
    for residues in classes.values():
        residues = sorted(residues)
        start = min(plan.phases[r].offset for r in residues if plan.phases[r].taps)
        lead = {r: (plan.phases[r].offset - start) // d for r in residues if plan.phases[r].taps}
        width = max(lead[r] + len(plan.phases[r].taps) for r in lead)
        index = np.full((len(residues), width), k)
        for row, r in enumerate(residues):
            if r in lead:
                index[row, lead[r] : lead[r] + len(plan.phases[r].taps)] = plan.phases[r].taps
        blocks.append(_Block(tuple(residues), start, index))
    return blocks


def _block_kernel(w, groups, indices: Sequence[np.ndarray]):
    """Kernel ``(g * P * C_out_g, C_in_g, *width)`` of one block (``P`` phases per group).

    Output channels are ordered ``(group, phase_1, ..., phase_N, c_out_g)``.
    """
    n = len(indices)
    c_in, c_out_g = w.shape[:2]
    w = jnp.pad(w, [(0, 0), (0, 0)] + [(0, 1)] * n)  # a zero tap at index k
    for a, index in enumerate(indices):
        # axis 2 + 2a holds axis a's kernel taps; take() expands it to (phases, width).
        w = jnp.take(w, jnp.asarray(index), axis=2 + 2 * a)
    # w: (C_in, C_out_g, P1, U1, ..., PN, UN)
    w = w.reshape(groups, c_in // groups, c_out_g, *w.shape[2:])
    phase_axes = [3 + 2 * a for a in range(n)]
    width_axes = [4 + 2 * a for a in range(n)]
    w = jnp.transpose(w, (0, *phase_axes, 2, 1, *width_axes))
    phases = math.prod(index.shape[0] for index in indices)
    return w.reshape(groups * phases * c_out_g, c_in // groups, *(i.shape[1] for i in indices))


def _block_padding(block_starts, widths, plans, spatial):
    padding = []
    for start, width, plan, n in zip(block_starts, widths, plans, spatial):
        reach = (width - 1) * plan.reduced_dilation
        padding.append((-start, (plan.count - 1) + start + reach + 1 - n))
    return padding


def _interleave(parts, spec, plans, blocks_per_axis, groups, c_out_g, lengths):
    """Assembles block outputs into the output array (depth-to-space, then crop).

    ``parts`` maps a tuple of block numbers to that block's convolution output.
    """
    n = spec.ndim
    batch = next(iter(parts.values())).shape[0]
    counts = tuple(p.count for p in plans)
    strides = spec.stride

    def split(y, blocks):  # channels -> (g, P_1, ..., P_N, c_out_g), channels first
        phases = tuple(len(b.residues) for b in blocks)
        if spec.layout == "channels_last":
            y = jnp.moveaxis(y, -1, 1)
        return y.reshape(batch, groups, *phases, c_out_g, *counts)

    def assemble(prefix):
        if len(prefix) == n:
            return split(parts[prefix], [blocks_per_axis[a][b] for a, b in enumerate(prefix)])
        a = len(prefix)
        pieces = [assemble(prefix + (b,)) for b in range(len(blocks_per_axis[a]))]
        return pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces, axis=2 + a)

    y = assemble(())  # (N, g, P_1..P_N, c_out_g, Q_1..Q_N), phases in block order
    for a in range(n):
        order = [r for b in blocks_per_axis[a] for r in b.residues]
        if order != list(range(strides[a])):
            y = jnp.take(y, jnp.asarray(np.argsort(order)), axis=2 + a)
    # (N, g, P.., c, Q..) -> (N, g, c, Q_1, P_1, ..., Q_N, P_N) or channels last
    q_axes = [3 + n + a for a in range(n)]
    p_axes = [2 + a for a in range(n)]
    interleaved = [ax for pair in zip(q_axes, p_axes) for ax in pair]
    if spec.layout == "channels_first":
        y = jnp.transpose(y, (0, 1, 2 + n, *interleaved))
        y = y.reshape(batch, groups * c_out_g, *(q * s for q, s in zip(counts, strides)))
    else:
        y = jnp.transpose(y, (0, *interleaved, 1, 2 + n))
        y = y.reshape(batch, *(q * s for q, s in zip(counts, strides)), groups * c_out_g)
    extra = [(0, q * s - length) for q, s, length in zip(counts, strides, lengths)]
    return crop_axes(y, spec, extra)


def _phase_blocks(x, w, spec):
    kernel = w.shape[2:]
    lengths = _output_lengths(x, w, spec)
    plans = [
        _axis_plan(k, s, d, lo, length)
        for k, s, d, (lo, _), length in zip(kernel, spec.stride, spec.dilation, spec.crop, lengths)
    ]
    blocks = [_axis_blocks(plan, k) for plan, k in zip(plans, kernel)]
    return lengths, plans, blocks


def phase(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """Sub-pixel decomposition: stride-1 convolutions interleaved (without bias)."""
    lengths, plans, blocks = _phase_blocks(x, w, spec)
    spatial = _spatial_shape(x, spec)
    parts = {}
    for combo in itertools.product(*(range(len(b)) for b in blocks)):
        chosen = [blocks[a][b] for a, b in enumerate(combo)]
        rhs = _block_kernel(w, spec.groups, [b.index for b in chosen])
        padding = _block_padding(
            [b.start for b in chosen], [b.index.shape[1] for b in chosen], plans, spatial
        )
        dilation = [p.reduced_dilation for p in plans]
        parts[combo] = _conv(
            x, rhs, spec, padding, dilation, (1,) * spec.ndim, precision, preferred_element_type
        )
    return _interleave(parts, spec, plans, blocks, spec.groups, w.shape[1], lengths)


def tapsum(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """Depthwise phase decomposition as a sum of shifted products (``C_in == groups``)."""
    del precision  # elementwise products are exact in the input precision
    lengths, plans, blocks = _phase_blocks(x, w, spec)
    spatial = _spatial_shape(x, spec)
    n, groups, c_out_g = spec.ndim, spec.groups, w.shape[1]
    dtype = preferred_element_type or jnp.result_type(x.dtype, w.dtype)
    # Channels first with a singleton "per-group outputs" axis: (N, g, 1, *spatial).
    xs = x if spec.layout == "channels_first" else jnp.moveaxis(x, -1, 1)
    xs = xs.astype(dtype)[:, :, None]
    parts = {}
    for combo in itertools.product(*(range(len(b)) for b in blocks)):
        chosen = [blocks[a][b] for a, b in enumerate(combo)]
        rhs = _block_kernel(w, groups, [b.index for b in chosen]).astype(dtype)
        widths = [b.index.shape[1] for b in chosen]
        rhs = rhs.reshape(groups, -1, *widths)  # (g, P * c_out_g, *width)
        padding = _block_padding([b.start for b in chosen], widths, plans, spatial)
        xp = lax.pad(
            xs, jnp.zeros((), dtype), [(0, 0, 0)] * 3 + [(lo, hi, 0) for lo, hi in padding]
        )
        acc = None
        for taps in itertools.product(*(range(u) for u in widths)):
            window = xp[
                (slice(None),) * 3
                + tuple(
                    slice(t * p.reduced_dilation, t * p.reduced_dilation + p.count)
                    for t, p in zip(taps, plans)
                )
            ]
            term = window * rhs[(slice(None), slice(None), *taps)][(None, ...) + (None,) * n]
            acc = term if acc is None else acc + term
        acc = acc.reshape(acc.shape[0], groups * acc.shape[2], *acc.shape[3:])
        parts[combo] = acc if spec.layout == "channels_first" else jnp.moveaxis(acc, 1, -1)
    return _interleave(parts, spec, plans, blocks, groups, c_out_g, lengths)


# ----------------------------------------------------------------------------------------
# Non-overlapping stamps: kernel == stride, dilation == 1


def matmul(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """One matrix product and a depth-to-space, then the crop (without bias)."""
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    letters = "abcdefgh"[:n]
    klet = "stuvwxyz"[:n]
    wg = w.reshape(groups, c_in // groups, c_out_g, *kernel)
    spatial = _spatial_shape(x, spec)
    if spec.layout == "channels_first":
        xg = x.reshape(x.shape[0], groups, c_in // groups, *spatial)
        lhs = "NGI" + letters
        out = "NGO" + "".join(a + b for a, b in zip(letters, klet))
    else:
        xg = x.reshape(x.shape[0], *spatial, groups, c_in // groups)
        lhs = "N" + letters + "GI"
        out = "N" + "".join(a + b for a, b in zip(letters, klet)) + "GO"
    y = jnp.einsum(
        f"{lhs},GIO{klet}->{out}",
        xg,
        wg,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    full = [m * k for m, k in zip(spatial, kernel)]
    if spec.layout == "channels_first":
        y = y.reshape(x.shape[0], groups * c_out_g, *full)
    else:
        y = y.reshape(x.shape[0], *full, groups * c_out_g)
    return crop_axes(y, spec, spec.crop)


LOWERINGS = {
    "lhs_dilated": lhs_dilated,
    "phase": phase,
    "matmul": matmul,
    "tapsum": tapsum,
}
