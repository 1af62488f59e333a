"""First-seen rules as declared new-term specs that the engine runs.

A :class:`NewTerm` says which rows a rule compares (``rows``), whose history they are
(``subject``), what is new (``term``) and how to weigh it (``prevalence``). The pandas
engine runs each spec on the whole case (:func:`run_specs`); the dask engine reduces
each day to its first sightings on the cluster (:func:`reduce_specs`) and runs the
specs on every day's sightings, merged: the result is the same.

Examples
--------
>>> spec = NewTerm(lambda ctx, p: ctx.rows(ctx.act["client_ip"].notna()),
...                "principal", "client_ip", "use from")
>>> spec.terms
['client_ip']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..calls import CALL_COLUMN, count_calls, first_of_call
from .findings import bursts, first_sightings, label, new_terms
from .rules.common import names

if TYPE_CHECKING:
    from .context import Context
    from .registry import Rule


@dataclass(frozen=True)
class NewTerm:
    """One first-seen comparison of a rule.

    Attributes
    ----------
    rows : callable
        ``rows(ctx, params) -> DataFrame``: the rows compared (``ctx.rows(...)`` with
        any columns the spec names).
    subject, term : str, str or tuple of str
        Whose history (``principal`` ...) and what is new for it (columns).
    what : str
        How the summary names the term (``"use from"``).
    known_subjects_only : bool
        Only subjects with history before the window are compared.
    gap : str
        First sightings of one subject within ``gap`` are one incident.
    prevalence : str or None
        With a severity: a term that other subjects had before the window is low (an
        office NAT, a VPN, a common SDK) and one new to the organisation gets it.
    geo : bool
        The spec needs the geo database (skipped without one).
    follow : bool
        The later rows of each new pair, up to the rule's ``follow`` duration after its
        first sighting, join the finding (at most ``follow_most`` of them; the
        summary and ``details["later_uses"]`` count all). On the dask engine the rule
        selects them (rows of pairs new after the baseline learned first).
    """

    rows: Callable[[Context, Any], pd.DataFrame]
    subject: str
    term: str | tuple[str, ...]
    what: str
    known_subjects_only: bool = True
    gap: str = "1h"
    prevalence: str | None = None
    geo: bool = False
    follow: bool = False

    @property
    def terms(self) -> list[str]:
        """The term's columns."""
        return [self.term] if isinstance(self.term, str) else list(self.term)


def _specs(ctx: Context, rule: Rule) -> list[NewTerm]:
    return [s for s in rule.new_terms if not s.geo or ctx.geo is not None]


def reduce_specs(ctx: Context, rule: Rule, params: Any) -> list[pd.DataFrame]:
    """One day on the cluster: the first sightings each spec needs of that day."""
    return [
        first_sightings(spec.rows(ctx, params), spec.subject, spec.terms, ctx.baseline_end)
        for spec in _specs(ctx, rule)
    ]


def run_specs(
    ctx: Context,
    rule: Rule,
    params: Any,
    merged: list[pd.DataFrame] | None = None,
    later: Context | None = None,
) -> pd.DataFrame:
    """Label the first sightings of every spec of ``rule``: one incident per burst.

    ``merged`` are every day's reductions (dask engine), spec by spec; without them
    the specs read the context's rows. ``later`` is the context whose rows a
    ``follow`` spec takes its later rows from (default: the rows the spec compared; on
    the dask engine, the rows selected on the cluster).
    """
    found = []
    for number, spec in enumerate(_specs(ctx, rule)):
        rows = merged[number] if merged is not None else spec.rows(ctx, params)
        labelled = _label(ctx, rows, spec)
        if spec.follow and len(labelled):
            candidates = rows if later is None else spec.rows(later, params)
            labelled = follow(labelled, candidates, spec, params)
        found.append(labelled)
    offset = 0
    for frame in found:
        if len(frame):
            frame["incident"] = frame["incident"] + offset
            offset = int(frame["incident"].max()) + 1
    kept = [f for f in found if len(f)]
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()


def _label(ctx: Context, rows: pd.DataFrame, spec: NewTerm) -> pd.DataFrame:
    subject, term = spec.subject, spec.terms
    fresh = new_terms(rows, subject, term, ctx.baseline_end)
    if spec.known_subjects_only:
        fresh = fresh[fresh["subject_known"]]
    if not len(fresh):
        return fresh
    if spec.prevalence is not None:
        fresh = fresh.assign(severity=by_prevalence(ctx, rows, fresh, spec))
    incident = bursts(fresh["time"], fresh[subject], pd.Timedelta(spec.gap))
    shown = (
        fresh[term[0]].astype(object)
        if len(term) == 1
        else fresh[term].astype(object).astype(str).agg(":".join, axis=1)
    )
    fresh = fresh.assign(_shown=shown.to_numpy())
    return label(
        fresh,
        incident,
        fresh[subject],
        lambda g: (
            f"{g[subject].iloc[0]}: first {spec.what} {names(g['_shown'])}"
            + ("" if g["subject_known"].all() else " (no history before the window)")
        ),
        actor=fresh["actor"],
    )


