"""Correlations across the two logs: D09, D29, D30.

A new client key then its use, a change then use, STS keys from AssumeRole against KMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import bursts, label
from ..lineage import issuance_mask
from ..registry import Params, duration, rule
from .common import (
    AAP_CHANGES,
    DATA_PLANE,
    KEY_POLICY,
    RAM_CHANGES,
    SECRET_TAMPERING,
    from_actiontrail,
    names,
    who_from,
)


@dataclass(frozen=True)
class NewClientKeyUsedParams(Params):
    """D09's parameters."""

    within_hours: int = 24


@rule(
    "D09",
    "New client key created, then used from a new address",
    severity="high",
    technique="T1098.001, T1555.006",
    kind="correlation",
    sources=("actiontrail", "kms"),
    params=NewClientKeyUsedParams,
)
def new_client_key_used(ctx: Context, p: NewClientKeyUsedParams) -> pd.DataFrame:
    """CreateClientKey, then the new key's first calls from an address its AAP never used.

    The new key is ``responseElements.ClientKeyId`` (or ``KeyId``) of the creation; its
    calls in the KMS log within ``within_hours`` are compared with the addresses the AAP
    used before the key existed.

    Reads
    -----
    ActionTrail ``eventName`` (CreateClientKey), ``responseElements``,
    ``requestParameters.AapName``; KMS-log ``access_key_id``, ``principal_id``,
    ``client_ip``.

    False positives
    ---------------
    Planned key rotation (the new key is used from the application's usual addresses,
    which this rule does not flag); a new deployment in a new subnet.
    """
    act = ctx.act
    created = ctx.rows(from_actiontrail(ctx) & ctx.ok & ctx.action_is("CreateClientKey"))
    if not len(created):
        return created
    responses = ctx.nested(created, "responseElements")
    requests = ctx.nested(created, "requestParameters")
    found = []
    for number, (row, response, request) in enumerate(
        zip(created.itertuples(index=False), responses, requests, strict=True)
    ):
        key = response.get("ClientKeyId") or response.get("KeyId")
        if not isinstance(key, str):
            continue
        aap = request.get("AapName")
        created_at = pd.Timestamp(str(row.time))
        end = created_at + pd.Timedelta(hours=p["within_hours"])
        uses = ctx.rows(
            (act["access_key_id"] == key) & (act["time"] >= created_at) & (act["time"] <= end)
        )
        if not len(uses):
            continue
        before = (
            act[(act["principal_id"] == aap) & (act["time"] < created_at)] if aap else act.iloc[:0]
        )
        known = set(before["client_ip"].astype(str))
        outside = uses[~uses["client_ip"].astype(str).isin(known)]
        if not len(outside):
            continue
        creation = ctx.rows(act.index.isin([created.index[number]]))
        found.append(
            label(
                pd.concat([creation, outside]),
                np.full(len(creation) + len(outside), number),
                f"client-key:{key}",
                lambda g, k=key, a=aap: (
                    f"client key {k} of AAP {a} created by "
                    f"{who_from(g.iloc[:1])}, then used from {names(g['client_ip'].iloc[1:])} "
                    f"({len(g) - 1} calls: {names(g['action'].iloc[1:])})"
                ),
                actor=creation["actor"].iloc[0],
            )
        )
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


CONTROL = (*KEY_POLICY, *AAP_CHANGES, *SECRET_TAMPERING, *RAM_CHANGES)


@dataclass(frozen=True)
class ChangeThenUseParams(Params):
    """D29's parameters."""

    within: str = duration("60min")


@rule(
    "D29",
    "Control-plane change, then data-plane access by the same key",
    severity="high",
    technique="T1098, T1548.005, T1555.006",
    kind="correlation",
    sources=("actiontrail", "kms"),
    params=ChangeThenUseParams,
)
def change_then_use(ctx: Context, p: ChangeThenUseParams) -> pd.DataFrame:
    """A credential changes policies, AAPs, secrets or RAM, then decrypts or reads secrets.

    The data-plane call (KMS log or ActionTrail) must follow the change within
    ``within``, made with the same access key.

    Reads
    -----
    ActionTrail ``eventName`` and ``userIdentity.accessKeyId``; data-plane ``action``,
    ``access_key_id``, ``time``.

    False positives
    ---------------
    Administrators testing their own change (same principal, same address, console
    user agent).
    """
    act = ctx.act
    keyed = act["access_key_id"].notna() & ctx.ok
    changes = ctx.rows(from_actiontrail(ctx) & keyed & ctx.action_is(*CONTROL))
    uses = ctx.rows(keyed & ctx.action_is(*DATA_PLANE))
    if not len(changes) or not len(uses):
        return pd.DataFrame()
    left = uses[["time", "access_key_id"]].assign(
        use=uses.index, key=uses["access_key_id"].astype(str)
    )
    right = changes[["time"]].assign(change=changes.index, key=changes["access_key_id"].astype(str))
    matched = pd.merge_asof(
        left.sort_values("time").drop(columns="access_key_id"),
        right.sort_values("time").rename(columns={"time": "changed"}),
        left_on="time",
        right_on="changed",
        by="key",
        direction="backward",
        tolerance=pd.Timedelta(p["within"]),
    ).dropna(subset=["change"])
    matched = matched[matched["time"] > matched["changed"]]
    if not len(matched):
        return pd.DataFrame()
    involved = pd.Index(matched["use"]).union(pd.Index(matched["change"].astype(int)))
    rows = ctx.rows(act.index.isin(involved))
    incident = bursts(rows["time"], rows["credential"], pd.Timedelta(p["within"]))
    return label(
        rows,
        incident,
        rows["credential"],
        lambda g: (
            f"{who_from(g)} changed "
            f"{names(g.loc[g['action'].isin(CONTROL), 'action'])} then called "
            f"{names(g.loc[~g['action'].isin(CONTROL), 'action'])} "
            f"({int((~g['action'].isin(CONTROL)).sum())} calls)"
        ),
        actor=rows["actor"],
    )


