"""How projects look to people and programs: `status --json`, tables and the live display."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES, ProjectStatus, TaskStatus
from orchestrator.domain.deadlines import at_risk
from orchestrator.domain.display import visible
from orchestrator.domain.estimates import Estimate
from orchestrator.domain.models import CallRecord, ProjectRecord, ReviewRecord, TaskRecord
from orchestrator.services.deliverable import check_counts
from orchestrator.services.deliverable import latest_checks as latest_checks_by_task


def shown(text: str, **kwargs: Any) -> Text:
    """A Text of words that may come from a request or a model: its control characters made
    visible before Rich measures it (the console makes them visible anyway, after layout)."""
    return Text(visible(text), **kwargs)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _retries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"at": r["at"] if isinstance(r["at"], str) else r["at"].isoformat(),
             "reason": r["detail"]} for r in rows]


def review_json(review: ReviewRecord) -> dict[str, Any]:
    return {"reviewer": review.reviewer, "verdict": review.verdict,
            "notes": [c.model_dump() for c in review.notes], "at": _iso(review.at),
            "round": review.round, "attempt": review.attempt, "summary": review.summary,
            "worker": review.worker, "checks": [c.model_dump() for c in review.checks]}


def latest_checks(reviews: list[ReviewRecord] | None) -> list[dict[str, Any]]:
    """A task's checks as its latest round found them (failing ones after the last round stay
    open)."""
    return [c.model_dump() for c in reviews[-1].checks] if reviews else []


def risks(project: ProjectRecord, tasks: list[TaskRecord]) -> dict[str, datetime]:
    """Unfinished tasks whose earliest possible finish is past their deadline."""
    if project.status in TERMINAL_PROJECT_STATUSES:
        return {}
    return at_risk(tasks, project.deadline, project.created_at, datetime.now(UTC))


def risk_line(tasks: list[TaskRecord], found: dict[str, datetime]) -> str:
    """One line naming the tasks at risk of missing their deadline ("" when none)."""
    late = [t for t in tasks if t.id in found]
    if not late:
        return ""
    return "at risk of missing the deadline: " + "; ".join(
        f"#{t.index} {t.title} (earliest finish {found[t.id]:%Y-%m-%d %H:%M:%S}, deadline "
        f"{t.deadline:%Y-%m-%d %H:%M:%S})" for t in late if t.deadline)


def task_json(task: TaskRecord, retries: list[dict[str, Any]] | None = None,
              reviews: list[ReviewRecord] | None = None,
              risk: dict[str, datetime] | None = None) -> dict[str, Any]:
    return {
        "id": task.id, "index": task.index, "title": task.title,
        "agent_type": task.agent_type.value, "status": task.status.value,
        "priority": task.priority.value, "on_critical_path": task.on_critical_path,
        "dependencies": task.dependencies, "attempts": task.attempts, "worker": task.worker,
        "queued_at": _iso(task.queued_at), "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at), "tokens": task.tokens.model_dump(),
        "cost_usd": round(task.cost_usd, 6), "error": task.error,
        "model_calls": task.model_calls, "retries": _retries(retries or []),
        "reviews": [review_json(r) for r in reviews or []],
        "checks": latest_checks(reviews),
        "deadline": _iso(task.deadline), "at_risk": task.id in (risk or {}),
        "activity": task.activity if task.status in RUNNING else None,
        "waiting_for": waiting_for(task),
    }


def waiting_for(task: TaskRecord) -> str | None:
    """What a parked task waits for, in words: None when it is not parked."""
    if task.parked is None:
        return None
    if task.parked.startswith("review:"):
        return f"review round {task.parked.split(':', 1)[1]}"
    return {"question": "an answer (agency answer)", "batch": "batch"}.get(task.parked,
                                                                          task.parked)


def project_json(project: ProjectRecord, tasks: list[TaskRecord],
                 retries: dict[str | None, list[dict[str, Any]]] | None = None,
                 reviews: dict[str, list[ReviewRecord]] | None = None) -> dict[str, Any]:
    """The `status --json` object (DESIGN.md lists the fields other tools rely on)."""
    retries = retries or {}
    risk = risks(project, tasks)
    return {
        "id": project.id, "status": project.status.value, "request": project.request,
        "project_type": project.project_type.value if project.project_type else None,
        "complexity": project.complexity.value if project.complexity else None,
        "budget_tokens": project.budget_tokens, "tokens_used": project.tokens_used,
        "tokens": project.tokens.model_dump(),
        "cost_usd": round(project.cost_usd, 6), "output_dir": project.output_dir,
        "error": project.error, "created_at": _iso(project.created_at),
        "finished_at": _iso(project.finished_at), "deadline": _iso(project.deadline),
        "activity": project_activity(project),
        "retries": _retries(retries.get(None, [])),
        "tasks": [task_json(t, retries.get(t.id), (reviews or {}).get(t.id), risk)
                  for t in tasks],
    }


# Where a task's or a project's own activity is worth showing: while it runs.
RUNNING = frozenset({TaskStatus.IN_PROGRESS, TaskStatus.REVIEW})
PROJECT_STEPS = frozenset({ProjectStatus.PLANNING, ProjectStatus.INTEGRATING})


def project_activity(project: ProjectRecord) -> str | None:
    return project.activity if project.status in PROJECT_STEPS else None


def activity_lines(project: ProjectRecord, tasks: list[TaskRecord]) -> list[Text]:
    """What a streamed call is writing right now: the project's own step, and each running
    task's."""
    lines = []
    if project_activity(project):
        lines.append(shown(f"{project.status.value}: {project.activity}"))
    lines += [shown(f"#{t.index} {t.title}: {t.activity}") for t in tasks
              if t.activity and t.status in RUNNING]
    return lines


