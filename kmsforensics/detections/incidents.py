"""Incidents: findings grouped by the lineage they share, ranked for an analyst.

``kf.incidents(findings, G)`` puts together the findings whose credentials come from
the same origin (the long-term key, person or service at the start of the lineage;
see :mod:`.lineage`), or, for findings about a source address (``ip:...``) or
without a lineage, the same entity. Each incident is one row, ranked by a score:

``score = sum over its distinct rules of the weight of the rule's highest severity
(low 1, medium 4, high 16, critical 32)
+ 2 x novelty (the distinct rules of kind baseline, graph or correlation at medium or
above: something new for this origin)
+ 3 x (distinct accounts - 1)
+ min(span in hours / 12, 2)``

so several rules agreeing on one origin outrank one loud rule, and a quiet pipeline
of low findings stays at the bottom.

Examples
--------
>>> import pandas as pd
>>> t = pd.Timestamp("2026-03-02 10:00", tz="UTC")
>>> findings = pd.DataFrame({
...     "rule_id": ["D18", "D01", "D30"], "title": ["a", "b", "c"],
...     "severity": ["high", "high", "low"], "first_seen": [t, t, t], "last_seen": [t, t, t],
...     "entity": ["access-key:LTAI1", "access-key:STS.1", "access-key:STS.9"],
...     "account_id": ["1", "2", "2"], "finding_id": ["F-1", "F-2", "F-3"],
...     "origin": ["access-key:LTAI1", "access-key:LTAI1", "service:ecs.aliyuncs.com"]})
>>> ranked = incidents(findings)
>>> ranked[["origin", "findings"]].values.tolist()
[['access-key:LTAI1', 2], ['service:ecs.aliyuncs.com', 1]]
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from .registry import RULES, SEVERITIES

#: Weight of a rule's highest severity in the score.
WEIGHTS = {"low": 1, "medium": 4, "high": 16, "critical": 32}
#: Rule kinds whose findings mean "new for this origin" (novelty).
NOVEL_KINDS = ("baseline", "graph", "correlation")
INCIDENT_COLUMNS = (
    "incident_id",
    "score",
    "severity",
    "origin",
    "group",
    "rules",
    "entities",
    "accounts",
    "first_seen",
    "last_seen",
    "findings",
    "finding_ids",
    "story",
)


def grouping_key(finding: pd.Series | dict[str, Any]) -> str:
    """Return the incident a finding belongs to: origin and network, or the entity.

    Findings about a source address (``ip:...``) group by it; others by the origin of
    their lineage and the network it acted from (a person's office work and a thief
    using their key from elsewhere are two incidents).
    """
    entity = finding.get("entity")
    origin = finding.get("origin")
    lineage = finding.get("lineage")
    network = lineage.get("network") if isinstance(lineage, dict) else None
    if isinstance(entity, str) and entity.startswith("ip:"):
        return entity
    if isinstance(origin, str) and origin:
        return f"{origin} from {network}" if network else origin
    if isinstance(entity, str) and entity:
        return entity
    return f"finding:{finding.get('finding_id')}"


def incidents(findings: pd.DataFrame, G: Any = None) -> pd.DataFrame:  # noqa: N803
    """Group findings into incidents, one row per lineage, highest score first.

    Parameters
    ----------
    findings : pandas.DataFrame
        ``kf.detect(...)`` output (needs ``rule_id``, ``severity``, ``first_seen``,
        ``last_seen``, ``entity``, ``account_id``, ``finding_id``, ``origin``).
    G : networkx graph, optional
        ``kf.build_graph(case)``: names the origin in the story when it knows it.

    Returns
    -------
    pandas.DataFrame
        Columns ``incident_id``, ``score``, ``severity``, ``origin``, ``group`` (the
        origin and network, or the entity, that holds the findings together), ``rules``,
        ``entities``, ``accounts``, ``first_seen``, ``last_seen``, ``findings``,
        ``finding_ids``, ``story``; the score is explained in the module docstring.
    """
    if not len(findings):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in INCIDENT_COLUMNS})
    frame = findings.copy()
    frame["_key"] = [grouping_key(row) for _, row in frame.iterrows()]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    rows = []
    for key, group in frame.groupby("_key", sort=False):
        group = group.sort_values("first_seen", kind="stable")
        top = group.assign(_r=group["severity"].map(rank)).groupby("rule_id")["_r"].max()
        score = float(sum(WEIGHTS[SEVERITIES[int(r)]] for r in top))
        novel = [
            r
            for r, level in top.items()
            if r in RULES and RULES[r].kind in NOVEL_KINDS and level >= rank["medium"]
        ]
        accounts = sorted({str(a) for a in group["account_id"].dropna()})
        span = (group["last_seen"].max() - group["first_seen"].min()).total_seconds() / 3600
        score += 2 * len(novel) + 3 * max(len(accounts) - 1, 0) + min(span / 12, 2)
        rows.append(
            {
                "incident_id": "I-" + hashlib.sha256(str(key).encode()).hexdigest()[:12],
                "score": round(score, 1),
                "severity": SEVERITIES[int(top.max())],
                "origin": group["origin"].dropna().iloc[0]
                if group["origin"].notna().any()
                else key,
                "group": key,
                "rules": list(dict.fromkeys(group["rule_id"])),
                "entities": list(dict.fromkeys(str(e) for e in group["entity"].dropna())),
                "accounts": accounts,
                "first_seen": group["first_seen"].min(),
                "last_seen": group["last_seen"].max(),
                "findings": len(group),
                "finding_ids": tuple(group["finding_id"]),
                "story": _story(str(key), group, span, accounts, G),
            }
        )
    out = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
    out = out.sort_values(["score", "first_seen"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


def _story(
    key: str,
    group: pd.DataFrame,
    hours: float,
    accounts: list[str],
    G: Any,  # noqa: N803
) -> str:
    """One line: who, then each rule's first finding in time order, over how long."""
    name = key
    origin = key.split(" from ")[0]
    if G is not None and origin in G:
        shown = G.nodes[origin].get("name") or G.nodes[origin].get("label")
        name = f"{shown} ({key})" if shown else key
    steps = []
    for rule_id, first in (
        group.groupby("rule_id", sort=False).head(1).set_index("rule_id").iterrows()
    ):
        title = str(first.get("title") or rule_id)
        steps.append(f"{rule_id} {title} [{first['severity']}]")
    span = f"{hours:.0f} h" if hours >= 1 else f"{hours * 60:.0f} min"
    where = f" in {len(accounts)} accounts" if len(accounts) > 1 else ""
    return f"{name}: " + " -> ".join(steps) + f" ({len(group)} findings over {span}{where})"
