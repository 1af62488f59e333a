"""Rules on AAP use against the AAP's own configuration (D31-D33).

They read :func:`kmsforensics.aap.calls`: every AAP call of the KMS log, attributed to
its AAP and judged against the configuration in force at its time (ActionTrail AAP
events and the configuration exports among the evidence), computed once per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd

from ... import aap
from ...aap.review import after_deletion
from ...aap.values import grants, inside, needed_permission
from ..context import Context
from ..findings import bursts, label
from ..registry import Params, rule
from .common import from_actiontrail, from_kms_log, names, single_events


@dataclass
class _Run:
    """What D31-D33 share in one run.

    The configuration, the judged calls, and the code of each KMS-log row's request id
    (to select rows by id without comparing strings again).
    """

    config: aap.Configuration
    calls: pd.DataFrame
    request_code: np.ndarray  # per context row: code of its KMS request id, -1 elsewhere
    request_ids: pd.Index  # the distinct request ids of the context's KMS rows


_RUNS: WeakKeyDictionary[Context, _Run] = WeakKeyDictionary()


def _run(ctx: Context) -> _Run:
    if ctx not in _RUNS:
        config = aap.configuration(ctx.case)
        kms = from_kms_log(ctx).to_numpy()
        codes, ids = pd.factorize(ctx.act["request_id"].to_numpy(dtype=object)[kms])
        request_code = np.full(len(ctx.act), -1, dtype=np.int64)
        request_code[kms] = codes
        _RUNS[ctx] = _Run(config, aap.calls(ctx.case, config), request_code, pd.Index(ids))
    return _RUNS[ctx]


def judged(ctx: Context) -> tuple[aap.Configuration, pd.DataFrame]:
    """The case's AAP configuration and judged AAP calls, computed once per run."""
    run = _run(ctx)
    return run.config, run.calls


def _kms_rows(ctx: Context, request_ids: Any) -> pd.Series:
    """KMS-log rows of the context whose request id is one of ``request_ids``."""
    run = _run(ctx)
    wanted = run.request_ids.get_indexer(pd.Index(list(set(map(str, request_ids)))))
    hit = np.isin(run.request_code, wanted[wanted >= 0])
    return pd.Series(hit, index=ctx.act.index)


def _aap_node(calls: pd.DataFrame, ctx: Context, mask: pd.Series) -> pd.Series:
    requests = ctx.act.loc[mask, "request_id"].astype(object)
    mine = calls[calls["request_id"].isin(set(requests.dropna()))]
    by_request = dict(
        zip(mine["request_id"], "aap:" + mine["aap_account"] + "/" + mine["aap"], strict=True)
    )
    entity = pd.Series(np.nan, index=ctx.act.index, dtype=object)
    entity[mask] = requests.map(by_request)
    return entity


