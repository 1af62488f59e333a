"""The identity graph as a BloodHound OpenGraph upload, with its extension schema.

:func:`export_bloodhound` writes ``{"metadata": {"source_kind": "AliKms"}, "graph":
{"nodes": [...], "edges": [...]}}``: one node per graph node (``id`` the graph's node id,
``kinds`` its kind first, then the source kind) and one edge per relation (``start`` and
``end`` matched by id, ``kind`` the relation in PascalCase). Beside it,
``<name>.extension.json`` declares the node kinds and the relationship kinds, with
``is_traversable``, so BloodHound's pathfinding follows ``HasKey``, ``Assumed``,
``Issued``, ``Called``... and not ``SourceOf`` or ``EncryptedBy``. Every kind is in the
``AliKms_`` namespace, as BloodHound asks of extensions. Property values are
primitives or arrays of one primitive type; times are ISO-8601 text.

Examples
--------
>>> kind_name("has-key"), kind_name("encrypted-by"), kind_name("role-session")
('AliKms_HasKey', 'AliKms_EncryptedBy', 'AliKms_RoleSession')
>>> properties({"count": 3, "operations": ("Decrypt", "Encrypt"), "x": None})
{'count': 3, 'operations': ['Decrypt', 'Encrypt']}
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from .._version import __version__

SOURCE_KIND = "AliKms"
NAMESPACE = "AliKms"

#: Node kinds of the graph, with what BloodHound shows for them.
NODE_KINDS: dict[str, str] = {
    "account": "Alibaba Cloud account",
    "ram-user": "RAM user (a person or a workload)",
    "ram-role": "RAM role",
    "role-session": "Session of an assumed RAM role",
    "aap": "KMS application access point",
    "client-key": "Client key of an application access point (KAAP.*)",
    "access-key": "AccessKey (LTAI*) or STS token (STS.*)",
    "kms-instance": "KMS instance",
    "key": "KMS key",
    "key-version": "KMS key version",
    "secret": "KMS secret",
    "ip": "Source address",
    "service": "Alibaba Cloud service acting for a principal",
}
#: Relations: description and whether pathfinding may follow them.
RELATIONSHIP_KINDS: dict[str, tuple[str, bool]] = {
    "owns": ("The account owns the principal or the instance", True),
    "has-key": ("The principal holds the access key or client key", True),
    "assumed": ("The principal assumed the role, starting this session", True),
    "issued": ("The session was issued this STS key", True),
    "called": ("The key was used against the KMS key or secret (observed)", True),
    "allowed": ("The access point's policy allows the key or secret", True),
    "hosts": ("The KMS instance holds the key or secret", True),
    "has-version": ("The key has this version", True),
    "of-role": ("The session is a session of this role", False),
    "source-of": ("The address used the key", False),
    "encrypted-by": ("The secret is encrypted by this key", False),
}


def kind_name(name: str) -> str:
    """Return a graph kind or relation as a namespaced PascalCase BloodHound kind."""
    words = [w for w in str(name).replace("_", "-").split("-") if w]
    return f"{NAMESPACE}_" + "".join(w[:1].upper() + w[1:] for w in words)


def properties(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes as BloodHound property values: primitives or homogeneous arrays."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        plain: Any = _primitive(value)
        if plain is None and isinstance(value, (list, tuple, set, frozenset)):
            items = [_primitive(v) for v in value]
            items = [v for v in items if v is not None]
            if items and len({type(v) for v in items}) > 1:
                items = [str(v) for v in items]
            plain = items or None
        if plain is not None:
            out[str(key)] = plain
    return out


def upload(graph: nx.MultiDiGraph) -> dict[str, Any]:
    """Return the OpenGraph upload document of a graph."""
    nodes = []
    for node, data in graph.nodes(data=True):
        kind = str(data.get("kind") or str(node).partition(":")[0])
        props = properties({k: v for k, v in data.items() if k != "kind"})
        props.setdefault("name", str(node).partition(":")[2] or str(node))
        props["objectid"] = str(node)
        props["kmsforensics_kind"] = kind
        nodes.append(
            {"id": str(node), "kinds": [kind_name(kind), SOURCE_KIND], "properties": props}
        )
    edges = []
    for src, dst, key, data in graph.edges(keys=True, data=True):
        relation = str(data.get("relation") or key)
        edges.append(
            {
                "start": {"value": str(src), "match_by": "id"},
                "end": {"value": str(dst), "match_by": "id"},
                "kind": kind_name(relation),
                "properties": properties({k: v for k, v in data.items() if k != "relation"}),
            }
        )
    return {"metadata": {"source_kind": SOURCE_KIND}, "graph": {"nodes": nodes, "edges": edges}}


def extension_schema(graph: nx.MultiDiGraph | None = None) -> dict[str, Any]:
    """Return the extension schema: node kinds, relationship kinds and traversability.

    Kinds the graph has beyond the known ones are declared too (not traversable).
    """
    kinds = dict(NODE_KINDS)
    relations = dict(RELATIONSHIP_KINDS)
    if graph is not None:
        for node, data in graph.nodes(data=True):
            kind = str(data.get("kind") or str(node).partition(":")[0])
            kinds.setdefault(kind, kind)
        for _, _, key, data in graph.edges(keys=True, data=True):
            relation = str(data.get("relation") or key)
            relations.setdefault(relation, (relation, False))
    principals = ("ram-user", "ram-role", "role-session", "aap", "access-key", "client-key")
    return {
        "schema": {
            "name": "KmsForensics",
            "display_name": "Alibaba Cloud KMS and ActionTrail (kmsforensics)",
            "version": f"v{__version__}",
            "namespace": NAMESPACE,
        },
        "node_kinds": [
            {
                "name": kind_name(kind),
                "display_name": kind_name(kind).split("_", 1)[1],
                "description": text,
                "is_display_kind": True,
            }
            for kind, text in kinds.items()
        ],
        "relationship_kinds": [
            {"name": kind_name(relation), "description": text, "is_traversable": traversable}
            for relation, (text, traversable) in relations.items()
        ],
        "environments": [
            {
                "environment_kind": kind_name("account"),
                "source_kind": SOURCE_KIND,
                "principal_kinds": [kind_name(k) for k in principals],
            }
        ],
    }


def export_bloodhound(graph: nx.MultiDiGraph, path: str | Path) -> Path:
    """Write the graph as a BloodHound OpenGraph upload and its extension schema.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        From ``kf.build_graph``.
    path : str or Path
        The upload file (``.json``); the extension schema is written beside it as
        ``<stem>.extension.json``.

    Returns
    -------
    Path
        The upload file.

    Examples
    --------
    >>> import kmsforensics as kf, tempfile, pathlib, json
    >>> g = nx.MultiDiGraph()
    >>> g.add_node("ram-user:1", kind="ram-user", name="ci")
    >>> g.add_node("access-key:LTAIx", kind="access-key", name="LTAIx")
    >>> _ = g.add_edge("ram-user:1", "access-key:LTAIx", key="has-key", relation="has-key")
    >>> out = kf.export_bloodhound(g, pathlib.Path(tempfile.mkdtemp()) / "g.json")
    >>> json.loads(out.read_text())["graph"]["edges"][0]["kind"]
    'AliKms_HasKey'
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(upload(graph), indent=1))
    schema_path(out).write_text(json.dumps(extension_schema(graph), indent=2))
    return out


def schema_path(upload_path: str | Path) -> Path:
    """Where :func:`export_bloodhound` writes the extension schema of an upload."""
    path = Path(upload_path)
    return path.with_name(path.stem + ".extension.json")


def _primitive(value: Any) -> str | int | float | bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (pd.Timestamp, datetime)):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat().replace("+00:00", "Z")
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, str):
        return value
    return None
