"""One call, one identity, across the two logs (issue 12, section 2).

The fixtures are written here from log-formats.md, unlike the synth generator: the
KMS log is a semicolon-free CSV export with its columns in reverse order and the
ActionTrail events are a LookupEvents response (``Events[]``), with a shared-gateway
``GetSecretValue`` that names its secret by ARN, an ``AssumeRole`` with capitalised
response keys, and request ids that come back where they must not merge anything.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest

import kmsforensics as kf
from kmsforensics.calls import count_calls
from kmsforensics.schema import KMS_V1_FIELDS

matplotlib.use("Agg")

ACCOUNT = "1987654321012345"
CALLER_ACCOUNT = "5550001112223334"
ROLE_ID = "376512340987654321"
ROLE = "deploy-role"
SESSION = "nightly-7"
STS = "STS.NTfusionKey3xJq8vWm2ZrPd0"
USER_ID = "204519283746501122"
USER_KEY = "LTAI5tFusionBuilderKey01"
KEY = "key-shz61ab7c0ffee1234567"
REGION = "cn-shanghai"
GATEWAY = f"kms.{REGION}.aliyuncs.com"
#: One call through the shared gateway: in both logs with this request id.
PAIRED = "7A0C51E2-1F0B-4C3E-9E44-0D3C2B1A0001"
#: Same request id in both logs, two hours apart: two calls.
LATE = "7A0C51E2-1F0B-4C3E-9E44-0D3C2B1A0002"
#: Same request id and time, different operations: two calls.
OTHER_OP = "7A0C51E2-1F0B-4C3E-9E44-0D3C2B1A0003"
#: Same request id and time and operation, different access keys: two calls.
OTHER_KEY = "7A0C51E2-1F0B-4C3E-9E44-0D3C2B1A0004"
#: One KMS record and two ActionTrail events with one request id: one pair, one more call.
REUSED = "7A0C51E2-1F0B-4C3E-9E44-0D3C2B1A0005"


def _event(time: str, name: str, request_id: str, **fields: Any) -> dict[str, Any]:
    """An ActionTrail event made with the role's STS key (overrides in ``fields``)."""
    event: dict[str, Any] = {
        "eventName": name,
        "eventTime": time,
        "requestId": request_id,
        "eventId": f"EV-{request_id[-4:]}-{name}-{time[11:19]}",
        "eventVersion": 1,
        "eventType": "ApiCall",
        "eventSource": GATEWAY,
        "serviceName": "Kms",
        "apiVersion": "2016-01-20",
        "acsRegion": REGION,
        "sourceIpAddress": "203.0.113.45",
        "userAgent": "AlibabaCloud (Linux; x86_64) Java/17 tea/1.2",
        "userIdentity": {
            "type": "assumed-role",
            "accountId": ACCOUNT,
            "principalId": f"{ROLE_ID}:{SESSION}",
            "userName": f"{ROLE}:{SESSION}",
            "accessKeyId": STS,
        },
        "requestParameters": {
            "stsTokenPlayerUid": CALLER_ACCOUNT,
            **fields.pop("requestParameters", {}),
        },
        "errorCode": "",
    }
    event.update(fields)
    return event


def _kms(time: str, api: str, request_id: str, resource: str, **fields: Any) -> dict[str, Any]:
    """A KMS access-log record of the role's STS key (overrides in ``fields``)."""
    record = {
        "version": "V1.0",
        "time": time,
        "api_name": api,
        "api_version": "dkms-gcs-0.2",
        "request_id": request_id,
        "resource_id": resource,
        "resource_parameters": json.dumps({"key_id": KEY, "key_version_id": "", "index": ""}),
        "identity_type": "ram-role",
        "account_id": ACCOUNT,
        "principal_id": ROLE_ID,
        "access_key_id": STS,
        "access_key_fingerprint": "",
        "client_ip": "203.0.113.45",
        "useragent": "AlibabaCloud (Linux; x86_64) Java/17 tea/1.2",
        "instance_id": "kst-shz64fusion0000test",
        "region_id": REGION,
        "user_id": ACCOUNT,
        "status_code": "200",
        "duration": "2.5",
        "error_message": "",
        "level": "INFO",
        "share_gateway_api_name": "",
    }
    record.update(fields)
    return record


def _secret_arn(name: str) -> str:
    return f"acs:kms:{REGION}:{ACCOUNT}:secret/{name}"


