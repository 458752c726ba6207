"""Keras 3's ``keras.ops.conv_transpose`` and the ``Conv{1,2,3}DTranspose`` layers.

Keras computes the output length from ``padding`` and ``output_padding`` first, per
spatial axis with ``k_e = d (k - 1) + 1``
(``keras.src.backend.common.backend_utils._get_output_shape_given_tf_padding``)::

    "valid", output_padding None:  (n - 1) s + max(k_e, s)
    "valid", output_padding op:    (n - 1) s + k_e + op
    "same",  output_padding None:  n s
    "same",  output_padding op:    (n - 1) s + k_e % 2 + op

Its backends then place that window differently but, where they all accept it, equally:
the JAX backend pads the zero-stuffed input by ``(left, right)``
(``_convert_conv_transpose_padding_args_from_keras_to_jax``; "valid": ``k_e - 1`` and
``k_e - 1 + op``; "same": ``pad = s + k_e - 2`` without ``output_padding`` and
``k_e + k_e % 2 - 2 + op`` with it, ``left = min(ceil(pad / 2), k_e - 1)``,
``right = pad - left``), which is the canonical crop ``(k_e - 1 - left, k_e - 1 -
right)``; the TensorFlow backend hands the output length to ``tf.nn.conv_transpose``
with ``padding.upper()``, which gives the same crop but rejects a length whose forward
convolution does not give back ``n``: with ``"same"`` it needs ``1 <= k_e % 2 + op <=
s``, with ``"valid"`` ``0 <= op < s``. convt follows the TensorFlow backend (Keras's
default) and its rejections unless ``backend="jax"``; measured on Keras 3.15 with both
backends, they agree on every configuration TensorFlow accepts.

The kernel is ``(*kernel_size, filters, in_channels)`` (as TensorFlow's, not flipped).
There are no groups. The layers add two checks of their own (`_layer_to_spec`):
``output_padding`` below ``strides``, and no ``strides > 1`` together with
``dilation_rate > 1``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from convt import _frontend as fe
from convt import layers
from convt.convention import Convention, Option
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, Layout, effective_kernel
from convt.tensorflow import weight_from_canonical, weight_to_canonical

__all__ = [
    "ACTIVATIONS",
    "CONVENTION",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "conv_transpose",
    "conv_transpose_layer",
    "from_config",
    "from_layer",
    "from_model",
    "from_spec",
    "init",
    "to_spec",
]

FRAMEWORK = "keras"
BACKENDS = ("tensorflow", "jax")
DATA_FORMATS = ("channels_last", "channels_first")


def _output_length(n: int, k_e: int, stride: int, padding: str, output_padding: int | None) -> int:
    """Keras's output length on one axis (``_get_output_shape_given_tf_padding``)."""
    if padding == "valid":
        op = max(k_e, stride) - k_e if output_padding is None else output_padding
        return (n - 1) * stride + k_e + op
    if output_padding is None:
        return n * stride
    return (n - 1) * stride + k_e % 2 + output_padding


def _backend_crop(
    k_e: int, stride: int, padding: str, output_padding: int | None
) -> tuple[int, int]:
    """The canonical crop on one axis, from the padding Keras's JAX backend gives the
    zero-stuffed input."""
    if padding == "valid":
        op = max(k_e, stride) - k_e if output_padding is None else output_padding
        left, right = k_e - 1, k_e - 1 + op
    else:
        if output_padding is None:
            total = stride + k_e - 2
        else:
            total = k_e + k_e % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, k_e - 1)
        right = total - left
    return k_e - 1 - left, k_e - 1 - right


def _tensorflow_accepts(k_e: int, stride: int, padding: str, output_padding: int | None) -> bool:
    """Whether ``tf.nn.conv_transpose`` takes Keras's output length (its forward
    convolution must give back the input length, whatever that length is)."""
    if output_padding is None:
        return True
    if padding == "valid":
        return 0 <= output_padding < stride
    return 1 <= k_e % 2 + output_padding <= stride


def _padding(padding: Any) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"keras: padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def _data_format(data_format: str | None) -> Layout:
    data_format = (data_format or "channels_last").lower()  # as keras standardizes it
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"keras: data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
        )
    return "channels_first" if data_format == "channels_first" else "channels_last"


