"""Single-event rules on keys, secrets and application access points (D04-D08, D10)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..registry import Params, rule
from .common import (
    AAP_CHANGES,
    KEY_DESTRUCTION,
    KEY_POLICY,
    SECRET_TAMPERING,
    from_actiontrail,
    from_kms_log,
    names,
    node,
    single_events,
    who_from,
)
from .facets import admin, key_failures


def _key_node(ctx: Context) -> pd.Series:
    return node("key:", ctx.act["key_id"])


def _secret_node(ctx: Context) -> pd.Series:
    act = ctx.act
    out = pd.Series(np.nan, index=act.index, dtype=object)
    named = act["secret_name"].notna().to_numpy()
    pairs = act.loc[named, ["account_id", "secret_name"]].astype(object)
    values = [f"secret:{a}/{s}" for a, s in zip(pairs.account_id, pairs.secret_name, strict=True)]
    out.loc[act.index[named]] = np.asarray(values, dtype=object)
    return out


def _kms_admin(ctx: Context, operations: tuple[str, ...]) -> pd.Series:
    return from_actiontrail(ctx) & ctx.ok & ctx.action_is(*operations)


def _failures_after(ctx: Context, keys: pd.Series, since: pd.Series, hours: float) -> list[int]:
    """KMS-log failures on each key within ``hours`` after each time (the impact)."""
    act = ctx.act
    failed = act[from_kms_log(ctx) & ~ctx.ok & act["key_id"].notna()]
    by_key = {k: g["time"] for k, g in failed.groupby(failed["key_id"].astype(object))}
    out = []
    for key, moment in zip(keys, since, strict=True):
        times = by_key.get(str(key)[4:] if isinstance(key, str) else None)
        if times is None:
            out.append(0)
            continue
        out.append(int(((times > moment) & (times <= moment + pd.Timedelta(hours=hours))).sum()))
    return out


@dataclass(frozen=True)
class KeyDeletionParams(Params):
    """D04's parameters."""

    impact_hours: int = 24


@rule(
    "D04",
    "Key deletion scheduled or key material deleted",
    severity="critical",
    technique="T1485",
    kind="single-event",
    sources=("actiontrail", "kms"),
    params=KeyDeletionParams,
)
def key_deletion(ctx: Context, p: KeyDeletionParams) -> pd.DataFrame:
    """ScheduleKeyDeletion or DeleteKeyMaterial, with the failures they cause.

    One finding per key and actor. The summary gives the pending window
    (``PendingWindowInDays``: the shortest is the most urgent) and the number of failed
    KMS-log calls on that key in the ``impact_hours`` after it.

    Reads
    -----
    ActionTrail ``eventName``, ``errorCode``, ``requestParameters.KeyId`` and
    ``PendingWindowInDays``; KMS-log ``status_code`` and ``key_id`` for the impact.

    False positives
    ---------------
    Planned key retirement by KMS administrators or infrastructure as code (Terraform or
    ROS user agents); test keys. A later ``CancelKeyDeletion`` is recovery evidence.
    """
    mask = _kms_admin(ctx, KEY_DESTRUCTION)
    entity = _key_node(ctx)
    rows = ctx.rows(mask)
    windows = [r.get("PendingWindowInDays") for r in ctx.nested(rows, "requestParameters")]
    pending = pd.Series(windows, index=rows.index, dtype=object)
    impact = pd.Series(
        _failures_after(ctx, entity[mask], rows["time"], p["impact_hours"]), index=rows.index
    )

    def summary(group: pd.DataFrame) -> str:
        days = names(pending.loc[group.index])
        hurt = int(impact.loc[group.index].max())
        return (
            f"{names(group['action'])} on {names(group['key_id'])} by {who_from(group)}"
            + (f"; pending window {days} days" if days else "")
            + f"; {hurt} failed KMS calls on the key in the next {p['impact_hours']} h"
        )

    return single_events(ctx, mask, entity, summary)


@dataclass(frozen=True)
class KeyDisabledParams(Params):
    """D05's parameters."""

    impact_hours: int = 24


