"""megengine's ``conv_transpose2d`` and ``conv_transpose3d``.

megengine documents torch's output formula::

    out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1

the canonical spec with crop ``(padding, padding - output_padding)``, and requires
``output_padding < stride``. Weights are ``(C_in, C_out, *k)`` for ``groups == 1`` and
``(groups, C_in // groups, C_out // groups, *k)`` for grouped layers (a 5-D weight for
2-D, 6-D for 3-D); that layout flattens to convt's canonical ``(C_in, C_out // groups,
*k)``. Module biases are ``(1, C_out, 1, ...)``; plain ``(C_out,)`` biases work too.

megengine 1.13's own functional deviates from its documented formula, and convt follows
the formula: with ``output_padding`` it crashes (``'int' object is not subscriptable``)
when the first spatial axis's value is non-zero, ignores the other axes' values when the
first is zero, fails for integer ``stride``/``padding`` together with ``output_padding``,
and rejects ``groups > 1`` together with ``output_padding``. A plain ``(C_out,)`` bias and
unbatched ``(C, *spatial)`` inputs (its modules document them) are accepted here. As in
megengine, an integer ``inp`` or ``weight`` beside a floating one is promoted (megengine
1.13 returns float32), and two integer ones are rejected.
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
from convt.convention import Convention, calls_by_rank, standard_options
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec

__all__ = [
    "CONVENTION",
    "bias_from_canonical",
    "bias_to_canonical",
    "conv_transpose2d",
    "conv_transpose3d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "from_model",
    "from_module",
    "from_spec",
    "from_state_dict",
    "init",
    "load_state_dict",
    "to_spec",
    "weight_from_canonical",
    "weight_to_canonical",
]

FRAMEWORK = "megengine"
IntOrTuple = int | Sequence[int]
COMPUTE_MODES = ("default", "float32")


@fe.deprecated_positional("stride", "padding", "output_padding", "dilation", "groups")
def to_spec(
    ndim: int,
    *,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    kernel_size: IntOrTuple | None = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for megengine parameters (the crop depends on no size, so
    ``kernel_size`` and ``input_size`` are accepted for the common interface only)."""
    args = fe.Arguments(FRAMEWORK, ndim)
    del kernel_size, input_size
    stride = args.ints(stride, "stride")
    padding = args.ints(padding, "padding")
    output_padding = args.ints(output_padding, "output_padding")
    dilation = args.ints(dilation, "dilation")
    groups = args.int(groups, "groups")
    args.at_least(stride, 1, "stride")
    args.at_least(dilation, 1, "dilation")
    args.at_least(padding, 0, "padding")
    fe.check_output_padding(output_padding, stride, dilation, FRAMEWORK, rule="stride")
    return ConvTransposeSpec(
        stride=stride,
        dilation=dilation,
        crop=fe.symmetric_crop(padding, output_padding),
        groups=groups,
    )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """megengine parameters for a canonical spec (``output_padding < stride``)."""
    del input_size, kernel_size
    return fe.symmetric_from_spec(spec, FRAMEWORK, lambda stride, dilation: stride)


def weight_to_canonical(weight: jax.Array, *, ndim: int, groups: int) -> jax.Array:
    """megengine's weight -> ``(C_in, C_out // groups, *k)``."""
    shape = tuple(jnp.shape(weight))
    if len(shape) == ndim + 3:
        if shape[0] != groups:
            raise ValueError(
                f"megengine: a grouped weight (groups, C_in // groups, C_out // groups, *k) must "
                f"have weight.shape[0] == groups ({groups}), got shape {shape}"
            )
        return jnp.reshape(weight, (shape[0] * shape[1], *shape[2:]))
    if len(shape) == ndim + 2 and groups == 1:
        return weight
    if len(shape) == ndim + 2:
        raise ValueError(
            f"megengine: with groups={groups} the weight must be {ndim + 3}-D (groups, C_in // "
            f"groups, C_out // groups, *k), got shape {shape}"
        )
    raise ValueError(
        f"megengine: weight must be {ndim + 2}-D (C_in, C_out, *k) or {ndim + 3}-D (groups, "
        f"C_in // groups, C_out // groups, *k), got shape {shape}"
    )


