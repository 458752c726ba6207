"""Writes the notebooks from the cell sources below: python notebooks/make_notebooks.py

The .ipynb files are committed executed, with their outputs (plots included), so a reader
sees them without running anything: after editing a cell here, run this script and then
``jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb``.
tests/test_notebooks.py checks that the committed cells are these; CI executes them again.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent


def notebook(cells):
    return {
        "cells": [
            {
                "cell_type": kind,
                "metadata": {},
                "source": src.strip("\n").splitlines(keepends=True),
                **({"outputs": [], "execution_count": None} if kind == "code" else {}),
            }
            for kind, src in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


ANATOMY = [
    (
        "markdown",
        """
# Anatomy of a transposed convolution

Everything below is drawn from convt's own outputs. The canonical spec, per axis:
every input element **stamps** the (dilated) kernel at offset `i * stride`; the stamps
add up to `y_full`; the result is **cropped** by `(lo, hi)`.
""",
    ),
    (
        "code",
        """
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
from convt import ConvTransposeSpec, conv_transpose
jax.config.update("jax_enable_x64", True)

def run1d(x, w, stride=1, dilation=1, crop=(0, 0)):
    spec = ConvTransposeSpec(stride=(stride,), dilation=(dilation,), crop=(crop,))
    return np.asarray(conv_transpose(jnp.asarray(x, float)[None, None], jnp.asarray(w, float)[None, None], spec=spec))[0, 0]
""",
    ),
    ("markdown", "## The scatter: one stamp per input element"),
    (
        "code",
        """
x, w = np.array([1., 2., -1., 3.]), np.array([1., .5, -.5])
stamps = np.array([run1d(np.eye(len(x))[i] * x[i], w, stride=2) for i in range(len(x))])
full = run1d(x, w, stride=2)
assert np.allclose(stamps.sum(0), full)   # the scatter adds up to y_full
fig, ax = plt.subplots(figsize=(8, 3))
ax.imshow(np.vstack([stamps, full]), cmap="coolwarm", vmin=-4, vmax=4, aspect="auto")
ax.set_yticks(range(5), [f"x[{i}] stamp" for i in range(4)] + ["y_full"])
ax.set_title("stride 2: stamps 2 apart, overlapping where the kernel is longer than the stride");
""",
    ),
    ("markdown", "## The crop, and what `output_padding` really is"),
    (
        "code",
        """
print("y_full              ", full)
print("crop (1, 1)  torch p=1       ", run1d(x, w, 2, crop=(1, 1)))
print("crop (1, 0)  p=1, op=1       ", run1d(x, w, 2, crop=(1, 0)))
print("crop (-1, -1) extends w/ 0s  ", run1d(x, w, 2, crop=(-1, -1)))
assert len(run1d(x, w, 2, crop=(1, 0))) == len(full) - 1
""",
    ),
    (
        "markdown",
        "`output_padding` adds no zeros: it crops one position less on the right, so the last value is a real sum of stamps (here `w[2] * x[3]`).",
    ),
    ("markdown", "## Dilation spreads the taps"),
    (
        "code",
        """
fig, axes = plt.subplots(3, 1, figsize=(8, 4), sharex=True)
for ax, d in zip(axes, [1, 2, 3]):
    y = run1d([1., 0., 0.], [1., 2., 3.], stride=1, dilation=d)
    ax.bar(range(len(y)), y); ax.set_title(f"one impulse, kernel [1, 2, 3], dilation {d}", fontsize=9, loc="left")
plt.tight_layout()
""",
    ),
    (
        "markdown",
        """
## paddle's `"SAME"` versus `"VALID"`

paddle's doc page says `"SAME"` gives `(L + stride - 1) / stride`; paddle 3.3 actually pads
like a forward SAME convolution on the input and resets the dilation to 1. convt does
what paddle does.
""",
    ),
    (
        "code",
        """
