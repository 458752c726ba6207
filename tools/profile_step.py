"""Where a layer's or a decoder's CPU time goes, fusion by fusion.

    python tools/profile_step.py LAYER [--method auto] [--pass fwd+bwd] [--steps 5]
    python tools/profile_step.py --model SAM

``LAYER`` is a name from ``benchmarks/zoo.py`` (or ``bench:NAME`` for the benchmark's
own layers), its forward or forward+backward as ``benchmarks/bench.py`` times it (the
bias included); ``--model`` a prefix of a decoder's name in ``benchmarks/bench.py``
(its training step, channels-first as ported). The step runs ``--steps`` times under
``jax.profiler.trace`` (its Perfetto trace needs no xprof), and the compiled program's
HLO (``--xla_dump_to``) names what each thunk is: its shape and the JAX operation it
came from. Times are wall times per step of each thunk; XLA's CPU runtime runs
independent thunks at once, so they can add up to more than the step.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _hlo_names(dump_dir: str) -> dict[str, tuple[str, str]]:
    """Each instruction of the optimised programs: its shape and JAX op name."""
    names = {}
    for path in glob.glob(os.path.join(dump_dir, "*after_optimizations.txt")):
        with open(path) as text:
            for line in text:
                match = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+) ", line)
                if match:
                    op = re.search(r'op_name="([^"]*)"', line)
                    names[match.group(1)] = (match.group(2), op.group(1) if op else "")
    return names


def _step(args):
    """The call to profile (the benchmark's own: `bench.candidates`,
    `bench.model_candidates`), warmed up."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench
    from zoo import ZOO

    if args.model:
        (model,) = [m for m in bench.MODELS if m.name.startswith(args.model)]
        return bench.model_candidates(model, True, plain=False)["convt"]
    layers = {**{f"bench:{lay.name}": lay for lay in bench.LAYERS}, **{z.name: z for z in ZOO}}
    auto = args.method == "auto"
    runs = bench.candidates(
        layers[args.layer], args.pass_ == "fwd+bwd", () if auto else (args.method,)
    )
    if not auto and args.method not in runs:
        raise SystemExit(f"method={args.method!r} does not apply to {args.layer}")
    return runs["convt" if auto else args.method]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layer", nargs="?")
    parser.add_argument("--model")
    parser.add_argument("--method", default="auto")
    parser.add_argument("--pass", dest="pass_", choices=("fwd", "fwd+bwd"), default="fwd+bwd")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if not (args.layer or args.model):
        parser.error("name a LAYER or a --model")
    work = tempfile.mkdtemp(prefix="profile_step_")
    dump = os.path.join(work, "hlo")
    # before jax is imported: the dump of every program this process compiles
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_dump_to={dump} --xla_dump_hlo_as_text".strip()
    import jax

    run = _step(args)
    for _ in range(3):
        run()
    with jax.profiler.trace(os.path.join(work, "trace"), create_perfetto_trace=True):
        for _ in range(args.steps):
            run()
    pattern = os.path.join(work, "trace", "**", "perfetto_trace.json.gz")
    (trace,) = glob.glob(pattern, recursive=True)
    with gzip.open(trace) as stream:
        events = json.load(stream)
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = _hlo_names(dump)
    total: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("ph") == "X" and event["name"] in names:
            total[event["name"]] += event.get("dur", 0)
    print(f"ms/step  thunk  shape  JAX op   (profile and HLO in {work})")
    for name, micros in total.most_common(args.top):
        shape, op = names[name]
        print(f"{micros / args.steps / 1e3:8.2f}  {name}  {shape}  {op[-100:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