def by_prevalence(
    ctx: Context, rows: pd.DataFrame, fresh: pd.DataFrame, spec: NewTerm
) -> np.ndarray:
    """Severity of new terms by how common they were in the organisation before the window.

    Counted on the rows given (on the dask engine, one sighting per pair before the
    window: the count of distinct subjects is the same).
    """
    terms = spec.terms
    early = rows[(rows["time"] < ctx.baseline_end).to_numpy()]
    new_to_org = str(spec.prevalence)
    if not len(early):
        return np.full(len(fresh), new_to_org, dtype=object)
    spread = early.astype({c: object for c in terms}).groupby(terms)[spec.subject].nunique()
    keys = fresh[terms].astype(object)
    index = pd.MultiIndex.from_frame(keys) if len(terms) > 1 else pd.Index(keys[terms[0]])
    others = spread.reindex(index).fillna(0).to_numpy()
    return np.where(others > 0, "low", new_to_org)


def follow(labelled: pd.DataFrame, rows: pd.DataFrame, spec: NewTerm, params: Any) -> pd.DataFrame:
    """Join to each first sighting the later rows of its pair (see ``NewTerm.follow``).

    Rows of the pair from the first sighting to ``params["follow"]`` after it join its
    incident, with its labels and severity, earliest first and at most
    ``params["follow_most"]`` calls per pair (a call in both logs is one call); the
    incident's summary and ``details`` say how many later calls there were in all.
    """
    key = [spec.subject, *spec.terms]
    window = pd.Timedelta(params["follow"])
    carried = ["incident", "entity", "summary", "actor", "severity"]
    call = [CALL_COLUMN] if CALL_COLUMN in labelled and CALL_COLUMN in rows else []
    firsts = labelled[[*key, "time", "evidence_id", *call, *[c for c in carried if c in labelled]]]
    firsts = firsts.astype({c: object for c in key}).rename(
        columns={"time": "_first", "evidence_id": "_first_id", CALL_COLUMN: "_first_call"}
    )
    candidates = rows[(rows["time"] >= labelled["time"].min()).to_numpy()]
    candidates = candidates[candidates[spec.subject].isin(firsts[spec.subject].unique()).to_numpy()]
    candidates = candidates.drop(columns=[c for c in carried if c in candidates]).astype(
        {c: object for c in key}
    )
    joined = candidates.merge(firsts, on=key, how="inner")
    near = (
        (joined["time"] >= joined["_first"])
        & (joined["time"] <= joined["_first"] + window)
        & (joined["evidence_id"].astype(object) != joined["_first_id"])
    )
    joined = joined[near.to_numpy()]
    if not len(joined):
        return labelled
    joined = joined.sort_values(["time", "evidence_id"], kind="stable")
    # the first sighting's own call in the other log is evidence, not a later call
    twin = (
        (joined[CALL_COLUMN] == joined["_first_call"]).fillna(False).to_numpy(dtype=bool)
        if call
        else np.zeros(len(joined), dtype=bool)
    )
    # the n-th call of its pair (a call in both logs is one call, its two rows kept)
    calls = pd.Series(first_of_call(joined).astype(np.int64) * ~twin, index=joined.index)
    number = calls.groupby([joined[c] for c in key], sort=False).cumsum()
    keep = (number <= params["follow_most"]).to_numpy()
    attached = joined[keep]
    total = count_calls(joined[~twin], "incident")
    shown = count_calls(joined[keep & ~twin], "incident")
    more = {}
    for incident, count in total.items():
        kept = int(shown.get(incident, 0))
        more[incident] = (
            f"; then {int(count)} more call{'s' if count != 1 else ''} from there within "
            f"{params['follow']}" + (f" (the first {kept} in the evidence)" if kept < count else "")
        )
    labelled = labelled.assign(
        summary=labelled["summary"].astype(str) + labelled["incident"].map(more).fillna(""),
        details=labelled["incident"].map(
            lambda i: (
                {"later_uses": int(total[i]), "later_in_evidence": int(shown.get(i, 0))}
                if i in total.index
                else None
            )
        ),
    )
    summaries = labelled.drop_duplicates("incident").set_index("incident")["summary"]
    details = labelled.drop_duplicates("incident").set_index("incident")["details"]
    attached = attached.drop(columns=["_first", "_first_id", *(["_first_call"] if call else [])])
    attached = attached.assign(
        summary=attached["incident"].map(summaries).to_numpy(),
        details=attached["incident"].map(details).to_numpy(),
    )
    columns = [c for c in labelled.columns if c in attached.columns]
    return pd.concat([labelled, attached[columns]], ignore_index=True)
