"""Attack scenarios: their ground truth is in the evidence and can be recovered."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import FIVE_PLAN, FIVE_START, assert_reconciled

import kmsforensics as kf
from kmsforensics import synth
from kmsforensics.synth.scenarios import SCENARIOS

START, PLAN = FIVE_START, FIVE_PLAN


@pytest.fixture(scope="module")
def incident(five_attacks: tuple[dict, kf.Case]) -> tuple[dict, kf.Case]:
    return five_attacks


def scenario(truth: dict, name: str) -> dict:
    return next(s for s in truth["scenarios"] if s["id"] == name)


def test_every_scenario_is_in_the_truth_with_catalogue_ids(incident: tuple[dict, kf.Case]) -> None:
    truth, _ = incident
    assert [s["id"] for s in truth["scenarios"]] == [name for name, _ in PLAN]
    assert set(SCENARIOS) == {name for name, _ in PLAN}
    for item in truth["scenarios"]:
        for step in item["steps"]:
            assert step["detections"] and all(
                d[0] == "D" and d[1:].isdigit() and 1 <= int(d[1:]) <= 33
                for d in step["detections"]
            )
            assert step["event_ids"] or step["request_ids"]


def test_the_evidence_loads_cleanly_and_holds_every_truth_record(
    incident: tuple[dict, kf.Case],
) -> None:
    truth, case = incident
    assert case.issues.empty
    assert_reconciled(case)
    assert len(case.actiontrail) == truth["counts"]["actiontrail_events"]
    assert len(case.kms) == truth["counts"]["kms_records"]
    events = set(case.actiontrail.eventId)
    requests = set(case.kms.request_id)
    for item in truth["scenarios"]:
        for step in item["steps"]:
            assert set(step["event_ids"]) <= events, (item["id"], step["what"])
            assert set(step["request_ids"]) <= requests, (item["id"], step["what"])


def test_leaked_key_is_traced_to_the_ci_user_and_its_account(
    incident: tuple[dict, kf.Case],
) -> None:
    truth, case = incident
    facts = scenario(truth, "leaked-ci-key")["facts"]
    at = case.actiontrail
    issuing = at[at.issuedAccessKeyId == facts["sts_key"]].iloc[0]
    assert issuing["userIdentity.userName"] == facts["user"]
    assert issuing["userIdentity.accessKeyId"] == facts["leaked_access_key"]
    assert issuing["accountId"] == facts["user_account"]
    assert issuing["targetRoleAccountId"] == facts["role_account"]  # cross-account
    assert issuing["sourceIpAddress"] == facts["attacker_ip"]
    read = case.kms.loc[case.kms.access_key_id == facts["sts_key"], "secret_name"]
    assert sorted(set(read)) == facts["secrets_read"]
    assert len(read) == 35
    session = at[at["userIdentity.accessKeyId"] == facts["sts_key"]]
    assert (session.stsTokenPlayerUid == facts["user_account"]).all()


def test_key_destruction_and_its_downstream_failures(incident: tuple[dict, kf.Case]) -> None:
    truth, case = incident
    facts = scenario(truth, "key-destruction")["facts"]
    at = case.actiontrail
    disabled = at.loc[at.eventName == "DisableKey", "keyId"].tolist()
    assert disabled == facts["keys_disabled"]
    assert at.loc[at.eventName == "ScheduleKeyDeletion", "keyId"].item() == facts["key_scheduled"]
    assert (
        at.loc[at.eventName == "DeleteKeyMaterial", "keyId"].item() == facts["key_material_deleted"]
    )
    failed = case.kms[case.kms.error_message.astype(str).str.startswith("Rejected.Disabled")]
    assert len(failed) == truth["counts"]["rejected_disabled"] > 0
    assert set(failed.key_id) <= set(facts["keys_disabled"])
    first_disable = at.loc[at.eventName == "DisableKey", "eventTime"].min()
    assert (failed.time >= first_disable).all()


def test_aap_widening_then_use_from_outside(incident: tuple[dict, kf.Case]) -> None:
    truth, case = incident
    facts = scenario(truth, "aap-broadened")["facts"]
    at = case.actiontrail
    created = at[at.eventName == "CreateClientKey"].iloc[0]
    assert created["responseElements"]["ClientKeyId"] == facts["new_client_key"]
    used = case.kms[case.kms.access_key_id == facts["new_client_key"]]
    # 24 reads, and one more after the key's deletion
    assert len(used) == 25 and (used.client_ip == facts["attacker_ip"]).all()
    assert (used.time > created["eventTime"]).all()
    assert (used.principal_id == facts["aap"]).all()


def test_trail_stopped_means_silence_in_that_account(incident: tuple[dict, kf.Case]) -> None:
    truth, case = incident
    facts = scenario(truth, "console-trail-tampering")["facts"]
    at = case.actiontrail
    signin = at[(at.eventName == "ConsoleSignin") & (at.sourceIpAddress == facts["signin_ip"])]
    assert signin.mfaChecked.tolist() == [False]
    start, end = pd.Timestamp(facts["silent_from"]), pd.Timestamp(facts["silent_until"])
    inside = at[
        (at.recipientAccountId == facts["account"]) & (at.eventTime > start) & (at.eventTime < end)
    ]
    assert inside.empty
    assert {"UpdateTrail", "StopLogging", "StartLogging"} <= set(at.eventName)


def test_spraying_and_aap_not_found(incident: tuple[dict, kf.Case]) -> None:
    truth, case = incident
    facts = scenario(truth, "spraying-and-enumeration")["facts"]
    at = case.actiontrail
    sprayed = at[(at.sourceIpAddress == facts["attacker_ip"]) & (at.eventName == "ConsoleSignin")]
    assert len(sprayed) == 20 and (sprayed.errorMessage == "Password is incorrect").all()
    assert set(sprayed["userIdentity.userName"]) == set(facts["users_targeted"])
    probes = case.kms[case.kms.client_ip == facts["attacker_ip"]]
    assert len(probes) == 30
    assert (probes.account_id == "").all() and (probes.principal_id == "").all()
    activity = case.activity[case.activity.client_ip == facts["attacker_ip"]]
    assert not activity.success.any()


def test_scenarios_are_reproducible(tmp_path: Path) -> None:
    plan = [("leaked-ci-key", START + timedelta(hours=2))]
    a = synth.generate(
        tmp_path / "a", seed=3, start=START, hours=4, kms_per_hour=20, scenarios=plan
    )
    b = synth.generate(
        tmp_path / "b", seed=3, start=START, hours=4, kms_per_hour=20, scenarios=plan
    )
    assert a == b
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.gz"))
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )
