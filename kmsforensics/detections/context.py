"""What every rule reads: the case's rows with the columns rules share, computed once.

Node ids follow the graph (:mod:`kmsforensics.graph.nodes`): a credential is
``access-key:<id>`` or ``client-key:<KAAP...>``; the identity behind a row is
``ram-user:<uid>``, ``role-session:<role id>:<session>``, ``aap:<account>/<name>``,
``account:<uid>`` or ``service:<host>``; the *principal* a baseline is learned for is the
same but a role, not a session (``ram-role:<role id>``): sessions are new every hour.

Node ids are computed on the distinct identity combinations, not per row.

Examples
--------
>>> import pandas as pd
>>> keys = pd.Series(["LTAI1", "KAAP.x", None], dtype="category")
>>> credential_nodes(keys).tolist()
['access-key:LTAI1', 'client-key:KAAP.x', nan]
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..case import Case, evidence_ids, to_utc
from ..graph.nodes import NODE_KINDS
from .geo import GeoLookup
from .lineage import Lineage, PathBaseline, issuances, lineages, path_baseline, row_lineages

IDENTITY_COLUMNS = ["identity_type", "account_id", "principal_id", "principal_name", "session_name"]


def credential_nodes(keys: pd.Series) -> pd.Series:
    """Graph node ids of access keys (``access-key:``) and AAP client keys (``client-key:``)."""
    keys = keys.astype("category")
    names = [
        NODE_KINDS["client-key" if str(k).startswith("KAAP.") else "access-key"].node_id(k)
        for k in keys.cat.categories
    ]
    return keys.cat.rename_categories(names).astype(object)


def identity_node(kind: Any, account: Any, principal: Any, name: Any, session: Any) -> Any:
    """Return the node of the identity behind one row (sessions for roles), or NaN."""
    if not isinstance(kind, str):
        return np.nan
    nodes = NODE_KINDS
    if kind == "ram-user" and isinstance(principal, str):
        return nodes["ram-user"].node_id(principal)
    if kind == "ram-role" and isinstance(principal, str):
        if isinstance(session, str):
            return nodes["role-session"].node_id(principal, session)
        return nodes["ram-role"].node_id(principal)
    if kind == "aap" and isinstance(principal, str) and isinstance(account, str):
        return nodes["aap"].node_id(account, principal)
    if kind == "account" and isinstance(account, str):
        return nodes["account"].node_id(account)
    if kind == "system" and isinstance(name, str):
        return nodes["service"].node_id(name)
    if kind == "cloudsso-user" and isinstance(principal, str):
        return nodes["cloudsso-user"].node_id(principal)
    return np.nan


def principal_of(actor: Any) -> Any:
    """Return the principal a baseline is kept for: the role of a session, else the actor."""
    if isinstance(actor, str) and actor.startswith("role-session:"):
        return "ram-role:" + actor.split(":")[1]
    return actor


def network_of(ip: Any, v4_prefix: int = 24, v6_prefix: int = 48) -> Any:
    """Return the network (``a.b.c.0/24``) of an address, NaN for non-addresses."""
    try:
        address = ipaddress.ip_address(str(ip))
    except ValueError:
        return np.nan
    prefix = v4_prefix if address.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def is_address(values: pd.Series) -> pd.Series:
    """Tell where a value is an IP address (not a host name, ``Internal`` or empty)."""
    return flag(values, lambda v: network_of(v, 32, 128) is not np.nan)


_VERSION = re.compile(r"/[^\s()]*|\([^)]*\)|[\d.]+")
_PLATFORM = re.compile(r"\b(linux|darwin|mac ?os|windows|android|iphone|ipad|ios|freebsd)\b", re.I)


def agent_family(agent: Any) -> Any:
    """Return the family of a user agent: product names and platform, without versions.

    An SDK upgrade is the same family; the same CLI on another platform is not.

    >>> agent_family("aliyun-cli/3.0.198 (Linux; amd64) Go/1.21.5")
    'aliyun-cli go linux'
    >>> agent_family("aliyun-cli/3.0.190 (Darwin; arm64) Go/1.21.5")
    'aliyun-cli go darwin'
    """
    if not isinstance(agent, str) or not agent:
        return np.nan
    family = " ".join(_VERSION.sub(" ", agent).lower().split())
    platform = _PLATFORM.search(agent)
    if platform:
        family = f"{family} {platform.group(1).lower().replace(' ', '')}".strip()
    return family or np.nan


def per_value(values: pd.Series, function: Any) -> pd.Series:
    """Apply ``function`` once per distinct value of a column (NaN stays NaN).

    Categorical columns are mapped through their categories, others through
    ``pd.factorize``: the work grows with the distinct values, not with the rows.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = values.cat.codes.to_numpy(), list(values.cat.categories)
    else:
        codes, found = pd.factorize(values.astype(object), use_na_sentinel=True)
        uniques = list(found)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [function(u) for u in uniques]
    mapped[-1] = np.nan
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def flag(values: pd.Series, test: Any) -> pd.Series:
    """Return a boolean column: ``test`` once per distinct value (False for NaN)."""
    mapped = per_value(values, lambda v: bool(test(v)))
    return mapped.fillna(False).astype(bool)


