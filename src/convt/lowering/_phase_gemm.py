"""`phase_gemm`: the phase decomposition as one group-batched matrix product over tap
windows."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from convt.lowering._plan import assemble, axis_plans, padded_input, phase_kernel, tap_windows
from convt.lowering._record import Lowering
from convt.lowering._xla import grouped_matmul, output_lengths, reshape
from convt.spec import ConvTransposeSpec


def phase_gemm(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """Sub-pixel decomposition as one (group-batched) matrix product over tap windows.

    The windows (a small im2col: ``prod(width)`` shifted views of the input) meet every
    phase's taps in a single GEMM, which XLA's CPU backend runs far faster than its 3-D
    or grouped convolutions, forward and backward. Channels-first inputs never change
    layout (`_phase_gemm_flat`); channels-last ones multiply ``(N * Z, T * C_in_g)``
    windows.
    """
    if spec.layout == "channels_first":
        return _phase_gemm_flat(x, w, spec, precision, preferred_element_type)
    plans = axis_plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    c_in_g = w.shape[0] // groups
    taps = math.prod(p.width for p in plans)
    kernel = phase_kernel(w, groups, plans)  # (g, C_in_g, *U, *P, c)
    kernel = jnp.moveaxis(kernel, 1, 1 + n)  # (g, *U, C_in_g, *P, c)
    kernel = reshape(kernel, (groups, taps * c_in_g, -1))
    xp = padded_input(x, spec, plans)
    # (N, *Z, T, g, C_in_g): each window a contiguous run of channels
    windows = jnp.stack(list(tap_windows(xp, plans)), axis=-2)
    windows = reshape(windows, (*windows.shape[: n + 1], taps, groups, c_in_g))
    # (N, *Z, g, T * C_in_g); sizes spelled out, as -1 is undefined for an empty batch
    windows = reshape(
        jnp.moveaxis(windows, -3, -2) if groups > 1 else windows,
        (*windows.shape[: n + 1], groups, kernel.shape[1]),
    )
    z = grouped_matmul(windows, kernel, precision, preferred_element_type)
    z = reshape(z, (*z.shape[: n + 2], *spec.stride, w.shape[1]))
    return assemble(z, spec, plans, output_lengths(x, w, spec))


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
    rows_out = plans[0].outputs_per_phase * steps[0] if plans else 1  # no spatial axes: one column
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
    plans = axis_plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    batch, c_in = x.shape[:2]
    c_in_g, c_out_g = c_in // groups, w.shape[1]
    taps = math.prod(p.width for p in plans)
    kernel = phase_kernel(w, groups, plans)  # (g, C_in_g, *U, *P, c)
    # (g, *P, c, C_in_g, *U): the GEMM's left operand with its contraction last
    kernel = jnp.transpose(kernel, (0, *range(2 + n, 3 + 2 * n), 1, *range(2, 2 + n)))
    kernel = reshape(kernel, (groups, math.prod(spec.stride) * c_out_g, c_in_g * taps))
    xp = padded_input(x, spec, plans)  # (N, C_in, *Zp)
    padded = xp.shape[2:]
    grid = _flat_grid(padded, plans, spec.stride)
    flat = reshape(xp, (batch, c_in, math.prod(padded)))
    if grid.tail:
        flat = lax.pad(flat, jnp.zeros((), flat.dtype), [(0, 0, 0), (0, 0, 0), (0, grid.tail, 0)])
    # (C_in, T, N, M), by the copy that measured fastest (docs/benchmarks.md, "Design
    # measurements"): rows of the (C_in, N, L) input stacked, or for depthwise layers the
    # (T, N, C_in, M) slices transposed
    by_rows = c_in_g > 1
    source = jnp.swapaxes(flat, 0, 1) if by_rows else flat
    taps_rows = [lax.slice_in_dim(source, o, o + grid.columns, axis=2) for o in grid.tap_offsets]
    windows = (
        jnp.stack(taps_rows, axis=1)
        if by_rows
        else jnp.transpose(jnp.stack(taps_rows), (2, 0, 1, 3))
    )
    windows = reshape(windows, (groups, c_in_g * taps, batch * grid.columns))
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
    z = reshape(z, (groups, phases, c_out_g, batch, grid.columns))
    # each phase's shift, as a slice of its row; split's transpose is a concatenation
    z = jnp.concatenate(
        [
            lax.slice_in_dim(part, o, o + grid.rows_out, axis=4)
            for part, o in zip(jnp.split(z, phases, axis=1), grid.phase_offsets)
        ],
        axis=1,
    )
    counts = [p.outputs_per_phase for p in plans]
    grid_shape = (counts[0], *padded[1:]) if n else ()  # the output rows on the padded grid
    z = reshape(z, (groups, *spec.stride, c_out_g, batch, *grid_shape))
    z = lax.slice(z, (0,) * z.ndim, (*z.shape[: n + 3], *counts))  # (g, *P, c, N, *Q)
    # (g, P_1..P_N, c, N, Q_1..Q_N) -> (N, g, c, Q_1, P_1, ..., Q_N, P_N)
    interleaved = [ax for a in range(n) for ax in (n + 3 + a, 1 + a)]
    z = jnp.transpose(z, (n + 2, 0, n + 1, *interleaved))
    sizes = [q * s for q, s in zip(counts, spec.stride)]
    z = reshape(z, (batch, groups * c_out_g, *sizes))
    lengths = output_lengths(x, w, spec)
    return lax.slice(z, (0,) * z.ndim, (batch, groups * c_out_g, *lengths))


PHASE_GEMM = Lowering(name="phase_gemm", values=phase_gemm, phased=True)
