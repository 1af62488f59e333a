"""Questions an investigator asks of the graph, each answered as a DataFrame.

``ref`` is a node id (``"access-key:STS.xxx"``) or a bare identifier (``"STS.xxx"``, a
secret name, a key id, a user name); a bare one that names several nodes is an error
that lists them, and one that names none is an error too.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import networkx as nx
import pandas as pd

from ..errors import AmbiguousReferenceError, UnknownReferenceError  # noqa: F401 (re-exported)
from .nodes import resolve_node

#: How a credential or session leads back to who is behind it (walked backwards).
TRACE_RELATIONS = ("issued", "assumed", "has-key", "owns")
#: What an identity or key can reach (walked forwards).
REACH_RELATIONS = ("has-key", "assumed", "issued", "called", "owns")


def resolve(graph: nx.MultiDiGraph, ref: str) -> str:
    """Return the node a reference names (the vocabulary of :mod:`.nodes`).

    Examples
    --------
    >>> g = nx.MultiDiGraph()
    >>> g.add_node("access-key:STS.abc", kind="access-key", name="STS.abc")
    >>> resolve(g, "STS.abc")
    'access-key:STS.abc'
    """
    if ref in graph:
        return ref
    return resolve_node(graph.nodes(data=True), ref)


def trace(graph: nx.MultiDiGraph, ref: str) -> pd.DataFrame:
    """Follow a credential or session back to the identity and account behind it.

    One row per hop, starting at ``ref``: an STS key to the role session that was issued
    it, the session to whoever assumed it (a RAM user, another session for role chains,
    a service), that identity to its account. ``cross_account`` marks an assumption
    into another account.
    """
    node = resolve(graph, ref)
    rows = [_row(graph, node, hop=0, relation=None, edge={})]
    seen = {node}
    while True:
        step = _predecessor(graph, node)
        if step is None:
            break
        previous, relation, edge = step
        if previous in seen:
            break
        seen.add(previous)
        rows.append(_row(graph, previous, hop=len(rows), relation=relation, edge=edge))
        node = previous
    return pd.DataFrame(rows)


def who_accessed(graph: nx.MultiDiGraph, ref: str) -> pd.DataFrame:
    """Every credential that called a key or secret, who is behind it, and from where."""
    node = resolve(graph, ref)
    rows = []
    for caller, _, edge in graph.in_edges(node, data=True):
        if edge.get("relation") != "called":
            continue
        behind = trace(graph, caller)
        identity = behind.iloc[1] if len(behind) > 1 else None
        origin = behind.iloc[-1]
        ips = sorted(
            src.split(":", 1)[1]
            for src, _, e in graph.in_edges(caller, data=True)
            if e.get("relation") == "source-of"
        )
        rows.append(
            {
                "credential": caller,
                "identity": identity["node"] if identity is not None else None,
                "identity_kind": identity["kind"] if identity is not None else None,
                "origin": origin["node"],
                "operations": ", ".join(edge.get("operations", ())),
                "count": edge.get("count", 0),
                "failures": edge.get("failures", 0),
                "first_seen": edge.get("first_seen"),
                "last_seen": edge.get("last_seen"),
                "source_ips": ", ".join(ips),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "credential",
            "identity",
            "identity_kind",
            "origin",
            "operations",
            "count",
            "failures",
            "first_seen",
            "last_seen",
            "source_ips",
        ],
    )
    return frame.sort_values("count", ascending=False, ignore_index=True)


def blast_radius(graph: nx.MultiDiGraph, ref: str, reach: str = "did") -> pd.DataFrame:
    """Everything an identity or key reaches (sessions, keys, secrets), with the path.

    A credential reaches what its holder can do: from an AccessKey or client key the walk
    also goes through the user, account or AAP that holds it.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        ``kf.build_graph(case)``.
    ref : str
        A node id or a bare identifier.
    reach : {"did", "could"}
        ``did`` (default): along observed edges only (what was reached). ``could``: also
        along ``allowed`` edges (what AAP policies allowed); a ``reach`` column then
        says ``did`` or ``could`` (allowed, never reached).
    """
    if reach not in ("did", "could"):
        raise ValueError(f"reach must be 'did' or 'could', not {reach!r}")
    start = resolve(graph, ref)
    did = _walk(graph, start, REACH_RELATIONS)
    paths = did if reach == "did" else _walk(graph, start, (*REACH_RELATIONS, "allowed"))
    rows = [
        {
            "node": node,
            "kind": graph.nodes[node].get("kind"),
            "name": graph.nodes[node].get("name"),
            "depth": len(path) - 1,
            "path": " -> ".join(path),
            "reach": "did" if node in did else "could",
        }
        for node, path in paths.items()
        if node != start
    ]
    columns = ["node", "kind", "name", "depth", "path"] + (["reach"] if reach != "did" else [])
    frame = pd.DataFrame(rows, columns=["node", "kind", "name", "depth", "path", "reach"])
    frame = frame[columns]
    return frame.sort_values(["depth", "kind", "node"], ignore_index=True)


def _walk(graph: nx.MultiDiGraph, start: str, relations: tuple[str, ...]) -> dict[str, list[str]]:
    """Breadth-first paths from ``start`` (and from the holder of a key) along relations."""
    paths = {start: [start]}
    queue = deque([start])
    for holder, _, edge in graph.in_edges(start, data=True):
        if edge.get("relation") in ("has-key", "issued") and holder not in paths:
            paths[holder] = [start, holder]
            queue.append(holder)
    while queue:
        node = queue.popleft()
        for _, target, edge in graph.out_edges(node, data=True):
            if edge.get("relation") in relations and target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return paths


def _predecessor(graph: nx.MultiDiGraph, node: str) -> tuple[str, str, dict[str, Any]] | None:
    """Return the one step back from ``node`` (the most recent, if several)."""
    candidates = [
        (src, edge["relation"], edge)
        for src, _, edge in graph.in_edges(node, data=True)
        if edge.get("relation") in TRACE_RELATIONS
    ]
    if not candidates:
        return None
    order = {relation: i for i, relation in enumerate(TRACE_RELATIONS)}
    candidates.sort(key=lambda c: (order[c[1]], -_stamp(c[2].get("last_seen"))))
    return candidates[0]


def _stamp(value: Any) -> float:
    return pd.Timestamp(value).timestamp() if value is not None else 0.0


def _row(
    graph: nx.MultiDiGraph, node: str, hop: int, relation: str | None, edge: dict[str, Any]
) -> dict[str, Any]:
    data = graph.nodes[node]
    return {
        "hop": hop,
        "node": node,
        "kind": data.get("kind"),
        "name": data.get("name"),
        "account": data.get("account"),
        "relation": relation,
        "cross_account": edge.get("cross_account"),
        "first_seen": edge.get("first_seen"),
        "last_seen": edge.get("last_seen"),
    }