@rule(
    "D31",
    "AAP used from outside its network rules",
    severity="high",
    technique="T1078.004, T1555.006",
    kind="correlation",
    sources=("kms", "actiontrail"),
)
def aap_outside_network(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """Successful AAP calls from an address outside the network rules in force then.

    The network rules are those of the policy that allowed the call (else of every
    policy of the AAP), as ActionTrail's AAP events and the configuration exports say
    at the call's time. KMS refuses such calls, so a success means the configuration
    seen is not the one in force (a change missing from the evidence), or the log is
    not what the gateway wrote.

    Reads
    -----
    KMS-log ``client_ip``, ``principal_id``, ``access_key_id``,
    ``access_key_fingerprint``; ActionTrail ``CreateNetworkRule`` / ``UpdateNetworkRule``
    / ``*Policy`` / ``*ApplicationAccessPoint`` ``requestParameters``; exports of
    ``DescribeNetworkRule`` and ``DescribePolicy``.

    False positives
    ---------------
    An export older or newer than stated (``exported_at``); evidence that starts after
    a network rule was changed; NAT in front of the gateway.
    """
    _, calls = judged(ctx)
    hits = calls[calls["ok"].astype(bool) & calls["inside"].eq(False)]
    mask = _kms_rows(ctx, hits["request_id"])
    entity = _aap_node(calls, ctx, mask)
    return single_events(
        ctx,
        mask,
        entity,
        lambda g: (
            f"{len(g)} calls of {names(entity.loc[g.index])} from {names(g['client_ip'])}, "
            "outside its network rules"
        ),
    )


@dataclass(frozen=True)
class AapBroadenedParams(Params):
    """D32's parameters."""

    within_hours: int = 24


@rule(
    "D32",
    "AAP broadened, then new use of what it newly allowed",
    severity="high",
    technique="T1098.001, T1555.006",
    kind="correlation",
    sources=("actiontrail", "kms"),
    params=AapBroadenedParams,
)
def aap_broadened_then_used(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """D08 with the use attached: an AAP change that widened it, then calls it enabled.

    A widening is an element an ActionTrail event added to an AAP's configuration (a
    policy resource, a permission, a policy, a network, a client key). The use is the
    AAP's successful calls within ``within_hours`` that only the new element allows
    and that touch something the AAP had not used before the change (a resource, an
    address or a client key).

    Reads
    -----
    ActionTrail ``UpdatePolicy``, ``UpdateNetworkRule``,
    ``UpdateApplicationAccessPoint``, ``CreateClientKey`` (``requestParameters``,
    ``responseElements.ClientKeyId``); KMS-log AAP calls.

    False positives
    ---------------
    Onboarding a new secret or key for an application, then its first use.
    """
    config, calls = judged(ctx)
    frame = config.frame
    added = frame[
        frame["source"].str.contains("actiontrail")
        & frame["item"].isin(["resource", "permission", "policy", "network", "client-key"])
    ]
    if not len(added):
        return ctx.rows(np.zeros(len(ctx.act), dtype=bool))
    ok = calls.loc[calls["ok"].astype(bool), _READ]
    # when the AAP first used each value: "touches something not used before" is then
    # a comparison with the change's time
    for column in set(_NEW_OF.values()):
        by_value = ok.groupby(["aap_account", "aap", column], sort=False, dropna=False)
        ok = ok.assign(**{f"_first_{column}": by_value["time"].transform("min")})
    positions = ok.groupby(["aap_account", "aap"], sort=False).indices
    window = pd.Timedelta(hours=float(p["within_hours"]))
    incidents: dict[str, tuple[set[str], set[str], list[str]]] = {}
    for row in added.itertuples(index=False):
        mine = ok.iloc[positions.get((row.account_id, row.aap), np.empty(0, dtype=np.int64))]
        since = pd.Timestamp(str(row.since))
        after = mine[(mine["time"] >= since) & (mine["time"] <= since + window)]
        hits, what = _enabled(after, str(row.item), str(row.value), str(row.policy))
        enabled = hits[hits[f"_first_{_NEW_OF[str(row.item)]}"] >= since]
        if not len(enabled):
            continue
        events = {e for e in str(row.evidence).split(", ") if e}
        key = f"{row.account_id}/{row.aap}|{sorted(events)}"
        entry = incidents.setdefault(key, (events, set(), []))
        entry[1].update(enabled["request_id"].astype(str))
        entry[2].append(f"{row.item} {row.value}: {len(enabled)} calls, {what}")
    if not incidents:
        return ctx.rows(np.zeros(len(ctx.act), dtype=bool))
    out = []
    for number, (key, (events, requests, grown)) in enumerate(incidents.items()):
        mask = _kms_rows(ctx, requests) | (
            from_actiontrail(ctx) & ctx.act["event_id"].astype(object).isin(events)
        )
        rows = ctx.rows(mask)
        node = "aap:" + key.split("|")[0]
        change = rows[rows["source"].astype(object) == "actiontrail"]
        summary = (
            f"{names(change['action'])} widened {node}, then {len(rows) - len(change)} calls "
            f"used what it newly allowed ({'; '.join(grown)})"
        )
        out.append(label(rows, np.full(len(rows), number), node, summary, actor=rows["actor"]))
    return pd.concat(out)


#: The columns of the judged calls D32 reads.
_READ = [
    "aap_account",
    "aap",
    "time",
    "client_key",
    "client_ip",
    "operation",
    "resource",
    "policies",
    "grants",
    "request_id",
]
#: What a call must touch for the first time to count as using a widening, by its kind.
_NEW_OF = {
    "client-key": "client_key",
    "network": "client_ip",
    "resource": "resource",
    "permission": "resource",
    "policy": "resource",
}


def _enabled(after: pd.DataFrame, item: str, value: str, policy: str) -> tuple[pd.DataFrame, str]:
    """The calls after a widening that the new element allowed (and what they show)."""
    if item == "client-key":
        return after[after["client_key"] == value], "the new key"
    if item == "network":
        return after[[inside(ip, [value]) for ip in after["client_ip"]]], "from new addresses"
    if item == "resource":
        grant = f"{policy}:{value}"
        hits = after[after["grants"].astype(str).str.contains(grant, regex=False)]
        hits = hits[[grants(value, r) for r in hits["resource"]]]
    elif item == "permission":
        needs = after["operation"].map(needed_permission)
        hits = after[(needs == value) & after["policies"].astype(str).str.contains(policy)]
    else:  # policy
        hits = after[after["policies"].astype(str).str.contains(value, regex=False)]
    return hits, "on resources not used before"


@dataclass(frozen=True)
class KeyAfterDeletionParams(Params):
    """D33's parameters."""

    grace_minutes: int = 5


@rule(
    "D33",
    "AAP client key used after its deletion",
    severity="critical",
    technique="T1078.004",
    kind="correlation",
    sources=("actiontrail", "kms"),
    params=KeyAfterDeletionParams,
)
def client_key_after_deletion(ctx: Context, p: dict[str, Any]) -> pd.DataFrame:
    """Successful calls with a client key later than ``DeleteClientKey`` deleted it.

    Calls within ``grace_minutes`` of the deletion are taken as the deletion taking
    effect. The key is matched by ``access_key_id``, or by its fingerprint where the
    row has no key id.

    Reads
    -----
    ActionTrail ``DeleteClientKey`` ``requestParameters.ClientKeyId``; KMS-log
    ``access_key_id``, ``access_key_fingerprint``, ``status_code``.

    False positives
    ---------------
    Clock skew between the two logs; a key deleted and the same id restored (not
    known to happen).
    """
    _, calls = judged(ctx)
    late = after_deletion(calls, pd.Timedelta(minutes=float(p["grace_minutes"])))
    hits = calls[calls["ok"].astype(bool) & late.astype(bool)]
    mask = _kms_rows(ctx, hits["request_id"])
    deleted = dict(zip(hits["request_id"], hits["deleted_at"], strict=True))
    entity = pd.Series(np.nan, index=ctx.act.index, dtype=object)
    by_request = dict(zip(hits["request_id"], "client-key:" + hits["client_key"], strict=True))
    entity[mask] = ctx.act.loc[mask, "request_id"].astype(object).map(by_request)
    rows = ctx.rows(mask)
    entities = entity[mask]
    incident = bursts(rows["time"], entities, pd.Timedelta(hours=24))
    return label(
        rows,
        incident,
        entities,
        lambda g: (
            f"{len(g)} calls with {names(entities.loc[g.index])} after its deletion at "
            f"{min(deleted[r] for r in g['request_id'])}, from {names(g['client_ip'])}"
        ),
        actor=rows["actor"],
    )
