"""Each rule on small crafted evidence: a positive, a negative, thresholds at their edges.

Events are written as JSON lines files and loaded with kf.load, as an analyst would.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import (
    ACCOUNT_DEV,
    ACCOUNT_PROD,
    at_event,
    kms_record,
    lookup_events_page,
    oss_array,
    sls_record,
)

import kmsforensics as kf

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)  # a Monday, 10:00 in UTC+8
USER = {
    "type": "ram-user",
    "accountId": ACCOUNT_DEV,
    "principalId": "238902601002291234",
    "userName": "alice",
    "accessKeyId": "LTAI5tQ8bYp3nVx2KcR7mWzA",
}
_ids = itertools.count(1)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ev(t: datetime, name: str, service: str = "Kms", **overrides: Any) -> dict[str, Any]:
    """An ActionTrail event at ``t`` (by alice's AccessKey unless overridden)."""
    n = next(_ids)
    event = at_event(n, eventName=name, serviceName=service, userIdentity=dict(USER))
    event.update(eventTime=iso(t), eventId=f"EVT-{n:08d}", requestId=f"REQ-{n:08d}")
    event["requestParameters"] = overrides.pop("params", {})
    event.update(overrides)
    return event


def kl(t: datetime, api: str, **overrides: Any) -> dict[str, Any]:
    """A KMS access-log record at ``t``."""
    n = next(_ids)
    record = kms_record(n, api_name=api, time=iso(t), request_id=f"kms-{n:08d}")
    record.update(overrides)
    return record


def detect(
    tmp_path: Path,
    events: list[dict[str, Any]] = (),  # type: ignore[assignment]
    records: list[dict[str, Any]] = (),  # type: ignore[assignment]
    **kwargs: Any,
) -> pd.DataFrame:
    folder = tmp_path / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    if events:
        (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    if records:
        (folder / "kms.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    case = kf.load(folder, progress=False)
    return kf.detect(case, **kwargs)


def found(findings: pd.DataFrame, rule_id: str) -> pd.DataFrame:
    return findings[findings.rule_id == rule_id]


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


# -- single events ------------------------------------------------------------------------


def test_d04_key_deletion_with_its_impact(tmp_path: Path) -> None:
    key = "key-hzz0000deadbeef"
    events = [
        ev(T0, "ScheduleKeyDeletion", params={"KeyId": key, "PendingWindowInDays": 7}),
        ev(T0, "DescribeKey", params={"KeyId": key}),
    ]
    failures = [
        kl(
            T0 + minutes(i + 1),
            "Decrypt",
            status_code=400,
            error_code="Rejected.Disabled",
            resource_id=key,
            resource_parameters=json.dumps({"key_id": key}),
        )
        for i in range(3)
    ]
    findings = found(detect(tmp_path, events, failures, rules="D04"), "D04")
    assert len(findings) == 1
    row = findings.iloc[0]
    assert row.entity == f"key:{key}" and row.severity == "critical"
    assert row.evidence == (events[0]["eventId"],)
    assert "pending window 7 days" in row.summary and "3 failed KMS calls" in row.summary


def test_d04_ignores_failed_attempts_and_other_calls(tmp_path: Path) -> None:
    events = [
        ev(
            T0, "ScheduleKeyDeletion", params={"KeyId": "key-1"}, errorCode="Forbidden.NoPermission"
        ),
        ev(T0, "CancelKeyDeletion", params={"KeyId": "key-1"}),
    ]
    assert found(detect(tmp_path, events, rules="D04"), "D04").empty


def test_d05_disable_and_protection_off_but_not_protection_on(tmp_path: Path) -> None:
    events = [
        ev(T0, "DisableKey", params={"KeyId": "key-a"}),
        ev(
            T0,
            "SetDeletionProtection",
            params={"KeyId": "key-b", "EnableDeletionProtection": "false"},
        ),
        ev(
            T0, "SetDeletionProtection", params={"KeyId": "key-c", "EnableDeletionProtection": True}
        ),
    ]
    findings = found(detect(tmp_path, events, rules="D05"), "D05")
    assert sorted(findings.entity) == ["key:key-a", "key:key-b"]


def test_d06_byok_import_and_external_origin(tmp_path: Path) -> None:
    events = [
        ev(T0, "ImportKeyMaterial", params={"KeyId": "key-x"}),
        ev(T0 + minutes(90), "CreateKey", params={"Origin": "EXTERNAL"}),
        ev(T0 + minutes(200), "CreateKey", params={"Origin": "Aliyun_KMS"}),
    ]
    findings = found(detect(tmp_path, events, rules="D06"), "D06")
    assert len(findings) == 2
    assert events[2]["eventId"] not in {e for ev_ in findings.evidence for e in ev_}


def test_d07_policy_granting_a_foreign_account_is_high(tmp_path: Path) -> None:
    foreign = '{"Statement":[{"Principal":{"RAM":["acs:ram::1111222233334444:root"]}}]}'
    own = f'{{"Statement":[{{"Principal":{{"RAM":["acs:ram::{ACCOUNT_DEV}:root"]}}}}]}}'
    events = [
        ev(T0, "SetKeyPolicy", params={"KeyId": "key-f", "Policy": foreign}),
        ev(T0 + minutes(120), "SetKeyPolicy", params={"KeyId": "key-o", "Policy": own}),
        ev(T0 + minutes(240), "GetKeyPolicy", params={"KeyId": "key-r"}),  # reading is not D07
    ]
    findings = found(detect(tmp_path, events, rules="D07"), "D07").set_index("entity")
    assert sorted(findings.index) == ["key:key-f", "key:key-o"]
    assert findings.loc["key:key-f", "severity"] == "high"
    assert "1111222233334444" in findings.loc["key:key-f", "summary"]
    assert findings.loc["key:key-o", "severity"] == "medium"


def test_d08_widening_a_network_rule_is_high(tmp_path: Path) -> None:
    events = [
        ev(T0, "UpdateNetworkRule", params={"Name": "net", "SourcePrivateIp": '["0.0.0.0/0"]'}),
        ev(
            T0 + minutes(120),
            "UpdateNetworkRule",
            params={"Name": "net2", "SourcePrivateIp": '["10.0.0.0/24"]'},
        ),
        ev(T0, "ListNetworkRules"),
    ]
    findings = found(detect(tmp_path, events, rules="D08"), "D08")
    assert sorted(findings.severity) == ["high", "medium"]


def test_d10_forced_secret_deletion_is_high_and_service_rotation_is_not_flagged(
    tmp_path: Path,
) -> None:
    system = {"type": "system", "accountId": ACCOUNT_DEV, "userName": "kms.aliyuncs.com"}
    events = [
        ev(T0, "DeleteSecret", params={"SecretName": "db", "ForceDeleteWithoutRecovery": "true"}),
        ev(T0, "RotateSecret", params={"SecretName": "rds"}, userIdentity=system),
    ]
    findings = found(detect(tmp_path, events, rules="D10"), "D10")
    assert list(findings.severity) == ["high"]
    assert findings.iloc[0].evidence == (events[0]["eventId"],)


def test_d21_signin_without_mfa_only_when_successful_and_false(tmp_path: Path) -> None:
    def signin(t: datetime, mfa: str, error: str = "") -> dict[str, Any]:
        return ev(
            t,
            "ConsoleSignin",
            "AasSub",
            eventType="ConsoleSignin",
            errorMessage=error,
            additionalEventData={"mfaChecked": mfa},
        )

    events = [signin(T0, "false"), signin(T0, "true"), signin(T0, "false", "Password is incorrect")]
    findings = found(detect(tmp_path, events, rules="D21"), "D21")
    assert [f for ev_ in findings.evidence for f in ev_] == [events[0]["eventId"]]


def test_d23_root_use_but_not_service_events(tmp_path: Path) -> None:
    root = {
        "type": "root-account",
        "accountId": ACCOUNT_DEV,
        "principalId": ACCOUNT_DEV,
        "accessKeyId": "LTAIroot0000000000000000",
    }
    events = [
        ev(T0, "Decrypt", userIdentity=root),
        ev(T0, "CreateKey", userIdentity=root, eventType="AliyunServiceEvent"),
    ]
    findings = found(detect(tmp_path, events, rules="D23"), "D23")
    assert [e for ev_ in findings.evidence for e in ev_] == [events[0]["eventId"]]


def test_d26_trail_stopped_but_not_described(tmp_path: Path) -> None:
    events = [
        ev(T0, "StopLogging", "Actiontrail", params={"Name": "trail"}),
        ev(T0, "DescribeTrails", "Actiontrail"),
    ]
    findings = found(detect(tmp_path, events, rules="D26"), "D26")
    assert len(findings) == 1 and findings.iloc[0].severity == "high"
    assert findings.iloc[0].entity == f"account:{ACCOUNT_DEV}"


def test_d28_new_access_key_used_from_outside_is_high_and_a_rotation_is_not(
    tmp_path: Path,
) -> None:
    new_key, rotated = "LTAInewkey00000000000000", "LTAIrotated0000000000000"
    later = T0 + timedelta(days=3)
    events = [
        ev(T0, "DescribeKey"),  # the baseline: the organisation works from 203.0.113.0/24
        ev(
            later,
            "CreateAccessKey",
            "Ims",  # IMS counts as RAM
            params={"UserName": "bob"},
            responseElements={"AccessKey": {"AccessKeyId": new_key}},
        ),
        ev(
            later + minutes(30),
            "Decrypt",
            userIdentity={**USER, "accessKeyId": new_key},
            sourceIpAddress="192.0.2.66",
        ),
        ev(
            later + minutes(100),
            "CreateAccessKey",
            "Ram",
            params={"UserName": "backup"},
            responseElements={"AccessKey": {"AccessKeyId": rotated}},
        ),
        ev(later + minutes(110), "Decrypt", userIdentity={**USER, "accessKeyId": rotated}),
        ev(later + minutes(200), "AddUserToGroup", "Ims", params={"UserName": "eve"}),
        ev(later + minutes(400), "ListUsers", "Ram"),  # discovery, not a change
    ]
    findings = found(detect(tmp_path, events, rules="D28"), "D28")
    evidence = {e for ids in findings.evidence for e in ids}
    assert events[-1]["eventId"] not in evidence
    assert events[5]["eventId"] in evidence  # AddUserToGroup through IMS
    high = findings[findings.severity == "high"]
    assert len(high) == 1 and set(high.iloc[0].evidence) == {
        events[1]["eventId"],
        events[2]["eventId"],  # the use that raised it is evidence
    }
    assert events[4]["eventId"] not in evidence  # the rotated key's use raised nothing
    assert "medium" in set(findings.severity)


# -- cross-account and roles ------------------------------------------------------------------


def assume(
    t: datetime,
    account: str,
    session: str,
    key: str,
    ip: str = "203.0.113.7",
    caller: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return ev(
        t,
        "AssumeRole",
        "Sts",
        sourceIpAddress=ip,
        userIdentity=caller or dict(USER),
        params={"RoleArn": f"acs:ram::{account}:role/deploy-role", "RoleSessionName": session},
        responseElements={
            "Credentials": {"AccessKeyId": key},
            "AssumedRoleUser": {"AssumedRoleId": f"3435979260:{session}"},
        },
    )


BOB = {**USER, "principalId": "238902601002295678", "userName": "bob", "accessKeyId": "LTAIbob"}


def test_d19_cross_account_severity_follows_lineage_and_network(tmp_path: Path) -> None:
    events = [
        assume(T0, ACCOUNT_PROD, "s1", "STS.one"),  # baseline: alice -> deploy-role
        assume(T0 + timedelta(days=3), ACCOUNT_PROD, "s2", "STS.two"),  # same path: low
        assume(T0 + timedelta(days=3, hours=2), ACCOUNT_PROD, "s3", "STS.three", ip="192.0.2.66"),
        assume(T0 + timedelta(days=3, hours=4), "9999888877776666", "s4", "STS.four"),
        assume(T0 + timedelta(days=3, hours=6), ACCOUNT_DEV, "s5", "STS.five"),  # same account
        assume(T0 + timedelta(days=3, hours=8), ACCOUNT_PROD, "b1", "STS.bob", caller=BOB),
    ]
    findings = found(
        detect(tmp_path, events, rules="D19", known_accounts=[ACCOUNT_DEV, ACCOUNT_PROD]), "D19"
    )
    by_event = {
        e: s for ids, s in zip(findings.evidence, findings.severity, strict=True) for e in ids
    }
    assert by_event[events[1]["eventId"]] == "low"
    assert by_event[events[2]["eventId"]] == "high"  # a network new to the organisation
    assert by_event[events[3]["eventId"]] == "high"  # an account not the organisation's
    assert events[4]["eventId"] not in by_event
    assert by_event[events[5]["eventId"]] == "medium"  # a new origin on the role
    bob = findings[findings.evidence.map(lambda ids: events[5]["eventId"] in ids)].iloc[0]
    assert bob.origin == f"ram-user:{BOB['principalId']}"
    assert bob.lineage["chain"] == [] and bob.lineage["network"] == "203.0.113.0/24"


def test_d20_role_chain_severity_follows_the_path_baseline(tmp_path: Path) -> None:
    def session(name: str, key: str) -> dict[str, Any]:
        return {
            "type": "assumed-role",
            "accountId": ACCOUNT_PROD,
            "principalId": f"3435979260:{name}",
            "userName": f"deploy-role:{name}",
            "accessKeyId": key,
        }

    later = T0 + timedelta(days=3)
    events = [
        assume(T0, ACCOUNT_PROD, "s1", "STS.one"),  # baseline: alice -> deploy-role -> dev
        assume(T0 + minutes(5), ACCOUNT_DEV, "hop1", "STS.hop1", caller=session("s1", "STS.one")),
        assume(later, ACCOUNT_PROD, "s2", "STS.two"),  # the same chain again: low
        assume(
            later + minutes(5), ACCOUNT_DEV, "hop2", "STS.hop2", caller=session("s2", "STS.two")
        ),
        assume(later, ACCOUNT_PROD, "s3", "STS.three", ip="192.0.2.66"),  # from a VPS: high
        assume(
            later + minutes(6),
            ACCOUNT_DEV,
            "hop3",
            "STS.hop3",
            ip="192.0.2.66",
            caller=session("s3", "STS.three"),
        ),
        assume(later + minutes(7), ACCOUNT_DEV, "x", "STS.x"),  # one hop: not a chain
    ]
    findings = found(detect(tmp_path, events, rules="D20", window_start=later), "D20")
    severity = {ids[0]: s for ids, s in zip(findings.evidence, findings.severity, strict=True)}
    assert severity == {events[3]["eventId"]: "low", events[5]["eventId"]: "high"}
    vps = findings[findings.severity == "high"].iloc[0]
    assert vps.origin == f"ram-user:{USER['principalId']}"  # alice's key, whoever holds it
    assert vps.lineage["chain"] == [f"acs:ram::{ACCOUNT_PROD}:role/deploy-role"]


def test_d30_sts_key_from_assumerole_used_against_kms(tmp_path: Path) -> None:
    events = [
        assume(T0, ACCOUNT_PROD, "s1", "STS.one"),
        assume(T0, ACCOUNT_PROD, "s2", "STS.unused"),
    ]
    records = [
        kl(
            T0 + minutes(2),
            "GetSecretValue",
            access_key_id="STS.one",
            identity_type="ram-role",
            principal_id="3435979260",
            resource_id="db",
        )
    ]
    findings = found(detect(tmp_path, events, records, rules="D30"), "D30")
    assert list(findings.entity) == ["access-key:STS.one"]
    assert set(findings.iloc[0].evidence) == {events[0]["eventId"], records[0]["request_id"]}


# -- thresholds and windows ---------------------------------------------------------------------


def secret_reads(start: datetime, count: int, key: str = "STS.reader", spacing: float = 10) -> list:
    return [
        kl(
            start + timedelta(seconds=spacing * i),
            "GetSecretValue",
            access_key_id=key,
            identity_type="ram-role",
            principal_id="777",
            resource_id=f"app/secret-{i}",
            resource_parameters=json.dumps({"key_id": "key-s"}),
        )
        for i in range(count)
    ]


@pytest.mark.parametrize(("count", "expected"), [(19, 0), (20, 1)])
def test_d01_threshold_edge(tmp_path: Path, count: int, expected: int) -> None:
    findings = found(detect(tmp_path, records=secret_reads(T0, count), rules="D01"), "D01")
    assert len(findings) == expected
    if expected:
        assert findings.iloc[0].event_count == count  # one finding, every read as evidence


def test_d01_reads_spread_beyond_the_window_are_not_mass_retrieval(tmp_path: Path) -> None:
    records = secret_reads(T0, 30, spacing=60)  # one a minute: ~10 per window
    assert found(detect(tmp_path, records=records, rules="D01"), "D01").empty


def test_d01_threshold_is_a_parameter(tmp_path: Path) -> None:
    findings = detect(
        tmp_path, records=secret_reads(T0, 8), rules="D01", params={"D01": {"threshold": 8}}
    )
    assert len(found(findings, "D01")) == 1
    with pytest.raises(kf.detections.UnknownRuleError, match="thresold"):
        kf.detect(
            kf.load(tmp_path / "evidence", progress=False),
            rules="D01",
            params={"D01": {"thresold": 8}},
        )


def test_d03_burst_against_the_principals_baseline(tmp_path: Path) -> None:
    records = []
    for hour in range(48):  # baseline: 5 decrypts every hour
        records += [kl(T0 + timedelta(hours=hour, minutes=m), "Decrypt") for m in range(5)]
    burst_start = T0 + timedelta(days=3)
    records += [kl(burst_start + timedelta(seconds=2 * i), "Decrypt") for i in range(60)]
    findings = found(detect(tmp_path, records=records, rules="D03"), "D03")
    assert len(findings) == 1 and findings.iloc[0].event_count == 60
    calm = found(
        detect(tmp_path, records=records[:-20], rules="D03", params={"D03": {"min_count": 41}}),
        "D03",
    )
    assert calm.empty


def test_d13_key_from_many_networks(tmp_path: Path) -> None:
    ips = ["198.51.100.1", "203.0.113.9", "192.0.2.4"]
    records = [kl(T0 + minutes(i), "Decrypt", client_ip=ip) for i, ip in enumerate(ips)]
    assert len(found(detect(tmp_path, records=records, rules="D13"), "D13")) == 1
    same_net = [kl(T0 + minutes(i), "Decrypt", client_ip=f"10.1.{i}.5") for i in range(3)]
    assert found(detect(tmp_path, records=same_net, rules="D13"), "D13").empty


def aap_failures(count: int, ip: str, start: datetime = T0, step: float = 1) -> list:
    return [
        kl(
            start + minutes(step * i),
            "GetSecretValue",
            account_id="",
            principal_id="",
            identity_type="aap",
            access_key_id=f"KAAP.00000000-0000-4000-8000-{i:012d}",
            status_code=401,
            client_ip=ip,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize(("count", "expected"), [(4, 0), (5, 1)])
def test_d15_aap_not_found_threshold_edge_inside_known_networks(
    tmp_path: Path, count: int, expected: int
) -> None:
    usual = [kl(T0 - timedelta(hours=1), "Decrypt", client_ip="10.0.3.21")]  # the AAP's subnet
    records = usual + aap_failures(count, "10.0.3.40")
    findings = found(detect(tmp_path, records=records, rules="D15", window_start=T0), "D15")
    assert len(findings) == expected
    if expected:
        assert findings.iloc[0].entity == "ip:10.0.3.40"


def test_d15_one_unknown_client_key_from_outside_is_enough(tmp_path: Path) -> None:
    usual = [kl(T0 - timedelta(hours=1), "Decrypt", client_ip="10.0.3.21")]
    findings = found(
        detect(
            tmp_path,
            records=usual + aap_failures(1, "192.0.2.99"),
            rules="D15",
            window_start=T0,
        ),
        "D15",
    )
    assert list(findings.entity) == ["ip:192.0.2.99"]


def test_d15_failures_then_success_of_one_client_key_from_outside(tmp_path: Path) -> None:
    usual = [kl(T0 - timedelta(hours=1), "Decrypt", client_ip="10.0.3.21")]
    tries = [
        kl(T0 + minutes(m), "GetSecretValue", client_ip="192.0.2.151", status_code=401)
        for m in (0, 3, 7, 11)
    ]
    success = kl(T0 + minutes(12), "GetSecretValue", client_ip="192.0.2.151")
    inside = [
        kl(T0 + minutes(m), "GetSecretValue", client_ip="10.0.3.21", status_code=401)
        for m in (20, 21)
    ] + [kl(T0 + minutes(22), "GetSecretValue", client_ip="10.0.3.21")]
    records = usual + tries + [success] + inside
    findings = found(detect(tmp_path, records=records, rules="D15", window_start=T0), "D15")
    evidence = {e for ids in findings.evidence for e in ids}
    assert success["request_id"] in evidence
    assert {r["request_id"] for r in tries} <= evidence
    assert not {r["request_id"] for r in inside} & evidence  # a retry at home is not flagged
    assert "then 1 successful calls" in findings.iloc[0].summary


@pytest.mark.parametrize(("count", "expected"), [(5, 0), (6, 1)])
def test_d16_denied_calls_threshold_edge(tmp_path: Path, count: int, expected: int) -> None:
    events = [
        ev(
            T0 + minutes(i),
            "ListKeys",
            errorCode="Forbidden.NoPermission",
            sourceIpAddress="192.0.2.7",
        )
        for i in range(count)
    ]
    assert len(found(detect(tmp_path, events, rules="D16"), "D16")) == expected


def test_d16_throttling_is_not_an_authorisation_failure(tmp_path: Path) -> None:
    events = [ev(T0 + minutes(i), "Decrypt", errorCode="Throttling.User") for i in range(10)]
    assert found(detect(tmp_path, events, rules="D16"), "D16").empty


@pytest.mark.parametrize(("names", "expected"), [(4, 0), (5, 1)])
def test_d17_distinct_discovery_calls_edge(tmp_path: Path, names: int, expected: int) -> None:
    apis = ["ListKeys", "ListSecrets", "DescribeKey", "ListAliases", "ListKmsInstances"][:names]
    events = [ev(T0 + timedelta(seconds=20 * i), api) for i, api in enumerate(apis * 2)]
    events.append(ev(T0, "GetSecretValue"))  # D01's, never counted here
    assert len(found(detect(tmp_path, events, rules="D17"), "D17")) == expected


def test_d22_spraying_many_users_from_one_address(tmp_path: Path) -> None:
    def failed(t: datetime, user: str) -> dict[str, Any]:
        identity = {**USER, "principalId": f"9{abs(hash(user)) % 10**17:017d}", "userName": user}
        identity.pop("accessKeyId")
        return ev(
            t,
            "ConsoleSignin",
            "AasSub",
            eventType="ConsoleSignin",
            userIdentity=identity,
            errorMessage="Password is incorrect",
            sourceIpAddress="192.0.2.99",
        )

    events = [failed(T0 + minutes(i), u) for i, u in enumerate(["ann", "ben", "cat"])]
    assert len(found(detect(tmp_path, events, rules="D22"), "D22")) == 1
    assert found(detect(tmp_path, events[:2], rules="D22"), "D22").empty


# -- baselines -------------------------------------------------------------------------------------


def test_d02_d11_d25_new_terms_after_the_baseline(tmp_path: Path) -> None:
    baseline = [
        ev(T0 + timedelta(hours=h), "GetSecretValue", params={"SecretName": "app/a"})
        for h in range(0, 40, 4)
    ]
    later = T0 + timedelta(days=3)
    events = [
        *baseline,
        ev(later, "GetSecretValue", params={"SecretName": "app/a"}),  # known: nothing
        ev(later + minutes(1), "GetSecretValue", params={"SecretName": "app/b"}),  # new secret
        ev(
            later + minutes(2),
            "GetSecretValue",
            params={"SecretName": "app/a"},
            sourceIpAddress="192.0.2.50",
        ),  # new address for the key
        ev(later + minutes(3), "ScheduleKeyDeletion", params={"KeyId": "key-z"}),  # new API
    ]
    findings = detect(tmp_path, events, rules=["D02", "D11", "D25"])
    evidence = {
        r: {e for ids in found(findings, r).evidence for e in ids} for r in ("D02", "D11", "D25")
    }
    assert evidence["D02"] == {events[-3]["eventId"]}
    assert evidence["D11"] == {events[-2]["eventId"]}
    assert events[-1]["eventId"] in evidence["D25"]
    assert not any(e["eventId"] in evidence["D25"] for e in baseline)


def test_window_start_sets_the_baseline(tmp_path: Path) -> None:
    events = [
        ev(T0, "GetSecretValue", params={"SecretName": "app/a"}),
        ev(T0 + timedelta(hours=5), "GetSecretValue", params={"SecretName": "app/b"}),
    ]
    late = detect(tmp_path, events, rules="D02", window_start=T0 + timedelta(hours=6))
    assert found(late, "D02").empty  # both reads are history
    early = detect(tmp_path, events, rules="D02", window_start=T0 + timedelta(hours=1))
    assert {e for ids in found(early, "D02").evidence for e in ids} == {events[1]["eventId"]}


@pytest.mark.filterwarnings("ignore::kmsforensics.DetectionNote")
def test_d12_new_agent_family_but_not_a_version_bump(tmp_path: Path) -> None:
    base = [
        ev(T0 + timedelta(hours=h), "Decrypt", userAgent="AlibabaCloud (Linux) Python/3.11.7")
        for h in range(0, 40, 4)
    ]
    later = T0 + timedelta(days=3)
    events = [
        *base,
        ev(later, "Decrypt", userAgent="AlibabaCloud (Linux) Python/3.12.1"),
        ev(later + minutes(1), "Decrypt", userAgent="aliyun-cli/3.0.198 (Linux; amd64) Go/1.21.5"),
    ]
    findings = found(detect(tmp_path, events, rules="D12"), "D12")
    assert {e for ids in findings.evidence for e in ids} == {events[-1]["eventId"]}


def test_d18_caller_identity_from_a_new_network(tmp_path: Path) -> None:
    events = [
        ev(T0, "GetCallerIdentity", "Sts"),
        ev(T0 + timedelta(days=3), "GetCallerIdentity", "Sts"),
        ev(
            T0 + timedelta(days=3, minutes=1),
            "GetCallerIdentity",
            "Sts",
            sourceIpAddress="192.0.2.1",
        ),
    ]
    findings = found(detect(tmp_path, events, rules="D18"), "D18")
    assert {e for ids in findings.evidence for e in ids} == {events[-1]["eventId"]}


def test_d24_sensitive_action_at_night_by_a_person(tmp_path: Path) -> None:
    night = datetime(2026, 3, 5, 18, tzinfo=UTC)  # 02:00 in UTC+8
    events = [
        ev(night, "ScheduleKeyDeletion", params={"KeyId": "key-n"}),
        ev(night + timedelta(hours=8), "ScheduleKeyDeletion", params={"KeyId": "key-d"}),  # 10:00
    ]
    start = night - timedelta(hours=1)
    findings = found(detect(tmp_path, events, rules="D24", window_start=start), "D24")
    assert {e for ids in findings.evidence for e in ids} == {events[0]["eventId"]}
    in_utc = found(detect(tmp_path, events, rules="D24", window_start=start, timezone="UTC"), "D24")
    assert {e for ids in in_utc.evidence for e in ids} == {events[1]["eventId"]}


def test_d27_a_silent_stretch_in_a_busy_trail(tmp_path: Path) -> None:
    gap = range(24 * 60 + 600, 24 * 60 + 840)  # four hours on the second of three days
    events = [ev(T0 + minutes(m), "Decrypt") for m in range(0, 3 * 24 * 60, 2) if m not in gap]
    findings = found(detect(tmp_path, events, rules="D27"), "D27")
    assert len(findings) == 1
    assert findings.iloc[0].details["silent_from"] == pd.Timestamp(T0 + minutes(gap[0]))
    quiet = [e for i, e in enumerate(events) if i % 60 == 0]  # one event every two hours
    assert found(detect(tmp_path, quiet, rules="D27"), "D27").empty


def hourly_trail(
    days: int,
    extra: dict[tuple[int, int], int] | None = None,
    silent: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """A trail with a Decrypt every 20 minutes from Monday 00:00 UTC for ``days`` days.

    ``extra[(day, hour)]`` more events in that UTC hour; ``silent`` = (day, hour): that
    hour has none at all.
    """
    start = T0.replace(hour=0)
    events = []
    for day in range(days):
        for hour in range(24):
            if (day, hour) == silent:
                continue
            moment = start + timedelta(days=day, hours=hour)
            count = 3 + (extra or {}).get((day, hour), 0)
            events += [ev(moment + minutes(60 * i / count), "Decrypt") for i in range(count)]
    return events


def test_d27_a_busy_hour_that_goes_silent_is_a_gap(tmp_path: Path) -> None:
    busy = {(day, 2): 27 for day in range(4)}  # 10:00 in UTC+8: 30 events, every working day
    events = hourly_trail(4, busy, silent=(2, 2))
    findings = found(detect(tmp_path, events, rules="D27"), "D27")
    assert len(findings) == 1, findings.summary.tolist()
    finding = findings.iloc[0]
    # the run starts after the 01:40 event: a quarter of hour 01 (3 events) and hour 02 (30)
    assert finding.details["silent_from"] == pd.Timestamp(T0.replace(hour=1, minute=45)) + (
        pd.Timedelta(days=2)
    )
    assert finding.details["baseline"] == "working days" and finding.details["baseline_days"] == 3
    assert finding.details["expected_low"] == finding.details["expected_high"] == 30.75
    assert finding.details["observed"] == 0
    assert "0 events where the same hours of 3 other days (working days) had 31 to 31" in (
        finding.summary
    )


def test_d27_a_quiet_hour_quiet_every_day_is_no_gap(tmp_path: Path) -> None:
    events = hourly_trail(4, silent=(2, 2))  # three events at that hour on the other days
    lulls_off = {"D27": {"recurring_days": 99}}  # the hour's counts alone decide
    assert found(detect(tmp_path, events, rules="D27", params=lulls_off), "D27").empty


def test_d27_one_busy_day_does_not_make_the_hour_busy(tmp_path: Path) -> None:
    # a one-off batch of 200 at that hour on Monday: a mean rate would expect ~50 on
    # Wednesday; the other days' low end (about 4) makes an empty hour unremarkable
    events = hourly_trail(4, {(0, 2): 200}, silent=(2, 2))
    assert found(detect(tmp_path, events, rules="D27"), "D27").empty


def test_d27_a_weekly_job_silent_on_its_weekday(tmp_path: Path) -> None:
    mondays = {(day, 2): 27 for day in range(0, 28, 7)}  # 30 events at 10:00 on Mondays only
    quiet = found(detect(tmp_path, hourly_trail(28, mondays), rules="D27"), "D27")
    assert quiet.empty, quiet.summary.tolist()
    events = hourly_trail(28, mondays, silent=(21, 2))  # the fourth Monday
    findings = found(detect(tmp_path / "b", events, rules="D27"), "D27")
    assert len(findings) == 1, findings.summary.tolist()
    assert findings.iloc[0].details["baseline"] == "same weekday"
    assert findings.iloc[0].details["baseline_days"] == 3
    # on working days in general the hour is quiet: without enough Mondays, nothing
    fewer = found(detect(tmp_path / "c", events, rules="D27",
                         params={"D27": {"weekly_days": 4}}), "D27")  # fmt: skip
    assert fewer.empty, fewer.summary.tolist()


def test_d27_a_weekend_is_not_judged_against_working_days(tmp_path: Path) -> None:
    office = {(day, hour): 27 for day in range(7) if day < 5 for hour in range(1, 9)}
    events = [
        e
        for e in hourly_trail(7, office)
        if datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00")).weekday() < 5
        or e["eventTime"][11:13] in ("03", "04")  # Saturday and Sunday: a few events
    ]
    lulls_off = {"D27": {"recurring_days": 99}}
    findings = found(detect(tmp_path, events, rules="D27", params=lulls_off), "D27")
    assert findings.empty, findings.summary.tolist()


def test_d27_a_flat_rate_with_one_day_of_evidence(tmp_path: Path) -> None:
    # no other day to compare the hours with: every other hour, scaled to the gap
    start = T0.replace(hour=0)
    gap = range(12 * 60, 16 * 60)
    events = [ev(start + minutes(m), "Decrypt") for m in range(0, 30 * 60, 2) if m not in gap]
    findings = found(detect(tmp_path, events, rules="D27"), "D27")
    assert len(findings) == 1, findings.summary.tolist()
    finding = findings.iloc[0]
    assert finding.details["baseline"] == "any hour" and finding.details["expected_low"] == 120
    assert "where 26 other hours of 2 days had 120 to 120 (median 120) for as long" in (
        finding.summary
    )
    sparse = [e for i, e in enumerate(events) if i % 10 == 0]  # one event every 20 minutes
    assert found(detect(tmp_path / "b", sparse, rules="D27"), "D27").empty


# -- correlations --------------------------------------------------------------------------------


def test_d09_new_client_key_used_from_a_new_address(tmp_path: Path) -> None:
    new_key = "KAAP.11111111-2222-4333-8444-555555555555"
    usual = [
        kl(T0 - timedelta(hours=h), "GetSecretValue", principal_id="aap-pay", client_ip="10.0.0.5")
        for h in range(3)
    ]
    events = [
        ev(
            T0,
            "CreateClientKey",
            params={"AapName": "aap-pay"},
            responseElements={"ClientKeyId": new_key},
        )
    ]
    outside = kl(
        T0 + minutes(20),
        "GetSecretValue",
        principal_id="aap-pay",
        access_key_id=new_key,
        client_ip="192.0.2.66",
    )
    findings = found(detect(tmp_path, events, [*usual, outside], rules="D09"), "D09")
    assert set(findings.iloc[0].evidence) == {events[0]["eventId"], outside["request_id"]}
    inside = {**outside, "client_ip": "10.0.0.5"}
    assert found(detect(tmp_path, events, [*usual, inside], rules="D09"), "D09").empty


def test_d29_change_then_use_by_the_same_key_within_the_hour(tmp_path: Path) -> None:
    events = [
        ev(T0, "UpdatePolicy", params={"Name": "p"}),
        ev(T0 + minutes(10), "GetSecretValue", params={"SecretName": "s"}),
        ev(T0 + timedelta(hours=5), "UpdatePolicy", params={"Name": "p"}),
        ev(T0 + timedelta(hours=7), "GetSecretValue", params={"SecretName": "s"}),  # too late
    ]
    findings = found(detect(tmp_path, events, rules="D29"), "D29")
    assert [set(ids) for ids in findings.evidence] == [{events[0]["eventId"], events[1]["eventId"]}]


# -- the pack ---------------------------------------------------------------------------


def test_every_catalogue_entry_is_a_documented_rule() -> None:
    table = kf.list_rules()
    assert list(table.index) == [f"D{i:02d}" for i in range(1, 34)]
    assert table.technique.str.match(r"^T\d{4}").all()
    assert (table.reads.str.len() > 10).all() and (table.false_positives.str.len() > 10).all()


def test_unknown_rules_are_clear_errors() -> None:
    with pytest.raises(kf.detections.UnknownRuleError, match="D99"):
        kf.detections.registry.select(["D99"])


def test_geo_rules_say_they_were_skipped(tmp_path: Path) -> None:
    with pytest.warns(kf.DetectionNote, match="D14"):
        findings = detect(tmp_path, [ev(T0, "Decrypt")], rules=["D12", "D14"])
    assert set(findings.attrs["notes"]) == {"D12", "D14"}


def geo_database(path: Path) -> Path:
    """A real MaxMind-format database: Amsterdam, Shanghai and São Paulo networks."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-City")
    places = {
        "198.51.100.0/24": ("NL", 64500, 52.37, 4.90),
        "203.0.113.0/24": ("CN", 64501, 31.23, 121.47),
        "192.0.2.0/24": ("BR", 64502, -23.55, -46.63),
    }
    for network, (country, asn, lat, lon) in places.items():
        writer.insert_network(
            IPSet([network]),
            {
                "country": {"iso_code": country},
                "autonomous_system_number": asn,
                "location": {"latitude": lat, "longitude": lon},
            },
        )
    writer.to_db_file(str(path))
    return path


def test_geo_rules_with_a_database(tmp_path: Path) -> None:
    db = geo_database(tmp_path / "city.mmdb")
    base = [
        ev(T0 + timedelta(hours=h), "Decrypt", sourceIpAddress="203.0.113.7")
        for h in range(0, 40, 4)
    ]
    later = T0 + timedelta(days=3)
    events = [
        *base,
        ev(later, "Decrypt", sourceIpAddress="203.0.113.7"),
        ev(later + minutes(30), "Decrypt", sourceIpAddress="192.0.2.9"),  # Brazil, 30 min later
    ]
    findings = detect(tmp_path, events, rules=["D12", "D14"], geoip=db)
    assert findings.attrs["notes"] == {}
    travel = found(findings, "D14")
    assert len(travel) == 1
    assert set(travel.iloc[0].evidence) == {events[-2]["eventId"], events[-1]["eventId"]}
    new_places = " ".join(found(findings, "D12").summary)
    assert "asn 64502" in new_places and "country BR" in new_places


# -- the reworked rules: prevalence, horizons, habits --------------------------------------------


def test_d12_the_same_cli_on_another_platform_is_new(tmp_path: Path) -> None:
    mac = "aliyun-cli/3.0.190 (Darwin; arm64) Go/1.21.5"
    base = [ev(T0 + timedelta(hours=h), "Decrypt", userAgent=mac) for h in range(0, 40, 4)]
    later = T0 + timedelta(days=3)
    events = [
        *base,
        ev(later, "Decrypt", userAgent=mac.replace("3.0.190", "3.0.204")),  # an upgrade
        ev(later + minutes(1), "Decrypt", userAgent="aliyun-cli/3.0.204 (Linux; amd64) Go/1.22"),
    ]
    findings = found(detect(tmp_path, events, rules="D12"), "D12")
    assert {e for ids in findings.evidence for e in ids} == {events[-1]["eventId"]}
    assert findings.iloc[0].severity == "medium"  # no one in the organisation used it


def test_d11_an_address_the_office_shares_is_low_and_a_new_one_high(tmp_path: Path) -> None:
    office = "203.0.113.8"
    base = [
        ev(T0 + timedelta(hours=h), "Decrypt", sourceIpAddress="203.0.113.30")
        for h in range(0, 40, 4)
    ]
    base += [  # bob works from the office NAT
        ev(T0 + timedelta(hours=h), "Decrypt", userIdentity=BOB, sourceIpAddress=office)
        for h in range(1, 40, 4)
    ]
    later = T0 + timedelta(days=3)
    nat = ev(later, "Decrypt", sourceIpAddress=office)  # new to alice, not to the organisation
    vps = ev(later + timedelta(hours=2), "Decrypt", sourceIpAddress="192.0.2.150")
    findings = found(detect(tmp_path, [*base, nat, vps], rules="D11"), "D11")
    by_event = {ids[0]: s for ids, s in zip(findings.evidence, findings.severity, strict=True)}
    assert by_event == {nat["eventId"]: "low", vps["eventId"]: "high"}


def slow_reads(start: datetime, count: int, every: timedelta, ip: str) -> list[dict[str, Any]]:
    """A session chain's GetSecretValue calls, one distinct secret each."""
    return [
        ev(
            start + every * i,
            "GetSecretValue",
            params={"SecretName": f"prod/secret-{i}"},
            sourceIpAddress=ip,
        )
        for i in range(count)
    ]


def test_d01_long_horizon_distinct_secrets_over_days(tmp_path: Path) -> None:
    base = slow_reads(T0, 6, timedelta(hours=3), "203.0.113.7")  # baseline: 3 a day at most
    later = T0 + timedelta(days=3)
    theft = slow_reads(later, 25, timedelta(minutes=80), "192.0.2.150")  # 25 over 33 hours
    findings = found(detect(tmp_path, base + theft, rules="D01", window_start=later), "D01")
    assert len(findings) == 1
    slow = findings.iloc[0]
    assert set(slow.evidence) == {e["eventId"] for e in theft}
    assert "25 distinct secrets read over" in slow.summary and slow.severity == "high"
    assert slow.origin == f"ram-user:{USER['principalId']}"


def test_d01_long_horizon_stays_quiet_below_the_origins_daily_high(tmp_path: Path) -> None:
    base = slow_reads(T0, 30, timedelta(minutes=40), "203.0.113.7")  # 30 a day, usually
    later = T0 + timedelta(days=3)
    same = slow_reads(later, 25, timedelta(minutes=80), "203.0.113.7")
    assert found(detect(tmp_path, base + same, rules="D01", window_start=later), "D01").empty


def test_d17_a_usual_enumerator_is_low(tmp_path: Path) -> None:
    apis = ["ListKeys", "ListSecrets", "DescribeKey", "ListAliases", "ListKmsInstances"]
    later = T0 + timedelta(days=3)
    nightly = [ev(T0 + timedelta(seconds=20 * i), api) for i, api in enumerate(apis)]
    again = [ev(later + timedelta(seconds=20 * i), api) for i, api in enumerate(apis)]
    stranger = [
        ev(later + timedelta(seconds=20 * i), api, userIdentity=BOB) for i, api in enumerate(apis)
    ]
    findings = found(
        detect(tmp_path, nightly + again + stranger, rules="D17", window_start=later), "D17"
    )
    severity = {ids[0]: s for ids, s in zip(findings.evidence, findings.severity, strict=True)}
    assert severity == {again[0]["eventId"]: "low", stranger[0]["eventId"]: "medium"}


def test_d21_a_known_exemption_is_low(tmp_path: Path) -> None:
    def signin(t: datetime, ip: str) -> dict[str, Any]:
        return ev(
            t,
            "ConsoleSignin",
            "AasSub",
            eventType="ConsoleSignin",
            sourceIpAddress=ip,
            additionalEventData={"mfaChecked": "false"},
        )

    later = T0 + timedelta(days=3)
    events = [
        signin(T0, "203.0.113.7"),
        signin(later, "203.0.113.7"),
        signin(later + timedelta(hours=2), "192.0.2.80"),
    ]
    findings = found(detect(tmp_path, events, rules="D21", window_start=later), "D21")
    assert sorted(findings.severity) == ["low", "medium"]


def test_d27_a_lull_every_night_is_not_a_gap_but_a_stopped_trail_is(tmp_path: Path) -> None:
    lull = range(18 * 60, 18 * 60 + 45)  # every day 18:00-18:45 UTC (02:00 in UTC+8)
    events = [
        ev(T0.replace(hour=0) + minutes(m), "Decrypt")
        for m in range(0, 4 * 24 * 60, 2)
        if m % (24 * 60) not in lull
    ]
    assert found(detect(tmp_path, events, rules="D27"), "D27").empty
    stop_at = T0.replace(hour=0) + timedelta(days=2, hours=6)
    stopped = [
        e
        for e in events
        if not stop_at
        <= datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00"))
        < stop_at + timedelta(hours=3)
    ]
    stop = ev(stop_at, "StopLogging", "Actiontrail", params={"Name": "trail"})
    start = ev(stop_at + timedelta(hours=3, minutes=1), "StartLogging", "Actiontrail")
    findings = found(detect(tmp_path, [*stopped, stop, start], rules="D27"), "D27")
    assert len(findings) == 1
    assert {stop["eventId"], start["eventId"]} <= set(findings.iloc[0].evidence)
    assert "StopLogging by alice" in findings.iloc[0].summary
    assert "StartLogging at 09:01 (logging stopped 3.0 h)" in findings.iloc[0].summary


# -- the rule objects, incidents and ids ------------------------------------------------------


def test_parameters_are_typed_and_checked() -> None:
    rules = kf.detections.RULES
    assert rules["D01"].resolve({"threshold": 5}).threshold == 5
    for bad in ({"threshold": "many"}, {"threshold": -1}, {"window": "soon"}):
        with pytest.raises(kf.UnknownRuleError, match="D01"):
            rules["D01"].resolve(bad)
    with pytest.raises(kf.UnknownRuleError, match="include_services"):
        rules["D30"].resolve({"include_services": "yes"})
    assert rules["D14"].needs_geo == "required" and rules["D12"].needs_geo == "partial"
    assert {r.rule_id for r in rules.values() if r.first_seen} == {
        "D02",
        "D11",
        "D12",
        "D18",
        "D25",
    }


def test_list_rules_replaces_rules_and_the_subpackage_imports() -> None:
    import importlib

    keys = importlib.import_module("kmsforensics.detections.rules.keys")
    assert keys.key_deletion.rule_id == "D04"
    with pytest.warns(FutureWarning, match="list_rules"):
        old = kf.rules()
    assert old.equals(kf.list_rules())


def test_finding_ids_are_stable_and_incidents_rank_the_attack_first(tmp_path: Path) -> None:
    base = [ev(T0 + timedelta(hours=h), "DescribeKey") for h in range(0, 40, 4)]
    base.append(assume(T0, ACCOUNT_PROD, "s1", "STS.one"))
    later = T0 + timedelta(days=3)
    routine = [assume(later, ACCOUNT_PROD, "s2", "STS.two")]
    attack = [
        ev(later, "GetCallerIdentity", "Sts", sourceIpAddress="192.0.2.150"),
        assume(later + minutes(1), ACCOUNT_PROD, "x", "STS.x", ip="192.0.2.150"),
        *slow_reads(later + minutes(2), 25, timedelta(minutes=1), "192.0.2.150"),
    ]
    events = base + routine + attack
    first = detect(tmp_path, events, window_start=later)
    again = detect(tmp_path, events, window_start=later)
    assert first.finding_id.is_unique and list(first.finding_id) == list(again.finding_id)
    ranked = kf.incidents(first)
    top = ranked.iloc[0]
    assert top.group == f"ram-user:{USER['principalId']} from 192.0.2.0/24"
    assert {"D01", "D18", "D19"} <= set(top.rules) and top.severity == "high"
    assert set(top.finding_ids) <= set(first.finding_id)
    assert ranked.score.is_monotonic_decreasing
    assert top.story.startswith(f"ram-user:{USER['principalId']} from 192.0.2.0/24: ")
    assert kf.incidents(first.iloc[:0]).empty


def test_d24_a_learned_working_window_spans_lunch_and_needs_three_days(tmp_path: Path) -> None:
    day0 = datetime(2026, 3, 2, 1, tzinfo=UTC)  # Monday 09:00 in UTC+8
    base = [  # 09:00-18:00 local, never at 12:00, four days
        ev(day0 + timedelta(days=d, hours=h, minutes=10), "DescribeKey")
        for d in range(4)
        for h in (0, 1, 2, 4, 5, 6, 7, 8)
    ]
    later = day0 + timedelta(days=4)
    lunch = ev(later + timedelta(hours=3, minutes=30), "ScheduleKeyDeletion")  # 12:30 local
    evening = ev(later + timedelta(hours=12), "ScheduleKeyDeletion")  # 21:00 local
    events = [*base, lunch, evening]
    findings = found(detect(tmp_path, events, rules="D24", window_start=later), "D24")
    assert {e for ids in findings.evidence for e in ids} == {evening["eventId"]}
    # two baseline days are not enough to learn from: default hours (08-20 on weekdays)
    short = [*base[:16], lunch, evening]
    window = day0 + timedelta(days=2)
    few = found(detect(tmp_path, short, rules="D24", window_start=window, params={
        "D24": {"working_hours": (13, 22), "min_history": 5}}), "D24")  # fmt: skip
    assert {e for ids in few.evidence for e in ids} == {lunch["eventId"]}


def test_d22_a_few_failures_then_a_sign_in(tmp_path: Path) -> None:
    def signin(t: datetime, ip: str, ok: bool, who: dict[str, Any] = USER) -> dict[str, Any]:
        return ev(
            t,
            "ConsoleSignin",
            "AasSub",
            eventType="ConsoleSignin",
            sourceIpAddress=ip,
            userIdentity={k: v for k, v in who.items() if k != "accessKeyId"},
            errorMessage="" if ok else "Password is incorrect",
        )

    later = T0 + timedelta(days=3)
    events = [
        signin(T0, "203.0.113.7", True),  # the baseline: alice signs in from the office
        signin(later, "192.0.2.80", False),
        signin(later + minutes(2), "192.0.2.80", False),
        signin(later + minutes(3), "192.0.2.80", True),  # from a new network: high
        signin(later + timedelta(hours=3), "203.0.113.7", False),
        signin(later + timedelta(hours=3, minutes=1), "203.0.113.7", False),
        signin(later + timedelta(hours=3, minutes=2), "203.0.113.7", True),  # at home: medium
        signin(later + timedelta(hours=6), "192.0.2.81", False, BOB),
        signin(later + timedelta(hours=6, minutes=1), "192.0.2.81", True, BOB),  # one failure
    ]
    findings = found(detect(tmp_path, events, rules="D22", window_start=later), "D22")
    by_event = {
        e: s for ids, s in zip(findings.evidence, findings.severity, strict=True) for e in ids
    }
    assert by_event[events[3]["eventId"]] == "high" and events[1]["eventId"] in by_event
    assert by_event[events[6]["eventId"]] == "medium"
    assert events[8]["eventId"] not in by_event
    assert findings.summary.str.contains("then a successful sign-in").all()


def test_a_triage_record_hides_what_its_suppressions_name(tmp_path: Path) -> None:
    stop = ev(T0, "StopLogging", "Actiontrail", params={"Name": "trail"})
    by_bob = ev(T0 + timedelta(days=1), "StopLogging", "Actiontrail", userIdentity=BOB,
                sourceIpAddress="198.51.100.4", params={"Name": "trail"})  # fmt: skip
    deletion = ev(T0 + minutes(5), "ScheduleKeyDeletion", params={"KeyId": "key-9"})
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in [stop, by_bob, deletion]))
    case = kf.load(folder, progress=False)
    beside = tmp_path / "case-7.triage.json"  # beside the evidence, never inside it
    record = kf.triage.TriageRecord.for_case(case, beside)
    record.suppress("D26", "principal", "alice", reason="trail migration", expires="2099-01-01",
                    analyst="li")  # fmt: skip
    record.suppress("*", "network", "198.51.100.0/24", reason="old VPN", expires="2020-01-01",
                    analyst="li")  # fmt: skip
    with pytest.raises(kf.TriageError, match="inside the evidence"):
        kf.triage.TriageRecord.for_case(case, folder / "triage.json")
    reread = kf.triage.TriageRecord.for_case(case, beside)  # the record as saved
    plain = kf.detect(case, rules=["D04", "D26"])
    kept = kf.detect(case, rules=["D04", "D26"], triage=reread)
    assert len(found(plain, "D26")) == 2
    assert kept.attrs["suppressed"] == {"S1": 1, "S2": 0}  # the expired one hid nothing
    assert [ids for ids in found(kept, "D26").evidence] == [(by_bob["eventId"],)]
    assert len(found(kept, "D04")) == 1  # another rule by alice is kept
    assert json.loads(beside.read_text())["suppressions"][0]["reason"] == "trail migration"


def role_read(t: datetime, key: str, ip: str, secret: str = "prod/ledger-db") -> dict[str, Any]:
    """A role session's GetSecretValue (the payments role, by its renewed STS key)."""
    session = {
        "type": "assumed-role",
        "accountId": ACCOUNT_PROD,
        "principalId": f"3435979260039399:{key[-4:]}",
        "userName": f"payments-role:{key[-4:]}",
        "accessKeyId": key,
    }
    return ev(t, "GetSecretValue", userIdentity=session, sourceIpAddress=ip,
              params={"SecretName": secret})  # fmt: skip


def test_d11_the_later_reads_from_a_new_network_are_evidence(tmp_path: Path) -> None:
    home, vps = "10.20.30.41", "198.51.100.77"
    base = [role_read(T0 + timedelta(hours=h), f"STS.base{h // 6:04d}", home) for h in range(72)]
    start = T0 + timedelta(days=3, hours=1)
    # 3 reads an hour for two days from a network no one used, the STS key renewed every 6 h
    stolen = [
        role_read(start + minutes(20 * i), f"STS.vps{i // 18:04d}", vps, f"prod/s-{i % 25}")
        for i in range(145)
    ]
    at_home = [role_read(start + minutes(20 * i + 7), "STS.home0001", home) for i in range(5)]
    much_later = role_read(start + timedelta(hours=80), "STS.vps9999", vps)
    bob = ev(start + minutes(30), "Decrypt", userIdentity=BOB, sourceIpAddress=vps)
    events = [*base, *stolen, *at_home, much_later, bob]
    findings = found(
        detect(tmp_path, events, rules="D11", params={"D11": {"follow_most": 100}}), "D11"
    )
    mine = findings[findings.entity == "ram-role:3435979260039399"]
    assert len(mine) == 1
    finding = mine.iloc[0]
    evidence = set(finding.evidence)
    assert finding.severity == "high"
    assert evidence == {e["eventId"] for e in stolen[:101]}  # the first, then 100 more
    assert "then 144 more calls from there within 72h (the first 100 in the evidence)" in (
        finding.summary
    )
    assert finding.details == {"later_uses": 144, "later_in_evidence": 100}
    assert finding.event_count == 101
    every = {e for ids in findings.evidence for e in ids}
    assert not {e["eventId"] for e in at_home} & every  # the usual network raised nothing
    assert much_later["eventId"] not in evidence  # past the follow window
    assert bob["eventId"] not in evidence  # another principal's call is not its evidence


def test_d11_a_new_address_used_once_has_only_itself_as_evidence(tmp_path: Path) -> None:
    base = [ev(T0 + timedelta(hours=h), "Decrypt") for h in range(0, 48, 3)]
    once = ev(T0 + timedelta(days=3), "Decrypt", sourceIpAddress="192.0.2.150")
    back = [ev(T0 + timedelta(days=3, hours=h), "Decrypt") for h in (1, 2)]
    finding = found(detect(tmp_path, [*base, once, *back], rules="D11"), "D11").iloc[0]
    assert list(finding.evidence) == [once["eventId"]]
    assert "more calls" not in finding.summary and finding.details is None


def test_d28_every_use_from_outside_is_counted_and_the_earliest_are_evidence(
    tmp_path: Path,
) -> None:
    new_key = "LTAIbackdoor000000000000"
    later = T0 + timedelta(days=3)
    response = {"AccessKey": {"AccessKeyId": new_key, "Status": "Active"}}
    made = ev(later, "CreateAccessKey", "Ims", params={"UserName": "svc-backup"},
              responseElements=response)  # fmt: skip
    signer = {**USER, "accessKeyId": new_key}
    outside = [
        ev(later + minutes(40 + 7 * i), "GetSecretValue", userIdentity=signer,
           sourceIpAddress=f"198.51.100.{60 + i % 2}", params={"SecretName": f"prod/s{i}"})
        for i in range(5)
    ]  # fmt: skip
    inside = ev(later + minutes(45), "Decrypt", userIdentity=signer)  # the usual network
    events = [ev(T0, "DescribeKey"), made, *outside, inside]
    findings = detect(tmp_path, events, rules="D28", params={"D28": {"follow_most": 2}})
    finding = found(findings, "D28").iloc[0]
    assert finding.severity == "high"
    assert set(finding.evidence) == {made["eventId"], outside[0]["eventId"], outside[1]["eventId"]}
    assert "used 5 times from outside" in finding.summary
    assert "the first 2 in the evidence" in finding.summary


def key_tries(start: datetime, ip: str, key: str, fails: int) -> list[dict[str, Any]]:
    """A RAM user's AccessKey denied ``fails`` times on the KMS instance from ``ip``."""
    return [
        kl(start + minutes(2 * i), "GetSecretValue", access_key_id=key, identity_type="ram-user",
           principal_id=USER["principalId"], account_id=ACCOUNT_DEV, client_ip=ip,
           status_code=403, error_message="Forbidden.NoPermission")
        for i in range(fails)
    ]  # fmt: skip


def test_d16_a_few_denials_of_one_key_then_a_success_from_outside_is_high(
    tmp_path: Path,
) -> None:
    vps, key = "198.51.100.23", USER["accessKeyId"]
    base = [ev(T0 + timedelta(hours=h), "Decrypt") for h in range(0, 48, 6)]
    later = T0 + timedelta(days=3)
    tries = key_tries(later, vps, key, 3)
    works = ev(later + minutes(9), "GetSecretValue", sourceIpAddress=vps,
               params={"SecretName": "prod/ledger"})  # fmt: skip
    events, records = [*base, works], tries
    findings = found(detect(tmp_path, events, records, rules="D16"), "D16")
    assert len(findings) == 1  # three denials are below the burst threshold
    finding = findings.iloc[0]
    assert finding.severity == "high" and finding.entity == f"access-key:{key}"
    assert set(finding.evidence) == {r["request_id"] for r in tries} | {works["eventId"]}
    assert "then 1 successful calls from there" in finding.summary


def test_d16_a_retry_at_home_or_one_denial_is_not_a_sequence(tmp_path: Path) -> None:
    vps, key = "198.51.100.23", USER["accessKeyId"]
    base = [ev(T0 + timedelta(hours=h), "Decrypt") for h in range(0, 48, 6)]
    later = T0 + timedelta(days=3)
    home = key_tries(later, "203.0.113.7", key, 3)  # the usual network
    home_ok = ev(later + minutes(8), "Decrypt")
    once = key_tries(later + timedelta(hours=2), vps, key, 1)
    once_ok = ev(later + timedelta(hours=2, minutes=3), "Decrypt", sourceIpAddress=vps)
    other = key_tries(later + timedelta(hours=4), vps, "LTAIsomeoneelse000000000", 3)
    other_ok = ev(later + timedelta(hours=4, minutes=8), "Decrypt", sourceIpAddress=vps)
    late = key_tries(later + timedelta(hours=6), vps, key, 2)
    late_ok = ev(later + timedelta(hours=6, minutes=40), "Decrypt", sourceIpAddress=vps)
    events = [*base, home_ok, once_ok, other_ok, late_ok]
    findings = detect(tmp_path, events, [*home, *once, *other, *late], rules="D16")
    assert found(findings, "D16").empty


def channels_case(tmp_path: Path, oss: list, pages: dict[str, list]) -> pd.DataFrame:
    """OSS delivery (one gz JSON array per day) and LookupEvents pages, loaded, D27 run."""
    folder = tmp_path / "evidence"
    for day in range(3):
        stamp = (T0 + timedelta(days=day)).strftime("%Y%m%d")
        chosen = [e for e in oss if e["eventTime"].replace("-", "")[:8] == stamp]
        oss_array(folder / "delivered" / f"{ACCOUNT_DEV}_{stamp}.json.gz", chosen)
    for name, events in pages.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(lookup_events_page(events))
    case = kf.load(folder, progress=False)
    return found(kf.detect(case, rules="D27"), "D27")


def test_d27_the_delivery_went_quiet_while_lookupevents_has_events(tmp_path: Path) -> None:
    start = T0.replace(hour=0)
    quiet = range(2 * 24 * 60 + 10 * 60, 2 * 24 * 60 + 10 * 60 + 50)  # day 3, 10:00-10:50
    sparse = [ev(start + minutes(m), "Decrypt") for m in range(0, 3 * 24 * 60, 30)]
    delivered = [e for e in sparse if not _at(e, start, quiet)]
    missing = [ev(start + minutes(quiet[0] + m), "GetSecretValue") for m in (5, 20, 41)]
    # the analyst's LookupEvents query: copies of delivered events, and what OSS lacks
    query = [*delivered[-20:-12], *missing]
    findings = channels_case(tmp_path, delivered, {"queried/page-1.json": query})
    assert len(findings) == 1, findings.summary.tolist()
    finding = findings.iloc[0]
    assert finding.severity == "critical" and finding.entity == f"account:{ACCOUNT_DEV}"
    assert "(OSS delivery) silent" in finding.summary
    assert "LookupEvents has 3 events of the account in that span" in finding.summary
    assert {missing[0]["eventId"], missing[-1]["eventId"]} <= set(finding.evidence)
    assert finding.details["channel"] == "oss" and finding.details["lookup_events"] == 3


def test_d27_lookupevents_copies_read_first_do_not_silence_the_delivery(tmp_path: Path) -> None:
    start = T0.replace(hour=0)
    busy = [ev(start + minutes(m), "Decrypt") for m in range(0, 3 * 24 * 60, 2)]
    copies = [e for e in busy if _at(e, start, range(24 * 60 + 600, 24 * 60 + 780))]
    # the pages sort before the delivery: the loader keeps their copies, drops OSS's
    findings = channels_case(tmp_path, busy, {"api/page-1.json": copies})
    assert findings.empty, findings.summary.tolist()
    # copies read after the delivery, and nothing missing from it: nothing either
    assert channels_case(tmp_path / "b", busy, {"zz/page-1.json": copies[:30]}).empty


def test_d27_each_delivery_channel_is_judged_alone(tmp_path: Path) -> None:
    start = T0.replace(hour=0)
    gap = range(24 * 60 + 600, 24 * 60 + 780)  # day 2, 10:00-13:00 UTC
    oss = [ev(start + minutes(m), "Decrypt") for m in range(0, 3 * 24 * 60, 2)]
    sls = [ev(start + minutes(m + 1), "DescribeKey") for m in range(0, 3 * 24 * 60, 2)]
    folder = tmp_path / "evidence"
    (folder / "sls").mkdir(parents=True)
    (folder / "sls" / "export.jsonl").write_text(
        "\n".join(json.dumps(sls_record(e)) for e in sls if not _at(e, start, gap))
    )
    findings = channels_case(tmp_path, oss, {})
    assert len(findings) == 1, findings.summary.tolist()
    finding = findings.iloc[0]
    assert finding.details["channel"] == "sls" and finding.severity == "high"
    assert finding.entity == f"account:{ACCOUNT_DEV}" and "(SLS) silent from" in finding.summary
    assert finding.details["silent_from"] == pd.Timestamp(start + minutes(gap[0]))


def _at(event: dict[str, Any], start: datetime, span: range) -> bool:
    moment = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
    return int((moment - start).total_seconds() // 60) in span


def test_d11_counts_calls_in_both_logs_once(tmp_path: Path) -> None:
    vps = "192.0.2.61"
    base = [ev(T0 + timedelta(hours=h), "DescribeKey") for h in range(0, 48, 4)]
    later = T0 + timedelta(days=3)
    trail, kms = [], []
    for i in range(3):  # one call each, in ActionTrail and in the KMS instance log
        moment = later + minutes(15 * i)
        event = ev(moment, "GetSecretValue", params={"SecretName": "prod/x"}, sourceIpAddress=vps)
        trail.append(event)
        kms.append(
            kl(moment, "GetSecretValue", request_id=event["requestId"], client_ip=vps,
               access_key_id=USER["accessKeyId"], identity_type="ram-user", resource_id="prod/x",
               principal_id=USER["principalId"], account_id=ACCOUNT_DEV,
               share_gateway_api_name="GetSecretValue")
        )  # fmt: skip
    findings = detect(tmp_path, [*base, *trail], kms, rules="D11",
                      params={"D11": {"follow_most": 1}})  # fmt: skip
    finding = found(findings, "D11").iloc[0]
    ids = {e["eventId"] for e in trail[:2]} | {r["request_id"] for r in kms[:2]}
    assert set(finding.evidence) == ids and finding.event_count == 2
    assert "then 2 more calls from there within 72h (the first 1 in the evidence)" in (
        finding.summary
    )


def test_d15_a_rejected_client_key_outside_its_own_aaps_networks(tmp_path: Path) -> None:
    def call(t: datetime, aap: str, ip: str, status: int = 200, **more: Any) -> dict[str, Any]:
        return kl(t, "Decrypt", principal_id=aap, client_ip=ip, status_code=status, **more)

    usual = [call(T0 - timedelta(hours=2), "payments-aap", "10.0.3.21"),
             call(T0 - timedelta(hours=1), "orders-aap", "10.9.9.5")]  # fmt: skip
    foreign = call(T0 + minutes(5), "payments-aap", "10.9.9.7", 401)  # the orders subnet
    home = call(T0 + minutes(9), "payments-aap", "10.0.3.77", 401)  # its own subnet
    lost = call(T0 + minutes(12), "", "10.9.9.8", 401, account_id="")  # AAP not found
    records = [*usual, foreign, home, lost]
    findings = found(detect(tmp_path, records=records, rules="D15", window_start=T0), "D15")
    evidence = {e for ids in findings.evidence for e in ids}
    assert evidence == {foreign["request_id"]}
