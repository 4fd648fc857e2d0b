"""Run what the agents wrote where it can do no harm: bubblewrap (Debian's `bubblewrap`).

Why bubblewrap: it is one small setuid-free binary in Debian, it needs no daemon (Docker has no
engine here and a worker should not need one), and it builds the sandbox from kernel namespaces
per run in milliseconds. Inside: no network (a namespace with only its own loopback), no other
process visible, the host's /usr, interpreter and virtualenv read-only, a fresh copy of the
project at /project (the only writable place besides a small /tmp), no environment (so no
keys), user 65534. Limits: CPU seconds, address space and file size by rlimit; processes by a
pids cgroup when running as root (root ignores RLIMIT_NPROC), otherwise by RLIMIT_NPROC; wall
time by killing the whole sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT = "/project"
FILE_SIZE = 64 * 1024 * 1024
TMP_SIZE = 256 * 1024 * 1024
OUTPUT_LIMIT = 64 * 1024
SHM_SIZE = 64 * 1024 * 1024
CGROUPS = Path("/sys/fs/cgroup")
PIDS = CGROUPS / "pids"  # cgroup v1's pids hierarchy; under v2 the unified one is CGROUPS


@dataclass(frozen=True)
class Ran:
    """How one sandboxed run ended: `code` None when it never ran (`reason` says why) or was
    killed at the wall-clock limit (`timed_out`)."""

    code: int | None
    output: str
    seconds: float
    timed_out: bool = False
    reason: str = ""


@functools.cache
def available() -> str | None:
    """Why sandboxed runs cannot happen here, or None when they can: bwrap is there and can
    make its namespaces (a container's default seccomp profile, say, forbids them)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    for tool in ("prlimit", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is not installed"
    if os.geteuid() == 0 and _pids_root() is None:
        return "no pids cgroup to cap the processes of a run (root ignores RLIMIT_NPROC)"
    try:
        probe = subprocess.run(["bwrap", "--unshare-all", *_binds(), "--", "true"],
                               capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap cannot run: {error}"
    if probe.returncode != 0:
        said = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
        return f"bubblewrap cannot make a sandbox here: {said}"
    return None


def _binds() -> list[str]:
    """Read-only binds: the system, this interpreter's installation and its virtualenv."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), f"/{name}"]
        elif target.is_dir():
            args += ["--ro-bind", str(target), f"/{name}"]
    for prefix in {sys.base_prefix, sys.prefix}:
        if not prefix.startswith("/usr"):
            args += ["--ro-bind", prefix, prefix]
    return args


def _pids_root() -> Path | None:
    """Where pids cgroups can be made: v1's pids hierarchy, or v2's unified one with the pids
    controller enabled for its children."""
    if (PIDS / "cgroup.procs").exists():
        return PIDS
    controllers = CGROUPS / "cgroup.controllers"
    if controllers.exists() and "pids" in controllers.read_text().split():
        with contextlib.suppress(OSError):
            (CGROUPS / "cgroup.subtree_control").write_text("+pids")
        return CGROUPS
    return None


def _cgroup(processes: int) -> Path | None:
    """A pids cgroup capping the run's processes, when this process may make one."""
    where = _pids_root() if os.geteuid() == 0 else None
    if where is None:
        return None
    group = where / f"agency-check-{uuid.uuid4().hex[:12]}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(processes))
    except OSError:
        return None
    return group


def _limited(argv: list[str], seconds: float, memory_mb: int, processes: int,
             group: Path | None) -> list[str]:
    """`argv` under rlimits (prlimit, util-linux), killed if the worker dies (setpriv's parent
    death signal, kept across the execs) and, first, inside the pids cgroup: a shell moves
    itself into the group and execs, so nothing runs before the cap applies. (Not preexec_fn:
    checks run on threads, where forking Python code is unsafe.)"""
    cpu = max(1, int(seconds))
    limits = ["setpriv", "--pdeathsig", "KILL", "--", "prlimit", f"--cpu={cpu}:{cpu + 1}",
              f"--as={memory_mb * 1024 * 1024}", f"--fsize={FILE_SIZE}", "--core=0"]
    if group is None:
        limits.append(f"--nproc={processes}")
    limited = [*limits, "--", *argv]
    if group is None:
        return limited
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"),
            *limited]


def _remove(group: Path | None) -> None:
    if group is None:
        return
    for _ in range(50):
        try:
            group.rmdir()
            return
        except OSError:
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.02)


def wall(seconds: float) -> float:
    """The wall-clock limit of a run of `seconds` CPU seconds."""
    return 2 * seconds + 5


def run(root: Path, argv: Sequence[str], *, seconds: float, memory_mb: int,
        processes: int, cwd: str = PROJECT, env: dict[str, str] | None = None) -> Ran:
    """Run `argv` in the sandbox on a fresh copy of `root` (at PROJECT), in `cwd`."""
    missing = available()
    if missing:
        return Ran(None, "", 0.0, reason=missing)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="agency-sandbox-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(root, project, symlinks=True)
        command = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                   "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
                   "--proc", "/proc", "--dev", "/dev",
                   "--size", str(SHM_SIZE), "--tmpfs", "/dev/shm",
                   "--size", str(TMP_SIZE), "--tmpfs", "/tmp",
                   # After /tmp: a virtualenv under /tmp is bound over the new, empty one.
                   *_binds(), "--bind", str(project), PROJECT,
                   # The sandbox's own root (a tmpfs bwrap makes) and /dev stay read-only.
                   "--remount-ro", "/", "--remount-ro", "/dev",
                   "--chdir", cwd, "--clearenv",
                   "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
                   "--setenv", "HOME", "/tmp", "--setenv", "USER", "nobody",
                   "--setenv", "LOGNAME", "nobody", "--setenv", "LANG", "C.UTF-8"]
        for name, value in (env or {}).items():
            command += ["--setenv", name, value]
        group = _cgroup(processes)
        # The output goes to a file, which the file-size limit caps, not into this process.
        output = Path(tmp) / "output"
        try:
            with output.open("wb") as sink, subprocess.Popen(
                    _limited([*command, "--", *argv], seconds, memory_mb, processes, group),
                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                    start_new_session=True) as child:
                try:
                    child.wait(timeout=wall(seconds))
                    timed_out = False
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
                    timed_out = True
        finally:
            _remove(group)
        with output.open("rb") as written:
            written.seek(max(0, output.stat().st_size - OUTPUT_LIMIT))
            text = written.read().decode("utf-8", "replace")
    code = None if timed_out else child.returncode
    if code and text.startswith("bwrap: "):  # the sandbox, not what ran in it, failed
        return Ran(None, text, time.monotonic() - started,
                   reason=f"the sandbox did not start: {text.strip().splitlines()[0]}")
    return Ran(code, text, time.monotonic() - started, timed_out=timed_out)
