"""convt.layers.flax.ConvTranspose (nnx) and convt.layers.equinox.ConvTranspose against torch's
modules: outputs, gradients, output_size, and torch's initialisation."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import convt.layers.equinox
import convt.layers.flax
from helpers import assert_close

CONFIGS = [  # ndim, in, out, kernel, stride, padding, output_padding, groups, bias, dilation
    (1, 4, 6, 5, 3, 1, 2, 2, True, 1),
    (2, 3, 4, (3, 4), 2, (1, 0), (1, 1), 1, False, (1, 2)),
    (3, 2, 2, 2, 2, 0, 0, 2, True, 1),
]


def torch_module(ndim, c_in, c_out, k, s, p, op, g, bias, d):
    cls = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}
    return cls[ndim](c_in, c_out, k, s, p, op, g, bias, d)


def reference(module, x, g):
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    y.backward(torch.tensor(g))
    grads = {"weight": module.weight.grad.numpy()}
    if module.bias is not None:
        grads["bias"] = module.bias.grad.numpy()
    return y.detach().numpy(), xt.grad.numpy(), grads


@pytest.mark.parametrize("config", CONFIGS)
def test_nnx_layer_matches_torch(config):
    ndim, c_in, c_out, k, s, p, op, g, bias, d = config
    module = torch_module(*config)
    layer = convt.layers.flax.ConvTranspose(
        c_in, c_out, k, s, p, op, g, bias, d, num_spatial_dims=ndim, rngs=nnx.Rngs(0)
    )
    layer.weight.set_value(jnp.asarray(module.weight.detach().numpy()))
    if bias:
        layer.bias.set_value(jnp.asarray(module.bias.detach().numpy()))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, c_in, *[5] * ndim)).astype(np.float32)
    with torch.no_grad():
        y_shape = module(torch.tensor(x)).shape
    cot = rng.standard_normal(y_shape).astype(np.float32)
    want_y, want_gx, want_gp = reference(module, x, cot)

    graphdef, state = nnx.split(layer)

    @jax.jit
    def run(state, x):
        def f(state, x):
            return nnx.merge(graphdef, state)(x)

        y, vjp = jax.vjp(f, state, x)
        return y, vjp(jnp.asarray(cot))

    y, (g_state, gx) = run(state, jnp.asarray(x))
    assert_close(y, want_y)
    assert_close(gx, want_gx)
    assert_close(g_state["weight"].get_value(), want_gp["weight"])
    if bias:
        assert_close(g_state["bias"].get_value(), want_gp["bias"])


@pytest.mark.parametrize("config", CONFIGS)
def test_equinox_layer_matches_torch_unbatched(config):
    ndim, c_in, c_out, k, s, p, op, g, bias, d = config
    module = torch_module(*config)
    cls = getattr(convt.layers.equinox, f"ConvTranspose{ndim}d")
    layer = cls(c_in, c_out, k, s, p, op, g, bias, d, key=jax.random.key(0))
    layer = eqx.tree_at(lambda m: m.weight, layer, jnp.asarray(module.weight.detach().numpy()))
    if bias:
        layer = eqx.tree_at(lambda m: m.bias, layer, jnp.asarray(module.bias.detach().numpy()))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((c_in, *[4] * ndim)).astype(np.float32)
    with torch.no_grad():
        y_shape = module(torch.tensor(x)).shape
    cot = rng.standard_normal(y_shape).astype(np.float32)
    want_y, want_gx, want_gp = reference(module, x, cot)

    @eqx.filter_jit
    def run(layer, x):
        y, vjp = jax.vjp(lambda layer, x: layer(x), layer, x)
        return y, vjp(jnp.asarray(cot))

    y, (g_layer, gx) = run(layer, jnp.asarray(x))
    assert_close(y, want_y)
    assert_close(gx, want_gx)
    assert_close(g_layer.weight, want_gp["weight"])
    if bias:
        assert_close(g_layer.bias, want_gp["bias"])


def test_output_size_at_call_time():
    module = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    layer = convt.layers.equinox.ConvTranspose2d(2, 3, 3, 2, 1, key=jax.random.key(0))
    layer = eqx.tree_at(lambda m: m.weight, layer, jnp.asarray(module.weight.detach().numpy()))
    layer = eqx.tree_at(lambda m: m.bias, layer, jnp.asarray(module.bias.detach().numpy()))
    x = np.random.default_rng(2).standard_normal((2, 5, 5)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.tensor(x), output_size=[10, 10]).numpy()
    assert_close(layer(jnp.asarray(x), output_size=(10, 10)), want)


@pytest.mark.parametrize("shape", [(64, 16, 5, 5), (48, 32, 3)])
def test_initialisation_is_torchs(shape):
    """torch's reset_parameters: the same bound sqrt(groups / (C_out * prod(k))) for
    weight and bias, uniform: compared with torch's own draws by bounds and quantiles."""
    c_in, c_out, *k = shape
    ndim = len(k)
    groups = 2
    module = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d}[ndim](
        c_in, c_out, k, groups=groups
    )
    bound = math.sqrt(groups / (c_out * math.prod(k)))
    torch_w = module.weight.detach().numpy().ravel()
    assert np.abs(torch_w).max() <= bound and np.abs(torch_w).max() > 0.95 * bound
    layer = convt.layers.flax.ConvTranspose(c_in, c_out, k, groups=groups, rngs=nnx.Rngs(3))
    eqx_layer = convt.layers.equinox.ConvTranspose(
        c_in, c_out, k, groups=groups, key=jax.random.key(4)
    )
    for w, b in (
        (np.asarray(layer.weight.get_value()), np.asarray(layer.bias.get_value())),
        (np.asarray(eqx_layer.weight), np.asarray(eqx_layer.bias)),
    ):
        assert w.shape == tuple(module.weight.shape) and b.shape == (c_out,)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
        assert np.abs(b).max() <= bound
        # U(-bound, bound)'s quantiles, within 5 standard errors, for both draws
        quantiles = np.linspace(0.05, 0.95, 19)
        tolerance = 5 * 2 * bound * np.sqrt(0.25 / w.size)
        for draws in (w, torch_w):
            np.testing.assert_allclose(
                np.quantile(draws, quantiles), -bound + 2 * bound * quantiles, atol=tolerance
            )


