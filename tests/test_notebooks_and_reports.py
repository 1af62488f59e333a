"""Notebooks stay thin; widgets follow their controls; reports are safe, static HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest

import kmsforensics as kf
from kmsforensics import cli, interactive

matplotlib.use("Agg")
pytestmark = pytest.mark.filterwarnings("ignore::kmsforensics.DetectionNote")
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebooks_are_thin(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "one cell tagged 'parameters'"
    for source in code:
        assert not re.search(r"^\s*(def|class|async def)\s", source, re.M), source
        assert not re.search(r"(from|import)\s+kmsforensics[.\w]*\._|kf\._", source), source
        assert len(source.splitlines()) <= 12, "logic needed in a notebook belongs in the package"


def test_the_curated_notebooks_are_all_there() -> None:
    names = {p.name for p in notebooks()}
    assert {
        "00_start_here.ipynb", "01_triage.ipynb", "02_identity_graph.ipynb",
        "03_keys_and_secrets.ipynb", "04_hunting.ipynb", "incident_report.ipynb",
    } <= names  # fmt: skip


# -- widgets ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def incident() -> tuple[kf.Case, object]:
    case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence", progress=False)
    return case, kf.detect(case)


def _grid_rows(table: object) -> pd.DataFrame:
    return table._df  # type: ignore[attr-defined]  # the frame the itables grid holds


def assert_relative(shown: pd.Series, kept: pd.Series) -> None:
    """The grid names files under the evidence root; the widget's frame keeps full paths."""
    root = str(INCIDENT.resolve())
    assert len(shown) and not shown.str.startswith("/").any()
    assert kept.astype(str).str.startswith(root + "/").all()
    assert [f"{root}/{f}" for f in shown] == list(kept.astype(str).head(len(shown)))


def test_entity_explorer_follows_entity_window_and_depth(incident: tuple) -> None:
    case, findings = incident
    explorer = kf.widgets.EntityExplorer(case, findings, entity="ip:192.0.2.66")
    assert set(explorer.events.client_ip) == {"192.0.2.66"}
    assert "ip:192.0.2.66" in explorer.explorer.nodes and explorer.explorer.sigma is not None
    assert set(_grid_rows(explorer.table).client_ip) == {"192.0.2.66"}
    assert_relative(_grid_rows(explorer.table).source_file, explorer.events.source_file)
    assert type(explorer.plot.children[0]).__name__ == "BokehModel"
    nodes = set(explorer.explorer.nodes)
    explorer.entity.value = "ci-deployer"  # a name, not an id
    assert explorer.node is not None and explorer.node.startswith("ram-user:")
    assert set(explorer.events.principal_name.dropna()) >= {"ci-deployer"}
    assert explorer.explorer.nodes != nodes
    explorer.entity.value = "secret:6157241179809909/prod/payments/db-password"
    assert set(explorer.events.resource) == {"prod/payments/db-password"}
    whole = len(explorer.events)
    explorer.window.value = ("2026-03-11", "2026-03-11")
    assert 0 < len(explorer.events) < whole
    assert explorer.events.time.dt.strftime("%Y-%m-%d").eq("2026-03-11").all()
    assert explorer.window_label.value == "2026-03-11 to 2026-03-11"
    before = set(explorer.explorer.nodes)
    explorer.depth.value = 1
    assert explorer.explorer.nodes < before
    shown = len(explorer.events)
    explorer.entity.value = "nobody-at-all"
    assert "nothing matches" in explorer.status.value and len(explorer.events) == shown
    explorer.entity.value = "ip:203.0.113.250"
    assert "not in the evidence" in explorer.status.value or "nothing" in explorer.status.value


