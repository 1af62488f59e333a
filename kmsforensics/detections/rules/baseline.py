"""Baseline (new-term) rules: D02, D11, D12, D14, D18, D24, D25.

First-seen secret, address, agent, API and discovery call; off-hours work; impossible
travel.

The baseline is everything before the window under investigation
(``kf.detect(..., window_start=...)``; default: the first ``baseline_days``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context, flag, is_address
from ..findings import bursts, label
from ..newterms import NewTerm
from ..registry import Params, duration, rule
from .common import (
    AAP_CHANGES,
    KEY_DESTRUCTION,
    KEY_POLICY,
    RAM_CHANGES,
    SECRET_TAMPERING,
    TRAIL_TAMPERING,
    names,
    who_from,
)
from .facets import text

HUMAN = ("ram-user", "account", "cloudsso-user")


def _secret_reads(ctx: Context, p: Params) -> pd.DataFrame:
    act = ctx.act
    return ctx.rows(ctx.action_is("GetSecretValue") & ctx.ok & act["secret_name"].notna())


@rule(
    "D02",
    "First-time secret access by a principal",
    severity="medium",
    technique="T1555.006",
    kind="baseline",
    sources=("kms", "actiontrail"),
    new_terms=[
        NewTerm(
            _secret_reads,
            "principal",
            ("account_id", "secret_name"),
            "read of",
            known_subjects_only=False,
            prevalence="medium",
        )
    ],
)
def first_secret(found: pd.DataFrame, p: Params) -> pd.DataFrame:
    """A principal reads a secret it never read before the window.

    Principals are roles (not their sessions), users, AAPs and accounts. A principal
    with no history at all counts too: its every secret is new. Low when other
    principals read that secret before the window; medium when none did.

    Reads
    -----
    ``action`` (GetSecretValue), ``success``, ``principal_id``, ``secret_name``.

    False positives
    ---------------
    New deployments; a newly created secret (look for CreateSecret just before).
    """
    return found


def _addressed(ctx: Context, p: Params) -> pd.DataFrame:
    """D11's rows: each with its subject (a long-term key, or a principal) and where."""
    act = ctx.act
    addressed = is_address(act["client_ip"])
    rows = ctx.rows(addressed)
    session_key = flag(rows["access_key_id"], lambda k: str(k).startswith(("STS.", "KAAP.")))
    long_term = rows["credential"].notna() & ~session_key
    person = rows["identity_type"].isin(HUMAN)
    exact = (long_term | person).to_numpy()
    rows["subject"] = rows["credential"].where(long_term, rows["principal"])
    rows["where"] = np.where(
        exact, rows["client_ip"].astype(object).to_numpy(), ctx.network[addressed].to_numpy()
    )
    return rows


@dataclass(frozen=True)
class NewAddressParams(Params):
    """D11's parameters."""

    follow: str = duration("72h")
    follow_most: int = 200


@rule(
    "D11",
    "New source address for a principal or long-term key",
    severity="medium",
    technique="T1078.004",
    kind="baseline",
    sources=("kms", "actiontrail"),
    params=NewAddressParams,
    new_terms=[NewTerm(_addressed, "subject", "where", "use from", prevalence="high", follow=True)],
)
def new_address(found: pd.DataFrame, p: NewAddressParams) -> pd.DataFrame:
    """A long-term AccessKey from an address it never used, or a principal from a new /24.

    Long-term keys (not ``STS.`` session keys) and people are compared address by
    address; roles and AAPs (workloads) by network (``/24``, ``/48`` for IPv6), which
    absorbs autoscaling noise. Only subjects with history before the window are
    compared. Weighed by prevalence: low when another subject used that address or
    network before the window (the office NAT, the VPN), high when it is new to the
    organisation. The subject's later calls from the new address or network, up to
    ``follow`` after the first, are in the evidence (the earliest ``follow_most`` of
    them; the summary and ``details["later_uses"]`` count them all).

    Reads
    -----
    ``access_key_id``, ``principal_id``, ``client_ip``, ``time``.

    False positives
    ---------------
    Autoscaling into new subnets, NAT or office egress changes, new CI runners.
    """
    return found


def _agents(ctx: Context, p: Params) -> pd.DataFrame:
    has = ctx.act["user_agent"].notna()
    return ctx.rows(has).assign(agent=ctx.agent_family[has].to_numpy())


def _located(column: str) -> Any:
    def rows(ctx: Context, p: Params) -> pd.DataFrame:
        located = ctx.rows(is_address(ctx.act["client_ip"]))
        geo = ctx.geo.lookup(located["client_ip"].astype(object))  # type: ignore[union-attr]
        return located.assign(**{column: geo[column].astype(object).to_numpy()})

    return rows