def test_training_steps_lower_the_loss():
    layer = convt.layers.flax.ConvTranspose(4, 2, 4, 2, 1, num_spatial_dims=2, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (8, 4, 6, 6))
    target = jax.random.normal(jax.random.key(2), (8, 2, 12, 12))

    @nnx.jit
    def step(layer):
        def loss(layer):
            return jnp.mean((layer(x) - target) ** 2)

        value, grads = nnx.value_and_grad(loss)(layer)
        nnx.update(
            layer, jax.tree.map(lambda p, g: p - 0.1 * g, nnx.state(layer, nnx.Param), grads)
        )
        return value

    losses = [float(step(layer)) for _ in range(5)]
    assert losses[-1] < losses[0]


def test_layers_need_their_library_only_on_use():
    import subprocess
    import sys

    code = (
        "import sys, convt.flax, convt.equinox; "
        "assert 'flax' not in sys.modules and 'equinox' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _fixture_layer(framework, index):
    """A recorded framework layer (tests/test_converters.py's fixtures): the convt layer,
    its canonical params, and the framework's input and output."""
    from test_converters import load

    meta, arrays = load(framework)
    case = meta["cases"][index]
    layer = getattr(getattr(convt, framework), case["cls"])(**case["args"])
    if framework == "paddle":
        state = {k: arrays[f"{index}/state/{k}"] for k in case["state"]}
        dim = case["weight_norm_dim"]
        params = convt.paddle.from_state_dict(
            state, layer, weight_norm_dim=0 if dim == "none" else dim
        )
    else:
        params = {"weight": arrays[f"{index}/W"]}
        if layer.bias:
            params["bias"] = arrays[f"{index}/b"]
    return layer, params, arrays[f"{index}/x"], arrays[f"{index}/y"], case


def test_other_frameworks_spellings_through_layer_option():
    import convt.chainer
    import convt.paddle

    meta_index = next(  # a paddle layer called without output_size
        i for i in range(60) if not _fixture_layer("paddle", i)[4]["call"]
    )
    layer, params, x, y, _ = _fixture_layer("paddle", meta_index)
    module = convt.layers.flax.ConvTranspose(layer=layer, params=params, rngs=nnx.Rngs(0))
    assert_close(nnx.jit(lambda m, x: m(x))(module, x), y)

    layer, params, x, y, _ = _fixture_layer("chainer", 1)
    module = convt.layers.equinox.ConvTranspose(layer=layer, params=params, key=jax.random.key(0))
    assert_close(eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(module, x), y)  # unbatched calls
    assert_close(module(x), y)

    # initialised as the framework initialises: chainer's LeCunNormal, paddle's Xavier
    wide = convt.chainer.Deconvolution2D(64, 32, 4, stride=2, pad=1)
    module = convt.layers.equinox.ConvTranspose2d(layer=wide, key=jax.random.key(1))
    assert abs(float(jnp.std(module.weight)) * math.sqrt(32 * 16) - 1) < 0.03
    assert not np.any(module.bias)
    module = convt.layers.flax.ConvTranspose(
        layer=convt.paddle.Conv1DTranspose(64, 32, 7), rngs=nnx.Rngs(2)
    )
    bound = math.sqrt(6 / (96 * 7))
    assert float(jnp.max(jnp.abs(module.weight.get_value()))) <= bound

    with pytest.raises(TypeError, match="not both"):
        convt.layers.flax.ConvTranspose(4, 4, 3, layer=wide, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="3-D layer class"):
        convt.layers.equinox.ConvTranspose3d(layer=wide, key=jax.random.key(0))
    with pytest.raises(TypeError, match="convt.layers.Layer"):
        convt.layers.equinox.ConvTranspose(layer="paddle", key=jax.random.key(0))


def test_layers_are_jit_arguments():
    """A converted torch layer and a framework-spelled `Layer` pass through ``jax.jit``
    as arguments (pytrees without leaves) and give what they give closed over."""
    import convt.paddle
    import convt.torch as ct

    params, layer = ct.from_module(torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1))
    paddle_layer = convt.paddle.Conv2DTranspose(4, 3, 3, stride=2)
    paddle_params = paddle_layer.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 4, 5, 5)), jnp.float32)
    step = jax.jit(lambda layer, params, x: layer(params, x))
    for lay, par in ((layer, params), (paddle_layer, paddle_params)):
        assert jax.tree_util.tree_leaves(lay) == []
        np.testing.assert_array_equal(step(lay, par, x), lay(par, x))


