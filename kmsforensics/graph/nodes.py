"""The graph's vocabulary, declared once: node kinds, their ids, and how a reference resolves.

Every node id is ``<kind>:<identifier>`` (design.md, "Graph model"). This module says,
for each kind, which activity columns the identifier is made of and so which rows a
node id names; and which columns a bare identifier (``"STS.xxx"``, a secret name, an
event id) is looked for in, and the kind each column holds. ``case.focus``,
``kf.timeline``, the detection context and the graph use it, so a reference means the
same everywhere: ``case.focus(event_id)`` and ``kf.timeline(case, event_id)`` name the
same rows.

Examples
--------
>>> import pandas as pd
>>> act = pd.DataFrame({"principal_id": ["r1", "r1"], "session_name": ["a", "b"],
...                     "account_id": ["1", "1"], "event_id": ["E1", "E2"]})
>>> rows_named(act, "role-session:r1:b").tolist()
[False, True]
>>> rows_named(act, "E1").tolist()
[True, False]
>>> NODE_KINDS["aap"].node_id("111", "payments")
'aap:111/payments'
>>> kind_of("access-key:STS.x"), kind_of("STS.x")
('access-key', None)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import AmbiguousReferenceError, UnknownReferenceError


@dataclass(frozen=True)
class NodeKind:
    """A kind of node: its id prefix and the activity columns its identifier is made of.

    ``columns`` with one entry: the identifier is that column's value. Two entries
    joined by ``sep``: ``aap:<account>/<name>``, ``secret:<account>/<name>``,
    ``role-session:<role id>:<session>``. ``match`` are the columns a one-part
    identifier is compared with (a kind may match several, e.g. ``access_key_id``).
    """

    kind: str
    columns: tuple[str, ...]
    sep: str = ""

    @property
    def prefix(self) -> str:
        """``kind:``, the start of every id of this kind."""
        return f"{self.kind}:"

    def node_id(self, *parts: object) -> str:
        """Return the id of the node made of ``parts`` (one per column)."""
        return self.prefix + self.sep.join(str(p) for p in parts)

    def ids(self, *columns: pd.Series) -> pd.Series:
        """Return node ids for columns of values (vectorised; no NaN handling)."""
        text = columns[0].astype(str)
        for column in columns[1:]:
            text = text + self.sep + column.astype(str)
        return self.prefix + text

    def rows(self, act: pd.DataFrame, ident: str) -> np.ndarray:
        """Tell which activity rows the node ``<kind>:<ident>`` names."""
        if self.sep:
            parts = ident.split(self.sep, len(self.columns) - 1)
            if len(parts) != len(self.columns):
                return np.zeros(len(act), dtype=bool)
            mask = np.ones(len(act), dtype=bool)
            for column, value in zip(self.columns, parts, strict=True):
                mask &= equal(act, column, value)
            return mask
        mask = np.zeros(len(act), dtype=bool)
        for column in self.columns:
            mask |= equal(act, column, ident)
        return mask


#: Every kind of node, by its prefix.
NODE_KINDS: dict[str, NodeKind] = {
    k.kind: k
    for k in (
        NodeKind("account", ("account_id",)),
        NodeKind("ram-user", ("principal_id",)),
        NodeKind("ram-role", ("principal_id",)),
        NodeKind("role-session", ("principal_id", "session_name"), ":"),
        NodeKind("aap", ("account_id", "principal_id"), "/"),
        NodeKind("service", ("principal_name",)),
        NodeKind("cloudsso-user", ("principal_id",)),
        NodeKind("access-key", ("access_key_id",)),
        NodeKind("client-key", ("access_key_id",)),
        NodeKind("ip", ("client_ip",)),
        NodeKind("key", ("key_id",)),
        NodeKind("secret", ("account_id", "secret_name"), "/"),
        NodeKind("kms-instance", ("instance_id",)),
    )
}

#: Columns a bare identifier is looked for in, and the kind of thing each holds. Columns
#: of kind ``None`` (``resource_id`` holds keys, secrets, instances, role ARNs) add rows
#: but never make a reference ambiguous.
BARE_COLUMNS: dict[str, str | None] = {
    "access_key_id": "access-key",
    "client_ip": "ip",
    "key_id": "key",
    "secret_name": "secret",
    "principal_id": "principal",
    "principal_name": "principal",
    "session_name": "principal",
    "account_id": "account",
    "instance_id": "kms-instance",
    "resource_id": None,
    "request_id": "event",
    "event_id": "event",
}


def equal(act: pd.DataFrame, column: str, value: str) -> np.ndarray:
    """Tell where an activity column equals ``value`` (False where the column is missing)."""
    if column not in act.columns:
        return np.zeros(len(act), dtype=bool)
    return (act[column] == value).fillna(False).to_numpy(dtype=bool)


def kind_of(ref: str) -> str | None:
    """Return the kind a node id names, or None for a bare identifier."""
    kind, sep, ident = ref.partition(":")
    return kind if sep and ident and kind in NODE_KINDS else None


def rows_named(act: pd.DataFrame, ref: str, *, strict: bool = False) -> pd.Series:
    """Tell which activity rows a reference names: a node id, or a bare identifier.

    With ``strict``, a reference that names nothing raises
    :class:`~kmsforensics.errors.UnknownReferenceError`, and a bare one found in
    columns of different kinds raises
    :class:`~kmsforensics.errors.AmbiguousReferenceError` listing the node ids it could
    be; without, every matching row is named.
    """
    kind = kind_of(ref)
    if kind is not None:
        mask = NODE_KINDS[kind].rows(act, ref.partition(":")[2])
        if strict and not mask.any():
            raise UnknownReferenceError(f"{ref!r} is not in the evidence")
        return pd.Series(mask, index=act.index)
    hits = {c: equal(act, c, ref) for c in BARE_COLUMNS if c in act.columns}
    found = {c: m for c, m in hits.items() if m.any()}
    if strict and not found:
        raise UnknownReferenceError(
            f"{ref!r} names nothing in the evidence (looked in {', '.join(BARE_COLUMNS)})"
        )
    kinds = {BARE_COLUMNS[c] for c in found} - {None}
    if strict and len(kinds) > 1:
        names = sorted(f"{BARE_COLUMNS[c]}:{ref}" for c in found if BARE_COLUMNS[c])
        raise AmbiguousReferenceError(
            f"{ref!r} names several things: {', '.join(names)}; pass one of these"
        )
    mask = np.zeros(len(act), dtype=bool)
    for found_mask in found.values():
        mask |= found_mask
    return pd.Series(mask, index=act.index)


def names_node(node: str, ref: str, name: object = None) -> bool:
    """Tell whether a bare reference names a graph node (compared without case).

    It does when it is the node's identifier, its ``name``, or the last part of a
    two-part identifier: a secret's or an AAP's name, a session's name (the first part,
    an account or a role, only scopes it). The parts are the kind's columns, as
    :func:`rows_named` looks a bare identifier up in them.

    >>> names_node("secret:111/db-password", "DB-password")
    True
    >>> names_node("role-session:r1:ci", "r1"), names_node("ram-role:r1", "r1")
    (False, True)
    """
    wanted = ref.lower()
    kind, _, ident = node.partition(":")
    if ident.lower() == wanted or str(name or "").lower() == wanted:
        return True
    spec = NODE_KINDS.get(kind)
    if spec is None or not spec.sep:
        return False
    parts = ident.split(spec.sep, len(spec.columns) - 1)
    return len(parts) == len(spec.columns) and parts[-1].lower() == wanted


def resolve_node(nodes: Iterable[tuple[str, Mapping[str, object]]], ref: str) -> str:
    """Return the one node (of ``(id, attributes)`` pairs) a reference names.

    A node id names itself; a bare identifier names the nodes :func:`names_node`
    says. None, or several, is an error that says what to pass instead.

    >>> resolve_node([("access-key:STS.abc", {"name": "STS.abc"})], "STS.abc")
    'access-key:STS.abc'
    """
    pairs = list(nodes)
    if any(node == ref for node, _ in pairs):
        return ref
    matches = [node for node, data in pairs if names_node(node, ref, data.get("name"))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownReferenceError(
            f"{ref!r} names no node of this graph: use a node id such as 'access-key:<id>' or "
            "an identifier seen in the logs (key id, secret name, user name, AccessKey id)"
        )
    raise AmbiguousReferenceError(
        f"{ref!r} names {len(matches)} nodes: {', '.join(sorted(matches))}; pass one of these ids"
    )


@dataclass(frozen=True)
class Relation:
    """An edge relation of the graph: the kinds it joins and the columns it is built from.

    ``reads`` maps each frame (``activity``, ``kms``, ``actiontrail``) to the columns the
    relation's group-by reads there; the dask build reads their union and nothing else.
    """

    name: str
    joins: str
    reads: tuple[tuple[str, tuple[str, ...]], ...]


_ROWS = ("time", "success", "action", "call_id")
#: Every relation of the graph, in the order the build makes them.
RELATION_KINDS: tuple[Relation, ...] = (
    Relation(
        "owns",
        "account -> ram-user / ram-role / aap / kms-instance",
        (
            ("activity", (*_ROWS, "account_id", "identity_type", "principal_id")),
            ("kms", ("time", "instance_id", "account_id", "user_id")),
            ("actiontrail", ("eventTime", "accountId", "roleId", "roleName")),
        ),
    ),
    Relation(
        "has-key",
        "ram-user / account -> access-key; aap -> client-key",
        (("activity", (*_ROWS, "account_id", "identity_type", "principal_id", "access_key_id")),),
    ),
    Relation(
        "assumed",
        "ram-user / role-session / service / account -> role-session",
        (
            (
                "actiontrail",
                (
                    "eventTime",
                    "eventName",
                    "errorCode",
                    "accountId",
                    "roleId",
                    "sessionName",
                    "targetRoleAccountId",
                    "targetRoleId",
                    "targetRoleName",
                    "targetSessionName",
                    "userIdentity.type",
                    "userIdentity.principalId",
                    "userIdentity.userName",
                ),
            ),
        ),
    ),
    Relation(
        "of-role",
        "role-session -> ram-role",
        (("activity", (*_ROWS, "principal_id", "principal_name", "session_name")),),
    ),
    Relation(
        "issued",
        "role-session -> access-key (STS)",
        (
            ("activity", (*_ROWS, "principal_id", "session_name", "access_key_id")),
            ("actiontrail", ("eventTime", "issuedAccessKeyId", "targetSessionName")),
        ),
    ),
    Relation(
        "called",
        "access-key / client-key -> key / secret",
        (("activity", (*_ROWS, "access_key_id", "key_id", "secret_name", "account_id")),),
    ),
    Relation(
        "source-of",
        "ip -> access-key / client-key",
        (("activity", (*_ROWS, "client_ip", "access_key_id")),),
    ),
    Relation(
        "hosts",
        "kms-instance -> key / secret",
        (("kms", ("time", "instance_id", "key_id", "secret_name", "account_id")),),
    ),
    Relation(
        "encrypted-by",
        "secret -> key",
        (("kms", ("time", "secret_name", "key_id", "account_id")),),
    ),
    Relation(
        "has-version",
        "key -> key-version",
        (("kms", ("time", "api_name", "key_id", "key_version_id")),),
    ),
    Relation("allowed", "aap -> key / secret (what its policies allowed, kf.aap_config)", ()),
)


def relation_reads(relations: tuple[Relation, ...] = RELATION_KINDS) -> dict[str, list[str]]:
    """Return the columns the relations read, per frame (their union, first use first).

    >>> relation_reads()["kms"][:3]
    ['time', 'instance_id', 'account_id']
    """
    out: dict[str, list[str]] = {"activity": [], "kms": [], "actiontrail": []}
    for relation in relations:
        for frame, columns in relation.reads:
            out[frame] += [c for c in columns if c not in out[frame]]
    return out
