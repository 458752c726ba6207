"""convt.torch.from_module / from_model against live torch modules: outputs and
gradients, weight_norm (both forms) and spectral_norm (eval) folded exactly."""

import dataclasses
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn

import convt.torch
from helpers import assert_close

# The old weight_norm hook is deprecated in torch, and still in checkpoints: tested here.
pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*deprecated:FutureWarning")

CLASSES = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def random_module(rng, ndim):
    groups = int(rng.choice([1, 1, 2]))
    stride = [int(v) for v in rng.integers(1, 4, ndim)]
    dilation = [int(v) for v in rng.integers(1, 3, ndim)]
    kernel = [int(v) for v in rng.integers(1, 5, ndim)]
    padding = [int(rng.integers(0, d * (k - 1) + 1)) for k, d in zip(kernel, dilation)]
    output_padding = [int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation)]
    return CLASSES[ndim](
        2 * groups,
        3 * groups,
        kernel,
        stride,
        padding,
        output_padding,
        groups,
        bias=bool(rng.random() < 0.7),
        dilation=dilation,
    )


def normalised(module, kind):
    if kind == "weight_norm_hook":
        return torch.nn.utils.weight_norm(module)
    if kind == "weight_norm":
        return torch.nn.utils.parametrizations.weight_norm(module)
    if kind == "spectral_norm_hook":
        module = torch.nn.utils.spectral_norm(module)
    elif kind == "spectral_norm":
        module = torch.nn.utils.parametrizations.spectral_norm(module)
    else:
        return module
    module.train()
    module(torch.randn(1, module.in_channels, *[4] * len(module.kernel_size)))  # power steps
    return module.eval()


def vjp_of(layer, params, x, g):
    out, vjp = jax.vjp(lambda p, x: layer(p, x), params, x)
    return out, vjp(g)


KINDS = ["plain", "weight_norm_hook", "weight_norm", "spectral_norm_hook", "spectral_norm"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_from_module_matches_torch(kind, ndim):
    rng = np.random.default_rng(ndim * 10 + KINDS.index(kind))
    torch.manual_seed(ndim)
    for _ in range(4):
        module = normalised(random_module(rng, ndim), kind)
        params, layer = convt.torch.from_module(module)
        sizes = [int(v) for v in rng.integers(1, 5, ndim)]
        spec = convt.torch.to_spec(
            ndim,
            stride=module.stride,
            padding=module.padding,
            output_padding=module.output_padding,
            groups=module.groups,
            dilation=module.dilation,
        )
        while min(spec.output_spatial_shape(sizes, module.kernel_size)) < 1:
            sizes = [v + 2 for v in sizes]  # long enough for the padding drawn
        x = rng.standard_normal((2, module.in_channels, *sizes)).astype(np.float32)
        with torch.no_grad():
            want = module(torch.tensor(x)).numpy()
        g = rng.standard_normal(want.shape).astype(np.float32)

        # torch's gradients: input, bias, and the effective weight as a leaf
        weight = convt.torch.effective_weight(module).detach().clone().requires_grad_(True)
        xt = torch.tensor(x, requires_grad=True)
        bias = None if module.bias is None else module.bias.detach().clone().requires_grad_(True)
        fn = getattr(torch.nn.functional, f"conv_transpose{ndim}d")
        y = fn(
            xt,
            weight,
            bias,
            module.stride,
            module.padding,
            module.output_padding,
            module.groups,
            module.dilation,
        )
        y.backward(torch.tensor(g))
        assert_close(y.detach().numpy(), want)

        run = jax.jit(lambda params, x, g, layer=layer: vjp_of(layer, params, x, g))
        out, (gp, gx) = run(params, jnp.asarray(x), jnp.asarray(g))
        assert_close(out, want)
        assert_close(gx, xt.grad.numpy())
        assert_close(gp["weight"], weight.grad.numpy())
        if bias is not None:
            assert_close(gp["bias"], bias.grad.numpy())


def test_weight_norm_is_per_input_channel_for_a_transposed_weight():
    module = torch.nn.utils.weight_norm(nn.ConvTranspose2d(3, 4, 3))
    assert module.weight_g.shape == (3, 1, 1, 1)  # dim 0: C_in of a transposed weight
    v, g_ = module.weight_v.detach().numpy(), module.weight_g.detach().numpy()
    want = g_ * v / np.sqrt((v.astype(np.float64) ** 2).sum(axis=(1, 2, 3), keepdims=True))
    params, _ = convt.torch.from_module(module)
    np.testing.assert_allclose(np.asarray(params["weight"]), want, rtol=1e-6)


def test_output_size_at_call_time():
    module = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    params, layer = convt.torch.from_module(module)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.tensor(x), output_size=[10, 10]).numpy()
    assert_close(layer(params, jnp.asarray(x), output_size=[10, 10]), want)


