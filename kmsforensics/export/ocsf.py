"""The case as OCSF 1.5 events: JSON Lines, or Parquet when the name ends in ``.parquet``.

Every ActionTrail event and every KMS access-log record becomes one OCSF event:

================================  =============================  ==========================
evidence                          OCSF class                     ``activity_id``
================================  =============================  ==========================
ActionTrail ``ConsoleSignin``     Authentication (3002)          1 Logon
                                  (``ConsoleSignout``: 2 Logoff)
ActionTrail RAM / IMS user and    Account Change (3001)          by operation (table in
AccessKey changes                                                ``docs/ocsf.md``)
every other ActionTrail event     API Activity (6003)            from the verb (below)
every KMS access-log record       API Activity (6003)            from the verb (below)
a finding (``kf.detect``)         Detection Finding (2004)       1 Create
================================  =============================  ==========================

API Activity takes ``activity_id`` from the operation's verb: ``Create`` 1;
``Read``, ``Get``, ``List``, ``Describe``, ``Decrypt`` 2; ``Update``, ``Set``,
``Enable``, ``Disable`` 3; ``Delete`` and ``ScheduleKeyDeletion`` 4; anything else 99
(Other), and ``type_uid`` is ``600300 + activity_id``. ``metadata.uid`` is the
event's ``eventId`` (ActionTrail) or ``request_id`` (KMS), the ids a finding's
``finding_info.related_events`` name. ``metadata.tags`` holds the provenance: source
file, its SHA-256 and the record number. Fields OCSF has no place for are in
``unmapped`` under their own names (in Parquet, ``unmapped`` is one JSON text column,
since its keys vary from record to record).

Examples
--------
>>> verb_activity("DescribeKey"), verb_activity("Decrypt"), verb_activity("Encrypt")
(2, 2, 99)
>>> verb_activity("ScheduleKeyDeletion"), verb_activity("SetDeletionProtection")
(4, 3)
>>> endpoint("Internal"), endpoint("203.0.113.7"), endpoint("ecs.aliyuncs.com")
({'domain': 'Internal'}, {'ip': '203.0.113.7'}, {'domain': 'ecs.aliyuncs.com'})
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from .._version import __version__
from ..case import Case
from ..handover import _manifest
from ..schema import IDENTITY_TYPES

#: The OCSF schema version the events follow.
OCSF_VERSION = "1.5.0"
PROVIDER = "Alibaba Cloud"

#: Verb prefixes and the API Activity ``activity_id`` they give (first match wins).
VERBS: tuple[tuple[str, int], ...] = (
    ("ScheduleKeyDeletion", 4),
    ("Create", 1),
    ("Read", 2),
    ("Get", 2),
    ("List", 2),
    ("Describe", 2),
    ("Decrypt", 2),
    ("Update", 3),
    ("Set", 3),
    ("Enable", 3),
    ("Disable", 3),
    ("Delete", 4),
)
ACTIVITY_NAMES = {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}

#: RAM and IMS operations that are Account Change (3001) events: ``activity_id`` and
#: its name (99 is Other, named after the operation).
ACCOUNT_CHANGES: dict[str, tuple[int, str]] = {
    "CreateUser": (1, "Create"),
    "DeleteUser": (6, "Delete"),
    "UpdateUser": (99, "Update User"),
    "CreateAccessKey": (99, "Create Access Key"),
    "DeleteAccessKey": (99, "Delete Access Key"),
    "UpdateAccessKey": (99, "Update Access Key"),
    "CreateLoginProfile": (2, "Enable"),
    "DeleteLoginProfile": (5, "Disable"),
    "UpdateLoginProfile": (4, "Password Reset"),
    "ChangePassword": (3, "Password Change"),
    "AttachPolicyToUser": (7, "Attach Policy"),
    "DetachPolicyFromUser": (8, "Detach Policy"),
    "BindMFADevice": (10, "MFA Factor Enable"),
    "UnbindMFADevice": (11, "MFA Factor Disable"),
}
ACCOUNT_SERVICES = frozenset({"ram", "ims"})
SIGN_IN = {"ConsoleSignin": (1, "Logon"), "ConsoleSignout": (2, "Logoff")}

#: Unified identity type -> OCSF ``user.type_id`` (1 User, 2 Admin, 3 System, 99 Other).
USER_TYPES = {"ram-user": 1, "cloudsso-user": 1, "account": 2, "system": 3}
USER_TYPE_NAMES = {0: "Unknown", 1: "User", 2: "Admin", 3: "System"}
SEVERITY_IDS = {"low": 2, "medium": 3, "high": 4, "critical": 5}

#: ActionTrail columns that the loader derives (not fields of the event).
_AT_DERIVED = frozenset(
    {
        "accountId", "roleId", "roleName", "sessionName", "stsTokenPlayerUid",
        "targetRoleAccountId", "targetRoleName", "targetRoleId", "targetSessionName",
        "issuedAccessKeyId", "keyId", "secretName", "mfaChecked", "referencedAccessKeyIds",
        "assumedRoleId", "assumedRoleArn", "requestParameterJson",
        "source_file", "source_record", "source_item",
    }
)  # fmt: skip
_AT_MAPPED = frozenset(
    {
        "eventTime", "eventId", "eventName", "eventVersion", "eventSource", "acsRegion",
        "serviceName", "apiVersion", "requestId", "errorCode", "errorMessage",
        "sourceIpAddress", "userAgent", "vpcId", "userIdentity.type",
        "userIdentity.accountId", "userIdentity.principalId", "userIdentity.userName",
        "userIdentity.accessKeyId", "userIdentity.sessionContext.attributes.mfaAuthenticated",
        "userIdentity.sessionContext.attributes.creationDate",
    }
)  # fmt: skip
_KMS_MAPPED = frozenset(
    {
        "time", "access_key_id", "account_id", "api_name", "api_version", "client_ip",
        "error_message", "error_code", "identity_type", "instance_id", "principal_id",
        "region_id", "request_id", "status_code", "useragent", "share_gateway_api_name",
        "source_file", "source_record", "source_item",
    }
)  # fmt: skip
#: Prefixes of columns the loader lifts out of nested objects (kept whole in ``unmapped``).
_LIFTED = ("requestParameters.", "additionalEventData.")
Row = Mapping[Any, Any]
_VERB = re.compile("^(" + "|".join(v for v, _ in VERBS) + ")(?=[A-Z]|$)")


def verb_activity(operation: str | None) -> int:
    """Return the API Activity ``activity_id`` of an operation name (99 when no verb fits)."""
    match = _VERB.match(operation or "")
    return dict(VERBS)[match.group(1)] if match else 99


def endpoint(address: Any) -> dict[str, str]:
    """Return an OCSF network endpoint: ``ip`` for an address, else ``domain``."""
    text = str(address).strip()
    try:
        return {"ip": str(ipaddress.ip_address(text))}
    except ValueError:
        return {"domain": text}


def export_ocsf(case: Case, path: str | Path, findings: pd.DataFrame | None = None) -> Path:
    """Write the case as OCSF 1.5 events, one per line (or Parquet for ``.parquet``).

    Parameters
    ----------
    case : Case
        The evidence: every ActionTrail event and KMS access-log record is written.
    path : str or Path
        The file; a name ending in ``.parquet`` gives Parquet, anything else JSON Lines.
    findings : DataFrame, optional
        From ``kf.detect`` (or ``kf.detect_sigma``): each becomes a Detection Finding.

    Returns
    -------
    Path
        The file written; ``<path>.manifest.json`` beside it records the evidence.

    Examples
    --------
    >>> import kmsforensics as kf, tempfile, pathlib, json
    >>> case = kf.load(kf.datasets.path("vendor-samples"), progress=False)
    >>> out = kf.export_ocsf(case, pathlib.Path(tempfile.mkdtemp()) / "case.ocsf.jsonl")
    >>> first = json.loads(out.read_text().splitlines()[0])
    >>> first["class_uid"] in (3001, 3002, 6003)
    True
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        for batch in _batches(events(case, findings), 50_000):
            count += len(batch)
            rows = [
                {**r, "unmapped": json.dumps(r.get("unmapped", {}), default=str)} for r in batch
            ]
            tables.append(pa.Table.from_struct_array(pa.array(rows)))  # every key of every row
        table = (
            pa.concat_tables(tables, promote_options="permissive")
            if tables
            else pa.table({"class_uid": pa.array([], pa.int64())})
        )
        pq.write_table(table, out)
    else:
        with out.open("wb") as handle:
            for record in events(case, findings):
                handle.write(orjson.dumps(record, default=str) + b"\n")
                count += 1
    _manifest(out, case, f"OCSF {OCSF_VERSION} events", count)
    return out


