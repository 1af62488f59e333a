"""Incidents out of rows: bursts, windowed thresholds, new terms, and the findings frame.

A rule returns the activity rows behind what it found, each labelled with an
``incident`` and carrying ``entity``, ``actor``, ``summary`` (and optionally
``severity`` and ``details``). :func:`collect` turns them into one finding per incident,
with its evidence ids: thirty-five ``GetSecretValue`` calls are one finding with
thirty-five pieces of evidence (seventy when each call is in both logs, the KMS
request id and the ActionTrail event id; ``event_count`` counts the calls, 35).

Examples
--------
>>> import pandas as pd
>>> t = pd.to_datetime(["2026-03-02 10:00", "2026-03-02 10:03", "2026-03-02 12:00"], utc=True)
>>> bursts(pd.Series(t), pd.Series(["a", "a", "a"]), pd.Timedelta("10min")).tolist()
[0, 0, 1]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..calls import CALL_COLUMN, count_calls, shared_rows
from ..schema import FINDINGS_COLUMNS
from .registry import SEVERITIES, Rule

#: The findings frame: the contract columns, then ``actor``, ``details``, a stable
#: ``finding_id``, and the lineage of the credential (``origin`` and ``lineage``: a dict of
#: origin, role chain, account path and the source network; see :mod:`.lineage`).
COLUMNS: tuple[str, ...] = (
    *FINDINGS_COLUMNS,
    "actor",
    "details",
    "finding_id",
    "origin",
    "lineage",
)
LABEL_COLUMNS = (
    "entity",
    "actor",
    "summary",
    "severity",
    "details",
    "account_id",
    "origin",
    "chain",
    "account_path",
    "network",
)


def finding_id(rule_id: str, entity: Any, evidence: Sequence[str]) -> str:
    """Return a stable id for a finding: a hash of its rule, entity and evidence ids.

    The same evidence gives the same id on every run and engine, whatever the order
    the ids come in.

    >>> finding_id("D01", "access-key:STS.x", ["b", "a"]) == finding_id("D01",
    ...     "access-key:STS.x", ["a", "b"])
    True
    >>> finding_id("D01", "access-key:STS.x", ["a"])
    'F-06aa3a522fafbf30'
    """
    text = "\x1f".join([rule_id, str(entity), *sorted(str(e) for e in evidence)])
    return "F-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def empty_findings() -> pd.DataFrame:
    """Return a findings frame with no rows and the right columns."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    frame["first_seen"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["last_seen"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["event_count"] = pd.Series(dtype="int64")
    return frame


