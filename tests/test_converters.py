"""Layer converters and initialisers against the real frameworks.

Fixtures (``python -m tools.fixtures layers``): random layers built by paddle, chainer,
megengine and Keras with their own classes (paddle's with ``weight_norm`` too), their
outputs and gradients with respect to the input and every stored parameter, and the
quantiles of freshly initialised layers. ONNX models are built here with onnx and
checked against onnxruntime's outputs (``onnx.npz``).
"""

import dataclasses
import functools
import io
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convt
from convt import layers
from helpers import assert_close

FIXTURES = Path(__file__).parent / "fixtures"


@functools.cache
def load(name):
    data = np.load(FIXTURES / f"layers_{name}.npz")
    return json.loads(str(data["meta"])), {k: data[k] for k in data.files if k != "meta"}


def cases(name):
    return [
        pytest.param(i, id=f"{name}-{i}", marks=[pytest.mark.slow] if i % 2 else [])
        for i in range(len(load(name)[0]["cases"]))
    ]


def stand_in(class_name, **attributes):
    """An object of a class called ``class_name`` with ``attributes`` (callables become
    methods): what a converter reads of the framework's own object."""
    methods = {k: staticmethod(v) for k, v in attributes.items() if callable(v)}
    obj = type(class_name, (), methods)()
    for key, value in attributes.items():
        if not callable(value):
            setattr(obj, key, value)
    return obj


def check_against(layer, to_params, stored, arrays, index, call=None):
    """``layer(to_params(stored), x)`` and its gradients with respect to ``x`` and every
    stored array, against the framework's."""
    get = lambda key: arrays[f"{index}/{key}"]  # noqa: E731
    x, cotangent = get("x"), get("g")

    @jax.jit
    def run(stored, x):
        y, vjp = jax.vjp(lambda s, x: layer(to_params(s), x, **(call or {})), stored, x)
        return y, vjp(cotangent)

    y, (grads, gx) = run(stored, x)
    assert_close(y, get("y"))
    assert_close(gx, get("gx"))
    return grads


# ---------------------------------------------------------------------------- paddle


class WeightNorm:  # what paddle.nn.utils.weight_norm registers (its class name and fields)
    name = "weight"

    def __init__(self, dim):
        self.dim = dim


@pytest.mark.parametrize("index", cases("paddle"))
def test_paddle_layer(index):
    meta, arrays = load("paddle")
    case = meta["cases"][index]
    ndim = len(case["args"]["kernel_size"])
    layer = getattr(convt.paddle, case["cls"])(**case["args"])
    state = {k: arrays[f"{index}/state/{k}"] for k in case["state"]}
    dim = case["weight_norm_dim"]
    dim = 0 if dim == "none" else dim
    attrs = dict(case["attrs"])
    has_bias = attrs.pop("has_bias")
    hooks = {} if case["weight_norm_dim"] == "none" else {0: WeightNorm(-1 if dim is None else dim)}
    paddle_layer = stand_in(
        case["cls"],
        **attrs,
        bias=object() if has_bias else None,
        _forward_pre_hooks=hooks,
        state_dict=lambda: state,
    )
    params, converted = convt.paddle.from_layer(paddle_layer)
    assert converted == layer and hash(converted) == hash(layer)
    assert converted.ndim == ndim
    grads = check_against(
        layer,
        lambda s: convt.paddle.from_state_dict(s, layer, weight_norm_dim=dim),
        state,
        arrays,
        index,
        call=case["call"],
    )
    for key in state:
        assert_close(grads[key], arrays[f"{index}/grad/{key}"])
    assert_close(layer(params, arrays[f"{index}/x"], **case["call"]), arrays[f"{index}/y"])
    if "weight_g" in state:
        _check_kept_weight_norm(paddle_layer, layer, state, arrays, index, case["call"])


def _check_kept_weight_norm(paddle_layer, layer, state, arrays, index, call):
    """``weight_norm="keep"``: ``g`` and ``v`` as paddle holds them, folded in the layer
    with paddle's formula; gradients with respect to them paddle's."""
    params, kept = convt.paddle.from_layer(paddle_layer, weight_norm="keep")
    assert kept.weight_norm is not None and kept == dataclasses.replace(
        layer, weight_norm=kept.weight_norm
    )
    assert {k: v.shape for k, v in params.items()} == kept.param_shapes
    for key, value in params.items():
        np.testing.assert_array_equal(value, state[key])
    grads = check_against(
        kept, lambda s: convt.paddle.from_state_dict(s, kept), state, arrays, index, call=call
    )
    for key in state:
        assert_close(grads[key], arrays[f"{index}/grad/{key}"])


