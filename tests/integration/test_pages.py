"""HTML pages as a visitor's browser loads them (headless Chromium through Playwright)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.checks import Limits, check_files
from tests.conftest import chromium

BARE = """<html><head><script src="https://cdn.example.com/lib.js"></script>
<link rel="stylesheet" href="/site/style.css"></head>
<body><img src="logo.svg"><a href="docs/">Docs</a><a href="#top">Top</a>
<script>console.error("boom"); throw new TypeError("nope");</script></body></html>"""
GOOD = """<!doctype html><html lang="fr"><head><title>Accueil</title>
<link rel="stylesheet" href="/site/style.css"></head>
<body><img src="logo.svg" alt="Logo"><a href="docs/">Docs</a>
<a href="https://example.com/">Out</a></body></html>"""


def test_pages_are_judged_as_loaded(tmp_path: Path) -> None:
    browser = chromium()
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "docs" / "index.html").write_text(GOOD.replace("Accueil", "Docs"))
    (site / "style.css").write_text("body { color: #333 }")
    (site / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (site / "bare.html").write_text(BARE)
    (site / "good.html").write_text(GOOD)
    checked = check_files(tmp_path, ["site/bare.html", "site/good.html"],
                          Limits(seconds=20, chromium=browser))
    bare, good = checked.results
    assert bare.ok is False
    for said in ("no <title>", "no lang", "images without alt text: logo.svg", "boom",
                 "TypeError: nope", "not checked offline: cdn.example.com"):
        assert said in bare.detail, bare.detail
    assert "missing" not in bare.detail and "dead links" not in bare.detail, bare.detail
    assert good.ok is True, good.detail
    assert "title 'Accueil', lang fr" in good.detail
    assert set(checked.screenshots) == {"site/bare.html", "site/good.html"}
    assert all(png.startswith(b"\x89PNG") for png in checked.screenshots.values())


def test_a_missing_browser_leaves_pages_unchecked(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(GOOD)
    checked = check_files(tmp_path, ["a.html"], Limits(chromium=str(tmp_path / "nochrome")))
    assert [(r.check, r.ok) for r in checked.results] == [("html", None)]
    assert "no browser" in checked.results[0].detail
    assert checked.screenshots == {}


def test_a_page_that_hangs_or_calls_out_is_contained(tmp_path: Path) -> None:
    """A script that never yields fails the page in bounded time; a popup or a WebSocket to a
    loopback port reaches nothing."""
    import socket
    import time

    browser = chromium()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    port = server.getsockname()[1]
    (tmp_path / "spin.html").write_text(
        GOOD.replace("</body>", "<script>setTimeout(() => { while (true) {} }, 20);</script>"
                     "</body>"))
    (tmp_path / "calls.html").write_text(GOOD.replace("</body>", (
        f"<script>window.open('http://127.0.0.1:{port}/popup');"
        f"try {{ new WebSocket('ws://127.0.0.1:{port}/ws'); }} catch (e) {{}}</script>"
        "</body>")))
    started = time.monotonic()
    checked = check_files(tmp_path, ["spin.html", "calls.html"],
                          Limits(seconds=3, chromium=browser))
    assert time.monotonic() - started < 40
    spin = checked.results[0]
    assert spin.ok is False and "did not" in spin.detail, spin.detail
    try:
        conn, _ = server.accept()
        conn.close()
        reached = True
    except TimeoutError:
        reached = False
    finally:
        server.close()
    assert not reached, "a page reached a loopback port"
