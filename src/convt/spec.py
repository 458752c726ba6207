"""The canonical transposed-convolution spec.

Per spatial axis, with input length ``n``, kernel size ``k``, stride ``s``, dilation
``d`` and crop ``(lo, hi)``::

    full      = (n - 1) * s + d * (k - 1) + 1
    y_full[o] = sum over i, j with o == i*s + j*d of x[i] * w[j]      (0 <= o < full)
    y[t]      = y_full[t + lo]      for 0 <= t < full - lo - hi

A negative crop extends the output with zeros (before the bias is added).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

Layout = Literal["channels_first", "channels_last"]
LAYOUTS: tuple[str, ...] = ("channels_first", "channels_last")


def full_length(n: int, k: int, stride: int, dilation: int) -> int:
    """Length of the uncropped output: ``(n - 1) * stride + dilation * (k - 1) + 1``."""
    return (n - 1) * stride + effective_kernel(k, dilation)


def effective_kernel(k: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``dilation * (k - 1) + 1``."""
    return dilation * (k - 1) + 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class ConvTransposeSpec:
    """Static configuration of an N-D transposed convolution.

    Attributes:
      stride: per spatial axis, ``>= 1``.
      dilation: per spatial axis, ``>= 1``.
      crop: per spatial axis a pair ``(lo, hi)``; negative values extend the output.
      groups: number of channel groups, ``>= 1``.
      layout: ``"channels_first"`` (``(N, C, *spatial)``) or ``"channels_last"``
        (``(N, *spatial, C)``).

    The spec is frozen and hashable, so it can be a static argument of ``jax.jit``.
    Weights are ``(C_in, C_out // groups, *kernel)``; biases are ``(C_out,)``.
    """

    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    crop: tuple[tuple[int, int], ...]
    groups: int = 1
    layout: Layout = "channels_first"

    def __post_init__(self) -> None:
        stride = tuple(self.stride)
        dilation = tuple(self.dilation)
        try:
            crop = tuple((lo, hi) for lo, hi in self.crop)
        except (TypeError, ValueError):
            raise TypeError(
                f"crop must be a sequence of (lo, hi) pairs, got {self.crop!r}"
            ) from None
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "dilation", dilation)
        object.__setattr__(self, "crop", crop)
        if len(stride) == 0:
            raise ValueError("the spec needs at least one spatial axis")
        if not (len(stride) == len(dilation) == len(crop)):
            raise ValueError(
                "stride, dilation and crop must have one entry per spatial axis, got "
                f"{len(stride)}, {len(dilation)} and {len(crop)}"
            )
        for name, values in (("stride", stride), ("dilation", dilation)):
            if not all(_is_int(v) for v in values):
                raise TypeError(f"{name} must hold integers, got {values!r}")
            if any(v < 1 for v in values):
                raise ValueError(f"{name} must be >= 1 on every axis, got {values!r}")
        if not all(_is_int(v) for pair in crop for v in pair):
            raise TypeError(f"crop must hold integers, got {crop!r}")
        if not _is_int(self.groups):
            raise TypeError(f"groups must be an integer, got {self.groups!r}")
        if self.groups < 1:
            raise ValueError(f"groups must be >= 1, got {self.groups}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")

    @classmethod
    def create(
        cls,
        ndim: int,
        stride: int | Sequence[int] = 1,
        dilation: int | Sequence[int] = 1,
        crop: int | Sequence[int] | Sequence[tuple[int, int]] = 0,
        groups: int = 1,
        layout: Layout = "channels_first",
    ) -> ConvTransposeSpec:
        """Builds a spec, broadcasting scalars to ``ndim`` axes.

        ``crop`` may be an int (same on both sides of every axis), one int per axis
        (symmetric), or one ``(lo, hi)`` pair per axis.
        """

        def per_axis(value, name):
            if _is_int(value):
                return (value,) * ndim
            value = tuple(value)
            if len(value) != ndim:
                raise ValueError(f"{name} needs {ndim} values, got {value!r}")
            return value

        crops = per_axis(crop, "crop")
        crops = tuple((c, c) if _is_int(c) else tuple(c) for c in crops)
        return cls(
            per_axis(stride, "stride"), per_axis(dilation, "dilation"), crops, groups, layout
        )

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.stride)

    @property
    def channel_axis(self) -> int:
        """Position of the channel axis in a batched array."""
        return 1 if self.layout == "channels_first" else self.ndim + 1

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Positions of the spatial axes in a batched array."""
        first = 2 if self.layout == "channels_first" else 1
        return tuple(range(first, first + self.ndim))

    def full_spatial_shape(
        self, input_spatial: Sequence[int], kernel_spatial: Sequence[int]
    ) -> tuple[int, ...]:
        """Uncropped output lengths, one per spatial axis."""
        return tuple(
            full_length(n, k, s, d)
            for n, k, s, d in zip(input_spatial, kernel_spatial, self.stride, self.dilation)
        )

    def output_spatial_shape(
        self, input_spatial: Sequence[int], kernel_spatial: Sequence[int]
    ) -> tuple[int, ...]:
        """Output lengths ``full - lo - hi``, one per spatial axis (may be < 1: invalid)."""
        full = self.full_spatial_shape(input_spatial, kernel_spatial)
        return tuple(f - lo - hi for f, (lo, hi) in zip(full, self.crop))

    def output_shape(
        self, input_shape: Sequence[int], weight_shape: Sequence[int]
    ) -> tuple[int, ...]:
        """Output shape for a batched input ``input_shape`` and canonical ``weight_shape``.

        ``weight_shape`` is ``(C_in, C_out // groups, *kernel)``.
        """
        input_shape, weight_shape = tuple(input_shape), tuple(weight_shape)
        spatial = tuple(input_shape[a] for a in self.spatial_axes)
        out_spatial = self.output_spatial_shape(spatial, weight_shape[2:])
        c_out = weight_shape[1] * self.groups
        if self.layout == "channels_first":
            return (input_shape[0], c_out, *out_spatial)
        return (input_shape[0], *out_spatial, c_out)

    def describe(self) -> str:
        """One line per field, for people (the CLI prints this)."""
        return "\n".join(
            [
                f"stride:   {self.stride}",
                f"dilation: {self.dilation}",
                f"crop:     {self.crop}   (lo, hi) per axis; negative extends",
                f"groups:   {self.groups}",
                f"layout:   {self.layout}",
            ]
        )
