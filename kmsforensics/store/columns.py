"""Values stored once: a column equal to another is written as a reference, restored on read.

The frames of a batch hold the same values several times: the activity row of a KMS
record repeats its ``request_id``, time, access key and resources; an ActionTrail
event's ``keyId`` is its ``requestParameters.KeyId``. A store file keeps each such
column once:

* **within a file**, a column equal to an earlier one (same type, same values and
  nulls) is written as nulls, and the file's Parquet metadata says which column it
  repeats;
* **across frames**, the activity rows of one source in a day file are, in order, the
  rows of that source's own file of the same day and batch; an activity column equal,
  on those rows, to a column of the source's file is written as nulls there, and the
  metadata names that file and column.

Every reference is checked value by value when the file is written (a column that
differs in one row is stored whole), and :func:`read_table` restores the columns
asked for, so a reader gets exactly what was written. The files referred to belong to
the same committed batch, so they are listed, sized and hashed with it.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> t = pa.table({"a": ["x", "y"], "b": ["x", "y"], "c": ["x", None]})
>>> shared, same = share_within(t)
>>> same, shared.column("b").null_count
({'b': 'a'}, 2)
>>> pq.write_table(with_aliases(shared, same, {}), root / "t.parquet")
>>> read_table(root, "t.parquet").equals(t)
True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: The key of a file's Parquet metadata that lists its references.
ALIASES = b"kmsforensics.aliases"
#: Columns of a source's own frame that an activity column may repeat (tried in order;
#: each is checked value by value before it is used).
SAME_AS: dict[str, dict[str, tuple[str, ...]]] = {
    "kms": {
        "time": ("time",),
        "account_id": ("account_id",),
        "identity_type": ("identity_type",),
        "raw_identity_type": ("identity_type",),
        "principal_id": ("principal_id",),
        "access_key_id": ("access_key_id",),
        "client_ip": ("client_ip",),
        "user_agent": ("useragent", "user_agent"),
        "action": ("api_name",),
        "resource_id": ("resource_id",),
        "key_id": ("key_id", "resource_id"),
        "secret_name": ("secret_name",),
        "region_id": ("region_id",),
        "instance_id": ("instance_id",),
        "request_id": ("request_id",),
        "error_code": ("error_code",),
        "error_message": ("error_message",),
        "source_file": ("source_file",),
        "source_record": ("source_record",),
        "source_item": ("source_item",),
    },
    "actiontrail": {
        "time": ("eventTime",),
        "account_id": ("recipientAccountId", "userIdentity.accountId", "accountId"),
        "principal_id": ("roleId", "userIdentity.principalId"),
        "principal_name": ("roleName", "userIdentity.userName"),
        "session_name": ("sessionName",),
        "access_key_id": ("userIdentity.accessKeyId",),
        "client_ip": ("sourceIpAddress",),
        "user_agent": ("userAgent",),
        "action": ("eventName",),
        "resource_id": ("keyId", "secretName", "resourceName"),
        "key_id": ("keyId",),
        "secret_name": ("secretName",),
        "region_id": ("acsRegion",),
        "request_id": ("requestId",),
        "event_id": ("eventId",),
        "raw_identity_type": ("userIdentity.type",),
        "event_type": ("eventType",),
        "player_account_id": ("stsTokenPlayerUid", "requestParameters.stsTokenPlayerUid"),
        "issued_access_key_id": ("issuedAccessKeyId",),
        "issued_role_id": ("targetRoleId",),
        "issued_role_name": ("targetRoleName",),
        "issued_session_name": ("targetSessionName", "requestParameters.RoleSessionName"),
        "error_code": ("errorCode",),
        "error_message": ("errorMessage",),
        "source_file": ("source_file",),
        "source_record": ("source_record",),
        "source_item": ("source_item",),
    },
}
#: The column of an activity file that keeps each row's place in a source's file.
ROW_IN = "_row_in_"
#: Rows of a file compared in a first, cheap look before whole columns are compared.
_SAMPLE = 64


def plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return a column's values as one array, dictionaries decoded, text as large text."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type):
        values = values.cast(pa.large_string())
    return values


def same_values(left: pa.Array | pa.ChunkedArray, right: pa.Array | pa.ChunkedArray) -> bool:
    """Tell whether two columns hold the same values, nulls in the same rows.

    Examples
    --------
    >>> same_values(pa.array(["a", None]), pa.array(["a", None]).dictionary_encode())
    True
    >>> same_values(pa.array(["a", None]), pa.array(["a", ""]))
    False
    """
    return len(left) == len(right) and bool(plain(left).equals(plain(right)))


def _worth_sharing(values: pa.ChunkedArray | pa.Array) -> bool:
    """Tell whether a column has a value (one with none costs nothing: never a reference)."""
    return len(values) > 0 and values.null_count < len(values)


def share_within(table: pa.Table) -> tuple[pa.Table, dict[str, str]]:
    """Write each column equal to an earlier one (same type) as nulls; return the references."""
    same: dict[str, str] = {}
    seen: dict[tuple[Any, ...], list[str]] = {}
    n = table.num_rows
    sample = pa.array(np.unique(np.linspace(0, max(n - 1, 0), min(n, _SAMPLE)).astype(np.int64)))
    for name in table.column_names:
        column = table.column(name)
        if not _worth_sharing(column):
            continue
        look = (str(column.type), column.null_count, repr(plain(column.take(sample)).to_pylist()))
        for earlier in seen.get(look, []):
            if same_values(column, table.column(earlier)):
                same[name] = earlier
                break
        else:
            seen.setdefault(look, []).append(name)
    for name in same:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.field(name), pa.nulls(n, table.field(name).type))
    return table, same


def share_with_sources(
    activity: pa.Table, sources: dict[str, tuple[str, pa.Table]]
) -> tuple[pa.Table, dict[str, dict[str, list[str]]]]:
    """Write activity columns that repeat a source file's column as nulls on its rows.

    ``sources`` maps a source name (``kms``, ``actiontrail``) to the store path of its
    file of the same day and batch and that file's table (before its own references).
    The activity rows of a source are matched to its file's rows by provenance (file,
    record, and their order within a record); when that order is not the file's own,
    a column ``_row_in_<source>`` keeps each row's place in the source's file.
    Returns the table and, per column, source -> [path, column].
    """
    if "source" not in activity.column_names or not activity.num_rows:
        return activity, {}
    source = plain(activity.column("source"))
    found: dict[str, dict[str, list[str]]] = {}
    masks: dict[str, np.ndarray] = {}
    orders: dict[str, np.ndarray] = {}
    for name, (path, typed) in sources.items():
        mask = pc.fill_null(pc.equal(source, name), False).to_numpy(zero_copy_only=False)
        if int(mask.sum()) != typed.num_rows or not typed.num_rows:
            continue  # not the rows of that file: nothing is shared
        rows = pa.array(np.flatnonzero(mask))
        order = _matched(activity.take(rows), typed)
        if order is None:
            continue
        if not np.array_equal(order, np.arange(len(order))):
            typed = typed.take(pa.array(order))
            orders[name] = order
        masks[name] = mask
        for column, tried in SAME_AS.get(name, {}).items():
            if column not in activity.column_names:
                continue
            mine = activity.column(column).take(rows)
            if not _worth_sharing(mine):
                continue
            for candidate in tried:
                if candidate in typed.column_names and _equal_as(
                    typed.column(candidate), mine, activity.field(column).type
                ):
                    found.setdefault(column, {})[name] = [path, candidate]
                    break
    for column, by_source in found.items():
        keep = np.ones(activity.num_rows, dtype=bool)
        for name in by_source:
            keep &= ~masks[name]
        index = activity.schema.get_field_index(column)
        values = activity.column(column).combine_chunks()
        empty = pa.nulls(len(values), values.type)
        kept = pc.if_else(pa.array(keep), values, empty) if not keep.all() else values
        activity = activity.set_column(index, activity.field(column), kept)
    used = {name for by_source in found.values() for name in by_source}
    for name in sorted(used & set(orders)):
        places = np.zeros(activity.num_rows, dtype=np.int32)
        places[masks[name]] = orders[name]
        column = pa.array(places, pa.int32(), mask=~masks[name])
        activity = activity.append_column(f"{ROW_IN}{name}", column)
    return activity, found


def _matched(mine: pa.Table, typed: pa.Table) -> np.ndarray | None:
    """For each activity row of a source, its row in the source's file (None: no match).

    Rows are matched on file, record and their order within the record; the values
    are compared afterwards, so a wrong match only means nothing is shared.
    """
    keys = ["source_file", "source_record"]
    if any(k not in mine.column_names or k not in typed.column_names for k in keys):
        return None
    if mine.num_rows == typed.num_rows and all(
        same_values(mine.column(k), typed.column(k)) for k in keys
    ):  # the same files and records row by row: the same order within each record too
        return np.arange(mine.num_rows)

    def frame(table: pa.Table) -> pd.DataFrame:
        out = pd.DataFrame(
            {
                "f": plain(table.column("source_file")).to_numpy(zero_copy_only=False),
                "r": pc.fill_null(
                    table.column("source_record").combine_chunks().cast(pa.int64()), -1
                ).to_numpy(),
            }
        )
        out["k"] = out.groupby(["f", "r"], sort=False).cumcount()
        return out

    left, right = frame(mine), frame(typed)
    if (left["f"].to_numpy() == right["f"].to_numpy()).all() and (
        left[["r", "k"]].to_numpy() == right[["r", "k"]].to_numpy()
    ).all():
        return np.arange(len(left))
    right["place"] = np.arange(len(right))
    merged = left.merge(right, on=["f", "r", "k"], how="left", sort=False)
    if len(merged) != len(left) or merged["place"].isna().any():
        return None
    return np.asarray(merged["place"].to_numpy(), dtype=np.int64)


def _equal_as(typed: pa.ChunkedArray, mine: pa.ChunkedArray, wanted: pa.DataType) -> bool:
    """Tell whether a source column, cast to the activity column's type, equals it."""
    try:
        cast = _cast(typed, wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return same_values(cast, mine)


def _cast(values: pa.Array | pa.ChunkedArray, wanted: pa.DataType) -> pa.Array:
    """Cast a column to a type, dictionaries re-encoded (their codes are not compared)."""
    values = plain(values)
    if pa.types.is_dictionary(wanted):
        return values.cast(wanted.value_type).dictionary_encode().cast(wanted)
    return values.cast(wanted)


def with_aliases(
    table: pa.Table, same: dict[str, str], sources: dict[str, dict[str, list[str]]]
) -> pa.Table:
    """Return the table with its references in its schema's metadata (none: unchanged)."""
    if not same and not sources:
        return table
    text = json.dumps({"same": same, "from": sources}, sort_keys=True)
    return table.replace_schema_metadata({ALIASES: text.encode("utf-8")})


def aliases_of(schema: pa.Schema) -> dict[str, Any]:
    """Return a file's references: ``{"same": {...}, "from": {...}}`` (empty if none)."""
    text = (schema.metadata or {}).get(ALIASES)
    return json.loads(text) if text else {}


def restore(
    root: Path, table: pa.Table, aliases: dict[str, Any], columns: Sequence[str]
) -> pa.Table:
    """Put back the values of ``columns`` that ``table`` holds as references.

    Each source file referred to is read once, for all the columns taken from it.
    """
    same, sources = aliases.get("same", {}), aliases.get("from", {})
    asked = [c for c in columns if c in table.column_names]
    from_sources = {same.get(c, c) for c in asked} & set(sources)
    wanted: dict[str, set[str]] = {}
    for name in from_sources:
        for path, column in sources[name].values():
            wanted.setdefault(path, set()).add(column)
    files = {path: read_table(root, path, sorted(names)) for path, names in wanted.items()}
    restored = {}
    for name in asked:
        earlier = same.get(name, name)
        if earlier in sources:
            values = _from_sources(table, earlier, sources[earlier], files)
        elif name in same:
            values = table.column(earlier)
        else:
            continue
        restored[name] = _cast(values, table.field(name).type)
    for name, values in restored.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.field(name), values)
    return table


