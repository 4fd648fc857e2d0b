"""The checkers that need no browser and no sandbox: each says pass or fail, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.checks import Limits, check_files
from orchestrator.checks.registry import check_file

CASES = [  # path, content, the check that decides, ok, words the detail must hold
    ("a.py", "def f(:\n    pass\n", "python-compile", False, "line 1"),
    ("a.py", "x = 1\n", "python-compile", True, "compiles"),
    ("a.json", '{"a": 1,}', "json", False, "line 1"),
    ("a.json", '{"a": 1}', "json", True, "JSON"),
    ("a.yaml", "a: [1, 2\n", "yaml", False, "line"),
    ("a.yml", "a: 1\n---\nb: 2\n", "yaml", True, "2 documents"),
    ("a.toml", "a = \n", "toml", False, "line 1"),
    ("a.toml", "a = 1\n", "toml", True, "TOML"),
    ("a.csv", "a,b,c\n1,2,3\n4,5\n", "csv", False, "row 3 has 2 columns"),
    ("a.csv", "a,b\n1,2\n3,4\n", "csv", True, "3 rows of 2 columns"),
    ("a.csv", "", "csv", False, "empty"),
    ("a.svg", "<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>", "svg", False,
     "not well-formed"),
    ("a.svg", "<html/>", "svg", False, "not <svg>"),
    ("a.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>", "svg", True, "well-formed"),
    ("api.yaml", "openapi: 3.0.3\npaths: {}\n", "openapi", False, "'info'"),
    ("api.json", '{"openapi": "3.0.3", "info": {"title": "A", "version": "1"}, "paths": {}}',
     "openapi", True, "valid OpenAPI 3.0.3"),
    ("Dockerfile", "RUN echo hi\n", "dockerfile", False, "not FROM"),
    ("Dockerfile", "FROM python:3.11\nFETCH x\n", "dockerfile", False, "unknown instruction"),
    ("Dockerfile", "ARG V=3\nFROM python:$V\nCMD [\"x\"]\n", "dockerfile", True, "2 instr"),
    ("compose.yaml", "services: {}\n", "compose", False, "no services"),
    ("docker-compose.yml", "services:\n  web:\n    image: nginx\n", "compose", True, "web"),
    ("a.md", "[x](missing.md) [y](https://example.com) [z](#top)\n", "markdown-links",
     False, "missing.md"),
    ("a.md", "```\n[x](missing.md)\n```\n`[y](gone.md)` [self](a.md#top)\n",
     "markdown-links", True, "1 relative links"),
    ("a.md", "[out](../../etc/passwd)\n", "markdown-links", False, "do not resolve"),
    ("a.css", "body {}", "unchecked", None, "no checker for .css"),
]


@pytest.mark.parametrize(("path", "content", "check", "ok", "said"), CASES)
def test_each_checker(tmp_path: Path, path: str, content: str, check: str, ok: bool | None,
                      said: str) -> None:
    (tmp_path / path).write_text(content)
    results = check_file(tmp_path, path, Limits())
    last = results[-1]
    assert (last.check, last.ok) == (check, ok), results
    assert said in last.detail, last.detail


def test_later_checks_wait_for_earlier_ones(tmp_path: Path) -> None:
    """A document that does not parse is not validated; a test that does not compile is
    not run."""
    (tmp_path / "openapi.yaml").write_text("openapi: [\n")
    (tmp_path / "test_x.py").write_text("def test_x(:\n")
    checked = check_files(tmp_path, ["openapi.yaml", "test_x.py"], Limits())
    assert [(r.check, r.ok) for r in checked.results] == [("yaml", False),
                                                          ("python-compile", False)]
    assert len(checked.failed) == 2


def test_missing_and_undecodable_files_fail(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"\xff\xfe{")
    checked = check_files(tmp_path, ["a.json", "gone.csv", "a.json"], Limits())
    assert [(r.path, r.check, r.ok, r.detail) for r in checked.results] == [
        ("a.json", "json", False, "not UTF-8 text"),
        ("gone.csv", "exists", False, "the file is not there")]


def test_hostile_documents_are_refused_quickly(tmp_path: Path) -> None:
    """YAML aliases that expand to a huge tree are not walked by the validator; JSON nested
    past the parser's depth fails instead of crashing the checker."""
    import time

    levels = ["openapi: 3.0.3", "info: {title: A, version: '1'}", "paths: {}",
              "components:", "  schemas:", "    L0: &L0 {type: string}"]
    for i in range(1, 9):
        levels.append(f"    L{i}: &L{i} {{allOf: [{', '.join([f'*L{i - 1}'] * 9)}]}}")
    (tmp_path / "openapi.yaml").write_text("\n".join(levels) + "\n")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    started = time.monotonic()
    checked = check_files(tmp_path, ["openapi.yaml", "deep.json"], Limits())
    assert time.monotonic() - started < 10
    by = {(r.path, r.check): r for r in checked.results}
    assert by[("openapi.yaml", "openapi")].ok is False
    assert "too large" in by[("openapi.yaml", "openapi")].detail
    assert by[("deep.json", "json")].ok is False
    assert "nested too deeply" in by[("deep.json", "json")].detail
