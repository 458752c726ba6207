"""TensorFlow's ``tf.nn.conv{1,2,3}d_transpose``.

TensorFlow defines the transposed convolution as the input gradient of the forward
convolution whose *input* has ``output_shape``: per spatial axis, with output length
``O``, ``k_e = d (k - 1) + 1`` and the forward convolution's padding ``(before, after)``
(``"VALID"``: none; ``"SAME"``: ``total = max((ceil(O / s) - 1) s + k_e - O, 0)``,
``before = total // 2``; explicit pairs as given), the canonical crop is
``(before, full - before - O)``. ``output_shape`` is required, and TensorFlow checks that
the forward convolution of an ``O``-long input gives back the input length ``n``:
``ceil(O / s) == n`` (SAME), ``(O - k_e) // s + 1 == n`` (VALID),
``(O + before + after - k_e) // s + 1 == n`` (explicit), so ``O`` ranges over
``[(n - 1) s + 1, n s]`` for SAME and ``[full, full + s - 1]`` for VALID.

Filters are ``[*k, out_channels, in_channels]`` (not flipped: canonical is their
transpose); inputs ``NWC``/``NHWC``/``NDHWC`` (default) or channels-first ``NCW``/
``NCHW``/``NCDHW`` (TensorFlow's CPU kernels lack some channels-first cases; convt
computes them). No groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from convt import _frontend as fe
from convt.convention import Convention, Expression, Option
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, Layout, effective_kernel, full_length

__all__ = [
    "CONVENTION",
    "call_parameters",
    "conv1d_transpose",
    "conv2d_transpose",
    "conv3d_transpose",
    "from_spec",
    "to_spec",
    "weight_from_canonical",
    "weight_to_canonical",
]

FRAMEWORK = "tensorflow"
DATA_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def _per_axis(value: Any, ndim: int, name: str, channels_last: bool) -> tuple[int, ...]:
    """TF's ``strides``/``dilations``: an int, or 1, ``ndim`` or ``ndim + 2`` ints (the
    batch and channel entries then 1)."""
    if fe.is_int(value):
        return (int(value),) * ndim
    items = list(value) if value else []
    values = fe.int_tuple(items, len(items), name, FRAMEWORK)
    if len(values) == 1:
        return values * ndim
    if len(values) == ndim:
        return values
    if len(values) == ndim + 2:
        outer = (values[0], values[-1]) if channels_last else (values[0], values[1])
        if outer != (1, 1):
            raise ValueError(
                f"tensorflow: {name} in the batch and channel dimensions must be 1, got {value!r}"
            )
        return values[1:-1] if channels_last else values[2:]
    raise ValueError(
        f"tensorflow: {name} must be an int or have 1, {ndim} or {ndim + 2} values, got {value!r}"
    )


def _padding(padding: Any, ndim: int, channels_last: bool) -> str | tuple[tuple[int, int], ...]:
    """``"SAME"``, ``"VALID"`` or one ``(before, after)`` pair per spatial axis."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ValueError(
                f"tensorflow: padding must be 'SAME', 'VALID' or pairs, got {padding!r}"
            )
        return padding
    if not isinstance(padding, Sequence) or not all(
        isinstance(p, Sequence) and not isinstance(p, str) for p in padding
    ):
        raise TypeError(
            f"tensorflow: padding must be 'SAME', 'VALID' or a list of (before, after) pairs, "
            f"got {padding!r}"
        )
    pairs = [tuple(p) for p in padding]
    if len(pairs) != ndim + 2 or any(len(p) != 2 for p in pairs):
        raise ValueError(
            f"tensorflow: explicit padding needs {ndim + 2} (before, after) pairs, one per "
            f"dimension of the input, got {padding!r}"
        )
    flat = fe.int_tuple([v for p in pairs for v in p], 2 * ndim + 4, "padding", FRAMEWORK)
    every_axis = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    channel = ndim + 1 if channels_last else 1
    if any(every_axis[0]) or any(every_axis[channel]):
        raise ValueError(
            f"tensorflow: padding in the batch and channel dimensions must be zero, got {padding!r}"
        )
    fe.check_at_least(flat, 0, "padding", FRAMEWORK)
    return tuple(p for i, p in enumerate(every_axis) if i not in (0, channel))


