"""OCSF export: the bundled incident and hand-made RAM/IMS/sign-in events, read back and
validated with the OCSF models and schema that pydantic-ocsf ships (no network)."""

from __future__ import annotations

import gzip
import json
import typing
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from ocsf.v1_5_0 import events as ocsf_events  # pydantic-ocsf, in the test extra
from ocsf.v1_5_0 import objects as ocsf_objects
from pydantic import BaseModel

import kmsforensics as kf

MODELS = {
    6003: ocsf_events.ApiActivity,
    3002: ocsf_events.Authentication,
    3001: ocsf_events.AccountChange,
    2004: ocsf_events.DetectionFinding,
}
#: Attributes of the ``cloud`` profile (``cloud``, and ``api`` for classes that lack it),
#: which the class models leave out: checked against their own object models.
PROFILE_OBJECTS = {"cloud": ocsf_objects.Cloud, "api": ocsf_objects.Api}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    out = {}
    for name, field in model.model_fields.items():
        out[field.alias or name] = field.annotation
        out[name] = field.annotation
    return out


def unknown_attributes(value: Any, model: type[BaseModel], where: str = "") -> list[str]:
    """Every key of ``value`` that the OCSF model (recursively) has no attribute for."""
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_attributes(v, model, where)]
    if not isinstance(value, dict):
        return []
    fields = _fields(model)
    problems = []
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if key == "unmapped" or (not where and key in PROFILE_OBJECTS and key not in fields):
            continue
        if key not in fields:
            problems.append(path)
            continue
        for sub in _models_in(fields[key])[:1]:
            problems += unknown_attributes(item, sub, path)
    return problems


def validate(record: dict[str, Any]) -> None:
    model = MODELS[record["class_uid"]]
    model.model_validate(record)  # types, enums, required attributes, type_uid
    for key, sub in PROFILE_OBJECTS.items():
        if key in record:
            sub.model_validate(record[key])
            assert unknown_attributes(record[key], sub) == []
    assert unknown_attributes(record, model) == [], record


def test_the_shipped_schema_knows_the_classes_and_activities() -> None:
    """The classes and activity ids used are those of the OCSF 1.5.0 schema JSON."""
    import ocsf

    schema = json.loads((Path(ocsf.__file__).parent / "schemas" / "v1_5_0.json").read_text())
    classes = schema["events"]
    assert classes["api_activity"]["uid"] == 3 and classes["api_activity"]["extends"] == (
        "application"
    )
    activities = classes["api_activity"]["attributes"]["activity_id"]["enum"]
    assert {k: v["caption"] for k, v in activities.items()} == {
        "1": "Create", "2": "Read", "3": "Update", "4": "Delete",
    }  # fmt: skip
    changes = classes["account_change"]["attributes"]["activity_id"]["enum"]
    for activity, name in kf.export.ocsf.ACCOUNT_CHANGES.values():
        if activity != 99:
            assert changes[str(activity)]["caption"] == name


@pytest.fixture(scope="module")
def incident() -> tuple[kf.Case, pd.DataFrame]:
    case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence", progress=False)
    with pytest.warns(kf.DetectionNote):
        findings = kf.detect(case)
    return case, findings


