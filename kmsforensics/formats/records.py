"""The record table every reader produces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

#: Columns of a record table: position in the file, position inside a container
#: record (``Events[i]`` of a LookupEvents response saved as one line), JSON text.
RECORDS_SCHEMA = pa.schema(
    [
        ("source_record", pa.int64()),
        ("source_item", pa.int32()),
        ("json", pa.string()),
    ]
)


@dataclass
class Split:
    """What a reader found in one file.

    Attributes
    ----------
    shape : str
        ``json-lines``, ``json-array``, ``json-object`` or ``csv``.
    record_unit : str
        ``line`` (1-based line numbers) or ``index`` (0-based element indexes).
    records : pyarrow.Table
        The records, with :data:`RECORDS_SCHEMA`.
    read : int
        Records found, including those rejected while splitting (already reported).
    breaks : int
        Line breaks in the content (JSON lines only; how a reader of a file in pieces
        numbers the next piece's lines).
    """

    shape: str
    record_unit: str
    records: pa.Table
    read: int
    breaks: int = 0


def records_table(
    positions: Sequence[int] | pa.Array,
    texts: Sequence[str] | pa.Array,
    items: Sequence[int | None] | pa.Array | None = None,
) -> pa.Table:
    """Build a record table from positions and JSON texts.

    Examples
    --------
    >>> records_table([1, 2], ['{"a":1}', '{"a":2}']).num_rows
    2
    """
    n = len(positions)
    return pa.table(
        [
            pa.array(positions, pa.int64()),
            pa.array(items, pa.int32()) if items is not None else pa.nulls(n, pa.int32()),
            pa.array(texts, pa.string()),
        ],
        schema=RECORDS_SCHEMA,
    )


def empty_records() -> pa.Table:
    """Return a record table with no rows."""
    return RECORDS_SCHEMA.empty_table()
