"""Transposed-convolution layers as flax nnx modules: torch's arguments and
initialisation, or any framework's layer (``layer=``).

``ConvTranspose2d(16, 8, 4, stride=2, padding=1, rngs=nnx.Rngs(0))`` computes
``torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)`` on batched channels-first
input, with ``weight (C_in, C_out // groups, *kernel)`` and ``bias (C_out,)`` as
``nnx.Param`` drawn as torch draws them::

    from flax import nnx
    from convt.layers.flax import ConvTranspose2d

    up = ConvTranspose2d(16, 8, 4, stride=2, padding=1, rngs=nnx.Rngs(0))
    y = up(x)                       # x (N, 16, H, W) -> (N, 8, 2H, 2W)

flax's own ``nnx.ConvTranspose`` (lax's padding, channels last) is
`convt.flax.conv_transpose`. Importing this module imports flax.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from convt.layers import Layer
from convt.layers._module import (
    PARAM_NAMES,
    IntOrTuple,
    call_layer,
    explained_arguments,
    held_params,
    module_layer,
    rank_of,
    torch_arguments,
)

__all__ = ["ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

FRAMEWORK = "flax"


class ConvTranspose(nnx.Module):
    """A transposed convolution with torch's arguments, as a flax nnx module.

    ``ConvTranspose(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, *, num_spatial_dims=None,
    rngs)`` holds ``weight`` ``(C_in, C_out // groups, *k)`` (torch's layout) and
    ``bias`` ``(C_out,)`` as ``nnx.Param``, initialised as torch initialises them, and
    computes torch's ``ConvTransposeNd`` on batched channels-first input, with
    ``output_size`` at call time. An int ``kernel_size`` needs ``num_spatial_dims`` (or
    `ConvTranspose1d`/`2d`/`3d`).

    Another framework's spelling: ``ConvTranspose(layer=convt.paddle.Conv2DTranspose(
    16, 8, 4, stride=2, padding="SAME"), rngs=rngs)`` takes any `convt.layers.Layer` (a
    framework's constructor or converter), initialises as that framework does (or from
    ``params=``, canonical) and computes that framework's layer (its input layout
    included).

    With weight normalisation (``layer=convt.layers.weight_norm(...)``, or a converter's
    ``weight_norm="keep"`` layer and ``params``) the module holds ``weight_g`` and
    ``weight_v`` instead of ``weight`` and computes the weight as the framework's
    ``weight_norm`` does, so training updates ``g`` and ``v``.

    ``method`` picks the lowering (`convt.conv_transpose`), ``dtype`` the parameters'.
    """

    rank: ClassVar[int | None] = None

    @explained_arguments(FRAMEWORK)
    def __init__(
        self,
        in_channels: int | None = None,
        out_channels: int | None = None,
        kernel_size: IntOrTuple | None = None,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntOrTuple = 1,
        *,
        num_spatial_dims: int | None = None,
        layer: Layer | None = None,
        params: dict | None = None,
        dtype: Any = jnp.float32,
        method: str = "auto",
        rngs: nnx.Rngs | None = None,
    ):
        self.layer, drawn = module_layer(
            torch_arguments=torch_arguments(locals()),
            layer=layer,
            params=params,
            key=None if rngs is None else rngs.params(),
            key_hint="rngs=nnx.Rngs(0)",
            dtype=dtype,
            rank=rank_of(type(self), num_spatial_dims, kernel_size, FRAMEWORK),
            framework=FRAMEWORK,
        )
        for name in PARAM_NAMES:
            setattr(self, name, nnx.Param(drawn[name]) if name in drawn else None)
        self.method = method

    def __call__(
        self, x: jax.Array, output_size: Any = None, *, precision: Any = None
    ) -> jax.Array:
        """The layer's output for ``x`` (``(N, C_in, *spatial)`` for torch's arguments;
        the given layer's framework's layout otherwise)."""
        params = held_params(lambda name: _value(getattr(self, name)))
        return call_layer(
            f"{FRAMEWORK}: {type(self).__name__}",
            self.layer,
            params,
            x,
            output_size,
            method=self.method,
            precision=precision,
        )


def _value(param: nnx.Param | None) -> Any:
    return None if param is None else param.get_value()


class ConvTranspose1d(ConvTranspose):
    """`ConvTranspose` on ``(N, C_in, L)`` inputs (``torch.nn.ConvTranspose1d``)."""

    rank = 1


class ConvTranspose2d(ConvTranspose):
    """`ConvTranspose` on ``(N, C_in, H, W)`` inputs (``torch.nn.ConvTranspose2d``)."""

    rank = 2


class ConvTranspose3d(ConvTranspose):
    """`ConvTranspose` on ``(N, C_in, D, H, W)`` inputs (``torch.nn.ConvTranspose3d``)."""

    rank = 3
