"""Reference fixtures for the layer converters and initialisers (oracle environments).

    O=$HOME/.cache/convt-oracles
    $O/paddle/bin/python tools/make_layer_fixtures.py paddle      # Conv{1,2,3}DTranspose
    $O/paddle/bin/python tools/make_layer_fixtures.py chainer     # links + save_npz
    $O/megengine/bin/python tools/make_layer_fixtures.py megengine
    KERAS_BACKEND=tensorflow $O/tf/bin/python tools/make_layer_fixtures.py keras

Each writes ``tests/fixtures/layers_FRAMEWORK.npz``. Per random layer (built by the
framework's own class with its constructor arguments, random weights, and
``weight_norm`` where the framework has it): the constructor arguments, the attributes
a converter reads, the state dict (or Keras's config and weights, or chainer's
``save_npz`` bytes), an input, the layer's output, a cotangent and the gradients with
respect to the input and every stored parameter. Per framework also the quantiles of a
freshly initialised layer's parameters (``init``), drawn by the framework's own
initialisers. Standalone: imports no convt code.
"""

from __future__ import annotations

import io
import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import OUT, draw_axes, paddle_case, scalar_or_list  # noqa: E402

warnings.filterwarnings("ignore")
QUANTILES = np.linspace(0.0, 1.0, 101)
COUNTS = {"paddle": 60, "chainer": 40, "megengine": 40, "keras": 40}


def quantile_record(name, args, values):
    values = np.asarray(values, dtype=np.float64).ravel()
    return dict(
        cls=name,
        args=args,
        count=int(values.size),
        quantiles=np.quantile(values, QUANTILES).tolist(),
        mean=float(values.mean()),
        std=float(values.std()),
    )


# ---------------------------------------------------------------------------- paddle


def paddle_layers(count, rng):
    import paddle

    classes = {
        1: paddle.nn.Conv1DTranspose,
        2: paddle.nn.Conv2DTranspose,
        3: paddle.nn.Conv3DTranspose,
    }
    cases, arrays = [], {}
    while len(cases) < count:
        ndim, kw, x_shape, w_shape, extra = paddle_case(rng)
        kw = dict(kw)
        c_in, c_out = w_shape[0], w_shape[1] * kw["groups"]
        args = dict(in_channels=c_in, out_channels=c_out, kernel_size=w_shape[2:], **kw)
        if rng.random() < 0.3:
            args["bias_attr"] = False
        try:
            layer = classes[ndim](**args)
        except Exception:
            continue
        layer.weight.set_value(rng.standard_normal(w_shape).astype("float32"))
        if layer.bias is not None:
            layer.bias.set_value(rng.standard_normal(c_out).astype("float32"))
        norm_dim = "none"
        if rng.random() < 0.4:
            norm_dim = [0, 1, None][int(rng.integers(3))]
            paddle.nn.utils.weight_norm(layer, dim=norm_dim)
        x = rng.standard_normal(x_shape).astype("float32")
        call = {}
        try:
            y0 = layer(paddle.to_tensor(x))
            if extra == "output_size":
                channels_first = kw["data_format"].startswith("NC")
                spatial = list(y0.shape[2:] if channels_first else y0.shape[1:-1])
                stride = kw["stride"] if isinstance(kw["stride"], list) else [kw["stride"]] * ndim
                call["output_size"] = [v + int(rng.integers(0, s)) for v, s in zip(spatial, stride)]
            xt = paddle.to_tensor(x, stop_gradient=False)
            y = layer(xt, **call)
        except Exception:
            continue
        if min(y.shape) < 1:
            continue
        g = rng.standard_normal(y.shape).astype("float32")
        y.backward(paddle.to_tensor(g))
        state = {k: v.numpy() for k, v in layer.state_dict().items()}
        params = dict(layer.named_parameters())
        grads = {k: params[k].grad.numpy() for k in state}
        attrs = dict(
            _in_channels=layer._in_channels,
            _out_channels=layer._out_channels,
            _kernel_size=list(layer._kernel_size),
            _stride=list(layer._stride),
            _padding=layer._padding,
            output_padding=layer.output_padding,
            _dilation=list(layer._dilation),
            _groups=layer._groups,
            _data_format=layer._data_format,
            has_bias=layer.bias is not None,
        )
        i = len(cases)
        cases.append(
            dict(
                cls=type(layer).__name__,
                args=args,
                attrs=attrs,
                call=call,
                weight_norm_dim=norm_dim,
                state=sorted(state),
            )
        )
        store(arrays, i, x=x, y=y.numpy(), g=g, gx=xt.grad.numpy())
        for k in state:
            arrays[f"{i}/state/{k}"] = state[k].astype(np.float32)
            arrays[f"{i}/grad/{k}"] = grads[k].astype(np.float32)
    init = []
    for name, args in (
        ("Conv2DTranspose", dict(in_channels=48, out_channels=40, kernel_size=4, groups=2)),
        ("Conv1DTranspose", dict(in_channels=64, out_channels=32, kernel_size=7)),
    ):
        layer = getattr(paddle.nn, name)(**args)
        init.append(quantile_record(name, args, layer.weight.numpy()))
        init[-1]["bias_max_abs"] = float(np.abs(layer.bias.numpy()).max())
    return cases, arrays, init, dict(paddle=paddle.__version__)


