"""torch's (and R torch's) transposed convolution.

``torch.nn.functional.conv_transpose{1,2,3}d`` and the ``output_size`` argument of
``torch.nn.ConvTranspose{1,2,3}d.forward``. Per spatial axis torch computes::

    out = (in - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1

which is the canonical spec with crop ``(padding, padding - output_padding)``. Weights
are ``(C_in, C_out // groups, *kernel)``, biases ``(C_out,)``, inputs ``(N, C, *spatial)``
or unbatched ``(C, *spatial)``. R torch (``nnf_conv_transpose2d``, ``nn_conv_transpose3d``)
uses the same parameters; its modules document ``padding_mode`` but only ``"zeros"``
works for transposed convolution, so that is all this module accepts.

`from_module` and `from_model` move ``torch.nn.ConvTranspose{1,2,3}d`` modules to JAX:
their parameters (weight and spectral normalisation folded in) and a static layer.
torch is imported only when they are given torch objects.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt._deprecation import deprecated_attributes
from convt.convention import Convention, Option, WeightNorm, calls_by_rank, standard_options
from convt.core import LoweringOptions
from convt.layers import Layer, check_shapes, fold_weight_norm, keeps_weight_norm
from convt.layers import weight_norm as normalised_layer
from convt.spec import ConvTransposeSpec, full_length

__all__ = [
    "CONVENTION",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "ConvTransposeNd",
    "effective_weight",
    "from_model",
    "from_module",
    "from_spec",
    "init",
    "init_weights",
    "to_spec",
]

FRAMEWORK = "torch"
IntOrTuple = int | Sequence[int]


@fe.deprecated_positional("stride", "padding", "output_padding", "groups", "dilation")
def to_spec(
    ndim: int,
    *,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    kernel_size: IntOrTuple | None = None,
    input_size: Sequence[int] | None = None,
    output_size: IntOrTuple | None = None,
    padding_mode: str = "zeros",
) -> ConvTransposeSpec:
    """The canonical spec for torch parameters, without running anything.

    ``output_size`` (as ``ConvTransposeNd.forward`` takes it: the spatial sizes, or
    those led by the batch and channel sizes) replaces ``output_padding``, as in torch;
    it needs ``kernel_size`` and ``input_size`` (spatial sizes).
    """
    args = fe.Arguments(FRAMEWORK, ndim)
    if padding_mode != "zeros":
        raise ValueError(
            f"torch: padding_mode={padding_mode!r} is not supported for transposed "
            "convolution; only 'zeros' is"
        )
    if isinstance(padding, str):
        raise TypeError(
            f"torch: padding must be an int or a tuple of {ndim} ints for a transposed "
            f"convolution, got {padding!r} (string padding exists only for conv{ndim}d)"
        )
    stride = args.ints(stride, "stride")
    padding = args.ints(padding, "padding")
    dilation = args.ints(dilation, "dilation")
    output_padding = args.ints(output_padding, "output_padding")
    groups = args.int(groups, "groups")
    args.at_least(stride, 1, "stride")
    args.at_least(dilation, 1, "dilation")
    args.at_least(padding, 0, "padding")
    if output_size is not None:
        if kernel_size is None or input_size is None:
            raise ValueError("torch: output_size needs kernel_size and input_size to be known")
        kernel = args.ints(kernel_size, "kernel_size")
        output_size = _strip_non_spatial(output_size, ndim, unbatched=False)
        output_padding = _output_padding_for_size(
            output_size,
            input_spatial=tuple(input_size),
            kernel=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
    fe.check_output_padding(output_padding, stride, dilation, FRAMEWORK, rule="max")
    return ConvTransposeSpec(
        stride=stride,
        dilation=dilation,
        crop=fe.symmetric_crop(padding, output_padding),
        groups=groups,
    )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """torch parameters for a canonical spec; raises ``ValueError`` saying why if none exist.

    ``input_size`` and ``kernel_size`` are not needed (torch's crop does not depend on them).
    """
    del input_size, kernel_size
    return fe.symmetric_from_spec(spec, FRAMEWORK, max)


def _output_padding_for_size(
    output_size, *, input_spatial, kernel, stride, padding, dilation
) -> tuple[int, ...]:
    """torch's ``_output_padding``: the ``output_padding`` that gives ``output_size``.

    ``output_size`` holds the spatial sizes. Each size must lie in
    ``[min, min + stride - 1]`` with ``min`` the size that ``output_padding=0`` gives.
    """
    n = len(input_spatial)
    sizes = fe.int_tuple(output_size, n, "output_size", FRAMEWORK, allow_single=False)
    smallest = [
        full_length(i, k, s, d) - 2 * p
        for i, k, s, d, p in zip(input_spatial, kernel, stride, dilation, padding)
    ]
    fe.check_size_range(sizes, smallest, stride, FRAMEWORK, "output_size")
    result = [size - low for size, low in zip(sizes, smallest)]
    return tuple(result)


def _strip_non_spatial(output_size, ndim: int, unbatched: bool):
    """torch's ``_output_padding``: ``output_size`` may lead with the input's non-spatial
    sizes (batch and channels, or channels alone for an unbatched input)."""
    if output_size is None or fe.is_int(output_size):
        return output_size
    sizes = list(output_size)
    non_spatial = 1 if unbatched else 2
    return sizes[non_spatial:] if len(sizes) == ndim + non_spatial else sizes


def _conv_transpose(
    ndim,
    input,
    weight,
    bias,
    *,
    stride,
    padding,
    output_padding,
    groups,
    dilation,
    output_size,
    padding_mode,
    options,
):
    fe.check_arrays(FRAMEWORK, ("input", "weight", "bias"), input, weight, bias)
    unbatched = fe.check_rank(input, ndim, FRAMEWORK, f"conv_transpose{ndim}d", unbatched=True)
    spatial = tuple(jax.numpy.shape(input)[-ndim:])
    kernel = fe.kernel_size_of(weight, ndim, FRAMEWORK, "weight")
    spec = to_spec(
        ndim,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        kernel_size=kernel,
        input_size=spatial,
        output_size=_strip_non_spatial(output_size, ndim, unbatched),
        padding_mode=padding_mode,
    )
    return fe.call(
        input,
        weight,
        bias,
        spec,
        FRAMEWORK,
        unbatched=unbatched,
        options=options,
    )


def conv_transpose1d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    *,
    output_size: IntOrTuple | None = None,
    padding_mode: str = "zeros",
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``torch.nn.functional.conv_transpose1d``.

    Shapes: ``input (N, C_in, L)`` or ``(C_in, L)``, ``weight (C_in, C_out // groups, K)``,
    ``bias (C_out,)`` -> ``(N, C_out, L_out)`` with
    ``L_out = (L - 1) * stride - 2 * padding + dilation * (K - 1) + output_padding + 1``.
    ``output_size`` is ``ConvTranspose1d.forward``'s argument; ``method`` picks the
    lowering (see `conv_transpose()`).
    """
    return _conv_transpose(
        1,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        output_size=output_size,
        padding_mode=padding_mode,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv_transpose2d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    *,
    output_size: IntOrTuple | None = None,
    padding_mode: str = "zeros",
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``torch.nn.functional.conv_transpose2d``.

    Shapes: ``input (N, C_in, H, W)`` or ``(C_in, H, W)``, ``weight (C_in, C_out // groups,
    kH, kW)``, ``bias (C_out,)`` -> ``(N, C_out, H_out, W_out)``, each axis as in
    `conv_transpose1d()`.
    """
    return _conv_transpose(
        2,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        output_size=output_size,
        padding_mode=padding_mode,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def conv_transpose3d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    *,
    output_size: IntOrTuple | None = None,
    padding_mode: str = "zeros",
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``torch.nn.functional.conv_transpose3d``.

    Shapes: ``input (N, C_in, D, H, W)`` or ``(C_in, D, H, W)``, ``weight (C_in,
    C_out // groups, kD, kH, kW)``, ``bias (C_out,)`` -> ``(N, C_out, D_out, H_out, W_out)``.
    """
    return _conv_transpose(
        3,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        output_size=output_size,
        padding_mode=padding_mode,
        options=LoweringOptions(method, precision, preferred_element_type),
    )


def init_weights(
    key: jax.Array,
    *,
    weight_shape: tuple[int, ...],
    groups: int,
    bias: bool,
    dtype: Any = jnp.float32,
) -> dict:
    """``{"weight", "bias"}`` drawn as torch's ``ConvTransposeNd.reset_parameters`` draws
    them for a weight ``(C_in, C_out // groups, *kernel)``: ``kaiming_uniform_(weight,
    a=sqrt(5))`` and a bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in =
    (C_out / groups) * prod(kernel)`` (torch computes the fan from ``weight.size(1)``,
    which for a transposed weight is the output channels per group), so both bounds are
    ``sqrt(groups / (C_out * prod(kernel)))``."""
    c_out_g, kernel = weight_shape[1], weight_shape[2:]
    bound = 1 / math.sqrt(c_out_g * math.prod(kernel))
    w_key, b_key = jax.random.split(key)
    params = {"weight": jax.random.uniform(w_key, tuple(weight_shape), dtype, -bound, bound)}
    if bias:
        params["bias"] = jax.random.uniform(b_key, (c_out_g * groups,), dtype, -bound, bound)
    return params


def init(key: jax.Array, layer: Layer, *, dtype: Any = jnp.float32) -> dict:
    """Canonical parameters for a torch ``layer`` drawn as torch initialises the module
    (`init_weights`)."""
    return init_weights(
        key, weight_shape=layer.weight_shape, groups=layer.groups, bias=layer.bias, dtype=dtype
    )


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("pytorch", "rtorch"),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        *standard_options("stride", "padding", "output_padding", "groups", "dilation"),
        Option(
            "output_size",
            "output_size, as ConvTransposeNd.forward takes it (replaces output_padding)",
            kind="sizes",
        ),
    ),
    summary="torch.nn.functional.conv_transpose{1,2,3}d and R torch's nnf_conv_transpose*",
    layer_call=calls_by_rank({1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}),
    init=init,
    weight_norm=WeightNorm(fold=fold_weight_norm, keeps_rank=True),
)


