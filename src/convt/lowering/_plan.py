"""The phase (sub-pixel) decomposition's plan: per spatial axis, which taps each stride
phase reads and where its outputs start (`AxisPlan`), and the phase forms' shared steps
(the phase kernel, the padded input and its windows, the depth-to-space assembly)."""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from convt.lowering._xla import output_lengths, reshape, spatial_shape


class AxisPlan(NamedTuple):
    """One spatial axis of the phase decomposition.

    Output ``t = q * stride + rho`` is ``sum_m x[q + offset[rho] + m * reduced] * w[tap]``
    over the phase's taps (``taps[rho, m]``; ``k`` marks a zero tap). Every phase reads
    the same window shape, so one stride-1 correlation computes ``z[u] = sum_m
    x[u + start + m * reduced] * taps[rho, m]`` for all phases at once, and phase
    ``rho`` keeps ``z[q + shift[rho]]``, ``shift = offset - start``.
    """

    taps: np.ndarray  # (stride, width) kernel indices, k for a zero tap
    start: int  # input index read by z[0] at tap 0 (the negated low padding)
    shift: tuple[int, ...]  # per phase: where its outputs start in z
    reduced: int  # spacing of a phase's taps in the input: dilation // gcd(stride, dilation)
    outputs_per_phase: int  # ceil(length / stride): ceil(length / stride)

    @property
    def width(self) -> int:
        return self.taps.shape[1]

    @property
    def z_length(self) -> int:
        return self.outputs_per_phase + max(self.shift)

    def padding(self, n: int) -> tuple[int, int]:
        """Low and high padding of the input (negative crops) for ``z``."""
        reach = (self.width - 1) * self.reduced
        return -self.start, (self.z_length - 1) + self.start + reach + 1 - n