def project_seconds(project: ProjectRecord) -> float:
    """How long a project took, from its start to its end (or now), from the store: the same
    whichever command followed it (`run`, `watch`, `approve`, `resume`)."""
    end = project.finished_at or datetime.now(UTC)
    return (end - project.created_at).total_seconds()


def counts(tasks: list[TaskRecord]) -> Counter[TaskStatus]:
    return Counter(t.status for t in tasks)


def progress_line(project: ProjectRecord, tasks: list[TaskRecord]) -> str:
    """A project's progress: tasks completed, in progress, blocked and failed, and percent."""
    if not tasks:
        return f"{project.status.value}: analyzing and planning"
    c = counts(tasks)
    done = c[TaskStatus.COMPLETED]
    percent = 100 * done // len(tasks) if tasks else 0
    return (f"{project.status.value}: {done}/{len(tasks)} completed ({percent}%), "
            f"{c[TaskStatus.IN_PROGRESS] + c[TaskStatus.REVIEW] + c[TaskStatus.NEEDS_INPUT]}"
            " in progress, "
            f"{c[TaskStatus.BLOCKED] + c[TaskStatus.PENDING]} waiting, "
            f"{c[TaskStatus.FAILED]} failed")


def live_view(project: ProjectRecord, tasks: list[TaskRecord]) -> Group:
    """Per agent type: done, in progress, waiting and failed."""
    table = Table(box=None, pad_edge=False)
    for column in ("agent", "done", "running", "waiting", "failed"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    per_agent: dict[str, Counter[TaskStatus]] = {}
    for task in tasks:
        per_agent.setdefault(task.agent_type.value, Counter())[task.status] += 1
    for agent, c in sorted(per_agent.items()):
        table.add_row(agent, str(c[TaskStatus.COMPLETED]),
                      str(c[TaskStatus.IN_PROGRESS] + c[TaskStatus.REVIEW]
                          + c[TaskStatus.NEEDS_INPUT]),
                      str(c[TaskStatus.BLOCKED] + c[TaskStatus.PENDING]),
                      str(c[TaskStatus.FAILED]))
    header = shown(f"Project {project.id[:8]}  {progress_line(project, tasks)}", style="bold")
    late = risk_line(tasks, risks(project, tasks))
    lines: list[RenderableType] = [header]
    if late:  # `watch` highlights what may miss the deadline
        lines.append(shown(late, style="bold red"))
    return Group(*lines, *activity_lines(project, tasks), table)


def task_table(tasks: list[TaskRecord]) -> Table:
    """Each task with its short id (what `agency retry` takes) and its error, if any."""
    table = Table(box=None, pad_edge=False)
    for column in ("#", "id", "title", "agent", "status", "deps", "worker", "tries", "tokens",
                   "cost", "error"):
        if column in ("title", "error"):  # words: wrap them, never cut a figure or a status
            table.add_column(column, overflow="fold",
                             min_width=TITLE_MIN_WIDTH if column == "title" else None)
        else:  # the id whole, even on a narrow console: `agency retry` takes it
            table.add_column(column, no_wrap=True)
    index = {t.id: t.index for t in tasks}
    for t in tasks:
        deps = ",".join(str(index[d]) for d in t.dependencies if d in index)
        # Text cells: a model-written title or error is shown as written, never as markup.
        table.add_row(str(t.index), t.id[:8], shown(t.title), t.agent_type.value,
                      t.status.value, deps, t.worker or "", str(t.attempts),
                      str(t.tokens.total), f"${t.cost_usd:.4f}", shown(t.error or ""))
    return table


# Below this many characters a title column reads as fragments: then one line per task.
TITLE_MIN_WIDTH = 20


def task_lines(tasks: list[TaskRecord], width: int) -> Group:
    """One line per task for a narrow console: index, short id, status, agent and the title
    (its start when it does not fit); an error on an indented line of its own."""
    status_width = max(len(t.status.value) for t in tasks)
    agent_width = max(len(t.agent_type.value) for t in tasks)
    lines: list[Text] = []
    for t in tasks:
        head = (f"{t.index:>2} {t.id[:8]} {t.status.value:<{status_width}} "
                f"{t.agent_type.value:<{agent_width}} ")
        line = shown(head + t.title, no_wrap=True, overflow="ellipsis")
        line.truncate(width, overflow="ellipsis")
        lines.append(line)
        if t.error:
            lines.append(shown(f"     error: {t.error}"))
    return Group(*lines)


def task_view(tasks: list[TaskRecord], width: int) -> RenderableType:
    """The task table when it fits `width` columns with readable titles, else `task_lines`."""
    table = task_table(tasks)
    needed = Console(width=10_000).measure(table).minimum
    return table if tasks and needed <= width else task_lines(tasks, width) if tasks else Text()


def checks_summary(tasks: list[TaskRecord], reviews: dict[str, list[ReviewRecord]]) -> str:
    """One line on the project's checks ("" before any ran), naming what fails."""
    checks = latest_checks_by_task(tasks, reviews)
    if not checks:
        return ""
    n = check_counts(checks)
    failing = [f"{c.check} of {c.path}" for found in checks.values() for c in found
               if c.ok is False]
    return (f"checks: {n['passed']} of {n['total']} passed"
            + (f", {n['failed']} failed: {', '.join(failing)}" if failing else "")
            + (f", {n['unchecked']} files not checked" if n["unchecked"] else ""))


def status_view(project: ProjectRecord, tasks: list[TaskRecord], width: int,
                reviews: dict[str, list[ReviewRecord]] | None = None) -> Group:
    """`agency status` for people, fit to `width` columns (long lines wrap, never overflow)."""
    parts: list[RenderableType] = [shown(f"Project {project.id}: {project.request}"),
                                   shown(progress_line(project, tasks))]
    if project.deadline:
        parts.append(shown(f"deadline {project.deadline:%Y-%m-%d %H:%M %Z}"))
    late = risk_line(tasks, risks(project, tasks))
    if late:
        parts.append(shown(late, style="bold red"))
    if project.error:
        parts.append(shown(f"error: {project.error}"))
    parts += activity_lines(project, tasks)
    checked = checks_summary(tasks, reviews or {})
    parts += [task_view(tasks, width), *([shown(checked)] if checked else []),
              shown(f"tokens {project.tokens.total}  cost ${project.cost_usd:.4f}  "
                   f"output {project.output_dir}")]
    return Group(*parts)


def questions_table(rows: list[dict[str, Any]]) -> Table:
    """`agency questions`: what agents asked and what they will assume without an answer."""
    table = _table("Open questions (agency answer TASK TEXT)",
                   ("task", "project", "asked", "question", "assumption"), text=5)
    for r in rows:
        asked = r["asked_at"]
        when = asked.strftime("%H:%M:%S") if isinstance(asked, datetime) else str(asked)[11:19]
        table.add_row(f"{str(r['task_id'])[:8]} (#{r['idx']})", str(r["project_id"])[:8], when,
                      shown(r["question"]), shown(r["assumption"]))
    return table


def log_table(project_id: str, rows: list[dict[str, Any]], index: dict[str, int]) -> Table:
    """`agency log`: one line per event, oldest first."""
    table = _table(f"Project {project_id[:8]}: history", ("at", "task", "kind", "change",
                                                           "detail"), text=5)
    for r in rows:
        at = r["at"]
        when = at.strftime("%Y-%m-%d %H:%M:%S") if isinstance(at, datetime) else str(at)[:19]
        task = f"#{index[r['task_id']]}" if r["task_id"] in index else ""
        change = " -> ".join(x for x in (r["from_status"], r["to_status"]) if x)
        table.add_row(when, task, r["kind"], change, shown(r["detail"] or ""))
    return table


def calls_table(project_id: str, calls: list[CallRecord]) -> Table:
    """`agency calls`: one line per model call, oldest first, with its tokens, cost and the
    request id support asks for."""
    cost = sum(c.entry.cost_usd for c in calls)
    table = _table(f"Project {project_id[:8]}: {len(calls)} model calls, ${cost:.4f}", (
        "at", "task", "role", "model", "stop", "outcome", "request id", "input", "output",
        "thinking", "cache read", "cache write", "cost"), text=7)
    for c in calls:
        e, t = c.entry, c.entry.tokens
        task = f"#{c.task_index} {c.task_title}" if c.task_index is not None else e.role.value
        outcome = ", ".join([e.outcome.value] + ["stale"] * c.stale + ["batch"] * e.batch)
        table.add_row(c.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), shown(task),
                      e.role.value, e.model, e.stop_reason or "", outcome, e.request_id or "",
                      f"{t.input:,}", f"{t.output:,}", f"{t.thinking:,}", f"{t.cache_read:,}",
                      f"{t.cache_write:,}", f"${e.cost_usd:.4f}")
    return table


