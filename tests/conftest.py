"""Evidence builders: realistic events and every delivery shape, written to tmp folders.

Values follow the vendor documentation (log-formats.md): UIDs as 16-digit strings,
``LTAI`` + 20 characters AccessKeys, ``STS.`` keys, ``KAAP.<uuid>`` client keys,
``kst-`` instances and ``key-`` keys.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import warnings
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import kmsforensics as kf
from kmsforensics import synth

FIXTURES = Path(__file__).parent / "fixtures"

ACCOUNT_DEV = "1754986938261234"
ACCOUNT_PROD = "1594986938265678"
USER_ID = "238902601002291234"
ROLE_ID = "343597926003931234"
CI_KEY = "LTAI5tQ8bYp3nVx2KcR7mWzA"
STS_KEY = "STS.NUQNP4PiGyckMsNiGELCs9xYz"
CLIENT_KEY = "KAAP.38742edd-1992-4048-82fa-940b8a90abcd"
INSTANCE = "kst-hzz63ff0d55h5vdas1234"
KEY = "key-hzz62f1cb66fa42qo5678"
FINGERPRINT = "sha256-8cf3a6ad2288597d8ba7dd93970403d22796c7c1a0ab6ee8cbe1380e18e1"


def at_event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A RAM user's KMS DescribeKey call, as ActionTrail records it."""
    event: dict[str, Any] = {
        "apiVersion": "2016-01-20",
        "requestId": f"3462D6AF-4434-4690-8CAD-{n:012d}",
        "eventType": "ApiCall",
        "userIdentity": {
            "type": "ram-user",
            "accountId": ACCOUNT_DEV,
            "principalId": USER_ID,
            "userName": "ci-deployer",
            "accessKeyId": CI_KEY,
        },
        "acsRegion": "cn-hangzhou",
        "eventName": "DescribeKey",
        "eventRW": "Read",
        "eventCategory": "Management",
        "requestParameters": {
            "AcsHost": "kms.cn-hangzhou.aliyuncs.com",
            "KeyId": KEY,
            "RegionId": "cn-hangzhou",
        },
        "eventSource": "kms.cn-hangzhou.aliyuncs.com",
        "serviceName": "Kms",
        "eventTime": f"2026-03-02T01:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "userAgent": "AlibabaCloud (Linux; amd64) Python/3.11.7 Core/2.13.3",
        "eventId": f"A5A4BB74-EFBC-5D8B-BD8A-{n:012d}",
        "additionalEventData": {"Scheme": "https"},
        "errorCode": "",
        "errorMessage": "",
        "eventVersion": 1,
        "sourceIpAddress": "203.0.113.7",
        "recipientAccountId": ACCOUNT_DEV,
    }
    event.update(overrides)
    return event


def assume_role_event(n: int = 0, capitalised: bool = False, **overrides: Any) -> dict[str, Any]:
    """The CI user assuming a role in the prod account (doc 289050 / 28825 shapes)."""
    creds = {"accessKeyId": STS_KEY, "expiration": "2026-03-02T02:00:00Z"}
    user = {
        "arn": f"acs:ram::{ACCOUNT_PROD}:role/deploy-role/ci-session",
        "assumedRoleId": f"{ROLE_ID}:ci-session",
    }
    if capitalised:
        creds = {"AccessKeyId": STS_KEY, "Expiration": "2026-03-02T02:00:00Z"}
        user = {"Arn": user["arn"], "AssumedRoleId": user["assumedRoleId"]}
    response = (
        {"Credentials": creds, "AssumedRoleUser": user}
        if capitalised
        else {"credentials": creds, "assumedRoleUser": user}
    )
    event = at_event(
        n,
        apiVersion="2015-04-01",
        eventName="AssumeRole",
        eventSource="sts.aliyuncs.com",
        serviceName="Sts",
        requestParameters={
            "RoleArn": f"acs:ram::{ACCOUNT_PROD}:role/deploy-role",
            "RoleSessionName": "ci-session",
            "DurationSeconds": 3600,
        },
        responseElements=response,
        referencedResources={"ACS::RAM::AccessKey": [STS_KEY]},
    )
    event.update(overrides)
    return event