@rule(
    "D12",
    "New user agent, ASN or country for a principal",
    severity="medium",
    technique="T1078.004",
    kind="baseline",
    sources=("kms", "actiontrail"),
    needs_geo="partial",
    new_terms=[
        NewTerm(_agents, "principal", "agent", "agent", prevalence="medium"),
        NewTerm(_located("asn"), "principal", "asn", "asn", prevalence="high", geo=True),
        NewTerm(
            _located("country"), "principal", "country", "country", prevalence="high", geo=True
        ),
    ],
)
def new_agent_or_network(found: pd.DataFrame, p: Params) -> pd.DataFrame:
    """A principal seen with a user-agent family, ASN or country new to it.

    The user-agent family (product names and platform without versions: an SDK
    upgrade is not new, the same CLI on Linux instead of macOS is) needs nothing more.
    Low when other principals used that family, ASN or country before the window;
    an ASN or country new to the organisation is high. ASN and country need a
    MaxMind-format database (``kf.detect(..., geoip=PATH)``); without one that half
    is skipped, with a note.

    Reads
    -----
    ``user_agent``, ``client_ip``, ``principal_id``.

    False positives
    ---------------
    New tools or SDKs, travel, a new VPN provider, geo database errors.
    """
    return found


@dataclass(frozen=True)
class TravelParams(Params):
    """D14: how far, how fast."""

    min_km: float = 500.0
    max_kmh: float = 1000.0


@rule(
    "D14",
    "Impossible travel",
    severity="high",
    technique="T1078.004",
    kind="baseline",
    sources=("kms", "actiontrail"),
    needs_geo="required",
    params=TravelParams,
)
def impossible_travel(ctx: Context, p: TravelParams) -> pd.DataFrame:
    """Consecutive events of a principal too far apart for the time between them.

    Needs a MaxMind City database (coordinates). Flags moves over ``min_km`` faster than
    ``max_kmh``. Without a database the rule is skipped, with a note.

    Reads
    -----
    ``client_ip`` (located), ``principal_id``, ``time``.

    False positives
    ---------------
    VPN split tunnels, mobile networks, geo database errors, cloud egress addresses
    located at a head office.
    """
    if ctx.geo is None:
        return pd.DataFrame()
    act = ctx.act
    rows = ctx.rows(is_address(act["client_ip"]))
    geo = ctx.geo.lookup(rows["client_ip"].astype(object))
    rows["lat"] = pd.to_numeric(geo["latitude"], errors="coerce").to_numpy()
    rows["lon"] = pd.to_numeric(geo["longitude"], errors="coerce").to_numpy()
    rows = rows.dropna(subset=["lat", "lon", "principal"]).sort_values(
        ["principal", "time"], kind="stable"
    )
    same = rows["principal"].eq(rows["principal"].shift())
    km = _haversine(rows["lat"].shift(), rows["lon"].shift(), rows["lat"], rows["lon"])
    hours = (rows["time"] - rows["time"].shift()).dt.total_seconds() / 3600
    speed = km / hours.where(hours > 0, 1 / 3600)
    jump = same & (km > p["min_km"]) & (speed > p["max_kmh"])
    pairs = jump | jump.shift(-1, fill_value=False)
    hit = rows[pairs.to_numpy()]
    incident = bursts(hit["time"], hit["principal"], pd.Timedelta(hours=1))
    return label(
        hit,
        incident,
        hit["principal"],
        lambda g: (
            f"{g['principal'].iloc[0]} seen at {names(g['client_ip'])} "
            f"{int(km.loc[g.index].max())} km apart within "
            f"{(g['time'].max() - g['time'].min()).total_seconds() / 60:.0f} min"
        ),
        actor=hit["actor"],
    )


