"""`adjoint`: the transposed convolution as the adjoint of a strided convolution."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from convt.lowering._lhs_dilated import lhs_dilated
from convt.lowering._phase import phase_conv
from convt.lowering._record import MAX_PHASES, Lowering, rules
from convt.lowering._xla import crop_axes, dimension_numbers, within_reach
from convt.spec import ConvTransposeSpec


def _adjoint_crops(kernel, spec: ConvTransposeSpec):
    """Per axis, the crop the adjoint's convolutions apply (within ``[0, reach]``,
    `within_reach`) and the rest, applied to their result by `crop_axes`."""
    inner, rest = [], []
    for k, d, crop in zip(kernel, spec.dilation, spec.crop):
        within = within_reach(crop, d * (k - 1))
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


def adjoint(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
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
    return ADJOINT(x, w, spec, precision, preferred_element_type)


def _adjoint_tangent(spec: ConvTransposeSpec):
    """`adjoint`'s derivatives: the input's by the lhs-dilated form (its transpose is
    ``C``), the weight's by `_adjoint_weight_term`, or by `phase_conv` for grouped and
    dilated layers (with at most `MAX_PHASES` phases)."""
    plain = spec.groups == 1 and all(d == 1 for d in spec.dilation)
    plain = plain or math.prod(spec.stride) > MAX_PHASES
    return rules(lhs_dilated, _adjoint_weight_term if plain else phase_conv)


ADJOINT = Lowering(name="adjoint", values=lhs_dilated, tangent_rule=_adjoint_tangent)
