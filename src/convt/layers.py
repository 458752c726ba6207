"""Layers: a framework layer's configuration as a static JAX callable (`Layer`), and
what the layer classes of `convt.flax` and `convt.equinox` share: torch's arguments,
torch's initialisation, the ``ConvTranspose1d/2d/3d`` variants, and defining the
classes only when they are first asked for (so that flax and equinox are imported only
then).

`Layer` is what every framework's converter returns (``convt.paddle.from_layer``,
``convt.megengine.from_module``, ``convt.chainer.from_link``, ``convt.keras.from_layer``,
``convt.onnx.from_model``) and what its layer constructors build
(``convt.paddle.Conv2DTranspose(...)``, ...): the parameters stay canonical
(``{"weight": (C_in, C_out // groups, *kernel), "bias": (C_out,)}``) whatever the
framework, and the layer applies the framework's own front-end to them, so a ported
layer gives the framework's numbers and its parameters can move between conventions.

`init_params` draws a ``ConvTranspose``'s parameters as torch's
``ConvTransposeNd.reset_parameters`` does: ``kaiming_uniform_(weight, a=sqrt(5))`` and a
bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = (C_out / groups) *
prod(kernel)`` (torch computes the fan from ``weight.size(1)``, which for a transposed
weight is the output channels per group), so both bounds are
``sqrt(groups / (C_out * prod(kernel)))``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from convt import _frontend as fe
from convt import convention as registry
from convt import torch as convt_torch

IntOrTuple = int | Sequence[int]
LAYER_NAMES = ("ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


def frozen(value: Any) -> Any:
    """``value`` with its lists (and nested lists) as tuples, so that it hashes."""
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    if isinstance(value, np.ndarray):
        return frozen(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    return value


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Layer:
    """One framework layer's configuration, static and hashable.

    ``layer(params, x, output_size=None)`` runs the framework's front-end
    (``convt.<convention>.<function>``) with the layer's arguments (``config``) on
    canonical parameters ``{"weight": (C_in, C_out // groups, *kernel), "bias":
    (C_out,)}`` (the bias only when ``bias``), converted to the framework's layout on the
    way. ``layer.init(key)`` draws parameters as the framework initialises the layer.
    Build one with a framework's constructor (``convt.paddle.Conv2DTranspose(...)``,
    ``convt.megengine.ConvTranspose2d(...)``, ``convt.chainer.Deconvolution2D(...)``,
    ``convt.keras.Conv2DTranspose(...)``) or get one from a converter.

    A layer is a pytree without leaves (`jax.tree_util.register_static`): pass it to a
    ``jax.jit``-compiled function like any argument (it is static there), or keep it in
    a pytree of parameters and layers.

    Attributes:
      convention: the convention's registry name (``"paddle"``).
      function: the front-end function of that module the layer calls.
      in_channels, out_channels, kernel_size, groups, bias: the parameter shapes.
      config: the function's keyword arguments, as ``(name, value)`` pairs.
      output_size_name: the function's argument that ``output_size`` at call time
        fills (``None``: the framework's layer takes none).
      output_size_drops: arguments left out when ``output_size`` is given (paddle's
        layer drops its ``output_padding`` then).
    """

    convention: str
    function: str
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    config: tuple[tuple[str, Any], ...] = ()
    output_size_name: str | None = None
    output_size_drops: tuple[str, ...] = ()

    @property
    def ndim(self) -> int:
        return len(self.kernel_size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The canonical weight's shape ``(C_in, C_out // groups, *kernel)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def _module(self):
        return importlib.import_module(registry.MODULES[self.convention])

    def init(self, key: jax.Array, dtype: Any = jnp.float32) -> dict:
        """Canonical parameters drawn with the framework's default initialisers."""
        module = self._module()
        if not hasattr(module, "init"):
            raise ValueError(f"{self.convention}: the framework defines no initialisation")
        return module.init(key, self, dtype=dtype)

    def __call__(
        self,
        params: Mapping[str, Any],
        x: jax.Array,
        output_size: Any = None,
        *,
        method: str = "auto",
        precision: Any = None,
        preferred_element_type: Any = None,
    ) -> jax.Array:
        conv = registry.get(self.convention)
        bias = params.get("bias")
        if (bias is not None) != self.bias:
            raise ValueError(
                f"{self.convention}: the layer was built with bias={self.bias} but params "
                f"{'has' if bias is not None else 'has no'} 'bias'"
            )
        kwargs = dict(self.config)
        if output_size is not None:
            if self.output_size_name is None:
                raise TypeError(
                    f"{self.convention}: this layer takes no output size at call time (set it "
                    "when building the layer)"
                )
            for name in self.output_size_drops:
                kwargs.pop(name, None)
            kwargs[self.output_size_name] = output_size
        weight = conv.weight_from_canonical(params["weight"], ndim=self.ndim, groups=self.groups)
        if bias is not None:
            bias = conv.bias_from_canonical(bias, ndim=self.ndim)
        return getattr(self._module(), self.function)(
            x,
            weight,
            bias,
            **kwargs,
            method=method,
            precision=precision,
            preferred_element_type=preferred_element_type,
        )


def canonical_params(
    convention: str, weight: Any, bias: Any, *, ndim: int, groups: int
) -> dict[str, jax.Array]:
    """A framework's weight and bias (numpy or JAX arrays; the bias may be ``None``) as
    canonical JAX parameters."""
    conv = registry.get(convention)
    params = {
        "weight": jnp.asarray(
            conv.weight_to_canonical(jnp.asarray(weight), ndim=ndim, groups=groups)
        )
    }
    if bias is not None:
        params["bias"] = jnp.asarray(conv.bias_to_canonical(jnp.asarray(bias), ndim=ndim))
    return params


def check_shapes(
    framework: str,
    in_channels: Any,
    out_channels: Any,
    groups: Any,
    kernel_size: Any,
    ndim: int,
    kernel_name: str = "kernel_size",
    out_channels_name: str = "out_channels",
) -> tuple[int, int, int, tuple[int, ...]]:
    """A layer's ``(in_channels, out_channels, groups, kernel)`` as ints, divisible as a
    grouped layer needs, the kernel one positive size per spatial axis (errors name the
    framework's parameters: ``out_channels_name`` is Keras's ``filters``)."""
    in_channels = fe.check_int(in_channels, "in_channels", framework)
    out_channels = fe.check_int(out_channels, out_channels_name, framework)
    groups = fe.check_int(groups, "groups", framework)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{framework}: in_channels ({in_channels}) and {out_channels_name} "
            f"({out_channels}) must be divisible by groups ({groups})"
        )
    kernel = fe.int_tuple(kernel_size, ndim, kernel_name, framework)
    fe.check_at_least(kernel, 1, kernel_name, framework)
    return in_channels, out_channels, groups, kernel