def _haversine(lat1: pd.Series, lon1: pd.Series, lat2: pd.Series, lon2: pd.Series) -> pd.Series:
    y1, x1, y2, x2 = (np.radians(v.astype(float).to_numpy()) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((y2 - y1) / 2) ** 2 + np.cos(y1) * np.cos(y2) * np.sin((x2 - x1) / 2) ** 2
    return pd.Series(2 * 6371.0 * np.arcsin(np.sqrt(a)), index=lat2.index).fillna(0.0)


def _caller_checks(ctx: Context, p: Params) -> pd.DataFrame:
    mask = ctx.action_is("GetCallerIdentity") & ctx.ok
    return ctx.rows(mask).assign(net=ctx.network[mask].to_numpy())


@rule(
    "D18",
    "Caller-identity check from a new place",
    severity="medium",
    technique="T1087.004",
    kind="baseline",
    sources=("actiontrail",),
    new_terms=[
        NewTerm(
            _caller_checks,
            "principal",
            "net",
            "GetCallerIdentity from",
            known_subjects_only=False,
            prevalence="high",
        )
    ],
)
def caller_identity(found: pd.DataFrame, p: Params) -> pd.DataFrame:
    """GetCallerIdentity by a principal from a network it never called it from.

    Typically the first call made with a stolen key (TruffleHog- and Pacu-style tools).
    Low when others called from that network before the window (the office, the VPN);
    high from a network new to the organisation.

    Reads
    -----
    ActionTrail ``eventName`` (GetCallerIdentity), ``errorCode``, ``userIdentity``,
    ``sourceIpAddress``.

    False positives
    ---------------
    SDK credential checks at start-up on new hosts; ``aliyun configure``.
    """
    return found


SENSITIVE = (
    "GetSecretValue",
    "AssumeRole",
    "ConsoleSignin",
    "DisableKey",
    "SetDeletionProtection",
    "ImportKeyMaterial",
    *KEY_DESTRUCTION,
    *KEY_POLICY,
    *AAP_CHANGES,
    *SECRET_TAMPERING,
    *RAM_CHANGES,
    *TRAIL_TAMPERING,
)


@dataclass(frozen=True)
class OffHoursParams(Params):
    """D24: the share of baseline activity that makes a person's hours, and defaults."""

    coverage: float = 0.95
    working_hours: tuple[int, int] = (8, 20)
    min_history: int = 20
    min_days: int = 3


def working_window(counts: np.ndarray, coverage: float) -> set[int]:
    """Return the shortest contiguous span of hours holding ``coverage`` of the activity.

    The activity per hour is smoothed with its neighbours first; the span may run
    round midnight. A lunch break stays inside the span:

    >>> day = np.zeros(24); day[[9, 10, 11, 13, 14, 15, 16, 17]] = 10
    >>> sorted(working_window(day, 0.95))
    [8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    """
    smooth = counts + 0.5 * (np.roll(counts, 1) + np.roll(counts, -1))
    total = smooth.sum()
    if total <= 0:
        return set()
    doubled = np.concatenate([smooth, smooth])
    for length in range(1, 25):
        sums = np.convolve(doubled, np.ones(length), mode="valid")[:24]
        best = int(np.argmax(sums))
        if sums[best] >= coverage * total:
            return {(best + i) % 24 for i in range(length)}
    return set(range(24))


@rule(
    "D24",
    "Off-hours sensitive activity by a person",
    severity="low",
    technique="T1078.004",
    kind="baseline",
    sources=("kms", "actiontrail"),
    params=OffHoursParams,
)
def off_hours(ctx: Context, p: OffHoursParams) -> pd.DataFrame:
    """Sensitive actions by people outside the hours they usually work.

    A person's usual hours (in the organisation's ``timezone``) are the shortest
    contiguous span of hours (round midnight if need be) that covers ``coverage`` of
    their baseline activity, counted per hour and smoothed with the neighbouring hours
    (a lunch break or a quiet hour does not split the day); with fewer than
    ``min_history`` baseline events or fewer than ``min_days`` baseline days,
    ``working_hours`` on weekdays. Service identities run around the clock and are
    left out.

    Reads
    -----
    ``identity_type``, ``action``, ``time``, ``principal_id``.

    False positives
    ---------------
    On-call work, teams in other time zones, jobs running under a person's key.
    """
    act = ctx.act
    human = act["identity_type"].astype(object).isin(HUMAN)
    rows = ctx.rows(human)
    if not len(rows):
        return rows
    local = rows["time"].dt.tz_convert(ctx.timezone)
    rows["hour"] = local.dt.hour.to_numpy()
    rows["weekday"] = local.dt.day_of_week.to_numpy()
    history = rows[rows["time"] < ctx.baseline_end]
    usual: dict[Any, set[int]] = {}
    days = history["time"].dt.tz_convert(ctx.timezone).dt.date
    for principal, group in history.groupby("principal"):
        if len(group) < p["min_history"] or days.loc[group.index].nunique() < p["min_days"]:
            continue
        counts = np.bincount(group["hour"].to_numpy(dtype=np.int64), minlength=24)
        usual[principal] = working_window(counts, p["coverage"])
    start, end = p["working_hours"]
    default = set(range(start, end))
    inside = [
        h in usual[pr] if pr in usual else (h in default and wd < 5)
        for pr, h, wd in zip(rows["principal"], rows["hour"], rows["weekday"], strict=True)
    ]
    flagged = rows[
        ~np.asarray(inside, dtype=bool)
        & rows["action"].isin(SENSITIVE).to_numpy()
        & (rows["time"] >= ctx.baseline_end).to_numpy()
    ]
    incident = bursts(flagged["time"], flagged["principal"], pd.Timedelta(hours=2))
    return label(
        flagged,
        incident,
        flagged["principal"],
        lambda g: (
            f"{who_from(g)}: {names(g['action'])} at "
            f"{names(g['time'].dt.tz_convert(ctx.timezone).dt.strftime('%a %H:%M'), 3)} "
            f"({ctx.timezone}), outside their usual hours"
        ),
        actor=flagged["actor"],
    )


def _calls(ctx: Context, p: Params) -> pd.DataFrame:
    return ctx.rows(ctx.act["action"].notna())


@rule(
    "D25",
    "First-seen API for a principal",
    severity="low",
    technique="T1078.004",
    kind="baseline",
    sources=("kms", "actiontrail"),
    new_terms=[NewTerm(_calls, "principal", ("service", "action"), "call of", prevalence="medium")],
)
def first_api(found: pd.DataFrame, p: Params) -> pd.DataFrame:
    """A principal with history calls an API it never called before the window.

    Medium for write and administrative APIs (anything not List/Describe/Get) that no
    other principal called before the window; low otherwise.

    Reads
    -----
    ``principal_id``, ``service``, ``action``, ``time``.

    False positives
    ---------------
    New application features, the first run after a release, new staff.
    """
    if len(found):
        write = ~found["action"].astype(object).astype(str).str.match(r"^(List|Describe|Get)")
        found["severity"] = np.where(write & (found["severity"] == "medium"), "medium", "low")
    return found


# -- the dask facets: which rows each rule reads, day by day ----------------------------


@off_hours.select
def _people(ctx: Context, p: Params) -> pd.Series:
    """D24: people's baseline, and their sensitive calls."""
    sensitive = ctx.action_is(*SENSITIVE) | (ctx.act["time"] < ctx.baseline_end)
    return text(ctx, "identity_type").isin(HUMAN) & sensitive


@impossible_travel.select
def _moves(ctx: Context, p: Any) -> pd.Series:
    """D14: each principal's first and last located row, and those around a move.

    A jump is always between two rows on either side of a change of place.
    """
    act = ctx.act
    keep = pd.Series(False, index=act.index)
    if ctx.geo is None:
        return keep
    rows = ctx.rows(is_address(act["client_ip"]))
    geo = ctx.geo.lookup(rows["client_ip"].astype(object))
    rows["lat"] = pd.to_numeric(geo["latitude"], errors="coerce").to_numpy()
    rows["lon"] = pd.to_numeric(geo["longitude"], errors="coerce").to_numpy()
    rows = rows.dropna(subset=["lat", "lon", "principal"]).sort_values(
        ["principal", "time"], kind="stable"
    )
    place = rows["lat"].astype(str) + "," + rows["lon"].astype(str)
    who = rows["principal"]
    first = who.ne(who.shift())
    last = who.ne(who.shift(-1))
    moved = place.ne(place.shift()) | place.ne(place.shift(-1))
    keep.loc[rows.index[(first | last | moved).to_numpy()]] = True
    return keep


def _known_addresses(days: list[pd.DataFrame], p: Params) -> dict[str, Any]:
    """D11: the (subject, address or network) pairs and the subjects of the baseline."""
    seen = pd.concat(days, ignore_index=True).drop_duplicates()
    return {
        "pairs": set(zip(seen["subject"], seen["where"], strict=True)),
        "subjects": set(seen["subject"]),
    }


@new_address.learn(_known_addresses)
def _addresses_learn(ctx: Context, p: Params) -> pd.DataFrame:
    """D11, baseline days: the pairs used before the window."""
    rows = _addressed(ctx, p)
    rows = rows[(rows["time"] < ctx.baseline_end).to_numpy()]
    return rows[["subject", "where"]].dropna().astype(object).drop_duplicates()


@new_address.select
def _new_addresses(ctx: Context, p: Params) -> pd.Series:
    """D11: the window's rows of known subjects from pairs the baseline did not have.

    They are the later rows a new address's finding takes (its first sightings are
    reduced day by day as for every first-seen rule).
    """
    keep = pd.Series(False, index=ctx.act.index)
    rows = _addressed(ctx, p)
    rows = rows[(rows["time"] >= ctx.baseline_end).to_numpy()]
    known = ctx.facts.get("D11")
    if known is not None:
        pairs = pd.MultiIndex.from_arrays(
            [rows["subject"].astype(object), rows["where"].astype(object)]
        )
        fresh = ~pairs.isin(list(known["pairs"]))
        rows = rows[fresh & rows["subject"].isin(list(known["subjects"])).to_numpy()]
    keep.loc[rows.index] = True
    return keep