import convt.paddle as cp
xs = jnp.ones((1, 1, 5))
for k in [1, 2, 3, 4]:
    same = cp.conv1d_transpose(xs, jnp.ones((1, 1, k)), stride=2, padding="SAME").shape[-1]
    valid = cp.conv1d_transpose(xs, jnp.ones((1, 1, k)), stride=2, padding="VALID").shape[-1]
    doc = (5 + 2 - 1) // 2  # the formula on paddle's doc page, for L=5, stride=2
    print(f"k={k}: what paddle 3.3 returns (and convt): SAME -> {same}, VALID -> {valid};"
          f"  paddle's doc formula (not what paddle does): SAME -> {doc}")
""",
    ),
    ("markdown", "## A 2-D picture: a checkerboard from stride > kernel overlap"),
    (
        "code",
        """
import convt.torch as ct
img = ct.conv_transpose2d(jnp.ones((1, 1, 6, 6)), jnp.ones((1, 1, 3, 3)), stride=2, padding=1)
plt.imshow(np.asarray(img[0, 0]), cmap="viridis"); plt.colorbar()
plt.title("all-ones input and kernel, k=3, s=2: uneven overlap (checkerboard artifacts)");
assert img.shape == (1, 1, 11, 11)
""",
    ),
]

PORTING = [
    (
        "markdown",
        """
# Porting a torch generator to JAX

A small DCGAN generator in torch; its weights moved to JAX; the same outputs through
convt, under `jit`; then `vmap` over a batch of weights and `grad`.
""",
    ),
    (
        "code",
        """
import numpy as np, torch, jax, jax.numpy as jnp
import convt.torch as ct

torch.manual_seed(0)
layers = torch.nn.ModuleList([
    torch.nn.ConvTranspose2d(32, 16, 4, stride=1, padding=0, bias=False),
    torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, bias=False),
    torch.nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1),
])

def torch_forward(z):
    h = z
    for i, layer in enumerate(layers):
        h = layer(h)
        h = torch.relu(h) if i < len(layers) - 1 else torch.tanh(h)
    return h
""",
    ),
    (
        "code",
        """
config = [dict(stride=l.stride, padding=l.padding, output_padding=l.output_padding,
               groups=l.groups, dilation=l.dilation) for l in layers]
weights = [(jnp.asarray(l.weight.detach().numpy()),
            None if l.bias is None else jnp.asarray(l.bias.detach().numpy())) for l in layers]

def generator(weights, z):
    h = z
    for i, ((w, b), cfg) in enumerate(zip(weights, config)):
        h = ct.conv_transpose2d(h, w, b, **cfg)
        h = jax.nn.relu(h) if i < len(config) - 1 else jnp.tanh(h)
    return h

z = np.random.default_rng(0).standard_normal((4, 32, 1, 1)).astype(np.float32)
ref = torch_forward(torch.tensor(z)).detach().numpy()
out = jax.jit(generator)(weights, jnp.asarray(z))
err = float(np.abs(np.asarray(out) - ref).max() / np.abs(ref).max())
print(out.shape, "relative error vs torch:", err)
assert out.shape == ref.shape and err < 1e-5
""",
    ),
    ("markdown", "## `vmap` over an ensemble of weights"),
    (
        "code",
        """
ensemble = jax.tree_util.tree_map(lambda a: jnp.stack([a, 0.5 * a, -a]), weights)
outs = jax.jit(jax.vmap(generator, in_axes=(0, None)))(ensemble, jnp.asarray(z))
for i in range(3):
    single = generator(jax.tree_util.tree_map(lambda a: a[i], ensemble), jnp.asarray(z))
    assert np.allclose(outs[i], single, atol=1e-6)
print(outs.shape)
""",
    ),
    ("markdown", "## Gradients agree with torch's"),
    (
        "code",
        """
target = np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32)
loss = lambda weights: jnp.mean((generator(weights, jnp.asarray(z)) - target) ** 2)
grads = jax.jit(jax.grad(loss))(weights)

layers.zero_grad()
torch.mean((torch_forward(torch.tensor(z)) - torch.tensor(target)) ** 2).backward()
for (gw, gb), layer in zip(grads, layers):
    tw = layer.weight.grad.numpy()
    e = np.abs(np.asarray(gw) - tw).max() / np.abs(tw).max()
    print(f"weight grad relative error {e:.1e}")
    assert e < 1e-4
