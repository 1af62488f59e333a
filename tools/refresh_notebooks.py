"""Run every curated notebook and keep only the outputs that nbval checks.

Cells marked ``# NBVAL_CHECK_OUTPUT`` keep their output (``make test`` compares it);
every other output is dropped, so the notebooks stay small and diff well. The widgets'
state that nbclient saves in the notebook's metadata is dropped too: no output is left
that shows a widget, and it was megabytes (the explorers' graphs and grids); so are the
times at which each cell ran.

Usage: ``python tools/refresh_notebooks.py [NOTEBOOK ...]`` (``make notebooks``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARK = "# NBVAL_CHECK_OUTPUT"
ROOT = Path(__file__).resolve().parent.parent / "notebooks"


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={
        "metadata": {"path": str(path.parent)}}).execute()  # fmt: skip
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # when each cell ran: noise in every diff
        if cell.cell_type != "code":
            continue
        if not cell.source.lstrip().startswith(MARK):
            cell.outputs = []
            cell.execution_count = None  # nbval takes a numbered cell as one that ran
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    print(f"refreshed {path.relative_to(ROOT.parent)}")


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(ROOT.glob("**/*.ipynb"))
    for path in paths:
        if ".ipynb_checkpoints" not in path.parts:
            refresh(path.resolve())


if __name__ == "__main__":
    main()
