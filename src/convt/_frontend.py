"""Parameter parsing shared by the framework front-ends.

A front-end translates its framework's parameters into a `ConvTransposeSpec`
and calls `conv_transpose()`; these helpers hold what the front-ends share:
per-axis tuples, range checks, unbatched inputs and the call itself. Every error names
the framework and its parameter.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from convt._deprecation import deprecated_positional
from convt.convention import NotExpressible
from convt.core import (
    LoweringOptions,
    conv_transpose,
    integer_conv_transpose,
    reject_non_array,
    validate,
)
from convt.spec import (
    ConvTransposeSpec,
    as_int_tuple,
    effective_kernel,
    is_int,
    not_an_int,
)

__all__ = ["NotExpressible", "deprecated_positional", "is_int"]

# Array types of other frameworks, by top-level module: convt takes JAX or numpy arrays.
FOREIGN_ARRAY_MODULES = {
    "torch": "jnp.asarray(t.detach().cpu().numpy()), or jax.dlpack.from_dlpack(t) to share memory",
    "paddle": "jnp.asarray(t.numpy())",
    "tensorflow": "jnp.asarray(t.numpy())",
    "megengine": "jnp.asarray(t.numpy())",
    "mindspore": "jnp.asarray(t.asnumpy())",
    "mxnet": "jnp.asarray(t.asnumpy())",
    "chainer": "jnp.asarray(v.array)",
    "cupy": "jax.dlpack.from_dlpack(a)",
    "oneflow": "jnp.asarray(t.numpy())",
}


def check_array(value: Any, name: str, framework: str, *, floating: bool = True) -> None:
    """Rejects other frameworks' tensors (with how to convert them) and, when
    ``floating``, integer or boolean arrays (transposed convolution needs floats)."""
    if value is None:
        return
    reject_non_array(value, name, f"{framework}: ")
    if not isinstance(value, (jax.Array, np.ndarray, np.generic, Tracer)):
        top = type(value).__module__.split(".")[0]
        if top in FOREIGN_ARRAY_MODULES:
            raise TypeError(
                f"{framework}: {name} is a {top} {type(value).__name__}; convt takes JAX (or "
                f"numpy) arrays. Convert it first: {FOREIGN_ARRAY_MODULES[top]}"
            )
    if floating:
        dtype = jnp.result_type(value)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{framework}: {name} must be a floating-point array, got dtype {dtype}"
            )


def check_arrays(framework: str, names: Sequence[str], *arrays: Any) -> None:
    """`check_array()` on each array with its framework name."""
    for name, value in zip(names, arrays):
        check_array(value, name, framework)


def int_tuple(
    value: Any, n: int, name: str, framework: str, *, allow_single: bool = True
) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints (or of one int, when ``allow_single``).

    A traced value gets an error saying to mark the parameter static. ``n`` is the
    front-end's ``ndim`` argument (the number of spatial axes), checked here, where
    every front-end's ``to_spec`` reads its first per-axis parameter.
    """
    check_ndim(n, framework)
    if is_int(value):
        return (operator.index(value),) * n
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise not_an_int(value, name, f"{framework}: ")
    values = as_int_tuple(value, name, f"{framework}: ")
    if allow_single and len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(
            f"{framework}: {name} must be an int or have {n} values (one per spatial axis), "
            f"got {value!r}"
        )
    return values


def int_pair(value: Any, name: str, framework: str) -> tuple[int, int]:
    """A ``(low, high)`` pair of ints (`int_tuple` of two values)."""
    low, high = int_tuple(value, 2, name, framework, allow_single=False)
    return low, high


@dataclasses.dataclass(frozen=True)
class Arguments:
    """One framework's parameters of an ``ndim``-D layer, read as the framework reads
    them: every error names the framework and the parameter (``ndim`` is checked when
    the reader is made).

    ``args = Arguments("torch", ndim)``, then ``args.ints(stride, "stride", at_least=1)``
    for an int or one int per axis, ``args.int(groups, "groups")`` for one int.
    """

    framework: str
    ndim: int

    def __post_init__(self) -> None:
        check_ndim(self.ndim, self.framework)

    def ints(
        self,
        value: Any,
        name: str,
        *,
        at_least: int | None = None,
        allow_single: bool = True,
        n: int | None = None,
    ) -> tuple[int, ...]:
        """An int or a sequence of ``n`` ints (default: one per spatial axis), each at
        least ``at_least`` when given (`int_tuple`, `check_at_least`)."""
        count = self.ndim if n is None else n
        values = int_tuple(value, count, name, self.framework, allow_single=allow_single)
        if at_least is not None:
            check_at_least(values, at_least, name, self.framework)
        return values

    def int(self, value: Any, name: str, *, at_least: int = 1) -> int:
        """One int, at least ``at_least`` (`check_int`)."""
        return check_int(value, name, self.framework, at_least)

    def at_least(self, values: Sequence[builtins.int], minimum: builtins.int, name: str) -> None:
        """`check_at_least` for this framework."""
        check_at_least(values, minimum, name, self.framework)


