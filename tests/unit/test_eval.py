"""`agency eval`'s rules from hand-made records: each failure label fires when its definition
holds and not otherwise, the summary's arithmetic, the change against a baseline, and every
bad suite or baseline refused with one line (exit 2) before anything runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agency_offline.classify import analyze
from orchestrator.domain.constants import AgentType, ProjectStatus, ProjectType, TaskPriority
from orchestrator.domain.constants import TaskStatus as T
from orchestrator.domain.errors import BadInput
from orchestrator.domain.models import (
    CallRecord,
    CheckResult,
    CriterionCheck,
    LedgerEntry,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
    Tokens,
)
from orchestrator.domain.settings import Settings
from orchestrator.interfaces.cli import cli, evaluate
from orchestrator.llm.structured import TURNS_UP
from orchestrator.services.evaluation import (
    Caps,
    CheckTally,
    Facts,
    Label,
    Report,
    RunResult,
    SuiteRequest,
    build_report,
    compare,
    fresh_settings,
    labels,
    load_baseline,
    load_suite,
    measure,
    summarize,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
CAPS = Caps(review_rounds=2, model_calls=60)
OK = CheckResult(path="site/index.html", check="html", ok=True, detail="loaded")
BAD = CheckResult(path="api/app.py", check="python-compile", ok=False, detail="SyntaxError")
NONE = CheckResult(path="notes.md", check="unchecked", ok=None, detail="no checker")
GATE = "check python-compile of api/app.py"


def project(status: ProjectStatus = ProjectStatus.COMPLETED, **more: Any) -> ProjectRecord:
    return ProjectRecord(id="p1", request="Build a website", project_type=ProjectType.WEBSITE,
                         complexity=None, status=status, budget_tokens=1000, analysis=None,
                         plan=None, output_dir="/tmp/x", error=more.pop("error", None),
                         created_at=AT, updated_at=AT, finished_at=AT, **more)


def task(index: int = 0, status: T = T.COMPLETED, **more: Any) -> TaskRecord:
    return TaskRecord(id=f"t{index}", project_id="p1", index=index, title=f"Task {index}",
                      description="", agent_type=AgentType.FRONTEND_DEVELOPER,
                      priority=TaskPriority.NORMAL, estimated_tokens=1, deliverables=[],
                      acceptance_criteria=[], on_critical_path=False, status=status,
                      attempts=more.pop("attempts", 1), pending_deps=0, worker=None,
                      output=None, error=more.pop("error", None), queued_at=None,
                      started_at=None, finished_at=None, **more)


def verdict(round_: int, said: str, unmet: tuple[str, ...] = (),
            checks: tuple[CheckResult, ...] = ()) -> ReviewRecord:
    return ReviewRecord(reviewer="qa_engineer", verdict=said, round=round_, attempt=1,
                        notes=[CriterionCheck(criterion=c, met=False) for c in unmet],
                        summary="", at=AT, checks=list(checks))


def call(stop: str = "end_turn") -> CallRecord:
    return CallRecord(at=AT, entry=LedgerEntry(role="agent", model="m", stop_reason=stop,
                                               tokens=Tokens(input=10, output=5)))


def facts(tasks: list[TaskRecord] | None = None,
          reviews: dict[str, list[ReviewRecord]] | None = None, *,
          of: ProjectRecord | None = None, calls: list[CallRecord] | None = None,
          events: list[dict[str, Any]] | None = None) -> Facts:
    return Facts(project=of or project(), tasks=tasks if tasks is not None else [task()],
                 reviews=reviews or {}, calls=calls or [call()], events=events or [])


def fired(found: Facts, caps: Caps = CAPS) -> set[str]:
    return set(labels(found, caps))


def test_a_clean_run_has_no_label() -> None:
    clean = facts(reviews={"t0": [verdict(1, "pass", checks=(OK, NONE))]})
    assert labels(clean, CAPS) == {}


def test_step_repetition_a_second_attempt() -> None:
    found = labels(facts([task(attempts=2)]), CAPS)
    assert found == {"step-repetition": ["task 0 'Task 0' took 2 attempts"]}


def test_step_repetition_a_revision_sent_back_for_the_same_criteria() -> None:
    same = facts(reviews={"t0": [verdict(1, "revise", ("menu",)),
                                 verdict(2, "revise", ("menu",)), verdict(3, "pass")]})
    assert labels(same, CAPS)["step-repetition"] == [
        "task 0 'Task 0': round 2 sent it back for the same 1 criteria as round 1"]
    moved = facts(reviews={"t0": [verdict(1, "revise", ("menu",)),
                                  verdict(2, "revise", ("prices",)), verdict(3, "pass")]})
    assert "step-repetition" not in fired(moved)
    fixed = facts(reviews={"t0": [verdict(1, "revise", ("menu",)), verdict(2, "pass")]})
    assert "step-repetition" not in fired(fixed)


def test_done_not_done_completed_with_a_failed_check_open() -> None:
    # Rounds ran out with the check still failing: the task completed with it open.
    rounds = [verdict(n, "revise", (GATE,), (BAD,)) for n in (1, 2, 3)]
    found = labels(facts(reviews={"t0": rounds}), CAPS)
    assert found["done-not-done"] == ["task 0 'Task 0' completed with 1 failed checks open"]
    # The same checks on a task that did not complete: not reported done.
    assert "done-not-done" not in fired(facts([task(status=T.FAILED)], {"t0": rounds}))
    # Fixed in the next round: nothing open.
    later = facts(reviews={"t0": [verdict(1, "revise", (GATE,), (BAD,)),
                                  verdict(2, "pass", (), (OK,))]})
    assert "done-not-done" not in fired(later)


def test_done_not_done_a_pass_with_a_failed_check() -> None:
    passed = facts(reviews={"t0": [verdict(1, "pass", (), (BAD,)), verdict(2, "pass")]})
    assert labels(passed, CAPS)["done-not-done"] == [
        f"task 0 'Task 0': round 1 passed with {GATE} failed"]


def test_verification_failed_the_gate_alone_sent_it_back() -> None:
    gated = facts(reviews={"t0": [verdict(1, "revise", (GATE,), (BAD,)),
                                  verdict(2, "pass", (), (OK,))]})
    assert labels(gated, CAPS) == {"verification-failed": [
        f"task 0 'Task 0': round 1 was sent back by its checks alone ({GATE})"]}
    # The reviewer's own criteria too: not the checks alone (and nothing left open).
    mixed = facts(reviews={"t0": [verdict(1, "revise", (GATE, "menu"), (BAD,)),
                                  verdict(2, "pass", (), (OK,))]})
    assert "verification-failed" not in fired(mixed)


def test_verification_failed_a_failed_check_left_open() -> None:
    left = facts([task(status=T.FAILED)], {"t0": [verdict(1, "revise", ("menu",), (BAD,))]})
    assert labels(left, CAPS)["verification-failed"] == [
        f"task 0 'Task 0': {GATE} still fails"]
    assert "verification-failed" not in fired(facts(reviews={"t0": [
        verdict(1, "pass", (), (OK, NONE))]}))


def test_limit_hit_each_limit_and_none() -> None:
    assert "limit-hit" not in fired(facts(reviews={"t0": [verdict(1, "revise", ("a",)),
                                                          verdict(2, "pass")]}))
    budget = facts(of=project(ProjectStatus.BUDGET_EXHAUSTED))
    assert labels(budget, CAPS)["limit-hit"] == ["the token budget ran out"]
    resumed = facts(events=[{"kind": "project", "to_status": "budget_exhausted"}])
    assert labels(resumed, CAPS)["limit-hit"] == ["the token budget ran out"]
    calls = facts([task(model_calls=60)])
    assert labels(calls, CAPS)["limit-hit"] == ["task 0 'Task 0' made its 60 model calls (the cap)"]
    rounds = facts(reviews={"t0": [verdict(n, "revise", (f"c{n}",)) for n in (1, 2, 3)]})
    assert labels(rounds, CAPS)["limit-hit"] == [
        "task 0 'Task 0': its 2 review rounds ran out while it was still revise"]
    cut = facts(calls=[call(), call("max_tokens")])
    assert labels(cut, CAPS)["limit-hit"] == ["1 answers cut at max_tokens"]
    turns = facts([task(status=T.FAILED, error=f"the model's agent_output was not valid after "
                        f"3 attempts: {TURNS_UP}")])
    assert labels(turns, CAPS)["limit-hit"] == [
        "task 0 'Task 0': tools called after its turns were up"]


def test_not_completed() -> None:
    ended = facts(of=project(ProjectStatus.NEEDS_ATTENTION, error="1 task failed"))
    assert labels(ended, CAPS) == {"not-completed": ["ended needs_attention: 1 task failed"]}
    assert "not-completed" not in fired(facts())


def run(id_: str, status: str = "completed", passed: int = 1, total: int = 2,
        **more: Any) -> RunResult:
    return RunResult(id=id_, request=more.pop("request", f"request {id_}"), status=status,
                     checks=CheckTally(passed=passed, failed=total - passed, total=total),
                     **more)


def test_measure_reads_the_store_records() -> None:
    item = SuiteRequest(id="site", request="Build a website", project_type=ProjectType.WEBSITE)
    reviews = {"t0": [verdict(1, "revise", (GATE,), (BAD,)), verdict(2, "pass", (), (OK, NONE))],
               "t1": [verdict(1, "pass", (), (OK,))]}
    found = measure(item, facts([task(0), task(1)], reviews, calls=[call(), call(), call()],
                                of=project(cost_usd=0.1234567)), CAPS, 12.34567)
    assert found.checks == CheckTally(passed=2, failed=0, unchecked=1, total=3)
    assert (found.review_rounds, found.model_calls, found.tasks) == (3, 3, 2)
    assert (found.cost_usd, found.seconds, found.type_matched) == (0.123457, 12.346, True)
    assert found.labels == [Label.VERIFICATION_FAILED]


def test_summary_totals_and_means() -> None:
    runs = [run("a", passed=3, total=4, review_rounds=2, cost_usd=0.5, seconds=3.0,
                model_calls=10, labels=[Label.LIMIT_HIT], project_type=ProjectType.WEBSITE,
                planned_type=ProjectType.WEBSITE),
            run("b", "needs_attention", passed=0, total=1, review_rounds=1, cost_usd=0.25,
                seconds=1.5, model_calls=5, labels=[Label.LIMIT_HIT, Label.NOT_COMPLETED],
                project_type=ProjectType.WEBSITE, planned_type=ProjectType.CUSTOM),
            run("c", passed=0, total=0)]
    s = summarize(runs)
    assert (s.runs, s.completed, s.types_matched, s.types_expected) == (3, 2, 1, 2)
    assert s.checks == CheckTally(passed=3, failed=2, unchecked=0, total=5)
    assert (s.review_rounds, s.cost_usd, s.seconds, s.model_calls) == (3, 0.75, 4.5, 15)
    assert (s.mean_review_rounds, s.mean_cost_usd, s.mean_seconds, s.mean_model_calls) == (
        1.0, 0.25, 1.5, 5.0)
    assert s.labels == {"step-repetition": 0, "done-not-done": 0, "verification-failed": 0,
                        "limit-hit": 2, "not-completed": 1}
    assert summarize([]).mean_cost_usd == 0.0


def _report(*runs: RunResult) -> Report:
    suite = load_suite(None)
    return build_report(suite, {"provider": "offline", "measures": "the pipeline"}, "", list(runs))


def test_baseline_change_per_run_matched_by_id_then_request() -> None:
    before = _report(run("a", passed=1, total=2, cost_usd=0.5, model_calls=10,
                         labels=[Label.LIMIT_HIT]),
                     run("old-id", request="same words", status="needs_attention", passed=0,
                         total=1, labels=[Label.NOT_COMPLETED]))
    now = _report(run("a", passed=3, total=2, cost_usd=0.5, model_calls=12),
                  run("b", request="same words", passed=1, total=1),
                  run("new"))
    change = compare(now, before)
    a, b, new = change.runs
    assert a.baseline_id == "a" and a.change["checks_passed"] == 2
    assert a.change["cost_usd"] == 0 and a.change["model_calls"] == 2
    assert a.labels_removed == ["limit-hit"] and a.labels_added == []
    assert b.baseline_id == "old-id" and b.status_before == "needs_attention"
    assert b.change["completed"] == 1 and b.labels_removed == ["not-completed"]
    assert new.baseline_id is None and new.change == {}
    assert change.summary["completed"] == 2 and change.summary["checks_passed"] == 4
    assert change.labels["limit-hit"] == -1 and change.labels["not-completed"] == -1


def test_the_table_shows_the_changes() -> None:
    before = _report(run("a", passed=1, total=2, cost_usd=0.5))
    now = _report(run("a", passed=3, total=2, cost_usd=0.5))
    rows = evaluate._rows(now, compare(now, before))
    assert rows[0][3] == "3/2 (+2)" and rows[0][5] == "$0.5000 (±0)"
    assert rows[-1][3] == "3/2 (+2)" and rows[-1][2] == "1/1 completed (±0)"
    assert evaluate.signed(-0.25, "$", 4) == "(-$0.2500)"
    assert evaluate.signed(1.26, "s", 1) == "(+1.3s)"


def test_a_baseline_is_read_back_from_its_json(tmp_path: Path) -> None:
    saved = _report(run("a"))
    path = tmp_path / "base.json"
    path.write_text(saved.model_dump_json(), encoding="utf-8")
    assert load_baseline(path) == saved


def test_the_default_suite_covers_every_type_as_the_offline_planner_finds_them() -> None:
    suite = load_suite(None)
    assert len(suite.requests) >= 8
    assert {r.project_type for r in suite.requests} == set(ProjectType)
    for item in suite.requests:
        assert analyze(item.request).project_type is item.project_type, item.id


def test_fresh_state_only_when_embedded_without_a_database(tmp_path: Path) -> None:
    own = fresh_settings(Settings(_env_file=None), tmp_path)
    assert own is not None and own.effective_database_url == f"sqlite:///{tmp_path}/agency.db"
    assert own.output_dir == tmp_path / "out"
    assert fresh_settings(Settings(_env_file=None, database_url="sqlite:///x.db"),
                          tmp_path) is None
    assert fresh_settings(Settings(_env_file=None, broker_url="redis://h:6379/0"),
                          tmp_path) is None


BAD_SUITES: dict[str, tuple[bytes | None, str]] = {
    "missing.json": (None, "does not exist"),
    "latin1.json": ('{"requests": [{"id": "a", "request": "caf\xe9"}]}'.encode("latin-1"),
                    "is not UTF-8 text"),
    "broken.json": (b'{"requests": [', "is not valid JSON"),
    "broken.yaml": (b"requests: [a: {", "is not valid YAML"),
    "list.json": (b"[]", "must hold an object with a 'requests' list"),
    "empty.json": (b'{"name": "x", "requests": []}', "requests: List should have at least 1"),
    "twice.json": (b'{"requests": [{"id": "a", "request": "x"}, {"id": "a", "request": "y"}]}',
                   "the id 'a' is used twice"),
    "kind.json": (b'{"requests": [{"id": "a", "request": "x", "project_type": "rocket"}]}',
                  "requests.0.project_type: Input should be"),
    "blank.json": (b'{"requests": [{"id": "a", "request": "  "}]}', "the request is empty"),
    "extra.json": (b'{"requests": [{"id": "a", "request": "x", "typo": 1}]}',
                   "requests.0.typo: Extra inputs"),
}


@pytest.mark.parametrize("name", sorted(BAD_SUITES))
def test_bad_suites_exit_2_with_one_line_and_run_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    body, said = BAD_SUITES[name]
    path = tmp_path / name
    if body is not None:
        path.write_bytes(body)
    with pytest.raises(BadInput, match=said):
        load_suite(path)

    def nothing_runs() -> None:
        raise AssertionError("a runtime was made for a bad suite")

    monkeypatch.setattr(evaluate, "evaluation_runtime", nothing_runs)
    result = CliRunner().invoke(cli, ["eval", "--suite", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agency: error: ") and said in lines[0]


@pytest.mark.parametrize(("body", "said"), [
    (None, "baseline file .* does not exist"),
    (b"\xff\xfe", "is not UTF-8 text"),
    (b"{", "is not valid JSON"),
    (b'{"suite": "s"}', "is not `agency eval --json` output: model: Field required"),
    (b"[1]", "must hold the object"),
])
def test_bad_baselines_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              body: bytes | None, said: str) -> None:
    path = tmp_path / "base.json"
    if body is not None:
        path.write_bytes(body)
    with pytest.raises(BadInput, match=said):
        load_baseline(path)
    monkeypatch.setattr(evaluate, "evaluation_runtime", None)
    result = CliRunner().invoke(cli, ["eval", "--baseline", str(path)])
    assert result.exit_code == 2 and "agency: error: baseline file" in result.stderr
