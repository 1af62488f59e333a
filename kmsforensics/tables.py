"""Arrow helpers the loader's steps share."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pyarrow as pa

T = TypeVar("T", pa.Table, pa.ChunkedArray)


def take(values: T, indices: pa.Array | np.ndarray | list[int]) -> T:
    """Return the rows of ``values`` at ``indices`` (in that order), chunk by chunk.

    Arrow's own ``take`` on a chunked table or column first joins all its chunks
    into one (a copy of the whole batch, for a few rows); this takes from each chunk
    only the rows it holds.

    Examples
    --------
    >>> t = pa.Table.from_batches([pa.record_batch({"a": [1, 2]}), pa.record_batch({"a": [3]})])
    >>> take(t, [2, 0]).column("a").to_pylist()
    [3, 1]
    >>> take(t.column("a"), []).to_pylist()
    []
    """
    wanted = np.asarray(
        indices.to_numpy(zero_copy_only=False) if isinstance(indices, pa.Array) else indices,
        dtype=np.int64,
    )
    chunks = values.to_batches() if isinstance(values, pa.Table) else values.chunks
    bounds = np.cumsum([0] + [len(chunk) for chunk in chunks])
    if len(wanted) and (wanted.min() < 0 or wanted.max() >= bounds[-1]):
        raise IndexError(f"row index out of range for {bounds[-1]} rows")
    order = np.argsort(wanted, kind="stable")
    ordered = wanted[order]
    which = np.searchsorted(bounds, ordered, side="right") - 1
    parts = []
    for chunk in np.unique(which).tolist():
        local = ordered[which == chunk] - bounds[chunk]
        parts.append(chunks[chunk].take(pa.array(local, pa.int64())))
    if isinstance(values, pa.Table):
        taken: pa.Table | pa.ChunkedArray = pa.Table.from_batches(parts, values.schema)
    else:
        taken = pa.chunked_array(parts, values.type)
    if not np.array_equal(order, np.arange(len(order))):
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        taken = taken.take(pa.array(back, pa.int64()))  # small: only the rows taken
    return taken
