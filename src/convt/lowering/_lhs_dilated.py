"""`lhs_dilated`: the reference lowering, the canonical spec's definition."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from convt.lowering._record import Lowering
from convt.lowering._xla import conv, crop_axes, regroup_kernel, within_reach
from convt.spec import ConvTransposeSpec


def lhs_dilated(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """The reference lowering of the canonical spec (without bias).

    An axis whose convolution would get no low padding gets one, cropped again
    afterwards: the same values, and no window XLA can misread, forward or backward
    (XLA's operand swap aborts the process on some windows with a zero low padding;
    tests/helpers.py, ``xla_swap_hazard_axes``, says which, and the tests check that
    every such axis is padded here).
    The padding is never negative (larger crops are sliced afterwards) and the kernel
    is a ``reverse`` over every spatial axis, so with ``groups == 1`` and no dilation
    this is the form XLA's GPU backend hands to cuDNN as a backward-data convolution.
    """
    kernel = w.shape[2:]
    padding, post_crop = [], []
    for k, d, (lo, hi) in zip(kernel, spec.dilation, spec.crop):
        reach = d * (k - 1)
        # Padding within [0, reach] (`within_reach`): a crop beyond the reach is sliced
        # off afterwards, an extension beyond it zero-filled afterwards. A zero low
        # padding gets one more, sliced off.
        low, high = reach - lo, reach - hi
        conv_low, conv_high = within_reach((low, high), reach)
        if conv_low == 0 and reach > 0:
            conv_low = 1
        padding.append((conv_low, conv_high))
        post_crop.append((conv_low - low, conv_high - high))
    rhs = jnp.flip(regroup_kernel(w, spec.groups), axis=tuple(range(2, w.ndim)))
    y = conv(
        x,
        rhs,
        spec=spec,
        padding=padding,
        lhs_dilation=spec.stride,
        rhs_dilation=spec.dilation,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    return crop_axes(y, spec, post_crop)


LHS_DILATED = Lowering(name="lhs_dilated", values=lhs_dilated)
