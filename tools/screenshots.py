"""Screenshots of the curated notebooks after Run All in JupyterLab, and of the report.

For reviewing the pages by eye. Each notebook is copied without outputs into a scratch
folder, opened in a JupyterLab on loopback and run to its end in Debian's Chromium, with
the same server and steps as the browser tests (``tests/test_browser.py``). The notebook
is then photographed one screen at a time, ``build/screenshots/NAME-NN.png``. The report
(``make report`` writes ``build/incident-report.html``) is opened with ``file://`` and
photographed as one full page, ``report.png``, and in screens, ``report-NN.png``.

Every output taller than two screens is listed, as are the cells whose output shows an
error and those that show a plain pandas table (``table.dataframe``, not the report's
tables: index numbers and "NaN" where the notebooks use grids), so that what a reader
would scroll past or frown at is named.

Usage: ``python tools/screenshots.py [NOTEBOOK ...] [--report PATH] [--no-report]
[--no-notebooks]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_browser import (  # noqa: E402  (the browser tests' server and steps)
    CHROMIUM,
    FLAGS,
    copy_without_prompts,
    lab_server,
    open_and_run,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

OUT = ROOT / "build" / "screenshots"
WIDTH, HEIGHT = 1400, 1000
#: Outputs taller than this many pixels are listed (two screens).
TALL = 2 * HEIGHT
SCROLLER = ".jp-NotebookPanel .jp-WindowedPanel-outer"
#: How far down the last cell ends (not the blank space JupyterLab adds past it), and a
#: step of nine tenths of a screen, so that each screen overlaps the one before.
CONTENT = (
    "e => { const cells = e.querySelectorAll('.jp-Cell'); const last = cells[cells.length - 1];"
    " const bottom = last ? last.getBoundingClientRect().bottom"
    " - e.getBoundingClientRect().top + e.scrollTop : e.scrollHeight;"
    " return [Math.ceil(bottom), Math.floor(e.clientHeight * 0.9)]; }"
)
OUTPUTS = (
    "() => [...document.querySelectorAll('.jp-CodeCell')].map((c, i) => ({"
    " index: i, source: c.querySelector('.jp-InputArea-editor').innerText.split('\\n')"
    ".find(l => l.trim() && !l.trim().startsWith('#')) || '',"
    " height: (c.querySelector('.jp-OutputArea') || {offsetHeight: 0}).offsetHeight,"
    ' error: !!c.querySelector(\'.jp-OutputArea-output[data-mime-type*="error"],'
    ' .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]\'),'
    " frame: !!c.querySelector('.jp-OutputArea table.dataframe:not(.kmsforensics-table)') }))"
)


def screens(page: Page, name: str) -> list[Path]:
    """Photograph the notebook in view one screen at a time, top to bottom."""
    scroller = page.locator(SCROLLER).first
    box = scroller.bounding_box()
    assert box is not None, "no notebook on the page"
    total, step = scroller.evaluate(CONTENT)
    shots: list[Path] = []
    top = 0
    while True:
        scroller.evaluate("(e, top) => { e.scrollTop = top; }", top)
        page.wait_for_timeout(400)  # canvases (sigma, bokeh) redraw after a scroll
        shots.append(OUT / f"{name}-{len(shots) + 1:02d}.png")
        page.screenshot(path=str(shots[-1]), clip=box)
        if top + box["height"] >= total:  # this screen shows the end of the last cell
            return shots
        top += step


def notebook(browser: Browser, url: str, path: Path) -> None:
    """Run one notebook in JupyterLab, photograph it and list its tall or failing outputs."""
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    started = time.monotonic()
    open_and_run(page, url.format(path.name))
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); }")
    page.wait_for_timeout(3000)  # widgets render after the kernel is idle
    shots = screens(page, path.stem)
    print(f"{path.name}: ran in {time.monotonic() - started:.0f} s, {len(shots)} screens")
    for output in page.evaluate(OUTPUTS):
        problems = [
            "an error or a warning" if output["error"] else "",
            "a plain pandas table" if output["frame"] else "",
            f"{output['height']} px tall" if output["height"] > TALL else "",
        ]
        if any(problems):
            what = ", ".join(p for p in problems if p)
            print(f"  cell {output['index'] + 1} ({output['source'][:60]}): {what}")
    page.close()


def report(browser: Browser, html: Path) -> None:
    """Photograph the report as one full page and as screens."""
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.goto(html.resolve().as_uri())
    page.wait_for_load_state("load")
    whole = OUT / "report.png"
    page.screenshot(path=str(whole), full_page=True)
    page.close()
    with Image.open(whole) as image:
        width, height = image.size
        for number, top in enumerate(range(0, height, HEIGHT), start=1):
            image.crop((0, top, width, min(top + HEIGHT, height))).save(
                OUT / f"report-{number:02d}.png"
            )
    print(f"{html}: {height} px tall, {-(-height // HEIGHT)} screens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "incident-report.html")
    parser.add_argument("--no-report", action="store_true", help="photograph no report")
    parser.add_argument("--no-notebooks", action="store_true", help="only the report")
    args = parser.parse_args()
    paths = (
        []
        if args.no_notebooks
        else (args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")))
    )
    if not args.no_report and not args.report.exists():
        sys.exit(f"{args.report} is missing: run `make report` first (or pass --no-report)")
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: `make chromium` installs it")
    OUT.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kmsforensics-shots-") as scratch:
        folder = Path(scratch)
        for path in paths:
            copy_without_prompts(path, folder)
        with sync_playwright() as playwright, lab_server(folder) as url:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for path in paths:
                notebook(browser, url, path)
            if not args.no_report:
                report(browser, args.report)
            browser.close()
    print(f"screenshots in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
