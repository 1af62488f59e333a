"""One call, one identity, across the two logs.

A KMS call made through the shared gateway is logged twice: once in the KMS instance
access log and once in ActionTrail, with the same request id. Both rows stay in the
activity frame (each with its own provenance); :func:`link_calls` gives them one
``call_id``, so that counts can count the call once (:mod:`kmsforensics.calls`).

Two rows are one call only when **all** of these hold, so that a request id reused by
an attacker or by unrelated calls never merges distinct calls:

* one row is from each log, with the same (non-empty) ``request_id``;
* their times are at most :data:`~kmsforensics.schema.CALL_PAIR_SECONDS` apart;
* their operations agree: the same name (case-insensitively), or the ActionTrail
  name and the Instance API name the gateway logs for it
  (:data:`~kmsforensics.schema.GATEWAY_API_NAMES`, e.g. GetSecretValue / Decrypt);
* their resources agree: one side names none, or a key id, secret name or resource
  id of one equals one of the other;
* their access keys agree where both name one.

Each row joins at most one other: when a request id offers several candidates, the
closest in time pairs first. Every other row is a call of its own.

:func:`fill_identities` then names the identity of rows that carry only an id (KMS
rows of RAM roles and users), from the most trusted source that knows it
(:data:`~kmsforensics.schema.NAME_SOURCES`), and says which in
``principal_name_source``.

Examples
--------
>>> import pandas as pd
>>> rows = pa.table({
...     "time": pd.to_datetime(["2026-03-02T10:00:00Z", "2026-03-02T10:00:01Z",
...                             "2026-03-02T15:00:00Z"]),
...     "source": ["kms", "actiontrail", "actiontrail"],
...     "request_id": ["r-1", "r-1", "r-1"],
...     "action": ["Decrypt", "GetSecretValue", "GetSecretValue"],
...     "resource_id": ["db-pass", "db-pass", "db-pass"],
...     "key_id": [None, None, None], "secret_name": ["db-pass", "db-pass", "db-pass"],
...     "access_key_id": ["STS.a", "STS.a", "STS.a"],
...     "source_file": ["kms.log", "at.json", "at.json"], "source_record": [1, 1, 2],
...     "event_id": [None, "e-1", "e-2"],
... })
>>> calls = link_calls(rows).to_pylist()
>>> calls[0] == calls[1], calls[1] == calls[2]
(True, False)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import CALL_PAIR_SECONDS, GATEWAY_API_NAMES
from .values import blank_to_null, text

#: The columns :func:`link_calls` reads.
PAIR_COLUMNS = (
    "time",
    "source",
    "request_id",
    "action",
    "resource_id",
    "key_id",
    "secret_name",
    "access_key_id",
)
_RESOURCES = ("resource_id", "key_id", "secret_name")
_MASK63 = np.uint64(0x7FFF_FFFF_FFFF_FFFF)
_MIX = np.uint64(0x100000001B3)
_GATEWAY = {k.lower(): v.lower() for k, v in GATEWAY_API_NAMES.items()}


def row_ids(table: pa.Table, source: str | None = None) -> np.ndarray:
    """Return a 63-bit id of each row from its provenance (source, file, record, item, time).

    Deterministic (the same evidence gives the same ids on every machine) and unique
    whichever batch or store partition the row was loaded in, so ids stay distinct
    when cases are read together. Text columns are hashed once per distinct value.

    Examples
    --------
    >>> t = pa.table({"source_file": ["a", "a"], "source_record": [1, 2],
    ...               "time": pa.array([0, 0], pa.timestamp("ns", tz="UTC"))})
    >>> ids = row_ids(t, "kms")
    >>> bool(ids[0] != ids[1]), bool((ids >= 0).all()), bool((row_ids(t, "kms") == ids).all())
    (True, True, True)
    """
    n = table.num_rows
    if source is not None or "source" not in table.column_names:
        h = np.full(n, _hash_text(source or ""), dtype=np.uint64)
    else:
        h = _hash_column(table.column("source"))
    for name in ("source_file", "source_record", "source_item", "time"):
        if name in table.column_names:
            h = (h * _MIX) ^ _hash_column(table.column(name))
    return np.asarray(pd.util.hash_array(h) & _MASK63, dtype=np.int64)


def _hash_text(value: str) -> np.uint64:
    return np.uint64(pd.util.hash_array(np.array([value], dtype=object))[0])


def _hash_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """uint64 hashes of a column's values (nulls hash alike); text hashed per value."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = values.dictionary_encode()
    if pa.types.is_dictionary(values.type):
        words = pd.util.hash_array(np.asarray(values.dictionary.to_pylist(), dtype=object))
        words = np.append(words, np.uint64(0))
        codes = pc.fill_null(values.indices, len(values.dictionary)).to_numpy()
        return np.asarray(words[codes], dtype=np.uint64)
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    if pa.types.is_integer(values.type):
        return pd.util.hash_array(pc.fill_null(values.cast(pa.int64()), -1).to_numpy())
    return np.zeros(len(values), dtype=np.uint64)


