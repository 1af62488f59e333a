"""Column names, field lists and dtypes of every frame: the single source of truth.

The loaders, the normalisers, the tests and the documentation all read these
lists, so a field is added in one place.

Examples
--------
>>> from kmsforensics import schema
>>> "access_key_id" in schema.KMS_FIELDS
True
>>> schema.ACTIVITY_COLUMNS[:3]
('time', 'source', 'account_id')
"""

from __future__ import annotations

# --- KMS instance access log (logstore kms_audit_log) -------------------------

#: Documented V1.0 fields, in the order of the vendor's field page.
KMS_V1_FIELDS: tuple[str, ...] = (
    "access_key_fingerprint",
    "access_key_id",
    "account_id",
    "api_name",
    "api_version",
    "client_ip",
    "duration",
    "error_message",
    "identity_type",
    "instance_id",
    "level",
    "principal_id",
    "region_id",
    "request_id",
    "resource_id",
    "resource_parameters",
    "share_gateway_api_name",
    "status_code",
    "time",
    "user_id",
    "useragent",
    "version",
)
#: Fields of the newer gateway-aware variant (the vendor list may be incomplete).
KMS_GATEWAY_FIELDS: tuple[str, ...] = (
    "cmkid",
    "data_key_spec",
    "domain_type",
    "error_code",
    "gateway_type",
    "key_spec",
    "key_state",
    "key_version_id",
)
#: System fields that Simple Log Service adds to every exported log.
SLS_SYSTEM_FIELDS: tuple[str, ...] = ("__time__", "__topic__", "__source__")
KMS_FIELDS: tuple[str, ...] = KMS_V1_FIELDS + KMS_GATEWAY_FIELDS + SLS_SYSTEM_FIELDS

#: Keys whose presence marks a record as a KMS access log record.
#: Keys of the saved KMS AAP API responses the loader keeps as configuration exports
#: (DescribeApplicationAccessPoint, DescribePolicy, DescribeNetworkRule, ListClientKeys,
#: ListPolicies; ``body``: an SDK-wrapped response). See kmsforensics.aap and docs/aap.md.
AAP_CONFIG_MARKERS: tuple[str, ...] = (
    "AuthenticationMethod",
    "Policies",
    "Permissions",
    "AccessControlRules",
    "SourcePrivateIp",
    "ClientKeys",
    "body",
)

KMS_MARKER_KEYS: tuple[str, ...] = (
    "api_name",
    "instance_id",
    "access_key_fingerprint",
    "share_gateway_api_name",
    "resource_parameters",
    "api_version",
    "identity_type",
    "gateway_type",
    "cmkid",
)

# --- ActionTrail event --------------------------------------------------------

#: Top-level scalar fields of an ActionTrail event.
AT_SCALAR_FIELDS: tuple[str, ...] = (
    "eventId",
    "eventVersion",
    "eventName",
    "eventType",
    "eventCategory",
    "eventRW",
    "eventSource",
    "eventTime",
    "acsRegion",
    "serviceName",
    "apiVersion",
    "requestId",
    "errorCode",
    "errorMessage",
    "sourceIpAddress",
    "userAgent",
    "isGlobal",
    "recipientAccountId",
    "vpcId",
    "resourceName",
    "resourceType",
    "sharedEventAccountId",
    "requestParameterJson",
)
#: ``userIdentity`` sub-fields, flattened with dotted names in the frame.
AT_IDENTITY_FIELDS: tuple[str, ...] = (
    "type",
    "accountId",
    "principalId",
    "userName",
    "accessKeyId",
    "sessionContext.attributes.mfaAuthenticated",
    "sessionContext.attributes.creationDate",
)
#: Nested objects kept whole (as dicts in ``case.actiontrail``).
AT_NESTED_FIELDS: tuple[str, ...] = (
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "referencedResources",
    "eventAttributes",
    "insightDetails",
    "serviceEventData",
)
#: Columns kept as plain text, never categorical: ids and raw JSON (nearly unique).
TEXT_COLUMNS: frozenset[str] = frozenset(
    ("request_id", "event_id", "eventId", "requestId", "requestParameterJson", *AT_NESTED_FIELDS)
)
#: Misspelling of ``additionalEventData`` found on the SLS field page.
AT_MISSPELLED_NESTED: dict[str, str] = {"addionalEventData": "additionalEventData"}
#: SLS envelope fields around an ActionTrail ``event`` string.
AT_ENVELOPE_FIELDS: tuple[str, ...] = ("__topic__", "__time__", "__source__", "owner_id")
#: Request parameters lifted into columns of their own.
AT_REQUEST_PARAMETERS: tuple[str, ...] = (
    "RoleArn",
    "RoleSessionName",
    "DurationSeconds",
    "stsTokenPlayerUid",
    "stsTokenPrincipalName",
    "KeyId",
    "SecretName",
    "KmsInstanceId",
    "InstanceId",
    "AliasName",
    "UserName",
    "AccessKeyId",
    "PolicyName",
    "Name",
    "ProtectedResourceArn",
)
#: Keys whose presence marks a record as an ActionTrail event.
AT_MARKER_KEYS: tuple[str, ...] = (
    "eventId",
    "eventTime",
    "eventName",
    "userIdentity",
    "eventSource",
    "eventType",
)
AT_KNOWN_TOP: frozenset[str] = frozenset(
    AT_SCALAR_FIELDS + AT_NESTED_FIELDS + ("userIdentity",) + tuple(AT_MISSPELLED_NESTED)
)
AT_KNOWN_IDENTITY: frozenset[str] = frozenset(
    ("type", "accountId", "principalId", "userName", "accessKeyId", "sessionContext")
)