def events(case: Case, findings: pd.DataFrame | None = None) -> Iterator[dict[str, Any]]:
    """Yield the OCSF events of a case: ActionTrail, then KMS, then findings.

    A case on the dask engine is read one partition (a day) at a time.
    """
    hashes = _hashes(case)
    for part in _parts(case.actiontrail):
        for row in part.to_dict("records"):
            yield actiontrail_event(row, hashes)
    for part in _parts(case.kms):
        for row in part.to_dict("records"):
            yield kms_event(row, hashes)
    if findings is not None:
        for finding in findings.to_dict("records"):
            yield finding_event(finding)


def _parts(frame: Any) -> Iterator[pd.DataFrame]:
    """Yield the frame itself, or each partition of a dask DataFrame in turn."""
    if hasattr(frame, "to_delayed"):
        for part in frame.to_delayed():
            yield part.compute()
    else:
        yield frame


def _batches(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def actiontrail_event(row: Row, hashes: Mapping[str, str]) -> dict[str, Any]:
    """Map one ActionTrail event (a row of ``case.actiontrail``) to an OCSF event."""
    name = _text(row.get("eventName")) or ""
    service = _text(row.get("serviceName")) or ""
    success = _at_success(row)
    user = _at_user(row)
    common: dict[str, Any] = {
        "time": _ms(row.get("eventTime")),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 1 if success else 2,
        "status": "Success" if success else "Failure",
        "actor": _clean({"user": user, "session": _at_session(row)}),
        "src_endpoint": _source(row.get("sourceIpAddress"), vpc=row.get("vpcId")),
        "http_request": _clean({"user_agent": _text(row.get("userAgent"))}),
        "cloud": _cloud(row.get("acsRegion"), user.get("account", {}).get("uid")),
        "metadata": _metadata(row, "ActionTrail", row.get("eventId"), hashes, service),
        "unmapped": _unmapped(row, _AT_MAPPED | _AT_DERIVED),
    }
    common["status_code"] = _text(row.get("errorCode"))
    common["status_detail"] = _text(row.get("errorMessage"))
    if name in SIGN_IN:
        activity, activity_name = SIGN_IN[name]
        event = {
            "class_uid": 3002,
            "class_name": "Authentication",
            "category_uid": 3,
            "category_name": "Identity & Access Management",
            "activity_id": activity,
            "activity_name": activity_name,
            "type_uid": 300200 + activity,
            "user": user,
            "is_mfa": _bool(row.get("mfaChecked")),
            "service": {"name": service or "AasSub"},
            "dst_endpoint": _clean({"domain": _text(row.get("eventSource"))}),
            **common,
        }
        return _clean(event)
    if service.lower() in ACCOUNT_SERVICES and name in ACCOUNT_CHANGES:
        activity, activity_name = ACCOUNT_CHANGES[name]
        event = {
            "class_uid": 3001,
            "class_name": "Account Change",
            "category_uid": 3,
            "category_name": "Identity & Access Management",
            "activity_id": activity,
            "activity_name": activity_name,
            "type_uid": 300100 + activity,
            "user": _changed_user(row),
            "api": _at_api(row),
            **common,
        }
        policy = _param(row, "PolicyName")
        if policy:
            event["policy"] = _clean({"name": policy, "uid": _param(row, "PolicyType")})
        return _clean(event)
    activity = verb_activity(name)
    event = {
        **_api_activity(activity),
        "api": _at_api(row),
        "resources": _at_resources(row),
        **common,
    }
    return _clean(event)


def _api_activity(activity: int) -> dict[str, Any]:
    """Return the class, category and activity attributes of an API Activity (6003) event."""
    return {
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity,
        "activity_name": ACTIVITY_NAMES[activity],
        "type_uid": 600300 + activity,
    }


def kms_event(row: Row, hashes: Mapping[str, str]) -> dict[str, Any]:
    """Map one KMS access-log record (a row of ``case.kms``) to an API Activity event."""
    operation = _text(row.get("share_gateway_api_name")) or _text(row.get("api_name")) or ""
    activity = verb_activity(operation)
    status = row.get("status_code")
    code = int(str(status)) if _present(status) else None
    error_code, message = _text(row.get("error_code")), _text(row.get("error_message"))
    success = 200 <= code < 300 if code is not None else not (error_code or message)
    raw_type = _text(row.get("identity_type"))
    key = _text(row.get("access_key_id"))
    unified = _unified(raw_type, key)
    principal = _text(row.get("principal_id"))
    account = _text(row.get("account_id"))
    user = _clean(
        {
            "uid": principal,
            "name": principal,
            "uid_alt": _text(row.get("user_id")),
            "credential_uid": key,
            "account": _account(account),
            **_user_type(unified, raw_type),
        }
    )
    event = {
        **_api_activity(activity),
        "time": _ms(row.get("time")),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 1 if success else 2,
        "status": "Success" if success else "Failure",
        "status_code": str(code) if code is not None else error_code,
        "status_detail": message,
        "actor": {"user": user},
        "api": _clean(
            {
                "operation": operation,
                "version": _text(row.get("api_version")),
                "service": _clean({"name": "Kms", "uid": _text(row.get("instance_id"))}),
                "request": _clean({"uid": _text(row.get("request_id"))}),
                "response": _clean({"code": code, "error": error_code, "error_message": message}),
            }
        ),
        "src_endpoint": _source(row.get("client_ip")),
        "http_request": _clean({"user_agent": _text(row.get("useragent"))}),
        "cloud": _cloud(row.get("region_id"), account),
        "resources": _kms_resources(row),
        "metadata": _metadata(row, "KMS instance access log", row.get("request_id"), hashes),
        "unmapped": _unmapped(row, _KMS_MAPPED),
    }
    return _clean(event)


def finding_event(finding: Row) -> dict[str, Any]:
    """Map one finding (a row of ``kf.detect``) to a Detection Finding event."""
    cited = finding.get("evidence")
    evidence = [str(e) for e in (cited if cited is not None else ())]
    rule = str(finding.get("rule_id"))
    first, last = finding.get("first_seen"), finding.get("last_seen")
    digest = hashlib.sha256("\n".join([rule, *evidence]).encode()).hexdigest()[:20]
    uid = f"{rule}:{digest}"
    severity = str(finding.get("severity") or "medium")
    severity_id = SEVERITY_IDS.get(severity, 3)
    entity = _text(finding.get("entity"))
    event = {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "time": _ms(first),
        "severity_id": severity_id,
        "severity": severity.capitalize(),
        "status_id": 1,
        "status": "New",
        "count": int(finding.get("event_count") or len(evidence)),
        "message": _text(finding.get("summary")),
        "finding_info": _clean(
            {
                "uid": uid,
                "title": _text(finding.get("title")),
                "desc": _text(finding.get("summary")),
                "first_seen_time": _ms(first),
                "last_seen_time": _ms(last),
                "analytic": {
                    "uid": rule,
                    "name": _text(finding.get("title")),
                    "type_id": 1,
                    "type": "Rule",
                },
                "attacks": attacks(finding.get("technique")),
                "related_events": [{"uid": e} for e in evidence],
                "related_events_count": len(evidence),
            }
        ),
        "resources": [{"uid": entity, "type": entity.split(":", 1)[0]}] if entity else None,
        "cloud": _cloud(None, _text(finding.get("account_id"))),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": uid,
            "product": {
                "name": "kmsforensics",
                "vendor_name": "kmsforensics",
                "version": __version__,
            },
        },
        "unmapped": _clean(
            {
                "actor": _text(finding.get("actor")),
                "details": details
                if isinstance(details := finding.get("details"), dict) and details
                else None,
            }
        ),
    }
    return _clean(event)


