"""What each AAP was allowed against what it did: the KMS access log joined to its policy.

A KMS-log row belongs to an AAP by the AAP name and owner in the row (``principal_id``,
``account_id``), else by its client key (``access_key_id``, bound to an AAP by the
configuration or by other rows), else by its fingerprint (``access_key_fingerprint``,
tied to a client key by other rows). Each row is then judged against the configuration
in force at its time: which policy allows the operation on the resource, and whether the
source address is inside the network rules of that policy.

Only successful calls (status below 400, or unknown) count as use: a refused call is the
control working, and is left to the detections on failures (D15).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .values import grants, inside, needed_permission, resource_of

#: Columns of ``kf.aap_review``.
COLUMNS = [
    "account_id",
    "aap",
    "check",
    "policy",
    "resource",
    "operation",
    "client_ip",
    "client_key",
    "count",
    "first_seen",
    "last_seen",
    "detail",
    "evidence",
]
#: The checks of ``kf.aap_review``, in the order they are listed.
CHECKS = (
    "use",
    "widened",
    "allowed-used",
    "allowed-unused",
    "used-not-allowed",
    "no-configuration",
    "inside-network",
    "outside-network",
    "used-after-deletion",
)


@dataclass
class Judged:
    """Every AAP call of a case, attributed and judged (one row per KMS-log record)."""

    rows: pd.DataFrame
    unattributed: int


def attribute(kms: pd.DataFrame, config: pd.DataFrame) -> Judged:
    """Return the AAP calls of the KMS log with the AAP (account, name) each belongs to."""
    aap_rows = _each(kms["identity_type"], lambda v: v == "aap") | _each(
        kms["access_key_id"], lambda v: str(v).startswith("KAAP.")
    )
    positions = np.flatnonzero(aap_rows)
    index = kms.index[positions]
    out = pd.DataFrame(
        {
            c: kms[c].iloc[positions] if c in kms else pd.Series(np.nan, index=index)
            for c in ("time", "status_code")
        }
    )
    for column in _TEXT:
        if column not in kms:
            out[column] = pd.Series(np.nan, index=index, dtype=object)
            continue
        taken = kms[column].iloc[positions]
        values = taken.to_numpy(dtype=object)
        values[taken.isna().to_numpy() | _blank(taken, values)] = np.nan
        out[column] = pd.Series(values, index=index, dtype=object)
    out["client_key"] = out["access_key_id"]
    named = out["principal_id"].notna() & out["account_id"].notna()
    out["aap_account"] = out["account_id"].where(named)
    out["aap"] = out["principal_id"].where(named)
    out["attributed_by"] = pd.Series("aap name", index=out.index, dtype=object).where(named)
    # fingerprint -> client key, from rows that carry both
    pairs = out.dropna(subset=["access_key_fingerprint", "client_key"])
    by_print = pairs.drop_duplicates("access_key_fingerprint").set_index("access_key_fingerprint")
    missing = out["client_key"].isna() & out["access_key_fingerprint"].notna()
    out.loc[missing, "client_key"] = out.loc[missing, "access_key_fingerprint"].map(
        by_print["client_key"]
    )
    # client key -> AAP, from the configuration, then from named rows
    owners: dict[str, tuple[str, str]] = {}
    keys = config[config["item"] == "client-key"]
    for row in keys.itertuples(index=False):
        owners.setdefault(str(row.value), (str(row.account_id), str(row.aap)))
    owning = out.loc[named, ["client_key", "aap_account", "aap"]].drop_duplicates("client_key")
    for row in owning.dropna(subset=["client_key"]).itertuples():
        owners.setdefault(str(row.client_key), (str(row.aap_account), str(row.aap)))
    lost = out["aap"].isna() & out["client_key"].notna()
    found = out.loc[lost, "client_key"].map(lambda k: owners.get(str(k)))
    has = found.notna()
    idx = found.index[has]
    out.loc[idx, "aap_account"] = [f[0] for f in found[has]]
    out.loc[idx, "aap"] = [f[1] for f in found[has]]
    by_print_rows = idx[out.loc[idx, "access_key_id"].isna()]
    out.loc[idx, "attributed_by"] = "client key"
    out.loc[by_print_rows, "attributed_by"] = "fingerprint"
    lost = out["aap"].isna()
    unattributed = int(lost.sum())
    out = out[~lost] if unattributed else out
    status = pd.to_numeric(out["status_code"], errors="coerce")
    out["ok"] = (status < 400) | status.isna()
    if not out["time"].is_monotonic_increasing:  # the log is mostly in time order already
        out = out.sort_values("time", kind="stable")
    return Judged(out, unattributed)


#: The text columns of the KMS log an AAP call is attributed and judged by.
_TEXT = (
    "account_id",
    "principal_id",
    "access_key_id",
    "access_key_fingerprint",
    "client_ip",
    "api_name",
    "key_id",
    "secret_name",
    "request_id",
)


def _each(column: pd.Series, test: Any) -> np.ndarray:
    """``test`` once per distinct value of a column, as a boolean array (False if missing).

    >>> _each(pd.Series(["a", "", None], dtype="category"), lambda v: v == "").tolist()
    [False, True, False]
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, uniques = column.cat.codes.to_numpy(), list(column.cat.categories)
    else:
        codes, found = pd.factorize(column.astype(object))
        uniques = list(found)
    verdicts = np.array([bool(test(v)) for v in uniques] + [False], dtype=bool)
    return verdicts[codes]


