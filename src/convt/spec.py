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
import operator
from collections.abc import Sequence
from typing import Any, Literal

from jax.core import Tracer

from convt._deprecation import deprecated_positional

__all__ = ["ConvTransposeSpec", "Layout", "effective_kernel", "full_length"]

Layout = Literal["channels_first", "channels_last"]
LAYOUTS: tuple[str, ...] = ("channels_first", "channels_last")


def full_length(n: int, k: int, stride: int, dilation: int) -> int:
    """Length of the uncropped output: ``(n - 1) * stride + dilation * (k - 1) + 1``."""
    return (n - 1) * stride + effective_kernel(k, dilation)


def effective_kernel(k: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``dilation * (k - 1) + 1``."""
    return dilation * (k - 1) + 1


def is_int(value: object) -> bool:
    """True for Python and numpy integers (anything with ``__index__``), not for bools."""
    if isinstance(value, bool) or isinstance(value, Tracer):
        return False
    try:
        operator.index(value)  # type: ignore[arg-type]  # the check is the call
    except TypeError:
        return False
    return True


def not_an_int(value: Any, name: str, prefix: str = "") -> TypeError:
    """The ``TypeError`` for a non-integer configuration value, with a hint for tracers.

    A traced value means the user passed a static parameter as a ``jax.jit`` argument.
    """
    message = f"{prefix}{name} must be an int or a sequence of ints, got {value!r}"
    if isinstance(value, Tracer) or (
        isinstance(value, (tuple, list)) and any(isinstance(v, Tracer) for v in value)
    ):
        message = (
            f"{prefix}{name} must be a static Python int (or a tuple of ints), got a traced "
            f"value ({type(value).__name__}): it is configuration, not data. Under jax.jit "
            f"mark it static, e.g. jax.jit(f, static_argnames=({name!r},)), or close over it "
            "with functools.partial"
        )
    return TypeError(message)


def as_int_tuple(values: Any, name: str, prefix: str = "") -> tuple[int, ...]:
    """A sequence of integers (Python or numpy) as a tuple of Python ints."""
    if is_int(values) or isinstance(values, (str, bytes)):
        raise not_an_int(values, name, prefix)
    try:
        values = tuple(values)
    except TypeError:
        raise not_an_int(values, name, prefix) from None
    if not all(is_int(v) for v in values):
        raise not_an_int(values, name, prefix)
    return tuple(operator.index(v) for v in values)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvTransposeSpec:
    """Static configuration of an N-D transposed convolution.

    Attributes:
      stride: per spatial axis, ``>= 1``.
      dilation: per spatial axis, ``>= 1``.
      crop: per spatial axis a pair ``(lo, hi)``; negative values extend the output.
      groups: number of channel groups, ``>= 1``.
      layout: ``"channels_first"`` (``(N, C, *spatial)``) or ``"channels_last"``
        (``(N, *spatial, C)``).

    Fields are keyword-only (``ConvTransposeSpec(stride=(2, 2), dilation=(1, 1),
    crop=((1, 1), (1, 1)))``; `create` broadcasts ints). A spec may have no spatial axes
    at all: the operation is then a (grouped) matrix product ``(N, C_in) @ (C_in,
    C_out)``. The spec is frozen and hashable, so it can be
    a static argument of ``jax.jit``.
    Weights are ``(C_in, C_out // groups, *kernel)``; biases are ``(C_out,)``.
    """

    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    crop: tuple[tuple[int, int], ...]
    groups: int = 1
    layout: Layout = "channels_first"

    def __post_init__(self) -> None:
        for name in ("stride", "dilation", "crop"):
            value = getattr(self, name)
            if is_int(value):
                raise TypeError(
                    f"ConvTransposeSpec: {name} must have one entry per spatial axis, got the "
                    f"int {value!r}; ConvTransposeSpec.create(ndim, {name}={value!r}, ...) "
                    "broadcasts ints to every axis"
                )
        stride = as_int_tuple(self.stride, "stride")
        dilation = as_int_tuple(self.dilation, "dilation")
        try:
            pairs = [tuple(pair) for pair in self.crop]
        except TypeError:
            raise TypeError(
                f"crop must be a sequence of (lo, hi) pairs, got {self.crop!r}"
            ) from None
        if any(len(pair) != 2 for pair in pairs):
            raise TypeError(f"crop must be a sequence of (lo, hi) pairs, got {self.crop!r}")
        crop = tuple(as_int_tuple(pair, "crop") for pair in pairs)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "dilation", dilation)
        object.__setattr__(self, "crop", crop)
        if not (len(stride) == len(dilation) == len(crop)):
            raise ValueError(
                "stride, dilation and crop must have one entry per spatial axis, got "
                f"{len(stride)}, {len(dilation)} and {len(crop)}"
            )
        for name, values in (("stride", stride), ("dilation", dilation)):
            if any(v < 1 for v in values):
                raise ValueError(f"{name} must be >= 1 on every axis, got {values!r}")
        if not is_int(self.groups):
            raise not_an_int(self.groups, "groups")
        object.__setattr__(self, "groups", operator.index(self.groups))
        if self.groups < 1:
            raise ValueError(f"groups must be >= 1, got {self.groups}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")

    @classmethod
    @deprecated_positional("stride", "dilation", "crop", "groups", "layout", keep=2)
    def create(
        cls,
        ndim: int,
        *,
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

        def per_axis(value: Any, name: str) -> tuple[Any, ...]:
            if is_int(value):
                return (operator.index(value),) * ndim
            try:
                value = tuple(value)
            except TypeError:
                raise not_an_int(value, name) from None
            if len(value) != ndim:
                raise ValueError(f"{name} needs {ndim} values, got {value!r}")
            return value

        if not is_int(ndim) or ndim < 0:
            raise ValueError(f"ndim must be a non-negative int, got {ndim!r}")
        crops = tuple((c, c) if is_int(c) else tuple(c) for c in per_axis(crop, "crop"))
        return cls(
            stride=per_axis(stride, "stride"),
            dilation=per_axis(dilation, "dilation"),
            crop=crops,
            groups=groups,
            layout=layout,
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


# Positional fields (the order they had: stride, dilation, crop, groups, layout) still
# work for one release, with a DeprecationWarning.
ConvTransposeSpec.__init__ = deprecated_positional(  # type: ignore[method-assign]
    "stride", "dilation", "crop", "groups", "layout"
)(ConvTransposeSpec.__init__)