@rule(
    "D05",
    "Key disabled or deletion protection removed",
    severity="high",
    technique="T1485, T1489",
    kind="single-event",
    sources=("actiontrail", "kms"),
    params=KeyDisabledParams,
)
def key_disabled(ctx: Context, p: KeyDisabledParams) -> pd.DataFrame:
    """DisableKey, or SetDeletionProtection turning protection off, and the impact.

    The summary counts the failed KMS-log calls (``Rejected.Disabled`` and the like) on
    the key in the ``impact_hours`` after the change: applications that could no longer
    decrypt.

    Reads
    -----
    ActionTrail ``eventName``, ``requestParameters.KeyId`` and
    ``EnableDeletionProtection``; KMS-log ``status_code``, ``error_code``, ``key_id``.

    False positives
    ---------------
    Key rotation runbooks and decommissioning.
    """
    act = ctx.act
    base = _kms_admin(ctx, ("DisableKey", "SetDeletionProtection"))
    candidates = ctx.rows(base)
    params = ctx.nested(candidates, "requestParameters")
    keep = [
        action == "DisableKey"
        or str(p_.get("EnableDeletionProtection", "")).lower() in ("false", "0")
        for action, p_ in zip(candidates["action"], params, strict=True)
    ]
    mask = pd.Series(False, index=act.index)
    mask.loc[candidates.index[np.asarray(keep, dtype=bool)]] = True
    entity = _key_node(ctx)
    impact = pd.Series(
        _failures_after(ctx, entity[mask], act.loc[mask, "time"], p["impact_hours"]),
        index=act.index[mask],
    )

    def summary(group: pd.DataFrame) -> str:
        hurt = int(impact.loc[group.index].max())
        return (
            f"{names(group['action'])} on "
            f"{names(group['key_id']) or names(group['resource_id']) or 'a key'} by "
            f"{who_from(group)}; {hurt} failed KMS calls on the key "
            f"in the next {p['impact_hours']} h"
        )

    return single_events(ctx, mask, entity, summary)


@rule(
    "D06",
    "External key material imported (BYOK)",
    severity="high",
    technique="T1486, T1608.003",
    kind="single-event",
    sources=("actiontrail",),
)
def external_material(ctx: Context, p: Params) -> pd.DataFrame:
    """GetParametersForImport / ImportKeyMaterial, or CreateKey with Origin EXTERNAL.

    Reads
    -----
    ActionTrail ``eventName``, ``requestParameters.Origin`` and ``KeyId``.

    False positives
    ---------------
    Compliance-driven BYOK programmes (rare and known).
    """
    act = ctx.act
    imports = _kms_admin(ctx, ("GetParametersForImport", "ImportKeyMaterial"))
    creates = ctx.rows(_kms_admin(ctx, ("CreateKey",)))
    external = [
        str(q.get("Origin", "")).upper() == "EXTERNAL"
        for q in ctx.nested(creates, "requestParameters")
    ]
    mask = imports.copy()
    mask.loc[creates.index[np.asarray(external, dtype=bool)]] = True
    return single_events(
        ctx,
        mask,
        _key_node(ctx).where(act["key_id"].notna(), np.nan),
        lambda g: f"{names(g['action'])} ({names(g['key_id']) or 'new key'}) by {who_from(g)}",
    )


def _listed(what: str, per_row: pd.Series) -> str:
    """``; <what> a, b`` for the distinct items of per-row lists, or nothing."""
    items = sorted({item for row in per_row for item in row})
    return f"; {what} {', '.join(items)}" if items else ""


def _foreign_principals(policy: Any, own: set[str]) -> list[str]:
    """Account UIDs or ``*`` granted in a policy document that are not the organisation's."""
    text = policy if isinstance(policy, str) else str(policy or "")
    found = set(pd.Series([text]).str.extractall(r"acs:ram::(\d+):")[0].tolist())
    foreign = sorted(found - own)
    if '"*"' in text.replace(" ", ""):
        foreign.append("*")
    return foreign


@rule(
    "D07",
    "Key or secret policy changed",
    severity="medium",
    technique="T1548.005, T1098",
    kind="single-event",
    sources=("actiontrail",),
)
def policy_changed(ctx: Context, p: Params) -> pd.DataFrame:
    """SetKeyPolicy / SetSecretPolicy; high when the policy grants a foreign account or ``*``.

    Reads
    -----
    ActionTrail ``eventName``, ``requestParameters.Policy``, ``KeyId``, ``SecretName``.

    False positives
    ---------------
    Policy syncs by infrastructure as code; cross-account sharing the organisation
    intends (pass ``known_accounts``).
    """
    mask = _kms_admin(ctx, KEY_POLICY)
    rows = ctx.rows(mask)
    foreign = [
        _foreign_principals(q.get("Policy"), ctx.known_accounts)
        for q in ctx.nested(rows, "requestParameters")
    ]
    grants = pd.Series(foreign, index=rows.index, dtype=object)
    entity = _key_node(ctx).where(ctx.act["key_id"].notna(), _secret_node(ctx))
    severity = pd.Series(["high" if f else "medium" for f in foreign], index=rows.index)
    return single_events(
        ctx,
        mask,
        entity,
        lambda g: (
            f"{names(g['action'])} on {names(g['resource_id'])} by {who_from(g)}"
            + _listed("grants", grants.loc[g.index])
        ),
        severity=severity,
    )


_WIDE = ("0.0.0.0/0", "::/0", "key/*", "secret/*", '"*"')