""",
    ),
]

PORTING_MODELS = [
    (
        "markdown",
        """
## A whole model in one call: `convt.torch.from_model`

A U-Net-style decoder (transposed-convolution upsampling with skip connections) and a
HiFi-GAN-style 1-D upsampler with weight norm in both of torch's forms. `from_model` finds
every transposed convolution, keyed by its `named_modules()` path, with weight norm folded
into the weight exactly as torch computes it.
""",
    ),
    (
        "code",
        """
import warnings

import convt.torch
from torch import nn

class UNetDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ModuleList([nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ConvTranspose2d(32, 8, 4, 2, 1)])
        self.head = nn.ConvTranspose2d(16, 3, 3, 1, 1)

    def forward(self, bottom, skips):
        h = bottom
        for up, skip in zip(self.up, skips):
            h = torch.cat([torch.relu(up(h)), skip], dim=1)
        return self.head(h)

# torch deprecates the old weight_norm hook, which released checkpoints still use
warnings.filterwarnings("ignore", "`torch.nn.utils.weight_norm` is deprecated", FutureWarning)

class Upsampler(nn.Module):  # HiFi-GAN-like: weight-normed transposed convolutions
    def __init__(self):
        super().__init__()
        self.ups = nn.ModuleList([
            nn.utils.weight_norm(nn.ConvTranspose1d(16, 8, 16, 8, 4)),                # old hook form
            nn.utils.parametrizations.weight_norm(nn.ConvTranspose1d(8, 4, 4, 2, 1)),  # new form
        ])

    def forward(self, x):
        for up in self.ups:
            x = up(torch.nn.functional.leaky_relu(x, 0.1))
        return torch.tanh(x)

torch.manual_seed(1)
unet, vocoder = UNetDecoder(), Upsampler()
unet_layers, voc_layers = convt.torch.from_model(unet), convt.torch.from_model(vocoder)
print(list(unet_layers), list(voc_layers))
""",
    ),
    (
        "code",
        """
@jax.jit
def unet_jax(bottom, skips):
    h = bottom
    for i, skip in enumerate(skips):
        params, layer = unet_layers[f"up.{i}"]
        h = jnp.concatenate([jax.nn.relu(layer(params, h)), skip], axis=1)
    params, layer = unet_layers["head"]
    return layer(params, h)

@jax.jit
def vocoder_jax(x):
    for i in range(2):
        params, layer = voc_layers[f"ups.{i}"]
        x = layer(params, jax.nn.leaky_relu(x, 0.1))
    return jnp.tanh(x)

rng = np.random.default_rng(2)
bottom = rng.standard_normal((2, 32, 4, 4)).astype(np.float32)
skips = [rng.standard_normal((2, 16, 8, 8)).astype(np.float32),
         rng.standard_normal((2, 8, 16, 16)).astype(np.float32)]
mel = rng.standard_normal((2, 16, 20)).astype(np.float32)
with torch.no_grad():
    ref_unet = unet(torch.tensor(bottom), [torch.tensor(s) for s in skips]).numpy()
    ref_voc = vocoder(torch.tensor(mel)).numpy()
e_unet = float(np.abs(np.asarray(unet_jax(bottom, skips)) - ref_unet).max())
e_voc = float(np.abs(np.asarray(vocoder_jax(mel)) - ref_voc).max())
print(f"U-Net decoder {ref_unet.shape}: max |jax - torch| = {e_unet:.1e}")
print(f"vocoder upsampler {ref_voc.shape}: max |jax - torch| = {e_voc:.1e}")
assert e_unet < 1e-5 and e_voc < 1e-5
""",
    ),
    (
        "markdown",
        """
## Training in JAX: `convt.layers.flax.ConvTranspose`

The vocoder's upsampler rebuilt from flax nnx layers that take torch's arguments (and
initialise as torch does), started from the converted weights and trained for a few steps
with `jax.grad` to match a target waveform.
""",
    ),
    (
        "code",
        """
