"""Fusing a new batch with the store: only the rows it can change, read column by column.

Each batch is fused on its own when it is parsed (:func:`kmsforensics.normalize.fusion.fuse`).
A KMS call and its ActionTrail event, or a role's KMS rows and the events that name
it, may be in different batches, so a new batch is fused again with the rows of the
store it can involve. Those are found from a few key columns of each stored activity
file, never its whole rows:

* the **pairs**: every stored row whose ``request_id`` a new row has (a call is paired
  within its request id), and then every row of the request ids of the rows below;
* the **names it may change**: stored rows that still need a name (RAM role or user
  rows without one of their own) whose access key or principal id a new row could
  name (an AssumeRole, or a named ActionTrail event);
* the **names it may take**: for the rows above and the new ones, the latest stored
  event that can name them, per key (only the latest can win, as in
  :func:`~kmsforensics.normalize.fusion.fill_identities`);
* the other rows of the same records at the same time, so that each row keeps its
  own id (:func:`~kmsforensics.normalize.fusion.row_ids`).

:func:`~kmsforensics.normalize.fusion.fuse` on those rows gives every row of the first
two kinds (and the new rows) what a fusion of the whole store would give; no other
stored row can change. The caller rewrites only the files whose values change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..normalize.fusion import NAMED_TYPES
from .columns import plain

#: Columns read from every stored activity file to find the rows a batch involves.
KEY_COLUMNS = (
    "time",
    "source",
    "source_file",
    "source_record",
    "request_id",
    "access_key_id",
    "principal_id",
    "identity_type",
    "principal_name",
    "principal_name_source",
    "issued_access_key_id",
    "issued_role_id",
    "issued_role_name",
)


_TEXT = pa.large_string()


def _none() -> pa.Array:
    return pa.array([], _TEXT)


@dataclass
class Keys:
    """The identifiers of a set of rows, each as an Arrow array of distinct text."""

    requests: pa.Array = field(default_factory=_none)
    #: Keys that new rows can name other rows by (suppliers).
    supplied_keys: pa.Array = field(default_factory=_none)
    supplied_principals: pa.Array = field(default_factory=_none)
    #: Keys of rows that need a name (looked up in the store).
    needed_keys: pa.Array = field(default_factory=_none)
    needed_principals: pa.Array = field(default_factory=_none)

    def need(self, other: Keys) -> None:
        """Add the keys of ``other``'s rows that need a name."""
        self.needed_keys = union(self.needed_keys, other.needed_keys)
        self.needed_principals = union(self.needed_principals, other.needed_principals)


def union(*arrays: pa.Array) -> pa.Array:
    """Return the distinct values of several arrays of text."""
    return pc.unique(pa.concat_arrays([a.cast(_TEXT) for a in arrays]))


def _text(table: pa.Table, name: str) -> pa.Array:
    """Return a column as text (null: missing, null or empty)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, _TEXT)
    values = plain(table.column(name))
    if values.type != _TEXT:
        values = values.cast(_TEXT)
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, _TEXT), values)


def _bool(values: pa.Array) -> np.ndarray:
    return np.array(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _mask(values: pa.Array, wanted: pa.Array) -> np.ndarray:
    if not len(wanted) or not len(values):
        return np.zeros(len(values), dtype=bool)
    return _bool(pc.is_in(values, value_set=wanted))


def _is(values: pa.Array, value: str) -> np.ndarray:
    return _bool(pc.equal(values, value))


def _flags(table: pa.Table) -> dict[str, np.ndarray]:
    """Per row: from ActionTrail, named in its own record, issued a role, needs a name."""
    at = _is(_text(table, "source"), "actiontrail")
    record = _is(_text(table, "principal_name_source"), "record")
    named = record & _bool(pc.is_valid(_text(table, "principal_name")))
    need = ~record & _mask(_text(table, "identity_type"), pa.array(NAMED_TYPES, _TEXT))
    issued = at & _bool(pc.is_valid(_text(table, "issued_role_name")))
    return {"at": at, "named": at & named, "issued": issued, "need": need}


def _values(values: pa.Array, rows: np.ndarray) -> pa.Array:
    return pc.unique(values.filter(pa.array(rows)).drop_null())


def keys_of(table: pa.Table, rows: np.ndarray | None = None) -> Keys:
    """Return the keys of ``table``'s rows (all, or those of the boolean mask ``rows``)."""
    rows = np.ones(table.num_rows, dtype=bool) if rows is None else rows
    flags = _flags(table)
    key, principal = _text(table, "access_key_id"), _text(table, "principal_id")
    issued_key = _text(table, "issued_access_key_id")
    issued_role = _text(table, "issued_role_id")
    return Keys(
        requests=_values(_text(table, "request_id"), rows),
        supplied_keys=union(
            _values(issued_key, rows & flags["issued"]), _values(key, rows & flags["named"])
        ),
        supplied_principals=union(
            _values(principal, rows & flags["named"]),
            _values(issued_role, rows & flags["issued"]),
        ),
        needed_keys=_values(key, rows & flags["need"]),
        needed_principals=_values(principal, rows & flags["need"]),
    )


