"""Identity rules: cross-account roles, role chains, sign-ins, root use, RAM changes.

D19-D23 and D28.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...calls import count_calls, first_of_call
from ..context import Context
from ..findings import bursts, label, nanoseconds, over_threshold
from ..registry import Params, duration, rule
from .common import (
    IDENTITY_SERVICES,
    RAM_CHANGES,
    from_actiontrail,
    from_kms_log,
    names,
    role_owner,
    single_events,
    who_from,
)
from .facets import admin, text


def _assume_rows(ctx: Context) -> pd.Series:
    return from_actiontrail(ctx) & ctx.action_matches("AssumeRole")


def _path_severity(ctx: Context, rows: pd.DataFrame) -> np.ndarray:
    """Severity of each AssumeRole row by its lineage: origin x target role x network."""
    nets = ctx.network.loc[rows.index]
    return np.array(
        [
            ctx.paths.severity(o, r, n)
            for o, r, n in zip(rows["origin"], rows["role_arn"], nets, strict=True)
        ],
        dtype=object,
    )


def _path_key(ctx: Context, rows: pd.DataFrame) -> pd.Series:
    """Return ``origin|role|network`` of AssumeRole rows: one finding per path.

    And per side of the baseline's end, so the window's findings hold the window's rows.
    """
    after = np.where((rows["time"] >= ctx.baseline_end).to_numpy(), "|window", "|baseline")
    return (
        rows["origin"].astype(str)
        + "|"
        + rows["role_arn"].astype(str).str.lower()
        + "|"
        + ctx.network.loc[rows.index].astype(str)
        + after
    )


@rule(
    "D19",
    "Cross-account role assumption or foreign session player",
    severity="low",
    technique="T1078.004, T1550.001",
    kind="single-event",
    sources=("actiontrail",),
)
def cross_account(ctx: Context, p: Params) -> pd.DataFrame:
    """AssumeRole into another account's role, or a session played from another account.

    One finding per lineage path: the origin of the caller's credential (the long-term
    key, person or service it comes from, through any role chain), the target role and
    the source network (``/24``). Severity: high when the other account is not the
    organisation's (``known_accounts``) or the network is one no AssumeRole of the
    organisation came from before the window; medium when the origin never reached
    that role before (and no team reaches it from that network); low for a known path
    (a routine cross-account deploy), a session played from another account, or a hop
    from a role session that is new only to its origin (D20 reports it).

    Reads
    -----
    ActionTrail ``eventName``, ``requestParameters.RoleArn``, ``userIdentity.accountId``,
    ``requestParameters.stsTokenPlayerUid``, ``sourceIpAddress``; the AssumeRole
    issues behind the caller's key (its lineage).

    False positives
    ---------------
    Resource Directory and landing-zone administration roles, partners and MSPs,
    CloudSSO access configurations; a new hire's first switches (medium).
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
    unknown = ~other.isin(ctx.known_accounts).to_numpy()
    path = np.where(is_assume, _path_severity(ctx, rows), "low")
    # a hop from a role session is D20's: here it is only high from a new network
    chained = (rows["identity_type"].astype(object) == "ram-role").to_numpy()
    path = np.where(chained & (path == "medium"), "low", path)
    severity = np.where(unknown, "high", path)
    groups = _path_key(ctx, rows).where(
        is_assume, "player " + other + "|" + rows["principal"].astype(str)
    )
    incident = bursts(rows["time"], groups, pd.Timedelta(days=365 * 100))
    return label(
        rows,
        incident,
        rows["who"],
        lambda g: (
            f"{who_from(g)} used {names(role.loc[g.index])} "
            f"across accounts ({names(g['account_id'])} -> {names(other.loc[g.index])}), "
            f"{len(g)} events; origin {names(g['origin'], 1)}"
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
def role_chaining(ctx: Context, p: Params) -> pd.DataFrame:
    """AssumeRole called by a role session: a chain of two or more hops.

    One finding per lineage path (origin x target role x source network), its
    severity from the baseline of such paths: low for a path the baseline has (a jump
    role, a CI pipeline), medium for an origin new to that role from a network the
    organisation uses, high from a network no AssumeRole came from before the window.
    The summary names the origin and the whole chain (``kf.trace`` draws it).

    Reads
    -----
    ActionTrail ``eventName``, ``userIdentity.type`` (``assumed-role``),
    ``userIdentity.principalId``, ``requestParameters.RoleArn``, ``sourceIpAddress``;
    the AssumeRole issues behind the caller's key (its lineage).

    False positives
    ---------------
    A new hire's or a new pipeline's first chains (medium); on-call work from a new
    VPN egress.
    """
    act = ctx.act
    mask = _assume_rows(ctx) & (act["identity_type"].astype(object) == "ram-role")
    rows = ctx.rows(mask)
    if not len(rows):
        return rows
    severity = pd.Series(_path_severity(ctx, rows), index=rows.index)
    incident = bursts(rows["time"], _path_key(ctx, rows), pd.Timedelta(days=365 * 100))
    return label(
        rows,
        incident,
        rows["who"],
        lambda g: (
            f"{who_from(g)} assumed {names(g['role_arn'])} (a second hop; "
            f"origin {names(g['origin'], 1)}, chain {names(g['chain'], 1) or 'unknown'}), "
            f"{len(g)} times"
        ),
        actor=rows["actor"],
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
def signin_without_mfa(ctx: Context, p: Params) -> pd.DataFrame:
    """A successful ConsoleSignin whose MFA flag is false.

    Low when the person signed in without MFA from the same network before the window
    (a known exemption, still worth fixing); medium otherwise.

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
    rows = ctx.rows(mask)
    habit = rows["actor"].astype(str) + "|" + ctx.network.loc[rows.index].astype(str)
    usual = set(habit[(rows["time"] < ctx.baseline_end).to_numpy()])
    severity = pd.Series(np.where(habit.isin(usual), "low", "medium"), index=rows.index)
    return single_events(
        ctx,
        mask,
        "actor",
        lambda g: f"{who_from(g)} signed in to the console without MFA",
        severity=severity,
    )


@dataclass(frozen=True)
class SigninFailuresParams(Params):
    """D22's parameters."""

    window: str = duration("30min")
    user_failures: int = 6
    ip_users: int = 3
    min_failures: int = 2


@rule(
    "D22",
    "Console sign-in failures or password spraying",
    severity="high",
    technique="T1110.001, T1110.003",
    kind="threshold",
    sources=("actiontrail",),
    params=SigninFailuresParams,
)
def signin_failures(ctx: Context, p: SigninFailuresParams) -> pd.DataFrame:
    """Many failed console sign-ins for one user, or failures for many users from one IP.

    ``user_failures`` failures of one user within ``window`` (Alibaba's template: more
    than 5 in 30 minutes), or ``ip_users`` distinct users failing from one address; or
    at low counts, ``min_failures`` failures of one user from one address followed
    within ``window`` by a successful sign-in from it (high from a network the user
    never signed in from before the window, medium otherwise).

    Reads
    -----
    ActionTrail ``eventName`` (ConsoleSignin), ``errorMessage``,
    ``userIdentity.principalId`` / ``userName``, ``sourceIpAddress``.

    False positives
    ---------------
    Forgotten passwords; password managers misfiring after a reset; a shared office
    address where several people mistype at once.
    """
    signins = from_actiontrail(ctx) & ctx.action_is("ConsoleSignin")
    rows = ctx.rows(signins & ~ctx.ok)
    if not len(rows):
        return rows
    rows["user"] = rows["actor"].astype(object).fillna(rows["principal_name"].astype(object))
    by_user = over_threshold(rows, ["user"], p["window"], p["user_failures"])
    by_ip = over_threshold(rows, ["client_ip"], p["window"], p["ip_users"], distinct="user")
    hit = rows[by_user | by_ip]
    key = hit["client_ip"].astype(str).where(by_ip[hit.index], hit["user"].astype(str))
    # fail, then succeed: a few failures of one user from one address, then a sign-in
    good = ctx.rows(signins & ctx.ok)
    good["user"] = good["actor"].astype(object).fillna(good["principal_name"].astype(object))
    pair = rows["user"].astype(str) + "|" + rows["client_ip"].astype(str)
    tries = {k: np.sort(nanoseconds(g["time"])) for k, g in rows.groupby(pair)}
    span = pd.Timedelta(p["window"]).value
    then = np.array(
        [
            int(((t < moment) & (t >= moment - span)).sum()) >= p["min_failures"]
            if (t := tries.get(k)) is not None
            else False
            for k, moment in zip(
                good["user"].astype(str) + "|" + good["client_ip"].astype(str),
                nanoseconds(good["time"]),
                strict=True,
            )
        ],
        dtype=bool,
    )
    made = good[then]
    before = good[(good["time"] < ctx.baseline_end).to_numpy()]
    usual = set(before["user"].astype(str) + "|" + ctx.network.loc[before.index].astype(str))
    known = made["user"].astype(str) + "|" + ctx.network.loc[made.index].astype(str)
    made = made.assign(severity=np.where(known.isin(usual), "medium", "high"))
    behind = rows[pair.isin(set(made["user"].astype(str) + "|" + made["client_ip"].astype(str)))]
    # the failures behind a success weigh as the success does (a threshold hit stays high)
    behind = behind[~behind.index.isin(hit.index)].assign(severity="medium")
    hit = pd.concat([hit, behind, made])
    hit = hit[~hit.index.duplicated()].sort_values("time", kind="stable")
    key = (
        hit["client_ip"]
        .astype(str)
        .where(by_ip.reindex(hit.index, fill_value=False).to_numpy(), hit["user"].astype(str))
    )
    incident = bursts(hit["time"], key, pd.Timedelta(p["window"]))
    return label(
        hit,
        incident,
        lambda g: f"ip:{g['client_ip'].iloc[0]}" if g["user"].nunique() > 1 else g["user"].iloc[0],
        lambda g: (
            f"{int((~g['ok']).sum())} failed console sign-ins for {g['user'].nunique()} users "
            f"({names(g['principal_name'])}) from {names(g['client_ip'])}"
            + (", then a successful sign-in" if g["ok"].any() else "")
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
def root_used(ctx: Context, p: Params) -> pd.DataFrame:
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


@dataclass(frozen=True)
class RamChangesParams(Params):
    """D28's parameters."""

    follow_hours: int = 24
    follow_most: int = 200


@rule(
    "D28",
    "RAM credential or trust change",
    severity="medium",
    technique="T1098.001, T1098.003",
    kind="single-event",
    sources=("actiontrail", "kms"),
    params=RamChangesParams,
)
def ram_changes(ctx: Context, p: RamChangesParams) -> pd.DataFrame:
    """New AccessKeys, users, roles, group memberships, policy versions, trust, MFA unbinds.

    RAM and IMS (which holds users and AccessKeys) count alike. High when the AccessKey
    created (``responseElements.AccessKey.AccessKeyId``) is used within
    ``follow_hours`` from a network the organisation did not use before the window;
    those uses are in the evidence (the earliest ``follow_most``; the summary counts
    them all). A key used from the usual places is a rotation: medium.

    Reads
    -----
    ActionTrail ``serviceName`` (Ram, Ims), ``eventName``, ``responseElements``; any
    later row signed with the created key, and its network.

    False positives
    ---------------
    Identity administrators, onboarding, key rotation and infrastructure as code.
    """
    act = ctx.act
    mask = _ram(ctx, p)
    rows = ctx.rows(mask)
    created = _created_keys(ctx, rows)
    wanted = {k for k in created if isinstance(k, str)}
    signed = act["access_key_id"].isin(list(wanted)) & ~mask if wanted else act["time"].isna()
    later = act.loc[signed, ["access_key_id", "time"]]
    known = set(ctx.network[(act["time"] < ctx.baseline_end).to_numpy()].dropna().unique())
    nets = ctx.network[signed]
    uses: list[Any] = []
    severity = []
    for key, moment in zip(created, rows["time"], strict=True):
        near = (
            (later["access_key_id"] == key)
            & (later["time"] >= moment)
            & (later["time"] <= moment + pd.Timedelta(hours=p["follow_hours"]))
        )
        outside = near & ~nets.isin(known)
        uses += list(later.index[outside.to_numpy()])
        severity.append("high" if outside.any() else "medium")
    level = pd.Series(severity, index=rows.index, dtype=object)
    found = single_events(
        ctx,
        mask,
        "who",
        lambda g: f"{names(g['action'])} ({names(g['resource_id'])}) by {who_from(g)}",
        severity=level,
    )
    if not uses or not len(found):
        return found
    # the uses of a created key from outside join the finding of its creation
    usage = ctx.rows(act.index.isin(uses)).sort_values(["time", "evidence_id"], kind="stable")
    owner = {k: i for k, i in zip(created, found["incident"], strict=True) if isinstance(k, str)}
    usage["incident"] = usage["access_key_id"].astype(str).map(owner).to_numpy()
    usage = usage.dropna(subset=["incident"])
    total = count_calls(usage, "incident")
    calls = pd.Series(first_of_call(usage).astype(np.int64), index=usage.index)
    usage = usage[(calls.groupby(usage["incident"]).cumsum() <= p["follow_most"]).to_numpy()]
    shown = {i: int(n) for i, n in count_calls(usage, "incident").items()}
    note = {
        i: f"; the new key was then used {int(n)} time{'s' if n != 1 else ''} from outside "
        f"({names(usage.loc[usage['incident'] == i, 'client_ip'])})"
        + (f", the first {shown[i]} in the evidence" if shown[i] < n else "")
        for i, n in total.items()
    }
    found["summary"] = found["summary"].astype(str) + found["incident"].map(note).fillna("")
    first = found.drop_duplicates("incident").set_index("incident")
    usage = usage.assign(
        entity=usage["incident"].map(first["entity"]).to_numpy(),
        summary=usage["incident"].map(first["summary"]).to_numpy(),
        severity="high",
    )
    return pd.concat([found, usage], ignore_index=True)


def _created_keys(ctx: Context, rows: pd.DataFrame) -> list[Any]:
    """The AccessKey each RAM change row created (None where it created none)."""
    created = []
    for response in ctx.nested(rows, "responseElements"):
        key = response.get("AccessKey")
        created.append(key.get("AccessKeyId") if isinstance(key, dict) else None)
    return created


# -- the dask facets: which rows each rule reads, day by day ----------------------------


def _assume(ctx: Context) -> pd.Series:
    return from_actiontrail(ctx) & ctx.action_matches("AssumeRole")


@cross_account.select
def _cross_account(ctx: Context, p: Params) -> pd.Series:
    """D19: assumptions of another account's role, foreign players, earlier assumptions."""
    act = ctx.act
    caller = text(ctx, "account_id")
    owner = role_owner(act["role_arn"])
    player = text(ctx, "player_account_id")
    foreign = owner.notna() & (owner != caller)
    played = from_actiontrail(ctx) & player.notna() & (player != caller)
    return (_assume(ctx) & (foreign | (act["time"] < ctx.baseline_end))) | played


@role_chaining.select
def _chained(ctx: Context, p: Params) -> pd.Series:
    """D20: assumptions by a role session."""
    return _assume(ctx) & (text(ctx, "identity_type") == "ram-role")


@signin_without_mfa.select
def _signins(ctx: Context, p: Params) -> pd.Series:
    return from_actiontrail(ctx) & ctx.action_is("ConsoleSignin")


signin_failures.select(_signins)


@root_used.select
def _root(ctx: Context, p: Params) -> pd.Series:
    return text(ctx, "identity_type") == "account"


def _ram(ctx: Context, p: Params) -> pd.Series:
    """D28's changes: successful RAM and IMS identity operations."""
    return admin(*RAM_CHANGES)(ctx, p) & text(ctx, "service").isin(IDENTITY_SERVICES)


@ram_changes.gather(lambda days, p: {k for d in days for k in d["key"]})
def _created_access_keys(ctx: Context, p: Params) -> pd.DataFrame:
    """D28, every day: the AccessKeys created."""
    keys = [k for k in _created_keys(ctx, ctx.rows(_ram(ctx, p))) if isinstance(k, str)]
    return pd.DataFrame({"key": keys}, dtype=object)


@ram_changes.select
def _ram_and_uses(ctx: Context, p: Params) -> pd.Series:
    """D28: the changes, every use of a created key, each network's first baseline row.

    The first row of each network of each baseline day is enough to know which
    networks the organisation used before the window.
    """
    act = ctx.act
    made = ctx.facts.get("D28")
    keys = list(made) if made is not None else [None]
    uses = act["access_key_id"].isin(keys) if made is not None else act["access_key_id"].notna()
    early = (act["time"] < ctx.baseline_end).to_numpy() & ctx.network.notna().to_numpy()
    nets = ctx.network[early]
    firsts = pd.Series(False, index=act.index)
    firsts.loc[nets.index[~nets.duplicated().to_numpy()]] = True
    return _ram(ctx, p) | uses | firsts
