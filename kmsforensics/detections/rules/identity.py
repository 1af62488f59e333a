"""Identity rules: cross-account roles, role chains, sign-ins, root use, RAM changes.

D19-D23 and D28.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import bursts, label, over_threshold
from ..registry import rule
from .common import (
    RAM_CHANGES,
    from_actiontrail,
    from_kms_log,
    names,
    role_owner,
    single_events,
    who_from,
)


def _assume_rows(ctx: Context) -> pd.Series:
    return from_actiontrail(ctx) & ctx.action_matches("AssumeRole")


@rule(
    "D19",
    "Cross-account role assumption or foreign session player",
    severity="low",
    technique="T1078.004, T1550.001",
    kind="single-event",
    sources=("actiontrail",),
)
def cross_account(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """AssumeRole into another account's role, or a session played from another account.

    One finding per caller, role and source address. Severity: high when the other
    account is not the organisation's (``known_accounts``), medium when the caller
    assumes that role from an address it never used for it before the window, low
    otherwise (a routine cross-account deploy).

    Reads
    -----
    ActionTrail ``eventName``, ``requestParameters.RoleArn``, ``userIdentity.accountId``,
    ``requestParameters.stsTokenPlayerUid``, ``sourceIpAddress``.

    False positives
    ---------------
    Resource Directory and landing-zone administration roles, partners and MSPs,
    CloudSSO access configurations.
    """
    act = ctx.act
    owner = role_owner(act["role_arn"])
    caller_account = act["account_id"].astype(object)
    assumed = _assume_rows(ctx) & owner.notna() & (owner != caller_account)
    player = act["player_account_id"].astype(object)
    played = from_actiontrail(ctx) & player.notna() & (player != caller_account)
    mask = assumed | played
    rows = ctx.rows(mask)
    if not len(rows):
        return rows
    other = owner[mask].where(assumed[mask], player[mask]).astype(str)
    is_assume = assumed[mask].to_numpy()
    role = rows["role_arn"].astype(object).where(is_assume, rows["principal"])
    caller = rows["principal"].astype(str).where(is_assume, "player " + other)
    pair = caller + "|" + role.astype(str)
    history = ctx.rows(_assume_rows(ctx) & (act["time"] < ctx.baseline_end))
    seen = set(
        zip(
            history["principal"].astype(str) + "|" + history["role_arn"].astype(str),
            history["client_ip"].astype(str),
            strict=True,
        )
    )
    new_source = is_assume & np.array(
        [
            (k, str(ip)) not in seen
            for k, ip in zip(pair, rows["client_ip"].astype(str), strict=True)
        ],
        dtype=bool,
    )
    unknown = ~other.isin(ctx.known_accounts).to_numpy()
    severity = np.where(unknown, "high", np.where(new_source, "medium", "low"))
    groups = pair + "|" + rows["client_ip"].astype(str)
    incident = bursts(rows["time"], groups, pd.Timedelta(days=365 * 100))
    return label(
        rows,
        incident,
        rows["who"],
        lambda g: (
            f"{who_from(g)} used {names(role.loc[g.index])} "
            f"across accounts ({names(g['account_id'])} -> {names(other.loc[g.index])}), "
            f"{len(g)} events"
        ),
        actor=rows["actor"],
        severity=pd.Series(severity, index=rows.index),
    )


@rule(
    "D20",
    "Role chaining",
    severity="medium",
    technique="T1548.005",
    kind="graph",
    sources=("actiontrail",),
)
def role_chaining(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """AssumeRole called by a role session: a chain of two or more hops.

    High when the hop crosses accounts. The graph (``kf.trace``) shows the whole chain
    back to the identity that started it.

    Reads
    -----
    ActionTrail ``eventName``, ``userIdentity.type`` (``assumed-role``),
    ``userIdentity.principalId``, ``requestParameters.RoleArn``.

    False positives
    ---------------
    Hub-and-spoke administration (a jump role into workload roles); CI pipelines that
    assume deploy roles from a runner role.
    """
    act = ctx.act
    mask = _assume_rows(ctx) & (act["identity_type"].astype(object) == "ram-role")
    owner = role_owner(act["role_arn"])
    crossing = (owner != act["account_id"].astype(object)) & owner.notna()
    severity = pd.Series(np.where(crossing[mask], "high", "medium"), index=act.index[mask])
    return single_events(
        ctx,
        mask,
        "who",
        lambda g: f"{who_from(g)} assumed {names(g['role_arn'])} (a second hop)",
        gap="6h",
        severity=severity,
    )


@rule(
    "D21",
    "Console sign-in without MFA",
    severity="medium",
    technique="T1078.004",
    kind="single-event",
    sources=("actiontrail",),
)
def signin_without_mfa(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """A successful ConsoleSignin whose MFA flag is false.

    Reads
    -----
    ActionTrail ``eventName``, ``errorMessage``, ``additionalEventData.isMFAChecked`` /
    ``mfaChecked`` (as the activity column ``mfa``), ``userIdentity.type``.

    False positives
    ---------------
    Federated sign-ins with MFA at the identity provider (``cloudsso-user`` is left
    out); accounts with an approved exemption.
    """
    act = ctx.act
    mfa = act["mfa"].astype("boolean")
    mask = (
        from_actiontrail(ctx)
        & ctx.action_is("ConsoleSignin")
        & ctx.ok
        & (mfa == False).fillna(False)  # noqa: E712 - nullable comparison
        & (act["identity_type"].astype(object) != "cloudsso-user")
    )
    return single_events(
        ctx, mask, "actor", lambda g: f"{who_from(g)} signed in to the console without MFA"
    )


@rule(
    "D22",
    "Console sign-in failures or password spraying",
    severity="high",
    technique="T1110.001, T1110.003",
    kind="threshold",
    sources=("actiontrail",),
    window="30min",
    user_failures=6,
    ip_users=3,
)
def signin_failures(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """Many failed console sign-ins for one user, or failures for many users from one IP.

    ``user_failures`` failures of one user within ``window`` (Alibaba's template: more
    than 5 in 30 minutes), or ``ip_users`` distinct users failing from one address.

    Reads
    -----
    ActionTrail ``eventName`` (ConsoleSignin), ``errorMessage``,
    ``userIdentity.principalId`` / ``userName``, ``sourceIpAddress``.

    False positives
    ---------------
    Forgotten passwords; password managers misfiring after a reset; a shared office
    address where several people mistype at once.
    """
    act = ctx.act
    failed = from_actiontrail(ctx) & ctx.action_is("ConsoleSignin") & ~ctx.ok
    rows = ctx.rows(failed)
    if not len(rows):
        return rows
    rows["user"] = rows["actor"].astype(object).fillna(rows["principal_name"].astype(object))
    by_user = over_threshold(rows, ["user"], p["window"], p["user_failures"])
    by_ip = over_threshold(rows, ["client_ip"], p["window"], p["ip_users"], distinct="user")
    hit = rows[by_user | by_ip]
    key = hit["client_ip"].astype(str).where(by_ip[hit.index], hit["user"].astype(str))
    incident = bursts(hit["time"], key, pd.Timedelta(p["window"]))
    del act
    return label(
        hit,
        incident,
        lambda g: f"ip:{g['client_ip'].iloc[0]}" if g["user"].nunique() > 1 else g["user"].iloc[0],
        lambda g: (
            f"{len(g)} failed console sign-ins for {g['user'].nunique()} users "
            f"({names(g['principal_name'])}) from {names(g['client_ip'])}"
        ),
        actor=hit["actor"],
    )


@rule(
    "D23",
    "Root (cloud account) identity used",
    severity="high",
    technique="T1078.004",
    kind="single-event",
    sources=("actiontrail", "kms"),
)
def root_used(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """The account's root identity signs in or calls APIs (KMS crypto above all).

    Reads
    -----
    KMS-log ``identity_type`` (``cloud-account``); ActionTrail ``userIdentity.type``
    (``root-account``), ``eventType`` (service events are left out),
    ``userIdentity.accessKeyId``.

    False positives
    ---------------
    The few tasks that need the root account (billing, account settings); a legacy
    application still on a root AccessKey (a finding in itself).
    """
    act = ctx.act
    root = act["identity_type"].astype(object) == "account"
    service = act["event_type"].astype(object) == "AliyunServiceEvent"
    mask = root & ~service & (from_kms_log(ctx) | from_actiontrail(ctx))
    return single_events(
        ctx,
        mask,
        "who",
        lambda g: (
            f"root identity of {names(g['account_id'])} called {names(g['action'])} "
            f"({len(g)} events) from {names(g['client_ip'])}"
        ),
        gap="6h",
    )


@rule(
    "D28",
    "RAM credential or trust change",
    severity="medium",
    technique="T1098.001, T1098.003",
    kind="single-event",
    sources=("actiontrail", "kms"),
    follow_hours=24,
)
def ram_changes(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """New AccessKeys, users, login profiles, policy attachments, trust changes, MFA unbinds.

    High when the AccessKey created (``responseElements.AccessKey.AccessKeyId``) is used
    against KMS within ``follow_hours``.

    Reads
    -----
    ActionTrail ``serviceName`` (Ram), ``eventName``, ``responseElements``; KMS-log and
    ActionTrail ``access_key_id`` for the follow-up.

    False positives
    ---------------
    Identity administrators and infrastructure as code.
    """
    act = ctx.act
    mask = (
        from_actiontrail(ctx)
        & ctx.ok
        & ctx.action_is(*RAM_CHANGES)
        & (act["service"].astype(object) == "ram")
    )
    rows = ctx.rows(mask)
    created = []
    for response in ctx.nested(rows, "responseElements"):
        key = response.get("AccessKey")
        created.append(key.get("AccessKeyId") if isinstance(key, dict) else None)
    kms_keys = act.loc[act["service"].astype(object) == "kms", ["access_key_id", "time"]].dropna()
    first_use = kms_keys.groupby(kms_keys["access_key_id"].astype(object))["time"].min()
    used = [
        isinstance(k, str)
        and k in first_use.index
        and t <= first_use[k] <= t + pd.Timedelta(hours=p["follow_hours"])
        for k, t in zip(created, rows["time"], strict=True)
    ]
    severity = pd.Series(np.where(used, "high", "medium"), index=rows.index)
    return single_events(
        ctx,
        mask,
        "who",
        lambda g: f"{names(g['action'])} ({names(g['resource_id'])}) by {who_from(g)}",
        severity=severity,
    )