# ------------------------------------------------------------------ layers


def ConvTransposeNd(  # noqa: N802 - torch's name (torch.nn.modules.conv._ConvTransposeNd)
    ndim: int,
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> Layer:
    """``torch.nn.ConvTranspose{ndim}d(in_channels, out_channels, kernel_size, stride,
    padding, output_padding, groups, bias, dilation, padding_mode)`` as a static
    `convt.layers.Layer`, its arguments checked as torch checks them. Its parameters are
    canonical (torch's own layout): ``weight (C_in, C_out // groups, *kernel)``, ``bias
    (C_out,)``; `init` draws them as torch does, and ``layer(params, x, output_size)``
    computes the module's forward."""
    args = fe.Arguments(FRAMEWORK, ndim)
    ndim = args.int(ndim, "ndim")
    in_channels, out_channels, groups, kernel = check_shapes(
        FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        groups=groups,
        kernel_size=kernel_size,
        ndim=ndim,
    )
    config: dict[str, Any] = dict(
        stride=args.ints(stride, "stride"),
        padding=args.ints(padding, "padding"),
        output_padding=args.ints(output_padding, "output_padding"),
        groups=groups,
        dilation=args.ints(dilation, "dilation"),
    )
    to_spec(ndim, padding_mode=padding_mode, **config)  # the checks torch makes, raised now
    return Layer(
        convention=FRAMEWORK,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel,
        groups=groups,
        bias=bool(bias),
        config=tuple(config.items()),
        output_size_name="output_size",
    )


def ConvTranspose1d(  # noqa: N802 - torch's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> Layer:
    """``torch.nn.ConvTranspose1d`` as a `convt.layers.Layer` (see `ConvTransposeNd`):
    ``layer(params, x (N, C_in, L), output_size=None)``."""
    return ConvTransposeNd(1, **locals())


def ConvTranspose2d(  # noqa: N802 - torch's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> Layer:
    """``torch.nn.ConvTranspose2d`` as a `convt.layers.Layer` (see `ConvTransposeNd`):
    ``layer(params, x (N, C_in, H, W), output_size=None)``."""
    return ConvTransposeNd(2, **locals())


def ConvTranspose3d(  # noqa: N802 - torch's name
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> Layer:
    """``torch.nn.ConvTranspose3d`` as a `convt.layers.Layer` (see `ConvTransposeNd`):
    ``layer(params, x (N, C_in, D, H, W), output_size=None)``."""
    return ConvTransposeNd(3, **locals())


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _ConvTranspose:
    """Deprecated (removed in 0.3): `from_module` returns a `convt.layers.Layer`, and
    `ConvTranspose1d`/`2d`/`3d` build one. A ``torch.nn.ConvTranspose{1,2,3}d``'s
    configuration without channel counts: ``layer(params, x, output_size=None)``."""

    ndim: int
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1

    def __call__(
        self,
        params: dict,
        x: jax.Array,
        output_size: IntOrTuple | None = None,
        *,
        method: str = "auto",
        precision: Any = None,
        preferred_element_type: Any = None,
    ) -> jax.Array:
        return _conv_transpose(
            self.ndim,
            x,
            params["weight"],
            params.get("bias"),
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            groups=self.groups,
            dilation=self.dilation,
            output_size=output_size,
            padding_mode="zeros",
            options=LoweringOptions(method, precision, preferred_element_type),
        )


_ConvTranspose.__name__ = _ConvTranspose.__qualname__ = "ConvTranspose"


__getattr__ = deprecated_attributes(
    "convt.torch",
    {
        "ConvTranspose": (
            "convt.torch:_ConvTranspose",
            "from_module returns a convt.layers.Layer, and convt.torch.ConvTranspose1d/2d/3d "
            "build one",
        )
    },
)


# ------------------------------------------------------------------ torch modules to JAX


def _to_jax(tensor):
    """A torch tensor as a JAX array of the same dtype (bfloat16 included)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return jnp.asarray(tensor.float().numpy(), dtype=jnp.bfloat16)
    return jnp.asarray(tensor.numpy())


def effective_weight(module: Any) -> Any:
    """The weight ``module``'s forward uses, as a torch tensor: ``weight_norm`` (the
    ``weight_g``/``weight_v`` hook and the ``parametrizations.weight.original0/1`` form)
    and ``spectral_norm`` (hook and parametrization; eval mode) folded in exactly as
    torch computes them."""
    import torch
    from torch.nn.utils import parametrize

    def refuse_training(kind: str):
        if module.training:
            raise ValueError(
                f"torch: the module's {kind} updates its power-iteration state in training "
                "mode; call module.eval() before converting it"
            )

    with torch.no_grad():
        if parametrize.is_parametrized(module, "weight"):
            if any("SpectralNorm" in type(p).__name__ for p in module.parametrizations.weight):
                refuse_training("spectral_norm")
            return module.weight
        for hook in module._forward_pre_hooks.values():
            kind = type(hook).__name__
            if getattr(hook, "name", None) != "weight":
                continue
            if kind == "WeightNorm":
                return hook.compute_weight(module)
            if kind == "SpectralNorm":
                refuse_training("spectral_norm")
                return hook.compute_weight(module, do_power_iteration=False)
        return module.weight


def _weight_norm_parts(module):
    """``(g, v, dim)`` of a module's ``weight_norm`` (either of torch's forms; ``dim``
    ``None`` for a norm over the whole weight), or ``None`` without one."""
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(module, "weight"):
        parametrizations = module.parametrizations.weight
        if len(parametrizations) == 1 and type(parametrizations[0]).__name__ == "_WeightNorm":
            dim = parametrizations[0].dim
            return parametrizations.original0, parametrizations.original1, dim
        return None
    for hook in module._forward_pre_hooks.values():
        if type(hook).__name__ == "WeightNorm" and getattr(hook, "name", None) == "weight":
            return module.weight_g, module.weight_v, hook.dim
    return None


def _is_conv_transpose(module) -> bool:
    import torch

    return isinstance(module, torch.nn.modules.conv._ConvTransposeNd)


def from_module(module: Any, *, weight_norm: str = "fold") -> tuple[dict, Layer]:
    """``(params, layer)`` for a ``torch.nn.ConvTranspose{1,2,3}d``.

    ``params`` is ``{"weight", "bias"}`` as JAX arrays (the bias only if the module has
    one), with weight and spectral normalisation folded into the weight
    (`effective_weight`); ``layer`` is the static `convt.layers.Layer` the module's
    constructor arguments build (`ConvTransposeNd`). torch is imported only here, when a
    torch module is passed.

    ``weight_norm="keep"`` keeps a ``weight_norm``'s parameters instead (either form:
    the ``weight_g``/``weight_v`` hook or ``parametrizations.weight.original0/1``):
    ``params`` is then ``{"weight_g", "weight_v", "bias"}`` as torch holds them and the
    layer folds them inside the computation as torch does, so ``jax.grad`` gives the
    gradients with respect to ``g`` and ``v`` torch's autograd gives (fine-tuning a
    weight-normed vocoder in JAX). Modules without ``weight_norm`` are unaffected.
    """
    keep = keeps_weight_norm(weight_norm, FRAMEWORK)
    if not type(module).__module__.startswith("torch"):
        raise TypeError(f"torch: from_module takes a torch.nn module, got {type(module)!r}")
    if not _is_conv_transpose(module):
        raise TypeError(
            f"torch: from_module takes a ConvTranspose1d/2d/3d module, got {type(module).__name__}"
        )
    if module.padding_mode != "zeros":
        raise ValueError(
            f"torch: only padding_mode='zeros' exists for transposed convolution, got "
            f"{module.padding_mode!r}"
        )
    parts = _weight_norm_parts(module) if keep else None
    if parts is None:
        params = {"weight": _to_jax(effective_weight(module))}
    else:
        g, v, _ = parts
        params = {"weight_g": _to_jax(g), "weight_v": _to_jax(v)}
    if module.bias is not None:
        params["bias"] = _to_jax(module.bias)
    layer = ConvTransposeNd(
        len(module.kernel_size),
        module.in_channels,
        module.out_channels,
        tuple(module.kernel_size),
        stride=tuple(module.stride),
        padding=tuple(module.padding),
        output_padding=tuple(module.output_padding),
        groups=module.groups,
        bias=module.bias is not None,
        dilation=tuple(module.dilation),
    )
    if parts is not None:
        layer = normalised_layer(layer, parts[2])
    return params, layer


def from_model(model: Any, *, weight_norm: str = "fold") -> dict[str, tuple[dict, Layer]]:
    """``{path: (params, layer)}`` for every transposed convolution in ``model``, keyed
    as ``model.named_modules()`` names them (``"decoder.up.3"``); ``weight_norm`` as in
    `from_module`."""
    if not hasattr(model, "named_modules"):
        raise TypeError(f"torch: from_model takes a torch.nn.Module, got {type(model)!r}")
    keeps_weight_norm(weight_norm, FRAMEWORK)
    return {
        name: from_module(module, weight_norm=weight_norm)
        for name, module in model.named_modules()
        if _is_conv_transpose(module)
    }