def test_incident_as_ocsf_jsonl_validates_and_covers_every_record(
    incident: tuple[kf.Case, pd.DataFrame], tmp_path: Path
) -> None:
    case, findings = incident
    out = kf.export_ocsf(case, tmp_path / "incident.ocsf.jsonl", findings=findings)
    with out.open() as handle:
        records = [json.loads(line) for line in handle]  # an independent reader: json
    classes = Counter(r["class_uid"] for r in records)
    signins = int((case.actiontrail["eventName"] == "ConsoleSignin").sum())
    assert classes[3002] == signins > 0
    assert classes[2004] == len(findings) > 0
    assert classes[6003] == len(case.kms) + len(case.actiontrail) - signins
    for record in records[::7] + [r for r in records if r["class_uid"] != 6003]:
        validate(record)
        assert record["type_uid"] == record["class_uid"] * 100 + record["activity_id"]

    api = [r for r in records if r["class_uid"] == 6003]
    by_operation = {r["api"]["operation"]: r["activity_id"] for r in api}
    assert by_operation["Decrypt"] == 2 and by_operation["GetSecretValue"] == 2
    assert by_operation["ListKeys"] == 2 and by_operation["DescribeKey"] == 2
    assert by_operation["DisableKey"] == 3 and by_operation["SetDeletionProtection"] == 3
    assert by_operation["ScheduleKeyDeletion"] == 4 and by_operation["DeleteKeyMaterial"] == 4
    assert by_operation["Encrypt"] == 99 and by_operation["AssumeRole"] == 99

    # every KMS record is there by request id, with its provenance and the rest unmapped
    kms = {r["metadata"]["uid"]: r for r in api if r["metadata"]["log_name"] != "ActionTrail"}
    assert set(kms) == set(case.kms["request_id"])
    sample = case.kms.iloc[len(case.kms) // 2]
    record = kms[sample["request_id"]]
    assert record["actor"]["user"]["credential_uid"] == sample["access_key_id"]
    assert record["src_endpoint"]["ip"] == sample["client_ip"]
    assert record["http_request"]["user_agent"] == sample["useragent"]
    assert record["cloud"]["provider"] == "Alibaba Cloud"
    tags = {t["name"]: t["value"] for t in record["metadata"]["tags"]}
    assert tags["source_file"] == sample["source_file"]
    assert int(tags["source_record"]) == sample["source_record"]
    sha = case.manifest.set_index("path").loc[sample["source_file"], "sha256"]
    assert tags["source_sha256"] == sha
    assert record["unmapped"]["access_key_fingerprint"] == sample["access_key_fingerprint"]
    assert record["status_id"] == (1 if 200 <= sample["status_code"] < 300 else 2)

    # an internal caller is a domain, not an IP
    internal = [r for r in api if r["unmapped"].get("eventType") == "AliyunServiceEvent"]
    assert internal and all("ip" not in r["src_endpoint"] for r in internal[:50])

    # findings point at events that are in the file
    uids = {r["metadata"]["uid"] for r in records if r["class_uid"] != 2004}
    for finding in (r for r in records if r["class_uid"] == 2004):
        related = [e["uid"] for e in finding["finding_info"]["related_events"]]
        assert related and set(related) <= uids
    techniques = {
        a.get("sub_technique", a["technique"])["uid"]
        for r in records
        if r["class_uid"] == 2004
        for a in r["finding_info"].get("attacks", [])
    }
    assert "T1555.006" in techniques
    manifest = json.loads((tmp_path / "incident.ocsf.jsonl.manifest.json").read_text())
    assert manifest["rows"] == len(records)


def test_incident_as_ocsf_parquet_holds_the_json_lines_records(
    incident: tuple[kf.Case, pd.DataFrame], tmp_path: Path
) -> None:
    case, findings = incident
    day = case.between("2026-03-11", "2026-03-12")
    parquet = kf.export_ocsf(day, tmp_path / "day.parquet", findings=findings)
    lines = kf.export_ocsf(day, tmp_path / "day.jsonl", findings=findings)
    table = pq.read_table(parquet)  # an independent reader: pyarrow's Parquet
    assert table.num_rows == len(day.kms) + len(day.actiontrail) + len(findings)
    expected = {}
    with lines.open() as handle:
        for line in handle:
            record = json.loads(line)
            expected[(record["class_uid"], record["metadata"]["uid"])] = record
    seen = set()
    for row in table.to_pylist():
        row["unmapped"] = json.loads(row["unmapped"])
        record = _drop_nulls(row)
        key = (record["class_uid"], record["metadata"]["uid"])
        assert record == expected[key]
        if record["class_uid"] not in seen:
            validate(record)
            seen.add(record["class_uid"])
    assert seen == {6003, 3002, 2004}


def _drop_nulls(value: Any) -> Any:
    """A Parquet row as JSON has it: struct fields another record needed are null here."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


# --- hand-made events: RAM and IMS changes, sign-ins, odd sources ---------------------------

ACCOUNT = "5012345678901234"


def _event(name: str, service: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An ActionTrail event written the way the console's download gives it (keys sorted)."""
    event = {
        "additionalEventData": extra.pop("additional", {}),
        "acsRegion": "cn-shanghai",
        "apiVersion": "2015-05-01",
        "errorCode": extra.pop("errorCode", None),
        "errorMessage": extra.pop("errorMessage", None),
        "eventId": f"EV-{name}-{len(params)}-{extra.pop('n', 0)}",
        "eventName": name,
        "eventSource": f"{service.lower()}.aliyuncs.com",
        "eventTime": extra.pop("time", "2026-11-30T22:15:09Z"),
        "eventType": "ApiCall",
        "eventVersion": "1",
        "requestId": f"REQ-{name}",
        "requestParameters": params,
        "serviceName": service,
        "sourceIpAddress": extra.pop("ip", "198.51.100.23"),
        "userAgent": "aliyun-cli/3.0.190",
        "userIdentity": {
            "accessKeyId": "LTAI5tAdminKeyHandMade",
            "accountId": ACCOUNT,
            "principalId": "20731234567890123",
            "type": "ram-user",
            "userName": "ops-admin",
        },
    }
    event.update(extra)
    return event


@pytest.fixture()
def ram_case(tmp_path: Path) -> kf.Case:
    events = [
        _event("CreateUser", "Ram", {"UserName": "backdoor", "DisplayName": "Backup"}, n=1),
        _event("CreateAccessKey", "Ram", {"UserName": "backdoor"}, n=2),
        _event(
            "AttachPolicyToUser",
            "Ram",
            {"UserName": "backdoor", "PolicyName": "AliyunKMSFullAccess", "PolicyType": "System"},
            n=3,
        ),
        _event(
            "CreateUser", "Ims", {"UserPrincipalName": "svc@5012345678901234.onaliyun.com"}, n=4
        ),
        _event("DeleteAccessKey", "Ims", {"UserAccessKeyId": "LTAI5tOldKey000"}, n=5),
        _event(
            "ConsoleSignin",
            "AasSub",
            {},
            n=6,
            additional={"mfaChecked": "true"},
            eventType="ConsoleSignin",
            eventSource="signin.aliyun.com",
        ),
        _event(
            "ConsoleSignin",
            "AasSub",
            {},
            n=7,
            errorCode="InvalidPassword",
            errorMessage="Password is incorrect",
            eventType="ConsoleSignin",
        ),
        _event("ListUsers", "Ram", {}, n=8, ip="Internal"),
        _event("DeleteSecret", "Kms", {"SecretName": "prod/x"}, n=9, ip="2001:db8::5"),
    ]
    path = tmp_path / "evidence" / "trail.json.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(json.dumps(events, indent=2, sort_keys=True).encode()))
    return kf.load(path.parent, progress=False)


def test_ram_and_ims_changes_sign_ins_and_sources(ram_case: kf.Case, tmp_path: Path) -> None:
    out = kf.export_ocsf(ram_case, tmp_path / "ram.jsonl")
    records = {json.loads(line)["metadata"]["uid"]: json.loads(line) for line in out.open()}
    assert len(records) == 9
    for record in records.values():
        validate(record)

    created = records["EV-CreateUser-2-1"]
    assert (created["class_uid"], created["activity_id"], created["type_uid"]) == (3001, 1, 300101)
    assert created["user"]["name"] == "backdoor"
    assert created["actor"]["user"]["name"] == "ops-admin"
    assert created["actor"]["user"]["credential_uid"] == "LTAI5tAdminKeyHandMade"
    key = records["EV-CreateAccessKey-1-2"]
    assert (key["class_uid"], key["activity_id"]) == (3001, 99)
    assert key["activity_name"] == "Create Access Key"
    attached = records["EV-AttachPolicyToUser-3-3"]
    assert attached["activity_id"] == 7 and attached["policy"]["name"] == "AliyunKMSFullAccess"
    ims = records["EV-CreateUser-1-4"]
    assert ims["class_uid"] == 3001 and ims["user"]["name"].startswith("svc@")
    deleted_key = records["EV-DeleteAccessKey-1-5"]
    assert deleted_key["user"]["credential_uid"] == "LTAI5tOldKey000"

    good, bad = records["EV-ConsoleSignin-0-6"], records["EV-ConsoleSignin-0-7"]
    assert good["class_uid"] == bad["class_uid"] == 3002
    assert good["is_mfa"] is True and good["status_id"] == 1
    assert bad["status_id"] == 2 and bad["status_detail"] == "Password is incorrect"
    assert bad["user"]["name"] == "ops-admin"

    listed = records["EV-ListUsers-0-8"]  # not a change: API Activity, a read
    assert (listed["class_uid"], listed["activity_id"]) == (6003, 2)
    assert listed["src_endpoint"] == {"domain": "Internal"}
    secret = records["EV-DeleteSecret-1-9"]
    assert secret["activity_id"] == 4 and secret["src_endpoint"]["ip"] == "2001:db8::5"
    assert {"uid": "prod/x", "type": "secret", "region": "cn-shanghai"} in secret["resources"]
    assert secret["unmapped"]["requestParameters"] == {"SecretName": "prod/x"}


def test_the_validation_catches_a_wrong_event() -> None:
    """The checks above can fail: a misplaced attribute and a wrong type_uid are caught."""
    event = {
        "class_uid": 6003, "category_uid": 6, "activity_id": 2, "type_uid": 600302,
        "severity_id": 1, "time": 1, "metadata": {"version": "1.5.0", "product": {"name": "x"}},
        "actor": {"user": {"uid": "u"}}, "api": {"operation": "Decrypt"},
        "src_endpoint": {"ip": "192.0.2.1"},
    }  # fmt: skip
    validate(event)
    misplaced = {**event, "actor": {"user": {"uid": "u", "user_agent": "x"}}}
    with pytest.raises(AssertionError):
        validate(misplaced)
    with pytest.raises(ValueError, match="type_uid"):
        validate({**event, "type_uid": 600399})


def test_a_finding_read_back_from_parquet_still_maps(tmp_path: Path) -> None:
    """Evidence as an array and details as a dict (a findings frame saved and reloaded)."""
    import numpy as np

    finding = {
        "rule_id": "sigma:x", "title": "t", "severity": "critical", "technique": "T1485",
        "first_seen": pd.Timestamp("2026-11-30T01:00:00Z"),
        "last_seen": pd.Timestamp("2026-11-30T01:05:00Z"), "entity": None,
        "account_id": ACCOUNT, "summary": "s", "evidence": np.array(["a", "b"]),
        "event_count": 2, "actor": None, "details": {"sigma_level": "critical"},
    }  # fmt: skip
    event = kf.export.ocsf.finding_event(finding)
    validate(event)
    assert [e["uid"] for e in event["finding_info"]["related_events"]] == ["a", "b"]
    assert event["severity_id"] == 5 and event["unmapped"]["details"]["sigma_level"] == "critical"
    assert event["finding_info"]["attacks"] == [{"technique": {"uid": "T1485"}}]


def test_a_case_store_and_the_dask_engine_export_the_same_events(
    ram_case: kf.Case, tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    kf.ingest(tmp_path / "evidence", out=tmp_path / "store", progress=False)

    def read(path: Path) -> dict[str, Any]:
        return {r["metadata"]["uid"]: r for r in map(json.loads, path.open())}

    memory = read(kf.export_ocsf(ram_case, tmp_path / "memory.jsonl"))
    stored = read(kf.export_ocsf(kf.load(tmp_path / "store"), tmp_path / "store.jsonl"))
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                     dashboard_address=":0") as cluster,
        Client(cluster),
    ):  # fmt: skip
        dask_case = kf.load(tmp_path / "store", engine="dask")
        on_dask = read(kf.export_ocsf(dask_case, tmp_path / "dask.jsonl"))
    assert len(memory) == 9
    assert stored == memory
    assert on_dask == memory


