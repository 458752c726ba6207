"""Front-ends against the real frameworks' recorded outputs and gradients.

The fixtures come from python -m tools.fixtures run in the oracle environments
(paddle 3.3, chainer 7.8, megengine 1.13); see that script for how to regenerate them.
"""

import json
import re
from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convt.chainer
import convt.equinox
import convt.flax
import convt.haiku
import convt.keras
import convt.megengine
import convt.mindspore
import convt.mxnet
import convt.paddle
import convt.tensorflow
from helpers import assert_close

FIXTURES = Path(__file__).parent / "fixtures"
MODULES = {
    "paddle": convt.paddle,
    "chainer": convt.chainer,
    "megengine": convt.megengine,
    "tensorflow": convt.tensorflow,
    "keras": convt.keras,
    "keras_jax": convt.keras,  # recorded on Keras's JAX backend
    "mindspore": convt.mindspore,
    "mxnet": convt.mxnet,
    "mxnet_native": convt.mxnet,  # target_shape calls, on MXNet's own kernels
    "equinox": convt.equinox,
    "flax": convt.flax,
    "haiku": convt.haiku,
}
# The layer arguments a recorded layer case holds that the functional form takes from
# its arrays instead.
LAYER_ONLY = {
    "equinox": ("use_bias", "kernel_size"),
    "flax": ("use_bias", "kernel_size"),
    "haiku": ("with_bias", "kernel_shape"),
}
# Recorded rejections that name the parameter the framework complains about.
NAMED_ERRORS = (
    "paddle",
    "chainer",
    "megengine",
    "mindspore",
    "mxnet",
    "mxnet_native",
    "equinox",
    "flax",
    "haiku",
)


@cache
def load(framework):
    data = np.load(FIXTURES / f"{framework}.npz")
    meta = json.loads(str(data["meta"]))
    return meta, {k: data[k] for k in data.files if k != "meta"}


def case_ids(framework):
    meta, _ = load(framework)
    return [(framework, i) for i in range(len(meta["cases"]))]


ALL_CASES = [c for fw in MODULES for c in case_ids(fw)]
# Every other case runs in the default run, the rest in CI's sweep step (marked slow):
# all of them run in CI, half of them in the README's quick test command.
CASE_PARAMS = [
    pytest.param(f, i, id=f"{f}-{i}", marks=[pytest.mark.slow] if i % 2 else [])
    for f, i in ALL_CASES
]


@pytest.mark.parametrize("framework, index", CASE_PARAMS)
def test_matches_framework(framework, index):
    meta, arrays = load(framework)
    case = meta["cases"][index]
    get = lambda key: arrays.get(f"{index}/{key}")  # noqa: E731
    x, w, b, g = get("x"), get("w"), get("b"), get("g")
    fn = getattr(MODULES[framework], case["function"])
    kwargs = case["kwargs"]

    if framework == "keras_jax":
        kwargs = dict(kwargs, backend="jax")
    if framework in LAYER_ONLY:  # the layer's arguments; the bias is there or not
        kwargs = {k: v for k, v in kwargs.items() if k not in LAYER_ONLY[framework]}
    if framework == "mindspore":  # the layer's arguments; the bias is there or not
        kwargs = {k: v for k, v in kwargs.items() if k != "has_bias"}
        kernel = convt.mindspore.weight_to_canonical(w, ndim=x.ndim - 2, groups=1).shape[2:]
        spec, zeros_after = convt.mindspore._layer_spec(x.ndim - 2, kernel_size=kernel, **kwargs)
        if any(zeros_after) and 0 in spec.output_spatial_shape(x.shape[2:], kernel):
            # MindSpore 2.10 returns non-zero values in the zeros it appends to an empty
            # convolution; convt keeps them zero. Shapes only.
            assert fn(x, w, b, **kwargs).shape == get("y").shape
            return
    if case.get("keras_bias_along_last_axis"):
        # Keras's TensorFlow backend adds a channels-first layer's bias along the last
        # axis when that axis has `filters` entries (its ops.add -> tf.nn.bias_add NHWC);
        # convt adds it on the channel axis, as the layer means and the JAX backend does.
        y = convt.keras.conv_transpose(x, w, **kwargs)
        assert_close(y + b, get("y"))
        assert not np.allclose(fn(x, w, b, **kwargs), get("y"), atol=1e-3)
        return
    if case["function"] in (
        "conv_transpose",
        "conv2d_transpose",
        "conv1d_transpose",
        "conv3d_transpose",
    ) and framework in ("tensorflow", "keras", "keras_jax"):
        call = lambda x, w, b: fn(x, w, **kwargs)  # noqa: E731  no bias argument
    else:
        call = lambda x, w, b: fn(x, w, b, **kwargs)  # noqa: E731

    @jax.jit
    def run(x, w, b, g):
        y, vjp = jax.vjp(call, x, w, b)
        return y, vjp(g)

    y, (gx, gw, gb) = run(x, w, b, g)  # one compile for the values and the gradients
    assert_close(y, get("y"))
    if get("gx") is None:  # the framework's own backward failed: values only
        return
    assert_close(gx, get("gx"))
    assert_close(gw, get("gw"))
    if b is not None:
        assert_close(gb, get("gb"))


