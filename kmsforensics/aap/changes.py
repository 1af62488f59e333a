"""AAP configuration changes read from ActionTrail management events.

Each successful ``Create/Update/Delete`` call of an application access point, a
permission policy, a network rule or a client key becomes one :class:`Change`: the
object it touches, the fields its ``requestParameters`` set, and the event that proves
it. Updates set only the fields they carry (the API leaves the others as they were).

Field names are those of the KMS OpenAPI 2016-01-20 (docs/aap.md): ``Name``,
``Policies``; ``Permissions``, ``Resources``, ``AccessControlRules``, ``KmsInstance``;
``SourcePrivateIp``, ``Type``; ``AapName``, ``NotBefore``, ``NotAfter`` and the
response's ``ClientKeyId``. ``Scope`` and ``RbacPermissionTemplate`` are read as
``KmsInstance`` and ``Permissions`` where a tool writes them so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd

from .values import network_rules, permission_name, text_list

#: eventName -> (object kind, what it does).
OPERATIONS: dict[str, tuple[str, str]] = {
    "CreateApplicationAccessPoint": ("aap", "create"),
    "UpdateApplicationAccessPoint": ("aap", "update"),
    "DeleteApplicationAccessPoint": ("aap", "delete"),
    "CreatePolicy": ("policy", "create"),
    "UpdatePolicy": ("policy", "update"),
    "DeletePolicy": ("policy", "delete"),
    "CreateNetworkRule": ("network-rule", "create"),
    "UpdateNetworkRule": ("network-rule", "update"),
    "DeleteNetworkRule": ("network-rule", "delete"),
    "CreateClientKey": ("client-key", "create"),
    "DeleteClientKey": ("client-key", "delete"),
}


@dataclass
class Change:
    """One change of one configuration object.

    Attributes
    ----------
    time : pandas.Timestamp
        When it took effect (the event time, or the time an export stands for).
    kind : str
        ``aap``, ``policy``, ``network-rule`` or ``client-key``.
    account : str
        The owning account (``""`` when the source does not say).
    name : str
        The object's name (the client key id for client keys; ``""`` if unknown).
    action : str
        ``create``, ``update``, ``delete`` or ``export``.
    fields : dict
        What it sets: ``policies``; ``permissions``, ``resources``, ``network_rules``,
        ``kms_instance``; ``source_ips``; ``aap``, ``not_before``, ``not_after``.
    evidence : str
        The event id, or ``<file>#<record>`` of an export.
    """

    time: pd.Timestamp
    kind: str
    account: str
    name: str
    action: str
    fields: dict[str, Any] = field(default_factory=dict)
    evidence: str = ""

    @property
    def source_label(self) -> str:
        """``export`` for a saved response, ``actiontrail`` for an event."""
        return "export" if self.action == "export" else "actiontrail"


def fields_of(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Return the configuration fields a request or a response sets (only those present)."""
    out: dict[str, Any] = {}

    def put(name: str, *keys: str, parse: Any = text_list) -> None:
        for key in keys:
            if key in params and params[key] is not None:
                out[name] = parse(params[key])
                return

    if kind == "aap":
        put("policies", "Policies")
        put("authentication", "AuthenticationMethod", parse=str)
    elif kind == "policy":
        put("permissions", "Permissions", "RbacPermissionTemplate")
        if "permissions" in out:
            out["permissions"] = [permission_name(p) for p in out["permissions"]]
        put("resources", "Resources")
        put("network_rules", "AccessControlRules", parse=network_rules)
        put("kms_instance", "KmsInstance", "KmsInstanceId", "Scope", parse=str)
    elif kind == "network-rule":
        put("source_ips", "SourcePrivateIp", "SourcePrivateIps")
        put("type", "Type", parse=str)
    elif kind == "client-key":
        put("aap", "AapName", parse=str)
        put("not_before", "NotBefore", parse=str)
        put("not_after", "NotAfter", parse=str)
    return out


def from_actiontrail(at: pd.DataFrame) -> list[Change]:
    """Return the configuration changes of successful AAP management events.

    ``at`` is ``case.actiontrail`` (dict columns) or its JSON-text twin.
    """
    if not len(at) or "eventName" not in at:
        return []
    rows = at[at["eventName"].astype(object).isin(list(OPERATIONS))]
    if "errorCode" in rows:
        code = rows["errorCode"].astype(object)
        rows = rows[code.isna() | (code.astype(str) == "")]
    out = []
    wanted = [c for c in _COLUMNS if c in rows.columns]
    for record in rows[wanted].astype(object).to_dict("records"):
        kind, action = OPERATIONS[str(record["eventName"])]
        params = _object(record.get("requestParameters"))
        response = _object(record.get("responseElements"))
        account = _first(record.get("recipientAccountId"), record.get("userIdentity.accountId"))
        if kind == "client-key":
            name = _first(params.get("ClientKeyId"), response.get("ClientKeyId"))
        else:
            name = _first(params.get("Name"), response.get("Name"))
        out.append(
            Change(
                pd.Timestamp(record["eventTime"]),
                kind,
                account,
                name,
                action,
                fields_of(kind, params) if action != "delete" else {},
                str(record.get("eventId") or ""),
            )
        )
    return out


_COLUMNS = (
    "eventTime",
    "eventId",
    "eventName",
    "recipientAccountId",
    "userIdentity.accountId",
    "requestParameters",
    "responseElements",
)


def _object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _first(*values: Any) -> str:
    for value in values:
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()
    return ""
