"""Detections: the catalogue D01-D30 as a rule pack over a case.

``kf.detect(case)`` runs every rule and returns one finding per incident a rule finds;
``kf.incidents(findings)`` groups them by lineage and ranks them; ``kf.list_rules()``
lists the rules with their parameters, what they read and their false positives;
``kf.evidence_rows(case, finding)`` gives the rows behind a finding, with file and
record.

Examples
--------
>>> import kmsforensics as kf
>>> table = kf.list_rules()
>>> table.loc["D01", "technique"]
'T1555.006'
>>> int(table.loc["D01", "params"]["threshold"])
20
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..case import Case, to_utc
from ..errors import DetectionNote
from . import rules as _rules  # noqa: F401  (registers the rule pack)
from .context import Context
from .findings import COLUMNS, collect, empty_findings, finding_id
from .incidents import incidents
from .registry import RULES, SEVERITIES, Rule, UnknownRuleError, select

__all__ = [
    "COLUMNS",
    "RULES",
    "SEVERITIES",
    "Context",
    "DetectionNote",
    "Rule",
    "UnknownRuleError",
    "detect",
    "evidence_rows",
    "finding_id",
    "incidents",
    "list_rules",
]


def detect(
    case: Case,
    rules: str | list[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    window_start: str | datetime | pd.Timestamp | None = None,
    baseline_days: float = 2.0,
    timezone: str = "Asia/Shanghai",
    geoip: str | Path | None = None,
    known_accounts: list[str] | None = None,
    triage: Any = None,
) -> pd.DataFrame:
    """Run the rule pack over a case: one row per incident a rule finds.

    Parameters
    ----------
    case : Case
        The evidence (``kf.load(...)``, or a ``case.between(...)`` slice).
    rules : str or list of str, optional
        Catalogue ids to run (default: all).
    params : dict, optional
        Per-rule overrides, e.g. ``{"D01": {"threshold": 10}}``; ``kf.list_rules()`` lists
        every parameter and its default. An unknown rule or parameter is an error.
    window_start : str or datetime, optional
        Start of the window under investigation. Baseline rules (first-seen, bursts
        against a baseline) learn from everything before it, and only findings that
        reach into the window are returned. Default: the first ``baseline_days`` of the
        evidence are the baseline, and findings of the other rules cover everything.
    baseline_days : float
        Length of the default baseline.
    timezone : str
        The organisation's time zone, for working hours (D24).
    geoip : str or Path, optional
        A MaxMind-format database (``.mmdb``). Without one, D14 is skipped and D12/D13
        work without ASN and country; the findings' ``attrs["notes"]`` and a
        :class:`DetectionNote` warning say so.
    known_accounts : list of str, optional
        The organisation's accounts (D07, D19); default: those in the evidence.
    triage : object, optional
        A triage record whose ``apply(findings)`` returns the findings its suppressions
        keep and how many each suppression hid (``{suppression id: count}``); the
        result is the kept findings, with the counts in ``attrs["suppressed"]``.

    Returns
    -------
    pandas.DataFrame
        Columns ``rule_id``, ``title``, ``severity``, ``technique``, ``first_seen``,
        ``last_seen``, ``entity`` (a graph node id), ``account_id``, ``summary``,
        ``evidence`` (event and request ids), ``event_count``, ``actor``, ``details``,
        ``finding_id`` (stable: a hash of rule, entity and evidence), ``origin`` and
        ``lineage`` (the credential's origin, role chain and account path); sorted by
        time. ``kf.incidents(findings)`` groups and ranks them. ``attrs["seconds"]``
        holds each rule's run time and ``attrs["notes"]`` what was skipped.

    Examples
    --------
    >>> import kmsforensics as kf
    >>> case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence",
    ...                progress=False)  # doctest: +SKIP
    >>> kf.detect(case, rules=["D01", "D04"])[["rule_id", "summary"]]  # doctest: +SKIP
    """
    chosen = select(rules)
    overrides = dict(params or {})
    unknown = sorted(set(overrides) - set(RULES))
    if unknown:
        raise UnknownRuleError(f"params name no rule {', '.join(map(repr, unknown))}")
    resolved = {r.rule_id: r.resolve(overrides.get(r.rule_id)) for r in chosen}
    notes: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for rule in chosen:
        if rule.needs_geo and geoip is None:
            notes[rule.rule_id] = (
                "no geo database: skipped entirely"
                if rule.needs_geo == "required"
                else "no geo database: ASN and country not compared"
            ) + " (pass geoip='GeoLite2-City.mmdb' or another MaxMind-format file)"
    runs = [r for r in chosen if geoip is not None or r.needs_geo != "required"]
    if case.engine == "dask":
        from .distributed import detect_on_dask

        labelled, baseline_end, window_given, skipped, seconds = detect_on_dask(
            case,
            runs,
            resolved,
            window_start=to_utc(window_start),
            baseline_days=baseline_days,
            timezone=timezone,
            geoip=geoip,
            known_accounts=known_accounts,
        )
        notes.update(skipped)
    else:
        ctx = Context(
            case,
            window_start=window_start,
            baseline_days=baseline_days,
            timezone=timezone,
            geoip=geoip,
            known_accounts=known_accounts,
        )
        labelled = {}
        for rule in runs:
            started = time.perf_counter()
            labelled[rule.rule_id] = rule(ctx, resolved[rule.rule_id])
            seconds[rule.rule_id] = time.perf_counter() - started
        baseline_end, window_given = ctx.baseline_end, ctx.window_given
    frames = [
        collect(rule, labelled[rule.rule_id], baseline_end if window_given else None)
        for rule in chosen
        if rule.rule_id in labelled
    ]
    found = [f for f in frames if len(f)]
    out = pd.concat(found, ignore_index=True) if found else empty_findings()
    out = out.sort_values(["first_seen", "rule_id"], kind="stable").reset_index(drop=True)
    if triage is not None:  # suppressions, from the triage record beside the case
        out, hidden = triage.apply(out)
        out = out.reset_index(drop=True)
        out.attrs["suppressed"] = dict(hidden)
    out.attrs["seconds"] = seconds
    out.attrs["notes"] = notes
    out.attrs["baseline_end"] = baseline_end
    if notes:
        warnings.warn(
            "kmsforensics.detect: " + "; ".join(f"{k}: {v}" for k, v in notes.items()),
            DetectionNote,
            stacklevel=2,
        )
    return out


def list_rules() -> pd.DataFrame:
    """List the rule pack: id, title, severity, technique, kind, parameters, reads, FPs.

    ``on_dask`` says how a rule runs on the dask engine: ``select`` (on the rows it
    needs, selected day by day on the cluster), ``first-seen`` (on first sightings
    reduced day by day) or ``memory`` (needs every row: run it on ``case.between`` or
    ``case.focus``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``rule_id``.
    """
    rows = [
        {
            "rule_id": r.rule_id,
            "title": r.title,
            "severity": r.severity,
            "technique": r.technique,
            "kind": r.kind,
            "sources": ", ".join(r.sources),
            "params": r.params,
            "needs_geo": r.needs_geo,
            "on_dask": r.on_dask,
            "detects": r.doc.split("\n\n")[0].replace("\n", " "),
            "reads": r.section("Reads"),
            "false_positives": r.section("False positives"),
        }
        for r in select(None)
    ]
    return pd.DataFrame(rows).set_index("rule_id")


def evidence_rows(case: Case, finding: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
    """Return the activity rows behind a finding, with their source file and record.

    Parameters
    ----------
    case : Case
        The case the finding came from.
    finding : row of the findings frame
        Anything with an ``evidence`` tuple of event / request ids.

    Returns
    -------
    pandas.DataFrame
        Rows of ``case.activity``, in time order.
    """
    ids = set(finding["evidence"])
    act = case.activity
    mask = act["event_id"].isin(ids) | act["request_id"].isin(ids)
    return act[mask]
