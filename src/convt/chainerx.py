"""``chainerx.conv_transpose(x, w, b=None, stride=1, pad=0, outsize=None)``.

N-dimensional, no dilation, no groups. Output length per axis
``l = s (d - 1) + k - 2p``, or ``outsize``; the canonical crop is ``(p, p)`` or
``(p, full - p - l)``. chainerx checks ``outsize`` all-or-nothing: either every axis
satisfies ``d == floor((l + 2p - k) / s) + 1`` or every axis satisfies the
``cover_all`` version ``d == floor((l + 2p - k + s - 1) / s) + 1``; otherwise it raises
("Output dims ... are inconsistent"), and so does convt. While detecting
``cover_all`` axis by axis (up to the first axis that needs it), an axis with
``l + 2p - k < 0`` is rejected outright (its ``GetConvOutDim`` throws "Output size should
be positive"), even where the ``cover_all`` equation would hold; convt follows. Zero
spatial axes are valid (a matrix product).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from convt import _frontend as fe
from convt.convention import Convention, Option, standard_options
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, effective_kernel

__all__ = [
    "CONVENTION",
    "conv_transpose",
    "from_spec",
    "to_spec",
]

FRAMEWORK = "chainerx"
IntOrTuple = int | Sequence[int]


def _conv_out_size(size: int, k: int, s: int, p: int, d: int = 1, cover_all: bool = False) -> int:
    """chainer's ``get_conv_outsize``: the forward convolution's output length."""
    dk = effective_kernel(k, d)
    return (size + 2 * p - dk + (s - 1 if cover_all else 0)) // s + 1


@fe.deprecated_positional("stride", "pad", "outsize")
def to_spec(
    ndim: int,
    *,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    outsize: Sequence[int] | None = None,
    kernel_size: IntOrTuple | None = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for chainerx parameters (``outsize`` needs both sizes)."""
    args = fe.Arguments(FRAMEWORK, ndim)
    stride = args.ints(stride, "stride", allow_single=False)
    pad = args.ints(pad, "pad", allow_single=False)
    args.at_least(stride, 1, "stride")
    args.at_least(pad, 0, "pad")
    spec = ConvTransposeSpec(stride=stride, dilation=(1,) * ndim, crop=tuple((p, p) for p in pad))
    if outsize is None:
        return spec
    if kernel_size is None or input_size is None:
        raise ValueError("chainerx: outsize needs kernel_size and input_size to be known")
    kernel = args.ints(kernel_size, "kernel_size")
    sizes = args.ints(outsize, "outsize", allow_single=False)
    args.at_least(sizes, 0, "outsize")
    axes = list(zip(input_size, sizes, kernel, stride, pad))
    cover_all = False
    for axis, (d, l, k, s, p) in enumerate(axes):  # chainerx's cover_all detection
        if l + 2 * p - k < 0:  # its GetConvOutDim throws here
            raise ValueError(
                f"chainerx: outsize {tuple(sizes)} is inconsistent with the input size "
                f"{tuple(input_size)}: on spatial axis {axis} outsize + 2 * pad - kernel "
                f"= {l + 2 * p - k} is negative (chainerx: 'Output size should be positive')"
            )
        if d != _conv_out_size(l, k, s, p):
            cover_all = True
            break
    if any(
        l + 2 * p - k + (s - 1) * cover_all < 0
        or d != _conv_out_size(l, k, s, p, cover_all=cover_all)
        for d, l, k, s, p in axes
    ):
        raise ValueError(
            f"chainerx: outsize {tuple(sizes)} is inconsistent with the input size "
            f"{tuple(input_size)}: every axis must satisfy d == floor((l + 2p - k) / s) + 1, "
            "or every axis its cover_all version d == floor((l + 2p - k + s - 1) / s) + 1"
        )
    crop = fe.crop_for_size(pad, spec.full_spatial_shape(input_size, kernel), sizes)
    return ConvTransposeSpec(stride=stride, dilation=(1,) * ndim, crop=crop)


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """chainerx parameters for a canonical spec (no dilation, no groups)."""
    fe.require(all(d == 1 for d in spec.dilation), FRAMEWORK, "it has no dilation")
    fe.require(spec.groups == 1, FRAMEWORK, "it has no groups")
    return fe.pad_outsize_from_spec(
        spec,
        FRAMEWORK,
        input_size,
        kernel_size,
        lambda outsize, pad: to_spec(
            spec.ndim,
            stride=spec.stride,
            pad=pad,
            outsize=outsize,
            kernel_size=kernel_size,
            input_size=input_size,
        ),
    )


def conv_transpose(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    outsize: Sequence[int] | None = None,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``chainerx.conv_transpose``.

    Shapes: ``x (n, c_I, d_1, ..., d_N)``, ``w (c_I, c_O, k_1, ..., k_N)``, ``b (c_O,)``
    -> ``(n, c_O, l_1, ..., l_N)`` with ``l = s (d - 1) + k - 2p`` or ``outsize``. ``N``
    may be 0 (``x (n, c_I)``, ``w (c_I, c_O)``), a matrix product, as chainerx's own
    tests use it.
    """
    fe.check_arrays(FRAMEWORK, ("x", "w", "b"), x, w, b)
    ndim = jax.numpy.ndim(x) - 2
    if ndim < 0:
        raise ValueError(
            f"chainerx: x must be (n, c_I, d_1, ..., d_N), got shape {jax.numpy.shape(x)}"
        )
    kernel = fe.kernel_size_of(w, ndim, FRAMEWORK, "w")
    spec = to_spec(
        ndim,
        stride=stride,
        pad=pad,
        outsize=outsize,
        kernel_size=kernel,
        input_size=fe.spatial_shape(x, ndim),
    )
    return fe.call(
        x,
        w,
        b,
        spec,
        FRAMEWORK,
        options=LoweringOptions(method, precision, preferred_element_type),
        names=("x", "w", "b", "pad"),
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        *standard_options("stride"),
        Option("pad", "pad (default 0)", short="-p"),
        Option("outsize", "outsize, one per axis", kind="sizes"),
    ),
    summary="chainerx.conv_transpose (no dilation, no groups)",
)
