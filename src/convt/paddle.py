"""paddle's ``conv{1,2,3}d_transpose``.

Per spatial axis with pads ``(before, after)`` paddle computes::

    out = (in - 1) * stride - before - after + dilation * (k - 1) + 1 + output_padding

the canonical spec with crop ``(before, after - output_padding)``. ``output_size``
(mutually exclusive with a nonzero ``output_padding``) must lie in
``[out, out + stride)`` with ``output_padding = 0``; it keeps ``output_size`` outputs from
``before`` on. ``padding`` may be an int, one int per axis, two per axis
(``[before_1, after_1, before_2, after_2, ...]``), one pair per axis of the input
including the (zero) batch and channel pairs, or ``"SAME"``/``"VALID"`` in any case.

What paddle 3.3 does for ``"SAME"`` (not the formula on its doc page, which gives
``(in + stride - 1) / stride``): it pads like a forward convolution's SAME on the
*input*, ``total = max((ceil(in / stride) - 1) * stride + k - in, 0)`` split
``(total // 2, total - total // 2)``, and sets the dilation to 1. ``"VALID"`` is zero
padding. ``output_padding`` must be below the stride (paddle's shape check allows
``< max(stride, dilation)``, but its kernel then fails). Channels-last formats
(``NLC``, ``NHWC``, ``NDHWC``) are passed to XLA as dimension numbers.

paddle does not reject ``dilation=0`` (it returns meaningless shapes); convt does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from convt import _frontend as fe
from convt import layers
from convt.convention import Convention, Option, WeightNorm, calls_by_rank, standard_options
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, Layout

__all__ = [
    "CONVENTION",
    "conv1d_transpose",
    "Conv1DTranspose",
    "conv2d_transpose",
    "Conv2DTranspose",
    "conv3d_transpose",
    "Conv3DTranspose",
    "fold_weight_norm",
    "from_layer",
    "from_model",
    "from_spec",
    "from_state_dict",
    "init",
    "load_state_dict",
    "to_spec",
]

FRAMEWORK = "paddle"
DATA_FORMATS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
IntOrTuple = int | Sequence[int]


def _channels_last(ndim: int, data_format: str) -> bool:
    if data_format not in DATA_FORMATS[ndim]:
        raise ValueError(
            f"paddle: data_format must be one of {DATA_FORMATS[ndim]} for conv{ndim}d_transpose, "
            f"got {data_format!r}"
        )
    return data_format == DATA_FORMATS[ndim][1]


def _parse_padding(padding: Any, ndim: int, data_format: str) -> str | tuple[tuple[int, int], ...]:
    """``"SAME"``, ``"VALID"`` or one ``(before, after)`` pair per spatial axis."""
    if isinstance(padding, str):
        upper = padding.upper()
        if upper not in ("SAME", "VALID"):
            raise ValueError(
                f"paddle: unknown padding {padding!r}: it can only be 'SAME' or 'VALID'"
            )
        return upper
    pairs: tuple[tuple[int, int], ...]
    if fe.is_int(padding):
        pairs = ((int(padding), int(padding)),) * ndim
    elif (
        isinstance(padding, Sequence)
        and len(padding) > 0
        and all(isinstance(p, Sequence) and not isinstance(p, str) for p in padding)
    ):
        if len(padding) != ndim + 2 or not all(len(p) == 2 for p in padding):
            raise ValueError(
                f"paddle: padding given as pairs needs {ndim + 2} pairs (batch, channel and "
                f"spatial axes in data_format order), got {padding!r}"
            )
        flat = fe.int_tuple([v for p in padding for v in p], 2 * ndim + 4, "padding", FRAMEWORK)
        every_axis = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        channel = 1 if data_format.startswith("NC") else ndim + 1
        if any(every_axis[0]) or any(every_axis[channel]):
            raise ValueError(
                f"paddle: non-zero padding {padding!r} in the batch or channel dimensions is "
                "not supported"
            )
        pairs = tuple(p for i, p in enumerate(every_axis) if i not in (0, channel))
    elif isinstance(padding, Sequence) and not isinstance(padding, str):
        values = fe.int_tuple(padding, len(padding), "padding", FRAMEWORK) if len(padding) else ()
        if len(values) == ndim:
            pairs = tuple((v, v) for v in values)
        elif len(values) == 2 * ndim:
            pairs = tuple((values[i], values[i + 1]) for i in range(0, 2 * ndim, 2))
        else:
            raise ValueError(
                f"paddle: padding needs {ndim} or {2 * ndim} ints for {ndim} spatial axes, got "
                f"{padding!r}"
            )
    else:
        raise TypeError(f"paddle: padding must be an int, a list or a string, got {padding!r}")
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"paddle: padding must be >= 0, got {padding!r}")
    return pairs


def _same_pads(
    input_size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    """paddle's ``"SAME"``: the forward convolution's SAME pads on the input."""
    pairs = []
    for n, k, s in zip(input_size, kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def _output_sizes(output_size: Any, ndim: int) -> tuple[int, ...]:
    """paddle's ``output_size``: an int, ``ndim`` ints, or an integer tensor (here a 1-D
    numpy or JAX array) of one or ``ndim`` values."""
    if isinstance(output_size, (np.ndarray, jax.Array)):
        if output_size.ndim != 1 or output_size.shape[0] not in (1, ndim):
            raise ValueError(
                f"paddle: output_size as a tensor must hold one or {ndim} integers, got shape "
                f"{output_size.shape}"
            )
        output_size = [int(v) for v in np.asarray(output_size)] * (ndim // output_size.shape[0])
    return fe.int_tuple(output_size, ndim, "output_size", FRAMEWORK, allow_single=False)


@fe.deprecated_positional(
    "stride", "padding", "output_padding", "dilation", "groups", "output_size", "data_format"
)
def to_spec(
    ndim: int,
    *,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    output_size: IntOrTuple | None = None,
    data_format: str | None = None,
    kernel_size: IntOrTuple | None = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for paddle parameters.

    ``"SAME"`` and ``output_size`` need ``kernel_size`` and ``input_size`` (spatial).
    """
    args = fe.Arguments(FRAMEWORK, ndim)
    fe.check_ndim(ndim, FRAMEWORK)
    if ndim not in DATA_FORMATS:
        raise ValueError(
            f"{FRAMEWORK}: ndim must be one of {tuple(DATA_FORMATS)} (conv{{1,2,3}}d_transpose), "
            f"got {ndim}"
        )
    data_format = data_format or DATA_FORMATS[ndim][0]
    channels_last = _channels_last(ndim, data_format)
    stride = args.ints(stride, "stride", allow_single=False)
    dilation = args.ints(dilation, "dilation", allow_single=False)
    output_padding = args.ints(output_padding, "output_padding", allow_single=False)
    groups = args.int(groups, "groups")
    args.at_least(stride, 1, "stride")
    args.at_least(dilation, 1, "dilation")
    pads = _parse_padding(padding, ndim, data_format)
    if output_size is not None and any(output_padding):
        raise ValueError("paddle: output_padding option is mutually exclusive with output_size")
    fe.check_output_padding(output_padding, stride, dilation, FRAMEWORK, rule="stride")
    needs_sizes = pads == "SAME" or output_size is not None
    if needs_sizes and (kernel_size is None or input_size is None):
        raise ValueError("paddle: 'SAME' padding and output_size need kernel_size and input_size")
    kernel = args.ints(kernel_size, "kernel_size") if needs_sizes else ()
    sizes_in: Sequence[int] = () if input_size is None else input_size
    if pads == "SAME":
        pads, dilation = _same_pads(sizes_in, kernel, stride), (1,) * ndim
    elif pads == "VALID":
        pads = ((0, 0),) * ndim
    assert not isinstance(pads, str)
    layout: Layout = "channels_last" if channels_last else "channels_first"
    crop = tuple((lo, hi - op) for (lo, hi), op in zip(pads, output_padding))
    spec = ConvTransposeSpec(
        stride=stride, dilation=dilation, crop=crop, groups=groups, layout=layout
    )
    if output_size is None:
        return spec
    sizes = _output_sizes(output_size, ndim)
    fe.check_size_range(sizes, spec.output_spatial_shape(sizes_in, kernel), stride, FRAMEWORK)
    full = spec.full_spatial_shape(sizes_in, kernel)
    return ConvTransposeSpec(
        stride=stride,
        dilation=dilation,
        crop=fe.crop_for_size([lo for lo, _ in pads], full, sizes),
        groups=groups,
        layout=layout,
    )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """paddle parameters for a canonical spec: explicit ``(before, after)`` pads.

    A right extension (negative ``hi``) becomes ``output_padding`` (below the stride).
    """
    del input_size, kernel_size
    pads: list[int] = []
    for (lo, hi), s in zip(spec.crop, spec.stride):
        fe.require(
            lo >= 0, FRAMEWORK, f"padding cannot be negative (crop lo={lo} extends on the left)"
        )
        op = max(0, -hi)
        fe.require(
            op < s,
            FRAMEWORK,
            f"crop hi={hi} extends by {op}, but output_padding must be below the stride ({s})",
        )
        pads += [lo, hi + op]
    output_padding = [max(0, -hi) for _, hi in spec.crop]
    padding: int | tuple[int, ...] | list[int] = pads
    if all(a == b for a, b in zip(pads[::2], pads[1::2])):
        padding = fe.per_axis_value(pads[::2])
    params: dict[str, Any] = dict(stride=fe.per_axis_value(spec.stride), padding=padding)
    if any(output_padding):
        params["output_padding"] = fe.per_axis_value(output_padding)
    params.update(
        dilation=fe.per_axis_value(spec.dilation),
        groups=spec.groups,
        data_format=DATA_FORMATS[spec.ndim][spec.layout == "channels_last"],
    )
    return params