def test_from_model_keys_are_named_modules_paths():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(4, 2, 4, 2, 1))

        def forward(self, x):
            return self.block(x)

    model = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(), Up())
    model[2].block[1] = torch.nn.utils.parametrizations.weight_norm(model[2].block[1])
    layers = convt.torch.from_model(model)
    assert list(layers) == ["0", "2.block.1"]
    x = np.random.default_rng(0).standard_normal((1, 8, 3, 3)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.tensor(x)).numpy()
    (p0, l0), (p1, l1) = layers["0"], layers["2.block.1"]
    got = l1(p1, jax.nn.relu(l0(p0, jnp.asarray(x))))
    assert_close(got, want)
    assert l0 == convt.torch.ConvTranspose2d(8, 4, 4, 2, 1)
    assert hash(l0) == hash(convt.torch.ConvTranspose2d(8, 4, 4, 2, 1))


def test_torch_layer_constructors_and_init():
    """``convt.torch.ConvTranspose2d(...)`` is a `convt.layers.Layer` that computes the
    module's forward, initialised with torch's bounds."""
    module = nn.ConvTranspose2d(6, 4, (3, 2), stride=2, padding=1, output_padding=1, groups=2)
    layer = convt.torch.ConvTranspose2d(
        6, 4, (3, 2), stride=2, padding=1, output_padding=1, groups=2
    )
    assert isinstance(layer, convt.layers.Layer)
    params = {"weight": jnp.asarray(module.weight.detach().numpy())}
    params["bias"] = jnp.asarray(module.bias.detach().numpy())
    x = np.random.default_rng(1).standard_normal((2, 6, 4, 5)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.tensor(x), output_size=[8, 9]).numpy()
    assert_close(layer(params, jnp.asarray(x), output_size=[8, 9]), want)
    drawn = layer.init(jax.random.key(0))
    bound = 1 / math.sqrt(2 * 3 * 2)  # torch: 1 / sqrt(C_out / groups * prod(kernel))
    assert drawn["weight"].shape == module.weight.shape
    assert float(jnp.max(jnp.abs(drawn["weight"]))) <= bound
    assert float(jnp.max(jnp.abs(drawn["weight"]))) > 0.9 * bound
    with pytest.raises(ValueError, match="output_padding"):
        convt.torch.ConvTranspose1d(2, 2, 3, stride=2, output_padding=2)


def test_deprecated_torch_layer_still_works():
    with pytest.warns(DeprecationWarning, match="from_module returns"):
        legacy = convt.torch.ConvTranspose(2, (2, 2), (1, 1), (0, 0), (1, 1), 1)
    params, layer = convt.torch.from_module(nn.ConvTranspose2d(3, 2, 4, 2, 1))
    x = jnp.ones((1, 3, 4, 4))
    assert_close(legacy(params, x), layer(params, x))


def test_spectral_norm_in_training_mode_is_refused():
    module = torch.nn.utils.parametrizations.spectral_norm(nn.ConvTranspose2d(2, 3, 3))
    with pytest.raises(ValueError, match=r"module.eval\(\)"):
        convt.torch.from_module(module)


def test_not_a_conv_transpose():
    with pytest.raises(TypeError, match="ConvTranspose1d/2d/3d"):
        convt.torch.from_module(nn.Conv2d(2, 3, 3))
    with pytest.raises(TypeError, match="torch.nn module"):
        convt.torch.from_module(object())


