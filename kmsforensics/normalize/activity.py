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
resource_id         KeyId, SecretName,                     resource_id
                    ProtectedResourceArn, KmsInstanceId,
                    RoleArn, else first resourceName
success             no errorCode and errorMessage empty    2xx status_code (no status: no
                    or "success"                           error_code and no message)
==================  =====================================  ===============================

A key or secret named by its ARN (``acs:kms:<region>:<account>:key/<id>``,
``acs:kms:...:secret/<name>``, in ``KeyId``, ``SecretName``, ``ProtectedResourceArn``
or a KMS ``resource_id``) fills ``resource_id`` and ``key_id`` / ``secret_name`` with
the id or name (:func:`kms_arn`); the raw value stays in ``case.kms`` /
``case.actiontrail``.

:func:`combine_activity` then fuses the two logs (:mod:`.fusion`): the two rows of one
shared-gateway call share a ``call_id``, and rows that carry only a principal id get
``principal_name`` (and session, origin account) from the other log, with
``principal_name_source`` saying where from.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..schema import ACTIVITY_COLUMNS, IDENTITY_TYPES, TEXT_COLUMNS
from .fusion import fuse
from .values import blank_to_null, combine_encoded, encode_batch, per_value, text

_NULL = pa.scalar(None, pa.string())
_KMS_ARN = r"^acs:kms:[^:]*:[^:]*:(?P<kind>key|secret)/(?P<name>.+)$"


