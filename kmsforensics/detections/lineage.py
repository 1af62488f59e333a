"""The lineage of a credential: who it comes from, through which role sessions, where.

An STS key is issued by an ``AssumeRole`` (its ``issued_access_key_id``); the caller of
that ``AssumeRole`` signed with a key of its own, which may itself have been issued by
an earlier one. Following those issues back (the graph's ``issued`` and ``assumed``
relations) reaches the *origin*: the long-term AccessKey (``access-key:LTAI...``), the
person (``ram-user:...``, console sign-ins), the cloud service that assumed a workload's
role (``service:ecs.aliyuncs.com``) or, when the evidence starts mid-chain, the role.

Each credential's lineage is its origin, the chain of roles assumed on the way (role
ARNs, first hop first) and the accounts they took it through. Rules key baselines on
it (D19, D20, D30: origin x target role x source network), and every finding carries
the lineage of its first row that has one.

Examples
--------
>>> import pandas as pd
>>> issued = pd.DataFrame({
...     "time": pd.to_datetime(["2026-03-02 01:00", "2026-03-02 01:01"], utc=True),
...     "access_key_id": ["LTAIabc", "STS.one"],
...     "issued_access_key_id": ["STS.one", "STS.two"],
...     "role_arn": ["acs:ram::111:role/jump", "acs:ram::222:role/admin"],
...     "identity_type": ["ram-user", "ram-role"],
...     "account_id": ["111", "111"],
...     "principal_id": ["u1", "r1"],
...     "principal_name": ["gao", "jump"],
...     "session_name": [None, "gao"],
...     "client_ip": ["203.0.113.8", "203.0.113.8"],
... })
>>> lineage = lineages(issued)
>>> lineage["STS.two"].origin, lineage["STS.two"].chain
('ram-user:u1', ('acs:ram::111:role/jump', 'acs:ram::222:role/admin'))
>>> lineage["STS.two"].accounts
('111', '222')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: The columns of an AssumeRole row that lineage reads.
ISSUE_COLUMNS = [
    "time",
    "access_key_id",
    "issued_access_key_id",
    "role_arn",
    "identity_type",
    "account_id",
    "principal_id",
    "principal_name",
    "session_name",
    "client_ip",
]
_OWNER = re.compile(r"acs:ram::(\d+):role/")


@dataclass(frozen=True)
class Lineage:
    """Where a credential comes from: origin, roles assumed (in order), accounts crossed."""

    origin: str
    chain: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the lineage as plain data (for the findings' ``lineage`` column)."""
        return {"origin": self.origin, "chain": list(self.chain), "accounts": list(self.accounts)}


def issuance_mask(act: pd.DataFrame) -> pd.Series:
    """ActionTrail rows that issued an STS key: successful ``AssumeRole*`` calls."""
    action = act["action"].astype(object).astype(str)
    return (
        (act["source"].astype(object) == "actiontrail")
        & action.str.startswith("AssumeRole")
        & act["issued_access_key_id"].notna()
        & act["success"].fillna(True).astype(bool)
    )


def issuances(act: pd.DataFrame) -> pd.DataFrame:
    """Return the rows that issued STS keys, with the columns lineage needs, in time order."""
    rows = act.loc[issuance_mask(act), ISSUE_COLUMNS]
    return rows.astype({c: object for c in ISSUE_COLUMNS if c != "time"}).sort_values(
        "time", kind="stable"
    )


def caller_origin(kind: Any, key: Any, account: Any, principal: Any, name: Any) -> str:
    """Return the origin of a caller whose key no AssumeRole in the evidence issued.

    A RAM user is the origin of their own AccessKeys (a rotated key is the same
    origin); a long-term key without a known user stands for itself.
    """
    if kind == "ram-user" and isinstance(principal, str):
        return f"ram-user:{principal}"
    if isinstance(key, str) and key and not key.startswith("STS."):
        return ("client-key:" if key.startswith("KAAP.") else "access-key:") + key
    if kind == "ram-role" and isinstance(principal, str):
        return f"ram-role:{principal}"
    if kind == "system" and isinstance(name, str):
        return f"service:{name}"
    if kind == "aap" and isinstance(principal, str):
        return f"aap:{account}/{principal}"
    if kind == "account" and isinstance(account, str):
        return f"account:{account}"
    if isinstance(principal, str):
        return f"{kind}:{principal}"
    return f"unknown:{key if isinstance(key, str) else '?'}"


