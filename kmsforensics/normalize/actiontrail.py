"""ActionTrail events: typed, identities parsed, role sessions and STS keys linked.

For an ``assumed-role`` identity, ``principalId`` is ``<roleId>:<sessionName>``
and ``userName`` is ``<roleName>:<sessionName>``; they become ``roleId``,
``roleName`` and ``sessionName``. An ``AssumeRole*`` event names its target role
in ``requestParameters.RoleArn`` (``acs:ram::<owner>:role/<name>``) and the STS
key it issued in ``responseElements`` (any key case) or ``referencedResources``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..issues import IssueLog
from ..schema import AT_NESTED_FIELDS, AT_SCALAR_FIELDS
from .common import note_zoneless, reject_rows, report_bad_values, set_column
from .values import blank_to_null, parse_flags, parse_times, text, zoneless

_ROLE_ARN = r"^acs:ram::(?P<account>[^:]*):role/(?P<name>[^/]+)"
MFA_AUTHENTICATED = "userIdentity.sessionContext.attributes.mfaAuthenticated"
CREATION_DATE = "userIdentity.sessionContext.attributes.creationDate"
_NULL = pa.scalar(None, pa.string())
#: Stands for a missing value while grouping (joins never match nulls).
_MISSING = "\x00"


def normalize_actiontrail(
    raw: pa.Table, issues: IssueLog, assume_timezone: str | None = None
) -> pa.Table:
    """Type a raw ActionTrail table and add the derived identity columns.

    Events without a usable ``eventTime`` (nor an SLS ``__time__``, nor an
    export's ingestion time, reported) are rejected and reported; unreadable flags
    and dates are left empty and reported. Times without a zone are read in
    ``assume_timezone`` (default UTC), with a note per file.
    """
    table = _with_time(raw, issues, assume_timezone)
    for name in ("isGlobal", MFA_AUTHENTICATED):
        flags, bad = parse_flags(table.column(name).combine_chunks())
        report_bad_values(table, bad, name, f"{name} is not true/false; left empty", issues)
        table = set_column(table, name, flags)
    created, bad = parse_times(table.column(CREATION_DATE).combine_chunks())
    report_bad_values(table, bad, CREATION_DATE, "creationDate is not a time; left empty", issues)
    table = set_column(table, CREATION_DATE, created)
    checked = pc.coalesce(
        table.column("additionalEventData.mfaChecked").combine_chunks(),
        table.column("additionalEventData.isMFAChecked").combine_chunks(),
    )
    mfa_checked, bad = parse_flags(checked)
    table = set_column(table, "mfaChecked", mfa_checked)
    report_bad_values(table, bad, "mfaChecked", "mfaChecked is not true/false; left empty", issues)
    table = table.drop_columns(
        ["additionalEventData.mfaChecked", "additionalEventData.isMFAChecked"]
    )
    for name, values in derive_identity(table).items():
        table = set_column(table, name, values)
    return _ordered(table)


def _with_time(raw: pa.Table, issues: IssueLog, assume_timezone: str | None) -> pa.Table:
    event_time = raw.column("eventTime").combine_chunks()
    times, bad = parse_times(event_time, assume_timezone)
    note_zoneless(raw, zoneless(event_time), "eventTime", issues, assume_timezone)
    sls_times, _ = parse_times(raw.column("__time__").combine_chunks())
    use_sls = pc.and_(pc.is_null(times), pc.is_valid(sls_times))
    report_bad_values(
        raw,
        pc.and_(use_sls, bad),
        "eventTime",
        "eventTime is not a timestamp; the SLS __time__ is used instead",
        issues,
    )
    times = pc.coalesce(times, sls_times)
    if "ingestion_time" in raw.column_names:
        ingested = parse_ingestion_times(raw.column("ingestion_time").combine_chunks())
        use = pc.fill_null(pc.and_(pc.is_null(times), pc.is_valid(ingested)), False)
        report_bad_values(
            raw,
            use,
            "ingestion_time",
            "the event has no eventTime: its time is the export's ingestion time "
            "(TimeGenerated), which is later than the event",
            issues,
        )
        times = pc.coalesce(times, ingested)
    table = set_column(raw, "_time", times)
    reason = "no usable time: eventTime is missing or not a timestamp"
    table = reject_rows(table, pc.is_null(table.column("_time")), reason, issues, "eventTime")
    table = set_column(table, "eventTime", table.column("_time").combine_chunks())
    return table.drop_columns(["_time"])


#: Ingestion-time spellings of Log Analytics exports besides ISO-8601 (US locale, UTC).
_US_FORMATS = ("%m/%d/%Y, %I:%M:%S.%f %p", "%m/%d/%Y, %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p")


def parse_ingestion_times(values: pa.Array) -> pa.Array:
    """Parse an export's ingestion time: ISO-8601, epoch, or US-locale text (UTC).

    Examples
    --------
    >>> [str(t) for t in parse_ingestion_times(
    ...     pa.array(["12/1/2020, 11:54:59.366 AM", "2020-12-01T11:54:59Z"])).to_pylist()]
    ['2020-12-01 11:54:59.366000+00:00', '2020-12-01 11:54:59+00:00']
    """
    import pandas as pd

    times, bad = parse_times(values)
    if not pc.any(bad).as_py():
        return times
    index = pc.indices_nonzero(bad)
    text = values.take(index).to_pandas()
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    for form in _US_FORMATS:
        todo = parsed.isna()
        if not todo.any():
            break
        found = pd.to_datetime(text[todo], format=form, errors="coerce", utc=True)
        parsed[todo] = found.astype("datetime64[ns, UTC]")
    found_ns = pa.array(parsed.astype("datetime64[ns, UTC]"), pa.timestamp("ns", tz="UTC"))
    rows = pc.fill_null(pc.cast(times, pa.int64()), 0).to_numpy(zero_copy_only=False).copy()
    valid = pc.is_valid(times).to_numpy(zero_copy_only=False).copy()
    positions = index.to_numpy()
    rows[positions] = pc.fill_null(pc.cast(found_ns, pa.int64()), 0).to_numpy(zero_copy_only=False)
    valid[positions] = pc.is_valid(found_ns).to_numpy(zero_copy_only=False)
    return pa.array(rows, mask=~valid).cast(times.type)


def derive_identity(table: pa.Table) -> dict[str, pa.Array]:
    """Derive role, session, account and target-role columns from identity fields.

    Row by row, in Arrow compute (a few regular expressions): in the wild nearly
    every event has its own STS key and session, so grouping the rows by their
    identity values first would cost more than it saves.
    """
    encoded = pa.table(
        {
            name: pc.fill_null(text(table.column(name).combine_chunks()), _MISSING)
            for name in (
                "userIdentity.type",
                "userIdentity.principalId",
                "userIdentity.userName",
                "userIdentity.accessKeyId",
                "requestParameters.stsTokenPrincipalName",
            )
        }
    )
    out = _identity_columns(encoded)
    out.update(_request_columns(table))
    return out


def _identity_columns(table: pa.Table) -> dict[str, pa.Array]:
    def col(name: str) -> pa.Array:
        values = table.column(name).combine_chunks()
        return blank_to_null(pc.if_else(pc.equal(values, _MISSING), _NULL, values))

    kind = col("userIdentity.type")
    principal = col("userIdentity.principalId")
    user = col("userIdentity.userName")
    key = col("userIdentity.accessKeyId")
    sts_name = col("requestParameters.stsTokenPrincipalName")
    is_role = pc.fill_null(
        pc.or_(
            pc.equal(kind, "assumed-role"), pc.and_(pc.is_null(kind), pc.starts_with(key, "STS."))
        ),
        False,
    )
    principal_parts = _split2(principal, ":")
    user_parts = _split2(user, ":")
    sts_parts = _split2(pc.replace_substring(sts_name, "/", ":", max_replacements=1), ":")
    return {
        "roleId": pc.if_else(is_role, principal_parts[0], _NULL),
        "roleName": pc.if_else(is_role, pc.coalesce(user_parts[0], sts_parts[0]), _NULL),
        "sessionName": pc.if_else(
            is_role,
            pc.coalesce(principal_parts[1], user_parts[1], sts_parts[1]),
            _NULL,
        ),
    }


def _request_columns(table: pa.Table) -> dict[str, pa.Array]:
    def col(name: str) -> pa.Array:
        return blank_to_null(table.column(name).combine_chunks())

    arn = pc.extract_regex(col("requestParameters.RoleArn"), _ROLE_ARN)
    assumed = _split2(col("assumedRoleId"), ":")
    return {
        "accountId": pc.coalesce(col("userIdentity.accountId"), col("recipientAccountId")),
        "stsTokenPlayerUid": col("requestParameters.stsTokenPlayerUid"),
        "targetRoleAccountId": blank_to_null(pc.struct_field(arn, "account")),
        "targetRoleName": pc.struct_field(arn, "name"),
        "targetRoleId": assumed[0],
        "targetSessionName": pc.coalesce(assumed[1], col("requestParameters.RoleSessionName")),
        "issuedAccessKeyId": pc.coalesce(
            col("issuedAccessKeyId"),
            _first_sts_key(col("referencedAccessKeyIds"), table.column("eventName")),
        ),
        "keyId": col("requestParameters.KeyId"),
        "secretName": col("requestParameters.SecretName"),
    }


def _first_sts_key(referenced: pa.Array, names: pa.ChunkedArray) -> pa.Array:
    """Return the STS key that referencedResources names for an AssumeRole* event."""
    first = _split2(referenced, ",")[0]
    assume = pc.fill_null(pc.starts_with(names.combine_chunks(), "AssumeRole"), False)
    return pc.if_else(
        pc.and_(assume, pc.fill_null(pc.starts_with(first, "STS."), False)), first, _NULL
    )


def _split2(values: pa.Array, separator: str) -> tuple[pa.Array, pa.Array]:
    """Split each value at the first ``separator``: (before, after); blanks become null.

    Examples
    --------
    >>> head, tail = _split2(pa.array(["role:sess:x", "solo", None]), ":")
    >>> head.to_pylist(), tail.to_pylist()
    (['role', 'solo', None], ['sess:x', None, None])
    """
    pattern = f"^(?P<head>[^{separator}]*)(?:{separator}(?P<tail>.*))?$"
    parts = pc.extract_regex(values, pattern)
    return (
        blank_to_null(pc.struct_field(parts, "head")),
        blank_to_null(pc.struct_field(parts, "tail")),
    )


def _ordered(table: pa.Table) -> pa.Table:
    derived = [
        "accountId",
        "roleId",
        "roleName",
        "sessionName",
        "stsTokenPlayerUid",
        "targetRoleAccountId",
        "targetRoleName",
        "targetRoleId",
        "targetSessionName",
        "issuedAccessKeyId",
        "keyId",
        "secretName",
        "mfaChecked",
    ]
    identity = [c for c in table.column_names if c.startswith("userIdentity.")]
    first = [
        "eventTime",
        *(f for f in AT_SCALAR_FIELDS if f != "eventTime"),
        *identity,
        *AT_NESTED_FIELDS,
        *derived,
    ]
    last = ["source_file", "source_record", "source_item"]
    middle = [c for c in table.column_names if c not in first and c not in last]
    return table.select([*first, *middle, *last])