def axis_plan(k: int, stride: int, dilation: int, lo: int, length: int) -> AxisPlan:
    """Phase decomposition of ``y[t] = y_full[t + lo]``, ``0 <= t < length``, one axis.

    Output ``t`` reads ``y_full[o]``, ``o = t + lo``; the taps ``j`` with
    ``j * dilation == o (mod stride)`` contribute ``x[(o - j * dilation) / stride]``.
    They are spaced ``period = stride / gcd`` apart and read inputs ``dilation / gcd``
    apart, so each phase is a stride-1 correlation with at most ``ceil(k / period)`` taps.
    """
    g = math.gcd(stride, dilation)
    period, reduced = stride // g, dilation // g
    rows: list[list[int]] = []
    offsets: list[int | None] = []
    for rho in range(stride):
        residue, shift = (rho + lo) % stride, (rho + lo) // stride
        first = next((j for j in range(min(k, period)) if (j * dilation) % stride == residue), None)
        taps = [] if first is None else list(range(first, k, period))
        if first is not None:
            base = (residue - first * dilation) // stride
            offsets.append(shift + base - (len(taps) - 1) * reduced)
        else:
            offsets.append(None)
        rows.append(taps[::-1])  # correlation order: the last tap reads the lowest input
    width = max(1, max(len(r) for r in rows))
    table = np.full((stride, width), k)
    for rho, row in enumerate(rows):
        table[rho, : len(row)] = row
    live = [o for o in offsets if o is not None]
    start = min(live) if live else 0
    shifts = tuple(0 if o is None else o - start for o in offsets)
    return AxisPlan(table, start, shifts, reduced, -(-length // stride))


def axis_plans(x, w, spec) -> list[AxisPlan]:
    lengths = output_lengths(x, w, spec)
    return [
        axis_plan(k, s, d, lo, length)
        for k, s, d, (lo, _), length in zip(
            w.shape[2:], spec.stride, spec.dilation, spec.crop, lengths
        )
    ]


def take_static(a, indices: np.ndarray, axis: int):
    """``jnp.take(a, indices, axis)`` for static ``indices``, as slices and one
    concatenation: its transpose is pads and adds, where a gather's is a scatter-add,
    which XLA's CPU backend runs serially (slower weight gradients: docs/benchmarks.md,
    "Design measurements")."""
    flat = [int(i) for i in indices.ravel()]
    pieces, start = [], 0
    while start < len(flat):  # runs of consecutive indices share one slice
        end = start + 1
        while end < len(flat) and flat[end] == flat[end - 1] + 1:
            end += 1
        pieces.append(lax.slice_in_dim(a, flat[start], flat[end - 1] + 1, axis=axis))
        start = end
    taken = pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces, axis=axis)
    return reshape(taken, (*a.shape[:axis], *indices.shape, *a.shape[axis + 1 :]))


def phase_kernel(w, groups, plans):
    """``(g, C_in_g, *width, P_1, ..., P_N, C_out_g)``: every phase's taps, zero-padded."""
    n = len(plans)
    c_in, c_out_g = w.shape[:2]
    if any((plan.taps == k).any() for plan, k in zip(plans, w.shape[2:])):
        w = jnp.pad(w, [(0, 0), (0, 0)] + [(0, 1)] * n)  # a zero tap at index k
    for a, plan in enumerate(plans):  # axis 2 + 2a: kernel taps -> (phase, width)
        w = take_static(w, plan.taps, axis=2 + 2 * a)
    w = reshape(w, (groups, c_in // groups, c_out_g, *w.shape[2:]))
    phase_axes = [3 + 2 * a for a in range(n)]
    width_axes = [4 + 2 * a for a in range(n)]
    return jnp.transpose(w, (0, 1, *width_axes, *phase_axes, 2))


def padded_input(x, spec, plans):
    """``x`` padded (or cropped) on its spatial axes for the common window ``z``."""
    spatial = spatial_shape(x, spec)
    config = [(0, 0, 0)] * x.ndim
    for axis, plan, n in zip(spec.spatial_axes, plans, spatial):
        config[axis] = (*plan.padding(n), 0)
    return lax.pad(x, jnp.zeros((), x.dtype), config)


def tap_windows(xp, plans):
    """Every tap's shifted view of a channels-last padded input, in row-major tap order."""
    for taps in itertools.product(*(range(p.width) for p in plans)):
        index = [slice(None)] * xp.ndim
        for axis, (t, p) in enumerate(zip(taps, plans), start=1):
            index[axis] = slice(t * p.reduced, t * p.reduced + p.z_length)
        yield xp[tuple(index)]


def deskew(z, plan: AxisPlan, space_axis: int, phase_axis: int):
    """Phase ``rho`` keeps ``z[shift[rho] : shift[rho] + count]`` on ``space_axis``.

    Runs of consecutive phases with the same shift share one static slice; no gathers,
    so the transpose (the backward pass) is pads and adds, not a scatter.
    """
    if len(set(plan.shift)) == 1:
        return lax.slice_in_dim(
            z, plan.shift[0], plan.shift[0] + plan.outputs_per_phase, axis=space_axis
        )
    pieces, rho = [], 0
    while rho < len(plan.shift):
        end = rho
        while end + 1 < len(plan.shift) and plan.shift[end + 1] == plan.shift[rho]:
            end += 1
        piece = lax.slice_in_dim(z, rho, end + 1, axis=phase_axis)
        shift = plan.shift[rho]
        pieces.append(
            lax.slice_in_dim(piece, shift, shift + plan.outputs_per_phase, axis=space_axis)
        )
        rho = end + 1
    return jnp.concatenate(pieces, axis=phase_axis)


def assemble(z, spec, plans, lengths):
    """``z (N, *Z, g, P_1..P_N, c)`` -> the output: per-phase shift, depth-to-space, crop."""
    n = spec.ndim
    batch, groups, c_out_g = z.shape[0], z.shape[n + 1], z.shape[-1]
    for a, plan in enumerate(plans):
        z = deskew(z, plan, space_axis=1 + a, phase_axis=n + 2 + a)
    # (N, Q_1..Q_N, g, P_1..P_N, c) -> (N, Q_1, P_1, ..., Q_N, P_N, g, c)
    interleaved = [ax for a in range(n) for ax in (1 + a, n + 2 + a)]
    z = jnp.transpose(z, (0, *interleaved, n + 1, 2 * n + 2))
    sizes = [p.outputs_per_phase * s for p, s in zip(plans, spec.stride)]
    z = reshape(z, (batch, *sizes, groups * c_out_g))
    z = lax.slice(z, (0,) * z.ndim, (batch, *lengths, groups * c_out_g))
    return z if spec.layout == "channels_last" else jnp.moveaxis(z, -1, 1)


def assemble_channels_first(z, spec, plans, lengths, *, batch_axis: int):
    """``z`` -> the channels-first output ``(N, g c, *lengths)``: per-phase shift,
    depth-to-space, crop (`assemble` for phases kept channels-first). ``z`` is ``(N, g,
    c, *Z, P_1..P_N)`` with ``batch_axis=0``, or ``(g, c, N, *Z, P_1..P_N)`` with
    ``batch_axis=2``."""
    n = spec.ndim
    lead = [a for a in range(3) if a != batch_axis]  # the groups' and channels' axes
    batch, channels = z.shape[batch_axis], z.shape[lead[0]] * z.shape[lead[1]]
    for a, plan in enumerate(plans):
        z = deskew(z, plan, space_axis=3 + a, phase_axis=3 + n + a)
    # -> (N, g, c, Q_1, P_1, ..., Q_N, P_N)
    interleaved = [ax for a in range(n) for ax in (3 + a, 3 + n + a)]
    z = jnp.transpose(z, (batch_axis, *lead, *interleaved))
    sizes = [p.outputs_per_phase * s for p, s in zip(plans, spec.stride)]
    z = reshape(z, (batch, channels, *sizes))
    return lax.slice(z, (0,) * z.ndim, (batch, channels, *lengths))
