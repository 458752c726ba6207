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
    axis_plans,
    deskew,
    padded_input,
    phase_kernel,
    tap_windows,
)
from convt.lowering._record import Lowering
from convt.lowering._xla import channels_to_last, output_lengths, reshape
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
    n, batch, groups = spec.ndim, x.shape[0], x.shape[1]
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
    for a, plan in enumerate(plans):
        z = deskew(z, plan, space_axis=3 + a, phase_axis=3 + n + a)
    interleaved = [ax for a in range(n) for ax in (3 + a, 3 + n + a)]
    z = jnp.transpose(z, (0, 1, 2, *interleaved))
    sizes = [p.outputs_per_phase * s for p, s in zip(plans, spec.stride)]
    z = reshape(z, (batch, groups * multiplier, *sizes))
    return lax.slice(z, (0,) * z.ndim, (batch, groups * multiplier, *lengths))


def _depthwise(spec: ConvTransposeSpec, weight_shape: tuple[int, ...]) -> str | None:
    if weight_shape[0] != spec.groups:
        return (
            f"method='tapsum' needs a depthwise layer (C_in == groups), got "
            f"C_in={weight_shape[0]}, groups={spec.groups}"
        )
    return None


TAPSUM = Lowering(name="tapsum", values=tapsum, requires=_depthwise, phased=True)
