"""flax's ``ConvTranspose`` (``flax.linen.ConvTranspose`` and ``flax.nnx.ConvTranspose``).

Both run ``jax.lax.conv_transpose`` on channels-last inputs, so their convention is
`convt.lax`'s with flax's spellings: ``strides`` (``None`` or an int for all axes),
``kernel_dilation`` (lax's ``rhs_dilation``), ``padding`` ``"SAME"`` (the default),
``"VALID"``, other strings as lax takes them, one int for every side, one int per axis,
or ``(low, high)`` tuples per axis, all read as lax reads them (the raw pads of the
lhs-dilated form, not torch's), and ``transpose_kernel``. The kernel is
``(*kernel_size, C_in, C_out)`` (used as a forward kernel, unflipped) or, with
``transpose_kernel=True``, ``(*kernel_size, C_out, C_in)`` (flipped and swapped by lax).
The bias is ``(C_out,)``. Inputs may have any number of leading batch axes (none
included): flax flattens them.

``padding="CIRCULAR"`` is a transposed ``"VALID"`` layer whose output is then padded to
a whole number of periods ``n s`` and folded onto one period (a periodic boundary): not
a crop, so `to_spec` refuses it and `conv_transpose` computes the fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt import lax as convt_lax
from convt._deprecation import deprecated_attributes
from convt.convention import Convention, Option
from convt.spec import ConvTransposeSpec

__all__ = [
    "CONVENTION",
    "conv_transpose",
    "from_spec",
    "to_spec",
    "weight_from_canonical",
    "weight_to_canonical",
]

FRAMEWORK = "flax"
_RENAMES = {"rhs_dilation": "kernel_dilation", "lhs": "inputs", "rhs": "kernel"}


def _per_axis(value: Any, ndim: int, name: str) -> tuple[int, ...]:
    """flax's ``maybe_broadcast``: ``None`` is 1, an int is every axis."""
    return fe.int_tuple(1 if value is None else value, ndim, name, FRAMEWORK, allow_single=False)


def _lax_padding(padding: Any, ndim: int) -> str | list[tuple[int, int]]:
    """flax's ``canonicalize_padding``: the padding lax gets (``"CIRCULAR"`` kept)."""
    if isinstance(padding, str):
        return padding
    if fe.is_int(padding):
        return [(int(padding), int(padding))] * ndim
    if isinstance(padding, Sequence) and len(padding) == ndim:
        pairs: list[tuple[int, int]] = []
        for p in padding:
            if fe.is_int(p):
                pairs.append((int(p), int(p)))
            elif isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2:
                pairs.append(fe.int_pair(list(p), "padding", FRAMEWORK))
            else:
                break
        if len(pairs) == ndim:
            return pairs
    raise ValueError(
        f"flax: invalid padding format {padding!r}: a string, an int, or a sequence of "
        f"{ndim} ints or (low, high) pairs"
    )


