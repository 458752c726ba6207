"""Transposed-convolution layers as equinox modules: torch's arguments and
initialisation, or any framework's layer (``layer=``), on unbatched inputs as equinox
takes them.

``ConvTranspose2d(16, 8, 4, stride=2, padding=1, key=jax.random.key(0))`` computes
``torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)`` on ``(C_in, H, W)`` (a
batched input works too), with ``weight (C_in, C_out // groups, *kernel)`` and ``bias
(C_out,)`` drawn as torch draws them::

    import jax
    from convt.layers.equinox import ConvTranspose2d

    up = ConvTranspose2d(16, 8, 4, stride=2, padding=1, key=jax.random.key(0))
    y = jax.vmap(up)(x)             # x (N, 16, H, W) -> (N, 8, 2H, 2W)

Equinox's own ``eqx.nn.ConvTranspose`` (whose arguments describe the forward
convolution) is `convt.equinox.conv_transpose`. Importing this module imports equinox.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from convt.layers import Layer
from convt.layers._module import (
    IntOrTuple,
    call_layer,
    explained_arguments,
    held_params,
    module_layer,
    rank_of,
    torch_arguments,
)

__all__ = ["ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

FRAMEWORK = "equinox"


class ConvTranspose(eqx.Module):
    """A transposed convolution with torch's arguments, as an equinox module.

    ``ConvTranspose(in_channels, out_channels, kernel_size, stride=1, padding=0,
    output_padding=0, groups=1, bias=True, dilation=1, *, num_spatial_dims=None, key)``
    holds ``weight (C_in, C_out // groups, *k)`` (torch's layout) and ``bias (C_out,)``,
    initialised as torch initialises them, and computes torch's ``ConvTransposeNd`` on
    an unbatched ``(C_in, *spatial)`` input (equinox's convention; a batched one works
    too), with ``output_size`` at call time. An int ``kernel_size`` needs
    ``num_spatial_dims`` (or `ConvTranspose1d`/`2d`/`3d`).

    Another framework's spelling: ``ConvTranspose(layer=convt.chainer.Deconvolution2D(
    16, 8, 4, stride=2, pad=1), key=key)`` takes any `convt.layers.Layer`, initialises
    as that framework does (or from ``params=``, canonical) and computes that
    framework's layer, still on unbatched input.

    With weight normalisation (``layer=convt.layers.weight_norm(...)``, or a converter's
    ``weight_norm="keep"`` layer and ``params``) the module holds ``weight_g`` and
    ``weight_v`` instead of ``weight`` (``None``) and computes the weight as the
    framework's ``weight_norm`` does, so training updates ``g`` and ``v``.

    ``method`` picks the lowering (`convt.conv_transpose`), ``dtype`` the parameters'.
    """

    weight: jax.Array | None
    weight_g: jax.Array | None
    weight_v: jax.Array | None
    bias: jax.Array | None
    layer: Layer = eqx.field(static=True)
    method: str = eqx.field(static=True)
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
        key: jax.Array | None = None,
    ):
        self.layer, drawn = module_layer(
            torch_arguments=torch_arguments(locals()),
            layer=layer,
            params=params,
            key=key,
            key_hint="key=jax.random.key(0)",
            dtype=dtype,
            rank=rank_of(type(self), num_spatial_dims, kernel_size, FRAMEWORK),
            framework=FRAMEWORK,
        )
        self.weight = drawn.get("weight")
        self.weight_g = drawn.get("weight_g")
        self.weight_v = drawn.get("weight_v")
        self.bias = drawn.get("bias")
        self.method = method

    def __call__(
        self,
        x: jax.Array,
        output_size: Any = None,
        *,
        key: jax.Array | None = None,
        precision: Any = None,
    ) -> jax.Array:
        """The layer's output for an unbatched ``x`` ``(C_in, *spatial)`` (or a batch;
        the given layer's framework's layout for ``layer=``); ``key`` is unused
        (equinox's calling convention)."""
        del key
        params = held_params(lambda name: getattr(self, name))
        unbatched = x.ndim == self.layer.ndim + 1
        if unbatched:  # equinox's convention; the frameworks' layers take batches
            x = x[None]
        y = call_layer(
            f"{FRAMEWORK}: {type(self).__name__}",
            self.layer,
            params,
            x,
            output_size,
            method=self.method,
            precision=precision,
        )
        return y[0] if unbatched else y


class ConvTranspose1d(ConvTranspose):
    """`ConvTranspose` on ``(C_in, L)`` inputs (``torch.nn.ConvTranspose1d``)."""

    rank = 1


class ConvTranspose2d(ConvTranspose):
    """`ConvTranspose` on ``(C_in, H, W)`` inputs (``torch.nn.ConvTranspose2d``)."""

    rank = 2


class ConvTranspose3d(ConvTranspose):
    """`ConvTranspose` on ``(C_in, D, H, W)`` inputs (``torch.nn.ConvTranspose3d``)."""

    rank = 3
