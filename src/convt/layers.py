"""What the layer classes of `convt.flax` and `convt.equinox` share: torch's arguments,
torch's initialisation, the ``ConvTranspose1d/2d/3d`` variants, and defining the
classes only when they are first asked for (so that flax and equinox are imported only
then).

`init_params` draws a ``ConvTranspose``'s parameters as torch's
``ConvTransposeNd.reset_parameters`` does: ``kaiming_uniform_(weight, a=sqrt(5))`` and a
bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = (C_out / groups) *
prod(kernel)`` (torch computes the fan from ``weight.size(1)``, which for a transposed
weight is the output channels per group), so both bounds are
``sqrt(groups / (C_out * prod(kernel)))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt import torch as convt_torch

IntOrTuple = int | Sequence[int]
LAYER_NAMES = ("ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


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
    in_channels = fe.check_int(in_channels, "in_channels", "torch")
    out_channels = fe.check_int(out_channels, "out_channels", "torch")
    groups = fe.check_int(groups, "groups", "torch")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"torch: in_channels ({in_channels}) and out_channels ({out_channels}) must "
            f"be divisible by groups ({groups})"
        )
    kernel = fe.int_tuple(kernel_size, ndim, "kernel_size", "torch")
    fe.check_at_least(kernel, 1, "kernel_size", "torch")
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
