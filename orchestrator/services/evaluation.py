"""Evaluating the agency on a suite of requests (`agency eval`): the suite, what one finished
project measured, its failure labels, the summary, and the change against a baseline.

Everything here is a pure function of what the store keeps about finished projects; running
them is the CLI's (the same runtime `agency run` uses). The labels follow the MAST taxonomy
(Cemri et al., "Why do multi-agent LLM systems fail?", 2025) as far as the store can tell:

- `step-repetition`: a task took more than one attempt, or a review round sent it back for
  exactly the criteria the round before did (the revision changed nothing that was judged).
- `done-not-done`: a task completed with failed checks open in its latest round, or a round
  passed although one of its checks failed.
- `verification-failed`: a "revise" verdict whose unmet criteria are all failed checks (the
  gate sent it back, not the reviewer), or a failed check left open after the last round.
- `limit-hit`: the token budget ran out, a task made its AGENCY_MAX_MODEL_CALLS calls, a task's
  review rounds ran out while its work was still "revise", an answer was cut at max_tokens, or
  an agent called tools after its turns (AGENCY_AGENT_MAX_TURNS) were up.
- `not-completed`: the project did not end `completed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
)

from orchestrator.agent.review import check_criterion
from orchestrator.domain.constants import ProjectStatus, ProjectType, TaskStatus
from orchestrator.domain.errors import BadInput
from orchestrator.domain.intake import check_request, pydantic_line, read_text_file
from orchestrator.domain.models import (
    CallRecord,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
)
from orchestrator.domain.settings import Settings
from orchestrator.llm.structured import TURNS_UP
from orchestrator.services.deliverable import check_counts, latest_checks

DEFAULT_SUITE = "eval_suite.json"  # package data beside this module
YAML_SUFFIXES = frozenset({".yaml", ".yml"})


class Label(StrEnum):
    """A failure label of one run (the module's docstring defines each)."""

    STEP_REPETITION = "step-repetition"
    DONE_NOT_DONE = "done-not-done"
    VERIFICATION_FAILED = "verification-failed"
    LIMIT_HIT = "limit-hit"
    NOT_COMPLETED = "not-completed"


# The suite ------------------------------------------------------------------------------------


class SuiteRequest(BaseModel):
    """One request of a suite; `project_type` is the type its analysis should find."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    request: str
    project_type: ProjectType | None = None

    @field_validator("request")
    @classmethod
    def _text(cls, value: str) -> str:
        try:
            return check_request(value)
        except BadInput as exc:
            raise ValueError(exc.message) from None


class Suite(BaseModel):
    """A named list of requests with unique ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="suite", min_length=1, max_length=200)
    requests: list[SuiteRequest] = Field(min_length=1)

    @field_validator("requests")
    @classmethod
    def _unique(cls, value: list[SuiteRequest]) -> list[SuiteRequest]:
        seen: set[str] = set()
        for item in value:
            if item.id in seen:
                raise ValueError(f"the id {item.id!r} is used twice")
            seen.add(item.id)
        return value


def _parse(text: str, where: str, yaml_file: bool) -> Any:
    try:
        return yaml.safe_load(text) if yaml_file else json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where} is not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise BadInput(f"{where} is nested too deeply") from None


def load_suite(path: Path | None) -> Suite:
    """The suite in `path` (JSON, or YAML by its suffix), else the default one; BadInput with
    one line saying what is wrong."""
    if path is None:
        text = resources.files(__package__ or "orchestrator.services").joinpath(
            DEFAULT_SUITE).read_text(encoding="utf-8")
        where = f"the default suite ({DEFAULT_SUITE})"
    else:
        text = read_text_file(path, "suite file", BadInput)
        where = f"suite file {path}"
    data = _parse(text, where, path is not None and path.suffix.lower() in YAML_SUFFIXES)
    if not isinstance(data, dict):
        raise BadInput(f"{where} must hold an object with a 'requests' list")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{where}: {pydantic_line(exc)}") from None


