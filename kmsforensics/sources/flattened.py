"""Records whose event fields are flattened into ``event.<path>`` keys (SLS index names)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ..extract import _loads
from ..formats.csvfile import _unflatten  # one implementation for CSV and JSON
from ..formats.jsontext import dump
from .registry import Envelope, register

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor


class Flattened(Envelope):
    """``{"event.eventName": ..., "event.userIdentity.type": ...}``: folded back into an event."""

    name = "flattened"
    order = 80
    recognise = "len(list_filter(ks[1], lambda x: starts_with(x, 'event.'))) > 0"

    def unwrap(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Unwrap the records (see the class)."""
        texts = []
        for text in records.column("json").to_pylist():
            value = _loads(text)
            assert isinstance(value, dict)
            texts.append(dump(_unflatten(value)))
        return records.set_column(
            records.column_names.index("json"), "json", pa.array(texts, pa.string())
        )


register(Flattened())
