"""Threshold and window rules: D01, D03, D13, D15, D16, D17.

Mass retrieval, bursts, failures, enumeration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...calls import count_calls
from ..context import Context, flag, is_address, per_value
from ..findings import bursts, label, nanoseconds, over_threshold
from ..registry import Params, duration, rule
from .common import DATA_KEY_OPS, from_actiontrail, from_kms_log, names, who_from
from .facets import dense_windows, text

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


def _long_horizon(ctx: Context, reads: pd.DataFrame, p: Any) -> pd.DataFrame:
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
    reachable = frame.groupby("pair")["secret"].nunique()  # over the whole case
    early = frame[frame["time"] < ctx.baseline_end]
    daily = early.groupby(["origin", "net", "day"])["secret"].nunique()
    high = daily.groupby(level="origin").max()
    limit_of = frame["origin"].map(high).fillna(0.0) * p["long_multiplier"]
    limit_of = np.maximum(limit_of, p["long_threshold"])
    flagged: set[tuple[str, int]] = set()
    span = int(p["horizon_days"])
    for pair, group in frame.groupby("pair", sort=False):
        if int(reachable[pair]) < p["long_threshold"]:
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


@dataclass(frozen=True)
class SecretMassRetrievalParams(Params):
    """D01's parameters."""

    threshold: int = 20
    window: str = duration("10min")
    multiplier: float = 3.0
    min_distinct: int = 10
    horizon_days: int = 2
    long_threshold: int = 20
    long_multiplier: float = 3.0


@rule(
    "D01",
    "Secret mass retrieval",
    severity="high",
    technique="T1555.006",
    kind="threshold",
    sources=("kms", "actiontrail"),
    params=SecretMassRetrievalParams,
)
def secret_mass_retrieval(ctx: Context, p: SecretMassRetrievalParams) -> pd.DataFrame:
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
            f"{g['secret'].nunique()} distinct secrets read in {count_calls(g)} calls by "
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
    if len(slow) and len(burst):  # a slow theft a burst already shows in full is one finding
        covered = slow.index.isin(burst.index)
        whole = pd.Series(covered, index=slow.index).groupby(slow["incident"]).transform("all")
        slow = slow[~whole.to_numpy()]
    if len(slow) and len(burst):
        slow["incident"] = slow["incident"] + int(burst["incident"].max()) + 1
    return pd.concat([burst, slow], ignore_index=True) if len(slow) else burst


@dataclass(frozen=True)
class DataKeyBurstParams(Params):
    """D03's parameters."""

    bin: str = duration("5min")
    multiplier: float = 10.0
    z: float = 6.0
    min_count: int = 50


@rule(
    "D03",
    "Decrypt or GenerateDataKey burst versus baseline",
    severity="medium",
    technique="T1555.006, T1530",
    kind="baseline",
    sources=("kms", "actiontrail"),
    params=DataKeyBurstParams,
)
def data_key_burst(ctx: Context, p: DataKeyBurstParams) -> pd.DataFrame:
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
    counts = count_calls(rows, ["principal", "key", "bin"]).rename("n").reset_index()
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
            f"{count_calls(g)} {names(g['action'])} calls on {g['key'].iloc[0]} by "
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


@dataclass(frozen=True)
class KeyFromManyIpsParams(Params):
    """D13's parameters."""

    window: str = duration("30min")
    min_ips: int = 3
    min_networks: int = 2


@rule(
    "D13",
    "One access key used from many addresses",
    severity="medium",
    technique="T1078.004, T1550.001",
    kind="threshold",
    sources=("kms", "actiontrail"),
    params=KeyFromManyIpsParams,
)
def key_from_many_ips(ctx: Context, p: KeyFromManyIpsParams) -> pd.DataFrame:
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


def aap_networks(ctx: Context) -> pd.DataFrame:
    """Each AAP's networks (``aap``, ``net``): where it called from successfully before the window.

    On the dask engine they are learned from the baseline days first
    (``ctx.facts["D15"]``).
    """
    learned = ctx.facts.get("D15")
    if learned is not None:
        return learned
    act = ctx.act
    mask = (
        from_kms_log(ctx)
        & ctx.ok
        & (act["identity_type"].astype(object) == "aap")
        & (act["time"] < ctx.baseline_end)
    )
    frame = pd.DataFrame(
        {"aap": _aap_of(ctx)[mask].to_numpy(), "net": ctx.network[mask].to_numpy()}
    )
    return frame.dropna().astype(object).drop_duplicates().reset_index(drop=True)