@fe.deprecated_positional("strides", "padding", "kernel_dilation")
def to_spec(
    ndim: int,
    *,
    strides: Any = None,
    padding: Any = "SAME",
    kernel_dilation: Any = None,
    kernel_size: Any = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for a flax ``ConvTranspose`` (the kernel size is needed)."""
    pads = _lax_padding(padding, ndim)
    if pads == "CIRCULAR":
        raise ValueError(
            "flax: padding='CIRCULAR' folds the output periodically after the convolution; "
            "no canonical crop expresses it (convt.flax.conv_transpose computes it)"
        )
    with fe.speaking_as(FRAMEWORK, convt_lax.FRAMEWORK, _RENAMES):
        return convt_lax.to_spec(
            ndim,
            strides=_per_axis(strides, ndim, "strides"),
            padding=pads,
            rhs_dilation=_per_axis(kernel_dilation, ndim, "kernel_dilation"),
            kernel_size=kernel_size,
            input_size=input_size,
        )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """flax ``ConvTranspose`` arguments for a spec: lax's raw pads as ``(low, high)``."""
    fe.require(
        spec.layout == "channels_last",
        FRAMEWORK,
        "its layers are channels last (move the data's channel axis last)",
    )
    try:
        params = convt_lax.from_spec(spec, kernel_size=kernel_size, input_size=input_size)
    except fe.NotExpressible as err:
        raise fe.NotExpressible(str(err).replace("jax.lax", "flax", 1)) from None
    out = dict(strides=params["strides"], padding=[tuple(p) for p in params["padding"]])
    if "rhs_dilation" in params:
        out["kernel_dilation"] = params["rhs_dilation"]
    return out


def weight_to_canonical(
    weight: Any, *, ndim: int, groups: int, transpose_kernel: bool = False
) -> Any:
    """``(*k, C_in, C_out)`` (or ``(*k, C_out, C_in)`` with ``transpose_kernel``) ->
    ``(C_in, C_out, *k)``."""
    return convt_lax.weight_to_canonical(
        weight, ndim=ndim, groups=groups, transpose_kernel=transpose_kernel
    )


def weight_from_canonical(
    weight: Any, *, ndim: int, groups: int, transpose_kernel: bool = False
) -> Any:
    """``(C_in, C_out, *k)`` -> ``(*k, C_in, C_out)`` (or ``(*k, C_out, C_in)`` with
    ``transpose_kernel``)."""
    return convt_lax.weight_from_canonical(
        weight, ndim=ndim, groups=groups, transpose_kernel=transpose_kernel
    )


def _circular_fold(y, x_spatial, strides, transpose_kernel: bool):
    """flax's CIRCULAR step: pad ``y`` to whole periods ``n s`` per axis and sum the
    periods (``y`` is ``(N, *spatial, C)``)."""
    periods = [n * s for n, s in zip(x_spatial, strides)]
    pads = []
    for size, period in zip(y.shape[1:-1], periods):
        diff = -(size - period) % (2 * period)
        pads.append(
            (diff // 2, (diff + 1) // 2) if transpose_kernel else ((diff + 1) // 2, diff // 2)
        )
    y = jnp.pad(y, [(0, 0), *pads, (0, 0)])
    for axis, period in enumerate(periods, start=1):
        y = y.reshape(y.shape[:axis] + (-1, period) + y.shape[axis + 1 :]).sum(axis=axis)
    return y


def conv_transpose(
    inputs: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: Any = None,
    padding: Any = "SAME",
    kernel_dilation: Any = None,
    transpose_kernel: bool = False,
    mask: jax.Array | None = None,
    precision: Any = None,
    preferred_element_type: Any = None,
    method: str = "auto",
) -> jax.Array:
    """What ``flax.nnx.ConvTranspose`` / ``flax.linen.ConvTranspose`` compute with their
    ``kernel`` and ``bias`` params on ``inputs (*batch, *spatial, C_in)``."""
    fe.check_arrays(FRAMEWORK, ("inputs", "kernel", "bias"), inputs, kernel, bias)
    ndim = jnp.ndim(kernel) - 2
    if ndim < 1 or jnp.ndim(inputs) < ndim + 1:
        raise ValueError(
            f"flax: inputs need {ndim} spatial axes and a feature axis after the batch axes, "
            f"got inputs {tuple(jnp.shape(inputs))} for a kernel {tuple(jnp.shape(kernel))}"
        )
    if mask is not None:
        if jnp.shape(mask) != jnp.shape(kernel):
            raise ValueError(
                f"flax: mask needs to have the same shape as the kernel, got "
                f"{tuple(jnp.shape(mask))} and {tuple(jnp.shape(kernel))}"
            )
        kernel = kernel * mask
    batch_shape = jnp.shape(inputs)[: jnp.ndim(inputs) - ndim - 1]
    x = jnp.reshape(inputs, (-1, *jnp.shape(inputs)[len(batch_shape) :]))
    strides_ = _per_axis(strides, ndim, "strides")
    pads = _lax_padding(padding, ndim)
    with fe.speaking_as(FRAMEWORK, convt_lax.FRAMEWORK, _RENAMES):
        y = convt_lax.conv_transpose(
            x,
            kernel,
            strides_,
            "VALID" if pads == "CIRCULAR" else pads,
            rhs_dilation=_per_axis(kernel_dilation, ndim, "kernel_dilation"),
            transpose_kernel=transpose_kernel,
            precision=precision,
            preferred_element_type=preferred_element_type,
            method=method,
        )
    if pads == "CIRCULAR":
        y = _circular_fold(y, jnp.shape(x)[1:-1], strides_, transpose_kernel)
    if bias is not None:
        if jnp.shape(bias) != (jnp.shape(y)[-1],):
            raise ValueError(
                f"flax: bias must have shape ({jnp.shape(y)[-1]},), got {tuple(jnp.shape(bias))}"
            )
        y = y + bias
    return jnp.reshape(y, (*batch_shape, *jnp.shape(y)[1:]))


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("flax.linen", "flax.nnx"),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("strides", "strides, one value or one per axis", short="-s"),
        Option("padding", "SAME (default), VALID, or low high per axis", kind="pairs", short="-p"),
        Option("kernel_dilation", "kernel_dilation, one value or one per axis", short="-d"),
    ),
    weight_to_canonical=weight_to_canonical,
    weight_from_canonical=weight_from_canonical,
    summary="flax ConvTranspose, linen and nnx (lax's padding, kernel (*k, in, out))",
)


# ------------------------------------------------------------------ deprecated names

__getattr__ = deprecated_attributes(
    "convt.flax",
    {
        name: (
            f"convt.layers.flax:{name}",
            f"the layer with torch's arguments is convt.layers.flax.{name}; convt.flax "
            "computes flax's own layer",
        )
        for name in ("ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
    },
)
