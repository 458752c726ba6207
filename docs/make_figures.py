"""Draws the docs' pictures from convt's own outputs: python docs/make_figures.py"""

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from convt import ConvTransposeSpec, conv_transpose  # noqa: E402

jax.config.update("jax_enable_x64", True)
OUT = Path(__file__).parent / "img"


def stamps(x, w, stride, dilation=1):
    """Each input element's contribution, computed by convt with one-hot inputs."""
    spec = ConvTransposeSpec(stride=(stride,), dilation=(dilation,), crop=((0, 0),))
    rows = []
    for i in range(len(x)):
        one = np.zeros((1, 1, len(x)))
        one[0, 0, i] = x[i]
        rows.append(
            np.asarray(conv_transpose(jnp.asarray(one), jnp.asarray(w)[None, None], spec=spec))[
                0, 0
            ]
        )
    return np.array(rows)


def scatter_crop():
    x, w = np.array([1.0, 2.0, -1.0, 3.0]), np.array([1.0, 0.5, -0.5])
    rows = stamps(x, w, 2)
    full = rows.sum(0)
    fig, ax = plt.subplots(figsize=(8, 3.4))
    grid = np.vstack([rows, full])
    ax.imshow(grid, cmap="coolwarm", vmin=-4, vmax=4, aspect="auto")
    for (r, c), v in np.ndenumerate(grid):
        if v != 0 or r == len(rows):
            ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=9)
    for c in (0, grid.shape[1] - 1):
        ax.axvspan(c - 0.5, c + 0.5, color="k", alpha=0.15)
    ax.axhline(len(rows) - 0.5, color="k", lw=1.5)
    ax.set_yticks(
        range(len(grid)), [f"x[{i}] = {v:g} stamps w" for i, v in enumerate(x)] + ["y_full (sum)"]
    )
    ax.set_xticks(range(grid.shape[1]), [f"o={o}" for o in range(grid.shape[1])], fontsize=8)
    ax.set_title("scatter (stride 2, kernel [1, 0.5, -0.5]), then crop (1, 1): torch padding=1")
    fig.tight_layout()
    fig.savefig(OUT / "scatter_crop.png", dpi=110)


def effects():
    x = np.array([1.0, 1.0, 1.0])
    w = np.array([1.0, 2.0, 1.0])
    cases = [
        ("stride 1", (1,), (1,), ((0, 0),)),
        ("stride 2", (2,), (1,), ((0, 0),)),
        ("stride 2, dilation 2", (2,), (2,), ((0, 0),)),
        ("stride 2, crop (1, 1)", (2,), (1,), ((1, 1),)),
        ("stride 2, crop (1, 0)  (output_padding=1)", (2,), (1,), ((1, 0),)),
        ("stride 2, crop (-1, -1)  (extends)", (2,), (1,), ((-1, -1),)),
    ]
    fig, axes = plt.subplots(len(cases), 1, figsize=(8, 6.5), sharex=True)
    for ax, (title, s, d, c) in zip(axes, cases):
        spec = ConvTransposeSpec(stride=s, dilation=d, crop=c)
        y = np.asarray(
            conv_transpose(jnp.asarray(x)[None, None], jnp.asarray(w)[None, None], spec=spec)
        )[0, 0]
        shift = c[0][0]
        ax.bar(np.arange(len(y)) + shift, y, color="tab:blue")
        ax.set_xlim(-1.5, 12.5)
        ax.set_yticks([])
        ax.set_title(f"{title}: length {len(y)}", fontsize=9, loc="left")
    axes[-1].set_xlabel("position in y_full")
    fig.tight_layout()
    fig.savefig(OUT / "effects.png", dpi=110)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    scatter_crop()
    effects()
    print("wrote", sorted(p.name for p in OUT.glob("*.png")))