def attacks(technique: Any) -> list[dict[str, Any]] | None:
    """ATT&CK objects of a ``technique`` cell (``"T1555.006, T1078.004"``).

    Examples
    --------
    >>> attacks("T1555.006")
    [{'technique': {'uid': 'T1555'}, 'sub_technique': {'uid': 'T1555.006'}}]
    """
    out = []
    for part in str(technique or "").replace(";", ",").split(","):
        uid = part.strip().upper()
        if not re.fullmatch(r"T\d{4}(\.\d{3})?", uid):
            continue
        item: dict[str, Any] = {"technique": {"uid": uid.split(".")[0]}}
        if "." in uid:
            item["sub_technique"] = {"uid": uid}
        out.append(item)
    return out or None


# -- pieces ---------------------------------------------------------------------------------------


def _at_user(row: Row) -> dict[str, Any]:
    raw_type = _text(row.get("userIdentity.type"))
    unified = _unified(raw_type, None)
    is_role = _present(row.get("roleId"))
    uid = _text(row.get("roleId")) if is_role else _text(row.get("userIdentity.principalId"))
    name = _text(row.get("roleName")) if is_role else _text(row.get("userIdentity.userName"))
    account = _text(row.get("userIdentity.accountId")) or _text(row.get("accountId"))
    return _clean(
        {
            "uid": uid,
            "name": name or uid,
            "uid_alt": _text(row.get("userIdentity.principalId")) if is_role else None,
            "credential_uid": _text(row.get("userIdentity.accessKeyId")),
            "account": _account(account),
            **_user_type(unified, raw_type),
        }
    )


