"""Rules on the logs themselves: trail tampering and silence (D26, D27)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import label, nanoseconds
from ..registry import Params, duration, rule
from .common import (
    SINK_TAMPERING,
    TRAIL_TAMPERING,
    from_actiontrail,
    names,
    node,
    single_events,
    who_from,
)
from .facets import admin


@rule(
    "D26",
    "ActionTrail logging stopped, trail deleted or changed, log sink deleted",
    severity="high",
    technique="T1562.008",
    kind="single-event",
    sources=("actiontrail",),
)
def trail_tampering(ctx: Context, p: Params) -> pd.DataFrame:
    """StopLogging, DeleteTrail, UpdateTrail, DeleteInnerTrail; SLS logstore deletions.

    The summary names the changed trail settings (``OssBucketName``, ``SlsProjectArn``,
    ``EventRW``: ``All`` to ``Write`` drops GetSecretValue from the trail).

    Reads
    -----
    ActionTrail ``serviceName``, ``eventName``, ``requestParameters``.

    False positives
    ---------------
    Migrating a trail to a new SLS project or bucket (a CreateTrail follows).
    """
    act = ctx.act
    service = act["service"]
    trail = ctx.action_is(*TRAIL_TAMPERING) & (service == "actiontrail")
    sink = ctx.action_is(*SINK_TAMPERING) & service.isin(["sls", "log"])
    mask = from_actiontrail(ctx) & ctx.ok & (trail | sink)
    rows = ctx.rows(mask)
    settings = pd.Series(
        [
            ", ".join(f"{k}={v}" for k, v in q.items() if k not in ("Name", "RegionId"))
            for q in ctx.nested(rows, "requestParameters")
        ],
        index=rows.index,
    )
    return single_events(
        ctx,
        mask,
        node("account:", act["account_id"]),
        lambda g: (
            f"{names(g['action'])} ({names(g['resource_id'])}) by {who_from(g)}"
            + (
                f"; set {names(settings.loc[g.index])}"
                if settings.loc[g.index].str.len().any()
                else ""
            )
        ),
        gap="6h",
    )


@dataclass(frozen=True)
class SilenceParams(Params):
    """D27's parameters."""

    bin: str = duration("5min")
    p_value: float = 1e-6
    min_bins: int = 6
    recurring_days: int = 2


