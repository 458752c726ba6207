"""MindSpore's ``nn.Conv1dTranspose``, ``nn.Conv2dTranspose`` and ``nn.Conv3dTranspose``.

The layers run ``Conv2DBackpropInput`` / ``Conv3DTranspose`` at an output length they
compute themselves (``mindspore.nn.layer.conv._deconv_output_length``), per spatial axis
with ``k_e = d (k - 1) + 1``:

================  =========================================  ===============================
``pad_mode``      output length                               canonical crop
================  =========================================  ===============================
``"same"``        ``n s``                                     ``(lo, k_e - s - lo)``,
                                                              ``lo = max(k_e - s, 0) // 2``
``"valid"``       ``n s + max(k_e - s, 0)``                   ``(0, min(k_e - s, 0))``
``"pad"``         ``(n - 1) s + k_e - before - after``        ``(before, after)``
================  =========================================  ===============================

``padding`` is one int or, per axis, ``(before, after)`` pairs flattened: 4 values
``(top, bottom, left, right)`` in 2-D, 6 ``(head, tail, top, bottom, left, right)`` in
3-D; ``nn.Conv1dTranspose`` takes one int. It must be 0 unless ``pad_mode="pad"``.

``output_padding`` (only with ``pad_mode="pad"``, each value in ``[0, max(stride,
dilation))``) behaves differently by rank, as measured on MindSpore 2.10:

* ``nn.Conv2dTranspose`` computes the layer without it, adds the bias, and then pads
  the output with ``output_padding`` **zeros** at the bottom and right (``ops.Pad``), so
  those rows are zero, not convolution values and not the bias. No canonical crop says
  that; `to_spec` refuses it and the function applies the padding after the convolution.
* ``nn.Conv3dTranspose`` passes it to ``Conv3DTranspose``, which computes the extra
  outputs: torch's reading, crop ``(before, after - output_padding)``. Its check allows
  values below ``max(stride, dilation)``, but the CPU kernel fails from ``stride`` on,
  so convt takes values below ``stride``.
* ``nn.Conv1dTranspose`` has no ``output_padding``.

Weights are ``(C_in, C_out // group, *k)`` (``nn.Conv1dTranspose`` stores
``(C_in, C_out // group, 1, k)``; both are accepted), biases ``(C_out,)``. Inputs are
batched ``NCW``/``NCHW``/``NCDHW``. ``Conv3DTranspose`` also refuses a depth dilation
other than 1, kernels with more than 343 taps and strides whose product exceeds 343 (or
256 over height and width); convt refuses them too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt.convention import Convention, Option
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, effective_kernel

__all__ = [
    "CONVENTION",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
    "from_spec",
    "to_spec",
    "weight_to_canonical",
]

FRAMEWORK = "mindspore"
PAD_MODES = ("same", "valid", "pad")
IntOrTuple = int | Sequence[int]


def _pad_pairs(padding: Any, ndim: int, pad_mode: str) -> tuple[tuple[int, int], ...]:
    """``padding`` as ``(before, after)`` per spatial axis."""
    flat: tuple[int, ...]
    if ndim == 1:
        flat = (fe.check_int(padding, "padding", FRAMEWORK, minimum=0),) * 2
    elif fe.is_int(padding):
        flat = (fe.check_int(padding, "padding", FRAMEWORK, minimum=0),) * (2 * ndim)
    else:
        if not isinstance(padding, Sequence) or len(padding) != 2 * ndim:
            raise ValueError(
                f"mindspore: padding must be an int or a tuple of {2 * ndim} ints "
                f"(before and after each spatial axis), got {padding!r}"
            )
        flat = fe.int_tuple(list(padding), 2 * ndim, "padding", FRAMEWORK)
        fe.check_at_least(flat, 0, "padding", FRAMEWORK)
    if pad_mode != "pad" and any(flat):
        raise ValueError(
            f"mindspore: padding must be 0 unless pad_mode is 'pad', got padding={padding!r} "
            f"with pad_mode={pad_mode!r}"
        )
    return tuple((flat[2 * a], flat[2 * a + 1]) for a in range(ndim))


def _output_padding(output_padding, ndim, stride, dilation, pad_mode) -> tuple[int, ...]:
    if ndim == 1:
        if output_padding not in (0, None):
            raise ValueError(
                f"mindspore: nn.Conv1dTranspose has no output_padding, got {output_padding!r}"
            )
        return (0,)
    values = fe.int_tuple(output_padding, ndim, "output_padding", FRAMEWORK, allow_single=False)
    if pad_mode != "pad" and any(values):
        raise ValueError(
            f"mindspore: output_padding must be 0 unless pad_mode is 'pad', got "
            f"output_padding={output_padding!r} with pad_mode={pad_mode!r}"
        )
    fe.check_output_padding(values, stride, dilation, FRAMEWORK)
    if ndim == 3 and any(op >= st for op, st in zip(values, stride)):
        # Conv3DTranspose's check allows max(stride, dilation), but its CPU kernel fails
        # ("could not create a primitive descriptor") whenever output_padding >= stride
        raise ValueError(
            f"mindspore: output_padding must be smaller than stride on every axis in 3-D "
            f"(MindSpore's CPU kernel fails otherwise), got output_padding={values}, "
            f"stride={tuple(stride)}"
        )
    return values


def _check_conv3d_limits(kernel, stride, dilation) -> None:
    """``Conv3DTranspose``'s own limits."""
    if dilation[0] != 1:
        raise ValueError(
            f"mindspore: Conv3DTranspose needs the depth dilation to be 1, got dilation={dilation}"
        )
    if math.prod(kernel) > 343:
        raise ValueError(f"mindspore: Conv3DTranspose takes at most 343 kernel taps, got {kernel}")
    if math.prod(stride) > 343 or stride[1] * stride[2] > 256:
        raise ValueError(
            f"mindspore: Conv3DTranspose needs stride products of at most 343 (all axes) "
            f"and 256 (height and width), got stride={stride}"
        )


