"""Every synthetic delivery shape round-trips through kf.load, reproducibly."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import assert_reconciled, at_event, kms_record, load_case, role_session_event

from kmsforensics import synth

START = datetime(2026, 3, 2, tzinfo=UTC)


def events(n: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + n):
        event = role_session_event(i) if i % 3 == 0 else at_event(i)
        stamp = START + timedelta(minutes=37 * i)
        event["eventTime"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(event)
    return sorted(out, key=lambda e: e["eventTime"])


def write_everything(root: Path) -> dict[str, synth.Written]:
    return {
        "oss": synth.write_oss_tree(events(120), root / "bucket", prefix="trail", per_file=40),
        "oss-rd": synth.write_oss_tree(events(30, 200), root / "rd-bucket", rd_id="rd-k3x9"),
        "pages": synth.write_lookup_pages(events(70, 300), root / "lookup"),
        "sls": synth.write_sls_jsonl(events(20, 400), root / "sls/dump_0.json"),
        "sls-old": synth.write_sls_jsonl(
            events(5, 450), root / "sls/dump_1.json", topic="actiontrail_event"
        ),
        "sls-csv": synth.write_sls_csv(events(6, 500), root / "sls/download.csv", delimiter=";"),
        "sls-flat": synth.write_sls_csv(events(4, 520), root / "sls/flat.csv", flattened=True),
        "kms": synth.write_jsonl(
            (kms_record(i) for i in range(50)), root / "kms/kms_audit_log.json.gz", gz=True
        ),
        "kms-csv": synth.write_csv((kms_record(i) for i in range(50, 60)), root / "kms/k.csv"),
        "kms-array": synth.write_json_array(
            (kms_record(i) for i in range(60, 65)), root / "kms/k.json"
        ),
        "kms-sls": synth.write_kms_sls(
            (kms_record(i) for i in range(65, 75)), root / "kms/sls.json.gz"
        ),
    }


def test_every_shape_loads_with_the_counts_written(tmp_path: Path) -> None:
    written = write_everything(tmp_path)
    case = load_case(tmp_path, on_warning="error")
    at = sum(w.records for k, w in written.items() if not k.startswith("kms"))
    kms = sum(w.records for k, w in written.items() if k.startswith("kms"))
    assert (len(case.actiontrail), len(case.kms)) == (at, kms)
    assert case.issues.empty
    assert_reconciled(case)
    formats = set(case.manifest.format)
    assert formats == {
        "json-array:actiontrail",
        "json-object:actiontrail",
        "json-lines:actiontrail-sls",
        "csv:actiontrail-sls",
        "json-lines:kms",
        "csv:kms",
        "json-array:kms",
        "json-lines:kms-sls",
    }
    oss = written["oss"].paths
    counts = [int(p.name.split("_")[4]) for p in oss]
    assert sum(counts) == 120 and max(counts) <= 40  # at most per_file events a file
    days = {e["eventTime"][:10].replace("-", "/") for e in events(120)}
    assert {"/".join(p.parent.parts[-3:]) for p in oss} == days  # never across UTC days
    assert "trail/AliyunLogs/Actiontrail/cn-hangzhou/2026/03/02/" in str(oss[0])
    assert "/AliyunLogs/Actiontrail/rd-k3x9/" in str(written["oss-rd"].paths[0])


def test_oss_file_names_follow_the_delivery_convention(tmp_path: Path) -> None:
    written = synth.write_oss_tree(events(10), tmp_path)
    name = written.paths[0].name
    region, stamp, kind, count, size, digest = name[len("Actiontrail_") : -3].split("_")
    assert (region, kind, count) == ("cn-hangzhou", "1002", "10")
    assert int(size) == written.paths[0].stat().st_size
    assert digest == hashlib.md5(written.paths[0].read_bytes(), usedforsecurity=False).hexdigest()
    assert len(stamp) == 14


def test_damaged_lines_are_reported_exactly(tmp_path: Path) -> None:
    written = synth.write_sls_jsonl(events(200), tmp_path / "dump.json", damage=0.05, seed=7)
    assert 0 < len(written.damaged) < 30
    case = load_case(tmp_path, on_warning="ignore")
    rejected = case.issues[case.issues.severity == "record"]
    assert sorted(rejected.source_record.tolist()) == [line for _, line in written.damaged]
    assert len(case.actiontrail) == 200 - len(written.damaged)
    assert_reconciled(case)


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    def digest(root: Path) -> dict[str, str]:
        write_everything(root)
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digest(tmp_path / "one") == digest(tmp_path / "two")
