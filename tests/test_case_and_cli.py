"""The Case object, the fast/exact reader agreement, the command line."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    assume_role_event,
    at_event,
    dumps,
    jsonl,
    kms_record,
    oss_array,
    role_session_event,
    write,
    zip_bytes,
)

import kmsforensics as kf
from kmsforensics.cli import main


@pytest.fixture()
def case(evidence: Path) -> kf.Case:
    oss_array(
        evidence / "oss/Actiontrail_cn-hangzhou_1.gz",
        [at_event(i) for i in range(3)] + [assume_role_event(5)],
    )
    write(evidence / "kms.jsonl", jsonl([kms_record(i) for i in range(4)]))
    write(evidence / "notes.txt", b"analyst notes, not a log\n")
    with pytest.warns(kf.ParseWarning):
        return kf.load(evidence, progress=False)


def test_repr_is_one_line_summary(case: kf.Case) -> None:
    text = repr(case)
    assert "\n" not in text
    assert "3 files" in text and "4 KMS records" in text and "4 ActionTrail events" in text
    assert "2026-03-02T01:00:00Z .. 2026-03-02T02:00:03Z" in text
    assert "2 accounts" in text


def test_html_summary_shows_formats_and_escapes_names(evidence: Path) -> None:
    write(evidence / "<script>alert(1)</script>.jsonl", jsonl([at_event(1)]))
    case = kf.load(evidence, progress=False)
    html = case._repr_html_()
    assert "<script>" not in html
    summary = case.summary()
    assert summary["files_by_format"] == {"json-lines:actiontrail": 1}
    assert "json-lines:actiontrail" in html and "ActionTrail events" in html


def test_between_is_half_open_utc_and_keeps_provenance(case: kf.Case) -> None:
    day = case.between("2026-03-02T01:00:01", "2026-03-02T02:00:01Z")
    assert day.activity.time.min() == pd.Timestamp("2026-03-02T01:00:01Z")
    assert day.activity.time.max() < pd.Timestamp("2026-03-02T02:00:01Z")
    assert set(day.activity.source) == {"actiontrail", "kms"}
    assert len(day.kms) == 1 and len(day.actiontrail) == 3
    assert day.manifest is case.manifest
    local = case.between("2026-03-02T09:00:00+08:00", None)
    assert local.activity.time.min() == pd.Timestamp("2026-03-02T01:00:00Z")
    assert len(case.between(None, None).activity) == len(case.activity)


def test_actiontrail_nested_objects_are_dicts_and_cached(case: kf.Case) -> None:
    first = case.actiontrail
    assert first is case.actiontrail
    params = first.set_index("eventName").loc["AssumeRole", "requestParameters"]
    assert params == {
        "RoleArn": "acs:ram::1594986938265678:role/deploy-role",
        "RoleSessionName": "ci-session",
        "DurationSeconds": 3600,
    }


def test_parameters_record_how_the_case_was_loaded(case: kf.Case) -> None:
    assert case.parameters["loader_version"] == kf.__version__
    assert case.parameters["strict"] is False


def test_fast_and_exact_array_readers_agree(evidence: Path) -> None:
    events = [
        at_event(1),
        assume_role_event(2),
        role_session_event(3),
        at_event(4, eventVersion="1", userAgent='ua with "quotes" and ü'),
    ]
    disk = evidence / "disk"
    oss_array(disk / "Actiontrail_a.gz", events)  # read by duckdb straight from disk
    packed = evidence / "packed"
    write(packed / "a.zip", zip_bytes({"Actiontrail_a.gz": gzip.compress(dumps(events))}))
    fast = kf.load(disk, progress=False)
    exact = kf.load(packed, progress=False)
    for name in ("actiontrail", "activity"):
        # call_id is made from the provenance (the file names differ here)
        left = getattr(fast, name).drop(columns=["source_file", "call_id"], errors="ignore")
        right = getattr(exact, name).drop(columns=["source_file", "call_id"], errors="ignore")
        pd.testing.assert_frame_equal(left, right, check_categorical=False)


def test_json_lines_array_and_sls_give_the_same_rows(evidence: Path) -> None:
    events = [at_event(1), role_session_event(2)]
    write(evidence / "a/lines.jsonl", jsonl(events))
    write(evidence / "b/array.json", dumps(events))
    write(
        evidence / "c/sls.json",
        jsonl([{"__topic__": "actiontrail_audit_event", "event": json.dumps(e)} for e in events]),
    )
    frames = [
        kf.load(evidence / x, progress=False).activity.drop(
            columns=["source_file", "source_record", "call_id"]  # call_id: from provenance
        )
        for x in "abc"
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1], check_categorical=False)
    pd.testing.assert_frame_equal(frames[0], frames[2], check_categorical=False)


def test_progress_bar_shows_for_slow_loads_and_can_be_turned_off(
    evidence: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(evidence / "a.jsonl", jsonl([at_event(1)]))
    import kmsforensics.loader as loader

    monkeypatch.setattr(loader, "_PROGRESS_DELAY", 0.0)
    kf.load(evidence, progress=True)
    assert "kmsforensics.load" in capsys.readouterr().err
    kf.load(evidence, progress=False)
    assert capsys.readouterr().err == ""


def test_cli_load_summary_json_and_strict(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(evidence / "a.jsonl", jsonl([at_event(1), kms_record(1)]))
    write(evidence / "deep/c.jsonl", jsonl([at_event(2)]))
    write(evidence / "readme.txt", b"not a log")
    assert main(["load", str(evidence)]) == 0
    out = capsys.readouterr().out
    assert "2 KMS records" not in out and "1 KMS records, 2 ActionTrail events" in out
    assert "files by format: 1 json-lines:actiontrail, 1 json-lines:actiontrail+kms, " in out
    assert "files by status: 2 loaded, 1 skipped" in out
    assert "readme.txt" not in out and len(out.splitlines()) <= 5  # short by default
    assert main(["load", str(evidence), "--manifest"]) == 0
    out = capsys.readouterr().out
    assert "readme.txt" in out and "deep/c.jsonl" in out
    assert main(["load", str(evidence), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == {"kms": 1, "actiontrail": 2}
    assert len(summary["manifest"][0]["sha256"]) == 64
    write(evidence / "b.jsonl", b"{broken\n")
    assert main(["load", str(evidence), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "b.jsonl, record 1" in err and "without --strict" in err and "strict=False" not in err
    assert main(["load", str(evidence / "missing")]) == 2


def test_cli_refuses_sources_without_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["load", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no files in" in err
    write(tmp_path / "notes/a.txt", b"analyst notes\n")
    write(tmp_path / "notes/b.csv", b"x,y\n1,2\n")
    assert main(["detect", str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("kmsforensics detect: no KMS access log or ActionTrail file")


def _incident_folder(evidence: Path) -> Path:
    """A role assumed from a new address, then five secrets read with its STS key."""
    reads = [
        role_session_event(10 + i, sourceIpAddress="198.51.100.23",
                           requestParameters={"SecretName": f"prod/s{i}"})
        for i in range(5)
    ]  # fmt: skip
    oss_array(evidence / "trail/Actiontrail_cn-hangzhou_x.gz", [assume_role_event(5), *reads])
    write(evidence / "kms/k.jsonl", jsonl([kms_record(i) for i in range(6)]))
    return evidence


def test_cli_detect_writes_findings_and_prints_a_short_summary(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _incident_folder(evidence)
    out = tmp_path / "findings.csv"
    assert main(["detect", str(folder), "--rules", "D02,D30", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    findings = pd.read_csv(out)
    assert text.startswith(f"{len(findings)} findings")
    assert set(findings.rule_id) <= {"D02", "D30"} and len(findings)
    assert f"wrote {out}" in text
    lines = tmp_path / "findings.jsonl"
    assert main(["detect", str(folder), "--rules", "D30", "--json", str(lines)]) == 0
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert {r["rule_id"] for r in rows} == {"D30"}
    assert main(["detect", str(folder), "--rules", "D99"]) == 2
    assert "D99" in capsys.readouterr().err


def test_cli_incidents_and_export(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _incident_folder(evidence)
    assert main(["incidents", str(folder), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table and table[0]["rank"] == 1 and table[0]["finding_ids"]
    assert main(["incidents", str(folder)]) == 0
    assert f"{len(table)} incidents" in capsys.readouterr().out
    out = tmp_path / "events.jsonl"
    assert main(["export", str(folder), "--format", "timesketch", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 + 6 and {"message", "datetime", "timestamp_desc"} <= set(rows[0])
    ocsf = tmp_path / "events.ocsf.jsonl"
    assert main(["export", str(folder), "--format", "ocsf", "--out", str(ocsf)]) == 0
    events = [json.loads(line) for line in ocsf.read_text().splitlines()]
    assert len(events) >= 12 and all("class_uid" in e for e in events)
    csv = tmp_path / "events.csv"
    assert main(["export", str(folder), "--format", "csv", "--out", str(csv)]) == 0
    assert len(pd.read_csv(csv)) == 12


def test_cli_synth_prints_a_line_not_the_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["synth", str(tmp_path / "s"), "--hours", "2", "--kms-per-hour", "10"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and "truth.json" in out and "{" not in out
    assert json.loads((tmp_path / "s/truth.json").read_text())["hours"] == 2


def test_python_dash_m_runs_the_command(evidence: Path) -> None:
    write(evidence / "a.jsonl", jsonl([at_event(1)]))
    result = subprocess.run(
        [sys.executable, "-m", "kmsforensics", "load", str(evidence)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and "1 ActionTrail events" in result.stdout


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "kmsforensics"
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"kmsforensics {kf.__version__}"


def test_search_finds_text_in_every_field_of_both_logs_with_provenance(evidence: Path) -> None:
    nested = role_session_event(
        7, requestParameters={"SecretName": "prod/Payments-Token", "VersionStage": "ACSCurrent"}
    )
    oss_array(evidence / "t/Actiontrail_x.gz", [at_event(1), nested])
    write(evidence / "k.jsonl", jsonl([kms_record(2, useragent="curl/8.4 (Payments-Token)")]))
    case = kf.load(evidence, progress=False)
    hits = case.search("payments-token")
    assert list(hits.source) == ["actiontrail", "kms"]  # oldest first, case-insensitive
    assert "requestParameters" in hits.fields.iloc[0] and hits.id.iloc[0] == nested["eventId"]
    # the file as it sits in the evidence, the root kept: root/source_file is the full path
    assert list(hits.source_file) == ["t/Actiontrail_x.gz", "k.jsonl"]
    assert hits.source_record.iloc[1] == 1
    root = Path(hits.attrs["evidence_root"])
    assert root == evidence.resolve()
    assert set(case.manifest.path) >= {str(root / f) for f in hits.source_file}
    assert "useragent" in hits.fields.iloc[1]
    assert "Payments-Token" in hits.excerpt.iloc[1]
    assert case.search("no such text anywhere").empty
    assert len(case.search("ACSCurrent")) == 1  # a nested value only the raw event holds


def test_search_names_zip_members_under_the_evidence_root(evidence: Path) -> None:
    import zipfile

    (evidence / "trail").mkdir()
    with zipfile.ZipFile(evidence / "trail" / "export.zip", "w") as archive:
        archive.writestr("day/at.json", json.dumps([at_event(3, sourceIpAddress="198.51.100.7")]))
    write(evidence / "sls" / "k.jsonl", jsonl([kms_record(4, client_ip="198.51.100.7")]))
    case = kf.load(evidence, progress=False)
    hits = case.search("198.51.100.7")
    assert sorted(hits.source_file) == ["sls/k.jsonl", "trail/export.zip::day/at.json"]
    root = hits.attrs["evidence_root"]
    assert set(case.manifest.path) >= {f"{root}/{f}" for f in hits.source_file}
    assert not any(f.startswith("/") for f in hits.source_file)
