"""Output that cannot be turned against the analyst: CSV, plots, widgets, terminal, GraphML.

The case is written by hand: a role whose name is mathtext, a session and a secret
named ``$x^{$``, a user agent that starts a formula after a bare CR, and names
holding terminal escapes and characters XML 1.0 forbids.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import matplotlib
import networkx as nx
import pandas as pd
import pytest

import kmsforensics as kf
from kmsforensics.cli import main

matplotlib.use("Agg")

ACCOUNT = "1302938475610293"
ROLE = r"$\alert$"
SESSION = "$x^{$"
SECRET = "$x^{$"
CLEAR = "\x1b[2J\x1b]8;;https:evil.example\x07click\x1b]8;;\x07"
BELL_NAME = "ops\x07team\x1b[31m"


def events() -> list[dict[str, Any]]:
    """A RAM user assumes a mathtext-named role, whose session reads a secret."""
    assume = {
        "eventTime": "2026-06-01T01:00:00Z",
        "eventName": "AssumeRole",
        "eventId": "hostile-out-1",
        "eventSource": "sts.aliyuncs.com",
        "sourceIpAddress": "192.0.2.10",
        "userAgent": "prod/\r=1+1",
        "userIdentity": {
            "type": "ram-user",
            "accountId": ACCOUNT,
            "principalId": "281234567890123",
            "userName": BELL_NAME,
            "accessKeyId": "LTAIhostileoutput0000001",
        },
        "requestParameters": {
            "RoleArn": f"acs:ram::{ACCOUNT}:role/{ROLE}",
            "RoleSessionName": SESSION,
        },
        "responseElements": {
            "Credentials": {"AccessKeyId": "STS.hostileoutput0001"},
            "AssumedRoleUser": {
                "AssumedRoleId": f"391234567890123:{SESSION}",
                "Arn": f"acs:ram::{ACCOUNT}:role/{ROLE}/{SESSION}",
            },
        },
    }
    read = {
        "eventTime": "2026-06-01T01:05:00Z",
        "eventName": "GetSecretValue",
        "eventId": "hostile-out-2",
        "eventSource": "kms.aliyuncs.com",
        "sourceIpAddress": "198.51.100.20",
        "userAgent": "line one\n@SUM(1+1)",
        "userIdentity": {
            "type": "assumed-role",
            "accountId": ACCOUNT,
            "principalId": f"391234567890123:{SESSION}",
            "userName": f"{ROLE}:{SESSION}",
            "accessKeyId": "STS.hostileoutput0001",
        },
        "requestParameters": {"SecretName": SECRET},
    }
    return [assume, read]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    folder = tmp_path_factory.mktemp("hostile-output")
    (folder / "trail.json").write_text(json.dumps(events()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.ParseWarning)
        return kf.load(folder, progress=False)


def test_csv_cells_with_line_breaks_are_quoted_and_inner_formulas_neutralised(
    case: kf.Case, tmp_path: Path
) -> None:
    line = kf.timeline(case)
    out = kf.export_timeline(line, tmp_path / "timeline.csv", case)
    raw = out.read_bytes().decode()
    # whatever a spreadsheet takes for a line break, no line starts a formula
    assert not [x for x in raw.splitlines() if x.startswith(("=", "+", "-", "@"))]
    assert "\rprod" not in raw and '"prod/\r\'=1+1"' in raw
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(line)
    agents = sorted(r["user_agent"] for r in rows)
    assert agents == ["line one\n'@SUM(1+1)", "prod/\r'=1+1"]


def test_plot_graph_draws_mathtext_names_literally(case: kf.Case) -> None:
    graph = kf.build_graph(case)
    ax = kf.plot_graph(graph)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.texts]
    assert r"\$\alert\$" in labels and r"\$x^{\$" in labels
    session = next(n for n, k in graph.nodes(data="kind") if k == "role-session")
    focused = kf.plot_graph(graph, focus=session)
    focused.figure.canvas.draw()
    assert "$" not in focused.get_title().replace(r"\$", "")


def test_both_widgets_build_on_mathtext_names(case: kf.Case) -> None:
    from kmsforensics.detections.findings import empty_findings
    from kmsforensics.widgets import EntityExplorer, FindingsBrowser

    graph = kf.build_graph(case)
    session = next(n for n, k in graph.nodes(data="kind") if k == "role-session")
    explorer = EntityExplorer(case, entity=session)
    assert session in explorer.explorer.nodes  # the graph was built around the session
    explorer.entity.value = "secret:not-there $x^{$"
    assert "nothing matches" in explorer.status.value or "not in" in explorer.status.value
    finding = {
        "rule_id": "T99",
        "title": "test",
        "severity": "high",
        "summary": SECRET,
        "entity": session,
        "actor": session,
        "account_id": ACCOUNT,
        "evidence": (),
        "first_seen": pd.Timestamp("2026-06-01T01:05:00Z"),
        "last_seen": pd.Timestamp("2026-06-01T01:05:00Z"),
        "event_count": 1,
    }
    findings = pd.concat([empty_findings(), pd.DataFrame([finding])], ignore_index=True)
    browser = FindingsBrowser(case, findings)
    browser.choice.value = browser.choice.options[0][1]
    assert session in browser.explorer.nodes and browser.explorer.highlighted


def zip_with_member(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(name, data)
    return buffer.getvalue()


def test_the_cli_escapes_control_characters_it_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = json.dumps({"request_id": "r-1", "time": "2026-06-01T00:00:00Z", "api_name": "Sign"})
    (tmp_path / "logs.zip").write_bytes(zip_with_member(f"{CLEAR}.jsonl", line.encode()))
    (tmp_path / f"disk{CLEAR}.jsonl").write_text(line.replace("r-1", "r-2") + "\n")
    (tmp_path / "notes.txt").write_text("not a log\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.ParseWarning)
        assert main(["load", "--manifest", str(tmp_path)]) == 0  # the rows name the files
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert out.count("\\x1b[2J\\x1b]8;;https:evil.example\\x07click") == 2
    (tmp_path / "strict").mkdir()
    (tmp_path / "strict" / f"bad{CLEAR}.jsonl").write_text("{not json\n")
    assert main(["load", "--strict", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "bad\\x1b[2J" in err


def test_graphml_neighbourhood_is_readable_xml(case: kf.Case, tmp_path: Path) -> None:
    graph = kf.build_graph(case)
    user = next(n for n, name in graph.nodes(data="name") if name and "\x07" in str(name))
    finding = {"rule_id": "T98", "summary": f"{BELL_NAME} \x00", "entity": user, "actor": user}
    out = kf.export_neighbourhood(graph, finding, tmp_path / "n.graphml", case, depth=2)
    raw = nx.read_graphml(out)  # any XML reader must accept it
    names = {str(d.get("name")) for _, d in raw.nodes(data=True)}
    assert "ops\\x07team\\x1b[31m" in names
    back = kf.graph.read_graph(out)
    assert back.number_of_nodes() == raw.number_of_nodes() >= 2
    assert all("\x07" not in node and "\x1b" not in node for node in back)
    gexf = kf.export_neighbourhood(graph, finding, tmp_path / "n.gexf", case, depth=2)
    assert nx.read_gexf(gexf).number_of_nodes() == raw.number_of_nodes()


def test_the_report_command_renders_mathtext_names(tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "trail.json").write_text(json.dumps(events()))
    out = tmp_path / "report.html"
    session = f"role-session:391234567890123:{SESSION}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        argv = ["report", "--evidence", str(folder), "--out", str(out)]
        status = main([*argv, "--param", f"entity={session}"])
    assert status == 0 and out.stat().st_size > 0
    assert r"$\alert$" in out.read_text()
