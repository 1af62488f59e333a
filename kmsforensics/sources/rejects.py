"""Records that are not (yet) readable: broken JSON is salvaged, the rest rejected."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ..extract import rows
from ..formats.repair import salvage
from ..tables import take
from .registry import Envelope, Reject, register

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor


class Invalid(Envelope):
    """Not valid JSON: repaired when a reported repair makes it JSON, else rejected."""

    name = "invalid"
    order = 0
    recognise = "ks IS NULL"

    def unwrap(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Unwrap the records (see the class)."""
        keep: list[int] = []
        texts: list[str] = []
        for index, row in enumerate(rows(records)):
            raw = row["json"]
            text, repairs, reason = salvage(raw if isinstance(raw, (str, bytes)) else "")
            if text is None:
                ctx.reject(row, reason)
                continue
            for repair in repairs:
                ctx.issue(row, "field", None, repair)
            keep.append(index)
            texts.append(text)
        kept = take(records, keep)
        return kept.set_column(
            kept.column_names.index("json"), "json", pa.array(texts, pa.string())
        )


class EmptyObject(Reject):
    """An object without fields."""

    name = "empty"
    order = 1
    recognise = "len(ks[1]) = 0 AND json_type(json) = 'OBJECT'"
    reason = "empty JSON object (no fields)"


class NotObject(Reject):
    """A bare value or an array where a record should be."""

    name = "not-object"
    order = 2
    recognise = "len(ks[1]) = 0"
    reason = "not a JSON object (a bare value or an array)"


register(Invalid())
register(EmptyObject())
register(NotObject())
