"""Private Redis and PostgreSQL instances for chaos tests: ours to kill, never the shared ones.

Each instance runs on a free 127.0.0.1 port out of a temporary directory. Readiness is always
polled (PING, `pg_isready`), never slept for. Both raise `ServiceUnavailable` when the server
cannot be created here (binary missing, no `postgres` user); the fixtures turn that into
`need()`: a skip on a laptop, a failure in CI.
"""

from __future__ import annotations

import glob
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

READY_TIMEOUT = 30.0


class ServiceUnavailable(RuntimeError):
    """The private service cannot be created on this machine."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(ready: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT,
               alive: Callable[[], str | None] = lambda: None, every: float = 0.05) -> None:
    """Poll `ready` until it is true; fail early when `alive` reports the process died."""
    deadline = time.monotonic() + timeout
    while not ready():
        died = alive()
        if died is not None:
            raise RuntimeError(f"{what}: the process exited: {died}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not so after {timeout:.0f}s")
        time.sleep(every)


class Lines:
    """A child's text stream, read on a thread: waiting for a line keeps its deadline even
    when the child says nothing (a `readline()` would block past it)."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._lines.put(line)
        except (OSError, ValueError):  # closed under us by communicate() or kill()
            pass
        self._lines.put(None)

    def wait_for(self, match: Callable[[str], bool], what: str,
                 timeout: float = READY_TIMEOUT) -> str:
        """The first line that matches; TimeoutError past `timeout`, EOFError at the end."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line {what} after {timeout:.0f}s")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError(f"the stream ended without a line {what}")
            if match(line):
                return line


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class PrivateRedis:
    """A `redis-server` subprocess without persistence: a restart starts it empty."""

    def __init__(self, workdir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.host = host
        if not os.access(binary, os.X_OK):
            raise ServiceUnavailable("redis-server is not installed")
        self.binary, self.workdir = binary, workdir
        self.port = port or free_port()
        self.log_path = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start (again, empty) on the same port and return once it answers PING."""
        assert not self.running, "already running"
        self._close_log()
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", self.host, "--dir",
             str(self.workdir), "--save", "", "--appendonly", "no", "--daemonize", "no",
             # Test hosts in network namespaces reach it over a bridge, not the loopback.
             "--protected-mode", "yes" if self.host == "127.0.0.1" else "no"],
            stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(self.ping, f"redis-server on port {self.port}", alive=self._exited)

    def ping(self) -> bool:
        import redis

        client = redis.Redis(host=self.host, port=self.port, socket_connect_timeout=0.5,
                             socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM killer would, and wait for the exit."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _exited(self) -> str | None:
        if self._proc is None or self._proc.poll() is None:
            return None
        return f"exit code {self._proc.returncode}\n{_tail(self.log_path)}"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _pg_bin(name: str) -> str:
    """A PostgreSQL server binary: on PATH, else the newest /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not candidates:
        raise ServiceUnavailable(f"PostgreSQL's {name} is not installed")
    return max(candidates, key=lambda p: int(Path(p).parts[-3]))


class PrivatePostgres:
    """A throwaway PostgreSQL cluster: trust auth, no fsync, its own port and socket dir."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 settings: dict[str, str] | None = None) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self.host, self.settings = host, dict(settings or {})
        self.pg_isready = _pg_bin("pg_isready")
        # initdb and the server refuse to run as root: run them as `postgres`, in a directory
        # that user owns (pytest's tmp_path is root-only, so this one lives in the system tmp).
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                import pwd

                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ServiceUnavailable("running as root and there is no postgres user") from exc
            self._as = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="agency-pg-"))
        if self._as:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data, self.log_path = self.root / "data", self.root / "postgres.log"
        self.port = port or free_port()
        self._init()

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *args], capture_output=True, text=True,
                              timeout=timeout, check=False, cwd=self.root)

    def _init(self) -> None:
        # --no-sync: nothing here must survive a machine crash, and syncing is most of the time.
        done = self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--no-sync", "--no-instructions")
        if done.returncode != 0:
            self.remove()
            raise ServiceUnavailable(f"initdb failed: {(done.stderr or done.stdout).strip()}")
        if self.host != "127.0.0.1":  # test hosts in network namespaces connect over a bridge
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all 0.0.0.0/0 trust\n")

    def start(self) -> None:
        """Start the server (after a crash: with recovery) and return once it accepts."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses={self.host} "
                   "-c fsync=off -c full_page_writes=off"
                   + "".join(f" -c {k}={v}" for k, v in self.settings.items()))
        done = self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log_path), "-w",
                         "-t", str(int(READY_TIMEOUT)), "-o", options, "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}\n"
                               f"{_tail(self.log_path)}")
        wait_until(self.ready, f"PostgreSQL on port {self.port}")

    def ready(self) -> bool:
        done = subprocess.run([self.pg_isready, "-h", self.host, "-p", str(self.port),
                               "-t", "1"], capture_output=True, check=False)
        return done.returncode == 0

    def stop_immediate(self) -> None:
        """Stop without a checkpoint, as a crash would; the next start runs recovery."""
        self._stop("immediate")

    def stop(self) -> None:
        self._stop("fast")

    def _stop(self, mode: str) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        done = self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")
        if done.returncode != 0 and (self.data / "postmaster.pid").exists():
            self._kill_postmaster()

    def _kill_postmaster(self) -> None:
        # Only a live postmaster of this cluster: a stale pid file may name a reused pid.
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            if str(self.data) in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

    def create_database(self, name: str) -> str:
        """Create a database on this cluster and return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def remove(self) -> None:
        """Stop if running and delete the cluster's files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