# ---------------------------------------------------------------------------- chainer


def chainer_layers(count, rng):
    import chainer
    import chainer.links as L

    cases, arrays = [], {}
    while len(cases) < count:
        ndim = int(rng.integers(1, 4))
        axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
        groups = int(rng.integers(1, 3))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        k = [a["k"] for a in axes]
        pads = [int(rng.integers(0, a["d"] * (a["k"] - 1) + 1)) for a in axes]
        args = dict(
            stride=scalar_or_list(rng, [a["s"] for a in axes]),
            pad=scalar_or_list(rng, pads),
            nobias=bool(rng.random() < 0.3),
            dilate=scalar_or_list(rng, [a["d"] for a in axes]),
            groups=groups,
        )
        use_2d = ndim == 2 and rng.random() < 0.6
        if use_2d:
            cls, ctor = "Deconvolution2D", dict(in_channels=c_in, out_channels=c_out, ksize=k)
        else:
            cls, ctor = (
                "DeconvolutionND",
                dict(ndim=ndim, in_channels=c_in, out_channels=c_out, ksize=k),
            )
        x = rng.standard_normal([int(rng.integers(1, 3)), c_in, *[a["n"] for a in axes]]).astype(
            "float32"
        )
        try:
            link = getattr(L, cls)(**ctor, **args)
            y0 = link(x)
        except Exception:
            continue
        if min(y0.shape) < 1:
            continue
        if rng.random() < 0.3:  # an outsize the link accepts: the cover_all size, say
            args["outsize"] = [
                v + int(rng.integers(0, 2)) * (a["s"] > 1) for v, a in zip(y0.shape[2:], axes)
            ]
            try:
                link = getattr(L, cls)(**ctor, **args)
                link(x)
            except Exception:
                args.pop("outsize")
                link = getattr(L, cls)(**ctor, **args)
        link.W.array[...] = rng.standard_normal(link.W.shape).astype("float32")
        if link.b is not None:
            link.b.array[...] = rng.standard_normal(link.b.shape).astype("float32")
        model = chainer.Chain()
        with model.init_scope():
            model.up = link
        model.cleargrads()  # chainer starts a parameter's gradient as NaN
        xv = chainer.Variable(x)
        y = model.up(xv)
        g = rng.standard_normal(y.shape).astype("float32")
        y.grad = g
        y.backward()
        buffer = io.BytesIO()
        chainer.serializers.save_npz(buffer, model)
        i = len(cases)
        cases.append(dict(cls=cls, args={**ctor, **args}))
        store(arrays, i, x=x, y=y.array, g=g, gx=xv.grad, W=link.W.array, gW=link.W.grad)
        if link.b is not None:
            store(arrays, i, b=link.b.array, gb=link.b.grad)
        arrays[f"{i}/npz"] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    init = []
    for cls, args in (
        ("Deconvolution2D", dict(in_channels=48, out_channels=40, ksize=4, groups=2)),
        ("DeconvolutionND", dict(ndim=1, in_channels=64, out_channels=32, ksize=7)),
    ):
        link = getattr(L, cls)(**args)
        init.append(quantile_record(cls, args, link.W.array))
        init[-1]["bias_max_abs"] = float(np.abs(link.b.array).max())
    return cases, arrays, init, dict(chainer=chainer.__version__)