def test_old_layer_names_warn_and_are_the_new_classes():
    import convt.equinox
    import convt.flax

    for module, new in ((convt.flax, convt.layers.flax), (convt.equinox, convt.layers.equinox)):
        for name in new.__all__:
            with pytest.warns(DeprecationWarning, match=f"convt.layers.{new.FRAMEWORK}"):
                assert getattr(module, name) is getattr(new, name)


def test_layer_classes_show_their_signatures():
    """help() and IDEs see torch's arguments, and the classes are named as they are."""
    import inspect

    for module in (convt.layers.flax, convt.layers.equinox):
        for name in module.__all__:
            cls = getattr(module, name)
            assert cls.__name__ == name and cls.__module__ == module.__name__
            parameters = list(inspect.signature(cls.__init__).parameters)
            assert parameters[1:4] == ["in_channels", "out_channels", "kernel_size"]
            assert cls.__doc__
    with pytest.raises(ValueError, match="2-D, got num_spatial_dims=3"):
        convt.layers.flax.ConvTranspose2d(2, 2, 3, num_spatial_dims=3, rngs=nnx.Rngs(0))


def test_every_layer_constructor_has_an_explicit_signature():
    """The frameworks' layer constructors show their arguments to help() and IDEs."""
    import inspect

    import convt.chainer
    import convt.keras
    import convt.megengine
    import convt.paddle
    import convt.torch

    constructors = [
        *(getattr(convt.torch, f"ConvTranspose{n}d") for n in (1, 2, 3)),
        *(getattr(convt.paddle, f"Conv{n}DTranspose") for n in (1, 2, 3)),
        *(getattr(convt.keras, f"Conv{n}DTranspose") for n in (1, 2, 3)),
        convt.megengine.ConvTranspose2d,
        convt.megengine.ConvTranspose3d,
        convt.chainer.Deconvolution2D,
        convt.chainer.DeconvolutionND,
    ]
    for constructor in constructors:
        kinds = {p.kind for p in inspect.signature(constructor).parameters.values()}
        assert inspect.Parameter.VAR_POSITIONAL not in kinds, constructor
        assert inspect.Parameter.VAR_KEYWORD not in kinds, constructor


