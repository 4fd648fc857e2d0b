"""The sandbox the generated tests run in (orchestrator/checks/sandbox.py): a test the agents
wrote cannot write outside its copy of the project, reach a loopback port, read the worker's
secrets, or outrun its CPU, memory and process limits."""

from __future__ import annotations

import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.checks import Limits, check_files, sandbox
from tests.conftest import IN_CI

ESCAPE = '''import os, socket, sys

TARGETS = {targets!r}


def test_escape():
    tried = []
    for target in TARGETS:
        try:
            with open(target, "w") as handle:
                handle.write("escaped")
            tried.append(("wrote", target))
        except OSError as error:
            tried.append(("refused", target, error.errno))
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"escaped")
        tried.append(("connected",))
    except OSError as error:
        tried.append(("no connection", error.errno))
    open("written-inside.txt", "w").write("fine")
    print("TRIED", tried, "KEY" in "".join(os.environ), flush=True)
'''


@pytest.fixture(autouse=True)
def need_bwrap() -> None:
    if sandbox.available():
        if IN_CI:
            pytest.fail(f"{sandbox.available()} (.ci/run installs bubblewrap)")
        pytest.skip(sandbox.available() or "")


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback port that records whatever connects to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    got: list[bytes] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            got.append(conn.recv(100) or b"(connected)")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], got
    done.set()
    thread.join()
    server.close()


def test_a_generated_test_cannot_escape(tmp_path: Path, listener: tuple[int, list[bytes]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    port, got = listener
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    outside = tmp_path / "outside.txt"
    in_venv = Path(sys.prefix) / "escaped.txt"
    root = tmp_path / "project"
    root.mkdir()
    targets = [str(outside), str(in_venv), "/usr/escaped.txt", "/etc/escaped.txt",
               "/escaped.txt", "/dev/escaped.txt"]
    (root / "test_escape.py").write_text(ESCAPE.format(targets=targets, port=port))
    try:
        ran = sandbox.run(root, [sys.executable, "-m", "pytest", "-q", "-s",
                                 "-p", "no:cacheprovider", "test_escape.py"],
                          seconds=30, memory_mb=1024, processes=64,
                          env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
        assert ran.code == 0, ran.output
        assert "TRIED" in ran.output, ran.output
        line = next(x for x in ran.output.splitlines() if "TRIED" in x)
        assert "'wrote'" not in line and "'connected'" not in line, line
        assert line.rstrip().endswith("False"), line  # no *KEY* in the environment
        assert not outside.exists() and not in_venv.exists()
        assert not Path("/usr/escaped.txt").exists()
        assert got == [], got
        # It could write inside its copy of the project; the original is untouched.
        assert sorted(p.name for p in root.iterdir()) == ["test_escape.py"]
    finally:
        for leaked in (in_venv, Path("/usr/escaped.txt")):
            leaked.unlink(missing_ok=True)


def test_limits_stop_runaway_tests(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "test_spin.py").write_text("def test_spin():\n    while True:\n        pass\n")
    (root / "test_fork.py").write_text(
        "import os, time\n\ndef test_fork():\n    children = 0\n    try:\n"
        "        for _ in range(200):\n            if os.fork() == 0:\n"
        "                time.sleep(5)\n                os._exit(0)\n"
        "            children += 1\n    finally:\n        print('CHILDREN', children)\n"
        "    assert children == 200\n")
    (root / "test_memory.py").write_text(
        "def test_memory():\n    hog = bytearray(2 * 1024 ** 3)\n    assert hog\n")
    checked = check_files(root, ["test_spin.py", "test_fork.py", "test_memory.py"],
                          Limits(seconds=3, memory_mb=512, processes=32))
    found = {r.path: r for r in checked.results if r.check == "pytest"}
    assert found["test_spin.py"].ok is False
    assert "CPU time limit" in found["test_spin.py"].detail or "killed" in \
        found["test_spin.py"].detail, found["test_spin.py"].detail
    assert found["test_fork.py"].ok is False
    assert "test_fork" in found["test_fork.py"].detail, found["test_fork.py"].detail
    assert found["test_memory.py"].ok is False
    assert "MemoryError" in found["test_memory.py"].detail, found["test_memory.py"].detail
    if shutil.which("bwrap") and sandbox.PIDS.exists():
        assert not [p for p in sandbox.PIDS.iterdir() if p.name.startswith("agency-check-")]


def test_a_flood_of_output_is_capped_and_pytest_cannot_be_faked(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    # 300 MB of output: it goes to a file the file-size limit caps, not into the worker.
    ran = sandbox.run(root, [sys.executable, "-c",
                             "import sys\nfor _ in range(300): sys.stdout.write('x' * 10**6)"],
                      seconds=10, memory_mb=512, processes=16)
    assert ran.code != 0 and len(ran.output) <= sandbox.OUTPUT_LIMIT
    # An agent's pytest.py beside its test does not stand in for pytest.
    (root / "pytest.py").write_text("import sys\nprint('1 passed in 0.01s')\nsys.exit(0)\n")
    (root / "test_x.py").write_text("def test_x():\n    assert False, 'really fails'\n")
    checked = check_files(root, ["test_x.py"], Limits(seconds=20))
    result = checked.results[-1]
    assert (result.check, result.ok) == ("pytest", False), result
    assert "really fails" in result.detail