def _aap_of(ctx: Context) -> pd.Series:
    """The AAP of each row (``account/name``), NaN where none is named (AAP not found)."""
    act = ctx.act
    account, name = text(ctx, "account_id"), text(ctx, "principal_id")
    named = (act["identity_type"].astype(object) == "aap") & account.fillna("").ne("")
    named &= name.fillna("").ne("")
    return (account.astype(str) + "/" + name.astype(str)).where(named, np.nan)


def outside_aap_networks(ctx: Context) -> pd.Series:
    """Rows from outside their AAP's known networks (any AAP's, for rows naming none).

    An AAP with no history before the window, and a row whose AAP is not found, are
    compared with the networks of every AAP.
    """
    known = aap_networks(ctx)
    network = ctx.network.astype(object)
    anywhere = ~network.isin(set(known["net"]))
    aap = _aap_of(ctx)
    own = aap.isin(set(known["aap"])) & aap.notna()
    if not own.any():
        return anywhere
    pairs = pd.MultiIndex.from_arrays([aap[own].to_numpy(), network[own].to_numpy()])
    theirs = pd.MultiIndex.from_frame(known[["aap", "net"]])
    outside = anywhere.copy()
    outside[own] = ~pairs.isin(theirs)
    return outside


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
    return from_kms_log(ctx) & kaap & ctx.ok & outside_aap_networks(ctx)


@dataclass(frozen=True)
class AapNotFoundParams(Params):
    """D15's parameters."""

    threshold: int = 5
    window: str = duration("10min")
    min_failures: int = 2
    sequence: str = duration("15min")


@rule(
    "D15",
    "AAP not found, or invalid client key",
    severity="high",
    technique="T1078.004, T1110",
    kind="threshold",
    sources=("kms",),
    params=AapNotFoundParams,
)
def aap_not_found(ctx: Context, p: AapNotFoundParams) -> pd.DataFrame:
    """Client keys that no AAP owns, or rejected (401/403): many, from outside, or then a success.

    Flagged: ``threshold`` such calls from one address within ``window``; any such call
    from outside the AAP's known networks (where it called from successfully before
    the window; every AAP's for a row whose AAP is not found or has no history); and
    ``min_failures`` failures of one client key from one address followed, within
    ``sequence``, by a success of that key from that address outside its AAP's known
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
    outside = outside_aap_networks(ctx).loc[rows.index].to_numpy(dtype=bool)
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
            f"{count_calls(g[~g['ok']])} calls with {g['access_key_id'].nunique()} unknown "
            f"or rejected client keys from {names(g['client_ip'])} "
            f"({names(g['error_message'])})"
            + (f", then {count_calls(g[g['ok']])} successful calls" if g["ok"].any() else "")
        ),
        actor=found["actor"],
    )


@dataclass(frozen=True)
class AuthFailuresParams(Params):
    """D16's parameters."""

    threshold: int = 6
    window: str = duration("30min")
    min_failures: int = 2
    sequence: str = duration("15min")


def organisation_networks(ctx: Context) -> set[str]:
    """Networks (``/24``, ``/48``) of any row before the window (D16's known places).

    On the dask engine they are learned from the baseline days first
    (``ctx.facts["D16"]``).
    """
    learned = ctx.facts.get("D16")
    if learned is not None:
        return set(learned)
    early = (ctx.act["time"] < ctx.baseline_end).to_numpy()
    return {str(n) for n in ctx.network[early].dropna().unique()}


def _denied_calls(ctx: Context) -> pd.Series:
    """ActionTrail calls with an authorisation error code, KMS-log 401/403."""
    denied = re.compile(AUTH_ERRORS)
    at_denied = from_actiontrail(ctx) & flag(ctx.act["error_code"], lambda c: denied.match(str(c)))
    return at_denied | (from_kms_log(ctx) & ctx.status_code.isin([401, 403]))


def _key_successes_outside(ctx: Context) -> pd.Series:
    """Successful calls with an AccessKey (not a client key) from outside the known networks."""
    act = ctx.act
    keyed = act["access_key_id"].notna() & ~flag(
        act["access_key_id"], lambda k: str(k).startswith("KAAP.")
    )
    outside = ~ctx.network.isin(organisation_networks(ctx)) & ctx.network.notna()
    return keyed & ctx.ok & outside & ~_denied_calls(ctx)