def test_graph_explorer_expands_highlights_and_stays_bounded(incident: tuple) -> None:
    import networkx as nx

    case, findings = incident
    graph_ = kf.build_graph(case)
    incidents = kf.report.incidents(findings, graph_)
    graph = kf.widgets.GraphExplorer(graph_, focus="ci-deployer", findings=findings,
                                     incidents=incidents)  # fmt: skip
    start = set(graph.nodes)
    edge = next(n for n in sorted(start) if set(nx.all_neighbors(graph_, n)) - start)
    assert graph.expand(edge) > 0 and graph.nodes > start
    further = next(n for n in sorted(graph.nodes) if set(nx.all_neighbors(graph_, n)) - graph.nodes)
    before = set(graph.nodes)
    graph.sigma.selected_node = further  # what a click in the browser does
    assert graph.nodes > before and further in graph.expanded
    graph.incident.value = 0
    assert graph.highlighted and graph.highlighted <= graph.nodes
    top = findings[kf.triage.finding_ids(findings).isin(incidents.iloc[0].finding_ids)]
    assert set(top.entity.dropna()) & set(graph_) <= graph.highlighted
    view = interactive.sigma_graph(graph_, graph.nodes, graph.highlighted)
    assert {n for n, h in view.nodes(data="highlight") if h} == graph.highlighted & set(view)
    assert view.nodes["ram-user:620233140704118224"]["label"] == "ci-deployer"
    graph.incident.value = -1
    assert not graph.highlighted


def test_graph_explorer_bounds_a_big_graph() -> None:
    import networkx as nx

    big = nx.MultiDiGraph()
    for i in range(3000):
        big.add_node(f"ip:10.0.{i // 250}.{i % 250}", kind="ip", name=f"10.0.{i // 250}.{i % 250}")
        big.add_edge("ram-user:hub", f"ip:10.0.{i // 250}.{i % 250}", relation="source-of")
    big.nodes["ram-user:hub"].update(kind="ram-user", name="hub")
    graph = kf.widgets.GraphExplorer(big, focus="hub", max_nodes=2000)
    assert len(graph.nodes) == 2000 and "ram-user:hub" in graph.nodes
    assert "most connected kept" in graph.status.value
    assert len(graph.sigma.data["nodes"]) == 2000


def test_timeline_lanes_use_names_and_mark_findings(incident: tuple) -> None:
    case, findings = incident
    events = kf.timeline(case, "access-key:STS.AtwWmrln6xDrmqjY8IjPyGcS8nQs", findings)
    names = interactive.identity_names(case)
    lanes = interactive.lanes(events, names)
    assert "deploy-role" in lanes and not any(lane.isdigit() for lane in lanes)
    figure = interactive.timeline_figure(events, names=names)
    kinds = [type(r.glyph).__name__ for r in figure.renderers]
    assert kinds.count("Scatter") == 2  # events, and the rows findings cite
    assert figure.xaxis[0].axis_label == "time (UTC)"


def test_display_timezone_changes_what_is_shown_not_what_is_stored(incident: tuple) -> None:
    case, _ = incident
    events = kf.timeline(case, "ip:192.0.2.66")
    try:
        kf.set_display_timezone("Asia/Shanghai")
        shown = interactive.grid_frame(events)
        assert str(shown.time.dt.tz) == "Asia/Shanghai"
        assert (shown.time.dt.tz_convert("UTC") == events.time).all()
        figure = interactive.timeline_figure(events)
        assert figure.xaxis[0].axis_label == "time (Asia/Shanghai)"
        assert str(case.activity.time.dt.tz) == "UTC"
        with pytest.raises(kf.display.TimezoneError):
            kf.set_display_timezone("Mars/Olympus")
    finally:
        kf.set_display_timezone("UTC")


