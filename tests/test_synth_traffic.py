"""The synthetic organisation's normal activity: reproducible, loadable, realistic."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_reconciled, load_case

import kmsforensics as kf
from kmsforensics import synth
from kmsforensics.cli import main

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, kf.Case]:
    out = tmp_path_factory.mktemp("case")
    summary = synth.generate(out, seed=11, start=START, hours=48, kms_per_hour=120)
    return out, summary, load_case(out / "evidence", on_warning="error")


def digests(root: Path) -> dict[str, str]:
    """Digests of the evidence and the truth (SCENARIO.md names its folder, by design)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "SCENARIO.md"
    }


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        synth.generate(tmp_path / name, seed=seed, start=START, hours=3, kms_per_hour=30)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert digests(tmp_path / "a") != digests(tmp_path / "c")


def test_loads_cleanly_with_the_counts_written(generated: tuple[Path, dict, kf.Case]) -> None:
    _, summary, case = generated
    assert case.issues.empty
    assert_reconciled(case)
    assert len(case.actiontrail) == summary["counts"]["actiontrail_events"]
    assert len(case.kms) == summary["counts"]["kms_records"]
    assert len(case.manifest) == summary["counts"]["files"]


def test_every_sts_key_was_issued_by_an_assume_role(generated: tuple[Path, dict, kf.Case]) -> None:
    _, _, case = generated
    issued = set(case.actiontrail.issuedAccessKeyId.dropna())
    used = set(
        case.activity.access_key_id[case.activity.access_key_id.str.startswith("STS.", na=False)]
    )
    assert used and used <= issued


def test_ci_deploys_assume_roles_across_accounts(generated: tuple[Path, dict, kf.Case]) -> None:
    _, _, case = generated
    org = synth.build_organisation(11)
    shared = org.account("shared-services").uid
    at = case.actiontrail
    deploys = at[(at.eventName == "AssumeRole") & (at["userIdentity.userName"] == "ci-deployer")]
    assert len(deploys) > 3
    assert (deploys.accountId == shared).all()
    assert (deploys.targetRoleAccountId != shared).all()
    in_session = at[at.sessionName.astype(str).str.startswith("ci-")]
    assert (in_session.stsTokenPlayerUid == shared).all()


def test_working_hours_are_busier_than_nights(generated: tuple[Path, dict, kf.Case]) -> None:
    _, _, case = generated
    local = case.kms.time.dt.tz_convert("Asia/Shanghai").dt.hour
    day = (local.between(9, 18)).sum() / 10
    night = (local.isin([0, 1, 2, 3, 4, 5])).sum() / 6
    assert day > 3 * night


def test_popularity_is_skewed(generated: tuple[Path, dict, kf.Case]) -> None:
    _, _, case = generated
    reads = case.kms.secret_name.dropna().value_counts()
    assert reads.iloc[0] > 3 * reads.median()


def test_aap_calls_come_from_the_aap_network(generated: tuple[Path, dict, kf.Case]) -> None:
    _, _, case = generated
    org = synth.build_organisation(11)
    kms = case.kms[case.kms.identity_type == "aap"]
    for aap in org.aaps:
        mine = (kms.principal_id == aap.name) & (kms.account_id == aap.account)
        ips = kms.client_ip[mine].astype(str)
        prefix = aap.networks[0].rsplit(".", 1)[0] + "."
        assert len(ips) and ips.str.startswith(prefix).all()


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "synth",
                str(tmp_path / "out"),
                "--seed",
                "2",
                "--hours",
                "2",
                "--kms-per-hour",
                "20",
                "--start",
                "2026-03-02T00:00:00Z",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "actiontrail_events" not in printed  # no truth dump
    case = load_case(tmp_path / "out" / "evidence", on_warning="error")
    assert f"{(case.kms.shape[0])} KMS records" in printed
    assert f"{case.actiontrail.shape[0]} ActionTrail events" in printed
    assert (tmp_path / "out" / "truth.json").is_file()
    assert len(case.activity) > 0
    assert case.activity.time.min() >= pd.Timestamp("2026-03-02T00:00:00Z")


def test_throttled_calls_are_retried(generated: tuple[Path, dict, kf.Case]) -> None:
    _, _, case = generated
    kms = case.kms.sort_values("time")
    throttled = kms[kms.status_code == 429]
    assert len(throttled)
    retried = 0
    for _, row in throttled.iterrows():
        later = kms[
            (kms.time >= row.time)  # times have whole seconds: a retry may share one
            & (kms.time <= row.time + pd.Timedelta(seconds=3))
            & (kms.request_id != row.request_id)
            & (kms.access_key_id == row.access_key_id)
            & (kms.resource_id == row.resource_id)
            & (kms.api_name == row.api_name)
        ]
        retried += bool(len(later))
    assert retried == len(throttled)


def test_assume_role_responses_come_in_both_key_spellings(
    generated: tuple[Path, dict, kf.Case],
) -> None:
    _, _, case = generated
    responses = case.actiontrail.loc[case.actiontrail.eventName == "AssumeRole", "responseElements"]
    spellings = {next(iter(r)) for r in responses}
    assert {"Credentials", "credentials"} <= spellings


def test_damage_is_recorded_in_the_truth_and_reported_by_the_loader(tmp_path: Path) -> None:
    truth = synth.generate(tmp_path, seed=4, start=START, hours=3, kms_per_hour=80, damage=0.05)
    assert truth["damaged"]
    case = load_case(tmp_path / "evidence", on_warning="ignore")
    rejected = case.issues[case.issues.severity == "record"]
    got = sorted(
        (str(Path(f).relative_to(tmp_path)), int(r))
        for f, r in zip(rejected.source_file, rejected.source_record, strict=True)
    )
    assert got == sorted((d["file"], d["line"]) for d in truth["damaged"])
    assert_reconciled(case)
