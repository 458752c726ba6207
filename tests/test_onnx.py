"""convt.onnx against onnxruntime's and onnx.reference's recorded outputs
(tests/fixtures/onnx.npz, from python -m tools.fixtures onnx), and from_node."""

import json
from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convt.onnx as co
from helpers import assert_close, randn, reference_conv_transpose

FIXTURE = Path(__file__).parent / "fixtures" / "onnx.npz"


@cache
def load():
    data = np.load(FIXTURE)
    meta = json.loads(str(data["meta"]))
    return meta, {k: data[k] for k in data.files if k != "meta"}


CASES = range(len(load()[0]["cases"]))


@pytest.mark.parametrize(
    "index", [pytest.param(i, marks=[pytest.mark.slow] if i % 2 else []) for i in CASES]
)
def test_matches_onnxruntime(index):
    meta, arrays = load()
    case = meta["cases"][index]
    get = lambda key: arrays.get(f"{index}/{key}")  # noqa: E731
    x, w, b = get("x"), get("w"), get("b")
    y = jax.jit(lambda x, w, b: co.conv_transpose(x, w, b, **case["kwargs"]))(x, w, b)
    assert_close(y, get("y"))
    kwargs = case["kwargs"]
    if case["reference_ok"] and "output_shape" not in kwargs and kwargs.get("group", 1) == 1:
        # onnx.reference reads the specification's text where it derives no pads itself
        # (its grouped ConvTranspose disagrees with onnxruntime and the definition: docs)
        spec_y = co.conv_transpose(x, w, b, **case["kwargs"], reading="spec")
        assert_close(spec_y, get("y_reference"))


@pytest.mark.parametrize("index", range(len(load()[0]["errors"])))
def test_rejects_what_onnxruntime_rejects(index):
    case = load()[0]["errors"][index]
    with pytest.raises((ValueError, TypeError)) as info:
        co.conv_transpose(
            np.ones(case["x"], "float32"), np.ones(case["w"], "float32"), **case["attrs"]
        )
    assert str(info.value).startswith("onnx:"), (str(info.value), case["message"])


def test_fixture_counts():
    meta, _ = load()
    assert len(meta["cases"]) >= 300 and len(meta["errors"]) >= 20
    assert meta["versions"]["onnxruntime"].startswith("1.")


def test_same_where_onnxruntime_and_the_spec_part():
    """k_e + output_padding < stride: the spec (and onnx.reference) give n * s with a
    negative padding; onnxruntime clamps the total padding to 0 and gives full + op."""
    x, w = jnp.ones((1, 1, 4)), jnp.ones((1, 1, 1))
    assert co.conv_transpose(x, w, auto_pad="SAME_UPPER", strides=[3]).shape[-1] == 10
    assert (
        co.conv_transpose(x, w, auto_pad="SAME_UPPER", strides=[3], reading="spec").shape[-1] == 12
    )


def test_gradients_equal_the_definition():
    rng = np.random.default_rng(0)
    x, w, g = randn(rng, (2, 4, 5, 3)), randn(rng, (4, 3, 3, 2)), None
    kw = dict(strides=[2, 1], pads=[1, 0, 0, 1], output_padding=[1, 0], group=2)
    spec = co.to_spec(2, **kw, kernel_size=(3, 2), input_size=(5, 3))
    y, vjp = jax.vjp(lambda x, w: co.conv_transpose(x, w, **kw), x, w)
    assert_close(y, reference_conv_transpose(x, w, spec))
    g = randn(rng, y.shape)
    from helpers import reference_vjp

    for got, want in zip(vjp(g), reference_vjp(x, w, spec, g)):
        assert_close(got, want)


def test_from_node():
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    w, b = randn(rng, (2, 3, 3, 3)), randn(rng, (3,))
    node = helper.make_node(
        "ConvTranspose",
        ["x", "w", "b"],
        ["y"],
        strides=[2, 2],
        pads=[1, 1, 0, 0],
        output_padding=[1, 1],
        auto_pad="NOTSET",
    )
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    call, w_node, b_node = co.from_node(node, inits)
    np.testing.assert_array_equal(w_node, w)
    x = randn(rng, (1, 2, 4, 4))
    spec = co.to_spec(
        2,
        strides=[2, 2],
        pads=[1, 1, 0, 0],
        output_padding=[1, 1],
        kernel_size=(3, 3),
        input_size=(4, 4),
    )
    assert_close(jax.jit(call)(x, w_node, b_node), reference_conv_transpose(x, w, spec, b))
    bad = helper.make_node("Conv", ["x", "w"], ["y"])
    with pytest.raises(ValueError, match="ConvTranspose"):
        co.from_node(bad)
    assert onnx.__version__