@fe.deprecated_positional("strides", "padding", "output_padding", "data_format", "dilation_rate")
def to_spec(
    ndim: int,
    *,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    kernel_size: Any = None,
    input_size: Any = None,
    backend: str = "tensorflow",
) -> ConvTransposeSpec:
    """The canonical spec for ``keras.ops.conv_transpose``'s parameters.

    The kernel size is needed; the crop does not depend on the input size, but with
    ``input_size`` an output with an empty axis is let through on the TensorFlow
    backend, as TensorFlow returns an empty array then without checking the lengths.
    """
    args = fe.Arguments(FRAMEWORK, ndim)
    if backend not in BACKENDS:
        raise ValueError(f"keras: backend must be one of {BACKENDS}, got {backend!r}")
    if kernel_size is None:
        raise ValueError("keras: the kernel size is needed")
    padding = _padding(padding)
    layout = _data_format(data_format)
    kernel = args.ints(kernel_size, "kernel_size")
    stride = args.ints(strides, "strides", allow_single=ndim == 1)
    dilation = args.ints(dilation_rate, "dilation_rate", allow_single=ndim == 1)
    args.at_least(stride, 1, "strides")
    args.at_least(dilation, 1, "dilation_rate")
    if output_padding is None:
        ops: tuple[int | None, ...] = (None,) * ndim
    else:
        ops = args.ints(output_padding, "output_padding", allow_single=ndim == 1)
    k_eff = [effective_kernel(k, d) for k, d in zip(kernel, dilation)]
    empty = input_size is not None and 0 in [
        _output_length(n, k_e, s, padding, op)
        for n, k_e, s, op in zip(input_size, k_eff, stride, ops)
    ]
    crop = []
    for axis, (k_e, s, op) in enumerate(zip(k_eff, stride, ops)):
        if backend == "tensorflow" and not empty and not _tensorflow_accepts(k_e, s, padding, op):
            rule = (
                "0 <= output_padding < strides"
                if padding == "valid"
                else ("1 <= (effective kernel size % 2) + output_padding <= strides")
            )
            raise ValueError(
                f"keras: output_padding={output_padding!r} with padding={padding!r}, "
                f"strides={stride} and dilation_rate={dilation}: on spatial axis {axis} the "
                f"TensorFlow backend's tf.nn.conv_transpose rejects the output length "
                f"(it needs {rule}; the effective kernel size is {k_e}). "
                "Keras's JAX backend computes it: pass backend='jax'"
            )
        crop.append(_backend_crop(k_e, s, padding, op))
    return ConvTransposeSpec(
        stride=stride, dilation=dilation, crop=tuple(crop), groups=1, layout=layout
    )


def _layer_to_spec(
    ndim: int,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    *,
    kernel_size: Any = None,
    input_size: Any = None,
    backend: str = "tensorflow",
) -> ConvTransposeSpec:
    """`to_spec` with the checks of the ``Conv{N}DTranspose`` layers: kernel sizes,
    ``strides`` and ``output_padding`` as the layer standardises them (an int or ``N``
    values), ``0 <= output_padding < strides``, and not both ``strides > 1`` and
    ``dilation_rate > 1``."""
    args = fe.Arguments(FRAMEWORK, ndim)
    kernel = args.ints(kernel_size, "kernel_size")
    stride = args.ints(strides, "strides", allow_single=False)
    dilation = args.ints(dilation_rate, "dilation_rate", allow_single=False)
    args.at_least(kernel, 1, "kernel_size")
    args.at_least(stride, 1, "strides")
    if output_padding is not None:
        ops = args.ints(output_padding, "output_padding", allow_single=False)
        if any(not 0 <= op < s for op, s in zip(ops, stride)):
            raise ValueError(
                f"keras: output_padding must be >= 0 and strictly less than strides on every "
                f"axis, got output_padding={ops}, strides={stride}"
            )
    if max(stride) > 1 and max(dilation) > 1:
        raise ValueError(
            f"keras: strides > 1 is incompatible with dilation_rate > 1 in the layers, got "
            f"strides={stride} and dilation_rate={dilation}"
        )
    return to_spec(
        ndim,
        strides=stride,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation,
        kernel_size=kernel,
        input_size=input_size,
        backend=backend,
    )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """``keras.ops.conv_transpose`` parameters for a spec (the TensorFlow backend's
    accepted ones): one padding string for all axes, ``output_padding`` per axis."""
    del input_size
    fe.require(spec.groups == 1, FRAMEWORK, "Keras has no groups (keras-team/keras#19871)")
    if kernel_size is None:
        raise fe.NotExpressible("cannot be expressed in keras without the kernel size")
    for padding in ("valid", "same"):
        matches = []  # per axis: the output_paddings (None for Keras's default) giving its crop
        for crop, k, s, d in zip(spec.crop, kernel_size, spec.stride, spec.dilation):
            k_e = effective_kernel(k, d)
            matches.append(
                [
                    op
                    for op in (None, *range(s + 1))
                    if _tensorflow_accepts(k_e, s, padding, op)
                    and _backend_crop(k_e, s, padding, op) == tuple(crop)
                ]
            )
        # the default (None) equals an explicit value on every axis, so an axis that
        # matches at all matches an explicit output_padding
        if all(any(op is not None for op in m) for m in matches):
            params: dict = dict(strides=fe.per_axis_value(spec.stride), padding=padding)
            if not all(None in m for m in matches):
                params["output_padding"] = fe.per_axis_value(
                    [next(op for op in m if op is not None) for m in matches]
                )
            params["data_format"] = spec.layout
            if any(d != 1 for d in spec.dilation):
                params["dilation_rate"] = fe.per_axis_value(spec.dilation)
            return params
    raise fe.NotExpressible(
        f"cannot be expressed in keras: crop {spec.crop} is not what padding 'valid' or "
        "'same' gives with any output_padding"
    )


