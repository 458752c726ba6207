"""``jax.lax.conv_transpose``, as a drop-in that never aborts and uses convt's lowerings.

``jax.lax.conv_transpose(lhs, rhs, strides, padding, rhs_dilation, dimension_numbers,
transpose_kernel, precision, preferred_element_type, use_consistent_padding)`` is one
lhs-dilated ``conv_general_dilated`` with window strides 1, ``lhs_dilation = strides``
and the padding ``(a, b)`` per axis given as follows (``k_e = rhs_dilation * (k - 1) + 1``):

* ``"SAME"``: ``a + b = k_e + s - 2``, ``a = k_e - 1`` if ``s > k_e - 1`` else
  ``ceil((k_e + s - 2) / 2)``; the output is ``n * s``.
* ``"VALID"``: ``a = k_e - 1``, ``b = s - 1 + max(k_e - s, 0)``; the output is
  ``(n - 1) * s + max(k_e, s)``.
* explicit pairs: the raw padding of the lhs-dilated convolution (not torch's
  ``padding``: jax #14337, #32267, #17618); with ``use_consistent_padding=True`` the pairs
  are a forward convolution's padding, ``(a, b) = (k_e - 1 - p_lo, k_e - 1 - p_hi)``, as
  torch reads ``padding``.
* any other string (``"same"``, ``"SAME_LOWER"``, ...) goes to ``conv_general_dilated``,
  which pads as a stride-1 forward convolution of the input (``lax.padtype_to_pads``)
  and refuses it when a stride is above 1; convt does the same.
* padding that crops an axis to nothing gives an empty array, as jax's shape rule does.

In the canonical spec that is crop ``(k_e - 1 - a, k_e - 1 - b)`` per axis (negative
values extend). The kernel is used as given: without ``transpose_kernel`` it is the
forward convolution's kernel of the lhs-dilated form, so the canonical weight is its
spatial flip with the two feature axes swapped; with ``transpose_kernel=True`` it is
already the canonical ``(C_in, C_out, *k)`` in ``dimension_numbers``' order. There are
no groups. Layouts whose spatial axes keep their order (``NHWC``, ``NCHW``, ...) go to
XLA as dimension numbers; others are transposed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax as jax_lax

from convt import _frontend as fe
from convt.convention import Convention, NotExpressible, Option
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, Layout, effective_kernel

__all__ = [
    "CONVENTION",
    "conv_transpose",
    "dimension_numbers_for",
    "from_spec",
    "to_spec",
    "weight_from_canonical",
    "weight_to_canonical",
]

FRAMEWORK = "jax.lax"
DEFAULT_DIMENSION_NUMBERS = {
    2: ("NC", "IO", "NC"),
    3: ("NHC", "HIO", "NHC"),
    4: ("NHWC", "HWIO", "NHWC"),
    5: ("NHWDC", "HWDIO", "NHWDC"),
}


def _padding_pairs(
    padding: Any,
    *,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    input_size: Sequence[int] | None,
    use_consistent_padding: bool,
) -> tuple[tuple[int, int], ...]:
    """The lhs-dilated convolution's padding ``(a, b)`` per axis, as jax computes it."""
    n = len(stride)
    k_eff = [effective_kernel(k, d) for k, d in zip(kernel, dilation)]
    if isinstance(padding, str) and (padding in ("SAME", "VALID") or use_consistent_padding):
        if padding not in ("SAME", "VALID"):
            raise ValueError(
                f"jax.lax: with use_consistent_padding=True, padding must be 'SAME', 'VALID' "
                f"or (low, high) pairs, got {padding!r}"
            )
        return tuple(_transpose_padding(k, s, padding) for k, s in zip(k_eff, stride))
    if isinstance(padding, str):
        # jax passes other strings to conv_general_dilated, which pads like a stride-1
        # forward convolution of the input, and refuses them with an lhs dilation
        if any(s != 1 for s in stride):
            raise ValueError(
                f"jax.lax: padding={padding!r} needs strides of 1 (jax.lax.conv_transpose "
                "raises 'String padding is not implemented for transposed convolution' "
                "otherwise); use 'SAME', 'VALID' or (low, high) pairs"
            )
        if input_size is None:
            raise ValueError(f"jax.lax: padding={padding!r} needs input_size")
        try:
            pads = jax_lax.padtype_to_pads(tuple(input_size), tuple(k_eff), (1,) * n, padding)
        except (ValueError, TypeError, RuntimeError) as err:
            raise ValueError(f"jax.lax: unknown padding {padding!r}: {err}") from None
        return tuple((int(a), int(b)) for a, b in pads)
    pairs = _pairs(padding, n)
    if use_consistent_padding:
        return tuple(_transpose_padding(k, s, p) for k, s, p in zip(k_eff, stride, pairs))
    return pairs


