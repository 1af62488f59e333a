"""Sigma for Alibaba: the logsource and pipeline, SigmaHQ's CloudTrail rules adapted to
ActionTrail (a positive and a near miss each), correlations over both logs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import kmsforensics as kf
from kmsforensics.detections import sigma

ACCOUNT = "1388021234567890"


def trail(name: str, n: int, **fields: Any) -> dict[str, Any]:
    """One ActionTrail event, in the order the LookupEvents API happens to return."""
    identity = {
        "userName": fields.pop("user", "ops-admin"),
        "type": fields.pop("identity_type", "ram-user"),
        "principalId": "271234567890123456",
        "accountId": ACCOUNT,
        "accessKeyId": "LTAI5tHandMadeAdminKey",
    }
    event = {
        "eventName": name,
        "eventId": f"{name}-{n:04d}",
        "eventTime": fields.pop("time", f"2026-11-28T03:{n % 60:02d}:00Z"),
        "serviceName": fields.pop("service", "Ram"),
        "userIdentity": identity,
        "sourceIpAddress": fields.pop("ip", "198.51.100.40"),
        "eventType": fields.pop("eventType", "ApiCall"),
        "requestParameters": fields.pop("params", {}),
        "acsRegion": "cn-beijing",
        "requestId": f"R-{name}-{n:04d}",
        "eventVersion": "1",
        "userAgent": fields.pop("agent", "aliyun-cli/3.0.210"),
    }
    event.update(fields)
    return event


def kms(n: int, key: str, secret: str, minute: float, **fields: Any) -> dict[str, Any]:
    """One KMS access-log record, fields in reverse alphabetical order."""
    seconds = int(minute * 60)
    record = {
        "version": "V1.0",
        "useragent": "aliyun-kms-sdk-go/1.2",
        "user_id": ACCOUNT,
        "time": f"2026-11-28T05:{seconds // 60:02d}:{seconds % 60:02d}Z",
        "status_code": 200,
        "share_gateway_api_name": "",
        "resource_id": secret,
        "request_id": f"kms-{n:05d}",
        "region_id": "cn-beijing",
        "principal_id": "svc-batch",
        "level": "INFO",
        "instance_id": "kst-bjj00handmade000001",
        "identity_type": "ram-user",
        "error_message": "",
        "client_ip": fields.pop("ip", "10.9.0.5"),
        "api_version": "dkms-gcs-0.2",
        "api_name": fields.pop("api", "GetSecretValue"),
        "account_id": ACCOUNT,
        "access_key_id": key,
        "secret_name": secret,
    }
    record.update(fields)
    return record


def load(tmp_path: Path, events: list[dict[str, Any]], records: list[dict[str, Any]]) -> kf.Case:
    folder = tmp_path / "evidence"
    folder.mkdir(exist_ok=True)
    if events:
        page = {"RequestId": "X", "NextToken": "", "Events": events}
        (folder / "lookup.json").write_text(json.dumps(page))
    if records:
        lines = "\n".join(json.dumps(r) for r in records) + "\n"
        (folder / "kms_audit_log.json.gz").write_bytes(gzip.compress(lines.encode()))
    return kf.load(folder, progress=False)


def evidence(found: Any) -> set[str]:
    return {e for row in found.evidence for e in row}


# rule file -> (positive events, near misses)
CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "actiontrail_trail_change.yml": (
        [trail("StopLogging", 1, service="Actiontrail"),
         trail("UpdateTrail", 2, service="Actiontrail")],
        [trail("DescribeTrails", 3, service="Actiontrail"),
         trail("StopLogging", 4, service="Sls")],
    ),
    "console_signin_without_mfa.yml": (
        [trail("ConsoleSignin", 1, service="AasSub",
               additionalEventData={"mfaChecked": "false"})],
        [trail("ConsoleSignin", 2, service="AasSub", additionalEventData={"mfaChecked": "true"}),
         trail("ConsoleSignin", 3, service="AasSub", additionalEventData={"mfaChecked": "false"},
               errorCode="InvalidPassword", errorMessage="Password is incorrect")],
    ),
    "console_signin_failed.yml": (
        [trail("ConsoleSignin", 1, service="AasSub", errorCode="InvalidPassword",
               errorMessage="Password is incorrect")],
        [trail("ConsoleSignin", 2, service="AasSub", errorCode="", errorMessage=""),
         trail("ConsoleSignout", 3, service="AasSub", errorCode="Throttling")],
    ),
    "ram_backdoor_user_keys.yml": (
        [trail("CreateAccessKey", 1, params={"UserName": "payroll-bot"})],
        [trail("CreateAccessKey", 2, params={"UserName": "ops-admin"}),
         trail("CreateAccessKey", 3, params={}),
         trail("CreateUser", 4, params={"UserName": "payroll-bot"})],
    ),
    "root_account_usage.yml": (
        [trail("DescribeRegions", 1, service="Ecs", identity_type="root-account")],
        [trail("DescribeRegions", 2, service="Ecs"),
         trail("AssumeRole", 3, service="Sts", identity_type="root-account",
               eventType="AliyunServiceEvent")],
    ),
    "ram_login_profile_modified.yml": (
        [trail("UpdateLoginProfile", 1, params={"UserName": "finance-ro", "Password": "x"})],
        [trail("UpdateLoginProfile", 2, params={"UserName": "ops-admin"}),
         trail("GetLoginProfile", 3, params={"UserName": "finance-ro"})],
    ),
    "kms_key_material_change.yml": (
        [trail("DeleteKeyMaterial", 1, service="Kms", params={"KeyId": "key-bjj1"}),
         trail("ImportKeyMaterial", 2, service="Kms", params={"KeyId": "key-bjj2"})],
        [trail("GetParametersForImport", 3, service="Kms"),
         trail("DeleteKeyMaterial", 4, service="Ecs")],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_adapted_sigmahq_rule_finds_its_event_and_not_the_near_misses(
    name: str, tmp_path: Path
) -> None:
    positives, negatives = CASES[name]
    rule = sigma.SIGMAHQ / name
    text = yaml.safe_load(rule.read_text())
    assert text["logsource"] == {"product": "alibaba", "service": "actiontrail"}
    assert text["related"][0]["type"] == "derived" and "SigmaHQ" in text["author"]
    assert any(t.startswith("attack.t") for t in text["tags"])
    case = load(tmp_path, positives + negatives, [])
    assert len(case.actiontrail) == len(positives) + len(negatives)
    found = kf.detect_sigma(case, rule)
    assert evidence(found) == {e["eventId"] for e in positives}
    assert set(found.rule_id) == {f"sigma:{text['id']}"}
    first_tag = next(t for t in text["tags"] if t.startswith("attack.t"))
    assert first_tag.split(".", 1)[1].upper() in found.iloc[0].technique


def test_every_adapted_rule_is_tested_and_attributed() -> None:
    files = sorted(p.name for p in sigma.SIGMAHQ.glob("*.yml"))
    assert files == sorted(CASES) and len(files) >= 5
    readme = (sigma.SIGMAHQ / "README.md").read_text()
    for name in files:
        original = yaml.safe_load((sigma.SIGMAHQ / name).read_text())["related"][0]["id"]
        assert name in readme and original in readme
    assert "Detection Rule License" in readme


EVENT_COUNT = """
title: Console sign-in failures from one address
id: 9f0c1d2e-0000-4000-8000-00000000e001
status: test
correlation:
    type: event_count
    generate: true
    rules:
        - 23a254b0-a1ba-465e-96dd-ec097e65cc97
    group-by:
        - sourceIPAddress
    timespan: 10m
    condition:
        gte: 5
