"""The identity and resource graph: who holds which key, what each key touched.

One node per real thing (design.md, "Graph model"): ``account:<uid>``,
``ram-user:<principal id>``, ``ram-role:<role id>``, ``role-session:<role id>:<session>``,
``aap:<account>/<name>``, ``client-key:<KAAP...>``, ``access-key:<LTAI...|STS...>``,
``kms-instance:<kst-...>``, ``key:<key id>``, ``key-version:<version id>``,
``secret:<account>/<name>``, ``ip:<address>``, ``service:<host>``. A role named by id,
by name or in a RoleArn is one node: names are resolved to ids wherever any event shows
both.

Every relation is one group-by over the raw (categorical) columns, so the work grows
with the distinct combinations, not with the events; node ids are built only for the
grouped rows. Edges carry ``relation``, ``count``, ``first_seen``, ``last_seen``,
``failures`` and ``operations``; ``assumed`` edges carry ``cross_account``. Counts
are calls: the two rows of a shared-gateway call (one ``call_id``) count once.

Examples
--------
>>> import kmsforensics as kf
>>> case = kf.load(kf.datasets.path("vendor-samples"), progress=False)  # doctest: +SKIP
>>> G = kf.build_graph(case)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from ..calls import repeated_calls
from ..case import Case
from .nodes import NODE_KINDS, RELATION_KINDS, relation_reads

#: Relations and the kinds they join (declared in :mod:`.nodes`).
RELATIONS: dict[str, str] = {r.name: r.joins for r in RELATION_KINDS}
#: The columns the build reads from each frame (the dask engine reads no others).
READS: dict[str, list[str]] = relation_reads()
EDGE_COLUMNS = [
    "src",
    "dst",
    "relation",
    "count",
    "first_seen",
    "last_seen",
    "failures",
    "operations",
]


def build_graph(case: Case) -> nx.MultiDiGraph:
    """Build the identity and resource graph of a case (or of ``case.between(...)``).

    Parameters
    ----------
    case : Case
        A loaded case; restrict it with ``case.between(start, end)`` for a time window.

    Returns
    -------
    networkx.MultiDiGraph
        Nodes ``"<kind>:<id>"`` with attribute ``kind`` (and ``name``, ``account`` where
        known); one edge per (source, target, relation), keyed by the relation.
    """
    if case.engine == "dask":
        from .distributed import build_graph_dask

        return build_graph_dask(case)
    parts = _Parts(case)
    graph = assemble(parts.edge_frame(), parts.name_pairs())
    add_allowed(graph, case)
    return graph


def add_allowed(graph: nx.MultiDiGraph, case: Case) -> None:
    """Add ``aap -allowed-> key / secret`` edges: what each AAP's policies allowed.

    From :func:`kmsforensics.aap.aap_config`. A wildcard (``key/*``, ``secret/prod/*``)
    stands for the keys and secrets of the graph it matches: keys hosted by the AAP
    account's KMS instances (or by instances of no known owner), secrets of that
    account. Each edge carries the policies and patterns (``grants``), the permissions
    (``operations``), and the first and last time it was in force (``last_seen`` the
    end of the evidence when still in force then); ``count`` is 0 (an allowance is not a call).
    """
    from ..aap import aap_config
    from ..aap.values import grants

    config = aap_config(case)
    resources = config[config["item"] == "resource"]
    if not len(resources):
        return
    permissions = config[config["item"] == "permission"].groupby(["aap", "policy"])["value"]
    allowed = {k: tuple(sorted(set(v))) for k, v in permissions}
    candidates: dict[str, list[tuple[str, str]]] = {}
    for node, data in graph.nodes(data=True):
        kind = data.get("kind")
        if kind == "key":
            owners = {
                o
                for i, _, e in graph.in_edges(node, data=True)
                if e.get("relation") == "hosts"
                for o, _, f in graph.in_edges(i, data=True)
                if f.get("relation") == "owns"
            }
            for owner in owners or {""}:
                candidates.setdefault(owner.removeprefix("account:"), []).append(
                    (node, "key/" + node.removeprefix("key:"))
                )
        elif kind == "secret":
            account, _, name = node.removeprefix("secret:").partition("/")
            candidates.setdefault(account, []).append((node, "secret/" + name))
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    ends: dict[tuple[str, str], list[Any]] = {}
    end = case.activity["time"].max()
    end = end.compute() if hasattr(end, "compute") else end
    for row in resources.itertuples(index=False):
        source = f"aap:{row.account_id}/{row.aap}"
        pattern = str(row.value)
        if "*" in pattern:
            pool = candidates.get(str(row.account_id), []) + candidates.get("", [])
            targets = [n for n, r in pool if grants(pattern, r)]
        elif pattern.startswith("key/"):
            targets = ["key:" + pattern.removeprefix("key/")]
        else:
            targets = [f"secret:{row.account_id}/" + pattern.removeprefix("secret/")]
        for target in targets:
            edge = edges.setdefault(
                (source, target),
                {"relation": "allowed", "count": 0, "failures": 0, "grants": (),
                 "operations": (), "first_seen": row.since, "last_seen": None},
            )  # fmt: skip
            edge["grants"] = tuple(sorted({*edge["grants"], f"{row.policy}:{pattern}"}))
            edge["operations"] = tuple(
                sorted({*edge["operations"], *allowed.get((row.aap, row.policy), ())})
            )
            edge["first_seen"] = min(edge["first_seen"], row.since)
            ends.setdefault((source, target), []).append(row.until)
    for (source, target), attributes in edges.items():
        last = ends[(source, target)]  # NaT: still in force at the end of the evidence
        still = any(not isinstance(e, pd.Timestamp) for e in last)
        attributes["last_seen"] = end if still else max(last)
        for node, kind in ((source, "aap"), (target, target.split(":", 1)[0])):
            if node not in graph:
                graph.add_node(node, kind=kind, name=node.split(":", 1)[1])
        graph.add_edge(source, target, key="allowed", **attributes)


def assemble(edges: pd.DataFrame, pairs: dict[str, pd.DataFrame]) -> nx.MultiDiGraph:
    """Return the graph of merged edges, with node names from :meth:`_Parts.name_pairs`."""
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(_nodes(edges, names_from(pairs)))
    graph.add_edges_from(_edge_tuples(edges))
    return graph


def role_ids(at: pd.DataFrame) -> pd.DataFrame:
    """(account, role name, role id) rows in the order events show them (first kept)."""
    frames = []
    for columns in (
        ["accountId", "roleName", "roleId"],
        ["targetRoleAccountId", "targetRoleName", "targetRoleId"],
    ):
        if len(at) and all(c in at.columns for c in columns):
            frame = at[columns].dropna().astype(str)
            frame.columns = ["account", "name", "role"]
            frames.append(frame.assign(name=frame["name"].str.lower()))
    if not frames:
        return pd.DataFrame(columns=["account", "name", "role"])
    return pd.concat(frames, ignore_index=True).drop_duplicates(["account", "name"])


def names_from(pairs: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Node names: the latest-appearing name of a user or role; target names fill gaps."""
    names = dict(zip(pairs["users"]["node"], pairs["users"]["name"], strict=True))
    names.update(zip(pairs["roles"]["node"], pairs["roles"]["name"], strict=True))
    for node, name in zip(pairs["targets"]["node"], pairs["targets"]["name"], strict=True):
        names.setdefault(node, name)
    return names


class _Parts:
    """Edge frames of a case, one relation at a time, grouped before ids are made."""

    def __init__(self, case: Case, roles: pd.DataFrame | None = None) -> None:
        act = case.activity
        self.act = pd.DataFrame(
            {
                "time": act["time"],
                "failed": ~act["success"].fillna(True).astype(bool),
                "action": act["action"],
                "account": act["account_id"],
                "type": act["identity_type"],
                "principal": act["principal_id"],
                "name": act["principal_name"],
                "session": act["session_name"],
                "key": act["access_key_id"],
                "ip": act["client_ip"],
                "key_id": act["key_id"],
                "secret": act["secret_name"],
            }
        )
        if "call_id" in act:
            self.act["call_id"] = act["call_id"]
        self.at = case._actiontrail_text
        self.kms = case.kms
        known = role_ids(self.at) if roles is None else roles
        self.roles = {
            (a, n): r for a, n, r in known[["account", "name", "role"]].itertuples(index=False)
        }

    def edge_frame(self) -> pd.DataFrame:
        """Every edge of this case's rows, repeated (src, dst, relation) merged."""
        frames = [f for f in self.edges() if len(f)]
        edges = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EDGE_COLUMNS)
        )
        return _merge_duplicates(edges)

    # -- grouping -------------------------------------------------------------------------

    @staticmethod
    def group(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        """Aggregate rows (all ``keys`` present): count, first/last seen, failures, operations.

        ``count`` and ``failures`` count calls: a row that repeats a call already in its
        group (``call_id``) is not counted again.
        """
        if not len(frame):
            return pd.DataFrame(
                columns=[*keys, "count", "first_seen", "last_seen", "failures", "operations"]
            )
        out = (
            frame.groupby(keys, observed=True, sort=False)
            .agg(
                count=("time", "size"),
                first_seen=("time", "min"),
                last_seen=("time", "max"),
                failures=("failed", "sum"),
            )
            .reset_index()
        )
        _uncount_repeats(frame, out, keys)
        out["operations"] = _operations(frame, out, keys)
        return out

    def rows(self, *columns: str, **equal: str) -> pd.DataFrame:
        """Activity rows where ``columns`` are present (and not empty) and ``equal`` holds."""
        a = self.act
        keep = np.ones(len(a), dtype=bool)
        for column in columns:
            keep &= (a[column].notna() & (a[column] != "")).fillna(False).to_numpy(dtype=bool)
        for column, value in equal.items():
            keep &= (a[column] == value).to_numpy()
        return a[keep]

    # -- relations from activity ------------------------------------------------------------------

    def edges(self) -> list[pd.DataFrame]:
        out = []
        users = self.group(self.rows("principal", "key", type="ram-user"), ["principal", "key"])
        users = users[~users.key.astype(str).str.startswith("STS.")]
        out.append(
            _edges(
                users,
                _node("ram-user", users.principal),
                _key(users.key),
                "has-key",
            )
        )
        roots = self.group(self.rows("account", "key", type="account"), ["account", "key"])
        out.append(_edges(roots, _node("account", roots.account), _key(roots.key), "has-key"))
        aaps = self.group(
            self.rows("account", "principal", "key", type="aap"), ["account", "principal", "key"]
        )
        out.append(
            _edges(
                aaps,
                _node("aap", aaps.account, aaps.principal),
                _key(aaps.key),
                "has-key",
            )
        )
        sessions = self.group(
            self.rows("principal", "session", "key", type="ram-role"),
            ["principal", "session", "key"],
        )
        out.append(
            _edges(
                sessions,
                _node("role-session", sessions.principal, sessions.session),
                _key(sessions.key),
                "issued",
            )
        )
        for kind, frame in (
            ("ram-user", self.rows("account", "principal", type="ram-user")),
            ("aap", self.rows("account", "principal", type="aap")),
        ):
            owned = self.group(frame, ["account", "principal"])
            target = (
                kind + ":" + _s(owned.principal)
                if kind == "ram-user"
                else _node("aap", owned.account, owned.principal)
            )
            out.append(_edges(owned, _node("account", owned.account), target, "owns"))
        keys = self.group(self.rows("key", "key_id"), ["key", "key_id"])
        out.append(_edges(keys, _key(keys.key), _node("key", keys.key_id), "called"))
        secrets = self.group(self.rows("key", "secret", "account"), ["key", "account", "secret"])
        out.append(
            _edges(
                secrets,
                _key(secrets.key),
                _node("secret", secrets.account, secrets.secret),
                "called",
            )
        )
        sources = self.group(self.rows("key", "ip"), ["ip", "key"])
        out.append(_edges(sources, _node("ip", sources.ip), _key(sources.key), "source-of"))
        return [*out, *self._sessions(), *self._kms_structure()]

    # -- roles and sessions (ActionTrail) -----------------------------------------------------

    def role_node(self, account: Any, role_id: Any, name: Any) -> str | None:
        if isinstance(role_id, str) and role_id:
            return f"ram-role:{role_id}"
        if isinstance(name, str) and name:
            account = account if isinstance(account, str) else ""
            found = self.roles.get((account, name.lower()))
            return f"ram-role:{found}" if found else f"ram-role:{account}/{name.lower()}"
        return None

    def _sessions(self) -> list[pd.DataFrame]:
        at = self.at
        if not len(at):
            return []
        usage = pd.DataFrame(
            {
                "time": at.eventTime,
                "failed": False,
                "action": at.eventName,
                "role": at.roleId,
                "session": at.sessionName,
                "account": at.accountId,
                "role_name": at.roleName.astype(object).fillna(""),
            }
        ).dropna(subset=["role", "session", "account"])
        grouped = self.group(usage, ["role", "session", "account", "role_name"])
        roles = pd.Series(
            [
                self.role_node(a, r, n)
                for a, r, n in zip(grouped.account, grouped.role, grouped.role_name, strict=True)
            ],
            index=grouped.index,
            dtype=object,
        )
        session = _node("role-session", grouped.role, grouped.session)
        out = [
            _edges(grouped, session, roles, "of-role"),
            _edges(grouped, _node("account", grouped.account), roles, "owns"),
        ]
        assume = at[
            at.eventName.astype(str).str.startswith("AssumeRole") & at.targetSessionName.notna()
        ]
        if len(assume):
            out += self._assumptions(assume)
        return out

    def _assumptions(self, assume: pd.DataFrame) -> list[pd.DataFrame]:
        """Assumed / of-role / issued edges from AssumeRole* events (few: one per session)."""
        roles = [
            self.role_node(a, r, n)
            for a, r, n in zip(
                assume.targetRoleAccountId, assume.targetRoleId, assume.targetRoleName, strict=True
            )
        ]
        targets = [
            f"role-session:{str(r).split(':', 1)[1]}:{s}"
            for r, s in zip(roles, assume.targetSessionName, strict=True)
        ]
        ok = (assume.errorCode.isna() | (assume.errorCode.astype(str) == "")).to_numpy()
        frame = pd.DataFrame(
            {
                "time": assume.eventTime.to_numpy(),
                "failed": ~ok,
                "action": "AssumeRole",
                "caller": self._callers(assume),
                "target": targets,
                "role": roles,
                "issued": assume.issuedAccessKeyId.astype(object).to_numpy(),
                "cross": (
                    assume.targetRoleAccountId.astype(str).to_numpy()
                    != assume.accountId.astype(str).to_numpy()
                ),
            }
        )
        assumed = self.group(frame.dropna(subset=["caller"]), ["caller", "target"])
        crossing = (
            frame.dropna(subset=["caller"]).groupby(["caller", "target"], sort=False)["cross"].any()
        )
        assumed["cross_account"] = crossing.reindex(
            pd.MultiIndex.from_frame(assumed[["caller", "target"]])
        ).to_numpy()
        of_role = self.group(frame.dropna(subset=["role"]), ["target", "role"])
        issued = self.group(frame.dropna(subset=["issued"]), ["target", "issued"])
        return [
            _edges(
                assumed,
                assumed.caller,
                assumed.target,
                "assumed",
                cross_account=assumed.cross_account,
            ),
            _edges(of_role, of_role.target, of_role.role, "of-role"),
            _edges(issued, issued.target, _node("access-key", issued.issued), "issued"),
        ]

    def _callers(self, at: pd.DataFrame) -> list[str | None]:
        out: list[str | None] = []
        for kind, principal, user, role, session, account in zip(
            at["userIdentity.type"].astype(object),
            at["userIdentity.principalId"],
            at["userIdentity.userName"],
            at.roleId,
            at.sessionName,
            at.accountId,
            strict=True,
        ):
            if kind == "ram-user" and isinstance(principal, str):
                out.append(NODE_KINDS["ram-user"].node_id(principal))
            elif kind == "assumed-role" and isinstance(role, str) and isinstance(session, str):
                out.append(NODE_KINDS["role-session"].node_id(role, session))
            elif kind == "system" and isinstance(user, str):
                out.append(NODE_KINDS["service"].node_id(user))
            elif kind in ("root-account", "alibaba-cloud-account") and isinstance(account, str):
                out.append(NODE_KINDS["account"].node_id(account))
            else:
                out.append(None)
        return out

    # -- KMS structure --------------------------------------------------------------------------

    def _kms_structure(self) -> list[pd.DataFrame]:
        """Hosts, encrypted-by, has-version and owns (instances) from KMS access-log rows."""
        kms = self.kms
        if not len(kms):
            return []
        frame = pd.DataFrame(
            {
                "time": kms.time,
                "failed": False,
                "action": kms.api_name,
                "instance": kms.instance_id,
                "key": kms.key_id,
                "secret": kms.secret_name,
                "account": kms.account_id,
                "version": kms.key_version_id,
                "owner": kms.user_id,
            }
        )

        def present(*columns: str) -> pd.DataFrame:
            keep = np.ones(len(frame), dtype=bool)
            for column in columns:
                present = frame[column].notna() & (frame[column] != "")
                keep &= present.fillna(False).to_numpy(dtype=bool)
            return frame[keep]

        hosts_key = self.group(present("instance", "key"), ["instance", "key"])
        hosts_secret = self.group(
            present("instance", "account", "secret"), ["instance", "account", "secret"]
        )
        encrypted = self.group(present("account", "secret", "key"), ["account", "secret", "key"])
        versions = self.group(present("key", "version"), ["key", "version"])
        owned = self.group(present("owner", "instance"), ["owner", "instance"])
        secret_id = _node("secret", hosts_secret.account, hosts_secret.secret)
        return [
            _edges(
                hosts_key,
                _node("kms-instance", hosts_key.instance),
                _node("key", hosts_key.key),
                "hosts",
            ),
            _edges(
                hosts_secret,
                _node("kms-instance", hosts_secret.instance),
                secret_id,
                "hosts",
            ),
            _edges(
                encrypted,
                _node("secret", encrypted.account, encrypted.secret),
                _node("key", encrypted.key),
                "encrypted-by",
            ),
            _edges(
                versions,
                _node("key", versions.key),
                "key-version:" + _s(versions.version),
                "has-version",
            ),
            _edges(
                owned,
                _node("account", owned.owner),
                _node("kms-instance", owned.instance),
                "owns",
            ),
        ]

    # -- nodes -------------------------------------------------------------------------------------

    def name_pairs(self) -> dict[str, pd.DataFrame]:
        """(node, name) pairs in order of first appearance: users, roles, assumed roles."""
        users = self.group(self.rows("principal", "name", type="ram-user"), ["principal", "name"])
        pairs = {
            "users": pd.DataFrame(
                {
                    "node": _node("ram-user", users.principal),
                    "name": _s(users.name),
                }
            )
        }
        at = self.at
        for kind, columns in (
            ("roles", ["roleId", "roleName"]),
            ("targets", ["targetRoleId", "targetRoleName"]),
        ):
            found = (
                at[columns].dropna().astype(str).drop_duplicates()
                if len(at)
                else pd.DataFrame(columns=columns)
            )
            pairs[kind] = pd.DataFrame(
                {
                    "node": NODE_KINDS["ram-role"].prefix + found[columns[0]],
                    "name": found[columns[1]],
                }
            )
        return pairs


def _nodes(edges: pd.DataFrame, names: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Nodes of the edges with kind, name and (where an ``owns`` edge shows it) account."""
    ids = pd.unique(pd.concat([edges.src, edges.dst], ignore_index=True))
    owns = edges[edges.relation == "owns"]
    accounts = dict(zip(owns.dst, owns.src.str.split(":", n=1).str[1], strict=True))
    out = []
    for node in ids:
        kind, _, ident = str(node).partition(":")
        attributes = {"kind": kind, "name": names.get(node, ident)}
        if node in accounts:
            attributes["account"] = accounts[node]
        elif kind == "role-session":
            role = ident.split(":", 1)[0]
            if f"ram-role:{role}" in accounts:
                attributes["account"] = accounts[f"ram-role:{role}"]
        out.append((str(node), attributes))
    return out


def _node(kind: str, *columns: pd.Series) -> pd.Series:
    """Node ids of ``kind`` (:mod:`.nodes`) from columns of values."""
    return NODE_KINDS[kind].ids(*(_s(c) for c in columns))


def _s(values: pd.Series) -> pd.Series:
    """Text of a (possibly categorical) column, for building node ids."""
    return values.astype(str)


def _key(values: pd.Series) -> pd.Series:
    text = values.astype(str)
    prefix = np.where(
        text.str.startswith("KAAP.").to_numpy(),
        NODE_KINDS["client-key"].prefix,
        NODE_KINDS["access-key"].prefix,
    )
    return pd.Series(prefix, index=values.index, dtype=object) + text


def _edges(
    grouped: pd.DataFrame, src: Any, dst: Any, relation: str, cross_account: Any = None
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "src": np.asarray(src, dtype=object),
            "dst": np.asarray(dst, dtype=object),
            "relation": relation,
            "count": grouped["count"].to_numpy(),
            "first_seen": grouped["first_seen"].to_numpy(),
            "last_seen": grouped["last_seen"].to_numpy(),
            "failures": grouped["failures"].to_numpy(),
            "operations": grouped["operations"].to_numpy(),
        }
    )
    if cross_account is not None:
        frame["cross_account"] = np.asarray(cross_account, dtype=bool)
    return frame[frame.src.notna() & frame.dst.notna()]


def _uncount_repeats(frame: pd.DataFrame, out: pd.DataFrame, keys: list[str]) -> None:
    """Take the rows that repeat a call of their group off ``count`` and ``failures``."""
    repeats = repeated_calls(frame, keys)
    if repeats is None or not repeats.any():
        return
    failed = repeated_calls(frame[frame["failed"].to_numpy(dtype=bool)], keys)
    index = pd.MultiIndex.from_frame(out[keys]) if len(keys) > 1 else pd.Index(out[keys[0]])
    out["count"] -= repeats.reindex(index, fill_value=0).to_numpy()
    if failed is not None:
        out["failures"] -= failed.reindex(index, fill_value=0).to_numpy()


def _operations(frame: pd.DataFrame, out: pd.DataFrame, keys: list[str]) -> list[tuple[str, ...]]:
    """Collect the sorted distinct actions of each grouped row, without a call per group."""
    actions = frame[[*keys, "action"]].dropna().drop_duplicates()
    rows = out[keys].assign(_row=np.arange(len(out)))
    actions = actions.merge(rows, on=keys, how="inner")
    operations: list[tuple[str, ...]] = [()] * len(out)
    if not len(actions):
        return operations
    numbers = actions["_row"].to_numpy()
    names = actions["action"].astype(str).to_numpy()
    order = np.lexsort((names, numbers))
    numbers, names = numbers[order], names[order]
    cuts = np.flatnonzero(np.diff(numbers)) + 1
    for number, chunk in zip(numbers[np.r_[0, cuts]], np.split(names, cuts), strict=True):
        operations[int(number)] = tuple(chunk.tolist())
    return operations


def _merge_duplicates(edges: pd.DataFrame) -> pd.DataFrame:
    """Fold edges that two group-bys produced for the same (src, dst, relation)."""
    keys = ["src", "dst", "relation"]
    if not len(edges):
        return edges
    repeated = edges.duplicated(keys, keep=False)
    if not repeated.any():
        return edges
    twins = edges[repeated]
    grouped = twins.groupby(keys, sort=False)
    merged = grouped.agg(
        count=("count", "sum"),
        first_seen=("first_seen", "min"),
        last_seen=("last_seen", "max"),
        failures=("failures", "sum"),
    )
    merged["operations"] = grouped["operations"].agg(_union)
    if "cross_account" in twins:
        crossing = (
            twins.assign(cross_account=twins.cross_account.fillna(False).astype(bool))
            .groupby(keys, sort=False)["cross_account"]
            .any()
        )
        assumed = crossing.index.get_level_values("relation") == "assumed"
        merged["cross_account"] = crossing.astype(object).where(assumed)  # only assumed edges
    return pd.concat([edges[~repeated], merged.reset_index()], ignore_index=True)


def _union(groups: pd.Series) -> tuple[str, ...]:
    """Merge the operation tuples of duplicate edges."""
    merged: set[str] = set()
    for group in groups:
        if isinstance(group, tuple):
            merged.update(str(o) for o in group)
    return tuple(sorted(merged))


def _edge_tuples(edges: pd.DataFrame) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(src, dst, key, attributes) for networkx, converted column by column, not per cell."""
    columns: dict[str, list[Any]] = {
        "relation": edges.relation.tolist(),
        "count": edges["count"].astype("int64").tolist(),
        "first_seen": pd.to_datetime(edges.first_seen, utc=True).tolist(),
        "last_seen": pd.to_datetime(edges.last_seen, utc=True).tolist(),
        "failures": edges.failures.astype("int64").tolist(),
        "operations": [o if isinstance(o, tuple) else () for o in edges.operations],
    }
    cross = edges.cross_account.tolist() if "cross_account" in edges else [None] * len(edges)
    out = []
    for i, (src, dst, relation) in enumerate(
        zip(edges.src.tolist(), edges.dst.tolist(), columns["relation"], strict=True)
    ):
        attributes = {name: values[i] for name, values in columns.items()}
        if isinstance(cross[i], (bool, np.bool_)):
            attributes["cross_account"] = bool(cross[i])
        out.append((src, dst, relation, attributes))
    return out