def fail_then_succeed(
    failures: pd.DataFrame, successes: pd.DataFrame, least: int, span: str
) -> pd.DataFrame:
    """Successes preceded within ``span`` by ``least`` failures of their key and address.

    Returns those successes and the failures before them, by time.
    """
    if not len(failures) or not len(successes):
        return failures.iloc[:0]

    def pair(rows: pd.DataFrame) -> pd.Series:
        return rows["access_key_id"].astype(str) + "|" + rows["client_ip"].astype(str)

    width = pd.Timedelta(span).value
    failed = pair(failures)
    times = {k: np.sort(nanoseconds(g["time"])) for k, g in failures.groupby(failed)}
    chosen, before = [], np.zeros(len(failures), dtype=bool)
    stamps = nanoseconds(failures["time"])
    for key, moment in zip(pair(successes), nanoseconds(successes["time"]), strict=True):
        earlier = times.get(key)
        near = 0
        if earlier is not None:
            near = int(((earlier < moment) & (earlier >= moment - width)).sum())
        chosen.append(near >= least)
        if near >= least:
            before |= (failed.to_numpy() == key) & (stamps < moment) & (stamps >= moment - width)
    rows = pd.concat([failures[before], successes[np.asarray(chosen, dtype=bool)]])
    return rows.sort_values(["time", "evidence_id"], kind="stable")


@rule(
    "D16",
    "Authorisation or authentication failure burst",
    severity="medium",
    technique="T1110, T1526",
    kind="threshold",
    sources=("actiontrail", "kms"),
    params=AuthFailuresParams,
)
def auth_failures(ctx: Context, p: AuthFailuresParams) -> pd.DataFrame:
    """``threshold`` denied calls from one account and address in ``window``, or fail-then-succeed.

    ActionTrail error codes of Alibaba's "unauthorized API calls" alert
    (NoPermission, Forbidden, InvalidAccessKeyId ...) and KMS-log 401/403. High when the
    failures span several APIs or credentials (enumeration or guessing rather than
    one broken application). Also high, at any count from ``min_failures``: an
    AccessKey (long-term or STS; client keys are D15's) denied that many times from one
    address and then, within ``sequence``, succeeding from that address, a network the
    organisation did not use before the window (a stolen key being made to work). A
    retry from the usual networks is not flagged.

    Reads
    -----
    ActionTrail ``errorCode``; KMS-log ``status_code``; ``account_id``, ``client_ip``,
    ``action``, ``access_key_id``.

    False positives
    ---------------
    Mis-scoped new deployments, a policy change that removed rights, health checks; a
    new runner subnet whose first calls are denied.
    """
    rows = ctx.rows(_denied_calls(ctx))
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
            f"{count_calls(g)} denied calls ({names(g['error_code'])}) on "
            f"{g['action'].nunique()} APIs with {g['access_key_id'].nunique()} credentials "
            f"from {names(g['client_ip'])}"
        ),
    )
    if len(flagged):
        spread = flagged.groupby("incident")[["action", "access_key_id"]].nunique().max(axis=1)
        flagged["severity"] = flagged["incident"].map(spread > 1).map({True: "high", False: None})
    keyed = rows[rows["access_key_id"].notna().to_numpy()]
    keyed = keyed[~keyed["access_key_id"].astype(str).str.startswith("KAAP.").to_numpy()]
    sequence = fail_then_succeed(
        keyed, ctx.rows(_key_successes_outside(ctx)), p["min_failures"], p["sequence"]
    )
    if not len(sequence):
        return flagged
    who = sequence["access_key_id"].astype(str) + "|" + sequence["client_ip"].astype(str)
    incident = bursts(sequence["time"], who, pd.Timedelta(p["sequence"]))
    offset = int(flagged["incident"].max()) + 1 if len(flagged) else 0
    tried = label(
        sequence,
        incident + offset,
        sequence["credential"],
        lambda g: (
            f"{count_calls(g[~g['ok']])} denied calls ({names(g['error_code'])}) with "
            f"{names(g['access_key_id'])} from {names(g['client_ip'])}, then "
            f"{count_calls(g[g['ok']])} successful calls from there (a network the "
            "organisation did not use before the window)"
        ),
        actor=sequence["actor"],
        severity="high",
    )
    return pd.concat([flagged, tried], ignore_index=True)


