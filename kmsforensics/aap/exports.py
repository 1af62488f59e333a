"""AAP configuration exports: saved responses of the KMS Describe and List APIs.

An export is the JSON response of ``DescribeApplicationAccessPoint``,
``DescribePolicy``, ``DescribeNetworkRule``, ``ListClientKeys`` or ``ListPolicies``
(docs/aap.md), saved one per file, as a JSON array of responses, or one per line. An
SDK wrapper ``{"headers": ..., "statusCode": 200, "body": {...}}`` is unwrapped. The
response says what the configuration was when it was taken, not when; that time is
given by the caller (``exported_at``).

The loader keeps them as they come among the evidence (a record kind of their own,
``case.aap_exports``, counted as loaded in the manifest); :func:`read_case_exports`
reads them from there. :func:`read_exports` reads export files given by name.

Examples
--------
>>> import pandas as pd
>>> when = pd.Timestamp("2026-03-01", tz="UTC")
>>> found = changes_of({"Arn": "acs:kms:cn-hangzhou:1192:network/net-a",
...                     "Type": "Private", "SourcePrivateIp": '["10.0.1.0/24"]'}, when, "f#1")
>>> [(c.kind, c.account, c.name, c.fields["source_ips"]) for c in found]
[('network-rule', '1192', 'net-a', ['10.0.1.0/24'])]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from ..evidence import DEFAULT_MAX_BYTES, discover
from .changes import Change, fields_of
from .values import arn_parts

_ARN_KINDS = {"applicationaccesspoint": "aap", "policy": "policy", "network": "network-rule"}


@dataclass
class ExportRead:
    """What was read from export files: the changes, and per file what it held."""

    changes: list[Change] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)


def changes_of(response: Any, when: pd.Timestamp, evidence: str) -> list[Change]:
    """Return the configuration one saved API response states (``[]`` if it is none)."""
    if not isinstance(response, dict):
        return []
    if isinstance(response.get("body"), dict):
        response = response["body"]
    if "ClientKeys" in response:
        return _client_keys(response["ClientKeys"], when, evidence)
    if (
        "Policies" in response
        and isinstance(response["Policies"], dict | list)
        and not ("AuthenticationMethod" in response or "Arn" in response)
    ):
        return _listed(response["Policies"], "policy", when, evidence)
    kind, account, name = _identify(response)
    if kind is None:
        return []
    return [Change(when, kind, account, name, "export", fields_of(kind, response), evidence)]


def _identify(response: dict[str, Any]) -> tuple[str | None, str, str]:
    parts = arn_parts(response.get("Arn"))
    name = str(response.get("Name") or "")
    if parts is not None and parts[1] in _ARN_KINDS:
        return _ARN_KINDS[parts[1]], parts[0], name or parts[2]
    if "AuthenticationMethod" in response or ("Policies" in response and name):
        return "aap", "", name
    if {"Permissions", "Resources", "AccessControlRules"} & set(response) and name:
        return "policy", "", name
    if "SourcePrivateIp" in response and name:
        return "network-rule", "", name
    return None, "", ""


def _client_keys(value: Any, when: pd.Timestamp, evidence: str) -> list[Change]:
    items = value.get("ClientKey", []) if isinstance(value, dict) else value
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not item.get("ClientKeyId"):
            continue
        created = pd.to_datetime(str(item.get("CreateTime") or ""), utc=True, errors="coerce")
        since = created if pd.notna(created) and created < when else when
        fields = fields_of("client-key", item)
        out.append(
            Change(since, "client-key", "", str(item["ClientKeyId"]), "export", fields, evidence)
        )
    return out


def _listed(value: Any, kind: str, when: pd.Timestamp, evidence: str) -> list[Change]:
    items = next(iter(value.values()), []) if isinstance(value, dict) else value
    out = []
    for item in items if isinstance(items, list) else []:
        name = item.get("Name") if isinstance(item, dict) else item
        if name:  # a list gives only the name: the object exists, its content is unknown
            out.append(Change(when, kind, "", str(name), "export", {}, evidence))
    return out


def is_aap_export(text: str) -> bool:
    """Tell whether one JSON record is a saved AAP API response (states some configuration).

    >>> is_aap_export('{"ClientKeys": [{"ClientKeyId": "KAAP.x", "AapName": "a"}]}')
    True
    >>> is_aap_export('{"Policies": {"Policy": [{"PolicyName": "AdministratorAccess"}]}}')
    False
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return bool(changes_of(value, pd.Timestamp(0, tz="UTC"), ""))


def parse_export(data: bytes) -> list[Any]:
    """Return the responses of one export file: an object, an array, or one per line."""
    text = data.strip()
    if not text:
        return []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        out = []
        for line in text.splitlines():
            try:
                out.append(orjson.loads(line)) if line.strip() else None
            except orjson.JSONDecodeError:
                out.append(None)
        return out
    return value if isinstance(value, list) else [value]


def read_exports(
    paths: Iterable[str | Path], when: pd.Timestamp, max_bytes: int = DEFAULT_MAX_BYTES
) -> ExportRead:
    """Read export files (files, folders, globs): the configuration they state at ``when``.

    A file that cannot be read, or whose responses are not JSON, is listed in
    ``problems`` with the reason; one that holds no AAP response is skipped silently
    (the loader already reported it, if it was evidence).
    """
    out = ExportRead()
    for ef in discover(list(paths)):
        try:
            content = ef.read(max_bytes)
            responses = parse_export(content.data)
        except (OSError, ValueError) as error:
            out.problems.append({"source_file": ef.display, "reason": str(error)})
            continue
        found: list[Change] = []
        for number, response in enumerate(responses, start=1):
            if response is None:
                out.problems.append(
                    {"source_file": ef.display, "reason": f"record {number} is not JSON"}
                )
                continue
            found += changes_of(response, when, f"{ef.display}#{number}")
        if found:
            out.changes += found
            out.files.append(
                {"source_file": ef.display, "sha256": content.sha256, "objects": len(found)}
            )
    return out


def read_case_exports(case: Any, when: pd.Timestamp) -> ExportRead:
    """Return the configuration of the exports the loader found among a case's evidence.

    ``case.aap_exports`` holds them (the loader keeps records with AAP response keys,
    :data:`~kmsforensics.schema.AAP_CONFIG_MARKERS`). A case without that frame (a case
    store) has its unloaded evidence files read again instead.
    """
    exports = getattr(case, "aap_exports", None)
    stored = hasattr(case, "store")  # a case store keeps no exports: read the files
    if isinstance(exports, pd.DataFrame) and not (stored and not len(exports)):
        out = ExportRead()
        files: dict[str, int] = {}
        for row in exports.itertuples(index=False):
            evidence = f"{row.source_file}#{row.source_record}"
            found = changes_of(orjson.loads(str(row.json)), when, evidence)
            out.changes += found
            files[str(row.source_file)] = files.get(str(row.source_file), 0) + len(found)
        sha = dict(zip(case.manifest["path"], case.manifest["sha256"], strict=True))
        out.files = [
            {"source_file": f, "sha256": sha.get(f, ""), "objects": n} for f, n in files.items()
        ]
        return out
    manifest = case.manifest
    if not len(manifest):
        return ExportRead()
    exported = manifest["format"].astype(str).str.contains("aap-config")
    unloaded = manifest[exported | (manifest["records_loaded"].fillna(0).astype(int) == 0)]
    paths = [p for p in unloaded["path"].astype(str) if Path(p).is_file()]
    return read_exports(paths, when) if paths else ExportRead()
