"""Pieces of the interactive explorers: a graph for sigma.js, a bokeh timeline, a grid.

Each function is pure and returns a plain object (a networkx graph, a bokeh figure, a
frame ready for a grid), so it can be tested without a browser; :mod:`.widgets` puts
them in front of the analyst (ipysigma, jupyter_bokeh, itables). Times are shown in the
display zone (:func:`kmsforensics.set_display_timezone`); storage stays UTC.

Examples
--------
>>> import networkx as nx
>>> G = nx.MultiDiGraph()
>>> G.add_node("ram-user:7", kind="ram-user", name="ci-deployer")
>>> G.add_node("access-key:LTAI1", kind="access-key", name="LTAI1")
>>> _ = G.add_edge("ram-user:7", "access-key:LTAI1", relation="has-key", count=3)
>>> view = sigma_graph(G, {"ram-user:7", "access-key:LTAI1"}, highlight={"ram-user:7"})
>>> view.nodes["ram-user:7"]["label"], view.nodes["ram-user:7"]["highlight"]
('ci-deployer', 1)
>>> view.edges["ram-user:7", "access-key:LTAI1"]["relation"]
'has-key'
>>> resolve(G, "ci-deployer"), resolve(G, "LTAI1"), resolve(G, "nobody")
(['ram-user:7'], ['access-key:LTAI1'], [])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import networkx as nx
import pandas as pd

from .display import localise, zone_label
from .graph.nodes import names_node

#: Colours of node kinds in the interactive graph.
KIND_COLOURS = {
    "account": "#636363", "ram-user": "#3182bd", "ram-role": "#6baed6",
    "role-session": "#9ecae1", "aap": "#31a354", "client-key": "#74c476",
    "access-key": "#fd8d3c", "kms-instance": "#756bb1", "key": "#e6550d",
    "key-version": "#fdae6b", "secret": "#de2d26", "ip": "#969696", "service": "#bcbddc",
}  # fmt: skip
#: What the graph's legend calls an edge between two haloed nodes.
LINEAGE = "incident lineage"
SEVERITY_COLOURS = {"critical": "#67000d", "high": "#d7301f", "medium": "#fc8d59",
                    "low": "#fdcc8a"}  # fmt: skip
GRID_ROWS = 5000


def _text(value: Any) -> Any:
    """Return a value JSON can carry (times as ISO text, collections joined)."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple | list):
        return ", ".join(sorted(map(str, value)))
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def resolve(graph: nx.MultiDiGraph, text: str) -> list[str]:
    """Return the nodes a name or id names: the node id itself, else a name or a bare id.

    ``ci-deployer`` finds the RAM user of that name, ``192.0.2.66`` the ``ip:`` node,
    ``STS.x`` the access key; an empty list means nothing matches. A bare reference
    means what it means everywhere (:func:`kmsforensics.graph.nodes.names_node`).
    """
    text = text.strip()
    if not text:
        return []
    if text in graph:
        return [text]
    return sorted(n for n, d in graph.nodes(data=True) if names_node(n, text, d.get("name")))


def sigma_graph(
    graph: nx.MultiDiGraph, nodes: Iterable[str], highlight: Iterable[str] = ()
) -> nx.DiGraph:
    """Return the part of the graph to draw: names as labels, ids and attributes on hover.

    Parallel edges are merged (their relations and calls summed); ``highlight`` marks
    nodes (``highlight=1``) for a halo, and edges between two marked nodes
    (``lineage="incident lineage"``, else ``"other"``). The attributes are named for the
    graph's legend, which names them: nodes coloured by ``kind``, sized by
    ``connections``; edges coloured by ``lineage``, as wide as their ``count`` of calls.
    """
    keep = [n for n in nodes if n in graph]
    marked = set(highlight)
    view = nx.DiGraph()
    degree = dict(graph.degree(keep))
    for node in keep:
        data = graph.nodes[node]
        kind = str(data.get("kind", node.partition(":")[0]))
        attributes = {k: _text(v) for k, v in data.items()}
        attributes.update(
            id=node,
            kind=kind,
            label=str(data.get("name") or node),
            connections=int(degree.get(node, 0)),
            highlight=int(node in marked),
        )
        view.add_node(node, **attributes)
    sub = graph.subgraph(keep)
    for source, target, data in sub.edges(data=True):
        relation = str(data.get("relation", ""))
        if view.has_edge(source, target):
            edge = view.edges[source, target]
            edge["relation"] = ", ".join(sorted({*edge["relation"].split(", "), relation}))
            edge["count"] = int(edge["count"]) + int(data.get("count") or 0)
            continue
        view.add_edge(
            source,
            target,
            relation=relation,
            count=int(data.get("count") or 0),
            first_seen=_text(data.get("first_seen")),
            last_seen=_text(data.get("last_seen")),
            operations=_text(data.get("operations")),
            lineage=LINEAGE if source in marked and target in marked else "other",
        )
    return view


