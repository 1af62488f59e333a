"""Threshold and window rules: D01, D03, D13, D15, D16, D17.

Mass retrieval, bursts, failures, enumeration.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context, flag, is_address, per_value
from ..findings import bursts, label, nanoseconds, over_threshold
from ..registry import rule
from .common import DATA_KEY_OPS, from_actiontrail, from_kms_log, names, who_from

AUTH_ERRORS = (
    r"^(NoPermission|Forbidden|Forbbiden|InvalidAccessKeyId|InvalidSecurityToken|"
    r"SignatureDoesNotMatch|InvalidAuthorization|AccessForbidden|NotAuthorized)"
)


def _windowed(
    rows: pd.DataFrame, by: str, window: str, hit: pd.Series, entity: Any, summary: Any
) -> pd.DataFrame:
    """Label the rows in flagged windows, one incident per subject and burst."""
    flagged = rows[hit]
    incident = bursts(flagged["time"], flagged[by], pd.Timedelta(window))
    return label(flagged, incident, entity, summary, actor=flagged["actor"])


def daily_first_reads(ctx: Context, reads: pd.Series) -> pd.Series:
    """The first read of each (origin, network, secret) in each UTC day (D01's long horizon).

    Decided within one day, so the dask engine selects the same rows day by day.
    """
    act = ctx.act
    frame = pd.DataFrame(
        {
            "origin": ctx.origin[reads].astype(object).to_numpy(),
            "net": ctx.network[reads].astype(object).to_numpy(),
            "account": act.loc[reads, "account_id"].astype(object).to_numpy(),
            "secret": act.loc[reads, "secret_name"].astype(object).to_numpy(),
            "day": nanoseconds(act.loc[reads, "time"]) // _DAY,
        },
        index=act.index[reads],
    ).fillna("")
    first = pd.Series(False, index=act.index)
    first.loc[frame.index[~frame.duplicated().to_numpy()]] = True
    return first


_DAY = 86_400 * 10**9


def _long_horizon(ctx: Context, reads: pd.DataFrame, p: dict[str, Any]) -> pd.DataFrame:
    """Label the reads of (origin, network) pairs that read many secrets over days.

    Many: the distinct secrets over ``horizon_days`` reach ``long_threshold`` and
    ``long_multiplier`` times the origin's baseline daily high. ``reads`` are the first
    reads of each (origin, network, secret, day).
    """
    if not len(reads):
        return reads
    frame = reads.assign(
        net=ctx.network.loc[reads.index].astype(object).fillna("").to_numpy(),
        day=nanoseconds(reads["time"]) // _DAY,
        pair=reads["origin"].astype(str) + "|" + ctx.network.loc[reads.index].astype(str),
    )
    per_day = frame.groupby(["pair", "day"])["secret"].nunique()
    early = frame[frame["time"] < ctx.baseline_end]
    daily = early.groupby(["origin", "net", "day"])["secret"].nunique()
    high = daily.groupby(level="origin").max()
    limit_of = frame["origin"].map(high).fillna(0.0) * p["long_multiplier"]
    limit_of = np.maximum(limit_of, p["long_threshold"])
    flagged: set[tuple[str, int]] = set()
    span = int(p["horizon_days"])
    for pair, group in frame.groupby("pair", sort=False):
        if per_day.loc[pair].sum() < p["long_threshold"]:
            continue  # cannot reach it on any span
        limit = float(limit_of.loc[group.index].iloc[0])
        days = sorted(group["day"].unique())
        for last in days:
            window = group[(group["day"] > last - span) & (group["day"] <= last)]
            if window["secret"].nunique() >= limit:
                flagged.update((str(pair), int(d)) for d in window["day"].unique())
    hit = [(pr, int(d)) in flagged for pr, d in zip(frame["pair"], frame["day"], strict=True)]
    out = frame[np.asarray(hit, dtype=bool)]
    incident = bursts(out["time"], out["pair"], pd.Timedelta(days=span))
    return label(
        out,
        incident,
        out["who"],
        lambda g: (
            f"{g['secret'].nunique()} distinct secrets read over "
            f"{(g['time'].max() - g['time'].min()).total_seconds() / 3600:.0f} h from "
            f"{names(g['net'], 2)} by origin {g['origin'].iloc[0]} through "
            f"{g['who'].nunique()} credentials ({who_from(g)}); its baseline daily high is "
            f"{high.get(g['origin'].iloc[0], 0):.0f}"
        ),
        actor=out["actor"],
    )


@rule(
    "D01",
    "Secret mass retrieval",
    severity="high",
    technique="T1555.006",
    kind="threshold",
    sources=("kms", "actiontrail"),
    threshold=20,
    window="10min",
    multiplier=3.0,
    min_distinct=10,
    horizon_days=2,
    long_threshold=20,
    long_multiplier=3.0,
)
def secret_mass_retrieval(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """One credential reads many distinct secrets within ``window``, or a lineage over days.

    The burst: ``threshold`` distinct secrets in ``window`` by one credential, or, for
    a principal with a baseline, more than ``multiplier`` times the most it read in one
    window before (and at least ``min_distinct``). The long horizon: the distinct
    secrets read by one lineage origin (through all its role sessions and renewed STS
    keys) from one network over ``horizon_days`` UTC days reach ``long_threshold`` and
    ``long_multiplier`` times that origin's highest daily count (per network) in the
    baseline; its evidence is the first read of each secret each day. Both logs count:
    GetSecretValue through a KMS instance (KMS log) and through the OpenAPI
    (ActionTrail). A ListSecrets by the same credential is mentioned in the summary.

    Reads
    -----
    ``action`` (GetSecretValue, ListSecrets), ``success``, ``access_key_id``,
    ``principal_id``, ``secret_name``, ``time``; the lineage of each key.

    False positives
    ---------------
    Application start-up and configuration loaders, rotation functions, CI/CD deploys,
    backup or migration tools, configuration-centre AAPs; a new application reading its
    secrets for the first days (the long horizon).
    """
    act = ctx.act
    mask = ctx.action_is("GetSecretValue") & ctx.ok & act["secret_name"].notna()
    reads = ctx.rows(mask)
    if not len(reads):
        return reads
    reads["secret"] = reads.groupby(
        ["account_id", "secret_name"], observed=True, sort=False
    ).ngroup()
    width = pd.Timedelta(p["window"]).value
    history = reads[reads["time"] < ctx.baseline_end]
    usual = (
        history.assign(bin=nanoseconds(history["time"]) // width)
        .groupby(["principal", "bin"])["secret"]
        .nunique()
        .groupby(level="principal")
        .max()
    )
    known = reads["principal"].map(usual)
    relative = np.maximum(p["min_distinct"], np.floor(p["multiplier"] * known) + 1)
    limit = np.where(known.notna(), np.minimum(p["threshold"], relative), p["threshold"])
    hit = over_threshold(reads, ["who"], p["window"], limit, distinct="secret")
    listed = set(ctx.rows(ctx.action_is("ListSecrets"))["who"].dropna())
    burst = _windowed(
        reads,
        "who",
        p["window"],
        hit,
        reads["who"][hit],
        lambda g: (
            f"{g['secret'].nunique()} distinct secrets read in {len(g)} calls by "
            f"{who_from(g)}"
            + (
                f" (usually at most {usual.get(g['principal'].iloc[0]):.0f} per {p['window']})"
                if g["principal"].iloc[0] in usual.index
                else ""
            )
            + ("; ListSecrets by the same credential" if g["who"].iloc[0] in listed else "")
        ),
    )
    first = daily_first_reads(ctx, mask)
    slow = _long_horizon(ctx, reads[first.loc[reads.index].to_numpy()], p)
    if len(slow) and len(burst):
        slow["incident"] = slow["incident"] + int(burst["incident"].max()) + 1
    return pd.concat([burst, slow], ignore_index=True) if len(slow) else burst


@rule(
    "D03",
    "Decrypt or GenerateDataKey burst versus baseline",
    severity="medium",
    technique="T1555.006, T1530",
    kind="baseline",
    sources=("kms", "actiontrail"),
    bin="5min",
    multiplier=10.0,
    z=6.0,
    min_count=50,
)
def data_key_burst(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """A principal's Decrypt / GenerateDataKey calls on one key far above its baseline.

    Calls are counted per principal, key and ``bin``; a bin is a burst when it has at
    least ``min_count`` calls, ``multiplier`` times the baseline median of that
    principal and key, and a robust z-score (median and MAD) above ``z``. Principals
    with no baseline for the key are left to D02/D25.

    Reads
    -----
    ``action`` (Decrypt, GenerateDataKey and their Advance/Pair variants), ``key_id``,
    ``principal_id``, ``time``.

    False positives
    ---------------
    Batch jobs, re-encryption or migration, load tests, cache flushes, autoscaling.
    """
    act = ctx.act
    rows = ctx.rows(ctx.action_is(*DATA_KEY_OPS) & act["key_id"].notna())
    if not len(rows):
        return rows
    width = pd.Timedelta(p["bin"]).value
    rows["bin"] = nanoseconds(rows["time"]) // width
    rows["key"] = rows["key_id"].astype(object)
    counts: pd.DataFrame = (
        rows.groupby(["principal", "key", "bin"], observed=True).size().rename("n").reset_index()
    )
    before = counts["bin"] < ctx.baseline_end.value // width
    base = counts[before].groupby(["principal", "key"])["n"]
    stats = pd.DataFrame({"median": base.median(), "mad": base.apply(_mad)}).reset_index()
    now = counts[~before].merge(stats, on=["principal", "key"], how="inner")
    scale = 1.4826 * now["mad"].where(now["mad"] > 0, np.nan)
    robust = ((now["n"] - now["median"]) / scale).fillna(np.inf)
    burst = now[
        (now["n"] >= p["min_count"])
        & (now["n"] >= p["multiplier"] * now["median"])
        & (robust > p["z"])
    ]
    keys = set(zip(burst["principal"], burst["key"], burst["bin"], strict=True))
    hit = pd.Series(
        [
            (a, b, c) in keys
            for a, b, c in zip(rows["principal"], rows["key"], rows["bin"], strict=True)
        ],
        index=rows.index,
    )
    rows["subject"] = rows["principal"].astype(object) + "|" + rows["key"]
    medians = dict(
        zip(zip(stats["principal"], stats["key"], strict=True), stats["median"], strict=True)
    )
    return _windowed(
        rows,
        "subject",
        p["bin"],
        hit,
        "key:" + rows["key"][hit],
        lambda g: (
            f"{len(g)} {names(g['action'])} calls on {g['key'].iloc[0]} by "
            f"{who_from(g)}; baseline median "
            f"{medians.get((g['principal'].iloc[0], g['key'].iloc[0]), 0):g} per {p['bin']}"
        ),
    )


def _block(ip: Any) -> Any:
    """The ``/16`` of an IPv4 address (the address itself otherwise)."""
    parts = str(ip).split(".")
    return ".".join(parts[:2]) if len(parts) == 4 else str(ip)


def _mad(values: pd.Series) -> float:
    return float((values - values.median()).abs().median())


@rule(
    "D13",
    "One access key used from many addresses",
    severity="medium",
    technique="T1078.004, T1550.001",
    kind="threshold",
    sources=("kms", "actiontrail"),
    window="30min",
    min_ips=3,
    min_networks=2,
)
def key_from_many_ips(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """One credential used from ``min_ips`` addresses in ``min_networks`` networks.

    Networks are ASNs when a geo database is given, ``/16`` blocks otherwise. Host names
    and ``Internal`` are not addresses and do not count.

    Reads
    -----
    ``access_key_id``, ``client_ip``, ``time``.

    False positives
    ---------------
    Multi-region applications sharing one AccessKey, NAT pools, infrastructure-as-code
    tools.
    """
    act = ctx.act
    rows = ctx.rows(act["access_key_id"].notna() & is_address(act["client_ip"]))
    if not len(rows):
        return rows
    rows["ip"] = rows["client_ip"]
    if ctx.geo is not None:
        rows["net"] = ctx.geo.lookup(rows["client_ip"].astype(object))["asn"].to_numpy()
    else:
        rows["net"] = per_value(rows["client_ip"], _block).to_numpy()
    many = over_threshold(rows, ["credential"], p["window"], p["min_ips"], distinct="ip")
    spread = over_threshold(rows, ["credential"], p["window"], p["min_networks"], distinct="net")
    return _windowed(
        rows,
        "credential",
        p["window"],
        many & spread,
        rows["credential"][many & spread],
        lambda g: (
            f"{g['credential'].iloc[0]} used from {g['ip'].nunique()} addresses "
            f"({names(g['ip'])}) in {g['net'].nunique()} networks"
        ),
    )


def aap_networks(ctx: Context) -> set[str]:
    """Networks any AAP called from successfully before the window (D15).

    On the dask engine they are learned from the baseline days first
    (``ctx.facts["D15"]``).
    """
    learned = ctx.facts.get("D15")
    if learned is not None:
        return set(learned)
    act = ctx.act
    mask = (
        from_kms_log(ctx)
        & ctx.ok
        & (act["identity_type"].astype(object) == "aap")
        & (act["time"] < ctx.baseline_end)
    )
    return {str(n) for n in ctx.network[mask].dropna().unique()}


def client_key_failures(ctx: Context) -> pd.Series:
    """KMS-log calls with a client key no AAP owns, or rejected (401/403)."""
    act = ctx.act
    aap = act["identity_type"].astype(object) == "aap"
    missing = act["account_id"].isna() | act["principal_id"].isna()
    kaap = flag(act["access_key_id"], lambda k: str(k).startswith("KAAP."))
    rejected = ctx.status_code.isin([401, 403])
    return from_kms_log(ctx) & ((aap & missing) | (kaap & rejected))


def outside_successes(ctx: Context) -> pd.Series:
    """Successful client-key calls from networks no AAP used before the window."""
    act = ctx.act
    kaap = flag(act["access_key_id"], lambda k: str(k).startswith("KAAP."))
    known = aap_networks(ctx)
    return from_kms_log(ctx) & kaap & ctx.ok & ~ctx.network.isin(known)


@rule(
    "D15",
    "AAP not found, or invalid client key",
    severity="high",
    technique="T1078.004, T1110",
    kind="threshold",
    sources=("kms",),
    threshold=5,
    window="10min",
    min_failures=2,
    sequence="15min",
)
def aap_not_found(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """Client keys that no AAP owns, or rejected (401/403): many, from outside, or then a success.

    Flagged: ``threshold`` such calls from one address within ``window``; any such call
    from a network no AAP called from successfully before the window; and
    ``min_failures`` failures of one client key from one address followed, within
    ``sequence``, by a success of that key from that address outside the AAPs' known
    networks (a stolen key being made to work). An AAP-identity row with an empty
    ``account_id`` or ``principal_id`` is the documented "AAP not found".

    Reads
    -----
    KMS-log ``identity_type``, ``account_id``, ``principal_id``, ``access_key_id``,
    ``status_code``, ``client_ip``.

    False positives
    ---------------
    Applications still running with a rotated-out or expired client key; clock skew
    (a 400, not counted); a new application subnet (outside the known networks).
    """
    rows = ctx.rows(client_key_failures(ctx))
    if not len(rows):
        return rows
    known = aap_networks(ctx)
    outside = ~ctx.network.loc[rows.index].isin(known).to_numpy()
    hit = over_threshold(rows, ["client_ip"], p["window"], p["threshold"]) | outside
    found = rows[hit.to_numpy()]
    successes = ctx.rows(outside_successes(ctx))
    if len(successes):
        pair = rows["access_key_id"].astype(str) + "|" + rows["client_ip"].astype(str)
        times = {k: np.sort(nanoseconds(g["time"])) for k, g in rows.groupby(pair)}
        span = pd.Timedelta(p["sequence"]).value
        after = []
        for key, moment in zip(
            successes["access_key_id"].astype(str) + "|" + successes["client_ip"].astype(str),
            nanoseconds(successes["time"]),
            strict=True,
        ):
            before = times.get(key)
            count = (
                0 if before is None else int(((before < moment) & (before >= moment - span)).sum())
            )
            after.append(count >= p["min_failures"])
        chosen = successes[np.asarray(after, dtype=bool)]
        if len(chosen):
            keys = set(chosen["access_key_id"].astype(str) + "|" + chosen["client_ip"].astype(str))
            found = pd.concat([found, rows[pair.isin(keys).to_numpy()], chosen])
            found = found[~found.index.duplicated()].sort_values("time", kind="stable")
    incident = bursts(found["time"], found["client_ip"], pd.Timedelta(p["sequence"]))
    return label(
        found,
        incident,
        "ip:" + found["client_ip"].astype(str),
        lambda g: (
            f"{int((~g['ok']).sum())} calls with {g['access_key_id'].nunique()} unknown or "
            f"rejected client keys from {names(g['client_ip'])} "
            f"({names(g['error_message'])})"
            + (f", then {int(g['ok'].sum())} successful calls" if g["ok"].any() else "")
        ),
        actor=found["actor"],
    )


@rule(
    "D16",
    "Authorisation or authentication failure burst",
    severity="medium",
    technique="T1110, T1526",
    kind="threshold",
    sources=("actiontrail", "kms"),
    threshold=6,
    window="30min",
)
def auth_failures(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """``threshold`` or more denied calls from one account and address within ``window``.

    ActionTrail error codes of Alibaba's "unauthorized API calls" alert
    (NoPermission, Forbidden, InvalidAccessKeyId ...) and KMS-log 401/403. High when the
    failures span several APIs or credentials (enumeration or guessing rather than
    one broken application).

    Reads
    -----
    ActionTrail ``errorCode``; KMS-log ``status_code``; ``account_id``, ``client_ip``,
    ``action``, ``access_key_id``.

    False positives
    ---------------
    Mis-scoped new deployments, a policy change that removed rights, health checks.
    """
    act = ctx.act
    denied = re.compile(AUTH_ERRORS)
    at_denied = from_actiontrail(ctx) & flag(act["error_code"], lambda c: denied.match(str(c)))
    kms_denied = from_kms_log(ctx) & ctx.status_code.isin([401, 403])
    rows = ctx.rows(at_denied | kms_denied)
    if not len(rows):
        return rows
    rows["where"] = (
        rows["account_id"].astype(object).fillna("?").astype(str)
        + "|"
        + rows["client_ip"].astype(str)
    )
    hit = over_threshold(rows, ["where"], p["window"], p["threshold"])
    flagged = _windowed(
        rows,
        "where",
        p["window"],
        hit,
        "ip:" + rows["client_ip"].astype(str)[hit],
        lambda g: (
            f"{len(g)} denied calls ({names(g['error_code'])}) on "
            f"{g['action'].nunique()} APIs with {g['access_key_id'].nunique()} credentials "
            f"from {names(g['client_ip'])}"
        ),
    )
    if len(flagged):
        spread = flagged.groupby("incident")[["action", "access_key_id"]].nunique().max(axis=1)
        flagged["severity"] = flagged["incident"].map(spread > 1).map({True: "high", False: None})
    return flagged


@rule(
    "D17",
    "Enumeration burst (discovery)",
    severity="medium",
    technique="T1526, T1087.004, T1580",
    kind="threshold",
    sources=("actiontrail",),
    threshold=5,
    window="10min",
)
def enumeration(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """One credential calls ``threshold`` or more distinct List/Describe/Get APIs in ``window``.

    GetSecretValue is D01's and is not counted; console page loads (ConsoleOperation)
    and service identities are left out. Low when the same origin (lineage) and
    principal had such a burst before the window (a nightly Terraform plan, a scanner).

    Reads
    -----
    ActionTrail ``eventName``, ``eventType``, ``userIdentity``.

    False positives
    ---------------
    Inventory and CSPM scanners, Cloud Config; SDK start-up checks.
    """
    act = ctx.act
    mask = (
        from_actiontrail(ctx)
        & ctx.action_matches(r"^(List|Describe|Get)")
        & (act["action"] != "GetSecretValue")
        & (act["event_type"].astype(object) != "ConsoleOperation")
        & (act["identity_type"].astype(object) != "system")
    )
    rows = ctx.rows(mask)
    if not len(rows):
        return rows
    hit = over_threshold(rows, ["who"], p["window"], p["threshold"], distinct="action")
    rows["habit"] = rows["origin"].astype(str) + "|" + rows["principal"].astype(str)
    usual = set(rows.loc[hit.to_numpy() & (rows["time"] < ctx.baseline_end).to_numpy(), "habit"])
    found = _windowed(
        rows,
        "who",
        p["window"],
        hit,
        rows["who"][hit],
        lambda g: (
            f"{g['action'].nunique()} discovery APIs ({names(g['action'])}) in "
            f"{len(g)} calls by {who_from(g)}"
            + (
                "; the same origin and role did so before the window"
                if g["habit"].iloc[0] in usual
                else ""
            )
        ),
    )
    if len(found):
        found["severity"] = np.where(found["habit"].isin(usual), "low", None)
    return found
