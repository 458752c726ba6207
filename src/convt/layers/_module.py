"""What the flax and equinox layer classes share (einops-style: ``convt.layers.flax``
and ``convt.layers.equinox`` are thin shells over this): torch's arguments or another
framework's `Layer`, checked and initialised, and the classes' argument errors."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt.layers import Layer

IntOrTuple = int | Sequence[int]
Init = TypeVar("Init", bound=Callable[..., None])

TORCH_SIGNATURE = (
    "in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, "
    "groups=1, bias=True, dilation=1"
)
# torch's arguments after the three it needs, with their defaults: given with layer=
# they would be ignored, so they are refused
_TORCH_DEFAULTS = dict(stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1)


TORCH_ARGUMENTS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "output_padding",
    "groups",
    "bias",
    "dilation",
)


def torch_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """torch's constructor arguments among a layer class's ``__init__`` arguments
    (``locals()`` at its start)."""
    return {name: arguments[name] for name in TORCH_ARGUMENTS}


def explained_arguments(framework: str) -> Callable[[Init], Init]:
    """A decorator for a layer class's ``__init__``: arguments that do not bind raise a
    ``TypeError`` saying which arguments the class takes (``functools.wraps`` keeps the
    signature for ``help()``, the docs and IDEs)."""

    def decorate(init: Init) -> Init:
        signature = inspect.signature(init)

        @functools.wraps(init)
        def checked(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                signature.bind(self, *args, **kwargs)
            except TypeError as err:
                raise TypeError(
                    f"{framework}: {type(self).__name__} takes torch's arguments "
                    f"({TORCH_SIGNATURE}) or layer= (another framework's, e.g. "
                    f"convt.keras.Conv2DTranspose(...)): {err}"
                ) from None
            init(self, *args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def rank_of(
    cls: type, num_spatial_dims: int | None, kernel_size: Any, framework: str
) -> int | None:
    """The layer's number of spatial axes: ``ConvTransposeNd``'s class rank, or
    ``num_spatial_dims``, or the length of a tuple ``kernel_size`` (``None``: not known
    before a given layer says it)."""
    fixed = getattr(cls, "rank", None)
    if num_spatial_dims is not None:
        rank = fe.check_int(num_spatial_dims, "num_spatial_dims", framework)
        if fixed is not None and rank != fixed:
            raise ValueError(
                f"{framework}: {cls.__name__} is {fixed}-D, got num_spatial_dims={rank}"
            )
        return rank
    if fixed is not None or kernel_size is None or fe.is_int(kernel_size):
        return fixed
    return len(kernel_size)


def module_layer(
    *,
    torch_arguments: Mapping[str, Any],
    layer: Layer | None,
    params: Mapping[str, Any] | None,
    key: jax.Array | None,
    key_hint: str,
    dtype: Any,
    rank: int | None,
    framework: str,
) -> tuple[Layer, dict]:
    """What a flax or equinox layer holds: ``(layer, params)``, from torch's constructor
    arguments (``torch_arguments``; torch's initialisation) or from another framework's
    `Layer` (``layer=``; that framework's initialisation, or ``params``). ``key`` draws
    the parameters (``key_hint``: how the layer class takes it)."""
    if key is None and params is None:
        raise TypeError(
            f"{framework}: the layer needs {key_hint} to initialise its parameters (or "
            "layer= with params=)"
        )
    required = ("in_channels", "out_channels", "kernel_size")
    if layer is None:
        if params is not None:
            raise TypeError(f"{framework}: params= goes with layer=")
        missing = [name for name in required if torch_arguments[name] is None]
        if missing:
            raise TypeError(
                f"{framework}: the layer takes torch's arguments ({TORCH_SIGNATURE}) or "
                f"layer= (another framework's, e.g. convt.keras.Conv2DTranspose(...)): "
                f"{', '.join(missing)} missing"
            )
        if rank is None:
            raise ValueError(
                f"{framework}: pass num_spatial_dims (or use ConvTranspose1d/2d/3d) when "
                "kernel_size is an int"
            )
        from convt import torch as convt_torch

        assert key is not None  # with params None: checked above

        torch_layer = convt_torch.ConvTransposeNd(rank, **torch_arguments)
        return torch_layer, torch_layer.init(key, dtype=dtype)
    given = [name for name in required if torch_arguments[name] is not None]
    given += [k for k, v in _TORCH_DEFAULTS.items() if torch_arguments[k] != v]
    if given:
        raise TypeError(
            f"{framework}: pass either torch's arguments or layer= (a convt.layers.Layer, "
            f"which holds the other framework's arguments), not both (got {', '.join(given)})"
        )
    if not isinstance(layer, Layer):
        raise TypeError(
            f"{framework}: layer= takes a convt.layers.Layer (convt.paddle.Conv2DTranspose(...), "
            f"a converter's layer, ...), got {type(layer).__name__}"
        )
    if rank is not None and rank != layer.ndim:
        raise ValueError(f"{framework}: a {rank}-D layer class was given a {layer.ndim}-D layer")
    if params is None:
        assert key is not None  # checked above
        return layer, layer.init(key, dtype=dtype)
    params = {k: jnp.asarray(v) for k, v in params.items() if v is not None}
    shapes = layer.param_shapes
    if {k: v.shape for k, v in params.items()} != shapes:
        raise ValueError(
            f"{framework}: params must be {shapes} for this layer, got "
            f"{ {k: v.shape for k, v in params.items()} }"
        )
    return layer, params


PARAM_NAMES = ("weight", "weight_g", "weight_v", "bias")


def held_params(value_of: Callable[[str], Any]) -> dict[str, Any]:
    """The canonical parameters a layer class holds (``value_of(name)`` its attribute's
    value, ``None`` where the layer has none: ``weight``, or ``weight_g`` and
    ``weight_v`` with weight normalisation, and ``bias``)."""
    values = {name: value_of(name) for name in PARAM_NAMES}
    return {name: value for name, value in values.items() if value is not None}


def call_layer(
    owner: str,
    layer: Layer,
    params: Mapping[str, Any],
    x: jax.Array,
    output_size: Any,
    *,
    method: str,
    precision: Any,
) -> jax.Array:
    """``layer(params, x, output_size)`` for a layer class: its errors name the class
    (``owner``, ``"flax: ConvTranspose2d"``) and the framework whose arguments it took,
    and a channels-last input to torch's channels-first layer says so."""
    where = f"{owner} ({layer.convention}'s arguments)"
    try:
        with fe.speaking_as(where, layer.convention):
            return layer(params, x, output_size, method=method, precision=precision)
    except ValueError as err:
        shape = jnp.shape(x)
        if (
            layer.convention == "torch"
            and len(shape) == layer.ndim + 2
            and shape[1] != layer.in_channels
            and shape[-1] == layer.in_channels
        ):
            raise ValueError(
                f"{err}; x {shape} looks channels-last: the layer takes channels first, "
                f"(N, {layer.in_channels}, *spatial) (jnp.moveaxis(x, -1, 1))"
            ) from None
        raise
