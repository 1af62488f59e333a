"""Correlations across the two logs: D09, D29, D30.

A new client key then its use, a change then use, STS keys from AssumeRole against KMS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..context import Context
from ..findings import bursts, label
from ..registry import rule
from .common import (
    AAP_CHANGES,
    DATA_PLANE,
    KEY_POLICY,
    RAM_CHANGES,
    SECRET_TAMPERING,
    from_actiontrail,
    names,
    role_owner,
    who_from,
)


@rule(
    "D09",
    "New client key created, then used from a new address",
    severity="high",
    technique="T1098.001, T1555.006",
    kind="correlation",
    sources=("actiontrail", "kms"),
    within_hours=24,
)
def new_client_key_used(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
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


@rule(
    "D29",
    "Control-plane change, then data-plane access by the same key",
    severity="high",
    technique="T1098, T1548.005, T1555.006",
    kind="correlation",
    sources=("actiontrail", "kms"),
    within="60min",
)
def change_then_use(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
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


@rule(
    "D30",
    "STS session key from AssumeRole used against KMS",
    severity="low",
    technique="T1550.001, T1555.006",
    kind="correlation",
    sources=("actiontrail", "kms"),
    include_services=False,
)
def sts_key_against_kms(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """The STS key an AssumeRole issued, seen calling KMS: the chain source -> role -> KMS.

    Roles that cloud services assume for workloads (ECS, ACK) are left out unless
    ``include_services`` (then low). Medium when a person, a long-term key or another
    session assumed the role; high when that AssumeRole crossed accounts from an
    address the caller had not used before the window.

    Reads
    -----
    ActionTrail ``eventName`` (AssumeRole*), ``responseElements.Credentials.AccessKeyId``
    (``issued_access_key_id``), ``requestParameters.RoleArn``, ``sourceIpAddress``;
    KMS-log and ActionTrail ``access_key_id`` of the KMS calls.

    False positives
    ---------------
    Applications that assume a role on one host and call KMS from another by design;
    every workload role does this, hence the low default.
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
    origin = assume.loc[[issued[k] for k in kms_calls["access_key_id"].astype(str)]]
    history = ctx.rows(
        from_actiontrail(ctx) & ctx.action_matches("AssumeRole") & (act["time"] < ctx.baseline_end)
    )
    seen = set(zip(history["principal"].astype(str), history["client_ip"].astype(str), strict=True))
    owner = role_owner(origin["role_arn"])
    crossing = (owner != origin["account_id"].astype(object).astype(str)).to_numpy()
    new_place = np.array(
        [
            (a, b) not in seen
            for a, b in zip(
                origin["principal"].astype(str), origin["client_ip"].astype(str), strict=True
            )
        ]
    )
    service = (origin["identity_type"].astype(object) == "system").to_numpy()
    severity = np.where(service, "low", np.where(crossing & new_place, "high", "medium"))
    rows = pd.concat([assume.loc[sorted(set(origin.index))], kms_calls])
    key = (
        rows["issued_access_key_id"]
        .astype(object)
        .where(rows["issued_access_key_id"].notna(), rows["access_key_id"])
    )
    rank = {"low": 0, "medium": 1, "high": 2}
    levels = pd.Series(severity, index=kms_calls.index)
    per_key = levels.groupby(kms_calls["access_key_id"].astype(str)).agg(
        lambda s: max(s, key=rank.__getitem__)
    )
    made_here = (
        rows["action"].astype(str).str.startswith("AssumeRole")
        & rows["issued_access_key_id"].notna()
    )

    def summary(g: pd.DataFrame) -> str:
        made = g[made_here.loc[g.index].to_numpy()]
        used = g[~made_here.loc[g.index].to_numpy()]
        return (
            f"{names(made['issued_access_key_id'])} issued to {names(made['actor'])} "
            f"(AssumeRole of {names(made['role_arn'])} from {names(made['client_ip'])}); "
            f"{len(used)} KMS calls ({names(used['action'])}) from {names(used['client_ip'])}"
        )

    return label(
        rows,
        pd.factorize(key.astype(str))[0],
        "access-key:" + key.astype(str),
        summary,
        actor=rows["actor"],
        severity=key.astype(str).map(per_key).to_numpy(),
    )
