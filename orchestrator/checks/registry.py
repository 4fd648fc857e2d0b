"""The registry of checkers, keyed by file type, and `check_files`, which runs them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from orchestrator.checks import formats, markdown, pages, sources
from orchestrator.checks.base import Checked, Limits, Outcome, unchecked
from orchestrator.domain.models import CheckResult

Checker = Callable[[Path, str, Limits], Outcome]
# A checker that applies only when the file is of that kind, and only if the ones before it
# passed (a test file that does not compile is not run; a document that does not parse is
# not validated as OpenAPI).
Applies = Callable[[Path, str], bool]
ALWAYS: Applies = lambda root, path: True  # noqa: E731

# By suffix: (check name, checker, when) in the order they run.
BY_SUFFIX: dict[str, list[tuple[str, Checker, Applies]]] = {
    ".py": [("python-compile", sources.python_compile, ALWAYS),
            ("pytest", sources.pytest_check, lambda root, path: sources.is_test(path))],
    ".js": [("node-check", sources.node_check, ALWAYS)],
    ".json": [("json", formats.json_check, ALWAYS), ("openapi", formats.openapi_check,
                                                     formats.is_openapi)],
    ".yaml": [("yaml", formats.yaml_check, ALWAYS),
              ("compose", formats.compose_check, lambda root, path: formats.is_compose(path)),
              ("openapi", formats.openapi_check, formats.is_openapi)],
    ".toml": [("toml", formats.toml_check, ALWAYS)],
    ".csv": [("csv", formats.csv_check, ALWAYS)],
    ".svg": [("svg", formats.svg_check, ALWAYS)],
    ".md": [("markdown-links", markdown.markdown_links, ALWAYS)],
}
ALIASES = {".mjs": ".js", ".cjs": ".js", ".yml": ".yaml", ".tsv": ".csv", ".markdown": ".md"}
DOCKERFILE: list[tuple[str, Checker, Applies]] = [("dockerfile", formats.dockerfile_check, ALWAYS)]
PAGES = {".html", ".htm"}
PARALLEL = 4


def checkers(path: str) -> list[tuple[str, Checker, Applies]]:
    if formats.is_dockerfile(path):
        return DOCKERFILE
    suffix = Path(path).suffix.lower()
    return BY_SUFFIX.get(ALIASES.get(suffix, suffix), [])


def _run(checker: Checker, root: Path, path: str, limits: Limits) -> Outcome:
    try:
        return checker(root, path, limits)
    except UnicodeDecodeError:
        return False, "not UTF-8 text"
    except Exception as error:  # (a checker's own fault is not the file's)
        return unchecked(f"the checker failed: {type(error).__name__}: {error}"[:300])


def check_file(root: Path, path: str, limits: Limits) -> list[CheckResult]:
    """Every check that applies to one (non-HTML) file, in order, stopping at a failure."""
    found = checkers(path)
    if not found:
        kind = Path(path).suffix or Path(path).name
        return [CheckResult(path=path, check="unchecked", ok=None,
                            detail=f"no checker for {kind} files")]
    results = []
    for name, checker, applies in found:
        if not applies(root, path):
            continue
        started = time.monotonic()
        ok, detail = _run(checker, root, path, limits)
        results.append(CheckResult(path=path, check=name, ok=ok, detail=detail,
                                   seconds=round(time.monotonic() - started, 3)))
        if ok is not True:
            break
    return results


def _pages(root: Path, paths: list[str], limits: Limits) -> tuple[list[CheckResult],
                                                                    dict[str, bytes]]:
    loaded = pages.check_pages(root, paths, limits)
    results = [CheckResult(path=p, check="html", ok=page.outcome[0], detail=page.outcome[1],
                           seconds=round(page.seconds, 3)) for p, page in loaded.items()]
    return results, {p: page.screenshot for p, page in loaded.items() if page.screenshot}


def check_files(root: Path, paths: Sequence[str], limits: Limits) -> Checked:
    """Check each of `paths` (relative to `root`) by its type, in parallel; results come in
    the order of `paths`. A file that is not there fails `exists`."""
    wanted = list(dict.fromkeys(paths))
    inside = root.resolve()
    present = [p for p in wanted if (root / p).is_file()
               and (root / p).resolve().is_relative_to(inside)]
    html = [p for p in present if Path(p).suffix.lower() in PAGES]
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="check") as pool:
        shown = pool.submit(_pages, root, html, limits) if html else None
        others: dict[str, Future[list[CheckResult]]] = {
            p: pool.submit(check_file, root, p, limits) for p in present if p not in html}
        by_path = {p: future.result() for p, future in others.items()}
        screenshots: dict[str, bytes] = {}
        if shown is not None:
            results, screenshots = shown.result()
            by_path |= {r.path: [r] for r in results}
    every: list[CheckResult] = []
    for path in wanted:
        every += by_path.get(path) or [CheckResult(path=path, check="exists", ok=False,
                                                   detail="the file is not there")]
    return Checked(every, screenshots)
