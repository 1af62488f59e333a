"""Threshold and window rules: D01, D03, D13, D15, D16, D17.

Mass retrieval, bursts, failures, enumeration.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ...calls import count_calls
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
)
def secret_mass_retrieval(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """One credential reads many distinct secrets within ``window``.

    Many is ``threshold`` distinct secrets, or, for a principal with a baseline, more
    than ``multiplier`` times the most it read in one window before (and at least
    ``min_distinct``). Both logs count: GetSecretValue through a KMS instance (KMS log)
    and through the OpenAPI (ActionTrail). A ListSecrets by the same credential is
    mentioned in the summary (the pattern of a secrets sweep).

    Reads
    -----
    ``action`` (GetSecretValue, ListSecrets), ``success``, ``access_key_id``,
    ``principal_id``, ``secret_name``, ``time``.

    False positives
    ---------------
    Application start-up and configuration loaders, rotation functions, CI/CD deploys,
    backup or migration tools, configuration-centre AAPs.
    """
    act = ctx.act
    reads = ctx.rows(ctx.action_is("GetSecretValue") & ctx.ok & act["secret_name"].notna())
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
    return _windowed(
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


@rule(
    "D15",
    "AAP not found, or invalid client key",
    severity="high",
    technique="T1078.004, T1110",
    kind="threshold",
    sources=("kms",),
    threshold=5,
    window="10min",
)
def aap_not_found(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """Client keys that no AAP owns, or rejected (401/403), from one address.

    ``threshold`` such calls from one address within ``window``. An AAP-identity row
    with an empty ``account_id`` or ``principal_id`` is the documented "AAP not found".

    Reads
    -----
    KMS-log ``identity_type``, ``account_id``, ``principal_id``, ``access_key_id``,
    ``status_code``, ``client_ip``.

    False positives
    ---------------
    Applications still running with a rotated-out or expired client key; clock skew
    (a 400, not counted).
    """
    act = ctx.act
    kms = from_kms_log(ctx)
    aap = act["identity_type"].astype(object) == "aap"
    missing = act["account_id"].isna() | act["principal_id"].isna()
    kaap = flag(act["access_key_id"], lambda k: str(k).startswith("KAAP."))
    rejected = ctx.status_code.isin([401, 403])
    rows = ctx.rows(kms & ((aap & missing) | (kaap & rejected)))
    if not len(rows):
        return rows
    hit = over_threshold(rows, ["client_ip"], p["window"], p["threshold"])
    return _windowed(
        rows,
        "client_ip",
        p["window"],
        hit,
        "ip:" + rows["client_ip"].astype(str)[hit],
        lambda g: (
            f"{count_calls(g)} calls with {g['access_key_id'].nunique()} unknown or rejected "
            f"client keys from {names(g['client_ip'])} ({names(g['error_message'])})"
        ),
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
            f"{count_calls(g)} denied calls ({names(g['error_code'])}) on "
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
    and service identities are left out.

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
    return _windowed(
        rows,
        "who",
        p["window"],
        hit,
        rows["who"][hit],
        lambda g: (
            f"{g['action'].nunique()} discovery APIs ({names(g['action'])}) in "
            f"{count_calls(g)} calls by {who_from(g)}"
        ),
    )