@rule(
    "D27",
    "Log source went silent",
    severity="high",
    technique="T1562.008",
    kind="gap",
    sources=("actiontrail", "kms"),
    params=SilenceParams,
)
def silence(ctx: Context, p: SilenceParams) -> pd.DataFrame:
    """A source (a trail's account, a KMS instance) delivers nothing where silence is improbable.

    Each source (ActionTrail by the account whose trail delivered it,
    ``recipientAccountId``) is counted per ``bin``; its usual rate for each hour of a
    working day or of a weekend day, in the organisation's ``timezone``, is the mean
    over the evidence (the gap included, which only makes the rule more cautious). A
    run of at least ``min_bins`` empty bins whose probability under that rate
    (Poisson) is below ``p_value`` is a gap, unless on ``recurring_days`` other days
    the source had a run of ``min_bins`` empty bins covering at least half of the same
    local time of day (a nightly lull, a maintenance window). A StopLogging of that
    account's trail before the gap and the StartLogging after it are named, with how
    long logging was stopped, and are in the evidence with the last event before and
    the first after.

    Reads
    -----
    ``time``, ``source``, ``recipientAccountId`` (ActionTrail), ``instance_id`` (KMS
    log); ActionTrail StopLogging / StartLogging.

    False positives
    ---------------
    Ingestion outages, maintenance windows, low-traffic accounts at night.
    """
    act = ctx.act
    codes, labels = _streams(ctx)
    streamed = codes >= 0
    if not streamed.any():
        return pd.DataFrame()
    width = pd.Timedelta(p["bin"])
    stamped = act["time"][streamed]
    start, end = stamped.min().floor(width), stamped.max().ceil(width)
    edges = pd.date_range(start, end, freq=width)
    bins = (nanoseconds(stamped) - start.value) // width.value  # integer bins: no Timedelta maths
    # rows that stand for others (the dask engine's selection) carry their count
    weight = act["_weight"][streamed] if "_weight" in act else pd.Series(1.0, index=stamped.index)
    frame = pd.DataFrame({"bin": bins, "stream": codes[streamed], "weight": weight.to_numpy()})
    switches = ctx.rows(
        from_actiontrail(ctx) & ctx.ok & ctx.action_is("StopLogging", "StartLogging")
    )
    found: list[pd.DataFrame] = []
    for code, group in frame.groupby("stream"):
        name = labels[int(str(code))]
        tally = np.bincount(group["bin"], weights=group["weight"], minlength=len(edges))
        counts = pd.Series(tally.round().astype(np.int64), index=edges)[: len(edges) - 1]
        local = pd.DatetimeIndex(counts.index).tz_convert(ctx.timezone)
        weekend = local.day_of_week >= 5
        rate = counts.groupby([weekend, local.hour]).transform("mean")
        empty = counts == 0
        runs = (empty != empty.shift()).cumsum()[empty]
        long_runs = [run for _, run in runs.groupby(runs) if len(run) >= p["min_bins"]]
        per_day = int(pd.Timedelta(days=1) / width)
        lulls = [_time_of_day(run.index, ctx.timezone, width, per_day) for run in long_runs]
        for number, run in enumerate(long_runs):
            expected = float(rate.loc[run.index].sum())
            if np.exp(-expected) >= p["p_value"]:
                continue
            days, slots = lulls[number]
            recurring = {
                day
                for other_days, other_slots in lulls
                if len(other_slots & slots) >= len(slots) / 2
                for day in other_days - days
            }
            if len(recurring) >= p["recurring_days"]:
                continue
            gap_start, gap_end = run.index[0], run.index[-1] + width
            times = act["time"]
            in_stream = pd.Series(codes == int(str(code)), index=act.index)
            before = act.index[(in_stream & (times < gap_start)).to_numpy()]
            after = act.index[(in_stream & (times >= gap_end)).to_numpy()]
            ends = before[-1:].tolist() + after[:1].tolist()
            account = name.split(":", 1)[1] if name.startswith("actiontrail:") else None
            mine = switches[switches["account_id"].astype(object) == account]
            stop = mine[
                (mine["action"] == "StopLogging")
                & (mine["time"] <= gap_start + width)
                & (mine["time"] >= gap_start - pd.Timedelta(hours=1))
            ].tail(1)
            restart = mine[
                (mine["action"] == "StartLogging")
                & (mine["time"] >= gap_end - width)
                & (mine["time"] <= gap_end + pd.Timedelta(hours=1))
            ].head(1)
            rows = pd.concat([ctx.rows(act.index.isin(ends)), stop, restart])
            note = ""
            if len(stop):
                stopped_for = (
                    (restart["time"].iloc[0] if len(restart) else gap_end) - stop["time"].iloc[0]
                ).total_seconds() / 3600
                note = (
                    f"; StopLogging by {who_from(stop)} at {stop['time'].iloc[0]:%H:%M}"
                    + (f", StartLogging at {restart['time'].iloc[0]:%H:%M}" if len(restart) else "")
                    + f" (logging stopped {stopped_for:.1f} h)"
                )
            found.append(
                label(
                    rows,
                    np.full(len(rows), len(found)),
                    name.replace("actiontrail:", "account:"),
                    f"{name} silent from {gap_start:%Y-%m-%d %H:%M} to {gap_end:%H:%M} UTC "
                    f"({len(run) * width.total_seconds() / 3600:.1f} h; about "
                    f"{expected:.0f} events expected){note}",
                    actor=rows["actor"],
                    origin=None,
                    details={"silent_from": gap_start, "silent_until": gap_end},
                )
            )
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def _time_of_day(
    index: pd.Index, timezone: str, width: pd.Timedelta, per_day: int
) -> tuple[set[Any], set[int]]:
    """The local days a run of bins touches, and its bins' slots in the day."""
    local = pd.DatetimeIndex(index).tz_convert(timezone)
    minutes = local.hour * 60 + local.minute
    slots = {int(m) // int(width.total_seconds() // 60) % per_day for m in minutes}
    return set(local.date), slots


def _streams(ctx: Context) -> tuple[np.ndarray, dict[int, str]]:
    """Each row's stream: the trail (recipient account) or the KMS instance; -1 for none."""
    act, at = ctx.act, ctx.at_text
    is_at = (act["source"] == "actiontrail").to_numpy()
    trail = act.loc[is_at, "account_id"].astype(object)
    if len(at) and "recipientAccountId" in at:
        delivered = at.dropna(subset=["eventId"]).drop_duplicates("eventId")
        by_event = pd.Series(
            delivered["recipientAccountId"].astype(object).to_numpy(),
            index=delivered["eventId"].astype(object),
        )
        recipient = act.loc[is_at, "event_id"].map(by_event)
        trail = recipient.where(recipient.notna(), trail)
    trail_codes, trails = pd.factorize(trail)
    instance_codes, instances = pd.factorize(act.loc[~is_at, "instance_id"].astype(object))
    codes = np.full(len(act), -1, dtype=np.int64)
    codes[is_at] = trail_codes
    codes[~is_at] = np.where(instance_codes >= 0, instance_codes + len(trails), -1)
    labels = {i: f"actiontrail:{t}" for i, t in enumerate(trails)}
    labels.update({len(trails) + i: f"kms-instance:{k}" for i, k in enumerate(instances)})
    return codes, labels


# -- the dask facets: which rows each rule reads, day by day ----------------------------


@trail_tampering.select
def _logging(ctx: Context, p: Params) -> pd.Series:
    return admin(*TRAIL_TAMPERING, *SINK_TAMPERING)(ctx, p)


@silence.weigh
def _stream_bins(ctx: Context, p: Params) -> pd.Series:
    """D27: the first and last row of each stream and bin; the first stands for the bin."""
    codes, _ = _streams(ctx)
    width = pd.Timedelta(p["bin"]).value
    frame = pd.DataFrame({"stream": codes, "bin": nanoseconds(ctx.act["time"]) // width})
    frame = frame[frame["stream"] >= 0]
    grouped = frame.groupby(["stream", "bin"], sort=False)
    weights = pd.Series(np.nan, index=ctx.act.index)
    weights.loc[grouped.tail(1).index] = 0.0
    switches = from_actiontrail(ctx) & ctx.ok & ctx.action_is("StopLogging", "StartLogging")
    weights.loc[switches[switches].index] = 0.0  # named by D27, counted with their bin
    firsts = grouped.head(1).index
    weights.loc[firsts] = grouped["bin"].transform("size").loc[firsts].astype(float)
    return weights