def _conv_transpose(ndim, x, weight, bias, *, data_format, options, **params):
    channels_last = _channels_last(ndim, data_format)
    fe.check_arrays(FRAMEWORK, ("x", "weight", "bias"), x, weight, bias)
    fe.check_rank(x, ndim, FRAMEWORK, f"conv{ndim}d_transpose", unbatched=False, name="x")
    kernel = fe.kernel_size_of(weight, ndim, FRAMEWORK, "weight")
    spec = to_spec(
        ndim,
        data_format=data_format,
        kernel_size=kernel,
        input_size=fe.spatial_shape(x, ndim, channels_last),
        **params,
    )
    return fe.call(
        x,
        weight,
        bias,
        spec,
        FRAMEWORK,
        options=options,
        names=("x", "weight", "bias", "padding"),
    )


def conv1d_transpose(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    output_size: Any = None,
    data_format: str = "NCL",
    name: str | None = None,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``paddle.nn.functional.conv1d_transpose``.

    Shapes: ``x (N, C_in, L)`` (``NCL``) or ``(N, L, C_in)`` (``NLC``), ``weight (C_in,
    C_out // groups, K)``, ``bias (C_out,)`` -> ``(N, C_out, L_out)`` in the same format.
    """
    del name  # paddle's op name, for its static graphs: accepted and ignored, as in paddle
    return _conv_transpose(
        1,
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        output_size=output_size,
        data_format=data_format,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv2d_transpose(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    output_size: Any = None,
    data_format: str = "NCHW",
    name: str | None = None,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``paddle.nn.functional.conv2d_transpose`` (note: ``dilation`` before ``groups``).

    Shapes: ``x (N, C_in, H, W)`` (``NCHW``) or ``(N, H, W, C_in)`` (``NHWC``), ``weight
    (C_in, C_out // groups, kH, kW)``, ``bias (C_out,)``.
    """
    del name  # paddle's op name, for its static graphs: accepted and ignored, as in paddle
    return _conv_transpose(
        2,
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        output_size=output_size,
        data_format=data_format,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv3d_transpose(
    x: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    output_size: Any = None,
    data_format: str = "NCDHW",
    name: str | None = None,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``paddle.nn.functional.conv3d_transpose``.

    Shapes: ``x (N, C_in, D, H, W)`` (``NCDHW``) or ``(N, D, H, W, C_in)`` (``NDHWC``),
    ``weight (C_in, C_out // groups, kD, kH, kW)``, ``bias (C_out,)``.
    """
    del name  # paddle's op name, for its static graphs: accepted and ignored, as in paddle
    return _conv_transpose(
        3,
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        output_size=output_size,
        data_format=data_format,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def init(key: jax.Array, layer: layers.Layer, *, dtype: Any = jnp.float32) -> dict:
    """Parameters drawn as paddle initialises a ``ConvNDTranspose``: the weight from
    ``XavierUniform`` (paddle's default for a parameter; a transposed layer sets no
    initialiser), ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``, ``fan_in =
    (C_out / groups) prod(kernel)`` and ``fan_out = C_in prod(kernel)`` (paddle's fans of
    the ``(C_in, C_out / groups, *kernel)`` weight); the bias zeros."""
    c_in, c_out_g, *kernel = layer.weight_shape
    bound = math.sqrt(6 / ((c_in + c_out_g) * math.prod(kernel)))
    return layers.drawn_params(
        key, layer, weight_init=("uniform", bound), bias_init=("zeros", 0.0), dtype=dtype
    )


def _fold_kept(g: jax.Array, v: jax.Array, kept: tuple[int, ...]) -> jax.Array:
    """`fold_weight_norm` with the kept axes of `convt.layers.Layer.weight_norm`."""
    return fold_weight_norm(g, v, kept[0] if kept else None)


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("paddlepaddle",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        *standard_options("stride"),
        Option(
            "padding",
            "SAME, VALID, one int, one per axis, or two per axis "
            "(before_1 after_1 before_2 after_2 ...)",
            kind="padding",
            short="-p",
        ),
        *standard_options("output_padding", "dilation", "groups"),
        Option("output_size", "output_size, one per axis", kind="ints"),
        Option(
            "data_format",
            "NCL/NLC, NCHW/NHWC or NCDHW/NDHWC (default channels first)",
            kind="choice",
            choices=("NCL", "NLC", "NCHW", "NHWC", "NCDHW", "NDHWC"),
        ),
    ),
    summary="paddle.nn.functional.conv{1,2,3}d_transpose",
    layer_call=calls_by_rank({1: conv1d_transpose, 2: conv2d_transpose, 3: conv3d_transpose}),
    init=init,
    weight_norm=WeightNorm(fold=_fold_kept, keeps_rank=False),
)


# ------------------------------------------------------------------ paddle layers to JAX

_LAYER_CLASSES = {1: "Conv1DTranspose", 2: "Conv2DTranspose", 3: "Conv3DTranspose"}
WEIGHT_NORM_EPS = 1e-12


def _layer(
    ndim: int,
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    weight_attr: Any = None,
    bias_attr: Any = None,
    data_format: str | None = None,
) -> layers.Layer:
    args = fe.Arguments(FRAMEWORK, ndim)
    del weight_attr  # initialisers and regularisers: `init` draws paddle's default
    name = _LAYER_CLASSES[ndim]
    in_channels, out_channels, groups, kernel = layers.check_shapes(
        FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        kernel_size=kernel_size,
        ndim=ndim,
    )
    data_format = data_format or DATA_FORMATS[ndim][0]
    config: dict[str, Any] = dict(
        stride=args.ints(stride, "stride"),  # as the layer stores them
        padding=layers.frozen(padding),
        output_padding=layers.frozen(output_padding),
        dilation=args.ints(dilation, "dilation"),
        groups=groups,
        data_format=data_format,
    )
    # paddle's checks, raised when the layer is built ("SAME" pads on a stand-in size)
    to_spec(ndim, **config, kernel_size=kernel, input_size=kernel)
    if bias_attr is not None and bias_attr is not False:
        raise TypeError(f"paddle: {name}: bias_attr must be None or False here, got {bias_attr!r}")
    return layers.Layer(
        convention=FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel,
        groups=groups,
        bias=bias_attr is not False,
        config=tuple(config.items()),
        output_size_name="output_size",
        output_size_drops=("output_padding",),
    )


def Conv1DTranspose(  # noqa: N802 - paddle's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    weight_attr: Any = None,
    bias_attr: Any = None,
    data_format: str | None = None,
) -> layers.Layer:
    """``paddle.nn.Conv1DTranspose(in_channels, out_channels, kernel_size, stride=1,
    padding=0, output_padding=0, groups=1, dilation=1, weight_attr=None, bias_attr=None,
    data_format="NCL")`` as a `convt.layers.Layer` (``bias_attr=False``: no bias)."""
    return _layer(1, **locals())


def Conv2DTranspose(  # noqa: N802 - paddle's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    weight_attr: Any = None,
    bias_attr: Any = None,
    data_format: str | None = None,
) -> layers.Layer:
    """``paddle.nn.Conv2DTranspose`` (arguments as `Conv1DTranspose`'s, ``"NCHW"``)."""
    return _layer(2, **locals())


def Conv3DTranspose(  # noqa: N802 - paddle's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: Any = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    weight_attr: Any = None,
    bias_attr: Any = None,
    data_format: str | None = None,
) -> layers.Layer:
    """``paddle.nn.Conv3DTranspose`` (arguments as `Conv1DTranspose`'s, ``"NCDHW"``)."""
    return _layer(3, **locals())


def fold_weight_norm(weight_g: Any, weight_v: Any, dim: int | None = 0) -> jax.Array:
    """The weight ``paddle.nn.utils.weight_norm(layer, dim=dim)`` computes from
    ``weight_g`` and ``weight_v``: ``g * v / max(|v|, 1e-12)`` with the norm over every
    axis but ``dim`` (``dim=None`` or ``-1``: ``g * v / (|v| + 1e-12)`` over all of
    ``v``). Differentiable in ``weight_g`` and ``weight_v``."""
    v = jnp.asarray(weight_v)
    g = jnp.asarray(weight_g)
    if dim is None or dim == -1:
        return g.reshape(()) * v / (jnp.sqrt(jnp.sum(v * v)) + WEIGHT_NORM_EPS)
    dim = dim % v.ndim
    others = tuple(a for a in range(v.ndim) if a != dim)
    norm = jnp.sqrt(jnp.sum(v * v, axis=others, keepdims=True))
    shape = [1] * v.ndim
    shape[dim] = -1
    if g.size != v.shape[dim]:
        raise ValueError(
            f"paddle: weight_g of shape {g.shape} does not match weight_norm dim={dim} of a "
            f"weight_v of shape {v.shape}"
        )
    return v / jnp.maximum(norm, WEIGHT_NORM_EPS) * g.reshape(shape)


def load_state_dict(source: Any) -> dict[str, np.ndarray]:
    """A state dict saved by ``paddle.save(layer.state_dict(), path)`` (a ``.pdparams``
    file: a pickle of numpy arrays), read without paddle: ``{name: numpy array}`` for
    `from_state_dict`. ``source`` is a path, the bytes or a binary file; a file holding
    anything but numpy arrays and containers is refused (use ``paddle.load``)."""
    from convt._checkpoint import load_numpy_pickle, numpy_state_dict

    obj = load_numpy_pickle(source, framework=FRAMEWORK, loader="paddle.load")
    return numpy_state_dict(obj, framework=FRAMEWORK, skip=("StructuredToParameterName@@",))


def from_state_dict(
    state_dict: Mapping[str, Any],
    layer: layers.Layer,
    prefix: str = "",
    *,
    weight_norm_dim: int | None = 0,
) -> dict:
    """Canonical parameters for ``layer`` from a paddle state dict (``layer.state_dict()``,
    ``paddle.load(path)``; tensors or numpy arrays): ``prefix + "weight"``, or
    ``weight_g``/``weight_v`` from ``weight_norm`` (folded with `fold_weight_norm`; a
    0-D ``weight_g`` is ``dim=None``), and ``prefix + "bias"``. For a layer with
    ``weight_norm`` kept (`convt.layers.weight_norm`, ``from_layer(...,
    weight_norm="keep")``) the parameters are ``{"weight_g", "weight_v", "bias"}`` as
    paddle holds them, and the layer folds them as paddle does."""

    def array(name):
        value = state_dict[prefix + name]
        return value.numpy() if hasattr(value, "numpy") else value

    if prefix + "weight_orig" in state_dict:
        raise ValueError(
            f"paddle: {prefix}weight_orig is a spectral_norm parameter; spectral_norm's "
            "power iteration is not folded: take layer.weight after a forward in eval mode"
        )
    if layer.weight_norm is not None:
        return _kept_weight_norm_params(array, layer, prefix)
    if prefix + "weight_g" in state_dict:
        g = array("weight_g")
        dim = None if np.ndim(g) == 0 else weight_norm_dim
        weight = fold_weight_norm(g, array("weight_v"), dim)
    elif prefix + "weight" in state_dict:
        weight = array("weight")
    else:
        raise KeyError(f"paddle: the state dict has no {prefix}weight (nor weight_g/weight_v)")
    bias = array("bias") if layer.bias else None
    if layer.bias and prefix + "bias" not in state_dict:
        raise KeyError(f"paddle: the state dict has no {prefix}bias")
    if tuple(np.shape(weight)) != layer.weight_shape:
        raise ValueError(
            f"paddle: {prefix}weight has shape {tuple(np.shape(weight))}, the layer needs "
            f"{layer.weight_shape}"
        )
    return layers.canonical_params(FRAMEWORK, weight, bias, ndim=layer.ndim, groups=layer.groups)


def _kept_weight_norm_params(array: Any, layer: layers.Layer, prefix: str) -> dict:
    """``{"weight_g", "weight_v", "bias"}`` of a weight-normed layer's state, checked
    against the shapes ``layer`` takes."""
    shapes = layer.param_shapes
    try:
        params = {name: jnp.asarray(array(name)) for name in shapes}
    except KeyError as err:
        raise KeyError(
            f"paddle: the layer keeps weight_norm's parameters, but the state dict has no "
            f"{err.args[0]}"
        ) from None
    for name, shape in shapes.items():
        if params[name].shape != shape:
            raise ValueError(
                f"paddle: {prefix}{name} has shape {params[name].shape}, the layer needs {shape}"
            )
    return params


def _weight_norm_dim(layer: Any) -> tuple[bool, int | None]:
    """Whether ``paddle.nn.utils.weight_norm`` applies to the layer's weight, and its
    ``dim`` (``None`` for the whole weight)."""
    for hook in getattr(layer, "_forward_pre_hooks", {}).values():
        if type(hook).__name__ == "WeightNorm" and getattr(hook, "name", None) == "weight":
            return True, None if hook.dim == -1 else hook.dim
    return False, 0


def from_layer(layer: Any, *, weight_norm: str = "fold") -> tuple[dict, layers.Layer]:
    """``(params, layer)`` for a ``paddle.nn.Conv{1,2,3}DTranspose`` (with or without
    ``weight_norm``): canonical parameters and the static `convt.layers.Layer`.
    Nothing of paddle is imported: the layer's attributes and ``state_dict()`` are
    read.

    ``weight_norm="fold"`` folds ``paddle.nn.utils.weight_norm``'s ``weight_g`` and
    ``weight_v`` into ``params["weight"]``; ``"keep"`` keeps them (``{"weight_g",
    "weight_v", "bias"}`` as paddle holds them) and the layer computes the weight as
    paddle does, inside the differentiated function, so ``jax.grad`` gives paddle's
    gradients with respect to ``g`` and ``v``. Layers without ``weight_norm`` are
    unaffected."""
    keep = layers.keeps_weight_norm(weight_norm, FRAMEWORK)
    ndim = len(getattr(layer, "_kernel_size", ()))
    if type(layer).__name__ != _LAYER_CLASSES.get(ndim):
        raise TypeError(
            f"paddle: from_layer takes a Conv1DTranspose/2D/3D layer, got {type(layer).__name__}"
        )
    config = _layer(
        ndim,
        layer._in_channels,
        layer._out_channels,
        tuple(layer._kernel_size),
        stride=tuple(layer._stride),
        padding=layer._padding,
        output_padding=layer.output_padding,
        groups=layer._groups,
        dilation=tuple(layer._dilation),
        bias_attr=None if layer.bias is not None else False,
        data_format=layer._data_format,
    )
    normed, dim = _weight_norm_dim(layer)
    if normed and keep:
        config = layers.weight_norm(config, dim)
    params = from_state_dict(layer.state_dict(), config, weight_norm_dim=dim)
    return params, config


def from_model(model: Any, *, weight_norm: str = "fold") -> dict[str, tuple[dict, layers.Layer]]:
    """``{path: (params, layer)}`` for every transposed convolution in a paddle model,
    keyed as ``model.named_sublayers()`` names them; ``weight_norm`` as in
    `from_layer`."""
    layers.keeps_weight_norm(weight_norm, FRAMEWORK)
    if not hasattr(model, "named_sublayers"):
        raise TypeError(f"paddle: from_model takes a paddle.nn.Layer, got {type(model)!r}")
    return {
        name: from_layer(sub, weight_norm=weight_norm)
        for name, sub in model.named_sublayers(include_self=True)
        if type(sub).__name__ in _LAYER_CLASSES.values()
    }
