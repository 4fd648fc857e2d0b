"""Make docs/report.png: an embedded bakery run, its `agency report`, shot by headless Chromium.

    python docs/screenshots.py

No servers and no API key: the offline model plans and works (a little latency per call, so
the timeline has bars worth seeing); everything happens in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
AGENCY = [sys.executable, "-m", "orchestrator"]
WINDOW = "1280,1800"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENCY_", "ANTHROPIC_"))}
    env.update({"AGENCY_HOME": str(home / ".agency"), "AGENCY_OUTPUT_DIR": str(home / "out"),
                "AGENCY_OFFLINE_LATENCY": "0.1"})
    return env


def _agency(home: Path, *args: str) -> str:
    done = subprocess.run([*AGENCY, *args], cwd=home, env=_env(home), capture_output=True,
                          text=True, check=True)
    return done.stdout


def report_page(home: Path) -> Path:
    """Run the bakery request and write its report; the report's path."""
    submitted = _agency(home, "run", "Build a website for a bakery")
    project_id = next(line.split()[1] for line in submitted.splitlines()
                      if line.startswith("Project ") and "submitted" in line)
    return Path(_agency(home, "report", project_id).strip())


def screenshot(page: Path, target: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("screenshots.py: chromium is not installed")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={target}", f"--window-size={WINDOW}",
                    page.as_uri()], check=True, capture_output=True)


def main() -> None:
    target = DOCS / "report.png"
    with tempfile.TemporaryDirectory(prefix="agency-shot-") as tmp:
        screenshot(report_page(Path(tmp)), target)
    print(f"{target} ({target.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
