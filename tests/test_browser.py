"""Real-browser tests: JupyterLab on loopback driven by Playwright in Debian's Chromium.

`.ci/run` installs Debian's chromium (nothing is downloaded by Playwright). Notebook 02
runs once in a real JupyterLab: its event grid sorts by a column, the entity box takes a
name, the interactive graph halos a chosen incident and expands a node found in its
search box, and the bokeh timeline zooms with the wheel. Notebook 01 records a triage
decision from the FindingsBrowser, and after a kernel restart the new widget shows it.
A report built from hostile evidence runs no script from the evidence. Every wait is for
a state certain to come; a failed step leaves tests/artifacts/NAME-failed.png.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Locator, Page

CHROMIUM = os.environ.get("KMSFORENSICS_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: The kernel of the notebook in view: its status, its connection, whether ipywidgets'
#: manager listens to it (its comm target is registered: a widget shown before would be
#: "model not found"), and how often it was restarted since RESTARTS_COUNTED ran.
KERNEL = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const c = w && w.sessionContext; const k = c && c.isReady && c.session"
    " && c.session.kernel; if (!k) return null;"
    " const targets = k._targetRegistry;"  # private to @jupyterlab/services; absent: unknown
    " return {status: k.status, connection: k.connectionStatus,"
    " widgets: !targets || !!targets['jupyter.widget'], restarts: window.__restarts || 0}; }"
)
#: The notebook in view has a kernel, connected, idle, with the widget manager listening.
#: (The toolbar's execution indicator says "idle" before any kernel has started.)
IDLE = (
    f"() => {{ const k = ({KERNEL})(); return !!k && k.status === 'idle'"
    " && k.connection === 'connected' && k.widgets; }"
)
KEY = "STS.AtwWmrln6xDrmqjY8IjPyGcS8nQs"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def copy_without_prompts(notebook: Path, folder: Path) -> Path:
    """Copy a notebook with no execution counts and no outputs.

    The curated notebooks keep the outputs nbval checks, with their execution counts, so a
    prompt such as ``[5]`` is on the page before any cell has run. Without them, a
    numbered or ``[*]`` prompt is certain proof that this session's kernel took a cell.
    """
    content = json.loads(notebook.read_text())
    for cell in content["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"], cell["outputs"] = None, []
    target = folder / notebook.name
    target.write_text(json.dumps(content))
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def lab_server(folder: Path) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 serving ``folder``, with a random port and token.

    Yields the URL of a notebook (``.../lab/tree/{}?reset&token=...``, to format with its
    name). The server's settings and its log, ``server.log``, are kept in ``folder``.
    ``tools/screenshots.py`` starts its server here too.
    """
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={folder}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: commands without menus
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    settings = folder / "settings"
    for plugin, values in {
        # every cell stays in the page (not only those in view); the preferred kernel starts
        # without the "Select Kernel" dialog, which JupyterLab shows when the notebook opens
        # before the kernel specs have loaded (a race a loaded machine loses)
        "@jupyterlab/notebook-extension/tracker": {
            "windowingMode": "none",
            "autoStartDefaultKernel": True,
        },
        # a restart asks for no confirmation (a dialog left open blocks every later click)
        "@jupyterlab/apputils-extension/sessionDialogs": {"skipKernelRestartDialog": True},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    environment = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    base = f"http://127.0.0.1:{port}"
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=environment
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                    break
                except OSError as error:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(
                            f"JupyterLab did not start: {folder / 'server.log'}"
                        ) from error
                    time.sleep(0.5)
            # ?reset: each page starts from an empty workspace, not with the tabs of the last
            yield f"{base}/lab/tree/{{}}?reset&token={token}"
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def jupyterlab() -> Iterator[tuple[str, Path]]:
    """A JupyterLab server (lab_server) serving copies of notebooks 01 and 02.

    Yields the notebook URL to format and the folder served. The folder is its own (not
    pytest's tmp_path, which another pytest run on the machine may prune).
    """
    folder = Path(tempfile.mkdtemp(prefix="kmsforensics-lab-"))
    for name in ("01_triage.ipynb", "02_identity_graph.ipynb"):
        copy_without_prompts(ROOT / "notebooks" / name, folder)
    try:
        with lab_server(folder) as url:
            yield url, folder
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(folder / "server.log", ARTIFACTS / "jupyterlab-server.log")
        shutil.rmtree(folder, ignore_errors=True)


def accept_kernel_dialog(page: Page) -> None:
    """Press "Select" on a "Select Kernel" dialog if one is open (the preferred kernel)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count():
        dialog.locator("button", has_text="Select").click()


def command(page: Page, name: str) -> None:
    """Start one of JupyterLab's commands on the notebook in view (not awaited).

    Through ``window.jupyterapp`` (the server exposes it), so that no menu, which an open
    dialog or a busy page can hide, stands between the test and the command.
    """
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.commands)")
    page.evaluate("([c]) => { window.jupyterapp.commands.execute(c); }", [name])


def run_all_cells(page: Page) -> None:
    """Run All Cells, again until the kernel has taken the cells (it may still connect).

    The notebook was copied without execution counts (or its outputs were cleared), so a
    ``[*]`` or numbered prompt appears only once this kernel has taken a cell.
    """
    started = (
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        r".some(p => /\[(\*|\d+)\]/.test(p.innerText))"
    )
    for _ in range(10):
        accept_kernel_dialog(page)
        command(page, "notebook:run-all-cells")
        try:
            page.wait_for_function(started, timeout=15_000)
            return
        except Exception:  # the kernel was not ready yet: ask again
            continue
    raise AssertionError("JupyterLab never ran the notebook's cells")


def run_to_the_end(page: Page) -> None:
    """Run every cell and wait until the last has run and the kernel is idle again."""
    done_or_lost = (  # the last cell has a number, or nothing is queued any more
        "() => { const ps = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
        r" const last = ps.pop(); if (last && /\[\d+\]/.test(last.innerText)) return 'done';"
        r" return ps.some(p => /\[\*\]/.test(p.innerText)) ? false : 'lost'; }"
    )
    for attempt in range(3):  # a kernel replaced at start-up loses the queued cells
        run_all_cells(page)
        while True:
            state = page.wait_for_function(done_or_lost).json_value()
            if state == "done":
                break
            time.sleep(20)  # between two cells nothing may show [*] for a moment
            if page.evaluate(done_or_lost) == "lost" and page.evaluate(IDLE):
                break
        if state == "done":
            break
        accept_kernel_dialog(page)
        assert attempt < 2, "the kernel lost the queued cells three times"
    page.wait_for_function(IDLE)


def open_and_run(page: Page, url: str) -> None:
    """Open a notebook, run every cell, and wait until the kernel is idle again."""
    page.set_default_timeout(int(os.environ.get("KMSFORENSICS_BROWSER_TIMEOUT_MS", "180000")))
    page.goto(url)
    page.wait_for_selector(".jp-Notebook")
    page.wait_for_function(IDLE, timeout=120_000)
    run_to_the_end(page)


RESTARTS_COUNTED = (
    "() => { const c = window.jupyterapp.shell.currentWidget.sessionContext;"
    " window.__restarts = 0; c.statusChanged.connect((_, s) => {"
    " if (s === 'restarting' || s === 'autorestarting') window.__restarts += 1; }); }"
)


def restart_kernel(page: Page) -> None:
    """Clear every output, restart the kernel (no dialog), and wait until it is idle.

    With the outputs and prompts cleared, the widgets and numbers on the page afterwards can
    only come from the restarted kernel.
    """
    page.evaluate(RESTARTS_COUNTED)
    command(page, "notebook:clear-all-cell-outputs")
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        r".some(p => /\[(\*|\d+)\]/.test(p.innerText))"
    )
    command(page, "notebook:restart-kernel")
    accept_kernel_dialog(page)
    page.wait_for_function(f"() => ({IDLE})() && ({KERNEL})().restarts > 0")


@contextmanager
def screenshot_on_failure(page: Page, name: str) -> Iterator[None]:
    """Keep a picture and the HTML of the page when a step fails (tests/artifacts/NAME-failed.*)."""
    try:
        yield
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-failed.png"))
        (ARTIFACTS / f"{name}-failed.html").write_text(page.content())
        raise


def cell(page: Page, text: str) -> Locator:
    """The code cell whose source holds ``text``."""
    return page.locator(".jp-CodeCell").filter(has_text=text).first


def prompt_numbers(page: Page) -> list[int]:
    """The execution counts shown in the code cells' prompts, in order (unrun cells left out)."""
    prompts = page.evaluate(
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.innerText)"
    )
    return [int(m.group(1)) for p in prompts if (m := re.search(r"\[(\d+)\]", p))]


