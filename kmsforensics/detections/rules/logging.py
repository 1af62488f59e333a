"""Rules on the logs themselves: trail tampering and silence (D26, D27)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import UnknownRuleError
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
    min_days: int = 2
    weekly_days: int = 3
    quantile: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.quantile > 0.5:
            raise UnknownRuleError(
                f"{self.rule_id}: quantile must be between 0 and 0.5, not {self.quantile!r}"
            )
        if self.min_days < 1:
            raise UnknownRuleError(f"{self.rule_id}: min_days must be at least 1, not 0")


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
    """A source (a trail's channel, a KMS instance) delivers nothing where silence is improbable.

    Each source (ActionTrail by the account whose trail delivered it,
    ``recipientAccountId``) is counted per ``bin``. A run of at least ``min_bins``
    empty bins is judged against what the source delivered in the same local hours
    (the organisation's ``timezone``) on the other days of the evidence: for each of
    those days, the count in those hours (an hour the run covers in part counts in
    proportion). The days compared are those of the same weekday when there are
    ``weekly_days`` of them, else the working days or the weekend days like the
    gap's when there are ``min_days``, else (for a working day, as weekends are
    quieter) every day when there are ``min_days``; with fewer, every other complete
    hour of the evidence (of weekend days, for a weekend gap), scaled to the run's
    length. The run is a gap when even the ``quantile`` (the low end) of those
    counts makes silence improbable: its Poisson probability of no event is below
    ``p_value``. The summary and ``details`` give that expected range (the
    ``quantile`` and ``1 - quantile``, and the median), the days compared, and 0
    observed.

    A gap that recurs is a lull, not a gap: when on ``recurring_days`` other days
    the source had a run of ``min_bins`` empty bins covering at least half of the
    same local time of day (a nightly lull, a maintenance window), nothing is
    raised; days with such a run on fewer days are left out of the comparison. A
    StopLogging of that account's trail before the gap and the StartLogging after
    it are named, with how long logging was stopped, and are in the evidence with
    the last event before and the first after.

    Each delivery channel of a trail is a source of its own: OSS delivery files, SLS
    exports (records with ``__topic__``) and the LookupEvents API (saved responses:
    files of one JSON object). LookupEvents pages are what an analyst
    asked for, not a delivery: they are never judged silent, but when an OSS or SLS
    channel has a run of ``min_bins`` empty bins while LookupEvents has at least
    ``min_witness`` events of that account in the same span, the channel went silent
    while the account was active: critical whatever the usual counts, with the first
    and last of those events in the evidence. When the loader dropped events of a
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
    Ingestion outages, maintenance windows that do not recur, low-traffic accounts at
    night in evidence too short to show the nights.
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
    clock = Clock(pd.DatetimeIndex(edges[: len(edges) - 1]), ctx.timezone, width)
    witnesses = {labels[code].account: code for code in tallies if labels[code].channel == "lookup"}
    for code, tally in tallies.items():
        stream = labels[code]
        if stream.channel == "lookup":
            continue  # a query, not a delivery: only a witness
        counts = tally.round().astype(np.int64)
        witness = witnesses.get(stream.account) if stream.channel != "" else None
        seen = tallies[witness] if witness is not None else None
        hourly = clock.hourly(counts)
        runs = _empty_runs(counts, p["min_bins"])
        lulls = [clock.time_of_day(first, stop) for first, stop in runs]
        for number, (first, stop) in enumerate(runs):
            witnessed = round(float(seen[first:stop].sum())) if seen is not None else 0
            days, slots = lulls[number]
            recurring = {
                day
                for other_days, other_slots in lulls
                if len(other_slots & slots) >= len(slots) / 2
                for day in other_days - days
            }
            usual = clock.usual(hourly, first, stop, recurring, p)
            if witnessed < p["min_witness"]:
                witnessed = 0
                if len(recurring) >= p["recurring_days"]:
                    continue
                if usual is None or np.exp(-usual.low) >= p["p_value"]:
                    continue
            gap_start, gap_end = edges[first], edges[stop]
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
            stop_row = mine[
                (mine["action"] == "StopLogging")
                & (mine["time"] <= gap_start + width)
                & (mine["time"] >= gap_start - pd.Timedelta(hours=1))
            ].tail(1)
            restart = mine[
                (mine["action"] == "StartLogging")
                & (mine["time"] >= gap_end - width)
                & (mine["time"] <= gap_end + pd.Timedelta(hours=1))
            ].head(1)
            rows = pd.concat([ctx.rows(act.index.isin(ends)), stop_row, restart])
            note = ""
            if len(stop_row):
                stopped_at = stop_row["time"].iloc[0]
                stopped_for = (
                    (restart["time"].iloc[0] if len(restart) else gap_end) - stopped_at
                ).total_seconds() / 3600
                note = (
                    f"; StopLogging by {who_from(stop_row)} at {stopped_at:%H:%M}"
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
                    f"{stream.name} silent from {gap_start:%Y-%m-%d %H:%M} to {gap_end:%H:%M} UTC "
                    f"({(stop - first) * width.total_seconds() / 3600:.1f} h; 0 events"
                    f"{usual.phrase() if usual is not None else ', no baseline for those hours'})"
                    f"{note}",
                    actor=rows["actor"],
                    origin=None,
                    severity="critical" if witnessed else None,
                    details={
                        "silent_from": gap_start,
                        "silent_until": gap_end,
                        "channel": stream.channel or None,
                        "lookup_events": witnessed,
                        "observed": 0,
                        **(usual.details() if usual is not None else {}),
                    },
                )
            )
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def _empty_runs(counts: np.ndarray, least: int) -> list[tuple[int, int]]:
    """The runs of at least ``least`` empty bins, as (first, stop) positions.

    >>> _empty_runs(np.array([1, 0, 0, 0, 2, 0, 0]), 2)
    [(1, 4), (5, 7)]
    """
    empty = np.concatenate(([False], counts == 0, [False]))
    changes = np.flatnonzero(empty[1:] != empty[:-1])
    firsts, stops = changes[::2], changes[1::2]
    long = stops - firsts >= max(least, 1)
    return list(zip(firsts[long].tolist(), stops[long].tolist(), strict=True))