def test_paddle_fixtures_cover_weight_norm():
    meta, _ = load("paddle")
    dims = [c["weight_norm_dim"] for c in meta["cases"]]
    assert {0, 1, None} <= set(dims) and dims.count("none") >= 20
    assert any(c["call"] for c in meta["cases"])  # output_size at call time


def test_paddle_from_model_and_errors():
    meta, arrays = load("paddle")
    case = next(c for c in meta["cases"] if c["weight_norm_dim"] == "none")
    index = meta["cases"].index(case)
    state = {k: arrays[f"{index}/state/{k}"] for k in case["state"]}
    attrs = dict(case["attrs"])
    has_bias = attrs.pop("has_bias")
    up = stand_in(
        case["cls"], **attrs, bias=object() if has_bias else None, state_dict=lambda: state
    )
    model = stand_in(
        "Decoder", named_sublayers=lambda include_self: [("", None), ("up", up), ("act", object())]
    )
    found = convt.paddle.from_model(model)
    assert list(found) == ["up"]
    # keep leaves a layer without weight_norm as it is
    assert convt.paddle.from_model(model, weight_norm="keep")["up"][1] == found["up"][1]
    with pytest.raises(ValueError, match="'fold' or 'keep'"):
        convt.paddle.from_model(model, weight_norm="kept")
    with pytest.raises(TypeError, match="Conv1DTranspose/2D/3D"):
        convt.paddle.from_layer(stand_in("Conv2D", _kernel_size=[3, 3]))
    layer = convt.paddle.Conv2DTranspose(4, 6, 3)
    with pytest.raises(KeyError, match="weight"):
        convt.paddle.from_state_dict({}, layer)
    with pytest.raises(ValueError, match="spectral_norm"):
        convt.paddle.from_state_dict({"weight_orig": 0}, layer)
    with pytest.raises(ValueError, match="needs"):
        convt.paddle.from_state_dict({"weight": np.ones((4, 6, 2, 2)), "bias": np.ones(6)}, layer)
    with pytest.raises(ValueError, match="groups"):
        convt.paddle.Conv2DTranspose(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="padding"):
        convt.paddle.Conv2DTranspose(4, 6, 3, padding="full")


# ---------------------------------------------------------------------------- chainer


def _chainer_link(case, arrays, index):
    """What a chainer deconvolution link holds (``Deconvolution2D`` pairs its stride,
    pad and dilate, and stores ``(None, None)`` without an outsize;
    ``DeconvolutionND`` keeps stride and pad as given)."""
    args = dict(case["args"])
    ndim = args.pop("ndim", 2)
    pair = (
        (lambda v: [v] * ndim if isinstance(v, int) else v)
        if case["cls"] == "Deconvolution2D"
        else (lambda v: v)
    )
    weight = arrays[f"{index}/W"]
    bias = arrays.get(f"{index}/b")
    array = lambda a: stand_in("Parameter", array=a, shape=a.shape)  # noqa: E731
    return stand_in(
        case["cls"],
        W=array(weight),
        b=None if bias is None else array(bias),
        out_channels=args["out_channels"],
        stride=pair(args["stride"]),
        pad=pair(args["pad"]),
        outsize=args.get("outsize", (None, None) if case["cls"] == "Deconvolution2D" else None),
        dilate=pair(args["dilate"]),
        groups=args["groups"],
    )


@pytest.mark.parametrize("index", cases("chainer"))
def test_chainer_link(index):
    meta, arrays = load("chainer")
    case = meta["cases"][index]
    layer = getattr(convt.chainer, case["cls"])(**case["args"])
    params = convt.chainer.from_npz(io.BytesIO(arrays[f"{index}/npz"].tobytes()), {"up": layer})[
        "up"
    ]
    assert set(params) == ({"weight", "bias"} if layer.bias else {"weight"})
    link_params, link_layer = convt.chainer.from_link(_chainer_link(case, arrays, index))
    assert link_layer == layer
    for key in params:
        np.testing.assert_array_equal(params[key], link_params[key])
    grads = check_against(layer, lambda p: p, params, arrays, index)
    assert_close(grads["weight"], arrays[f"{index}/gW"])
    if layer.bias:
        assert_close(grads["bias"], arrays[f"{index}/gb"])


