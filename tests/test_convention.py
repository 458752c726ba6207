"""The written convention interface: registry, aliases, weights and biases."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import convt
from convt import convention as registry
from helpers import assert_close, randn

NAMES = [
    "torch",
    "chainer",
    "chainerx",
    "paddle",
    "megengine",
    "jax.lax",
    "onnx",
    "tensorflow",
    "keras",
    "mindspore",
    "mxnet",
    "flax",
    "equinox",
    "haiku",
]


def test_registry_lists_every_convention_in_order():
    assert [c.name for c in registry.conventions()] == NAMES
    for c in registry.conventions():
        assert c.options and callable(c.to_spec) and callable(c.from_spec)
        assert all(
            o.kind in ("ints", "sizes", "int", "padding", "pairs", "choice") for o in c.options
        )


def test_aliases():
    assert registry.get("pytorch") is registry.get("torch")
    assert registry.get("mge").name == "megengine"
    with pytest.raises(ValueError, match="unknown convention 'tensorflow2'"):
        registry.get("tensorflow2")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("groups", [1, 2])
def test_weight_and_bias_round_trip(name, groups):
    c = registry.get(name)
    rng = np.random.default_rng(0)
    w, b = randn(rng, (4, 3, 2, 5)), randn(rng, (3 * groups,))
    native_w = c.weight_from_canonical(w, ndim=2, groups=groups)
    np.testing.assert_array_equal(c.weight_to_canonical(native_w, ndim=2, groups=groups), w)
    native_b = c.bias_from_canonical(b, ndim=2)
    np.testing.assert_array_equal(c.bias_to_canonical(native_b, ndim=2), b)


def test_megengine_native_layouts_compute_what_torch_computes():
    """The converted weight and bias run through megengine's own signature equal torch."""
    c = registry.get("megengine")
    rng = np.random.default_rng(1)
    x, w, b = randn(rng, (2, 4, 3, 3)), randn(rng, (4, 3, 2, 2)), randn(rng, (6,))
    native_w = c.weight_from_canonical(w, ndim=2, groups=2)
    native_b = c.bias_from_canonical(b, ndim=2)
    assert native_w.shape == (2, 2, 3, 2, 2) and native_b.shape == (1, 6, 1, 1)
    got = convt.megengine.conv_transpose2d(x, native_w, native_b, stride=2, groups=2)
    want = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, groups=2
    )
    assert_close(got, want.numpy())


def test_every_convention_takes_sizes_by_keyword():
    """``to_spec(ndim, kernel_size=, input_size=, **params)`` is the common signature."""
    for c in registry.conventions():
        stride = next(o for o in c.options if o.name.startswith("stride"))
        value = (2, 2) if stride.kind == "sizes" else 2
        required = {"tensorflow": {"output_shape": (10, 10)}}.get(c.name, {})  # no default
        params = {stride.name: value, **required}
        spec = c.spec(2, params, kernel_size=(3, 3), input_size=(5, 5))
        assert spec.stride == (2, 2)
        assert spec.output_spatial_shape((5, 5), (3, 3))[0] >= 9


def test_lazy_submodules():
    assert convt.torch.conv_transpose2d(jnp.ones((1, 2, 3, 3)), jnp.ones((2, 1, 2, 2))).shape == (
        1,
        1,
        4,
        4,
    )
    assert "paddle" in dir(convt)
    with pytest.raises(AttributeError):
        convt.tensorflow_nonexistent  # noqa: B018


@pytest.mark.parametrize("convention", registry.conventions(), ids=lambda c: c.name)
def test_to_spec_and_from_spec_are_keyword_only_in_one_order(convention):
    """Only ``ndim`` and ``spec`` are positional; the sizes come in one order everywhere."""
    import inspect

    kinds = inspect.Parameter
    to_spec = inspect.signature(convention.to_spec).parameters
    positional = [n for n, p in to_spec.items() if p.kind != kinds.KEYWORD_ONLY]
    assert positional == ["ndim"]
    assert {"kernel_size", "input_size"} <= set(to_spec)
    from_spec = inspect.signature(convention.from_spec).parameters
    assert [(n, p.kind) for n, p in from_spec.items()] == [
        ("spec", kinds.POSITIONAL_OR_KEYWORD),
        ("kernel_size", kinds.KEYWORD_ONLY),
        ("input_size", kinds.KEYWORD_ONLY),
    ]


def test_lazy_submodules_come_from_the_registry():
    """``import convt`` then ``convt.<name>`` works for every convention's module and the
    supporting ones (``convt.layers`` included)."""
    for module in [*registry.MODULES.values(), "convt.layers", "convt.lowering", "convt.cli"]:
        name = module.rpartition(".")[2]
        assert getattr(convt, name).__name__ == module
        assert name in dir(convt)
