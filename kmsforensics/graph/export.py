"""Write the graph for Gephi (GEXF), other graph tools (GraphML) and the web (JSON).

Times become ISO-8601 strings (UTC, with ``Z``) and ``operations`` a ``;``-joined
string, since GraphML and GEXF hold only scalars; :func:`read_graph` reads all three
formats back with those attributes restored, so exports round-trip.

Examples
--------
>>> import tempfile, pathlib, networkx as nx, pandas as pd
>>> g = nx.MultiDiGraph()
>>> g.add_node("ip:203.0.113.7", kind="ip", name="203.0.113.7")
>>> g.add_node("access-key:LTAIx", kind="access-key", name="LTAIx")
>>> g.add_edge("ip:203.0.113.7", "access-key:LTAIx", key="source-of", relation="source-of",
...            count=3, failures=0, operations=("Decrypt",),
...            first_seen=pd.Timestamp("2026-03-02T01:00:00Z"),
...            last_seen=pd.Timestamp("2026-03-02T02:00:00Z"))
'source-of'
>>> path = pathlib.Path(tempfile.mkdtemp()) / "g.graphml"
>>> _ = write_graph(g, path)
>>> back = read_graph(path)
>>> back.edges["ip:203.0.113.7", "access-key:LTAIx", "source-of"]["first_seen"]
Timestamp('2026-03-02 01:00:00+0000', tz='UTC')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

FORMATS = ("graphml", "gexf", "json")
_TIMES = ("first_seen", "last_seen")


def write_graph(graph: nx.MultiDiGraph, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``graph`` as GraphML, GEXF or node-link JSON (chosen by ``fmt`` or suffix)."""
    path = Path(path)
    fmt = _format(path, fmt)
    flat = _flatten(graph)
    if fmt == "graphml":
        nx.write_graphml(flat, path)
    elif fmt == "gexf":
        nx.write_gexf(flat, path)
    else:
        path.write_text(json.dumps(nx.node_link_data(flat, edges="edges"), indent=1))
    return path


def read_graph(path: str | Path, fmt: str | None = None) -> nx.MultiDiGraph:
    """Read a graph written by :func:`write_graph`, times and operations restored."""
    path = Path(path)
    fmt = _format(path, fmt)
    if fmt == "graphml":
        raw = nx.read_graphml(path, force_multigraph=True)
    elif fmt == "gexf":
        raw = nx.read_gexf(path)
    else:
        raw = nx.node_link_graph(
            json.loads(path.read_text()), multigraph=True, directed=True, edges="edges"
        )
    graph = nx.MultiDiGraph()
    for node, data in raw.nodes(data=True):
        graph.add_node(node, **{k: v for k, v in data.items() if k != "label"})
    # networkx reads GEXF back as a DiGraph when no two edges share endpoints
    edges = (
        raw.edges(keys=True, data=True)
        if raw.is_multigraph()
        else ((s, d, None, e) for s, d, e in raw.edges(data=True))
    )
    for src, dst, key, data in edges:
        attrs = {k: v for k, v in data.items() if k not in ("id", "key", "label")}
        relation = attrs.get("relation", key)
        graph.add_edge(src, dst, key=relation, **_restore(attrs))
    return graph


def _flatten(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    flat = nx.MultiDiGraph()
    for node, data in graph.nodes(data=True):
        flat.add_node(node, **{k: _scalar(v) for k, v in data.items() if v is not None})
    for src, dst, key, data in graph.edges(keys=True, data=True):
        flat.add_edge(
            src, dst, key=key, **{k: _scalar(v) for k, v in data.items() if v is not None}
        )
    return flat


def _scalar(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (tuple, list)):
        return ";".join(str(v) for v in value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _restore(attrs: dict[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    for name in _TIMES:
        if isinstance(out.get(name), str):
            out[name] = pd.Timestamp(out[name])
    if isinstance(out.get("operations"), str):
        out["operations"] = tuple(v for v in out["operations"].split(";") if v)
    for name in ("count", "failures"):
        if name in out:
            out[name] = int(out[name])
    if "cross_account" in out and isinstance(out["cross_account"], str):
        out["cross_account"] = out["cross_account"].lower() == "true"
    return out


def _format(path: Path, fmt: str | None) -> str:
    chosen = (fmt or path.suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise ValueError(f"unknown graph format {chosen!r}: use one of {', '.join(FORMATS)}")
    return chosen