def test_findings_browser_filters_shows_evidence_and_triages(
    incident: tuple, tmp_path: Path
) -> None:
    case, findings = incident
    browser = kf.widgets.FindingsBrowser(case, findings)
    assert (
        len(browser.visible) == len(findings) and "no triage record" in browser.triage_status.value
    )
    browser.severity.value = ("critical",)
    # two key destructions (D04) and the AAP client key used after its deletion (D33)
    assert set(browser.visible.severity) == {"critical"} and len(browser.visible) == 3
    chosen = findings.loc[browser.choice.value]
    assert set(browser.evidence.evidence_id) == set(chosen.evidence)
    assert set(_grid_rows(browser.table).evidence_id) == set(chosen.evidence)
    assert_relative(_grid_rows(browser.table).source_file, browser.evidence.source_file)
    assert browser.explorer.highlighted
    browser.severity.value = ("critical", "high")
    browser.rule.value = ("D01",)
    assert list(browser.visible.rule_id) == ["D01"]
    assert len(browser.evidence) == 70  # 35 reads, each in both logs
    browser.account.value = "4788562977433321"
    assert browser.visible.empty and browser.evidence.empty
    record = tmp_path / "case.triage.json"
    browser = kf.widgets.FindingsBrowser(case, findings, triage=record, analyst="mei")
    browser.rule.value = ("D01",)
    browser.decision.value, browser.note.value = "confirmed", "35 secrets read"
    browser.save.click()
    ident = kf.triage.finding_ids(findings)[browser.choice.value]
    assert kf.triage.TriageRecord(record).status(ident) == "confirmed"
    browser.scope.value, browser.reason.value = "network", "pen test"
    browser.scope_value.value = "192.0.2.0/24"
    browser.suppress_button.click()
    assert kf.triage.TriageRecord(record).suppressions[0].value == "192.0.2.0/24"
    again = kf.widgets.FindingsBrowser(case, findings, triage=record)  # a new kernel
    again.rule.value = ("D01",)
    assert again.choice.options[0][0].startswith("[confirmed] D01")
    assert again.decision.value == "confirmed" and again.note.value == "35 secrets read"
    hidden = kf.triage.apply(findings, kf.triage.TriageRecord(record), case)
    assert hidden.attrs["suppressed"]["S1"] > 0 and "D01" not in set(hidden.rule_id)


# -- reports ------------------------------------------------------------------------------------


def test_report_escapes_hostile_text_and_has_no_script(hostile_report: tuple) -> None:
    out, _ = hostile_report
    page = out.read_text()
    assert "<script" not in page.lower()
    assert "window.__xss=1" in page  # the payload is there, as text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert '<img src=x onerror="window.__xss=2">' not in page
    assert "&lt;b&gt;T-1&lt;/b&gt;" in page
    assert "=HYPERLINK" in page


def test_report_is_static_self_contained_and_reproducible(hostile_report: tuple) -> None:
    out, case = hostile_report
    page = out.read_text()
    for sha in case.manifest.sha256:
        assert sha in page
    assert f"kmsforensics {kf.__version__}" in page
    assert "data:image/png;base64," in page  # pictures embedded
    assert not re.search(r"<(img|link|iframe|script)[^>]+(src|href)=[\"']?https?:", page, re.I)
    assert "kf.load(" not in page  # no code cells


def test_report_command_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        cli.main(["report", "--out", str(tmp_path / "r.html")])
    assert cli.main(["report", "--evidence", str(tmp_path), "--out", str(tmp_path / "r.html"),
                        "--param", "novalue"]) == 2  # fmt: skip
    assert cli.main(["report", "--template", "nosuch", "--evidence", str(tmp_path),
                        "--out", str(tmp_path / "r.html")]) == 2  # fmt: skip


# -- a windowed report on the curated incident ----------------------------------------------

INCIDENT = kf.datasets.path("incident-leaked-ci-key") / "evidence"


@pytest.fixture(scope="module")
def windowed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The incident report with the README's window, rendered twice into two folders."""
    from kmsforensics import report

    triage = tmp_path_factory.mktemp("case") / "case.triage.json"
    record = kf.triage.TriageRecord(triage)
    record.mark("I-1", "benign", note="a note <b>kept</b> as text", analyst="mei", kind="incident")
    record.suppress("D19", "principal", "erin", reason="red team", expires="2099-01-01")
    outs = []
    for name in ("first", "second"):
        folder = tmp_path_factory.mktemp(name)
        outs.append(
            report.render(
                [INCIDENT],
                folder / "report.html",
                parameters={
                    "window_start": "2026-03-11",
                    "case_id": "IR-2026-031",
                    "triage": str(triage),
                },
            )
        )
    return outs[0], outs[1]