def test_odd_records_still_give_valid_events_in_both_formats(tmp_path: Path) -> None:
    """Numbers where text is usual, missing identities, script text: every record is
    written, and what OCSF types as text is text (Parquet would refuse mixed types)."""
    folder = tmp_path / "odd"
    folder.mkdir()
    events = [
        {"eventId": "odd-1", "eventName": "DescribeKey", "eventTime": "2026-11-29T10:00:00Z",
         "eventVersion": 1, "errorCode": 403, "errorMessage": "<script>alert(1)</script>",
         "serviceName": "Kms", "sourceIpAddress": "",
         "userIdentity": {"type": "ram-user", "accountId": 1234567890123456,
                          "principalId": 42, "userName": "=cmd|' /C calc'!A0"}},
        {"eventId": "odd-2", "eventName": "ListSecrets", "eventTime": "2026-11-29T10:00:01Z",
         "eventType": "ApiCall", "acsRegion": "cn-hangzhou", "sourceIpAddress": "::1",
         "requestParameters": {"PageSize": 100, "Filters": [{"Key": "SecretName"}]}},
        {"eventId": "odd-3", "eventName": "ConsoleSignin", "eventTime": "2026-11-29T10:00:02Z",
         "userIdentity": {"type": "root-account", "accountId": "1234567890123456"},
         "additionalEventData": {"mfaChecked": True}, "serviceName": "AasSub"},
    ]  # fmt: skip
    (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    records = [
        {"time": "2026-11-29T10:00:03Z", "api_name": "Decrypt", "request_id": "k-1",
         "status_code": "500", "client_ip": "10.1.1.1", "access_key_id": "KAAP.x"},
        {"time": "2026-11-29T10:00:04Z", "api_name": "GetSecretValue", "request_id": "k-2",
         "instance_id": "kst-odd", "identity_type": "", "resource_id": "日本/鍵"},
    ]  # fmt: skip
    (folder / "kms.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    case = kf.load(folder, progress=False)
    loaded = len(case.actiontrail) + len(case.kms)
    assert loaded == 5
    lines = [json.loads(x) for x in kf.export_ocsf(case, tmp_path / "odd.jsonl").open()]
    table = pq.read_table(kf.export_ocsf(case, tmp_path / "odd.parquet"))
    assert len(lines) == table.num_rows == loaded
    for record in lines:
        validate(record)
    by_uid = {r["metadata"]["uid"]: r for r in lines}
    assert by_uid["odd-1"]["actor"]["user"]["account"]["uid"] == "1234567890123456"
    assert by_uid["odd-1"]["status_id"] == 2 and by_uid["odd-1"]["status_code"] == "403"
    assert by_uid["odd-2"]["actor"] == {"user": {"type_id": 0, "type": "Unknown"}}  # no identity
    assert by_uid["odd-1"]["api"]["response"]["error_message"] == "<script>alert(1)</script>"
    assert by_uid["odd-3"]["class_uid"] == 3002 and by_uid["odd-3"]["user"]["type_id"] == 2
    assert by_uid["k-1"]["status_id"] == 2 and by_uid["k-1"]["actor"]["user"]["type"] == "aap"
    assert {"uid": "日本/鍵", "type": "secret"} in by_uid["k-2"]["resources"]
