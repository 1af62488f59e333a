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
closest in time pairs first; a request id on more than :data:`MAX_ROWS_PER_REQUEST`
rows of one log pairs nothing. Every other row is a call of its own.

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

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import CALL_PAIR_SECONDS, GATEWAY_API_NAMES, NAME_SOURCES
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
#: A request id on more rows of one log than this pairs nothing (no id is that common).
MAX_ROWS_PER_REQUEST = 8
#: The columns :func:`fuse` sets.
FUSED_COLUMNS = (
    "call_id",
    "principal_name",
    "session_name",
    "player_account_id",
    "principal_name_source",
)
#: Every column :func:`fuse` reads (a store re-fuses its activity from these alone).
FUSE_READS = (
    *PAIR_COLUMNS,
    "service",
    "source_file",
    "source_record",
    "event_id",
    "identity_type",
    "principal_id",
    "account_id",
    "issued_access_key_id",
    "issued_role_id",
    "issued_role_name",
    "issued_session_name",
    *FUSED_COLUMNS,
)
_MASK63 = np.uint64(0x7FFF_FFFF_FFFF_FFFF)
_MIX = np.uint64(0x100000001B3)
_GATEWAY = {k.lower(): v.lower() for k, v in GATEWAY_API_NAMES.items()}


def row_ids(table: pa.Table) -> np.ndarray:
    """Return a 63-bit id of each activity row from its provenance and its own id.

    Hashed from ``source``, ``source_file``, ``source_record`` and ``time``, and, for
    rows that these do not tell apart (the events of one LookupEvents page), the row's
    evidence id (``event_id``, else ``request_id``): deterministic (the same evidence
    gives the same ids on every machine, in any order, whichever batch or store
    partition the row was loaded in), so ids stay distinct when cases are read
    together. Low-cardinality text is hashed once per distinct value.

    Examples
    --------
    >>> t = pa.table({"source": ["kms", "kms"], "source_file": ["a", "a"],
    ...               "source_record": [1, 2], "request_id": ["r", "r"],
    ...               "time": pa.array([0, 0], pa.timestamp("ns", tz="UTC"))})
    >>> ids = row_ids(t)
    >>> bool(ids[0] != ids[1]), bool((ids >= 0).all()), bool((row_ids(t) == ids).all())
    (True, True, True)
    """
    n = table.num_rows
    h = np.zeros(n, dtype=np.uint64)
    for name in ("source", "source_file", "source_record", "time"):
        if name in table.column_names:
            h = (h * _MIX) ^ _hash_column(table.column(name))
    same = pd.Series(h).duplicated(keep=False).to_numpy()  # several rows of one record
    if same.any():
        rows = pa.array(np.flatnonzero(same))
        evidence = [
            blank_to_null(text(table.column(c).take(rows).combine_chunks()).cast(pa.string()))
            for c in ("event_id", "request_id")
            if c in table.column_names
        ]
        if evidence:
            ids = pc.coalesce(*evidence) if len(evidence) > 1 else evidence[0]
            words = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
            h[same] = (h[same] * _MIX) ^ pd.util.hash_array(words)
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

    Sets ``call_id`` (the row's own id, from :func:`row_ids`; the KMS row's for both
    rows of a pair) and, where :func:`fill_identities` finds
    them, ``principal_name``, ``session_name``, ``player_account_id`` and
    ``principal_name_source``. Rows keep their order; nothing else changes.
    """
    if not table.num_rows:
        return table
    table = _unfused(table)
    own = row_ids(table)
    kms_rows, at_rows = pair_rows(table, seconds, own)
    ids = own.copy()
    ids[at_rows] = ids[kms_rows]
    table = _replace(table, "call_id", pa.array(ids, pa.int64()))
    for name, values in fill_identities(table, kms_rows, at_rows, own).items():
        table = _replace(table, name, values)
    return table


def _unfused(table: pa.Table) -> pa.Table:
    """Undo the names a previous fusion filled in (a store fuses its batches again).

    A name whose ``principal_name_source`` is not ``record`` was filled, and so were
    the session and origin account of KMS rows (the KMS log has neither).
    """
    if "principal_name_source" not in table.column_names:
        return table
    label = text(table.column("principal_name_source").combine_chunks()).cast(pa.string())
    filled = pc.fill_null(pc.not_equal(label, "record"), False)
    if not pc.any(filled).as_py():
        return table
    kms = pc.fill_null(pc.equal(text(table.column("source").combine_chunks()), "kms"), False)
    null = pa.scalar(None, pa.string())
    for name, rows in (
        ("principal_name", filled),
        ("session_name", pc.and_(filled, kms)),
        ("player_account_id", pc.and_(filled, kms)),
    ):
        if name in table.column_names:
            values = text(table.column(name).combine_chunks()).cast(pa.string())
            table = _replace(table, name, pc.if_else(rows, null, values))
    return _replace(table, "principal_name_source", pc.if_else(filled, null, label))


def link_calls(
    table: pa.Table,
    seconds: float = CALL_PAIR_SECONDS,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> pa.Array:
    """Return the ``call_id`` of every row: its own id, or the KMS row's for a pair.

    Own ids are :func:`row_ids`. See the module docstring for when two rows are one call.
    """
    ids = row_ids(table)
    kms_rows, at_rows = pair_rows(table, seconds, ids) if pairs is None else pairs
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


def pair_rows(
    table: pa.Table, seconds: float = CALL_PAIR_SECONDS, own: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers ``(kms, actiontrail)`` of the pairs that are one call.

    Only ActionTrail rows of the KMS service can pair. Request ids are dictionary-encoded
    once; candidates, the join and the comparisons then work on integer codes, so the
    work grows with the rows, not with their strings. A request id on more than
    :data:`MAX_ROWS_PER_REQUEST` rows of one log pairs nothing. Ties in time are broken
    by the rows' own ids (``own``, :func:`row_ids`).
    """
    none = (np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    if not table.num_rows or any(c not in table.column_names for c in PAIR_COLUMNS):
        return none
    source, sources = _codes(table.column("source"))
    is_kms = np.isin(source, _positions(sources, "kms"))
    is_at = np.isin(source, _positions(sources, "actiontrail"))
    if "service" in table.column_names:
        service, services = _codes(table.column("service"))
        is_at &= np.isin(service, _positions(services, "kms"))
    if not is_kms.any() or not is_at.any():
        return none
    request, requests = _codes(table.column("request_id"))
    size = len(requests) + 1  # the last slot counts the rows without a request id
    request = np.where(request < 0, size - 1, request)
    on_kms = np.bincount(request[is_kms], minlength=size)
    on_at = np.bincount(request[is_at], minlength=size)
    usable = (on_kms > 0) & (on_at > 0)
    usable &= (on_kms <= MAX_ROWS_PER_REQUEST) & (on_at <= MAX_ROWS_PER_REQUEST)
    usable[-1] = False
    candidate = (is_kms | is_at) & usable[request]
    if not candidate.any():
        return none
    rows = np.flatnonzero(candidate)
    own = row_ids(table) if own is None else own
    sub = table.select(list(PAIR_COLUMNS)).take(pa.array(rows))
    operations = _operation_groups(sub.column("action"))
    resources = _shared_codes([sub.column(c) for c in _RESOURCES])
    frame = pd.DataFrame(
        {
            "request": request[rows],
            "row": rows,
            "own": own[rows],
            "time": _nanoseconds(sub.column("time")),
            "op": operations[0],
            "gateway": operations[1],
            "key": _codes(sub.column("access_key_id"))[0],
            **{f"r{i}": codes for i, codes in enumerate(resources)},
        }
    )
    kms = is_kms[rows]
    joined = frame[kms].merge(frame[~kms], on="request", suffixes=("_k", "_a"))
    if not len(joined):
        return none
    pairs = {name: joined[name].to_numpy() for name in joined.columns if name != "request"}
    return _one_to_one(pairs, _compatible(pairs, seconds))


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Return the dictionary codes of a text column (-1: null or empty) and the dictionary."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_null(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_dictionary(values.type):
        values = values.dictionary_encode()
    dictionary = text(values.dictionary).cast(pa.string())
    codes = pc.fill_null(values.indices.cast(pa.int64()), -1).to_numpy().copy()
    blank = np.flatnonzero(
        pc.fill_null(pc.equal(dictionary, ""), False).to_numpy(zero_copy_only=False)
    )
    if len(blank):
        codes[np.isin(codes, blank)] = -1
    return codes, dictionary


def _shared_codes(columns: list[pa.ChunkedArray]) -> list[np.ndarray]:
    """Codes of several text columns in one vocabulary (equal values, equal codes)."""
    coded = [_codes(c) for c in columns]
    vocabulary = np.concatenate(
        [np.asarray(d.to_pylist(), dtype=object) for _, d in coded] + [np.array([], dtype=object)]
    )
    shared, _ = pd.factorize(vocabulary)
    out, offset = [], 0
    for codes, dictionary in coded:
        mapping = np.append(shared[offset : offset + len(dictionary)], -1)
        out.append(mapping[codes])  # -1 indexes the appended -1
        offset += len(dictionary)
    return out


def _operation_groups(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, a code of its operation (case-insensitive) and of its gateway name."""
    codes, dictionary = _codes(column)
    names = [str(v).lower() for v in dictionary.to_pylist()]
    groups, uniques = pd.factorize(np.asarray([*names, ""], dtype=object))
    position = {name: code for code, name in enumerate(uniques)}
    gateway = np.array([position.get(_GATEWAY.get(n, "\0"), -2) for n in names] + [-2])
    groups = np.append(groups[: len(names)], -1)
    return groups[codes], gateway[codes]


def _compatible(pairs: dict[str, np.ndarray], seconds: float) -> np.ndarray:
    """Which candidate pairs may be one call: time, operation, resource, access key."""
    close = np.abs(pairs["time_k"] - pairs["time_a"]) <= int(seconds * 1e9)
    op_k, op_a = pairs["op_k"], pairs["op_a"]
    same_op = (op_k >= 0) & (op_a >= 0) & ((op_k == op_a) | (op_k == pairs["gateway_a"]))
    names = [f"r{i}" for i in range(len(_RESOURCES))]
    named_k = np.zeros(len(op_k), dtype=bool)
    named_a = np.zeros(len(op_k), dtype=bool)
    shared = np.zeros(len(op_k), dtype=bool)
    for left in names:
        named_k |= pairs[f"{left}_k"] >= 0
        named_a |= pairs[f"{left}_a"] >= 0
        for right in names:
            a, b = pairs[f"{left}_k"], pairs[f"{right}_a"]
            shared |= (a >= 0) & (a == b)
    same_resource = ~named_k | ~named_a | shared
    key_k, key_a = pairs["key_k"], pairs["key_a"]
    same_key = (key_k < 0) | (key_a < 0) | (key_k == key_a)
    return np.asarray(close & same_op & same_resource & same_key, dtype=bool)


def _one_to_one(pairs: dict[str, np.ndarray], ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep pairs so that each row joins at most one other, closest in time first."""
    frame = pd.DataFrame(
        {
            "gap": np.abs(pairs["time_k"] - pairs["time_a"])[ok],
            "own_k": pairs["own_k"][ok],
            "own_a": pairs["own_a"][ok],
            "row_k": pairs["row_k"][ok],
            "row_a": pairs["row_a"][ok],
        }
    ).sort_values(["gap", "own_k", "own_a"], kind="stable")
    kept = []
    while len(frame):
        best = frame.drop_duplicates("row_k").drop_duplicates("row_a")
        kept.append(best)
        frame = frame[~frame["row_k"].isin(best["row_k"]) & ~frame["row_a"].isin(best["row_a"])]
    if not kept:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    chosen = pd.concat(kept)
    return chosen["row_k"].to_numpy(np.int64), chosen["row_a"].to_numpy(np.int64)


def _nanoseconds(column: pa.ChunkedArray) -> np.ndarray:
    """Return times as integer nanoseconds (nulls as the smallest integer)."""
    values = column.combine_chunks().cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    return pc.fill_null(values, np.iinfo(np.int64).min).to_numpy()


# -- identities -------------------------------------------------------------------------

#: Identity types whose rows may be named from the other log (by id or access key).
NAMED_TYPES = ("ram-role", "ram-user")
_FILLED = ("principal_name", "session_name", "player_account_id")


def fill_identities(
    table: pa.Table,
    kms_rows: np.ndarray | None = None,
    at_rows: np.ndarray | None = None,
    own: np.ndarray | None = None,
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
    where events disagree. Returns the new columns (only the source when no row needs
    a name). Identities are matched as dictionary codes, not strings.
    """
    n = table.num_rows
    cache: dict[str, tuple[np.ndarray, pa.Array]] = {}

    def codes(name: str) -> tuple[np.ndarray, pa.Array]:
        if name not in cache:
            cache[name] = (
                _codes(table.column(name))
                if name in table.column_names
                else (np.full(n, -1, dtype=np.int64), pa.array([], pa.string()))
            )
        return cache[name]

    named = codes("principal_name")[0] >= 0
    kind, kinds = codes("identity_type")
    wanted_kinds = np.flatnonzero(np.isin(np.asarray(kinds.to_pylist(), dtype=object), NAMED_TYPES))
    need = ~named & np.isin(kind, wanted_kinds)
    labels = np.where(named, 0, -1).astype(np.int8)
    if not need.any():
        return {"principal_name_source": _labels(labels)}
    source, sources = codes("source")
    is_at = np.isin(source, _positions(sources, "actiontrail"))
    own = row_ids(table) if own is None else own
    order = np.lexsort((own, _nanoseconds(table.column("time"))))  # the latest event wins
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    principal, principals = codes("principal_id")
    key, keys = codes("access_key_id")
    width = len(principals) + 1
    named_at = is_at & named

    def issued() -> np.ndarray:
        return is_at & (codes("issued_role_name")[0] >= 0)

    def partner() -> np.ndarray:
        rows = np.full(n, -1, dtype=np.int64)
        if kms_rows is not None and at_rows is not None:
            rows[kms_rows] = at_rows
        return rows

    def by_issued_key() -> np.ndarray:
        issued_key = _recoded(table, "issued_access_key_id", keys)
        found = _lookup(key, issued_key, issued(), rank, order)
        roles = _recoded(table, "issued_role_id", principals)
        role_of = np.where(found >= 0, roles[np.maximum(found, 0)], -1)
        found[(role_of >= 0) & (principal >= 0) & (role_of != principal)] = -1
        return found

    def by_key() -> np.ndarray:
        return _lookup(_pair_code(key, principal, width), None, named_at, rank, order)

    def by_principal() -> np.ndarray:
        return _lookup(_pair_code(kind, principal, width), None, named_at, rank, order)

    def by_issued_role() -> np.ndarray:
        roles = np.where(np.isin(kind, _positions(kinds, "ram-role")), principal, -1)
        issued_role = _recoded(table, "issued_role_id", principals)
        return _lookup(roles, issued_role, issued(), rank, order)

    same = {name: name for name in _FILLED}
    assumed = {
        "principal_name": "issued_role_name",
        "session_name": "issued_session_name",
        "player_account_id": "account_id",
    }
    suppliers: list[tuple[int, Any, dict[str, str]]] = [
        (1, partner, same),
        (2, by_issued_key, assumed),
        (3, by_key, same),
        (4, by_principal, {"principal_name": "principal_name"}),
        (4, by_issued_role, {"principal_name": "issued_role_name"}),
    ]
    chosen: list[tuple[np.ndarray, np.ndarray, dict[str, str]]] = []
    for label, find, mapping in suppliers:
        candidate = np.where(need, find(), -1)
        has_name = codes(mapping["principal_name"])[0] >= 0
        ok = (candidate >= 0) & has_name[np.maximum(candidate, 0)]
        if not ok.any():
            continue
        rows = np.flatnonzero(ok)
        chosen.append((rows, candidate[rows], mapping))
        labels[rows] = label
        need &= ~ok
        if not need.any():
            break
    valid = {name: codes(name)[0] >= 0 for name in _FILLED}
    out = {name: _filled(table, name, chosen, valid[name]) for name in _FILLED}
    out["principal_name_source"] = _labels(labels)
    return out


def _positions(dictionary: pa.Array, value: str) -> np.ndarray:
    return np.flatnonzero(np.asarray(dictionary.to_pylist(), dtype=object) == value)


def _recoded(table: pa.Table, name: str, vocabulary: pa.Array) -> np.ndarray:
    """Codes of column ``name`` in another column's dictionary (-1: not in it, or null)."""
    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64)
    codes, dictionary = _codes(table.column(name))
    mapping = pc.index_in(dictionary, value_set=vocabulary)
    mapping = np.append(pc.fill_null(mapping, -1).to_numpy(), -1)
    return np.asarray(mapping[codes], dtype=np.int64)


def _pair_code(first: np.ndarray, second: np.ndarray, width: int) -> np.ndarray:
    """One code for two codes (-1 where either is missing)."""
    return np.where((first >= 0) & (second >= 0), first * width + second, -1)


def _labels(codes: np.ndarray) -> pa.Array:
    """``principal_name_source`` from label codes (0: record, 1..: NAME_SOURCES[1:])."""
    indices = pa.array(codes, pa.int8(), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(NAME_SOURCES)))


def _filled(
    table: pa.Table,
    name: str,
    chosen: list[tuple[np.ndarray, np.ndarray, dict[str, str]]],
    present: np.ndarray,
) -> pa.Array:
    """Column ``name`` with its empty cells filled from the chosen supplier rows."""
    original = blank_to_null(text(table.column(name).combine_chunks()).cast(pa.string()))
    pieces, index, offset = [original], np.arange(table.num_rows), table.num_rows
    for rows, suppliers, mapping in chosen:
        if name not in mapping or mapping[name] not in table.column_names:
            continue
        empty = ~present[rows]
        rows, suppliers = rows[empty], suppliers[empty]
        values = pc.take(table.column(mapping[name]), pa.array(suppliers))
        values = blank_to_null(text(values.combine_chunks()).cast(pa.string()))
        known = pc.is_valid(values).to_numpy(zero_copy_only=False)
        index[rows[known]] = offset + np.flatnonzero(known)
        pieces.append(values)
        offset += len(values)
    if len(pieces) == 1:
        return original
    return pc.take(pa.concat_arrays(pieces), pa.array(index))


def _lookup(
    wanted: np.ndarray,
    keys: np.ndarray | None,
    eligible: np.ndarray,
    rank: np.ndarray,
    order: np.ndarray,
) -> np.ndarray:
    """For each row, the latest ``eligible`` row whose key code equals the row's ``wanted``.

    ``keys`` are the rows' own key codes (``wanted`` when None); -1 where none matches.
    """
    keys = wanted if keys is None else keys
    rows = np.flatnonzero(eligible & (keys >= 0))
    found = np.full(len(wanted), -1, dtype=np.int64)
    if not len(rows):
        return found
    k, r = keys[rows], rank[rows]
    sort = np.lexsort((r, k))
    k, r = k[sort], r[sort]
    last = np.r_[k[1:] != k[:-1], True]
    unique_keys, latest = k[last], r[last]
    position = np.clip(np.searchsorted(unique_keys, wanted), 0, len(unique_keys) - 1)
    hit = (wanted >= 0) & (unique_keys[position] == wanted)
    found[hit] = order[latest[position[hit]]]
    return found
