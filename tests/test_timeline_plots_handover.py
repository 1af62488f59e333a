"""Timelines, plots and hand-over exports on the curated incident and on hostile input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import at_event, load_case

import kmsforensics as kf

matplotlib.use("Agg")
pytestmark = pytest.mark.filterwarnings("ignore::kmsforensics.DetectionNote")

ATTACKER_IP = "192.0.2.66"


@pytest.fixture(scope="module")
def incident() -> tuple[kf.Case, pd.DataFrame, dict]:
    folder = kf.datasets.path("incident-leaked-ci-key")
    case = load_case(folder / "evidence", on_warning="error")
    truth = json.loads((folder / "truth.json").read_text())
    return case, kf.detect(case), truth


@pytest.fixture
def hostile(tmp_path: Path) -> kf.Case:
    """Evidence whose user agent, error message and names try to be code."""
    events = [
        at_event(1, userAgent='=HYPERLINK("http://evil.example/","click")',
                 errorCode="NoPermission", errorMessage="<script>alert(1)</script>"),
        at_event(2, requestParameters={"SecretName": "203.0.113.7"}, eventName="GetSecretValue"),
        at_event(3, userIdentity={"type": "ram-user", "accountId": "1754986938261234",
                                  "principalId": "555", "userName": "$\\alpha$ @evil"}),
    ]  # fmt: skip
    (tmp_path / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    return kf.load(tmp_path / "trail.jsonl", progress=False)


# -- timeline ------------------------------------------------------------------------------


def test_timeline_of_the_attacker_address_marks_the_findings(
    incident: tuple[kf.Case, pd.DataFrame, dict],
) -> None:
    case, findings, truth = incident
    line = kf.timeline(case, ATTACKER_IP, findings)
    assert len(line) == int((case.activity.client_ip == ATTACKER_IP).sum())
    assert (line.client_ip == ATTACKER_IP).all() and line.time.is_monotonic_increasing
    assert set(line.source) == {"kms", "actiontrail"}
    theft = next(s for s in truth["scenarios"][0]["steps"] if "D01" in s["detections"])
    marked = line[line.evidence_id.isin(theft["request_ids"])]
    assert len(marked) == len(theft["request_ids"])
    assert all("D01" in m for m in marked.findings) and set(marked.severity) == {"high"}
    assert line.source_file.notna().all()


def test_node_ids_and_bare_ids_name_the_same_rows(
    incident: tuple[kf.Case, pd.DataFrame, dict],
) -> None:
    case, _, truth = incident
    key = truth["scenarios"][0]["facts"]["sts_key"]
    bare = kf.timeline(case, key)
    assert len(bare) > 0 and bare.equals(kf.timeline(case, f"access-key:{key}"))
    secret = truth["scenarios"][0]["facts"]["secrets_read"][0]
    account = truth["scenarios"][0]["facts"]["role_account"]
    assert set(kf.timeline(case, f"secret:{account}/{secret}").resource) == {secret}


def test_a_window_restricts_the_timeline(incident: tuple[kf.Case, pd.DataFrame, dict]) -> None:
    case, _, _ = incident
    day = kf.timeline(case, ATTACKER_IP, start="2026-03-12", end="2026-03-13")
    assert len(day) > 0
    assert (day.time >= pd.Timestamp("2026-03-12", tz="UTC")).all()
    assert (day.time < pd.Timestamp("2026-03-13", tz="UTC")).all()


def test_unknown_and_ambiguous_references(hostile: kf.Case) -> None:
    with pytest.raises(kf.graph.UnknownReferenceError, match="nothing"):
        kf.timeline(hostile, "LTAInothere")
    with pytest.raises(kf.graph.AmbiguousReferenceError, match=r"ip:203\.0\.113\.7"):
        kf.timeline(hostile, "203.0.113.7")  # an address and a secret's name
    assert len(kf.timeline(hostile, "ip:203.0.113.7")) == 3


# -- plots -----------------------------------------------------------------------------------


def test_activity_and_error_rate_plots_show_the_case(
    incident: tuple[kf.Case, pd.DataFrame, dict],
) -> None:
    case, _, _ = incident
    ax = kf.plot_activity(case)
    assert sorted(line.get_label() for line in ax.get_lines()) == ["actiontrail", "kms"]
    assert sum(line.get_ydata().sum() for line in ax.get_lines()) == len(case.activity)
    rates = kf.plot_error_rate(case)
    values = np.concatenate([line.get_ydata() for line in rates.get_lines()])
    assert np.nanmax(values) > 0 and np.nanmax(values) <= 100
    assert "UTC" in ax.get_xlabel()


def test_hour_of_week_counts_every_event_in_the_zone_asked(
    incident: tuple[kf.Case, pd.DataFrame, dict],
) -> None:
    case, _, _ = incident
    ax = kf.plot_hour_of_week(case, timezone="Asia/Shanghai")
    grid = ax.get_images()[0].get_array()
    assert grid.sum() == len(case.activity)
    utc = kf.plot_hour_of_week(case).get_images()[0].get_array()
    assert not np.array_equal(grid, utc)  # the same events, shifted by eight hours
    assert "Asia/Shanghai" in ax.get_xlabel()


def test_top_and_swimlanes(incident: tuple[kf.Case, pd.DataFrame, dict]) -> None:
    case, findings, _ = incident
    top = kf.plot_top(case, by="action", n=5)
    widths = [p.get_width() for p in top.patches]
    assert widths == sorted(case.activity.action.value_counts().head(5).tolist())
    import matplotlib.pyplot as plt

    _, given = plt.subplots()
    lanes = kf.plot_swimlanes(case, findings, top=8, ax=given)
    assert lanes is given
    labels = [t.get_text() for t in lanes.get_yticklabels()]
    assert "ci-deployer" in labels  # the attacker's identity gets a lane through its findings
    markers = [c for c in lanes.collections if c.get_offsets().shape[0] and c.get_zorder() == 3]
    assert sum(len(c.get_offsets()) for c in markers) > 0


def test_hostile_names_are_plain_labels(hostile: kf.Case) -> None:
    ax = kf.plot_top(hostile, by="principal_name", n=3)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert r"\$\alpha\$ @evil" in labels
    ax.figure.canvas.draw()  # renders without mathtext reading the dollars


# -- hand-over ---------------------------------------------------------------------------------


def test_csv_exports_neutralise_formulas_and_record_the_manifest(
    hostile: kf.Case, tmp_path: Path
) -> None:
    line = kf.timeline(hostile)
    out = kf.export_timeline(line, tmp_path / "timeline.csv", hostile)
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    agents = [r["user_agent"] for r in rows]
    assert '\'=HYPERLINK("http://evil.example/","click")' in agents
    assert not any(a.startswith(("=", "+", "-", "@")) for a in agents)
    manifest = json.loads(out.with_name("timeline.csv.manifest.json").read_text())
    assert [e["sha256"] for e in manifest["evidence"]] == list(hostile.manifest.sha256)
    assert manifest["rows"] == len(line) and manifest["written_by"].startswith("kmsforensics")


def test_findings_to_jsonl_and_timesketch(
    incident: tuple[kf.Case, pd.DataFrame, dict], tmp_path: Path
) -> None:
    case, findings, _ = incident
    plain = kf.export_findings(findings, tmp_path / "findings.jsonl", case)
    records = [json.loads(x) for x in plain.read_text().splitlines()]
    assert len(records) == len(findings)
    assert records[0]["evidence"] == list(findings.iloc[0].evidence)
    sketch = kf.export_findings(findings, tmp_path / "sketch.jsonl", case, fmt="timesketch")
    events = [json.loads(x) for x in sketch.read_text().splitlines()]
    assert {"message", "datetime", "timestamp_desc"} <= set(events[0])
    first = pd.Timestamp(events[0]["datetime"])
    assert first.tzinfo is not None and first == findings.iloc[0].first_seen
    assert events[0]["message"].startswith(findings.iloc[0].rule_id)
    with pytest.raises(ValueError, match="fmt"):
        kf.export_findings(findings, tmp_path / "findings.txt", case)


def test_graph_neighbourhood_of_a_finding(
    incident: tuple[kf.Case, pd.DataFrame, dict], tmp_path: Path
) -> None:
    case, findings, _ = incident
    graph = kf.build_graph(case)
    theft = findings[findings.rule_id == "D01"].iloc[0]
    out = kf.export_neighbourhood(graph, theft, tmp_path / "theft.graphml", case, depth=1)
    around = kf.graph.read_graph(out)
    assert theft.entity in around and 0 < around.number_of_nodes() < graph.number_of_nodes()
    assert (tmp_path / "theft.graphml.manifest.json").exists()


def test_focus_and_timeline_resolve_references_alike(tmp_path: Path) -> None:
    """One vocabulary (graph/nodes.py): an event id, a request id, a node id, a bare key."""
    from conftest import kms_record

    events = [at_event(n, eventId=f"EVT-ALIKE-{n}") for n in range(3)]
    records = [kms_record(n, request_id=f"req-alike-{n}") for n in range(2)]
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "trail.jsonl").write_text("\n".join(json.dumps(e) for e in events))
    (folder / "kms.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    case = kf.load(folder, progress=False)
    for ref in ("EVT-ALIKE-1", "req-alike-0", f"access-key:{records[0]['access_key_id']}"):
        focused = case.focus(ref).activity
        line = kf.timeline(case, ref)
        assert len(focused) > 0 and len(line) == len(focused), ref
    with pytest.raises(kf.UnknownReferenceError):
        kf.timeline(case, "EVT-NOT-THERE")
    assert case.focus("EVT-NOT-THERE").activity.empty
