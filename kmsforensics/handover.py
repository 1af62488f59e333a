r"""Hand-over: findings and timelines to CSV, JSON Lines and Timesketch, with provenance.

Every export writes, beside the file, ``<name>.manifest.json``: the package version, when
it was written, what it holds, and the evidence manifest (path, SHA-256, bytes) of the
case it came from, so a reader can check the export against the evidence.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) are prefixed with ``'``: log text is attacker
controlled, and ``=HYPERLINK(...)`` in a user agent must stay text. So is every line
inside a cell that starts like a formula (``prod/\r=1+1``), and every cell holding a
CR or LF is quoted, so that no line break in log text can start a new row.

Graph exports (GraphML and GEXF are XML) get the characters XML 1.0 forbids
(control characters such as ESC, which log text may hold) written as visible
``\xNN`` escapes, so that every XML reader can read the file.

Examples
--------
>>> neutralise('=HYPERLINK("http://x")')
'\'=HYPERLINK("http://x")'
>>> neutralise("-12")
"'-12"
>>> neutralise("prod/\r=1+1")
"prod/\r'=1+1"
>>> xml_safe("svc\x1b[2Jname\x00")
'svc\\x1b[2Jname\\x00'
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pandas as pd

from ._version import __version__
from .case import Case
from .graph.export import write_graph
from .graph.query import resolve

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "jsonl", "timesketch")
#: A line inside a cell that starts like a formula (after a CR or LF).
_FORMULA_AFTER_BREAK = re.compile(r"(?<=[\r\n])(?=[=+\-@\t])")
#: Characters XML 1.0 does not allow in a document (C0 controls but tab, LF, CR;
#: surrogates; U+FFFE and U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def neutralise(value: Any) -> Any:
    """Make one CSV cell safe from formula injection (text only; numbers untouched).

    A cell starting like a formula is prefixed with ``'``, and so is each line inside
    it that starts like one.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_PREFIXES):
        value = "'" + value
    return _FORMULA_AFTER_BREAK.sub("'", value) if ("\r" in value or "\n" in value) else value


def xml_safe(value: Any) -> Any:
    r"""Write the characters XML 1.0 forbids in a text as ``\xNN`` (other values as is)."""
    if not isinstance(value, str):
        return value
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def xml_safe_graph(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Return a copy of ``graph`` whose ids, keys and text attributes are XML-safe."""
    safe = nx.MultiDiGraph()
    safe.graph.update({xml_safe(k): xml_safe(v) for k, v in graph.graph.items()})
    for node, data in graph.nodes(data=True):
        safe.add_node(xml_safe(node), **{xml_safe(k): xml_safe(v) for k, v in data.items()})
    for src, dst, key, data in graph.edges(keys=True, data=True):
        attrs = {xml_safe(k): xml_safe(v) for k, v in data.items()}
        safe.add_edge(xml_safe(src), xml_safe(dst), key=xml_safe(key), **attrs)
    return safe


def export_findings(
    findings: pd.DataFrame, path: str | Path, case: Case, fmt: str | None = None
) -> Path:
    """Write findings as CSV, JSON Lines or Timesketch JSONL, with the evidence manifest.

    Parameters
    ----------
    findings : DataFrame
        From ``kf.detect``.
    path : str or Path
        The file to write; ``fmt`` defaults from its suffix (``.csv``, ``.jsonl``), and
        ``timesketch`` must be asked for.
    case : Case
        The case the findings came from (its manifest is recorded).
    fmt : {"csv", "jsonl", "timesketch"}, optional
        The format, when the suffix does not say it.

    Returns
    -------
    Path
        The file written (the manifest is ``<path>.manifest.json``).
    """
    rows = findings.copy()
    message = (
        rows["rule_id"].astype(str)
        + " "
        + rows["title"].astype(str)
        + ": "
        + rows["summary"].astype(str)
    )
    return _write(
        rows, path, case, fmt, "findings", message=message, time="first_seen",
        desc="first seen",
    )  # fmt: skip


def export_timeline(
    timeline: pd.DataFrame, path: str | Path, case: Case, fmt: str | None = None
) -> Path:
    """Write a timeline (``kf.timeline``) like :func:`export_findings` writes findings."""
    rows = timeline.copy()
    message = (
        rows["action"].astype(str)
        + " by "
        + rows["principal_name"].astype(object).fillna(rows["access_key_id"]).astype(str)
        + " from "
        + rows["client_ip"].astype(str)
    )
    return _write(rows, path, case, fmt, "timeline", message=message, time="time", desc="event")


def export_neighbourhood(
    graph: nx.MultiDiGraph,
    finding: pd.Series | dict[str, Any],
    path: str | Path,
    case: Case,
    depth: int = 1,
) -> Path:
    """Write the graph around a finding's entity and actor (GraphML, GEXF or JSON).

    The format follows the suffix (``.graphml``, ``.gexf``, ``.json``), as
    ``kf.graph.write_graph`` does; the manifest is written beside it.
    """
    centres = [resolve(graph, finding[k]) for k in ("entity", "actor") if _known(graph, finding[k])]
    nodes: set[str] = set()
    undirected = graph.to_undirected(as_view=True)
    for centre in centres:
        nodes |= set(nx.ego_graph(undirected, centre, radius=depth).nodes)
    sub = graph.subgraph(nodes).copy()
    sub.graph["finding"] = f"{finding['rule_id']}: {finding['summary']}"
    out = write_graph(xml_safe_graph(sub), path)
    _manifest(out, case, "graph neighbourhood", len(nodes))
    return out


def _known(graph: nx.MultiDiGraph, ref: Any) -> bool:
    return isinstance(ref, str) and ref in graph


def _write(
    rows: pd.DataFrame,
    path: str | Path,
    case: Case,
    fmt: str | None,
    what: str,
    *,
    message: pd.Series,
    time: str,
    desc: str,
) -> Path:
    out = Path(path)
    fmt = fmt or {".csv": "csv", ".jsonl": "jsonl"}.get(out.suffix.lower())
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the format of {out}: pass fmt= one of {FORMATS}")
    out.parent.mkdir(parents=True, exist_ok=True)
    records = [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict("records")]
    if fmt == "csv":
        table = pd.DataFrame(records, columns=list(rows.columns))
        # RFC 4180 rows end in CRLF; the writer then quotes every cell holding a CR or LF
        table.map(neutralise).to_csv(
            out, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
        )
    else:
        with out.open("wb") as handle:
            for record, text, stamp in zip(records, message, rows[time], strict=True):
                if fmt == "timesketch":
                    moment = pd.Timestamp(stamp)
                    record = {
                        "message": text,
                        "datetime": moment.isoformat(),
                        "timestamp": int(moment.value // 1000),
                        "timestamp_desc": desc,
                        **record,
                    }
                handle.write(orjson.dumps(record) + b"\n")
    _manifest(out, case, f"{what} ({fmt})", len(rows))
    return out


def _plain(value: Any) -> Any:
    """Return a cell as a JSON-ready value: times as ISO strings, tuples and dicts kept."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _manifest(out: Path, case: Case, what: str, rows: int) -> Path:
    manifest = case.manifest[["path", "sha256", "bytes"]].astype(object)
    sidecar = out.with_name(out.name + ".manifest.json")
    sidecar.write_text(
        json.dumps(
            {
                "written_by": f"kmsforensics {__version__}",
                "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "file": out.name,
                "holds": what,
                "rows": rows,
                "evidence": [
                    {"path": str(p), "sha256": s, "bytes": int(b)}
                    for p, s, b in manifest.itertuples(index=False)
                ],
            },
            indent=2,
        )
    )
    return sidecar
