"""Equinox's ``eqx.nn.ConvTranspose`` (and ``ConvTranspose1d/2d/3d``).

Equinox describes the layer by the forward convolution it transposes: ``padding`` is
that convolution's (an int, one int per axis, ``(before, after)`` pairs, or ``"VALID"``,
``"SAME"``, ``"SAME_LOWER"``), and it runs ``lax.conv_general_dilated`` on the
zero-stuffed input with the padding of "Relationship 14" (Dumoulin and Visin):
``(k_e - 1 - before, k_e - 1 - after + output_padding)``, which is the canonical crop
``(before, after - output_padding)``. For ``"SAME"``/``"SAME_LOWER"`` it takes
``total = k_e - s + output_padding``; when that is negative the output is extended by
``-total`` and no padding is applied, otherwise ``before = total // 2`` (``"SAME"``) or
``(total + 1) // 2`` (``"SAME_LOWER"``), ``after = total - before``, and
``output_padding`` itself is then dropped: every SAME layer gives ``n s -
output_padding`` outputs. ``output_padding`` must be below the stride.

The weight is the forward convolution's kernel, ``(C_out, C_in // groups, *k)``, used
unflipped on the stuffed input; its canonical form is per group transposed and
flipped. The bias is ``(C_out, 1, ..., 1)``. Inputs are unbatched ``(C_in, *spatial)``
as equinox takes them (a batched input is also accepted here). ``padding_mode``
``"ZEROS"`` or ``"CIRCULAR"`` (only with ``"SAME"``/``"SAME_LOWER"`` and no
``output_padding``: the input is wrapped by ``padding // stride`` first, and the rest of
the padding applied as usual).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt._deprecation import deprecated_attributes
from convt.convention import Convention, Option
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, effective_kernel

__all__ = [
    "CONVENTION",
    "bias_from_canonical",
    "bias_to_canonical",
    "conv_transpose",
    "from_spec",
    "to_spec",
    "weight_from_canonical",
    "weight_to_canonical",
]

FRAMEWORK = "equinox"
PADDING_STRINGS = ("SAME", "SAME_LOWER", "VALID")
PADDING_MODES = ("ZEROS", "CIRCULAR")


def _padding(padding: Any, ndim: int) -> str | tuple[tuple[int, int], ...]:
    """equinox's ``_padding_init``."""
    if isinstance(padding, str):
        if padding.upper() not in PADDING_STRINGS:
            raise ValueError(
                f"equinox: padding string must be 'SAME', 'SAME_LOWER' or 'VALID', got {padding!r}"
            )
        return padding.upper()
    if fe.is_int(padding):
        return ((int(padding), int(padding)),) * ndim
    if isinstance(padding, Sequence) and len(padding) == ndim:
        if all(isinstance(p, Sequence) and not isinstance(p, str) for p in padding):
            if any(len(p) != 2 for p in padding):
                raise ValueError(f"equinox: padding pairs must have 2 values, got {padding!r}")
            return tuple(fe.int_pair(list(p), "padding", FRAMEWORK) for p in padding)
        values = fe.int_tuple(list(padding), ndim, "padding", FRAMEWORK)
        return tuple((v, v) for v in values)
    raise ValueError(
        f"equinox: padding must be a string, an int, or a sequence of {ndim} ints or "
        f"(before, after) pairs, got {padding!r}"
    )


def _forward_padding(
    padding: Any, *, kernel: Sequence[int], stride, dilation, output_padding
) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """The forward padding pairs and the ``output_padding`` equinox really applies
    (``_padding_transpose``)."""
    ndim = len(kernel)
    pads = _padding(padding, ndim)
    if pads == "VALID":
        return ((0, 0),) * ndim, tuple(output_padding)
    if isinstance(pads, str):
        pairs, applied = [], []
        for k, s, d, op in zip(kernel, stride, dilation, output_padding):
            total = effective_kernel(k, d) - s + op
            extend = -total if total < 0 else 0
            total = max(total, 0)
            before = (total + (1 if pads == "SAME_LOWER" else 0)) // 2
            pairs.append((before, total - before))
            applied.append(extend)
        return tuple(pairs), tuple(applied)
    return pads, tuple(output_padding)


