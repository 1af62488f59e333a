"""The identity and resource graph: who holds which key, what each key touched.

One node per real thing (design.md, "Graph model"): ``account:<uid>``,
``ram-user:<principal id>``, ``ram-role:<role id>``, ``role-session:<role id>:<session>``,
``aap:<account>/<name>``, ``client-key:<KAAP...>``, ``access-key:<LTAI...|STS...>``,
``kms-instance:<kst-...>``, ``key:<key id>``, ``key-version:<version id>``,
``secret:<account>/<name>``, ``ip:<address>``, ``service:<host>``. A role named by id,
by name or in a RoleArn is one node: names are resolved to ids wherever any event shows
both.

Edges are built from grouped aggregates (one group-by per relation), never one
``add_edge`` per event, and carry ``relation``, ``count``, ``first_seen``,
``last_seen``, ``failures`` and, where it fits, ``operations``. ``assumed`` edges carry
``cross_account``.

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

from ..case import Case

#: Relations and the kinds they join.
RELATIONS: dict[str, str] = {
    "owns": "account -> ram-user / ram-role / aap / kms-instance",
    "has-key": "ram-user / account -> access-key; aap -> client-key",
    "assumed": "ram-user / role-session / service / account -> role-session",
    "of-role": "role-session -> ram-role",
    "issued": "role-session -> access-key (STS)",
    "called": "access-key / client-key -> key / secret",
    "source-of": "ip -> access-key / client-key",
    "hosts": "kms-instance -> key / secret",
    "encrypted-by": "secret -> key",
    "has-version": "key -> key-version",
}


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
    frames = _Frames(case)
    graph = nx.MultiDiGraph()
    edges = (
        pd.concat([f for f in frames.edges() if len(f)], ignore_index=True)
        if any(len(f) for f in frames.edges())
        else _empty_edges()
    )
    nodes = frames.nodes(edges)
    graph.add_nodes_from((row.pop("id"), row) for row in nodes.to_dict("records"))
    graph.add_edges_from(
        (
            row.pop("src"),
            row.pop("dst"),
            row["relation"],
            _clean({str(k): v for k, v in row.items()}),
        )
        for row in edges.to_dict("records")
    )
    return graph


class _Frames:
    """The edge frames of a case, one relation at a time."""

    def __init__(self, case: Case) -> None:
        act = case.activity
        self.act = pd.DataFrame(
            {
                "time": act["time"],
                "success": act["success"].fillna(True).astype(bool),
                "action": act["action"].astype(object),
                "account": act["account_id"].astype(object),
                "type": act["identity_type"].astype(object),
                "principal": act["principal_id"].astype(object),
                "name": act["principal_name"].astype(object),
                "session": act["session_name"].astype(object),
                "key": act["access_key_id"].astype(object),
                "ip": act["client_ip"].astype(object),
                "key_id": act["key_id"].astype(object),
                "secret": act["secret_name"].astype(object),
                "instance": act["instance_id"].astype(object),
                "source": act["source"].astype(object),
            }
        )
        self.at = case._actiontrail_text
        self.kms = case.kms
        self.roles = self._role_ids()

    # -- identities -------------------------------------------------------------------

    def _role_ids(self) -> dict[tuple[str, str], str]:
        """(account, lower-case role name) -> role id, from every event that shows both."""
        at = self.at
        known: dict[tuple[str, str], str] = {}
        if not len(at):
            return known
        pairs = [
            at[["accountId", "roleName", "roleId"]].set_axis(["a", "n", "i"], axis=1),
            at[["targetRoleAccountId", "targetRoleName", "targetRoleId"]].set_axis(
                ["a", "n", "i"], axis=1
            ),
        ]
        for frame in pairs:
            frame = frame.dropna().astype(str).drop_duplicates()
            for a, n, i in frame.itertuples(index=False):
                known.setdefault((a, n.lower()), i)
        return known

    def role_node(self, account: Any, role_id: Any, name: Any) -> str | None:
        if isinstance(role_id, str) and role_id:
            return f"ram-role:{role_id}"
        if isinstance(name, str) and name:
            account = account if isinstance(account, str) else ""
            found = self.roles.get((account, name.lower()))
            return f"ram-role:{found}" if found else f"ram-role:{account}/{name.lower()}"
        return None

    def _holder(self) -> pd.Series:
        """Name the node behind each activity row's credential (user, session, AAP...)."""
        a = self.act
        holder = pd.Series(None, index=a.index, dtype=object)
        user = (a.type == "ram-user") & a.principal.notna()
        holder[user] = "ram-user:" + a.principal[user]
        root = (a.type == "account") & a.account.notna()
        holder[root] = "account:" + a.account[root]
        session = (a.type == "ram-role") & a.principal.notna() & a.session.notna()
        holder[session] = "role-session:" + a.principal[session] + ":" + a.session[session]
        aap = (a.type == "aap") & a.principal.notna() & a.account.notna()
        holder[aap] = "aap:" + a.account[aap] + "/" + a.principal[aap]
        system = (a.type == "system") & a.name.notna()
        holder[system] = "service:" + a.name[system]
        return holder

    @staticmethod
    def key_node(keys: pd.Series) -> pd.Series:
        kaap = keys.astype(str).str.startswith("KAAP.")
        prefix = pd.Series(
            np.where(kaap, "client-key:", "access-key:"), index=keys.index, dtype=object
        )
        return prefix + keys.astype(str)

    # -- edges ----------------------------------------------------------------------------

    def edges(self) -> list[pd.DataFrame]:
        a = self.act
        holder = self._holder()
        keyed = a.key.notna()
        key = self.key_node(a.key[keyed])
        has_key = pd.DataFrame(
            {
                "src": holder[keyed],
                "dst": key,
                "time": a.time[keyed],
                "success": a.success[keyed],
                "action": a.action[keyed],
            }
        )
        sts = key.str.startswith("access-key:STS.")
        has_key["relation"] = np.where(sts, "issued", "has-key")
        has_key = has_key[
            has_key.src.notna() & (~sts | has_key.src.str.startswith("role-session:"))
        ]
        resource = pd.Series(None, index=a.index, dtype=object)
        resource[a.key_id.notna()] = "key:" + a.key_id[a.key_id.notna()]
        secret_account = a.account.where(a.account.notna(), "")
        secret = a.secret.notna()
        resource[secret] = "secret:" + secret_account[secret] + "/" + a.secret[secret]
        called = keyed & resource.notna()
        calls = pd.DataFrame(
            {
                "src": self.key_node(a.key[called]),
                "dst": resource[called],
                "time": a.time[called],
                "success": a.success[called],
                "action": a.action[called],
                "relation": "called",
            }
        )
        sourced = keyed & a.ip.notna()
        sources = pd.DataFrame(
            {
                "src": "ip:" + a.ip[sourced],
                "dst": self.key_node(a.key[sourced]),
                "time": a.time[sourced],
                "success": a.success[sourced],
                "action": a.action[sourced],
                "relation": "source-of",
            }
        )
        owned = (
            holder.notna()
            & a.account.notna()
            & ~holder.str.startswith(("account:", "service:", "role-session:"), na=True)
        )
        owns = pd.DataFrame(
            {
                "src": "account:" + a.account[owned],
                "dst": holder[owned],
                "time": a.time[owned],
                "success": a.success[owned],
                "action": a.action[owned],
                "relation": "owns",
            }
        )
        frames = [has_key, calls, sources, owns, *self._sessions(), *self._kms_structure()]
        return [_aggregate(f) for f in frames]

    def _sessions(self) -> list[pd.DataFrame]:
        """Build assumed, of-role and issued edges from AssumeRole events and session use."""
        at = self.at
        if not len(at):
            return []
        out = []
        usage = at[at.roleId.notna() & at.sessionName.notna()]
        session = "role-session:" + usage.roleId.astype(str) + ":" + usage.sessionName.astype(str)
        roles = [
            self.role_node(acc, rid, name)
            for acc, rid, name in zip(usage.accountId, usage.roleId, usage.roleName, strict=True)
        ]
        out.append(
            pd.DataFrame(
                {
                    "src": session.to_numpy(),
                    "dst": roles,
                    "time": usage.eventTime.to_numpy(),
                    "success": True,
                    "action": usage.eventName.astype(object).to_numpy(),
                    "relation": "of-role",
                }
            )
        )
        owned = usage.accountId.notna().to_numpy()
        out.append(
            pd.DataFrame(
                {
                    "src": ("account:" + usage.accountId.astype(str)).to_numpy()[owned],
                    "dst": [r for r, keep in zip(roles, owned, strict=True) if keep],
                    "time": usage.eventTime.to_numpy()[owned],
                    "success": True,
                    "action": usage.eventName.astype(object).to_numpy()[owned],
                    "relation": "owns",
                }
            )
        )
        assume = at[
            at.eventName.astype(str).str.startswith("AssumeRole") & at.targetSessionName.notna()
        ]
        if len(assume):
            role_nodes = [
                self.role_node(acc, rid, name)
                for acc, rid, name in zip(
                    assume.targetRoleAccountId,
                    assume.targetRoleId,
                    assume.targetRoleName,
                    strict=True,
                )
            ]
            role_ids = [str(n).split(":", 1)[1] for n in role_nodes]
            target = [
                "role-session:" + rid + ":" + str(s)
                for rid, s in zip(role_ids, assume.targetSessionName, strict=True)
            ]
            caller = self._caller(assume)
            ok = assume.errorCode.isna() | (assume.errorCode.astype(str) == "")
            assumed = pd.DataFrame(
                {
                    "src": caller,
                    "dst": target,
                    "time": assume.eventTime.to_numpy(),
                    "success": ok.to_numpy(),
                    "action": "AssumeRole",
                    "relation": "assumed",
                }
            )
            assumed["cross"] = (
                assume.targetRoleAccountId.astype(str).to_numpy()
                != assume.accountId.astype(str).to_numpy()
            )
            out.append(assumed[assumed.src.notna()])
            out.append(
                pd.DataFrame(
                    {
                        "src": target,
                        "dst": role_nodes,
                        "time": assume.eventTime.to_numpy(),
                        "success": True,
                        "action": "AssumeRole",
                        "relation": "of-role",
                    }
                )
            )
            issued = assume.issuedAccessKeyId.notna().to_numpy()
            out.append(
                pd.DataFrame(
                    {
                        "src": np.array(target, dtype=object)[issued],
                        "dst": (
                            "access-key:" + assume.issuedAccessKeyId[issued].astype(str)
                        ).to_numpy(),
                        "time": assume.eventTime[issued].to_numpy(),
                        "success": True,
                        "action": "AssumeRole",
                        "relation": "issued",
                    }
                )
            )
        return out

    def _caller(self, at: pd.DataFrame) -> list[str | None]:
        kinds = at["userIdentity.type"].astype(object)
        out: list[str | None] = []
        for kind, pid, user, rid, session, account in zip(
            kinds,
            at["userIdentity.principalId"],
            at["userIdentity.userName"],
            at.roleId,
            at.sessionName,
            at.accountId,
            strict=True,
        ):
            if kind == "ram-user" and isinstance(pid, str):
                out.append(f"ram-user:{pid}")
            elif kind == "assumed-role" and isinstance(rid, str) and isinstance(session, str):
                out.append(f"role-session:{rid}:{session}")
            elif kind == "system" and isinstance(user, str):
                out.append(f"service:{user}")
            elif kind in ("root-account", "alibaba-cloud-account") and isinstance(account, str):
                out.append(f"account:{account}")
            else:
                out.append(None)
        return out

    def _kms_structure(self) -> list[pd.DataFrame]:
        """Build hosts, encrypted-by, has-version and owns edges from KMS access-log rows."""
        kms = self.kms
        if not len(kms):
            return []
        base = {"time": kms.time.to_numpy(), "success": True, "action": kms.api_name.astype(object)}
        owner = kms.user_id.astype(object).where(kms.user_id.astype(str) != "", None)
        instance = "kms-instance:" + kms.instance_id.astype(str)
        secret = "secret:" + kms.account_id.astype(str) + "/" + kms.secret_name.astype(str)
        key = "key:" + kms.key_id.astype(str)
        has_instance = kms.instance_id.notna() & (kms.instance_id.astype(str) != "")
        frames = [
            pd.DataFrame({**base, "src": instance, "dst": key, "relation": "hosts"})[
                has_instance & kms.key_id.notna()
            ],
            pd.DataFrame({**base, "src": instance, "dst": secret, "relation": "hosts"})[
                has_instance & kms.secret_name.notna()
            ],
            pd.DataFrame({**base, "src": secret, "dst": key, "relation": "encrypted-by"})[
                kms.secret_name.notna() & kms.key_id.notna()
            ],
            pd.DataFrame(
                {
                    **base,
                    "src": key,
                    "dst": "key-version:" + kms.key_version_id.astype(str),
                    "relation": "has-version",
                }
            )[kms.key_id.notna() & kms.key_version_id.notna()],
            pd.DataFrame(
                {**base, "src": "account:" + owner.astype(str), "dst": instance, "relation": "owns"}
            )[has_instance & owner.notna()],
        ]
        return frames

    # -- nodes --------------------------------------------------------------------------------

    def nodes(self, edges: pd.DataFrame) -> pd.DataFrame:
        ids = pd.unique(pd.concat([edges.src, edges.dst], ignore_index=True))
        nodes = pd.DataFrame({"id": ids})
        nodes["kind"] = nodes.id.str.split(":", n=1).str[0]
        nodes["name"] = nodes.id.str.split(":", n=1).str[1]
        names = self._names()
        known = nodes.id.map(names).astype(object)
        nodes["name"] = known.where(known.notna(), nodes["name"])
        accounts = self._accounts()
        nodes["account"] = nodes.id.map(accounts)
        return nodes

    def _names(self) -> dict[str, str]:
        a = self.act
        users = a[(a.type == "ram-user") & a.principal.notna() & a.name.notna()]
        names = {f"ram-user:{p}": n for p, n in zip(users.principal, users.name, strict=True)}
        at = self.at
        if len(at):
            roles = at[at.roleId.notna() & at.roleName.notna()]
            names.update(
                {f"ram-role:{i}": n for i, n in zip(roles.roleId, roles.roleName, strict=True)}
            )
        return names

    def _accounts(self) -> dict[str, str]:
        a = self.act
        holder = self._holder()
        known = holder.notna() & a.account.notna()
        return dict(zip(holder[known], a.account[known], strict=True))


def _aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (src, dst, relation): count, first/last seen, failures, operations."""
    if not len(frame):
        return _empty_edges()
    frame = frame[frame.src.notna() & frame.dst.notna()]
    keys = ["src", "dst", "relation"]
    grouped = frame.groupby(keys, sort=False)
    out = grouped.agg(count=("time", "size"), first_seen=("time", "min"), last_seen=("time", "max"))
    out["failures"] = (
        (~frame.success).groupby([frame.src, frame.dst, frame.relation], sort=False).sum()
    )
    actions = frame[[*keys, "action"]].drop_duplicates().dropna()
    out["operations"] = actions.groupby(keys, sort=False)["action"].agg(sorted)
    if "cross" in frame:
        out["cross_account"] = frame.groupby(keys, sort=False)["cross"].any()
    return out.reset_index()


def _empty_edges() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[
            "src",
            "dst",
            "relation",
            "count",
            "first_seen",
            "last_seen",
            "failures",
            "operations",
        ]
    )


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
    out["count"] = int(out["count"])
    out["failures"] = int(out.get("failures", 0))
    out["operations"] = tuple(out.get("operations") or ())
    if "cross_account" in out:
        out["cross_account"] = bool(out["cross_account"])
    return out
