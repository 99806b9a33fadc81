"""The console in a real browser (the system's Chromium, driven by playwright).

The output root is made from golden data in a fixture (``mxt run`` on a golden
dataset, once per session), the console is started by its command line in a
subprocess, as an operator starts it, and the browser logs in with the token.  The
tests check the runs table, a run page and its previews (loaded: natural size > 0),
launch a reprocessing with a new CALDB and wait for the new collection with SUCCESS
and its diff, and try a forbidden path and a POST without CSRF.

Screenshots are written to ``$MXT_CONSOLE_SCREENSHOTS`` when it is set (the ones in
``reports/examples/console-*.png`` were made that way).  Without playwright or the
system Chromium the tests are skipped with the reason (``pytest -ra`` prints it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mxt_pipeline.datapaths import REPO_ROOT, bundled_caldb_dir

CHROMIUM = os.environ.get("MXT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]  # fmt: skip
TOKEN = "browser-test-operator-token-7Hq2"
GOLDEN = os.environ.get("MXT_CONSOLE_GOLDEN", "grb_bright").split(",")
SHOTS = os.environ.get("MXT_CONSOLE_SCREENSHOTS")

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="browser tests: the 'playwright' package is not installed (pip install -e .[test])"),
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"browser tests: no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(not (REPO_ROOT / "golden" / "grb_bright" / "input" / "dataset.json").is_file(),
                       reason="browser tests: the golden datasets are not generated"),
]  # fmt: skip


@pytest.fixture(scope="session")
def golden_root(tmp_path_factory):
    """An output root with the golden datasets run through XBAND-CP (made once per session)."""
    from mxt_pipeline.cli.main import main

    root = tmp_path_factory.mktemp("console_root")
    for name in GOLDEN:
        dataset = REPO_ROOT / "golden" / name / "input"
        # A burst follow-up (a trigger) goes through XBAND-CP, a survey field through XBAND-GP.
        triggered = json.loads((dataset / "dataset.json").read_text()).get("trigger_time") is not None
        code = main(["run", str(dataset), "--pipeline", "xband-cp" if triggered else "xband-gp",
                     "--out", str(root / name), "--no-progress"])  # fmt: skip
        assert code in (0, 3, 4), f"mxt run on golden/{name} ended with exit code {code}"
    return root


@pytest.fixture(scope="session")
def new_caldb(tmp_path_factory):
    """The bundled CALDB with a larger systematic error (60" instead of 25"): a real CALDB change."""
    from mxt_pipeline.caldb.products import load_calibration
    from mxt_pipeline.caldb.products.syserr import Systematics
    from mxt_pipeline.cli.main import main

    caldb = tmp_path_factory.mktemp("caldb") / "caldb"
    shutil.copytree(bundled_caldb_dir(), caldb)
    path = next((caldb / "data" / "svom" / "mxt" / "bcf" / "syserr").glob("*.fits"))
    old = load_calibration("SYSERR", path)
    Systematics(60.0).to_fits(path, old.meta)
    assert main(["caldb", "index", "--root", str(caldb), "--instrument", "MXT"]) == 0
    return caldb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def console(golden_root, new_caldb, tmp_path_factory):
    """``mxt console`` started from its command line; yields its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("console_log") / "console.log"
    env = dict(os.environ, MXT_TOKEN=TOKEN, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "mxt_pipeline.cli.main", "console", "--root", str(golden_root), "--port", str(port),
           "--caldb", f"syserr60={new_caldb}", "--reports", str(REPO_ROOT / "reports")]  # fmt: skip
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if json.load(r)["status"] == "ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the console did not start:\n{log.read_text()}")
        time.sleep(0.3)
    yield url
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert TOKEN not in log.read_text(), "the token appeared in the console's log"


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, console):
    """A logged-in page (through the login form, as an operator does)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.goto(console + "/")
    assert "/login" in pg.url
    pg.fill("#token", TOKEN)
    pg.click("button[type=submit]")
    pg.wait_for_url(console + "/")
    yield pg
    ctx.close()


def _shot(pg, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def test_runs_table_lists_the_golden_runs(page):
    rows = page.locator("#runs tbody tr")
    expect(rows.first).to_be_visible()
    text = page.locator("#runs").inner_text()
    assert "GOLD0001" in text and "SUCCESS" in text and "XBAND-CP" in text and "GRB golden bright" in text
    assert page.locator("#runs a.obs").count() >= len(GOLDEN)
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["mxt_console_session"]["httpOnly"] and TOKEN not in json.dumps(page.context.cookies())
    assert TOKEN not in page.content()
    _shot(page, "console-runs.png")


def test_a_run_page_shows_its_previews_and_sorts_sources(page):
    page.locator("#runs a.obs", has_text="GOLD0001").first.click()
    page.wait_for_load_state("load")
    assert "/run/" in page.url
    imgs = page.locator("img.preview")
    assert imgs.count() >= 2  # the field image and at least one light curve
    widths = page.evaluate("Array.from(document.querySelectorAll('img.preview')).map(i => i.complete ? i.naturalWidth : -1)")
    assert all(w > 0 for w in widths), widths
    head = page.locator("#sources th", has_text="DET_ML")
    head.click()
    assert "asc" in head.get_attribute("class")
    assert page.locator("#products").inner_text().count("download") >= 5
    _shot(page, "console-run.png")


def test_reprocess_with_a_new_caldb_then_the_diff(page, console):
    page.goto(console + "/reprocess")
    page.locator("input.pick[value^='grb_bright/']").first.check()
    page.select_option("#caldb", "syserr60")
    page.click("#launch")
    page.wait_for_url("**/jobs/*")
    expect(page.locator("#job-status")).to_have_text("SUCCESS", timeout=300_000)
    assert page.locator("#diff").is_visible()
    cells = page.locator("#diff-sources tbody tr").first.locator("td").all_inner_texts()
    before, after = float(cells[4]), float(cells[5])
    assert after > before + 20.0  # 60" of systematic instead of 25", added in quadrature
    assert float(cells[3]) < 1.0  # the position does not move with SYSERR
    _shot(page, "console-reprocess.png")
    page.goto(console + "/?q=GOLD0001&sort=collection&order=desc")
    first = page.locator("#runs tbody tr").first.inner_text()
    assert "v002" in first and "SUCCESS" in first and "GOLD0001" in first
    # Launching the same reprocessing again publishes nothing new, as on the command line.
    page.goto(console + "/reprocess")
    page.locator("input.pick[value^='grb_bright/'][value$='_v001']").check()
    page.select_option("#caldb", "syserr60")
    page.click("#launch")
    page.wait_for_url("**/jobs/*")
    expect(page.locator(".alert.info")).to_contain_text("Already processed", timeout=300_000)


def test_forbidden_paths_and_a_post_without_csrf(page, console, golden_root):
    outside = golden_root.parent / "outside-secret.txt"
    outside.write_text("never served")
    (golden_root / "escape.txt").symlink_to(outside)
    for path in ("/files/%2e%2e/outside-secret.txt", "/files/..%2foutside-secret.txt", "/files/escape.txt",
                 "/files/grb_bright/.lock"):  # fmt: skip
        r = page.request.get(console + path)
        assert r.status == 404 and "never served" not in r.text(), path
    resp = page.goto(console + "/files/escape.txt")
    assert resp.status == 404
    coll = page.request.get(console + "/api/runs").json()["runs"][0]["key"]
    r = page.request.post(console + "/reprocess", form={"collection": coll, "caldb": "default"})
    assert r.status == 403 and "CSRF" in r.text()
