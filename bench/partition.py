"""Benchmark: projects on a host back from a partition (issue 20).

    python bench/partition.py [--cut 60] [--settle 0]     # as root: it makes namespaces

One test host (a network namespace on a bridge, tests/netns.py) runs every pool
(`python -m workers fleet -n host-a`); Redis and PostgreSQL are private instances on the
bridge's address. A project runs; the host's link goes down for `--cut` seconds and comes back
(`--settle` seconds later the next project starts); two more projects run. It prints each
project's time and counts what the fleet logged after the first project: errors, connection
errors, failed publishes, clock-drift warnings, and warnings in all.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AGENCY, agency_env  # noqa: E402
from tests.netns import Bridge, logged  # noqa: E402
from tests.services import PrivatePostgres, PrivateRedis, wait_until  # noqa: E402

KINDS = {"errors": r"ERROR|CRITICAL|Traceback", "connection errors":
         r"ConnectionError|Broken pipe", "failed publishes": r"could not publish",
         "clock-drift warnings": r"clocks are out of sync", "warnings": r"WARNING"}


def run(env: dict[str, str], home: Path) -> float:
    started = time.monotonic()
    done = subprocess.run([*AGENCY, "run", "Build a website for a bakery"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the project did not complete:\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cut", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=0.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="agency-partition-"))
    with Bridge() as net:
        redis = PrivateRedis(home, host=net.address)
        redis.start()
        pg = PrivatePostgres(host=net.address)
        pg.start()
        env = agency_env(home, AGENCY_BROKER_URL=redis.url,
                         AGENCY_DATABASE_URL=pg.create_database("agency"))
        host = net.host("a")
        log = home / "host-a.log"
        with log.open("wb") as out:
            fleet = host.popen([sys.executable, "-m", "workers", "fleet", "-n", "host-a",
                                "-l", "INFO"], out, env=env, cwd=REPO)
            try:
                wait_until(lambda: logged(log).count(" ready") >= 11, "the fleet", 120)
                before = run(env, home)
                mark = len(logged(log))
                host.cut()
                time.sleep(args.cut)
                host.heal()
                time.sleep(args.settle)
                after = [run(env, home), run(env, home)]
            finally:
                os.killpg(fleet.pid, signal.SIGKILL)
                fleet.wait()
                redis.stop()
                pg.stop()
                pg.remove()
    since = logged(log)[mark:].splitlines()
    print(f"a project before the cut: {before:.1f} s; after a {args.cut:.0f} s cut: "
          f"{after[0]:.1f} s, then {after[1]:.1f} s")
    print("logged after the first project: " + ", ".join(
        f"{sum(bool(re.search(p, line)) for line in since)} {kind}"
        for kind, p in KINDS.items()))


if __name__ == "__main__":
    main()
