"""Small pieces several rules share: single-event selection and short summaries."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..context import Context, per_value
from ..findings import bursts, label

#: Catalogue sets of ActionTrail operations, shared by the rules and the correlations.
KEY_DESTRUCTION = ("ScheduleKeyDeletion", "DeleteKeyMaterial")
KEY_POLICY = ("SetKeyPolicy", "SetSecretPolicy")
AAP_CHANGES = (
    "CreateApplicationAccessPoint",
    "UpdateApplicationAccessPoint",
    "DeleteApplicationAccessPoint",
    "CreateClientKey",
    "DeleteClientKey",
    "CreatePolicy",
    "UpdatePolicy",
    "DeletePolicy",
    "CreateNetworkRule",
    "UpdateNetworkRule",
    "DeleteNetworkRule",
    "UpdateKmsInstanceBindVpc",
)
SECRET_TAMPERING = (
    "DeleteSecret",
    "PutSecretValue",
    "UpdateSecretVersionStage",
    "UpdateSecret",
    "RotateSecret",
    "UpdateSecretRotationPolicy",
    "RestoreSecret",
)
RAM_CHANGES = (
    "CreateAccessKey",
    "UpdateAccessKey",
    "CreateUser",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AddUserToGroup",
    "AttachPolicyToUser",
    "AttachPolicyToRole",
    "AttachPolicyToGroup",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "CreateRole",
    "UpdateRole",
    "UnbindMFADevice",
)
#: ActionTrail services of identity changes: RAM, and IMS (users and AccessKeys).
IDENTITY_SERVICES = ("ram", "ims")
TRAIL_TAMPERING = ("StopLogging", "DeleteTrail", "UpdateTrail", "DeleteInnerTrail")
SINK_TAMPERING = ("DeleteLogStore", "UpdateLogStore", "DeleteProject")
SECRET_READS = ("GetSecretValue",)
DATA_KEY_OPS = (
    "Decrypt",
    "AdvanceDecrypt",
    "GenerateDataKey",
    "AdvanceGenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "AdvanceGenerateDataKeyPair",
    "AdvanceGenerateDataKeyPairWithoutPlaintext",
)
DATA_PLANE = (*SECRET_READS, *DATA_KEY_OPS, "Encrypt", "AdvanceEncrypt", "Sign", "Verify")


def from_actiontrail(ctx: Context) -> pd.Series:
    """True for ActionTrail rows."""
    return ctx.is_actiontrail.copy()


def from_kms_log(ctx: Context) -> pd.Series:
    """True for KMS instance access-log rows."""
    return ctx.is_kms.copy()


def single_events(
    ctx: Context,
    mask: pd.Series,
    entity: pd.Series | str,
    summary: Any,
    gap: str = "1h",
    **extra: Any,
) -> pd.DataFrame:
    """Label matching rows: one incident per entity and actor, events within ``gap``."""
    rows = ctx.rows(mask)
    if not len(rows):
        return rows
    entities = rows[entity] if isinstance(entity, str) else entity.loc[rows.index]
    entities = entities.astype(object).where(entities.notna(), rows["who"])
    groups = entities.astype(str) + "|" + rows["who"].astype(str)
    incident = bursts(rows["time"], groups, pd.Timedelta(gap))
    return label(rows, incident, entities, summary, actor=rows["actor"], **extra)


_ROLE_ARN = re.compile(r"acs:ram::(\d+):role/")


def role_owner(role_arn: pd.Series) -> pd.Series:
    """Return the account that owns each role ARN (``acs:ram::<uid>:role/...``), NaN otherwise."""
    return per_value(role_arn, _owner_of)


def _owner_of(arn: Any) -> Any:
    match = _ROLE_ARN.match(str(arn))
    return match.group(1) if match else np.nan


def node(prefix: str, values: pd.Series) -> pd.Series:
    """``prefix:value`` where a value is present, else NaN."""
    return per_value(values, lambda v: f"{prefix}{v}" if isinstance(v, str) and v else np.nan)


def names(values: pd.Series, most: int = 5) -> str:
    """The distinct values, joined (at most ``most``, then how many more)."""
    distinct = [str(v) for v in dict.fromkeys(values.dropna())]
    shown = ", ".join(distinct[:most])
    return shown + (f" and {len(distinct) - most} more" if len(distinct) > most else "")


def who_from(rows: pd.DataFrame) -> str:
    """Describe the identity (by name where the logs give one) and addresses of rows."""
    named = rows["principal_name"].astype(object)
    session = rows["session_name"].astype(object)
    label = named.where(session.isna(), named.astype(str) + "/" + session.astype(str))
    actor = names(label, 2) or names(rows["actor"], 2) or names(rows["who"], 2)
    ips = names(rows["client_ip"], 3)
    return (actor or "an unknown identity") + (f" from {ips}" if ips else "")
