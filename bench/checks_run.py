"""What the checks cost (issue 19): each kind of check, beside its baseline in the same run.

- a generated test under pytest in the bubblewrap sandbox, beside the same pytest run as a
  plain subprocess (the sandbox's own cost is the difference);
- HTML pages in Chromium: one page, and eight pages in one browser (the browser's start is
  paid once per round);
- the must-show set of tests/integration/test_checks_gate.py (12 checks of 11 files), all at
  once through `check_files`.

    python bench/checks_run.py [--repeat 5]

Prints a table of medians (and min to max) in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.checks import Limits, check_files
from orchestrator.checks.sources import pytest_check
from tests.integration.test_checks_gate import FILES

TEST = "from calc import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n"
PAGE = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>P{n}</title>"
        "<link rel='stylesheet' href='s.css'></head><body><h1>Page {n}</h1>"
        "<a href='p0.html'>home</a></body></html>")


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        found.append((time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    limits = Limits(seconds=30)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "calc.py").write_text("def total(prices):\n    return sum(prices)\n")
        (root / "test_calc.py").write_text(TEST)
        (root / "s.css").write_text("body { margin: 0 }\n")
        for n in range(8):
            (root / f"p{n}.html").write_text(PAGE.format(n=n))
        gate = root / "gate"
        for files in FILES.values():
            for path, content in files.items():
                (gate / path).parent.mkdir(parents=True, exist_ok=True)
                (gate / path).write_text(content)
        every = [p for files in FILES.values() for p in files]
        rows = {
            "pytest, plain subprocess (baseline)": timed(lambda: subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                 "addopts=", "test_calc.py"], cwd=root, capture_output=True, check=True,
                env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"}), repeat),
            "pytest in the sandbox (check `pytest`)": timed(
                lambda: pytest_check(root, "test_calc.py", limits), repeat),
            "1 page in Chromium (check `html`)": timed(
                lambda: check_files(root, ["p0.html"], limits), repeat),
            "8 pages in one browser": timed(
                lambda: check_files(root, [f"p{n}.html" for n in range(8)], limits), repeat),
            "the must-show set, 11 files": timed(
                lambda: check_files(gate, every, limits), repeat),
        }
    print(f"{'':42} {'median ms':>10} {'min to max':>16}")
    for name, found in rows.items():
        print(f"{name:42} {statistics.median(found):10.0f} "
              f"{min(found):7.0f} to {max(found):5.0f}")


if __name__ == "__main__":
    main()
