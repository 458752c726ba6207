"""Reference fixtures from the real frameworks (run in the oracle environments).

    ../shared/tools/oracle-envs.sh                       # builds $HOME/.cache/convt-oracles
    O=$HOME/.cache/convt-oracles
    $O/paddle/bin/python tools/make_fixtures.py paddle
    $O/paddle/bin/python tools/make_fixtures.py chainer
    $O/megengine/bin/python tools/make_fixtures.py megengine
    $O/torch/bin/python tools/make_fixtures.py onnx          # onnxruntime + onnx.reference
    $O/tf/bin/python tools/make_fixtures.py tensorflow
    KERAS_BACKEND=tensorflow $O/tf/bin/python tools/make_fixtures.py keras
    KERAS_BACKEND=jax $O/tf/bin/python tools/make_fixtures.py keras_jax
    $O/mindspore/bin/python tools/make_fixtures.py mindspore  # needs numpy<2 there
    $O/mxnet/bin/python tools/make_fixtures.py mxnet
    $O/mxnet/bin/python tools/make_fixtures.py mxnet_native  # target_shape, MKL-DNN off
    $O/torch/bin/python tools/make_fixtures.py flax           # flax.nnx and flax.linen
    $O/torch/bin/python tools/make_fixtures.py equinox
    $O/tf/bin/python tools/make_fixtures.py haiku

Each writes ``tests/fixtures/FRAMEWORK.npz``: for every random configuration the call's
arguments (JSON), the inputs, the output, the cotangent and the gradients with respect
to input, weight and bias, float32. It also records the invalid calls the framework
rejects (``errors``). The suite compares convt against these files, so it needs none of
the frameworks installed. Standalone on purpose: it imports no convt code.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
COUNTS = {
    "paddle": 330,
    "chainer": 260,
    "megengine": 220,
    "onnx": 300,
    "tensorflow": 240,
    "keras": 240,
    "keras_jax": 60,
    "mindspore": 260,
    "mxnet": 240,
    "mxnet_native": 80,
    "flax": 200,
    "equinox": 200,
    "haiku": 160,
}


def full_len(n, k, s, d):
    return (n - 1) * s + d * (k - 1) + 1


def draw_axes(rng, ndim, max_n, max_k=4, max_s=3, max_d=2):
    axes = []
    for _ in range(ndim):
        axes.append(
            dict(
                n=int(rng.integers(1, max_n + 1)),
                k=int(rng.integers(1, max_k + 1)),
                s=int(rng.integers(1, max_s + 1)),
                d=int(rng.integers(1, max_d + 1)),
            )
        )
    return axes


def scalar_or_list(rng, values):
    if len(set(values)) == 1 and rng.random() < 0.4:
        return int(values[0])
    return [int(v) for v in values]


# ---------------------------------------------------------------------------- paddle

PADDLE_FORMATS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


def paddle_case(rng):
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
    fmt = PADDLE_FORMATS[ndim][int(rng.integers(2))]
    groups = int(rng.integers(1, 3))
    c_in, c_out_g = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    kw = dict(
        stride=scalar_or_list(rng, [a["s"] for a in axes]),
        dilation=scalar_or_list(rng, [a["d"] for a in axes]),
        groups=groups,
        data_format=fmt,
    )
    form = rng.choice(["int", "per_axis", "pairs_flat", "pairs_full", "same", "valid"])
    pads = []
    for a in axes:
        reach = a["d"] * (a["k"] - 1)
        pads.append((int(rng.integers(0, reach + 1)), int(rng.integers(0, reach + 1))))
    if form == "int":
        kw["padding"] = pads[0][0]
        pads = [(pads[0][0],) * 2] * ndim
    elif form == "per_axis":
        kw["padding"] = [p for p, _ in pads]
        pads = [(p, p) for p, _ in pads]
    elif form == "pairs_flat":
        kw["padding"] = [v for pair in pads for v in pair]
    elif form == "pairs_full":
        spatial = [list(p) for p in pads]
        kw["padding"] = (
            ([[0, 0], [0, 0]] + spatial)
            if fmt.startswith("NC")
            else ([[0, 0]] + spatial + [[0, 0]])
        )
    else:
        kw["padding"] = str(rng.choice([form.upper(), form.lower(), form.capitalize()]))
    extra = rng.choice(["none", "output_padding", "output_size"], p=[0.5, 0.25, 0.25])
    if extra == "output_padding":
        kw["output_padding"] = scalar_or_list(rng, [int(rng.integers(0, a["s"])) for a in axes])
    x_spatial = [a["n"] for a in axes]
    x_shape = (
        [int(rng.integers(1, 3)), c_in, *x_spatial]
        if fmt.startswith("NC")
        else [int(rng.integers(1, 3)), *x_spatial, c_in]
    )
    w_shape = [c_in, c_out_g, *[a["k"] for a in axes]]
    return ndim, kw, x_shape, w_shape, extra


def paddle_fixtures(count, rng):
    import paddle
    import paddle.nn.functional as F

    fns = {1: F.conv1d_transpose, 2: F.conv2d_transpose, 3: F.conv3d_transpose}
    cases, arrays = [], {}
    while len(cases) < count:
        ndim, kw, x_shape, w_shape, extra = paddle_case(rng)
        x = rng.standard_normal(x_shape).astype("float32")
        w = rng.standard_normal(w_shape).astype("float32")
        has_bias = bool(rng.random() < 0.5)
        b = rng.standard_normal(w_shape[1] * kw["groups"]).astype("float32") if has_bias else None
        try:
            y0 = fns[ndim](paddle.to_tensor(x), paddle.to_tensor(w), None, **kw)
        except Exception:
            continue  # an output length < 1, say: the error tests cover rejection
        if extra == "output_size":
            spatial = list(y0.shape[2:] if kw["data_format"].startswith("NC") else y0.shape[1:-1])
            stride = kw["stride"] if isinstance(kw["stride"], list) else [kw["stride"]] * ndim
            size = [v + int(rng.integers(0, s)) for v, s in zip(spatial, stride)]
            kw["output_size"] = size[0] if ndim == 1 and rng.random() < 0.5 else size
        xt = paddle.to_tensor(x, stop_gradient=False)
        wt = paddle.to_tensor(w, stop_gradient=False)
        bt = None if b is None else paddle.to_tensor(b, stop_gradient=False)
        try:
            y = fns[ndim](xt, wt, bt, **kw)
        except Exception:
            continue
        if min(y.shape) < 1:  # paddle returns negative sizes instead of raising
            continue
        g = rng.standard_normal(y.shape).astype("float32")
        y.backward(paddle.to_tensor(g))
        grads = dict(gx=xt.grad.numpy(), gw=wt.grad.numpy())
        if b is not None:
            grads["gb"] = bt.grad.numpy()
        i = len(cases)
        cases.append(dict(function=f"conv{ndim}d_transpose", kwargs=kw))
        store(arrays, i, x=x, w=w, b=b, g=g, y=y.numpy(), **grads)
    errors = check_errors(
        lambda c: fns[c["ndim"]](
            paddle.to_tensor(np.ones(c["x"], c.get("x_dtype", "float32"))),
            paddle.to_tensor(np.ones(c["w"], c.get("w_dtype", "float32"))),
            None,
            **c["kwargs"],
        ),
        PADDLE_ERRORS,
    )
    return cases, arrays, errors, dict(paddle=paddle.__version__)


PADDLE_ERRORS = [
    dict(param="padding", ndim=1, x=[1, 2, 5], w=[2, 3, 3], kwargs=dict(padding="foo")),
    dict(param="padding", ndim=1, x=[1, 2, 5], w=[2, 3, 3], kwargs=dict(padding=-1)),
    dict(param="padding", ndim=2, x=[1, 2, 5, 5], w=[2, 3, 3, 3], kwargs=dict(padding=[1, 2, 3])),
    dict(
        param="padding",
        ndim=2,
        x=[1, 2, 5, 5],
        w=[2, 3, 3, 3],
        kwargs=dict(padding=[[1, 0], [0, 0], [1, 1], [1, 1]]),
    ),
    dict(
        param="padding",
        ndim=2,
        x=[1, 5, 5, 2],
        w=[2, 3, 3, 3],
        kwargs=dict(padding=[[0, 0], [1, 1], [1, 1], [0, 1]], data_format="NHWC"),
    ),
    dict(param="data_format", ndim=1, x=[1, 2, 5], w=[2, 3, 3], kwargs=dict(data_format="NCHW")),
    dict(
        param="data_format", ndim=2, x=[1, 2, 5, 5], w=[2, 3, 3, 3], kwargs=dict(data_format="NCL")
    ),
    dict(
        param="output_padding",
        ndim=1,
        x=[1, 2, 5],
        w=[2, 3, 3],
        kwargs=dict(stride=2, output_padding=2),
    ),
    dict(
        param="output_padding",
        ndim=1,
        x=[1, 2, 5],
        w=[2, 3, 3],
        kwargs=dict(stride=1, dilation=2, output_padding=1),
    ),
    dict(
        param="output_padding",
        ndim=2,
        x=[1, 2, 5, 5],
        w=[2, 3, 3, 3],
        kwargs=dict(stride=2, output_padding=1, output_size=[10, 10]),
    ),
    dict(
        param="output_size",
        ndim=1,
        x=[1, 2, 5],
        w=[2, 3, 3],
        kwargs=dict(stride=2, padding=1, output_size=8),
    ),
    dict(
        param="output_size",
        ndim=1,
        x=[1, 2, 5],
        w=[2, 3, 3],
        kwargs=dict(stride=2, padding=1, output_size=11),
    ),
    dict(
        param="output_size",
        ndim=2,
        x=[1, 2, 5, 5],
        w=[2, 3, 3, 3],
        kwargs=dict(stride=2, padding="SAME", output_size=[12, 10]),
    ),
    dict(param="stride", ndim=1, x=[1, 2, 5], w=[2, 3, 3], kwargs=dict(stride=[2, 2])),
    dict(param="stride", ndim=2, x=[1, 2, 5, 5], w=[2, 3, 3, 3], kwargs=dict(stride=0)),
    dict(param="groups", ndim=2, x=[1, 3, 5, 5], w=[3, 3, 3, 3], kwargs=dict(groups=2)),
    dict(param="weight", ndim=2, x=[1, 4, 5, 5], w=[3, 3, 3, 3], kwargs=dict()),
    dict(param="x", ndim=2, x=[1, 2, 5], w=[2, 3, 3, 3], kwargs=dict()),
    # from paddle's own tests and the robustness issue
    dict(
        param="output_size",
        ndim=2,
        x=[1, 2, 8, 8],
        w=[2, 3, 3, 3],
        kwargs=dict(stride=2, padding=1, output_size=[17]),
    ),
    dict(param="stride", ndim=2, x=[1, 2, 8, 8], w=[2, 3, 3, 3], kwargs=dict(stride=[2])),
    dict(param="x", ndim=2, x=[1, 2, 5, 5], w=[2, 3, 3, 3], kwargs=dict(), x_dtype="int32"),
    dict(param="weight", ndim=2, x=[1, 2, 5, 5], w=[2, 3, 3, 3], kwargs=dict(), w_dtype="int64"),
]


# ---------------------------------------------------------------------------- chainer


def conv_outsize(size, k, s, p, d, cover_all=False):
    dk = k + (k - 1) * (d - 1)
    return (size + 2 * p - dk + (s - 1 if cover_all else 0)) // s + 1


def chainer_case(rng):
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim], max_d=3)
    groups = int(rng.integers(1, 3))
    c_in, c_out_g = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    pads = [int(rng.integers(0, a["d"] * (a["k"] - 1) + 1)) for a in axes]
    kw = dict(stride=scalar_or_list(rng, [a["s"] for a in axes]), pad=scalar_or_list(rng, pads))
    if rng.random() < 0.5:
        kw["dilate"] = scalar_or_list(rng, [a["d"] for a in axes])
    else:
        for a in axes:
            a["d"] = 1
    if groups > 1 or rng.random() < 0.3:
        kw["groups"] = groups
    if rng.random() < 0.5:  # every outsize chainer accepts, including cover_all ones
        sizes = []
        for a, p in zip(axes, pads):
            ok = [
                size
                for size in range(1, full_len(a["n"], a["k"], a["s"], a["d"]) + 2 * a["s"])
                if conv_outsize(size, a["k"], a["s"], p, a["d"])
                <= a["n"]
                <= conv_outsize(size, a["k"], a["s"], p, a["d"], True)
            ]
            if not ok:
                return None
            sizes.append(int(rng.choice(ok)))
        kw["outsize"] = sizes
    function = rng.choice(["deconvolution_nd", f"deconvolution_{ndim}d"])
    x_shape = [int(rng.integers(1, 3)), c_in, *[a["n"] for a in axes]]
    w_shape = [c_in, c_out_g, *[a["k"] for a in axes]]
    return str(function), kw, x_shape, w_shape


def chainer_fixtures(count, rng):
    import chainer
    import chainer.functions as F

    cases, arrays = [], {}
    while len(cases) < count:
        case = chainer_case(rng)
        if case is None:
            continue
        function, kw, x_shape, w_shape = case
        x = rng.standard_normal(x_shape).astype("float32")
        w = rng.standard_normal(w_shape).astype("float32")
        has_bias = bool(rng.random() < 0.5)
        b = (
            rng.standard_normal(w_shape[1] * kw.get("groups", 1)).astype("float32")
            if has_bias
            else None
        )
        call_kw = dict(kw)
        if "outsize" in call_kw:
            call_kw["outsize"] = tuple(call_kw["outsize"])
        xv, wv = chainer.Variable(x), chainer.Variable(w)
        bv = None if b is None else chainer.Variable(b)
        try:
            y = getattr(F, function)(xv, wv, bv, **call_kw)
        except Exception:
            continue
        g = rng.standard_normal(y.shape).astype("float32")
        y.grad = g
        try:
            y.backward()
            grads = dict(gx=xv.grad, gw=wv.grad)
            if b is not None:
                grads["gb"] = bv.grad
        except Exception:  # chainer's grouped backward fails on some shapes: values only
            grads = {}
        i = len(cases)
        cases.append(dict(function=function, kwargs=kw))
        store(arrays, i, x=x, w=w, b=b, g=g, y=y.array, **grads)

    for extra in CHAINER_EXTRA:
        x = rng.standard_normal(extra["x"]).astype("float32")
        w = rng.standard_normal(extra["w"]).astype("float32")
        b = rng.standard_normal(extra["w"][1]).astype("float32") if extra["bias"] else None
        xv, wv = chainer.Variable(x), chainer.Variable(w)
        bv = None if b is None else chainer.Variable(b)
        y = getattr(F, extra["function"])(xv, wv, bv)
        g = rng.standard_normal(y.shape).astype("float32")
        y.grad = g
        y.backward()
        grads = dict(gx=xv.grad, gw=wv.grad, **({} if b is None else dict(gb=bv.grad)))
        i = len(cases)
        cases.append(dict(function=extra["function"], kwargs={}))
        store(arrays, i, x=x, w=w, b=b, g=g, y=y.array, **grads)

    def run(c):
        kw = dict(c["kwargs"])
        if isinstance(kw.get("outsize"), list):
            kw["outsize"] = tuple(kw["outsize"])
        b = np.ones(c["bias"], "float32") if "bias" in c else None
        return getattr(F, c["function"])(
            np.ones(c["x"], c.get("x_dtype", "float32")),
            np.ones(c["w"], c.get("w_dtype", "float32")),
            b,
            **kw,
        )

    errors = check_errors(run, CHAINER_ERRORS)
    return cases, arrays, errors, dict(chainer=chainer.__version__)


CHAINER_ERRORS = [
    dict(
        param="outsize",
        function="deconvolution_nd",
        x=[1, 4, 5],
        w=[4, 3, 3],
        kwargs=dict(stride=2, pad=1, outsize=[7]),
    ),
    dict(
        param="outsize",
        function="deconvolution_nd",
        x=[1, 4, 5],
        w=[4, 3, 3],
        kwargs=dict(stride=2, pad=1, outsize=[11]),
    ),
    dict(
        param="outsize",
        function="deconvolution_2d",
        x=[1, 4, 5, 5],
        w=[4, 3, 3, 3],
        kwargs=dict(stride=2, pad=1, outsize=[9, 12]),
    ),
    dict(
        param="outsize",
        function="deconvolution_nd",
        x=[1, 4, 5],
        w=[4, 3, 3],
        kwargs=dict(stride=2, pad=1, outsize=9),
    ),
    dict(
        param="stride",
        function="deconvolution_nd",
        x=[1, 4, 5],
        w=[4, 3, 3],
        kwargs=dict(stride=[2, 2]),
    ),
    dict(
        param="stride", function="deconvolution_nd", x=[1, 4, 5], w=[4, 3, 3], kwargs=dict(stride=0)
    ),
    dict(param="pad", function="deconvolution_nd", x=[1, 4, 5], w=[4, 3, 3], kwargs=dict(pad=5)),
    dict(
        param="groups", function="deconvolution_nd", x=[1, 3, 5], w=[3, 3, 3], kwargs=dict(groups=2)
    ),
    dict(param="W", function="deconvolution_2d", x=[1, 4, 5, 5], w=[3, 3, 3, 3], kwargs=dict()),
    dict(param="b", function="deconvolution_nd", x=[1, 4, 5], w=[4, 3, 3], kwargs=dict(), bias=[2]),
    dict(
        param="x",
        function="deconvolution_2d",
        x=[1, 2, 3, 3],
        w=[2, 3, 2, 2],
        kwargs=dict(),
        x_dtype="int32",
    ),
    dict(
        param="W",
        function="deconvolution_nd",
        x=[1, 2, 3],
        w=[2, 3, 2],
        kwargs=dict(),
        w_dtype="int32",
    ),
]

# Configurations from chainer's and chainerx's own tests, recorded after the random ones:
# no spatial axes at all (a matrix product), with and without a bias.
CHAINER_EXTRA = [
    dict(function="deconvolution_nd", x=[1, 3], w=[3, 5], bias=False),
    dict(function="deconvolution_nd", x=[1, 3], w=[3, 5], bias=True),
    dict(function="deconvolution_nd", x=[2, 4], w=[4, 3], bias=True),
]


# ---------------------------------------------------------------------------- megengine


def megengine_case(rng):
    ndim = int(rng.integers(2, 4))
    axes = draw_axes(rng, ndim, {2: 5, 3: 3}[ndim])
    groups = int(rng.integers(1, 3))
    c_in, c_out_g = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    pads = [int(rng.integers(0, a["d"] * (a["k"] - 1) + 1)) for a in axes]
    kw = dict(
        stride=scalar_or_list(rng, [a["s"] for a in axes]),
        padding=scalar_or_list(rng, pads),
        dilation=scalar_or_list(rng, [a["d"] for a in axes]),
        groups=groups,
    )
    k = [a["k"] for a in axes]
    w_shape = [groups, c_in // groups, c_out_g, *k] if groups > 1 else [c_in, c_out_g, *k]
    x_shape = [int(rng.integers(1, 3)), c_in, *[a["n"] for a in axes]]
    bias = rng.choice(["none", "module", "flat"])
    return ndim, kw, x_shape, w_shape, str(bias)


def megengine_fixtures(count, rng):
    import megengine as mge
    import megengine.functional as F
    from megengine.autodiff import GradManager

    fns = {2: F.conv_transpose2d, 3: F.conv_transpose3d}
    cases, arrays = [], {}
    while len(cases) < count:
        ndim, kw, x_shape, w_shape, bias = megengine_case(rng)
        c_out = w_shape[-ndim - 1] * kw["groups"]
        x = rng.standard_normal(x_shape).astype("float32")
        w = rng.standard_normal(w_shape).astype("float32")
        b = (
            None
            if bias == "none"
            else rng.standard_normal([1, c_out] + [1] * ndim).astype("float32")
        )
        xt, wt = mge.Parameter(x), mge.Parameter(w)
        bt = None if b is None else mge.Parameter(b)
        gm = GradManager()
        gm.attach([t for t in (xt, wt, bt) if t is not None])
        try:
            with gm:
                y = fns[ndim](xt, wt, bt, **kw)
                g = rng.standard_normal(y.shape).astype("float32")
                gm.backward(y, mge.tensor(g))
        except Exception:
            continue
        grads = dict(gx=xt.grad.numpy(), gw=wt.grad.numpy())
        if b is not None:
            grads["gb"] = bt.grad.numpy()
            if bias == "flat":  # convt also takes (C_out,); megengine itself does not
                b, grads["gb"] = b.reshape(-1), grads["gb"].reshape(-1)
        i = len(cases)
        cases.append(dict(function=f"conv_transpose{ndim}d", kwargs=kw))
        store(arrays, i, x=x, w=w, b=b, g=g, y=y.numpy(), **grads)

    def run(c):
        fn = fns[c["ndim"]]
        return fn(
            mge.tensor(np.ones(c["x"], c.get("x_dtype", "float32"))),
            mge.tensor(np.ones(c["w"], c.get("w_dtype", "float32"))),
            None,
            **c["kwargs"],
        )

    errors = check_errors(run, MEGENGINE_ERRORS)
    return cases, arrays, errors, dict(megengine=mge.__version__)


MEGENGINE_ERRORS = [
    dict(
        param="output_padding",
        ndim=2,
        x=[1, 4, 5, 5],
        w=[4, 3, 3, 3],
        kwargs=dict(stride=(2, 2), padding=(1, 1), output_padding=(2, 2)),
    ),
    dict(
        param="output_padding",
        ndim=2,
        x=[1, 4, 5, 5],
        w=[4, 3, 3, 3],
        kwargs=dict(stride=(1, 1), dilation=(2, 2), output_padding=(1, 1)),
    ),
    dict(param="weight", ndim=2, x=[1, 4, 5, 5], w=[4, 3, 3, 3], kwargs=dict(groups=2)),
    dict(
        param="conv_mode",
        ndim=2,
        x=[1, 4, 5, 5],
        w=[4, 3, 3, 3],
        kwargs=dict(conv_mode="convolution"),
    ),
    dict(param="weight", ndim=2, x=[1, 4, 5, 5], w=[3, 3, 3, 3], kwargs=dict()),
    dict(param="inp", ndim=3, x=[1, 4, 5, 5], w=[4, 3, 3, 3, 3], kwargs=dict()),
    dict(
        param="weight",
        ndim=2,
        x=[1, 4, 5, 5],
        w=[4, 3, 3, 3],
        kwargs=dict(),
        x_dtype="int32",
        w_dtype="int32",
    ),
]


# ---------------------------------------------------------------------------- onnx

ONNX_AUTO_PADS = ["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]


def onnx_model(attrs, x_shape, w_shape, bias_shape):
    from onnx import TensorProto, helper

    inputs = [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape),
        helper.make_tensor_value_info("W", TensorProto.FLOAT, w_shape),
    ]
    if bias_shape:
        inputs.append(helper.make_tensor_value_info("B", TensorProto.FLOAT, bias_shape))
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    node = helper.make_node("ConvTranspose", [i.name for i in inputs], ["Y"], **attrs)
    graph = helper.make_graph([node], "convtranspose", inputs, [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10  # what onnxruntime 1.31 reads
    return model


def onnx_case(rng):
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
    group = int(rng.integers(1, 3))
    c_in, m_g = group * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    attrs = dict(strides=[a["s"] for a in axes], kernel_shape=[a["k"] for a in axes])
    if rng.random() < 0.6:
        attrs["dilations"] = [a["d"] for a in axes]
    else:
        for a in axes:
            a["d"] = 1
    if group > 1 or rng.random() < 0.2:
        attrs["group"] = group
    auto_pad = str(rng.choice(ONNX_AUTO_PADS))
    if auto_pad != "NOTSET" or rng.random() < 0.3:
        attrs["auto_pad"] = auto_pad
    if rng.random() < 0.3:  # output_padding: mostly below the stride, sometimes not
        attrs["output_padding"] = [int(rng.integers(0, max(a["s"], a["d"]))) for a in axes]
    full = [(a["n"] - 1) * a["s"] + a["d"] * (a["k"] - 1) + 1 for a in axes]
    if rng.random() < 0.3:
        attrs["output_shape"] = [
            int(rng.integers(max(1, f - 3), f + a["s"] + 1)) for f, a in zip(full, axes)
        ]
        if rng.random() < 0.3:
            attrs["output_shape"] = [1, 1, *attrs["output_shape"]]
    elif auto_pad == "NOTSET":
        reach = [a["d"] * (a["k"] - 1) for a in axes]
        attrs["pads"] = [int(rng.integers(0, r + 1)) for r in reach + reach]
    x_shape = [int(rng.integers(1, 3)), c_in, *[a["n"] for a in axes]]
    w_shape = [c_in, m_g, *[a["k"] for a in axes]]
    return attrs, x_shape, w_shape


def onnx_fixtures(count, rng):
    import onnx
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    cases, arrays, rejected = [], {}, []
    while len(cases) < count:
        attrs, x_shape, w_shape = onnx_case(rng)
        has_bias = bool(rng.random() < 0.5)
        b_shape = [w_shape[1] * attrs.get("group", 1)] if has_bias else None
        x = rng.standard_normal(x_shape).astype("float32")
        w = rng.standard_normal(w_shape).astype("float32")
        b = rng.standard_normal(b_shape).astype("float32") if has_bias else None
        feeds = dict(X=x, W=w, **({} if b is None else dict(B=b)))
        model = onnx_model(attrs, x_shape, w_shape, b_shape)
        try:
            session = ort.InferenceSession(
                model.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            y = session.run(None, feeds)[0]
        except Exception as e:  # noqa: BLE001 - onnxruntime's rejection is the record
            if len(rejected) < 40:
                rejected.append(
                    dict(x=x_shape, w=w_shape, attrs=attrs, message=str(e).strip()[-300:])
                )
            continue
        try:
            reference = ReferenceEvaluator(model).run(None, feeds)[0]
        except Exception:  # noqa: BLE001
            reference = None
        i = len(cases)
        cases.append(dict(kwargs=attrs, reference_ok=reference is not None))
        store(arrays, i, x=x, w=w, b=b, y=y, y_reference=reference)
    versions = dict(onnx=onnx.__version__, onnxruntime=ort.__version__)
    return cases, arrays, rejected, versions


# ---------------------------------------------------------------------------- tensorflow

TF_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def tensorflow_case(rng):
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
    channels_last = rng.random() < 0.85
    fmt = TF_FORMATS[ndim][0 if channels_last else 1]
    dilated = rng.random() < 0.3
    for a in axes:
        if dilated:
            a["s"] = 1
        else:
            a["d"] = 1
    form = str(rng.choice(["SAME", "VALID", "explicit"] if ndim == 2 else ["SAME", "VALID"]))
    sizes = []
    for a in axes:
        k_e = a["d"] * (a["k"] - 1) + 1
        full = (a["n"] - 1) * a["s"] + k_e
        if form == "SAME":
            low, high = (a["n"] - 1) * a["s"] + 1, a["n"] * a["s"]
        elif form == "VALID":
            low, high = full, full + a["s"] - 1
        else:
            a["pad"] = [int(rng.integers(0, k_e)), int(rng.integers(0, k_e))]
            low = max(1, full - sum(a["pad"]))
            high = low + a["s"] - 1
        if rng.random() < 0.1:  # out of TensorFlow's range: a recorded rejection
            high += a["s"]
        sizes.append(int(rng.integers(low, high + 1)))
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    batch = int(rng.integers(1, 3))
    spatial = [a["n"] for a in axes]
    x_shape = [batch, *spatial, c_in] if channels_last else [batch, c_in, *spatial]
    output_shape = [batch, *sizes, c_out] if channels_last else [batch, c_out, *sizes]
    kw = dict(output_shape=output_shape, data_format=fmt)
    strides = [a["s"] for a in axes]
    kw["strides"] = strides[0] if len(set(strides)) == 1 and rng.random() < 0.5 else strides
    if dilated:
        kw["dilations"] = [a["d"] for a in axes]
    if form == "explicit":
        pads = [a["pad"] for a in axes]
        kw["padding"] = [[0, 0], *pads, [0, 0]] if channels_last else [[0, 0], [0, 0], *pads]
    else:
        kw["padding"] = form
    w_shape = [*[a["k"] for a in axes], c_out, c_in]
    return ndim, kw, x_shape, w_shape


def tensorflow_fixtures(count, rng):
    import tensorflow as tf

    fns = {1: tf.nn.conv1d_transpose, 2: tf.nn.conv2d_transpose, 3: tf.nn.conv3d_transpose}
    cases, arrays, rejected = [], {}, []
    while len(cases) < count:
        ndim, kw, x_shape, w_shape = tensorflow_case(rng)
        x = rng.standard_normal(x_shape).astype("float32")
        w = rng.standard_normal(w_shape).astype("float32")
        xt, wt = tf.Variable(x), tf.Variable(w)
        try:
            with tf.GradientTape() as tape:
                y = fns[ndim](xt, wt, **kw)
                g = rng.standard_normal(y.shape).astype("float32")
                loss = tf.reduce_sum(y * g)
            gx, gw = tape.gradient(loss, [xt, wt])
        except Exception as e:  # noqa: BLE001 - TensorFlow's rejection is the record
            message = str(e).strip()
            if "do not yet support" in message or "only supports" in message:
                continue  # a missing CPU kernel, not a rejection of the layer
            if len(rejected) < 30:
                rejected.append(
                    dict(ndim=ndim, x=x_shape, w=w_shape, kwargs=kw, message=message[-300:])
                )
            continue
        # y is linear in x and in w, so <g, y> = <gx, x> = <gw, w>. TensorFlow's input
        # gradient breaks this on some explicit paddings (its forward convolution with a
        # padding as large as the kernel): record those cases' values only.
        inner = float(np.sum(g * y.numpy()))
        grads = dict(gx=gx.numpy(), gw=gw.numpy())
        scale = 1e-4 * max(1.0, abs(inner), float(np.abs(g).sum()))
        if any(abs(float(np.sum(grads[k] * a)) - inner) > scale for k, a in (("gx", x), ("gw", w))):
            grads = {}
        i = len(cases)
        cases.append(dict(function=f"conv{ndim}d_transpose", kwargs=kw))
        store(arrays, i, x=x, w=w, g=g, y=y.numpy(), **grads)
    return cases, arrays, rejected, dict(tensorflow=tf.__version__)


# ---------------------------------------------------------------------------- keras


def keras_case(rng, backend):
    """A random keras.ops.conv_transpose call, or (30%) a Conv{N}DTranspose layer."""
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
    layer = backend == "tensorflow" and rng.random() < 0.3
    if layer or rng.random() < 0.5:  # the layers refuse strides > 1 with dilation_rate > 1
        for a in axes:
            a["d" if rng.random() < 0.7 else "s"] = 1
    channels_last = rng.random() < 0.8
    padding = str(rng.choice(["valid", "same", "same", "SAME", "Valid"]))
    kw = dict(padding=padding, data_format="channels_last" if channels_last else "channels_first")
    kw["strides"] = scalar_or_list(rng, [a["s"] for a in axes])
    if any(a["d"] > 1 for a in axes) or rng.random() < 0.2:
        kw["dilation_rate"] = scalar_or_list(rng, [a["d"] for a in axes])
    if rng.random() < 0.6:
        # layers take [0, strides); the op takes more, and TensorFlow rejects some of it
        top = {True: 0, False: 2}[layer]
        kw["output_padding"] = scalar_or_list(
            rng, [int(rng.integers(0, a["s"] + top)) for a in axes]
        )
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    batch = int(rng.integers(1, 3))
    spatial = [a["n"] for a in axes]
    x_shape = [batch, *spatial, c_in] if channels_last else [batch, c_in, *spatial]
    w_shape = [*[a["k"] for a in axes], c_out, c_in]
    return ndim, layer, kw, x_shape, w_shape


KERAS_LAYER_ERRORS = [
    dict(
        param="output_padding",
        ndim=1,
        x=[1, 5, 2],
        w=[3, 2, 2],
        kwargs=dict(strides=2, output_padding=2),
    ),
    dict(
        param="output_padding",
        ndim=2,
        x=[1, 5, 5, 2],
        w=[3, 3, 2, 2],
        kwargs=dict(strides=[2, 3], output_padding=[1, 3]),
    ),
    dict(
        param="output_padding",
        ndim=1,
        x=[1, 5, 2],
        w=[3, 2, 2],
        kwargs=dict(strides=2, output_padding=-1),
    ),
    dict(
        param="strides",
        ndim=2,
        x=[1, 5, 5, 2],
        w=[3, 3, 2, 2],
        kwargs=dict(strides=2, dilation_rate=2),
    ),
    dict(param="strides", ndim=1, x=[1, 5, 2], w=[3, 2, 2], kwargs=dict(strides=0)),
    dict(param="padding", ndim=1, x=[1, 5, 2], w=[3, 2, 2], kwargs=dict(padding="causal")),
    dict(param="padding", ndim=2, x=[1, 5, 5, 2], w=[3, 3, 2, 2], kwargs=dict(padding="full")),
    dict(
        param="data_format", ndim=2, x=[1, 5, 5, 2], w=[3, 3, 2, 2], kwargs=dict(data_format="NHWC")
    ),
]


def keras_fixtures(count, rng, backend="tensorflow"):
    """keras.ops.conv_transpose and the Conv{N}DTranspose layers, on the backend that
    KERAS_BACKEND names (tensorflow: values, gradients and rejections; jax: values and
    gradients of the calls the TensorFlow backend rejects)."""
    import keras

    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    if backend == "tensorflow":
        import tensorflow as tf

        def run(fn, x, w, b, layer):
            xv = tf.Variable(x)
            watched = [xv] + ([layer.kernel, layer.bias] if layer else [tf.Variable(w)])
            with tf.GradientTape() as tape:
                y = fn(*watched)
            g = rng.standard_normal(y.shape).astype("float32")
            grads = tape.gradient(y, watched, output_gradients=tf.constant(g))
            return np.asarray(y), g, [np.asarray(v) for v in grads]
    else:
        import jax
        import jax.numpy as jnp

        def run(fn, x, w, b, layer):
            y, vjp = jax.vjp(fn, jnp.asarray(x), jnp.asarray(w))
            g = rng.standard_normal(y.shape).astype("float32")
            return np.asarray(y), g, [np.asarray(v) for v in vjp(jnp.asarray(g))]

    cases, arrays, rejected = [], {}, []
    while len(cases) < count:
        ndim, layer, kw, x_shape, w_shape = keras_case(rng, backend)
        x = rng.standard_normal(x_shape).astype("float32")
        w = rng.standard_normal(w_shape).astype("float32")
        b = rng.standard_normal(w_shape[-2]).astype("float32") if layer else None
        try:
            if layer:
                cls = getattr(keras.layers, f"Conv{ndim}DTranspose")
                module = cls(w_shape[-2], w_shape[:-2], use_bias=True, **kw)
                module.build(tuple(x_shape))
                module.set_weights([w, b])
                y, g, grads = run(lambda x, *_, m=module: m(x), x, w, b, module)
            else:
                y, g, grads = run(
                    lambda x, w, kw=kw: keras.ops.conv_transpose(x, w, **kw), x, w, None, None
                )
        except Exception as e:  # noqa: BLE001 - the framework's rejection is the record
            message = str(e).strip()
            if "do not yet support" in message or "only supports" in message:
                continue  # a missing CPU kernel, not a rejection of the layer
            if len(rejected) < 40:
                rejected.append(
                    dict(
                        ndim=ndim,
                        layer=layer,
                        x=x_shape,
                        w=w_shape,
                        kwargs=kw,
                        raised=type(e).__name__,
                        message=message[-300:],
                    )
                )
            continue
        i = len(cases)
        cases.append(
            dict(function="conv_transpose_layer" if layer else "conv_transpose", kwargs=kw)
        )
        # Keras's TensorFlow `ops.add` turns the layer's bias add into tf.nn.bias_add with
        # NHWC whenever the output's last axis has `filters` entries: a channels-first
        # output then gets its bias along its last spatial axis. Recorded as such.
        if layer and backend == "tensorflow" and kw["data_format"] == "channels_first":
            if y.shape[-1] == w_shape[-2] > 1:
                cases[-1]["keras_bias_along_last_axis"] = True
        grads = dict(zip(("gx", "gw", "gb"), grads))
        if any(grads[k].shape != a.shape for k, a in (("gx", x), ("gw", w))):
            grads = {}  # TensorFlow's gradients of an empty output have the output's shape
        store(arrays, i, x=x, w=w, b=b, g=g, y=y, **grads)
    if backend == "tensorflow":

        def build(case):
            cls = getattr(keras.layers, f"Conv{case['ndim']}DTranspose")
            module = cls(case["w"][-2], case["w"][:-2], **case["kwargs"])
            module(np.ones(case["x"], "float32"))

        rejected += [dict(e, layer=True) for e in check_errors(build, KERAS_LAYER_ERRORS)]
    return cases, arrays, rejected, dict(keras=keras.__version__, backend=backend)


# ---------------------------------------------------------------------------- mindspore


def mindspore_case(rng):
    """A random nn.Conv{1,2,3}dTranspose: its constructor arguments and shapes."""
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
    if ndim == 3:
        axes[0]["d"] = 1  # MindSpore refuses a depth dilation (recorded among the errors)
    pad_mode = str(rng.choice(["same", "valid", "pad", "pad"]))
    kw = dict(pad_mode=pad_mode)
    ints = (
        (lambda key: int(axes[0][key]))
        if ndim == 1
        else (lambda key: scalar_or_list(rng, [a[key] for a in axes]))
    )
    kw["stride"], kw["dilation"] = ints("s"), ints("d")
    if pad_mode == "pad":
        pads = [int(rng.integers(0, a["d"] * (a["k"] - 1) + 1)) for a in axes for _ in (0, 1)]
        if ndim == 1 or rng.random() < 0.3:
            kw["padding"] = pads[0]
        else:
            kw["padding"] = pads
        if ndim > 1 and rng.random() < 0.5:
            kw["output_padding"] = scalar_or_list(
                rng, [int(rng.integers(0, max(a["s"], a["d"]))) for a in axes]
            )
    group = int(rng.choice([1, 1, 2]))
    c_in, c_out = group * int(rng.integers(1, 3)), group * int(rng.integers(1, 3))
    kw["group"], kw["has_bias"] = group, bool(rng.random() < 0.5)
    for key in ("stride", "dilation", "padding", "output_padding"):
        if isinstance(kw.get(key), list):
            kw[key] = tuple(kw[key])
    kernel = [a["k"] for a in axes]
    x_shape = [int(rng.integers(1, 3)), c_in, *[a["n"] for a in axes]]
    return ndim, c_in, c_out, (kernel[0] if ndim == 1 else tuple(kernel)), kw, x_shape


MINDSPORE_ERRORS = [
    dict(
        param="output_padding",
        ndim=2,
        x=[1, 2, 5, 5],
        cout=3,
        k=3,
        kwargs=dict(stride=2, pad_mode="same", output_padding=1),
    ),
    dict(
        param="output_padding",
        ndim=2,
        x=[1, 2, 5, 5],
        cout=3,
        k=3,
        kwargs=dict(stride=2, pad_mode="pad", padding=1, output_padding=2),
    ),
    dict(
        param="padding",
        ndim=2,
        x=[1, 2, 5, 5],
        cout=3,
        k=3,
        kwargs=dict(stride=2, pad_mode="same", padding=1),
    ),
    dict(
        param="padding",
        ndim=2,
        x=[1, 2, 5, 5],
        cout=3,
        k=3,
        kwargs=dict(stride=2, pad_mode="pad", padding=(1, 1, 1)),
    ),
    dict(param="pad_mode", ndim=2, x=[1, 2, 5, 5], cout=3, k=3, kwargs=dict(pad_mode="full")),
    dict(
        param="dilation",
        ndim=3,
        x=[1, 2, 3, 3, 3],
        cout=2,
        k=3,
        kwargs=dict(pad_mode="same", dilation=(2, 1, 1)),
    ),
    dict(
        param="output_padding",
        ndim=3,
        x=[1, 2, 3, 3, 3],
        cout=2,
        k=3,
        kwargs=dict(stride=2, pad_mode="valid", output_padding=1),
    ),
    dict(
        param="padding",
        ndim=3,
        x=[1, 2, 3, 3, 3],
        cout=2,
        k=3,
        kwargs=dict(pad_mode="pad", padding=(1, 1, 1, 1)),
    ),
    dict(
        param="padding", ndim=1, x=[1, 2, 5], cout=2, k=3, kwargs=dict(pad_mode="valid", padding=1)
    ),
    dict(param="group", ndim=2, x=[1, 3, 5, 5], cout=4, k=3, kwargs=dict(group=2)),
]


def mindspore_fixtures(count, rng):
    import mindspore as ms
    from mindspore import Tensor, nn

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    classes = {1: nn.Conv1dTranspose, 2: nn.Conv2dTranspose, 3: nn.Conv3dTranspose}
    cases, arrays, rejected = [], {}, []
    while len(cases) < count:
        ndim, c_in, c_out, kernel, kw, x_shape = mindspore_case(rng)
        x = rng.standard_normal(x_shape).astype("float32")
        try:
            net = classes[ndim](c_in, c_out, kernel, **kw)
            w = rng.standard_normal(net.weight.shape).astype("float32")
            net.weight.set_data(Tensor(w))
            b = None
            if kw["has_bias"]:
                b = rng.standard_normal(net.bias.shape).astype("float32")
                net.bias.set_data(Tensor(b))
            y = net(Tensor(x)).asnumpy()
            g = rng.standard_normal(y.shape).astype("float32")

            g_tensor = Tensor(g)

            def loss(x, net=net, g_tensor=g_tensor):
                return (net(x) * g_tensor).sum()

            _, (gx, grads) = ms.value_and_grad(loss, 0, net.trainable_params())(Tensor(x))
        except Exception as e:  # noqa: BLE001 - the framework's rejection is the record
            if len(rejected) < 20:
                rejected.append(
                    dict(
                        ndim=ndim,
                        x=x_shape,
                        cout=c_out,
                        k=kernel,
                        kwargs=kw,
                        raised=type(e).__name__,
                        message=str(e).strip()[:300],
                    )
                )
            continue
        i = len(cases)
        cases.append(
            dict(
                function=f"conv{ndim}d_transpose",
                in_channels=c_in,
                out_channels=c_out,
                kernel_size=kernel,
                kwargs=kw,
            )
        )
        named = dict(gx=gx.asnumpy(), gw=grads[0].asnumpy())
        if b is not None:
            named["gb"] = grads[1].asnumpy()
        store(arrays, i, x=x, w=w, b=b, g=g, y=y, **named)

    def build(case):
        net = classes[case["ndim"]](case["x"][1], case["cout"], case["k"], **case["kwargs"])
        net(Tensor(np.ones(case["x"], "float32")))

    rejected += check_errors(build, MINDSPORE_ERRORS)
    return cases, arrays, rejected, dict(mindspore=ms.__version__)


# ---------------------------------------------------------------------------- mxnet


def mxnet_case(rng, native):
    """A random mx.nd.Deconvolution call: its keyword arguments and shapes (``native``:
    1-D or 2-D with a target_shape, for MXNet's own kernels; otherwise no target_shape,
    for its MKL-DNN kernels)."""
    ndim = int(rng.integers(1, 3 if native else 4))
    axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
    group = int(rng.choice([1, 1, 2]))
    c_in, c_out = group * int(rng.integers(1, 3)), group * int(rng.integers(1, 3))
    kw = dict(kernel=[a["k"] for a in axes], num_filter=c_out)
    if group > 1 or rng.random() < 0.2:
        kw["num_group"] = group
    if rng.random() < 0.8:
        kw["stride"] = [a["s"] for a in axes]
    else:
        for a in axes:
            a["s"] = 1
    # MXNet's own kernels (native) get dilated layers wrong at the end of the output
    # (see docs/conventions/mxnet.md): the target_shape fixtures are undilated
    if rng.random() < 0.4 and not native:
        kw["dilate"] = [a["d"] for a in axes]
    else:
        for a in axes:
            a["d"] = 1
    if native:  # target_shape: pad and adj are derived from it
        kw["target_shape"] = [
            max(1, full_len(a["n"], a["k"], a["s"], a["d"]) - int(rng.integers(0, 4))) for a in axes
        ]
    else:
        if rng.random() < 0.7:
            kw["pad"] = [int(rng.integers(0, (a["d"] * (a["k"] - 1)) // 2 + 1)) for a in axes]
        if rng.random() < 0.4:
            kw["adj"] = [int(rng.integers(0, a["s"])) for a in axes]
    no_bias = bool(rng.random() < 0.5)
    if not no_bias or rng.random() < 0.3:
        kw["no_bias"] = no_bias
    x_shape = [int(rng.integers(1, 3)), c_in, *[a["n"] for a in axes]]
    w_shape = [c_in, c_out // group, *[a["k"] for a in axes]]
    return ndim, kw, x_shape, w_shape, no_bias


MXNET_ERRORS = [
    dict(
        param="adj",
        x=[1, 2, 5],
        w=[2, 3, 3],
        kwargs=dict(kernel=[3], num_filter=3, stride=[2], adj=[2]),
    ),
    dict(param="kernel", x=[1, 2, 5], w=[2, 3, 3], kwargs=dict(kernel=[2], num_filter=3)),
    dict(param="num_filter", x=[1, 2, 5], w=[2, 3, 3], kwargs=dict(kernel=[3], num_filter=4)),
    dict(
        param="target_shape",
        x=[1, 2, 5],
        w=[2, 3, 3],
        kwargs=dict(kernel=[3], num_filter=3, stride=[2], target_shape=[12]),
    ),
    dict(
        param="num_group",
        x=[1, 3, 5],
        w=[3, 3, 3],
        kwargs=dict(kernel=[3], num_filter=3, num_group=2),
    ),
    dict(
        param="stride",
        x=[1, 2, 5, 5],
        w=[2, 3, 3, 3],
        kwargs=dict(kernel=[3, 3], num_filter=3, stride=[2]),
    ),
]


def mxnet_fixtures(count, rng, native=False):
    """mx.nd.Deconvolution on the CPU. MXNet 1.9.1's default (MKL-DNN) kernels fail on
    every target_shape call ("could not create a descriptor for a dilated
    deconvolution"), and its own kernels (MXNET_MKLDNN_ENABLED=0) have no 3-D
    deconvolution: ``native`` records the target_shape calls with its own kernels."""
    if native:
        os.environ["MXNET_MKLDNN_ENABLED"] = "0"
    os.environ["MXNET_STORAGE_FALLBACK_LOG_VERBOSE"] = "0"
    import mxnet as mx

    cases, arrays, rejected = [], {}, []
    while len(cases) < count:
        ndim, kw, x_shape, w_shape, no_bias = mxnet_case(rng, native)
        x = rng.standard_normal(x_shape).astype("float32")
        w = rng.standard_normal(w_shape).astype("float32")
        b = None if no_bias else rng.standard_normal(kw["num_filter"]).astype("float32")
        args = [mx.nd.array(v) for v in (x, w, b) if v is not None]
        for a in args:
            a.attach_grad()
        try:
            with mx.autograd.record():
                y = mx.nd.Deconvolution(*args, **kw)
            g = rng.standard_normal(y.shape).astype("float32")
            y.backward(mx.nd.array(g))
            y_np = y.asnumpy()
            grads = [a.grad.asnumpy() for a in args]
        except Exception as e:  # noqa: BLE001 - the framework's rejection is the record
            if len(rejected) < 20:
                rejected.append(
                    dict(
                        ndim=ndim,
                        x=x_shape,
                        w=w_shape,
                        kwargs=kw,
                        raised=type(e).__name__,
                        message=str(e).strip()[-300:],
                    )
                )
            continue
        i = len(cases)
        cases.append(dict(function="deconvolution", kwargs=kw))
        store(arrays, i, x=x, w=w, b=b, g=g, y=y_np, **dict(zip(("gx", "gw", "gb"), grads)))

    def run(case):
        args = [mx.nd.array(np.ones(case[k], "float32")) for k in ("x", "w")]
        mx.nd.Deconvolution(*args, no_bias=True, **case["kwargs"]).asnumpy()

    if not native:
        rejected += check_errors(run, MXNET_ERRORS)
    return cases, arrays, rejected, dict(mxnet=mx.__version__, mkldnn=not native)


# ---------------------------------------------------------------------------- flax, equinox, haiku


def _forked(work):
    """``work()`` in a forked child: XLA's CPU compiler aborts the process on some
    lhs-dilated convolutions that these libraries emit. Returns ``("ok", result)``,
    ``("error", (type, message))`` or ``("aborted", signal)``. The parent must not have
    run JAX computations (its threads would not survive the fork)."""
    import pickle

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            out = ("ok", work())
        except Exception as e:  # noqa: BLE001 - reported to the parent
            out = ("error", (type(e).__name__, str(e).strip()[-300:]))
        with os.fdopen(write, "wb") as f:
            pickle.dump(out, f)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    return pickle.loads(data) if data else ("aborted", os.WTERMSIG(status))


def _layer_kwargs(kw):
    """``kw`` as the layer takes it: (low, high) padding pairs as tuples (flax and haiku
    read a list pair as something else), the recorded JSON keeping lists."""
    pads = kw.get("padding")
    if isinstance(pads, list) and pads and isinstance(pads[0], list):
        return dict(kw, padding=[tuple(p) for p in pads])
    return dict(kw)


def _jax_record(rng, fn, x, params):
    """Runs ``fn(x, params)`` under jax.vjp: output, cotangent and gradients (as numpy)."""
    import jax
    import jax.numpy as jnp

    y, vjp = jax.vjp(fn, jnp.asarray(x), params)
    g = rng.standard_normal(y.shape).astype("float32")
    gx, gp = vjp(jnp.asarray(g))
    return np.asarray(y), g, np.asarray(gx), {k: np.asarray(v) for k, v in gp.items()}


def _jax_cases(count, rng, draw, run, names):
    """The shared loop of the JAX libraries' generators: ``draw(rng)`` a case,
    ``run(case, rng)`` it in a forked child; XLA aborts are counted, not recorded."""
    cases, arrays, rejected, aborted = [], {}, [], 0
    while len(cases) < count:
        case = draw(rng)
        case_rng = np.random.default_rng(rng.integers(2**32))
        status, out = _forked(lambda case=case, case_rng=case_rng: run(case, case_rng))
        if status == "aborted":
            aborted += 1
            continue
        if status == "error":
            if len(rejected) < 20:
                rejected.append(dict(case["meta"], raised=out[0], message=out[1]))
            continue
        x, params, y, g, gx, gp = out
        i = len(cases)
        cases.append(case["record"])
        w, b = names
        store(arrays, i, x=x, w=params[w], b=params.get(b), g=g, y=y, gx=gx, gw=gp[w], gb=gp.get(b))
    return cases, arrays, rejected, aborted


def flax_case(rng):
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 6, 2: 5, 3: 3}[ndim])
    kw = dict(kernel_size=[a["k"] for a in axes])
    form = str(rng.choice(["SAME", "VALID", "CIRCULAR", "int", "pairs", "ints"]))
    if form == "int":
        kw["padding"] = int(rng.integers(0, 3))
    elif form == "pairs":
        kw["padding"] = [[int(rng.integers(-1, 3)), int(rng.integers(-1, 3))] for _ in axes]
    elif form == "ints":
        kw["padding"] = [int(rng.integers(0, 3)) for _ in axes]
    else:
        kw["padding"] = form
    if rng.random() < 0.8:
        kw["strides"] = scalar_or_list(rng, [a["s"] for a in axes])
    if rng.random() < 0.3:
        kw["kernel_dilation"] = scalar_or_list(rng, [a["d"] for a in axes])
    kw["transpose_kernel"] = bool(rng.random() < 0.5)
    kw["use_bias"] = bool(rng.random() < 0.7)
    batch = [[], [2], [2, 1]][int(rng.choice([0, 1, 1, 2]))]
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x_shape = [*batch, *[a["n"] for a in axes], c_in]
    return ndim, kw, x_shape, c_in, c_out


def flax_fixtures(count, rng):
    """flax.nnx.ConvTranspose (and, for every fifth case, flax.linen.ConvTranspose)."""
    import flax
    import jax
    from flax import linen, nnx

    def draw(rng):
        ndim, kw, x_shape, c_in, c_out = flax_case(rng)
        api = "linen" if rng.random() < 0.2 else "nnx"
        meta = dict(ndim=ndim, x=x_shape, c_out=c_out, kwargs=kw, api=api)
        return dict(
            meta=meta,
            record=dict(function="conv_transpose", api=api, kwargs=kw),
            args=(ndim, kw, x_shape, c_in, c_out, api),
        )

    def run(case, rng):
        ndim, kw, x_shape, c_in, c_out, api = case["args"]
        layer_kw = _layer_kwargs(kw)
        x = rng.standard_normal(x_shape).astype("float32")
        if api == "linen":
            module = linen.ConvTranspose(c_out, **layer_kw)
            shapes = module.init(jax.random.key(0), x)["params"]
            params = {k: rng.standard_normal(v.shape).astype("float32") for k, v in shapes.items()}
            fn = lambda x, p: module.apply({"params": p}, x)  # noqa: E731
        else:
            module = nnx.ConvTranspose(c_in, c_out, rngs=nnx.Rngs(0), **layer_kw)
            params = {"kernel": rng.standard_normal(module.kernel.shape).astype("float32")}
            if module.bias is not None:
                params["bias"] = rng.standard_normal(module.bias.shape).astype("float32")

            def fn(x, p):
                # a module built in this trace, whose params may be set to the traced ones
                m = nnx.ConvTranspose(c_in, c_out, rngs=nnx.Rngs(0), **layer_kw)
                m.kernel.value = p["kernel"]
                if "bias" in p:
                    m.bias.value = p["bias"]
                return m(x)

        return (x, params, *_jax_record(rng, fn, x, params))

    cases, arrays, rejected, aborted = _jax_cases(count, rng, draw, run, ("kernel", "bias"))
    return (
        cases,
        arrays,
        rejected,
        dict(flax=flax.__version__, jax=jax.__version__, xla_aborts_skipped=aborted),
    )


def equinox_case(rng):
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 6, 2: 5, 3: 3}[ndim])
    groups = int(rng.choice([1, 1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kw = dict(kernel_size=scalar_or_list(rng, [a["k"] for a in axes]))
    kw["stride"] = scalar_or_list(rng, [a["s"] for a in axes])
    if rng.random() < 0.3:
        kw["dilation"] = scalar_or_list(rng, [a["d"] for a in axes])
    else:
        for a in axes:
            a["d"] = 1
    mode = "CIRCULAR" if rng.random() < 0.15 else "ZEROS"
    form = str(rng.choice(["SAME", "SAME_LOWER", "VALID", "int", "ints", "pairs"]))
    if mode == "CIRCULAR":
        form = str(rng.choice(["SAME", "SAME_LOWER"]))
    if form == "int":
        kw["padding"] = int(rng.integers(0, 3))
    elif form == "ints":
        kw["padding"] = [int(rng.integers(0, 3)) for _ in axes]
    elif form == "pairs":
        kw["padding"] = [[int(rng.integers(0, 3)), int(rng.integers(0, 3))] for _ in axes]
    else:
        kw["padding"] = form
    if mode == "ZEROS" and rng.random() < 0.5:
        kw["output_padding"] = scalar_or_list(rng, [int(rng.integers(0, a["s"])) for a in axes])
    if mode == "CIRCULAR":
        kw["padding_mode"] = mode
    kw["groups"] = groups
    kw["use_bias"] = bool(rng.random() < 0.7)
    x_shape = [c_in, *[a["n"] for a in axes]]
    return ndim, kw, x_shape, c_in, c_out


def equinox_fixtures(count, rng):
    import equinox as eqx
    import jax

    def draw(rng):
        ndim, kw, x_shape, c_in, c_out = equinox_case(rng)
        meta = dict(ndim=ndim, x=x_shape, c_out=c_out, kwargs=kw)
        return dict(
            meta=meta,
            record=dict(function="conv_transpose", kwargs=kw),
            args=(ndim, kw, x_shape, c_in, c_out),
        )

    def run(case, rng):
        ndim, kw, x_shape, c_in, c_out = case["args"]
        layer_kw = _layer_kwargs(kw)
        x = rng.standard_normal(x_shape).astype("float32")
        layer = eqx.nn.ConvTranspose(ndim, c_in, c_out, key=jax.random.key(0), **layer_kw)
        params = {"weight": rng.standard_normal(layer.weight.shape).astype("float32")}
        if layer.bias is not None:
            params["bias"] = rng.standard_normal(layer.bias.shape).astype("float32")

        def fn(x, p):
            m = eqx.tree_at(lambda m: m.weight, layer, p["weight"])
            if "bias" in p:
                m = eqx.tree_at(lambda m: m.bias, m, p["bias"])
            return m(x)

        return (x, params, *_jax_record(rng, fn, x, params))

    cases, arrays, rejected, aborted = _jax_cases(count, rng, draw, run, ("weight", "bias"))
    return (
        cases,
        arrays,
        rejected,
        dict(equinox=eqx.__version__, jax=jax.__version__, xla_aborts_skipped=aborted),
    )


def haiku_case(rng):
    ndim = int(rng.integers(1, 4))
    axes = draw_axes(rng, ndim, {1: 6, 2: 5, 3: 3}[ndim])
    kw = dict(kernel_shape=scalar_or_list(rng, [a["k"] for a in axes]))
    kw["stride"] = scalar_or_list(rng, [a["s"] for a in axes])
    form = str(rng.choice(["SAME", "VALID", "pairs", "SAME", "VALID"]))
    if form == "pairs":
        kw["padding"] = [[int(rng.integers(0, 4)), int(rng.integers(0, 4))] for _ in axes]
    else:
        kw["padding"] = form
        if rng.random() < 0.5:  # an output_shape in the range the padding accepts
            sizes = []
            for a in axes:
                k, s, n = a["k"], a["s"], a["n"]
                low, high = (
                    ((n - 1) * s + 1, n * s) if form == "SAME" else ((n - 1) * s + k, n * s + k - 1)
                )
                sizes.append(int(rng.integers(low, high + 1 + (rng.random() < 0.1))))
            kw["output_shape"] = sizes
    kw["with_bias"] = bool(rng.random() < 0.7)
    kw["data_format"] = "channels_last" if rng.random() < 0.7 else "channels_first"
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    spatial = [a["n"] for a in axes]
    x_shape = [*spatial, c_in] if kw["data_format"] == "channels_last" else [c_in, *spatial]
    if rng.random() < 0.7:
        x_shape = [int(rng.integers(1, 3)), *x_shape]
    return ndim, kw, x_shape, c_out


def haiku_fixtures(count, rng):
    import haiku as hk
    import jax

    def draw(rng):
        ndim, kw, x_shape, c_out = haiku_case(rng)
        meta = dict(ndim=ndim, x=x_shape, c_out=c_out, kwargs=kw)
        return dict(
            meta=meta,
            record=dict(function="conv_transpose", kwargs=kw),
            args=(ndim, kw, x_shape, c_out),
        )

    def run(case, rng):
        ndim, kw, x_shape, c_out = case["args"]
        layer_kw = _layer_kwargs(kw)
        x = rng.standard_normal(x_shape).astype("float32")
        f = hk.without_apply_rng(
            hk.transform(lambda x: hk.ConvNDTranspose(ndim, c_out, name="t", **layer_kw)(x))
        )
        shapes = f.init(jax.random.key(0), x)["t"]
        params = {k: rng.standard_normal(v.shape).astype("float32") for k, v in shapes.items()}
        return (x, params, *_jax_record(rng, lambda x, p: f.apply({"t": p}, x), x, params))

    cases, arrays, rejected, aborted = _jax_cases(count, rng, draw, run, ("w", "b"))
    return (
        cases,
        arrays,
        rejected,
        dict(haiku=hk.__version__, jax=jax.__version__, xla_aborts_skipped=aborted),
    )


# ---------------------------------------------------------------------------- common


def store(arrays, i, **named):
    for key, value in named.items():
        if value is not None:
            arrays[f"{i}/{key}"] = np.asarray(value, dtype=np.float32)


def check_errors(run, cases):
    """Keeps the invalid calls the framework really rejects, with its exception type."""
    kept = []
    for case in cases:
        try:
            run(case)
        except Exception as e:  # noqa: BLE001 - any rejection counts
            kept.append(dict(case, raised=type(e).__name__, message=str(e).strip()[:300]))
        else:
            print(f"warning: the framework accepted {case}", file=sys.stderr)
    return kept


def main():
    framework = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else COUNTS[framework]
    rng = np.random.default_rng(
        {
            "paddle": 1,
            "chainer": 2,
            "megengine": 3,
            "onnx": 4,
            "tensorflow": 5,
            "keras": 6,
            "mindspore": 8,
            "mxnet": 9,
            "mxnet_native": 10,
            "flax": 11,
            "equinox": 12,
            "haiku": 13,
            "keras_jax": 7,
        }[framework]
    )
    make = {
        "paddle": paddle_fixtures,
        "chainer": chainer_fixtures,
        "megengine": megengine_fixtures,
        "onnx": onnx_fixtures,
        "tensorflow": tensorflow_fixtures,
        "keras": keras_fixtures,  # KERAS_BACKEND=tensorflow
        "mindspore": mindspore_fixtures,
        "mxnet": mxnet_fixtures,
        "flax": flax_fixtures,
        "equinox": equinox_fixtures,
        "haiku": haiku_fixtures,
        "mxnet_native": lambda count, rng: mxnet_fixtures(count, rng, native=True),
        "keras_jax": lambda count, rng: keras_fixtures(count, rng, "jax"),  # KERAS_BACKEND=jax
    }[framework]
    cases, arrays, errors, versions = make(count, rng)
    meta = dict(framework=framework, versions=versions, cases=cases, errors=errors)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{framework}.npz")
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    print(
        f"{framework}: {len(cases)} cases, {len(errors)} rejected calls -> {path} "
        f"({os.path.getsize(path) / 1e6:.2f} MB)"
    )
    assert math.isfinite(len(cases))


if __name__ == "__main__":
    main()
