"""The written interface every framework convention provides, and their registry.

A convention is one framework's way of spelling a transposed convolution. Each
framework module (``convt.torch``, ``convt.paddle``, ...) translates its parameters into
the canonical `ConvTransposeSpec` and nothing else, and describes itself
with one `Convention` named ``CONVENTION``:

* ``to_spec(ndim, *, kernel_size=None, input_size=None, **params)``: the framework's
  parameters (by the framework's names) to the canonical spec. ``kernel_size`` and
  ``input_size`` (spatial sizes) are accepted by every convention; the ones whose crop
  depends on sizes (``output_size``, ``outsize``, ``"SAME"``) need them.
* ``from_spec(spec, *, kernel_size=None, input_size=None)``: the inverse, a dict of the
  framework's parameters, or `NotExpressible` saying why there is none.
* ``weight_to_canonical`` / ``weight_from_canonical``: the framework's weight layout to
  and from ``(C_in, C_out // groups, *kernel)``; ``bias_to_canonical`` /
  ``bias_from_canonical``: its bias to and from ``(C_out,)``.
* ``options``: the parameters the command line takes, named as the framework names them.
* ``layer_call`` and ``init`` (the conventions that have layers): a
  `convt.layers.Layer`'s forward in the framework's front-end, and the framework's
  default initialisation of its parameters.
* ``call_parameters`` (optional): ``from_spec``'s parameters as a call to the
  framework's own function spells them, for ``convt translate`` (TensorFlow's
  ``output_shape`` with the batch and channels around the spatial sizes), as
  `Expression` values where they depend on the call's arrays.
* ``weight_norm`` (the frameworks that have weight normalisation: torch, paddle, and
  ONNX graphs where torch's exporter wrote it): a
  `WeightNorm` record, the weight the framework's ``weight_norm`` computes from ``g``
  and ``v`` with its own formula (paddle's has an epsilon, torch's has none) and the
  shape it gives ``g``.

Each callable is typed below: by a Protocol where every convention has the same
signature (`WeightMap`, `BiasMap`, `LayerInit`, `WeightNormFold`), by a documented
``Callable`` alias where each convention names its own parameters (`ToSpec`,
`FromSpec`, `LayerCall`); the docstrings are the contract.

The CLI, ``convt translate``, the converters and the tests iterate over
`conventions()` instead of knowing each framework. Framework modules are imported
only when a convention is asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from convt.spec import ConvTransposeSpec

if TYPE_CHECKING:
    import jax

    from convt.layers import Layer

__all__ = [
    "MODULES",
    "BiasMap",
    "Convention",
    "Expression",
    "FromSpec",
    "LayerCall",
    "LayerInit",
    "NotExpressible",
    "Option",
    "ToSpec",
    "WeightMap",
    "WeightNorm",
    "WeightNormFold",
    "calls",
    "calls_by_rank",
    "canonical_name",
    "conventions",
    "get",
    "identity_bias",
    "identity_weight",
    "standard_options",
]

# name -> module; the order is the order of the docs and the CLI's help.
MODULES: dict[str, str] = {
    "torch": "convt.torch",
    "chainer": "convt.chainer",
    "chainerx": "convt.chainerx",
    "paddle": "convt.paddle",
    "megengine": "convt.megengine",
    "jax.lax": "convt.lax",
    "onnx": "convt.onnx",
    "tensorflow": "convt.tensorflow",
    "keras": "convt.keras",
    "mindspore": "convt.mindspore",
    "mxnet": "convt.mxnet",
    "flax": "convt.flax",
    "equinox": "convt.equinox",
    "haiku": "convt.haiku",
}

OptionKind = Literal["ints", "sizes", "int", "padding", "pairs", "choice"]


class NotExpressible(ValueError):
    """A canonical spec that a framework's parameters cannot express."""


class Expression(str):
    """A parameter value written as Python source (``"[x.shape[0], 10, 10, 8]"``): its
    ``repr`` is the source itself, so a printed call can be pasted."""

    def __repr__(self) -> str:
        return str(self)


@dataclasses.dataclass(frozen=True)
class Option:
    """One framework parameter as the command line takes it.

    ``kind``: ``"ints"`` (one int, or one per axis: passed as an int or a tuple),
    ``"sizes"`` (one int per axis, always passed as a tuple), ``"int"`` (a single int),
    ``"padding"`` (integers or a padding string such as ``SAME``), ``"pairs"`` (a padding
    string, or ``low high`` integers per axis, passed as pairs), ``"choice"`` (one of
    ``choices``). An option left out is not passed, so the framework's default applies.
    """

    name: str
    help: str
    kind: OptionKind = "ints"
    short: str | None = None
    choices: tuple[str, ...] = ()


# The options most conventions share, spelled the usual way.
STANDARD_OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option("stride", "stride (default 1)", short="-s"),
        Option("padding", "padding (default 0)", short="-p"),
        Option("output_padding", "output_padding (default 0)"),
        Option("dilation", "dilation (default 1)", short="-d"),
        Option("groups", "groups (default 1)", kind="int", short="-g"),
    )
}


def standard_options(*names: str) -> tuple[Option, ...]:
    """The ``STANDARD_OPTIONS`` called ``names``, in that order."""
    return tuple(STANDARD_OPTIONS[name] for name in names)


def identity_weight(weight: Any, *, ndim: int, groups: int) -> Any:
    """For conventions whose weight is already ``(C_in, C_out // groups, *kernel)``."""
    del ndim, groups
    return weight


