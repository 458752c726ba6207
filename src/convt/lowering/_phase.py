"""`phase_conv` and `phase`: the phase decomposition as one stride-1 convolution."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from convt.lowering._phase_gemm import phase_gemm
from convt.lowering._plan import assemble, axis_plans, phase_kernel
from convt.lowering._record import Lowering, rules
from convt.lowering._xla import (
    channels_to_last,
    conv,
    output_lengths,
    reshape,
    spatial_shape,
    within_reach,
)
from convt.spec import ConvTransposeSpec


def phase_conv(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """The sub-pixel decomposition as one stride-1 convolution for all phases,
    interleaved (without bias), differentiated by JAX: its input and weight gradients
    are convolutions too, with the phase kernel's window and no zero-stuffing, grouped
    or dilated layers included (XLA:GPU runs all three as cuDNN convolutions, the weight
    gradient as backward-filter). `phase` keeps the forward and computes the weight
    gradient as a GEMM instead, which XLA's CPU backend runs faster."""
    plans = axis_plans(x, w, spec)
    n, groups = spec.ndim, spec.groups
    kernel = phase_kernel(w, groups, plans)  # (g, I, *U, *P, c)
    phases, c_out_g = math.prod(spec.stride), w.shape[1]
    widths = [p.width for p in plans]
    # (g, I, *U, P, c) -> (g * P * c, I, *U): output channels ordered (group, phase, c)
    rhs = reshape(kernel, (groups, w.shape[0] // groups, *widths, phases * c_out_g))
    rhs = reshape(
        jnp.moveaxis(rhs, -1, 1), (groups * phases * c_out_g, w.shape[0] // groups, *widths)
    )
    # Padding within [0, reach] (`within_reach`) stays fused in the convolution; the rest
    # is an explicit pad or crop of the input (padding everything explicitly made the
    # forward slower).
    padding = []
    config = [(0, 0, 0)] * x.ndim
    for axis, plan, m in zip(spec.spatial_axes, plans, spatial_shape(x, spec)):
        reach = (plan.width - 1) * plan.reduced
        lo, hi = plan.padding(m)
        inner = within_reach((lo, hi), reach)
        padding.append(inner)
        config[axis] = (lo - inner[0], hi - inner[1], 0)
    xp = lax.pad(x, jnp.zeros((), x.dtype), config) if any(map(any, config)) else x
    z = conv(
        xp,
        rhs,
        spec=spec,
        padding=padding,
        lhs_dilation=(1,) * n,
        rhs_dilation=[p.reduced for p in plans],
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    z = channels_to_last(z, spec)
    z = reshape(z, (*z.shape[: n + 1], groups, *spec.stride, c_out_g))
    return assemble(z, spec, plans, output_lengths(x, w, spec))


def phase(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
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
    return PHASE(x, w, spec, precision, preferred_element_type)


def _phase_tangent(spec: ConvTransposeSpec):
    """`phase`'s derivatives: the weight's by `phase_gemm`, the input's by the
    convolution (by `phase_gemm` for grouped layers, whose convolution transpose the
    SPMD partitioner runs with a gathered batch)."""
    return rules(phase_conv if spec.groups == 1 else phase_gemm, phase_gemm)


PHASE_CONV = Lowering(name="phase_conv", values=phase_conv, phased=True)
PHASE = Lowering(name="phase", values=phase_conv, tangent_rule=_phase_tangent, phased=True)