def neighbourhood(graph: nx.MultiDiGraph, start: Iterable[str], depth: int = 1) -> set[str]:
    """Return the nodes within ``depth`` hops of ``start``, edges taken either way."""
    frontier = {n for n in start if n in graph}
    seen = set(frontier)
    for _ in range(depth):
        step = set()
        for node in frontier:
            step.update(graph.successors(node))
            step.update(graph.predecessors(node))
        frontier = step - seen
        seen |= step
    return seen


def lineage_nodes(graph: nx.MultiDiGraph, findings: pd.DataFrame) -> set[str]:
    """Return the nodes of an incident: its findings' entities, actors and lineage.

    Each credential or session named is followed back to the identity and account behind
    it (``kf.trace``), so the chain from the origin to what was touched lights up; the
    result depends only on the graph and the findings.
    """
    from .graph.query import trace

    named: set[str] = set()
    for row in findings.to_dict("records"):
        for column in ("lineage", "origin", "actor", "entity"):
            value = row.get(column)
            if isinstance(value, dict):  # the rule pack's lineage: origin, chain, network
                value = [value.get("origin")]
            values = value if isinstance(value, list | tuple) else [value]
            named |= {str(v) for v in values if isinstance(v, str) and v in graph}
    nodes = set(named)
    for node in sorted(named):
        if node.partition(":")[0] in ("access-key", "client-key", "role-session"):
            try:
                nodes.update(str(n) for n in trace(graph, node)["node"])
            except (KeyError, ValueError, LookupError):
                continue
    return nodes


def grid_frame(frame: pd.DataFrame, rows: int = GRID_ROWS) -> pd.DataFrame:
    """Return the frame a grid shows: times in the display zone, lists joined, at most ``rows``.

    A missing value is an empty cell (not "NaN", "None" or "NaT"); times with one missing
    are shown as text of one width, which sorts in time order. A named index (``kf.usage``,
    ``kf.list_rules``) becomes the first column; a mapping is shown as ``key=value`` pairs.
    Log text stays text: the grid escapes HTML (itables' ``allow_html`` is off).

    Examples
    --------
    >>> frame = pd.DataFrame({"code": ["Forbidden", None], "n": [1.5, 2.0],
    ...                       "time": pd.to_datetime(["2026-03-11 17:42", None], utc=True)})
    >>> grid_frame(frame).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'code': 'Forbidden', 'n': 1.5, 'time': '2026-03-11 17:42:00+00:00'},
     {'code': '', 'n': 2.0, 'time': ''}]
    >>> rules = pd.DataFrame({"params": [{"threshold": 20}]}, index=pd.Index(["D01"], name="rule"))
    >>> grid_frame(rules).to_dict("records")
    [{'rule': 'D01', 'params': 'threshold=20'}]
    """
    named = any(name is not None for name in frame.index.names)
    shown = localise(frame.head(rows).reset_index() if named else frame.head(rows))
    for name in shown.columns:
        column = shown[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype) and column.isna().any():
            shown[name] = column.map(lambda t: "" if pd.isna(t) else str(t)).astype(object)
            continue
        if isinstance(column.dtype, pd.CategoricalDtype | pd.StringDtype):
            column = column.astype(object)  # categories sort as text, not by their codes
        if column.dtype == object:
            shown[name] = column.map(_cell_text).where(column.notna(), "")
    return shown.reset_index(drop=True)


def _cell_text(value: Any) -> Any:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, tuple | list | set):
        return ", ".join(map(str, value))
    return value