def identity_bias(bias: Any, *, ndim: int) -> Any:
    """For conventions whose bias is already ``(C_out,)``."""
    del ndim
    return bias


ToSpec = Callable[..., ConvTransposeSpec]
"""``to_spec(ndim, *, kernel_size=None, input_size=None, **params)``: the framework's
parameters (by the framework's names, keyword only; each convention names its own, so
the type says only the return) to the canonical spec of an ``ndim``-D layer.
``kernel_size`` and ``input_size`` (spatial sizes) are accepted by every convention;
those whose crop depends on sizes need them. Raises ``ValueError``/``TypeError`` naming
the framework's parameter."""

FromSpec = Callable[..., dict]
"""``from_spec(spec, *, kernel_size=None, input_size=None)``: the framework's parameters
for a spec (a dict), or `NotExpressible` saying why there are none; ``kernel_size`` and
``input_size`` as in `ToSpec`."""


class WeightMap(Protocol):
    """A weight between the framework's layout and the canonical ``(C_in, C_out //
    groups, *kernel)``, for an ``ndim``-D layer with ``groups``."""

    def __call__(self, weight: Any, *, ndim: int, groups: int) -> Any: ...


class BiasMap(Protocol):
    """A bias between the framework's shape and the canonical ``(C_out,)``."""

    def __call__(self, bias: Any, *, ndim: int) -> Any: ...


LayerCall = Callable[..., "jax.Array"]
"""``layer_call(x, weight, bias, *, ndim, **config)``: a `convt.layers.Layer`'s forward,
the framework's front-end on ``x`` with the weight and bias in the framework's layout,
the layer's ``config`` as keyword arguments (with ``output_size`` where the layer takes
it at call time) and the lowering options ``method``, ``precision``,
``preferred_element_type``."""


class LayerInit(Protocol):
    """Canonical parameters ``{"weight", "bias"}`` for ``layer``, drawn with ``key`` as
    the framework initialises the layer."""

    def __call__(self, key: jax.Array, layer: Layer, *, dtype: Any = ...) -> dict: ...


class WeightNormFold(Protocol):
    """The weight a framework's weight normalisation computes: ``g`` and ``v`` in the
    canonical layout, the norm of ``v`` over every axis but ``kept`` (``(0,)`` for
    ``dim=0``; ``()`` for a norm over the whole weight, a 0-D or size-1 ``g``)."""

    def __call__(self, g: jax.Array, v: jax.Array, kept: tuple[int, ...]) -> jax.Array: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class WeightNorm:
    """A framework's weight normalisation (``torch.nn.utils.weight_norm``,
    ``paddle.nn.utils.weight_norm``): ``fold`` computes the weight from ``g`` and ``v``;
    ``g`` holds the norms of ``v`` over every axis but the kept one, with ``v``'s rank
    (``keeps_rank``, torch's ``(C_in, 1, 1, 1)``) or only the kept axis (paddle's
    ``(C_in,)``), 0-D for a norm over the whole weight."""

    fold: WeightNormFold
    keeps_rank: bool


def calls_by_rank(functions: dict[int, Any]) -> LayerCall:
    """The `LayerCall` of a framework whose front-end has one function per rank
    (``{1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}``)."""

    def layer_call(x: Any, weight: Any, bias: Any, *, ndim: int, **config: Any) -> Any:
        return functions[ndim](x, weight, bias, **config)

    return layer_call


def calls(function: Any) -> LayerCall:
    """The `LayerCall` of a framework whose front-end takes every rank in one function."""

    def layer_call(x: Any, weight: Any, bias: Any, *, ndim: int, **config: Any) -> Any:
        del ndim
        return function(x, weight, bias, **config)

    return layer_call


@dataclasses.dataclass(frozen=True, kw_only=True)
class Convention:
    """What one framework convention provides (see the module docstring)."""

    name: str
    to_spec: ToSpec
    from_spec: FromSpec
    options: tuple[Option, ...]
    aliases: tuple[str, ...] = ()
    weight_to_canonical: WeightMap = identity_weight
    weight_from_canonical: WeightMap = identity_weight
    bias_to_canonical: BiasMap = identity_bias
    bias_from_canonical: BiasMap = identity_bias
    summary: str = ""
    layer_call: LayerCall | None = None
    init: LayerInit | None = None
    weight_norm: WeightNorm | None = None
    call_parameters: Callable[[dict, ConvTransposeSpec], dict] | None = None

    def spec(
        self, ndim: int, params: dict, *, kernel_size=None, input_size=None
    ) -> ConvTransposeSpec:
        """``to_spec`` with the parameters as one dict (as the CLI and tests hold them)."""
        return self.to_spec(ndim, kernel_size=kernel_size, input_size=input_size, **params)


def canonical_name(name: str) -> str:
    """The convention's name for ``name`` or one of its aliases; ``ValueError`` otherwise."""
    if name in MODULES:
        return name
    for convention in conventions():
        if name in convention.aliases:
            return convention.name
    raise ValueError(
        f"unknown convention {name!r}; known: {', '.join(MODULES)} "
        f"(aliases: {', '.join(a for c in conventions() for a in c.aliases)})"
    )


def get(name: str) -> Convention:
    """The `Convention` called ``name`` (or an alias), importing its module."""
    return importlib.import_module(MODULES[canonical_name(name)]).CONVENTION


def conventions() -> tuple[Convention, ...]:
    """Every convention, in the registry's order."""
    return tuple(importlib.import_module(m).CONVENTION for m in MODULES.values())