def draw(key: jax.Array, kind: str, scale: float, shape: Sequence[int], dtype: Any) -> jax.Array:
    """``U(-scale, scale)`` (``kind="uniform"``), ``N(0, scale^2)`` (``"normal"``) or
    zeros (``"zeros"``)."""
    shape = tuple(shape)
    if kind == "uniform":
        return jax.random.uniform(key, shape, dtype, -scale, scale)
    if kind == "normal":
        return scale * jax.random.normal(key, shape, dtype)
    return jnp.zeros(shape, dtype)


def drawn_params(
    key: jax.Array,
    layer: Layer,
    weight_init: tuple[str, float],
    bias_init: tuple[str, float],
    dtype: Any,
) -> dict:
    """Canonical parameters for ``layer``, each drawn by ``(kind, scale)`` (`draw`)."""
    w_key, b_key = jax.random.split(key)
    params = {"weight": draw(w_key, *weight_init, layer.weight_shape, dtype)}
    if layer.bias:
        params["bias"] = draw(b_key, *bias_init, (layer.out_channels,), dtype)
    return params


def torch_layer(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    *,
    num_spatial_dims: int | None,
    framework: str,
) -> tuple[convt_torch.ConvTranspose, tuple[int, ...]]:
    """A ``torch.nn.ConvTransposeNd``'s constructor arguments, checked as torch checks
    them: the static `convt.torch.ConvTranspose` and the weight shape ``(C_in, C_out //
    groups, *kernel)``. ``num_spatial_dims`` may be left out when ``kernel_size`` is a
    tuple."""
    if num_spatial_dims is not None:
        ndim = fe.check_int(num_spatial_dims, "num_spatial_dims", framework)
    elif fe.is_int(kernel_size):
        raise ValueError(
            f"{framework}: pass num_spatial_dims (or use ConvTranspose1d/2d/3d) when "
            "kernel_size is an int"
        )
    else:
        ndim = len(kernel_size)
    in_channels, out_channels, groups, kernel = check_shapes(
        "torch", in_channels, out_channels, groups, kernel_size, ndim
    )
    layer = convt_torch.ConvTranspose(
        ndim=ndim,
        stride=fe.int_tuple(stride, ndim, "stride", "torch"),
        padding=fe.int_tuple(padding, ndim, "padding", "torch"),
        output_padding=fe.int_tuple(output_padding, ndim, "output_padding", "torch"),
        dilation=fe.int_tuple(dilation, ndim, "dilation", "torch"),
        groups=groups,
    )
    convt_torch.to_spec(  # the checks torch makes, raised now
        ndim,
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        groups=groups,
        dilation=layer.dilation,
    )
    return layer, (in_channels, out_channels // groups, *kernel)


def _torch_arguments(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: IntOrTuple = 1,
) -> dict:
    """``torch.nn.ConvTransposeNd``'s constructor arguments, bound as torch binds them."""
    return dict(locals())


def module_layer(
    torch_args: tuple,
    torch_kwargs: dict,
    *,
    layer: Layer | None,
    params: Mapping[str, Any] | None,
    key: jax.Array | None,
    key_hint: str,
    dtype: Any,
    num_spatial_dims: int | None,
    framework: str,
) -> tuple[Any, dict]:
    """What a flax or equinox layer holds: ``(layer, params)``, from torch's constructor
    arguments (``torch_args``, ``torch_kwargs``; torch's initialisation) or from another
    framework's `Layer` (``layer=``; that framework's initialisation, or ``params``).
    ``key`` draws the parameters (``key_hint``: how the layer class takes it)."""
    if key is None and params is None:
        raise TypeError(
            f"{framework}: the layer needs {key_hint} to initialise its parameters (or "
            "layer= with params=)"
        )
    if layer is None:
        if params is not None:
            raise TypeError(f"{framework}: params= goes with layer=")
        try:
            arguments = _torch_arguments(*torch_args, **torch_kwargs)
        except TypeError as err:
            problem = str(err).replace("_torch_arguments() ", "")
            problem = problem if problem.startswith("got") else f"is {problem}"
            raise TypeError(
                f"{framework}: the layer takes torch's arguments (in_channels, out_channels, "
                "kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True, "
                "dilation=1) or layer= (another framework's, e.g. "
                f"convt.keras.Conv2DTranspose(...)): it {problem}"
            ) from None
        bias = arguments.pop("bias")
        torch_layer_, weight_shape = torch_layer(
            **arguments, num_spatial_dims=num_spatial_dims, framework=framework
        )
        return torch_layer_, init_params(
            key, weight_shape, torch_layer_.groups, bias=bias, dtype=dtype
        )
    if torch_args or torch_kwargs:
        raise TypeError(
            f"{framework}: pass either torch's arguments or layer= (a convt.layers.Layer, "
            "which holds the other framework's arguments), not both"
        )
    if not isinstance(layer, (Layer, convt_torch.ConvTranspose)):
        raise TypeError(
            f"{framework}: layer= takes a convt.layers.Layer (convt.paddle.Conv2DTranspose(...), "
            f"a converter's layer, ...) or convt.torch.from_module's layer, got "
            f"{type(layer).__name__}"
        )
    if num_spatial_dims is not None and num_spatial_dims != layer.ndim:
        raise ValueError(
            f"{framework}: a {num_spatial_dims}-D layer class was given a {layer.ndim}-D layer"
        )
    if params is None:
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{framework}: a convt.torch layer holds no channel counts; pass its params= "
                "(from convt.torch.from_module) or torch's arguments instead"
            )
        return layer, layer.init(key, dtype=dtype)
    params = {k: jnp.asarray(v) for k, v in params.items() if v is not None}
    expected = getattr(layer, "weight_shape", None) or params["weight"].shape
    if params["weight"].shape != expected or set(params) - {"weight", "bias"}:
        raise ValueError(
            f"{framework}: params must be {{'weight' {expected}, 'bias'}}, got "
            f"{ {k: v.shape for k, v in params.items()} }"
        )
    return layer, params