def _blank(column: pd.Series, values: np.ndarray) -> np.ndarray:
    """Tell where a value is empty text (``values`` is the column as objects)."""
    if pd.api.types.is_string_dtype(column.dtype) and not isinstance(
        column.dtype, pd.CategoricalDtype
    ):
        return np.asarray(values == "", dtype=bool)  # text: compared in one pass
    return _each(column, lambda v: str(v) == "")


def judge(
    judged: Judged, config: pd.DataFrame, deleted: dict[str, pd.Timestamp], grace: pd.Timedelta
) -> pd.DataFrame:
    """Add ``known``, ``allowed``, ``policies``, ``grants``, ``inside``, ``deleted_at``.

    Each distinct (AAP, configuration segment, permission, resource, address) is judged
    once, so the work grows with the distinct calls, not with the rows.
    """
    rows = judged.rows.copy()
    rows["operation"] = rows["api_name"].astype(str)
    rows["resource"] = per_distinct(
        [rows["operation"], rows["key_id"], rows["secret_name"]], resource_of
    )
    stamps = _nanoseconds(rows["time"])
    by_aap = rows.groupby(["aap_account", "aap"], sort=False)
    aaps = by_aap.ngroup().to_numpy()
    segment = np.full(len(rows), -1, dtype=np.int64)
    segments: dict[tuple[int, int], Segment] = {}
    indices: dict[tuple[Any, Any], np.ndarray] = by_aap.indices  # type: ignore[assignment]
    for (account, aap), positions in indices.items():
        mine = config[(config["account_id"] == account) & (config["aap"] == aap)]
        if not len(mine):
            continue
        bounds = np.unique(
            np.concatenate([_nanoseconds(mine["since"]), _nanoseconds(mine["until"].dropna())])
        )
        found = np.searchsorted(bounds, stamps[positions], side="right") - 1
        segment[positions] = found
        code = int(aaps[positions[0]])
        for s in np.unique(found[found >= 0]):
            at = pd.Timestamp(int(bounds[int(s)]), tz="UTC")
            segments[(code, int(s))] = _segment(mine, at)

    def verdict(code: Any, s: Any, operation: Any, resource: Any, ip: Any) -> tuple[Any, ...]:
        found = segments.get((int(code), int(s)))
        if not found:
            return _UNKNOWN
        return _verdict(found, needed_permission(operation), str(resource), str(ip))

    keys = [
        pd.Series(aaps, index=rows.index),
        pd.Series(segment, index=rows.index),
        rows["operation"],
        rows["resource"],
        rows["client_ip"],
    ]
    first, inverse = distinct(keys)
    verdicts = [verdict(*combo) for combo in zip(*_values(keys, first), strict=True)]
    for position, column in enumerate(("known", "allowed", "inside", "policies", "grants")):
        values = np.empty(len(verdicts), dtype=object)
        for number, found in enumerate(verdicts):
            values[number] = found[position]
        rows[column] = pd.Series(values[inverse], index=rows.index, dtype=object)
    rows["deleted_at"] = _deleted_at(rows["client_key"], deleted)
    rows["after_deletion"] = after_deletion(rows, grace)
    return rows


