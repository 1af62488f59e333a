"""The curated datasets: findable, loadable, true to their ground truth, rebuildable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import assert_reconciled, load_case

import kmsforensics as kf
from kmsforensics.synth.curated import CASES, build


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def incident() -> tuple[dict, kf.Case]:
    folder = kf.datasets.path("incident-leaked-ci-key")
    return (
        json.loads((folder / "truth.json").read_text()),
        load_case(folder / "evidence", on_warning="error"),
    )


def test_datasets_are_listed_and_found() -> None:
    assert {"incident-leaked-ci-key", "benign-week", "vendor-samples"} <= set(kf.datasets.list())
    with pytest.raises(kf.datasets.DatasetNotFoundError, match="benign-week"):
        kf.datasets.path("no-such-case")


def test_missing_datasets_say_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(kf.datasets.ENVIRONMENT_VARIABLE, str(tmp_path / "absent"))
    monkeypatch.setattr(kf.datasets, "__file__", str(tmp_path / "pkg" / "datasets.py"))
    with pytest.raises(FileNotFoundError, match="kmsforensics synth"):
        kf.datasets.root()


@pytest.mark.parametrize("name", sorted(CASES))
def test_curated_cases_are_exactly_what_the_generator_makes(name: str, tmp_path: Path) -> None:
    build(name, tmp_path / name)
    assert digests(tmp_path / name) == digests(kf.datasets.path(name))


def test_incident_loads_with_the_truth_counts(incident: tuple[dict, kf.Case]) -> None:
    truth, case = incident
    assert case.issues.empty
    assert_reconciled(case)
    assert (len(case.actiontrail), len(case.kms)) == (
        truth["counts"]["actiontrail_events"],
        truth["counts"]["kms_records"],
    )
    assert 50_000 <= len(case.activity) <= 200_000


def test_incident_truth_is_recoverable(incident: tuple[dict, kf.Case]) -> None:
    truth, case = incident
    leak = next(s for s in truth["scenarios"] if s["id"] == "leaked-ci-key")["facts"]
    at = case.actiontrail
    issuing = at[at.issuedAccessKeyId == leak["sts_key"]].iloc[0]
    assert issuing["userIdentity.userName"] == leak["user"] == "ci-deployer"
    assert issuing["accountId"] == leak["user_account"]
    assert issuing["targetRoleAccountId"] == leak["role_account"] != leak["user_account"]
    read = case.kms.loc[case.kms.access_key_id == leak["sts_key"], "secret_name"]
    assert sorted(set(read)) == leak["secrets_read"]
    wreck = next(s for s in truth["scenarios"] if s["id"] == "key-destruction")["facts"]
    touched = set(at.loc[at["userIdentity.accessKeyId"] == wreck["sts_key"], "keyId"].dropna())
    assert touched == {
        *wreck["keys_disabled"],
        wreck["key_scheduled"],
        wreck["key_material_deleted"],
    }
    failing = case.kms.error_message.astype(str).str.startswith("Rejected.Disabled")
    assert failing.sum() == truth["counts"]["rejected_disabled"] > 0


def test_benign_week_is_the_same_organisation_without_attacks() -> None:
    folder = kf.datasets.path("benign-week")
    truth = json.loads((folder / "truth.json").read_text())
    incident = json.loads((kf.datasets.path("incident-leaked-ci-key") / "truth.json").read_text())
    assert truth["scenarios"] == [] and truth["organisation"] == incident["organisation"]
    case = load_case(folder / "evidence", on_warning="error")
    assert case.issues.empty and len(case.kms) == truth["counts"]["kms_records"]
    assert not case.activity.client_ip.astype(str).str.startswith("192.0.2.").any()


def test_vendor_samples_load_with_their_identities() -> None:
    case = load_case(kf.datasets.path("vendor-samples"), on_warning="ignore")
    assert (len(case.actiontrail), len(case.kms)) == (7, 1)
    assert case.issues.empty  # README.md is skipped (in the manifest), nothing else fails
    at = case.actiontrail.set_index("eventName")
    cross = at.loc["LookupEvents"]
    assert (cross["roleId"], cross["sessionName"]) == ("34359792600393****", "u1")
    assert cross["stsTokenPlayerUid"] == "175498693826****"
    issued = at.loc["AssumeRole", "issuedAccessKeyId"].tolist()
    assert sorted(issued) == ["STS.9jMtu5186zsezCML8Qsdk****", "STS.NUQNP4PiGyckMsNiGELCs****"]
    assert at.loc["ConsoleSignin", "mfaChecked"] == False  # noqa: E712
    activity = case.activity.set_index("action")
    assert activity.loc["DescribeKey", "identity_type"] == "account"
    assert activity.loc["DeleteDisk", "identity_type"] == "system"
    assert activity.loc["DeleteDisk", "account_id"] == "159498693826****"
    assert activity.loc["ListUserRegions", "player_account_id"] == "1803023858759084"
