"""The fast reader for JSON arrays on disk (ActionTrail OSS delivery files).

duckdb splits many array files at once, on every core, straight from disk (gzip
included). Anything it refuses (a damaged file, an odd path) is handed back so
that the exact reader in :mod:`kmsforensics.formats.jsontext` reads it and names
the damaged element.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .records import RECORDS_SCHEMA

#: Characters duckdb would read as a glob in a path: such files take the exact path.
_GLOB_CHARS = frozenset("*?[]{}")
#: Largest single element (bytes) the fast reader accepts.
MAX_OBJECT_BYTES = 64 * 1024 * 1024


def fast_path_ok(path: str) -> bool:
    """Tell whether duckdb can be given this path verbatim.

    Examples
    --------
    >>> fast_path_ok("/evidence/Actiontrail_cn-hangzhou_20260925.gz")
    True
    >>> fast_path_ok("/evidence/odd[1].gz")
    False
    """
    return not (_GLOB_CHARS & set(path))


def read_json_arrays(
    con: duckdb.DuckDBPyConnection, paths: Sequence[str], compression: str
) -> pa.Table | None:
    """Split the JSON arrays in ``paths`` into one record table (with ``source_file``).

    ``source_record`` is each element's index in its file. Returns ``None`` when
    duckdb refuses the batch (the caller retries the files one by one, then with the
    exact reader).
    """
    try:
        table = con.sql(
            "SELECT filename, json FROM read_json_objects($paths, format='array', "
            f"filename=true, compression='{compression}', "
            f"maximum_object_size={MAX_OBJECT_BYTES})",
            params={"paths": list(paths)},
        ).to_arrow_table(batch_size=1 << 22)
    except duckdb.Error:
        return None
    names = table.column("filename").combine_chunks().dictionary_encode()
    if not set(names.dictionary.to_pylist()) <= set(paths):
        return None  # duckdb reported names we did not give it: do not guess
    indices = names.indices.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.diff(indices, prepend=-1) != 0)
    if len(set(indices[starts].tolist())) != len(starts):
        return None  # a file's elements are not contiguous: do not guess
    lengths = np.diff(np.append(starts, len(indices)))
    records = np.arange(len(indices)) - np.repeat(starts, lengths)
    return pa.Table.from_arrays(
        [
            names,
            pa.array(records, pa.int64()),
            pa.nulls(len(indices), pa.int32()),
            table.column("json"),
        ],
        names=["source_file", *RECORDS_SCHEMA.names],
    )


def count_by_file(records: pa.Table) -> dict[str, int]:
    """Count the records per ``source_file`` in a record table."""
    counts = pc.value_counts(records.column("source_file"))
    return {row["values"]: row["counts"] for row in counts.to_pylist()}
