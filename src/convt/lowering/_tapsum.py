"""`tapsum`: depthwise layers as a sum of shifted elementwise products."""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import jax
import jax.numpy as jnp

from convt.lowering._plan import assemble, axis_plans, padded_input, phase_kernel, tap_windows
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
    """Depthwise phase decomposition as a sum of shifted products (``C_in == groups``)."""
    del precision  # elementwise products are exact in the input precision
    plans = axis_plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    dtype = preferred_element_type or jnp.result_type(x.dtype, w.dtype)
    kernel = phase_kernel(w, groups, plans).astype(dtype)  # (g, 1, *U, *P, c)
    kernel = reshape(kernel, (groups, math.prod(p.width for p in plans), -1))  # (g, T, P * c)
    xp = channels_to_last(padded_input(x.astype(dtype), spec, plans), spec)
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
    z = reshape(z, (*z.shape[: n + 2], *spec.stride, w.shape[1]))
    return assemble(z, spec, plans, output_lengths(x, w, spec))


def _depthwise(spec: ConvTransposeSpec, weight_shape: tuple[int, ...]) -> str | None:
    if weight_shape[0] != spec.groups:
        return (
            f"method='tapsum' needs a depthwise layer (C_in == groups), got "
            f"C_in={weight_shape[0]}, groups={spec.groups}"
        )
    return None


TAPSUM = Lowering(name="tapsum", values=tapsum, requires=_depthwise, phased=True)
