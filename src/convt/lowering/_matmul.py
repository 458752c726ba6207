"""`matmul`: stamps that do not overlap, as one matrix product and a depth-to-space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from convt.lowering._record import Lowering
from convt.lowering._xla import crop_axes, reshape, spatial_shape
from convt.spec import ConvTransposeSpec, effective_kernel


def stamps_apart(kernel: Sequence[int], spec: ConvTransposeSpec) -> bool:
    """Whether the stamps never overlap: ``dilation * (kernel - 1) + 1 <= stride`` on
    every axis (`matmul` applies)."""
    return all(effective_kernel(k, d) <= s for k, s, d in zip(kernel, spec.stride, spec.dilation))


def matmul(
    x: jax.Array,
    w: jax.Array,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """One matrix product and a depth-to-space, then the crop (without bias).

    Needs stamps that do not overlap: the dilated kernel within the stride on every axis
    (`stamps_apart`). Where it is shorter (``kernel < stride``), each stamp is padded
    to the stride, so tracing costs the same whatever the stride.
    """
    n, groups = spec.ndim, spec.groups
    c_in, c_out_g, *kernel = w.shape
    letters = "abcdefgh"[:n]
    klet = "stuvwxyz"[:n]
    wg = reshape(w, (groups, c_in // groups, c_out_g, *kernel))
    spatial = spatial_shape(x, spec)
    if spec.layout == "channels_first":
        xg = reshape(x, (x.shape[0], groups, c_in // groups, *spatial))
        lhs = "NGI" + letters
        out = "NGO" + "".join(a + b for a, b in zip(letters, klet))
    else:
        xg = reshape(x, (x.shape[0], *spatial, groups, c_in // groups))
        lhs = "N" + letters + "GI"
        out = "N" + "".join(a + b for a, b in zip(letters, klet)) + "GO"
    y = jnp.einsum(
        f"{lhs},GIO{klet}->{out}",
        xg,
        wg,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    # Each stamp's taps sit `dilation` apart in a window of `stride`: the zeros between
    # and after them are an interior and a high padding of the kernel axes.
    first = 3 if spec.layout == "channels_first" else 1
    config, crop = [(0, 0, 0)] * y.ndim, []
    for axis, (k, s, d, (lo, hi)) in enumerate(zip(kernel, spec.stride, spec.dilation, spec.crop)):
        extent = effective_kernel(k, d)
        config[first + 2 * axis + 1] = (0, s - extent, d - 1)
        crop.append((lo, hi + s - extent))  # the last stamp's padding is past the output
    if any(c != (0, 0, 0) for c in config):
        y = lax.pad(y, jnp.zeros((), y.dtype), config)
    full = [m * s for m, s in zip(spatial, spec.stride)]
    if spec.layout == "channels_first":
        y = reshape(y, (x.shape[0], groups * c_out_g, *full))
    else:
        y = reshape(y, (x.shape[0], *full, groups * c_out_g))
    return crop_axes(y, spec, crop)


def _stamps_do_not_overlap(spec: ConvTransposeSpec, weight_shape: tuple[int, ...]) -> str | None:
    kernel = weight_shape[2:]
    if not stamps_apart(kernel, spec):
        return (
            "method='matmul' needs stamps that do not overlap, dilation * (kernel - 1) + 1 "
            f"<= stride on every axis, got kernel {tuple(kernel)}, stride {spec.stride}, "
            f"dilation {spec.dilation}"
        )
    return None


MATMUL = Lowering(name="matmul", values=matmul, requires=_stamps_do_not_overlap)