def _call(
    inputs,
    kernel,
    bias,
    make_spec,
    *,
    strides,
    padding,
    output_padding,
    data_format,
    dilation_rate,
    backend,
    options,
):
    fe.check_arrays(FRAMEWORK, ("inputs", "kernel", "bias"), inputs, kernel, bias)
    ndim = jnp.ndim(kernel) - 2
    if ndim < 1 or jnp.ndim(inputs) != ndim + 2:
        raise ValueError(
            "keras: conv_transpose expects a kernel (*kernel_size, filters, in_channels) and "
            f"inputs with two more dimensions than its kernel_size, got inputs "
            f"{tuple(jnp.shape(inputs))} and kernel {tuple(jnp.shape(kernel))}"
        )
    spec = make_spec(
        ndim,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
        kernel_size=jnp.shape(kernel)[:-2],
        input_size=fe.spatial_shape(inputs, ndim, _data_format(data_format) == "channels_last"),
        backend=backend,
    )
    weight = weight_to_canonical(kernel, ndim=ndim, groups=1)
    # An axis of length 0: both backends return an empty array.
    empty = fe.cropped_to_nothing(inputs, weight, spec, FRAMEWORK, padding)
    if empty is not None:
        return empty
    return fe.call(
        inputs,
        weight,
        bias,
        spec,
        FRAMEWORK,
        options=options,
        names=("inputs", "kernel", "bias", "padding"),
    )


