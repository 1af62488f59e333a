"""Saved KMS AAP API responses (Describe / List): configuration, not log records.

A record with a key of :data:`~kmsforensics.schema.AAP_CONFIG_MARKERS` (and no log
marker) that states some AAP configuration goes to ``case.aap_exports`` as its JSON
text, for :func:`kmsforensics.aap_config`; another API's response is rejected like
any unknown record. It is tried before the SDK envelope, so an SDK dump of such a
response is kept whole (its headers included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ..extract import PROVENANCE, rows
from ..schema import AAP_CONFIG_MARKERS, AT_MARKER_KEYS, KMS_MARKER_KEYS
from .registry import Kind, _literal_list, register

if TYPE_CHECKING:
    from ..extract import Extracted, Extractor

_OWN = [m for m in AAP_CONFIG_MARKERS if m != "body"]


class AapConfigExport(Kind):
    """A saved AAP API response (or an SDK dump of one)."""

    name = "aap-config"
    order = 8
    inspected = ("$.body",)
    recognise = (
        f"NOT list_has_any(ks[1], {_literal_list(list(AT_MARKER_KEYS + KMS_MARKER_KEYS))}) "
        f"AND (list_has_any(ks[1], {_literal_list(_OWN)}) OR (list_contains(ks[1], 'body') "
        f"AND list_has_any(try(json_keys(json, '$.body')), {_literal_list(_OWN)})))"
    )

    def handle(self, ctx: Extractor, records: pa.Table, keys: pa.Table, out: Extracted) -> pa.Table:
        """Keep the records that state AAP configuration; reject the others."""
        from ..aap.exports import is_aap_export

        keep = []
        for row in rows(records):
            ok = is_aap_export(str(row["json"]))
            keep.append(ok)
            if not ok:
                ctx.reject(row, "an API response, but not of the KMS AAP Describe or List APIs")
        out.aap_config.append(
            records.filter(pa.array(keep, pa.bool_())).select([*PROVENANCE, "json"])
        )
        return records.slice(0, 0)


register(AapConfigExport())