def _at_session(row: Row) -> dict[str, Any] | None:
    mfa = row.get("userIdentity.sessionContext.attributes.mfaAuthenticated")
    if not _present(mfa):
        mfa = row.get("mfaChecked")
    created = row.get("userIdentity.sessionContext.attributes.creationDate")
    role, account = _text(row.get("roleName")), _text(row.get("accountId"))
    session = _clean(
        {
            "uid": _text(row.get("userIdentity.principalId")) if _present(row.get("roleId"))
            else None,
            "is_mfa": _bool(mfa),
            "created_time": _ms(created) if _present(created) else None,
            "issuer": f"acs:ram::{account}:role/{role.lower()}" if role and account else None,
        }
    )  # fmt: skip
    return session or None


def _at_api(row: Row) -> dict[str, Any]:
    return _clean(
        {
            "operation": _text(row.get("eventName")) or "",
            "version": _text(row.get("apiVersion")),
            "service": _clean({"name": _text(row.get("serviceName"))}),
            "request": _clean({"uid": _text(row.get("requestId"))}),
            "response": _clean(
                {"error": _text(row.get("errorCode")),
                 "error_message": _text(row.get("errorMessage"))}
            ),
        }
    )  # fmt: skip


def _changed_user(row: Row) -> dict[str, Any]:
    """Return the user an Account Change is about (RAM ``UserName``, IMS ``UserPrincipalName``)."""
    name = _param(row, "UserName") or _param(row, "UserPrincipalName")
    account = _text(row.get("accountId")) or _text(row.get("userIdentity.accountId"))
    user = _clean(
        {
            "name": name,
            "uid": _param(row, "UserId"),
            "credential_uid": _param(row, "UserAccessKeyId") or _param(row, "AccessKeyId"),
            "account": _account(account),
            "type_id": 1,
            "type": "User",
        }
    )
    if "name" not in user and "uid" not in user:  # the caller changed itself
        user["name"] = _text(row.get("userIdentity.userName")) or "unknown"
    return user