def test_a_window_narrows_what_is_shown_not_what_is_learned() -> None:
    inv = kf.report.investigate([INCIDENT], window_start="2026-03-11", window_end="2026-03-12")
    whole = kf.report.investigate([INCIDENT])
    assert "D01" in set(inv.shown.rule_id)  # the 2026-03-11 theft needs the days before
    assert (inv.shown.last_seen >= pd.Timestamp("2026-03-11", tz="UTC")).all()
    assert (inv.shown.first_seen < pd.Timestamp("2026-03-12", tz="UTC")).all()
    assert inv.scope.activity.time.min() >= pd.Timestamp("2026-03-11", tz="UTC")
    assert len(inv.case.activity) == len(whole.case.activity) > len(inv.scope.activity)
    high = inv.findings[(inv.findings.rule_id == "D30") & (inv.findings.severity == "high")]
    assert len(high) <= 2


def test_windowed_report_title_order_manifest_and_triage(windowed: tuple[Path, Path]) -> None:
    out, _ = windowed
    page = out.read_text()
    assert "<title>Incident report IR-2026-031" in page
    assert "Secret mass retrieval" in page  # D01 survives the window
    summary = page[page.index("Findings by severity") : page.index("Findings (critical")]
    ranks = [summary.find(f"<td>{s}</td>") for s in ("critical", "high", "medium", "low")]
    assert all(r > 0 for r in ranks) and ranks == sorted(ranks)
    assert "…" not in page and ">NaN<" not in page
    assert "What happened" in page and "192.0.2.66" in page.split("Incidents, ranked")[0]
    assert "D14" in page and "no geo database" in page  # the detection notes
    case = kf.load(INCIDENT, progress=False)
    appendix = page[page.index("Appendix: evidence manifest") : page.index('id="Versions"')]
    assert appendix.count("<tr>") == len(case.manifest) > 600  # the header row has a style
    assert str(INCIDENT) not in appendix
    assert "<td>oss/acme-trail-logs/AliyunLogs/Actiontrail/" in appendix
    assert "a note &lt;b&gt;kept&lt;/b&gt; as text" in page and "red team" in page
    assert "@media print" in page and "<script" not in page.lower()


def test_report_sidecar_and_hash_are_reproducible(windowed: tuple[Path, Path]) -> None:
    import hashlib

    for out in windowed:
        digest, name = out.with_name("report.html.sha256").read_text().split()
        assert name == "report.html" and digest == hashlib.sha256(out.read_bytes()).hexdigest()
    one, two = (json.loads(p.with_suffix(".json").read_text()) for p in windowed)
    assert one.pop("written") != "" and two.pop("written") != ""
    assert one == two
    assert one["parameters"]["window_start"] == "2026-03-11"
    files = len(kf.load(INCIDENT, progress=False).manifest)
    assert len(one["evidence_files"]) == files and one["versions"]["kmsforensics"] == kf.__version__
    case = kf.load(INCIDENT, progress=False)
    erin = case.activity.loc[case.activity.principal_name == "erin", "principal_id"].iloc[0]
    every = kf.detect(case, rules=["D01"], window_start="2026-03-11")
    assert len(every) and set(kf.triage.finding_ids(every)) <= set(one["findings_shown"])
    found = kf.detect(case, rules=["D19"], window_start="2026-03-11")
    hidden = int((found.actor == f"ram-user:{erin}").sum())
    assert hidden and one["suppressed"] == {"S1": hidden} and "D14" in one["detection_notes"]
    assert not set(one["findings"]) & set(
        kf.triage.finding_ids(found[found.actor.str.contains(erin)])
    )


def test_report_parameters_are_checked_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["report", "--evidence", str(INCIDENT), "--out", str(tmp_path / "r.html")]
    assert cli.main([*args, "--param", "window_begin=2026-03-11"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'window_begin'" in err and "window_start" in err
    assert cli.main([*args, "--param", "window_start=notadate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "window_start='notadate'" in err
    assert cli.main([*args, "--param", "display_timezone=Mars/Olympus"]) == 2
    assert "display_timezone" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_grid_frames_sort_categories_as_text(incident: tuple) -> None:
    case, _ = incident
    shown = interactive.grid_frame(case.activity.head(50))
    assert not any(isinstance(t, pd.CategoricalDtype) for t in shown.dtypes)
    assert shown.action.tolist() == case.activity.action.head(50).astype(str).tolist()