def role_session_event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A GetSecretValue made with the STS key, in the prod account (cross-account)."""
    event = at_event(
        n,
        eventName="GetSecretValue",
        userIdentity={
            "type": "assumed-role",
            "accountId": ACCOUNT_PROD,
            "principalId": f"{ROLE_ID}:ci-session",
            "userName": "deploy-role:ci-session",
            "accessKeyId": STS_KEY,
            "sessionContext": {"attributes": {"mfaAuthenticated": "false"}},
        },
        requestParameters={
            "SecretName": "prod/db-password",
            "stsTokenPlayerUid": int(ACCOUNT_DEV),
            "stsTokenPrincipalName": "deploy-role/ci-session",
        },
        recipientAccountId=ACCOUNT_PROD,
    )
    event.update(overrides)
    return event


def kms_record(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """An AAP client key decrypting through a KMS instance (V1.0 field set)."""
    record: dict[str, Any] = {
        "access_key_fingerprint": FINGERPRINT,
        "access_key_id": CLIENT_KEY,
        "account_id": ACCOUNT_PROD,
        "api_name": "Decrypt",
        "api_version": "dkms-gcs-0.2",
        "client_ip": "10.0.3.21",
        "duration": 1.381,
        "error_message": "",
        "identity_type": "aap",
        "instance_id": INSTANCE,
        "level": "INFO",
        "principal_id": "payments-aap",
        "region_id": "cn-hangzhou",
        "request_id": f"2753f2f4-efb8-49c8-9817-{n:012d}",
        "resource_id": KEY,
        "resource_parameters": json.dumps(
            {"key_id": KEY, "key_version_id": f"{KEY}-njscfe1234", "index": ""}
        ),
        "share_gateway_api_name": "",
        "status_code": 200,
        "time": f"2026-03-02T02:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "user_id": ACCOUNT_PROD,
        "useragent": "AlibabaCloud (darwin; amd64) Golang/1.15.3 Core/0.01 TeaDSL/1",
        "version": "V1.0",
    }
    record.update(overrides)
    return record


# --- writers: one per delivery shape ---------------------------------------------------


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_gz(path: Path, data: bytes) -> Path:
    return write(path, gzip.compress(data, mtime=0))


def jsonl(records: Iterable[Any]) -> bytes:
    return b"".join(dumps(r) + b"\n" for r in records)


def oss_array(path: Path, events: list[dict[str, Any]]) -> Path:
    """ActionTrail OSS delivery: one gzip file holding one JSON array."""
    return write_gz(path, dumps(events))


def lookup_events_page(events: list[dict[str, Any]], token: str = "") -> bytes:
    page = {
        "RequestId": "ED07C5F3-C6C3-4A86-8B3C-2B2A0C0F1234",
        "StartTime": "2026-03-01T00:00:00Z",
        "EndTime": "2026-03-03T00:00:00Z",
        "NextToken": token,
        "Events": events,
    }
    return json.dumps(page, indent=2).encode()


def sls_record(event: dict[str, Any], topic: str = "actiontrail_audit_event") -> dict[str, Any]:
    """An SLS log wrapping an ActionTrail event as a JSON string."""
    record = {
        "__topic__": topic,
        "__time__": "1772413200",
        "__source__": "actiontrail",
        "__tag__:__receive_time__": "1772413201",
        "event": json.dumps(event),
    }
    if topic == "actiontrail_event":
        record["owner_id"] = ACCOUNT_DEV
    return record


def flatten(event: dict[str, Any], prefix: str = "event.") -> dict[str, str]:
    """SLS JSON-index style columns: ``event.userIdentity.accessKeyId`` and so on."""
    out: dict[str, str] = {}
    for key, value in event.items():
        if isinstance(value, dict) and key == "userIdentity":
            out.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (dict, list)):
            out[f"{prefix}{key}"] = json.dumps(value)
        else:
            out[f"{prefix}{key}"] = "" if value is None else str(value)
    return out


def csv_bytes(rows: list[dict[str, Any]], delimiter: str = ",", crlf: bool = True) -> bytes:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, columns, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue().encode()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture()
def evidence(tmp_path: Path) -> Path:
    """An empty evidence folder."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    return folder


