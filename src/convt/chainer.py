"""chainer's ``deconvolution_{1,2,3,n}d``.

Per spatial axis chainer computes ``l = s * (d - 1) + k_eff - 2 * p`` with
``k_eff = dilate * (k - 1) + 1`` (``d`` the input length), the canonical spec with crop
``(p, p)``. With ``outsize = l`` it keeps ``l`` outputs from ``p`` on: crop
``(p, full - p - l)``. chainer accepts ``outsize`` when its type check
``get_conv_outsize(l) <= d <= get_conv_outsize(l, cover_all=True)`` holds on every axis
(the docs state only the first equation; chainer itself also accepts the ``cover_all``
sizes, and so does convt). Weights are ``(c_I, c_O // groups, *k)``, biases ``(c_O,)``.

chainer itself does not validate ``pad`` and ``dilate``: a negative pad or a zero
dilation returns arrays of meaningless shape there; convt raises instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from convt import _frontend as fe
from convt import layers
from convt.convention import Convention, Option, calls, standard_options
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, effective_kernel

__all__ = [
    "CONVENTION",
    "Deconvolution2D",
    "deconvolution_1d",
    "deconvolution_2d",
    "deconvolution_3d",
    "deconvolution_nd",
    "DeconvolutionND",
    "from_link",
    "from_model",
    "from_npz",
    "from_spec",
    "init",
    "to_spec",
]

FRAMEWORK = "chainer"
IntOrTuple = int | Sequence[int]


def _outsize_range(d: int, k: int, s: int, p: int, dilate: int = 1) -> tuple[int, int]:
    """The ``outsize`` values chainer accepts on one axis, ``(lowest, highest)``.

    chainer's check ``get_conv_outsize(l) <= d <= get_conv_outsize(l, cover_all=True)``
    solved for ``l``: ``(d - 2) * s + k_eff - 2p + 1 <= l <= d * s + k_eff - 2p - 1``.
    """
    k_eff = effective_kernel(k, dilate)
    return max(1, (d - 2) * s + k_eff - 2 * p + 1), d * s + k_eff - 2 * p - 1


def _check_outsize(
    outsize, input_size, kernel, stride, pad, dilate, framework=FRAMEWORK
) -> tuple[int, ...]:
    """chainer's range check of ``outsize``; returns it as a tuple."""
    n = len(input_size)
    if fe.is_int(outsize) or not isinstance(outsize, Sequence):
        raise TypeError(f"{framework}: outsize must be a tuple of {n} ints, got {outsize!r}")
    sizes = fe.int_tuple(outsize, n, "outsize", framework, allow_single=False)
    for axis, (l, d, k, s, p, dil) in enumerate(
        zip(sizes, input_size, kernel, stride, pad, dilate)
    ):
        lowest, highest = _outsize_range(d, k, s, p, dil)
        if not lowest <= l <= highest:
            raise ValueError(
                f"{framework}: outsize {tuple(sizes)} is inconsistent with the input size {d} "
                f"on spatial axis {axis}: there outsize must lie in [{lowest}, {highest}] "
                f"(kernel {k}, stride {s}, pad {p}, dilate {dil})"
            )
    return sizes


