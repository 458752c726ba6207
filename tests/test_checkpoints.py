"""Checkpoints read without the framework: a ``.pdparams`` file written by
``paddle.save`` and a state dict written by ``megengine.save`` (recorded in the oracle
environments, ``python -m tools.fixtures checkpoints FRAMEWORK``), loaded with numpy
only, converted and run: the decoder's output equals the framework's."""

import json
import pathlib
import pickle

import jax
import numpy as np
import pytest

import convt.megengine
import convt.paddle
from helpers import assert_close

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _load(framework):
    data = np.load(FIXTURES / f"checkpoint_{framework}.npz")
    return json.loads(str(data["meta"])), data


@pytest.mark.parametrize("framework", ["paddle", "megengine"])
def test_checkpoint_without_the_framework(framework):
    meta, data = _load(framework)
    module = getattr(convt, framework)
    state = module.load_state_dict(data["checkpoint"].tobytes())
    assert all(isinstance(v, np.ndarray) for v in state.values())
    h = data["x"]
    for i, spec in enumerate(meta["layers"]):
        layer = getattr(module, spec["cls"])(*spec["args"], **spec["kwargs"])
        params = module.from_state_dict(state, layer, prefix=spec["prefix"])
        h = layer(params, h)
        if i < len(meta["layers"]) - 1:
            h = jax.nn.relu(h)
    assert_close(h, data["y"])


def test_checkpoint_with_other_classes_is_refused(tmp_path):
    import fractions

    path = tmp_path / "model.pdparams"
    path.write_bytes(pickle.dumps({"weight": fractions.Fraction(1, 2)}))
    with pytest.raises(pickle.UnpicklingError, match=r"paddle: .*fractions.Fraction.*paddle\.load"):
        convt.paddle.load_state_dict(path)
    with pytest.raises(TypeError, match="not a state dict"):
        convt.megengine.load_state_dict(pickle.dumps([np.ones(2)]))
