"""The frameworks' own documentation examples, reproduced (shapes as they document them)."""

import jax.numpy as jnp

import convt.flax
import convt.haiku
import convt.keras
import convt.mindspore


def test_flax_convtranspose_docstring():
    # nn.ConvTranspose(features=4, kernel_size=(3,), padding='VALID') on (1, 8, 3): (1, 10, 4)
    y = convt.flax.conv_transpose(jnp.ones((1, 8, 3)), jnp.ones((3, 3, 4)), padding="VALID")
    assert y.shape == (1, 10, 4)
    # kernel_size=(6, 6), strides=(2, 2), padding='CIRCULAR', transpose_kernel=True on
    # (1, 15, 15, 3): kernel (6, 6, 4, 3), output (1, 30, 30, 4)
    y = convt.flax.conv_transpose(
        jnp.ones((1, 15, 15, 3)),
        jnp.ones((6, 6, 4, 3)),
        strides=(2, 2),
        padding="CIRCULAR",
        transpose_kernel=True,
    )
    assert y.shape == (1, 30, 30, 4)


def test_mindspore_conv2dtranspose_docstring():
    # nn.Conv2dTranspose(3, 64, 4, has_bias=False, pad_mode='pad') on (1, 3, 16, 50):
    # output (1, 64, 19, 53)
    y = convt.mindspore.conv2d_transpose(
        jnp.ones((1, 3, 16, 50)), jnp.ones((3, 64, 4, 4)), pad_mode="pad"
    )
    assert y.shape == (1, 64, 19, 53)


def test_keras_conv2dtranspose_docstring():
    # keras.layers.Conv2DTranspose(32, 3, 2, activation="relu") on (4, 10, 8, 128):
    # output (4, 21, 17, 32)
    y = convt.keras.conv_transpose_layer(
        jnp.ones((4, 10, 8, 128)), jnp.ones((3, 3, 32, 128)), strides=2
    )
    assert y.shape == (4, 21, 17, 32)


def test_haiku_output_shape():
    # hk.Conv2DTranspose(output_channels=8, kernel_shape=3, stride=2, output_shape=(9, 9))
    # on an unbatched (5, 5, 3) input (haiku's SAME accepts 9 = (n - 1) s + 1)
    y = convt.haiku.conv_transpose(
        jnp.ones((5, 5, 3)), jnp.ones((3, 3, 8, 3)), stride=2, output_shape=(9, 9)
    )
    assert y.shape == (9, 9, 8)


def _porting_guide_block(marker: str) -> str:
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "docs" / "porting.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def test_porting_guide_layer_class_example():
    """The porting guide's example of the flax and equinox layer classes runs as written."""
    block = _porting_guide_block("convt.layers.flax.ConvTranspose2d(16")
    exec(compile(block, "docs/porting.md", "exec"), {})


def test_porting_guide_weight_norm_fine_tuning_example():
    """The porting guide's vocoder fine-tuning runs as written (its gradients checked
    against torch's inside)."""
    block = _porting_guide_block('from_model(vocoder, weight_norm="keep")')
    exec(compile(block, "docs/porting.md", "exec"), {})


def test_porting_guide_weight_norm_layer_class_example():
    """The porting guide's weight-normed flax layer class runs as written."""
    block = _porting_guide_block("up = ConvTranspose1d(layer=layer, params=params")
    exec(compile(block, "docs/porting.md", "exec"), {})


def test_wide_tables_keep_the_rules_that_fit_them_at_1400_px():
    """Measured in Chromium at 1400 px (docs/css/extra.css): no table of the built docs
    scrolls or cuts columns with these rules; a table that needs more (the benchmarks'
    12 columns) hides the page's table of contents. Guards the rules, and bounds the
    columns of the generated tables that were measured."""
    import pathlib
    import re

    root = pathlib.Path(__file__).parents[1] / "docs"
    css = (root / "css" / "extra.css").read_text()
    for rule in ("max-width: 96rem", "min-width: 3rem", "overflow-wrap: anywhere"):
        assert rule in css, rule
    assert "hide:\n  - toc" in (root / "benchmarks.md").read_text()
    for page in root.rglob("*.md"):
        for header in re.findall(r"^\|(.*)\|\n\| ?-", page.read_text(), flags=re.M):
            columns = header.count("|") + 1
            limit = 12 if page.name == "benchmarks.md" else 11
            assert columns <= limit, f"{page}: a table of {columns} columns was not measured"
