"""Both sources in one schema, one identity vocabulary, sorted by time.

==================  =====================================  ===============================
activity column     ActionTrail                            KMS access log
==================  =====================================  ===============================
account_id          userIdentity.accountId, else           account_id
                    recipientAccountId
identity_type       userIdentity.type, unified             identity_type, unified (or
                                                           inferred from the key prefix)
principal_id        roleId for roles, else principalId     principal_id (AAP name for aap)
principal_name      roleName for roles, else userName      AAP name for aap
session_name        sessionName                            --
access_key_id       userIdentity.accessKeyId               access_key_id
action              eventName                              share_gateway_api_name, else
                                                           api_name
resource_id         KeyId, SecretName, KmsInstanceId,      resource_id
                    RoleArn, else first resourceName
success             no errorCode and errorMessage empty    2xx status_code (no status: no
                    or "success"                           error_code and no message)
==================  =====================================  ===============================
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..schema import ACTIVITY_COLUMNS, IDENTITY_TYPES, TEXT_COLUMNS
from .values import blank_to_null, compact_table, per_value, text

_NULL = pa.scalar(None, pa.string())


def unify_identity_type(raw: pa.Array, access_key: pa.Array | None = None) -> pa.Array:
    """Map ActionTrail/KMS/STS identity vocabularies to the unified one.

    Unknown or missing values become ``unknown``; for KMS rows without an
    identity type, the access-key prefix tells (``KAAP.`` aap, ``STS.`` ram-role).

    Examples
    --------
    >>> unify_identity_type(pa.array(["assumed-role", "cloud-account", "weird", None])).to_pylist()
    ['ram-role', 'account', 'unknown', 'unknown']
    """
    keys = pa.array(list(IDENTITY_TYPES))
    values = pa.array(list(IDENTITY_TYPES.values()))
    index = pc.index_in(blank_to_null(raw), value_set=keys)
    unified = pc.take(values, index)
    if access_key is not None:
        inferred = pc.if_else(
            pc.fill_null(pc.starts_with(access_key, "KAAP."), False),
            "aap",
            pc.if_else(pc.fill_null(pc.starts_with(access_key, "STS."), False), "ram-role", _NULL),
        )
        unified = pc.coalesce(unified, pc.if_else(pc.is_null(blank_to_null(raw)), inferred, _NULL))
    return pc.fill_null(unified, "unknown")


def build_activity(kms: pa.Table, actiontrail: pa.Table) -> pa.Table:
    """Build the activity table from typed KMS and ActionTrail tables, sorted by time."""
    table, order = combine_activity(
        [activity_from_kms(kms), activity_from_actiontrail(actiontrail)]
    )
    return table.take(order)


def combine_activity(parts: list[pa.Table]) -> tuple[pa.Table, pa.Array]:
    """Concatenate activity parts and encode categoricals once.

    Returns the table and the order that sorts it by time (stable), to apply to the
    pandas frame, where reordering categorical codes is cheaper than taking every
    Arrow column.
    """
    parts = [p for p in parts if p.num_rows] or parts[:1]
    table = compact_table(pa.concat_tables(parts), TEXT_COLUMNS, every=True)
    table = table.unify_dictionaries().combine_chunks()
    return table, pc.sort_indices(table, sort_keys=[("time", "ascending")])


def activity_from_kms(kms: pa.Table) -> pa.Table:
    """Map typed KMS access-log rows to activity rows (same order)."""
    return _from_kms(kms)


def activity_from_actiontrail(actiontrail: pa.Table) -> pa.Table:
    """Map typed ActionTrail rows to activity rows (same order)."""
    return _from_actiontrail(actiontrail)


def _from_kms(kms: pa.Table) -> pa.Table:
    def col(name: str) -> pa.Array:
        return blank_to_null(kms.column(name).combine_chunks())

    n = kms.num_rows
    raw_type = col("identity_type")
    access_key = col("access_key_id")
    unified = unify_identity_type(text(raw_type), text(access_key))
    principal = col("principal_id")
    status = kms.column("status_code").combine_chunks()
    no_error = pc.and_(pc.is_null(col("error_code")), pc.is_null(col("error_message")))
    success = pc.if_else(
        pc.is_valid(status), pc.and_(pc.greater_equal(status, 200), pc.less(status, 300)), no_error
    )
    columns = {
        "time": kms.column("time").combine_chunks(),
        "source": pa.array(["kms"] * n, pa.string()),
        "account_id": col("account_id"),
        "identity_type": unified,
        "principal_id": principal,
        "principal_name": pc.if_else(pc.equal(unified, "aap"), text(principal), _NULL),
        "session_name": pa.nulls(n, pa.string()),
        "access_key_id": access_key,
        "client_ip": col("client_ip"),
        "user_agent": col("useragent"),
        "service": pa.array(["kms"] * n, pa.string()),
        "action": pc.coalesce(text(col("share_gateway_api_name")), text(col("api_name"))),
        "resource_id": col("resource_id"),
        "region_id": col("region_id"),
        "success": success,
        "error_code": col("error_code"),
        "error_message": col("error_message"),
        "request_id": col("request_id"),
        "event_id": pa.nulls(n, pa.string()),
        "source_file": kms.column("source_file").combine_chunks(),
        "source_record": kms.column("source_record").combine_chunks(),
        "raw_identity_type": raw_type,
        "event_type": pa.nulls(n, pa.string()),
        "key_id": kms.column("key_id").combine_chunks(),
        "secret_name": kms.column("secret_name").combine_chunks(),
        "instance_id": col("instance_id"),
        "player_account_id": pa.nulls(n, pa.string()),
        "role_arn": pa.nulls(n, pa.string()),
        "issued_access_key_id": pa.nulls(n, pa.string()),
        "mfa": pa.nulls(n, pa.bool_()),
    }
    return _table(columns)


def _from_actiontrail(at: pa.Table) -> pa.Table:
    def col(name: str) -> pa.Array:
        return blank_to_null(at.column(name).combine_chunks())

    def txt(name: str) -> pa.Array:
        return text(col(name))

    n = at.num_rows
    raw_type = col("userIdentity.type")
    unified = unify_identity_type(text(raw_type))
    is_role = pc.is_valid(col("roleId"))
    success = pc.and_(
        pc.is_null(col("errorCode")),
        pc.fill_null(per_value(txt("errorMessage"), _is_success), True),
    )
    service = per_value(txt("serviceName"), pc.utf8_lower)
    is_kms = pc.fill_null(pc.equal(service, "kms"), False)
    instance = pc.coalesce(
        txt("requestParameters.KmsInstanceId"),
        pc.if_else(is_kms, txt("requestParameters.InstanceId"), _NULL),
    )
    first_resource = per_value(txt("resourceName"), _first_name)
    mfa = pc.coalesce(
        at.column("userIdentity.sessionContext.attributes.mfaAuthenticated").combine_chunks(),
        at.column("mfaChecked").combine_chunks(),
    )
    columns = {
        "time": at.column("eventTime").combine_chunks(),
        "source": pa.array(["actiontrail"] * n, pa.string()),
        "account_id": col("accountId"),
        "identity_type": unified,
        "principal_id": pc.if_else(is_role, txt("roleId"), txt("userIdentity.principalId")),
        "principal_name": pc.if_else(is_role, txt("roleName"), txt("userIdentity.userName")),
        "session_name": col("sessionName"),
        "access_key_id": col("userIdentity.accessKeyId"),
        "client_ip": col("sourceIpAddress"),
        "user_agent": col("userAgent"),
        "service": service,
        "action": col("eventName"),
        "resource_id": pc.coalesce(
            txt("keyId"),
            txt("secretName"),
            instance,
            txt("requestParameters.RoleArn"),
            blank_to_null(first_resource),
        ),
        "region_id": col("acsRegion"),
        "success": success,
        "error_code": col("errorCode"),
        "error_message": col("errorMessage"),
        "request_id": col("requestId"),
        "event_id": col("eventId"),
        "source_file": at.column("source_file").combine_chunks(),
        "source_record": at.column("source_record").combine_chunks(),
        "raw_identity_type": raw_type,
        "event_type": col("eventType"),
        "key_id": col("keyId"),
        "secret_name": col("secretName"),
        "instance_id": instance,
        "player_account_id": col("stsTokenPlayerUid"),
        "role_arn": col("requestParameters.RoleArn"),
        "issued_access_key_id": col("issuedAccessKeyId"),
        "mfa": mfa,
    }
    return _table(columns)


def _is_success(messages: pa.Array) -> pa.Array:
    return pc.equal(pc.utf8_lower(messages), "success")


def _first_name(names: pa.Array) -> pa.Array:
    """First name of a flattened ``resourceName`` (``,`` and ``;`` separate names)."""
    parts = pc.split_pattern_regex(pc.fill_null(names, ""), "[;,]")
    return pc.list_element(parts, 0)


def _table(columns: dict[str, pa.Array]) -> pa.Table:
    assert tuple(columns) == ACTIVITY_COLUMNS, "activity columns out of step with the schema"
    arrays = [v.cast(pa.string()) if pa.types.is_null(v.type) else v for v in columns.values()]
    return pa.Table.from_arrays(arrays, names=list(columns))
