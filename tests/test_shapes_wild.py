"""Delivery shapes found in the wild (issue 12 §1), each on a hand-written fixture.

The fixtures in ``tests/fixtures/wild/`` were written from the descriptions of real
exports (SLS pull, SDK dumps, Sentinel, documentation samples), not with the
project's generator: other field orders, casings, wrappers and values. Each test
checks that the counts of its file reconcile (read = loaded + rejected +
duplicates) and that the rows carry the right time, identity and action.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import FIXTURES, assert_reconciled, load_case

import kmsforensics as kf

WILD = FIXTURES / "wild"


def load(name: str, **kwargs: object) -> kf.Case:
    return load_case(WILD / name, on_warning="ignore", **kwargs)


def counts(case: kf.Case) -> tuple[int, int, int, int]:
    row = case.manifest.iloc[0]
    return (
        int(row.records_read),
        int(row.records_loaded),
        int(row.records_rejected),
        int(row.duplicates),
    )


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def rows(case: kf.Case) -> list[tuple[object, ...]]:
    """(time, identity_type, principal_name, action) of each activity row, by time."""
    frame = case.activity.sort_values("time", kind="stable")
    return list(
        zip(
            frame.time,
            frame.identity_type.astype(str),
            frame.principal_name.astype(object).where(frame.principal_name.notna(), None),
            frame.action.astype(str),
            strict=True,
        )
    )


def test_sls_getlogs_array_with_event_strings_and_a_duplicate() -> None:
    case = load("sls_getlogs_pull.json")
    assert counts(case) == (3, 2, 0, 1)  # the same eventId twice: one event, one duplicate
    assert_reconciled(case)
    assert case.manifest.format.iloc[0] == "json-array:actiontrail-sls"
    assert rows(case) == [
        (utc("2025-11-30T22:14:05Z"), "ram-role", "build-role", "Decrypt"),
        (utc("2025-11-30T22:16:41Z"), "ram-user", "nightly-export", "GetSecretValue"),
    ]
    at = case.actiontrail.set_index("eventName")
    # requestParameterJson double-escaped (a JSON string holding a JSON string) is read
    assert at.loc["Decrypt", "requestParameters.KeyId"] == "key-szz6611aa22bb33cc44dd"
    assert at.loc["GetSecretValue", "requestParameters.SecretName"] == "prod/payments/db"
    # the SLS row's own time and source travel with the event; the first row is kept
    assert at.loc["Decrypt", "__time__"] == "1764540845"
    assert at.loc["Decrypt", "__source__"] == "47.96.1.20"
    assert case.activity.set_index("action").loc["Decrypt", "session_name"] == "ci-runner-88"


def test_sls_getlogs_json_lines_hold_an_event_and_a_kms_record() -> None:
    case = load("sls_getlogs_pull.jsonl")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    assert case.manifest.format.iloc[0] == "json-lines:actiontrail-sls+kms-sls"
    kms = case.kms.iloc[0]
    assert (kms.api_name, kms.time, kms.key_id) == (
        "GenerateDataKey",
        utc("2025-11-30T22:20:00Z"),
        "key-szz6611aa22bb33cc44dd",
    )
    assert kms.status_code == 200
    assert case.actiontrail.eventName.tolist() == ["ListSecrets"]
    assert case.actiontrail.source_record.tolist() == [1]


def test_sdk_to_map_dump_of_lookup_events() -> None:
    case = load("sdk_lookup_events_to_map.json")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    assert rows(case) == [
        (utc("2025-11-30T23:06:40Z"), "account", "root", "ConsoleSignin"),
        (utc("2025-11-30T23:10:00Z"), "system", "ecs.aliyuncs.com", "DeleteDisk"),
    ]
    assert case.actiontrail.source_item.tolist() == [0, 1]  # Events[i] in the body
    system = case.activity.set_index("action").loc["DeleteDisk"]
    assert pd.isna(system.account_id)  # a system identity has no account


def test_access_key_last_used_events_with_detail_strings() -> None:
    case = load("get_access_key_last_used_events.json")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    # Encrypt's Detail has no eventTime: UsedTimestamp (epoch ms, a number) stands in;
    # Decrypt's Detail has its own eventTime, which wins over UsedTimestamp (a string)
    assert rows(case) == [
        (utc("2025-12-01T02:00:00.250Z"), "ram-user", "nightly-export", "Decrypt"),
        (utc("2025-12-01T02:00:00.500Z"), "ram-user", "nightly-export", "Encrypt"),
    ]
    assert set(case.activity.resource_id) == {"alias/payments"}


def test_sentinel_alicloud_cl_rows() -> None:
    case = load("sentinel_alicloud_cl.json")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    # the first has its eventTime; the second (contents_event_s as JSON text) none, so
    # timestamp_d (epoch seconds as a string) stands in, not the later TimeGenerated
    assert rows(case) == [
        (utc("2025-12-01T03:00:01Z"), "ram-user", "mallory", "ScheduleKeyDeletion"),
        (utc("2025-12-01T03:05:00Z"), "ram-user", "mallory", "DisableKey"),
    ]
    assert set(case.activity.resource_id) == {"key-szz6611aa22bb33cc44dd"}


def test_sentinel_csv_with_json_cells_and_only_an_ingestion_time() -> None:
    case = load("sentinel_actiontrail_logs.csv")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    assert rows(case) == [
        (utc("2025-12-01T04:10:07.500Z"), "ram-user", "mallory", "AssumeRole"),
        (utc("2025-12-01T04:11:30.250Z"), "ram-role", "build-role", "GetSecretValue"),
    ]
    at = case.actiontrail.set_index("eventName")
    # JSON text in quoted cells is parsed: identity, parameters, response, resources
    assert at.loc["AssumeRole", "targetRoleName"] == "build-role"
    assert at.loc["AssumeRole", "issuedAccessKeyId"] == "STS.NSentinelIssued0001"
    assert at.loc["GetSecretValue", "userIdentity.accessKeyId"] == "STS.NSentinelIssued0001"
    assert at.loc["GetSecretValue", "secretName"] == "prod/payments/db"
    # the time is the ingestion time, and case.issues says so for each row
    said = case.issues[case.issues.field == "ingestion_time"]
    assert said.source_record.tolist() == [2, 3]
    assert (said.severity == "field").all()
    assert said.reason.str.contains("ingestion time").all()


def test_pascal_case_keys_match_and_camel_case_wins() -> None:
    case = load("pascal_case_events.jsonl")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    assert rows(case) == [
        (utc("2020-12-01T11:54:59.366Z"), "ram-user", "audit-reader", "DescribeKey"),
        (utc("2020-12-01T12:00:00Z"), "ram-user", "audit-reader", "Decrypt"),
    ]
    first = case.actiontrail.set_index("eventName").loc["DescribeKey"]
    assert first["userIdentity.accountId"] == "1357913579135791"
    assert first["userIdentity.accessKeyId"] == "LTAI5tPascalCaseKey0001"
    assert first["requestParameters.KeyId"] == "key-bjj0011223344556677"
    assert not first["userIdentity.sessionContext.attributes.mfaAuthenticated"]
    mixed = case.actiontrail.set_index("eventName").loc["Decrypt"]
    assert mixed["EventName"] == "Encrypt"  # kept under its own name, not the action


def test_older_and_odder_events() -> None:
    case = load("old_and_odd_events.json")
    assert counts(case) == (5, 5, 0, 0)
    assert_reconciled(case)
    activity = case.activity.set_index("action")
    # 2015-era sessionContext.sessionAttributes
    old = case.actiontrail.set_index("eventName").loc["DescribeRegions"]
    assert bool(old["userIdentity.sessionContext.attributes.mfaAuthenticated"]) is True
    assert old["userIdentity.sessionContext.attributes.creationDate"] == utc("2015-11-20T03:00:00Z")
    assert old["eventSource"] == "https://ecs.aliyuncs.com/" and old["apiVersion"] == "*"
    assert activity.loc["DescribeRegions", "session_name"] == "legacy-sess"
    # a system identity without any account
    assert activity.loc["DeleteSnapshot", "identity_type"] == "system"
    assert pd.isna(activity.loc["DeleteSnapshot", "account_id"])
    # account ids of 4, 5, 13 and 16 digits stay strings, as written
    accounts = activity.account_id.astype(str).to_dict()
    assert accounts["DescribeRegions"] == "1234"
    assert accounts["ListKeys"] == "12345"
    assert accounts["ListAliases"] == "1234567890123"
    assert accounts["ListSecrets"] == "1598123412341234"
    # masks are kept as they are
    assert activity.loc["ListKeys", "principal_id"] == "106 ********* 811"
    assert activity.loc["ListAliases", "principal_id"] == "4****"
    versions = case.actiontrail.set_index("eventName").eventVersion.astype(object).to_dict()
    assert (versions["DescribeRegions"], versions["DeleteSnapshot"]) == ("1", "1")
    assert versions["ListKeys"] == ""
    assert case.issues.empty


def test_documentation_copy_with_comments_trailing_commas_and_masks() -> None:
    case = load("copied_from_docs.json")
    assert counts(case) == (1, 1, 0, 0)
    assert_reconciled(case)
    assert rows(case) == [
        (utc("2021-08-02T03:42:19Z"), "ram-role", "custom-role-for-actiontrail", "LookupEvents")
    ]
    at = case.actiontrail.iloc[0]
    assert at["userIdentity.principalId"] == "106 ********* 811"
    assert at["stsTokenPlayerUid"] == "1187xxxxxxxx4544"
    repairs = case.issues.reason.tolist()
    assert (case.issues.severity == "field").all()
    assert any("comments removed: 3" in r for r in repairs)
    assert any("trailing commas removed: 3" in r for r in repairs)
    assert any("masked value(s) quoted: 2" in r for r in repairs)


def test_documentation_copies_as_json_lines_are_repaired_record_by_record() -> None:
    case = load("copied_from_docs_lines.jsonl")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    assert case.activity.action.tolist() == ["ListTrails", "GetTrailStatus"]
    assert case.activity.account_id.astype(str).tolist() == ["159498693826****", "4****"]
    by_line = case.issues.groupby("source_record").reason.apply(sorted).to_dict()
    assert by_line == {
        1: ["trailing commas removed: 1"],
        2: ["comments removed: 1", "unquoted masked value(s) quoted: 1"],
    }


def test_times_without_zone_are_utc_with_a_note_and_epochs_are_read() -> None:
    case = load("times_without_zone_and_epochs.jsonl")
    assert counts(case) == (6, 6, 0, 0)
    assert_reconciled(case)
    times = case.actiontrail.set_index("eventId").eventTime.to_dict()
    assert times == {
        "T-0001": utc("2025-12-02T13:45:00Z"),  # no zone: UTC
        "T-0002": utc("2025-12-02T13:46:30.125Z"),
        "T-0003": utc("2025-12-02T05:45:00Z"),  # epoch seconds, a number
        "T-0004": utc("2025-12-02T05:45:00.123Z"),  # epoch milliseconds, a string
        "T-0005": utc("2025-12-02T05:45:01Z"),  # epoch seconds, a string
        "T-0006": utc("2025-12-02T05:45:02.500Z"),  # epoch milliseconds, a number
    }
    note = case.issues[case.issues.field == "eventTime"]
    assert len(note) == 1 and note.severity.iloc[0] == "note"
    assert "2 eventTime values have no time zone; read as UTC" in note.reason.iloc[0]
    assert "assume_timezone" in note.reason.iloc[0]


def test_assume_timezone_reads_local_console_times() -> None:
    case = load("times_without_zone_and_epochs.jsonl", assume_timezone="Asia/Shanghai")
    times = case.actiontrail.set_index("eventId").eventTime.to_dict()
    assert times["T-0001"] == utc("2025-12-02T05:45:00Z")  # 13:45 in Shanghai (UTC+8)
    assert times["T-0002"] == utc("2025-12-02T05:46:30.125Z")
    assert times["T-0003"] == utc("2025-12-02T05:45:00Z")  # epochs are not shifted
    assert "read as Asia/Shanghai" in case.issues.reason.iloc[0]
    kms = load("kms_local_time.csv", assume_timezone="Asia/Shanghai")
    assert kms.kms.time.tolist() == [utc("2025-12-02T13:00:00Z")]
    assert kms.parameters["assume_timezone"] == "Asia/Shanghai"


def test_assume_timezone_must_be_a_known_zone() -> None:
    with pytest.raises(ValueError, match="IANA name"):
        load("kms_local_time.csv", assume_timezone="China Standard Time")


def test_envelopes_within_envelopes_unwrap_one_level_at_a_time() -> None:
    # an SLS pull row -> an SLS log whose event is an SDK dump -> its body (a
    # LookupEvents page) -> two events
    case = load("sls_pull_of_lookup_pages.jsonl")
    assert counts(case) == (2, 2, 0, 0)
    assert_reconciled(case)
    assert rows(case) == [
        (utc("2025-10-10T10:10:10Z"), "ram-role", "build-role", "PutSecretValue"),
        (utc("2025-10-10T10:10:11Z"), "ram-role", "build-role", "GetSecretValue"),
    ]
    at = case.actiontrail
    assert at.source_record.tolist() == [1, 1] and at.source_item.tolist() == [0, 1]
    assert set(at.__topic__) == {"lookup_events_dump"}
    assert set(at.__source__) == {"log-shipper-2"}


def test_every_wild_shape_at_once_reconciles(tmp_path: Path) -> None:
    """All the fixtures in one load: same rows as one by one, every file reconciled."""
    case = load_case(WILD, on_warning="ignore")
    assert_reconciled(case)
    assert (case.manifest.status == "loaded").all()
    one_by_one = sum(len(load(p.name).activity) for p in sorted(WILD.iterdir()))
    assert len(case.activity) == one_by_one