def _at_resources(row: Row) -> list[dict[str, Any]] | None:
    region = _text(row.get("acsRegion"))
    found: dict[str, dict[str, Any]] = {}

    def add(uid: Any, kind: str) -> None:
        text = _text(uid)
        if text and text not in found:
            found[text] = _clean({"uid": text, "type": kind, "region": region})

    add(row.get("keyId"), "kms-key")
    add(row.get("secretName"), "secret")
    add(_param(row, "KmsInstanceId"), "kms-instance")
    add(row.get("requestParameters.RoleArn"), "ram-role")
    names = re.split(r"[;,]", _text(row.get("resourceName")) or "")
    types = re.split(r"[;,]", _text(row.get("resourceType")) or "")
    for i, name in enumerate(n.strip() for n in names):
        add(name, types[i].strip() if i < len(types) and types[i].strip() else "resource")
    return list(found.values()) or None


def _kms_resources(row: Row) -> list[dict[str, Any]] | None:
    region = _text(row.get("region_id"))
    found: dict[str, dict[str, Any]] = {}
    for column, kind in (
        ("key_id", "kms-key"),
        ("key_version_id", "kms-key-version"),
        ("secret_name", "secret"),
        ("resource_id", "resource"),
    ):
        text = _text(row.get(column))
        if text and text not in found:
            found[text] = _clean({"uid": text, "type": kind, "region": region})
    return list(found.values()) or None