def _write(folder: Path, events: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    response = {"RequestId": "LOOKUP-1", "NextToken": "", "Events": events}
    (folder / "lookup-events-page-1.json").write_text(json.dumps(response, indent=1))
    columns = list(reversed(KMS_V1_FIELDS))
    with (folder / "kms_audit_log-export.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in columns} for r in records)


def _load(folder: Path) -> kf.Case:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kf.load(folder, progress=False)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    folder = tmp_path_factory.mktemp("fusion")
    assume = {
        "eventName": "AssumeRole",
        "eventTime": "2026-05-04T02:00:00Z",
        "requestId": "ASSUME-0001",
        "eventId": "EV-ASSUME-0001",
        "eventType": "ApiCall",
        "eventSource": "sts.aliyuncs.com",
        "serviceName": "Sts",
        "acsRegion": REGION,
        "sourceIpAddress": "198.51.100.7",
        "userIdentity": {
            "type": "ram-user",
            "accountId": CALLER_ACCOUNT,
            "principalId": USER_ID,
            "userName": "builder",
            "accessKeyId": USER_KEY,
        },
        "requestParameters": {
            "RoleArn": f"acs:ram::{ACCOUNT}:role/{ROLE}",
            "RoleSessionName": "batch-2",
        },
        "responseElements": {
            "AssumedRoleUser": {
                "AssumedRoleId": f"{ROLE_ID}:batch-2",
                "Arn": f"acs:ram::{ACCOUNT}:role/{ROLE}/batch-2",
            },
            "Credentials": {"AccessKeyId": "STS.NTfusionSecondSession77"},
        },
    }
    builder = {
        **assume,
        "eventName": "GetCallerIdentity",
        "eventId": "EV-WHOAMI-0001",
        "requestId": "WHOAMI-0001",
        "requestParameters": {},
        "responseElements": {},
    }
    events = [
        assume,
        builder,
        _event(
            "2026-05-04T02:10:07Z",
            "GetSecretValue",
            PAIRED,
            requestParameters={"SecretName": _secret_arn("ops/api-token")},
        ),
        _event(
            "2026-05-04T04:10:00Z",
            "GetSecretValue",
            LATE,
            requestParameters={"SecretName": "ops/db-password"},
        ),
        _event(
            "2026-05-04T02:20:00Z",
            "DescribeKey",
            OTHER_OP,
            requestParameters={"KeyId": KEY},
        ),
        _event(
            "2026-05-04T02:30:00Z",
            "GetSecretValue",
            OTHER_KEY,
            requestParameters={"SecretName": "ops/db-password"},
        ),
        _event(
            "2026-05-04T02:40:01Z",
            "GetSecretValue",
            REUSED,
            requestParameters={"SecretName": "ops/db-password"},
        ),
        _event(
            "2026-05-04T02:40:03Z",
            "GetSecretValue",
            REUSED,
            requestParameters={"SecretName": "ops/db-password"},
        ),
        _event(
            "2026-05-04T02:50:00Z",
            "SetDeletionProtection",
            "PROTECT-0001",
            requestParameters={
                "ProtectedResourceArn": f"acs:kms:{REGION}:{ACCOUNT}:key/{KEY}",
                "EnableDeletionProtection": "false",
            },
        ),
    ]
    records = [
        # the shared-gateway call: the KMS log gives the Instance API name, one second
        # before ActionTrail's time
        _kms(
            "2026-05-04T02:10:06Z",
            "Decrypt",
            PAIRED,
            "ops/api-token",
            share_gateway_api_name="GetSecretValue",
        ),
        _kms("2026-05-04T02:10:00Z", "GetSecretValue", LATE, "ops/db-password"),
        _kms("2026-05-04T02:20:00Z", "Encrypt", OTHER_OP, KEY),
        _kms(
            "2026-05-04T02:30:00Z",
            "GetSecretValue",
            OTHER_KEY,
            "ops/db-password",
            access_key_id="STS.NTsomeoneElsesKey0000000",
        ),
        _kms("2026-05-04T02:40:00Z", "GetSecretValue", REUSED, "ops/db-password"),
        # the second session's key: only the AssumeRole event names it
        _kms(
            "2026-05-04T03:00:00Z",
            "Encrypt",
            "KMS-ONLY-0001",
            KEY,
            access_key_id="STS.NTfusionSecondSession77",
        ),
        # a RAM user seen in ActionTrail by id
        _kms(
            "2026-05-04T03:05:00Z",
            "Encrypt",
            "KMS-ONLY-0002",
            f"acs:kms:{REGION}:{ACCOUNT}:key/{KEY}",
            identity_type="ram-user",
            principal_id=USER_ID,
            access_key_id="LTAI5tFusionBuilderKey02",  # a key no event shows
            account_id=CALLER_ACCOUNT,
            resource_parameters="",
        ),
    ]
    _write(folder, events, records)
    return _load(folder)


def _rows(case: kf.Case, request_id: str) -> pd.DataFrame:
    act = case.activity
    return act[act["request_id"] == request_id]


def test_fixture_loads_every_record(case: kf.Case) -> None:
    assert case.manifest["records_loaded"].sum() == 9 + 7
    assert set(case.activity["source"].astype(str)) == {"kms", "actiontrail"}


def test_shared_gateway_pair_is_one_call(case: kf.Case) -> None:
    rows = _rows(case, PAIRED)
    assert sorted(rows["source"].astype(str)) == ["actiontrail", "kms"]
    assert rows["call_id"].nunique() == 1
    assert rows[["source_file", "source_record"]].drop_duplicates().shape[0] == 2
    assert set(rows["secret_name"].astype(str)) == {"ops/api-token"}  # the ARN, resolved
    usage = kf.usage(case, "secret_name")
    assert usage.loc["ops/api-token", "calls"] == 1
    edges = kf.build_graph(case).get_edge_data(
        f"access-key:{STS}", f"secret:{ACCOUNT}/ops/api-token"
    )
    assert edges["called"]["count"] == 1


def test_rows_that_share_a_request_id_only_are_not_merged(case: kf.Case) -> None:
    for request_id in (LATE, OTHER_OP, OTHER_KEY):
        rows = _rows(case, request_id)
        assert len(rows) == 2, request_id
        assert rows["call_id"].nunique() == 2, request_id
    reused = _rows(case, REUSED).sort_values("time")
    assert len(reused) == 3
    assert reused["call_id"].nunique() == 2
    kms, first, second = reused.itertuples(index=False)
    assert (kms.source, first.source, second.source) == ("kms", "actiontrail", "actiontrail")
    assert kms.call_id == first.call_id != second.call_id  # the closest in time pairs
    assert kf.usage(case, "secret_name").loc["ops/db-password", "calls"] == 7 - 1


def test_summary_counts_calls(case: kf.Case) -> None:
    summary = case.summary()
    assert summary["events"] == {"kms": 7, "actiontrail": 9}
    assert summary["calls"] == 16 - 2  # two pairs: PAIRED and REUSED
    assert count_calls(case.activity) == summary["calls"]


def test_role_rows_are_named_with_their_source(case: kf.Case) -> None:
    act = case.activity
    paired = _rows(case, PAIRED).set_index("source")
    assert paired.loc["kms", "principal_name"] == ROLE
    assert paired.loc["kms", "session_name"] == SESSION
    assert paired.loc["kms", "player_account_id"] == CALLER_ACCOUNT
    assert paired.loc["kms", "principal_name_source"] == "actiontrail"
    assert paired.loc["actiontrail", "principal_name_source"] == "record"
    second = act[act["request_id"] == "KMS-ONLY-0001"].iloc[0]
    assert (second.principal_name, second.session_name) == (ROLE, "batch-2")
    assert second.principal_name_source == "assume-role"
    assert second.player_account_id == CALLER_ACCOUNT
    late = _rows(case, LATE).set_index("source").loc["kms"]
    assert (late.principal_name, late.session_name) == (ROLE, SESSION)
    assert late.principal_name_source == "actiontrail-access-key"
    user = act[act["request_id"] == "KMS-ONLY-0002"].iloc[0]
    assert user.principal_name == "builder"
    assert user.principal_name_source == "actiontrail-principal"
    kms = act[act["source"] == "kms"]
    assert not kms["principal_name"].isna().any()
    assert not (kms["principal_name"].astype(str) == ROLE_ID).any()


def test_swimlanes_show_role_names(case: kf.Case) -> None:
    ax = kf.plot_swimlanes(case)
    lanes = [t.get_text() for t in ax.get_yticklabels()]
    assert ROLE in lanes
    assert ROLE_ID not in lanes


def test_arns_fill_key_and_secret(case: kf.Case) -> None:
    act = case.activity
    protect = act[act["action"] == "SetDeletionProtection"].iloc[0]
    assert (protect.resource_id, protect.key_id) == (KEY, KEY)
    by_arn = act[act["request_id"] == "KMS-ONLY-0002"].iloc[0]
    assert (by_arn.resource_id, by_arn.key_id) == (KEY, KEY)
    gateway = _rows(case, PAIRED).set_index("source").loc["actiontrail"]
    assert (gateway.resource_id, gateway.secret_name) == ("ops/api-token", "ops/api-token")
    # the evidence itself keeps the ARN
    raw = case.actiontrail.set_index("requestId").loc[PAIRED, "requestParameters"]
    assert raw["SecretName"] == _secret_arn("ops/api-token")


def test_store_links_calls_across_ingest_batches(
    case: kf.Case, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The KMS export and the ActionTrail page ingested in two batches: one case, fused."""
    evidence = Path(str(case.manifest["path"].iloc[0])).parent
    out = tmp_path_factory.mktemp("fusion-store") / "case"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = kf.ingest(evidence, out=out, progress=False, batch_bytes=1)
    assert len(report.batches) == 2
    assert list(out.glob("activity/*/*.fused-*.parquet"))  # rewritten under new names
    stored = kf.open(out, verify=True)  # and committed with their sizes and hashes
    left = stored.activity.sort_values(["source", "source_record"]).reset_index(drop=True)
    right = case.activity.sort_values(["source", "source_record"]).reset_index(drop=True)
    for column in ("call_id", "principal_name", "session_name", "principal_name_source"):
        assert left[column].astype(object).tolist() == right[column].astype(object).tolist()
    assert stored.summary()["calls"] == case.summary()["calls"]
    assert _rows(stored, PAIRED)["call_id"].nunique() == 1


def test_mass_retrieval_counts_calls_once(tmp_path: Path) -> None:
    """22 secrets read through the gateway: 44 rows, D01 says 22 calls."""
    events, records = [], []
    for i in range(22):
        second = f"{10 + i:02d}"
        request_id = f"5B7E0000-0000-4000-8000-0000000000{second}"
        name = f"team-{i % 4}/secret-{i}"
        events.append(
            _event(
                f"2026-05-04T02:11:{second}Z",
                "GetSecretValue",
                request_id,
                requestParameters={"SecretName": name},
            )
        )
        records.append(
            _kms(
                f"2026-05-04T02:11:{second}Z",
                "Decrypt",
                request_id,
                name,
                share_gateway_api_name="GetSecretValue",
            )
        )
    _write(tmp_path, events, records)
    case = _load(tmp_path)
    assert len(case.activity) == 44
    assert case.activity["call_id"].nunique() == 22
    findings = kf.detect(case, "D01", window_start="2026-05-04")
    assert len(findings) == 1
    finding = findings.iloc[0]
    assert finding.event_count == 22
    assert "22 distinct secrets read in 22 calls" in finding.summary
    assert len(finding.evidence) == 44  # both rows of every call are evidence
    assert "deploy-role" in finding.summary


def test_incident_counts_the_secret_reads_once() -> None:
    root = kf.datasets.path("incident-leaked-ci-key")
    truth = json.loads((root / "truth.json").read_text())
    scenario = next(s for s in truth["scenarios"] if s["id"] == "leaked-ci-key")
    step = next(s for s in scenario["steps"] if "D01" in s["detections"])
    case = _load(root / "evidence")
    findings = kf.detect(case, "D01")
    sts = scenario["facts"]["sts_key"]
    found = findings[findings["entity"] == f"access-key:{sts}"]
    assert len(found) == 1
    calls = len(step["event_ids"])  # one ActionTrail event per read: the calls
    assert calls == 35
    assert found.iloc[0].event_count == calls
    secrets = len(scenario["facts"]["secrets_read"])
    assert f"{secrets} distinct secrets read in {calls} calls" in found.iloc[0].summary
    reads = case.activity[
        (case.activity["access_key_id"] == sts) & (case.activity["action"] == "GetSecretValue")
    ]
    assert len(reads) == 2 * calls
    assert kf.usage(case.focus(f"access-key:{sts}"), "access_key_id").loc[sts, "calls"] < len(
        case.activity[case.activity["access_key_id"] == sts]
    )
    kms = reads[reads["source"] == "kms"]
    assert set(kms["principal_name"].astype(str)) == {scenario["facts"]["role"]}


def test_a_request_id_on_many_rows_pairs_nothing(tmp_path: Path) -> None:
    """A log that repeats one request id on every row must not merge (or blow up) calls."""
    flood = "00000000-0000-0000-0000-000000000000"
    events = [
        _event(
            "2026-05-04T02:11:00Z",
            "GetSecretValue",
            flood,
            eventId=f"EV-FLOOD-{i}",
            requestParameters={"SecretName": "ops/db-password"},
        )
        for i in range(12)
    ]
    records = [  # one second apart: not duplicates of one another, all within 5 s of some
        _kms(f"2026-05-04T02:11:{i:02d}Z", "GetSecretValue", flood, "ops/db-password")
        for i in range(12)
    ]
    _write(tmp_path, events, records)
    case = _load(tmp_path)
    assert len(case.activity) == 24
    assert case.activity["call_id"].nunique() == 24
    assert case.summary()["calls"] == 24
