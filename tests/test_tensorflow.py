"""convt.tensorflow on int32 inputs, as TensorFlow computes them (fixtures recorded with
TensorFlow 2: ``python -m tools.fixtures tensorflow_int32``); the float fixtures are in
test_fixtures.py."""

import json
import pathlib

import numpy as np
import pytest

import convt.tensorflow

DATA = np.load(pathlib.Path(__file__).parent / "fixtures" / "tensorflow_int32.npz")
META = json.loads(str(DATA["meta"]))


@pytest.mark.parametrize("index", range(len(META["cases"])))
def test_int32_as_tensorflow_computes_it(index):
    case = META["cases"][index]
    kwargs = dict(case["kwargs"])
    if isinstance(kwargs.get("padding"), list):
        kwargs["padding"] = [tuple(p) for p in kwargs["padding"]]
    y = getattr(convt.tensorflow, case["function"])(
        DATA[f"{index}/x"], DATA[f"{index}/w"], **kwargs
    )
    assert y.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(y), DATA[f"{index}/y"])


@pytest.mark.parametrize("error", META["errors"], ids=lambda e: f"{e['ndim']}d-{e['x']}-{e['w']}")
def test_integer_calls_tensorflow_refuses(error):
    ndim = error["ndim"]
    x = np.ones((1, *[3] * ndim, 2), error["x"])
    w = np.ones((*[2] * ndim, 2, 2), error["w"])
    fn = getattr(convt.tensorflow, f"conv{ndim}d_transpose")
    if error["x"] == "int64" and error["w"] == "int64":
        pytest.skip("JAX without x64 reads int64 as int32, which TensorFlow computes")
    with pytest.raises(TypeError, match=r"tensorflow: conv\dd_transpose takes"):
        fn(x, w, [1, *[6] * ndim, 2], 2, "SAME")
