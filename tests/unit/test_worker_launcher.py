"""`python -m workers`: Celery's own `worker` command, without the rest of Celery's command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, agency_env

# What `celery` loads before it runs `worker` and a worker never uses: its umbrella command,
# the `amqp` REPL and Flower's plugin.
UNUSED = ("celery.bin.celery", "click_repl", "prompt_toolkit", "flower", "tornado")
PROBE = ("import atexit, sys\n"
         f"atexit.register(lambda: print('loaded:', [m for m in {UNUSED!r} if m in sys.modules]))\n"
         "from workers.__main__ import main\n"
         "main(sys.argv[1:])\n")


def _launch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, text=True,
                          capture_output=True, env=agency_env(tmp_path), timeout=60)


def test_it_is_celerys_worker_command_without_the_rest(tmp_path: Path) -> None:
    done = _launch(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for option in ("--queues", "--hostname", "--concurrency", "--loglevel", "--pool"):
        assert option in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "loaded: []"


@pytest.mark.parametrize("flag", ["-D", "--detach"])
def test_it_refuses_to_detach(tmp_path: Path, flag: str) -> None:
    done = _launch(tmp_path, "-Q", "marketing", flag)
    assert done.returncode != 0
    assert "foreground" in done.stderr


PRELOAD = ("import sys\n"
           "from workers.fleet import _preload\n"
           "_preload()\n"
           "print(sorted({m.split('.')[0] for m in sys.modules} & {'agency_offline', 'anthropic'}),"
           " 'agency_offline.model' in sys.modules)\n")


@pytest.mark.parametrize(("env", "loaded"), [
    ({"AGENCY_LLM": "offline"}, "['agency_offline'] True"),
    ({"AGENCY_LLM": "anthropic", "ANTHROPIC_API_KEY": "sk-test"}, "['anthropic'] False"),
    ({"ANTHROPIC_API_KEY": "sk-test"}, "['anthropic'] False"),  # auto: a key means Claude
])
def test_the_fleet_preloads_only_the_configured_provider(tmp_path: Path, env: dict[str, str],
                                                         loaded: str) -> None:
    done = subprocess.run([sys.executable, "-c", PRELOAD], cwd=REPO, text=True,
                          capture_output=True, env=agency_env(tmp_path, **env), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == loaded