import matplotlib.pyplot as plt
from flax import nnx
import convt.layers.flax

class JaxUpsampler(nnx.Module):
    def __init__(self, rngs):
        self.ups = nnx.List([convt.layers.flax.ConvTranspose1d(16, 8, 16, 8, 4, rngs=rngs),
                             convt.layers.flax.ConvTranspose1d(8, 4, 4, 2, 1, rngs=rngs)])

    def __call__(self, x):
        for up in self.ups:
            x = up(jax.nn.leaky_relu(x, 0.1))
        return jnp.tanh(x)

model = JaxUpsampler(nnx.Rngs(0))
for i, up in enumerate(model.ups):  # start from the torch weights
    params, _ = voc_layers[f"ups.{i}"]
    up.weight.set_value(params["weight"]); up.bias.set_value(params["bias"])
assert np.abs(np.asarray(model(jnp.asarray(mel))) - ref_voc).max() < 1e-5

target = jnp.sin(jnp.linspace(0, 40, ref_voc.shape[-1]))[None, None] * jnp.ones(ref_voc.shape)

@nnx.jit
def step(model):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(jnp.asarray(mel)) - target) ** 2))(model)
    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(lambda p, g: p - 0.5 * g, params, grads))
    return loss

losses = [float(step(model)) for _ in range(60)]
plt.plot(losses); plt.xlabel("step"); plt.ylabel("mean squared error"); plt.yscale("log")
plt.title("the converted upsampler, trained in flax nnx");
assert losses[-1] < losses[0]
""",
    ),
    (
        "markdown",
        """
## Training in equinox: the DCGAN generator

The DCGAN generator from the top of this notebook, converted by `from_model` and held
in `convt.layers.equinox.ConvTranspose2d` modules (the converted layer and parameters through
`layer=` and `params=`), checked against torch, then trained for a few steps with
`jax.grad` to fit a fixed batch of images.
""",
    ),
    (
        "code",
        """
import equinox as eqx
import convt.layers.equinox

converted = convt.torch.from_model(layers)  # {"0": (params, layer), "1": ..., "2": ...}

class Generator(eqx.Module):
    ups: list

    def __init__(self, converted, key):
        self.ups = [convt.layers.equinox.ConvTranspose2d(layer=layer, params=params, key=key)
                    for params, layer in converted.values()]

    def __call__(self, z):  # one unbatched latent (C, 1, 1), equinox's convention
        h = z
        for i, up in enumerate(self.ups):
            h = up(h)
            h = jax.nn.relu(h) if i < len(self.ups) - 1 else jnp.tanh(h)
        return h

gen = Generator(converted, jax.random.key(0))
out = jax.vmap(gen)(jnp.asarray(z))
print("equinox generator vs torch:", float(np.abs(np.asarray(out) - ref).max()))
assert np.abs(np.asarray(out) - ref).max() < 1e-5

images = jnp.asarray(np.random.default_rng(3).uniform(-0.9, 0.9, ref.shape), jnp.float32)

@eqx.filter_jit
def train_step(gen):
    loss, grads = eqx.filter_value_and_grad(
        lambda g: jnp.mean((jax.vmap(g)(jnp.asarray(z)) - images) ** 2))(gen)
    return jax.tree.map(lambda p, g: p - 2.0 * g, gen, grads), loss

losses = []
for _ in range(80):
    gen, loss = train_step(gen)
    losses.append(float(loss))
plt.figure(); plt.plot(losses); plt.xlabel("step"); plt.ylabel("mean squared error")
plt.title("the converted DCGAN generator, trained in equinox");
assert losses[-1] < 0.9 * losses[0]
""",
    ),
]

CONVENTIONS = [
    (
        "markdown",
        """
# Conventions side by side

One layer (input 5, kernel 3, stride 2, output 10) written in each framework's terms.
Every front-end translates to the same canonical spec and gives the same numbers.
""",
    ),
    (
        "code",
        """
