"""Every input shape of log-formats.md §0.1 loads, recognised by content alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    ACCOUNT_DEV,
    CLIENT_KEY,
    KEY,
    assert_reconciled,
    assume_role_event,
    at_event,
    csv_bytes,
    dumps,
    flatten,
    jsonl,
    kms_record,
    load_case,
    lookup_events_page,
    oss_array,
    role_session_event,
    sls_record,
    write,
    write_gz,
    zip_bytes,
)

import kmsforensics as kf


def load(*paths: Path, **kwargs: object) -> kf.Case:
    return load_case(*paths, on_warning="error", **kwargs)  # these inputs are all clean


def test_oss_tree_of_gz_arrays_single_and_multi_account(evidence: Path) -> None:
    single = evidence / "bucket/AliyunLogs/Actiontrail/cn-hangzhou/2026/03/02"
    multi = (
        evidence / "bucket/AliyunLogs/Actiontrail/rd-a1b2/1594986938265678/cn-hangzhou/2026/03/02"
    )
    oss_array(
        single / "Actiontrail_cn-hangzhou_20260302010500_1002_3_900_ab12.gz",
        [at_event(i) for i in range(3)],
    )
    oss_array(
        multi / "Actiontrail_cn-hangzhou_20260302011000_1002_2_700_cd34.gz",
        [at_event(i) for i in range(10, 12)],
    )
    case = load(evidence)
    assert len(case.actiontrail) == 5
    assert set(case.manifest.format) == {"json-array:actiontrail"}
    assert case.manifest.record_unit.tolist() == ["index", "index"]
    assert case.actiontrail.source_record.tolist() == [0, 1, 2, 0, 1]
    assert_reconciled(case)


def test_actiontrail_json_lines_and_single_object(evidence: Path) -> None:
    write(evidence / "events.jsonl", jsonl([at_event(1), at_event(2)]))
    write(evidence / "one-event.json", dumps(at_event(3)))
    case = load(evidence)
    formats = dict(
        zip(case.manifest.path.map(lambda p: Path(p).name), case.manifest.format, strict=True)
    )
    assert formats == {
        "events.jsonl": "json-lines:actiontrail",
        "one-event.json": "json-lines:actiontrail",
    }
    assert sorted(case.actiontrail.eventId.str[-1]) == ["1", "2", "3"]


def test_pretty_printed_single_event_is_one_object(evidence: Path) -> None:
    import json

    write(evidence / "pretty.json", json.dumps(at_event(4), indent=2).encode())
    case = load(evidence)
    assert case.manifest.format.tolist() == ["json-object:actiontrail"]
    assert case.actiontrail.eventName.tolist() == ["DescribeKey"]


def test_lookup_events_pages_give_one_row_per_event(evidence: Path) -> None:
    write(evidence / "page-1.json", lookup_events_page([at_event(1), at_event(2)], "dG9rZW4="))
    write(evidence / "page-2.json", lookup_events_page([at_event(3)]))
    case = load(evidence)
    assert len(case.actiontrail) == 3
    assert case.manifest.records_read.tolist() == [2, 1]
    assert case.actiontrail.source_record.tolist() == [0, 1, 0]


def test_sls_export_with_event_string_both_topics(evidence: Path) -> None:
    rows = [sls_record(at_event(1)), sls_record(at_event(2), topic="actiontrail_event")]
    write(evidence / "sls-dump_0.json", jsonl(rows))
    case = load(evidence)
    at = case.actiontrail
    assert case.manifest.format.tolist() == ["json-lines:actiontrail-sls"]
    assert at["__topic__"].tolist() == ["actiontrail_audit_event", "actiontrail_event"]
    assert at["owner_id"].tolist()[1] == ACCOUNT_DEV
    assert "__tag__:__receive_time__" in at.columns
    assert at["userIdentity.accessKeyId"].notna().all()


def test_sls_event_prefixed_columns_json_and_csv(evidence: Path) -> None:
    flat = {"__topic__": "actiontrail_audit_event", **flatten(assume_role_event(1))}
    write(evidence / "flat.jsonl", jsonl([flat]))
    write(evidence / "flat.csv", csv_bytes([flatten(role_session_event(2))]))
    case = load(evidence)
    at = case.actiontrail.set_index("eventName")
    assert at.loc["AssumeRole", "requestParameters"]["RoleArn"].endswith(":role/deploy-role")
    assert at.loc["AssumeRole", "issuedAccessKeyId"].startswith("STS.")
    assert at.loc["GetSecretValue", "userIdentity.type"] == "assumed-role"
    assert at.loc["GetSecretValue", "stsTokenPlayerUid"] == ACCOUNT_DEV


def test_sls_csv_with_event_column_and_semicolons(evidence: Path) -> None:
    rows = [sls_record(at_event(1)), sls_record(at_event(2))]
    write(evidence / "download.csv", csv_bytes(rows, delimiter=";"))
    case = load(evidence)
    assert case.manifest.format.tolist() == ["csv:actiontrail-sls"]
    assert case.actiontrail.source_record.tolist() == [2, 3]


def test_kms_json_lines_array_csv_and_sls(evidence: Path) -> None:
    write_gz(evidence / "kms.json.gz", jsonl([kms_record(1), kms_record(2)]))
    write(evidence / "kms-array.json", dumps([kms_record(3)]))
    write(evidence / "kms.csv", csv_bytes([kms_record(4)]))
    sls = {**kms_record(5), "__time__": 1772416800, "__topic__": "", "__source__": "10.0.0.9"}
    write(evidence / "kms-sls.json", jsonl([sls]))
    case = load(evidence)
    assert len(case.kms) == 5
    assert set(case.manifest.format) == {
        "json-lines:kms",
        "json-array:kms",
        "csv:kms",
        "json-lines:kms-sls",
    }
    assert case.kms.status_code.tolist() == [200] * 5
    assert case.kms.duration.tolist() == [1.381] * 5
    assert (case.kms.key_id == KEY).all()
    assert case.kms.loc[case.kms.request_id.str.endswith("5"), "__source__"].item() == "10.0.0.9"


def test_kms_gateway_variant_and_unknown_columns_kept(evidence: Path) -> None:
    shared = kms_record(
        1,
        identity_type=None,
        access_key_id=None,
        access_key_fingerprint=None,
        gateway_type="shared",
        cmkid="key-phzz6a6075bb1234",
        key_state="Enabled",
        domain_type="Vpc",
        error_code="",
        key_version_id="key-phzz6a6075bb-w3ywop1",
        share_gateway_api_name="GetSecretValue",
        api_name="Decrypt",
        resource_id="prod/db",
        resource_parameters="",
        brand_new_field="kept",
    )
    write(evidence / "kms-new.jsonl", jsonl([shared]))
    case = load(evidence)
    row = case.kms.iloc[0]
    assert row["gateway_type"] == "shared" and row["brand_new_field"] == "kept"
    assert row["key_id"] == "key-phzz6a6075bb1234"  # from cmkid, the secret's key
    assert row["secret_name"] == "prod/db"
    assert row["key_version_id"] == "key-phzz6a6075bb-w3ywop1"
    act = case.activity.iloc[0]
    assert act["action"] == "GetSecretValue" and act["resource_id"] == "prod/db"


def test_zip_archive_members_are_evidence(evidence: Path) -> None:
    members = {
        "export/at.json.gz": __import__("gzip").compress(dumps([at_event(1)])),
        "export/kms.jsonl": jsonl([kms_record(1)]),
    }
    write(evidence / "case.zip", zip_bytes(members))
    case = load(evidence)
    paths = case.manifest.path.tolist()
    assert paths[0].endswith("case.zip")
    assert [p.split("::")[1] for p in paths[1:]] == list(members)
    assert case.manifest.status.tolist() == ["archive", "loaded", "loaded"]
    assert case.actiontrail.source_file.iloc[0].endswith("case.zip::export/at.json.gz")


def test_one_folder_mixing_every_shape(evidence: Path) -> None:
    oss_array(evidence / "oss/Actiontrail_cn-hangzhou_1.gz", [at_event(1), assume_role_event(2)])
    write(evidence / "lines.jsonl", jsonl([role_session_event(3)]))
    write(evidence / "page.json", lookup_events_page([at_event(4)]))
    write(evidence / "sls.json", jsonl([sls_record(at_event(5))]))
    write(evidence / "flat.csv", csv_bytes([flatten(at_event(6))]))
    write_gz(evidence / "kms/a.json.gz", jsonl([kms_record(1)]))
    write(evidence / "kms/b.csv", csv_bytes([kms_record(2)]))
    write(evidence / "mixed.jsonl", jsonl([at_event(7), kms_record(3)]))
    case = load(evidence)
    assert len(case.actiontrail) == 7 and len(case.kms) == 3
    assert len(case.activity) == 10
    assert case.activity.time.is_monotonic_increasing
    assert (
        case.manifest.loc[case.manifest.path.str.endswith("mixed.jsonl"), "format"].item()
        == "json-lines:actiontrail+kms"
    )
    assert_reconciled(case)
    assert case.issues.empty


def test_globs_and_files_and_overlaps(evidence: Path) -> None:
    write(evidence / "a/x.jsonl", jsonl([at_event(1)]))
    write(evidence / "b/y.jsonl", jsonl([at_event(2)]))
    case = load(evidence / "**" / "*.jsonl", evidence / "a" / "x.jsonl")
    assert len(case.manifest) == 2  # x.jsonl named twice, read once
    assert len(case.actiontrail) == 2


def test_console_csv_through_a_column_map(evidence: Path) -> None:
    rows = [
        {
            "Time": "2026-03-02T01:00:00Z",
            "Event": "DeleteTrail",
            "User": "alice",
            "Source IP": "198.51.100.4",
            "Event ID": "E1",
        }
    ]
    write(evidence / "console.csv", csv_bytes(rows))
    mapping = {
        "Time": "eventTime",
        "Event": "eventName",
        "Source IP": "sourceIpAddress",
        "Event ID": "eventId",
        "User": "userName",
    }
    case = load(evidence, column_map=mapping)
    assert case.actiontrail.eventName.tolist() == ["DeleteTrail"]
    assert case.activity.client_ip.tolist() == ["198.51.100.4"]


def test_client_key_and_aap_identity_in_activity(evidence: Path) -> None:
    write(evidence / "kms.jsonl", jsonl([kms_record(1)]))
    act = load(evidence).activity.iloc[0]
    assert act["identity_type"] == "aap"
    assert act["principal_id"] == act["principal_name"] == "payments-aap"
    assert act["access_key_id"] == CLIENT_KEY
    assert act["success"] is True or act["success"] == True  # noqa: E712
    assert isinstance(act["time"], pd.Timestamp) and str(act["time"].tz) == "UTC"


@pytest.mark.parametrize("name", ["data.bin", "no-extension", "x.txt"])
def test_names_do_not_matter(evidence: Path, name: str) -> None:
    write_gz(evidence / name, dumps([at_event(1)]))
    case = load(evidence)
    assert case.manifest.format.tolist() == ["json-array:actiontrail"]
