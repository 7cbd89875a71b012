"""The app in a real browser: Debian's Chromium driven by Playwright.

Starts ``streamlit run app.py`` on 127.0.0.1 (a free port) in insecure test mode (small
Paillier keys, via ``RISKFED_APP_TEST_MODE=1``), clicks through Data → Align → Train →
Compare → Score one applicant → Score many → Privacy, checks that the numbers appear and
that no exception is rendered, and saves a screenshot of each page under
``tests/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "tests" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"),
]


try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - the browser fixture skips then
    PlaywrightTimeout = TimeoutError


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, attempts: int = 240) -> None:
    for _ in range(attempts):
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError("streamlit did not become healthy")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = _free_port()
    env = dict(os.environ, RISKFED_APP_TEST_MODE="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
                "--server.headless", "true",
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    body = page.locator("body").inner_text()
    assert "Traceback" not in body
    assert "Something unexpected went wrong" not in body


def _shot(page, name: str, *, quick: bool = False) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so grow the
    viewport to the content's height first (``quick``: the viewport as it is, now)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if quick:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        return
    page.wait_for_timeout(1500)  # let charts and tables finish their first paint
    height = page.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll('[data-testid=\"stMain\"], "
        "[data-testid=\"stMainBlockContainer\"]')).map(e => e.scrollHeight), 900)"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": int(height) + 80})
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


def _settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(250)
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " return app && app.getAttribute('data-test-script-state') !== 'running'; }",
        timeout=120_000,
    )


def _main_text(page) -> str:
    _settle(page)
    return page.locator('[data-testid="stMain"]').inner_text()


def test_click_through_pilot(app_url, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.get_by_role("heading", name="1. Data").wait_for()

    # Data: generate the default pilot.
    page.get_by_role("button", name="Generate pilot data").click()
    page.get_by_text("Loaded data").wait_for()
    assert "5,000" in _main_text(page)
    _no_exception(page)
    _shot(page, "1-data")

    # Align: ECDH PSI (default).
    page.get_by_role("button", name="Next: Align →").click()
    page.get_by_role("heading", name="2. Align").wait_for()
    page.get_by_role("button", name="Check overlap").click()
    page.get_by_text("Match rate").wait_for()
    text = _main_text(page)
    assert "Shared customers" in text and re.search(r"\d{1,3}(,\d{3})+", text)
    assert "70.0%" in text
    _no_exception(page)
    _shot(page, "2-align")

    # Train with the test-only small key offered by test mode.
    page.get_by_role("button", name="Next: Train →").click()
    page.get_by_role("heading", name="3. Train").wait_for()
    assert "512-bit keys can be broken" in _main_text(page)
    # Smaller batches: more of them, so the live progress view stays up long enough to see.
    page.get_by_role("combobox", name="Batch size").click()
    page.get_by_role("option", name="256", exact=True).click()
    _settle(page)
    page.get_by_role("button", name="Train the model").click()
    # The live view (progress, loss chart, cancel) may already be over on a fast machine:
    # its screenshot is a nice-to-have; the result below is what the test checks.
    with contextlib.suppress(PlaywrightTimeout):
        page.get_by_role("button", name="Cancel training").wait_for(timeout=10_000)
        page.get_by_text(re.compile(r"Epoch \d+ of \d+ · batch")).wait_for(timeout=10_000)
        _shot(page, "3-train-progress", quick=True)
    page.get_by_text("Training run").wait_for(timeout=180_000)
    text = _main_text(page)
    assert "Training time" in text and "Data exchanged" in text and re.search(r"\d+(\.\d)? (kB|MB)", text)
    _no_exception(page)
    _shot(page, "3-train")

    # Compare: AUCs, lift, the metrics table and downloads.
    page.get_by_role("button", name="Next: Compare →").click()
    page.get_by_role("heading", name="4. Compare").wait_for()
    page.get_by_text("Federated AUC", exact=True).wait_for()
    page.get_by_text("Default rate and lift by decile").wait_for()
    text = _main_text(page)
    assert re.search(r"Federated AUC\s+0\.\d{3}", text)
    assert re.search(r"\+0\.\d{3}", text)  # AUC lift from the fintech's data
    page.get_by_text("Download report (HTML)").wait_for()
    page.get_by_text("Download report (JSON)").wait_for()
    _no_exception(page)
    _shot(page, "4-compare")

    # Score one applicant by id (unknown to the fintech → bank-only fallback is fine).
    page.get_by_role("button", name="Next: Score applicants →").click()
    page.get_by_role("heading", name="5. Score applicants").wait_for()
    page.get_by_label("Customer id", exact=True).fill("C0000001")
    page.get_by_role("button", name="Score applicant").click()
    page.get_by_text("Probability of default", exact=True).wait_for()
    text = _main_text(page)
    assert re.search(r"Probability of default\s+\d+(\.\d+)?%", text)
    assert re.search(r"\d{3} pts", text)
    assert "Approve" in text or "Decline" in text
    _no_exception(page)
    _shot(page, "5-score-one")

    # Score the pilot's new applicants in one go.
    page.get_by_role("tab", name="Many applicants").click()
    page.get_by_role("button", name="Score applicants").click()
    page.get_by_text("Scored: pilot applicants").wait_for()
    text = _main_text(page)
    assert re.search(r"Applicants\s+\d", text) and "Approved" in text
    page.get_by_text("Download scores (CSV)").wait_for()
    _no_exception(page)
    _shot(page, "6-score-many")

    # Privacy: traffic, key and threat model.
    page.locator('[data-testid="stSidebar"]').get_by_text("6. Privacy").click()
    page.get_by_role("heading", name="6. Privacy").wait_for()
    page.get_by_text("Traffic per party").wait_for()
    page.get_by_text("What the coordinator must not do").wait_for()
    text = _main_text(page)
    assert "512 bits" in text and "What the coordinator must not do" in text
    _no_exception(page)
    _shot(page, "7-privacy")
    context.close()
