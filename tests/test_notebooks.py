"""The lecture notebooks and the assignment solutions run top to bottom in a fresh kernel.

Each ``notebooks/0*.py`` and ``notebooks/assignments/solutions/*.py`` (jupytext percent format, the
source of truth) is read with jupytext and executed by nbclient in a new ``python3`` kernel, with the
notebook's folder as working directory and Jupyter's inline matplotlib backend (no display). A cell that
raises fails the test and the error names the cell.
"""
import ast
import os
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
LECTURES = sorted(NOTEBOOKS.glob("0*.py"))
SOLUTIONS = sorted((NOTEBOOKS / "assignments" / "solutions").glob("*.py"))
ALL = LECTURES + SOLUTIONS
CELL_TIMEOUT = 120  # seconds per cell
#: Jupyter's own matplotlib backend (no display needed): figures become PNG outputs, which the docs show
INLINE = "module://matplotlib_inline.backend_inline"


def _id(path):
    return str(path.relative_to(NOTEBOOKS))


def _cells(path):
    """``(kind, source)`` of each cell of a percent-format file, without jupytext."""
    cells, kind, lines = [], None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            if kind is not None:
                cells.append((kind, "\n".join(lines)))
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append((kind, "\n".join(lines)))
    return cells


def test_the_eight_lecture_notebooks_exist():
    names = [p.name[:2] for p in LECTURES]
    assert names == [f"0{k}" for k in range(1, 9)], names


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_notebook_parses_and_has_math(path):
    """Valid Python, a jupytext percent header, and at least one markdown cell with LaTeX math."""
    source = path.read_text(encoding="utf-8")
    ast.parse(source, filename=str(path))
    assert "format_name: percent" in source[:1000], "missing the jupytext percent header"
    assert "name: python3" in source[:1000], "missing the python3 kernelspec"
    cells = _cells(path)
    assert any(kind == "code" for kind, _ in cells)
    math = [text for kind, text in cells if kind == "markdown" and re.search(r"\$[^$\n]+\$", text)]
    assert math, "no markdown cell with $...$ math"


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_notebook_runs_in_a_fresh_kernel(path, monkeypatch):
    jupytext = pytest.importorskip("jupytext", reason="jupytext not installed: notebooks not executed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed: notebooks not executed")
    pytest.importorskip("ipykernel", reason="ipykernel not installed: no python3 kernel to run notebooks")
    monkeypatch.setenv("MPLBACKEND", INLINE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                                     resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{_id(path)} failed:\n{error}", pytrace=False)
    errors = [o for cell in notebook.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    _keep_for_the_docs(notebook, path)


def _keep_for_the_docs(notebook, path):
    """With ``$SCRATCHFACE_NOTEBOOK_CACHE`` set, store the executed lecture where the docs build looks.

    The docs (``docs/conf.py``: myst-nb, ``nb_execution_mode = "cache"``) look a lecture up in the
    jupyter-cache folder ``docs/_build/.jupyter_cache`` by a hash of its code cells, and execute it only
    when it is not there. CI sets the variable, so each lecture runs once (here) and the site shows
    this run's outputs; without the variable, nothing is written.
    """
    folder = os.environ.get("SCRATCHFACE_NOTEBOOK_CACHE")
    if not folder or path.parent != NOTEBOOKS:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    get_cache(str(REPO / folder)).cache_notebook_bundle(CacheBundleIn(notebook, str(path)), check_validity=False,
                                                         overwrite=True)