def shoot(target: Locator, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target.scroll_into_view_if_needed()
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.fixture(scope="module")
def graph_notebook(browser: Browser, jupyterlab: tuple[str, Path]) -> Iterator[Page]:
    """Notebook 02 run in JupyterLab, its widgets on the page."""
    url, _ = jupyterlab
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    with screenshot_on_failure(page, "02_identity_graph-run"):
        open_and_run(page, url.format("02_identity_graph.ipynb"))
    yield page
    page.close()


GRID_ROWS = (
    "([sel]) => [...document.querySelectorAll(sel)].map(r => [...r.querySelectorAll('td')]"
    ".map(c => c.innerText))"
)


def column_values(page: Page, scope: str, name: str) -> list[str]:
    """The values of one column of the grid in a cell (by header name)."""
    headers = page.locator(f"{scope} .dt-scroll-head th")
    index = [headers.nth(i).inner_text().strip() for i in range(headers.count())].index(name)
    rows = page.evaluate(GRID_ROWS, [f"{scope} .dt-scroll-body table.dataTable tbody tr"])
    return [r[index] for r in rows if len(r) > index]


def test_grid_sorts_and_the_entity_box_takes_a_name(graph_notebook: Page) -> None:
    page = graph_notebook
    with screenshot_on_failure(page, "02-grid"):
        explorer = cell(page, "explorer = kf.widgets.EntityExplorer")
        explorer.locator(".jp-OutputArea").evaluate("e => e.setAttribute('data-probe', 'x')")
        scope = "[data-probe='x']"
        explorer.locator("table.dataTable tbody tr", has_text=KEY).first.wait_for()
        header = explorer.locator(".dt-scroll-head th", has_text="action").first
        header.locator(".dt-column-order").click()  # the column's sort button
        page.wait_for_function(
            "([s]) => [...document.querySelectorAll(s + ' .dt-scroll-head th')]"
            ".some(t => t.innerText.trim() === 'action' && t.getAttribute('aria-sort'))",
            arg=[scope],
        )
        ascending = column_values(page, scope, "action")
        assert len(ascending) > 10 and ascending == sorted(ascending)
        header.locator(".dt-column-order").click()
        page.wait_for_function(
            "([s]) => [...document.querySelectorAll(s + ' .dt-scroll-head th')]"
            ".some(t => t.innerText.trim() === 'action' && "
            "t.getAttribute('aria-sort') === 'descending')",
            arg=[scope],
        )
        descending = column_values(page, scope, "action")
        assert descending == sorted(ascending, reverse=True)
        shoot(explorer, "02-explorer-sorted")
        entity = explorer.locator("input[list]").first  # the searchable combobox
        entity.fill("ci-deployer")
        entity.press("Enter")
        explorer.locator(".widget-html-content", has_text="ram-user:").first.wait_for()
        explorer.locator("table.dataTable tbody tr", has_text="ci-deployer").first.wait_for()
        assert "nothing matches" not in explorer.inner_text()
        entity.fill("nobody-at-all")
        entity.press("Enter")
        explorer.locator(".widget-html-content", has_text="nothing matches").first.wait_for()
        shoot(explorer, "02-explorer-by-name")


def test_graph_expands_a_node_and_highlights_an_incident(graph_notebook: Page) -> None:
    page = graph_notebook
    with screenshot_on_failure(page, "02-graph"):
        graph = cell(page, "graph = kf.widgets.GraphExplorer")
        status = graph.locator(
            ".widget-html-content", has_text=re.compile(r"of [\d,]+ nodes")
        ).first
        status.wait_for()
        assert "haloed (incident lineage)" in status.inner_text()  # the notebook chose one
        graph.locator("select").first.select_option(label="(none)")
        page.wait_for_function(
            "([t]) => { const s = [...document.querySelectorAll('.widget-html-content')]"
            ".find(e => /of [\\d,]+ nodes/.test(e.innerText)); "
            "return s && !s.innerText.includes('haloed'); }",
            arg=[""],
        )
        graph.locator("select").first.select_option(index=1)
        graph.locator(".widget-html-content", has_text="haloed (incident lineage)").first.wait_for()
        shoot(graph, "02-graph-incident")
        graph.locator(".choices").first.click()  # ipysigma's search box
        graph.locator(".choices input").first.press_sequentially("192.0.2.66", delay=40)
        graph.locator(".choices__item--choice", has_text="ip:192.0.2.66").first.click()
        graph.locator(".widget-html-content", has_text="Expanded ip:192.0.2.66").first.wait_for()
        shown = int(status.inner_text().split(" of ")[0].replace(",", ""))
        graph.locator("text=" + f"{shown} nodes").first.wait_for()  # sigma draws them all
        shoot(graph, "02-graph-expanded")


def test_timeline_zooms_with_the_wheel(graph_notebook: Page) -> None:
    page = graph_notebook
    span = (
        "([t]) => { const v = Object.values(Bokeh.index).find(v => v.model.title &&"
        " v.model.title.text === t); return v && v.model.x_range.end - v.model.x_range.start; }"
    )
    title = f"Events of {KEY}"
    with screenshot_on_failure(page, "02-timeline"):
        timeline = cell(page, "kf.widgets.timeline_view")
        canvas = timeline.locator(".bk-Canvas, canvas").first
        canvas.scroll_into_view_if_needed()
        page.wait_for_function(span, arg=[title])
        before = page.evaluate(span, [title])
        box = canvas.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(4):
            page.mouse.wheel(0, -240)
        page.wait_for_function(f"([t]) => ({span})([t]) < {before} * 0.8", arg=[title])
        shoot(timeline, "02-timeline-zoomed")


def test_a_triage_decision_survives_a_kernel_restart(
    browser: Browser, jupyterlab: tuple[str, Path]
) -> None:
    url, folder = jupyterlab
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    note = "seen in the browser test"
    try:
        with screenshot_on_failure(page, "01-triage"):
            open_and_run(page, url.format("01_triage.ipynb"))
            widget = cell(page, "browser = kf.widgets.FindingsBrowser")
            widget.locator("button", has_text="save decision").wait_for()
            first = widget.locator(".widget-select:not(.widget-select-multiple) option").first
            assert not first.inner_text().startswith("[confirmed]")
            status = widget.locator(".widget-dropdown", has_text="status").locator("select")
            status.select_option("confirmed")
            widget.locator(".widget-text", has_text="note").locator("input").fill(note)
            widget.locator("button", has_text="save decision").click()
            widget.locator(".widget-html-content", has_text="saved:").first.wait_for()
            record = json.loads((folder / "incident-leaked-ci-key.triage.json").read_text())
            assert record["decisions"][-1]["status"] == "confirmed"
            assert record["decisions"][-1]["note"] == note
            before = max(prompt_numbers(page))
            restart_kernel(page)
            assert widget.locator(".widget-select").count() == 0  # the old widget is gone
            run_to_the_end(page)
            after = prompt_numbers(page)
            # a kernel that was not restarted would have counted on from the first run
            assert after[0] == 1 and max(after) <= before
            assert page.evaluate(KERNEL)["restarts"] >= 1
            # the new widget, rendered by the restarted kernel, read the record on disk
            widget.locator("button", has_text="save decision").wait_for()
            assert first.inner_text().startswith("[confirmed]")
            note_box = widget.locator(".widget-text", has_text="note").locator("input")
            assert note_box.input_value() == note
            assert status.input_value() == "confirmed"
            triage_line = widget.locator(".widget-html-content", has_text="(record:").first
            assert ": confirmed by analyst at " in triage_line.inner_text()
            shoot(widget, "01-triage-after-restart")
    finally:
        page.close()


def test_report_in_a_browser_runs_no_script_from_the_evidence(
    browser: Browser, hostile_report: tuple[Path, object]
) -> None:
    out, _ = hostile_report
    page = browser.new_page()
    dialogs: list[str] = []

    def seen(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    page.goto(out.as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []
    assert page.locator("text=<script>window.__xss=1</script>").count() > 0  # shown as text
    assert page.evaluate("() => document.scripts.length") == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hostile-report.png"), full_page=True)
    page.close()