def plan_table(project: ProjectRecord, tasks: list[TaskRecord], found: Estimate) -> Table:
    """A plan for a person to approve: tasks, dependencies, estimated and expected tokens, and
    cost."""
    counted = (f" ({found.counted:,} as {found.model} counts them)"
               if found.counted != found.expected else "")
    budget = (f"; budget {project.budget_tokens:,} tokens (set when the plan was saved)"
              if project.budget_tokens else "")
    title = (f"Project {project.id[:8]} ({project.status.value}): {len(tasks)} tasks, "
             f"{found.tokens:,} estimated tokens, {found.expected:,} expected at "
             f"{found.calibration.describe()}{counted}, about ${found.cost_usd:.2f} at "
             f"{found.model} prices live, ${found.batch_cost_usd:.2f} through the Batches API"
             f"{' (economy mode: turns with slack are batched)' if project.economy else ''}"
             f"{budget}")
    table = _table(title, ("#", "title", "agent", "deps", "critical", "est. tokens",
                           "expected", "exp. cost"), text=5)
    index = {t.id: t.index for t in tasks}
    for t in tasks:
        tokens, cost = found.per_task[t.index]
        table.add_row(str(t.index), shown(t.title), t.agent_type.value,
                      ",".join(str(index[d]) for d in t.dependencies if d in index),
                      "yes" if t.on_critical_path else "", f"{t.estimated_tokens:,}",
                      f"{tokens:,}", f"${cost:.4f}")
    return table


