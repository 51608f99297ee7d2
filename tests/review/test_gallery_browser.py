"""The gallery in a real browser: headless Debian Chromium (the system binary; nothing is downloaded)
opens index.html from disk, a reviewer sets two verdicts and saves, and the saved CSV goes back
through `review import` into a labelled index."""

from __future__ import annotations

import shutil

import pytest

from dfdetect.records import FAKE, REAL, read_index
from dfdetect.review.queue import export_queue
from dfdetect.review.verdicts import import_verdicts, read_verdicts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium: apt-get install -y chromium")


def test_two_verdicts_set_in_the_browser_are_saved_and_imported(scan_results, tmp_path):
    items = export_queue(scan_results, tmp_path / "queue")
    assert len(items) >= 2
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(accept_downloads=True)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto((tmp_path / "queue" / "index.html").as_uri())
            assert page.locator("section.item").count() == len(items)
            assert page.locator("section.item img").count() >= len(items)  # each file shows its faces
            page.fill("#reviewer", "Ada Reviewer")
            page.check("input[name='verdict-1'][value='fake']")
            page.fill("textarea[name='note-1']", 'seam at the jaw, "clearly" blended')
            page.check("input[name='verdict-2'][value='real']")
            assert page.text_content("#progress") == f"2 of {len(items)} decided"
            with page.expect_download() as download:
                page.click("#save")
            assert download.value.suggested_filename == "verdicts.csv"
            saved = tmp_path / "verdicts.csv"
            download.value.save_as(saved)
            page.reload()  # verdicts, note and reviewer are kept in the browser until saved and after
            assert page.is_checked("input[name='verdict-1'][value='fake']")
            assert page.input_value("textarea[name='note-1']") == 'seam at the jaw, "clearly" blended'
            assert page.input_value("#reviewer") == "Ada Reviewer"
            assert errors == []
        finally:
            browser.close()

    verdicts = read_verdicts(saved)
    assert verdicts["path"].tolist() == [items[0].path, items[1].path]
    assert verdicts["verdict"].tolist() == ["fake", "real"]
    assert set(verdicts["reviewer"]) == {"Ada Reviewer"}
    assert verdicts["note"].tolist() == ['seam at the jaw, "clearly" blended', ""]
    report = import_verdicts([saved], tmp_path / "reviewed.parquet")
    assert report.labelled == {"real": 1, "fake": 1} and report.conflicts == []
    index = read_index(tmp_path / "reviewed.parquet")
    assert dict(zip(index["path"], index["label"])) == {items[0].path: FAKE, items[1].path: REAL}
