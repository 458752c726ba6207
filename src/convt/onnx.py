"""ONNX ``ConvTranspose`` (opsets 11 to 22), as onnxruntime computes it or as the spec reads.

Per spatial axis, with ``full = (n - 1) * s + d * (k - 1) + 1`` and ``op`` the
``output_padding``, the output keeps ``out`` positions of the full scatter starting at
``head``; the canonical crop is ``(head, full - head - out)``:

* explicit ``pads`` (``auto_pad="NOTSET"``, ``[x1_begin, x2_begin, ..., x1_end, ...]``):
  ``head = begin``, ``out = full + op - begin - end``; ``"VALID"``: no padding.
* ``"SAME_UPPER"`` / ``"SAME_LOWER"``: ``out = n * s``; ``output_shape``: ``out`` given.
  The total padding ``full + op - out`` is split with the smaller half first for
  ``SAME_UPPER`` and the larger half first otherwise (``NOTSET``, ``SAME_LOWER``).

Where the readings part (onnx/onnx #4527, onnxruntime #11927), ``reading`` picks one:

* ``"onnxruntime"`` (the default, what onnxruntime 1.31 computes): a negative total
  padding is clamped to 0 (so ``SAME`` gives ``full + op`` instead of ``n * s`` when
  ``k_e + op < s``, and an ``output_shape`` beyond ``full + op`` zero-extends at the
  end), and onnxruntime refuses an output whose forward convolution would not give back
  the input, ``(out + pads - k_e) // s + 1 == n`` (so ``output_padding`` must in effect
  be below the stride, and ``output_shape`` at most ``full + s - 1``).
* ``"spec"``: the operator's text: no clamp (negative pads extend), no consistency check.
  ``onnx.reference`` 1.23 agrees with it except with ``output_shape``, where it derives
  no pads for ``NOTSET``/``VALID`` (docs: the ONNX page's table).

Inputs are ``(N, C, *spatial)`` (ONNX is channels-first), weights ``(C, M / group, *k)``
(canonical), biases ``(M,)``. ``from_node`` builds the call from a ``NodeProto``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from convt import _frontend as fe
from convt.convention import Convention, Option, WeightNorm, calls
from convt.core import LoweringOptions
from convt.spec import ConvTransposeSpec, effective_kernel, full_length

__all__ = [
    "CONVENTION",
    "conv_transpose",
    "from_model",
    "from_node",
    "from_spec",
    "module_path",
    "parameter_names",
    "to_spec",
]

FRAMEWORK = "onnx"
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
READINGS = ("onnxruntime", "spec")


def _ints(value: Any, n: int, name: str, default: int) -> tuple[int, ...]:
    """An ONNX ints attribute: absent, or exactly ``n`` values (no broadcasting)."""
    if value is None:
        return (default,) * n
    return fe.int_tuple(_listed(value, name, n), n, name, FRAMEWORK, allow_single=False)


def _listed(value: Any, name: str, n: int) -> list:
    """An ONNX ints attribute as a list; an int (ONNX has no broadcasting) is refused."""
    if fe.is_int(value) or not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(
            f"onnx: {name} must be a list of {n} ints (ONNX attributes have one value per "
            f"axis, no broadcasting), got {value!r}"
        )
    return list(value)


def _split(total: int, auto_pad: str) -> int:
    """The head padding: the smaller half for SAME_UPPER, the larger otherwise."""
    return total // 2 if auto_pad == "SAME_UPPER" else total - total // 2


@fe.deprecated_positional(
    "auto_pad",
    "dilations",
    "group",
    "kernel_shape",
    "output_padding",
    "output_shape",
    "pads",
    "strides",
    "reading",
)
def to_spec(
    ndim: int,
    *,
    auto_pad: str = "NOTSET",
    dilations: Sequence[int] | None = None,
    group: int = 1,
    kernel_shape: Sequence[int] | None = None,
    output_padding: Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    reading: str = "onnxruntime",
    kernel_size: Any = None,
    input_size: Sequence[int] | None = None,
) -> ConvTransposeSpec:
    """The canonical spec for a ``ConvTranspose`` node's attributes.

    Needs the kernel size (``kernel_shape`` or ``kernel_size``) and ``input_size``
    (spatial): ``SAME_*`` and ``output_shape`` depend on both.
    """
    args = fe.Arguments(FRAMEWORK, ndim)
    if reading not in READINGS:
        raise ValueError(f"onnx: reading must be one of {READINGS}, got {reading!r}")
    if auto_pad not in AUTO_PADS:
        raise ValueError(f"onnx: auto_pad must be one of {AUTO_PADS}, got {auto_pad!r}")
    if kernel_shape is not None:
        kernel = _ints(kernel_shape, ndim, "kernel_shape", 1)
        if kernel_size is not None and tuple(kernel) != args.ints(kernel_size, "kernel_size"):
            raise ValueError(
                f"onnx: kernel_shape {tuple(kernel)} does not match the weight's spatial shape "
                f"{tuple(kernel_size)}"
            )
    elif kernel_size is not None:
        kernel = args.ints(kernel_size, "kernel_size")
    else:
        raise ValueError("onnx: the kernel size is needed (kernel_shape or kernel_size)")
    if input_size is None:
        raise ValueError("onnx: input_size (the spatial sizes of X) is needed")
    n_in = args.ints(input_size, "input_size", allow_single=False)
    stride = _ints(strides, ndim, "strides", 1)
    dilation = _ints(dilations, ndim, "dilations", 1)
    adj = _ints(output_padding, ndim, "output_padding", 0)
    group = args.int(group, "group")
    args.at_least(stride, 1, "strides")
    args.at_least(dilation, 1, "dilations")
    args.at_least(adj, 0, "output_padding")
    for a, s, d in zip(adj, stride, dilation):
        if a >= max(s, d):
            raise ValueError(
                f"onnx: output_padding {tuple(adj)} must be below max(strides, dilations) "
                f"on every axis (strides {stride}, dilations {dilation})"
            )
    if pads is not None:
        pad_values = fe.int_tuple(
            _listed(pads, "pads", 2 * ndim), 2 * ndim, "pads", FRAMEWORK, allow_single=False
        )
        args.at_least(pad_values, 0, "pads")
        if auto_pad != "NOTSET" and any(pad_values):
            raise ValueError(f"onnx: pads cannot be given with auto_pad={auto_pad!r}")
        begin, end = pad_values[:ndim], pad_values[ndim:]
    else:
        begin = end = (0,) * ndim
    if output_shape is not None:
        # ONNX's shape inference refuses the N, C-led form onnxruntime's kernel would take
        out = args.ints(list(output_shape), "output_shape", allow_single=False)
        args.at_least(out, 1, "output_shape")
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = tuple(m * s for m, s in zip(n_in, stride))
    else:
        out = None
    crop = []
    for axis in range(ndim):
        full = full_length(n_in[axis], kernel[axis], stride[axis], dilation[axis])
        if out is None:
            head, total = begin[axis], begin[axis] + end[axis]
            size = full + adj[axis] - total
        else:
            total = full + adj[axis] - out[axis]
            if reading == "onnxruntime":
                total = max(0, total)
            head = _split(total, auto_pad)
            size = out[axis] if output_shape is not None else full + adj[axis] - total
        if reading == "onnxruntime":
            _check_consistent(
                axis=axis,
                n=n_in[axis],
                size=size,
                total=total,
                k=kernel[axis],
                s=stride[axis],
                d=dilation[axis],
                adj=adj[axis],
            )
        crop.append((head, full - head - size))
    return ConvTransposeSpec(stride=stride, dilation=dilation, crop=tuple(crop), groups=group)


def _check_consistent(
    *, axis: int, n: int, size: int, total: int, k: int, s: int, d: int, adj: int
) -> None:
    """onnxruntime's check: the forward convolution of the output gives back ``n``."""
    if size < 1 or fe.forward_length(size, total, effective_kernel(k, d), s) != n:
        raise ValueError(
            f"onnx: output size {size} on spatial axis {axis} is inconsistent with the input "
            f"size {n} (onnxruntime needs (out + pads - k_e) // stride + 1 == n: "
            f"output_padding={adj} must be below the stride {s}, and output_shape at most "
            f"full + stride - 1); pass reading='spec' for the specification's reading"
        )