def _export(module, x):
    """``module`` exported by torch's (TorchScript) ONNX exporter, as a ModelProto."""
    import io
    import warnings

    import onnx
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.tensor(x),), buffer, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("form", ["hook", "parametrization"])
@pytest.mark.parametrize("dim", [0, None])
def test_weight_norm_in_the_graph_keeps_g_and_v(form, dim):
    """A weight-normed ConvTranspose1d exported by torch leaves ``W = g * v / ||v||`` as
    graph nodes: from_model keeps g and v as parameters, and the layer's output and its
    gradients with respect to them equal torch's."""
    import torch

    torch.manual_seed(0)
    wrap = {
        "hook": torch.nn.utils.weight_norm,
        "parametrization": torch.nn.utils.parametrizations.weight_norm,
    }[form]
    module = wrap(torch.nn.ConvTranspose1d(16, 8, 16, 8, 4), dim=dim)
    x = np.random.default_rng(0).standard_normal((2, 16, 6)).astype(np.float32)
    ((name, (params, layer)),) = co.from_model(_export(module, x)).items()
    assert set(params) == {"weight_g", "weight_v", "bias"}
    assert layer.weight_norm == ((0,) if dim == 0 else ())
    xt = torch.tensor(x)
    y = module(xt)
    cot = np.random.default_rng(1).standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.tensor(cot))
    assert_close(layer(params, x), y.detach().numpy())
    grads = jax.grad(lambda p: jnp.sum(layer(p, x) * cot))(params)
    if form == "hook":
        g, v = module.weight_g, module.weight_v
    else:
        g, v = module.parametrizations.weight.original0, module.parametrizations.weight.original1
    assert_close(grads["weight_g"], g.grad.numpy())
    assert_close(grads["weight_v"], v.grad.numpy())


def test_weight_computed_from_constants_is_evaluated_and_inputs_are_refused():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    w0 = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal((1, 2)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2.0))),
        helper.make_node("Mul", ["w0", "two"], ["w"]),
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.int64([2]))),
        helper.make_node("Reshape", ["b0", "shape"], ["b"]),
        helper.make_node("ConvTranspose", ["X", "w", "b"], ["Y"], name="up", strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w0, "w0"), numpy_helper.from_array(bias, "b0")],
    )
    params, layer = co.from_model(helper.make_model(graph))["up"]
    assert_close(params["weight"], 2 * w0)
    assert_close(params["bias"], bias.ravel())
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    want = reference_conv_transpose(
        x,
        2 * w0,
        co.to_spec(2, strides=[2, 2], kernel_size=(3, 3), input_size=(4, 4)),
        bias.ravel(),
    )
    assert_close(layer(params, x), want)
    graph.node[1].input[1] = "X"  # a weight that depends on the graph's input
    with pytest.raises(ValueError, match="depends on the graph's input 'X'"):
        co.from_model(helper.make_model(graph))
    graph.node[1].op_type = "Softmax"
    with pytest.raises(ValueError, match="Softmax node, which convt does not evaluate"):
        co.from_model(helper.make_model(graph))


def test_node_names_map_back_to_the_torch_model():
    """`parameter_names` and `module_path` lead from `from_model`'s keys back to the
    torch model that was exported: every parameter's initializer holds that module's
    parameter (compared by value), and the node's name gives its module path."""
    import torch

    torch.manual_seed(0)
    wn = torch.nn.utils.parametrizations.weight_norm
    model = torch.nn.Sequential(
        torch.nn.ConvTranspose1d(8, 6, 4, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Sequential(wn(torch.nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1))),
    )
    exported = _export(model, np.ones((1, 8, 5), np.float32))
    found = co.from_model(exported)
    names = co.parameter_names(exported)
    assert set(names) == set(found)
    modules = dict(model.named_modules())
    torch_params = dict(model.named_parameters())
    for node, (params, _) in found.items():
        path = co.module_path(node)
        assert path in modules, (node, path)
        for key, graph_name in names[node].items():
            assert graph_name.startswith(path + "."), (graph_name, path)
            assert_close(params[key], torch_params[graph_name].detach().numpy())
    assert co.module_path("/decoder/up/ConvTranspose") == "decoder.up"
    assert co.module_path("/decoder/decoder.up/ConvTranspose") == "decoder.up"
    assert co.module_path("ConvTranspose_3") == "ConvTranspose_3"
