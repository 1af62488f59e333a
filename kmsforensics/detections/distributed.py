"""``kf.detect`` on the dask engine: the cluster selects and reduces, the rules decide.

1. The facts every rule shares are aggregated on the cluster: the first event (for the
   default baseline), the organisation's accounts, the key administration events
   (after which D04 and D05 count failures) and the AssumeRole issues (every key's
   lineage, :mod:`.lineage`); then the baseline days are read for what
   threshold selections learn from them (D01's usual reads, D03's usual bins), and
   every day for the few facts some selections gather first (D09's new client keys,
   D29's control-plane changes).
2. Each day's partition is read on a worker, where a :class:`Context` over that day
   evaluates the selections of the ``select`` rules (every row they can read, decided
   row by row; each rule's ``selects`` facet, beside it) and reduces the ``first-seen``
   rules' new-term specs to the day's first sightings of every pair
   (:func:`.newterms.reduce_specs`).
3. On the driver, the ``select`` rules run unchanged on the selected rows, and the
   ``first-seen`` rules on every day's sightings, merged. Rules that need every row
   (``memory``) are not run; a note names them.

Both give the findings the pandas engine gives on the same evidence, which
``tests/test_scale.py`` checks on a generated case with every attack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..case import Case, records_behind
from ..schema import AT_NESTED_FIELDS
from .context import Context
from .lineage import ISSUE_COLUMNS, issuances
from .newterms import reduce_specs, run_specs
from .registry import ON_DASK, RULES, Rule
from .rules.facets import KEY_ADMIN

#: What the rules that run on dask read of each frame (activity: every column).
READS: dict[str, list[str] | None] = {
    "activity": None,
    "kms": ["request_id", "status_code"],
    "actiontrail": ["eventId", "recipientAccountId", "__topic__", *AT_NESTED_FIELDS],
}


@dataclass
class _Plan:
    """What every day's task needs: the rules, their parameters, the context options."""

    rule_ids: list[str]
    params: dict[str, Any]
    options: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)

    def context(self, activity: pd.DataFrame, kms: pd.DataFrame, at: pd.DataFrame) -> Context:
        """Return a Context over one day's rows, with the facts learned from the case."""
        empty = pd.DataFrame()
        ctx = Context(Case(kms, at, activity, empty, empty), **self.options)
        ctx.facts = self.facts
        return ctx


def _day(
    activity: pd.DataFrame, kms: pd.DataFrame, at: pd.DataFrame, plan: _Plan
) -> dict[str, Any]:
    """One day on a worker: the selected rows, and the first sightings of each rule."""
    ctx = plan.context(activity, kms, at)
    rules = [RULES[r] for r in plan.rule_ids]
    keep = np.zeros(len(activity), dtype=bool)
    weight = np.zeros(len(activity))
    for rule in rules:
        if rule.selects is not None:
            keep |= np.asarray(rule.selects(ctx, plan.params[rule.rule_id]), dtype=bool)
        if rule.weighs is not None:
            counts = np.asarray(rule.weighs(ctx, plan.params[rule.rule_id]), dtype=float)
            keep |= ~np.isnan(counts)
            weight += np.nan_to_num(counts)
    chosen = activity[keep].assign(_weight=weight[keep])
    kms, at = records_behind(chosen, kms, at)
    sightings = {
        rule.rule_id: reduce_specs(ctx, rule, plan.params[rule.rule_id])
        for rule in rules
        if rule.first_seen
    }
    return {
        "activity": chosen,
        "kms": kms,
        "actiontrail": at,
        "sightings": sightings,
    }


def _learn(
    activity: pd.DataFrame, kms: pd.DataFrame, at: pd.DataFrame, plan: _Plan
) -> dict[str, pd.DataFrame]:
    """One baseline day on a worker: what each rule's selection learns from it."""
    ctx = plan.context(activity, kms, at)
    return {
        r: RULES[r].learned[0](ctx, plan.params[r])  # type: ignore[index]
        for r in plan.rule_ids
    }