# ---------------------------------------------------------------------------- megengine


def megengine_layers(count, rng):
    import megengine as mge
    import megengine.autodiff as ad
    import megengine.module as M

    cases, arrays = [], {}
    while len(cases) < count:
        ndim = int(rng.integers(2, 4))
        axes = draw_axes(rng, ndim, {2: 5, 3: 3}[ndim])
        groups = int(rng.integers(1, 3))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        pads = [int(rng.integers(0, a["d"] * (a["k"] - 1) + 1)) for a in axes]
        args = dict(
            in_channels=c_in,
            out_channels=c_out,
            kernel_size=scalar_or_list(rng, [a["k"] for a in axes]),
            stride=scalar_or_list(rng, [a["s"] for a in axes]),
            padding=scalar_or_list(rng, pads),
            dilation=scalar_or_list(rng, [a["d"] for a in axes]),
            groups=groups,
            bias=bool(rng.random() < 0.7),
        )
        if rng.random() < 0.4:
            ops = [int(rng.integers(0, a["s"])) for a in axes]
            if ndim == 2 and ops[0] == 0 and ops[1]:
                continue  # megengine 1.13 ignores output_padding then (see convt.megengine)
            args["output_padding"] = scalar_or_list(rng, ops)
        cls = f"ConvTranspose{ndim}d"
        x = rng.standard_normal([int(rng.integers(1, 3)), c_in, *[a["n"] for a in axes]]).astype(
            "float32"
        )
        try:
            module = getattr(M, cls)(**args)
            module.weight._reset(
                mge.tensor(rng.standard_normal(module.weight.shape).astype("float32"))
            )
            if module.bias is not None:
                module.bias._reset(
                    mge.tensor(rng.standard_normal(module.bias.shape).astype("float32"))
                )
            xt = mge.tensor(x)
            gm = ad.GradManager()
            params = [p for p in (module.weight, module.bias) if p is not None]
            gm.attach([xt, *params])
            with gm:
                y = module(xt)
                g = rng.standard_normal(y.shape).astype("float32")
                gm.backward(y, mge.tensor(g))
        except Exception:
            continue
        if min(y.shape) < 1:
            continue
        attrs = dict(
            in_channels=module.in_channels,
            out_channels=module.out_channels,
            kernel_size=list(np.atleast_1d(module.kernel_size).tolist()),
            stride=np.atleast_1d(module.stride).tolist(),
            padding=np.atleast_1d(module.padding).tolist(),
            output_padding=np.atleast_1d(module.output_padding).tolist(),
            dilation=np.atleast_1d(module.dilation).tolist(),
            groups=module.groups,
            conv_mode=getattr(module, "conv_mode", None),
            compute_mode=getattr(module, "compute_mode", None),
        )
        state = {k: np.asarray(v) for k, v in module.state_dict().items()}
        i = len(cases)
        cases.append(dict(cls=cls, args=args, attrs=attrs, state=sorted(state)))
        store(arrays, i, x=x, y=y.numpy(), g=g, gx=xt.grad.numpy())
        for k in state:
            arrays[f"{i}/state/{k}"] = state[k].astype(np.float32)
            arrays[f"{i}/grad/{k}"] = getattr(module, k).grad.numpy().astype(np.float32)
    init = []
    for cls, args in (
        ("ConvTranspose2d", dict(in_channels=48, out_channels=40, kernel_size=4, groups=2)),
        ("ConvTranspose3d", dict(in_channels=24, out_channels=16, kernel_size=3)),
    ):
        module = getattr(M, cls)(**args)
        init.append(quantile_record(cls, args, module.weight.numpy()))
        init[-1]["bias_max_abs"] = float(np.abs(module.bias.numpy()).max())
    return cases, arrays, init, dict(megengine=mge.__version__)