@dataclass(frozen=True)
class StsKeyAgainstKmsParams(Params):
    """D30's parameters."""

    include_services: bool = False


@rule(
    "D30",
    "STS session key from AssumeRole used against KMS",
    severity="low",
    technique="T1550.001, T1555.006",
    kind="correlation",
    sources=("actiontrail", "kms"),
    params=StsKeyAgainstKmsParams,
)
def sts_key_against_kms(ctx: Context, p: StsKeyAgainstKmsParams) -> pd.DataFrame:
    """The STS key an AssumeRole issued, seen calling KMS: the chain source -> role -> KMS.

    One finding per lineage path of the issuing AssumeRole (the caller's origin, the
    role, the source network), with every key issued on that path and its KMS calls.
    Roles that cloud services assume for workloads (ECS, ACK) are left out unless
    ``include_services`` (then low). High when the AssumeRole came from a network no
    AssumeRole of the organisation came from before the window; low otherwise (an
    origin new to a role is D19's and D20's).

    Reads
    -----
    ActionTrail ``eventName`` (AssumeRole*), ``responseElements.Credentials.AccessKeyId``
    (``issued_access_key_id``), ``requestParameters.RoleArn``, ``sourceIpAddress``;
    KMS-log and ActionTrail ``access_key_id`` of the KMS calls; the lineage of the
    caller's key.

    False positives
    ---------------
    A new hire's first sessions; a new pipeline (medium until it is in the baseline).
    """
    act = ctx.act
    assume = ctx.rows(
        from_actiontrail(ctx)
        & ctx.ok
        & ctx.action_matches("AssumeRole")
        & act["issued_access_key_id"].notna()
        & (p["include_services"] | (act["identity_type"].astype(object) != "system"))
    )
    if not len(assume):
        return assume
    issued = dict(zip(assume["issued_access_key_id"].astype(str), assume.index, strict=False))
    kms_calls = ctx.rows(
        (act["service"].astype(object) == "kms")
        & act["access_key_id"].isin(list(issued))
        & (act["action"].astype(object) != "AssumeRole")
    )
    if not len(kms_calls):
        return kms_calls
    used = sorted({issued[k] for k in kms_calls["access_key_id"].astype(str)})
    origin = assume.loc[used]
    nets = ctx.network.loc[origin.index]
    service = (origin["identity_type"].astype(object) == "system").to_numpy()
    path = np.array(
        [
            ctx.paths.severity(o, r, n)
            for o, r, n in zip(origin["origin"], origin["role_arn"], nets, strict=True)
        ],
        dtype=object,
    )
    # the new origin on a role is D19's and D20's; here only a new network raises it
    path = np.where(path == "high", "high", "low")
    severity = pd.Series(np.where(service, "low", path), index=origin.index)
    key_of_path: pd.Series = (
        origin["origin"].astype(str)
        + "|"
        + origin["role_arn"].astype(str).str.lower()
        + "|"
        + nets.astype(str)
        + np.where((origin["time"] >= ctx.baseline_end).to_numpy(), "|window", "|baseline")
    )
    path_of_key: dict[str, str] = dict(
        zip(origin["issued_access_key_id"].astype(str), key_of_path, strict=True)
    )
    severity_of_key = dict(zip(origin["issued_access_key_id"].astype(str), severity, strict=True))
    rows = pd.concat([origin, kms_calls])
    key = (
        rows["issued_access_key_id"]
        .astype(object)
        .where(rows.index.isin(origin.index), rows["access_key_id"])
        .astype(str)
    )
    made_here = pd.Series(rows.index.isin(origin.index), index=rows.index)
    made_here = made_here & ~rows.index.duplicated()

    def summary(g: pd.DataFrame) -> str:
        flags = made_here.loc[g.index].to_numpy()
        made, calls = g[flags], g[~flags]
        return (
            f"{len(made)} STS keys issued to {names(made['role_arn'])} for origin "
            f"{names(made['origin'], 1)} (AssumeRole from {names(made['client_ip'])}); "
            f"{len(calls)} KMS calls ({names(calls['action'])}) from {names(calls['client_ip'])}"
        )

    rows = rows.reset_index(drop=True)
    made_here = made_here.reset_index(drop=True)
    key = key.reset_index(drop=True)
    return label(
        rows,
        pd.factorize(key.map(path_of_key))[0],
        "access-key:" + key,
        summary,
        actor=rows["actor"],
        severity=key.map(severity_of_key).to_numpy(),
    )


