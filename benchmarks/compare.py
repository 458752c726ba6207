"""Two runs of ``bench.py`` side by side, as a markdown table: each layer's ``auto``
against torch before and after a change (ratios of the same run, so each is its own
reference), with the lowerings ``auto`` chose.

    python benchmarks/compare.py BEFORE/results.json AFTER/results.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def table(before: dict, after: dict) -> str:
    """The markdown table and the geometric means of ``auto / torch``, per pass."""
    old = {(r["layer"], r["pass_"]): r for r in before["rows"]}
    lines = [
        "| layer | pass | torch ms | auto / torch before | lowering before "
        "| auto / torch after | lowering after | auto / best after |",
        "| --- | --- | ---: | ---: | --- | ---: | --- | ---: |",
    ]
    ratios: dict[str, tuple[list[float], list[float]]] = {}
    for r in after["rows"]:
        b = old.get((r["layer"], r["pass_"]))
        if b is None:
            continue
        lines.append(
            f"| {r['layer']} | {r['pass_']} | {r['torch_ms']:.2f} | "
            f"{b['convt_vs_torch']:.2f} | {b['method']} | **{r['convt_vs_torch']:.2f}** | "
            f"{r['method']} | {r['convt_vs_best']:.2f} |"
        )
        pair = ratios.setdefault(r["pass_"], ([], []))
        pair[0].append(b["convt_vs_torch"])
        pair[1].append(r["convt_vs_torch"])
    lines.append("")
    for name, (was, now) in ratios.items():
        over = [v for v in now if v > 1.1]
        lines.append(
            f"- {name}: geometric mean auto / torch {_geomean(was):.2f} -> "
            f"**{_geomean(now):.2f}**; layers above 1.1x torch {sum(v > 1.1 for v in was)} -> "
            f"{len(over)} of {len(now)}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    print(table(json.loads(args.before.read_text()), json.loads(args.after.read_text())))


if __name__ == "__main__":
    main()
