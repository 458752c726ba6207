"""`col2im`: the phase decomposition with the product first (one GEMM, then
overlap-adds)."""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from convt.lowering._plan import assemble, axis_plans
from convt.lowering._record import Lowering, bilinear_tangent
from convt.lowering._xla import (
    channels_to_last,
    grouped_matmul,
    output_lengths,
    reshape,
    spatial_shape,
)
from convt.spec import ConvTransposeSpec

# Kernels with more taps than this sum the derivatives' overlap-adds in `_framed_sum`'s
# frame; smaller ones per piece (`_shifted_term`: as fast, and no padded copies of the
# cotangent).
FRAMED_TAPS = 16


def _read_start(m: int, plan, n: int) -> int:
    """The row of a piece (``n`` long on this axis) that ``z[0]`` reads at window ``m``."""
    return m * plan.reduced - plan.padding(n)[0]


def _read_rows(m: int, plan, n: int) -> tuple[int, int, int]:
    """``(start, lo, hi)``: `_read_start`, and the rows ``[lo, hi)`` of the piece that
    ``z`` reads (empty where it reads none)."""
    start = _read_start(m, plan, n)
    return start, max(start, 0), min(start + plan.z_length, n)


def _reaches(window, plans, spatial) -> bool:
    """Whether a piece read at ``window`` reaches the phase's ``z`` on every axis."""
    for m, plan, n in zip(window, plans, spatial):
        _, lo, hi = _read_rows(m, plan, n)
        if hi <= lo:
            return False
    return True


def _shifted_term(products, window, plans, spatial):
    """``z[u] = products[u + window * reduced - pad_lo]`` over ``u < z_length`` on
    every spatial axis of one tap's ``(N, *X, g, c)`` products (which `_reaches` z): a
    slice, zero-extended where it runs past them (padding each term, not the whole
    product tensor, which a stride-1 layer's many windows would inflate many times
    over)."""
    index, config = [slice(None)] * products.ndim, [(0, 0, 0)] * products.ndim
    for a, (m, plan, n) in enumerate(zip(window, plans, spatial)):
        start, lo, hi = _read_rows(m, plan, n)
        index[1 + a] = slice(lo, hi)
        config[1 + a] = (lo - start, start + plan.z_length - hi, 0)
    term = products[tuple(index)]
    return lax.pad(term, jnp.zeros((), term.dtype), config) if any(map(any, config)) else term


def _framed_sum(terms, plans, spatial):
    """``sum(_shifted_term(piece, window) for piece, window in terms)`` written as each
    piece padded whole into one frame that holds them all, the sum, then one slice.
    Its transpose (``jax.grad``) pads the cotangent's phase once and slices each piece
    out of it, where the transpose of `_shifted_term` slices and pads every piece: the
    cotangent's im2col is then a concatenation of plain slices, which XLA's CPU backend
    compiles faster (a 3-D k3 layer's ``jit(grad)``: 7.0 s against 1.8) and runs about as
    fast; the padded phases it holds cost memory (CycleGAN's k3 layer: 60 MB against 53),
    so kernels of up to `FRAMED_TAPS` taps, which compile in under a second either way,
    keep the per-piece form (docs/benchmarks.md)."""
    starts = [
        [_read_start(m, plan, n) for m, plan, n in zip(window, plans, spatial)]
        for _, window in terms
    ]
    # the frame, in z's coordinates: z itself and every piece, whole
    lo = [min(0, *(-s[a] for s in starts)) for a in range(len(plans))]
    hi = [
        max(plan.z_length, *(n - s[a] for s in starts))
        for a, (plan, n) in enumerate(zip(plans, spatial))
    ]

    def framed(piece, start):
        config = [(0, 0, 0)] * piece.ndim
        for a, n in enumerate(spatial):
            config[1 + a] = (-start[a] - lo[a], hi[a] - (n - start[a]), 0)
        return lax.pad(piece, jnp.zeros((), piece.dtype), config)

    z = functools.reduce(jnp.add, (framed(p, st) for (p, _), st in zip(terms, starts)))
    index = [slice(None)] * z.ndim
    for a, plan in enumerate(plans):
        index[1 + a] = slice(-lo[a], -lo[a] + plan.z_length)
    return z[tuple(index)]