# One run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the store keeps about one finished project."""

    project: ProjectRecord
    tasks: list[TaskRecord]
    reviews: dict[str, list[ReviewRecord]]
    calls: list[CallRecord]
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class Caps:
    """The limits the runs ran under (from the settings)."""

    review_rounds: int
    model_calls: int

    @classmethod
    def of(cls, settings: Settings) -> Caps:
        return cls(review_rounds=settings.review_rounds, model_calls=settings.max_model_calls)


class Part(BaseModel):
    """Part of an evaluation's JSON: fields a newer version adds are ignored when read back."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class CheckTally(Part):
    passed: int = 0
    failed: int = 0
    unchecked: int = 0
    total: int = 0


class RunResult(Part):
    """One request's project, measured: how it ended and what it took."""

    id: str
    request: str
    project_type: ProjectType | None = None  # as the suite expects it
    planned_type: ProjectType | None = None  # as the analysis found it
    project_id: str | None = None
    status: str
    tasks: int = 0
    checks: CheckTally = Field(default_factory=CheckTally)
    review_rounds: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    model_calls: int = 0
    tokens: int = 0
    labels: list[Label] = Field(default_factory=list)
    why: dict[str, list[str]] = Field(default_factory=dict)  # each label's reasons

    @computed_field  # type: ignore[prop-decorator]
    @property
    def type_matched(self) -> bool | None:
        """Whether the analysis found the type the suite expects (None: none expected)."""
        if self.project_type is None:
            return None
        return self.planned_type is self.project_type


def _name(task: TaskRecord) -> str:
    return f"task {task.index} {task.title!r}"


def _unmet(review: ReviewRecord) -> set[str]:
    return {c.criterion for c in review.notes if not c.met}


def step_repetition(facts: Facts, caps: Caps) -> list[str]:
    """Tasks that redid work: a second attempt, or a revise round with the same unmet
    criteria as the round before it."""
    found = [f"{_name(t)} took {t.attempts} attempts" for t in facts.tasks if t.attempts > 1]
    for task in facts.tasks:
        rounds = facts.reviews.get(task.id, [])
        for before, after in pairwise(rounds):
            if (before.verdict == after.verdict == "revise" and _unmet(after)
                    and _unmet(after) == _unmet(before)):
                found.append(f"{_name(task)}: round {after.round} sent it back for the same "
                             f"{len(_unmet(after))} criteria as round {before.round}")
    return found


def _failed(review: ReviewRecord) -> list[str]:
    return [check_criterion(c) for c in review.checks if c.ok is False]


def done_not_done(facts: Facts, caps: Caps) -> list[str]:
    """Work reported done that is not: completed with failed checks open, or passed while a
    check failed."""
    latest = latest_checks(facts.tasks, facts.reviews)
    found = [f"{_name(t)} completed with {n} failed checks open" for t in facts.tasks
             if t.status is TaskStatus.COMPLETED
             and (n := sum(c.ok is False for c in latest.get(t.id, [])))]
    for task in facts.tasks:
        found += [f"{_name(task)}: round {r.round} passed with {', '.join(_failed(r))} failed"
                  for r in facts.reviews.get(task.id, []) if r.verdict == "pass" and _failed(r)]
    return found


def verification_failed(facts: Facts, caps: Caps) -> list[str]:
    """Checks that failed: revise verdicts the gate alone gave, and failures left open."""
    found = []
    for task in facts.tasks:
        for r in facts.reviews.get(task.id, []):
            unmet, failed = _unmet(r), set(_failed(r))
            if r.verdict == "revise" and unmet and unmet <= failed:
                found.append(f"{_name(task)}: round {r.round} was sent back by its checks "
                             f"alone ({', '.join(sorted(unmet))})")
    latest = latest_checks(facts.tasks, facts.reviews)
    found += [f"{_name(t)}: {check_criterion(c)} still fails" for t in facts.tasks
              for c in latest.get(t.id, []) if c.ok is False]
    return found


