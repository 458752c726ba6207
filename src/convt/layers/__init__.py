"""Layers: a framework layer's configuration as a static JAX callable (`Layer`), and the
layer classes for flax (`convt.layers.flax`) and equinox (`convt.layers.equinox`).

`Layer` is what every framework's converter returns (``convt.torch.from_module``,
``convt.paddle.from_layer``, ``convt.megengine.from_module``, ``convt.chainer.from_link``,
``convt.keras.from_layer``, ``convt.onnx.from_model``) and what its layer constructors
build (``convt.torch.ConvTranspose2d(...)``, ``convt.paddle.Conv2DTranspose(...)``,
...): the parameters stay canonical (``{"weight": (C_in, C_out // groups, *kernel),
"bias": (C_out,)}``) whatever the framework, and the layer applies the framework's own
front-end to them (through its `convt.convention.Convention`'s ``layer_call``), so a
ported layer gives the framework's numbers and its parameters can move between
conventions.

This module imports no framework module: a layer finds its convention in the registry
when it is called. ``convt.layers.flax`` and ``convt.layers.equinox`` import flax and
equinox, and are imported only when asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from convt import _frontend as fe
from convt import convention as registry

__all__ = [
    "Layer",
    "canonical_params",
    "check_shapes",
    "draw",
    "drawn_params",
    "fold_weight_norm",
    "frozen",
    "keeps_weight_norm",
    "norm_except",
    "weight_norm",
]

_SUBMODULES = ("flax", "equinox")


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
@dataclasses.dataclass(frozen=True, kw_only=True)
class Layer:
    """One framework layer's configuration, static and hashable.

    ``layer(params, x, output_size=None)`` runs the framework's front-end (its
    convention's ``layer_call``) with the layer's arguments (``config``) on canonical
    parameters ``{"weight": (C_in, C_out // groups, *kernel), "bias": (C_out,)}`` (the
    bias only when ``bias``), converted to the framework's layout on the way.
    ``layer.init(key)`` draws parameters as the framework initialises the layer. Build
    one with a framework's constructor (``convt.torch.ConvTranspose2d(...)``,
    ``convt.paddle.Conv2DTranspose(...)``, ``convt.megengine.ConvTranspose2d(...)``,
    ``convt.chainer.Deconvolution2D(...)``, ``convt.keras.Conv2DTranspose(...)``) or get
    one from a converter.

    A layer is a pytree without leaves (`jax.tree_util.register_static`): pass it to a
    ``jax.jit``-compiled function like any argument (it is static there), or keep it in
    a pytree of parameters and layers.

    Attributes:
      convention: the convention's registry name (``"paddle"``).
      in_channels, out_channels, kernel_size, groups, bias: the parameter shapes.
      config: the framework function's keyword arguments, as ``(name, value)`` pairs.
      output_size_name: the function's argument that ``output_size`` at call time
        fills (``None``: the framework's layer takes none).
      output_size_drops: arguments left out when ``output_size`` is given (paddle's
        layer drops its ``output_padding`` then).
      weight_norm: ``None``, or the weight axes weight normalisation keeps (``(0,)`` for
        ``dim=0``, ``()`` for ``dim=None``; set by `weight_norm` or a converter's
        ``weight_norm="keep"``): the parameters are then ``{"weight_g", "weight_v",
        "bias"}`` (``weight_v`` the canonical weight's shape, ``weight_g`` its norms) and
        the layer computes the weight as the framework's ``weight_norm`` does (torch's
        ``v * (g / ||v||)``, paddle's with its epsilon: the convention's
        ``weight_norm``), inside the differentiated function.
    """

    convention: str
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    config: tuple[tuple[str, Any], ...] = ()
    output_size_name: str | None = None
    output_size_drops: tuple[str, ...] = ()
    weight_norm: tuple[int, ...] | None = None

    @property
    def ndim(self) -> int:
        return len(self.kernel_size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The canonical weight's shape ``(C_in, C_out // groups, *kernel)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shapes of the canonical parameters the layer takes: ``{"weight",
        "bias"}``, or ``{"weight_g", "weight_v", "bias"}`` with ``weight_norm`` (the
        bias only with ``bias``)."""
        if self.weight_norm is None:
            shapes = {"weight": self.weight_shape}
        else:
            weight = jax.ShapeDtypeStruct(self.weight_shape, jnp.float32)
            shapes = {
                "weight_g": tuple(jax.eval_shape(self._norm, weight).shape),
                "weight_v": self.weight_shape,
            }
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def init(self, key: jax.Array, dtype: Any = jnp.float32) -> dict:
        """Canonical parameters drawn with the framework's default initialisers."""
        init = registry.get(self.convention).init
        if init is None:
            raise ValueError(f"{self.convention}: the framework defines no initialisation")
        params = init(key, dataclasses.replace(self, weight_norm=None), dtype=dtype)
        if self.weight_norm is None:
            return params
        # as the framework's weight_norm starts: g the norm of the drawn weight, v the weight
        weight = params.pop("weight")
        return {"weight_g": self._norm(weight), "weight_v": weight, **params}

    def _weight_normalisation(self) -> registry.WeightNorm:
        normalisation = registry.get(self.convention).weight_norm
        if normalisation is None:
            raise ValueError(f"{self.convention}: the framework has no weight normalisation")
        return normalisation

    def _norm(self, v: jax.Array) -> jax.Array:
        """``weight_g`` for ``v``: its norms over every axis but ``weight_norm``'s, shaped
        as the framework shapes ``g``."""
        kept = self.weight_norm or ()
        norm = norm_except(v, kept)
        return (
            norm
            if self._weight_normalisation().keeps_rank
            else norm.reshape(tuple(v.shape[a] for a in kept))
        )

    def canonical_weight(self, params: Mapping[str, Any]) -> jax.Array:
        """The canonical weight ``params`` give: ``params["weight"]``, or with
        ``weight_norm`` the fold of ``params["weight_g"]`` and ``params["weight_v"]``."""
        if self.weight_norm is None:
            return params["weight"]
        fold = self._weight_normalisation().fold
        return fold(params["weight_g"], params["weight_v"], self.weight_norm)

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
        """The framework layer's output for ``x`` (laid out as the framework lays it out)
        with canonical ``params``; ``output_size`` as the framework's layer takes it at
        call time."""
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
        if conv.layer_call is None:
            raise ValueError(f"{self.convention}: the convention defines no layer")
        weight = conv.weight_from_canonical(
            self.canonical_weight(params), ndim=self.ndim, groups=self.groups
        )
        if bias is not None:
            bias = conv.bias_from_canonical(bias, ndim=self.ndim)
        return conv.layer_call(
            x,
            weight,
            bias,
            ndim=self.ndim,
            **kwargs,
            method=method,
            precision=precision,
            preferred_element_type=preferred_element_type,
        )


def norm_except(v: jax.Array, kept: tuple[int, ...]) -> jax.Array:
    """The 2-norm of ``v`` over every axis but ``kept`` (torch's ``norm_except_dim``),
    keeping the reduced axes (a 0-D norm when ``kept`` is empty)."""
    axes = tuple(a for a in range(jnp.ndim(v)) if a not in kept)
    norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=axes, keepdims=bool(kept)))
    return norm


