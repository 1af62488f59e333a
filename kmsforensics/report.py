"""Templated reports: run a template notebook with papermill, render HTML without code.

``kmsforensics report --template incident --evidence PATH... --out report.html`` (and
:func:`render`) executes ``notebooks/templates/incident_report.ipynb`` with the evidence
and parameters given, and writes one self-contained HTML file: pictures are embedded,
code cells are left out, and the page has no script at all (it opens offline). Beside
it go ``report.html.sha256`` (the page's SHA-256, ``sha256sum -c`` format) and
``report.json``, a sidecar with the parameters, the versions, the evidence hashes and
the finding ids; two runs on the same evidence and parameters give the same sidecar
but for its ``written`` time.

Detection always runs on the whole case: a window (``window_start``, ``window_end``)
narrows only what the page shows, so the baseline rules still learn from the days
before it (:func:`investigate`).

Examples
--------
>>> template_path("incident").name
'incident_report.ipynb'
>>> sorted(known_parameters("incident"))[:3]
['analyst', 'case_id', 'display_timezone']
>>> check_parameters("incident", {"window_start": "2026-03-11"})
{'window_start': '2026-03-11'}
>>> render(["evidence/"], "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import platform
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from ._version import __version__
from .case import Case, evidence_ids, to_utc
from .display import show_time
from .errors import ReportError, ReportParameterError, TemplateNotFoundError
from .incidents_view import incidents
from .provenance import relative_paths
from .triage import TriageRecord, apply, finding_ids

TEMPLATES = {"incident": "incident_report.ipynb"}
SEVERITIES = ("critical", "high", "medium", "low")
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_REMOTE_STYLE = re.compile(r"<link[^>]*\shref=[\"']https?://[^>]*>", re.I)
FACTS = "report-facts.json"  # what the template leaves for the sidecar, in its folder
#: Styles added to every report: tables that wrap and a print layout for PDF.
STYLE = """<style>
.kmsforensics-table { border-collapse: collapse; font-size: 12px; table-layout: auto !important; }
.kmsforensics-table th, .kmsforensics-table td { border: 1px solid #ccc; padding: 2px 6px;
  text-align: left !important; vertical-align: top; white-space: normal !important;
  overflow-wrap: break-word; max-width: 40em; }
