"""What `convt.onnx.from_model` reads of a graph beyond its initializers: a tensor that
the graph computes from initializers and constants alone (a weight normalised in the
graph, a reshaped bias), evaluated with numpy, and weight normalisation's pattern,
``Mul(Div(v, ReduceL2(v, axes, keepdims=1)), g)``, recognised so that ``g`` and ``v``
stay parameters. onnx is imported by the caller."""

from __future__ import annotations

from typing import Any

import numpy as np


def _axes(node: Any, values: list, attributes: dict) -> tuple[int, ...] | None:
    if len(values) > 1 and values[1] is not None:
        return tuple(int(a) for a in np.asarray(values[1]).ravel())
    axes = attributes.get("axes")
    return None if axes is None else tuple(int(a) for a in axes)


def _reduce(kind: str):
    def reduce(node, values, attributes):
        axes = _axes(node, values, attributes)
        keepdims = bool(attributes.get("keepdims", 1))
        x = np.asarray(values[0])
        if axes is None or axes == ():
            if attributes.get("noop_with_empty_axes", 0) and axes == ():
                return x
            axes = tuple(range(x.ndim))
        if kind == "l2":
            return np.sqrt(np.sum(np.square(x), axis=axes, keepdims=keepdims))
        if kind == "sumsquare":
            return np.sum(np.square(x), axis=axes, keepdims=keepdims)
        return np.sum(x, axis=axes, keepdims=keepdims)

    return reduce


def _reshape(node, values, attributes):
    shape = [int(s) for s in np.asarray(values[1]).ravel()]
    x = np.asarray(values[0])
    shape = [
        x.shape[i] if s == 0 and not attributes.get("allowzero", 0) else s
        for i, s in enumerate(shape)
    ]
    return x.reshape(shape)


def _unsqueeze(node, values, attributes):
    x = np.asarray(values[0])
    axes = _axes(node, values, attributes) or ()
    rank = x.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = np.expand_dims(x, axis)
    return x


def _squeeze(node, values, attributes):
    axes = _axes(node, values, attributes)
    return np.squeeze(np.asarray(values[0]), axis=axes)


OPS = {
    "Identity": lambda n, v, a: np.asarray(v[0]),
    "Mul": lambda n, v, a: np.multiply(v[0], v[1]),
    "Div": lambda n, v, a: np.divide(v[0], v[1]),
    "Add": lambda n, v, a: np.add(v[0], v[1]),
    "Sub": lambda n, v, a: np.subtract(v[0], v[1]),
    "Neg": lambda n, v, a: np.negative(v[0]),
    "Abs": lambda n, v, a: np.abs(v[0]),
    "Sqrt": lambda n, v, a: np.sqrt(v[0]),
    "Pow": lambda n, v, a: np.power(v[0], v[1]).astype(np.asarray(v[0]).dtype),
    "Transpose": lambda n, v, a: np.transpose(v[0], a.get("perm")),
    "Expand": lambda n, v, a: (
        np.asarray(v[0]) * np.ones([int(s) for s in np.asarray(v[1])], np.asarray(v[0]).dtype)
    ),
    "Reshape": _reshape,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "ReduceL2": _reduce("l2"),
    "ReduceSum": _reduce("sum"),
    "ReduceSumSquare": _reduce("sumsquare"),
}


class Graph:
    """A graph's producers, initializers and constants, for evaluating tensors."""

    def __init__(self, graph: Any):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers = {out: node for node in graph.node for out in node.output}

    def attributes(self, node: Any) -> dict:
        return {a.name: self._helper.get_attribute_value(a) for a in node.attribute}

    def initializer(self, name: str) -> np.ndarray | None:
        tensor = self.initializers.get(name)
        return None if tensor is None else self._numpy_helper.to_array(tensor)

    def evaluate(self, name: str, *, owner: str, role: str) -> np.ndarray:
        """``name``'s value, computed from initializers and constants with numpy; a
        ``ValueError`` naming the operation or the graph input it depends on."""
        value = self.initializer(name)
        if value is not None:
            return value
        node = self.producers.get(name)
        if node is None:
            raise ValueError(
                f"onnx: node {owner!r}: its {role} ({name!r}) depends on the graph's input "
                f"{name!r}; only weights computed from initializers and constants can be "
                "converted"
            )
        attributes = self.attributes(node)
        if node.op_type == "Constant":
            if "value" in attributes:
                return self._numpy_helper.to_array(attributes["value"])
            for key in ("value_float", "value_floats", "value_int", "value_ints"):
                if key in attributes:
                    return np.asarray(attributes[key])
        if node.op_type not in OPS:
            raise ValueError(
                f"onnx: node {owner!r}: its {role} ({name!r}) is computed by a "
                f"{node.op_type} node, which convt does not evaluate (it evaluates "
                f"{', '.join(sorted(OPS))} and Constant)"
            )
        values = [self.evaluate(i, owner=owner, role=role) if i else None for i in node.input]
        return np.asarray(OPS[node.op_type](node, values, attributes))

    def weight_norm(self, name: str) -> tuple[str, str, tuple[int, ...]] | None:
        """``(g, v, kept axes)`` when ``name`` is ``Mul(Div(v, ReduceL2(v, axes,
        keepdims=1)), g)`` (torch's weight norm as its exporter writes it) with ``g`` and
        ``v`` initializers; ``None`` otherwise."""
        mul = self.producers.get(name)
        if mul is None or mul.op_type != "Mul":
            return None
        for div_name, g in (tuple(mul.input), tuple(mul.input)[::-1]):
            div = self.producers.get(div_name)
            if div is None or div.op_type != "Div" or g not in self.initializers:
                continue
            v, norm_name = div.input
            norm = self.producers.get(norm_name)
            if v not in self.initializers or norm is None or norm.op_type != "ReduceL2":
                continue
            if norm.input[0] != v or not self.attributes(norm).get("keepdims", 1):
                continue
            ndim = len(self.initializers[v].dims)
            values = (
                [None, self.evaluate(norm.input[1], owner=name, role="axes")]
                if len(norm.input) > 1
                else [None]
            )
            axes = _axes(norm, values, self.attributes(norm))
            reduced = set(range(ndim)) if axes is None else {a % ndim for a in axes}
            return g, v, tuple(a for a in range(ndim) if a not in reduced)
        return None
