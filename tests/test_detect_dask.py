"""The rules that used to need every row in memory (D09, D14, D29, D30) and the rules
reworked for lineage and long horizons (D01, D15, D19, D20) give the same findings on
the dask engine as on pandas, on crafted evidence whose incidents straddle midnight
(where days are selected apart on the cluster), with a real geo database."""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ACCOUNT_DEV, ACCOUNT_PROD, lookup_events_page
from test_detection_rules import (
    BOB,
    T0,
    USER,
    assume,
    ev,
    geo_database,
    hourly_trail,
    key_tries,
    kl,
    minutes,
    role_read,
)

import kmsforensics as kf

MIDNIGHT = T0.replace(hour=0) + timedelta(days=3)  # Thursday 00:00 UTC
VPS = "192.0.2.9"


def evidence() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Four days: a quiet baseline, then incidents that cross midnight into day four."""
    events: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for day in range(3):  # the baseline: alice at the office, the AAP on its subnet
        start = T0 + timedelta(days=day)
        events += [ev(start + timedelta(hours=h), "DescribeKey") for h in range(0, 8, 2)]
        events.append(ev(start + minutes(5), "GetSecretValue", params={"SecretName": "app/one"}))
        records += [kl(start + timedelta(hours=h), "Decrypt") for h in range(0, 8, 2)]
        events.append(assume(start + minutes(30), ACCOUNT_PROD, f"base{day}", f"STS.base{day}"))
    late = MIDNIGHT - minutes(20)
    # D14: alice in Shanghai, then in São Paulo ten minutes later (past midnight)
    events.append(ev(late, "Decrypt", sourceIpAddress="203.0.113.7"))
    events.append(ev(MIDNIGHT - minutes(10) + minutes(20), "Decrypt", sourceIpAddress=VPS))
    # D09: a client key created before midnight, used from outside after it
    created = ev(
        late,
        "CreateClientKey",
        params={"AapName": "payments-aap"},
        responseElements={"ClientKeyId": "KAAP.11111111-2222-4333-8444-555555555555"},
    )
    events.append(created)
    records += [
        kl(
            MIDNIGHT + minutes(5 + i),
            "GetSecretValue",
            access_key_id="KAAP.11111111-2222-4333-8444-555555555555",
            client_ip=VPS,
        )
        for i in range(3)
    ]
    # D29: a key policy changed, then Decrypt with the same AccessKey after midnight
    events.append(ev(MIDNIGHT - minutes(5), "SetKeyPolicy", params={"KeyId": "key-1"}))
    events.append(ev(MIDNIGHT + minutes(10), "Decrypt", params={"KeyId": "key-1"}))
    # D30, D19, D20: bob from a VPS, a chain into dev, the session key against KMS
    session = {
        "type": "assumed-role",
        "accountId": ACCOUNT_PROD,
        "principalId": "3435979260:vps",
        "userName": "deploy-role:vps",
        "accessKeyId": "STS.vps",
    }
    events.append(assume(late, ACCOUNT_PROD, "vps", "STS.vps", ip=VPS, caller=BOB))
    events.append(assume(late + minutes(1), ACCOUNT_DEV, "hop", "STS.hop", ip=VPS, caller=session))
    # D01 long horizon: the chain reads 24 distinct secrets, a few an hour, over two days
    for i in range(24):
        moment = late + minutes(2) + timedelta(hours=2 * i)
        records.append(
            kl(
                moment,
                "GetSecretValue",
                access_key_id="STS.hop",
                identity_type="ram-role",
                principal_id="3435979260",
                account_id=ACCOUNT_DEV,
                client_ip=VPS,
                resource_id=f"dev/secret-{i}",
            )
        )
    # D15: a client key fails four times, then works, from outside
    for m, status in ((0, 401), (3, 401), (7, 401), (11, 401), (12, 200)):
        records.append(kl(MIDNIGHT - minutes(8) + minutes(m), "Decrypt", client_ip=VPS,
                          status_code=status))  # fmt: skip
    return events, records


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[kf.Case, Path, Path]:
    root = tmp_path_factory.mktemp("crafted")
    folder = root / "evidence"
    folder.mkdir()
    events, records = evidence()
    (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    (folder / "kms.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    memory = kf.load(folder, progress=False)
    store = root / "store"
    kf.ingest(folder, out=store, progress=False)
    return memory, store, geo_database(root / "city.mmdb")


def test_the_memory_rules_and_the_reworked_rules_agree_on_dask(
    cases: tuple[kf.Case, Path, Path], cluster: Any
) -> None:
    memory, store, geo = cases
    rules = ["D01", "D09", "D12", "D14", "D15", "D19", "D20", "D29", "D30"]
    options: dict[str, Any] = {"rules": rules, "geoip": geo, "window_start": MIDNIGHT - minutes(60)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.DetectionNote)
        expected = kf.detect(memory, **options)
        found = kf.detect(kf.load(store, engine="dask"), **options)
    assert found.attrs["notes"] == {}  # nothing left to memory
    assert set(expected.rule_id) == set(rules)  # every rule has something to agree on
    pd.testing.assert_frame_equal(found.reset_index(drop=True), expected.reset_index(drop=True))
    travel = expected[expected.rule_id == "D14"].iloc[0]
    assert travel.first_seen < MIDNIGHT < travel.last_seen
    slow = expected[(expected.rule_id == "D01")]
    assert slow.summary.str.contains("distinct secrets read over").any()
    chained = expected[expected.rule_id == "D20"].iloc[0]
    assert chained.severity == "high" and chained.origin == f"ram-user:{BOB['principalId']}"
    assert USER["principalId"] != BOB["principalId"]


def changed_rules_evidence() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict]]:
    """Three quiet days, then D11, D16, D28 sequences across midnight, and a D27 witness."""
    events: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for day in range(3):
        start = T0 + timedelta(days=day)
        events += [ev(start + timedelta(hours=h), "DescribeKey") for h in range(0, 8, 2)]
        events += [role_read(start + timedelta(hours=h), f"STS.b{day}{h}", HOME) for h in (1, 5)]
    late = MIDNIGHT - minutes(30)
    # D11: the role reads from a VPS every 10 minutes, over midnight
    events += [role_read(late + minutes(10 * i), f"STS.v{i // 6:03d}", VPS) for i in range(12)]
    # D28: a new AccessKey, used from outside after midnight (more than follow_most)
    events.append(
        ev(
            late,
            "CreateAccessKey",
            "Ims",
            params={"UserName": "svc"},
            responseElements={"AccessKey": {"AccessKeyId": NEW_KEY}},
        )
    )
    signer = {**USER, "accessKeyId": NEW_KEY}
    events += [
        ev(MIDNIGHT + minutes(5 * i), "Decrypt", userIdentity=signer, sourceIpAddress=VPS)
        for i in range(4)
    ]
    # D16: alice's key denied before midnight on the KMS instance, then it works after
    records += key_tries(MIDNIGHT - minutes(6), "198.51.100.5", USER["accessKeyId"], 2)
    events.append(ev(MIDNIGHT + minutes(1), "Decrypt", sourceIpAddress="198.51.100.5"))
    # D27: LookupEvents has two events where the delivered trail has none
    witnessed = [ev(MIDNIGHT + timedelta(hours=h), "ListKeys") for h in (2.2, 2.4)]
    events.append(ev(MIDNIGHT + timedelta(hours=4), "DescribeKey"))
    return events, records, witnessed


HOME, NEW_KEY = "10.20.30.41", "LTAInew0key0000000000000"


def test_the_changed_rules_agree_on_dask(tmp_path: Path, cluster: Any) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    events, records, witnessed = changed_rules_evidence()
    (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    (folder / "kms.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    (folder / "lookup-page.json").write_bytes(lookup_events_page(witnessed))
    memory = kf.load(folder, progress=False)
    kf.ingest(folder, out=tmp_path / "store", progress=False)
    rules = ["D11", "D16", "D27", "D28"]
    options: dict[str, Any] = {
        "rules": rules,
        "window_start": MIDNIGHT - minutes(60),
        "params": {"D28": {"follow_most": 3}, "D11": {"follow_most": 8}},
    }
    expected = kf.detect(memory, **options)
    found = kf.detect(kf.open(tmp_path / "store", engine="dask"), **options)
    assert found.attrs["notes"] == {}
    assert set(expected.rule_id) == set(rules)  # every rule has something to agree on
    pd.testing.assert_frame_equal(found.reset_index(drop=True), expected.reset_index(drop=True))
    by_rule = {r: expected[expected.rule_id == r] for r in rules}
    new = by_rule["D11"][by_rule["D11"].entity == "ram-role:3435979260039399"].iloc[0]
    assert new.first_seen < MIDNIGHT < new.last_seen and new.details["later_uses"] == 11
    assert by_rule["D28"].iloc[0].event_count == 4  # the creation and three of four uses
    assert (by_rule["D16"].severity == "high").any()
    assert (by_rule["D27"].severity == "critical").any()


def test_d27_per_hour_counts_agree_on_dask(tmp_path: Path, cluster: Any) -> None:
    """A busy hour gone silent, judged against the same hours of the other days."""
    busy = {(day, 2): 27 for day in range(4)}
    events = hourly_trail(4, busy, silent=(2, 2))
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    kf.ingest(folder, out=tmp_path / "store", progress=False)
    expected = kf.detect(kf.load(folder, progress=False), rules="D27")
    found = kf.detect(kf.open(tmp_path / "store", engine="dask"), rules="D27")
    assert found.attrs["notes"] == {}
    assert len(expected) == 1 and expected.iloc[0].details["baseline_days"] == 3
    pd.testing.assert_frame_equal(found.reset_index(drop=True), expected.reset_index(drop=True))
