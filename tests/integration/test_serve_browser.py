"""The live page in a real browser: Playwright for Python driving Debian's Chromium.

Skips with a message when Playwright or /usr/bin/chromium is missing (``.ci/run`` installs
the ``chromium`` package). ``LOGSIEVE_SCREENSHOT=PATH`` keeps a screenshot of the page.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the serve extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from service_fixtures import Server, model_copy, trained_model  # noqa: E402

CHROMIUM = os.environ.get("LOGSIEVE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def test_page_shows_live_alerts_and_takes_feedback(tmp_path: Path) -> None:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium "
                    "(or set LOGSIEVE_CHROMIUM)")  # fmt: skip
    model = model_copy(tmp_path)
    profile = tempfile.mkdtemp(prefix="logsieve-chromium-", dir=tmp_path)
    external: list[str] = []
    with Server(model, tmp_path / "state") as srv, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, viewport={"width": 1400, "height": 900}
        )  # a fresh user-data dir
        try:
            page = browser.new_page()
            page.on("request", lambda r: None if r.url.startswith(srv.url) else external.append(r.url))
            page.goto(srv.url + "/")
            page.wait_for_selector("#conn.on", timeout=30_000)  # the SSE stream is open
            assert page.locator("#alerts li").count() == 0
            version = int(page.locator("#model-version").inner_text())
            # alerts arrive live (SSE) after lines are ingested
            text = (trained_model() / "log").read_text()
            srv.client.post("/v1/ingest", content=text)
            page.wait_for_selector("#alerts li", timeout=60_000)
            first = page.locator("#alerts li").last  # the oldest alert
            first.click()
            page.wait_for_selector("#detail:not([hidden])")
            assert page.locator("#d-lines li.hit").count() == 1
            assert page.locator("#d-expected table").count() >= 1
            assert "threshold" in page.locator("#d-score").inner_text()
            # "not an anomaly" marks the alert and shows the new model version
            page.click("#btn-normal")
            page.wait_for_selector("#d-verdict.normal:not([hidden])", timeout=60_000)
            want = str(version + 1)
            assert f"model version {want}" in page.locator("#d-verdict").inner_text()
            page.wait_for_function(
                f"document.getElementById('model-version').textContent === '{want}'"
            )
            assert page.locator("#alerts li.normal").count() == 1
            shot = os.environ.get("LOGSIEVE_SCREENSHOT")
            if shot:
                page.wait_for_timeout(1500)  # a status poll fills throughput and open windows
                page.screenshot(path=shot)
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)
    assert external == []