/* the manifest's paths and hashes break anywhere, so that its other columns stay on the page */
.kmsforensics-manifest td:nth-child(-n+2) { overflow-wrap: anywhere; }
.kmsforensics-table th { background: #f0f0f0; }
.kmsforensics-narrative { font-size: 14px; max-width: 60em; }
.jp-OutputArea-output pre { white-space: pre-wrap; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body, .jp-Notebook { background: white !important; padding: 0 !important; }
  .jp-Cell, .jp-Cell-outputWrapper, .jp-OutputArea-output { overflow: visible !important;
    max-height: none !important; }
  .jp-Notebook { width: auto !important; }
  h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
  img { max-width: 100% !important; break-inside: avoid; page-break-inside: avoid; }
  table { font-size: 8pt !important; }
  thead { display: table-header-group; }
  tr, .kmsforensics-narrative { break-inside: avoid; page-break-inside: avoid; }
  a { color: black; text-decoration: none; }
}
</style>"""


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


def known_parameters(template: str | Path) -> dict[str, str]:
    """Return the parameters of a template (its ``parameters`` cell) with their help."""
    import papermill

    found = papermill.inspect_notebook(str(template_path(template)))
    return {name: str(spec.get("help") or "") for name, spec in found.items()}


def _time(value: Any) -> None:
    if value is not None and to_utc(value) is None:
        raise ValueError


def _zone(value: Any) -> None:
    ZoneInfo(str(value))


def _list(value: Any) -> None:
    if not isinstance(value, list | str):
        raise ValueError


#: How the values of the named parameters are checked before the template runs.
CHECKS: dict[str, tuple[Callable[[Any], None], str]] = {
    "window_start": (_time, "a date or time such as 2026-03-11 or 2026-03-11T08:00:00+08:00"),
    "window_end": (_time, "a date or time such as 2026-03-12"),
    "display_timezone": (_zone, "an IANA time zone such as UTC or Asia/Shanghai"),
    "evidence": (_list, "a list of paths"),
    "rules": (
        lambda v: None if v is None or isinstance(v, list | str) else _list(0),
        "a rule id or a list of them",
    ),
}


def check_parameters(template: str | Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse a parameter the template does not have, or a value it cannot take.

    Raises
    ------
    ReportParameterError
        One line naming the parameter (and, for an unknown one, the known ones).
    """
    known = known_parameters(template)
    for name, value in parameters.items():
        if name not in known:
            raise ReportParameterError(
                f"unknown parameter {name!r}; the template's parameters are "
                f"{', '.join(sorted(known))}"
            )
        check = CHECKS.get(name)
        if check is None:
            continue
        try:
            check[0](value)
        except (ValueError, TypeError, ZoneInfoNotFoundError) as error:
            raise ReportParameterError(f"parameter {name}={value!r} is not {check[1]}") from error
    return dict(parameters)


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
        The HTML file to write (its folder is made if needed); ``.sha256`` and ``.json``
        files are written beside it.
    template : str or Path
        A template name (``incident``) or the path of a notebook.
    parameters : dict, optional
        More parameters for the template's ``parameters`` cell (``case_id``,
        ``analyst``, ``entity``, ``window_start``, ``window_end`` ...); an unknown name
        or a bad value raises :class:`ReportParameterError`.
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
    given = check_parameters(notebook, dict(parameters or {}))
    values = {"evidence": [str(Path(p).resolve()) for p in evidence], **given}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kmsforensics-report-") as folder:
        executed = Path(folder) / notebook.name
        try:
            papermill.execute_notebook(
                str(notebook),
                str(executed),
                parameters=values,
                kernel_name=kernel_name,
                progress_bar=False,
                cwd=folder,
                execution_timeout=timeout,
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        except papermill.PapermillExecutionError as error:
            raise ReportError(
                f"the template {notebook.name} failed in cell {error.exec_count}: "
                f"{error.ename}: {error.evalue}"
            ) from None
        node = nbformat.read(executed, as_version=4)
        facts_file = Path(folder) / FACTS
        facts = json.loads(facts_file.read_text()) if facts_file.is_file() else {}
    case_id = str(facts.get("case_id") or values.get("case_id") or "")
    node.metadata["title"] = f"Incident report {case_id}".strip() + " — kmsforensics"
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(node)
    page = offline(body).replace("</head>", STYLE + "\n</head>", 1)
    out.write_text(page, encoding="utf-8")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n", encoding="utf-8")
    sidecar = {
        "report": out.name,
        "sha256": digest,
        "written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "template": notebook.name,
        "parameters": {k: v for k, v in values.items() if k != "evidence"},
        "evidence": values["evidence"],
        **{k: v for k, v in facts.items() if k != "case_id"},
        "versions": dict(zip(versions()["package"], versions()["version"], strict=True)),
    }
    sidecar.pop("sha256")  # the page holds its write time: its hash is in the .sha256 file
    out.with_suffix(".json").write_text(
        json.dumps(sidecar, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    return out


def offline(page: str) -> str:
    """Remove every script and remote stylesheet of the page template.

    A report is static: the template's scripts (MathJax, mermaid loaders) would reach
    the network, and none is needed to read it. Log text never becomes a tag (pandas and
    nbconvert escape it), so every ``<script>`` here is the template's.
    """
    return _REMOTE_STYLE.sub("", _SCRIPT.sub("", page))


# -- what the template computes ------------------------------------------------------------


@dataclass
class Investigation:
    """What a report shows: the case, its findings over the whole case, the window's part.

    ``findings`` are those of the whole case (after the triage record's suppressions),
    ``shown`` those that reach into the window, ``scope`` the case cut to the window
    (for timelines, pictures and activity).
    """

    case: Case
    scope: Case
    findings: pd.DataFrame
    shown: pd.DataFrame
    incidents: pd.DataFrame
    record: TriageRecord | None
    window: tuple[pd.Timestamp | None, pd.Timestamp | None]
    root: Path | None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def notes(self) -> dict[str, str]:
        """Rule id -> what detection could not do on this run."""
        return dict(self.findings.attrs.get("notes", {}))


def investigate(
    evidence: Sequence[str | Path],
    *,
    window_start: Any = None,
    window_end: Any = None,
    rules: str | list[str] | None = None,
    triage: str | Path | None = None,
    geoip: str | Path | None = None,
) -> Investigation:
    """Load the evidence, detect on the whole case, and narrow what is shown to the window.

    Parameters
    ----------
    evidence : list of str or Path
        What ``kf.load`` takes.
    window_start, window_end : str or datetime, optional
        The window under investigation (UTC unless a zone is given). Detection runs on
        the whole case with ``window_start`` (baselines learn from before it); findings
        are shown when they reach into ``[window_start, window_end)``.
    rules : str or list of str, optional
        Rule ids to run (default: all).
    triage : str or Path, optional
        The triage record (a JSON file beside the case): its suppressions are applied,
        its statuses and notes shown.
    geoip : str or Path, optional
        A MaxMind-format database for the geo rules.
    """
    from .detections import detect
    from .graph import build_graph
    from .loader import load

    case = load(*evidence, progress=False)
    lo, hi = to_utc(window_start), to_utc(window_end)
    found = detect(case, rules=rules, window_start=lo, geoip=geoip)
    record = TriageRecord(triage, [Path(p) for p in evidence]) if triage else None
    findings = apply(found, record, case)
    keep = pd.Series(True, index=findings.index)
    if lo is not None:
        keep &= findings["last_seen"] >= lo
    if hi is not None:
        keep &= findings["first_seen"] < hi
    shown = findings[keep]
    scope = case.between(lo, hi) if (lo is not None or hi is not None) else case
    graph = build_graph(case)
    return Investigation(
        case=case,
        scope=scope,
        findings=findings,
        shown=shown,
        incidents=incidents(shown, graph),
        record=record,
        window=(lo, hi),
        root=_root(evidence),
        parameters={
            "window_start": window_start,
            "window_end": window_end,
            "rules": rules,
            "triage": str(triage) if triage else None,
        },
    )


def _root(evidence: Sequence[str | Path]) -> Path | None:
    paths = [Path(p).resolve() for p in evidence]
    if not paths:
        return None
    folders = [p if p.is_dir() else p.parent for p in paths]
    return Path(os.path.commonpath([str(f) for f in folders]))


class Table:
    """An escaped HTML table: no index, empty cells for missing values, text wrapped."""

    def __init__(
        self, frame: pd.DataFrame, empty: str = "none", note: str = "", css_class: str = ""
    ) -> None:
        self.frame = frame
        self.empty = empty
        self.note = note
        self.css_class = css_class  # added to kmsforensics-table (the report's STYLE)

    def _blanked(self) -> pd.DataFrame:
        # pandas writes a None in an object column as "None" whatever na_rep says
        return self.frame.astype(object).where(self.frame.notna(), "")

    def _repr_html_(self) -> str:
        if self.frame.empty:
            return f"<p><i>{html.escape(self.empty)}</i></p>"
        note = f"<p><i>{html.escape(self.note)}</i></p>" if self.note else ""
        with pd.option_context("display.max_colwidth", None):
            return note + self._blanked().to_html(
                index=False,
                escape=True,
                classes=" ".join(filter(None, ["kmsforensics-table", self.css_class])),
                border=0,
            )

    def __repr__(self) -> str:
        return self._blanked().to_string(index=False) if len(self.frame) else self.empty


def _cell(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value))
    if isinstance(value, pd.Timestamp):
        return show_time(value)
    return value


def table(frame: pd.DataFrame, columns: Sequence[str] | None = None, empty: str = "none") -> Table:
    """Return the columns of a frame as a report :class:`Table` (times in UTC, lists joined)."""
    chosen = frame[[c for c in (columns or frame.columns) if c in frame.columns]]
    shown = chosen.apply(lambda column: column.map(_cell)) if len(chosen) else chosen
    return Table(shown.astype(object).where(shown.notna(), None), empty)


def severity_summary(findings: pd.DataFrame) -> Table:
    """Return findings counted by severity (critical first), rule and title."""
    if findings.empty:
        return Table(pd.DataFrame(), "no findings")
    rank = findings["severity"].map({s: i for i, s in enumerate(SEVERITIES)}).fillna(9)
    counted = (
        findings.assign(_rank=rank)
        .groupby(["_rank", "severity", "rule_id", "title"], observed=True)
        .size()
        .rename("findings")
        .reset_index()
        .sort_values(["_rank", "rule_id"])
        .drop(columns="_rank")
    )
    return table(counted)


def ranked(findings: pd.DataFrame) -> pd.DataFrame:
    """Return findings critical first, then by time."""
    rank = findings["severity"].map({s: i for i, s in enumerate(SEVERITIES)}).fillna(9)
    return findings.assign(_rank=rank).sort_values(["_rank", "first_seen"]).drop(columns="_rank")


class Narrative:
    """A few sentences, from the incidents: who, what, when, from where (escaped HTML)."""

    def __init__(self, paragraphs: list[str]) -> None:
        self.paragraphs = paragraphs

    def _repr_html_(self) -> str:
        body = "".join(f"<p>{html.escape(p)}</p>" for p in self.paragraphs)
        return f"<div class='kmsforensics-narrative'>{body}</div>"

    def __repr__(self) -> str:
        return "\n\n".join(self.paragraphs)


def narrative(inv: Investigation, top: int = 3) -> Narrative:
    """Write the opening of a report from the top incidents of an :class:`Investigation`."""
    lo, hi = inv.window
    span = (f"from {show_time(lo, False)}" if lo is not None else "over the whole evidence") + (
        f" to {show_time(hi, False)}" if hi is not None else ""
    )
    counts = inv.shown["severity"].value_counts()
    found = ", ".join(f"{int(counts[s])} {s}" for s in SEVERITIES if s in counts) or "none"
    lines = [
        f"This report covers the window {span}. Detection ran on all "
        f"{len(inv.case.activity):,} events of the case; {len(inv.shown):,} findings reach "
        f"into the window ({found}), grouped into {len(inv.incidents):,} incidents."
    ]
    act = inv.case.activity
    ids = evidence_ids(act)
    for row in inv.incidents.head(top).to_dict("records"):
        members = inv.shown[finding_ids(inv.shown).isin(set(row["finding_ids"]))]
        cited = set(members["evidence"].explode().dropna().astype(str))
        rows = act[ids.isin(cited).to_numpy()]
        who = rows["principal_name"].dropna().astype(str).value_counts().head(3).index.tolist()
        where = rows["client_ip"].dropna().astype(str).value_counts().head(3).index.tolist()
        titles = members.drop_duplicates("rule_id")["title"].astype(str).head(4).tolist()
        lines.append(
            f"Incident {row['rank']} ({row['severity']}): {row['story']}. "
            f"Who: {', '.join(who) or row['origin']}. What: {'; '.join(titles)}. "
            f"When: {show_time(row['first_seen'], False)} to {show_time(row['last_seen'], False)}. "
            f"From: {', '.join(where) or 'no address in the evidence'}."
        )
    return Narrative(lines)


def parameters_table(inv: Investigation, given: Mapping[str, Any]) -> Table:
    """Return the parameters of the run and the detection notes, one row each."""
    rows = [{"what": "parameter", "name": k, "value": "" if v is None else str(v)}
            for k, v in given.items()]  # fmt: skip
    rows += [{"what": "detection note", "name": k, "value": v} for k, v in inv.notes.items()]
    if not inv.notes:
        rows.append({"what": "detection note", "name": "", "value": "every rule ran"})
    return Table(pd.DataFrame(rows))


def manifest(inv: Investigation) -> Table:
    """Return the whole evidence manifest, with paths relative to the evidence root."""
    root = str(inv.root) if inv.root is not None else None
    frame = relative_paths(inv.case.manifest, root, ["path"])
    columns = ["path", "sha256", "bytes", "format", "records_read", "records_loaded",
               "records_rejected", "duplicates", "status"]  # fmt: skip
    shown = table(frame, columns)
    shown.css_class = "kmsforensics-manifest"
    return shown


def triage_tables(inv: Investigation) -> tuple[Table, Table]:
    """Return the triage decisions and the suppressions (with the findings each hid)."""
    if inv.record is None:
        return (
            Table(pd.DataFrame(), "no triage record was given (parameter triage)"),
            Table(pd.DataFrame(), "none (they are part of the triage record)"),
        )
    decisions = table(inv.record.table(), empty="no decisions yet")
    counts = inv.findings.attrs.get("suppressed", {})
    return decisions, table(inv.record.suppression_table(counts), empty="no suppressions")


def write_facts(inv: Investigation, case_id: str, path: str | Path = FACTS) -> Path:
    """Write what the sidecar needs (finding ids, evidence hashes) for :func:`render`."""
    manifest_rows = manifest(inv).frame
    facts = {
        "case_id": case_id,
        "findings": sorted(finding_ids(inv.findings)),
        "findings_shown": sorted(finding_ids(inv.shown)),
        "incidents": [
            {"incident_id": r["incident_id"], "finding_ids": list(r["finding_ids"])}
            for r in inv.incidents.to_dict("records")
        ],
        "suppressed": inv.findings.attrs.get("suppressed", {}),
        "detection_notes": inv.notes,
        "evidence_files": [
            {"path": p, "sha256": s}
            for p, s in zip(manifest_rows["path"], manifest_rows["sha256"], strict=True)
        ],
    }
    target = Path(path)
    target.write_text(json.dumps(facts, indent=1, sort_keys=True, default=str), encoding="utf-8")
    return target


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
        f"{show_time(summary['start'], False)} to {show_time(summary['end'], False)}"
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
             "nbconvert", "orjson", "bokeh", "ipysigma", "itables"]  # fmt: skip
    rows = [{"package": "python", "version": platform.python_version()}]
    for name in names:
        try:
            rows.append({"package": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"package": name, "version": "not installed"})
    return pd.DataFrame(rows)


def top_entity(inv: Investigation) -> str | None:
    """Return the entity to follow: that of the first critical or high finding shown."""
    urgent = ranked(inv.shown[inv.shown["severity"].isin(["critical", "high"])])
    entities = urgent["entity"].dropna()
    return str(entities.iloc[0]) if len(entities) else None


TIMELINE_COLUMNS = ("time", "source", "principal_name", "client_ip", "action", "resource",
                    "success", "error_code", "user_agent", "findings")  # fmt: skip


def timeline_table(inv: Investigation, entity: str | None, rows: int = 100) -> Table:
    """Return the events of one entity in the window, findings marked (at most ``rows``).

    When there are more, the table starts an hour before the first event that the most
    severe findings on it cite, so that it shows what happened, not the routine before.
    """
    from .timeline import timeline

    if entity is None:
        return Table(pd.DataFrame(), "no entity to follow")
    events = timeline(inv.scope, entity, inv.shown)
    rank = events["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
    start, events_from = "", events
    if len(events) > rows and rank.notna().any():
        first = events.loc[rank == rank.min(), "time"].min()
        events_from = events[events["time"] >= first - pd.Timedelta(hours=1)]
        worst = SEVERITIES[int(rank.min())]
        start = (
            f", from an hour before the first event a {worst} finding cites ({show_time(first)})"
        )
    shown = table(events_from.head(rows), TIMELINE_COLUMNS, empty=f"no events of {entity}")
    if len(events_from) > rows or start:
        shown.note = f"{min(rows, len(events_from)):,} of the {len(events):,} events of {entity}"
        shown.note += start
    return shown
