"""Notebooks stay thin; widgets follow their controls; reports are safe, static HTML."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import nbformat
import pytest

import kmsforensics as kf
from kmsforensics import cli

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


def test_entity_explorer_follows_entity_window_and_depth(incident: tuple) -> None:
    case, findings = incident
    explorer = kf.widgets.EntityExplorer(case, findings, entity="ip:192.0.2.66")
    assert set(explorer.events.client_ip) == {"192.0.2.66"}
    picture, table = bytes(explorer.picture.value), explorer.table.value
    assert picture.startswith(b"\x89PNG") and "192.0.2.66" in table
    explorer.entity.value = "secret:6157241179809909/prod/payments/db-password"
    assert set(explorer.events.resource) == {"prod/payments/db-password"}
    assert bytes(explorer.picture.value) != picture and explorer.table.value != table
    whole = len(explorer.events)
    explorer.window.value = ("2026-03-11", "2026-03-11")
    assert 0 < len(explorer.events) < whole
    assert explorer.events.time.dt.strftime("%Y-%m-%d").eq("2026-03-11").all()
    before = bytes(explorer.picture.value)
    explorer.depth.value = 1
    assert bytes(explorer.picture.value) != before
    explorer.entity.value = "ip:203.0.113.250"
    assert "not in the evidence" in explorer.status.value


def test_findings_browser_filters_and_shows_evidence(incident: tuple) -> None:
    case, findings = incident
    browser = kf.widgets.FindingsBrowser(case, findings)
    assert len(browser.visible) == len(findings)
    browser.severity.value = ("critical",)
    # two key destructions (D04) and the AAP client key used after its deletion (D33)
    assert set(browser.visible.severity) == {"critical"} and len(browser.visible) == 3
    chosen = findings.loc[browser.choice.value]
    assert set(browser.evidence.evidence_id) == set(chosen.evidence)
    assert bytes(browser.picture.value).startswith(b"\x89PNG")
    browser.severity.value = ("critical", "high")
    browser.rule.value = ("D01",)
    assert list(browser.visible.rule_id) == ["D01"]
    assert len(browser.evidence) == 70  # 35 reads, each in both logs
    browser.account.value = "4788562977433321"
    assert browser.visible.empty and browser.evidence.empty


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
