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


@dataclass
class Keys:
    """The identifiers of a set of rows, as Python sets of text."""

    requests: set[str] = field(default_factory=set)
    #: Keys that new rows can name other rows by (suppliers).
    supplied_keys: set[str] = field(default_factory=set)
    supplied_principals: set[str] = field(default_factory=set)
    #: Keys of rows that need a name (looked up in the store).
    needed_keys: set[str] = field(default_factory=set)
    needed_principals: set[str] = field(default_factory=set)


def _text(table: pa.Table, name: str) -> np.ndarray:
    """Return a column as an object array of text (None: missing, null or empty)."""
    if name not in table.column_names:
        return np.full(table.num_rows, None, dtype=object)
    values = plain(table.column(name))
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.large_string()), values)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def _mask(values: np.ndarray, wanted: set[str]) -> np.ndarray:
    if not wanted or not len(values):
        return np.zeros(len(values), dtype=bool)
    return np.array(pd.Series(values).isin(wanted).to_numpy(), dtype=bool)


def _flags(table: pa.Table) -> dict[str, np.ndarray]:
    """Per row: from ActionTrail, named in its own record, issued a role, needs a name."""
    source = _text(table, "source")
    label = _text(table, "principal_name_source")
    kind = _text(table, "identity_type")
    at = source == "actiontrail"
    named = (label == "record") & (_text(table, "principal_name") != None)  # noqa: E711
    need = ~(label == "record") & np.isin(kind, NAMED_TYPES)
    issued = at & (_text(table, "issued_role_name") != None)  # noqa: E711
    return {"at": at, "named": at & named, "issued": issued, "need": need}


def _values(array: np.ndarray, rows: np.ndarray) -> set[str]:
    return {v for v in array[rows] if v is not None}


def keys_of(table: pa.Table, rows: np.ndarray | None = None) -> Keys:
    """Return the keys of ``table``'s rows (all, or those of the boolean mask ``rows``)."""
    rows = np.ones(table.num_rows, dtype=bool) if rows is None else rows
    flags = _flags(table)
    key, principal = _text(table, "access_key_id"), _text(table, "principal_id")
    keys = Keys(requests=_values(_text(table, "request_id"), rows))
    keys.supplied_keys = _values(_text(table, "issued_access_key_id"), rows & flags["issued"])
    keys.supplied_keys |= _values(key, rows & flags["named"])
    keys.supplied_principals = _values(principal, rows & flags["named"])
    keys.supplied_principals |= _values(_text(table, "issued_role_id"), rows & flags["issued"])
    keys.needed_keys = _values(key, rows & flags["need"])
    keys.needed_principals = _values(principal, rows & flags["need"])
    return keys


def involved(table: pa.Table, new: Keys) -> np.ndarray:
    """Return the stored rows a new batch can change: its request ids, names it supplies."""
    flags = _flags(table)
    pairs = _mask(_text(table, "request_id"), new.requests)
    named_by_new = _mask(_text(table, "access_key_id"), new.supplied_keys)
    named_by_new |= _mask(_text(table, "principal_id"), new.supplied_principals)
    return pairs | (flags["need"] & named_by_new)


def in_requests(table: pa.Table, requests: set[str]) -> np.ndarray:
    """Return the stored rows of these request ids."""
    return _mask(_text(table, "request_id"), requests)


def supplier_keys(table: pa.Table, wanted: Keys) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per way of naming a row, the key of each stored row that can name a wanted row.

    Returns (kind, key per row (None: cannot), time per row) for the four lookups of
    :func:`~kmsforensics.normalize.fusion.fill_identities` besides the call's pair.
    """
    flags = _flags(table)
    key, principal = _text(table, "access_key_id"), _text(table, "principal_id")
    kind = _text(table, "identity_type")
    issued_key, issued_role = _text(table, "issued_access_key_id"), _text(table, "issued_role_id")
    times = _nanoseconds(table)

    def keyed(eligible: np.ndarray, values: np.ndarray, wanted_values: set[str]) -> np.ndarray:
        out = np.full(table.num_rows, None, dtype=object)
        rows = eligible & _mask(values, wanted_values)
        out[rows] = values[rows]
        return out

    def joined(selected: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        out = np.full(table.num_rows, None, dtype=object)
        rows = ~pd.isna(selected) & ~pd.isna(first) & ~pd.isna(second)
        out[rows] = first[rows] + "\x00" + second[rows]
        return out

    by_key = keyed(flags["named"], key, wanted.needed_keys)
    by_principal = keyed(flags["named"], principal, wanted.needed_principals)
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

    def add(self, file: int, found: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """Keep the latest of one file's rows (numbered ``file``) per lookup and key."""
        for kind, keys, times in found:
            rows = np.flatnonzero(~pd.isna(keys))
            if not len(rows):
                continue
            frame = pd.DataFrame(
                {"kind": kind, "key": keys[rows], "time": times[rows], "file": file, "row": rows}
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
    parts = [_text(table, "source"), _text(table, "source_file")]
    record = table.column("source_record").combine_chunks()
    frame = pd.DataFrame(
        {
            "s": parts[0],
            "f": parts[1],
            "r": pc.fill_null(record.cast(pa.int64()), -1).to_numpy(),
            "t": _nanoseconds(table),
        }
    )
    group = frame.groupby(["s", "f", "r", "t"], sort=False, dropna=False).ngroup().to_numpy()
    return np.isin(group, np.unique(group[chosen])) | chosen