# ---------------------------------------------------------------------------- keras


def keras_layers(count, rng):
    import keras
    import tensorflow as tf

    cases, arrays = [], {}
    while len(cases) < count:
        ndim = int(rng.integers(1, 4))
        axes = draw_axes(rng, ndim, {1: 7, 2: 5, 3: 3}[ndim])
        for a in axes:  # the layers refuse strides > 1 with dilation_rate > 1
            a["d" if rng.random() < 0.7 else "s"] = 1
        channels_last = rng.random() < 0.7
        c_in, filters = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        args = dict(
            filters=filters,
            kernel_size=scalar_or_list(rng, [a["k"] for a in axes]),
            strides=scalar_or_list(rng, [a["s"] for a in axes]),
            padding=str(rng.choice(["valid", "same"])),
            data_format="channels_last" if channels_last else "channels_first",
            dilation_rate=scalar_or_list(rng, [a["d"] for a in axes]),
            use_bias=bool(rng.random() < 0.7),
        )
        if rng.random() < 0.5:
            args["output_padding"] = scalar_or_list(
                rng, [int(rng.integers(0, a["s"])) for a in axes]
            )
        spatial = [a["n"] for a in axes]
        x_shape = (
            [int(rng.integers(1, 3)), *spatial, c_in]
            if channels_last
            else [int(rng.integers(1, 3)), c_in, *spatial]
        )
        x = rng.standard_normal(x_shape).astype("float32")
        cls = f"Conv{ndim}DTranspose"
        try:
            layer = getattr(keras.layers, cls)(**args)
            layer.build(x.shape)
            weights = [rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()]
            layer.set_weights(weights)
            xt = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                y = layer(xt)
                g = rng.standard_normal(y.shape).astype("float32")
                loss = tf.reduce_sum(y * g)
            grads = tape.gradient(loss, [xt, *layer.trainable_weights])
        except Exception:
            continue
        if min(y.shape) < 1 or any(v is None for v in grads):
            continue
        if not channels_last and args["use_bias"] and y.shape[-1] == filters:
            continue  # Keras's TF bias-add bug (see convt.keras); the op fixtures cover it
        i = len(cases)
        config = json.loads(json.dumps(layer.get_config(), default=str))
        cases.append(dict(cls=cls, args=args, config=config, weights=len(weights)))
        store(arrays, i, x=x, y=np.asarray(y), g=g, gx=np.asarray(grads[0]))
        for j, (w, gw) in enumerate(zip(weights, grads[1:])):
            arrays[f"{i}/weight{j}"] = w
            arrays[f"{i}/grad{j}"] = np.asarray(gw).astype(np.float32)
    init = []
    for cls, args, shape in (
        ("Conv2DTranspose", dict(filters=40, kernel_size=4), (1, 8, 8, 48)),
        ("Conv1DTranspose", dict(filters=32, kernel_size=7), (1, 8, 64)),
    ):
        layer = getattr(keras.layers, cls)(**args)
        layer.build(shape)
        kernel, bias = layer.get_weights()
        init.append(quantile_record(cls, {**args, "in_channels": shape[-1]}, kernel))
        init[-1]["bias_max_abs"] = float(np.abs(bias).max())
    return cases, arrays, init, dict(keras=keras.__version__, tensorflow=tf.__version__)


def store(arrays, i, **named):
    for key, value in named.items():
        if value is not None:
            arrays[f"{i}/{key}"] = np.asarray(value, dtype=np.float32)


def main():
    framework = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else COUNTS[framework]
    rng = np.random.default_rng(
        {"paddle": 21, "chainer": 22, "megengine": 23, "keras": 24}[framework]
    )
    make = {
        "paddle": paddle_layers,
        "chainer": chainer_layers,
        "megengine": megengine_layers,
        "keras": keras_layers,
    }[framework]
    cases, arrays, init, versions = make(count, rng)
    meta = dict(framework=framework, versions=versions, cases=cases, init=init)
    path = os.path.join(OUT, f"layers_{framework}.npz")
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    print(f"{framework}: {len(cases)} layers -> {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
