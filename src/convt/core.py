"""The canonical transposed convolution: validation, lowering choice, bias."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from convt import lowering
from convt.spec import ConvTransposeSpec

Method = str  # "auto", a name from lowering.LOWERINGS, or "forward/backward"
METHODS: tuple[str, ...] = ("auto", *lowering.LOWERINGS)


def choose_method(spec: ConvTransposeSpec, weight_shape: tuple[int, ...], backend: str) -> str:
    """The lowering ``method="auto"`` picks, by backend and shape.

    On the CPU the lhs-dilated form multiplies every inserted zero, so it is chosen
    there only without strides (then it is a plain convolution). Otherwise, by
    measurement (benchmarks/results/RESULTS.md): non-overlapping stamps (``kernel == stride``,
    ``dilation == 1``) are one matrix product; depthwise layers a sum of shifted
    products; 1-D, 3-D and grouped layers the phase decomposition as one GEMM (XLA's CPU
    convolutions are slow there, its grouped weight gradient especially); other 2-D
    layers the phase decomposition as a convolution with a GEMM weight gradient. On GPU
    and TPU XLA maps the lhs-dilated form onto the vendor's backward-data convolution,
    which torch's CUDA path calls too, when its conditions hold (a reversed kernel, unit
    window strides, non-negative padding, no kernel dilation, no feature groups:
    `lowering.lhs_dilated` meets the first three by construction); grouped and dilated
    layers take ``phase`` there (reasoned from XLA's rewriter, not measured: no
    accelerator was available).
    """
    kernel = weight_shape[2:]
    if backend != "cpu":
        # XLA's GPU rewriter turns an lhs-dilated convolution into cuDNN's backward-data
        # convolution only without feature groups or kernel dilation (else it builds
        # the zero-stuffed input); those layers take the phase decomposition's
        # stride-1 forward convolution instead.
        if spec.groups == 1 and all(d == 1 for d in spec.dilation):
            return "lhs_dilated"
        return "phase"
    if all(k == s for k, s in zip(kernel, spec.stride)) and all(d == 1 for d in spec.dilation):
        return "matmul"
    if spec.groups > 1 and weight_shape[0] == spec.groups:
        return "tapsum"
    if all(s == 1 for s in spec.stride):
        return "lhs_dilated"
    if spec.ndim != 2 or spec.groups > 1:
        return "phase_gemm"
    return "phase"


def _check_method(method: str, spec: ConvTransposeSpec, weight_shape, c_in: int) -> None:
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
    kernel = weight_shape[2:]
    if "matmul" in parts and not (
        all(k == s for k, s in zip(kernel, spec.stride)) and all(d == 1 for d in spec.dilation)
    ):
        raise ValueError(
            "method='matmul' needs kernel == stride and dilation == 1 on every axis, got "
            f"kernel {tuple(kernel)}, stride {spec.stride}, dilation {spec.dilation}"
        )
    if "tapsum" in parts and c_in != spec.groups:
        raise ValueError(
            f"method='tapsum' needs a depthwise layer (C_in == groups), got C_in={c_in}, "
            f"groups={spec.groups}"
        )


def validate(
    x_shape,
    w_shape,
    b_shape,
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


def _promote(x, w, b):
    arrays = [x, w] if b is None else [x, w, b]
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(f"transposed convolution needs floating-point arrays, got {dtype}")
    return [jnp.asarray(a, dtype) for a in arrays] + ([None] if b is None else [])


@functools.partial(
    jax.jit, static_argnames=("spec", "precision", "preferred_element_type", "method")
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
        (static). All give the same values; ``"auto"`` picks the fastest measured.

    Returns:
      ``spec.output_shape(x.shape, w.shape)``; the dtype follows JAX's promotion rules.
    """
    if not isinstance(spec, ConvTransposeSpec):
        raise TypeError(f"spec must be a ConvTransposeSpec, got {type(spec).__name__}")
    x, w, b = _promote(x, w, b)
    validate(x.shape, w.shape, None if b is None else b.shape, spec)
    _check_method(method, spec, w.shape, x.shape[spec.channel_axis])
    if method == "auto":
        method = choose_method(spec, w.shape, jax.default_backend())
    y = lowering.lower(method)(x, w, spec, precision, preferred_element_type)
    if b is not None:
        shape = [1] * y.ndim
        shape[spec.channel_axis] = -1
        y = y + b.reshape(shape).astype(y.dtype)
    return y