def _pairs(padding: Any, n: int) -> tuple[tuple[int, int], ...]:
    if isinstance(padding, (str, bytes)) or not isinstance(padding, Sequence):
        raise TypeError(
            f"jax.lax: padding must be 'SAME', 'VALID' or a sequence of {n} (low, high) "
            f"pairs, got {padding!r}"
        )
    if len(padding) != n or not all(
        isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2 for p in padding
    ):
        raise ValueError(
            f"jax.lax: padding needs one (low, high) pair per spatial axis ({n}), got {padding!r}"
        )
    return tuple(fe.int_pair(p, "padding", FRAMEWORK) for p in padding)


def _transpose_padding(k_eff: int, s: int, padding) -> tuple[int, int]:
    """jax's ``_conv_transpose_padding``: ``SAME``, ``VALID`` or a forward pair."""
    if padding == "SAME":
        total = k_eff + s - 2
        low = k_eff - 1 if s > k_eff - 1 else math.ceil(total / 2)
    elif padding == "VALID":
        total = k_eff + s - 2 + max(k_eff - s, 0)
        low = k_eff - 1
    else:
        low, high = (k_eff - p - 1 for p in padding)
        total = low + high
    return low, total - low


def _layout_of(dimension_numbers: Any, ndim: int) -> Layout:
    """The canonical layout ``conv_transpose`` computes in for these dimension numbers."""
    if dimension_numbers is None:
        return "channels_last"
    lhs = (
        dimension_numbers.lhs_spec
        if isinstance(dimension_numbers, jax_lax.ConvDimensionNumbers)
        else dimension_numbers[0]
    )
    if isinstance(lhs, str):
        if len(lhs) != ndim + 2:
            raise ValueError(
                f"jax.lax: dimension_numbers {dimension_numbers!r} do not have {ndim} spatial axes"
            )
        lhs = (lhs.index("N"), lhs.index("C"), *(i for i, c in enumerate(lhs) if c not in "NC"))
    spatial = list(lhs[2:])
    if lhs[0] == 0 and lhs[1] == ndim + 1 and spatial == sorted(spatial):
        return "channels_last"
    return "channels_first"


def dimension_numbers_for(layout: str, ndim: int) -> tuple[str, str, str]:
    """String dimension numbers for a canonical layout (kernel in the default order)."""
    letters = "HWD"[:ndim] if ndim <= 3 else "".join(chr(ord("a") + i) for i in range(ndim))
    lhs = f"NC{letters}" if layout == "channels_first" else f"N{letters}C"
    return lhs, f"{letters}IO", lhs