def test_importing_convt_torch_does_not_import_torch():
    code = "import sys, convt, convt.torch; assert 'torch' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("form", ["hook", "parametrization"])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_kept_trains_as_torch(form, dim):
    """``weight_norm="keep"``: ``g`` and ``v`` stay parameters, folded inside the layer as
    torch folds them; outputs and the gradients with respect to ``g``, ``v``, the bias
    and the input equal torch's autograd."""
    torch.manual_seed(0)
    module = nn.ConvTranspose1d(6, 4, 8, stride=4, padding=2, groups=2)
    wrap = {
        "hook": nn.utils.weight_norm,
        "parametrization": nn.utils.parametrizations.weight_norm,
    }[form]
    module = wrap(module, dim=dim)
    params, layer = convt.torch.from_module(module, weight_norm="keep")
    assert set(params) == {"weight_g", "weight_v", "bias"}
    if form == "hook":
        g, v = module.weight_g, module.weight_v
    else:
        g, v = module.parametrizations.weight.original0, module.parametrizations.weight.original1
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 9)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    cot = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.tensor(cot))

    def loss(params, x):
        return jnp.sum(layer(params, x) * cot)

    assert_close(layer(params, jnp.asarray(x)), y.detach().numpy())
    grads, grad_x = jax.grad(loss, (0, 1))(params, jnp.asarray(x))
    assert_close(grads["weight_g"], g.grad.numpy())
    assert_close(grads["weight_v"], v.grad.numpy())
    assert_close(grads["bias"], module.bias.grad.numpy())
    assert_close(grad_x, xt.grad.numpy())
    # folded, the same layer's numbers come from one weight
    folded, plain = convt.torch.from_module(module)
    assert_close(plain(folded, jnp.asarray(x)), y.detach().numpy())


def test_weight_norm_keep_initialises_as_torch_starts():
    layer = convt.layers.weight_norm(convt.torch.ConvTranspose1d(4, 2, 3))
    assert layer == dataclasses.replace(convt.torch.ConvTranspose1d(4, 2, 3), weight_norm=(0,))
    params = layer.init(jax.random.key(0))
    module = nn.utils.parametrizations.weight_norm(nn.ConvTranspose1d(4, 2, 3))
    torch_shapes = {k: tuple(v.shape) for k, v in module.parametrizations.weight.named_parameters()}
    assert layer.param_shapes == {
        "weight_g": torch_shapes["original0"],
        "weight_v": torch_shapes["original1"],
        "bias": (2,),
    }
    assert {k: v.shape for k, v in params.items()} == layer.param_shapes
    assert_close(
        convt.layers.fold_weight_norm(params["weight_g"], params["weight_v"], (0,)),
        params["weight_v"],
    )
    with pytest.raises(ValueError, match="'fold' or 'keep'"):
        convt.torch.from_module(nn.ConvTranspose1d(2, 2, 3), weight_norm="yes")


def test_weight_norm_function_checks_its_layer():
    whole = convt.layers.weight_norm(convt.torch.ConvTranspose2d(4, 2, 3), dim=None)
    assert whole.weight_norm == () and whole.param_shapes["weight_g"] == ()
    assert convt.layers.weight_norm(convt.torch.ConvTranspose2d(4, 2, 3), dim=-1) == whole
    assert convt.layers.weight_norm(convt.torch.ConvTranspose2d(4, 2, 3), -3).weight_norm == (1,)
    with pytest.raises(ValueError, match="keras: the framework has no weight normalisation"):
        convt.layers.weight_norm(convt.keras.Conv2DTranspose(4, 3, in_channels=2))
    with pytest.raises(ValueError, match=r"dim must be in \[-4, 4\)"):
        convt.layers.weight_norm(convt.torch.ConvTranspose2d(4, 2, 3), dim=4)
    with pytest.raises(TypeError, match="convt.layers.Layer"):
        convt.layers.weight_norm(nn.ConvTranspose2d(4, 2, 3))