def limit_hit(facts: Facts, caps: Caps) -> list[str]:
    """Limits the run ran into: budget, calls, review rounds, max_tokens, tool-loop turns."""
    found = []
    if facts.project.status is ProjectStatus.BUDGET_EXHAUSTED or any(
            e.get("to_status") == ProjectStatus.BUDGET_EXHAUSTED.value for e in facts.events):
        found.append("the token budget ran out")
    for task in facts.tasks:
        rounds = facts.reviews.get(task.id, [])
        if task.model_calls >= caps.model_calls:
            found.append(f"{_name(task)} made its {task.model_calls} model calls (the cap)")
        if rounds and rounds[-1].verdict == "revise" and rounds[-1].round > caps.review_rounds:
            found.append(f"{_name(task)}: its {caps.review_rounds} review rounds ran out "
                         "while it was still revise")
        if task.error and TURNS_UP in task.error:
            found.append(f"{_name(task)}: tools called after its turns were up")
    cut = sum(c.entry.stop_reason == "max_tokens" for c in facts.calls)
    if cut:
        found.append(f"{cut} answers cut at max_tokens")
    return found


def not_completed(facts: Facts, caps: Caps) -> list[str]:
    """The project's end, when it is not `completed`."""
    project = facts.project
    if project.status is ProjectStatus.COMPLETED:
        return []
    return [f"ended {project.status.value}" + (f": {project.error}" if project.error else "")]


RULES: dict[Label, Callable[[Facts, Caps], list[str]]] = {
    Label.STEP_REPETITION: step_repetition,
    Label.DONE_NOT_DONE: done_not_done,
    Label.VERIFICATION_FAILED: verification_failed,
    Label.LIMIT_HIT: limit_hit,
    Label.NOT_COMPLETED: not_completed,
}


def labels(facts: Facts, caps: Caps) -> dict[str, list[str]]:
    """Each label that fires for this run, with its reasons, in the order of `Label`."""
    return {label.value: why for label, rule in RULES.items() if (why := rule(facts, caps))}


def measure(item: SuiteRequest, facts: Facts, caps: Caps, seconds: float) -> RunResult:
    """One request's run as the store recorded it; `seconds`: its wall time."""
    project = facts.project
    why = labels(facts, caps)
    return RunResult(
        id=item.id, request=item.request, project_type=item.project_type,
        planned_type=project.project_type, project_id=project.id,
        status=project.status.value, tasks=len(facts.tasks),
        checks=CheckTally(**check_counts(latest_checks(facts.tasks, facts.reviews))),
        review_rounds=sum(len(facts.reviews.get(t.id, [])) for t in facts.tasks),
        cost_usd=round(project.cost_usd, 6), seconds=round(seconds, 3),
        model_calls=len(facts.calls), tokens=project.tokens.total,
        labels=[Label(name) for name in why], why=why)


# The whole suite ------------------------------------------------------------------------------


class Summary(Part):
    """Totals and means over a suite's runs."""

    runs: int = 0
    completed: int = 0
    types_matched: int = 0
    types_expected: int = 0
    checks: CheckTally = Field(default_factory=CheckTally)
    review_rounds: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    model_calls: int = 0
    mean_review_rounds: float = 0.0
    mean_cost_usd: float = 0.0
    mean_seconds: float = 0.0
    mean_model_calls: float = 0.0
    labels: dict[str, int] = Field(default_factory=dict)  # runs with each label


def _mean(total: float, n: int, places: int) -> float:
    return round(total / n, places) if n else 0.0


def summarize(runs: Sequence[RunResult]) -> Summary:
    """The suite's totals and per-run means; every label is counted (0 when none fired)."""
    n = len(runs)
    rounds = sum(r.review_rounds for r in runs)
    cost = sum(r.cost_usd for r in runs)
    seconds = sum(r.seconds for r in runs)
    calls = sum(r.model_calls for r in runs)
    return Summary(
        runs=n, completed=sum(r.status == ProjectStatus.COMPLETED.value for r in runs),
        types_matched=sum(r.type_matched is True for r in runs),
        types_expected=sum(r.type_matched is not None for r in runs),
        checks=CheckTally(**{k: sum(getattr(r.checks, k) for r in runs)
                             for k in CheckTally.model_fields}),
        review_rounds=rounds, cost_usd=round(cost, 6), seconds=round(seconds, 3),
        model_calls=calls, mean_review_rounds=_mean(rounds, n, 2),
        mean_cost_usd=_mean(cost, n, 6), mean_seconds=_mean(seconds, n, 3),
        mean_model_calls=_mean(calls, n, 2),
        labels={label.value: sum(label in r.labels for r in runs) for label in Label})