def load_case(*paths: Path, on_warning: str = "default", **kwargs: Any) -> kf.Case:
    """``kf.load`` without a progress bar; ``on_warning``: "error", "ignore" or "default"."""
    with warnings.catch_warnings():
        warnings.simplefilter(on_warning, kf.ParseWarning)  # type: ignore[arg-type]
        return kf.load(*paths, progress=False, **kwargs)


def assert_reconciled(case: kf.Case) -> None:
    """Every file: records read = loaded + rejected + duplicates; no internal-check note."""
    m = case.manifest
    bad = m[m.records_read != m.records_loaded + m.records_rejected + m.duplicates]
    assert bad.empty, bad.T
    assert not case.issues.reason.str.contains("internal check failed").any()


#: The five attacks of the generator, placed over three days (hour of the case).
FIVE_START = datetime(2026, 3, 2, tzinfo=UTC)
FIVE_PLAN = [
    ("spraying-and-enumeration", 20),
    ("leaked-ci-key", 33),
    ("aap-broadened", 41),
    ("key-destruction", 50),
    ("console-trail-tampering", 58),
]


@pytest.fixture(scope="session")
def five_attacks_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generated days with all five attacks (evidence/ and truth.json), made once."""
    out = tmp_path_factory.mktemp("five-attacks")
    scenarios = [(name, FIVE_START + timedelta(hours=h, minutes=17)) for name, h in FIVE_PLAN]
    synth.generate(out, seed=21, start=FIVE_START, hours=72, kms_per_hour=100, scenarios=scenarios)
    return out


@pytest.fixture(scope="session")
def five_attacks(five_attacks_folder: Path) -> tuple[dict[str, Any], kf.Case]:
    """The five-attack case: (truth, case loaded with the pandas engine)."""
    truth = json.loads((five_attacks_folder / "truth.json").read_text())
    return truth, load_case(five_attacks_folder / "evidence", on_warning="error")


#: Attacker-controlled text the reports and pages must show as text, never run.
SCRIPT = "<script>window.__xss=1</script>"
FORMULA = '=HYPERLINK("http://evil.example/","x")'


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, kf.Case]:
    """The incident report rendered on evidence full of script and formula payloads."""
    from kmsforensics import report

    folder = tmp_path_factory.mktemp("hostile") / "evidence"
    folder.mkdir()
    identity = {"type": "ram-user", "accountId": ACCOUNT_DEV, "principalId": "777",
                "userName": FORMULA, "accessKeyId": "LTAIhostile0000000000000"}  # fmt: skip
    events = [
        at_event(i, userIdentity=identity, userAgent=SCRIPT, errorCode="NoPermission",
                 errorMessage='<img src=x onerror="window.__xss=2">', sourceIpAddress="192.0.2.13")
        for i in range(8)
    ]  # fmt: skip
    (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    records = [kms_record(i, useragent=SCRIPT, client_ip="192.0.2.13") for i in range(3)]
    (folder / "kms.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    out = report.render(
        [folder], folder.parent / "out" / "report.html",
        parameters={"entity": "ip:192.0.2.13", "case_id": "<b>T-1</b>", "analyst": "ana"},
    )  # fmt: skip
    return out, kf.load(folder, progress=False)


@pytest.fixture(scope="module")
def cluster() -> Any:
    """A real dask cluster on loopback: two single-threaded worker processes (per module)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as local,
        Client(local) as client,
    ):
        yield client