def timeline_figure(
    events: pd.DataFrame,
    findings: pd.DataFrame | None = None,
    group: str = "identity",
    title: str = "Timeline",
    height: int | None = None,
    names: pd.Series | None = None,
    width: int = 1100,
) -> Any:
    """Return a bokeh figure: one lane per identity, events as dots, findings as triangles.

    Zoom with the wheel, pan by dragging, hover for the event (time, action, address,
    resource, result, findings). ``events`` is a ``kf.timeline`` frame; ``names`` maps
    an evidence id to the name of its identity, for rows that carry only an id
    (:func:`identity_names`).
    """
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool
    from bokeh.plotting import figure

    rows = events.copy()
    who = rows["principal_name"].astype(object)
    if names is not None and "evidence_id" in rows:
        who = who.where(who.notna(), rows["evidence_id"].map(names))
    for column in ("session_name", "access_key_id"):
        if column in rows:
            who = who.where(who.notna(), rows[column].astype(object))
    rows["lane"] = who.fillna("?").astype(str)
    lanes = list(rows["lane"].value_counts().index[:40]) if len(rows) else ["(no events)"]
    rows = rows[rows["lane"].isin(lanes)]
    times = localise(rows[["time"]])["time"].dt.tz_localize(None)
    data = {
        "time": times,
        "lane": rows["lane"],
        "when": times.dt.strftime("%Y-%m-%d %H:%M:%S"),
        **{
            c: rows[c].astype(object).where(rows[c].notna(), "").astype(str)
            for c in ("action", "client_ip", "resource", "source", "error_code", "user_agent")
            if c in rows
        },
        "result": rows["success"].map({True: "ok", False: "failed"}).fillna("").astype(str)
        if "success" in rows
        else "",
        "findings": rows["findings"].map(lambda v: ", ".join(v) if v else "").astype(str)
        if "findings" in rows
        else "",
    }
    source = ColumnDataSource(data)
    plot = figure(
        x_axis_type="datetime",
        y_range=FactorRange(factors=list(reversed(lanes))),
        height=height or max(260, 28 * len(lanes) + 130),  # the legend is above
        width=width,
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        active_scroll="xwheel_zoom",
        active_drag="xpan",
        title=title,
    )
    dots = plot.scatter("time", "lane", source=source, size=7, alpha=0.6, color="#3182bd",
                        legend_label="event")  # fmt: skip
    fields = [("time", "@when"), ("action", "@action"), ("from", "@client_ip"),
              ("resource", "@resource"), ("result", "@result @error_code"),
              ("findings", "@findings")]  # fmt: skip
    plot.add_tools(HoverTool(renderers=[dots], tooltips=fields))
    marked = rows["severity"].notna() if "severity" in rows else pd.Series(False, rows.index)
    if marked.any():
        hits = {k: (v[marked.to_numpy()] if hasattr(v, "__getitem__") and not isinstance(v, str)
                    else v) for k, v in data.items()}  # fmt: skip
        hits["colour"] = rows.loc[marked, "severity"].map(SEVERITY_COLOURS).fillna("black")
        marks = plot.scatter(
            "time", "lane", source=ColumnDataSource(hits), marker="inverted_triangle", size=13,
            color="colour", legend_label="cited by a finding",
        )  # fmt: skip
        plot.add_tools(HoverTool(renderers=[marks], tooltips=fields))
    plot.xaxis.axis_label = f"time ({zone_label()})"
    plot.yaxis.axis_label = group
    plot.legend.orientation = "horizontal"
    plot.legend.click_policy = "hide"
    plot.add_layout(plot.legend[0], "above")  # above the lanes, not over the first events
    return plot


def identity_names(case: Any) -> pd.Series:
    """Return evidence id -> the readable name of its identity, for a whole case."""
    from .case import evidence_ids
    from .plots import identity_labels

    act = case.activity
    names = pd.Series(identity_labels(act).to_numpy(), index=evidence_ids(act).to_numpy())
    return names[~names.index.duplicated()]


def lanes(events: pd.DataFrame, names: pd.Series | None = None) -> Sequence[str]:
    """Return the lane names a timeline figure of these events shows (top to bottom)."""
    return list(timeline_figure(events, names=names).y_range.factors)[::-1]