class Report(Part):
    """What `agency eval --json` prints: the suite, the model measured, the runs, the summary."""

    suite: str
    model: dict[str, str]
    state: str = ""
    runs: list[RunResult]
    summary: Summary


def model_of(settings: Settings, offline: bool) -> dict[str, str]:
    """What the runs measure: the pipeline (the offline model), or models and prompts."""
    if offline:
        return {"provider": "offline", "orchestrator": "agency_offline",
                "agent": "agency_offline", "measures": "the pipeline"}
    return {"provider": "anthropic", "orchestrator": settings.orchestrator_model,
            "agent": settings.agent_model, "measures": "models and prompts"}


def build_report(suite: Suite, model: dict[str, str], state: str, runs: list[RunResult]) -> Report:
    return Report(suite=suite.name, model=model, state=state, runs=runs,
                  summary=summarize(runs))


# Against a baseline ---------------------------------------------------------------------------


def load_baseline(path: Path) -> Report:
    """An earlier `agency eval --json` output; BadInput with one line saying what is wrong."""
    where = f"baseline file {path}"
    data = _parse(read_text_file(path, "baseline file", BadInput), where, False)
    if not isinstance(data, dict):
        raise BadInput(f"{where} must hold the object `agency eval --json` prints")
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{where} is not `agency eval --json` output: "
                       f"{pydantic_line(exc)}") from None


def figures(part: RunResult | Summary) -> dict[str, float]:
    """The figures a baseline is compared on."""
    done = (part.status == ProjectStatus.COMPLETED.value if isinstance(part, RunResult)
            else part.completed)
    return {"completed": int(done), "checks_passed": part.checks.passed,
            "checks_total": part.checks.total, "review_rounds": part.review_rounds,
            "cost_usd": part.cost_usd, "seconds": part.seconds, "model_calls": part.model_calls}


def _minus(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: round(now[k] - before[k], 6) for k in now}


class RunChange(Part):
    """One run against its baseline run (none: the baseline has no run of that request)."""

    id: str
    baseline_id: str | None = None
    status_before: str | None = None
    change: dict[str, float] = Field(default_factory=dict)
    labels_added: list[str] = Field(default_factory=list)
    labels_removed: list[str] = Field(default_factory=list)


class Comparison(Part):
    runs: list[RunChange]
    summary: dict[str, float]
    labels: dict[str, int]  # the change in runs with each label


def _match(run: RunResult, baseline: Report) -> RunResult | None:
    """The baseline's run of the same request: by id, else by request text."""
    return (next((b for b in baseline.runs if b.id == run.id), None)
            or next((b for b in baseline.runs if b.request == run.request), None))


def _run_change(run: RunResult, before: RunResult | None) -> RunChange:
    if before is None:
        return RunChange(id=run.id)
    return RunChange(
        id=run.id, baseline_id=before.id, status_before=before.status,
        change=_minus(figures(run), figures(before)),
        labels_added=[x for x in run.labels if x not in before.labels],
        labels_removed=[x for x in before.labels if x not in run.labels])


def compare(now: Report, baseline: Report) -> Comparison:
    """Each run's change against the baseline's run of the same request, and the summary's."""
    was = baseline.summary.labels
    return Comparison(
        runs=[_run_change(r, _match(r, baseline)) for r in now.runs],
        summary=_minus(figures(now.summary), figures(baseline.summary)),
        labels={k: n - was.get(k, 0) for k, n in now.summary.labels.items()})


def fresh_settings(settings: Settings, folder: Path) -> Settings | None:
    """The settings that give an evaluation a state of its own in `folder` (a new SQLite store
    and output folder), so that repeated evaluations start alike; None when the runs must use
    the configured store: a database was named, or workers elsewhere (a broker) read it."""
    if not settings.embedded or settings.database_url is not None:
        return None
    return settings.model_copy(update={"home": folder, "output_dir": folder / "out"})