def lineages(issued: pd.DataFrame) -> dict[str, Lineage]:
    """Map every issued STS key to its lineage (``issued`` from :func:`issuances`)."""
    out: dict[str, Lineage] = {}
    for row in issued.itertuples(index=False):
        parent = out.get(row.access_key_id) if isinstance(row.access_key_id, str) else None
        if parent is None:
            parent = Lineage(
                caller_origin(
                    row.identity_type,
                    row.access_key_id,
                    row.account_id,
                    row.principal_id,
                    row.principal_name,
                ),
                (),
                (str(row.account_id),) if isinstance(row.account_id, str) else (),
            )
        owner = _OWNER.match(str(row.role_arn))
        accounts = parent.accounts
        if owner and (not accounts or accounts[-1] != owner.group(1)):
            accounts = (*accounts, owner.group(1))
        out.setdefault(
            str(row.issued_access_key_id),
            Lineage(parent.origin, (*parent.chain, str(row.role_arn).lower()), accounts),
        )
    return out


def row_lineages(
    act: pd.DataFrame, known: dict[str, Lineage], principal: pd.Series, credential: pd.Series
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return each row's origin, chain (``a > b``) and account path (``a > b``).

    A row signed with an issued key takes that key's lineage; any other row is its own
    origin (its long-term credential, else its principal: a session's role) with no
    chain (NaN). The work grows with the distinct keys, not with the rows.
    """
    codes, uniques = pd.factorize(act["access_key_id"].astype(object))
    found = [known.get(str(k)) for k in uniques]

    def column(values: list[Any]) -> pd.Series:
        mapped = np.array([*values, None], dtype=object)
        return pd.Series(mapped[codes], index=act.index, dtype=object)

    origin = column([f.origin if f else None for f in found])
    chain = column([" > ".join(f.chain) if f else np.nan for f in found])
    accounts = column([" > ".join(f.accounts) if f else np.nan for f in found])
    long_term = column([not str(k).startswith("STS.") for k in uniques]).fillna(False)
    person = act["identity_type"].astype(object).to_numpy() == "ram-user"
    own = credential.where(long_term.astype(bool) & credential.notna() & ~person, principal)
    return origin.where(origin.notna(), own), chain, accounts


def caller_origins(issued: pd.DataFrame, known: dict[str, Lineage]) -> pd.Series:
    """Return the origin of each issuance's caller (the lineage it extends)."""
    out = []
    for row in issued.itertuples(index=False):
        parent = known.get(row.access_key_id) if isinstance(row.access_key_id, str) else None
        out.append(
            parent.origin
            if parent is not None
            else caller_origin(
                row.identity_type,
                row.access_key_id,
                row.account_id,
                row.principal_id,
                row.principal_name,
            )
        )
    return pd.Series(out, index=issued.index, dtype=object)


@dataclass(frozen=True)
class PathBaseline:
    """What the baseline knows of role assumptions: origin x role x network, and networks.

    ``triples`` are (origin, role ARN, network) seen before the window, ``pairs`` the
    (origin, role ARN), ``networks`` every network any AssumeRole came from.
    """

    triples: frozenset[tuple[str, str, str]]
    pairs: frozenset[tuple[str, str]]
    networks: frozenset[str]
    #: (role, network) -> how many origins reached that role from that network.
    crowd: dict[tuple[str, str], int] = field(default_factory=dict)

    def severity(self, origin: Any, role: Any, network: Any) -> str:
        """Rate one AssumeRole: its caller's origin, the role, the source network.

        ``low`` for a known path; ``high`` from a network no AssumeRole of the
        organisation came from; ``medium`` for an origin new to the role, unless two
        or more other origins reach that role from that network (a team behind the
        office NAT: then ``low``); ``low`` for a known origin from another known
        network.
        """
        o, r, n = str(origin), str(role).lower(), str(network)
        if (o, r, n) in self.triples:
            return "low"
        if n not in self.networks:
            return "high"
        if (o, r) in self.pairs or self.crowd.get((r, n), 0) >= 2:
            return "low"
        return "medium"


def path_baseline(
    issued: pd.DataFrame, known: dict[str, Lineage], before: pd.Timestamp, network: Any
) -> PathBaseline:
    """Learn the :class:`PathBaseline` from the issuances before ``before``.

    ``network`` maps an address to its network (``a.b.c.0/24``).
    """
    early = issued[issued["time"] < before]
    origins = caller_origins(early, known).astype(str).tolist()
    roles = early["role_arn"].astype(str).str.lower().tolist()
    nets = [str(network(ip)) for ip in early["client_ip"]]
    triples = frozenset(zip(origins, roles, nets, strict=True))
    crowd: dict[tuple[str, str], int] = {}
    for _, role, net in triples:
        crowd[(role, net)] = crowd.get((role, net), 0) + 1
    return PathBaseline(
        triples, frozenset(zip(origins, roles, strict=True)), frozenset(nets), crowd
    )
