"""`agency stats` and `agency metrics` over embedded runs, and the status table's short ids."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.domain.constants import AgentType, ProjectStatus, Role, TaskStatus
from orchestrator.domain.models import LedgerEntry, Tokens
from orchestrator.domain.settings import Settings
from orchestrator.interfaces.metrics import AgencyCollector
from orchestrator.interfaces.stats import collect
from orchestrator.state.store import Store
from orchestrator.state.transitions import Scheduler
from tests.conftest import AGENCY, agency_env
from tests.integration.test_agents import ODD
from tests.integration.test_embedded_cli import PLAN, agency, project_id_of, status
from tests.integration.test_store import OUT, _project, start
from tests.services import free_port, wait_until

KEYS = {"scope", "window", "utilisation", "tokens_by_agent_type", "tokens_by_model",
        "tokens_by_role", "retry_rate", "review_rejection_rate", "check_failure_rate",
        "slowest_queues",
        "slowest_tasks", "suggestions"}
KINDS = ("input", "output", "cache_read", "cache_write")
RULES = {"scale_out", "costliest_prompt", "review_rejections", "retries"}


def _run_plan(tmp_path: Path, plan: dict[str, Any], **env: str) -> dict[str, Any]:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = agency(tmp_path, "run", "--plan", str(path), **env)
    assert result.returncode == 0, result.stderr
    return status(tmp_path, project_id_of(result.stdout))


def _stats(tmp_path: Path, *args: str) -> dict[str, Any]:
    result = agency(tmp_path, "stats", *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("stats")
    return tmp_path, _run_plan(tmp_path, PLAN, AGENCY_OFFLINE_LATENCY="0.02")


def test_stats_over_an_embedded_run(clean_run: tuple[Path, dict[str, Any]]) -> None:
    tmp_path, project = clean_run
    data = _stats(tmp_path)
    assert set(data) == KEYS
    assert data["scope"] == {"project_id": None, "projects": 1, "tasks": len(project["tasks"])}
    assert data["window"]["seconds"] > 0
    used = Counter(t["agent_type"] for t in project["tasks"])
    queues = {q["queue"]: q for q in data["utilisation"]}
    assert set(queues) == set(used)
    for name, q in queues.items():
        assert q["tasks"] == used[name] and q["busy_seconds"] > 0, q
        assert 0 < q["utilisation"] <= 1 and q["mean_seconds"] <= q["p95_seconds"] + 1e-3
        assert q["mean_wait_seconds"] >= 0
        assert q["concurrency"] == Settings.model_fields["embedded_concurrency"].default
    # Tokens per agent type are the tasks' tokens (a clean run has no fenced-out attempt);
    # the orchestrator's are the rest of the project's.
    agents = {a["agent_type"]: a for a in data["tokens_by_agent_type"]}
    for agent in used:
        for kind in KINDS:
            assert agents[agent]["tokens"][kind] == sum(
                t["tokens"][kind] for t in project["tasks"] if t["agent_type"] == agent)
    for kind in KINDS:
        assert sum(a["tokens"][kind] for a in agents.values()) == project["tokens"][kind]
        assert sum(m["tokens"][kind] for m in data["tokens_by_model"]) == project["tokens"][kind]
    # A plan file skips analysis and decomposition.
    assert {r["role"] for r in data["tokens_by_role"]} == {"agent", "review", "integrate"}
    assert data["review_rejection_rate"]["rate"] == 0.0
    assert data["review_rejection_rate"]["reviews"] == len(project["tasks"])
    assert data["retry_rate"]["retries"] == 0 and data["retry_rate"]["rate"] == 0.0
    assert data["retry_rate"]["tasks"] == len(project["tasks"])
    assert len(data["slowest_tasks"]) == 5 and len(data["slowest_queues"]) == 5
    slowest = [t["seconds"] for t in data["slowest_tasks"]]
    assert slowest == sorted(slowest, reverse=True)
    assert data["suggestions"]
    for suggestion in data["suggestions"]:
        assert set(suggestion) == {"text", "action"} and suggestion["text"]
        assert suggestion["action"]["rule"] in RULES
    assert "costliest_prompt" in {s["action"]["rule"] for s in data["suggestions"]}


def test_stats_of_one_project_by_prefix_and_for_people(
        clean_run: tuple[Path, dict[str, Any]]) -> None:
    tmp_path, project = clean_run
    one = _stats(tmp_path, project["id"][:6])
    assert one["scope"]["project_id"] == project["id"]
    shown = agency(tmp_path, "stats", project["id"][:6], COLUMNS="160")
    assert shown.returncode == 0, shown.stderr
    for title in ("Utilisation per queue", "Tokens and cost per agent type",
                  "Tokens and cost per model", "Retries, review rejections and failed checks",
                  "Slowest queues", "Slowest tasks", "Suggestions"):
        assert title in shown.stdout
    assert "frontend_developer" in shown.stdout
    missing = agency(tmp_path, "stats", "zzzz")
    assert missing.returncode == 2 and "no project with id 'zzzz'" in missing.stderr


def test_stats_asks_the_orchestrator_offline(clean_run: tuple[Path, dict[str, Any]]) -> None:
    tmp_path, project = clean_run
    data = _stats(tmp_path, "--llm")
    advice = data["optimization"]
    for key in ("agent_utilization", "token_efficiency", "task_parallelization",
                "bottlenecks", "prompt_optimization"):
        assert advice[key] and all(isinstance(line, str) and line for line in advice[key]), key
    assert advice["usage"]["model"] == "offline" and advice["usage"]["calls"] == 1
    assert any("frontend_developer" in line or "backend_developer" in line
               for line in advice["agent_utilization"] + advice["token_efficiency"])
    # The call belongs to no project: the project's ledger is as it was.
    assert status(tmp_path, project["id"])["tokens"] == project["tokens"]
    shown = agency(tmp_path, "stats", "--llm", COLUMNS="160")
    assert shown.returncode == 0 and "Orchestrator's advice: bottlenecks" in shown.stdout


def test_a_rejected_review_shows_in_the_rejection_rate(tmp_path: Path) -> None:
    project = _run_plan(tmp_path, ODD)
    data = _stats(tmp_path, project["id"])
    rates = {r["agent_type"]: r for r in data["review_rejection_rate"]["by_agent_type"]}
    assert rates["project_manager"] == {"agent_type": "project_manager", "revise": 1,
                                        "reviews": 2, "rate": 0.5}
    assert rates["content_writer"]["rate"] == 0.0
    assert data["review_rejection_rate"]["rate"] > 0
    (rejected,) = [s for s in data["suggestions"]
                   if s["action"]["rule"] == "review_rejections"]
    assert rejected["text"] == ("reviews of project_manager are rejected 50% of the time "
                                "(1 of 2): tighten its brief")


def test_status_shows_short_ids_to_retry_with(clean_run: tuple[Path, dict[str, Any]]) -> None:
    tmp_path, project = clean_run
    shown = agency(tmp_path, "status", project["id"], COLUMNS="200")
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.splitlines()
    for task in project["tasks"]:
        assert any(f" {task['id'][:8]} " in row and task["title"] in row for row in rows)


def scrape(url: str, process: subprocess.Popen[str], timeout: float = 30) -> str:
    """The metrics text, once the exporter answers."""
    text: list[str] = []

    def answered() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                text.append(response.read().decode())
                return True
        except (urllib.error.URLError, ConnectionError):
            return False
    wait_until(answered, f"the exporter answering at {url}", timeout, every=0.1,
               alive=lambda: None if process.poll() is None else f"code {process.returncode}")
    return text[0]


@pytest.fixture
def exporter(clean_run: tuple[Path, dict[str, Any]]) -> Iterator[str]:
    tmp_path, _ = clean_run
    port = free_port()
    process = subprocess.Popen([*AGENCY, "metrics", "--port", str(port)], cwd=tmp_path,
                               env=agency_env(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        yield scrape(f"http://127.0.0.1:{port}/metrics", process)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def test_metrics_match_status(exporter: str, clean_run: tuple[Path, dict[str, Any]]) -> None:
    _, project = clean_run
    got = samples(exporter)
    projects = {labels["status"]: value for labels, value in got["agency_projects"]}
    assert projects == {**dict.fromkeys(projects, 0.0), "completed": 1.0}
    assert len(projects) == len(ProjectStatus)
    tasks = Counter((t["agent_type"], t["status"]) for t in project["tasks"])
    shown = {(labels["agent_type"], labels["status"]): value
             for labels, value in got["agency_tasks"]}
    assert {key: value for key, value in shown.items() if value} == tasks
    assert len(shown) == len(AgentType) * len(TaskStatus)  # zeros too: no gaps in a query
    for kind in KINDS:
        assert sum(v for labels, v in got["agency_tokens_total"]
                   if labels["kind"] == kind) == project["tokens"][kind]
        for agent in {t["agent_type"] for t in project["tasks"]}:
            assert sum(v for labels, v in got["agency_tokens_total"]
                       if labels["kind"] == kind and labels["agent_type"] == agent) == sum(
                t["tokens"][kind] for t in project["tasks"] if t["agent_type"] == agent)
    assert sum(v for _, v in got["agency_cost_usd_total"]) == pytest.approx(project["cost_usd"])
    counts = {labels["agent_type"]: v for labels, v in got["agency_task_duration_seconds_count"]}
    assert counts == dict(Counter(t["agent_type"] for t in project["tasks"]))
    # Embedded, there is no broker: no queue metrics.
    assert "agency_queue_depth" not in got and "agency_broker_up" not in got


def test_metrics_refuses_a_port_in_use(clean_run: tuple[Path, dict[str, Any]]) -> None:
    tmp_path, _ = clean_run
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = agency(tmp_path, "metrics", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 2 and "cannot listen on 127.0.0.1:" in result.stderr


def test_statistics_and_metrics_read_both_databases(store: Store) -> None:
    """The same numbers from SQLite (times as text) and PostgreSQL (timestamptz, numeric)."""
    pid, ids = _project(store, {1: [0]}, 3)
    sched = Scheduler(store)
    first = start(sched, ids[0])
    store.record_usage(pid, first, LedgerEntry(role=Role.AGENT, model="m", tokens=Tokens(
        input=10, output=5, thinking=2), cost_usd=0.5, latency_ms=100))
    store.note(pid, ids[0], "retry", "model call attempt 1 failed (529)")
    sched.complete_task(first, OUT)
    store.record_usage(pid, None, LedgerEntry(role=Role.ANALYZE, model="m",
                                             tokens=Tokens(input=7), cost_usd=0.25))
    for scope in (None, pid):
        data = collect(store, scope, {"ux_designer": 2}).to_json()
        assert data["scope"]["tasks"] == 3 and data["scope"]["projects"] == 1
        queues = {q["queue"]: q for q in data["utilisation"]}
        assert queues["ux_designer"]["tasks"] == 1 and queues["ux_designer"]["concurrency"] == 2
        agents = {a["agent_type"]: a for a in data["tokens_by_agent_type"]}
        assert agents["ux_designer"]["tokens"]["input"] == 10
        assert agents["ux_designer"]["tokens"]["thinking"] == 2
        assert agents["ux_designer"]["cost_per_task"] == 0.5
        assert agents["orchestrator"]["tokens"]["input"] == 7
        retried = {r["agent_type"]: r for r in data["retry_rate"]["by_agent_type"]}
        assert retried["ux_designer"] == {"agent_type": "ux_designer", "retries": 1,
                                          "tasks": 1, "rate": 1.0}
    names = {m.name for m in AgencyCollector(store).collect()}
    assert names == {"agency_store_up", "agency_projects", "agency_tasks", "agency_tokens",
                     "agency_cost_usd", "agency_model_calls", "agency_task_duration_seconds"}