def kms_arn(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Split KMS key and secret ARNs into (kind, id or name); other values give nulls.

    Examples
    --------
    >>> kind, name = kms_arn(pa.array(["acs:kms:cn-hangzhou:1234:key/key-hzz1",
    ...                                "acs:kms:cn-hangzhou:1234:secret/prod/db",
    ...                                "key-hzz2", None]))
    >>> kind.to_pylist(), name.to_pylist()
    (['key', 'secret', None, None], ['key-hzz1', 'prod/db', None, None])
    """

    def split(distinct: pa.Array) -> pa.Array:
        parts = pc.extract_regex(distinct, _KMS_ARN)
        return pa.StructArray.from_arrays(
            [pc.struct_field(parts, "kind"), pc.struct_field(parts, "name")], ["kind", "name"]
        )

    values = text(values)
    if pa.types.is_null(values.type):
        values = values.cast(pa.string())
    parts = per_value(values, split)
    return pc.struct_field(parts, "kind"), pc.struct_field(parts, "name")


def resolve_arns(
    key_id: pa.Array, secret_name: pa.Array, *more: pa.Array
) -> tuple[pa.Array, pa.Array]:
    """Return (key_id, secret_name) with ARNs replaced by ids; ``more`` fills the gaps.

    A key ARN found where a secret is expected (or the reverse) moves to its column.

    Examples
    --------
    >>> key, secret = resolve_arns(pa.array([None, "key-1"]), pa.array([None, None]),
    ...                            pa.array(["acs:kms:cn-hangzhou:1:key/key-9", None]))
    >>> key.to_pylist(), secret.to_pylist()
    (['key-9', 'key-1'], [None, None])
    """
    keys, secrets = [], []
    for position, raw in enumerate((key_id, secret_name, *more)):
        values = text(raw).cast(pa.string())
        kind, name = kms_arn(values)
        keys.append(pc.if_else(pc.equal(kind, "key"), name, _NULL))
        secrets.append(pc.if_else(pc.equal(kind, "secret"), name, _NULL))
        plain = pc.if_else(pc.is_null(kind), values, _NULL)
        if position == 0:
            keys.insert(0, plain)
        elif position == 1:
            secrets.insert(0, plain)
    return pc.coalesce(*keys), pc.coalesce(*secrets)


def _resource(values: pa.Array) -> pa.Array:
    """Return a resource id with a KMS key or secret ARN replaced by its id or name."""
    values = text(values).cast(pa.string())
    kind, name = kms_arn(values)
    return pc.if_else(pc.is_null(kind), values, name)


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
    """Concatenate activity parts, encode categoricals once and fuse the two logs.

    Fusing (:func:`.fusion.fuse`) links the rows of one call (``call_id``) and names
    identities from the other log; it needs both logs' rows, so it runs here.

    Returns the table and the order that sorts it by time (stable), to apply to the
    pandas frame, where reordering categorical codes is cheaper than taking every
    Arrow column.
    """
    table = combine_encoded([encode_batch(p, TEXT_COLUMNS) for p in parts])
    if table is None:
        table = encode_batch(parts[0], TEXT_COLUMNS)
    table = fuse(table)
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
    principal_name = pc.if_else(pc.equal(unified, "aap"), text(principal), _NULL)
    key_id, secret_name = resolve_arns(
        blank_to_null(kms.column("key_id").combine_chunks()),
        blank_to_null(kms.column("secret_name").combine_chunks()),
    )
    columns = {
        "time": kms.column("time").combine_chunks(),
        "source": pa.array(["kms"] * n, pa.string()),
        "account_id": col("account_id"),
        "identity_type": unified,
        "principal_id": principal,
        "principal_name": principal_name,
        "session_name": pa.nulls(n, pa.string()),
        "access_key_id": access_key,
        "client_ip": col("client_ip"),
        "user_agent": col("useragent"),
        "service": pa.array(["kms"] * n, pa.string()),
        "action": pc.coalesce(text(col("share_gateway_api_name")), text(col("api_name"))),
        "resource_id": _resource(col("resource_id")),
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
        "key_id": key_id,
        "secret_name": secret_name,
        "instance_id": col("instance_id"),
        "player_account_id": pa.nulls(n, pa.string()),
        "role_arn": pa.nulls(n, pa.string()),
        "issued_access_key_id": pa.nulls(n, pa.string()),
        "mfa": pa.nulls(n, pa.bool_()),
        **_fusion_columns(principal_name, n),
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
    key_id, secret_name = resolve_arns(
        col("keyId"), col("secretName"), _optional(at, "requestParameters.ProtectedResourceArn")
    )
    principal_name = pc.if_else(is_role, txt("roleName"), txt("userIdentity.userName"))
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
        "principal_name": principal_name,
        "session_name": col("sessionName"),
        "access_key_id": col("userIdentity.accessKeyId"),
        "client_ip": col("sourceIpAddress"),
        "user_agent": col("userAgent"),
        "service": service,
        "action": col("eventName"),
        "resource_id": pc.coalesce(
            text(key_id),
            text(secret_name),
            instance,
            txt("requestParameters.RoleArn"),
            _resource(blank_to_null(first_resource)),
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
        "key_id": key_id,
        "secret_name": secret_name,
        "instance_id": instance,
        "player_account_id": col("stsTokenPlayerUid"),
        "role_arn": col("requestParameters.RoleArn"),
        "issued_access_key_id": col("issuedAccessKeyId"),
        "mfa": mfa,
        **_fusion_columns(principal_name, n),
        "issued_role_id": _optional(at, "targetRoleId"),
        "issued_role_name": _optional(at, "targetRoleName"),
        "issued_session_name": _optional(at, "targetSessionName"),
    }
    return _table(columns)


def _fusion_columns(principal_name: pa.Array, n: int) -> dict[str, pa.Array]:
    """Return the fused columns of a part: ``call_id`` is set by :func:`combine_activity`."""
    named = pc.is_valid(blank_to_null(principal_name))
    columns = {
        "call_id": pa.nulls(n, pa.int64()),
        "principal_name_source": pc.if_else(named, "record", _NULL),
    }
    for name in ("issued_role_id", "issued_role_name", "issued_session_name"):
        columns[name] = pa.nulls(n, pa.string())
    return columns


def _optional(table: pa.Table, name: str) -> pa.Array:
    """Return a text column of the typed table, or nulls where this load has none."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return blank_to_null(text(table.column(name).combine_chunks()))


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