def _forward_output(O: int, k_e: int, s: int, padding, pair) -> int:  # noqa: N803
    if padding == "SAME":
        return -(-O // s)
    return fe.forward_length(O, 0 if padding == "VALID" else sum(pair), k_e, s)


@fe.deprecated_positional("output_shape", "strides", "padding", "data_format", "dilations")
def to_spec(
    ndim: int,
    *,
    output_shape: Sequence[int] | None = None,
    strides: Any = 1,
    padding: Any = "SAME",
    data_format: str | None = None,
    dilations: Any = None,
    kernel_size: Any = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for ``tf.nn.conv{N}d_transpose``'s parameters.

    ``output_shape`` (the full shape, ``N + 2`` values, or the spatial ones), the kernel
    size and the input's spatial size are all needed.
    """
    args = fe.Arguments(FRAMEWORK, ndim)
    fe.check_ndim(ndim, FRAMEWORK)
    if ndim not in DATA_FORMATS:
        raise ValueError(
            f"{FRAMEWORK}: ndim must be one of {tuple(DATA_FORMATS)} (conv{{1,2,3}}d_transpose), "
            f"got {ndim}"
        )
    data_format = data_format or DATA_FORMATS[ndim][0]
    if data_format not in DATA_FORMATS.get(ndim, ()):
        raise ValueError(
            f"tensorflow: data_format must be one of {DATA_FORMATS.get(ndim)}, got {data_format!r}"
        )
    channels_last = data_format == DATA_FORMATS[ndim][0]
    if output_shape is None or kernel_size is None or input_size is None:
        raise ValueError("tensorflow: output_shape, the kernel size and the input size are needed")
    shape = [int(v) for v in np.asarray(output_shape).reshape(-1)]
    if len(shape) == ndim + 2:
        shape = shape[1:-1] if channels_last else shape[2:]
    out = args.ints(shape, "output_shape", allow_single=False)
    args.at_least(out, 1, "output_shape")
    kernel = args.ints(kernel_size, "kernel_size")
    n_in = args.ints(input_size, "input_size", allow_single=False)
    stride = _per_axis(strides, ndim, "strides", channels_last)
    dilation = _per_axis(1 if dilations is None else dilations, ndim, "dilations", channels_last)
    args.at_least(stride, 1, "strides")
    args.at_least(dilation, 1, "dilations")
    pads = _padding(padding, ndim, channels_last)
    crop = []
    for axis in range(ndim):
        k_e = effective_kernel(kernel[axis], dilation[axis])
        pair = (0, 0) if isinstance(pads, str) else pads[axis]
        forward = _forward_output(out[axis], k_e, stride[axis], pads, pair)
        if forward != n_in[axis]:
            raise ValueError(
                f"tensorflow: output_shape {tuple(out)} does not fit the input: on spatial axis "
                f"{axis} a forward convolution of length {out[axis]} gives {forward}, not "
                f"{n_in[axis]} (strides {stride}, padding {padding!r}, dilations {dilation})"
            )
        if pads == "SAME":
            total = max((-(-out[axis] // stride[axis]) - 1) * stride[axis] + k_e - out[axis], 0)
            before = total // 2
        else:
            before = pair[0]
        full = full_length(n_in[axis], kernel[axis], stride[axis], dilation[axis])
        crop.append((before, full - before - out[axis]))
    layout: Layout = "channels_last" if channels_last else "channels_first"
    return ConvTransposeSpec(
        stride=stride, dilation=dilation, crop=tuple(crop), groups=1, layout=layout
    )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """TF parameters for a spec: explicit paddings and the output shape (spatial)."""
    fe.require(spec.groups == 1, FRAMEWORK, "tf.nn.conv*_transpose has no groups")
    if input_size is None or kernel_size is None:
        raise fe.NotExpressible("cannot be expressed in tensorflow without the sizes")
    out = spec.output_spatial_shape(input_size, kernel_size)
    pairs = []
    for axis, ((lo, _), n, k, s, d) in enumerate(
        zip(spec.crop, input_size, kernel_size, spec.stride, spec.dilation)
    ):
        fe.require(lo >= 0, FRAMEWORK, f"padding cannot be negative (crop lo={lo})")
        k_e = effective_kernel(k, d)
        # the smallest `after` whose forward convolution gives back n
        after = max(0, (n - 1) * s + k_e - out[axis] - lo)
        fe.require(
            fe.forward_length(out[axis], lo + after, k_e, s) == n,
            FRAMEWORK,
            f"no explicit padding on spatial axis {axis} gives back the input length {n}",
        )
        pairs.append([lo, after])
    channels_last = spec.layout == "channels_last"
    padding = [[0, 0], *pairs, [0, 0]] if channels_last else [[0, 0], [0, 0], *pairs]
    params: dict = dict(output_shape=list(out), strides=list(spec.stride), padding=padding)
    params["data_format"] = DATA_FORMATS[spec.ndim][0 if channels_last else 1]
    if any(d != 1 for d in spec.dilation):
        params["dilations"] = list(spec.dilation)
    return params


def weight_to_canonical(weight: Any, *, ndim: int, groups: int) -> Any:
    """``[*k, out, in]`` -> ``(in, out, *k)``."""
    del groups
    return jnp.transpose(weight, (ndim + 1, ndim, *range(ndim)))


def weight_from_canonical(weight: Any, *, ndim: int, groups: int) -> Any:
    """``(in, out, *k)`` -> ``[*k, out, in]``."""
    del groups
    return jnp.transpose(weight, (*range(2, ndim + 2), 1, 0))


def _check_full_output_shape(output_shape, input, filters, ndim, channels_last) -> None:
    """A full ``output_shape`` (``N + 2`` values) names the batch and the channels too:
    TensorFlow refuses a batch other than the input's and a channel count other than the
    filters' ``out_channels``; so does convt."""
    if output_shape is None:
        return
    shape = [int(v) for v in np.asarray(output_shape).reshape(-1)]
    if len(shape) != ndim + 2:
        return
    batch, channels = shape[0], shape[-1] if channels_last else shape[1]
    if batch != jnp.shape(input)[0]:
        raise ValueError(
            f"tensorflow: output_shape {tuple(shape)} has batch {batch}, but the input's batch "
            f"is {jnp.shape(input)[0]}; they must be equal"
        )
    if channels != jnp.shape(filters)[-2]:
        raise ValueError(
            f"tensorflow: output_shape {tuple(shape)} has {channels} channels, but filters "
            f"{tuple(jnp.shape(filters))} ([*kernel, out_channels, in_channels]) has "
            f"{jnp.shape(filters)[-2]} output channels; they must be equal"
        )


def _integer_arrays(input, filters, ndim: int) -> bool:
    """TensorFlow's dtypes: half, bfloat16, float and double, and int32 for
    ``conv1d_transpose``/``conv2d_transpose`` (an int32 result); whether the arrays are
    the int32 ones."""
    for name, value in (("input", input), ("filters", filters)):
        fe.check_array(value, name, FRAMEWORK, floating=False)
    dtypes = [jnp.result_type(input), jnp.result_type(filters)]
    integer = [not jnp.issubdtype(d, jnp.inexact) for d in dtypes]
    if not any(integer):
        return False
    allowed = "half, bfloat16, float, double" + (", int32" if ndim < 3 else "")
    if dtypes != [jnp.dtype(jnp.int32)] * 2:
        raise TypeError(
            f"tensorflow: conv{ndim}d_transpose takes input and filters of one dtype among "
            f"{allowed}, got {dtypes[0]} and {dtypes[1]}"
        )
    if ndim == 3:
        raise TypeError(
            f"tensorflow: conv3d_transpose takes {allowed}, not int32 (TensorFlow computes "
            "int32 only in 1-D and 2-D)"
        )
    return True


def _conv_transpose(
    ndim,
    input,
    filters,
    *,
    output_shape,
    strides,
    padding,
    data_format,
    dilations,
    options,
):
    integers = _integer_arrays(input, filters, ndim)
    data_format = data_format or DATA_FORMATS[ndim][0]
    fe.check_rank(input, ndim, FRAMEWORK, f"conv{ndim}d_transpose", unbatched=False)
    if jnp.ndim(filters) != ndim + 2:
        raise ValueError(
            f"tensorflow: filters must be {ndim + 2}-D [*kernel, out_channels, in_channels], "
            f"got shape {jnp.shape(filters)}"
        )
    w = weight_to_canonical(filters, ndim=ndim, groups=1)
    channels_last = data_format == DATA_FORMATS[ndim][0]
    _check_full_output_shape(output_shape, input, filters, ndim, channels_last)
    spec = to_spec(
        ndim,
        output_shape=output_shape,
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilations=dilations,
        kernel_size=w.shape[2:],
        input_size=fe.spatial_shape(input, ndim, channels_last),
    )
    return fe.call(
        input,
        w,
        None,
        spec,
        FRAMEWORK,
        options=options,
        names=("input", "filters", "bias", "padding"),
        integers=integers,
    )


def conv1d_transpose(
    input: jax.Array,
    filters: jax.Array,
    output_shape: Sequence[int],
    strides: Any,
    padding: Any = "SAME",
    data_format: str = "NWC",
    dilations: Any = None,
    name: str | None = None,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``tf.nn.conv1d_transpose``: ``input (N, W, C_in)``, ``filters [k, out, in]``."""
    del name
    return _conv_transpose(
        1,
        input,
        filters,
        output_shape=output_shape,
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilations=dilations,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv2d_transpose(
    input: jax.Array,
    filters: jax.Array,
    output_shape: Sequence[int],
    strides: Any,
    padding: Any = "SAME",
    data_format: str = "NHWC",
    dilations: Any = None,
    name: str | None = None,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``tf.nn.conv2d_transpose``: ``input (N, H, W, C_in)``, ``filters [kH, kW, out, in]``."""
    del name
    return _conv_transpose(
        2,
        input,
        filters,
        output_shape=output_shape,
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilations=dilations,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv3d_transpose(
    input: jax.Array,
    filters: jax.Array,
    output_shape: Sequence[int],
    strides: Any,
    padding: Any = "SAME",
    data_format: str = "NDHWC",
    dilations: Any = None,
    name: str | None = None,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``tf.nn.conv3d_transpose``: ``input (N, D, H, W, C_in)``, ``filters [kD, kH, kW, out,
    in]``."""
    del name
    return _conv_transpose(
        3,
        input,
        filters,
        output_shape=output_shape,
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilations=dilations,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def call_parameters(params: dict, spec: ConvTransposeSpec) -> dict:
    """`from_spec`'s parameters as ``tf.nn.conv*_transpose`` needs them: ``output_shape``
    with the batch and the output channels around the spatial sizes (``x.shape[0]``,
    ``filters.shape[-2]``: ``filters`` is ``[*k, C_out, C_in]``), in the data format's
    order."""
    sizes = ", ".join(str(n) for n in params["output_shape"])
    batch, channels = "x.shape[0]", "filters.shape[-2]"
    full = (
        f"[{batch}, {sizes}, {channels}]"
        if spec.layout == "channels_last"
        else f"[{batch}, {channels}, {sizes}]"
    )
    return {**params, "output_shape": Expression(full)}


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("tf",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("output_shape", "output_shape (spatial sizes, or all N + 2)", kind="sizes"),
        Option("strides", "strides, one value or one per axis", short="-s"),
        Option("padding", "SAME or VALID", kind="choice", choices=("SAME", "VALID"), short="-p"),
        Option("dilations", "dilations, one value or one per axis", short="-d"),
        Option(
            "data_format",
            "NWC/NCW, NHWC/NCHW, NDHWC/NCDHW (default channels last)",
            kind="choice",
            choices=("NWC", "NCW", "NHWC", "NCHW", "NDHWC", "NCDHW"),
        ),
    ),
    weight_to_canonical=weight_to_canonical,
    weight_from_canonical=weight_from_canonical,
    summary="tf.nn.conv{1,2,3}d_transpose (output_shape required, filters [*k, out, in])",
    call_parameters=call_parameters,
)
