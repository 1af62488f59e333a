"""Templated reports: run a template notebook with papermill, render HTML without code.

``kmsforensics report --template incident --evidence PATH... --out report.html`` (and
:func:`render`) executes ``notebooks/templates/incident_report.ipynb`` with the evidence
and parameters given, and writes one self-contained HTML file: pictures are embedded,
code cells are left out, and the page has no script at all (it opens offline).
Log text in the outputs is escaped by pandas and nbconvert; the report carries the
SHA-256 of every evidence file and the versions used, so it can be reproduced.

Examples
--------
>>> template_path("incident").name
'incident_report.ipynb'
>>> render(["evidence/"], "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import platform
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from ._version import __version__
from .case import Case
from .errors import TemplateNotFoundError

TEMPLATES = {"incident": "incident_report.ipynb"}
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_REMOTE_STYLE = re.compile(r"<link[^>]*\shref=[\"']https?://[^>]*>", re.I)


def template_path(template: str | Path) -> Path:
    """Return the notebook of a named template (``incident``) or a path to one."""
    if str(template) in TEMPLATES:
        folder = Path(__file__).resolve().parent.parent / "notebooks" / "templates"
        path = folder / TEMPLATES[str(template)]
    else:
        path = Path(template)
    if not path.is_file():
        raise TemplateNotFoundError(
            f"no report template {str(template)!r} (looked for {path}); the named templates "
            f"are {', '.join(TEMPLATES)}, found in the repository's notebooks/templates/, or "
            "pass the path of a notebook with a 'parameters' cell"
        )
    return path


def render(
    evidence: Sequence[str | Path],
    out: str | Path,
    template: str | Path = "incident",
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str = "python3",
    timeout: int = 900,
) -> Path:
    """Execute a report template on evidence and write it as self-contained HTML.

    Parameters
    ----------
    evidence : list of str or Path
        Evidence files or folders (as ``kf.load`` takes them).
    out : str or Path
        The HTML file to write (its folder is made if needed).
    template : str or Path
        A template name (``incident``) or the path of a notebook.
    parameters : dict, optional
        More parameters for the template's ``parameters`` cell (``case_id``,
        ``analyst``, ``entity``, ``window_start``, ``window_end`` ...).
    kernel_name : str
        The Jupyter kernel to run it in.
    timeout : int
        Seconds a cell may take.

    Returns
    -------
    Path
        The HTML file.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    notebook = template_path(template)
    values = {"evidence": [str(Path(p).resolve()) for p in evidence], **dict(parameters or {})}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kmsforensics-report-") as folder:
        executed = Path(folder) / notebook.name
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=values,
            kernel_name=kernel_name,
            progress_bar=False,
            cwd=folder,
            execution_timeout=timeout,
        )
        node = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(node)
    out.write_text(offline(body), encoding="utf-8")
    return out


def offline(page: str) -> str:
    """Remove every script and remote stylesheet of the page template.

    A report is static: the template's scripts (MathJax, mermaid loaders) would reach
    the network, and none is needed to read it. Log text never becomes a tag (pandas and
    nbconvert escape it), so every ``<script>`` here is the template's.
    """
    return _REMOTE_STYLE.sub("", _SCRIPT.sub("", page))


class Header:
    """The report's first block: case id, analyst, when, scope and counts (escaped HTML)."""

    def __init__(self, rows: dict[str, str]) -> None:
        self.rows = rows

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self.rows.items()
        )
        return f"<table class='kmsforensics-header'>{cells}</table>"

    def __repr__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.rows.items())


def header(case_id: str, analyst: str, case: Case, findings: pd.DataFrame) -> Header:
    """Return the header of a report: who, when, what evidence, what was found."""
    summary = case.summary()
    span = (
        f"{summary['start']:%Y-%m-%d %H:%M} to {summary['end']:%Y-%m-%d %H:%M} UTC"
        if summary["start"] is not None
        else "no events"
    )
    counts = findings["severity"].value_counts()
    found = ", ".join(
        f"{int(counts[s])} {s}" for s in ("critical", "high", "medium", "low") if s in counts
    )
    return Header(
        {
            "case": str(case_id),
            "analyst": str(analyst),
            "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "evidence": f"{summary['files']} files, {summary['events']['kms']:,} KMS records, "
            f"{summary['events']['actiontrail']:,} ActionTrail events",
            "time range": span,
            "records not loaded": f"{len(case.issues):,} (listed in case.issues)",
            "findings": found or "none",
            "made with": f"kmsforensics {__version__}",
        }
    )


def versions() -> pd.DataFrame:
    """Return the versions of Python and the libraries that produced a report."""
    names = ["kmsforensics", "pandas", "pyarrow", "duckdb", "networkx", "matplotlib", "papermill",
             "nbconvert", "orjson"]  # fmt: skip
    rows = [{"package": "python", "version": platform.python_version()}]
    for name in names:
        try:
            rows.append({"package": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"package": name, "version": "not installed"})
    return pd.DataFrame(rows)
