"""Haiku's ``hk.ConvNDTranspose`` (``Conv1DTranspose``, ``Conv2DTranspose``, ...).

Haiku runs ``jax.lax.conv_transpose`` with its kernel ``w (*kernel_shape, C_out, C_in)``
read as a forward kernel (``transpose_kernel=False``, dimension numbers with the output
channels before the input channels), so its numbers are `convt.lax`'s: ``padding``
``"SAME"`` (the default) or ``"VALID"`` as lax reads them, or raw ``(low, high)`` pads of
the lhs-dilated form. With ``output_shape`` (only with a padding string) haiku's
``compute_adjusted_padding`` picks the pads per axis with ``k_e`` the kernel size:
``"VALID"`` keeps ``before = 0`` and needs ``(O - k + s) // s == n``; ``"SAME"`` needs
``ceil(O / s) == n`` and takes ``before = max(0, (n - 1) s + k - O) // 2``; the crop is
``(before, full - before - O)``. Haiku has no kernel dilation and no groups. The bias is
``(C_out,)`` channels-last or ``(C_out, 1, ..., 1)`` channels-first; inputs are batched
or unbatched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt import lax as convt_lax
from convt.convention import Convention, Option
from convt.spec import ConvTransposeSpec, Layout

__all__ = [
    "CONVENTION",
    "conv_transpose",
    "from_spec",
    "to_spec",
    "weight_from_canonical",
    "weight_to_canonical",
]

FRAMEWORK = "haiku"
_RENAMES = {"strides": "stride", "lhs": "inputs", "rhs": "w"}


def _channels_last(data_format: str) -> bool:
    """haiku's ``get_channel_index``: ``channels_last``/``channels_first`` or a format
    string such as ``NHWC``."""
    if data_format in ("channels_last", "channels_first"):
        return data_format == "channels_last"
    if (
        isinstance(data_format, str)
        and data_format.upper().startswith("N")
        and (data_format.upper().endswith("C") or data_format.upper()[1] == "C")
    ):
        return data_format.upper().endswith("C")
    raise ValueError(
        f"haiku: data_format must be 'channels_last', 'channels_first' or a format string "
        f"such as 'NHWC', got {data_format!r}"
    )


def _adjusted_padding(
    input_size: int, output_size: int, kernel_size: int, stride: int, padding: str
) -> tuple[int, int]:
    """haiku's ``compute_adjusted_padding``: the lax pads giving ``output_size``."""
    if padding == "VALID":
        expected = (output_size - kernel_size + stride) // stride
        before = 0
    elif padding == "SAME":
        expected = (output_size + stride - 1) // stride
        before = max(0, (input_size - 1) * stride + kernel_size - output_size) // 2
    else:
        raise ValueError(f"haiku: padding must be 'VALID' or 'SAME', got {padding!r}")
    if input_size != expected:
        raise ValueError(
            f"haiku: output_shape {output_size} expects an input of {expected}, not "
            f"{input_size} (kernel {kernel_size}, stride {stride}, padding {padding!r})"
        )
    pad_before = kernel_size - 1 - before
    pad_after = output_size + kernel_size - 1 - ((input_size - 1) * stride + 1) - pad_before
    return pad_before, pad_after


def _lax_padding(padding, output_shape, *, kernel, stride, input_size):
    """The padding lax gets: ``padding`` itself, or the pairs for ``output_shape``."""
    if output_shape is None:
        return padding if isinstance(padding, str) else [tuple(p) for p in padding]
    if not isinstance(padding, str):
        raise ValueError("haiku: with output_shape, padding must be 'VALID' or 'SAME'")
    ndim = len(kernel)
    out = fe.int_tuple(output_shape, ndim, "output_shape", FRAMEWORK)
    if input_size is None:
        raise ValueError("haiku: output_shape needs the input size")
    return [
        _adjusted_padding(n, o, k, s, padding)
        for n, o, k, s in zip(input_size, out, kernel, stride)
    ]


