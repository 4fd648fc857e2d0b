"""Simulated model latency: how long each offline call takes, so that a run on the offline model
has the timing shape of one on Claude (queues fill, tasks overlap, deadlines and leases run).

`AGENCY_OFFLINE_LATENCY` is the seconds per call; `AGENCY_OFFLINE_LATENCY_SPREAD` makes an agent
task's calls take that times a factor within 1 +- spread, fixed per task (from its title), so
tasks differ in length as real ones do. Calls that are no agent's task take the latency as is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """Seconds per call, and how far an agent task's calls vary around them."""

    seconds: float = 0.0
    spread: float = 0.0

    def of(self, task_title: str | None) -> float:
        """Seconds one call of this agent task takes (None: not an agent's task)."""
        if not self.spread or not task_title:
            return self.seconds
        digest = hashlib.blake2b(task_title.encode(), digest_size=8).digest()
        share = int.from_bytes(digest, "big") / 2**64
        return self.seconds * (1 - self.spread + 2 * self.spread * share)