tags:
    - attack.credential-access
    - attack.t1110.001
level: high
"""


def test_event_count_correlation_over_an_adapted_rule(tmp_path: Path) -> None:
    def failure(n: int, ip: str, minute: int) -> dict[str, Any]:
        return trail("ConsoleSignin", n, service="AasSub", ip=ip, errorCode="InvalidPassword",
                     time=f"2026-11-28T{minute // 60:02d}:{minute % 60:02d}:30Z")  # fmt: skip

    burst = [failure(i, "203.0.113.90", 60 + i) for i in range(5)]
    short = [failure(10 + i, "203.0.113.91", 60 + i) for i in range(4)]
    spread = [failure(20 + i, "203.0.113.92", 60 + 25 * i) for i in range(5)]
    case = load(tmp_path, burst + short + spread, [])
    rules = (sigma.SIGMAHQ / "console_signin_failed.yml").read_text() + "\n---\n" + EVENT_COUNT
    found = kf.detect_sigma(case, rules)
    correlated = found[found.rule_id == "sigma:9f0c1d2e-0000-4000-8000-00000000e001"]
    assert len(correlated) == 1
    assert set(correlated.iloc[0].evidence) == {e["eventId"] for e in burst}
    assert correlated.iloc[0].technique == "T1110.001"
    assert correlated.iloc[0].severity == "high"
    single = found[found.rule_id == "sigma:23a254b0-a1ba-465e-96dd-ec097e65cc97"]
    assert len(single) == 14  # generate: true, so the base rule reports every failure too
    quiet = kf.detect_sigma(case, rules.replace("generate: true", "generate: false"))
    assert set(quiet.rule_id) == {"sigma:9f0c1d2e-0000-4000-8000-00000000e001"}


def test_value_count_correlation_over_the_kms_log(tmp_path: Path) -> None:
    sweep = [kms(i, "STS.SweepKey1", f"prod/app{i}/db", 2 + i * 0.5) for i in range(10)]
    repeats = [kms(20 + i, "STS.BusyButBoring", f"prod/app{i % 9}/db", 2 + i * 0.2)
               for i in range(30)]  # fmt: skip
    slow = [kms(60 + i, "STS.SlowReader", f"prod/app{i}/db", i * 5.5) for i in range(10)]
    other = [kms(80 + i, "STS.SweepKey2", f"prod/app{i}/db", 3 + i * 0.3, api="Decrypt")
             for i in range(10)]  # fmt: skip
    case = load(tmp_path, [], sweep + repeats + slow + other)
    assert len(case.kms) == 60
    found = kf.detect_sigma(case, sigma.EXAMPLES / "kms_secret_sweep.yml")
    sweeps = found[found.rule_id == "sigma:64c3856d-ae7c-48d3-9097-d7bf672694d9"]
    assert len(sweeps) == 1
    assert set(sweeps.iloc[0].evidence) == {r["request_id"] for r in sweep}
    assert sweeps.iloc[0].technique == "T1555.006"
    assert "STS.SweepKey1" in sweeps.iloc[0].summary  # as the log spells it, not lower case
    assert sweeps.iloc[0].first_seen == kf.case.to_utc(sweep[0]["time"])


def test_kms_rules_take_cloudtrail_names_and_gateway_calls(tmp_path: Path) -> None:
    records = [
        kms(1, "KAAP.a", "s1", 1, ip="192.0.2.200"),
        kms(2, "KAAP.a", "s1", 2, ip="10.9.0.5"),
        kms(3, "KAAP.b", "s2", 3, api="ShareGatewayCall", share_gateway_api_name="GetSecretValue"),
    ]
    case = load(tmp_path, [], records)
    rule = """
