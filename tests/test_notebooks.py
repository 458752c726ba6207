"""The committed notebooks hold the cells notebooks/make_notebooks.py writes, executed
(outputs committed for readers; CI executes them again)."""

import json
import runpy
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
SOURCES = runpy.run_path(str(NOTEBOOKS / "make_notebooks.py"), run_name="cells")
CELLS = {
    "01_anatomy": SOURCES["ANATOMY"],
    "02_porting": SOURCES["PORTING"] + SOURCES["PORTING_MODELS"],
    "03_conventions": SOURCES["CONVENTIONS"],
}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_committed_notebook_is_current_and_executed(name):
    committed = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    expected = SOURCES["notebook"](CELLS[name])
    assert [(c["cell_type"], "".join(c["source"])) for c in committed["cells"]] == [
        (c["cell_type"], "".join(c["source"])) for c in expected["cells"]
    ], f"run python notebooks/make_notebooks.py and execute {name}.ipynb again"
    code = [c for c in committed["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code), f"{name}.ipynb is not executed"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, errors


@pytest.mark.parametrize("name", sorted(CELLS))
def test_committed_outputs_show_no_local_paths_or_warnings(name):
    """What a reader sees holds no warning and no path of the machine that ran it."""
    committed = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    outputs = [o for c in committed["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("name") == "stderr"], f"{name}: stderr output"
    text = json.dumps(outputs)
    assert "site-packages" not in text and "/home/" not in text and "/work/" not in text
