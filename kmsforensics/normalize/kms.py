"""KMS instance access-log records: typed, with resource parameters parsed.

Empty strings are kept as they are in the documented fields, because they mean
something (an empty ``account_id`` and ``principal_id`` mean "AAP not found").
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..issues import IssueLog
from ..schema import KMS_GATEWAY_FIELDS, KMS_V1_FIELDS, SLS_SYSTEM_FIELDS
from .common import note_zoneless, reject_rows, report_bad_values, set_column
from .values import blank_to_null, parse_numbers, parse_times, zoneless

#: Instance API operations whose ``resource_id`` is a secret name, not a key.
SECRET_OPERATIONS = ("GetSecretValue",)


def normalize_kms(raw: pa.Table, issues: IssueLog, assume_timezone: str | None = None) -> pa.Table:
    """Type a raw KMS table (text columns from :mod:`kmsforensics.sources.kms`).

    Records without a usable ``time`` (nor an SLS ``__time__``) are rejected and
    reported; unreadable ``status_code`` and ``duration`` values are left empty and
    reported. Times without a zone are read in ``assume_timezone`` (default UTC),
    with a note per file.
    """
    table = raw
    times, bad_time = parse_times(table.column("time"), assume_timezone)
    note_zoneless(table, zoneless(table.column("time")), "time", issues, assume_timezone)
    if "__time__" in table.column_names:
        sls_times, _ = parse_times(table.column("__time__"))
        use_sls = pc.and_(pc.is_null(times), pc.is_valid(sls_times))
        report_bad_values(
            table,
            pc.and_(use_sls, bad_time),
            "time",
            "time is not a timestamp; the SLS __time__ is used instead",
            issues,
        )
        times = pc.coalesce(times, sls_times)
    table = set_column(table, "_time", times)
    reason = "no usable time: `time` is missing or not a timestamp (ISO-8601 or unix seconds)"
    table = reject_rows(table, pc.is_null(table.column("_time")), reason, issues, "time")
    table = set_column(table, "time", table.column("_time").combine_chunks())
    table = table.drop_columns(["_time"])

    for name, target in (("status_code", pa.int16()), ("duration", pa.float64())):
        values, bad = parse_numbers(table.column(name).combine_chunks(), target)
        report_bad_values(table, bad, name, f"{name} is not a number; left empty", issues)
        table = set_column(table, name, values)

    api = pc.coalesce(
        blank_to_null(table.column("share_gateway_api_name").combine_chunks()),
        table.column("api_name").combine_chunks(),
    )
    is_secret = pc.fill_null(pc.is_in(api, pa.array(SECRET_OPERATIONS)), False)
    resource = blank_to_null(table.column("resource_id").combine_chunks())
    key_id = pc.coalesce(
        blank_to_null(table.column("rp_key_id").combine_chunks()),
        blank_to_null(table.column("cmkid").combine_chunks()),
        pc.if_else(is_secret, pa.scalar(None, pa.string()), resource),
    )
    version = pc.coalesce(
        blank_to_null(table.column("key_version_id").combine_chunks()),
        blank_to_null(table.column("rp_key_version_id").combine_chunks()),
    )
    table = set_column(table, "key_id", key_id)
    table = set_column(table, "key_version_id", version)
    table = set_column(
        table, "secret_name", pc.if_else(is_secret, resource, pa.scalar(None, pa.string()))
    )
    table = set_column(
        table, "hsm_index", blank_to_null(table.column("hsm_index").combine_chunks())
    )
    table = table.drop_columns(["rp_key_id", "rp_key_version_id"])
    return _ordered(table)


def _ordered(table: pa.Table) -> pa.Table:
    first = [
        "time",
        *(f for f in KMS_V1_FIELDS if f != "time"),
        *(f for f in KMS_GATEWAY_FIELDS),
        "key_id",
        "secret_name",
        "hsm_index",
        *SLS_SYSTEM_FIELDS,
    ]
    last = ["source_file", "source_record", "source_item"]
    middle = [c for c in table.column_names if c not in first and c not in last]
    return table.select([*first, *middle, *last])