def test_chainer_npz_paths_and_errors(tmp_path):
    meta, arrays = load("chainer")
    layer = getattr(convt.chainer, meta["cases"][0]["cls"])(**meta["cases"][0]["args"])
    path = tmp_path / "snapshot.npz"
    path.write_bytes(arrays["0/npz"].tobytes())
    with np.load(path) as npz:  # a trainer snapshot holds the model under a prefix
        np.savez(tmp_path / "trainer.npz", **{f"updater/model:main/{k}": npz[k] for k in npz})
    a = convt.chainer.from_npz(path, {"up": layer})
    b = convt.chainer.from_npz(tmp_path / "trainer.npz", {"up": layer}, path="updater/model:main/")
    np.testing.assert_array_equal(a["up"]["weight"], b["up"]["weight"])
    with pytest.raises(KeyError, match="up2/W"):
        convt.chainer.from_npz(path, {"up2": layer})
    with pytest.raises(TypeError, match="initialW"):
        convt.chainer.Deconvolution2D(2, 2, 3, initialW=np.ones((2, 2, 3, 3)))
    hooked = _chainer_link(meta["cases"][0], arrays, 0)
    hooked.local_link_hooks = {"SpectralNormalization": object()}
    with pytest.raises(ValueError, match="SpectralNormalization"):
        convt.chainer.from_link(hooked)
    chain = stand_in(
        "Chain",
        namedlinks=lambda: [("/", None), ("/up", _chainer_link(meta["cases"][0], arrays, 0))],
    )
    assert list(convt.chainer.from_model(chain)) == ["up"]


# ---------------------------------------------------------------------------- megengine


@pytest.mark.parametrize("index", cases("megengine"))
def test_megengine_module(index):
    meta, arrays = load("megengine")
    case = meta["cases"][index]
    layer = getattr(convt.megengine, case["cls"])(**case["args"])
    state = {k: arrays[f"{index}/state/{k}"] for k in case["state"]}
    attrs = dict(case["attrs"])
    if case["cls"] == "ConvTranspose3d":
        del attrs["conv_mode"], attrs["compute_mode"]
    module = stand_in(
        case["cls"], **attrs, bias=object() if "bias" in state else None, state_dict=lambda: state
    )
    _, converted = convt.megengine.from_module(module)
    assert converted == layer
    grads = check_against(
        layer, lambda s: convt.megengine.from_state_dict(s, layer), state, arrays, index
    )
    for key in state:
        assert_close(grads[key], arrays[f"{index}/grad/{key}"])


# ---------------------------------------------------------------------------- keras


@pytest.mark.parametrize("index", cases("keras"))
def test_keras_layer(index):
    meta, arrays = load("keras")
    case = meta["cases"][index]
    weights = [arrays[f"{index}/weight{j}"] for j in range(case["weights"])]
    params, layer = convt.keras.from_config(case["config"], weights)
    built = getattr(convt.keras, case["cls"])(**case["args"], in_channels=weights[0].shape[-1])
    assert built == layer
    keras_layer = stand_in(
        case["cls"], get_config=lambda: case["config"], get_weights=lambda: weights
    )
    assert convt.keras.from_layer(keras_layer, backend="tensorflow")[1] == layer
    grads = check_against(layer, lambda p: p, params, arrays, index)
    ndim = layer.ndim
    expected = convt.keras.CONVENTION.weight_to_canonical(
        arrays[f"{index}/grad0"], ndim=ndim, groups=1
    )
    assert_close(grads["weight"], expected)
    if layer.bias:
        assert_close(grads["bias"], arrays[f"{index}/grad1"])


def test_keras_refuses_custom_activation_and_unbuilt():
    """Keras's built-in activations are computed (tests/test_keras.py against Keras);
    a custom callable is refused by name."""
    assert (
        dict(convt.keras.Conv2DTranspose(4, 3, activation="relu", in_channels=2).config)[
            "activation"
        ]
        == "relu"
    )
    with pytest.raises(ValueError, match="activation"):
        convt.keras.Conv2DTranspose(4, 3, activation=print, in_channels=2)
    with pytest.raises(ValueError, match="not built"):
        convt.keras.from_layer(stand_in("Conv2DTranspose", get_weights=lambda: []))