@fe.deprecated_positional("input_size", "kernel_size")
def from_spec(
    spec: ConvTransposeSpec,
    *,
    kernel_size: Sequence[int] | None = None,
    input_size: Sequence[int] | None = None,
) -> dict:
    """ONNX attributes for a spec: explicit ``pads`` and ``output_padding``."""
    del input_size, kernel_size
    fe.require(spec.layout == "channels_first", FRAMEWORK, "ONNX tensors are channels-first")
    begin, end, adj = [], [], []
    for (lo, hi), s in zip(spec.crop, spec.stride):
        fe.require(lo >= 0, FRAMEWORK, f"pads cannot be negative (crop lo={lo} extends)")
        op = max(0, -hi)
        fe.require(
            op < s,
            FRAMEWORK,
            f"crop hi={hi} extends by {op}, but output_padding must be below the stride ({s}) "
            "in onnxruntime",
        )
        begin.append(lo)
        end.append(hi + op)
        adj.append(op)
    params: dict = dict(strides=list(spec.stride), pads=begin + end)
    if any(adj):
        params["output_padding"] = adj
    if any(d != 1 for d in spec.dilation):
        params["dilations"] = list(spec.dilation)
    if spec.groups != 1:
        params["group"] = spec.groups
    return params


def conv_transpose(
    X: jax.Array,
    W: jax.Array,
    B: jax.Array | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: Sequence[int] | None = None,
    group: int = 1,
    kernel_shape: Sequence[int] | None = None,
    output_padding: Sequence[int] | None = None,
    output_shape: Sequence[int] | None = None,
    pads: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    reading: str = "onnxruntime",
    method: str = "auto",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """The ONNX ``ConvTranspose`` operator.

    Shapes: ``X (N, C, D_1, ..., D_n)``, ``W (C, M / group, k_1, ..., k_n)``, ``B (M,)``
    -> ``(N, M, O_1, ..., O_n)``. ``reading``: ``"onnxruntime"`` (default) or ``"spec"``
    (see the module docstring).
    """
    fe.check_arrays(FRAMEWORK, ("X", "W", "B"), X, W, B)
    ndim = jnp.ndim(X) - 2
    if ndim < 1:
        raise ValueError(
            f"onnx: X must have at least 3 dimensions (N x C x D1...Dn), got {jnp.shape(X)}"
        )
    fe.check_rank(X, ndim, FRAMEWORK, "ConvTranspose", unbatched=False, name="X")
    kernel = fe.kernel_size_of(W, ndim, FRAMEWORK, "W")
    spec = to_spec(
        ndim,
        auto_pad=auto_pad,
        dilations=dilations,
        group=group,
        kernel_shape=kernel_shape,
        output_padding=output_padding,
        output_shape=output_shape,
        pads=pads,
        strides=strides,
        reading=reading,
        kernel_size=kernel,
        input_size=fe.spatial_shape(X, ndim),
    )
    return fe.call(
        X,
        W,
        B,
        spec,
        FRAMEWORK,
        options=LoweringOptions(method, precision, preferred_element_type),
        names=("X", "W", "B", "pads"),
    )


def _fold_weight_norm(g: jax.Array, v: jax.Array, kept: tuple[int, ...]) -> jax.Array:
    """Weight norm as torch's exporter writes it in the graph: ``Mul(Div(v, ReduceL2(v,
    axes)), g)``, the norm over every axis but ``kept``."""
    from convt.layers import norm_except

    return v / norm_except(v, kept) * g


CONVENTION = Convention(
    name=FRAMEWORK,
    aliases=("onnxruntime",),
    to_spec=to_spec,
    from_spec=from_spec,
    options=(
        Option("strides", "strides, one per axis", kind="sizes", short="-s"),
        Option("pads", "pads: begins then ends (x1_b x2_b ... x1_e x2_e ...)", kind="sizes"),
        Option("output_padding", "output_padding, one per axis", kind="sizes"),
        Option("output_shape", "output_shape, one per spatial axis", kind="sizes"),
        Option("dilations", "dilations, one per axis", kind="sizes", short="-d"),
        Option("group", "group (default 1)", kind="int", short="-g"),
        Option("auto_pad", "auto_pad", kind="choice", choices=AUTO_PADS),
        Option("reading", "onnxruntime (default) or spec", kind="choice", choices=READINGS),
    ),
    summary="ONNX ConvTranspose (onnxruntime's reading, or the spec's)",
    layer_call=calls(conv_transpose),
    weight_norm=WeightNorm(fold=_fold_weight_norm, keeps_rank=True),
)


# ------------------------------------------------------------------ ONNX models to JAX


_ATTRIBUTES = (
    "auto_pad",
    "dilations",
    "group",
    "kernel_shape",
    "output_padding",
    "output_shape",
    "pads",
    "strides",
)


def _attributes_of(node: Any) -> dict:
    """A ``ConvTranspose`` ``NodeProto``'s attributes as keyword arguments (imports onnx)."""
    from onnx import helper

    if node.op_type != "ConvTranspose":
        raise ValueError(f"onnx: expected a ConvTranspose node, got {node.op_type!r}")
    attrs = {}
    for attribute in node.attribute:
        if attribute.name not in _ATTRIBUTES:
            raise ValueError(f"onnx: unknown ConvTranspose attribute {attribute.name!r}")
        value = helper.get_attribute_value(attribute)
        attrs[attribute.name] = (
            value.decode()
            if isinstance(value, bytes)
            else (list(value) if isinstance(value, Sequence) else value)
        )
    return attrs


def from_node(
    node: Any, initializers: Mapping[str, Any] | Sequence[Any] | None = None, **options: Any
) -> tuple[Callable[..., jax.Array], Any, Any]:
    """``(call, W, B)`` for a ``ConvTranspose`` node: ``call(X, W, B)`` runs it with the
    node's attributes (static), ``W`` and ``B`` come from ``initializers`` (a mapping of
    name to ``TensorProto`` or array, or a graph's ``initializer`` list) when the node's
    inputs name them, else ``None``. ``options`` (``reading``, ``method``, ...) are passed
    on. onnx is imported here only.
    """
    from onnx import numpy_helper

    if initializers is None:
        initializers = {}
    elif not isinstance(initializers, Mapping):
        initializers = {t.name: t for t in initializers}

    def array(name):
        if not name or name not in initializers:
            return None
        value = initializers[name]
        return jnp.asarray(numpy_helper.to_array(value) if hasattr(value, "raw_data") else value)

    inputs = list(node.input) + [""] * (3 - len(node.input))
    call = functools.partial(conv_transpose, **_attributes_of(node), **options)
    return call, array(inputs[1]), array(inputs[2])


def _conv_transpose_nodes(model: Any) -> Iterator[tuple[str, Any, list[str], Any, Any]]:
    """``(name, node, inputs, kept, reader)`` for each ``ConvTranspose`` node: its name
    (the first output's when it has none), ``[X, W, B]`` (``""`` for no bias), the
    weight norm's ``(g, v, kept axes)`` where the graph computes one, and the graph's
    `convt._onnx_graph.Graph` reader."""
    import onnx

    from convt._onnx_graph import Graph

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model = onnx.load(os.fsdecode(model))
    graph = model.graph if hasattr(model, "graph") else model
    reader = Graph(graph)
    for node in graph.node:
        if node.op_type != "ConvTranspose":
            continue
        inputs = list(node.input) + [""] * (3 - len(node.input))
        yield node.name or node.output[0], node, inputs, reader.weight_norm(inputs[1]), reader


def parameter_names(model: Any) -> dict[str, dict[str, str]]:
    """``{node name: {parameter: graph name}}`` for the parameters `from_model` returns:
    the initializers (or computed values) behind ``"weight"`` (or ``"weight_g"`` and
    ``"weight_v"``) and ``"bias"``. torch's exporter keeps the module's parameter names
    there (``"ups.0.bias"``, ``"ups.0.parametrizations.weight.original0"``), so they say
    which torch parameter each came from; see also `module_path`."""
    names = {}
    for name, _, inputs, kept, _ in _conv_transpose_nodes(model):
        found = {"weight_g": kept[0], "weight_v": kept[1]} if kept else {"weight": inputs[1]}
        if inputs[2]:
            found["bias"] = inputs[2]
        names[name] = found
    return names


def module_path(node_name: str) -> str:
    """The torch module path of a node torch's exporter named, as
    ``model.named_modules()`` names it: the scope before the operator, which the exporter
    writes as the full path (``"/ups.0/ConvTranspose"`` -> ``"ups.0"``,
    ``"/decoder/decoder.up/ConvTranspose"`` -> ``"decoder.up"``), or the scopes joined
    where each names one level (``"/decoder/up/ConvTranspose"`` -> ``"decoder.up"``). A
    name without scopes is returned as it is."""
    scopes = [part for part in node_name.split("/") if part][:-1]
    if not scopes:
        return node_name
    if len(scopes) > 1 and not scopes[-1].startswith(scopes[-2] + "."):
        return ".".join(scopes)
    return scopes[-1]


def from_model(model: Any, *, reading: str = "onnxruntime") -> dict[str, tuple[dict, Any]]:
    """``{name: (params, layer)}`` for every ``ConvTranspose`` node of an ONNX model
    (a ``ModelProto``, ``GraphProto``, or a path to a ``.onnx`` file), keyed by the
    node's name (its first output's name when it has none): canonical parameters from
    the graph's initializers and a static `convt.layers.Layer` with the node's
    attributes. onnx is imported here only.

    ``W`` and ``B`` are initializers, or computed in the graph from initializers and
    constants alone (evaluated with numpy: `convt._onnx_graph.OPS`). A weight
    normalised in the graph as torch's exporter writes it, ``Mul(Div(v, ReduceL2(v,
    axes)), g)``, keeps ``g`` and ``v`` as parameters (``{"weight_g", "weight_v",
    "bias"}``, in torch's layouts, with ``layer.weight_norm`` the axes the norm keeps), so
    fine-tuning moves them as torch's weight norm does. The keys are the exporter's node
    names: torch's exporter names a module's nodes by its path (``/ups.0/ConvTranspose``
    for ``ups.0``: `module_path`), and the initializers keep the module's parameter
    names (``ups.0.bias``, ``ups.0.parametrizations.weight.original0``:
    `parameter_names`)."""
    from convt import layers

    found = {}
    for name, node, inputs, kept, reader in _conv_transpose_nodes(model):
        if kept is not None:  # weight norm's g and v stay parameters
            g_name, v_name, weight_norm = kept
            weight = reader.evaluate(v_name, owner=name, role="W")
            weight_g = reader.evaluate(g_name, owner=name, role="W")
        else:
            weight_norm, weight_g = None, None
            weight = reader.evaluate(inputs[1], owner=name, role="W")
        bias = reader.evaluate(inputs[2], owner=name, role="B") if inputs[2] else None
        attrs = _attributes_of(node)
        group = int(attrs.get("group", 1))
        ndim = weight.ndim - 2
        if "kernel_shape" in attrs and tuple(attrs["kernel_shape"]) != weight.shape[2:]:
            raise ValueError(
                f"onnx: node {name!r}: kernel_shape {tuple(attrs['kernel_shape'])} does not "
                f"match W's shape {weight.shape}"
            )
        layer = layers.Layer(
            convention=FRAMEWORK,
            weight_norm=weight_norm,
            in_channels=weight.shape[0],
            out_channels=weight.shape[1] * group,
            kernel_size=tuple(weight.shape[2:]),
            groups=group,
            bias=bias is not None,
            config=tuple((k, layers.frozen(v)) for k, v in {**attrs, "reading": reading}.items()),
        )
        params = layers.canonical_params(FRAMEWORK, weight, bias, ndim=ndim, groups=group)
        if weight_norm is not None:
            params = {"weight_g": jnp.asarray(weight_g), "weight_v": params.pop("weight"), **params}
        found[name] = (params, layer)
    return found