@dataclass(frozen=True)
class EnumerationParams(Params):
    """D17's parameters."""

    threshold: int = 5
    window: str = duration("10min")


@rule(
    "D17",
    "Enumeration burst (discovery)",
    severity="medium",
    technique="T1526, T1087.004, T1580",
    kind="threshold",
    sources=("actiontrail",),
    params=EnumerationParams,
)
def enumeration(ctx: Context, p: EnumerationParams) -> pd.DataFrame:
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
            f"{count_calls(g)} calls by {who_from(g)}"
            + (
                "; the same origin and role did so before the window"
                if g["habit"].iloc[0] in usual
                else ""
            )
        ),
    )
    if len(found):
        found["severity"] = found["habit"].isin(usual).map({True: "low", False: None})
    return found


# -- the dask facets: which rows each rule reads, day by day ----------------------------


def _reads(ctx: Context) -> tuple[pd.Series, pd.Series]:
    act = ctx.act
    reads = ctx.action_is("GetSecretValue") & ctx.ok & act["secret_name"].notna()
    account = text(ctx, "account_id")
    secret = (account.astype(str) + "/" + text(ctx, "secret_name")).where(
        account.notna(),
        "\0",  # D01 counts every read without an account as one secret
    )
    return reads, secret


def _secret_reads_usual(days: list[pd.DataFrame], p: Params) -> pd.Series:
    """D01: the most distinct secrets each principal read in one window (as D01 counts)."""
    seen = pd.concat(days, ignore_index=True).drop_duplicates()
    return seen.groupby(["principal", "bin"]).size().groupby(level="principal").max()


@secret_mass_retrieval.learn(_secret_reads_usual)
def _secret_reads_learn(ctx: Context, p: Params) -> pd.DataFrame:
    """D01, baseline days: the distinct (principal, window, secret) of reads before it."""
    reads, secret = _reads(ctx)
    reads &= ctx.act["time"] < ctx.baseline_end
    width = pd.Timedelta(p["window"]).value
    return pd.DataFrame(
        {
            "principal": ctx.principal[reads].to_numpy(),
            "bin": nanoseconds(ctx.act["time"][reads]) // width,
            "secret": secret[reads].to_numpy(),
        }
    ).drop_duplicates()


@secret_mass_retrieval.select
def _secret_reads(ctx: Context, p: Params) -> pd.Series:
    """D01: reads in windows that could reach their limit, the baseline, ListSecrets.

    The limit of each row is D01's own (``usual`` learned from the baseline days first),
    or the lowest D01 can use when the baseline is not known.
    """
    reads, secret = _reads(ctx)
    usual = ctx.facts.get("D01")
    limit: float | pd.Series = min(p["threshold"], p["min_distinct"])
    if usual is not None:
        known = ctx.principal.map(usual).astype(float)
        relative = np.maximum(p["min_distinct"], np.floor(p["multiplier"] * known) + 1)
        limit = pd.Series(
            np.where(known.notna(), np.minimum(p["threshold"], relative), p["threshold"]),
            index=ctx.act.index,
        )
    dense = dense_windows(
        ctx, reads, [ctx.who], p["window"], [(secret, limit)], keep_before=ctx.baseline_end
    )
    return dense | ctx.action_is("ListSecrets") | daily_first_reads(ctx, reads)


def _calls(ctx: Context) -> pd.Series:
    return ctx.action_is(*DATA_KEY_OPS) & ctx.act["key_id"].notna()


def _data_key_needed(days: list[pd.DataFrame], p: Params) -> pd.Series:
    """D03: the fewest calls in a bin that can be a burst, per (principal, key)."""
    counts = pd.concat(days, ignore_index=True).groupby(["principal", "key", "bin"])["n"].sum()
    base = counts.groupby(level=["principal", "key"])
    median = base.median()
    mad = base.apply(lambda n: float((n - n.median()).abs().median()))
    robust = np.where(mad > 0, median + p["z"] * 1.4826 * mad - 1e-9, -np.inf)
    needed = np.maximum(np.maximum(p["min_count"], p["multiplier"] * median), robust)
    return pd.Series(needed, index=median.index)