def _deleted_at(keys: pd.Series, deleted: dict[str, pd.Timestamp]) -> pd.Series:
    """When each call's client key was deleted (NaT if it was not), per distinct key."""
    first, inverse = distinct([keys])
    if not len(first):
        return pd.to_datetime(keys.map(deleted), utc=True)
    unique = pd.to_datetime(keys.iloc[first].map(deleted), utc=True)
    return pd.Series(unique.to_numpy()[inverse], index=keys.index, dtype=unique.dtype)


def after_deletion(rows: pd.DataFrame, grace: pd.Timedelta) -> pd.Series:
    """Tell which calls came later than their client key's deletion plus ``grace``."""
    return rows["deleted_at"].notna() & (rows["time"] > rows["deleted_at"] + grace)


def distinct(columns: list[pd.Series]) -> tuple[np.ndarray, np.ndarray]:
    """Find the distinct combinations of aligned columns: each one's first row, each row's.

    Missing values are one value. Returns ``(first, inverse)``: positions of the first
    row of each combination, and for every row the number of its combination.

    >>> first, inverse = distinct([pd.Series(["x", "x", "y", None]), pd.Series([1, 1, 2, 2])])
    >>> first.tolist(), inverse.tolist()
    ([0, 2, 3], [0, 0, 1, 2])
    """
    size = len(columns[0])
    combined = np.zeros(size, dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        combined = pd.factorize(combined * (len(uniques) + 1) + codes)[0].astype(np.int64)
    count = int(combined.max()) + 1 if size else 0
    first = np.empty(count, dtype=np.int64)
    first[combined[::-1]] = np.arange(size - 1, -1, -1)
    return first, combined


def _values(columns: list[pd.Series], positions: np.ndarray) -> list[np.ndarray]:
    return [column.iloc[positions].to_numpy(dtype=object) for column in columns]


def per_distinct(columns: list[pd.Series], function: Any) -> np.ndarray:
    """Return ``function(*values)`` for each row, called once per distinct combination.

    Missing values are passed as they are (``NaN``), like a row-by-row loop would.

    >>> a = pd.Series(["x", "x", "y", None])
    >>> b = pd.Series([1, 1, 2, 2])
    >>> per_distinct([a, b], lambda u, v: f"{u}{v}").tolist()
    ['x1', 'x1', 'y2', 'nan2']
    """
    first, inverse = distinct(columns)
    results = np.empty(len(first), dtype=object)
    for number, combo in enumerate(zip(*_values(columns, first), strict=True)):
        results[number] = function(*combo)
    return results[inverse]


def _nanoseconds(times: pd.Series) -> np.ndarray:
    """Return times as integer nanoseconds since the epoch (UTC)."""
    return np.asarray(pd.DatetimeIndex(times).as_unit("ns").asi8)


#: The verdict on a call no known configuration covers.
_UNKNOWN: tuple[Any, ...] = (False, False, np.nan, "", "")

#: One configuration in force: policy -> {"permission": set, "resource": list, "network": list}.
Segment = dict[str, dict[str, Any]]


def _segment(mine: pd.DataFrame, at: Any) -> Segment:
    """Return the configuration of one AAP in force at ``at``, by policy."""
    now = mine[(mine["since"] <= at) & (mine["until"].isna() | (mine["until"] > at))]
    out: Segment = {}
    for item, value, policy in zip(now["item"], now["value"], now["policy"], strict=True):
        entry = out.setdefault(str(policy), {"permission": set(), "resource": [], "network": []})
        if item == "permission":
            entry["permission"].add(value)
        elif item in ("resource", "network"):
            entry[item].append(value)
    out.pop("", None)  # client keys belong to no policy
    return out


def _verdict(segment: Segment, permission: str, resource: str, ip: str) -> tuple[Any, ...]:
    """(known, allowed, inside, allowing policies, matching grants) for one call."""
    if not any(p["permission"] or p["resource"] for p in segment.values()):
        return _UNKNOWN
    allowing, matched = [], []
    for policy, entry in segment.items():
        hits = [v for v in entry["resource"] if grants(v, resource)]
        if permission in entry["permission"] and hits:
            allowing.append(policy)
            matched += [f"{policy}:{h}" for h in hits]
    considered = allowing or list(segment)
    networks = [n for p in considered for n in segment[p]["network"]]
    where = inside(ip, networks) if networks else np.nan
    return (True, bool(allowing), where, ", ".join(allowing), ", ".join(matched))


def review(rows: pd.DataFrame, config: pd.DataFrame) -> pd.DataFrame:
    """Return the review table: one row per AAP and check (see :data:`CHECKS`)."""
    out: list[dict[str, Any]] = []
    ok = rows[rows["ok"].astype(bool)]
    for (account, aap), group in rows.groupby(["aap_account", "aap"], sort=True):
        used = group[group["ok"].astype(bool)]
        out.append(
            _row(
                account,
                aap,
                "use",
                group,
                detail=(
                    f"{len(used)} successful of {len(group)} calls; client keys "
                    f"{_names(group['client_key'])}; {group['client_ip'].nunique()} addresses"
                ),
            )
        )
    for (account, aap), group in ok.groupby(["aap_account", "aap"], sort=True):
        allowed = group[group["allowed"].astype(bool)]
        exploded = allowed.assign(grant=allowed["grants"].str.split(", ")).explode("grant")
        for grant, hits in exploded.groupby("grant", sort=True):
            policy, pattern = str(grant).split(":", 1)
            resources = sorted(set(hits["resource"]))
            detail = f"used for {len(resources)}: {_names(pd.Series(resources))}"
            if "*" in pattern:
                detail += f"; least privilege: narrow {pattern} to the resources used"
            out.append(
                _row(
                    account,
                    aap,
                    "allowed-used",
                    hits,
                    policy=policy,
                    resource=pattern,
                    operation=_names(hits["operation"]),
                    detail=detail,
                )
            )
        for check, part, detail in (
            (
                "used-not-allowed",
                group[group["known"].astype(bool) & ~group["allowed"].astype(bool)],
                "no policy in force allowed this operation on this resource",
            ),
            (
                "no-configuration",
                group[~group["known"].astype(bool)],
                "no configuration known at the time (no export or event covers it)",
            ),
        ):
            for (resource, operation), hits in part.groupby(["resource", "operation"], sort=True):
                out.append(
                    _row(
                        account,
                        aap,
                        check,
                        hits,
                        resource=resource,
                        operation=operation,
                        detail=detail,
                        evidence=True,
                    )
                )
        judged = group[group["inside"].notna()]
        for ip, hits in judged.groupby("client_ip", sort=True):
            is_in = bool(hits["inside"].iloc[0])
            out.append(
                _row(
                    account,
                    aap,
                    "inside-network" if is_in else "outside-network",
                    hits,
                    client_ip=ip,
                    evidence=not is_in,
                    detail=(
                        "inside the network rules of the policy in force"
                        if is_in
                        else "outside every network rule of the policies in force"
                    ),
                )
            )
        late = group[group["after_deletion"].astype(bool)]
        for key, hits in late.groupby("client_key", sort=True):
            out.append(
                _row(
                    account,
                    aap,
                    "used-after-deletion",
                    hits,
                    client_key=key,
                    detail=f"client key deleted at {hits['deleted_at'].iloc[0]}",
                    evidence=True,
                )
            )
    out += _unused(config, ok) + _widened(config)
    frame = pd.DataFrame(out, columns=COLUMNS)
    frame["count"] = frame["count"].astype("int64")
    order = {c: i for i, c in enumerate(CHECKS)}
    frame["_o"] = frame["check"].map(order)
    frame = frame.sort_values(["account_id", "aap", "_o", "first_seen"], kind="stable")
    return frame.drop(columns="_o").reset_index(drop=True)


def _unused(config: pd.DataFrame, ok: pd.DataFrame) -> list[dict[str, Any]]:
    """Grants (policy resources) no successful call used while they were in force."""
    out: list[dict[str, Any]] = []
    for row in config[config["item"] == "resource"].itertuples(index=False):
        calls = ok[(ok["aap_account"] == row.account_id) & (ok["aap"] == row.aap)]
        ends = row.until
        open_ended = not isinstance(ends, pd.Timestamp) or pd.isna(ends)
        until = pd.Timestamp.max.tz_localize("UTC") if open_ended else ends
        calls = calls[(calls["time"] >= row.since) & (calls["time"] < until)]
        if calls["grants"].astype(str).str.contains(f"{row.policy}:{row.value}", regex=False).any():
            continue
        end = "now" if open_ended else str(ends)
        out.append(
            {
                "account_id": row.account_id,
                "aap": row.aap,
                "check": "allowed-unused",
                "policy": row.policy,
                "resource": row.value,
                "operation": "",
                "client_ip": "",
                "client_key": "",
                "count": 0,
                "first_seen": pd.NaT,
                "last_seen": pd.NaT,
                "detail": f"in force {row.since} to {end}, never used: least privilege suggests "
                "removing it",
                "evidence": [],
            }
        )
    return out


#: What an element of each kind gives the review: (column, how the element widens).
_WIDENS = {
    "resource": ("resource", "policy resource"),
    "permission": ("operation", "permission"),
    "policy": ("policy", "policy bound"),
    "network": ("client_ip", "network"),
    "client-key": ("client_key", "client key"),
}


def _widened(config: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the elements an ActionTrail event added to an AAP (not there from the start)."""
    out: list[dict[str, Any]] = []
    added = config[config["source"].str.contains("actiontrail") & config["item"].isin(_WIDENS)]
    for row in added.itertuples(index=False):
        column, what = _WIDENS[str(row.item)]
        until = row.until
        end = f"until {until!s}" if isinstance(until, pd.Timestamp) else "still in force"
        entry: dict[str, Any] = {
            "account_id": row.account_id,
            "aap": row.aap,
            "check": "widened",
            "policy": row.policy,
            "resource": "",
            "operation": "",
            "client_ip": "",
            "client_key": "",
            "count": 0,
            "first_seen": row.since,
            "last_seen": row.until,
            "detail": f"{what} {row.value} added at {row.since} ({end})",
            "evidence": [e for e in str(row.evidence).split(", ") if e],
        }
        entry[column] = row.value
        out.append(entry)
    return out


def _row(
    account: Any, aap: Any, check: str, hits: pd.DataFrame, *, evidence: bool = False, **values: Any
) -> dict[str, Any]:
    row = {
        "account_id": account,
        "aap": aap,
        "check": check,
        "policy": "",
        "resource": "",
        "operation": "",
        "client_ip": "",
        "client_key": "",
        "detail": "",
    }
    row.update({k: v for k, v in values.items() if k in row})
    row.update(
        count=len(hits),
        first_seen=hits["time"].min(),
        last_seen=hits["time"].max(),
        evidence=hits["request_id"].dropna().astype(str).tolist() if evidence else [],
    )
    return row


def _names(values: pd.Series, most: int = 5) -> str:
    distinct = [str(v) for v in dict.fromkeys(values.dropna())]
    more = f" and {len(distinct) - most} more" if len(distinct) > most else ""
    return ", ".join(distinct[:most]) + more
