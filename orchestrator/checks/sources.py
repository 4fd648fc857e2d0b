"""Source code: Python compiles, Python tests pass under pytest in the sandbox, JavaScript
passes `node --check`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from orchestrator.checks import sandbox
from orchestrator.checks.base import Limits, Outcome, unchecked

# pytest's last line: "2 passed, 1 failed in 0.12s" (or "no tests ran in 0.01s").
SUMMARY = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+|no tests ran) in [\d.]+s", re.MULTILINE)
FAILED_LINE = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$", re.MULTILINE)
EXIT = {1: "tests failed", 2: "the run was interrupted", 3: "pytest hit an internal error",
        4: "pytest was used wrongly", 5: "no tests were collected"}
SIGNALS = {128 + 9: "killed (memory or process limit)", 128 + 24: "CPU time limit exceeded",
           128 + 25: "file size limit exceeded"}


def python_compile(root: Path, path: str, limits: Limits) -> Outcome:
    source = (root / path).read_bytes()
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        return False, f"does not compile: {type(error).__name__}: {error.msg} ({where})"
    except ValueError as error:  # null bytes
        return False, f"does not compile: {error}"
    return True, "compiles"


def is_test(path: str) -> bool:
    name = Path(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def pytest_check(root: Path, path: str, limits: Limits) -> Outcome:
    """Run one test file with pytest in the sandbox, from its own folder (so its imports of
    its neighbours resolve, as they would for the person who runs it)."""
    folder = Path(path).parent.as_posix()
    workdir = sandbox.PROJECT if folder == "." else f"{sandbox.PROJECT}/{folder}"
    # pytest is imported before the project's folders are on the path (-P), so a file of the
    # agents' named pytest.py cannot stand in for it; pytest then puts the test's folder there.
    args = ["-q", "-p", "no:cacheprovider", "--rootdir", workdir, "--color=no", "-o",
            "addopts=", f"{sandbox.PROJECT}/{path}"]
    ran = sandbox.run(root, [sys.executable, "-P", "-c",
                             "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))", *args],
                      seconds=limits.seconds, memory_mb=limits.memory_mb,
                      processes=limits.processes, cwd=workdir,
                      env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
                           "PYTHONDONTWRITEBYTECODE": "1"})
    if ran.reason:
        return unchecked(ran.reason)
    if ran.timed_out:
        return False, f"tests did not finish in {sandbox.wall(limits.seconds):.0f}s (killed)"
    found = SUMMARY.findall(ran.output)
    said = found[-1] if found else ""
    if ran.code == 0:
        return True, f"pytest: {said or 'passed'}"
    why = SIGNALS.get(ran.code or 0) or EXIT.get(ran.code or 0, f"exit code {ran.code}")
    failures = ["; ".join(filter(None, (m[1], m[2]))) for m in FAILED_LINE.findall(ran.output)]
    detail = f"pytest: {said or why}"
    if failures:
        detail += ": " + " | ".join(failures[:3])
    elif not said and ran.output.strip():
        detail += ": " + ran.output.strip()[-300:]
    return False, detail


def node_check(root: Path, path: str, limits: Limits) -> Outcome:
    node = shutil.which("node")
    if node is None:
        return unchecked("node is not installed")
    try:
        done = subprocess.run([node, "--check", str(root / path)], capture_output=True,
                              text=True, timeout=limits.seconds, check=False, cwd=root)
    except subprocess.TimeoutExpired:
        return False, f"node --check did not finish in {limits.seconds:.0f}s"
    if done.returncode == 0:
        return True, "node --check: no syntax errors"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    error = next((line for line in lines if "Error" in line), lines[-1] if lines else "")
    where = next((line.rsplit(":", 1)[-1] for line in lines if str(root) in line), "")
    return False, f"node --check: {error}" + (f" (line {where})" if where.isdigit() else "")