def weight_from_canonical(weight: jax.Array, *, ndim: int, groups: int) -> jax.Array:
    """``(C_in, C_out // groups, *k)`` -> megengine's weight: as is for ``groups == 1``,
    ``(groups, C_in // groups, C_out // groups, *k)`` otherwise."""
    if groups == 1:
        return weight
    c_in, *rest = jnp.shape(weight)
    return jnp.reshape(weight, (groups, c_in // groups, *rest))


def bias_from_canonical(bias: jax.Array | None, *, ndim: int) -> jax.Array | None:
    """``(C_out,)`` -> the module's ``(1, C_out, 1, ...)``."""
    if bias is None:
        return None
    return jnp.reshape(bias, (1, -1) + (1,) * ndim)


def bias_to_canonical(bias: jax.Array | None, *, ndim: int) -> jax.Array | None:
    """``(1, C_out, 1, ...)`` or ``(C_out,)`` -> ``(C_out,)``."""
    if bias is None:
        return None
    shape = tuple(jnp.shape(bias))
    if len(shape) == ndim + 2 and shape[0] == 1 and all(s == 1 for s in shape[2:]):
        return jnp.reshape(bias, (shape[1],))
    if len(shape) == 1:
        return bias
    raise ValueError(
        f"megengine: bias must be (1, C_out{', 1' * ndim}) or (C_out,), got shape {shape}"
    )


def _conv_transpose(
    ndim,
    inp,
    weight,
    bias,
    *,
    compute_mode,
    options,
    **params,
):
    if compute_mode not in COMPUTE_MODES:
        raise ValueError(
            f"megengine: compute_mode must be one of {COMPUTE_MODES}, got {compute_mode!r}"
        )
    for name, value in (("inp", inp), ("weight", weight), ("bias", bias)):
        fe.check_array(value, name, FRAMEWORK, floating=False)
    if not any(jnp.issubdtype(jnp.result_type(a), jnp.inexact) for a in (inp, weight)):
        raise TypeError(
            f"megengine: inp and weight are both integer ({jnp.result_type(inp)}, "
            f"{jnp.result_type(weight)}); megengine computes floating-point convolutions only "
            "(an integer inp or weight beside a floating one is promoted, as megengine does)"
        )
    unbatched = fe.check_rank(
        inp, ndim, FRAMEWORK, f"conv_transpose{ndim}d", unbatched=True, name="inp"
    )
    spec = to_spec(ndim, **params)
    w = weight_to_canonical(weight, ndim=ndim, groups=spec.groups)
    b = bias_to_canonical(bias, ndim=ndim)
    dtype = jnp.result_type(inp, weight)
    if compute_mode == "float32":  # accumulate in float32, return the input's dtype
        inp, w = jnp.asarray(inp, jnp.float32), jnp.asarray(w, jnp.float32)
        b = None if b is None else jnp.asarray(b, jnp.float32)
    y = fe.call(
        inp,
        w,
        b,
        spec,
        FRAMEWORK,
        unbatched=unbatched,
        options=options,
        names=("inp", "weight", "bias", "padding"),
    )
    return y.astype(dtype) if compute_mode == "float32" else y


def conv_transpose2d(
    inp: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    conv_mode: str = "cross_correlation",
    compute_mode: str = "default",
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``megengine.functional.conv_transpose2d``.

    Shapes: ``inp (N, C_in, H, W)`` or ``(C_in, H, W)``; ``weight (C_in, C_out, kH, kW)``
    or ``(groups, C_in // groups, C_out // groups, kH, kW)``; ``bias (1, C_out, 1, 1)`` or
    ``(C_out,)``. Only ``conv_mode="cross_correlation"`` exists in megengine.
    """
    if conv_mode != "cross_correlation":
        raise ValueError(
            f"megengine: conv_mode must be 'cross_correlation' (the only mode megengine "
            f"implements), got {conv_mode!r}"
        )
    return _conv_transpose(
        2,
        inp,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        compute_mode=compute_mode,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv_transpose3d(
    inp: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``megengine.functional.conv_transpose3d``.

    Shapes: ``inp (N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; ``weight (C_in, C_out, kD,
    kH, kW)`` or ``(groups, C_in // groups, C_out // groups, kD, kH, kW)``; ``bias (1, C_out,
    1, 1, 1)`` or ``(C_out,)``.
    """
    return _conv_transpose(
        3,
        inp,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        compute_mode="default",
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def init(key: jax.Array, layer: layers.Layer, *, dtype: Any = jnp.float32) -> dict:
    """Parameters drawn as megengine's ``reset_parameters`` does: the weight from
    ``N(0, 1 / fan_in)``, the bias zeros. megengine's ``fan_in`` differs by rank:
    ``ConvTranspose2d`` uses ``kh * kw * out_channels``, ``ConvTranspose3d``
    ``kt * kh * kw * in_channels`` (groups ignored in both)."""
    channels = layer.out_channels if layer.ndim == 2 else layer.in_channels
    std = 1 / math.sqrt(channels * math.prod(layer.kernel_size))
    return layers.drawn_params(
        key, layer, weight_init=("normal", std), bias_init=("zeros", 0.0), dtype=dtype
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("mge",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(*standard_options("stride", "padding", "output_padding", "dilation", "groups"),),
    weight_to_canonical=weight_to_canonical,
    weight_from_canonical=weight_from_canonical,
    bias_to_canonical=bias_to_canonical,
    bias_from_canonical=bias_from_canonical,
    summary="megengine.functional.conv_transpose{2,3}d (grouped 5-D/6-D weights)",
    layer_call=calls_by_rank({2: conv_transpose2d, 3: conv_transpose3d}),
    init=init,
)


# ------------------------------------------------------------------ megengine modules to JAX

_MODULE_CLASSES = {2: "ConvTranspose2d", 3: "ConvTranspose3d"}


def _layer(
    ndim: int,
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    bias: bool = True,
    conv_mode: str = "cross_correlation",
    compute_mode: str = "default",
) -> layers.Layer:
    args = fe.Arguments(FRAMEWORK, ndim)
    in_channels, out_channels, groups, kernel = layers.check_shapes(
        FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        kernel_size=kernel_size,
        ndim=ndim,
    )
    config: dict[str, Any] = dict(
        stride=args.ints(stride, "stride"),
        padding=args.ints(padding, "padding"),
        output_padding=args.ints(output_padding, "output_padding"),
        dilation=args.ints(dilation, "dilation"),
        groups=groups,
    )
    to_spec(ndim, **config)  # megengine's checks, raised when the module is built
    if ndim == 2:
        config.update(conv_mode=conv_mode, compute_mode=compute_mode)
    elif (conv_mode, compute_mode) != ("cross_correlation", "default"):
        raise TypeError("megengine: ConvTranspose3d takes no conv_mode or compute_mode")
    return layers.Layer(
        convention=FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel,
        groups=groups,
        bias=bool(bias),
        config=tuple(config.items()),
    )


def ConvTranspose2d(  # noqa: N802 - megengine's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    bias: bool = True,
    conv_mode: str = "cross_correlation",
    compute_mode: str = "default",
) -> layers.Layer:
    """``megengine.module.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, output_padding=0, dilation=1, groups=1, bias=True,
    conv_mode="cross_correlation", compute_mode="default")`` as a `convt.layers.Layer`."""
    return _layer(2, **locals())


def ConvTranspose3d(  # noqa: N802 - megengine's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    bias: bool = True,
) -> layers.Layer:
    """``megengine.module.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, output_padding=0, dilation=1, groups=1, bias=True)`` as a
    `convt.layers.Layer`."""
    return _layer(3, **locals())


def load_state_dict(source: Any) -> dict[str, np.ndarray]:
    """A state dict saved by ``megengine.save(module.state_dict(), path)`` (a pickle of
    numpy arrays), read without megengine: ``{name: numpy array}`` for
    `from_state_dict`. ``source`` is a path, the bytes or a binary file; a file holding
    anything but numpy arrays and containers is refused (use ``megengine.load``)."""
    from convt._checkpoint import load_numpy_pickle, numpy_state_dict

    obj = load_numpy_pickle(source, framework=FRAMEWORK, loader="megengine.load")
    return numpy_state_dict(obj, framework=FRAMEWORK)


def from_state_dict(state_dict: Mapping[str, Any], layer: layers.Layer, prefix: str = "") -> dict:
    """Canonical parameters for ``layer`` from a megengine state dict
    (``module.state_dict()``, ``megengine.load(path)``: numpy arrays or tensors): the
    ``prefix + "weight"`` (4-D/5-D, or grouped 5-D/6-D) and ``prefix + "bias"``
    (``(1, C_out, 1, ...)``)."""

    def array(name):
        if prefix + name not in state_dict:
            raise KeyError(f"megengine: the state dict has no {prefix}{name}")
        value = state_dict[prefix + name]
        return value.numpy() if hasattr(value, "numpy") else value

    params = layers.canonical_params(
        FRAMEWORK,
        array("weight"),
        array("bias") if layer.bias else None,
        ndim=layer.ndim,
        groups=layer.groups,
    )
    if params["weight"].shape != layer.weight_shape:
        raise ValueError(
            f"megengine: {prefix}weight gives a canonical weight of shape "
            f"{params['weight'].shape}, the module needs {layer.weight_shape}"
        )
    return params


def from_module(module: Any) -> tuple[dict, layers.Layer]:
    """``(params, layer)`` for a ``megengine.module.ConvTranspose2d/3d``: canonical
    parameters and the static `convt.layers.Layer`. megengine is not imported: the
    module's attributes and ``state_dict()`` are read."""
    ndim = len(np.atleast_1d(getattr(module, "kernel_size", ())))
    if type(module).__name__ != _MODULE_CLASSES.get(ndim):
        raise TypeError(
            f"megengine: from_module takes a ConvTranspose2d/3d module, got {type(module).__name__}"
        )
    modes = {}
    if ndim == 2:
        modes = dict(conv_mode=module.conv_mode, compute_mode=module.compute_mode)
    layer = _layer(
        ndim,
        module.in_channels,
        module.out_channels,
        tuple(module.kernel_size),
        stride=layers.frozen(module.stride),
        padding=layers.frozen(module.padding),
        output_padding=layers.frozen(module.output_padding),
        dilation=layers.frozen(module.dilation),
        groups=module.groups,
        bias=module.bias is not None,
        **modes,
    )
    return from_state_dict(module.state_dict(), layer), layer


def from_model(model: Any) -> dict[str, tuple[dict, layers.Layer]]:
    """``{path: (params, layer)}`` for every transposed convolution in a megengine
    model, keyed as ``model.named_modules()`` names them."""
    if not hasattr(model, "named_modules"):
        raise TypeError(f"megengine: from_model takes a megengine Module, got {type(model)!r}")
    return {
        name: from_module(module)
        for name, module in model.named_modules()
        if type(module).__name__ in _MODULE_CLASSES.values()
    }