def _check(
    ndim, kernel_size, stride, dilation, output_padding, groups
) -> tuple[tuple[int, ...], ...]:
    args = fe.Arguments(FRAMEWORK, ndim)
    kernel = args.ints(kernel_size, "kernel_size")
    stride = args.ints(stride, "stride")
    dilation = args.ints(dilation, "dilation")
    output_padding = args.ints(output_padding, "output_padding")
    args.at_least(stride, 1, "stride")
    args.at_least(dilation, 1, "dilation")
    fe.check_output_padding(output_padding, stride, dilation, FRAMEWORK, rule="stride")
    args.int(groups, "groups")
    return kernel, stride, dilation, output_padding


@fe.deprecated_positional("stride", "padding", "output_padding", "dilation", "groups")
def to_spec(
    ndim: int,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    kernel_size: Any = None,
    input_size: Any = None,
) -> ConvTransposeSpec:
    """The canonical spec for ``eqx.nn.ConvTranspose``'s parameters (``padding_mode``
    ``"ZEROS"``; the SAME forms need the kernel size)."""
    del input_size
    if kernel_size is None:
        if isinstance(padding, str):
            raise ValueError("equinox: padding strings need the kernel size")
        kernel_size = (1,) * ndim  # the crop does not depend on it otherwise
    kernel, stride, dilation, output_padding = _check(
        ndim, kernel_size, stride, dilation, output_padding, groups
    )
    pairs, applied = _forward_padding(
        padding, kernel=kernel, stride=stride, dilation=dilation, output_padding=output_padding
    )
    crop = tuple((lo, hi - op) for (lo, hi), op in zip(pairs, applied))
    return ConvTransposeSpec(stride=stride, dilation=dilation, crop=crop, groups=groups)


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """``eqx.nn.ConvTranspose`` arguments for a spec: ``(before, after)`` pairs and
    ``output_padding`` for crops that extend on the right."""
    del input_size, kernel_size
    fe.require(spec.layout == "channels_first", FRAMEWORK, "its layers are channels first")
    pairs, output_padding = [], []
    for (lo, hi), s in zip(spec.crop, spec.stride):
        op = max(-hi, 0)
        fe.require(lo >= 0, FRAMEWORK, f"padding cannot be negative (crop {(lo, hi)})")
        fe.require(op < s, FRAMEWORK, f"crop {(lo, hi)} extends by more than stride - 1")
        pairs.append((lo, hi + op))
        output_padding.append(op)
    params: dict = dict(stride=fe.per_axis_value(spec.stride), padding=tuple(pairs))
    if any(output_padding):
        params["output_padding"] = fe.per_axis_value(output_padding)
    params["dilation"] = fe.per_axis_value(spec.dilation)
    params["groups"] = spec.groups
    return params