def conv_transpose(
    inputs: jax.Array,
    kernel: jax.Array,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    *,
    backend: str = "tensorflow",
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``keras.ops.conv_transpose``.

    Args:
      inputs: ``(N, *spatial, C_in)`` (``"channels_last"``, the default) or
        ``(N, C_in, *spatial)``.
      kernel: ``(*kernel_size, filters, C_in)``.
      strides: an int or one per spatial axis.
      dilation_rate: an int or one per spatial axis.
      padding: ``"valid"`` or ``"same"`` (any case).
      output_padding: ``None`` or an int or one per spatial axis (see the module
        docstring for the lengths they give).
      backend: ``"tensorflow"`` (rejects what Keras's TensorFlow backend rejects) or
        ``"jax"`` (computes every configuration, as Keras's JAX backend does).

    Returns:
      ``(N, *out, filters)`` or ``(N, filters, *out)``.
    """
    return _call(
        inputs,
        kernel,
        None,
        to_spec,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
        backend=backend,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv_transpose_layer(
    inputs: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    backend: str = "tensorflow",
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """What ``keras.layers.Conv{N}DTranspose(filters, kernel_size, strides, padding,
    output_padding, data_format, dilation_rate)`` computes before its activation, with
    the layer's ``kernel`` ``(*kernel_size, filters, C_in)`` and ``bias`` ``(filters,)``,
    and the layer's checks (`_layer_to_spec`)."""
    return _call(
        inputs,
        kernel,
        bias,
        _layer_to_spec,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
        backend=backend,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def _hard_sigmoid(x):
    return jax.nn.relu6(x + 3.0) / 6.0


# Keras 3's built-in activations by name, as ``keras.activations`` defines them (the
# defaults of their optional arguments: leaky_relu's negative_slope 0.2, gelu exact,
# softmax and log_softmax over the last axis)
ACTIVATIONS: dict[str, Any] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.2),
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "hard_swish": lambda x: x * _hard_sigmoid(x),
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "softsign": lambda x: x / (jnp.abs(x) + 1.0),
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
    "exponential": jnp.exp,
    "softmax": lambda x: jax.nn.softmax(x, axis=-1),
    "log_softmax": lambda x: jax.nn.log_softmax(x, axis=-1),
}


def _activation_name(activation: Any) -> str | None:
    """A Keras layer's ``activation`` as one of `ACTIVATIONS` (``None`` for linear)."""
    if activation is None or activation == "linear":
        return None
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return activation
    name = getattr(activation, "__name__", None)
    module = getattr(activation, "__module__", "") or ""
    if name in ACTIVATIONS and module.startswith("keras"):  # keras.activations.relu
        return None if name == "linear" else name
    raise ValueError(
        f"keras: activation={activation!r} is not one of Keras's built-in activations convt "
        f"computes ({', '.join(sorted(ACTIVATIONS))}); build the layer with activation=None "
        "and apply it to the layer's output"
    )


def _layer_forward(x, kernel, bias, *, ndim: int, activation: str | None = None, **config):
    """A Keras layer's call: `conv_transpose_layer`, then its activation."""
    del ndim
    y = conv_transpose_layer(x, kernel, bias, **config)
    return y if activation is None else ACTIVATIONS[activation](y)


def init(key: jax.Array, layer: layers.Layer, *, dtype: Any = jnp.float32) -> dict:
    """Parameters drawn as Keras initialises a ``Conv{N}DTranspose`` by default: the
    kernel from ``glorot_uniform``, ``U(-a, a)`` with ``a = sqrt(6 / (fan_in +
    fan_out))``, ``fan_in = filters prod(kernel)`` and ``fan_out = C_in prod(kernel)``
    (Keras's fans of the ``(*kernel, filters, C_in)`` kernel); the bias ``zeros``."""
    bound = math.sqrt(6 / ((layer.in_channels + layer.out_channels) * math.prod(layer.kernel_size)))
    return layers.drawn_params(
        key, layer, weight_init=("uniform", bound), bias_init=("zeros", 0.0), dtype=dtype
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("strides", "strides, one value or one per axis", short="-s"),
        Option("padding", "valid or same", kind="choice", choices=("valid", "same"), short="-p"),
        Option("output_padding", "output_padding (default None)"),
        Option("dilation_rate", "dilation_rate, one value or one per axis", short="-d"),
        Option(
            "data_format",
            "channels_last (default) or channels_first",
            kind="choice",
            choices=DATA_FORMATS,
        ),
    ),
    weight_to_canonical=weight_to_canonical,
    weight_from_canonical=weight_from_canonical,
    summary="keras.ops.conv_transpose / Conv{1,2,3}DTranspose (kernel [*k, out, in], no groups)",
    layer_call=_layer_forward,
    init=init,
)


# ------------------------------------------------------------------ Keras layers to JAX


def _layer(
    ndim: int,
    filters: int,
    kernel_size: Any,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    activation: Any = None,
    use_bias: bool = True,
    *,
    in_channels: int | None = None,
    backend: str = "tensorflow",
) -> layers.Layer:
    args = fe.Arguments(FRAMEWORK, ndim)
    activation = _activation_name(activation)
    if in_channels is None:
        raise TypeError(
            f"keras: Conv{ndim}DTranspose needs in_channels= (Keras infers it from the first "
            "input; convt builds the layer and its parameters up front)"
        )
    in_channels, filters, _, kernel = layers.check_shapes(
        FRAMEWORK,
        in_channels=in_channels,
        out_channels=filters,
        groups=1,
        kernel_size=kernel_size,
        ndim=ndim,
        out_channels_name="filters",
    )
    config: dict[str, Any] = dict(
        strides=args.ints(strides, "strides"),
        padding=_padding(padding),
        output_padding=(
            None if output_padding is None else args.ints(output_padding, "output_padding")
        ),
        data_format=_data_format(data_format),
        dilation_rate=args.ints(dilation_rate, "dilation_rate"),
        backend=backend,
    )
    _layer_to_spec(ndim, kernel_size=kernel, **config)  # the layer's checks, raised now
    if activation is not None:
        config["activation"] = activation
    return layers.Layer(
        convention=FRAMEWORK,
        in_channels=in_channels,
        out_channels=filters,
        kernel_size=kernel,
        bias=bool(use_bias),
        config=tuple(config.items()),
    )


def Conv1DTranspose(  # noqa: N802 - Keras's name
    filters: int,
    kernel_size: Any,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    activation: Any = None,
    use_bias: bool = True,
    *,
    in_channels: int | None = None,
    backend: str = "tensorflow",
) -> layers.Layer:
    """``keras.layers.Conv1DTranspose(filters, kernel_size, strides=1, padding="valid",
    output_padding=None, data_format=None, dilation_rate=1, activation=None,
    use_bias=True, *, in_channels, backend="tensorflow")`` as a `convt.layers.Layer`
    (Keras builds its kernel from the first input; here ``in_channels`` says its size)."""
    return _layer(1, **locals())


def Conv2DTranspose(  # noqa: N802 - Keras's name
    filters: int,
    kernel_size: Any,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    activation: Any = None,
    use_bias: bool = True,
    *,
    in_channels: int | None = None,
    backend: str = "tensorflow",
) -> layers.Layer:
    """``keras.layers.Conv2DTranspose`` (arguments as `Conv1DTranspose`'s)."""
    return _layer(2, **locals())


def Conv3DTranspose(  # noqa: N802 - Keras's name
    filters: int,
    kernel_size: Any,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    data_format: str | None = None,
    dilation_rate: Any = 1,
    activation: Any = None,
    use_bias: bool = True,
    *,
    in_channels: int | None = None,
    backend: str = "tensorflow",
) -> layers.Layer:
    """``keras.layers.Conv3DTranspose`` (arguments as `Conv1DTranspose`'s)."""
    return _layer(3, **locals())


def from_config(
    config: dict, weights: Any, *, backend: str = "tensorflow"
) -> tuple[dict, layers.Layer]:
    """``(params, layer)`` from a ``Conv{N}DTranspose``'s ``get_config()`` and
    ``get_weights()`` (``[kernel (*k, filters, C_in), bias (filters,)]``)."""
    weights = [np.asarray(w) for w in weights]
    kernel_size = tuple(config["kernel_size"])
    ndim = len(kernel_size)
    if not weights or weights[0].ndim != ndim + 2:
        raise ValueError(
            f"keras: weights must start with the {ndim + 2}-D kernel (*kernel_size, filters, "
            f"in_channels), got shapes {[w.shape for w in weights]}"
        )
    use_bias = config.get("use_bias", True)
    if len(weights) != 1 + bool(use_bias):
        raise ValueError(
            f"keras: use_bias={use_bias} needs {1 + bool(use_bias)} weights, got {len(weights)}"
        )
    layer = _layer(
        ndim,
        config["filters"],
        kernel_size,
        strides=config.get("strides", 1),
        padding=config.get("padding", "valid"),
        output_padding=config.get("output_padding"),
        data_format=config.get("data_format"),
        dilation_rate=config.get("dilation_rate", 1),
        activation=config.get("activation"),
        use_bias=use_bias,
        in_channels=weights[0].shape[-1],
        backend=backend,
    )
    bias = weights[1] if use_bias else None
    return layers.canonical_params(FRAMEWORK, weights[0], bias, ndim=ndim, groups=1), layer


LAYER_CLASSES = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")


def _keras_backend() -> str:
    keras = sys.modules.get("keras")  # loaded wherever a Keras layer exists
    backend = keras.backend.backend() if keras is not None else "tensorflow"
    return backend if backend in BACKENDS else "tensorflow"


def from_layer(layer: Any, *, backend: str | None = None) -> tuple[dict, layers.Layer]:
    """``(params, layer)`` for a built ``keras.layers.Conv{1,2,3}DTranspose``; the
    computation follows the Keras backend in use (``backend`` overrides it:
    ``"tensorflow"``, or ``"jax"`` for the backends that compute every length)."""
    if type(layer).__name__ not in LAYER_CLASSES:
        raise TypeError(
            f"keras: from_layer takes a Conv1DTranspose/2D/3D layer, got {type(layer).__name__}"
        )
    if not layer.get_weights():
        raise ValueError("keras: the layer is not built yet (call it once or build it)")
    return from_config(layer.get_config(), layer.get_weights(), backend=backend or _keras_backend())


def from_model(model: Any, *, backend: str | None = None) -> dict[str, tuple[dict, layers.Layer]]:
    """``{name: (params, layer)}`` for every ``Conv{N}DTranspose`` in a Keras model
    (nested models and layers included), keyed by the layer's ``name``."""
    if not hasattr(model, "layers"):
        raise TypeError(f"keras: from_model takes a Keras model, got {type(model)!r}")
    found: dict[str, tuple[dict, layers.Layer]] = {}

    def walk(container):
        for sub in getattr(container, "layers", ()):
            if type(sub).__name__ in LAYER_CLASSES:
                found[sub.name] = from_layer(sub, backend=backend)
            walk(sub)

    walk(model)
    return found