@fe.deprecated_positional("stride", "output_shape", "padding", "data_format")
def to_spec(
    ndim: int,
    *,
    stride: Any = 1,
    output_shape: Any = None,
    padding: Any = "SAME",
    data_format: str = "channels_last",
    kernel_size: Any = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for ``hk.ConvNDTranspose``'s arguments (the kernel size is
    needed, the input size too with ``output_shape``)."""
    args = fe.Arguments(FRAMEWORK, ndim)
    if kernel_size is None:
        raise ValueError("haiku: the kernel size is needed")
    kernel = args.ints(kernel_size, "kernel_shape")
    stride_ = args.ints(stride, "stride")
    args.at_least(stride_, 1, "stride")
    pads = _lax_padding(padding, output_shape, kernel=kernel, stride=stride_, input_size=input_size)
    layout: Layout = "channels_last" if _channels_last(data_format) else "channels_first"
    with fe.speaking_as(FRAMEWORK, convt_lax.FRAMEWORK, _RENAMES):
        return convt_lax.to_spec(
            ndim,
            strides=stride_,
            padding=pads,
            dimension_numbers=convt_lax.dimension_numbers_for(layout, ndim),
            kernel_size=kernel,
            input_size=input_size,
        )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """``hk.ConvNDTranspose`` arguments for a spec: raw lax pads (no dilation)."""
    fe.require(all(d == 1 for d in spec.dilation), FRAMEWORK, "it has no kernel dilation")
    if kernel_size is None:
        raise fe.NotExpressible("cannot be expressed in haiku without the kernel size")
    try:
        params = convt_lax.from_spec(spec, kernel_size=kernel_size, input_size=input_size)
    except fe.NotExpressible as err:
        raise fe.NotExpressible(str(err).replace("jax.lax", "haiku", 1)) from None
    return dict(
        stride=params["strides"],
        padding=[tuple(p) for p in params["padding"]],
        data_format=spec.layout,
    )


def weight_to_canonical(weight: Any, *, ndim: int, groups: int) -> Any:
    """``(*k, C_out, C_in)`` read as a forward kernel -> ``(C_in, C_out, *k)``, flipped."""
    del groups
    return jnp.flip(jnp.transpose(weight, (ndim + 1, ndim, *range(ndim))), range(2, ndim + 2))


def weight_from_canonical(weight: Any, *, ndim: int, groups: int) -> Any:
    """``(C_in, C_out, *k)`` -> haiku's ``(*k, C_out, C_in)`` forward kernel, flipped."""
    del groups
    return jnp.transpose(jnp.flip(weight, range(2, ndim + 2)), (*range(2, ndim + 2), 1, 0))


def conv_transpose(
    inputs: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    stride: Any = 1,
    output_shape: Any = None,
    padding: Any = "SAME",
    data_format: str = "channels_last",
    mask: jax.Array | None = None,
    precision: Any = None,
    preferred_element_type: Any = None,
    method: str = "auto",
) -> jax.Array:
    """What ``hk.ConvNDTranspose(num_spatial_dims, output_channels, kernel_shape, stride,
    output_shape, padding, with_bias, data_format=...)`` computes with its parameters
    ``w (*kernel_shape, C_out, C_in)`` and ``b``, on a batched or unbatched input."""
    fe.check_arrays(FRAMEWORK, ("inputs", "w", "b"), inputs, w, b)
    ndim = jnp.ndim(w) - 2
    unbatched = fe.check_rank(inputs, ndim, FRAMEWORK, "ConvNDTranspose", unbatched=True)
    if mask is not None:
        if jnp.shape(mask) != jnp.shape(w):
            raise ValueError("haiku: mask needs to have the same shape as the weights")
        w = w * mask
    x = inputs[None] if unbatched else inputs
    channels_last = _channels_last(data_format)
    layout: Layout = "channels_last" if channels_last else "channels_first"
    kernel = tuple(jnp.shape(w)[:ndim])
    stride_ = fe.int_tuple(stride, ndim, "stride", FRAMEWORK)
    pads = _lax_padding(
        padding,
        output_shape,
        kernel=kernel,
        stride=stride_,
        input_size=fe.spatial_shape(x, ndim, channels_last),
    )
    lhs = convt_lax.dimension_numbers_for(layout, ndim)[0]
    letters = lhs.replace("N", "").replace("C", "")
    with fe.speaking_as(FRAMEWORK, convt_lax.FRAMEWORK, _RENAMES):
        y = convt_lax.conv_transpose(
            x,
            w,
            stride_,
            pads,
            dimension_numbers=(lhs, f"{letters}OI", lhs),
            precision=precision,
            preferred_element_type=preferred_element_type,
            method=method,
        )
    if b is not None:
        c_out = jnp.shape(y)[-1 if channels_last else 1]
        b = jnp.reshape(b, (-1,))
        if jnp.shape(b) != (c_out,):
            raise ValueError(f"haiku: b must have {c_out} values, got shape {jnp.shape(b)}")
        y = y + (b if channels_last else jnp.reshape(b, (-1,) + (1,) * ndim))
    return y[0] if unbatched else y


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("hk",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("stride", "stride (default 1)", short="-s"),
        Option("output_shape", "output_shape (spatial sizes)", kind="sizes"),
        Option("padding", "SAME (default), VALID, or low high per axis", kind="pairs", short="-p"),
        Option(
            "data_format",
            "channels_last (default) or channels_first",
            kind="choice",
            choices=("channels_last", "channels_first"),
        ),
    ),
    weight_to_canonical=weight_to_canonical,
    weight_from_canonical=weight_from_canonical,
    summary="hk.ConvNDTranspose (lax padding or output_shape, w (*k, out, in))",
)
