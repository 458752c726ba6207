"""Configurations on which XLA's CPU compiler aborts the process (issue text and sweeps).

Each runs in a subprocess, so an abort fails one test instead of killing the suite, and
the values are checked against torch.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

TRIGGERS = [
    # (input shape, weight shape, stride, padding, output_padding, groups, dilation)
    ((1, 3, 2, 6), (3, 1, 4, 2), (1, 2), 1, 0, 1, 1),
    ((1, 3, 1, 6), (3, 1, 3, 2), (1, 2), 1, 0, 1, 1),
    ((1, 3, 1, 3, 6), (3, 1, 4, 2, 2), (1, 3, 2), 1, 0, 1, 1),
    # weight gradient of the lhs-dilated form (found by tools/abort_sweep.py)
    ((1, 4, 3, 3), (4, 1, 1, 4), (3, 2), (0, 3), (1, 0), 2, 1),
]

CHILD = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    import convt.torch as ct
    cfg = json.loads(sys.argv[1])
    x = np.asarray(cfg["x"], np.float32); w = np.asarray(cfg["w"], np.float32)
    g = np.asarray(cfg["g"], np.float32)
    f = {3: ct.conv_transpose1d, 4: ct.conv_transpose2d, 5: ct.conv_transpose3d}[x.ndim]
    out = {}
    for method in ["auto", "lhs_dilated", "phase", "adjoint", "phase_conv/adjoint"]:
        fn = lambda x, w: f(x, w, None, *cfg["args"], method=method)
        y, vjp = jax.vjp(fn, jnp.asarray(x), jnp.asarray(w))
        gx, gw = vjp(jnp.asarray(g))
        out[method] = [np.asarray(a).tolist() for a in (y, gx, gw)]
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, output_padding, groups, dilation", TRIGGERS
)
def test_known_abort_triggers(x_shape, w_shape, stride, padding, output_padding, groups, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    args = [stride, padding, output_padding, groups, dilation]
    f = {
        3: torch.nn.functional.conv_transpose1d,
        4: torch.nn.functional.conv_transpose2d,
        5: torch.nn.functional.conv_transpose3d,
    }[len(x_shape)]
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = f(xt, wt, None, *args)
    g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.tensor(g))
    cfg = dict(x=x.tolist(), w=w.tolist(), g=g.tolist(), args=args)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"child died ({proc.returncode}):\n{proc.stderr[-2000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for method, (cy, cgx, cgw) in results.items():
        for got, want in ((cy, y.detach().numpy()), (cgx, xt.grad.numpy()), (cgw, wt.grad.numpy())):
            got = np.asarray(got)
            assert got.shape == want.shape, method
            assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), method