def test_layer_class_errors_name_the_class_and_a_channels_last_input():
    layer = convt.layers.flax.ConvTranspose2d(4, 3, 3, stride=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"^flax: ConvTranspose2d \(torch's arguments\).*"):
        layer(jnp.ones((2, 8, 8, 4)))
    with pytest.raises(ValueError, match="looks channels-last.*moveaxis"):
        layer(jnp.ones((2, 8, 8, 4)))
    module = convt.layers.equinox.ConvTranspose1d(4, 3, 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"^equinox: ConvTranspose1d \(torch's arguments\)"):
        module(jnp.ones((2, 5)))


@pytest.mark.parametrize("library", ["flax", "equinox"])
def test_layer_classes_train_weight_norm_as_torch(library):
    """A weight-normed torch layer ported with ``weight_norm="keep"`` into the layer
    classes holds ``weight_g`` and ``weight_v``; their gradients are torch's."""
    import convt.torch as ct

    torch.manual_seed(3)
    module = torch.nn.utils.parametrizations.weight_norm(
        torch.nn.ConvTranspose1d(6, 4, 8, stride=4, padding=2)
    )
    params, layer = ct.from_module(module, weight_norm="keep")
    x = np.random.default_rng(4).standard_normal((2, 6, 7)).astype(np.float32)
    xt = torch.tensor(x)
    y = module(xt)
    cot = np.random.default_rng(5).standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.tensor(cot))
    weight = module.parametrizations.weight
    want = {"weight_g": weight.original0, "weight_v": weight.original1, "bias": module.bias}

    if library == "flax":
        up = convt.layers.flax.ConvTranspose1d(layer=layer, params=params, rngs=nnx.Rngs(0))
        assert up.weight is None
        grads = nnx.grad(lambda m: jnp.sum(m(jnp.asarray(x)) * cot))(up)
        got = {name: grads[name].get_value() for name in want}
    else:
        up = convt.layers.equinox.ConvTranspose1d(layer=layer, params=params)
        assert up.weight is None
        grads = eqx.filter_grad(lambda m: jnp.sum(m(jnp.asarray(x)) * cot))(up)
        got = {name: getattr(grads, name) for name in want}
    assert_close(up(jnp.asarray(x)), y.detach().numpy())
    for name, tensor in want.items():
        assert_close(got[name], tensor.grad.numpy())
    # drawn from scratch: g the norm of v, as torch's weight_norm starts
    fresh = convt.layers.flax.ConvTranspose1d(
        layer=convt.layers.weight_norm(ct.ConvTranspose1d(6, 4, 8)), rngs=nnx.Rngs(0)
    )
    v = fresh.weight_v.get_value()
    assert_close(fresh.weight_g.get_value(), jnp.sqrt(jnp.sum(v * v, axis=(1, 2), keepdims=True)))
    with pytest.raises(ValueError, match="weight_g"):
        convt.layers.equinox.ConvTranspose1d(layer=layer, params={"weight": params["weight_v"]})


@pytest.mark.filterwarnings("ignore:.*weight_norm.*deprecated:FutureWarning")
def test_equinox_weight_norm_wrapper_is_torchs_on_the_layer_class():
    """``eqx.nn.WeightNorm(layer, axis=0)`` around the equinox class (torch's weight
    layout) is torch's ``weight_norm(dim=0)``: outputs and gradients with respect to
    ``g`` and ``v`` loaded from torch."""
    torch.manual_seed(6)
    module = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(6, 4, 8, stride=4, padding=2))
    up = convt.layers.equinox.ConvTranspose1d(6, 4, 8, stride=4, padding=2, key=jax.random.key(0))
    up = eqx.tree_at(
        lambda m: (m.weight, m.bias),
        up,
        (jnp.asarray(module.weight_v.detach().numpy()), jnp.asarray(module.bias.detach().numpy())),
    )
    normed = eqx.nn.WeightNorm(up, axis=0)
    normed = eqx.tree_at(lambda m: m.g, normed, jnp.asarray(module.weight_g.detach().numpy()))
    x = np.random.default_rng(7).standard_normal((6, 7)).astype(np.float32)
    y = module(torch.tensor(x)[None])[0]
    cot = np.random.default_rng(8).standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.tensor(cot))
    grads = eqx.filter_grad(lambda m: jnp.sum(m(jnp.asarray(x)) * cot))(normed)
    assert_close(normed(jnp.asarray(x)), y.detach().numpy())
    assert_close(grads.g, module.weight_g.grad.numpy())
    assert_close(grads.layer.weight, module.weight_v.grad.numpy())