def _gather(
    activity: pd.DataFrame, kms: pd.DataFrame, at: pd.DataFrame, plan: _Plan
) -> dict[str, pd.DataFrame]:
    """One day on a worker: what each rule's selection gathers from every day."""
    ctx = plan.context(activity, kms, at)
    return {
        r: RULES[r].gathered[0](ctx, plan.params[r])  # type: ignore[index]
        for r in plan.rule_ids
    }


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate days, keeping categoricals categorical (their categories united)."""
    kept = [f for f in frames if len(f.columns)]
    if not kept:
        return pd.DataFrame()
    for column in kept[0].columns:
        if isinstance(kept[0][column].dtype, pd.CategoricalDtype):
            parts = [f[column].astype("category") for f in kept]
            if len({str(c.cat.categories.dtype) for c in parts}) > 1:  # a day of nulls
                parts = [
                    pd.Series(
                        pd.Categorical(
                            c.astype(object),
                            categories=pd.Index(list(c.cat.categories), dtype=object),
                        ),
                        index=c.index,
                    )
                    for c in parts
                ]
                kept = [f.assign(**{column: c}) for f, c in zip(kept, parts, strict=True)]
            united = pd.api.types.union_categoricals(parts, ignore_order=True).categories
            kept = [f.assign(**{column: f[column].cat.set_categories(united)}) for f in kept]
    return pd.concat(kept, ignore_index=True)


def detect_on_dask(
    case: Any,
    chosen: list[Rule],
    params: dict[str, Any],
    *,
    window_start: pd.Timestamp | None,
    baseline_days: float,
    timezone: str,
    geoip: Any,
    known_accounts: list[str] | None,
) -> tuple[dict[str, pd.DataFrame], pd.Timestamp, bool, dict[str, str], dict[str, float]]:
    """Run the rules that can run on the cluster (see the module docstring).

    Returns the labelled rows of each rule run, the baseline end, whether the window
    was given, notes on the rules not run, and the seconds of each stage.
    """
    import dask

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    act = case.activity
    own = act[act["identity_type"].astype(object) != "unknown"]["account_id"]
    admin = act[(act["source"] == "actiontrail") & act["action"].isin(KEY_ADMIN)]
    issuing = act[~act["issued_access_key_id"].isna()][
        [*ISSUE_COLUMNS, "action", "source", "success"]
    ]
    first, accounts, key_admin, issued = dask.compute(
        act["time"].min(),
        own.dropna().astype(object).unique(split_out=1),
        admin[["key_id", "time"]].dropna(),
        issuing,
    )
    known = [str(a) for a in accounts] if known_accounts is None else list(known_accounts)
    given = window_start is not None
    if window_start is None:
        start = first if pd.notna(first) else pd.Timestamp("1970-01-01", tz="UTC")
        window_start = start + pd.Timedelta(days=baseline_days)
    options = {
        "window_start": window_start,
        "timezone": timezone,
        "geoip": geoip,
        "known_accounts": known,
    }
    facts: dict[str, Any] = {"key_admin": key_admin, "issuances": issuances(issued)}
    if any(r.rule_id == "D08" for r in chosen):  # D08 names the AAP a change belongs to
        from .. import aap

        facts["aap_configuration"] = aap.configuration(case)
    if any(r.rule_id == "D27" for r in chosen):  # D27 tells delivered files from queries
        from .rules.logging import query_files

        facts["query_files"] = query_files(case.manifest)
    runnable = [r for r in chosen if r.on_dask != "memory"]
    learning = [r.rule_id for r in runnable if r.learned is not None]
    if learning:  # what the selections learn from the baseline days, first
        last = window_start.strftime("%Y-%m-%d")
        early = [
            part for day, part in zip(case.days, case.partitions(READS), strict=True) if day <= last
        ]
        learned = dask.compute(
            *[dask.delayed(_learn)(a, k, t, _Plan(learning, params, options)) for a, k, t in early]
        )
        for rule_id in learning:
            combine = RULES[rule_id].learned[1]  # type: ignore[index]
            facts[rule_id] = combine([d[rule_id] for d in learned], params[rule_id])
    gathering = [r.rule_id for r in runnable if r.gathered is not None]
    if gathering:  # the few facts some selections need from every day
        plan = _Plan(gathering, params, options, dict(facts))
        gathered = dask.compute(
            *[dask.delayed(_gather)(a, k, t, plan) for a, k, t in case.partitions(READS)]
        )
        for rule_id in gathering:
            combine = RULES[rule_id].gathered[1]  # type: ignore[index]
            facts[rule_id] = combine([d[rule_id] for d in gathered], params[rule_id])
    notes = {r.rule_id: ON_DASK["memory"] for r in chosen if r.on_dask == "memory"}
    ids = [r.rule_id for r in runnable]
    days = dask.compute(
        *[
            dask.delayed(_day)(a, k, t, _Plan(ids, params, options, facts))
            for a, k, t in case.partitions(READS)
        ]
    )
    seconds["cluster"] = time.perf_counter() - started
    selected = Case(
        _concat([d["kms"] for d in days]),
        _concat([d["actiontrail"] for d in days]),
        _concat([d["activity"] for d in days]),
        case.issues,
        case.manifest,
    )
    ctx = Context(selected, **options)
    ctx.facts = facts
    results: dict[str, pd.DataFrame] = {}
    for rule in runnable:
        started = time.perf_counter()
        if rule.first_seen:
            calls = zip(*[d["sightings"][rule.rule_id] for d in days], strict=True)
            nothing = Case(
                selected.kms.iloc[:0],
                selected._actiontrail_text.iloc[:0],
                selected.activity.iloc[:0],
                case.issues,
                case.manifest,
            )
            final = Context(nothing, **options)
            final.facts = facts
            merged = [_concat(list(call)) for call in calls]
            found = run_specs(final, rule, params[rule.rule_id], merged, later=ctx)
            results[rule.rule_id] = rule.function(found, params[rule.rule_id])
        else:
            results[rule.rule_id] = rule(ctx, params[rule.rule_id])
        seconds[rule.rule_id] = time.perf_counter() - started
    return results, ctx.baseline_end, given, notes, seconds
