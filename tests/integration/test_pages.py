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