import numpy as np, jax.numpy as jnp
import convt.torch, convt.chainer, convt.chainerx, convt.paddle, convt.megengine
from convt import conv_transpose

rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((2, 4, 5, 5)), jnp.float32)
w = jnp.asarray(rng.standard_normal((4, 3, 3, 3)), jnp.float32)

specs = {
    "torch": convt.torch.to_spec(2, stride=2, padding=1, output_padding=1),
    "torch output_size": convt.torch.to_spec(2, stride=2, padding=1, kernel_size=3, input_size=(5, 5), output_size=(10, 10)),
    "chainer outsize": convt.chainer.to_spec(2, stride=2, pad=1, outsize=(10, 10), kernel_size=3, input_size=(5, 5)),
    "chainerx outsize": convt.chainerx.to_spec(2, stride=2, pad=1, outsize=(10, 10), kernel_size=3, input_size=(5, 5)),
    "paddle asymmetric": convt.paddle.to_spec(2, stride=2, padding=[1, 0, 1, 0]),
    "megengine": convt.megengine.to_spec(2, stride=(2, 2), padding=(1, 1), output_padding=(1, 1)),
}
for name, spec in specs.items():
    print(f"{name:18s} crop={spec.crop} stride={spec.stride}")
assert len(set(specs.values())) == 1
""",
    ),
    (
        "code",
        """
outputs = {
    "torch": convt.torch.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
    "chainer": convt.chainer.deconvolution_2d(x, w, stride=2, pad=1, outsize=(10, 10)),
    "chainerx": convt.chainerx.conv_transpose(x, w, stride=2, pad=1, outsize=(10, 10)),
    "paddle": convt.paddle.conv2d_transpose(x, w, stride=2, padding=[1, 0, 1, 0]),
    "paddle NHWC": jnp.moveaxis(convt.paddle.conv2d_transpose(jnp.moveaxis(x, 1, -1), w, stride=2, padding=[1, 0, 1, 0], data_format="NHWC"), -1, 1),
    "megengine": convt.megengine.conv_transpose2d(x, w, stride=(2, 2), padding=(1, 1), output_padding=(1, 1)),
    "canonical": conv_transpose(x, w, spec=specs["torch"]),
}
for name, y in outputs.items():
    print(f"{name:12s} {y.shape}  max diff to torch: {float(jnp.abs(y - outputs['torch']).max()):.1e}")
    assert y.shape == (2, 3, 10, 10) and jnp.allclose(y, outputs["torch"], atol=1e-5)
""",
    ),
    (
        "markdown",
        """
## paddle's `"SAME"` is a different layer here

paddle pads `"SAME"` like a forward convolution on the input: for `n=5, k=3, s=2` that is
`(1, 1)`, so the output is 9, not `n * s = 10`.
""",
    ),
    (
        "code",
        """
same = convt.paddle.to_spec(2, stride=2, padding="SAME", kernel_size=3, input_size=(5, 5))
print("paddle SAME ->", same.crop, "output", same.output_spatial_shape((5, 5), (3, 3)))
assert same.crop == ((1, 1), (1, 1))
""",
    ),
    (
        "markdown",
        """
## What cannot be expressed

torch's `padding` is symmetric: it cannot crop more on the right than on the left
(`output_padding` only crops less). paddle's asymmetric pads and the canonical spec can.
""",
    ),
    (
        "code",
        """
spec = convt.paddle.to_spec(2, stride=2, padding=[0, 2, 0, 2])
print("paddle [0, 2, 0, 2] ->", spec.crop, "(no torch padding/output_padding gives this)")
try:
    convt.torch.to_spec(2, stride=2, padding=1, output_padding=2)
except ValueError as err:
    print("torch refuses output_padding >= stride:", err)
""",
    ),
]


if __name__ == "__main__":
    for name, cells in [
        ("01_anatomy", ANATOMY),
        ("02_porting", PORTING + PORTING_MODELS),
        ("03_conventions", CONVENTIONS),
    ]:
        (HERE / f"{name}.ipynb").write_text(json.dumps(notebook(cells), indent=1) + "\n")
        print("wrote", name)
