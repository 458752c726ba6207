"""The canonical transposed convolution: validation, lowering choice, bias."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from convt import auto as auto_rules
from convt import lowering
from convt._deprecation import deprecated_attributes
from convt.spec import ConvTransposeSpec

__all__ = [
    "MAX_OUTPUT_BYTES",
    "METHODS",
    "LoweringOptions",
    "choose_method",
    "conv_transpose",
    "validate",
]

Method = str  # "auto", a name from lowering.LOWERINGS, or "forward/backward"
METHODS: tuple[str, ...] = ("auto", *lowering.LOWERINGS)


class LoweringOptions(NamedTuple):
    """How `conv_transpose` computes, bundled for the front-ends to pass along (all
    static): ``method`` (a lowering, a pair, or ``"auto"``), ``precision`` and
    ``preferred_element_type`` (as ``lax.conv_general_dilated`` takes them)."""

    method: Method = "auto"
    precision: Any = None
    preferred_element_type: Any = None


# The largest output convt computes: a bigger one is refused before any work.
MAX_OUTPUT_BYTES = 2**40


def choose_method(
    spec: ConvTransposeSpec,
    weight_shape: tuple[int, ...],
    backend: str,
    input_shape: tuple[int, ...] | None = None,
) -> str:
    """The lowering ``method="auto"`` picks on ``backend`` (``"cpu"``, ``"gpu"``/
    ``"cuda"``/``"rocm"`` or ``"tpu"``) for this layer: one name, or
    ``"forward/backward"`` when values and derivatives are fastest in different
    lowerings (`lowering.split`). ``input_shape`` (the input's, as laid out) sizes the
    im2cols the CPU's rules compare.

    The rules are one table, `convt.auto.RULES` (first match per platform and
    direction, each rule with its reason and its measurement's source), printed in
    docs/lowerings.md.
    """
    return auto_rules.choose(spec, weight_shape, backend, input_shape)


def _check_method(method: str, spec: ConvTransposeSpec, weight_shape) -> None:
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    parts = method.split("/")
    if method != "auto" and (
        len(parts) > 2 or not all(part in lowering.LOWERINGS for part in parts)
    ):
        raise ValueError(
            f"method must be one of {METHODS} or 'forward/backward' (two lowering names: "
            f"values from the first, derivatives from the second), got {method!r}"
        )
    if method == "auto":
        return
    for part in parts:
        reason = lowering.LOWERINGS[part].refusal(spec, tuple(weight_shape))
        if reason is not None:
            raise ValueError(reason)


def validate(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    b_shape: Sequence[int] | None,
    spec: ConvTransposeSpec,
    *,
    framework: str | None = None,
    names: tuple[str, str, str, str] = ("input", "weight", "bias", "the crop"),
) -> None:
    """Raises ``ValueError`` unless the arrays fit the spec.

    Front-ends pass their ``framework`` and its parameter names for the input, weight,
    bias and padding, so the message speaks the user's convention.
    """
    xn, wn, bn, pn = names
    prefix = f"{framework}: " if framework else ""
    n = spec.ndim
    if len(x_shape) != n + 2:
        raise ValueError(
            f"{prefix}{xn} must have {n + 2} dimensions (batch, channels and {n} spatial) for "
            f"a {n}-D layer, got shape {tuple(x_shape)}"
        )
    if len(w_shape) != n + 2:
        raise ValueError(
            f"{prefix}{wn} must be {n + 2}-D (in_channels, out_channels // groups, "
            f"*kernel_size), got shape {tuple(w_shape)}"
        )
    c_in = x_shape[spec.channel_axis]
    if c_in % spec.groups:
        raise ValueError(f"{prefix}groups={spec.groups} must divide the {xn} channels ({c_in})")
    if w_shape[0] != c_in:
        raise ValueError(
            f"{prefix}{wn}.shape[0] ({w_shape[0]}) must equal the {xn} channels ({c_in})"
        )
    if any(k < 1 for k in w_shape[2:]) or w_shape[1] < 1:
        raise ValueError(f"{prefix}{wn} shape {tuple(w_shape)} has an empty axis")
    spatial = tuple(x_shape[a] for a in spec.spatial_axes)
    if any(m < 1 for m in spatial) or x_shape[0] < 0:
        raise ValueError(f"{prefix}{xn} shape {tuple(x_shape)} has an empty spatial axis")
    c_out = w_shape[1] * spec.groups
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(f"{prefix}{bn} must have shape ({c_out},), got {tuple(b_shape)}")
    out = spec.output_spatial_shape(spatial, w_shape[2:])
    if any(o < 1 for o in out):
        raise ValueError(
            f"{prefix}the output size would be {out} for an {xn} of spatial size {spatial}: "
            f"{pn} is too large (every size must be >= 1)"
        )


def reject_non_array(value: Any, name: str, prefix: str = "") -> None:
    """A ``TypeError`` naming the parameter for what is no array at all: ``None``, Python
    lists and other containers, strings (``prefix``: the operation or framework)."""
    if value is None or isinstance(value, (list, tuple, dict, set, str, bytes)):
        kind = "None" if value is None else f"a {type(value).__name__}"
        hint = "; convert it with jnp.asarray" if isinstance(value, (list, tuple)) else ""
        raise TypeError(
            f"{prefix}{name} must be an array (jax.Array or numpy.ndarray), got {kind}{hint}"
        )


def _check_output_bytes(shape, dtype, preferred_element_type) -> None:
    itemsize = jnp.dtype(preferred_element_type or dtype).itemsize
    size = math.prod(shape) * itemsize
    if size > MAX_OUTPUT_BYTES:
        raise ValueError(
            f"conv_transpose: the output would have shape {tuple(shape)} ({size / 2**40:.3g} "
            f"TiB), more than convt computes ({MAX_OUTPUT_BYTES / 2**40:g} TiB): check the "
            "stride, the padding and the input size"
        )


def _promote(x, w, b) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    arrays = [x, w] if b is None else [x, w, b]
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(f"transposed convolution needs floating-point arrays, got {dtype}")
    return (
        jnp.asarray(x, dtype),
        jnp.asarray(w, dtype),
        None if b is None else jnp.asarray(b, dtype),
    )


def conv_transpose(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
    method: Method = "auto",
) -> jax.Array:
    """Transposed convolution in the canonical spec.

    Args:
      x: ``(N, C_in, *spatial)`` (channels first) or ``(N, *spatial, C_in)``.
      w: ``(C_in, C_out // groups, *kernel)``.
      b: optional ``(C_out,)``.
      spec: a `ConvTransposeSpec` (static).
      precision: passed to ``lax.conv_general_dilated`` (static).
      preferred_element_type: accumulation/output dtype (static).
      method: ``"auto"`` or a lowering name from `LOWERINGS`
        (static). All give the same values; ``"auto"`` picks the fastest measured, and
        on the CPU multiplies bfloat16 and float16 operands in float32 (XLA's CPU GEMM
        is faster there), rounding the result once.

    Returns:
      ``spec.output_shape(x.shape, w.shape)``; the dtype follows JAX's promotion rules.
    """
    if not isinstance(spec, ConvTransposeSpec):
        raise TypeError(
            f"conv_transpose: spec must be a ConvTransposeSpec (e.g. "
            f"ConvTransposeSpec.create(ndim, stride=..., crop=...) or a front-end's to_spec), "
            f"got {type(spec).__name__}"
        )
    for name, value in (("x", x), ("w", w)):
        reject_non_array(value, name, "conv_transpose: ")
    return _conv_transpose(
        x,
        w,
        b,
        spec=spec,
        precision=precision,
        preferred_element_type=preferred_element_type,
        method=method,
    )


@functools.partial(
    jax.jit, static_argnames=("spec", "precision", "preferred_element_type", "method")
)
def _conv_transpose(x, w, b, *, spec, precision, preferred_element_type, method):
    x, w, b = _promote(x, w, b)
    validate(x.shape, w.shape, None if b is None else b.shape, spec)
    _check_output_bytes(spec.output_shape(x.shape, w.shape), x.dtype, preferred_element_type)
    _check_method(method, spec, w.shape)
    if method == "auto":
        y = _auto(
            x, w, spec=spec, precision=precision, preferred_element_type=preferred_element_type
        )
    else:
        y = lowering.lower(method)(x, w, spec, precision, preferred_element_type)
    return _add_bias(y, b, spec)


def _add_bias(y: jax.Array, b: jax.Array | None, spec: ConvTransposeSpec) -> jax.Array:
    """``y`` plus the ``(C_out,)`` bias broadcast along the spec's channel axis."""
    if b is None:
        return y
    shape = [1] * y.ndim
    shape[spec.channel_axis] = -1
    return y + jnp.reshape(b, shape).astype(y.dtype)


@functools.partial(jax.jit, static_argnames=("spec",))
def integer_conv_transpose(x, w, b=None, *, spec: ConvTransposeSpec) -> jax.Array:
    """The transposed convolution of integer arrays, in integer arithmetic (the
    reference lowering; the result has the arrays' integer dtype), for the front-ends
    whose framework computes integers (TensorFlow's ``conv1d_transpose`` and
    ``conv2d_transpose`` on ``int32``). Not differentiable, as there."""
    arrays = [x, w] if b is None else [x, w, b]
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"integer_conv_transpose takes integer arrays, got {dtype}")
    x, w = jnp.asarray(x, dtype), jnp.asarray(w, dtype)
    validate(x.shape, w.shape, None if b is None else jnp.shape(b), spec)
    _check_output_bytes(spec.output_shape(x.shape, w.shape), dtype, None)
    return _add_bias(lowering.lhs_dilated(x, w, spec), b, spec)


class _Choice(NamedTuple):
    method: str
    widen: bool  # compute a 16-bit float layer in float32 (`_widen_on_cpu`)


def _auto(x, w, *, spec, precision, preferred_element_type):
    """``method="auto"``: each platform's choice, made when the program is lowered for
    that platform (`jax.lax.platform_dependent`), so that a program exported or compiled
    ahead of time for a GPU or a TPU from a CPU host gets that platform's lowering. Only
    the branch of the platform being lowered for reaches XLA."""
    choices = {
        platform: _Choice(
            choose_method(spec, w.shape, rules, x.shape),
            rules == "cpu" and _widen_on_cpu(x.dtype, preferred_element_type),
        )
        for platform, rules in auto_rules.PLATFORM_RULES.items()
    }

    def run(choice: _Choice, x, w):
        if not choice.widen:
            return lowering.lower(choice.method)(x, w, spec, precision, preferred_element_type)
        out_dtype = jnp.dtype(preferred_element_type or x.dtype)
        x, w = x.astype(jnp.float32), w.astype(jnp.float32)
        return lowering.lower(choice.method)(x, w, spec, precision, None).astype(out_dtype)

    if len(set(choices.values())) == 1:
        return run(choices["cpu"], x, w)
    branches = {platform: functools.partial(run, choice) for platform, choice in choices.items()}
    return jax.lax.platform_dependent(x, w, default=branches["cpu"], **branches)


def _widen_on_cpu(dtype, preferred_element_type) -> bool:
    """Whether ``"auto"`` computes a 16-bit float layer in float32 on the CPU: XLA's CPU
    backend runs half-precision GEMMs slower than float32 ones and converts every
    element of its half-precision adds and copies (the overlap-adds, the windows), so
    widening the operands once, computing in float32 and rounding the result once is
    faster and no less exact (measurements: docs/benchmarks.md, "Design
    measurements")."""
    half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
    wide = preferred_element_type is None or jnp.dtype(preferred_element_type) == jnp.float32
    return half and wide


__getattr__ = deprecated_attributes(
    "convt.core",
    {
        name: (f"convt.auto:{name}", f"auto's rules and thresholds are in convt.auto ({name})")
        for name in (
            "PLATFORM_RULES",
            "GPU_BACKENDS",
            "COL2IM_LIMIT_BYTES",
            "PHASE_GEMM_LIMIT_BYTES",
        )
    },
)