def _table(title: str, columns: tuple[str, ...], text: int = 1) -> Table:
    """A table whose first `text` columns are words and the rest numbers."""
    table = Table(title=title, title_justify="left", title_style="bold", box=None,
                  pad_edge=False)
    for n, column in enumerate(columns):
        table.add_column(column, justify="left" if n < text else "right")
    return table


def _queues_table(title: str, queues: list[dict[str, Any]]) -> Table:
    table = _table(title, ("queue", "tasks", "busy s", "util", "mean s", "p95 s", "wait s"))
    for q in queues:
        table.add_row(q["queue"], str(q["tasks"]), f"{q['busy_seconds']:.1f}",
                      f"{q['utilisation']:.0%}", f"{q['mean_seconds']:.2f}",
                      f"{q['p95_seconds']:.2f}", f"{q['mean_wait_seconds']:.2f}")
    return table


def _usage_table(title: str, key: str, rows: list[dict[str, Any]]) -> Table:
    table = _table(title, (key, "calls", "input", "output", "cache read", "cache write",
                           "cost"))
    for u in rows:
        t = u["tokens"]
        table.add_row(str(u[key]), str(u["calls"]), f"{t['input']:,}", f"{t['output']:,}",
                      f"{t['cache_read']:,}", f"{t['cache_write']:,}", f"${u['cost_usd']:.4f}")
    return table


