"""The values of AAP configuration as the KMS OpenAPI (2016-01-20) writes them.

List parameters (``Policies``, ``Permissions``, ``Resources``, ``SourcePrivateIp``) are
strings holding a JSON array in requests, and arrays or such strings in responses;
``SourcePrivateIp`` may also be comma-separated. ``AccessControlRules`` is
``{"NetworkRules": [...]}``, as an object or as its JSON text. Resources are
``key/<KeyId>`` and ``secret/<SecretName>``, with ``*`` wildcards.

Examples
--------
>>> text_list('["key/*", "secret/prod/*"]')
['key/*', 'secret/prod/*']
>>> text_list("10.0.1.0/24, 10.0.2.7")
['10.0.1.0/24', '10.0.2.7']
>>> network_rules('{"NetworkRules": ["net-a"]}')
['net-a']
>>> needed_permission("GetSecretValue"), needed_permission("Decrypt")
('CryptoServiceSecretUser', 'CryptoServiceKeyUser')
>>> grants("secret/prod/*", "secret/prod/db"), grants("key/*", "secret/x")
(True, False)
>>> inside("10.0.1.9", ["10.0.1.0/24"]), inside("192.0.2.66", ["10.0.1.0/24"])
(True, False)
"""

from __future__ import annotations

import ipaddress
import re
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

import orjson

#: The RBAC permission templates of a policy (``RbacPermission/Template/<name>``).
KEY_USER = "CryptoServiceKeyUser"
SECRET_USER = "CryptoServiceSecretUser"
#: Instance API operations on secrets; every other operation is a key operation.
SECRET_OPERATIONS = frozenset({"GetSecretValue"})


def text_list(value: Any) -> list[str]:
    """Return a list parameter as a list of strings (JSON array, text or comma list)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, dict):  # {"Policy": [...]} wrappers of XML-shaped responses
        inner: Any = next(iter(value.values()), [])
        return text_list(inner)
    text = str(value).strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            return text_list(orjson.loads(text))
        except orjson.JSONDecodeError:
            text = text.strip("[]")
    return [part.strip().strip("\"'") for part in text.split(",") if part.strip().strip("\"'")]


def network_rules(value: Any) -> list[str]:
    """Return the network rule names of ``AccessControlRules``."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value) if value.strip() else {}
        except orjson.JSONDecodeError:
            return text_list(value)
    if isinstance(value, dict):
        return text_list(value.get("NetworkRules", value.get("networkRules")))
    return text_list(value)


def permission_name(value: str) -> str:
    """``RbacPermission/Template/CryptoServiceKeyUser`` -> ``CryptoServiceKeyUser``."""
    return value.rsplit("/", 1)[-1]


def needed_permission(operation: str) -> str:
    """Return the permission template an Instance API operation needs."""
    return SECRET_USER if operation in SECRET_OPERATIONS else KEY_USER


def resource_of(operation: str, key_id: Any, secret_name: Any) -> str:
    """Return the policy resource a call touches: ``secret/<name>`` or ``key/<id>``."""
    if operation in SECRET_OPERATIONS and isinstance(secret_name, str) and secret_name:
        return f"secret/{secret_name}"
    if isinstance(key_id, str) and key_id:
        return f"key/{key_id}"
    return ""


def grants(pattern: str, resource: str) -> bool:
    """Tell whether a policy resource (``key/*``, ``secret/a*``) covers a resource."""
    return bool(resource) and fnmatchcase(resource, pattern)


@lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def inside(ip: Any, networks: list[str] | tuple[str, ...]) -> bool:
    """Tell whether an address is inside one of the networks (False for a non-address)."""
    address = _address(str(ip))
    if address is None:
        return False
    for text in networks:
        network = _network(text)
        if network is not None and address.version == network.version and address in network:
            return True
    return False


_ARN = re.compile(r"^acs:kms:[^:]*:([^:]*):([A-Za-z]+)/(.+)$")


def arn_parts(arn: Any) -> tuple[str, str, str] | None:
    """``acs:kms:<region>:<account>:<type>/<name>`` -> (account, type, name).

    >>> arn_parts("acs:kms:cn-hangzhou:1192:network/net-a")
    ('1192', 'network', 'net-a')
    """
    match = _ARN.match(str(arn or ""))
    return (match.group(1), match.group(2), match.group(3)) if match else None
