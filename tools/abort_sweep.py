"""Sweeps random small configurations looking for XLA CPU aborts.

    python tools/abort_sweep.py COUNT [SEED]

A child process runs configurations one after another and prints each before it runs;
when the child dies the last printed configuration is recorded and the sweep resumes
after it. For every configuration it runs (a) the raw lhs-dilated ``lax`` convolution
without convt's workaround, forward only, and (b) every convt lowering, forward and
``jax.grad`` with respect to input and weight. It reports which aborted and whether the
raw aborts are exactly the configurations ``xla_swap_hazard_axes`` (tests/helpers.py)
predicts (with XLA's kernel-larger-than-input condition).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np


def configs(count, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        nd = int(rng.integers(1, 4))
        k = [int(v) for v in rng.integers(1, 5, nd)]
        s = [int(v) for v in rng.integers(1, 4, nd)]
        d = [int(v) for v in rng.choice([1, 1, 1, 2], nd)]
        n = [int(v) for v in rng.integers(1, 5, nd)]
        p = [int(rng.integers(0, dd * (kk - 1) + 1)) for kk, dd in zip(k, d)]
        op = [int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d)]
        # bias towards the pattern XLA misreads, on one axis
        if rng.random() < 0.5:
            a = int(rng.integers(nd))
            k[a], s[a], d[a], p[a], op[a] = 2, 2, 1, 1, 0
        groups = int(rng.choice([1, 1, 1, 2]))
        full = [(nn - 1) * ss + dd * (kk - 1) + 1 for nn, kk, ss, dd in zip(n, k, s, d)]
        if any(f - 2 * pp + o < 1 for f, pp, o in zip(full, p, op)):
            continue
        out.append(dict(n=n, k=k, s=s, d=d, p=p, op=op, groups=groups))
    return out


CHILD = r"""
import json, sys, jax, jax.numpy as jnp
from jax import lax
from convt import ConvTransposeSpec, conv_transpose
for line in sys.stdin:
    c = json.loads(line)
    nd = len(c["n"])
    spec = ConvTransposeSpec(tuple(c["s"]), tuple(c["d"]),
        tuple((p, p - o) for p, o in zip(c["p"], c["op"])), c["groups"])
    g = c["groups"]
    x = jnp.ones((1, 2 * g, *c["n"])); w = jnp.ones((2 * g, 1, *c["k"]))
    print("RAW", json.dumps(c), flush=True)
    sp = "".join("DHW"[3 - nd:])
    dn = ("NC" + sp, "OI" + sp, "NC" + sp)
    pad = [(d * (k - 1) - p, d * (k - 1) - p + o)
           for k, d, p, o in zip(c["k"], c["d"], c["p"], c["op"])]
    wr = jnp.ones((g, 2, *c["k"]))
    lax.conv_general_dilated(x, wr, (1,) * nd, pad, lhs_dilation=c["s"], rhs_dilation=c["d"],
        dimension_numbers=dn, feature_group_count=g).block_until_ready()
    for m in ["lhs_dilated", "phase", "adjoint", "phase_conv", "auto"]:
        print("CONVT", m, json.dumps(c), flush=True)
        f = lambda x, w: (conv_transpose(x, w, spec=spec, method=m) ** 2).sum()
        jax.grad(f, (0, 1))(x, w)[1].block_until_ready()
    print("DONE", flush=True)
"""


def predicted(c):
    """Whether convt's workaround treats this configuration (some hazard axis)."""
    from convt import ConvTransposeSpec

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
    from helpers import xla_swap_hazard_axes

    spec = ConvTransposeSpec(
        stride=tuple(c["s"]),
        dilation=tuple(c["d"]),
        crop=tuple((p, p - o) for p, o in zip(c["p"], c["op"])),
        groups=c["groups"],
    )
    return bool(xla_swap_hazard_axes(spec, c["k"]))


def main():
    count = int(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    todo = configs(count, seed)
    raw_aborts, convt_aborts, i = [], [], 0
    while i < len(todo):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD],
            input="".join(json.dumps(c) + "\n" for c in todo[i:]),
            capture_output=True,
            text=True,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln]
        done = sum(ln == "DONE" for ln in lines)
        if proc.returncode == 0:
            break
        last = lines[-1] if lines else ""
        (raw_aborts if last.startswith("RAW") else convt_aborts).append((last, todo[i + done]))
        i += done + 1
    raw_set = [json.dumps(c) for _, c in raw_aborts]
    pred = [json.dumps(c) for c in todo if predicted(c)]
    print(f"configurations: {len(todo)}")
    unexplained = sorted(set(raw_set) - set(pred))
    print(
        f"raw lax aborts: {len(raw_aborts)}; configurations with a hazard axis: {len(pred)}; "
        f"raw aborts without a hazard axis: {len(unexplained)}"
    )
    print(f"convt aborts (any lowering, forward or grad): {len(convt_aborts)}")
    for line, _ in convt_aborts:
        print("  ", line)
    for c in unexplained:
        print("  unexplained:", c)
    sys.exit(1 if unexplained or convt_aborts else 0)


if __name__ == "__main__":
    main()