def init_params(
    key: jax.Array,
    weight_shape: Sequence[int],
    groups: int = 1,
    *,
    bias: bool = True,
    dtype: Any = jnp.float32,
) -> dict:
    """``{"weight", "bias"}`` drawn as torch initialises a ``ConvTransposeNd`` whose
    weight is ``weight_shape`` ``(C_in, C_out // groups, *kernel)``."""
    c_out_g, kernel = weight_shape[1], weight_shape[2:]
    bound = 1 / math.sqrt(c_out_g * math.prod(kernel))  # sqrt(groups / (C_out prod(k)))
    w_key, b_key = jax.random.split(key)
    params = {"weight": jax.random.uniform(w_key, tuple(weight_shape), dtype, -bound, bound)}
    if bias:
        params["bias"] = jax.random.uniform(b_key, (c_out_g * groups,), dtype, -bound, bound)
    return params


def with_ranks(layer_class: type) -> dict[str, type]:
    """``ConvTranspose`` and its ``ConvTranspose1d/2d/3d`` variants (``num_spatial_dims``
    fixed)."""

    def fixed(ndim: int) -> type:
        class Layer(layer_class):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, num_spatial_dims=ndim, **kwargs)

        Layer.__name__ = Layer.__qualname__ = f"ConvTranspose{ndim}d"
        return Layer

    return {"ConvTranspose": layer_class, **{f"ConvTranspose{n}d": fixed(n) for n in (1, 2, 3)}}


def lazy_layers(module: str, make_layer: Callable[[], type]) -> Callable[[str], type]:
    """A module ``__getattr__`` that defines the layer classes on first use."""
    classes: dict[str, type] = {}

    def __getattr__(name: str) -> type:
        if name not in LAYER_NAMES:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if not classes:
            classes.update(with_ranks(make_layer()))
        return classes[name]

    return __getattr__