def _layer_spec(
    ndim: int,
    stride: IntOrTuple = 1,
    pad_mode: str = "same",
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    group: int = 1,
    *,
    kernel_size: IntOrTuple,
) -> tuple[ConvTransposeSpec, tuple[int, ...]]:
    """The canonical spec of the convolution a layer runs, and the zeros it appends after
    it on each spatial axis (2-D ``output_padding``; otherwise zeros)."""
    args = fe.Arguments(FRAMEWORK, ndim)
    if pad_mode not in PAD_MODES:
        raise ValueError(f"mindspore: pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    allow_single = ndim == 1
    kernel = args.ints(kernel_size, "kernel_size")
    if ndim == 1:  # nn.Conv1dTranspose takes ints only
        stride = (args.int(stride, "stride"),)
        dilation = (args.int(dilation, "dilation"),)
    else:
        stride = args.ints(stride, "stride", allow_single=allow_single)
        dilation = args.ints(dilation, "dilation", allow_single=allow_single)
    args.at_least(stride, 1, "stride")
    args.at_least(dilation, 1, "dilation")
    group = args.int(group, "group")
    pairs = _pad_pairs(padding, ndim, pad_mode)
    ops = _output_padding(output_padding, ndim, stride, dilation, pad_mode)
    if ndim == 3:
        _check_conv3d_limits(kernel, stride, dilation)
    crop = []
    for (before, after), k, s, d, op in zip(pairs, kernel, stride, dilation, ops):
        k_e = effective_kernel(k, d)
        if pad_mode == "same":
            lo = max(k_e - s, 0) // 2
            crop.append((lo, k_e - s - lo))
        elif pad_mode == "valid":
            crop.append((0, min(k_e - s, 0)))
        else:  # 3-D computes output_padding's outputs; 2-D pads zeros afterwards
            crop.append((before, after - (op if ndim == 3 else 0)))
    zeros_after = ops if ndim == 2 else (0,) * ndim
    return ConvTransposeSpec(
        stride=stride, dilation=dilation, crop=tuple(crop), groups=group
    ), zeros_after


@fe.deprecated_positional("stride", "pad_mode", "padding", "output_padding", "dilation", "group")
def to_spec(
    ndim: int,
    *,
    stride: IntOrTuple = 1,
    pad_mode: str = "same",
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    group: int = 1,
    kernel_size: IntOrTuple | None = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for a layer's parameters (the kernel size is needed; the crop
    does not depend on the input size). A 2-D ``output_padding`` appends zeros after the
    convolution, which no spec expresses: that raises here, and
    ``conv2d_transpose`` computes it."""
    del input_size
    if kernel_size is None:
        raise ValueError("mindspore: the kernel size is needed")
    spec, zeros_after = _layer_spec(
        ndim,
        stride=stride,
        pad_mode=pad_mode,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        group=group,
        kernel_size=kernel_size,
    )
    if any(zeros_after):
        raise ValueError(
            f"mindspore: nn.Conv2dTranspose's output_padding={output_padding!r} appends zeros "
            "after the convolution and the bias; no canonical crop expresses that "
            "(convt.mindspore.conv2d_transpose computes it)"
        )
    return spec


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """Parameters for a spec: ``pad_mode="pad"`` with per-axis ``(before, after)``
    padding (3-D: ``output_padding`` for crops that extend on the right)."""
    del input_size, kernel_size
    fe.require(
        spec.layout == "channels_first", FRAMEWORK, "its transposed convolutions are channels first"
    )
    ndim = spec.ndim
    fe.require(min(lo for lo, _ in spec.crop) >= 0, FRAMEWORK, "padding cannot be negative")
    pads, output_padding = [], []
    for (lo, hi), s, d in zip(spec.crop, spec.stride, spec.dilation):
        op = max(-hi, 0) if ndim == 3 else 0
        fe.require(
            hi + op >= 0 and op < max(s, d),
            FRAMEWORK,
            f"crop {(lo, hi)}: padding cannot be negative"
            + (
                f" and output_padding must stay below max(stride, dilation) = {max(s, d)}"
                if ndim == 3
                else ""
            ),
        )
        pads += [lo, hi + op]
        output_padding.append(op)
    if ndim == 1:
        fe.require(pads[0] == pads[1], FRAMEWORK, "nn.Conv1dTranspose pads both sides equally")
    params: dict = dict(stride=fe.per_axis_value(spec.stride), pad_mode="pad")
    params["padding"] = pads[0] if len(set(pads)) == 1 else tuple(pads)
    if ndim == 3:
        try:
            _check_conv3d_limits((1, 1, 1), spec.stride, spec.dilation)
        except ValueError as err:
            raise fe.NotExpressible(f"cannot be expressed in mindspore: {err}") from None
    if any(output_padding):
        params["output_padding"] = fe.per_axis_value(output_padding)
    params["dilation"] = fe.per_axis_value(spec.dilation)
    params["group"] = spec.groups
    return params


def weight_to_canonical(weight: Any, *, ndim: int, groups: int) -> Any:
    """``nn.Conv1dTranspose``'s stored ``(C_in, C_out // group, 1, k)`` -> ``(C_in,
    C_out // group, k)``; other weights are canonical already."""
    del groups
    if ndim == 1 and jnp.ndim(weight) == 4:
        if jnp.shape(weight)[2] != 1:
            raise ValueError(
                "mindspore: a 4-D Conv1dTranspose weight is (C_in, C_out // group, 1, k), got "
                f"shape {tuple(jnp.shape(weight))}"
            )
        return jnp.squeeze(weight, 2)
    return weight


def _conv_transpose(
    ndim,
    x,
    weight,
    bias,
    *,
    stride,
    pad_mode,
    padding,
    output_padding,
    dilation,
    group,
    options,
):
    fe.check_arrays(FRAMEWORK, ("x", "weight", "bias"), x, weight, bias)
    fe.check_rank(x, ndim, FRAMEWORK, f"Conv{ndim}dTranspose", unbatched=False, name="x")
    weight = weight_to_canonical(weight, ndim=ndim, groups=group)
    spec, zeros_after = _layer_spec(
        ndim,
        stride=stride,
        pad_mode=pad_mode,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        group=group,
        kernel_size=fe.kernel_size_of(weight, ndim, FRAMEWORK),
    )
    if jnp.shape(x)[1] % spec.groups:
        raise ValueError(
            f"mindspore: group={spec.groups} must divide the x channels ({jnp.shape(x)[1]})"
        )
    out = spec.output_spatial_shape(fe.spatial_shape(x, ndim), jnp.shape(weight)[2:])
    # MindSpore returns an empty array (a negative length is an error)
    empty = (
        fe.cropped_to_nothing(x, weight, spec, FRAMEWORK, padding, options.preferred_element_type)
        if min(out) == 0
        else None
    )
    if empty is not None:
        y = empty
    else:
        y = fe.call(
            x,
            weight,
            bias,
            spec,
            FRAMEWORK,
            options=options,
            names=("x", "weight", "bias", "padding"),
        )
    if any(zeros_after):
        y = jnp.pad(y, [(0, 0), (0, 0), *((0, z) for z in zeros_after)])
    return y


def conv1d_transpose(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: int = 1,
    pad_mode: str = "same",
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
    group: int = 1,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``nn.Conv1dTranspose``: ``x (N, C_in, W)``, ``weight (C_in, C_out // group, k)``
    (or the stored ``(C_in, C_out // group, 1, k)``), ``bias (C_out,)``; ints only, no
    ``output_padding``."""
    return _conv_transpose(
        1,
        x,
        weight,
        bias,
        stride=stride,
        pad_mode=pad_mode,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        group=group,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv2d_transpose(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    pad_mode: str = "same",
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    group: int = 1,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``nn.Conv2dTranspose``: ``x (N, C_in, H, W)``, ``weight (C_in, C_out // group, kH,
    kW)``, ``bias (C_out,)``, ``padding`` an int or ``(top, bottom, left, right)``;
    ``output_padding`` appends zeros at the bottom and right after the bias."""
    return _conv_transpose(
        2,
        x,
        weight,
        bias,
        stride=stride,
        pad_mode=pad_mode,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        group=group,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv3d_transpose(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    pad_mode: str = "same",
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    group: int = 1,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``nn.Conv3dTranspose``: ``x (N, C_in, D, H, W)``, ``weight (C_in, C_out // group,
    kD, kH, kW)``, ``bias (C_out,)``, ``padding`` an int or ``(head, tail, top, bottom,
    left, right)``; ``output_padding`` computes extra outputs as torch does."""
    return _conv_transpose(
        3,
        x,
        weight,
        bias,
        stride=stride,
        pad_mode=pad_mode,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        group=group,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("ms",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("stride", "stride (default 1)", short="-s"),
        Option("pad_mode", "same (default), valid or pad", kind="choice", choices=PAD_MODES),
        Option("padding", "padding: one int, or before and after per axis", short="-p"),
        Option("output_padding", "output_padding (pad_mode pad; 3-D only in translate)"),
        Option("dilation", "dilation (default 1)", short="-d"),
        Option("group", "group (default 1)", kind="int", short="-g"),
    ),
    weight_to_canonical=weight_to_canonical,
    summary="nn.Conv{1,2,3}dTranspose (pad_mode same/valid/pad; 2-D output_padding pads zeros)",
)
