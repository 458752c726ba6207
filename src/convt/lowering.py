"""Lowerings of the canonical spec to XLA.

Every function here computes exactly the same result, without bias:

* `lhs_dilated()` -- the reference (the canonical spec's definition): one lhs-dilated
  ``lax.conv_general_dilated`` with the kernel regrouped and flipped.
* `phase()` -- the sub-pixel decomposition: output positions with the same residue
  modulo the stride receive only the kernel taps of that residue. All phases share one
  stride-1 convolution (each with its own taps; phases whose inputs start at other
  offsets read shifted rows of its output), interleaved by depth-to-space. Its weight
  gradient is computed as a GEMM (see `phase()`).
* `phase_conv()` -- the same convolution, with the derivatives JAX gives it (convolutions).
* `phase_gemm()` -- the same decomposition as one group-batched matrix product
  over the taps' shifted windows (a small im2col; on channels-first inputs each window
  a contiguous slice of the flattened padded image).
* `matmul()` -- the dilated kernel within the stride (``kernel == stride`` in most
  models): the stamps do not overlap, so one matrix product and a depth-to-space give
  the full output.
* `col2im()` -- the same decomposition with the product first: one GEMM of the input
  with every tap, then each phase adds its taps' shifted products (a col2im).
* `tapsum()` -- depthwise layers (one input channel per group): the phase
  decomposition evaluated as a sum of shifted elementwise products, which XLA's CPU
  backend runs far faster than its grouped convolution.
* `adjoint()` -- the reference's values, with derivatives as the adjoint of a strided
  convolution: the input gradient that convolution, the weight gradient its own weight
  gradient (the three convolutions cuDNN runs for torch on a GPU).
* `split()` -- any two of them: values from one, derivatives from the other
  (``method="phase_gemm/col2im"``).

Arrays: ``x`` is ``(N, C_in, *spatial)`` or ``(N, *spatial, C_in)`` as the spec's layout
says; ``w`` is canonical, ``(C_in, C_out // groups, *kernel)``. Inputs are validated by
`core`; nothing here checks them again.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.sharding import PartitionSpec as P

from convt.spec import ConvTransposeSpec, effective_kernel

# The lowerings that work stride phase by stride phase (their programs grow with the
# number of phases, prod(stride)), and the most phases they are traced for.
PHASE_LOWERINGS = ("phase", "phase_conv", "phase_gemm", "col2im", "tapsum")
MAX_PHASES = 1024

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


def _reshape(a, shape):
    """``a.reshape(shape)`` that tells JAX's explicit sharding where the result lives.

    Under a mesh with ``Explicit`` axes, JAX refuses a reshape whose output sharding it
    cannot infer. The leading axes the reshape keeps whole (the batch) keep their
    sharding; the others, which these lowerings only ever split or merge locally, are
    unsharded. Without explicit axes this is a plain reshape.
    """
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        shape = tuple(a.size // known if d == -1 else d for d in shape)
    typeof = getattr(jax, "typeof", None)  # jax versions without explicit sharding lack it
    spec = getattr(getattr(typeof(a), "sharding", None), "spec", None) if typeof else None
    if not spec or all(entry is None for entry in spec):
        return a.reshape(shape)
    return lax.reshape(a, shape, out_sharding=P(*_reshaped_spec(a.shape, shape, spec)))


def _reshaped_spec(old_shape, new_shape, spec) -> list:
    """The sharding of a reshape's output: the axes are matched in blocks of equal size
    (merged or split dims; a unit axis on one side only is a block of its own); a block
    keeps the sharding of its first old axis on its first new axis (a batch merged into
    rows, or split back out) when no other axis of the block is sharded, and is
    unsharded otherwise."""
    out = [None] * len(new_shape)
    i = j = 0
    while i < len(old_shape) and j < len(new_shape):
        if (old_shape[i] == 1) != (new_shape[j] == 1):  # an inserted or dropped unit axis
            i, j = (i + 1, j) if old_shape[i] == 1 else (i, j + 1)
            continue
        i_end, j_end = i + 1, j + 1
        old_size, new_size = old_shape[i], new_shape[j]
        while old_size != new_size:
            if old_size < new_size and i_end < len(old_shape):
                old_size *= old_shape[i_end]
                i_end += 1
            elif j_end < len(new_shape):
                new_size *= new_shape[j_end]
                j_end += 1
            else:
                break
        if all(entry is None for entry in spec[i + 1 : i_end]):
            out[j] = spec[i]
        i, j = i_end, j_end
    return out


def regroup_kernel(w: jnp.ndarray, groups: int) -> jnp.ndarray:
    """``(C_in, C_out // g, *k)`` -> ``(C_out, C_in // g, *k)`` keeping group order."""
    c_in, c_out_g, *k = w.shape
    w = _reshape(w, (groups, c_in // groups, c_out_g, *k))
    w = jnp.swapaxes(w, 1, 2)
    return _reshape(w, (groups * c_out_g, c_in // groups, *k))


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


def _within_reach(padding: tuple[int, int], reach: int) -> tuple[int, int]:
    """A convolution's ``(low, high)`` padding clamped to ``[0, reach]`` (the kernel's
    reach, ``d (k - 1)``). The lowerings apply the rest outside the convolution: below 0
    it blocks cuDNN's backward-data path on GPU; beyond the reach the input-gradient
    convolution JAX derives has negative padding, which XLA's CPU backend computed
    wrongly in float32."""
    return tuple(min(max(p, 0), reach) for p in padding)


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
    """The reference lowering of the canonical spec (without bias).

    Axes from `xla_swap_hazard_axes()` get one more low padding, cropped again
    afterwards: the same values, and no window XLA can misread, forward or backward.
    The padding is never negative (larger crops are sliced afterwards) and the kernel
    is a ``reverse`` over every spatial axis, so with ``groups == 1`` and no dilation
    this is the form XLA's GPU backend hands to cuDNN as a backward-data convolution.
    """
    kernel = w.shape[2:]
    padding, post_crop = [], []
    for k, d, (lo, hi) in zip(kernel, spec.dilation, spec.crop):
        reach = d * (k - 1)
        # Padding within [0, reach] (`_within_reach`): a crop beyond the reach is sliced
        # off afterwards, an extension beyond it zero-filled afterwards. A zero low
        # padding (every `xla_swap_hazard_axes` axis has one) gets one more, sliced off.
        low, high = reach - lo, reach - hi
        conv_low, conv_high = _within_reach((low, high), reach)
        if conv_low == 0 and reach > 0:
            conv_low = 1
        padding.append((conv_low, conv_high))
        post_crop.append((conv_low - low, conv_high - high))
    rhs = jnp.flip(regroup_kernel(w, spec.groups), axis=tuple(range(2, w.ndim)))
    y = _conv(x, rhs, spec, padding, spec.dilation, spec.stride, precision, preferred_element_type)
    return crop_axes(y, spec, post_crop)


# ----------------------------------------------------------------------------------------
# The phase (sub-pixel) decomposition


class _AxisPlan(NamedTuple):
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
    count: int  # outputs per phase: ceil(length / stride)

    @property
    def width(self) -> int:
        return self.taps.shape[1]

    @property
    def z_length(self) -> int:
        return self.count + max(self.shift)

    def padding(self, n: int) -> tuple[int, int]:
        """Low and high padding of the input (negative crops) for ``z``."""
        reach = (self.width - 1) * self.reduced
        return -self.start, (self.z_length - 1) + self.start + reach + 1 - n


def _axis_plan(k: int, stride: int, dilation: int, lo: int, length: int) -> _AxisPlan:
    """Phase decomposition of ``y[t] = y_full[t + lo]``, ``0 <= t < length``, one axis.

    Output ``t`` reads ``y_full[o]``, ``o = t + lo``; the taps ``j`` with
    ``j * dilation == o (mod stride)`` contribute ``x[(o - j * dilation) / stride]``.
    They are spaced ``period = stride / gcd`` apart and read inputs ``dilation / gcd``
    apart, so each phase is a stride-1 correlation with at most ``ceil(k / period)`` taps.
    """
    g = math.gcd(stride, dilation)
    period, reduced = stride // g, dilation // g
    rows, offsets = [], []
    for rho in range(stride):
        residue, shift = (rho + lo) % stride, (rho + lo) // stride
        first = next((j for j in range(min(k, period)) if (j * dilation) % stride == residue), None)
        taps = [] if first is None else list(range(first, k, period))
        if taps:
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
    shift = tuple(0 if o is None else o - start for o in offsets)
    return _AxisPlan(table, start, shift, reduced, -(-length // stride))


def _plans(x, w, spec) -> list[_AxisPlan]:
    lengths = _output_lengths(x, w, spec)
    return [
        _axis_plan(k, s, d, lo, length)
        for k, s, d, (lo, _), length in zip(
            w.shape[2:], spec.stride, spec.dilation, spec.crop, lengths
        )
    ]


def _take_static(a, indices: np.ndarray, axis: int):
    """``jnp.take(a, indices, axis)`` for static ``indices``, as slices and one
    concatenation: its transpose is pads and adds, where a gather's is a scatter-add,
    which XLA's CPU backend runs serially (it made every phase lowering's weight
    gradient 3-5x slower, measured)."""
    flat = [int(i) for i in indices.ravel()]
    pieces, start = [], 0
    while start < len(flat):  # runs of consecutive indices share one slice
        end = start + 1
        while end < len(flat) and flat[end] == flat[end - 1] + 1:
            end += 1
        pieces.append(lax.slice_in_dim(a, flat[start], flat[end - 1] + 1, axis=axis))
        start = end
    taken = pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces, axis=axis)
    return _reshape(taken, (*a.shape[:axis], *indices.shape, *a.shape[axis + 1 :]))


def _phase_kernel(w, groups, plans):
    """``(g, C_in_g, *width, P_1, ..., P_N, C_out_g)``: every phase's taps, zero-padded."""
    n = len(plans)
    c_in, c_out_g = w.shape[:2]
    if any((plan.taps == k).any() for plan, k in zip(plans, w.shape[2:])):
        w = jnp.pad(w, [(0, 0), (0, 0)] + [(0, 1)] * n)  # a zero tap at index k
    for a, plan in enumerate(plans):  # axis 2 + 2a: kernel taps -> (phase, width)
        w = _take_static(w, plan.taps, axis=2 + 2 * a)
    w = _reshape(w, (groups, c_in // groups, c_out_g, *w.shape[2:]))
    phase_axes = [3 + 2 * a for a in range(n)]
    width_axes = [4 + 2 * a for a in range(n)]
    return jnp.transpose(w, (0, 1, *width_axes, *phase_axes, 2))


def _padded_input(x, spec, plans):
    """``x`` padded (or cropped) on its spatial axes for the common window ``z``."""
    spatial = _spatial_shape(x, spec)
    config = [(0, 0, 0)] * x.ndim
    for axis, plan, n in zip(spec.spatial_axes, plans, spatial):
        config[axis] = (*plan.padding(n), 0)
    return lax.pad(x, jnp.zeros((), x.dtype), config)


def _windows(xp, plans):
    """Every tap's shifted view of a channels-last padded input, in row-major tap order."""
    for taps in itertools.product(*(range(p.width) for p in plans)):
        index = [slice(None)] * xp.ndim
        for axis, (t, p) in enumerate(zip(taps, plans), start=1):
            index[axis] = slice(t * p.reduced, t * p.reduced + p.z_length)
        yield xp[tuple(index)]


def _deskew(z, plan: _AxisPlan, space_axis: int, phase_axis: int):
    """Phase ``rho`` keeps ``z[shift[rho] : shift[rho] + count]`` on ``space_axis``.

    Runs of consecutive phases with the same shift share one static slice; no gathers,
    so the transpose (the backward pass) is pads and adds, not a scatter.
    """
    if len(set(plan.shift)) == 1:
        return lax.slice_in_dim(z, plan.shift[0], plan.shift[0] + plan.count, axis=space_axis)
    pieces, rho = [], 0
    while rho < len(plan.shift):
        end = rho
        while end + 1 < len(plan.shift) and plan.shift[end + 1] == plan.shift[rho]:
            end += 1
        piece = lax.slice_in_dim(z, rho, end + 1, axis=phase_axis)
        shift = plan.shift[rho]
        pieces.append(lax.slice_in_dim(piece, shift, shift + plan.count, axis=space_axis))
        rho = end + 1
    return jnp.concatenate(pieces, axis=phase_axis)


def _assemble(z, spec, plans, lengths):
    """``z (N, *Z, g, P_1..P_N, c)`` -> the output: per-phase shift, depth-to-space, crop."""
    n = spec.ndim
    batch, groups, c_out_g = z.shape[0], z.shape[n + 1], z.shape[-1]
    for a, plan in enumerate(plans):
        z = _deskew(z, plan, space_axis=1 + a, phase_axis=n + 2 + a)
    # (N, Q_1..Q_N, g, P_1..P_N, c) -> (N, Q_1, P_1, ..., Q_N, P_N, g, c)
    interleaved = [ax for a in range(n) for ax in (1 + a, n + 2 + a)]
    z = jnp.transpose(z, (0, *interleaved, n + 1, 2 * n + 2))
    sizes = [p.count * s for p, s in zip(plans, spec.stride)]
    z = _reshape(z, (batch, *sizes, groups * c_out_g))
    z = lax.slice(z, (0,) * z.ndim, (batch, *lengths, groups * c_out_g))
    return z if spec.layout == "channels_last" else jnp.moveaxis(z, -1, 1)


def _channels_to_last(x, spec):
    return x if spec.layout == "channels_last" else jnp.moveaxis(x, 1, -1)


def _grouped_matmul(lhs, rhs, precision, preferred_element_type):
    """``(..., g, K) x (g, K, O) -> (..., g, O)``; for ``g == 1`` one plain 2-D GEMM
    (XLA's CPU dot with a unit batch axis ran at half the speed, measured)."""
    groups, depth, width = rhs.shape
    if groups == 1:
        lead = lhs.shape[:-2]
        out = jnp.matmul(
            _reshape(lhs, (math.prod(lead), depth)),
            rhs[0],
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
        return _reshape(out, (*lead, 1, width))
    return jnp.einsum(
        "...gk,gko->...go",
        lhs,
        rhs,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )


def phase_conv(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """The sub-pixel decomposition as one stride-1 convolution for all phases,
    interleaved (without bias), differentiated by JAX: its input and weight gradients
    are convolutions too, with the phase kernel's window and no zero-stuffing, grouped
    or dilated layers included (XLA:GPU runs all three as cuDNN convolutions, the weight
    gradient as backward-filter). `phase` keeps the forward and computes the weight
    gradient as a GEMM instead, which XLA's CPU backend runs faster."""
    plans = _plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    kernel = _phase_kernel(w, groups, plans)  # (g, I, *U, *P, c)
    phases, c_out_g = math.prod(spec.stride), w.shape[1]
    widths = [p.width for p in plans]
    # (g, I, *U, P, c) -> (g * P * c, I, *U): output channels ordered (group, phase, c)
    rhs = _reshape(kernel, (groups, w.shape[0] // groups, *widths, phases * c_out_g))
    rhs = _reshape(
        jnp.moveaxis(rhs, -1, 1), (groups * phases * c_out_g, w.shape[0] // groups, *widths)
    )
    # Padding within [0, reach] (`_within_reach`) stays fused in the convolution; the rest
    # is an explicit pad or crop of the input (padding everything explicitly made the
    # forward 1.5-1.8x slower).
    padding = []
    config = [(0, 0, 0)] * x.ndim
    for axis, plan, m in zip(spec.spatial_axes, plans, _spatial_shape(x, spec)):
        reach = (plan.width - 1) * plan.reduced
        lo, hi = plan.padding(m)
        inner = _within_reach((lo, hi), reach)
        padding.append(inner)
        config[axis] = (lo - inner[0], hi - inner[1], 0)
    xp = lax.pad(x, jnp.zeros((), x.dtype), config) if any(map(any, config)) else x
    z = _conv(
        xp,
        rhs,
        spec,
        padding,
        [p.reduced for p in plans],
        (1,) * n,
        precision,
        preferred_element_type,
    )
    z = _channels_to_last(z, spec)
    z = _reshape(z, (*z.shape[: n + 1], groups, *spec.stride, c_out_g))
    return _assemble(z, spec, plans, _output_lengths(x, w, spec))


def phase_gemm(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """Sub-pixel decomposition as one (group-batched) matrix product over tap windows.

    The windows (a small im2col: ``prod(width)`` shifted views of the input) meet every
    phase's taps in a single GEMM, which XLA's CPU backend runs far faster than its 3-D
    or grouped convolutions, forward and backward. Channels-first inputs never change
    layout (`_phase_gemm_flat`); channels-last ones multiply ``(N * Z, T * C_in_g)``
    windows.
    """
    if spec.layout == "channels_first":
        return _phase_gemm_flat(x, w, spec, precision, preferred_element_type)
    plans = _plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    c_in_g = w.shape[0] // groups
    taps = math.prod(p.width for p in plans)
    kernel = _phase_kernel(w, groups, plans)  # (g, C_in_g, *U, *P, c)
    kernel = jnp.moveaxis(kernel, 1, 1 + n)  # (g, *U, C_in_g, *P, c)
    kernel = _reshape(kernel, (groups, taps * c_in_g, -1))
    xp = _padded_input(x, spec, plans)
    # (N, *Z, T, g, C_in_g): each window a contiguous run of channels
    windows = jnp.stack(list(_windows(xp, plans)), axis=-2)
    windows = _reshape(windows, (*windows.shape[: n + 1], taps, groups, c_in_g))
    # (N, *Z, g, T * C_in_g); sizes spelled out, as -1 is undefined for an empty batch
    windows = _reshape(
        jnp.moveaxis(windows, -3, -2) if groups > 1 else windows,
        (*windows.shape[: n + 1], groups, kernel.shape[1]),
    )
    z = _grouped_matmul(windows, kernel, precision, preferred_element_type)
    z = _reshape(z, (*z.shape[: n + 2], *spec.stride, w.shape[1]))
    return _assemble(z, spec, plans, _output_lengths(x, w, spec))


class _FlatGrid(NamedTuple):
    """Offsets on the flattened padded input ``(prod(Zp),)``, row-major.

    Tap ``t`` of every window reads ``flat[v + tap_offsets[t]]`` for the GEMM column
    ``v < columns``: away from the far edges of the trailing axes (whose columns the
    output never reads) that is ``xp[u + t * reduced]`` at ``u``'s grid position. Phase
    ``rho``'s outputs ``q`` are columns ``phase_offsets[rho] + flat(q)``: its shift.
    """

    tap_offsets: tuple[int, ...]
    phase_offsets: tuple[int, ...]
    columns: int  # GEMM columns per image
    rows_out: int  # columns a phase's output spans: count_1 rows of the first axis
    tail: int  # zeros appended to the flat input so every tap's slice is in range


def _flat_grid(padded: Sequence[int], plans, stride) -> _FlatGrid:
    steps = [math.prod(padded[a + 1 :]) for a in range(len(padded))]

    def offset(positions):
        return sum(i * step for i, step in zip(positions, steps))

    tap_offsets = tuple(
        offset([t * p.reduced for t, p in zip(taps, plans)])
        for taps in itertools.product(*(range(p.width) for p in plans))
    )
    phase_offsets = tuple(
        offset([p.shift[r] for p, r in zip(plans, rho)])
        for rho in itertools.product(*(range(s) for s in stride))
    )
    rows_out = plans[0].count * steps[0] if plans else 1  # no spatial axes: one column
    columns = max(phase_offsets) + rows_out
    tail = max(0, max(tap_offsets) + columns - math.prod(padded))
    return _FlatGrid(tap_offsets, phase_offsets, columns, rows_out, tail)


def _phase_gemm_flat(x, w, spec: ConvTransposeSpec, precision, preferred_element_type):
    """`phase_gemm` for channels-first inputs, on the flattened padded image.

    Every tap's window is one contiguous slice of the flattened padded input (the
    implicit-GEMM offset trick), so the im2col copies whole rows and keeps the input's
    layout: the GEMM is ``(g, P * c, T * C_in_g) @ (g, T * C_in_g, N * M)``, and each
    phase's shift is a contiguous slice of its output row. The columns between an
    image's rows (``(width - 1) * reduced`` per trailing axis) are computed and
    dropped. Transposed (``jax.grad``), the slices are pads and concatenations: the
    cotangent is re-laid out once, and the windows' gradient is a sum of shifted rows.
    Grouped and depthwise layers gained most (measured in benchmarks/).
    """
    plans = _plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    batch, c_in = x.shape[:2]
    c_in_g, c_out_g = c_in // groups, w.shape[1]
    taps = math.prod(p.width for p in plans)
    kernel = _phase_kernel(w, groups, plans)  # (g, C_in_g, *U, *P, c)
    # (g, *P, c, C_in_g, *U): the GEMM's left operand with its contraction last
    kernel = jnp.transpose(kernel, (0, *range(2 + n, 3 + 2 * n), 1, *range(2, 2 + n)))
    kernel = _reshape(kernel, (groups, math.prod(spec.stride) * c_out_g, c_in_g * taps))
    xp = _padded_input(x, spec, plans)  # (N, C_in, *Zp)
    padded = xp.shape[2:]
    grid = _flat_grid(padded, plans, spec.stride)
    flat = _reshape(xp, (batch, c_in, math.prod(padded)))
    if grid.tail:
        flat = lax.pad(flat, jnp.zeros((), flat.dtype), [(0, 0, 0), (0, 0, 0), (0, grid.tail, 0)])
    # (C_in, T, N, M), by the copy that measured fastest: rows of the (C_in, N, L) input
    # stacked, or for depthwise layers (whose backward that made 2x slower) the
    # (T, N, C_in, M) slices transposed
    by_rows = c_in_g > 1
    source = jnp.swapaxes(flat, 0, 1) if by_rows else flat
    taps_rows = [lax.slice_in_dim(source, o, o + grid.columns, axis=2) for o in grid.tap_offsets]
    windows = (
        jnp.stack(taps_rows, axis=1)
        if by_rows
        else jnp.transpose(jnp.stack(taps_rows), (2, 0, 1, 3))
    )
    windows = _reshape(windows, (groups, c_in_g * taps, batch * grid.columns))
    if groups == 1:
        z = jnp.matmul(
            kernel[0],
            windows[0],
            precision=precision,
            preferred_element_type=preferred_element_type,
        )[None]
    else:
        z = jnp.einsum(
            "gok,gkm->gom",
            kernel,
            windows,
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
    phases = len(grid.phase_offsets)
    z = _reshape(z, (groups, phases, c_out_g, batch, grid.columns))
    # each phase's shift, as a slice of its row; split's transpose is a concatenation
    z = jnp.concatenate(
        [
            lax.slice_in_dim(part, o, o + grid.rows_out, axis=4)
            for part, o in zip(jnp.split(z, phases, axis=1), grid.phase_offsets)
        ],
        axis=1,
    )
    counts = [p.count for p in plans]
    grid_shape = (counts[0], *padded[1:]) if n else ()  # the output rows on the padded grid
    z = _reshape(z, (groups, *spec.stride, c_out_g, batch, *grid_shape))
    z = lax.slice(z, (0,) * z.ndim, (*z.shape[: n + 3], *counts))  # (g, *P, c, N, *Q)
    # (g, P_1..P_N, c, N, Q_1..Q_N) -> (N, g, c, Q_1, P_1, ..., Q_N, P_N)
    interleaved = [ax for a in range(n) for ax in (n + 3 + a, 1 + a)]
    z = jnp.transpose(z, (n + 2, 0, n + 1, *interleaved))
    sizes = [q * s for q, s in zip(counts, spec.stride)]
    z = _reshape(z, (batch, groups * c_out_g, *sizes))
    lengths = _output_lengths(x, w, spec)
    return lax.slice(z, (0,) * z.ndim, (batch, groups * c_out_g, *lengths))


def phase(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """Sub-pixel decomposition: a stride-1 convolution forward, a GEMM weight gradient.

    XLA's CPU backend computes a convolution's weight gradient 10 to 40 times slower
    than the same contraction written as a matrix product over tap windows (measured
    in benchmarks/), while its forward and input-gradient convolutions are fast. The
    custom JVP (`split`) keeps the forward and the ``x`` tangent on the convolution and
    routes the ``w`` tangent through `phase_gemm()` (grouped layers' ``x`` tangent too:
    the SPMD partitioner gathers the batch for a grouped convolution's transpose);
    reverse mode transposes each term, so ``jax.grad`` gets the fast path and forward
    mode still works.
    """
    return split("phase", "phase")(x, w, spec, precision, preferred_element_type)


def _tangent(name: str, spec: ConvTransposeSpec):
    """``tangent(x, w, dx, dw, **options)``, lowering ``name``'s tangent (``dx`` or
    ``dw`` may be ``None``): the lowering applied to each tangent, except for ``phase``
    and ``col2im`` (their docstrings say why)."""
    if name == "col2im":
        return _col2im_tangent
    if name == "phase":
        x_rule, w_rule = (phase_conv if spec.groups == 1 else phase_gemm), phase_gemm
    elif name == "adjoint":
        plain = spec.groups == 1 and all(d == 1 for d in spec.dilation)
        plain = plain or math.prod(spec.stride) > MAX_PHASES
        x_rule, w_rule = lhs_dilated, (_adjoint_weight_term if plain else phase_conv)
    else:
        x_rule = w_rule = _PLAIN[name]

    def tangent(x, w, dx, dw, **options):
        return _bilinear_tangent(
            functools.partial(x_rule, **options), functools.partial(w_rule, **options), x, w, dx, dw
        )

    return tangent


def _bilinear_tangent(x_rule, w_rule, x, w, dx, dw):
    """``x_rule(dx, w) + w_rule(x, dw)``, the tangent of a bilinear map, leaving out
    the term of an absent (``None``) tangent; at least one is present."""
    terms = [x_rule(dx, w)] if dx is not None else []
    terms += [w_rule(x, dw)] if dw is not None else []
    return sum(terms[1:], terms[0])


def split(forward: str, backward: str):
    """A lowering computing values with lowering ``forward`` and derivatives with
    ``backward``'s tangent rules (a custom JVP; reverse mode transposes the tangent
    terms, so ``jax.grad`` runs ``backward``'s transposes). Every lowering computes the
    same bilinear map, so any pair is exact; `core.choose_method` picks pairs by
    measurement, as the fastest forward and the fastest backward often differ."""

    def lowered(x, w, spec, precision=None, preferred_element_type=None):
        options = dict(
            spec=spec, precision=precision, preferred_element_type=preferred_element_type
        )
        value = functools.partial(_PLAIN[forward], **options)
        tangent = functools.partial(_tangent(backward, spec), **options)

        @jax.custom_jvp
        def f(x, w):
            return value(x, w)

        def f_jvp(primals, tangents):
            (x, w), (dx, dw) = primals, tangents
            y = f(x, w)
            dx, dw = (None if isinstance(t, SymbolicZero) else t for t in (dx, dw))
            if dx is None and dw is None:
                return y, jnp.zeros_like(y)
            return y, tangent(x, w, dx, dw)

        f.defjvp(f_jvp, symbolic_zeros=True)
        return f(x, w)

    lowered.__name__ = f"{forward}/{backward}"
    return lowered


_TAPSUM_CHANNELS = 8  # tapsum multiplies per output channel up to this many (phases x multipliers)


def tapsum(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """Depthwise phase decomposition as a sum of shifted products (``C_in == groups``)."""
    del precision  # elementwise products are exact in the input precision
    plans = _plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    dtype = preferred_element_type or jnp.result_type(x.dtype, w.dtype)
    kernel = _phase_kernel(w, groups, plans).astype(dtype)  # (g, 1, *U, *P, c)
    kernel = _reshape(kernel, (groups, math.prod(p.width for p in plans), -1))  # (g, T, P * c)
    xp = _channels_to_last(_padded_input(x.astype(dtype), spec, plans), spec)
    windows = list(_windows(xp, plans))  # each (N, *Z, g)
    if kernel.shape[-1] <= _TAPSUM_CHANNELS:
        # one output channel (phase and multiplier) at a time: each product scales a
        # window by one weight per group, and the transposes are products too
        # (broadcasting the windows over the output channels made XLA materialise the
        # broadcasts and reduce over them in the backward, 1.7x slower, measured)
        outputs = []
        for q in range(kernel.shape[-1]):
            z = None
            for t, window in enumerate(windows):
                term = window * kernel[:, t, q]
                z = term if z is None else z + term
            outputs.append(z)
        z = jnp.stack(outputs, axis=-1)  # (N, *Z, g, P * c)
    else:  # many phases or multipliers: T broadcast products compile much faster
        z = None
        for t, window in enumerate(windows):
            term = window[..., None] * kernel[:, t]
            z = term if z is None else z + term
    z = _reshape(z, (*z.shape[: n + 2], *spec.stride, w.shape[1]))
    return _assemble(z, spec, plans, _output_lengths(x, w, spec))


def _shifted_term(products, window, plans, spatial):
    """``z[u] = products[u + window * reduced - pad_lo]`` over ``u < z_length`` on
    every spatial axis of one tap's ``(N, *X, g, c)`` products: a slice, zero-extended
    where it runs past them (padding each term, not the whole product tensor, which a
    stride-1 layer's many windows would inflate many times over). ``None`` when
    nothing is in range."""
    index, config = [slice(None)] * products.ndim, [(0, 0, 0)] * products.ndim
    for a, (m, plan, n) in enumerate(zip(window, plans, spatial)):
        start = m * plan.reduced - plan.padding(n)[0]  # first product row z[0] reads
        lo, hi = max(start, 0), min(start + plan.z_length, n)
        if hi <= lo:
            return None
        index[1 + a] = slice(lo, hi)
        config[1 + a] = (lo - start, start + plan.z_length - hi, 0)
    term = products[tuple(index)]
    return lax.pad(term, jnp.zeros((), term.dtype), config) if any(map(any, config)) else term


def col2im(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """Sub-pixel decomposition with the product first: one GEMM, then overlap-adds.

    ``prod[v, c, j] = sum_i x[v, i] * w[i, c, j]`` contracts only the input channels:
    one GEMM of ``N * prod(X)`` rows, ``C_in / g`` deep and ``C_out / g * prod(k)`` wide,
    the useful flops exactly. Each phase then adds its taps' shifted products
    (``z[u, rho] = sum_m prod[u + m * reduced, taps[rho, m]]``, a col2im); the
    transpose (``jax.grad``) is an im2col of the cotangent and two GEMMs. Fastest where
    the GEMM dominates: many input channels over a small image (measured in
    benchmarks/).

    The values keep each output channel's taps together (``(.., c, *k)``, the weight as
    stored): the overlap-adds fuse with the re-layout to channels-first, which reads
    them channel by channel. The derivatives (`split`) put the taps first
    (``(.., *k, c)``): the im2col of the cotangent then copies runs of channels; in
    the other order it ran 2-4x slower (measured), as did the values in this one.
    """
    return split("col2im", "col2im")(x, w, spec, precision, preferred_element_type)


def _col2im(
    x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None, taps_first=False
):
    prod = _col2im_products(x, w, spec, precision, preferred_element_type, taps_first)
    return _col2im_overlap(prod, x, w, spec, taps_first)


def _col2im_tangent(x, w, dx, dw, *, spec, precision=None, preferred_element_type=None):
    """``col2im``'s tangent, ``dx`` and ``dw`` (either ``None``) through one overlap-add
    of the tangent products, taps first: its transpose builds the cotangent's im2col
    once for both gradients, and the program holds one copy of the overlap-adds."""
    products = functools.partial(
        _col2im_products,
        spec=spec,
        precision=precision,
        preferred_element_type=preferred_element_type,
        taps_first=True,
    )
    prod = _bilinear_tangent(products, products, x, w, dx, dw)
    return _col2im_overlap(prod, x, w, spec, taps_first=True)


def _col2im_products(x, w, spec, precision, preferred_element_type, taps_first):
    """``(N, *X, g, C_out_g * prod(k))``, each output channel's taps together, or
    ``(N, *X, g, prod(k) * C_out_g)`` with ``taps_first``."""
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    c_in_g = c_in // groups
    xl = _channels_to_last(x, spec)
    wg = _reshape(w, (groups, c_in_g, c_out_g, math.prod(kernel)))
    return _grouped_matmul(
        _reshape(xl, (*xl.shape[: n + 1], groups, c_in_g)),
        _reshape(jnp.swapaxes(wg, 2, 3) if taps_first else wg, (groups, c_in_g, -1)),
        precision,
        preferred_element_type,
    )


def _col2im_overlap(prod, x, w, spec, taps_first):
    """Each phase's sum of its taps' shifted products, interleaved and cropped."""
    plans = _plans(x, w, spec)
    n = spec.ndim
    _, c_out_g, *kernel = w.shape
    lead, groups = prod.shape[: n + 1], spec.groups
    # one (N, *X, g, c) piece per tap: split's transpose is a concatenation, so the
    # im2col of the cotangent is one copy (indexing the taps transposed to a sum of
    # padded one-tap tensors, 10x slower, measured)
    prod = _reshape(
        prod, (*lead, groups, *((*kernel, c_out_g) if taps_first else (c_out_g, *kernel)))
    )
    # split one kernel axis at a time: the transposes are then k-way concatenations, which
    # XLA compiles 2.5x faster than one prod(k)-way concatenation (3-D k4: 1.55 -> 0.64 s)
    pieces = [prod]
    for a in range(len(kernel)):
        axis = n + 2 + a if taps_first else n + 3 + a
        pieces = [q for p in pieces for q in jnp.split(p, kernel[a], axis=axis)]
    pieces = [_reshape(p, (*lead, groups, c_out_g)) for p in pieces]
    spatial = _spatial_shape(x, spec)
    phases = []
    for rho in itertools.product(*(range(s) for s in spec.stride)):
        z = None
        for window in itertools.product(*(range(p.width) for p in plans)):
            taps = [int(p.taps[r, m]) for p, r, m in zip(plans, rho, window)]
            if any(t == k for t, k in zip(taps, kernel)):
                continue  # a zero tap: this phase has fewer taps on that axis
            piece = pieces[int(np.ravel_multi_index(taps, kernel))]
            term = _shifted_term(piece, window, plans, spatial)
            if term is not None:
                z = term if z is None else z + term
        phases.append(z)
    if any(z is None for z in phases):  # phases no tap reaches (or an empty crop window)
        index = (slice(None), *[slice(0, 0)] * n, slice(None), slice(None))
        config = [(0, 0, 0), *[(0, p.z_length, 0) for p in plans], (0, 0, 0), (0, 0, 0)]
        # zeros padded from an empty slice of the products keep their batch sharding
        zero = lax.pad(pieces[0][index], jnp.zeros((), prod.dtype), config)
        phases = [zero if z is None else z for z in phases]
    z = jnp.stack(phases, axis=-2)  # (N, *Z, g, P, c)
    z = _reshape(z, (*z.shape[:-2], *spec.stride, c_out_g))
    return _assemble(z, spec, plans, _output_lengths(x, w, spec))


# ----------------------------------------------------------------------------------------
# The adjoint of a strided convolution


def _adjoint_crops(kernel, spec: ConvTransposeSpec):
    """Per axis, the crop the adjoint's convolutions apply (within ``[0, reach]``,
    `_within_reach`) and the rest, applied to their result by `crop_axes`."""
    inner, rest = [], []
    for k, d, crop in zip(kernel, spec.dilation, spec.crop):
        within = _within_reach(crop, d * (k - 1))
        inner.append(within)
        rest.append((crop[0] - within[0], crop[1] - within[1]))
    return tuple(inner), tuple(rest)


def _strided_conv(u, w, *, spec: ConvTransposeSpec, crop, precision=None):
    """``C``: the strided forward convolution of which the transposed convolution is the
    adjoint, ``C(u)[i] = sum_j u[i * stride + j * dilation - lo] * w[:, :, j]``: the
    canonical weight read as ``(O, I, *k)`` = ``(C_in, C_out // groups, *k)``, unflipped,
    ``window_strides`` = stride, padding = the crop, ``rhs_dilation`` = dilation,
    ``feature_group_count`` = groups. It maps ``(N, C_out, *out)`` to ``(N, C_in, *in)``."""
    return lax.conv_general_dilated(
        u,
        w,
        window_strides=spec.stride,
        padding=crop,
        rhs_dilation=spec.dilation,
        dimension_numbers=dimension_numbers(spec),
        feature_group_count=spec.groups,
        precision=precision,
    )


def _adjoint_weight_term(
    x, dw, spec: ConvTransposeSpec, precision=None, preferred_element_type=None
):
    """The transposed convolution of ``x`` with ``dw``, written as the transpose of
    ``G: u -> dC(u)/dw`` at cotangent ``x`` (``C``'s weight gradient, `_strided_conv`).

    Linear in ``dw``; reverse mode transposes it back into ``G`` itself, a convolution of
    the cotangent with ``x`` over the kernel's window (``window_strides`` = dilation,
    ``rhs_dilation`` = stride): the weight gradient XLA's GPU backend hands to cuDNN as
    a backward-filter convolution. The weight gradient JAX derives from the lhs-dilated
    form keeps the base dilation instead and runs as a forward convolution whose window
    is the whole image (jax#31662).
    """
    inner, rest = _adjoint_crops(dw.shape[2:], spec)
    inner_spec = dataclasses.replace(spec, crop=inner)
    dtype = jnp.dtype(preferred_element_type or jnp.result_type(x, dw))
    y_shape = inner_spec.output_shape(x.shape, dw.shape)
    x_, dw_ = x.astype(dtype), dw.astype(dtype)

    def weight_gradient(u):
        _, pullback = jax.vjp(
            lambda v: _strided_conv(u, v, spec=spec, crop=inner, precision=precision), dw_
        )
        return pullback(x_)[0]

    (y,) = jax.linear_transpose(weight_gradient, jax.ShapeDtypeStruct(y_shape, dtype))(dw_)
    return crop_axes(y, spec, rest)


def adjoint(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """The transposed convolution as the adjoint of `_strided_conv` ``C``, with the
    three convolutions torch's CUDA path runs (without bias).

    Values: the lhs-dilated convolution (`lhs_dilated`; XLA:GPU makes it cuDNN's
    backward-data convolution when the layer is ungrouped and undilated). Input
    gradient: ``C`` applied to the cotangent (the transpose of the lhs-dilated form; a
    cuDNN forward convolution). Weight gradient: ``C``'s own weight gradient at cotangent
    ``x`` (`_adjoint_weight_term`; cuDNN backward-filter), each with the kernel's
    window. Grouped and dilated layers take the weight gradient of `phase_conv` instead:
    JAX transposes ``C``'s weight gradient back into a convolution with feature groups,
    and XLA:GPU runs that, and a dilated one, as a forward convolution over the whole
    image; the phase convolution's weight gradient is a backward-filter convolution
    with the phase kernel's window, batch groups and dilation included. A custom JVP
    (`split`) whose terms reverse mode transposes, so forward mode and higher
    derivatives work too.
    ``"phase_conv/adjoint"`` keeps these derivatives with a forward that needs no
    zero-stuffing (grouped and dilated layers, which XLA:GPU does not hand to
    backward-data).
    """
    return split("adjoint", "adjoint")(x, w, spec, precision, preferred_element_type)


# ----------------------------------------------------------------------------------------
# Non-overlapping stamps: the dilated kernel within the stride


def stamps_apart(kernel: Sequence[int], spec: ConvTransposeSpec) -> bool:
    """Whether the stamps never overlap: ``dilation * (kernel - 1) + 1 <= stride`` on
    every axis (`matmul` applies)."""
    return all(effective_kernel(k, d) <= s for k, s, d in zip(kernel, spec.stride, spec.dilation))


def matmul(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """One matrix product and a depth-to-space, then the crop (without bias).

    Needs stamps that do not overlap: the dilated kernel within the stride on every axis
    (`stamps_apart`). Where it is shorter (``kernel < stride``), each stamp is padded
    to the stride, so tracing costs the same whatever the stride.
    """
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    letters = "abcdefgh"[:n]
    klet = "stuvwxyz"[:n]
    wg = _reshape(w, (groups, c_in // groups, c_out_g, *kernel))
    spatial = _spatial_shape(x, spec)
    if spec.layout == "channels_first":
        xg = _reshape(x, (x.shape[0], groups, c_in // groups, *spatial))
        lhs = "NGI" + letters
        out = "NGO" + "".join(a + b for a, b in zip(letters, klet))
    else:
        xg = _reshape(x, (x.shape[0], *spatial, groups, c_in // groups))
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
    config, crop = [(0, 0, 0)] * y.ndim, []
    for axis, (k, s, d, (lo, hi)) in enumerate(zip(kernel, spec.stride, spec.dilation, spec.crop)):
        extent = effective_kernel(k, d)
        config[first + 2 * axis + 1] = (0, s - extent, d - 1)
        crop.append((lo, hi + s - extent))  # the last stamp's padding is past the output
    if any(c != (0, 0, 0) for c in config):
        y = lax.pad(y, jnp.zeros((), y.dtype), config)
    full = [m * s for m, s in zip(spatial, spec.stride)]
    if spec.layout == "channels_first":
        y = _reshape(y, (x.shape[0], groups * c_out_g, *full))
    else:
        y = _reshape(y, (x.shape[0], *full, groups * c_out_g))
    return crop_axes(y, spec, crop)


LOWERINGS = {
    "lhs_dilated": lhs_dilated,
    "phase": phase,
    "phase_conv": phase_conv,
    "phase_gemm": phase_gemm,
    "col2im": col2im,
    "matmul": matmul,
    "tapsum": tapsum,
    "adjoint": adjoint,
}
# Without custom derivatives (the tangent rules of `split`): `phase`'s forward is its
# convolution, `col2im`'s keeps the taps last, `adjoint`'s is the lhs-dilated one.
_PLAIN = {**LOWERINGS, "phase": phase_conv, "col2im": _col2im, "adjoint": lhs_dilated}


def lower(method: str):
    """The function for ``method``: a name from `LOWERINGS`, or ``"forward/backward"``
    (values from one lowering, derivatives from another; see `split`)."""
    forward, _, backward = method.partition("/")
    if not backward or backward == forward:
        return LOWERINGS[forward]
    return split(forward, backward)
