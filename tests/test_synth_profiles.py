"""The generator's second organisation profile (fintech): what its days hold, and that
the rule pack stays quiet on them and finds its attack."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import kmsforensics as kf
from kmsforensics import synth
from kmsforensics.synth.org import build_organisation

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
ATTACK = START + timedelta(days=3, hours=13, minutes=30)


@pytest.fixture(scope="module")
def fintech(tmp_path_factory: pytest.TempPathFactory) -> tuple[kf.Case, kf.Case, dict]:
    root = tmp_path_factory.mktemp("fintech")
    options = {
        "seed": 11,
        "start": START,
        "hours": 24 * 5,
        "kms_per_hour": 150,
        "profile": "fintech",
    }
    synth.generate(root / "benign", **options)
    truth = synth.generate(root / "incident", scenarios=[("sre-path-theft", ATTACK)], **options)
    benign = kf.load(root / "benign" / "evidence", progress=False)
    return benign, kf.load(root / "incident" / "evidence", progress=False), truth


def test_the_profile_is_acme_and_more() -> None:
    acme, fintech = build_organisation(5), build_organisation(5, "fintech")
    assert [a.uid for a in fintech.accounts[:3]] == [a.uid for a in acme.accounts]
    assert fintech.account("data").name == "acme-data"
    assert {u.name for u in acme.users} < {u.name for u in fintech.users}
    with pytest.raises(ValueError, match="profile"):
        build_organisation(5, "bank")


def test_its_days_hold_the_sre_paths_the_nightly_chain_and_the_office_nat(
    fintech: tuple[kf.Case, kf.Case, dict],
) -> None:
    case, _, _ = fintech
    at = case.activity[case.activity.source == "actiontrail"]
    assumes = at[at.action == "AssumeRole"]
    chained = assumes[assumes.identity_type == "ram-role"]
    roles = chained.role_arn.astype(str).str.extract(r"role/(.*)$")[0]
    assert {"sre-admin-role", "terraform-role"} <= set(roles)
    people = at[at.action == "ConsoleSignin"]
    assert set(people.client_ip.astype(str)) == {"203.0.113.8"}  # one NAT for everyone
    terraform = at[at.user_agent.astype(str).str.startswith("Terraform/")]
    assert terraform.action.nunique() >= 5
    hours = pd.DatetimeIndex(terraform.time).tz_convert("Asia/Shanghai").hour
    assert set(hours) <= {2}  # the nightly plan, and one apply
    assert {"CreateUser", "AddUserToGroup", "CreateAccessKey", "DeleteAccessKey"} <= set(at.action)
    local = pd.DatetimeIndex(people.time).tz_convert("Asia/Shanghai")
    on_call = at[(at.client_ip.astype(str) == "203.0.113.9")]
    assert len(on_call) > 0 and set(
        pd.DatetimeIndex(on_call.time).tz_convert("Asia/Shanghai").hour
    ) <= {3}
    assert (local.hour != 12).all()  # lunch


def test_the_pack_is_quiet_on_it_and_finds_the_attack_first(
    fintech: tuple[kf.Case, kf.Case, dict],
) -> None:
    benign, incident, truth = fintech
    window = START + timedelta(days=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.DetectionNote)
        quiet = kf.detect(benign, window_start=window)
        loud = kf.detect(incident, window_start=window)
    assert not quiet.severity.isin(["high", "critical"]).any(), quiet[["rule_id", "summary"]]
    steps = [s for sc in truth["scenarios"] for s in sc["steps"]]
    for step in steps:
        ids = set(step["event_ids"]) | set(step["request_ids"])
        for rule_id in step["detections"]:
            mine = loud[loud.rule_id == rule_id]
            assert any(ids & set(e) for e in mine.evidence), (step["what"], rule_id)
    first = set(steps[0]["event_ids"])
    top = kf.incidents(loud).iloc[0]
    evidence = loud[loud.finding_id.isin(top.finding_ids)].evidence
    assert any(first & set(e) for e in evidence)
    assert json.dumps(truth["scenarios"][0]["facts"]["secrets_read"])
