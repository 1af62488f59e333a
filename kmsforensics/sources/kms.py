"""The KMS instance access-log record: recognised, extracted, normalised.

A record is recognised by any of :data:`~kmsforensics.schema.KMS_MARKER_KEYS`
(and no ActionTrail marker, which is tried first). Its documented fields are read
as text in one ``from_json`` pass; ``resource_parameters`` (a JSON string) gives
``key_id``, ``key_version_id`` and the HSM ``index``; unknown keys become columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from ..extract import assemble, rows
from ..issues import IssueLog
from ..normalize.activity import activity_from_kms
from ..normalize.kms import normalize_kms
from ..schema import KMS_FIELDS, KMS_MARKER_KEYS
from .registry import Container, Options, Source, _literal_list, register

if TYPE_CHECKING:
    from ..extract import Extractor

KMS_PATHS: tuple[tuple[str, str], ...] = tuple((name, f"$.{name}") for name in KMS_FIELDS)
RESOURCE_PARAMETER_PATHS: tuple[tuple[str, str], ...] = (
    ("rp_key_id", "$.key_id"),
    ("rp_key_version_id", "$.key_version_id"),
    ("hsm_index", "$.index"),
)


class KmsRecord(Source):
    """A record of the KMS instance access log (logstore ``kms_audit_log``)."""

    name = "kms"
    label = "kms"
    order = 70
    dedupe = ("request_id", "time", "api_name")
    recognise = f"list_has_any(ks[1], {_literal_list(list(KMS_MARKER_KEYS))})"
    containers = (Container("$", "", frozenset(KMS_FIELDS)),)

    def extract(self, ctx: Extractor, records: pa.Table, keys: pa.Table) -> pa.Table:
        """Read the fields of the records as text columns."""
        columns = ctx.extract(records, "json", KMS_PATHS)
        columns.update(ctx.extras(records, keys.column("extra_0"), self.label, prefix=""))
        rp = columns["resource_parameters"]
        parsed = ctx.extract_text(rp, RESOURCE_PARAMETER_PATHS)
        bad = pc.and_(pc.is_valid(rp), pc.and_(pc.is_null(parsed.pop("_ok")), pc.not_equal(rp, "")))
        for row in rows(records.filter(bad)):
            ctx.issue(
                row,
                "field",
                "resource_parameters",
                "resource_parameters is not a JSON object; key_id, key_version_id "
                "and hsm_index left empty",
            )
        columns.update(parsed)
        return assemble(records, columns)

    def normalise(self, raw: pa.Table, issues: IssueLog, options: Options) -> pa.Table:
        """Type the raw columns."""
        return normalize_kms(raw, issues, assume_timezone=options.assume_timezone)

    def raw_columns(self) -> list[str]:
        """Return the names of the raw text columns of a KMS record."""
        return [name for name, _ in KMS_PATHS + RESOURCE_PARAMETER_PATHS]

    def activity(self, typed: pa.Table) -> pa.Table:
        """Return the activity rows of the typed rows."""
        return activity_from_kms(typed)


register(KmsRecord())
