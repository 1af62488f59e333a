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
    min_witness: int = 2


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

    Each delivery channel of a trail is a source of its own: OSS delivery files, SLS
    exports (records with ``__topic__``) and the LookupEvents API (saved responses:
    files of one JSON object). LookupEvents pages are what an analyst
    asked for, not a delivery: they are never judged silent, but when an OSS or SLS
    channel has a run of ``min_bins`` empty bins while LookupEvents has at least
    ``min_witness`` events of that account in the same span, the channel went silent
    while the account was active: critical whatever the rate, with the first and
    last of those events in the evidence. When the loader dropped events of a
    delivery file as copies of events it read first (``case.manifest``
    ``duplicates``: LookupEvents pages, or another channel, read first), the channels
    cannot be told apart and each trail is judged as one source.

    Reads
    -----
    ``time``, ``source``, ``recipientAccountId``, ``__topic__``, ``source_item``
    (ActionTrail), ``instance_id`` (KMS log); ActionTrail StopLogging / StartLogging;
    the manifest's ``duplicates``.

    False positives
    ---------------
    Ingestion outages, maintenance windows, low-traffic accounts at night.
    """
    act = ctx.act
    codes, labels = _streams(ctx)
    if not _channels_apart(ctx, codes, labels):
        codes, labels = _by_trail(codes, labels)
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
    tallies = {
        int(str(code)): np.bincount(group["bin"], weights=group["weight"], minlength=len(edges))[
            : len(edges) - 1
        ]
        for code, group in frame.groupby("stream")
    }
    witnesses = {labels[code].account: code for code in tallies if labels[code].channel == "lookup"}
    for code, tally in tallies.items():
        stream = labels[code]
        if stream.channel == "lookup":
            continue  # a query, not a delivery: only a witness
        name = stream.name
        counts = pd.Series(tally.round().astype(np.int64), index=edges[: len(edges) - 1])
        witness = witnesses.get(stream.account) if stream.channel != "" else None
        seen = tallies[witness] if witness is not None else None
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
            positions = counts.index.get_indexer(run.index)
            witnessed = round(float(seen[positions].sum())) if seen is not None else 0
            if witnessed < p["min_witness"]:
                witnessed = 0
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
            in_stream = pd.Series(codes == code, index=act.index)
            before = act.index[(in_stream & (times < gap_start)).to_numpy()]
            after = act.index[(in_stream & (times >= gap_end)).to_numpy()]
            ends = before[-1:].tolist() + after[:1].tolist()
            if witnessed:
                looked = act.index[
                    (
                        pd.Series(codes == witness, index=act.index)
                        & (times >= gap_start)
                        & (times < gap_end)
                    ).to_numpy()
                ]
                ends += looked[:1].tolist() + looked[-1:].tolist()
            account = stream.account
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
            if witnessed:
                note += f"; LookupEvents has {witnessed} events of the account in that span"
            found.append(
                label(
                    rows,
                    np.full(len(rows), len(found)),
                    stream.entity,
                    f"{name} silent from {gap_start:%Y-%m-%d %H:%M} to {gap_end:%H:%M} UTC "
                    f"({len(run) * width.total_seconds() / 3600:.1f} h; about "
                    f"{expected:.0f} events expected){note}",
                    actor=rows["actor"],
                    origin=None,
                    severity="critical" if witnessed else None,
                    details={
                        "silent_from": gap_start,
                        "silent_until": gap_end,
                        "channel": stream.channel or None,
                        "lookup_events": witnessed,
                    },
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


@dataclass(frozen=True)
class Stream:
    """One source D27 counts: a trail's channel, or a KMS instance."""

    name: str  #: as summaries name it (``actiontrail:<account> (OSS)``)
    entity: str  #: its graph node (``account:<uid>``, ``kms-instance:<id>``)
    account: str | None = None  #: the trail's account
    channel: str = ""  #: ``oss``, ``sls``, ``lookup`` (``""``: one source for the trail)


#: How summaries name the channels.
CHANNELS = {"oss": "OSS delivery", "sls": "SLS", "lookup": "LookupEvents"}


def query_files(manifest: pd.DataFrame) -> set[str]:
    """Files holding one JSON object: saved API responses (LookupEvents pages), not deliveries.

    >>> query_files(pd.DataFrame({"path": ["a.json", "b.gz"],
    ...                           "format": ["json-object:actiontrail", "json-array:actiontrail"]}))
    {'a.json'}
    """
    if not len(manifest) or "format" not in manifest:
        return set()
    single = manifest["format"].astype(str).str.startswith("json-object")
    return {str(f) for f in manifest.loc[single.to_numpy(), "path"]}


def _channel(ctx: Context, at: pd.DataFrame) -> pd.Series:
    """The channel of each ActionTrail record: ``sls``, ``lookup`` or ``oss``.

    SLS records carry ``__topic__``; LookupEvents events come from a saved response (a
    file of one JSON object, or an ``Events`` page inside another file: ``source_item``);
    the rest are delivered files (OSS).
    """
    channel = pd.Series("oss", index=at.index, dtype=object)
    files = ctx.facts.get("query_files")
    if files is None:
        files = query_files(ctx.case.manifest)
    if files and "source_file" in at:
        channel[at["source_file"].astype(object).isin(list(files)).to_numpy()] = "lookup"
    if "source_item" in at:
        item = pd.to_numeric(at["source_item"], errors="coerce").astype(float).fillna(-1)
        channel[(item >= 0).to_numpy(dtype=bool)] = "lookup"
    if "__topic__" in at:
        channel[at["__topic__"].notna().to_numpy()] = "sls"
    return channel


