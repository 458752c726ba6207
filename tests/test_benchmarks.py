"""The whole decoders of ``benchmarks/bench.py`` compute what their torch twins compute:
the forward values, and the parameters after one training step (so the timed programs
are the ported models, not cheaper ones)."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import bench  # noqa: E402


@pytest.mark.parametrize("model", bench.MODELS, ids=lambda m: m.name)
def test_decoder_matches_torch(model):
    runs = bench.model_candidates(model, train=False, plain=False)
    expected = runs["torch"]().numpy()
    np.testing.assert_allclose(np.asarray(runs["convt"]()), expected, rtol=2e-4, atol=2e-4)
    channels_last = np.moveaxis(np.asarray(runs["convt_channels_last"]()), -1, 1)
    np.testing.assert_allclose(channels_last, expected, rtol=2e-4, atol=2e-4)

    runs = bench.model_candidates(model, train=True, plain=False)
    stepped = [a.detach().numpy() for a in runs["torch"]()]
    for name in ("convt", "convt_channels_last"):
        ours = jax.tree_util.tree_leaves(runs[name]())
        assert len(ours) == len(stepped)
        for a, b in zip(ours, stepped):
            np.testing.assert_allclose(np.asarray(a), b, rtol=2e-4, atol=2e-5)