def fold_weight_norm(g: jax.Array, v: jax.Array, kept: tuple[int, ...]) -> jax.Array:
    """torch's ``_weight_norm(v, g, dim)``: ``v * (g / ||v||)``, the norm over every axis
    of ``v`` but ``kept`` (``(dim,)``; ``()`` for ``dim=None``, a 0-D ``g``)."""
    return v * (g / norm_except(v, kept))


def weight_norm(layer: Layer, dim: int | None = 0) -> Layer:
    """``layer`` with weight normalisation, as ``torch.nn.utils.weight_norm(module,
    dim=dim)`` or ``paddle.nn.utils.weight_norm(layer, dim=dim)`` applies it: its
    parameters become ``{"weight_g", "weight_v", "bias"}`` and the weight is computed
    from them with the framework's formula inside the layer (so ``jax.grad`` trains ``g``
    and ``v``). ``dim`` is the weight axis the norm keeps, in the framework's weight
    layout (torch's and paddle's are canonical, ``(C_in, C_out // groups, *kernel)``);
    ``None`` (or ``-1``, as both frameworks read it) normalises the whole weight.
    ``layer.init(key)`` then draws ``weight_v`` as the framework draws the weight and
    ``weight_g`` as its norm, as the framework's ``weight_norm`` starts."""
    if not isinstance(layer, Layer):
        raise TypeError(f"weight_norm: layer must be a convt.layers.Layer, got {type(layer)!r}")
    if registry.get(layer.convention).weight_norm is None:
        having = [c.name for c in registry.conventions() if c.weight_norm is not None]
        raise ValueError(
            f"{layer.convention}: the framework has no weight normalisation to reproduce "
            f"(convt reproduces {', '.join(having)}'s); fold a normalised weight into "
            "params['weight'] instead"
        )
    if dim is None or dim == -1:
        return dataclasses.replace(layer, weight_norm=())
    rank = len(layer.weight_shape)
    dim = fe.check_int(dim, "dim", layer.convention, minimum=-rank)
    if dim >= rank:
        raise ValueError(
            f"{layer.convention}: weight_norm's dim must be in [-{rank}, {rank}) for a weight "
            f"of shape {layer.weight_shape} (or None for the whole weight), got {dim}"
        )
    return dataclasses.replace(layer, weight_norm=(dim % rank,))


def keeps_weight_norm(choice: Any, framework: str) -> bool:
    """A converter's ``weight_norm`` argument: ``"fold"`` (``False``: the normalised
    weight folded into ``params["weight"]``) or ``"keep"`` (``True``: ``weight_g`` and
    ``weight_v`` kept as parameters)."""
    if choice not in ("fold", "keep"):
        raise ValueError(f"{framework}: weight_norm must be 'fold' or 'keep', got {choice!r}")
    return choice == "keep"


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
    *,
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
    *,
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


def init_params(
    key: jax.Array,
    weight_shape: Sequence[int],
    groups: int = 1,
    *,
    bias: bool = True,
    dtype: Any = jnp.float32,
) -> dict:
    """Deprecated (removed in 0.3): ``convt.torch.init(key, layer)`` or
    ``layer.init(key)``. torch's initialisation of a weight ``(C_in, C_out // groups,
    *kernel)``."""
    warnings.warn(
        "convt.layers.init_params is deprecated; use layer.init(key) or convt.torch.init",
        DeprecationWarning,
        stacklevel=2,
    )
    from convt import torch as convt_torch

    return convt_torch.init_weights(
        key, weight_shape=tuple(weight_shape), groups=groups, bias=bias, dtype=dtype
    )


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"convt.layers.{name}")
    raise AttributeError(f"module 'convt.layers' has no attribute {name!r}")
