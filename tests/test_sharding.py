"""Sharded inputs through every lowering, on 8 host CPU devices (in a child process, as
the device count must be set before jax starts): equal values and input gradients,
batch-sharded outputs, no collectives in the compiled forward or input gradient, in
``Explicit`` and ``Auto`` mesh modes and inside ``jax.shard_map``."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "scripts" / "sharding_check.py"


def test_every_lowering_on_a_batch_sharded_mesh():
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 97, result.stdout[-2000:]
    for row in rows:
        assert "error" not in row, row
        assert row["values"] and row["grads"] and row["weight_sharded_values"], row
        assert row["out_batch_sharded"], row
        assert row["forward_collectives"] == [] and row["grad_collectives"] == [], row
    assert {r["axis_type"] for r in rows} == {"AxisType.Explicit", "AxisType.Auto", "shard_map"}
