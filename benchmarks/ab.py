"""Same-run A/B of two checkouts of convt on the benchmark's layers (CPU).

    python benchmarks/ab.py BASE_SRC [--repeats 15] [--only NAME ...] [--zoo]

``BASE_SRC`` is the other checkout's ``src`` (``git worktree add /tmp/base COMMIT``,
then ``/tmp/base/src``); this checkout's ``src`` is the new side. Each side runs in its
own worker process (its own convt imported first, the same layers and data), and the
parent interleaves them: one call of A and one of B, in alternating order (ABBA),
``--repeats`` times per layer and pass, after a warm-up. Passes: forward and forward +
backward under ``jax.jit`` (as training runs them, through ``convt.torch``'s functional
form with ``auto``), and the eager call of the same function (the front-end's Python
work on every call). Reports medians and new/base ratios, with their geometric mean.
``--zoo`` runs the layers of `zoo.py` instead (channels-last variants through
``convt.conv_transpose`` with the layer's spec).
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PASSES = ("forward", "forward+backward", "eager forward")


def _runner(layer, mode: str):
    """The call to time for ``layer`` in ``mode`` (one of `PASSES`), warmed up."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bench import JAX_FN

    rng = np.random.default_rng(0)
    channels_last = getattr(layer, "channels_last", False)
    x_shape = layer.input_shape if channels_last else layer.x_shape
    x = jnp.asarray(rng.standard_normal(x_shape), layer.dtype)
    w = jnp.asarray(rng.standard_normal(layer.w_shape) * 0.05, layer.dtype)
    b = jnp.asarray(rng.standard_normal(layer.c_out), layer.dtype)

    def f(x, w, b):
        if channels_last:
            import convt

            return convt.conv_transpose(x, w, b, spec=layer.spec())
        return JAX_FN[layer.ndim](x, w, b, **layer.kwargs)

    c = jnp.asarray(rng.standard_normal(f(x, w, b).shape), layer.dtype)

    def step(x, w, b, c):
        y, pullback = jax.vjp(f, x, w, b)
        return y, pullback(c)

    if mode == "forward":
        jitted = jax.jit(f)
        args = (x, w, b)
    elif mode == "forward+backward":
        jitted = jax.jit(step)
        args = (x, w, b, c)
    else:
        jitted, args = f, (x, w, b)

    def run():
        jax.block_until_ready(jitted(*args))

    for _ in range(2):
        run()
    return run


def worker(src: str) -> None:
    """Serves ``setup NAME PASS`` (builds and warms the call) and ``go`` (times it once,
    prints the seconds) on stdin/stdout, with the convt of ``src``."""
    sys.path[:0] = [src, str(HERE)]
    from bench import LAYERS
    from zoo import ZOO

    layers = {layer.name: layer for layer in LAYERS}
    layers.update({f"zoo:{layer.name}": layer for layer in ZOO})
    run = None
    for line in sys.stdin:
        command = line.split()
        if command[0] == "setup":
            run = _runner(layers[command[1]], command[2].replace("_", " "))
            print("ready", flush=True)
        elif command[0] == "go":
            start = time.perf_counter()
            run()
            print(time.perf_counter() - start, flush=True)


def _start(src: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", src],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def _ask(proc: subprocess.Popen, line: str) -> str:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", nargs="?", help="the other checkout's src directory")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--passes", nargs="*", default=list(PASSES))
    parser.add_argument("--zoo", action="store_true", help="the layers of zoo.py")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    sys.path.insert(0, str(HERE))
    from bench import LAYERS
    from zoo import ZOO

    names = args.only or [layer.name for layer in (ZOO if args.zoo else LAYERS)]
    if args.zoo:
        names = [f"zoo:{name}" for name in names]
    sides = {"base": _start(args.base), "new": _start(str(ROOT / "src"))}
    rows, ratios = [], {p: [] for p in args.passes}
    try:
        for name in names:
            for mode in args.passes:
                for proc in sides.values():
                    assert _ask(proc, f"setup {name} {mode.replace(' ', '_')}") == "ready"
                times = {side: [] for side in sides}
                for repeat in range(args.repeats):
                    order = list(sides) if repeat % 2 == 0 else list(sides)[::-1]  # ABBA
                    for side in order:
                        times[side].append(float(_ask(sides[side], "go")))
                base, new = (statistics.median(times[s]) * 1e3 for s in ("base", "new"))
                ratios[mode].append(new / base)
                rows.append(f"| {name} | {mode} | {base:.3f} | {new:.3f} | {new / base:.2f} |")
                print(rows[-1], file=sys.stderr)
    finally:
        for proc in sides.values():
            proc.stdin.close()
            proc.wait()
    print("| layer | pass | base ms | new ms | new / base |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    for mode, values in ratios.items():
        geomean = math.exp(sum(map(math.log, values)) / len(values))
        print(f"\n{mode}: geometric mean new / base {geomean:.3f} over {len(values)} layers")


if __name__ == "__main__":
    main()
