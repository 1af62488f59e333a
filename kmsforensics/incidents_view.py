"""Incidents for the report and the command line: ``kf.incidents`` when the package has it.

Until the rule pack groups findings itself (``kf.incidents(findings, G)``), findings are
grouped here by the identities and entities they share: two findings that name the same
entity or actor are in one incident. Ranked by the most severe finding, then by the
number of distinct rules, then by time. :func:`incidents` is the one place that chooses.

Examples
--------
>>> import pandas as pd
>>> f = pd.DataFrame({"rule_id": ["D30", "D01", "D19"], "severity": ["high", "high", "low"],
...     "entity": ["access-key:STS.a", "access-key:STS.a", "ram-user:9"],
...     "actor": ["ram-user:1", "ram-role:2", "ram-user:9"], "summary": ["x", "y", "z"],
...     "first_seen": pd.to_datetime(["2026-03-11T01:00Z", "2026-03-11T02:00Z",
...                                   "2026-03-10T00:00Z"]),
...     "last_seen": pd.to_datetime(["2026-03-11T01:10Z", "2026-03-11T02:30Z",
...                                  "2026-03-10T00:00Z"]), "evidence": [(), (), ()]})
>>> grouped(f)[["rank", "rules", "severity"]].values.tolist()
[[1, 'D01, D30', 'high'], [2, 'D19', 'low']]
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pandas as pd

from .triage import finding_ids

_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
COLUMNS = ("incident_id", "rank", "severity", "rules", "origin", "entities", "first_seen",
           "last_seen", "finding_ids", "story")  # fmt: skip


def incidents(findings: pd.DataFrame, graph: Any = None) -> pd.DataFrame:
    """Return ranked incidents: ``kf.incidents(findings, G)`` if there, else :func:`grouped`."""
    import kmsforensics

    real = getattr(kmsforensics, "incidents", None)
    if callable(real):
        ranked: pd.DataFrame = real(findings, graph).reset_index(drop=True)
        if "rank" not in ranked:  # the rule pack's order is its ranking
            ranked.insert(0, "rank", range(1, len(ranked) + 1))
        return ranked
    return grouped(findings, graph)


def _name(graph: Any, node: str) -> str:
    if graph is not None and node in graph:
        name = graph.nodes[node].get("name")
        if name and name != node.partition(":")[2]:
            return f"{name} ({node})"
    return node


def grouped(findings: pd.DataFrame, graph: Any = None) -> pd.DataFrame:
    """Group findings that share an entity or an actor; rank the groups."""
    if findings.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    ids = finding_ids(findings)
    links = nx.Graph()
    for index, row in findings.iterrows():
        links.add_node(("f", index))
        for column in ("entity", "actor"):
            value = row.get(column)
            if isinstance(value, str) and value:
                links.add_edge(("f", index), ("n", value))
    rows = []
    for part in nx.connected_components(links):
        members = findings.loc[sorted(i for k, i in part if k == "f")]
        severity = min(members["severity"], key=lambda s: _RANK.get(str(s), 9))
        actors = members["actor"].dropna().astype(str)
        origin = actors.value_counts().index[0] if len(actors) else str(members["entity"].iloc[0])
        entities = sorted({str(v) for v in members["entity"].dropna()})
        rules = sorted(set(members["rule_id"]))
        first, last = members["first_seen"].min(), members["last_seen"].max()
        story = (
            f"{_name(graph, origin)}: {len(members)} findings ({', '.join(rules)}) on "
            f"{len(entities)} entities, {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
        )
        rows.append(
            {
                "severity": severity,
                "rules": ", ".join(rules),
                "origin": origin,
                "entities": tuple(entities),
                "first_seen": first,
                "last_seen": last,
                "finding_ids": tuple(ids.loc[members.index]),
                "story": story,
                "_key": (_RANK.get(str(severity), 9), -len(rules), first),
            }
        )
    rows.sort(key=lambda r: r["_key"])
    frame = pd.DataFrame(rows).drop(columns="_key")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    frame.insert(0, "incident_id", [f"I-{ids[0]}" for ids in frame["finding_ids"]])
    return frame[list(COLUMNS)]
