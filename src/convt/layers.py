"""What the layer classes share: torch's arguments and torch's initialisation.

`init_params` draws a ``ConvTranspose``'s parameters as torch's
``ConvTransposeNd.reset_parameters`` does: ``kaiming_uniform_(weight, a=sqrt(5))`` and a
bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = (C_out / groups) *
prod(kernel)`` (torch computes the fan from ``weight.size(1)``, which for a transposed
weight is the output channels per group), so both bounds are
``sqrt(groups / (C_out * prod(kernel)))``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from convt import _frontend as fe

IntOrTuple = int | Sequence[int]


@dataclasses.dataclass(frozen=True)
class TorchArguments:
    """A ``torch.nn.ConvTransposeNd``'s constructor arguments, per axis."""

    ndim: int
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    dilation: tuple[int, ...]

    @classmethod
    def parse(
        cls,
        ndim: int,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        dilation: IntOrTuple = 1,
    ) -> TorchArguments:
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
        args = cls(
            ndim,
            in_channels,
            out_channels,
            kernel,
            fe.int_tuple(stride, ndim, "stride", "torch"),
            fe.int_tuple(padding, ndim, "padding", "torch"),
            fe.int_tuple(output_padding, ndim, "output_padding", "torch"),
            groups,
            fe.int_tuple(dilation, ndim, "dilation", "torch"),
        )
        from convt.torch import to_spec  # the checks torch makes, raised now

        to_spec(ndim, args.stride, args.padding, args.output_padding, groups, args.dilation)
        return args

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)


def init_params(
    key: jax.Array, args: TorchArguments, *, bias: bool = True, dtype=jnp.float32
) -> dict:
    """``{"weight", "bias"}`` drawn as torch initialises a ``ConvTransposeNd``."""
    bound = math.sqrt(args.groups / (args.out_channels * math.prod(args.kernel_size)))
    w_key, b_key = jax.random.split(key)
    params = {
        "weight": jax.random.uniform(w_key, args.weight_shape, dtype, -bound, bound),
    }
    if bias:
        params["bias"] = jax.random.uniform(b_key, (args.out_channels,), dtype, -bound, bound)
    return params