def _from_sources(
    table: pa.Table, name: str, by_source: dict[str, list[str]], files: dict[str, pa.Table]
) -> pa.Array:
    """Return a column whose rows of some sources are those sources' files' column."""
    wanted = table.field(name).type
    source = plain(table.column("source"))
    values = plain(table.column(name))
    picks = np.arange(table.num_rows)
    pieces = [values]
    offset = table.num_rows
    for kind, (path, column) in by_source.items():
        rows = np.flatnonzero(pc.fill_null(pc.equal(source, kind), False).to_numpy(False))
        typed = plain(files[path].column(column))
        if f"{ROW_IN}{kind}" in table.column_names:
            places = table.column(f"{ROW_IN}{kind}").combine_chunks().take(pa.array(rows))
            typed = typed.take(places)
        picks[rows] = offset + np.arange(len(rows))
        pieces.append(plain(_cast(typed, values.type)))
        offset += len(rows)
    return _cast(pa.concat_arrays(pieces).take(pa.array(picks)), wanted)


def read_table(root: Path, relative: str, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a store file's columns (all when None) with every reference restored."""
    path = root / relative
    schema = pq.read_schema(path)
    aliases = aliases_of(schema)
    names = list(schema.names) if columns is None else [c for c in columns if c in schema.names]
    if not aliases:
        return pq.read_table(path, columns=names).replace_schema_metadata(None)
    needed = set(names)
    for name in names:
        if name in aliases.get("same", {}):
            needed.add(aliases["same"][name])
        if name in aliases.get("from", {}) or aliases["same"].get(name) in aliases["from"]:
            needed.add("source")
            needed.update(c for c in schema.names if c.startswith(ROW_IN))
    table = pq.read_table(path, columns=[c for c in schema.names if c in needed])
    table = restore(root, table.replace_schema_metadata(None), aliases, names)
    return table.select(names)


def rewritten(root: Path, relative: str, changes: dict[str, pa.Array]) -> pa.Table:
    """Return a store file's table with some columns changed, its other references kept.

    A changed column, and a column that repeated it, are restored first; a changed
    column that referred to a source's file keeps the reference where its new values
    still equal that file's column.
    """
    raw = pq.read_table(root / relative)
    aliases = aliases_of(raw.schema)
    raw = raw.replace_schema_metadata(None)
    same = dict(aliases.get("same", {}))
    sources: dict[str, dict[str, list[str]]] = {
        k: dict(v) for k, v in aliases.get("from", {}).items()
    }
    whole = [c for c, earlier in same.items() if c in changes or earlier in changes]
    whole += [c for c in sources if c in changes]
    table = restore(root, raw, aliases, whole)
    former = {c: sources.pop(c) for c in list(sources) if c in changes}
    for name in whole:
        same.pop(name, None)
    for name, values in changes.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.field(name), _cast(values, table.field(name).type))
    for name, by_source in former.items():
        provenance = ["source_file", "source_record"]
        files = {
            kind: (path, read_table(root, path, [column, *provenance]))
            for kind, (path, column) in by_source.items()
        }
        places = [c for c in table.column_names if c.startswith(ROW_IN)]
        mine = table.select(["source", *provenance, name, *places])
        mine = restore(root, mine, aliases, provenance).select(["source", *provenance, name])
        shared, found = share_with_sources(mine, files)
        if name in found:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, table.field(name), shared.column(name))
            sources[name] = found[name]
    return with_aliases(table, same, sources)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Give a table every column of ``schema``, in its order and types (nulls where absent)."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            column = table.column(f.name)
            columns.append(column if column.type == f.type else column.cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)