# --- unified vocabularies -----------------------------------------------------

#: ActionTrail ``userIdentity.type`` and KMS ``identity_type`` -> unified identity type.
IDENTITY_TYPES: dict[str, str] = {
    # ActionTrail
    "root-account": "account",
    "alibaba-cloud-account": "account",
    "ram-user": "ram-user",
    "assumed-role": "ram-role",
    "system": "system",
    "cloudsso-user": "cloudsso-user",
    # KMS access log
    "cloud-account": "account",
    "ram-role": "ram-role",
    "aap": "aap",
    # STS GetCallerIdentity
    "Account": "account",
    "RAMUser": "ram-user",
    "AssumedRoleUser": "ram-role",
}
UNIFIED_IDENTITY_TYPES: tuple[str, ...] = (
    "account",
    "ram-user",
    "ram-role",
    "aap",
    "system",
    "cloudsso-user",
    "unknown",
)

# --- frames -------------------------------------------------------------------

PROVENANCE_COLUMNS: tuple[str, ...] = ("source_file", "source_record")

ACTIVITY_COLUMNS: tuple[str, ...] = (
    "time",
    "source",
    "account_id",
    "identity_type",
    "principal_id",
    "principal_name",
    "session_name",
    "access_key_id",
    "client_ip",
    "user_agent",
    "service",
    "action",
    "resource_id",
    "region_id",
    "success",
    "error_code",
    "error_message",
    "request_id",
    "event_id",
    "source_file",
    "source_record",
    # additions beyond the contract
    "raw_identity_type",
    "event_type",
    "key_id",
    "secret_name",
    "instance_id",
    "player_account_id",
    "role_arn",
    "issued_access_key_id",
    "mfa",
    # one call, one identity (issue 12): see kmsforensics.normalize.activity
    "call_id",
    "principal_name_source",
    "issued_role_id",
    "issued_role_name",
    "issued_session_name",
)

#: Where ``principal_name`` (and the session, the origin account and the role ARN
#: filled with it) of an activity row came from, most trusted first: the row's own
#: record, the ActionTrail event of the same call, the AssumeRole event that issued
#: the row's STS key, another ActionTrail event made with the same access key, and
#: another ActionTrail event of the same principal id (the name only).
NAME_SOURCES: tuple[str, ...] = (
    "record",
    "actiontrail",
    "assume-role",
    "actiontrail-access-key",
    "actiontrail-principal",
)
#: OpenAPI name (ActionTrail ``eventName``) -> the Instance API name a KMS log may
#: give in ``api_name`` for the same call through the shared gateway (log-formats.md
#: §3.2; only these rows are published). Same names match without an entry.
GATEWAY_API_NAMES: dict[str, str] = {
    "GetSecretValue": "Decrypt",
    "GenerateDataKeyWithoutPlaintext": "GenerateDataKey",
}
#: Two rows with the same request id, one from each log, are one call only when
#: their times are at most this many seconds apart (and their operation, resource
#: and access key agree).
CALL_PAIR_SECONDS: float = 5.0

ISSUES_COLUMNS: tuple[str, ...] = (
    "source_file",
    "source_record",
    "severity",
    "field",
    "reason",
    "excerpt",
)
#: ``record``: not loaded; ``field``: loaded with that field empty or repaired;
#: ``note``: loaded as is, worth a look (for example, an id reused by another event).
ISSUE_SEVERITIES: tuple[str, ...] = ("record", "field", "note")

MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "sha256",
    "bytes",
    "format",
    "records_read",
    "records_loaded",
    "records_rejected",
    "duplicates",
    "status",
    # additions beyond the contract
    "compression",
    "decompressed_bytes",
    "record_unit",
    "reason",
)
#: Manifest columns that hold counts (nullable integers).
MANIFEST_COUNTS: tuple[str, ...] = (
    "bytes",
    "records_read",
    "records_loaded",
    "records_rejected",
    "duplicates",
    "decompressed_bytes",
)

FINDINGS_COLUMNS: tuple[str, ...] = (
    "rule_id",
    "title",
    "severity",
    "technique",
    "first_seen",
    "last_seen",
    "entity",
    "account_id",
    "summary",
    "evidence",
    "event_count",
)