@rule(
    "D08",
    "AAP, permission policy, network rule or instance VPC changed",
    severity="medium",
    technique="T1098.001, T1562.007",
    kind="single-event",
    sources=("actiontrail",),
)
def aap_changed(ctx: Context, p: Params) -> pd.DataFrame:
    """Changes to application access points, their policies, network rules, client keys.

    High when the change widens access: a network rule to ``0.0.0.0/0``, a policy's
    resources to ``key/*`` or ``secret/*``.

    Reads
    -----
    ActionTrail ``eventName`` (Create/Update/Delete ApplicationAccessPoint, ClientKey,
    Policy, NetworkRule; UpdateKmsInstanceBindVpc), ``requestParameters``.

    False positives
    ---------------
    Onboarding a new application; infrastructure as code.
    """
    mask = _kms_admin(ctx, AAP_CHANGES)
    rows = ctx.rows(mask)
    params = ctx.nested(rows, "requestParameters")
    text = [str(q) for q in params]
    wide = pd.Series(
        [[w for w in _WIDE if w in t.replace("'", '"')] for t in text], index=rows.index
    )
    target = pd.Series(
        [
            q.get("AapName") or q.get("Name") or q.get("ClientKeyId") or q.get("KmsInstanceId")
            for q in params
        ],
        index=rows.index,
        dtype=object,
    )
    account = rows["account_id"].astype(object).astype(str)
    client_key = target.astype(str).str.startswith("KAAP.")  # DeleteClientKey names the key
    aap = ("aap:" + account + "/" + target.astype(str)).where(
        rows["action"].astype(str).str.contains("ApplicationAccessPoint|ClientKey") & ~client_key,
        ("client-key:" + target.astype(str)).astype(object).where(client_key, None),
    )
    entity = pd.Series(np.nan, index=ctx.act.index, dtype=object)
    entity.loc[rows.index] = aap.where(aap.notna(), _bound_aap(ctx, rows, target)).to_numpy()
    severity = pd.Series(["high" if w else "medium" for w in wide], index=rows.index)
    return single_events(
        ctx,
        mask,
        entity,
        lambda g: (
            f"{names(g['action'])} on {names(target.loc[g.index])} by {who_from(g)}"
            + _listed("widened to", wide.loc[g.index])
        ),
        severity=severity,
    )


def _bound_aap(ctx: Context, rows: pd.DataFrame, target: pd.Series) -> pd.Series:
    """The AAP a changed policy or network rule belonged to (the graph node), else NaN."""
    from ... import aap

    # the configuration only (no KMS rows needed); the dask engine composes it first
    config = ctx.facts.get("aap_configuration") or aap.configuration(ctx.case)
    frame = config.frame
    bound = frame[frame["item"].isin(["policy", "network-rule"])]
    owner = dict(
        zip(bound["value"], "aap:" + bound["account_id"] + "/" + bound["aap"], strict=True)
    )
    return target.map(lambda t: owner.get(t, np.nan)).astype(object)


@rule(
    "D10",
    "Secret deleted or tampered with",
    severity="medium",
    technique="T1485, T1565.001",
    kind="single-event",
    sources=("actiontrail",),
)
def secret_tampering(ctx: Context, p: Params) -> pd.DataFrame:
    """DeleteSecret, PutSecretValue, stage moves and rotation changes by people.

    High when ``ForceDeleteWithoutRecovery`` is true. Service identities (managed
    rotation) are left out.

    Reads
    -----
    ActionTrail ``eventName``, ``userIdentity.type``, ``requestParameters``
    (``SecretName``, ``ForceDeleteWithoutRecovery``, ``RecoveryWindowInDays``).

    False positives
    ---------------
    Rotation automation under a RAM identity; administrators' planned changes.
    """
    act = ctx.act
    mask = _kms_admin(ctx, SECRET_TAMPERING) & (act["identity_type"].astype(object) != "system")
    rows = ctx.rows(mask)
    forced = [
        str(q.get("ForceDeleteWithoutRecovery", "")).lower() == "true"
        for q in ctx.nested(rows, "requestParameters")
    ]
    severity = pd.Series(["high" if f else "medium" for f in forced], index=rows.index)
    return single_events(
        ctx,
        mask,
        _secret_node(ctx),
        lambda g: f"{names(g['action'])} on {names(g['secret_name'])} by {who_from(g)}",
        severity=severity,
    )


# -- the dask facets: which rows each rule reads, day by day ----------------------------


@key_deletion.select
def _destruction(ctx: Context, p: Params) -> pd.Series:
    return admin(*KEY_DESTRUCTION)(ctx, p) | key_failures(ctx, p["impact_hours"])


@key_disabled.select
def _disabling(ctx: Context, p: Params) -> pd.Series:
    disabling = admin("DisableKey", "SetDeletionProtection")(ctx, p)
    return disabling | key_failures(ctx, p["impact_hours"])


external_material.select(admin("GetParametersForImport", "ImportKeyMaterial", "CreateKey"))
policy_changed.select(admin(*KEY_POLICY))


@aap_changed.select
def _aap_changes(ctx: Context, p: Params) -> pd.Series:
    """D08: the changes, and every AAP event the configuration is composed from."""
    from ...aap import OPERATIONS

    return admin(*AAP_CHANGES)(ctx, p) | (from_actiontrail(ctx) & ctx.action_is(*OPERATIONS))


secret_tampering.select(admin(*SECRET_TAMPERING))