ERRORS = [(fw, i) for fw in NAMED_ERRORS for i in range(len(load(fw)[0]["errors"]))]


@pytest.mark.parametrize("framework, index", ERRORS, ids=[f"{f}-{i}" for f, i in ERRORS])
def test_rejects_what_framework_rejects(framework, index):
    case = load(framework)[0]["errors"][index]
    module = MODULES[framework]
    fn = getattr(
        module,
        case.get("function")
        or {
            "paddle": f"conv{case.get('ndim')}d_transpose",
            "megengine": f"conv_transpose{case.get('ndim')}d",
            "mindspore": f"conv{case.get('ndim')}d_transpose",
            "mxnet": "deconvolution",
            "mxnet_native": "deconvolution",
            "equinox": "conv_transpose",
            "flax": "conv_transpose",
            "haiku": "conv_transpose",
        }[framework],
    )
    b = jnp.ones(case["bias"]) if "bias" in case else None
    kwargs = case["kwargs"]
    if framework == "mindspore":  # recorded as a layer: channels and kernel size
        n, k, group = case["ndim"], case["k"], kwargs.get("group", 1)
        kernel = k if isinstance(k, list) else [k] * n
        case = dict(case, w=[case["x"][1], max(case["cout"] // group, 1), *kernel])
        kwargs = {k: v for k, v in kwargs.items() if k != "has_bias"}
    if framework == "equinox":  # recorded as a layer: unbatched input, kernel_size
        n, k, group = case["ndim"], kwargs["kernel_size"], kwargs.get("groups", 1)
        kernel = k if isinstance(k, list) else [k] * n
        case = dict(case, w=[case["c_out"], case["x"][0] // group, *kernel])
        kwargs = {k: v for k, v in kwargs.items() if k not in ("use_bias", "kernel_size")}
    if framework in ("flax", "haiku"):  # recorded as a layer: kernel (*k, out, in)-like
        n = case["ndim"]
        k = kwargs.get("kernel_size", kwargs.get("kernel_shape"))
        kernel = k if isinstance(k, list) else [k] * n
        channels_first = kwargs.get("data_format") == "channels_first"
        c_in = case["x"][-n - 1] if channels_first else case["x"][-1]
        pair = (
            [case["c_out"], c_in]
            if kwargs.get("transpose_kernel", framework == "haiku")
            else [
                c_in,
                case["c_out"],
            ]
        )
        case = dict(case, w=[*kernel, *pair])
        kwargs = {k: v for k, v in kwargs.items() if k not in LAYER_ONLY[framework]}
    x = np.ones(case["x"], case.get("x_dtype", "float32"))
    w = np.ones(case["w"], case.get("w_dtype", "float32"))
    with pytest.raises((ValueError, TypeError)) as info:
        fn(x, w, b, **kwargs)
    if case.get("param"):  # a recorded parameter check; else a failure of the layer's kernel
        assert re.search(rf"\b{case['param']}\b", str(info.value)), (str(info.value), case)
    assert str(info.value).startswith(f"{module.FRAMEWORK}:")


def test_fixture_counts():
    counts = {fw: len(load(fw)[0]["cases"]) for fw in MODULES}
    assert counts["paddle"] >= 300 and counts["chainer"] >= 250 and counts["megengine"] >= 200
    assert counts["tensorflow"] >= 200 and counts["keras"] >= 200 and counts["keras_jax"] >= 50


@pytest.mark.parametrize("index", range(len(load("tensorflow")[0]["errors"])))
def test_rejects_what_tensorflow_rejects(index):
    """TensorFlow refuses an output_shape whose forward convolution does not give back the
    input (with its oneDNN kernels, as a failure to build the primitive)."""
    case = load("tensorflow")[0]["errors"][index]
    fn = getattr(convt.tensorflow, f"conv{case['ndim']}d_transpose")
    with pytest.raises(ValueError, match="output_shape") as info:
        fn(np.ones(case["x"], "float32"), np.ones(case["w"], "float32"), **case["kwargs"])
    assert str(info.value).startswith("tensorflow:"), (str(info.value), case["message"])


@pytest.mark.parametrize("index", range(len(load("keras")[0]["errors"])))
def test_rejects_what_keras_rejects(index):
    """The layers' own checks (a named parameter), and the output lengths Keras's
    TensorFlow backend hands to tf.nn.conv_transpose and has rejected."""
    case = load("keras")[0]["errors"][index]
    x, w = np.ones(case["x"], "float32"), np.ones(case["w"], "float32")
    with pytest.raises((ValueError, TypeError)) as info:
        if case["layer"]:
            convt.keras.conv_transpose_layer(x, w, **case["kwargs"])
        else:
            convt.keras.conv_transpose(x, w, **case["kwargs"])
    message = str(info.value)
    assert message.startswith("keras:"), (message, case["message"])
    param = case.get("param") or (
        "strides" if "dilation_rate > 1" in case["message"] else "output_padding"
    )
    assert re.search(rf"\b{param}\b", message), (
        message,
        case["message"],
    )