# -- the dask facets: which rows each rule reads, day by day ----------------------------


def _concat(days: list[pd.DataFrame], p: Any) -> pd.DataFrame:
    kept = [d for d in days if len(d)]
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()


@new_client_key_used.gather(_concat)
def _created_client_keys(ctx: Context, p: Any) -> pd.DataFrame:
    """D09, every day: the client keys created (key, AAP, time)."""
    created = ctx.rows(from_actiontrail(ctx) & ctx.ok & ctx.action_is("CreateClientKey"))
    rows = []
    for moment, response, request in zip(
        created["time"],
        ctx.nested(created, "responseElements"),
        ctx.nested(created, "requestParameters"),
        strict=True,
    ):
        key = response.get("ClientKeyId") or response.get("KeyId")
        if isinstance(key, str):
            rows.append({"key": key, "aap": request.get("AapName"), "time": moment})
    return pd.DataFrame(rows, columns=["key", "aap", "time"])


@new_client_key_used.select
def _client_key_rows(ctx: Context, p: Any) -> pd.Series:
    """D09: the creations, every use of a created key, and each AAP address's first row.

    The first row of each of the AAP's addresses that day is enough to know what the
    AAP used before the key existed.
    """
    act = ctx.act
    made = ctx.facts.get("D09")
    if made is None or not len(made):
        made = _created_client_keys(ctx, p)
    creations = from_actiontrail(ctx) & ctx.ok & ctx.action_is("CreateClientKey")
    uses = act["access_key_id"].isin(list(made["key"].astype(str)))
    aaps = act["principal_id"].isin([a for a in made["aap"] if isinstance(a, str)])
    pairs = act.loc[aaps, ["principal_id", "client_ip"]].astype(object).astype(str)
    firsts = pd.Series(False, index=act.index)
    firsts.loc[pairs.index[~pairs.duplicated().to_numpy()]] = True
    return creations | uses | firsts


@change_then_use.gather(_concat)
def _control_changes(ctx: Context, p: Any) -> pd.DataFrame:
    """D29, every day: the control-plane changes made with an access key (key, time)."""
    act = ctx.act
    mask = from_actiontrail(ctx) & act["access_key_id"].notna() & ctx.ok & ctx.action_is(*CONTROL)
    return pd.DataFrame(
        {
            "key": act.loc[mask, "access_key_id"].astype(str).to_numpy(),
            "time": act.loc[mask, "time"],
        }
    )


@change_then_use.select
def _changes_and_uses(ctx: Context, p: Any) -> pd.Series:
    """D29: the changes, and data-plane calls by the same key within ``within`` after one."""
    act = ctx.act
    keyed = act["access_key_id"].notna() & ctx.ok
    changes = from_actiontrail(ctx) & keyed & ctx.action_is(*CONTROL)
    made = ctx.facts.get("D29")
    if made is None or not len(made):
        made = _control_changes(ctx, p)
    uses = keyed & ctx.action_is(*DATA_PLANE)
    if not len(made) or not uses.any():
        return changes
    left = pd.DataFrame(
        {"time": act.loc[uses, "time"], "key": act.loc[uses, "access_key_id"].astype(str)}
    ).reset_index()
    right = made.rename(columns={"time": "changed"}).sort_values("changed", kind="stable")
    matched = pd.merge_asof(
        left.sort_values("time", kind="stable"),
        right,
        left_on="time",
        right_on="changed",
        by="key",
        direction="backward",
        tolerance=pd.Timedelta(p["within"]),
    ).dropna(subset=["changed"])
    near = pd.Series(False, index=act.index)
    near.loc[matched["index"]] = True
    return changes | near


@sts_key_against_kms.select
def _issued_and_used(ctx: Context, p: Any) -> pd.Series:
    """D30: the AssumeRoles that issued keys, and the KMS calls made with those keys."""
    act = ctx.act
    issued = set(ctx.issued["issued_access_key_id"].astype(str))
    kms = (act["service"].astype(object) == "kms") & (act["action"].astype(object) != "AssumeRole")
    return issuance_mask(act) | (kms & act["access_key_id"].isin(list(issued)))