def _streams(ctx: Context) -> tuple[np.ndarray, dict[int, Stream]]:
    """Each row's stream: the trail (recipient account) and channel, or the KMS instance."""
    act, at = ctx.act, ctx.at_text
    is_at = (act["source"] == "actiontrail").to_numpy()
    trail = act.loc[is_at, "account_id"].astype(object)
    channel = pd.Series("oss", index=trail.index, dtype=object)
    if len(at) and "eventId" in at:
        delivered = at.dropna(subset=["eventId"]).drop_duplicates("eventId")
        events = delivered["eventId"].astype(object)
        if "recipientAccountId" in at:
            by_event = pd.Series(
                delivered["recipientAccountId"].astype(object).to_numpy(), index=events
            )
            recipient = act.loc[is_at, "event_id"].map(by_event)
            trail = recipient.where(recipient.notna(), trail)
        by_channel = pd.Series(_channel(ctx, delivered).to_numpy(), index=events)
        channel = act.loc[is_at, "event_id"].map(by_channel).fillna("oss")
    pairs = pd.DataFrame({"trail": trail.to_numpy(), "channel": channel.to_numpy()})
    present = pairs["trail"].notna().to_numpy()
    trail_codes = np.full(len(pairs), -1, dtype=np.int64)
    trail_codes[present] = pairs[present].groupby(["trail", "channel"], sort=True).ngroup()
    trails = pairs[present].drop_duplicates().sort_values(["trail", "channel"])
    instance_codes, instances = pd.factorize(act.loc[~is_at, "instance_id"].astype(object))
    codes = np.full(len(act), -1, dtype=np.int64)
    codes[is_at] = trail_codes
    codes[~is_at] = np.where(instance_codes >= 0, instance_codes + len(trails), -1)
    labels = {
        i: Stream(f"actiontrail:{t} ({CHANNELS[c]})", f"account:{t}", str(t), c)
        for i, (t, c) in enumerate(trails.itertuples(index=False))
    }
    for i, k in enumerate(instances):
        labels[len(trails) + i] = Stream(f"kms-instance:{k}", f"kms-instance:{k}")
    return codes, labels


def _channels_apart(ctx: Context, codes: np.ndarray, labels: dict[int, Stream]) -> bool:
    """Whether the trails' channels can be counted apart.

    Not when the loader dropped duplicates from any file other than LookupEvents
    pages: a delivered copy may be missing only because a copy in another channel
    was read first (the channel would look silent where the other has the events).
    """
    if len({s.channel for s in labels.values() if s.account is not None}) < 2:
        return True  # one channel: nothing to tell apart
    manifest = ctx.case.manifest
    if not len(manifest) or "duplicates" not in manifest:
        return True
    lossy = manifest.loc[pd.to_numeric(manifest["duplicates"], errors="coerce").fillna(0) > 0]
    if not len(lossy):
        return True
    lookup = {c for c, s in labels.items() if s.channel == "lookup"}
    files = pd.DataFrame({"file": ctx.act["source_file"].astype(object), "code": codes})
    first = files.groupby("file", sort=False)["code"].first()  # one file, one channel
    return all(first.get(f, -1) in lookup for f in lossy["path"].astype(object))


def _by_trail(codes: np.ndarray, labels: dict[int, Stream]) -> tuple[np.ndarray, dict[int, Stream]]:
    """Merge each trail's channels into one stream (KMS instances unchanged)."""
    merged: dict[str, int] = {}
    remap = np.arange(max(labels, default=-1) + 2) - 1  # remap[code + 1]; -1 stays -1
    out: dict[int, Stream] = {}
    for code, stream in sorted(labels.items()):
        key = stream.account if stream.account is not None else stream.name
        if key not in merged:
            merged[key] = len(merged)
            name = f"actiontrail:{key}" if stream.account is not None else stream.name
            out[merged[key]] = Stream(name, stream.entity, stream.account)
        remap[code + 1] = merged[key]
    return remap[codes + 1], out


# -- the dask facets: which rows each rule reads, day by day ----------------------------


@trail_tampering.select
def _logging(ctx: Context, p: Params) -> pd.Series:
    return admin(*TRAIL_TAMPERING, *SINK_TAMPERING)(ctx, p)


@silence.weigh
def _stream_bins(ctx: Context, p: Params) -> pd.Series:
    """D27: the first and last row of each stream and bin; the first stands for the bin.

    The first row of each file is kept too (it tells the file's channel).
    """
    codes, _ = _streams(ctx)
    width = pd.Timedelta(p["bin"]).value
    frame = pd.DataFrame({"stream": codes, "bin": nanoseconds(ctx.act["time"]) // width})
    frame = frame[frame["stream"] >= 0]
    grouped = frame.groupby(["stream", "bin"], sort=False)
    weights = pd.Series(np.nan, index=ctx.act.index)
    weights.loc[grouped.tail(1).index] = 0.0
    switches = from_actiontrail(ctx) & ctx.ok & ctx.action_is("StopLogging", "StartLogging")
    weights.loc[switches[switches].index] = 0.0  # named by D27, counted with their bin
    files = ctx.act["source_file"].astype(object)
    weights.loc[files.index[~files.duplicated().to_numpy()]] = 0.0  # each file's channel
    firsts = grouped.head(1).index
    weights.loc[firsts] = grouped["bin"].transform("size").loc[firsts].astype(float)
    return weights
