"""Loose types (log-formats.md §0.2) and identity parsing in normalisation."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    ACCOUNT_DEV,
    ACCOUNT_PROD,
    CI_KEY,
    FIXTURES,
    ROLE_ID,
    STS_KEY,
    USER_ID,
    assume_role_event,
    at_event,
    csv_bytes,
    dumps,
    jsonl,
    kms_record,
    load_case,
    role_session_event,
    write,
)

import kmsforensics as kf


def load(*paths: Path, **kwargs: object) -> kf.Case:
    return load_case(*paths, **kwargs)


def test_vendor_sample_with_unquoted_masked_value_loads_and_says_so(evidence: Path) -> None:
    shutil.copy(FIXTURES / "vendor_lookupevents_assumed_role_cross_account.json", evidence)
    with pytest.warns(kf.ParseWarning, match="1 fields left empty or repaired"):
        case = load(evidence)
    at = case.actiontrail.iloc[0]
    assert at["stsTokenPlayerUid"] == "175498693826****"
    assert at["roleId"] == "34359792600393****" and at["sessionName"] == "u1"
    assert at["roleName"] == "custom-role-for-actiontrail"
    assert at["accountId"] == "159498693826****"
    assert at["sourceIpAddress"] == "192.168.XX.XX"
    assert at["userIdentity.sessionContext.attributes.mfaAuthenticated"] == False  # noqa: E712
    issue = case.issues.iloc[0]
    assert issue["severity"] == "field" and "masked value" in issue["reason"]
    assert case.manifest.records_loaded.item() == 1


def test_event_version_int_or_string_and_uids_stay_strings(evidence: Path) -> None:
    events = [at_event(1, eventVersion=1), at_event(2, eventVersion="1")]
    events[0]["userIdentity"]["accountId"] = int(ACCOUNT_DEV)  # a number in the wild
    write(evidence / "e.jsonl", jsonl(events))
    at = load(evidence).actiontrail
    assert at.eventVersion.tolist() == ["1", "1"]
    assert at["userIdentity.accountId"].tolist() == [ACCOUNT_DEV, ACCOUNT_DEV]
    assert at["userIdentity.principalId"].tolist() == [USER_ID, USER_ID]


def test_numeric_session_name_and_player_uid_as_number_or_string(evidence: Path) -> None:
    a = assume_role_event(1)
    a["requestParameters"]["RoleSessionName"] = 169074
    b = role_session_event(2)
    c = role_session_event(3)
    c["requestParameters"]["stsTokenPlayerUid"] = ACCOUNT_DEV
    write(evidence / "e.jsonl", jsonl([a, b, c]))
    at = load(evidence).actiontrail.set_index("eventId")
    assert at.iloc[0]["requestParameters"]["RoleSessionName"] == 169074
    assert at.iloc[0]["requestParameters.RoleSessionName"] == "169074"
    assert at.iloc[1]["stsTokenPlayerUid"] == at.iloc[2]["stsTokenPlayerUid"] == ACCOUNT_DEV


@pytest.mark.parametrize("capitalised", [False, True])
def test_assume_role_response_in_either_key_case(evidence: Path, capitalised: bool) -> None:
    write(evidence / "e.json", dumps([assume_role_event(1, capitalised=capitalised)]))
    row = load(evidence).actiontrail.iloc[0]
    assert row["issuedAccessKeyId"] == STS_KEY
    assert row["targetRoleId"] == ROLE_ID and row["targetSessionName"] == "ci-session"
    assert row["targetRoleAccountId"] == ACCOUNT_PROD
    assert row["targetRoleName"] == "deploy-role"
    assert row["accountId"] == ACCOUNT_DEV  # the caller's account


def test_sts_key_from_referenced_resources_when_response_is_missing(evidence: Path) -> None:
    event = assume_role_event(1)
    del event["responseElements"]
    write(evidence / "e.json", dumps([event]))
    assert load(evidence).actiontrail.issuedAccessKeyId.item() == STS_KEY


def test_role_session_identity_is_split(evidence: Path) -> None:
    write(evidence / "e.json", dumps([role_session_event(1)]))
    case = load(evidence)
    at = case.actiontrail.iloc[0]
    assert (at["roleId"], at["roleName"], at["sessionName"]) == (
        ROLE_ID,
        "deploy-role",
        "ci-session",
    )
    act = case.activity.iloc[0]
    assert act["identity_type"] == "ram-role" and act["raw_identity_type"] == "assumed-role"
    assert act["principal_id"] == ROLE_ID and act["principal_name"] == "deploy-role"
    assert act["session_name"] == "ci-session" and act["access_key_id"] == STS_KEY
    assert act["account_id"] == ACCOUNT_PROD and act["player_account_id"] == ACCOUNT_DEV
    assert act["secret_name"] == act["resource_id"] == "prod/db-password"


def test_service_linked_role_with_uid_session_and_sts_principal_colon(evidence: Path) -> None:
    event = role_session_event(
        1,
        userIdentity={
            "type": "assumed-role",
            "accountId": ACCOUNT_PROD,
            "principalId": "316456664486061234:1162148250621234",
            "accessKeyId": "STS.short",
        },
        requestParameters={"stsTokenPrincipalName": "aliyunstreamdefaultrole:1162148250621234"},
    )
    write(evidence / "e.json", dumps([event]))
    at = load(evidence).actiontrail.iloc[0]
    assert at["roleName"] == "aliyunstreamdefaultrole"  # from stsTokenPrincipalName
    assert at["sessionName"] == "1162148250621234"


def test_mfa_flags_are_strings_in_both_spellings(evidence: Path) -> None:
    signin = {
        "eventType": "ConsoleSignin",
        "eventName": "ConsoleSignin",
        "serviceName": "AasSub",
        "eventSource": "signin.aliyun.com",
        "eventId": "1.167_1627549154939_339a",
        "requestId": "1.167_1627549154939_339a",
    }
    ram = at_event(1, **signin, additionalEventData={"mfaChecked": "false", "callbackUrl": "x"})
    root = at_event(
        2,
        **{**signin, "serviceName": "AasCustomer", "eventId": "1.2_3"},
        additionalEventData={"isMFAChecked": "true"},
        errorMessage="success",
    )
    root["userIdentity"] = {
        "type": "root-account",
        "accountId": ACCOUNT_DEV,
        "principalId": ACCOUNT_DEV,
        "userName": "root",
    }
    write(evidence / "e.jsonl", jsonl([ram, root]))
    case = load(evidence)
    assert case.actiontrail.mfaChecked.tolist() == [False, True]
    act = case.activity
    assert act.mfa.tolist() == [False, True]
    assert act.success.tolist() == [True, True]  # errorMessage "success" is success
    assert act.identity_type.tolist() == ["ram-user", "account"]
    assert act.event_id.tolist() == ["1.167_1627549154939_339a", "1.2_3"]


def test_errors_empty_or_missing_mean_success(evidence: Path) -> None:
    ok_missing = at_event(1)
    del ok_missing["errorCode"], ok_missing["errorMessage"]
    failed = at_event(2, errorCode="NoPermission", errorMessage="You are not authorized")
    write(evidence / "e.jsonl", jsonl([ok_missing, at_event(3), failed]))
    act = load(evidence).activity
    assert act.success.tolist() == [True, False, True] or act.success.tolist() == [
        True,
        True,
        False,
    ]
    assert act.set_index("event_id").loc[failed["eventId"], "error_code"] == "NoPermission"


def test_system_event_account_from_recipient_and_service_case(evidence: Path) -> None:
    system = at_event(
        1,
        eventName="DeleteDisk",
        serviceName="Ecs",
        sourceIpAddress="ecs.aliyuncs.com",
        eventAttributes={"SensitiveAction": "true"},
    )
    system["userIdentity"] = {"type": "system", "userName": "ecs.aliyuncs.com"}
    rds = at_event(2, serviceName="RDS", sourceIpAddress="2001:db8::1")
    internal = at_event(3, serviceName="Rds", sourceIpAddress="Internal")
    write(evidence / "e.jsonl", jsonl([system, rds, internal]))
    case = load(evidence)
    act = case.activity
    assert act.account_id.tolist()[0] == ACCOUNT_DEV
    assert act.identity_type.tolist()[0] == "system"
    assert act.service.tolist() == ["ecs", "rds", "rds"]
    assert act.client_ip.tolist() == ["ecs.aliyuncs.com", "2001:db8::1", "Internal"]
    assert case.actiontrail.eventAttributes.iloc[0] == {"SensitiveAction": "true"}


def test_unknown_identity_types_are_kept_and_mapped_to_unknown(evidence: Path) -> None:
    event = at_event(1)
    event["userIdentity"]["type"] = "federated-thing"
    write(evidence / "e.jsonl", jsonl([event]))
    act = load(evidence).activity.iloc[0]
    assert (act["identity_type"], act["raw_identity_type"]) == ("unknown", "federated-thing")


def test_resource_names_keep_their_flat_strings(evidence: Path) -> None:
    event = at_event(
        1,
        requestParameters={},
        resourceName="i-1,i-2;d-1",
        resourceType="ACS::ECS::Instance;ACS::ECS::Disk",
    )
    write(evidence / "e.jsonl", jsonl([event]))
    case = load(evidence)
    assert case.actiontrail.resourceName.item() == "i-1,i-2;d-1"
    assert case.activity.resource_id.item() == "i-1"


def test_kms_identity_vocabulary_and_time_as_unix_or_iso(evidence: Path) -> None:
    rows = [
        kms_record(
            1,
            identity_type="cloud-account",
            access_key_id=CI_KEY,
            principal_id=ACCOUNT_DEV,
            account_id=ACCOUNT_DEV,
            access_key_fingerprint="",
        ),
        kms_record(2, identity_type="ram-role", access_key_id=STS_KEY, time="1772416800"),
        kms_record(3, identity_type="", access_key_id="KAAP.1-2-3-4-5", time=1772416800.5),
        kms_record(
            4, account_id="", principal_id="", status_code="403", error_message="AAP not found"
        ),
    ]
    write(evidence / "k.jsonl", jsonl(rows))
    case = load(evidence)
    kms = case.kms
    assert kms.time.dt.tz is not None and str(kms.time.dt.tz) == "UTC"
    assert kms.time.iloc[1] == pd.Timestamp("2026-03-02T02:00:00Z")
    assert kms.time.iloc[2] == pd.Timestamp("2026-03-02T02:00:00.5Z")
    assert kms.account_id.tolist()[3] == ""  # "AAP not found" stays visible
    assert kms.status_code.dtype == "Int16" and kms.status_code.tolist()[3] == 403
    act = case.activity.set_index("request_id").loc[kms.request_id]
    assert act.identity_type.tolist() == ["account", "ram-role", "aap", "aap"]
    assert act.success.tolist() == [True, True, True, False]
    assert pd.isna(act.account_id.iloc[3])


def test_masked_documentation_values_are_not_rejected(evidence: Path) -> None:
    row = kms_record(
        1,
        resource_id="key-hzz62f1cb66fa42qo****",
        client_ip="192.168.XX.XX",
        account_id="119285303511****",
    )
    write(evidence / "k.csv", csv_bytes([row]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        case = load(evidence)
    assert case.kms.client_ip.item() == "192.168.XX.XX"
    assert case.kms.key_id.item() == "key-hzz62f1cb66fa42qo5678"  # from resource_parameters


def test_frames_are_typed(evidence: Path) -> None:
    write(evidence / "e.jsonl", jsonl([at_event(i) for i in range(6)] + [kms_record(1)]))
    case = load(evidence)
    act = case.activity
    assert str(act.time.dtype) == "datetime64[ns, UTC]"
    assert str(case.actiontrail.eventTime.dtype) == "datetime64[ns, UTC]"
    assert act.success.dtype == "boolean"
    assert isinstance(act.source.dtype, pd.CategoricalDtype)
    assert isinstance(case.actiontrail.requestParameters.iloc[0], dict)
    assert case.actiontrail.isGlobal.dtype == "boolean"
    assert case.kms.duration.dtype == "float64"


def test_sls_request_parameter_json_and_misspelled_additional_data(evidence: Path) -> None:
    import json

    event = assume_role_event(1)
    params = event.pop("requestParameters")
    event["requestParameterJson"] = json.dumps(params)
    event["addionalEventData"] = event.pop("additionalEventData")
    write(
        evidence / "sls.jsonl",
        jsonl([{"__topic__": "actiontrail_audit_event", "event": json.dumps(event)}]),
    )
    at = load(evidence).actiontrail.iloc[0]
    assert at["requestParameters.RoleArn"] == params["RoleArn"]
    assert at["targetRoleName"] == "deploy-role"
    assert at["additionalEventData"] == {"Scheme": "https"}


def test_legacy_access_key_ids_and_long_sts_keys(evidence: Path) -> None:
    legacy = at_event(1)
    legacy["userIdentity"]["accessKeyId"] = "f6IzzFZMmzNwEI4d"
    long_sts = role_session_event(2)
    long_sts["userIdentity"]["accessKeyId"] = "STS." + "9jMtu5186zsezCML8Qsdk" * 3
    write(evidence / "e.jsonl", jsonl([legacy, long_sts]))
    act = load(evidence).activity
    assert act.access_key_id.tolist() == [
        "f6IzzFZMmzNwEI4d",
        long_sts["userIdentity"]["accessKeyId"],
    ]