def bursts(times: pd.Series, groups: pd.Series, gap: pd.Timedelta) -> pd.Series:
    """Label runs of rows of one group, each row within ``gap`` of the previous one.

    Returns a Series aligned with ``times`` of burst numbers (unique across groups).
    """
    if not len(times):
        return pd.Series([], dtype="int64", index=times.index)
    codes = pd.factorize(groups.astype(object).fillna("").to_numpy())[0]
    stamps = nanoseconds(times)
    order = np.lexsort((stamps, codes))
    g, t = codes[order], stamps[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | ((t[1:] - t[:-1]) > gap.value)
    numbers = np.empty(len(order), dtype=np.int64)
    numbers[order] = np.cumsum(new) - 1
    return pd.Series(numbers, index=times.index)


def nanoseconds(times: pd.Series) -> np.ndarray:
    """Return times as integer nanoseconds since the epoch (UTC)."""
    return np.asarray(pd.DatetimeIndex(times).as_unit("ns").asi8)


def over_threshold(
    rows: pd.DataFrame,
    by: Sequence[str],
    window: str | pd.Timedelta,
    threshold: float | np.ndarray,
    distinct: str | None = None,
) -> pd.Series:
    """Rows inside a time window where their group reaches ``threshold``.

    The measure is the number of calls (rows, the two rows of one shared-gateway call
    counted once), or the number of distinct values of ``distinct``. Windows are
    tumbling windows and the same windows shifted by half, so any burst that fits in
    half a window is always seen whole. ``threshold`` may be one number or one per row.
    """
    if not len(rows):
        return pd.Series([], dtype=bool, index=rows.index)
    if distinct is None and shared_rows(rows) is not None:
        distinct = CALL_COLUMN  # some calls have two rows: count the calls
    width = pd.Timedelta(window).value
    stamps = nanoseconds(rows["time"])
    keys = {f"k{i}": pd.factorize(rows[c].astype(object))[0] for i, c in enumerate(by)}
    values = pd.factorize(rows[distinct].astype(object))[0] if distinct else None
    hit = np.zeros(len(rows), dtype=bool)
    for shift in (0, width // 2):
        frame = pd.DataFrame({**keys, "bin": (stamps - shift) // width})
        groups = frame.groupby(list(frame.columns), sort=False)
        if values is None:
            measure = groups["bin"].transform("size")
        else:
            # distinct values per group: count the first row of each (group, value)
            frame["value"] = values
            first = ~frame.duplicated(keep="first") & (values >= 0)
            measure = first.groupby([frame[c] for c in frame.columns[:-1]], sort=False).transform(
                "sum"
            )
        hit |= measure.to_numpy() >= threshold
    return pd.Series(hit, index=rows.index)


def new_terms(
    rows: pd.DataFrame, subject: str, term: str | list[str], window_start: pd.Timestamp
) -> pd.DataFrame:
    """First occurrences, in the window, of ``(subject, term)`` pairs unseen before it.

    ``term`` is a column or several. Pairs are compared as integer codes, so the cost
    grows with the rows once and with the distinct pairs after that. Returns those rows
    with ``subject_known``: whether the subject had any history before the window.
    """
    terms = [term] if isinstance(term, str) else list(term)
    present = rows[subject].notna().to_numpy().copy()
    for column in terms:
        present &= rows[column].notna().to_numpy()
    rows = rows[present]
    if not len(rows):
        return rows.assign(subject_known=pd.Series(dtype=bool))
    subjects = pd.factorize(rows[subject].astype(object))[0].astype(np.int64)
    parts = rows[terms].astype(object)
    term_codes = (
        pd.factorize(parts[terms[0]])[0]
        if len(terms) == 1
        else parts.groupby(terms, sort=False).ngroup().to_numpy()
    ).astype(np.int64)
    pair = subjects * (int(term_codes.max()) + 1) + term_codes
    before = (rows["time"] < window_start).to_numpy()
    seen = np.unique(pair[before])
    later = np.flatnonzero(~before)
    later = later[np.argsort(nanoseconds(rows["time"].iloc[later]), kind="stable")]
    _, first = np.unique(pair[later], return_index=True)
    chosen = np.sort(later[first])
    chosen = chosen[~np.isin(pair[chosen], seen)]
    out = rows.iloc[chosen].copy()
    out["subject_known"] = np.isin(subjects[chosen], np.unique(subjects[before]))
    return out.sort_values("time", kind="stable")


def first_sightings(
    rows: pd.DataFrame, subject: str, term: str | list[str], window_start: pd.Timestamp
) -> pd.DataFrame:
    """Reduce rows to what :func:`new_terms` needs of them, so days can be reduced apart.

    Keeps one row of each (subject, term) pair before ``window_start`` and the first
    row (by time, then order) of each pair from it on. :func:`new_terms` of the
    concatenated reductions of consecutive days equals :func:`new_terms` of all rows.
    """
    key = [subject, *([term] if isinstance(term, str) else term)]
    present = np.ones(len(rows), dtype=bool)
    for column in key:
        present &= rows[column].notna().to_numpy()
    rows = rows[present]
    before = (rows["time"] < window_start).to_numpy()
    known = rows[before].drop_duplicates(key)
    later = rows[~before]
    later = later.iloc[np.argsort(nanoseconds(later["time"]), kind="stable")]
    return pd.concat([known, later.drop_duplicates(key)]).sort_index(kind="stable")


def label(
    rows: pd.DataFrame,
    incident: pd.Series | np.ndarray,
    entity: Any,
    summary: Any,
    **extra: Any,
) -> pd.DataFrame:
    """Attach ``incident``, ``entity``, ``summary`` (and more) to a rule's evidence rows.

    ``summary`` may be a callable taking one incident's rows and returning its text;
    ``entity`` and the extras may be columns, scalars or such callables too.
    """
    out = rows.copy()
    out["incident"] = np.asarray(incident)
    for name, value in {"entity": entity, "summary": summary, **extra}.items():
        if callable(value):
            per_incident = {key: value(group) for key, group in out.groupby("incident", sort=False)}
            out[name] = out["incident"].map(per_incident).astype(object)
        elif isinstance(value, pd.Series):
            out[name] = value.to_numpy()
        elif isinstance(value, dict):
            out[name] = pd.Series([value] * len(out), index=out.index, dtype=object)
        else:
            out[name] = value
    return out


def collect(rule: Rule, labelled: pd.DataFrame, window_start: pd.Timestamp | None) -> pd.DataFrame:
    """One finding per incident of a rule's labelled rows (see the module docstring)."""
    if labelled is None or not len(labelled):
        return empty_findings()
    frame = labelled.copy()
    for name in LABEL_COLUMNS:
        if name not in frame:
            frame[name] = rule.severity if name == "severity" else None
    frame["severity"] = frame["severity"].fillna(rule.severity)
    frame["rank"] = frame["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
    frame = frame.sort_values("time", kind="stable")
    groups = frame.groupby("incident", sort=False)
    out = groups.agg(
        first_seen=("time", "min"),
        last_seen=("time", "max"),
        rank=("rank", "max"),
    )
    out["event_count"] = count_calls(frame, "incident")  # a call in both logs counts once
    for name in ("entity", "actor", "summary", "details", "account_id", "origin"):
        out[name] = groups[name].agg(_first_present)
    parts = pd.DataFrame(
        {c: groups[c].agg(_first_present) for c in ("origin", "chain", "account_path", "network")}
    )
    out["lineage"] = pd.Series([_lineage(row) for _, row in parts.iterrows()], index=out.index)
    out["evidence"] = groups["evidence_id"].agg(_distinct_ids)
    out["severity"] = [SEVERITIES[int(r)] for r in out["rank"]]
    out["rule_id"] = rule.rule_id
    out["title"] = rule.title
    out["technique"] = rule.technique
    out["account_id"] = out["account_id"].astype(object)
    out["finding_id"] = [
        finding_id(rule.rule_id, e, ids)
        for e, ids in zip(out["entity"], out["evidence"], strict=True)
    ]
    if window_start is not None:
        out = out[out["last_seen"] >= window_start]
    return out.reset_index(drop=True)[list(COLUMNS)]


def _lineage(row: pd.Series) -> dict[str, Any] | None:
    """Return the lineage dict of a finding from its first row's origin, chain and accounts."""
    if not isinstance(row["origin"], str):
        return None

    def parts(value: Any) -> list[str]:
        return str(value).split(" > ") if isinstance(value, str) and value else []

    return {
        "origin": row["origin"],
        "chain": parts(row["chain"]),
        "accounts": parts(row["account_path"]),
        "network": row["network"] if isinstance(row["network"], str) else None,
    }


def _distinct_ids(ids: pd.Series) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(i) for i in ids.dropna()))


def _first_present(values: pd.Series) -> Any:
    present = values.dropna()
    return present.iloc[0] if len(present) else None
