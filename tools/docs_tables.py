"""Writes the docs' generated sections: ``auto``'s rules (`convt.auto.rules_markdown`)
into docs/lowerings.md, between ``<!-- auto_rules -->`` and ``<!-- end -->``.
tests/test_auto.py checks that the page holds what this writes.

    python tools/docs_tables.py
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from accelerators import embed  # noqa: E402
from convt.auto import rules_markdown  # noqa: E402

LOWERINGS_PAGE = ROOT / "docs" / "lowerings.md"


def main() -> None:
    embed(LOWERINGS_PAGE, "auto_rules", rules_markdown())
    print(f"wrote auto's rules into {LOWERINGS_PAGE}", file=sys.stderr)


if __name__ == "__main__":
    main()
