"""API responses: LookupEvents pages, SDK ``to_map()`` dumps, AccessKey usage events.

* A LookupEvents response (or any object with an ``Events`` list) holds events
  as objects; each becomes a record numbered by its index (``source_item``).
* An SDK ``to_map()`` dump wraps the response: ``{"headers": ..., "statusCode":
  200, "body": {...}}``; the record is its ``body``.
* An item of ``GetAccessKeyLastUsedEvents`` holds the event as a JSON string in
  ``Detail``, and the time of use in ``UsedTimestamp`` (epoch milliseconds),
  which stands in for the event's time when the event has none (as ``__time__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from .registry import Envelope, register

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor


class EventsPage(Envelope):
    """A response with an ``Events`` list (LookupEvents, GetAccessKeyLastUsedEvents)."""

    name = "events-page"
    order = 20
    inspected = ("$.Events",)
    recognise = "list_contains(ks[1], 'Events') AND json_type(json, '$.Events') = 'ARRAY'"

    def unwrap(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Unwrap the records (see the class)."""
        return ctx.expand_lists(records, "Events", out)


class SdkResponse(Envelope):
    """An Alibaba Cloud SDK response saved with ``to_map()``: the record is its ``body``."""

    name = "sdk-response"
    order = 10
    inspected = ("$.body",)
    recognise = (
        "list_contains(ks[1], 'body') AND list_has_any(ks[1], ['statusCode', 'headers']) "
        "AND json_type(json, '$.body') IN ('OBJECT', 'VARCHAR')"
    )
    inner = "$.body"
    described = "SDK response whose `body`"


class AccessKeyUsedEvent(Envelope):
    """An item of ``GetAccessKeyLastUsedEvents``: the event is the JSON string ``Detail``."""

    name = "access-key-used"
    order = 32
    recognise = "list_contains(ks[1], 'Detail') AND list_contains(ks[1], 'UsedTimestamp')"
    inner = "$.Detail"
    carried = (("__time__", "$.UsedTimestamp"),)
    described = "AccessKey usage event whose `Detail`"


register(EventsPage())
register(SdkResponse())
register(AccessKeyUsedEvent())