@data_key_burst.learn(_data_key_needed)
def _data_key_learn(ctx: Context, p: Params) -> pd.DataFrame:
    """D03, baseline days: calls per principal, key and bin (bins before the window's)."""
    calls = _calls(ctx)
    width = pd.Timedelta(p["bin"]).value
    number = nanoseconds(ctx.act["time"][calls]) // width
    frame = pd.DataFrame(
        {
            "principal": ctx.principal[calls].to_numpy(),
            "key": text(ctx, "key_id")[calls].to_numpy(),
            "bin": number,
        }
    )
    frame = frame[number < ctx.baseline_end.value // width]
    if "call_id" in ctx.act:  # a call in both logs counts once, as D03 counts
        frame = frame.assign(call_id=ctx.act["call_id"][calls].to_numpy()[frame.index])
    return count_calls(frame, ["principal", "key", "bin"]).rename("n").reset_index()


@data_key_burst.select
def _data_key_bursts(ctx: Context, p: Params) -> pd.Series:
    """D03: the baseline, and bins busy enough to be a burst of their principal and key.

    How busy comes from the baseline learned first (``min_count``, ``multiplier`` times
    the median, the robust z-score); a principal and key without one cannot burst.
    """
    act = ctx.act
    width = pd.Timedelta(p["bin"]).value
    baseline = pd.Timestamp((ctx.baseline_end.value // width + 1) * width, tz="UTC")
    needed: float | pd.Series = p["min_count"]
    learned = ctx.facts.get("D03")
    if learned is not None:
        pairs = pd.MultiIndex.from_arrays(
            [ctx.principal.to_numpy(), text(ctx, "key_id").to_numpy()]
        )
        needed = pd.Series(learned.reindex(pairs).fillna(np.inf).to_numpy(), index=act.index)
    return dense_windows(
        ctx,
        _calls(ctx),
        [ctx.principal, act["key_id"]],
        p["bin"],
        [(None, needed)],
        shifted=False,
        keep_before=baseline,
    )


@key_from_many_ips.select
def _spread_keys(ctx: Context, p: Params) -> pd.Series:
    """D13: uses of a credential in windows over ``min_networks`` networks, whole."""
    act = ctx.act
    used = act["access_key_id"].notna() & is_address(act["client_ip"])
    ips = act["client_ip"]
    if ctx.geo is not None:
        nets = ctx.geo.lookup(ips.astype(object))["asn"]
        nets.index = act.index
    else:
        nets = per_value(ips, _block)
    spread = [(nets, p["min_networks"])]  # every finding is spread over networks
    return dense_windows(ctx, used, [ctx.credential], p["window"], spread, whole_rows=True)


@aap_not_found.select
def _aap_failures(ctx: Context, p: Params) -> pd.Series:
    """D15: client-key failures, and client-key successes from outside the known networks."""
    return client_key_failures(ctx) | outside_successes(ctx)


def _aap_networks_union(days: list[pd.DataFrame], p: Params) -> pd.DataFrame:
    """D15: every baseline day's (AAP, network) pairs."""
    kept = [d for d in days if len(d)]
    if not kept:
        return pd.DataFrame({"aap": pd.Series(dtype=object), "net": pd.Series(dtype=object)})
    return pd.concat(kept, ignore_index=True).drop_duplicates().reset_index(drop=True)


def _networks_union(days: list[pd.DataFrame], p: Params) -> set[str]:
    return {str(n) for d in days for n in d["net"]}


@aap_not_found.learn(_aap_networks_union)
def _aap_networks_learn(ctx: Context, p: Params) -> pd.DataFrame:
    """D15, baseline days: where each AAP called from successfully."""
    return aap_networks(ctx)


@auth_failures.select
def _denied(ctx: Context, p: Params) -> pd.Series:
    """D16: denied calls, and AccessKey successes from outside the known networks."""
    return _denied_calls(ctx) | _key_successes_outside(ctx)


@auth_failures.learn(_networks_union)
def _organisation_networks_learn(ctx: Context, p: Params) -> pd.DataFrame:
    """D16, baseline days: the networks of any row before the window."""
    return pd.DataFrame({"net": sorted(organisation_networks(ctx))})


@enumeration.select
def _enumeration(ctx: Context, p: Params) -> pd.Series:
    return (
        from_actiontrail(ctx)
        & ctx.action_matches(r"^(List|Describe|Get)")
        & (ctx.act["action"] != "GetSecretValue")
        & (text(ctx, "event_type") != "ConsoleOperation")
        & (text(ctx, "identity_type") != "system")
    )
