"""Microsoft Sentinel / Log Analytics exports of ActionTrail.

* Rows of the ``AliCloud_CL`` table (the older connector) hold the SLS log:
  the event as an object (or JSON text) in ``contents_event_s``, the SLS time as
  a string of epoch seconds in ``timestamp_d`` (kept as ``__time__``) and the
  ingestion time in ``TimeGenerated`` (US-locale text without a zone, such as
  ``12/1/2020, 11:54:59.366 AM``; kept as ``ingestion_time``).
* Rows of ``AliCloudActionTrailLogs_CL`` (the data-collection-rule connector)
  are the event's own fields, flattened one level, plus ``TimeGenerated``
  (``TimeGenerated [UTC]`` in a CSV export) and no ``eventTime``. The ingestion
  time is kept as ``ingestion_time``; the normaliser uses it only when the event
  has no time of its own, and says so in ``case.issues``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ..extract import _loads, rows
from ..formats.jsontext import dump
from ..schema import AT_MARKER_KEYS
from .registry import Envelope, _literal_list, register

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor

#: Names Log Analytics gives the ingestion time (CSV exports add `` [UTC]``).
INGESTION_KEYS = ("TimeGenerated", "TimeGenerated [UTC]")


class SentinelSlsRow(Envelope):
    """A row of the ``AliCloud_CL`` table: the event is in ``contents_event_s``."""

    name = "sentinel-sls-row"
    order = 34
    recognise = "list_contains(ks[1], 'contents_event_s')"
    inner = "$.contents_event_s"
    carried = (("__time__", "$.timestamp_d"), ("ingestion_time", "$.TimeGenerated"))
    described = "Sentinel row whose `contents_event_s`"


class SentinelEventRow(Envelope):
    """A row of ``AliCloudActionTrailLogs_CL``: the event's fields and ``TimeGenerated``."""

    name = "sentinel-event-row"
    order = 36
    recognise = (
        f"list_has_any(ks[1], {_literal_list(list(INGESTION_KEYS))}) "
        f"AND list_has_any(ks[1], {_literal_list(list(AT_MARKER_KEYS))})"
    )

    def unwrap(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Unwrap the records (see the class)."""
        texts: list[str] = []
        ingested: list[str | None] = []
        for row in rows(records):
            event = _loads(row["json"])
            assert isinstance(event, dict)  # recognised by its keys: an object
            found = [event.pop(k) for k in INGESTION_KEYS if k in event]
            ingested.append(str(found[0]) if found and found[0] not in (None, "") else None)
            texts.append(dump(event))
        table = records.set_column(
            records.column_names.index("json"), "json", pa.array(texts, pa.string())
        )
        return table.append_column("ingestion_time", pa.array(ingested, pa.string()))


register(SentinelSlsRow())
register(SentinelEventRow())