# ---------------------------------------------------------------------------- onnx


ONNX_CASES = list(range(0, 300, 10))


@pytest.mark.parametrize("index", ONNX_CASES)
def test_onnx_model(index):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    data = np.load(FIXTURES / "onnx.npz")
    case = json.loads(str(data["meta"]))["cases"][index]
    x, w = data[f"{index}/x"], data[f"{index}/w"]
    b = data[f"{index}/b"] if f"{index}/b" in data.files else None
    inputs = ["X", "W"] + (["B"] if b is not None else [])
    node = helper.make_node("ConvTranspose", inputs, ["Y"], name="up", **case["kwargs"])
    initializers = [numpy_helper.from_array(w, "W")]
    if b is not None:
        initializers.append(numpy_helper.from_array(b, "B"))
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializers,
    )
    model = helper.make_model(graph)
    ((name, (params, layer)),) = convt.onnx.from_model(model).items()
    assert name == "up" and layer.bias == (b is not None)
    assert_close(jax.jit(layer)(params, x), data[f"{index}/y"])
    assert convt.onnx.from_model(onnx.load_from_string(model.SerializeToString()))["up"][1] == layer


def test_onnx_from_model_refuses_computed_weights():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("X", "W")],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    with pytest.raises(ValueError, match="initializer"):
        convt.onnx.from_model(helper.make_model(graph))


# ---------------------------------------------------------------------------- init


def _layer_for(framework, record):
    args = dict(record["args"])
    if framework == "keras":
        return getattr(convt.keras, record["cls"])(**args)
    if framework == "chainer":
        return getattr(convt.chainer, record["cls"])(**args)
    return getattr(getattr(convt, framework), record["cls"])(**args)


def same_distribution(sample, record, scale=1.0):
    """``sample``'s 5%..95% quantiles within 0.1 standard deviations of the framework's
    (the difference of two samples of ~10^4 values has a standard error of about 0.025
    there), and its standard deviation within 3% (standard error about 0.8%)."""
    probs = np.linspace(0, 1, 101)[5:-5]
    ours = np.quantile(np.asarray(sample, np.float64).ravel() / scale, probs)
    theirs = np.asarray(record["quantiles"])[5:-5]
    spread = np.abs(ours - theirs).max() / record["std"]
    return spread < 0.1 and abs(np.std(sample) / scale / record["std"] - 1) < 0.03


INIT_CASES = [(fw, j) for fw in ("paddle", "chainer", "megengine", "keras") for j in range(2)]


@pytest.mark.parametrize("framework, j", INIT_CASES, ids=[f"{f}-{j}" for f, j in INIT_CASES])
def test_init_matches_framework(framework, j):
    record = load(framework)[0]["init"][j]
    layer = _layer_for(framework, record)
    params = layer.init(jax.random.key(j), dtype=jnp.float32)
    assert params["weight"].shape == layer.weight_shape and params["weight"].dtype == jnp.float32
    assert record["count"] == params["weight"].size
    assert same_distribution(params["weight"], record)
    assert not same_distribution(params["weight"], record, scale=1.1)  # the check can fail
    assert record["bias_max_abs"] == 0 and not np.any(params["bias"])
    if framework in ("paddle", "keras"):  # uniform: the framework's draws reach its bound
        bound = float(np.abs(params["weight"]).max())
        theirs = max(-record["quantiles"][0], record["quantiles"][-1])
        assert theirs <= bound * 1.002 and theirs >= bound * 0.99


def test_layer_calls_check_params():
    layer = convt.megengine.ConvTranspose2d(2, 4, 3, bias=False)
    params = layer.init(jax.random.key(0))
    with pytest.raises(ValueError, match="bias"):
        layer({**params, "bias": jnp.zeros(4)}, jnp.ones((1, 2, 5, 5)))
    with pytest.raises(TypeError, match="output size"):
        layer(params, jnp.ones((1, 2, 5, 5)), output_size=(7, 7))
    assert hash(layers.frozen([[1, 2], [3]])) == hash(((1, 2), (3,)))