def col2im(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
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
    (``(.., *k, c)``): the im2col of the cotangent then copies runs of channels (the
    other orders were slower: docs/benchmarks.md, "Design measurements").
    """
    return COL2IM(x, w, spec, precision, preferred_element_type)


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
    prod = bilinear_tangent(products, products, x, w, dx, dw)
    return _col2im_overlap(prod, x, w, spec, taps_first=True)


def _col2im_products(x, w, spec, precision, preferred_element_type, taps_first):
    """``(N, *X, g, C_out_g * prod(k))``, each output channel's taps together, or
    ``(N, *X, g, prod(k) * C_out_g)`` with ``taps_first``."""
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    c_in_g = c_in // groups
    xl = channels_to_last(x, spec)
    wg = reshape(w, (groups, c_in_g, c_out_g, math.prod(kernel)))
    return grouped_matmul(
        reshape(xl, (*xl.shape[: n + 1], groups, c_in_g)),
        reshape(jnp.swapaxes(wg, 2, 3) if taps_first else wg, (groups, c_in_g, -1)),
        precision,
        preferred_element_type,
    )


def _col2im_overlap(prod, x, w, spec, taps_first):
    """Each phase's sum of its taps' shifted products, interleaved and cropped."""
    plans = axis_plans(x, w, spec)
    n = spec.ndim
    _, c_out_g, *kernel = w.shape
    lead, groups = prod.shape[: n + 1], spec.groups
    # one (N, *X, g, c) piece per tap: split's transpose is a concatenation, so the
    # im2col of the cotangent is one copy (indexing the taps transposes to a sum of
    # padded one-tap tensors)
    prod = reshape(
        prod, (*lead, groups, *((*kernel, c_out_g) if taps_first else (c_out_g, *kernel)))
    )
    # split one kernel axis at a time: the transposes are then k-way concatenations, which
    # XLA compiles faster than one prod(k)-way concatenation
    pieces = [prod]
    for a in range(len(kernel)):
        axis = n + 2 + a if taps_first else n + 3 + a
        pieces = [q for p in pieces for q in jnp.split(p, kernel[a], axis=axis)]
    pieces = [reshape(p, (*lead, groups, c_out_g)) for p in pieces]
    spatial = spatial_shape(x, spec)
    framed = taps_first and math.prod(kernel) > FRAMED_TAPS  # see _framed_sum
    phases = []
    for rho in itertools.product(*(range(s) for s in spec.stride)):
        terms = []
        for window in itertools.product(*(range(p.width) for p in plans)):
            taps = [int(p.taps[r, m]) for p, r, m in zip(plans, rho, window)]
            if any(t == k for t, k in zip(taps, kernel)):
                continue  # a zero tap: this phase has fewer taps on that axis
            if _reaches(window, plans, spatial):
                terms.append((pieces[int(np.ravel_multi_index(taps, kernel))], window))
        if not terms:
            phases.append(None)
        elif framed:
            phases.append(_framed_sum(terms, plans, spatial))
        else:
            phases.append(
                functools.reduce(
                    jnp.add, (_shifted_term(p, window, plans, spatial) for p, window in terms)
                )
            )
    if any(z is None for z in phases):  # phases no tap reaches (or an empty crop window)
        index = (slice(None), *[slice(0, 0)] * n, slice(None), slice(None))
        config = [(0, 0, 0), *[(0, p.z_length, 0) for p in plans], (0, 0, 0), (0, 0, 0)]
        # zeros padded from an empty slice of the products keep their batch sharding
        zero = lax.pad(pieces[0][index], jnp.zeros((), prod.dtype), config)
        phases = [zero if z is None else z for z in phases]
    z = jnp.stack(phases, axis=-2)  # (N, *Z, g, P, c)
    z = reshape(z, (*z.shape[:-2], *spec.stride, c_out_g))
    return assemble(z, spec, plans, output_lengths(x, w, spec))


COL2IM = Lowering(
    name="col2im", values=_col2im, tangent_rule=lambda spec: _col2im_tangent, phased=True
)
