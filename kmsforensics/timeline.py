"""Timelines: the merged KMS + ActionTrail events of an entity, with findings marked.

No plotting here (that is :mod:`kmsforensics.plots`): a timeline is a DataFrame an
analyst can filter, export (:mod:`kmsforensics.handover`) or draw.

``ref`` names what to follow, as everywhere in the package: a graph node id
(``access-key:STS...``, ``ip:192.0.2.66``, ``key:key-...``, ``secret:<account>/<name>``,
``ram-user:<uid>``, ``ram-role:<role id>``, ``role-session:<role id>:<session>``,
``aap:<account>/<name>``, ``account:<uid>``) or a bare identifier, which may name only
one kind of thing.

Examples
--------
>>> import kmsforensics as kf
>>> case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence",
...                progress=False)  # doctest: +SKIP
>>> kf.timeline(case, "192.0.2.66").action.value_counts()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .calls import count_calls
from .case import Case, TimeLike, evidence_ids, to_utc
from .graph.nodes import rows_named

#: Columns of a timeline, in order.
TIMELINE_COLUMNS = (
    "time",
    "source",
    "account_id",
    "identity_type",
    "principal_name",
    "session_name",
    "access_key_id",
    "client_ip",
    "action",
    "resource",
    "success",
    "error_code",
    "user_agent",
    "evidence_id",
    "findings",
    "severity",
    "source_file",
    "source_record",
)

_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def timeline(
    case: Case,
    ref: str | None = None,
    findings: pd.DataFrame | None = None,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
) -> pd.DataFrame:
    """Return the merged timeline of an entity (or of the whole case), findings marked.

    Parameters
    ----------
    case : Case
        The evidence.
    ref : str, optional
        What to follow (see the module docstring). ``None``: every event.
    findings : DataFrame, optional
        Findings to mark (``kf.detect(case)``); default: none are marked.
    start, end : str or datetime, optional
        Keep ``start <= time < end`` (UTC).

    Returns
    -------
    pandas.DataFrame
        One row per event, oldest first: :data:`TIMELINE_COLUMNS`. ``findings`` lists
        the rule ids whose evidence holds the row, ``severity`` the highest of them.

    Raises
    ------
    UnknownReferenceError
        If nothing in the evidence matches ``ref``.
    AmbiguousReferenceError
        If a bare ``ref`` names several kinds of thing (the error lists node ids).
    """
    act = case.activity
    mask = np.ones(len(act), dtype=bool) if ref is None else match(act, ref).copy()
    lo, hi = to_utc(start), to_utc(end)
    if lo is not None:
        mask &= (act["time"] >= lo).to_numpy()
    if hi is not None:
        mask &= (act["time"] < hi).to_numpy()
    rows = act.loc[mask]
    evidence = evidence_ids(rows)
    resource = rows["secret_name"].astype(object)
    for column in ("key_id", "resource_id"):
        resource = resource.where(resource.notna(), rows[column].astype(object))
    out = pd.DataFrame(
        {
            **{c: rows[c] for c in TIMELINE_COLUMNS if c in rows.columns},
            "resource": resource,
            "evidence_id": evidence,
        }
    )
    marks, severity = _marks(evidence, findings)
    out["findings"] = marks
    out["severity"] = severity
    return out[list(TIMELINE_COLUMNS)].reset_index(drop=True)


def match(act: pd.DataFrame, ref: str) -> np.ndarray:
    """Tell which activity rows a reference names (node id or bare identifier).

    The vocabulary is :mod:`kmsforensics.graph.nodes`'s, as for ``case.focus``: a
    reference that names nothing, or a bare one that names several kinds of thing, is
    an error.
    """
    return rows_named(act, ref, strict=True).to_numpy(dtype=bool)


def _marks(evidence: pd.Series, findings: pd.DataFrame | None) -> tuple[list[Any], list[Any]]:
    """Rule ids and the highest severity of the findings that cite each row."""
    empty: tuple[str, ...] = ()
    if findings is None or not len(findings):
        return [empty] * len(evidence), [None] * len(evidence)
    cited = findings[["rule_id", "severity", "evidence"]].explode("evidence").dropna()
    by_id: dict[str, list[tuple[str, str]]] = {}
    for rule_id, severity, event in cited.itertuples(index=False):
        by_id.setdefault(str(event), []).append((rule_id, severity))
    marks, levels = [], []
    for event in evidence:
        hits = by_id.get(str(event), [])
        marks.append(tuple(sorted({r for r, _ in hits})))
        levels.append(max((s for _, s in hits), key=_SEVERITY_RANK.__getitem__) if hits else None)
    return marks, levels


def usage(case: Case, by: str = "key_id") -> pd.DataFrame:
    """Summarise use per key, secret or any activity column: who, from where, how it went.

    Parameters
    ----------
    case : Case
        The evidence.
    by : str
        The activity column to group by (``key_id``, ``secret_name``, ``access_key_id``,
        ``client_ip`` ...).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``by``, busiest first: ``calls``, ``failures``, ``principals`` and
        ``addresses`` (distinct), ``operations``, ``first_seen``, ``last_seen``. A call
        logged by both logs (the shared gateway: two rows, one ``call_id``) counts once.
    """
    act = case.activity
    rows = act[act[by].notna()]
    groups = rows.groupby(by, observed=True)
    out = groups.agg(
        principals=("principal_id", "nunique"),
        addresses=("client_ip", "nunique"),
        first_seen=("time", "min"),
        last_seen=("time", "max"),
    )
    out.insert(0, "calls", count_calls(rows, by))
    failed = ~rows["success"].fillna(True).astype(bool).to_numpy()
    failures = count_calls(rows[failed], by)
    failures.index = failures.index.astype(object)  # categorical indexes may not align
    out.insert(
        1, "failures", failures.reindex(out.index.astype(object), fill_value=0).to_numpy("int64")
    )
    out.insert(
        4,
        "operations",
        groups["action"].agg(lambda s: ", ".join(sorted({str(a) for a in s.dropna()}))),
    )
    return out.sort_values("calls", ascending=False)