@fe.deprecated_positional(
    "strides", "padding", "rhs_dilation", "dimension_numbers", "use_consistent_padding"
)
def to_spec(
    ndim: int,
    *,
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    use_consistent_padding: bool = False,
    kernel_size: Any = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for ``jax.lax.conv_transpose``'s parameters.

    ``kernel_size`` (spatial) is needed: every padding form depends on it;
    ``input_size`` only for the other string paddings (with unit strides).
    """
    args = fe.Arguments(FRAMEWORK, ndim)
    if kernel_size is None:
        raise ValueError("jax.lax: the crop depends on the kernel size: pass kernel_size")
    kernel = args.ints(kernel_size, "kernel_size")
    stride = args.ints(strides, "strides", allow_single=False)
    dilation = args.ints(
        (1,) * ndim if rhs_dilation is None else rhs_dilation,
        "rhs_dilation",
        allow_single=False,
    )
    args.at_least(stride, 1, "strides")
    args.at_least(dilation, 1, "rhs_dilation")
    pairs = _padding_pairs(
        padding,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        input_size=input_size,
        use_consistent_padding=use_consistent_padding,
    )
    crop = tuple(
        (effective_kernel(k, d) - 1 - a, effective_kernel(k, d) - 1 - b)
        for (a, b), k, d in zip(pairs, kernel, dilation)
    )
    return ConvTransposeSpec(
        stride=stride,
        dilation=dilation,
        crop=crop,
        groups=1,
        layout=_layout_of(dimension_numbers, ndim),
    )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """``jax.lax.conv_transpose`` parameters for a spec: explicit raw pairs (no groups)."""
    del input_size
    fe.require(spec.groups == 1, FRAMEWORK, "jax.lax.conv_transpose has no feature groups")
    if kernel_size is None:
        raise NotExpressible("cannot be expressed in jax.lax without the kernel size")
    pads = [
        (effective_kernel(k, d) - 1 - lo, effective_kernel(k, d) - 1 - hi)
        for k, d, (lo, hi) in zip(kernel_size, spec.dilation, spec.crop)
    ]
    params: dict[str, Any] = dict(strides=tuple(spec.stride), padding=pads)
    if any(d != 1 for d in spec.dilation):
        params["rhs_dilation"] = tuple(spec.dilation)
    if spec.layout != "channels_last":
        params["dimension_numbers"] = dimension_numbers_for(spec.layout, spec.ndim)
    return params


def _canonical_operands(lhs, rhs, dn: jax_lax.ConvDimensionNumbers, transpose_kernel: bool):
    """``lhs`` in a canonical layout (``NC*`` or ``N*C``) and the canonical weight."""
    n = lhs.ndim - 2
    spatial = list(dn.lhs_spec[2:])
    if spatial == sorted(spatial) and dn.lhs_spec[0] == 0 and dn.lhs_spec[1] in (1, n + 1):
        x = lhs
        layout: Layout = "channels_first" if dn.lhs_spec[1] == 1 else "channels_last"
    else:  # spatial axes out of order: bring them to (N, C, *spatial)
        x = jnp.transpose(lhs, dn.lhs_spec)
        layout = "channels_first"
    kernel = jnp.transpose(rhs, dn.rhs_spec)  # (rhs O, rhs I, *k) in spatial order
    return x, _canonical_kernel(kernel, transpose_kernel), layout


def _canonical_kernel(kernel, transpose_kernel: bool):
    """An ``(O, I, *k)`` kernel as jax.lax reads it -> ``(C_in, C_out, *k)``: flipped and
    swapped, or as given with ``transpose_kernel`` (jax flips and swaps it back)."""
    if transpose_kernel:
        return kernel
    return jnp.swapaxes(jnp.flip(kernel, axis=tuple(range(2, kernel.ndim))), 0, 1)


def conv_transpose(
    lhs: jax.Array,
    rhs: jax.Array,
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    transpose_kernel: bool = False,
    precision: Any = None,
    preferred_element_type: Any = None,
    use_consistent_padding: bool = False,
    *,
    method: str = "auto",
) -> jax.Array:
    """``jax.lax.conv_transpose``, the same numbers, through convt's lowerings.

    Shapes follow ``dimension_numbers`` (default ``NHC``/``NHWC``/``NHWDC`` inputs and
    ``HIO``/``HWIO``/``HWDIO`` kernels); see the module docstring for the padding forms.
    ``method`` picks convt's lowering (see `convt.conv_transpose`).
    """
    fe.check_arrays(FRAMEWORK, ("lhs", "rhs"), lhs, rhs)
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    if lhs.ndim != rhs.ndim or lhs.ndim < 2:
        raise ValueError(
            f"jax.lax: lhs and rhs must have the same rank (>= 2), got shapes {lhs.shape} "
            f"and {rhs.shape}"
        )
    n = lhs.ndim - 2
    if dimension_numbers is None:
        if lhs.ndim not in DEFAULT_DIMENSION_NUMBERS:
            raise ValueError("jax.lax: no default dimension_numbers for 4+ spatial axes")
        dimension_numbers = DEFAULT_DIMENSION_NUMBERS[lhs.ndim]
    dn = jax_lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    x, w, layout = _canonical_operands(lhs, rhs, dn, transpose_kernel)
    spatial_axes = range(2, n + 2) if layout == "channels_first" else range(1, n + 1)
    spec = to_spec(
        n,
        strides=tuple(strides),
        padding=padding,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers_for(layout, n),
        use_consistent_padding=use_consistent_padding,
        kernel_size=w.shape[2:],
        input_size=tuple(x.shape[a] for a in spatial_axes),
    )
    empty = fe.cropped_to_nothing(x, w, spec, FRAMEWORK, padding, preferred_element_type)
    if empty is not None:
        return _to_out_layout(empty, dn, layout)
    y = fe.call(
        x,
        w,
        None,
        spec,
        FRAMEWORK,
        options=LoweringOptions(method, precision, preferred_element_type),
        names=("lhs", "rhs", "bias", "padding"),
    )
    return _to_out_layout(y, dn, layout)


def _to_out_layout(y, dn: jax_lax.ConvDimensionNumbers, layout: str):
    """``y`` from the canonical layout to ``dn.out_spec``'s."""
    n = y.ndim - 2
    current = (
        (0, 1, *range(2, n + 2)) if layout == "channels_first" else (0, n + 1, *range(1, n + 1))
    )
    if tuple(dn.out_spec) == current:
        return y
    order = [0] * (n + 2)  # y's logical axis at `current`, moved to out_spec's position
    for logical, position in enumerate(dn.out_spec):
        order[position] = current[logical]
    return jnp.transpose(y, order)


def weight_to_canonical(
    weight: Any, *, ndim: int, groups: int, transpose_kernel: bool = False
) -> Any:
    """An ``HWIO``-style kernel (spatial, then I, then O; the default layout) to
    ``(C_in, C_out, *k)``: flipped and swapped unless ``transpose_kernel``."""
    del groups
    return _canonical_kernel(
        jnp.transpose(weight, (ndim + 1, ndim, *range(ndim))), transpose_kernel
    )


def weight_from_canonical(
    weight: Any, *, ndim: int, groups: int, transpose_kernel: bool = False
) -> Any:
    """``(C_in, C_out, *k)`` to the default ``HWIO``-style kernel (the inverse)."""
    del groups
    kernel = (
        weight
        if transpose_kernel
        else jnp.flip(jnp.swapaxes(weight, 0, 1), axis=tuple(range(2, ndim + 2)))
    )
    return jnp.transpose(kernel, (*range(2, ndim + 2), 1, 0))


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("lax", "jax"),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("strides", "strides, one per axis", kind="sizes", short="-s"),
        Option(
            "padding",
            "SAME, VALID, or the raw (low, high) pairs of the lhs-dilated form "
            "(low_1 high_1 low_2 high_2 ...)",
            kind="pairs",
            short="-p",
        ),
        Option("rhs_dilation", "rhs_dilation, one per axis", kind="sizes", short="-d"),
    ),
    weight_to_canonical=weight_to_canonical,
    weight_from_canonical=weight_from_canonical,
    summary="jax.lax.conv_transpose (kernel HWIO, not flipped unless transpose_kernel)",
)
