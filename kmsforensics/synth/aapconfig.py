"""AAP configuration exports: the saved responses of the KMS Describe and List APIs.

A configuration backup taken when the case starts: for each account with AAPs, one
``DescribeApplicationAccessPoint`` response per file, the ``DescribePolicy`` and the
``DescribeNetworkRule`` responses as JSON arrays, and one ``ListClientKeys`` response
per AAP, in the shapes of the KMS OpenAPI 2016-01-20 documentation (docs/aap.md). Each
AAP has one policy, ``<aap>-policy`` (both RBAC templates, its keys and secrets, one
network rule ``<aap>-net`` with its subnet).

Examples
--------
>>> from kmsforensics.synth.org import build_organisation
>>> from datetime import datetime, timezone
>>> files = export_files(build_organisation(3), datetime(2026, 3, 2, tzinfo=timezone.utc))
>>> sorted({name.split("/", 2)[2] for name in files})  # doctest: +NORMALIZE_WHITESPACE
['client-keys/aap-orders.json', 'client-keys/aap-payments.json',
 'describe-aap/aap-orders.json', 'describe-aap/aap-payments.json',
 'network-rules.json', 'policies.json']
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from .org import REGION, Aap, Organisation
from .traffic import iso

_TEMPLATES = [
    "RbacPermission/Template/CryptoServiceKeyUser",
    "RbacPermission/Template/CryptoServiceSecretUser",
]


def policy_name(aap: Aap) -> str:
    """Return the name of an AAP's policy."""
    return f"{aap.name}-policy"


def network_rule_name(aap: Aap) -> str:
    """Return the name of an AAP's network rule."""
    return f"{aap.name}-net"


def export_files(org: Organisation, taken: datetime) -> dict[str, bytes]:
    """Return the export files (path under ``evidence/`` -> content) taken at ``taken``."""
    names = {a.uid: a.name for a in org.accounts}
    out: dict[str, bytes] = {}
    for account in sorted({a.account for a in org.aaps}):
        aaps = [a for a in org.aaps if a.account == account]
        folder = f"config/{names.get(account, account)}"
        for aap in aaps:
            out[f"{folder}/describe-aap/{aap.name}.json"] = _dump(_describe_aap(aap))
            out[f"{folder}/client-keys/{aap.name}.json"] = _dump(_client_keys(aap, taken))
        out[f"{folder}/policies.json"] = _dump([_describe_policy(a) for a in aaps])
        out[f"{folder}/network-rules.json"] = _dump([_describe_network_rule(a) for a in aaps])
    return out


def _arn(aap: Aap, kind: str, name: str) -> str:
    return f"acs:kms:{REGION}:{aap.account}:{kind}/{name}"


def _request_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def _describe_aap(aap: Aap) -> dict[str, Any]:
    return {
        "RequestId": _request_id("aap", aap.account, aap.name),
        "Arn": _arn(aap, "applicationaccesspoint", aap.name),
        "Name": aap.name,
        "Description": f"{aap.name.removeprefix('aap-')} service",
        "AuthenticationMethod": "ClientKey",
        "Policies": json.dumps([policy_name(aap)]),
    }


def _describe_policy(aap: Aap) -> dict[str, Any]:
    resources = [f"key/{k}" for k in aap.keys] + [f"secret/{s}" for s in aap.secrets]
    return {
        "RequestId": _request_id("policy", aap.account, aap.name),
        "Arn": _arn(aap, "policy", policy_name(aap)),
        "Name": policy_name(aap),
        "Description": f"what {aap.name} may use",
        "KmsInstance": aap.instance_id,
        "Permissions": _TEMPLATES,
        "Resources": resources,
        "AccessControlRules": json.dumps({"NetworkRules": [network_rule_name(aap)]}),
    }


def _describe_network_rule(aap: Aap) -> dict[str, Any]:
    return {
        "RequestId": _request_id("network", aap.account, aap.name),
        "Arn": _arn(aap, "network", network_rule_name(aap)),
        "Type": "Private",
        "Description": f"subnet of {aap.name}",
        "SourcePrivateIp": json.dumps(list(aap.networks)),
    }


def _client_keys(aap: Aap, taken: datetime) -> dict[str, Any]:
    keys = []
    for i, key in enumerate(aap.client_keys):
        created = taken - timedelta(days=400 - 90 * i)
        keys.append(
            {
                "ClientKeyId": key.key_id,
                "AapName": aap.name,
                "CreateTime": iso(created),
                "NotBefore": iso(created),
                "NotAfter": iso(created + timedelta(days=5 * 365)),
                "KeyAlgorithm": "RSA_2048",
                "KeyOrigin": "KMS_PROVIDED",
            }
        )
    return {"RequestId": _request_id("keys", aap.account, aap.name), "ClientKeys": keys}


def _dump(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()