def check_ndim(ndim: Any, framework: str) -> None:
    """``ndim`` (the number of spatial axes) is a non-negative int."""
    if not is_int(ndim) or ndim < 0:
        error = ValueError if is_int(ndim) else TypeError
        raise error(
            f"{framework}: ndim (the number of spatial axes, e.g. 2 for conv_transpose2d) "
            f"must be a non-negative int, got {ndim!r}"
        )


def check_at_least(values: Sequence[int], minimum: int, name: str, framework: str) -> None:
    if any(v < minimum for v in values):
        raise ValueError(
            f"{framework}: {name} must be >= {minimum} on every axis, got {tuple(values)}"
        )


def check_int(value: Any, name: str, framework: str, minimum: int = 1) -> int:
    if not is_int(value):
        raise not_an_int(value, name, f"{framework}: ")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{framework}: {name} must be >= {minimum}, got {value}")
    return value


def check_output_padding(
    output_padding, stride, dilation, framework: str, rule: str = "max"
) -> None:
    """``output_padding`` below ``max(stride, dilation)`` (torch) or below ``stride``."""
    for op, s, d in zip(output_padding, stride, dilation):
        bound = max(s, d) if rule == "max" else s
        if not 0 <= op < bound:
            what = "max(stride, dilation)" if rule == "max" else "stride"
            raise ValueError(
                f"{framework}: output_padding must be >= 0 and smaller than {what} on every "
                f"axis, got output_padding={tuple(output_padding)}, stride={tuple(stride)}, "
                f"dilation={tuple(dilation)}"
            )


