"""The fast reader for JSON arrays on disk (ActionTrail OSS delivery files).

duckdb splits many array files at once, on every core, straight from disk (gzip
included). Anything it refuses (a damaged file, an odd path) is handed back so
that the exact reader in :mod:`kmsforensics.formats.jsontext` reads it and names
the damaged element.
"""

from __future__ import annotations

import itertools
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
) -> dict[str, pa.Table] | None:
    """Split the JSON arrays in ``paths`` into record tables, one per path.

    Returns ``None`` when duckdb refuses the batch (the caller retries the files
    one by one, then with the exact reader).
    """
    if not paths:
        return {}
    try:
        table = con.sql(
            "SELECT filename, json FROM read_json_objects($paths, format='array', "
            f"filename=true, compression='{compression}', "
            f"maximum_object_size={MAX_OBJECT_BYTES})",
            params={"paths": list(paths)},
        ).to_arrow_table()
    except duckdb.Error:
        return None
    names = table.column("filename").combine_chunks()
    if not set(pc.unique(names).to_pylist()) <= set(paths):
        return None  # duckdb reported names we did not give it: do not guess
    texts = table.column("json").cast(pa.large_string()).combine_chunks()
    out: dict[str, pa.Table] = {}
    if len(names):
        change = (
            np.flatnonzero(pc.not_equal(names[1:], names[:-1]).to_numpy(zero_copy_only=False)) + 1
        )
        bounds = [0, *change.tolist(), len(names)]
        for begin, end in itertools.pairwise(bounds):
            name = names[begin].as_py()
            if name in out:  # the same file listed twice in one batch
                return None
            n = end - begin
            out[name] = pa.table(
                [
                    pa.array(np.arange(n), pa.int64()),
                    pa.nulls(n, pa.int32()),
                    texts.slice(begin, n),
                ],
                schema=RECORDS_SCHEMA,
            )
    for path in paths:
        out.setdefault(path, RECORDS_SCHEMA.empty_table())
    return out