def fuse(table: pa.Table, seconds: float = CALL_PAIR_SECONDS) -> pa.Table:
    """Link the two rows of each call and fill identities: the activity table, fused.

    Sets ``call_id`` (the row's own id, from :func:`row_ids`, unless the part gave one;
    the KMS row's for both rows of a pair) and, where :func:`fill_identities` finds
    them, ``principal_name``, ``session_name``, ``player_account_id`` and
    ``principal_name_source``. Rows keep their order; nothing else changes.
    """
    if not table.num_rows:
        return table
    kms_rows, at_rows = pair_rows(table, seconds)
    table = _replace(table, "call_id", link_calls(table, seconds, (kms_rows, at_rows)))
    for name, values in fill_identities(table, kms_rows, at_rows).items():
        table = _replace(table, name, values)
    return table


def link_calls(
    table: pa.Table,
    seconds: float = CALL_PAIR_SECONDS,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> pa.Array:
    """Return the ``call_id`` of every row: its own id, or the KMS row's for a pair.

    A row's own id is its ``call_id`` if it has one (set when its part was built),
    else :func:`row_ids`. See the module docstring for when two rows are one call.
    """
    given = table.column("call_id").combine_chunks() if "call_id" in table.column_names else None
    if given is not None and given.null_count == 0:
        ids = given.cast(pa.int64()).to_numpy().copy()
    else:
        ids = row_ids(table)
        if given is not None and given.null_count < len(given):
            ids = np.where(
                given.is_valid().to_numpy(zero_copy_only=False),
                pc.fill_null(given, 0).to_numpy(),
                ids,
            )
    kms_rows, at_rows = pair_rows(table, seconds) if pairs is None else pairs
    ids[at_rows] = ids[kms_rows]
    return pa.array(ids, pa.int64())


def _replace(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    """Set a column (appended if new), dictionary-encoded if the old one was."""
    if name not in table.column_names:
        return table.append_column(name, values)
    index = table.column_names.index(name)
    old = table.column(index).type
    if pa.types.is_dictionary(old) and not pa.types.is_dictionary(values.type):
        values = values.dictionary_encode()
    elif not pa.types.is_dictionary(old) and values.type != old and not pa.types.is_null(old):
        values = values.cast(old)
    return table.set_column(index, name, values)


def pair_rows(table: pa.Table, seconds: float = CALL_PAIR_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers ``(kms, actiontrail)`` of the pairs that are one call."""
    none = (np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    if not table.num_rows or any(c not in table.column_names for c in PAIR_COLUMNS):
        return none
    source = text(table.column("source").combine_chunks())
    request = blank_to_null(text(table.column("request_id").combine_chunks()))
    is_kms = pc.fill_null(pc.equal(source, "kms"), False)
    is_at = pc.fill_null(pc.equal(source, "actiontrail"), False)
    kms_ids = pc.drop_null(pc.filter(request, is_kms))
    at_ids = pc.drop_null(pc.filter(request, is_at))
    if not len(kms_ids) or not len(at_ids):
        return none
    candidate = pc.or_(
        pc.and_(is_kms, pc.fill_null(pc.is_in(request, value_set=at_ids), False)),
        pc.and_(is_at, pc.fill_null(pc.is_in(request, value_set=kms_ids), False)),
    )
    rows = pc.indices_nonzero(candidate)
    if not len(rows):
        return none
    sub = table.select(list(PAIR_COLUMNS)).take(rows)
    frame = pd.DataFrame(
        {name: _plain(sub.column(name)) for name in PAIR_COLUMNS if name != "time"}
    )
    frame["time"] = _nanoseconds(sub.column("time"))
    frame["row"] = rows.to_numpy()
    kms = frame[frame["source"] == "kms"]
    at = frame[frame["source"] == "actiontrail"]
    pairs = kms.merge(at, on="request_id", suffixes=("_k", "_a"))
    pairs = pairs[_compatible(pairs, seconds)]
    return _one_to_one(pairs)


def _nanoseconds(column: pa.ChunkedArray) -> np.ndarray:
    """Return times as integer nanoseconds (nulls as the smallest integer)."""
    values = column.combine_chunks().cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    return pc.fill_null(values, np.iinfo(np.int64).min).to_numpy()


def _plain(column: pa.ChunkedArray) -> np.ndarray:
    values = text(column.combine_chunks())
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = blank_to_null(values)
    return np.asarray(values.to_pandas(), dtype=object)


def _compatible(pairs: pd.DataFrame, seconds: float) -> np.ndarray:
    """Which candidate pairs may be one call: time, operation, resource, access key."""
    gap = np.abs(pairs["time_k"].to_numpy() - pairs["time_a"].to_numpy())
    close = gap <= int(seconds * 1e9)
    kms_op = pairs["action_k"].astype(str).str.lower()
    at_op = pairs["action_a"].astype(str).str.lower()
    gateway = at_op.map(_GATEWAY)
    same_op = (pairs["action_k"].notna() & pairs["action_a"].notna()).to_numpy() & (
        (kms_op == at_op) | (kms_op == gateway)
    ).to_numpy()
    named_k = pairs[[f"{c}_k" for c in _RESOURCES]].notna().any(axis=1).to_numpy()
    named_a = pairs[[f"{c}_a" for c in _RESOURCES]].notna().any(axis=1).to_numpy()
    shared = np.zeros(len(pairs), dtype=bool)
    for left in _RESOURCES:
        for right in _RESOURCES:
            a, b = pairs[f"{left}_k"], pairs[f"{right}_a"]
            shared |= (a.notna() & b.notna() & (a == b)).to_numpy()
    same_resource = ~named_k | ~named_a | shared
    key_k, key_a = pairs["access_key_id_k"], pairs["access_key_id_a"]
    same_key = (key_k.isna() | key_a.isna() | (key_k == key_a)).to_numpy()
    return np.asarray(close & same_op & same_resource & same_key, dtype=bool)


def _one_to_one(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Keep pairs so that each row joins at most one other, closest in time first."""
    pairs = pairs.assign(gap=np.abs(pairs["time_k"] - pairs["time_a"]))
    pairs = pairs.sort_values(["gap", "row_k", "row_a"], kind="stable")[["row_k", "row_a"]]
    kept = []
    while len(pairs):
        best = pairs.drop_duplicates("row_k").drop_duplicates("row_a")
        kept.append(best)
        pairs = pairs[~pairs["row_k"].isin(best["row_k"]) & ~pairs["row_a"].isin(best["row_a"])]
    if not kept:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    chosen = pd.concat(kept)
    return chosen["row_k"].to_numpy(np.int64), chosen["row_a"].to_numpy(np.int64)


# -- identities -------------------------------------------------------------------------

#: Identity types whose rows may be named from the other log (by id or access key).
NAMED_TYPES = ("ram-role", "ram-user")
_FILLED = ("principal_name", "session_name", "player_account_id")
_SEPARATOR = "\x1f"


def fill_identities(
    table: pa.Table,
    kms_rows: np.ndarray | None = None,
    at_rows: np.ndarray | None = None,
) -> dict[str, pa.Array]:
    """Name the identities of rows that carry only an id, and say where each name came from.

    For a RAM role or user row without ``principal_name``, the first of these that
    knows it gives the name (and, where it knows them, the session and the account
    that assumed the role, ``player_account_id``); ``principal_name_source`` says which:

    ``actiontrail``
        the ActionTrail event of the same call (``kms_rows[i]`` paired with
        ``at_rows[i]``);
    ``assume-role``
        the AssumeRole event that issued the row's STS key (its role id, when both
        give one, must be the row's);
    ``actiontrail-access-key``
        another ActionTrail event made with the same access key and principal id;
    ``actiontrail-principal``
        another ActionTrail event, or an AssumeRole response, of the same principal
        id: the name only (sessions differ).

    Rows that already have a name get ``record``. The latest ActionTrail event wins
    where events disagree. Returns the new columns (none when no row needs a name).
    """
    n = table.num_rows

    def col(name: str) -> pa.Array:
        if name not in table.column_names:
            return pa.nulls(n, pa.string())
        return blank_to_null(text(table.column(name).combine_chunks()).cast(pa.string()))

    named = pc.is_valid(col("principal_name"))
    kind = col("identity_type")
    need = pc.and_(
        pc.invert(named), pc.fill_null(pc.is_in(kind, value_set=pa.array(NAMED_TYPES)), False)
    )
    labels = pc.if_else(named, "record", pa.scalar(None, pa.string()))
    if not pc.any(need).as_py():
        return {"principal_name_source": labels}
    remaining = need.to_numpy(zero_copy_only=False).copy()
    is_at = pc.fill_null(pc.equal(col("source"), "actiontrail"), False)
    order = pc.sort_indices(table.column("time")).to_numpy()  # the latest event wins
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    principal, access_key = col("principal_id"), col("access_key_id")
    same = {name: name for name in _FILLED}
    partner = np.full(n, -1, dtype=np.int64)
    if kms_rows is not None and at_rows is not None:
        partner[kms_rows] = at_rows
    issued = pc.and_(is_at, pc.is_valid(col("issued_role_name")))
    by_issued_key = _lookup(access_key, col("issued_access_key_id"), issued, rank, order)
    issued_role = pc.take(col("issued_role_id"), _indices(by_issued_key))
    wrong_role = pc.fill_null(pc.not_equal(issued_role, principal), False)
    by_issued_key[wrong_role.to_numpy(zero_copy_only=False)] = -1
    named_at = pc.and_(is_at, named)
    role_rows = pc.fill_null(pc.equal(kind, "ram-role"), False)
    suppliers = [
        ("actiontrail", partner, same),
        (
            "assume-role",
            by_issued_key,
            {
                "principal_name": "issued_role_name",
                "session_name": "issued_session_name",
                "player_account_id": "account_id",
            },
        ),
        (
            "actiontrail-access-key",
            _lookup(_joined(access_key, principal), None, named_at, rank, order),
            same,
        ),
        (
            "actiontrail-principal",
            _lookup(_joined(kind, principal), None, named_at, rank, order),
            {"principal_name": "principal_name"},
        ),
        (
            "actiontrail-principal",
            _lookup(
                pc.if_else(role_rows, principal, pa.scalar(None, pa.string())),
                col("issued_role_id"),
                issued,
                rank,
                order,
            ),
            {"principal_name": "issued_role_name"},
        ),
    ]
    filled = {name: col(name) for name in _FILLED}
    sources = {
        name: col(name) for name in {*_FILLED, *[m for *_, d in suppliers for m in d.values()]}
    }
    for label, supplier, mapping in suppliers:
        if not remaining.any():
            break
        candidate = np.where(remaining, supplier, -1)
        got = pc.take(sources[mapping["principal_name"]], _indices(candidate))
        ok = remaining & pc.is_valid(got).to_numpy(zero_copy_only=False)
        if not ok.any():
            continue
        chosen = _indices(np.where(ok, candidate, -1))
        for target, origin in mapping.items():
            filled[target] = pc.coalesce(filled[target], pc.take(sources[origin], chosen))
        labels = pc.if_else(pa.array(ok), label, labels)
        remaining &= ~ok
    return {**filled, "principal_name_source": labels}


def _indices(rows: np.ndarray) -> pa.Array:
    """Row numbers for ``take``, with -1 as null."""
    return pa.array(rows, pa.int64(), mask=rows < 0)


def _joined(first: pa.Array, second: pa.Array) -> pa.Array:
    """One text key of two columns (null where either is)."""
    return pc.binary_join_element_wise(first, second, _SEPARATOR)


def _lookup(
    wanted: pa.Array,
    keys: pa.Array | None,
    eligible: pa.Array,
    rank: np.ndarray,
    order: np.ndarray,
) -> np.ndarray:
    """For each row, the latest ``eligible`` row whose key equals the row's ``wanted``.

    ``keys`` are the eligible rows' keys (``wanted`` itself when None); -1 where none.
    """
    keys = wanted if keys is None else keys
    rows = pc.indices_nonzero(pc.and_(eligible, pc.is_valid(keys)))
    found = np.full(len(wanted), -1, dtype=np.int64)
    if not len(rows):
        return found
    latest = (
        pa.table({"key": pc.take(keys, rows), "rank": pa.array(rank[rows.to_numpy()])})
        .group_by("key", use_threads=False)
        .aggregate([("rank", "max")])
    )
    position = pc.index_in(wanted, value_set=latest.column("key"))
    supplier = pc.take(latest.column("rank_max"), position)
    valid = pc.is_valid(supplier).to_numpy(zero_copy_only=False)
    found[valid] = order[pc.drop_null(supplier).to_numpy()]
    return found
