"""megengine's ``conv_transpose2d`` and ``conv_transpose3d``.

megengine documents torch's output formula::

    out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1

the canonical spec with crop ``(padding, padding - output_padding)``, and requires
``output_padding < stride``. Weights are ``(C_in, C_out, *k)`` for ``groups == 1`` and
``(groups, C_in // groups, C_out // groups, *k)`` for grouped layers (a 5-D weight for
2-D, 6-D for 3-D); that layout flattens to convt's canonical ``(C_in, C_out // groups,
*k)``. Module biases are ``(1, C_out, 1, ...)``; plain ``(C_out,)`` biases work too.

megengine 1.13's own functional deviates from its documented formula, and convt follows
the formula: with ``output_padding`` it crashes (``'int' object is not subscriptable``)
when the first spatial axis's value is non-zero, ignores the other axes' values when the
first is zero, fails for integer ``stride``/``padding`` together with ``output_padding``,
and rejects ``groups > 1`` together with ``output_padding``. A plain ``(C_out,)`` bias and
unbatched ``(C, *spatial)`` inputs (its modules document them) are accepted here.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt.spec import ConvTransposeSpec

FRAMEWORK = "megengine"
IntOrTuple = int | Sequence[int]
COMPUTE_MODES = ("default", "float32")


def to_spec(
    ndim: int,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> ConvTransposeSpec:
    """The canonical spec for megengine parameters."""
    stride = fe.int_tuple(stride, ndim, "stride", FRAMEWORK)
    padding = fe.int_tuple(padding, ndim, "padding", FRAMEWORK)
    output_padding = fe.int_tuple(output_padding, ndim, "output_padding", FRAMEWORK)
    dilation = fe.int_tuple(dilation, ndim, "dilation", FRAMEWORK)
    groups = fe.check_int(groups, "groups", FRAMEWORK)
    fe.check_at_least(stride, 1, "stride", FRAMEWORK)
    fe.check_at_least(dilation, 1, "dilation", FRAMEWORK)
    fe.check_at_least(padding, 0, "padding", FRAMEWORK)
    fe.check_output_padding(output_padding, stride, dilation, FRAMEWORK, rule="stride")
    return ConvTransposeSpec(stride, dilation, fe.symmetric_crop(padding, output_padding), groups)


def from_spec(spec: ConvTransposeSpec, input_size=None, kernel_size=None) -> dict:
    """megengine parameters for a canonical spec (``output_padding < stride``)."""
    del input_size, kernel_size
    return fe.symmetric_from_spec(spec, FRAMEWORK, lambda stride, dilation: stride)


def canonical_weight(weight: jax.Array, ndim: int, groups: int) -> jax.Array:
    """megengine's weight -> ``(C_in, C_out // groups, *k)``."""
    shape = tuple(jnp.shape(weight))
    if len(shape) == ndim + 3:
        if shape[0] != groups:
            raise ValueError(
                f"megengine: a grouped weight (groups, C_in // groups, C_out // groups, *k) must "
                f"have weight.shape[0] == groups ({groups}), got shape {shape}"
            )
        return jnp.reshape(weight, (shape[0] * shape[1], *shape[2:]))
    if len(shape) == ndim + 2 and groups == 1:
        return weight
    if len(shape) == ndim + 2:
        raise ValueError(
            f"megengine: with groups={groups} the weight must be {ndim + 3}-D (groups, C_in // "
            f"groups, C_out // groups, *k), got shape {shape}"
        )
    raise ValueError(
        f"megengine: weight must be {ndim + 2}-D (C_in, C_out, *k) or {ndim + 3}-D (groups, "
        f"C_in // groups, C_out // groups, *k), got shape {shape}"
    )


def canonical_bias(bias: jax.Array | None, ndim: int) -> jax.Array | None:
    """``(1, C_out, 1, ...)`` or ``(C_out,)`` -> ``(C_out,)``."""
    if bias is None:
        return None
    shape = tuple(jnp.shape(bias))
    if len(shape) == ndim + 2 and shape[0] == 1 and all(s == 1 for s in shape[2:]):
        return jnp.reshape(bias, (shape[1],))
    if len(shape) == 1:
        return bias
    raise ValueError(
        f"megengine: bias must be (1, C_out{', 1' * ndim}) or (C_out,), got shape {shape}"
    )


def _conv_transpose(
    ndim, inp, weight, bias, stride, padding, output_padding, dilation, groups, compute_mode, method
):
    if compute_mode not in COMPUTE_MODES:
        raise ValueError(
            f"megengine: compute_mode must be one of {COMPUTE_MODES}, got {compute_mode!r}"
        )
    unbatched = fe.check_rank(
        inp, ndim, FRAMEWORK, f"conv_transpose{ndim}d", unbatched=True, name="inp"
    )
    spec = to_spec(ndim, stride, padding, output_padding, dilation, groups)
    w = canonical_weight(weight, ndim, spec.groups)
    b = canonical_bias(bias, ndim)
    if compute_mode == "float32":  # accumulate in float32, return the input's dtype
        dtype = jnp.result_type(inp, weight)
        inp, w = jnp.asarray(inp, jnp.float32), jnp.asarray(w, jnp.float32)
        b = None if b is None else jnp.asarray(b, jnp.float32)
        y = fe.call(
            inp,
            w,
            b,
            spec,
            FRAMEWORK,
            unbatched=unbatched,
            method=method,
            names=("inp", "weight", "bias", "padding"),
        )
        return y.astype(dtype)
    return fe.call(
        inp,
        w,
        b,
        spec,
        FRAMEWORK,
        unbatched=unbatched,
        method=method,
        names=("inp", "weight", "bias", "padding"),
    )


def conv_transpose2d(
    inp: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    conv_mode: str = "cross_correlation",
    compute_mode: str = "default",
    *,
    method: str = "auto",
) -> jax.Array:
    """``megengine.functional.conv_transpose2d``.

    Shapes: ``inp (N, C_in, H, W)`` or ``(C_in, H, W)``; ``weight (C_in, C_out, kH, kW)``
    or ``(groups, C_in // groups, C_out // groups, kH, kW)``; ``bias (1, C_out, 1, 1)`` or
    ``(C_out,)``. Only ``conv_mode="cross_correlation"`` exists in megengine.
    """
    if conv_mode != "cross_correlation":
        raise ValueError(
            f"megengine: conv_mode must be 'cross_correlation' (the only mode megengine "
            f"implements), got {conv_mode!r}"
        )
    return _conv_transpose(
        2,
        inp,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        compute_mode,
        method,
    )


def conv_transpose3d(
    inp: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    *,
    method: str = "auto",
) -> jax.Array:
    """``megengine.functional.conv_transpose3d``.

    Shapes: ``inp (N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; ``weight (C_in, C_out, kD,
    kH, kW)`` or ``(groups, C_in // groups, C_out // groups, kD, kH, kW)``; ``bias (1, C_out,
    1, 1, 1)`` or ``(C_out,)``.
    """
    return _conv_transpose(
        3, inp, weight, bias, stride, padding, output_padding, dilation, groups, "default", method
    )