def _numpy_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the frame with Arrow string columns as object columns (rows are taken often)."""
    out = frame.copy(deep=False)
    for column in out.columns:
        if str(out[column].dtype) in ("str", "string"):
            out[column] = out[column].astype(object)
    return out


class Context:
    """The rows and shared columns of one detection run.

    Parameters
    ----------
    case : Case
        The loaded evidence.
    window_start : str, datetime or None
        Start of the window under investigation: baseline rules learn from everything
        before it. ``None``: the first ``baseline_days`` of the evidence.
    baseline_days : float
        Length of the default baseline.
    timezone : str
        The organisation's time zone (working hours, D24).
    geoip : str or Path or None
        A MaxMind-format database (``.mmdb``: City, Country or ASN); rules that need
        geo or ASN data skip what they cannot do without it.
    known_accounts : list of str or None
        Accounts the organisation owns or trusts (D19). ``None``: every account whose
        own events are in the evidence.
    """

    def __init__(
        self,
        case: Case,
        *,
        window_start: str | datetime | pd.Timestamp | None = None,
        baseline_days: float = 2.0,
        timezone: str = "Asia/Shanghai",
        geoip: str | Path | None = None,
        known_accounts: list[str] | None = None,
    ) -> None:
        self.case = case
        self.act = _numpy_text(case.activity)
        self.at_text = case._actiontrail_text
        times = self.act["time"]
        start = times.min() if len(times) else pd.Timestamp("1970-01-01", tz="UTC")
        explicit = to_utc(window_start)
        self.window_given = explicit is not None
        self.baseline_end: pd.Timestamp = (
            explicit if explicit is not None else start + pd.Timedelta(days=baseline_days)
        )
        self.timezone = timezone
        self.geo = GeoLookup(geoip) if geoip else None
        self._known_accounts = known_accounts
        #: Dask engine only: facts gathered from the whole case before the days are read.
        self.facts: dict[str, Any] = {}

    # -- shared columns -------------------------------------------------------------------

    @cached_property
    def ok(self) -> pd.Series:
        """True where the call succeeded (unknown counts as success)."""
        return self.act["success"].fillna(True).astype(bool)

    @cached_property
    def is_kms(self) -> pd.Series:
        """True for KMS instance access-log rows (rules take copies: ``from_kms_log``)."""
        return self.act["source"].astype(object) == "kms"

    @cached_property
    def is_actiontrail(self) -> pd.Series:
        """True for ActionTrail rows (rules take copies: ``from_actiontrail``)."""
        return self.act["source"].astype(object) == "actiontrail"

    @cached_property
    def status_code(self) -> pd.Series:
        """HTTP status of KMS-log rows (NaN for ActionTrail rows)."""
        kms = self.case.kms
        rows = self.is_kms.to_numpy()
        values = kms["status_code"].to_numpy()
        if not len(values):
            return pd.Series(np.nan, index=self.act.index, name="request_id", dtype=float)
        try:  # Arrow hashes the ids once; the log's first row of an id wins, as in a map
            found = pc.index_in(
                pa.array(self.case.activity["request_id"]).filter(pa.array(rows)),
                value_set=pa.array(kms["request_id"]),
            )
        except pa.ArrowException:  # ids that are not all text
            status = pd.Series(values, index=kms["request_id"].astype(object))
            status = status[~status.index.duplicated()]
            return self.act["request_id"].astype(object).map(status).where(self.is_kms, np.nan)
        taken = np.full(len(rows), -1, dtype=np.int64)
        taken[rows] = found.fill_null(-1).to_numpy()
        out = pd.Series(values[np.maximum(taken, 0)], index=self.act.index, name="request_id")
        return out.where(taken >= 0, np.nan)

    @cached_property
    def evidence_id(self) -> pd.Series:
        """The id that proves a row: ``event_id`` (ActionTrail) or ``request_id`` (KMS)."""
        return evidence_ids(self.act)

    @cached_property
    def credential(self) -> pd.Series:
        """Graph node of the access key or client key of each row (NaN without one)."""
        return credential_nodes(self.act["access_key_id"])

    @cached_property
    def actor(self) -> pd.Series:
        """Graph node of the identity behind each row (a session for a role)."""
        frame = self.act[IDENTITY_COLUMNS].astype(object)
        combos = frame.drop_duplicates()
        nodes = [identity_node(*row) for row in combos.itertuples(index=False)]
        combos = combos.assign(_node=nodes)
        merged = frame.merge(combos, how="left", on=IDENTITY_COLUMNS)
        return pd.Series(merged["_node"].to_numpy(), index=self.act.index, dtype=object)

    @cached_property
    def principal(self) -> pd.Series:
        """The principal each row's baseline belongs to (a role, not its session)."""
        return per_value(self.actor, principal_of)

    @cached_property
    def who(self) -> pd.Series:
        """The credential where there is one, else the identity: the subject of a burst."""
        return self.credential.where(self.credential.notna(), self.actor)

    @cached_property
    def issued(self) -> pd.DataFrame:
        """The AssumeRole rows that issued STS keys (:func:`.lineage.issuances`).

        On the dask engine they come from the whole case (``facts["issuances"]``), so a
        day's context knows the lineage of keys issued on other days.
        """
        given = self.facts.get("issuances")
        return given if given is not None else issuances(self.act)

    @cached_property
    def lineage_of(self) -> dict[str, Lineage]:
        """Every issued STS key's lineage (origin, roles, accounts)."""
        return lineages(self.issued)

    @cached_property
    def paths(self) -> PathBaseline:
        """Role assumptions of the baseline: origin x role x network (D19, D20, D30)."""
        return path_baseline(self.issued, self.lineage_of, self.baseline_end, network_of)

    @cached_property
    def _lineage_columns(self) -> tuple[pd.Series, pd.Series, pd.Series]:
        return row_lineages(self.act, self.lineage_of, self.principal, self.credential)

    @cached_property
    def origin(self) -> pd.Series:
        """The origin of each row's credential: a long-term key, a person, a service."""
        return self._lineage_columns[0]

    @cached_property
    def chain(self) -> pd.Series:
        """The roles each row's credential was assumed through (``a > b``), NaN if none."""
        return self._lineage_columns[1]

    @cached_property
    def account_path(self) -> pd.Series:
        """The accounts each row's credential was taken through (``a > b``), NaN if none."""
        return self._lineage_columns[2]

    @cached_property
    def network(self) -> pd.Series:
        """``/24`` (IPv4) or ``/48`` (IPv6) of each row's source address (NaN if none)."""
        return per_value(self.act["client_ip"], network_of)

    @cached_property
    def agent_family(self) -> pd.Series:
        """User-agent family of each row (product names, no versions)."""
        return per_value(self.act["user_agent"], agent_family)

    @cached_property
    def known_accounts(self) -> set[str]:
        """Accounts taken as the organisation's own (D19)."""
        if self._known_accounts is not None:
            return {str(a) for a in self._known_accounts}
        act = self.act
        own = act["identity_type"].astype(object) != "unknown"
        return {str(a) for a in act.loc[own, "account_id"].dropna().unique()}

    # -- ActionTrail details ------------------------------------------------------------

    def nested(self, rows: pd.DataFrame, field: str) -> list[dict[str, Any]]:
        """Return the nested object ``field`` (``requestParameters`` ...) of ActionTrail rows.

        Parsed only for the rows asked for; a value that is not an object gives ``{}``.
        """
        at = self.at_text
        if field not in at.columns or not len(rows):
            return [{} for _ in range(len(rows))]
        wanted = at[at["eventId"].isin(rows["event_id"].dropna().unique())]
        texts = dict(zip(wanted["eventId"], wanted[field], strict=True))
        out = []
        for event_id in rows["event_id"]:
            text = texts.get(event_id)
            try:
                value = orjson.loads(text) if isinstance(text, str) and text else {}
            except orjson.JSONDecodeError:
                value = {}
            out.append(value if isinstance(value, dict) else {})
        return out

    def rows(self, mask: pd.Series | np.ndarray) -> pd.DataFrame:
        """Activity rows where ``mask`` holds, with the shared columns attached."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        out = self.act.take(positions)
        for name, values in self._shared.items():
            # object, like the text columns of ``act``: no per-call string inference
            out[name] = pd.Series(values[positions], out.index, values.dtype)
        return out

    @cached_property
    def _shared(self) -> dict[str, np.ndarray]:
        """The shared columns :meth:`rows` attaches, as arrays (taken, not re-indexed)."""
        names = ["credential", "actor", "principal", "who", "evidence_id", "origin", "chain"]
        out = {n: getattr(self, n).to_numpy(dtype=object) for n in names}
        out["account_path"] = self.account_path.to_numpy(dtype=object)
        out["network"] = self.network.to_numpy(dtype=object)
        out["ok"] = self.ok.to_numpy(dtype=bool)
        return out

    def action_is(self, *names: str) -> pd.Series:
        """Tell where ``action`` is one of ``names``."""
        return self.act["action"].isin(names)

    def action_matches(self, pattern: str) -> pd.Series:
        """Tell where ``action`` matches a regular expression (from its start)."""
        compiled = re.compile(pattern)
        return flag(self.act["action"], lambda a: isinstance(a, str) and compiled.match(a))
