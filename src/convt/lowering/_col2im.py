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

from convt.lowering._plan import assemble, assemble_channels_first, axis_plans
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


def _shifted_term(products, window, plans, spatial, first):
    """``z[u] = products[u + window * reduced - pad_lo]`` over ``u < z_length`` on
    every spatial axis (axes ``first`` on) of one tap's products (which `_reaches` z):
    a slice, zero-extended where it runs past them (padding each term, not the whole
    product tensor, which a stride-1 layer's many windows would inflate many times
    over)."""
    index, config = [slice(None)] * products.ndim, [(0, 0, 0)] * products.ndim
    for a, (m, plan, n) in enumerate(zip(window, plans, spatial)):
        start, lo, hi = _read_rows(m, plan, n)
        index[first + a] = slice(lo, hi)
        config[first + a] = (lo - start, start + plan.z_length - hi, 0)
    term = products[tuple(index)]
    return lax.pad(term, jnp.zeros((), term.dtype), config) if any(map(any, config)) else term


def _framed_sum(terms, plans, spatial, first):
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
            config[first + a] = (-start[a] - lo[a], hi[a] - (n - start[a]), 0)
        return lax.pad(piece, jnp.zeros((), piece.dtype), config)

    z = functools.reduce(jnp.add, (framed(p, st) for (p, _), st in zip(terms, starts)))
    index = [slice(None)] * z.ndim
    for a, plan in enumerate(plans):
        index[first + a] = slice(-lo[a], -lo[a] + plan.z_length)
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
    stored). Channels-first layers whose weight is no larger than their input multiply
    channel-major (`_channel_major`: products ``(C_out prod(k), N, *X)``, each row an
    image plane, no re-layout of the input or the output); the others channels-last
    (``(N, *X, C_out prod(k))``), the overlap-adds fused with the re-layout to
    channels-first. The derivatives (`split`) put the taps first (``(N, *X, *k, c)``):
    the im2col of the cotangent then copies runs of channels (the other orders were
    slower: docs/benchmarks.md, "Design measurements").
    """
    return COL2IM(x, w, spec, precision, preferred_element_type)


def _col2im(x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    channel_major = _channel_major(x, w, spec)
    prod = _col2im_products(
        x,
        w,
        spec=spec,
        precision=precision,
        preferred_element_type=preferred_element_type,
        taps_first=False,
        channel_major=channel_major,
    )
    return _col2im_overlap(prod, x, w, spec, taps_first=False, channel_major=channel_major)


def _col2im_tangent(x, w, dx, dw, *, spec, precision=None, preferred_element_type=None):
    """``col2im``'s tangent, ``dx`` and ``dw`` (either ``None``) through one overlap-add
    of the tangent products, taps first and ``(N, *X, g, K)`` whatever the layout: its
    transpose builds the cotangent's im2col once for both gradients, and the program
    holds one copy of the overlap-adds. (Channel-major, the im2col is a concatenation
    of image planes, but the input gradient's GEMM then contracts the cotangent's
    leading axis, and XLA's CPU backend copies the whole im2col to transpose it:
    CycleGAN's forward+backward 1.3x slower.)"""
    products = functools.partial(
        _col2im_products,
        spec=spec,
        precision=precision,
        preferred_element_type=preferred_element_type,
        taps_first=True,
        channel_major=False,
    )
    prod = bilinear_tangent(products, products, x, w, dx, dw)
    return _col2im_overlap(prod, x, w, spec, taps_first=True, channel_major=False)


def _channel_major(x, w, spec: ConvTransposeSpec) -> bool:
    """Whether the values lay the products out ``(g, K, N, *X)``, every row a whole
    image plane: the channels-first input needs no re-layout, and the overlap-adds
    read contiguous rows and write the channels-first output directly. Taken for
    channels-first layers whose weight is no larger than their input: the GEMM then
    reads the weight transposed, which costs little only for small weights (forward,
    against the ``(N, *X, g, K)`` form: CycleGAN k3 0.83x, MONAI 3-D 0.73x, DCGAN head
    0.86x; Oobleck 2048->1024 k16 on 64 samples, whose weight is 256 times its input,
    4x slower: docs/benchmarks.md)."""
    return spec.layout == "channels_first" and w.size <= x.size


def _col2im_products(
    x, w, *, spec, precision, preferred_element_type, taps_first: bool, channel_major: bool
):
    """``x`` times every tap: ``(N, *X, g, K)``, or ``(g, K, N, *X)`` `_channel_major`
    (``x`` channels-first), ``K = C_out_g * prod(k)`` with each output channel's taps
    together, or ``prod(k) * C_out_g`` with ``taps_first``."""
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    c_in_g = c_in // groups
    wg = reshape(w, (groups, c_in_g, c_out_g, math.prod(kernel)))
    wg = reshape(jnp.swapaxes(wg, 2, 3) if taps_first else wg, (groups, c_in_g, -1))
    options = dict(precision=precision, preferred_element_type=preferred_element_type)
    if channel_major:
        if groups == 1:  # a plain 2-D GEMM when N == 1 (see grouped_matmul)
            prod = lax.dot_general(wg[0], x, (((0,), (1,)), ((), ())), **options)
            return reshape(prod, (1, *prod.shape))
        batch, _, *spatial = x.shape
        xg = reshape(x, (batch, groups, c_in_g, *spatial))
        return lax.dot_general(wg, xg, (((1,), (2,)), ((0,), (1,))), **options)
    xl = channels_to_last(x, spec)
    return grouped_matmul(reshape(xl, (*xl.shape[: n + 1], groups, c_in_g)), wg, **options)


def _col2im_overlap(prod, x, w, spec, *, taps_first: bool, channel_major: bool):
    """Each phase's sum of its taps' shifted products, interleaved and cropped."""
    plans = axis_plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    _, c_out_g, *kernel = w.shape
    tap_dims = (*kernel, c_out_g) if taps_first else (c_out_g, *kernel)
    # one (g, c, N, *X) or (N, *X, g, c) piece per tap, its spatial axes from `first` on
    if channel_major:
        rows, first = prod.shape[2:], 3
        prod = reshape(prod, (groups, *tap_dims, *rows))
        tap_axis, piece_shape = 1, (groups, c_out_g, *rows)
    else:
        lead, first = prod.shape[: n + 1], 1
        prod = reshape(prod, (*lead, groups, *tap_dims))
        tap_axis, piece_shape = n + 2, (*lead, groups, c_out_g)
    tap_axis += 0 if taps_first else 1
    # split's transpose is a concatenation, so the im2col of the cotangent is one copy
    # (indexing the taps transposes to a sum of padded one-tap tensors); one kernel axis
    # at a time: the transposes are then k-way concatenations, which XLA compiles faster
    # than one prod(k)-way concatenation
    pieces = [prod]
    for a in range(len(kernel)):
        pieces = [q for p in pieces for q in jnp.split(p, kernel[a], axis=tap_axis + a)]
    pieces = [reshape(p, piece_shape) for p in pieces]
    spatial = spatial_shape(x, spec)
    framed = taps_first and math.prod(kernel) > FRAMED_TAPS  # see _framed_sum
    phases: list[jax.Array | None] = []
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
            phases.append(_framed_sum(terms, plans, spatial, first))
        else:
            phases.append(
                functools.reduce(
                    jnp.add,
                    (_shifted_term(p, window, plans, spatial, first) for p, window in terms),
                )
            )
    if any(z is None for z in phases):  # phases no tap reaches (or an empty crop window)
        index, config = [slice(None)] * (n + 3), [(0, 0, 0)] * (n + 3)
        for a, plan in enumerate(plans):
            index[first + a], config[first + a] = slice(0, 0), (0, plan.z_length, 0)
        # zeros padded from an empty slice of the products keep their batch sharding
        zero = lax.pad(pieces[0][tuple(index)], jnp.zeros((), prod.dtype), config)
        phases = [zero if z is None else z for z in phases]
    filled = [z for z in phases if z is not None]  # every phase: the empty ones are zeros now
    lengths = output_lengths(x, w, spec)
    if channel_major:
        z = jnp.stack(filled, axis=-1)  # (g, c, N, *Z, P)
        z = reshape(z, (*z.shape[:-1], *spec.stride))
        return assemble_channels_first(z, spec, plans, lengths, batch_axis=2)
    z = jnp.stack(filled, axis=-2)  # (N, *Z, g, P, c)
    z = reshape(z, (*z.shape[:-2], *spec.stride, c_out_g))
    return assemble(z, spec, plans, lengths)


COL2IM = Lowering(
    name="col2im", values=_col2im, tangent_rule=lambda spec: _col2im_tangent, phased=True
)