def _rates_table(data: dict[str, Any]) -> Table:
    retries = {r["agent_type"]: r for r in data["retry_rate"]["by_agent_type"]}
    reviews = {r["agent_type"]: r for r in data["review_rejection_rate"]["by_agent_type"]}
    checks = {r["agent_type"]: r for r in data["check_failure_rate"]["by_agent_type"]}
    table = _table("Retries, review rejections and failed checks",
                   ("agent", "retries", "per task", "reviews", "revise", "rejected", "checks",
                    "failed"))
    for agent in sorted(set(retries) | set(reviews) | set(checks)):
        tried, seen, ran = retries.get(agent), reviews.get(agent), checks.get(agent)
        table.add_row(agent, str(tried["retries"]) if tried else "",
                      f"{tried['rate']:.2f}" if tried else "",
                      str(seen["reviews"]) if seen else "", str(seen["revise"]) if seen else "",
                      f"{seen['rate']:.0%}" if seen else "",
                      str(ran["checks"]) if ran else "", str(ran["failed"]) if ran else "")
    return table


def _slowest_tasks(rows: list[dict[str, Any]]) -> Table:
    table = _table("Slowest tasks", ("id", "task", "agent", "seconds", "waited"), text=3)
    for t in rows:
        waited = t["wait_seconds"]
        table.add_row(t["short_id"], shown(f"{t['index']} {t['title']}"), t["agent_type"],
                      f"{t['seconds']:.2f}", "" if waited is None else f"{waited:.2f}")
    return table


def _lines(title: str, lines: list[str]) -> Group:
    return Group(shown(title, style="bold"), *(shown(f"- {line}") for line in lines))


def stats_view(data: dict[str, Any]) -> Group:
    """`agency stats` for people: the `--json` object as tables."""
    scope, span = data["scope"], data["window"]
    head = (f"{scope['projects']} project(s), {scope['tasks']} task(s) over "
            f"{span['seconds']:.1f}s" + (f" (project {scope['project_id']})"
                                         if scope["project_id"] else ""))
    parts: list[Any] = [
        shown(head, style="bold"),
        _queues_table("Utilisation per queue", data["utilisation"]),
        _usage_table("Tokens and cost per agent type", "agent_type",
                     data["tokens_by_agent_type"]),
        _usage_table("Tokens and cost per model", "model", data["tokens_by_model"]),
        _rates_table(data),
        _queues_table("Slowest queues", data["slowest_queues"]),
        _slowest_tasks(data["slowest_tasks"]),
        _lines("Suggestions", [s["text"] for s in data["suggestions"]] or ["none"])]
    advice = data.get("optimization")
    if advice:
        parts += [_lines(f"Orchestrator's advice: {key}", advice[key]) for key in (
            "agent_utilization", "token_efficiency", "task_parallelization", "bottlenecks",
            "prompt_optimization")]
    return Group(*parts)
