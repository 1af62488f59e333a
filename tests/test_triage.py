"""The triage record: decisions and suppressions beside the case, applied to findings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import kmsforensics as kf
from kmsforensics.triage import TriageError, TriageRecord, apply, finding_id, finding_ids


def findings_frame() -> pd.DataFrame:
    """Three findings written by hand: a CI role, a person, one from the office NAT."""
    times = pd.to_datetime(["2026-05-04T03:00Z", "2026-05-04T09:30Z", "2026-05-05T12:00Z"])
    return pd.DataFrame(
        {
            "rule_id": ["D30", "D01", "D11"],
            "severity": ["medium", "high", "medium"],
            "title": ["STS key used", "Secret mass retrieval", "New source address"],
            "entity": ["access-key:STS.nightly", "secret:42/db", "access-key:LTAIpers"],
            "actor": ["ram-role:terraform-plan", "ram-user:9001", "ram-user:9002"],
            "first_seen": times,
            "last_seen": times + pd.Timedelta(minutes=5),
            "summary": ["chain", "25 secrets", "new address"],
            "evidence": [("ev-1",), ("ev-2", "ev-3"), ("ev-4", "ev-5")],
        }
    )


def activity_case() -> kf.Case:
    """A case whose activity holds the rows behind the findings (addresses, agents)."""
    activity = pd.DataFrame(
        {
            "event_id": ["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"],
            "principal_id": ["5551", "9001", "9001", "9002", "9002"],
            "principal_name": ["terraform-plan", "mei", None, "li", "li"],
            "request_id": [None] * 5,
            "client_ip": ["10.8.0.4", "198.51.100.9", "10.8.0.7", "100.64.3.2", "100.64.3.9"],
            "user_agent": [
                "terraform/1.9",
                "curl/8",
                "aliyun-cli/3 (darwin)",
                "aliyun-cli/3 (linux)",
                "aliyun-cli/3 (linux)",
            ],
        }
    )
    empty = pd.DataFrame()
    manifest = pd.DataFrame({"path": ["/nowhere/evidence/a.json"]})
    return kf.Case(empty, empty, activity, empty, manifest)


def test_ids_are_stable_and_a_given_finding_id_wins() -> None:
    frame = findings_frame()
    first, again = finding_ids(frame), finding_ids(frame.copy().iloc[::-1])
    assert list(first) == list(again.loc[first.index])
    assert first.is_unique and first.str.match(r"^D\d\d-[0-9a-f]{12}$").all()
    moved = frame.assign(first_seen=frame.first_seen + pd.Timedelta(seconds=1))
    assert not set(finding_ids(moved)) & set(first)
    assert finding_id({**frame.iloc[0].to_dict(), "finding_id": "F-77"}) == "F-77"


def test_decisions_are_kept_with_history_and_survive_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "case-7.triage.json"
    record = TriageRecord(path)
    ident = finding_ids(findings_frame()).iloc[1]
    record.mark(ident, "confirmed", note="attacker read 25 secrets", analyst="mei")
    record.mark(ident, "false-positive", note="rotation job", analyst="li")
    record.mark("I-1", "benign", note="pen test", analyst="li", kind="incident")
    again = TriageRecord(path)
    assert again.status(ident) == "false-positive" and again.status("nothing") == "open"
    assert len(again.decisions) == 3  # history kept
    table = again.table().set_index("target")
    assert table.loc[ident, "analyst"] == "li" and table.loc["I-1", "kind"] == "incident"
    assert json.loads(path.read_text())["format"] == "kmsforensics-triage/1"
    with pytest.raises(TriageError, match="status 'fine'"):
        again.mark(ident, "fine")


def test_suppressions_hide_matching_findings_and_count_them(tmp_path: Path) -> None:
    record = TriageRecord(tmp_path / "t.json")
    record.suppress("D30", "role", "terraform-plan", reason="nightly plans",
                    expires="2099-01-01", analyst="li")  # fmt: skip
    record.suppress("*", "network", "100.64.0.0/10", reason="office NAT", expires="2099-01-01")
    record.suppress("D01", "principal", "9001", reason="expired one", expires="2026-01-01")
    kept = apply(findings_frame(), record, activity_case())
    assert list(kept.rule_id) == ["D01"]  # the expired suppression hides nothing
    assert kept.attrs["suppressed"] == {"S1": 1, "S2": 1, "S3": 0}
    assert set(kept.attrs["hidden"].rule_id) == {"D30", "D11"}
    counts = TriageRecord(tmp_path / "t.json").suppression_table(kept.attrs["suppressed"])
    assert list(counts.findings_hidden) == [1, 1, 0]


def test_network_and_agent_suppressions_need_every_row_to_match(tmp_path: Path) -> None:
    record = TriageRecord(tmp_path / "t.json")
    record.suppress("D01", "network", "10.8.0.0/16", reason="VPN", expires="2099-01-01")
    record.suppress("D11", "user_agent", "(darwin)", reason="laptops", expires="2099-01-01")
    kept = apply(findings_frame(), record, activity_case())
    assert len(kept) == 3  # D01 has one row from 198.51.100.9; D11's agents are linux
    assert kept.attrs["suppressed"] == {"S1": 0, "S2": 0}


def test_a_principal_is_named_by_its_id_or_by_the_name_the_logs_give_it(tmp_path: Path) -> None:
    record = TriageRecord(tmp_path / "t.json")
    record.suppress("D01", "principal", "mei", reason="her rotation job", expires="2099-01-01")
    record.suppress("D11", "principal", "ram-user:9002", reason="new laptop", expires="2099-01-01")
    kept = apply(findings_frame(), record, activity_case())
    assert list(kept.rule_id) == ["D30"] and kept.attrs["suppressed"] == {"S1": 1, "S2": 1}
    assert len(apply(findings_frame(), record)) == 2  # without the case, names are unknown


def test_lineage_scopes_read_the_rule_packs_lineage(tmp_path: Path) -> None:
    frame = findings_frame().assign(
        lineage=[
            {"origin": "ram-user:5551", "chain": ["acs:ram::42:role/deploy-role"],
             "network": "10.8.0.0/16"},
            {"origin": "ram-user:9001", "chain": [], "network": "198.51.100.0/24"},
            None,
        ]
    )  # fmt: skip
    record = TriageRecord(tmp_path / "t.json")
    record.suppress("*", "role", "deploy-role", reason="pipeline", expires="2099-01-01")
    record.suppress("D01", "lineage", "ram-user:9001", reason="known", expires="2099-01-01")
    kept = apply(frame, record)
    assert list(kept.rule_id) == ["D11"] and kept.attrs["suppressed"] == {"S1": 1, "S2": 1}


def test_status_and_note_are_columns_of_the_findings(tmp_path: Path) -> None:
    record = TriageRecord(tmp_path / "t.json")
    ident = finding_ids(findings_frame()).iloc[0]
    record.mark(ident, "benign", note="CI", analyst="li")
    kept = apply(findings_frame(), record)
    assert list(kept.triage_status) == ["benign", "open", "open"]
    assert kept.triage_note.iloc[0] == "CI"


def test_the_record_is_never_in_the_evidence_and_bad_input_is_refused(tmp_path: Path) -> None:
    case = activity_case()
    case.manifest = pd.DataFrame({"path": [str(tmp_path / "evidence" / "a.json")]})
    with pytest.raises(TriageError, match="inside the evidence"):
        TriageRecord.for_case(case, tmp_path / "evidence" / "triage.json")
    with pytest.raises(TriageError, match="in-memory case"):
        TriageRecord.for_case(case)
    assert TriageRecord.for_case(case, tmp_path / "t.json").path == tmp_path / "t.json"
    record = TriageRecord(tmp_path / "t.json")
    with pytest.raises(TriageError, match="reason"):
        record.suppress("D01", "principal", "x", reason=" ", expires="2099-01-01")
    with pytest.raises(TriageError, match="scope"):
        record.suppress("D01", "account", "x", reason="r", expires="2099-01-01")
    with pytest.raises(TriageError, match="network"):
        record.suppress("D01", "network", "not-a-net", reason="r", expires="2099-01-01")
    with pytest.raises(TriageError, match="expires"):
        record.suppress("D01", "principal", "x", reason="r", expires="soon")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(TriageError, match=r"broken\.json"):
        TriageRecord(tmp_path / "broken.json")


def test_a_store_case_keeps_its_record_in_the_store(tmp_path: Path) -> None:
    case = activity_case()
    case.parameters["store"] = str(tmp_path / "store")
    assert TriageRecord.for_case(case).path == tmp_path / "store" / "triage.json"


def test_detect_applies_the_record_and_counts_what_each_suppression_hid(tmp_path: Path) -> None:
    from conftest import assume_role_event, jsonl, kms_record, oss_array, role_session_event, write

    evidence = tmp_path / "evidence"
    reads = [role_session_event(10 + i, sourceIpAddress="198.51.100.23") for i in range(3)]
    assume = assume_role_event(5, sourceIpAddress="198.51.100.23")
    oss_array(evidence / "t/Actiontrail_x.gz", [assume, *reads])
    write(evidence / "k.jsonl", jsonl([kms_record(i) for i in range(3)]))
    case = kf.load(evidence, progress=False)
    plain = kf.detect(case, rules=["D30"])
    assert len(plain) and "triage_status" not in plain
    record = TriageRecord(tmp_path / "case.triage.json")
    record.suppress("D30", "network", "198.51.100.0/24", reason="vendor", expires="2099-01-01")
    kept = kf.detect(case, rules=["D30"], triage=TriageRecord.for_case(case, record.path))
    assert kept.attrs["suppressed"]["S1"] + len(kept) == len(plain)
    assert kept.attrs["suppressed"]["S1"] > 0 and "triage_status" in kept
    with pytest.raises(TriageError, match="inside the evidence"):
        TriageRecord.for_case(case, evidence / "triage.json")