def _param(row: Row, name: str) -> str | None:
    params = row.get("requestParameters")
    value = params.get(name) if isinstance(params, dict) else None
    return _text(value) or _text(row.get(f"requestParameters.{name}"))


def _source(address: Any, vpc: Any = None) -> dict[str, Any]:
    text = _text(address)
    point: dict[str, Any] = endpoint(text) if text else {"domain": "unknown"}
    if _text(vpc):
        point["vpc_uid"] = _text(vpc)
    return point


def _cloud(region: Any, account: str | None) -> dict[str, Any]:
    return _clean({"provider": PROVIDER, "region": _text(region), "account": _account(account)})


def _account(uid: str | None) -> dict[str, Any] | None:
    return {"uid": uid, "type_id": 99, "type": "Alibaba Cloud Account"} if uid else None


def _user_type(unified: str, raw: str | None) -> dict[str, Any]:
    type_id = USER_TYPES.get(unified, 0 if unified == "unknown" else 99)
    return {"type_id": type_id, "type": USER_TYPE_NAMES.get(type_id, raw or unified)}


def _unified(raw: str | None, key: str | None) -> str:
    if raw:
        return IDENTITY_TYPES.get(raw, "unknown")
    if key and key.startswith("KAAP."):
        return "aap"
    if key and key.startswith("STS."):
        return "ram-role"
    return "unknown"


def _at_success(row: Row) -> bool:
    message = (_text(row.get("errorMessage")) or "").lower()
    return not _text(row.get("errorCode")) and message in ("", "success")


def _metadata(
    row: Row,
    product: str,
    uid: Any,
    hashes: Mapping[str, str],
    feature: str | None = None,
) -> dict[str, Any]:
    source = _text(row.get("source_file"))
    record = row.get("source_record")
    tags = [
        {"name": "source_file", "value": source},
        {"name": "source_sha256", "value": hashes.get(source or "")},
        {"name": "source_record", "value": str(int(str(record))) if _present(record) else None},
    ]
    item = row.get("source_item")
    if _present(item):
        tags.append({"name": "source_item", "value": str(int(str(item)))})
    return _clean(
        {
            "version": OCSF_VERSION,
            "uid": _text(uid),
            "event_code": _text(row.get("eventName")) or _text(row.get("api_name")),
            "log_name": product,
            "log_provider": PROVIDER,
            "log_version": _text(row.get("eventVersion")) or _text(row.get("version")),
            "profiles": ["cloud"],
            "product": _clean(
                {"name": product, "vendor_name": PROVIDER, "feature": _clean({"name": feature})}
            ),
            "tags": [t for t in tags if t["value"] is not None],
        }
    )


def _unmapped(row: Row, mapped: frozenset[str]) -> dict[str, Any] | None:
    out = {}
    for column, value in row.items():
        if column in mapped or str(column).startswith(_LIFTED):
            continue
        if isinstance(value, dict):
            if value:
                out[column] = value
        elif _present(value) and value != "":
            out[column] = _json(value)
    return out or None


def _hashes(case: Case) -> dict[str, str]:
    manifest = case.manifest
    return {str(p): str(s) for p, s in zip(manifest["path"], manifest["sha256"], strict=True)}


def _ms(value: Any) -> int:
    """Epoch milliseconds (OCSF ``timestamp_t``); a missing time is 0, the epoch."""
    if not _present(value):
        return 0
    return int(pd.Timestamp(value).value // 1_000_000)


def _present(value: Any) -> bool:
    if isinstance(value, (str, bool, int, dict, list, tuple)):
        return True
    if isinstance(value, float):
        return value == value  # NaN is not equal to itself
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _text(value: Any) -> str | None:
    if not _present(value):
        return None
    text = str(value)
    return text if text.strip() else None


def _bool(value: Any) -> bool | None:
    if not _present(value):
        return None
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return bool(value)


def _json(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _clean(value: dict[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is missing or empty (OCSF leaves absent attributes out)."""
    return {
        k: v for k, v in value.items() if v is not None and (v or not isinstance(v, (dict, list)))
    }