title: KMS call from an outside address
id: 9f0c1d2e-0000-4000-8000-00000000e002
status: test
logsource: {product: alibaba, service: kms}
detection:
    selection:
        sourceIPAddress|cidr: 192.0.2.0/24
        eventName: GetSecretValue
    condition: selection
level: medium
"""
    assert evidence(kf.detect_sigma(case, rule)) == {"kms-00001"}
    found = kf.detect_sigma(case, sigma.EXAMPLES / "kms_secret_sweep.yml")
    assert found.empty  # two keys, one secret each: no sweep


def test_a_rule_for_another_log_source_is_skipped_with_a_note(tmp_path: Path) -> None:
    case = load(tmp_path, [trail("StopLogging", 1, service="Actiontrail")], [])
    windows = """
title: A Windows rule
id: 9f0c1d2e-0000-4000-8000-00000000e003
status: test
logsource: {product: windows, category: process_creation}
detection:
    selection: {Image|endswith: '\\\\cmd.exe'}
    condition: selection
level: low
"""
    rules = windows + "\n---\n" + (sigma.SIGMAHQ / "actiontrail_trail_change.yml").read_text()
    with pytest.warns(kf.DetectionNote, match="A Windows rule"):
        found = kf.detect_sigma(case, rules)
    assert evidence(found) == {"StopLogging-0001"}
    assert "A Windows rule" in found.attrs["notes"]


def test_bundled_incident_secret_sweep_and_key_material(tmp_path: Path) -> None:
    case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence", progress=False)
    found = kf.detect_sigma(case, [sigma.EXAMPLES / "kms_secret_sweep.yml", sigma.SIGMAHQ])
    sweep = found[found.rule_id == "sigma:64c3856d-ae7c-48d3-9097-d7bf672694d9"]
    assert len(sweep) == 1
    rows = case.kms[case.kms.request_id.isin(set(sweep.iloc[0].evidence))]
    assert len(rows) == sweep.iloc[0].event_count >= 10
    assert rows.access_key_id.nunique() == 1 and rows.secret_name.nunique() >= 10
    assert str(rows.access_key_id.iloc[0]).startswith("STS.")
    material = found[found.rule_id == "sigma:2de5b6b3-41e0-4e0f-8a53-7b8f79269b72"]
    deleted = case.actiontrail.loc[case.actiontrail.eventName == "DeleteKeyMaterial", "eventId"]
    assert evidence(material) == set(deleted) and len(deleted) == 1
    assert kf.detect_sigma is sigma.detect  # the first name still works


def test_a_dask_case_gives_the_same_findings(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    events = [trail("StopLogging", 1, service="Actiontrail")]
    records = [kms(i, "STS.SweepKey1", f"prod/app{i}/db", 2 + i * 0.5) for i in range(10)]
    memory = load(tmp_path, events, records)
    kf.ingest(tmp_path / "evidence", out=tmp_path / "store", progress=False)
    rules = [sigma.EXAMPLES, sigma.SIGMAHQ]
    expected = kf.detect_sigma(memory, rules)
    assert len(expected) == 3  # trail stopped (example and SigmaHQ), the sweep
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                     dashboard_address=":0") as cluster,
        Client(cluster),
    ):  # fmt: skip
        found = kf.detect_sigma(kf.load(tmp_path / "store", engine="dask"), rules)
    columns = ["rule_id", "evidence", "first_seen", "last_seen", "event_count"]
    assert found[columns].to_dict("records") == expected[columns].to_dict("records")
