"""`tapsum`: depthwise layers as a sum of shifted elementwise products."""

from __future__ import annotations

import functools
import itertools
import math
import operator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from convt.lowering._plan import (
    assemble,
    assemble_channels_first,
    axis_plans,
    padded_input,
    phase_kernel,
    tap_windows,
)
from convt.lowering._record import Lowering, rules
from convt.lowering._xla import (
    channels_to_last,
    crop_axes,
    output_lengths,
    reshape,
    spatial_shape,
)
from convt.spec import ConvTransposeSpec

_TAPSUM_CHANNELS = 8  # tapsum multiplies per output channel up to this many (phases x multipliers)


def tapsum(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """Depthwise phase decomposition as a sum of shifted products (``C_in == groups``).

    Channels-last inputs multiply windows ``(N, *Z, g)`` by one weight per group
    (`_channels_last`). On the CPU, channels-first ones keep their layout
    (`_channels_first`): windows ``(N, g, *Z)``, contiguous along the spatial axes, and
    the phases interleaved at the end, with no transpose of the input or the output. On
    other platforms they are re-laid out, as the GPU and TPU rules were measured."""
    del precision  # elementwise products are exact in the input precision
    plans = axis_plans(x, w, spec)
    groups = spec.groups
    dtype = preferred_element_type or jnp.result_type(x.dtype, w.dtype)
    kernel = phase_kernel(w, groups, plans).astype(dtype)  # (g, 1, *U, *P, c)
    kernel = reshape(kernel, (groups, math.prod(p.width for p in plans), -1))  # (g, T, P * c)
    lengths = output_lengths(x, w, spec)
    options: dict[str, Any] = dict(multiplier=w.shape[1], spec=spec, plans=plans, lengths=lengths)
    if spec.layout == "channels_last":
        return _channels_last(x.astype(dtype), kernel, **options)
    # channels-first inputs stay channels-first on the CPU (measured there); elsewhere
    # the re-laid-out form, which the GPU and TPU rules were measured with
    return lax.platform_dependent(
        x.astype(dtype),
        kernel,
        cpu=functools.partial(_channels_first, **options),
        default=functools.partial(_channels_last, **options),
    )


def _channels_last(
    x, kernel, *, multiplier: int, spec: ConvTransposeSpec, plans, lengths
) -> jax.Array:
    """`tapsum` through channels-last windows ``(N, *Z, g)``, each scaled by one weight
    per group (a channels-first input is re-laid out, and its output back)."""
    n = spec.ndim
    xp = channels_to_last(padded_input(x, spec, plans), spec)
    windows = list(tap_windows(xp, plans))  # each (N, *Z, g)
    if kernel.shape[-1] <= _TAPSUM_CHANNELS:
        # one output channel (phase and multiplier) at a time: each product scales a
        # window by one weight per group, and the transposes are products too
        # (broadcasting the windows over the output channels made XLA materialise the
        # broadcasts and reduce over them in the backward)
        outputs = [
            functools.reduce(
                operator.add, (window * kernel[:, t, q] for t, window in enumerate(windows))
            )
            for q in range(kernel.shape[-1])
        ]
        z = jnp.stack(outputs, axis=-1)  # (N, *Z, g, P * c)
    else:  # many phases or multipliers: T broadcast products compile much faster
        z = functools.reduce(
            operator.add, (window[..., None] * kernel[:, t] for t, window in enumerate(windows))
        )
    z = reshape(z, (*z.shape[: n + 2], *spec.stride, multiplier))
    return assemble(z, spec, plans, lengths)


def _channels_first(
    x, kernel, *, multiplier: int, spec: ConvTransposeSpec, plans, lengths
) -> jax.Array:
    """`tapsum` on ``x (N, g, *spatial)``: ``kernel (g, T, P * c)`` (phases, then the
    channel multiplier ``c``) scales each tap's window ``(N, g, *Z)``; the sum over taps
    is ``z (N, g, c, *Z, *P)``, whose phases are deskewed and interleaved with the
    spatial axes into ``(N, g * c, *Q_a * P_a)``."""
    n, groups = spec.ndim, x.shape[1]
    xp = padded_input(x, spec, plans)
    windows = []
    for taps in itertools.product(*(range(p.width) for p in plans)):
        index = [slice(None), slice(None)]
        index += [slice(t * p.reduced, t * p.reduced + p.z_length) for t, p in zip(taps, plans)]
        windows.append(xp[tuple(index)][:, :, None])  # (N, g, 1, *Z)
    phases = tuple(spec.stride)
    ones = (1,) * n
    # (g, T, *P, c) -> per tap (g, c, *1, *P): one weight per group, phase and multiplier
    per_tap = jnp.moveaxis(reshape(kernel, (groups, kernel.shape[1], *phases, multiplier)), -1, 2)
    z = functools.reduce(
        operator.add,
        (
            window[(...,) + (None,) * n]
            * reshape(per_tap[:, t], (groups, multiplier, *ones, *phases))
            for t, window in enumerate(windows)
        ),
    )  # (N, g, c, *Z, *P)
    return assemble_channels_first(z, spec, plans, lengths, batch_axis=0)


def _depthwise(spec: ConvTransposeSpec, weight_shape: tuple[int, ...]) -> str | None:
    if weight_shape[0] != spec.groups:
        return (
            f"method='tapsum' needs a depthwise layer (C_in == groups), got "
            f"C_in={weight_shape[0]}, groups={spec.groups}"
        )
    return None


def _cotangent_windows(u, *, spec: ConvTransposeSpec, kernel, lengths):
    """Per tap ``j`` of the kernel, the strided window ``u[i * stride + j * dilation -
    lo]`` over the input's positions ``i`` (``lengths``) of ``u`` ``(N, C_out, *out)``
    (or channels last), zero outside the output: ``(N, g, c, *in)``, or ``(N, *in, g,
    c)`` channels last (``C_out = g * c``)."""
    n, groups = spec.ndim, spec.groups
    multiplier = u.shape[spec.channel_axis] // groups
    # back to the uncropped output (a negative crop is cropped here)
    u = crop_axes(u, spec, [(-lo, -hi) for lo, hi in spec.crop])
    if spec.layout == "channels_first":
        u = reshape(u, (u.shape[0], groups, multiplier, *u.shape[2:]))
        first = 3
    else:
        u = reshape(u, (*u.shape[:-1], groups, multiplier))
        first = 1
    for taps in itertools.product(*(range(k) for k in kernel)):
        start, limit, strides = [0] * u.ndim, list(u.shape), [1] * u.ndim
        for a in range(n):
            s, d = spec.stride[a], spec.dilation[a]
            start[first + a] = taps[a] * d
            limit[first + a] = taps[a] * d + (lengths[a] - 1) * s + 1
            strides[first + a] = s
        yield taps, lax.slice(u, start, limit, strides)


def _tap_weights(w, taps, spec: ConvTransposeSpec):
    """``w[:, :, *taps]`` ``(g, c)``, broadcast against `_cotangent_windows`."""
    per_tap = w[(slice(None), slice(None), *taps)]
    if spec.layout == "channels_first":
        return per_tap.reshape(1, *per_tap.shape, *(1,) * spec.ndim)
    return per_tap.reshape(1, *(1,) * spec.ndim, *per_tap.shape)


def _correlation(u, w, *, spec: ConvTransposeSpec, lengths):
    """``C(u)[n, g, i] = sum_{c, j} u[n, g * c_m + c, i * stride + j * dilation - lo] *
    w[g, c, j]``: the depthwise strided correlation ``(N, C_out, *out) -> (N, C_in,
    *in)`` whose adjoint is the transposed convolution, as shifted products."""
    channel_axis = 2 if spec.layout == "channels_first" else -1
    windows = _cotangent_windows(u, spec=spec, kernel=w.shape[2:], lengths=lengths)
    products = (window * _tap_weights(w, taps, spec) for taps, window in windows)
    return functools.reduce(operator.add, products).sum(axis=channel_axis)


def _weight_correlation(u, x, *, spec: ConvTransposeSpec, kernel):
    """``G(u)[g, c, j] = sum_{n, i} x[n, g, i] * u[n, g * c_m + c, i * stride + j *
    dilation - lo]``: ``C``'s weight gradient at cotangent ``x``, one reduction of
    products per tap, ``(g, c, *kernel)``."""
    lengths = spatial_shape(x, spec)
    if spec.layout == "channels_first":
        x, reduced = x[:, :, None], (0, *range(3, 3 + spec.ndim))
    else:
        x, reduced = x[..., None], tuple(range(spec.ndim + 1))
    windows = _cotangent_windows(u, spec=spec, kernel=kernel, lengths=lengths)
    per_tap = [(x * window).sum(axis=reduced) for _, window in windows]  # each (g, c)
    return jnp.stack(per_tap, axis=-1).reshape(*per_tap[0].shape, *kernel)


def _adjoint_term(linear, x, w, spec: ConvTransposeSpec, tangent):
    """The transpose of ``linear`` (a map from the layer's outputs for ``x`` and ``w``
    onto ``tangent``'s space) applied to ``tangent``: reverse mode transposes it back
    into ``linear``. The outputs' type is the forward's, sharding included (under
    ``Explicit`` mesh axes the transpose checks it against ``tangent``'s)."""
    output = jax.eval_shape(functools.partial(tapsum, spec=spec), x, w)
    (term,) = jax.linear_transpose(linear, output)(tangent)
    return term


def _input_term(dx, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """The transposed convolution of ``dx`` with ``w``, as the adjoint of `_correlation`:
    the input gradient is the correlation of the cotangent, shifted products."""
    dtype = jnp.dtype(preferred_element_type or jnp.result_type(dx, w))
    dx_, w_ = dx.astype(dtype), w.astype(dtype)
    lengths = spatial_shape(dx, spec)
    return _adjoint_term(
        lambda u: _correlation(u, w_, spec=spec, lengths=lengths), dx_, w_, spec, dx_
    )


def _weight_term(x, dw, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
    """The transposed convolution of ``x`` with ``dw``, as the adjoint of
    `_weight_correlation` at ``x``: the weight gradient is one reduction of the
    cotangent's window times ``x`` per tap."""
    dtype = jnp.dtype(preferred_element_type or jnp.result_type(x, dw))
    x_, dw_ = x.astype(dtype), dw.astype(dtype)
    return _adjoint_term(
        lambda u: _weight_correlation(u, x_, spec=spec, kernel=dw.shape[2:]), x_, dw_, spec, dw_
    )


def tapsum_adjoint(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """`tapsum`'s values, with the derivatives of the adjoint form (depthwise layers,
    ``C_in == groups``).

    The transposed convolution is the adjoint of the depthwise strided correlation
    ``C(u)[n, g, i] = sum_{c, j} u[n, g * c_m + c, i * stride + j * dilation - lo] *
    w[g, c, j]``. The input gradient is ``C`` of the cotangent, and the weight gradient
    ``C``'s own weight gradient at ``x``, both computed as shifted products of strided
    windows of the cotangent, in either layout and with no phase interleaving to
    transpose (JAX's transposes of `tapsum` on channels-first inputs deskew and
    interleave the phases back, which XLA's CPU backend compiled into slow loops). A
    custom JVP (`split`) whose terms reverse mode transposes, so forward mode and
    higher derivatives work too.
    """
    return TAPSUM_ADJOINT(x, w, spec, precision, preferred_element_type)


TAPSUM = Lowering(name="tapsum", values=tapsum, requires=_depthwise, phased=True)
TAPSUM_ADJOINT = Lowering(
    name="tapsum_adjoint",
    values=tapsum,
    tangent_rule=lambda spec: rules(_input_term, _weight_term),
    requires=_depthwise,
    phased=True,
)