@fe.deprecated_positional("stride", "pad", "outsize", "dilate", "groups")
def to_spec(
    ndim: int,
    *,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    outsize: Sequence[int] | None = None,
    dilate: IntOrTuple = 1,
    groups: int = 1,
    kernel_size: IntOrTuple | None = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for chainer parameters (``outsize`` needs both sizes)."""
    args = fe.Arguments(FRAMEWORK, ndim)
    stride = args.ints(stride, "stride", allow_single=False)
    pad = args.ints(pad, "pad", allow_single=False)
    dilate = args.ints(dilate, "dilate", allow_single=False)
    groups = args.int(groups, "groups")
    args.at_least(stride, 1, "stride")
    args.at_least(dilate, 1, "dilate")
    args.at_least(pad, 0, "pad")
    crop = tuple((p, p) for p in pad)
    if outsize is not None:
        if kernel_size is None or input_size is None:
            raise ValueError("chainer: outsize needs kernel_size and input_size to be known")
        kernel = args.ints(kernel_size, "kernel_size")
        sizes = _check_outsize(outsize, tuple(input_size), kernel, stride, pad, dilate)
        spec = ConvTransposeSpec(stride=stride, dilation=dilate, crop=crop, groups=groups)
        crop = fe.crop_for_size(pad, spec.full_spatial_shape(input_size, kernel), sizes)
    return ConvTransposeSpec(stride=stride, dilation=dilate, crop=crop, groups=groups)


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """chainer parameters for a canonical spec: ``pad`` and, if needed, ``outsize``."""
    params = fe.pad_outsize_from_spec(
        spec,
        FRAMEWORK,
        input_size,
        kernel_size,
        lambda outsize, pad: _check_outsize(
            outsize,
            tuple(input_size or ()),
            tuple(kernel_size or ()),
            spec.stride,
            pad,
            spec.dilation,
        ),
    )
    if any(d != 1 for d in spec.dilation):
        params["dilate"] = fe.per_axis_value(spec.dilation)
    if spec.groups != 1:
        params["groups"] = spec.groups
    return params


def deconvolution_nd(
    x: jax.Array,
    W: jax.Array,
    b: jax.Array | None = None,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    outsize: Sequence[int] | None = None,
    dilate: IntOrTuple = 1,
    groups: int = 1,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``chainer.functions.deconvolution_nd``.

    Shapes: ``x (n, c_I, d_1, ..., d_N)``, ``W (c_I, c_O // groups, k_1, ..., k_N)``,
    ``b (c_O,)`` -> ``(n, c_O, l_1, ..., l_N)``, ``l = s (d - 1) + k_eff - 2p`` or
    ``outsize``. ``N`` may be 0 (``x (n, c_I)``, ``W (c_I, c_O // groups)``): a matrix
    product, as in chainer.
    """
    ndim = jax.numpy.ndim(x) - 2
    if ndim < 0:
        raise ValueError(
            f"chainer: x must have a batch and a channel axis, got shape {jax.numpy.shape(x)}"
        )
    return _deconvolution(
        ndim,
        "deconvolution_nd",
        x,
        W,
        b,
        stride=stride,
        pad=pad,
        outsize=outsize,
        dilate=dilate,
        groups=groups,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def _deconvolution(ndim, function, x, W, b, *, options, **params):
    fe.check_arrays(FRAMEWORK, ("x", "W", "b"), x, W, b)
    fe.check_rank(x, ndim, FRAMEWORK, function, unbatched=False, name="x")
    kernel = fe.kernel_size_of(W, ndim, FRAMEWORK, "W")
    spec = to_spec(ndim, **params, kernel_size=kernel, input_size=fe.spatial_shape(x, ndim))
    return fe.call(x, W, b, spec, FRAMEWORK, names=("x", "W", "b", "pad"), options=options)


def deconvolution_1d(
    x: jax.Array,
    W: jax.Array,
    b: jax.Array | None = None,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    outsize: Sequence[int] | None = None,
    dilate: IntOrTuple = 1,
    groups: int = 1,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``chainer.functions.deconvolution_1d``: `deconvolution_nd()` on ``(n, c_I, d)``."""
    return _deconvolution(
        1,
        "deconvolution_1d",
        x,
        W,
        b,
        stride=stride,
        pad=pad,
        outsize=outsize,
        dilate=dilate,
        groups=groups,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def deconvolution_2d(
    x: jax.Array,
    W: jax.Array,
    b: jax.Array | None = None,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    outsize: Sequence[int] | None = None,
    *,
    dilate: IntOrTuple = 1,
    groups: int = 1,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``chainer.functions.deconvolution_2d`` (``dilate``, ``groups`` keyword-only)."""
    return _deconvolution(
        2,
        "deconvolution_2d",
        x,
        W,
        b,
        stride=stride,
        pad=pad,
        outsize=outsize,
        dilate=dilate,
        groups=groups,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def deconvolution_3d(
    x: jax.Array,
    W: jax.Array,
    b: jax.Array | None = None,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    outsize: Sequence[int] | None = None,
    dilate: IntOrTuple = 1,
    groups: int = 1,
    *,
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``chainer.functions.deconvolution_3d``: `deconvolution_nd()` on 3 spatial axes."""
    return _deconvolution(
        3,
        "deconvolution_3d",
        x,
        W,
        b,
        stride=stride,
        pad=pad,
        outsize=outsize,
        dilate=dilate,
        groups=groups,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def init(key: jax.Array, layer: layers.Layer, *, dtype: Any = jnp.float32) -> dict:
    """Parameters drawn as chainer initialises a deconvolution link: the weight from
    ``LeCunNormal``, ``N(0, 1 / fan_in)`` with ``fan_in = (c_O / groups) prod(ksize)``
    (chainer's fans of the ``(c_I, c_O / groups, *k)`` weight), the bias zeros."""
    std = 1 / math.sqrt(math.prod(layer.weight_shape[1:]))
    return layers.drawn_params(
        key, layer, weight_init=("normal", std), bias_init=("zeros", 0.0), dtype=dtype
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        *standard_options("stride"),
        Option("pad", "pad (default 0)", short="-p"),
        Option("outsize", "outsize, one per axis", kind="sizes"),
        Option("dilate", "dilate (default 1)", short="-d"),
        *standard_options("groups"),
    ),
    summary="chainer.functions.deconvolution_{1,2,3,n}d",
    layer_call=calls(deconvolution_nd),
    init=init,
)


# ------------------------------------------------------------------ chainer links to JAX


def DeconvolutionND(  # noqa: N802 - chainer's name
    ndim: int,
    in_channels: int,
    out_channels: int,
    ksize: IntOrTuple,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    nobias: bool = False,
    outsize: Sequence[int] | None = None,
    initialW: Any = None,  # noqa: N803 - chainer's name
    initial_bias: Any = None,
    dilate: IntOrTuple = 1,
    groups: int = 1,
) -> layers.Layer:
    """``chainer.links.DeconvolutionND(ndim, in_channels, out_channels, ksize, stride=1,
    pad=0, nobias=False, outsize=None, initialW=None, initial_bias=None, dilate=1,
    groups=1)`` as a `convt.layers.Layer` (``in_channels`` and ``ksize`` given; the
    parameters come from a converter or `init`, so ``initialW`` and ``initial_bias`` must
    be ``None``)."""
    args = fe.Arguments(FRAMEWORK, ndim)
    ndim = args.int(ndim, "ndim", at_least=0)
    if initialW is not None or initial_bias is not None:
        raise TypeError(
            "chainer: initialW and initial_bias must be None here: pass the arrays as the "
            "layer's params, or draw chainer's defaults with convt.chainer.init"
        )
    if in_channels is None or ksize is None:
        raise TypeError("chainer: in_channels and ksize must be given (no lazy shapes)")
    in_channels, out_channels, groups, kernel = layers.check_shapes(
        FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        kernel_size=ksize,
        ndim=ndim,
        kernel_name="ksize",
    )
    if outsize is not None and all(v is None for v in outsize):
        outsize = None  # Deconvolution2D stores (None, None) for "not given"
    config: dict[str, Any] = dict(
        stride=args.ints(stride, "stride"),
        pad=args.ints(pad, "pad"),
        outsize=layers.frozen(outsize),
        dilate=args.ints(dilate, "dilate"),
        groups=groups,
    )
    to_spec(ndim, **{k: v for k, v in config.items() if k != "outsize"})  # chainer's checks
    return layers.Layer(
        convention=FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel,
        groups=groups,
        bias=not nobias,
        config=tuple(config.items()),
    )


def Deconvolution2D(  # noqa: N802 - chainer's name
    in_channels: int,
    out_channels: int,
    ksize: IntOrTuple,
    stride: IntOrTuple = 1,
    pad: IntOrTuple = 0,
    nobias: bool = False,
    outsize: Sequence[int] | None = None,
    initialW: Any = None,  # noqa: N803 - chainer's name
    initial_bias: Any = None,
    *,
    dilate: IntOrTuple = 1,
    groups: int = 1,
) -> layers.Layer:
    """``chainer.links.Deconvolution2D`` as a `convt.layers.Layer` (see
    `DeconvolutionND`)."""
    return DeconvolutionND(
        2,
        in_channels,
        out_channels,
        ksize,
        stride,
        pad,
        nobias,
        outsize,
        initialW,
        initial_bias,
        dilate=dilate,
        groups=groups,
    )


def from_link(link: Any) -> tuple[dict, layers.Layer]:
    """``(params, layer)`` for a ``chainer.links.Deconvolution2D`` or
    ``DeconvolutionND`` (``Deconvolution1D``/``3D``) with initialised parameters.
    chainer is not imported: the link's attributes are read."""
    kind = type(link).__name__
    if kind not in LINK_CLASSES:
        raise TypeError(f"chainer: from_link takes a deconvolution link, got {kind}")
    if link.W.array is None:
        raise ValueError("chainer: the link's W is not initialised yet (run it once)")
    hooks = getattr(link, "local_link_hooks", None) or {}
    if hooks:  # SpectralNormalization & co. compute the forward's weight from W each call
        raise ValueError(
            f"chainer: the link has link hooks ({', '.join(hooks)}), which change the weight "
            "its forward uses; from_link reads W as stored. Fold the hook into W and remove "
            "it (link.delete_hook(name)) before converting"
        )
    weight = np.asarray(link.W.array)
    ndim = weight.ndim - 2
    outsize = link.outsize
    layer = DeconvolutionND(
        ndim,
        weight.shape[0],
        link.out_channels,
        weight.shape[2:],
        stride=layers.frozen(link.stride),
        pad=layers.frozen(link.pad),
        nobias=link.b is None,
        outsize=None if outsize is None else tuple(outsize),
        dilate=layers.frozen(link.dilate),
        groups=link.groups,
    )
    bias = None if link.b is None else np.asarray(link.b.array)
    return layers.canonical_params(FRAMEWORK, weight, bias, ndim=ndim, groups=layer.groups), layer


LINK_CLASSES = ("Deconvolution2D", "DeconvolutionND", "Deconvolution1D", "Deconvolution3D")


def from_model(chain: Any) -> dict[str, tuple[dict, layers.Layer]]:
    """``{path: (params, layer)}`` for every deconvolution link in a chainer ``Chain``,
    keyed by the link's path without the leading ``/`` (``"dec/up1"``, as
    ``save_npz`` names it; the chain itself is ``""``)."""
    if not hasattr(chain, "namedlinks"):
        raise TypeError(f"chainer: from_model takes a chainer Link, got {type(chain)!r}")
    return {
        name.lstrip("/"): from_link(link)
        for name, link in chain.namedlinks()
        if type(link).__name__ in LINK_CLASSES
    }


def from_npz(
    file: Any, links: Mapping[str, layers.Layer], path: str = ""
) -> dict[str, dict[str, jax.Array]]:
    """Canonical parameters from a ``chainer.serializers.save_npz`` file (a path or
    file object) for the deconvolution links ``links`` (``{link path: layer}``, paths as
    `from_model` names them): ``{link path: params}`` from the ``<path><link>/W`` and
    ``/b`` entries. ``path`` is the prefix of the saved object inside the file, as
    chainer's ``load_npz(path=...)`` takes it (a trainer snapshot's model:
    ``"updater/model:main/"``). numpy only: chainer is not needed."""
    with np.load(file) as npz:
        out = {}
        for name, layer in links.items():
            key = f"{path}{name}/"
            if key + "W" not in npz:
                raise KeyError(
                    f"chainer: {file!r} has no {key}W (entries: {', '.join(sorted(npz)[:8])} ...)"
                )
            bias = None
            if layer.bias:
                if key + "b" not in npz:
                    raise KeyError(f"chainer: {file!r} has no {key}b (the layer has a bias)")
                bias = npz[key + "b"]
            params = layers.canonical_params(
                FRAMEWORK, npz[key + "W"], bias, ndim=layer.ndim, groups=layer.groups
            )
            if params["weight"].shape != layer.weight_shape:
                raise ValueError(
                    f"chainer: {key}W has shape {params['weight'].shape}, the layer needs "
                    f"{layer.weight_shape}"
                )
            out[name] = params
    return out