def hashes(values: pa.Array) -> pa.Array:
    """Return 64-bit hashes of the distinct values of an array of text (nulls left out)."""
    words = pc.unique(values.drop_null()).to_numpy(zero_copy_only=False)
    return pa.array(pd.util.hash_array(words, categorize=False), pa.uint64())


def _meets(stored: pa.Array, wanted: pa.Array) -> bool:
    """Tell whether two arrays of hashes share a value (the smaller one is the set)."""
    if not len(stored) or not len(wanted):
        return False
    small, large = (stored, wanted) if len(stored) < len(wanted) else (wanted, stored)
    return bool(pc.any(pc.is_in(large, value_set=small)).as_py())


@dataclass
class FileKeys:
    """The hashes of the keys by which a stored activity file's rows can be found.

    A file whose hashes meet none of a lookup's cannot have a row that lookup finds
    (equal values have equal hashes), so it is not read for it; a file whose hashes meet
    is read and looked up exactly, as without them. Kept in memory during an ingest:
    about 8 bytes per distinct request id, key and principal.

    Examples
    --------
    >>> stored = pa.table({"request_id": ["r1", "r2"], "source": ["kms", "kms"]})
    >>> index = FileKeys.of(stored)
    >>> index.may_involve(HashedKeys.of(Keys(requests=pa.array(["r2", "r9"], _TEXT))))
    True
    >>> index.may_involve(HashedKeys.of(Keys(requests=pa.array(["r9"], _TEXT))))
    False
    """

    requests: pa.Array
    #: Keys and principals of the rows that need a name.
    need_keys: pa.Array
    need_principals: pa.Array
    #: Keys and principals by which rows of the file can name others (suppliers).
    supply_keys: pa.Array
    supply_principals: pa.Array

    @classmethod
    def of(cls, table: pa.Table) -> FileKeys:
        """Return the hashes of a file's key columns (:data:`KEY_COLUMNS`)."""
        flags = _flags(table)
        key, principal = _text(table, "access_key_id"), _text(table, "principal_id")
        issued = flags["issued"]
        supply_keys = [key.filter(pa.array(flags["named"])),
                       _text(table, "issued_access_key_id").filter(pa.array(issued))]  # fmt: skip
        supply_principals = [principal.filter(pa.array(flags["named"])),
                             _text(table, "issued_role_id").filter(pa.array(issued))]  # fmt: skip
        need = pa.array(flags["need"])
        return cls(
            requests=hashes(_text(table, "request_id")),
            need_keys=hashes(key.filter(need)),
            need_principals=hashes(principal.filter(need)),
            supply_keys=hashes(pa.concat_arrays(supply_keys)),
            supply_principals=hashes(pa.concat_arrays(supply_principals)),
        )

    def may_involve(self, new: HashedKeys) -> bool:
        """Tell whether :func:`involved` can find a row of the file for these new rows."""
        return (
            _meets(self.requests, new.requests)
            or _meets(self.need_keys, new.supplied_keys)
            or _meets(self.need_principals, new.supplied_principals)
        )

    def may_supply(self, wanted: HashedKeys) -> bool:
        """Tell whether :func:`supplier_keys` can find a row of the file for these keys."""
        return _meets(self.supply_keys, wanted.needed_keys) or _meets(
            self.supply_principals, wanted.needed_principals
        )

    def may_request(self, requests: pa.Array) -> bool:
        """Tell whether :func:`in_requests` can find a row for these hashed request ids."""
        return _meets(self.requests, requests)


@dataclass
class HashedKeys:
    """:class:`Keys` as hashes (:func:`hashes`), to test against :class:`FileKeys`."""

    requests: pa.Array
    supplied_keys: pa.Array
    supplied_principals: pa.Array
    needed_keys: pa.Array
    needed_principals: pa.Array

    @classmethod
    def of(cls, keys: Keys) -> HashedKeys:
        """Return the hashes of a set of keys."""
        return cls(
            requests=hashes(keys.requests),
            supplied_keys=hashes(keys.supplied_keys),
            supplied_principals=hashes(keys.supplied_principals),
            needed_keys=hashes(keys.needed_keys),
            needed_principals=hashes(keys.needed_principals),
        )


