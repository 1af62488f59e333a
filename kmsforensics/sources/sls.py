"""Simple Log Service envelopes: an exported log around an event, and GetLogs rows.

* An SLS log of an ActionTrail logstore carries the event as a JSON string in
  ``event``, with ``__topic__``, ``__time__``, ``__source__``, ``__tag__:*`` (and
  ``owner_id`` in older Log Audit logstores). The envelope fields travel with the
  event (as columns of the same names; unknown ones as ``envelope.<name>``).
* A row of an SLS pull / GetLogs JSON export is ``{"timestamp": <epoch s>,
  "source": ..., "contents": {...the log...}}``; the log is in ``contents`` and
  the row's ``timestamp`` and ``source`` travel with it as ``__time__`` and
  ``__source__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ..schema import AT_ENVELOPE_FIELDS, AT_MARKER_KEYS, KMS_MARKER_KEYS
from .registry import Container, Envelope, _literal_list, register

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor

_MARKERS = _literal_list(list(AT_MARKER_KEYS + KMS_MARKER_KEYS))


class SlsEvent(Envelope):
    """An SLS log whose ``event`` field holds an ActionTrail event (string or object)."""

    name = "sls"
    order = 30
    recognise = (
        "list_contains(ks[1], 'event') AND NOT list_has_any(ks[1], "
        f"{_literal_list(list(AT_MARKER_KEYS))})"
    )
    containers = (Container("$", "", frozenset(("event", *AT_ENVELOPE_FIELDS))),)

    def unwrap(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Unwrap the records (see the class)."""
        extras = ctx.extras(records, keys.column("extra_0"), "actiontrail", prefix="")
        return ctx.unwrap_path(
            records,
            "$.event",
            [(n, f"$.{n}") for n in AT_ENVELOPE_FIELDS],
            "SLS record whose `event` field",
            attach={f"envelope.{name}": values for name, values in extras.items()},
        )


class SlsPullRow(Envelope):
    """A row of an SLS pull / GetLogs export: the log is in ``contents``."""

    name = "sls-pull"
    order = 25
    inspected = ("$.contents",)
    recognise = (
        "list_contains(ks[1], 'contents') AND NOT list_has_any(ks[1], "
        f"{_MARKERS}) AND json_type(json, '$.contents') IN ('OBJECT', 'VARCHAR')"
    )
    inner = "$.contents"
    carried = (("__time__", "$.timestamp"), ("__source__", "$.source"))
    described = "SLS pull row whose `contents` field"


register(SlsEvent())
register(SlsPullRow())