def symmetric_crop(
    padding: Sequence[int], output_padding: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    """torch's mapping: crop ``(p, p - output_padding)`` per axis."""
    return tuple((p, p - op) for p, op in zip(padding, output_padding))


def check_size_range(sizes, smallest, stride, framework: str, name: str = "output_size") -> None:
    """Each requested size in ``[smallest, smallest + stride)``: torch's and paddle's rule."""
    for axis, (size, low, s) in enumerate(zip(sizes, smallest, stride)):
        if not low <= size < low + s:
            raise ValueError(
                f"{framework}: requested an {name} of {tuple(sizes)}, but valid sizes on "
                f"spatial axis {axis} range from {low} to {low + s - 1} for this input, "
                "kernel, stride, padding and dilation"
            )


def require_array(value: Any, name: str, framework: str) -> None:
    """A ``TypeError`` naming the parameter for a missing (``None``) array."""
    reject_non_array(value, name, f"{framework}: ")
    check_array(value, name, framework, floating=False)


def check_rank(
    x, ndim: int, framework: str, function: str, *, unbatched: bool, name: str = "input"
) -> bool:
    """Returns whether ``x`` is unbatched; raises on any other rank."""
    require_array(x, name, framework)
    rank = jnp.ndim(x)
    if rank == ndim + 2:
        return False
    if unbatched and rank == ndim + 1:
        return True
    allowed = (
        f"{ndim + 1}-D (unbatched) or {ndim + 2}-D (batched)" if unbatched else f"{ndim + 2}-D"
    )
    raise ValueError(
        f"{framework}: {function} expects {name} to be {allowed}, got shape {tuple(jnp.shape(x))}"
    )


def kernel_size_of(weight, ndim: int, framework: str, name: str = "weight") -> tuple[int, ...]:
    """The kernel size of an ``(C_in, C_out // groups, *kernel)`` weight; checks its rank."""
    require_array(weight, name, framework)
    shape = tuple(jnp.shape(weight))
    if len(shape) != ndim + 2:
        raise ValueError(
            f"{framework}: {name} must be {ndim + 2}-D (in_channels, out_channels // groups, "
            f"*kernel_size), got shape {shape}"
        )
    return shape[2:]


def call(
    x,
    weight,
    bias,
    spec: ConvTransposeSpec,
    framework: str,
    *,
    unbatched: bool = False,
    options: LoweringOptions,
    names=("input", "weight", "bias", "padding"),
    integers: bool = False,
) -> jax.Array:
    """Checks with framework names, then runs the canonical function as ``options``
    say (``integers``: integer arrays are computed in integer arithmetic,
    `convt.core.integer_conv_transpose`, as the framework computes them)."""
    if unbatched:
        x = jnp.expand_dims(x, 0)
    validate(
        jnp.shape(x),
        jnp.shape(weight),
        None if bias is None else jnp.shape(bias),
        spec,
        framework=framework,
        names=names,
    )
    if integers:
        y = integer_conv_transpose(x, weight, bias, spec=spec)
    else:
        y = conv_transpose(x, weight, bias, spec=spec, **options._asdict())
    return y[0] if unbatched else y


def cropped_to_nothing(
    x, weight, spec: ConvTransposeSpec, framework: str, padding, preferred_element_type=None
) -> jax.Array | None:
    """``jax.lax.conv_transpose``'s shape rule where a crop leaves nothing: an empty
    array with the cropped axes at length 0 (``None`` when every axis keeps an output);
    a crop longer than the stride-dilated input plus the kernel's reach is an error.

    ``x`` and ``weight`` are in the spec's layout and ``(C_in, C_out // groups, *k)``.
    """
    x_shape, w_shape = jnp.shape(x), jnp.shape(weight)
    spatial = spec.output_spatial_shape([x_shape[a] for a in spec.spatial_axes], w_shape[2:])
    for axis, (size, k, d) in enumerate(zip(spatial, w_shape[2:], spec.dilation)):
        if size + effective_kernel(k, d) - 1 < 0:  # as jax's conv_shape_tuple
            raise ValueError(
                f"{framework}: negative padding {padding!r} is larger than the stride-dilated "
                f"input on spatial axis {axis}"
            )
    if min(spatial, default=1) >= 1:
        return None
    out_shape = list(spec.output_shape(x_shape, w_shape))
    for a, size in zip(spec.spatial_axes, spatial):
        out_shape[a] = max(size, 0)
    dtype = preferred_element_type or jnp.result_type(x, weight)
    return jnp.zeros(out_shape, dtype)


def crop_for_size(
    pad_lo: Sequence[int], full: Sequence[int], size: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    """Crop ``(lo, full - lo - size)``: keep ``size`` outputs starting at ``lo``."""
    return tuple((lo, f - lo - n) for lo, f, n in zip(pad_lo, full, size))


def spatial_shape(x, ndim: int, channels_last: bool = False) -> tuple[int, ...]:
    """The spatial sizes of a batched input."""
    shape = tuple(jnp.shape(x))
    return shape[1:-1] if channels_last else shape[2 : 2 + ndim]


def forward_length(size: int, total_pad: int, k_eff: int, stride: int) -> int:
    """The output length of a forward convolution over ``size`` inputs padded by
    ``total_pad`` in all; 0 when the padded input is shorter than the kernel.

    onnxruntime and TensorFlow both require this to give back the transposed
    convolution's input length (chainer's floor-division variant is below).
    """
    span = size + total_pad - k_eff
    return span // stride + 1 if span >= 0 else 0


@contextlib.contextmanager
def speaking_as(framework: str, inner: str, renames: dict[str, str] | None = None):
    """Errors of the ``inner`` convention a front-end delegates to, re-raised in the
    front-end's name (and with its parameter names: ``renames``)."""
    try:
        yield
    except (ValueError, TypeError) as err:
        message = str(err)
        if not message.startswith(f"{inner}: "):
            raise
        message = f"{framework}: {message[len(inner) + 2 :]}"
        for old, new in (renames or {}).items():
            message = message.replace(old, new)
        raise type(err)(message) from None


def require(condition: bool, framework: str, why: str) -> None:
    if not condition:
        raise NotExpressible(f"cannot be expressed in {framework}: {why}")


def per_axis_value(values: Sequence[int]) -> int | tuple[int, ...]:
    """One int where all axes agree, else the tuple: how users write parameters."""
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def symmetric_from_spec(spec: ConvTransposeSpec, framework: str, op_bound) -> dict:
    """``padding`` and ``output_padding`` for crops ``(p, p - op)`` (torch, megengine).

    ``op_bound(stride, dilation)`` is the framework's exclusive bound on ``output_padding``.
    """
    require(
        spec.layout == "channels_first",
        framework,
        "it has no channels-last layout (transpose the data to channels first)",
    )
    padding, output_padding = [], []
    for (lo, hi), s, d in zip(spec.crop, spec.stride, spec.dilation):
        require(lo >= 0, framework, f"its padding cannot be negative (crop lo={lo} extends)")
        op = lo - hi
        require(
            0 <= op < op_bound(s, d),
            framework,
            f"crop {(lo, hi)}: padding is symmetric, so the right crop must be the left "
            f"one minus an output_padding in [0, {op_bound(s, d)}), got {op}",
        )
        padding.append(lo)
        output_padding.append(op)
    return dict(
        stride=per_axis_value(spec.stride),
        padding=per_axis_value(padding),
        output_padding=per_axis_value(output_padding),
        dilation=per_axis_value(spec.dilation),
        groups=spec.groups,
    )


def pad_outsize_from_spec(
    spec: ConvTransposeSpec, framework: str, input_size, kernel_size, check_outsize
) -> dict:
    """chainer's and chainerx's form: ``pad`` = the left crop, and ``outsize`` if the crop
    is asymmetric, provided ``check_outsize(outsize, pad)`` (the framework's own check,
    raising ``ValueError``) accepts it."""
    require(spec.layout == "channels_first", framework, "it has no channels-last layout")
    pad = [lo for lo, _ in spec.crop]
    require(
        min(pad) >= 0, framework, f"pad cannot be negative (crop {spec.crop} extends on the left)"
    )
    params = dict(stride=per_axis_value(spec.stride), pad=per_axis_value(pad))
    if any(lo != hi for lo, hi in spec.crop):
        outsize = spec.output_spatial_shape(input_size, kernel_size)
        try:
            check_outsize(outsize, pad)
        except ValueError as err:
            raise NotExpressible(f"cannot be expressed in {framework}: {err}") from None
        params["outsize"] = tuple(outsize)
    return params
