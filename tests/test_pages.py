"""What the pages show, as the screenshots of the notebooks and the report were reviewed.

Empty cells where a value is missing (never "None", "NaN" or "NaT"), a named index kept as
a column, mappings as ``key=value``, a timeline legend that covers no event, lanes that
say what kind of identity a bare id is, and a report timeline that starts near what
happened rather than with the routine before it.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from conftest import jsonl, kms_record, write

import kmsforensics as kf
from kmsforensics import interactive

matplotlib.use("Agg")
pytestmark = pytest.mark.filterwarnings("ignore::kmsforensics.DetectionNote")


def test_report_tables_leave_missing_values_empty() -> None:
    frame = pd.DataFrame(
        {
            "principal_name": ["deploy-role", None, float("nan")],
            "error_code": pd.array([pd.NA, "Forbidden.NoPermission", pd.NA], dtype="string"),
            "count": [3.0, None, 1.0],
        }
    )
    page = kf.report.table(frame)._repr_html_()
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert cells == ["deploy-role", "", "3.0", "", "Forbidden.NoPermission", "", "", "", "1.0"]
    assert not re.search(r"\b(None|NaN|NaT|&lt;NA&gt;)\b", page)
    assert "None" not in repr(kf.report.table(frame))


def test_grids_leave_missing_values_empty_and_keep_a_named_index() -> None:
    frame = pd.DataFrame(
        {
            "error_code": [None, "Throttling.User"],
            "first_seen": pd.to_datetime(["2026-03-11T17:42:00Z", None], utc=True),
            "params": [{"threshold": 20, "window": "10min"}, {}],
        },
        index=pd.Index(["D01", "D02"], name="rule_id"),
    )
    shown = interactive.grid_frame(frame)
    assert list(shown.columns) == ["rule_id", "error_code", "first_seen", "params"]
    assert shown.to_dict("records") == [
        {"rule_id": "D01", "error_code": "", "first_seen": "2026-03-11 17:42:00+00:00",
         "params": "threshold=20, window=10min"},
        {"rule_id": "D02", "error_code": "Throttling.User", "first_seen": "", "params": ""},
    ]  # fmt: skip


def test_the_rule_list_in_a_grid_names_each_rule_and_its_parameters() -> None:
    rules = kf.list_rules()[["title", "severity", "params"]]
    shown = interactive.grid_frame(rules)
    assert list(shown["rule_id"]) == list(rules.index)
    d01 = shown[shown.rule_id == "D01"].iloc[0]
    assert "threshold=" in d01.params and "{" not in d01.params


def test_the_timeline_legend_is_above_the_lanes() -> None:
    events = pd.DataFrame(
        {
            "time": pd.to_datetime(["2026-03-11T17:45:00Z", "2026-03-11T17:48:00Z"], utc=True),
            "principal_name": ["deploy-role", "deploy-role"],
            "action": ["ListSecrets", "GetSecretValue"],
            "success": [True, True],
            "severity": [None, "high"],
            "findings": [(), ("D01",)],
        }
    )
    plot = interactive.timeline_figure(events)
    legends = [item for item in plot.above if type(item).__name__ == "Legend"]
    assert len(legends) == 1 and legends[0].orientation == "horizontal"
    assert not [item for item in plot.center if type(item).__name__ == "Legend"]


def test_a_lane_of_an_unnamed_identity_says_its_kind(tmp_path: Path) -> None:
    """A RAM user seen only in the KMS log has no name anywhere: its lane is typed."""
    records = [
        kms_record(n, identity_type="ram-user", principal_id="238902601002297777",
                   access_key_id="LTAI5tUnnamedUserKey0001", api_name="GenerateDataKey")
        for n in range(3)
    ] + [kms_record(10)]  # fmt: skip
    case = kf.load(write(tmp_path / "kms.jsonl", jsonl(records)), progress=False)
    lanes = [t.get_text() for t in kf.plot_swimlanes(case).get_yticklabels()]
    assert "ram-user:238902601002297777" in lanes
    assert not [lane for lane in lanes if lane.isdigit()]


@pytest.fixture(scope="module")
def inv() -> kf.report.Investigation:
    return kf.report.investigate([kf.datasets.path("incident-leaked-ci-key") / "evidence"])


def test_the_report_manifest_breaks_its_paths_and_hashes_not_the_page(
    inv: kf.report.Investigation,
) -> None:
    page = kf.report.manifest(inv)._repr_html_()
    assert 'class="dataframe kmsforensics-table kmsforensics-manifest"' in page
    assert ".kmsforensics-manifest td:nth-child(-n+2) { overflow-wrap: anywhere; }" in (
        kf.report.STYLE
    )
    assert "kmsforensics-manifest" not in kf.report.severity_summary(inv.shown)._repr_html_()


def test_the_report_timeline_starts_near_the_most_severe_finding(
    inv: kf.report.Investigation,
) -> None:
    focus = kf.report.top_entity(inv)
    every = kf.timeline(inv.scope, focus, inv.shown)
    shown = kf.report.timeline_table(inv, focus, rows=50)
    assert len(every) > 50 and len(shown.frame) == 50
    critical = every.loc[every.severity == "critical", "time"].min()
    first = pd.Timestamp(shown.frame["time"].iloc[0].replace(" UTC", ""), tz="UTC")
    assert critical - pd.Timedelta(hours=1) <= first <= critical
    assert shown.frame["findings"].astype(bool).any()  # the cited events are in it
    assert f"50 of the {len(every):,} events of {focus}" in shown.note
    assert "critical finding cites" in shown.note


def test_small_grids_are_as_wide_as_their_columns_and_big_ones_scroll() -> None:
    """A scrolling grid spans the page, and so does its bottom rule under a 4-row table."""
    small = kf.widgets.grid(pd.DataFrame({"kind": ["key", "secret"], "nodes": [6, 9]}))
    big = kf.widgets.grid(pd.DataFrame({"n": range(50)}))
    wide = kf.widgets.grid(pd.DataFrame({c: [1] for c in "abcdefgh"}))
    assert "scrollX" not in small._dt_args and "scrollY" not in small._dt_args
    assert "margin:0" in small._style  # on the left, as the other outputs
    assert big._dt_args["scrollY"] == "320px" and wide._dt_args["scrollX"] is True


def test_a_report_without_a_triage_record_says_so_once(inv: kf.report.Investigation) -> None:
    assert inv.record is None
    decisions, suppressions = kf.report.triage_tables(inv)
    said = decisions._repr_html_() + suppressions._repr_html_()
    assert said.count("no triage record was given") == 1
    assert "triage record" in suppressions._repr_html_()  # why there are none
