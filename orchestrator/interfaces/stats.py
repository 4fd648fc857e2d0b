"""How the agency performs: utilisation per queue, tokens and cost, retries, review
rejections, the slowest work, suggestions computed by rules, and (`agency stats --llm`)
the orchestrator model's advice.

Everything is read from the store; durations are computed here, since SQLite keeps times as
ISO text. `agency stats` prints it, `agency metrics` exports part of it to Prometheus.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.agent.runtime import Runtime
from orchestrator.domain import pricing
from orchestrator.domain.constants import ALL_QUEUES, ORCHESTRATOR_QUEUE, Role
from orchestrator.domain.models import Optimization, Tokens
from orchestrator.domain.prompts import ORCHESTRATOR_SYSTEM, optimization_prompt
from orchestrator.domain.settings import Settings
from orchestrator.llm.base import CompletionRequest, CompletionResponse
from orchestrator.llm.structured import ask_structured
from orchestrator.state.store import Row, Store, ledger_sums

# Suggestion thresholds. A queue wants more workers when its tasks wait at least this share of
# their run time (and at least MIN_WAIT_SECONDS: a fraction of a second is dispatch, not want).
WAIT_RATIO = 0.5
MIN_WAIT_SECONDS = 1.0
REJECTION_THRESHOLD = 0.25  # share of an agent type's reviews that say "revise"
RETRY_THRESHOLD = 0.05  # retries per model call of an agent type
TOP = 5


def to_time(value: object) -> datetime | None:
    """A stored time (PostgreSQL: datetime; SQLite: ISO text) as an aware datetime."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..1) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class TaskTiming:
    """One task's last run: when it could start (queued and its dependencies done), when it
    started and when it ended."""

    id: str
    project_id: str
    index: int
    title: str
    agent_type: str
    status: str
    ready: datetime | None
    started: datetime | None
    finished: datetime | None

    @property
    def seconds(self) -> float | None:
        """Run time, from start to finish (None while it has not run to an end)."""
        if self.started is None or self.finished is None:
            return None
        return max(0.0, (self.finished - self.started).total_seconds())

    @property
    def wait(self) -> float | None:
        """Seconds it waited for a worker once it could run."""
        if self.started is None or self.ready is None:
            return None
        return max(0.0, (self.started - self.ready).total_seconds())


def timings(tasks: list[Row], edges: list[Row]) -> list[TaskTiming]:
    """Each task with its ready time: the later of when it was queued and when its last
    dependency finished (a chain's later links are queued before their turn comes)."""
    finished = {r["id"]: to_time(r["finished_at"]) for r in tasks}
    deps: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        deps[edge["task_id"]].append(edge["depends_on"])
    found = []
    for r in tasks:
        times = [t for t in (to_time(r["queued_at"]), *(finished.get(d) for d in deps[r["id"]]))
                 if t is not None]
        found.append(TaskTiming(
            id=r["id"], project_id=r["project_id"], index=int(r["idx"]), title=r["title"],
            agent_type=r["agent_type"], status=r["status"], ready=max(times) if times else None,
            started=to_time(r["started_at"]), finished=finished[r["id"]]))
    return found


