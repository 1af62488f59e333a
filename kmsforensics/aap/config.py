"""AAP configuration over time: what each application access point was allowed, when.

The changes (ActionTrail events and exports) are applied in time order to the
objects they touch; at every change the configuration of every AAP is composed from
its objects (AAP -> its up to three policies -> their permissions, resources and
network rules -> the rules' addresses; and the client keys bound to it), and each
element is kept with the interval during which it was in force.

Examples
--------
>>> import pandas as pd
>>> from kmsforensics.aap.changes import Change
>>> t = pd.Timestamp("2026-03-01", tz="UTC")
>>> changes = [
...     Change(t, "network-rule", "1", "net", "create", {"source_ips": ["10.0.1.0/24"]}),
...     Change(t, "policy", "1", "pol", "create",
...            {"permissions": ["CryptoServiceSecretUser"], "resources": ["secret/app/*"],
...             "network_rules": ["net"]}),
...     Change(t, "aap", "1", "app", "create", {"policies": ["pol"]}),
...     Change(t + pd.Timedelta("2h"), "policy", "1", "pol", "update",
...            {"resources": ["secret/*"]}),
... ]
>>> frame = compose(changes)
>>> resources = frame[frame.item == "resource"]
>>> [(r.value, str(r.since), str(r.until)) for r in resources.itertuples()][0]
('secret/app/*', '2026-03-01 00:00:00+00:00', '2026-03-01 02:00:00+00:00')
>>> resources.value.tolist(), resources.until.isna().tolist()
(['secret/app/*', 'secret/*'], [False, True])
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .changes import Change

#: Columns of ``kf.aap_config``.
COLUMNS = [
    "account_id",
    "aap",
    "item",
    "value",
    "policy",
    "network_rule",
    "since",
    "until",
    "source",
    "evidence",
]

Key = tuple[str, str, str]  # kind, account, name


def compose(changes: list[Change]) -> pd.DataFrame:
    """Apply the changes in time order; return every element with its interval."""
    ordered = sorted(changes, key=lambda c: (c.time, c.action == "delete"))
    state: dict[Key, dict[str, Any]] = {}
    open_rows: dict[tuple[str, ...], dict[str, Any]] = {}
    closed: list[dict[str, Any]] = []
    i = 0
    while i < len(ordered):
        moment = ordered[i].time
        touched: list[Change] = []
        while i < len(ordered) and ordered[i].time == moment:
            _apply(state, ordered[i])
            touched.append(ordered[i])
            i += 1
        current = _elements(state)
        for key in list(open_rows):
            if key not in current:
                row = open_rows.pop(key)
                row["until"] = moment
                closed.append(row)
        for key, extra in current.items():
            if key not in open_rows:
                source, evidence = _cause(touched, extra["objects"])
                open_rows[key] = {
                    **dict(zip(COLUMNS[:6], key, strict=True)),
                    "since": moment,
                    "until": pd.NaT,
                    "source": source,
                    "evidence": evidence,
                }
    rows = closed + list(open_rows.values())
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["since"] = pd.to_datetime(frame["since"], utc=True)
    frame["until"] = pd.to_datetime(frame["until"], utc=True)
    order = {"policy": 0, "permission": 1, "resource": 2, "network-rule": 3, "network": 4}
    frame["_o"] = frame["item"].map(order).fillna(5)
    frame = frame.sort_values(["account_id", "aap", "_o", "since", "value"], kind="stable")
    return frame.drop(columns="_o").reset_index(drop=True)


def _apply(state: dict[Key, dict[str, Any]], change: Change) -> None:
    key = (change.kind, change.account, change.name)
    if change.kind == "client-key" and not change.name:
        # A CreateClientKey whose response was not logged: the key is known by its AAP.
        key = (change.kind, change.account, f"(unnamed key of {change.fields.get('aap', '?')})")
    if change.action == "delete":
        found = _find(state, key)
        if found is not None:
            state[found]["_deleted"] = True
            state[found]["_deleted_at"] = change.time
        return
    entry = state.get(key)
    if entry is None or entry.get("_deleted"):
        entry = {"_evidence": []}
        state[key] = entry
    entry.update(change.fields)
    entry["_evidence"] = [*entry.get("_evidence", []), (change.source_label, change.evidence)]


def _find(state: dict[Key, dict[str, Any]], key: Key) -> Key | None:
    if key in state:
        return key
    kind, account, name = key
    for other in ((kind, "", name), *(k for k in state if k[0] == kind and k[2] == name)):
        if other in state and (not account or not other[1] or other[1] == account):
            return other
    return None


def _elements(state: dict[Key, dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Every element of every live AAP now: (account, aap, item, value, policy, rule)."""
    live = {k: v for k, v in state.items() if not v.get("_deleted")}
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for key, aap in live.items():
        if key[0] == "aap":
            for element, objects in _of_aap(live, key, aap):
                out[(key[1], key[2], *element)] = {"objects": (key, *objects)}
    return out


def _of_aap(
    live: dict[Key, dict[str, Any]], key: Key, aap: dict[str, Any]
) -> list[tuple[tuple[str, str, str, str], tuple[Key, ...]]]:
    """Return the elements of one AAP: ((item, value, policy, rule), objects they come from)."""
    _, account, name = key
    out: list[tuple[tuple[str, str, str, str], tuple[Key, ...]]] = []
    for policy_name in aap.get("policies", []):
        pkey = _find(live, ("policy", account, policy_name))
        via: tuple[Key, ...] = (pkey,) if pkey else ()
        policy = live[pkey] if pkey else {}
        out.append((("policy", policy_name, policy_name, ""), via))
        for item, field in (("permission", "permissions"), ("resource", "resources")):
            out += [((item, v, policy_name, ""), via) for v in policy.get(field, [])]
        for rule_name in policy.get("network_rules", []):
            rkey = _find(live, ("network-rule", account, rule_name))
            out.append((("network-rule", rule_name, policy_name, rule_name), via))
            addresses = live[rkey].get("source_ips", []) if rkey else []
            found: tuple[Key, ...] = (*via, rkey) if rkey else via
            out += [(("network", a, policy_name, rule_name), found) for a in addresses]
    for (kind, k_account, k_name), entry in live.items():
        if kind == "client-key" and entry.get("aap") == name and k_account in ("", account):
            out.append((("client-key", k_name, "", ""), ((kind, k_account, k_name),)))
    return out


def _cause(touched: list[Change], objects: tuple[Key, ...]) -> tuple[str, str]:
    """Return the source and evidence of the change(s) at this moment that concern an element."""
    names = {(kind, name) for kind, _, name in objects}
    mine = [c for c in touched if (c.kind, c.name) in names] or touched
    sources = sorted({c.source_label for c in mine})
    return ", ".join(sources), ", ".join(dict.fromkeys(c.evidence for c in mine if c.evidence))
