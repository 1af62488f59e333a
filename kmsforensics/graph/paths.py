"""Cross-account assumptions, role chains, and what is new between two graphs.

Examples
--------
>>> import networkx as nx
>>> g = nx.MultiDiGraph()
>>> g.add_edge("ram-user:1", "role-session:9:s", key="assumed", relation="assumed",
...            cross_account=True, count=1)
'assumed'
>>> cross_account(g).source.tolist()
['ram-user:1']
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pandas as pd


def cross_account(graph: nx.MultiDiGraph) -> pd.DataFrame:
    """Every role assumption into another account than the caller's."""
    rows = [
        {
            "source": src,
            "session": dst,
            **_summary(edge),
            "role": _role_of(graph, dst),
            "role_account": _account_of_role(graph, dst),
        }
        for src, dst, edge in graph.edges(data=True)
        if edge.get("relation") == "assumed" and edge.get("cross_account")
    ]
    return pd.DataFrame(
        rows,
        columns=["source", "session", "role", "role_account", "count", "first_seen", "last_seen"],
    )


def role_chains(graph: nx.MultiDiGraph, min_hops: int = 2) -> pd.DataFrame:
    """Sessions reached through ``min_hops`` or more assumptions (a session assuming a role).

    Each row is a chain from the identity that started it to the last session.
    """
    rows = []
    for node, data in graph.nodes(data=True):
        if data.get("kind") != "role-session" or _assumes(graph, node):
            continue
        chain = [node]
        current = node
        while True:
            back = [
                src
                for src, _, e in graph.in_edges(current, data=True)
                if e.get("relation") == "assumed" and src not in chain
            ]
            if not back:
                break
            current = back[0]
            chain.append(current)
        hops = sum(1 for n in chain if n.startswith("role-session:"))
        if hops >= min_hops:
            rows.append(
                {
                    "start": chain[-1],
                    "end": node,
                    "hops": hops,
                    "chain": " -> ".join(reversed(chain)),
                }
            )
    return pd.DataFrame(rows, columns=["start", "end", "hops", "chain"])


def diff(before: nx.MultiDiGraph, after: nx.MultiDiGraph) -> pd.DataFrame:
    """List what ``after`` has that ``before`` has not: new nodes and new relations.

    Typically ``before`` is a baseline window and ``after`` the incident window:
    ``diff(build_graph(case.between(None, t)), build_graph(case.between(t, None)))``.
    """
    rows: list[dict[str, Any]] = [
        {
            "change": "new node",
            "kind": data.get("kind"),
            "source": node,
            "target": None,
            "relation": None,
            "count": None,
        }
        for node, data in after.nodes(data=True)
        if node not in before
    ]
    rows += [
        {
            "change": "new edge",
            "kind": after.nodes[src].get("kind"),
            "source": src,
            "target": dst,
            "relation": key,
            "count": edge.get("count"),
        }
        for src, dst, key, edge in after.edges(keys=True, data=True)
        if not before.has_edge(src, dst, key=key)
    ]
    return pd.DataFrame(rows, columns=["change", "kind", "source", "target", "relation", "count"])


def _assumes(graph: nx.MultiDiGraph, node: str) -> bool:
    return any(e.get("relation") == "assumed" for _, _, e in graph.out_edges(node, data=True))


def _role_of(graph: nx.MultiDiGraph, session: str) -> str | None:
    for _, role, edge in graph.out_edges(session, data=True):
        if edge.get("relation") == "of-role":
            return str(graph.nodes[role].get("name") or role)
    return None


def _account_of_role(graph: nx.MultiDiGraph, session: str) -> str | None:
    for _, role, edge in graph.out_edges(session, data=True):
        if edge.get("relation") == "of-role":
            owners = [
                src for src, _, e in graph.in_edges(role, data=True) if e.get("relation") == "owns"
            ]
            if owners:
                return owners[0].split(":", 1)[1]
    return None


def _summary(edge: dict[str, Any]) -> dict[str, Any]:
    return {
        "count": edge.get("count"),
        "first_seen": edge.get("first_seen"),
        "last_seen": edge.get("last_seen"),
    }