def involved(table: pa.Table, new: Keys) -> np.ndarray:
    """Return the stored rows a new batch can change: its request ids, names it supplies."""
    need = _flags(table)["need"]
    pairs = _mask(_text(table, "request_id"), new.requests)
    if not need.any():
        return pairs
    named_by_new = _mask(_text(table, "access_key_id"), new.supplied_keys)
    named_by_new |= _mask(_text(table, "principal_id"), new.supplied_principals)
    return pairs | (need & named_by_new)


def in_requests(table: pa.Table, requests: pa.Array) -> np.ndarray:
    """Return the stored rows of these request ids."""
    return _mask(_text(table, "request_id"), requests)


def supplier_keys(table: pa.Table, wanted: Keys) -> list[tuple[str, pa.Array, np.ndarray]]:
    """Per way of naming a row, the key of each stored row that can name a wanted row.

    Returns (kind, key per row (null: cannot), time per row) for the four lookups of
    :func:`~kmsforensics.normalize.fusion.fill_identities` besides the call's pair.
    """
    flags = _flags(table)
    key, principal = _text(table, "access_key_id"), _text(table, "principal_id")
    kind = _text(table, "identity_type")
    times = _nanoseconds(table)
    null = pa.scalar(None, _TEXT)

    def keyed(eligible: np.ndarray, values: pa.Array, wanted_values: pa.Array) -> pa.Array:
        if not eligible.any() or not len(wanted_values):
            return pa.nulls(table.num_rows, _TEXT)
        return pc.if_else(pa.array(eligible & _mask(values, wanted_values)), values, null)

    def joined(selected: pa.Array, first: pa.Array, second: pa.Array) -> pa.Array:
        both = pc.binary_join_element_wise(first, second, pa.scalar("\x00", _TEXT))
        return pc.if_else(pc.is_valid(selected), both, null)

    by_key = keyed(flags["named"], key, wanted.needed_keys)
    by_principal = keyed(flags["named"], principal, wanted.needed_principals)
    issued_key = _text(table, "issued_access_key_id")
    issued_role = _text(table, "issued_role_id")
    return [
        ("issued-key", keyed(flags["issued"], issued_key, wanted.needed_keys), times),
        ("key", joined(by_key, key, principal), times),
        ("principal", joined(by_principal, kind, principal), times),
        ("issued-role", keyed(flags["issued"], issued_role, wanted.needed_principals), times),
    ]


def _nanoseconds(table: pa.Table) -> np.ndarray:
    values = table.column("time").combine_chunks().cast(pa.timestamp("ns", tz="UTC"))
    return pc.fill_null(values.cast(pa.int64()), np.iinfo(np.int64).min).to_numpy()


class Latest:
    """The latest stored rows per key and lookup (ties in time all kept), file by file."""

    def __init__(self) -> None:
        self.rows: list[pd.DataFrame] = []

    def add(self, file: int, found: list[tuple[str, pa.Array, np.ndarray]]) -> None:
        """Keep the latest of one file's rows (numbered ``file``) per lookup and key."""
        for kind, keys, times in found:
            rows = np.flatnonzero(_bool(pc.is_valid(keys)))
            if not len(rows):
                continue
            words = keys.take(pa.array(rows)).to_numpy(zero_copy_only=False)
            frame = pd.DataFrame(
                {"kind": kind, "key": words, "time": times[rows], "file": file, "row": rows}
            )
            self.rows.append(_latest(frame))

    def chosen(self) -> dict[int, np.ndarray]:
        """Return file -> the row numbers of the latest rows."""
        if not self.rows:
            return {}
        best = _latest(pd.concat(self.rows, ignore_index=True))
        files, rows = best["file"].to_numpy(np.int64), best["row"].to_numpy(np.int64)
        return {int(f): np.unique(rows[files == f]) for f in np.unique(files)}


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    top = frame.groupby(["kind", "key"], sort=False)["time"].transform("max")
    return frame[frame["time"] == top]


def same_records(table: pa.Table, chosen: np.ndarray) -> np.ndarray:
    """Add the rows of the same record and time as a chosen row (they share their id's base)."""
    if not chosen.any():
        return chosen
    codes = {
        name: pc.fill_null(
            _text(table, name).dictionary_encode().indices.cast(pa.int64()), -1
        ).to_numpy()
        for name in ("source", "source_file")
    }
    record = table.column("source_record").combine_chunks().cast(pa.int64())
    frame = pd.DataFrame(
        {**codes, "r": pc.fill_null(record, -1).to_numpy(), "t": _nanoseconds(table)}
    )
    group = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    return np.isin(group, np.unique(group[chosen])) | chosen
