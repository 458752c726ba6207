"""Compare what XLA's CPU backend compiles for convt's ``auto`` between two checkouts.

    python tools/cpu_programs.py dump OUT.json            # with the checkout to record
    PYTHONPATH=/path/to/other/src python tools/cpu_programs.py dump OTHER.json
    python tools/cpu_programs.py compare OUT.json OTHER.json

``dump`` compiles the forward and the forward + backward (values and both gradients) of
every zoo layer (``benchmarks/zoo.py``) and of every benchmark layer
(``benchmarks/bench.py``, channels-first and channels-last) and writes the optimised HLO
with metadata and instruction names stripped. ``compare`` lists the programs that
differ. Identical programs cannot regress: this is the check that a change meant to
leave the CPU alone did.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cases():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench
    import convt.torch as ct
    from zoo import ZOO

    for layer in ZOO:
        yield layer.name, layer.spec(), layer.input_shape, layer.w_shape, layer.dtype
    for layer in bench.LAYERS:
        spec = ct.to_spec(layer.ndim, **layer.kwargs)
        yield f"bench_{layer.name}", spec, layer.x_shape, layer.w_shape, layer.dtype
        n, c, *spatial = layer.x_shape
        last = dataclasses.replace(spec, layout="channels_last")
        yield f"bench_{layer.name}_last", last, (n, *spatial, c), layer.w_shape, layer.dtype


def _normalised(hlo: str) -> str:
    hlo = re.sub(r", metadata=\{[^}]*\}", "", hlo)
    hlo = re.sub(r"%[\w\-.]+", "%v", hlo)
    skip = ("HloModule", "FileNames", "FunctionNames", "FileLocations", "StackFrames")
    return "\n".join(
        line
        for line in hlo.splitlines()
        if not line.startswith(skip) and not re.match(r"\d+ ", line)
    )


def dump(path: Path) -> None:
    import jax
    import jax.numpy as jnp

    import convt

    programs = {}
    for name, spec, x_shape, w_shape, dtype in _cases():
        x, w, g = (
            jax.ShapeDtypeStruct(shape, jnp.dtype(dtype))
            for shape in (x_shape, w_shape, spec.output_shape(x_shape, w_shape))
        )
        forward = functools.partial(convt.conv_transpose, spec=spec)

        def step(x, w, g, forward=forward):
            y, vjp = jax.vjp(forward, x, w)
            return y, *vjp(g)

        programs[name] = [
            _normalised(jax.jit(forward).lower(x, w).compile().as_text()),
            _normalised(jax.jit(step).lower(x, w, g).compile().as_text()),
        ]
    path.write_text(json.dumps(dict(convt=convt.__file__, programs=programs)))
    print(f"{len(programs)} layers from {convt.__file__} -> {path}")


def compare(a: Path, b: Path) -> int:
    old, new = (json.loads(p.read_text())["programs"] for p in (a, b))
    differ = [name for name in old if old[name] != new.get(name)]
    print(f"{len(old) - len(differ)} of {len(old)} layers compile identically")
    for name in differ:
        print(f"  differs: {name}")
    return 1 if differ else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump").add_argument("out", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
