"""What the lowerings share about XLA: dimension numbers, sharding-aware reshapes,
the kernel regrouped, crops, and the stride-1 convolution and grouped GEMM they build on."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P

from convt.spec import ConvTransposeSpec


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


def reshape(a, shape):
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
    w = reshape(w, (groups, c_in // groups, c_out_g, *k))
    w = jnp.swapaxes(w, 1, 2)
    return reshape(w, (groups * c_out_g, c_in // groups, *k))


def spatial_shape(x: jnp.ndarray, spec: ConvTransposeSpec) -> tuple[int, ...]:
    return tuple(x.shape[a] for a in spec.spatial_axes)


def output_lengths(x, w, spec) -> tuple[int, ...]:
    return spec.output_spatial_shape(spatial_shape(x, spec), w.shape[2:])


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


def within_reach(padding: tuple[int, int], reach: int) -> tuple[int, int]:
    """A convolution's ``(low, high)`` padding clamped to ``[0, reach]`` (the kernel's
    reach, ``d (k - 1)``). The lowerings apply the rest outside the convolution: below 0
    it blocks cuDNN's backward-data path on GPU; beyond the reach the input-gradient
    convolution JAX derives has negative padding, which XLA's CPU backend computed
    wrongly in float32."""
    low, high = padding
    return min(max(low, 0), reach), min(max(high, 0), reach)


def conv(x, rhs, *, spec, padding, lhs_dilation, rhs_dilation, precision, preferred_element_type):
    """The stride-1 ``lax.conv_general_dilated`` of ``x`` (the spec's layout) with an
    ``(O, I, *k)`` kernel, grouped as the spec is (its keywords in lax's order)."""
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


def channels_to_last(x, spec):
    return x if spec.layout == "channels_last" else jnp.moveaxis(x, 1, -1)


def grouped_matmul(lhs, rhs, precision, preferred_element_type):
    """``(..., g, K) x (g, K, O) -> (..., g, O)``; for ``g == 1`` one plain 2-D GEMM
    (XLA's CPU dot with a unit batch axis ran at half the speed, measured)."""
    groups, depth, width = rhs.shape
    if groups == 1:
        lead = lhs.shape[:-2]
        out = jnp.matmul(
            reshape(lhs, (math.prod(lead), depth)),
            rhs[0],
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
        return reshape(out, (*lead, 1, width))
    return jnp.einsum(
        "...gk,gko->...go",
        lhs,
        rhs,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