def weight_to_canonical(weight: Any, *, ndim: int, groups: int) -> Any:
    """``(C_out, C_in // groups, *k)`` (a forward kernel, used unflipped) -> canonical
    ``(C_in, C_out // groups, *k)``, flipped."""
    shape = jnp.shape(weight)
    c_out, c_in_g, kernel = shape[0], shape[1], shape[2:]
    w = jnp.reshape(weight, (groups, c_out // groups, c_in_g, *kernel))
    w = jnp.swapaxes(w, 1, 2).reshape(groups * c_in_g, c_out // groups, *kernel)
    return jnp.flip(w, axis=tuple(range(2, ndim + 2)))


def weight_from_canonical(weight: Any, *, ndim: int, groups: int) -> Any:
    """The inverse of `weight_to_canonical`."""
    shape = jnp.shape(weight)
    c_in, c_out_g, kernel = shape[0], shape[1], shape[2:]
    w = jnp.flip(weight, axis=tuple(range(2, ndim + 2)))
    w = jnp.reshape(w, (groups, c_in // groups, c_out_g, *kernel))
    return jnp.swapaxes(w, 1, 2).reshape(groups * c_out_g, c_in // groups, *kernel)


def bias_to_canonical(bias: Any, *, ndim: int) -> Any:
    """``(C_out, 1, ..., 1)`` -> ``(C_out,)``."""
    del ndim
    return jnp.reshape(bias, (-1,))


def bias_from_canonical(bias: Any, *, ndim: int) -> Any:
    """``(C_out,)`` -> ``(C_out, 1, ..., 1)``, equinox's bias."""
    return jnp.reshape(bias, (-1,) + (1,) * ndim)


def conv_transpose(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "ZEROS",
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """What ``eqx.nn.ConvTranspose(num_spatial_dims, in_channels, out_channels,
    kernel_size, stride, output_padding, padding, dilation, groups, use_bias,
    padding_mode)`` computes with its ``weight (C_out, C_in // groups, *k)`` and ``bias
    (C_out, 1, ..., 1)`` (or ``(C_out,)``) on ``x (C_in, *spatial)`` (or a batch)."""
    fe.check_arrays(FRAMEWORK, ("x", "weight", "bias"), x, weight, bias)
    ndim = jnp.ndim(weight) - 2
    unbatched = fe.check_rank(x, ndim, FRAMEWORK, "ConvTranspose", unbatched=True, name="x")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"equinox: padding_mode must be 'ZEROS' or 'CIRCULAR' ('REFLECT' and 'REPLICATE' "
            f"are not implemented for ConvTranspose), got {padding_mode!r}"
        )
    kernel = tuple(jnp.shape(weight)[2:])
    spec = to_spec(
        ndim,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        kernel_size=kernel,
    )
    if jnp.shape(x)[-ndim - 1] % spec.groups:
        raise ValueError(
            f"equinox: groups={groups} must divide the x channels ({jnp.shape(x)[-ndim - 1]})"
        )
    w = weight_to_canonical(weight, ndim=ndim, groups=spec.groups)
    b = None if bias is None else bias_to_canonical(bias, ndim=ndim)
    if padding_mode == "CIRCULAR":
        if any(fe.int_tuple(output_padding, ndim, "output_padding", FRAMEWORK)) or (
            _padding(padding, ndim) not in ("SAME", "SAME_LOWER")
        ):
            raise ValueError(
                "equinox: padding_mode='CIRCULAR' is implemented only for padding 'SAME' or "
                "'SAME_LOWER' and output_padding 0"
            )
        # equinox wraps the input by (pad // stride) of the lhs-dilated form's padding
        # (k_e - 1 - crop) and applies the rest (pad % stride) as usual
        reach = [effective_kernel(k, d) - 1 for k, d in zip(kernel, spec.dilation)]
        pads = [(r - lo, r - hi) for r, (lo, hi) in zip(reach, spec.crop)]
        batch = [(0, 0)] * (2 - unbatched)
        wrap = [(lo // s, hi // s) for (lo, hi), s in zip(pads, spec.stride)]
        x = jnp.pad(x, [*batch, *wrap], mode="wrap")
        crop = tuple((r - lo % s, r - hi % s) for r, (lo, hi), s in zip(reach, pads, spec.stride))
        spec = dataclasses.replace(spec, crop=crop)
    # lax.conv_general_dilated's shape rule: an axis cropped away is empty
    batched_x = x[None] if unbatched else x
    empty = fe.cropped_to_nothing(batched_x, w, spec, FRAMEWORK, padding, preferred_element_type)
    if empty is not None:
        return empty[0] if unbatched else empty
    return fe.call(
        x,
        w,
        b,
        spec,
        FRAMEWORK,
        unbatched=unbatched,
        options=LoweringOptions(method, precision, preferred_element_type),
        names=("x", "weight", "bias", "padding"),
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("eqx",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("stride", "stride (default 1)", short="-s"),
        Option(
            "padding",
            "the forward convolution's padding, or SAME/SAME_LOWER/VALID",
            kind="padding",
            short="-p",
        ),
        Option("output_padding", "output_padding (default 0)"),
        Option("dilation", "dilation (default 1)", short="-d"),
        Option("groups", "groups (default 1)", kind="int", short="-g"),
    ),
    weight_to_canonical=weight_to_canonical,
    weight_from_canonical=weight_from_canonical,
    bias_to_canonical=bias_to_canonical,
    bias_from_canonical=bias_from_canonical,
    summary="eqx.nn.ConvTranspose (forward-conv padding, weight (out, in/groups, *k))",
)


# ------------------------------------------------------------------ deprecated names

__getattr__ = deprecated_attributes(
    "convt.equinox",
    {
        name: (
            f"convt.layers.equinox:{name}",
            f"the layer with torch's arguments is convt.layers.equinox.{name}; convt.equinox "
            "computes equinox's own layer",
        )
        for name in ("ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
    },
)
