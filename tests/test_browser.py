"""Real-browser tests: JupyterLab on loopback driven by Playwright in Debian's Chromium.

`.ci/run` installs Debian's chromium (nothing is downloaded by Playwright). The first
test runs 02_identity_graph in a real JupyterLab, changes the entity explorer's choice
and checks that the picture and the table change; the second opens a report built from
hostile evidence and checks that no script from the evidence ran. Screenshots go to
tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

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
SECRET = "secret:6157241179809909/prod/payments/db-password"


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


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 with a random port and token; yields its base URL."""
    folder = tmp_path_factory.mktemp("lab")
    copy_without_prompts(ROOT / "notebooks" / "02_identity_graph.ipynb", folder)
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={folder}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    settings = folder / "settings"
    for plugin, values in {
        # every cell stays in the page (not only those in view); the preferred kernel starts
        # without the "Select Kernel" dialog, which JupyterLab shows when the notebook opens
        # before the kernel specs have loaded (a race a loaded machine loses), and no news
        "@jupyterlab/notebook-extension/tracker": {
            "windowingMode": "none",
            "autoStartDefaultKernel": True,
        },
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    environment = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=environment
    )
    base = f"http://127.0.0.1:{port}"
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
        yield f"{base}/lab/tree/02_identity_graph.ipynb?token={token}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def accept_kernel_dialog(page: Page) -> None:
    """Press "Select" on a "Select Kernel" dialog if one is open (the preferred kernel)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count():
        dialog.locator("button", has_text="Select").click()


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, again until the kernel has taken the cells (it may still connect).

    The notebook was copied without execution counts, so a ``[*]`` or numbered prompt
    appears only once this kernel has taken a cell.
    """
    started = (
        "() => [...document.querySelectorAll('.jp-InputPrompt')]"
        r".some(p => /\[(\*|\d+)\]/.test(p.innerText))"
    )
    for _ in range(10):
        accept_kernel_dialog(page)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator("li[data-command='runmenu:run-all']").click()
        try:
            page.wait_for_function(started, timeout=15_000)
            return
        except Exception:  # the kernel was not ready yet: ask again
            continue
    raise AssertionError("JupyterLab never ran the notebook's cells")


def test_explorer_in_jupyterlab_follows_a_new_choice(browser: Browser, jupyterlab: str) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    try:
        explore(page, jupyterlab)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "02_identity_graph-failed.png"))
        raise
    finally:
        page.close()


def explore(page: Page, jupyterlab: str) -> None:
    """Run the notebook, note the explorer's picture and table, choose a secret, compare."""
    # clicks and typing fail within 30 s; waits for the kernel's work have their own limit
    page.set_default_timeout(30_000)
    work = int(os.environ.get("KMSFORENSICS_BROWSER_TIMEOUT_MS", "180000"))
    page.goto(jupyterlab)
    page.wait_for_selector(".jp-Notebook")
    accept_kernel_dialog(page)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    run_all_cells(page)
    image = page.locator("img.widget-image").last
    image.wait_for(state="attached", timeout=work)
    page.wait_for_function(
        "() => { const t = [...document.querySelectorAll('.widget-html-content table')].pop();"
        " return t && t.innerText.includes('STS.AtwWmrln6xDrmqjY8IjPyGcS8nQs'); }",
        timeout=work,
    )
    # every queued cell has run (a repeated "Run All" may have queued the notebook twice)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=work)
    table = page.locator(".widget-html-content table").last
    before_src, before_table = image.get_attribute("src"), table.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    image.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "02_identity_graph-before.png"))
    entity = page.locator(".jupyter-widgets input[list]").last  # the searchable combobox
    changed = (
        "([old]) => { const t = [...document.querySelectorAll('.widget-html-content table')]"
        ".pop(); return t && t.innerText !== old; }"
    )
    for attempt in range(3):  # a keystroke lost while the page re-renders is typed again
        entity.fill(SECRET)
        entity.press("Enter")
        try:
            page.wait_for_function(changed, arg=[before_table], timeout=60_000)
            break
        except Exception:
            if attempt == 2:
                raise
    page.wait_for_function(
        "([old]) => { const i = [...document.querySelectorAll('img.widget-image')].pop();"
        " return i && i.src !== old; }",
        arg=[before_src],
        timeout=work,
    )
    after_table = table.inner_text()
    assert "prod/payments/db-password" in after_table
    assert "STS.AtwWmrln6xDrmqjY8IjPyGcS8nQs" not in after_table.split("\n")[1]
    assert image.get_attribute("src") != before_src
    image.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "02_identity_graph-after.png"))


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
