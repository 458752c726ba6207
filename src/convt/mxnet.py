"""MXNet's ``mx.nd.Deconvolution`` (and ``mx.sym.Deconvolution``, ``gluon.nn.Conv2DTranspose``).

Per spatial axis, MXNet documents torch's length ``(n - 1) s - 2 pad + d (k - 1) + 1 +
adj``: the canonical crop ``(pad, pad - adj)``, with ``adj < stride``. With a
``target_shape`` it ignores ``pad`` and ``adj`` and derives them
(``deconvolution-inl.h``, ``InferPad``): ``total = s (n - 1) + k_e - target``,
``adj = total % 2``, ``pad = (total + 1) // 2``, so the odd unit is cropped on the left,
``total`` may not be negative ("too big target shape") and the derived ``adj`` must be
below the stride too (with ``stride=1`` only even ``total`` pass).

Parameters are tuples with one value per spatial axis, ``()`` meaning the default
(1 for ``stride`` and ``dilate``, 0 for ``pad`` and ``adj``, none for ``target_shape``);
``kernel`` must be the weight's spatial shape and ``num_filter`` its output channels.
Weights are ``(C_in, num_filter // num_group, *kernel)``, biases ``(num_filter,)``;
``no_bias`` defaults to ``True``, so a bias is used only with ``no_bias=False``. MXNet
has no 3-D deconvolution with dilation ("Dilate is not supported in 3d deconvolution"),
and its CPU kernels take only the channels-first layouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt.convention import Convention, Option
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, effective_kernel, full_length

__all__ = [
    "CONVENTION",
    "deconvolution",
    "from_spec",
    "to_spec",
]

FRAMEWORK = "mxnet"
LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
AXIS_NAMES = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}


def _tuple(value: Any, ndim: int, name: str, default: int) -> tuple[int, ...]:
    """An MXNet shape parameter: ``()`` for the default, else one value per axis."""
    if value is None or (isinstance(value, Sequence) and len(value) == 0):
        return (default,) * ndim
    if fe.is_int(value):
        raise TypeError(
            f"mxnet: {name} must be a tuple with one value per spatial axis ({ndim}), got {value!r}"
        )
    values = fe.int_tuple(value, ndim, name, FRAMEWORK, allow_single=ndim == 1)
    return values


@fe.deprecated_positional("stride", "dilate", "pad", "adj", "target_shape", "num_group")
def to_spec(
    ndim: int,
    *,
    stride: Sequence[int] = (),
    dilate: Sequence[int] = (),
    pad: Sequence[int] = (),
    adj: Sequence[int] = (),
    target_shape: Sequence[int] = (),
    num_group: int = 1,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for ``Deconvolution``'s parameters (a ``target_shape`` needs the
    kernel and input sizes)."""
    fe.check_ndim(ndim, FRAMEWORK)
    stride_ = _tuple(stride, ndim, "stride", 1)
    dilation = _tuple(dilate, ndim, "dilate", 1)
    fe.check_at_least(stride_, 1, "stride", FRAMEWORK)
    fe.check_at_least(dilation, 1, "dilate", FRAMEWORK)
    num_group = fe.check_int(num_group, "num_group", FRAMEWORK)
    if ndim == 3 and any(d != 1 for d in dilation):
        raise ValueError(
            f"mxnet: dilate must be 1 on every axis in 3-D (MXNet has no dilated 3-D "
            f"deconvolution), got dilate={dilation}"
        )
    targets = _tuple(target_shape, ndim, "target_shape", 0)
    if any(targets):
        if kernel_size is None or input_size is None:
            raise ValueError("mxnet: target_shape needs the kernel and input sizes")
        kernel = fe.int_tuple(kernel_size, ndim, "kernel", FRAMEWORK)
        pads, adjs = [], []
        for n, k, s, d, target in zip(input_size, kernel, stride_, dilation, targets):
            total = s * (n - 1) + effective_kernel(k, d) - target
            if total < 0:
                raise ValueError(
                    f"mxnet: too big target_shape {targets}: at most "
                    f"{full_length(n, k, s, d)} on an axis of {n} inputs with kernel {k}, "
                    f"stride {s}, dilate {d}"
                )
            pads.append((total + 1) // 2)
            adjs.append(total % 2)
    else:
        pads = list(_tuple(pad, ndim, "pad", 0))
        adjs = list(_tuple(adj, ndim, "adj", 0))
        fe.check_at_least(pads, 0, "pad", FRAMEWORK)
        fe.check_at_least(adjs, 0, "adj", FRAMEWORK)
    for axis, (a, s) in enumerate(zip(adjs, stride_)):
        if a >= s:
            where = " (derived from target_shape)" if any(targets) else ""
            raise ValueError(
                f"mxnet: adj({AXIS_NAMES[ndim][axis]}) must be smaller than stride, got "
                f"adj={tuple(adjs)}{where}, stride={stride_}"
            )
    return ConvTransposeSpec(
        stride=stride_, dilation=dilation, crop=fe.symmetric_crop(pads, adjs), groups=num_group
    )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """``Deconvolution`` parameters (``pad`` and ``adj``) for a spec."""
    del input_size, kernel_size
    params = fe.symmetric_from_spec(spec, FRAMEWORK, lambda stride, dilation: stride)
    fe.require(
        spec.ndim != 3 or all(d == 1 for d in spec.dilation),
        FRAMEWORK,
        "MXNet has no dilated 3-D deconvolution",
    )
    as_tuple = lambda v: tuple(v) if isinstance(v, tuple) else (v,) * spec.ndim  # noqa: E731
    return dict(
        stride=as_tuple(params["stride"]),
        dilate=as_tuple(params["dilation"]),
        pad=as_tuple(params["padding"]),
        adj=as_tuple(params["output_padding"]),
        num_group=spec.groups,
    )


def deconvolution(
    data: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    *,
    kernel: Sequence[int],
    stride: Sequence[int] = (),
    dilate: Sequence[int] = (),
    pad: Sequence[int] = (),
    adj: Sequence[int] = (),
    target_shape: Sequence[int] = (),
    num_filter: int,
    num_group: int = 1,
    no_bias: bool = True,
    layout: str | None = None,
    workspace: int | None = None,
    cudnn_tune: str | None = None,
    cudnn_off: bool | None = None,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``mx.nd.Deconvolution``: ``data (N, C_in, *spatial)``, ``weight (C_in, num_filter //
    num_group, *kernel)``, ``bias (num_filter,)`` used only when ``no_bias=False``.

    ``workspace``, ``cudnn_tune`` and ``cudnn_off`` choose MXNet's kernels and are
    accepted and ignored.
    """
    del workspace, cudnn_tune, cudnn_off
    fe.check_arrays(FRAMEWORK, ("data", "weight", "bias"), data, weight, bias)
    ndim = jnp.ndim(weight) - 2
    if ndim not in LAYOUTS:
        raise ValueError(
            f"mxnet: weight must be 3-D to 5-D (C_in, num_filter // num_group, *kernel), got "
            f"shape {tuple(jnp.shape(weight))}"
        )
    if layout not in (None, LAYOUTS[ndim]):
        raise ValueError(
            f"mxnet: layout must be {LAYOUTS[ndim]!r} (or None) for a {ndim}-D deconvolution: "
            f"MXNet's CPU kernels take only channels-first data, got {layout!r}"
        )
    fe.check_rank(data, ndim, FRAMEWORK, "Deconvolution", unbatched=False, name="data")
    kernel = _tuple(kernel, ndim, "kernel", 0)
    if kernel != tuple(jnp.shape(weight)[2:]):
        raise ValueError(
            f"mxnet: kernel {kernel} does not match the weight's spatial shape "
            f"{tuple(jnp.shape(weight)[2:])}"
        )
    num_filter = fe.check_int(num_filter, "num_filter", FRAMEWORK)
    num_group = fe.check_int(num_group, "num_group", FRAMEWORK)
    if jnp.shape(weight)[1] * num_group != num_filter:
        raise ValueError(
            f"mxnet: num_filter ({num_filter}) must equal weight.shape[1] * num_group "
            f"({jnp.shape(weight)[1]} * {num_group})"
        )
    if jnp.shape(data)[1] % num_group:
        raise ValueError(
            f"mxnet: num_group={num_group} must divide the data channels ({jnp.shape(data)[1]})"
        )
    if no_bias:
        if bias is not None:
            raise ValueError(
                "mxnet: a bias was given with no_bias=True (Deconvolution's default); pass "
                "no_bias=False to use it"
            )
    elif bias is None:
        raise ValueError("mxnet: no_bias=False needs a bias (num_filter,)")
    spec = to_spec(
        ndim,
        stride=stride,
        dilate=dilate,
        pad=pad,
        adj=adj,
        target_shape=target_shape,
        num_group=num_group,
        kernel_size=kernel,
        input_size=fe.spatial_shape(data, ndim),
    )
    return fe.call(
        data,
        weight,
        bias,
        spec,
        FRAMEWORK,
        options=LoweringOptions(method, precision, preferred_element_type),
        names=("data", "weight", "bias", "pad"),
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("mx",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("stride", "stride, one value per axis", kind="sizes", short="-s"),
        Option("dilate", "dilate, one value per axis", kind="sizes", short="-d"),
        Option("pad", "pad, one value per axis", kind="sizes", short="-p"),
        Option("adj", "adj, one value per axis", kind="sizes"),
        Option("target_shape", "target_shape (overrides pad and adj)", kind="sizes"),
        Option("num_group", "num_group (default 1)", kind="int", short="-g"),
    ),
    summary="mx.nd.Deconvolution (pad/adj or target_shape; no_bias defaults to True)",
)