@dataclass(frozen=True)
class Window:
    """The observed span: from the first task ready to the last one finished."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def seconds(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, (self.end - self.start).total_seconds())


def window(tasks: list[TaskTiming]) -> Window:
    starts = [t for task in tasks for t in (task.ready, task.started) if t is not None]
    ends = [t for task in tasks for t in (task.finished, task.started) if t is not None]
    return Window(min(starts), max(ends)) if starts and ends else Window()


@dataclass(frozen=True)
class QueueStats:
    """One agent queue over the window."""

    queue: str
    tasks: int
    busy_seconds: float
    mean_seconds: float
    p95_seconds: float
    mean_wait_seconds: float
    wait_seconds: float
    concurrency: int
    utilisation: float

    @property
    def turnaround(self) -> float:
        return self.mean_wait_seconds + self.mean_seconds


def queue_stats(tasks: list[TaskTiming], span: Window,
                concurrency: Mapping[str, int]) -> list[QueueStats]:
    """Per agent queue: busy seconds, tasks run, mean and p95 duration, waits, utilisation
    (busy seconds over the window times the queue's slots per worker)."""
    per_queue: dict[str, list[TaskTiming]] = defaultdict(list)
    for task in tasks:
        per_queue[task.agent_type].append(task)
    found = []
    for queue, members in sorted(per_queue.items()):
        runs = [s for s in (t.seconds for t in members) if s is not None]
        waits = [w for w in (t.wait for t in members) if w is not None]
        slots = concurrency.get(queue, 1)
        capacity = span.seconds * slots
        found.append(QueueStats(
            queue=queue, tasks=len(runs), busy_seconds=sum(runs), mean_seconds=_mean(runs),
            p95_seconds=percentile(runs, 0.95), mean_wait_seconds=_mean(waits),
            wait_seconds=sum(waits), concurrency=slots,
            utilisation=sum(runs) / capacity if capacity else 0.0))
    return found


@dataclass(frozen=True)
class Usage:
    """Ledger totals for one group (an agent type, a model or a role)."""

    name: str
    calls: int = 0
    tokens: Tokens = field(default_factory=Tokens)
    cost_usd: float = 0.0
    tasks: int = 0

    def plus(self, row: Row) -> Usage:
        t = self.tokens
        return Usage(self.name, self.calls + int(row["calls"]), t + ledger_sums(row),
                     self.cost_usd + float(row["cost_usd"] or 0.0), self.tasks)

    @property
    def cost_per_task(self) -> float:
        return self.cost_usd / self.tasks if self.tasks else 0.0

    @property
    def tokens_per_task(self) -> float:
        return self.tokens.total / self.tasks if self.tasks else 0.0


def usage_by(rows: list[Row], key: str, tasks: Mapping[str, int] | None = None) -> list[Usage]:
    """Ledger rows summed by `key` (calls without a task count as the orchestrator's)."""
    found: dict[str, Usage] = {}
    for row in rows:
        name = str(row[key] or ORCHESTRATOR_QUEUE)
        found[name] = found.get(name, Usage(name, tasks=(tasks or {}).get(name, 0))).plus(row)
    return sorted(found.values(), key=lambda u: (-u.cost_usd, -u.tokens.total, u.name))


@dataclass(frozen=True)
class Rate:
    """Some events over some occasions, for one agent type."""

    agent_type: str
    count: int
    out_of: int

    @property
    def rate(self) -> float:
        return self.count / self.out_of if self.out_of else 0.0


@dataclass(frozen=True)
class Suggestion:
    """A concrete step: a sentence for people and the numbers behind it for programs."""

    text: str
    action: dict[str, Any]


def scale_out(queues: Iterable[QueueStats], span: Window) -> list[Suggestion]:
    """Queues whose tasks waited long for a worker relative to their run time. N is the mean
    number of tasks waiting over the window (their wait seconds over the window's seconds),
    in workers of the queue's concurrency, rounded up."""
    found = []
    for q in queues:
        if q.mean_wait_seconds < max(MIN_WAIT_SECONDS, WAIT_RATIO * q.mean_seconds):
            continue
        workers = max(1, math.ceil(q.wait_seconds / max(span.seconds, 1e-9) / q.concurrency))
        found.append(Suggestion(
            f"scale out queue {q.queue} by {workers} worker(s): its tasks waited "
            f"{q.mean_wait_seconds:.1f}s on average for {q.mean_seconds:.1f}s of work "
            f"(N = ceil({q.wait_seconds:.1f}s waited / {span.seconds:.1f}s window / "
            f"{q.concurrency} slots per worker))",
            {"rule": "scale_out", "queue": q.queue, "workers": workers,
             "mean_wait_seconds": round(q.mean_wait_seconds, 3),
             "mean_seconds": round(q.mean_seconds, 3), "wait_seconds": round(q.wait_seconds, 3),
             "window_seconds": round(span.seconds, 3), "concurrency": q.concurrency}))
    return sorted(found, key=lambda s: -int(s.action["workers"]))


def costliest(by_agent: Iterable[Usage]) -> list[Suggestion]:
    """The agent type whose tasks cost most each (by tokens when nothing is priced)."""
    agents = [u for u in by_agent if u.tasks]
    if not agents:
        return []
    top = max(agents, key=lambda u: (u.cost_per_task, u.tokens_per_task))
    return [Suggestion(
        f"prompt of agent type {top.name} costs most: ${top.cost_per_task:.4f} per task "
        f"({top.tokens_per_task:,.0f} tokens per task over {top.tasks} tasks): trim its brief "
        "and what it reads",
        {"rule": "costliest_prompt", "agent_type": top.name,
         "cost_per_task": round(top.cost_per_task, 6),
         "tokens_per_task": round(top.tokens_per_task, 1), "tasks": top.tasks})]


def rejections(reviews: Iterable[Rate]) -> list[Suggestion]:
    """Agent types whose work reviewers send back often."""
    return _frequent(reviews, REJECTION_THRESHOLD, "review_rejections", ("revise", "reviews"),
                     lambda r: f"reviews of {r.agent_type} are rejected {r.rate:.0%} of the "
                               f"time ({r.count} of {r.out_of}): tighten its brief")


def retries(per_call: Iterable[Rate]) -> list[Suggestion]:
    """Agent types whose model calls are retried often (rate limits, overload, timeouts)."""
    return _frequent(per_call, RETRY_THRESHOLD, "retries", ("retries", "calls"),
                     lambda r: f"retries of {r.agent_type}: {r.rate:.0%} of calls ({r.count} "
                               f"retries over {r.out_of} calls): lower its concurrency or "
                               "raise the API rate limit")


def _frequent(rates: Iterable[Rate], threshold: float, rule: str, keys: tuple[str, str],
              says: Callable[[Rate], str]) -> list[Suggestion]:
    """A suggestion per agent type at or above the threshold, most frequent first; `keys`
    name the count and what it is out of."""
    count, out_of = keys
    return [Suggestion(says(r), {"rule": rule, "agent_type": r.agent_type,
                                 "rate": round(r.rate, 4), count: r.count, out_of: r.out_of})
            for r in sorted(rates, key=lambda r: -r.rate) if r.rate >= threshold]


@dataclass(frozen=True)
class Stats:
    project_id: str | None
    projects: int
    span: Window
    tasks: list[TaskTiming]
    queues: list[QueueStats]
    by_agent: list[Usage]
    by_model: list[Usage]
    by_role: list[Usage]
    retries: list[Rate]  # per task of each agent type (the orchestrator's: per project)
    reviews: list[Rate]
    checks: list[Rate] = field(default_factory=list)  # failed checks over checks that ran

    def retries_per_call(self) -> list[Rate]:
        """Retries over model calls, per agent type."""
        calls = {u.name: u.calls for u in self.by_agent}
        return [Rate(r.agent_type, r.count, calls.get(r.agent_type, 0)) for r in self.retries]

    def suggestions(self) -> list[Suggestion]:
        return [*scale_out(self.queues, self.span), *costliest(self.by_agent),
                *rejections(self.reviews), *retries(self.retries_per_call())]

    def slowest_queues(self) -> list[QueueStats]:
        """By mean turnaround: waiting for a worker plus running."""
        return sorted((q for q in self.queues if q.tasks),
                      key=lambda q: -q.turnaround)[:TOP]

    def slowest_tasks(self) -> list[TaskTiming]:
        return sorted((t for t in self.tasks if t.seconds is not None),
                      key=lambda t: -(t.seconds or 0.0))[:TOP]

    def to_json(self) -> dict[str, Any]:
        """The `agency stats --json` object (docs/watching.md lists its keys)."""
        return {
            "scope": {"project_id": self.project_id, "projects": self.projects,
                      "tasks": len(self.tasks)},
            "window": {"start": _iso(self.span.start), "end": _iso(self.span.end),
                       "seconds": round(self.span.seconds, 3)},
            "utilisation": [_queue_json(q) for q in self.queues],
            "tokens_by_agent_type": [_usage_json(u, "agent_type") for u in self.by_agent],
            "tokens_by_model": [_usage_json(u, "model") for u in self.by_model],
            "tokens_by_role": [_usage_json(u, "role") for u in self.by_role],
            "retry_rate": _rates_json(self.retries, "retries", "tasks", len(self.tasks)),
            "review_rejection_rate": _rates_json(self.reviews, "revise", "reviews",
                                                 sum(r.out_of for r in self.reviews)),
            "check_failure_rate": _rates_json(self.checks, "failed", "checks",
                                              sum(r.out_of for r in self.checks)),
            "slowest_queues": [_queue_json(q) for q in self.slowest_queues()],
            "slowest_tasks": [_task_json(t) for t in self.slowest_tasks()],
            "suggestions": [{"text": s.text, "action": s.action} for s in self.suggestions()],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _queue_json(q: QueueStats) -> dict[str, Any]:
    return {"queue": q.queue, "tasks": q.tasks, "busy_seconds": round(q.busy_seconds, 3),
            "utilisation": round(q.utilisation, 4), "concurrency": q.concurrency,
            "mean_seconds": round(q.mean_seconds, 3), "p95_seconds": round(q.p95_seconds, 3),
            "mean_wait_seconds": round(q.mean_wait_seconds, 3),
            "wait_seconds": round(q.wait_seconds, 3)}


def _usage_json(u: Usage, key: str) -> dict[str, Any]:
    data: dict[str, Any] = {key: u.name, "calls": u.calls, "tokens": u.tokens.model_dump(),
                            "total_tokens": u.tokens.total, "cost_usd": round(u.cost_usd, 6)}
    if key == "agent_type":
        data.update(tasks=u.tasks, cost_per_task=round(u.cost_per_task, 6),
                    tokens_per_task=round(u.tokens_per_task, 1))
    return data


def _rates_json(rates: list[Rate], name: str, out_of: str, total: int) -> dict[str, Any]:
    count = sum(r.count for r in rates)
    return {name: count, out_of: total, "rate": round(count / total, 4) if total else 0.0,
            "by_agent_type": [{"agent_type": r.agent_type, name: r.count, out_of: r.out_of,
                               "rate": round(r.rate, 4)} for r in rates]}


def _task_json(t: TaskTiming) -> dict[str, Any]:
    return {"id": t.id, "short_id": t.id[:8], "project_id": t.project_id, "index": t.index,
            "title": t.title, "agent_type": t.agent_type, "status": t.status,
            "seconds": round(t.seconds or 0.0, 3),
            "wait_seconds": round(t.wait, 3) if t.wait is not None else None}


def slots(settings: Settings) -> dict[str, int]:
    """Task slots per worker of each queue: AGENCY_CONCURRENCY, or embedded, the one thread
    pool every queue shares."""
    if settings.embedded:
        return dict.fromkeys(ALL_QUEUES, settings.embedded_concurrency)
    return dict(settings.concurrency)


def collect(store: Store, project_id: str | None, concurrency: Mapping[str, int]) -> Stats:
    """The statistics of one project, or of every project when `project_id` is None."""
    scope = {"project_id": project_id}
    rows = store.db.fetch_all("stats_tasks", scope)
    tasks = timings(rows, store.db.fetch_all("stats_edges", scope))
    span = window(tasks)
    per_agent = Counter(t.agent_type for t in tasks)
    projects = 1 if project_id else sum(
        int(r["n"]) for r in store.db.fetch_all("stats_project_statuses", {}))
    usage = store.db.fetch_all("stats_usage", scope)
    retried = Counter({str(r["agent_type"] or ORCHESTRATOR_QUEUE): int(r["n"]) for r in
                       store.db.fetch_all("stats_events", {**scope, "kinds": ["retry"]})})
    # Per task of each agent type; the orchestrator's own calls: per project.
    occasions = {**per_agent, ORCHESTRATOR_QUEUE: projects}
    rated = sorted(set(per_agent) | set(retried))
    verdicts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in store.db.fetch_all("stats_reviews", scope):
        verdicts[r["agent_type"]][r["verdict"]] += int(r["n"])
    ran: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for r in store.db.fetch_all("stats_checks", scope):  # every round, as it was checked
        found = [c for c in json.loads(r["checks"]) if c["ok"] is not None]
        ran[r["agent_type"]] += len(found)
        failed[r["agent_type"]] += sum(c["ok"] is False for c in found)
    return Stats(
        project_id=project_id, projects=projects, span=span, tasks=tasks,
        queues=queue_stats(tasks, span, concurrency),
        by_agent=usage_by(usage, "agent_type", {**per_agent, ORCHESTRATOR_QUEUE: 0}),
        by_model=usage_by(usage, "model"), by_role=usage_by(usage, "role"),
        retries=[Rate(a, retried[a], occasions.get(a, 0)) for a in rated],
        reviews=[Rate(a, c["revise"], c.total()) for a, c in sorted(verdicts.items())],
        checks=[Rate(a, failed[a], n) for a, n in sorted(ran.items())])


@dataclass
class Tally:
    """A meter for a call that belongs to no project: admits it, and adds up what it cost."""

    settings: Settings
    calls: int = 0
    model: str = ""
    tokens: Tokens = field(default_factory=Tokens)
    cost_usd: float = 0.0
    lost_calls: int = 0  # calls (counted in `calls`) that gave no answer: tokens unknown

    def admit(self) -> None:
        """No project, no budget."""

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int, turn: object = None) -> None:
        self.calls, self.model = self.calls + 1, response.model
        self.tokens += response.tokens
        self.cost_usd += pricing.cost_usd(self.settings.prices, response.model, response.tokens,
                                          batch=response.batch)

    def lost(self, request: CompletionRequest, attempt: int, reason: str,
             request_id: str | None) -> None:
        """A call without an answer: counted, at no known cost."""
        self.calls += 1
        self.lost_calls += 1

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        """Retried in place; nothing to note."""

    def throttled(self, waited: float) -> None:
        """Waited for the rate limit; nothing to note."""


def optimize(rt: Runtime, metrics: dict[str, Any]) -> dict[str, Any]:
    """The orchestrator model's advice on these statistics (one list per heading of
    `Optimization`), and what the call cost (it is in no project's ledger)."""
    tally = Tally(rt.settings)
    advice = ask_structured(
        rt.provider, role=Role.OPTIMIZE, model=rt.model_for(Role.OPTIMIZE),
        system=ORCHESTRATOR_SYSTEM, prompt=optimization_prompt(metrics), schema=Optimization,
        schema_name="optimization", meter=tally, policy=rt.policy, max_tokens=4000,
        effort=rt.effort_for(Role.OPTIMIZE))
    return {**advice.model_dump(), "usage": {
        "model": tally.model, "calls": tally.calls, "lost_calls": tally.lost_calls,
        "tokens": tally.tokens.model_dump(),
        "cost_usd": round(tally.cost_usd, 6)}}