@dataclass(frozen=True)
class Usual:
    """What a source delivered in a gap's hours on the other days: the expected range."""

    low: float  #: the ``quantile`` of the counts
    median: float
    high: float  #: the ``1 - quantile`` of the counts
    days: int  #: the other days compared
    basis: str  #: which days (``same weekday``, ``working days``, ...; ``any hour``)
    hours: int = 0  #: for ``any hour``: the hours compared

    def phrase(self) -> str:
        """The summary's words: where the counts come from and their range."""
        spread = f"{self.low:.0f} to {self.high:.0f} (median {self.median:.0f})"
        if self.basis == "any hour":
            return (
                f" where {self.hours} other hours of {self.days} days had {spread} for as long"
                " (too few days at those hours)"
            )
        days = f"{self.days} other {'day' if self.days == 1 else 'days'}"
        if self.basis == "every day":
            return f" where the same hours of {days} had {spread}"
        return f" where the same hours of {days} ({self.basis}) had {spread}"

    def details(self) -> dict[str, Any]:
        """The finding's ``details`` entries."""
        return {
            "expected_low": self.low,
            "expected_median": self.median,
            "expected_high": self.high,
            "baseline": self.basis,
            "baseline_days": self.days,
        }


class Clock:
    """The local hour and day of each bin, for per-hour counts across days.

    Parameters
    ----------
    index : DatetimeIndex
        The bins' starts (UTC).
    timezone : str
        The organisation's timezone: hours and days are local.
    width : Timedelta
        The bins' width.
    """

    HOUR = 3_600_000_000_000  # nanoseconds
    DAY = 24 * HOUR

    def __init__(self, index: pd.DatetimeIndex, timezone: str, width: pd.Timedelta) -> None:
        local = np.asarray(index.tz_convert(timezone).tz_localize(None).asi8, dtype=np.int64)
        absolute = local // self.HOUR
        self.first = int(absolute.min()) if len(absolute) else 0
        self.hour = absolute - self.first  #: each bin's local hour, from the first
        self.hours = int(self.hour.max()) + 1 if len(local) else 0
        self.per_hour = max(1, int(pd.Timedelta(hours=1) // width))
        self.complete = np.bincount(self.hour, minlength=self.hours) >= self.per_hour
        self.day = (self.first + np.arange(self.hours)) // 24  #: each hour's local day
        self.local = local
        self.width = int(width.value)

    def hourly(self, counts: np.ndarray) -> np.ndarray:
        """Counts per local hour; NaN for hours the evidence covers only in part."""
        per_hour = np.bincount(self.hour, weights=counts, minlength=self.hours)
        return np.where(self.complete, per_hour, np.nan)

    def time_of_day(self, first: int, stop: int) -> tuple[set[int], set[int]]:
        """The local days a run of bins touches, and its bins' slots in the day."""
        local = self.local[first:stop]
        slots = (local % self.DAY) // self.width
        return set((local // self.DAY).tolist()), set(slots.tolist())

    def usual(
        self, hourly: np.ndarray, first: int, stop: int, left_out: set[int], p: SilenceParams
    ) -> Usual | None:
        """What the source delivered in the hours of bins ``first:stop`` on other days.

        Days in ``left_out`` (with a lull of their own there) are not compared.
        """
        hours, covered = np.unique(self.hour[first:stop], return_counts=True)
        share = covered / self.per_hour
        day = int(self.day[hours[0]])
        span = self.hours // 24 + 1
        shifts = np.array(
            [k for k in range(-span, span + 1) if k and day + k not in left_out], dtype=np.int64
        )
        targets = hours[None, :] + 24 * shifts[:, None]
        inside = ((targets >= 0) & (targets < self.hours)).all(axis=1)
        values = hourly[np.clip(targets, 0, max(self.hours - 1, 0))]
        usable = inside & ~np.isnan(values).any(axis=1)
        expected = (values[usable] * share).sum(axis=1)
        weekday = (day + shifts[usable] + 3) % 7  # 1970-01-01 was a Thursday
        own = (day + 3) % 7
        weekend = own >= 5
        levels = [
            ("same weekday", weekday == own, p["weekly_days"]),
            (
                "weekend days" if weekend else "working days",
                (weekday >= 5) == weekend,
                p["min_days"],
            ),
        ]
        if not weekend:  # quieter weekends only make a working day's judgement more cautious
            levels.append(("every day", np.ones(len(weekday), dtype=bool), p["min_days"]))
        for basis, chosen, least in levels:
            if chosen.sum() >= max(least, 1):
                return _spread(expected[chosen], basis, int(chosen.sum()), 0, p["quantile"])
        others = self.complete.copy()
        others[hours] = False
        if weekend:  # never judged against working days
            others &= (self.day + 3) % 7 >= 5
        if not others.any():
            return None
        samples = hourly[others] * share.sum()
        days = len(set(self.day[others].tolist()))
        return _spread(samples, "any hour", days, int(others.sum()), p["quantile"])


def _spread(samples: np.ndarray, basis: str, days: int, hours: int, quantile: float) -> Usual:
    """The low, median and high of ``samples``."""
    return Usual(
        low=float(np.quantile(samples, quantile, method="lower")),
        median=float(np.median(samples)),
        high=float(np.quantile(samples, 1 - quantile, method="higher")),
        days=days,
        basis=basis,
        hours=hours,
    )


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
