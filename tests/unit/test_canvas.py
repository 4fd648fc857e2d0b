"""Plans compile to chains, groups and chords carrying ids and titles only."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from celery import Celery
from celery.canvas import Signature, _chain, chord, group

from orchestrator.domain import dag
from orchestrator.domain.constants import AgentType, TaskPriority, TaskStatus
from orchestrator.domain.models import TaskRecord
from orchestrator.services.canvas import compile_shape, integration_signature, unit_canvas
from tests.conftest import make_plan

app = Celery("canvas-test", set_as_current=False)


def _leaf(node: int) -> Signature:
    return app.signature(f"t{node}", immutable=True)


def _canvas(edges: dict[int, list[int]], size: int) -> Signature:
    graph = dag.validate_plan(make_plan(edges, size))
    return compile_shape(dag.series_parallel(graph), _leaf)


def _names(sig: Signature) -> object:
    if isinstance(sig, _chain):
        return ["chain", *(_names(s) for s in sig.tasks)]
    if isinstance(sig, chord):
        return ["chord", _names(group(sig.tasks)), _names(sig.body)]
    if isinstance(sig, group):
        return ["group", *(_names(s) for s in sig.tasks)]
    return sig.task


def test_chain() -> None:
    assert _names(_canvas({1: [0], 2: [1]}, 3)) == ["chain", "t0", "t1", "t2"]


def test_fan_out() -> None:
    assert _names(_canvas({1: [0], 2: [0]}, 3)) == ["chain", "t0", ["group", "t1", "t2"]]


def test_fan_in_is_a_chord() -> None:
    sig = _canvas({2: [0, 1]}, 3)
    assert _names(sig) == ["chord", ["group", "t0", "t1"], "t2"]


def test_diamond() -> None:
    sig = _canvas({1: [0], 2: [0], 3: [1, 2]}, 4)
    assert _names(sig) == ["chain", "t0", ["chord", ["group", "t1", "t2"], "t3"]]


def test_chain_inside_a_group() -> None:
    sig = _canvas({1: [0], 2: [1], 3: [0], 4: [2, 3]}, 5)
    assert _names(sig) == ["chain", "t0",
                          ["chord", ["group", ["chain", "t1", "t2"], "t3"], "t4"]]


def _record(index: int, agent: AgentType) -> TaskRecord:
    stamp = datetime.now(UTC)
    return TaskRecord(id=f"id-{index}", project_id="p1", index=index, title=f"Title {index}",
                      description="secret description", agent_type=agent,
                      priority=TaskPriority.NORMAL, estimated_tokens=1000, deliverables=[],
                      acceptance_criteria=[], on_critical_path=False, status=TaskStatus.PENDING,
                      attempts=0, pending_deps=0, worker=None, output=None, error=None,
                      queued_at=stamp, started_at=None, finished_at=None)


def test_unit_canvas_carries_ids_and_titles_only() -> None:
    tasks = [_record(0, AgentType.UX_DESIGNER), _record(1, AgentType.FRONTEND_DEVELOPER)]
    graph = dag.validate_plan(make_plan({1: [0]}, 2))
    sig = unit_canvas(app, "p1", tasks, dag.series_parallel(graph))
    flat = json.loads(json.dumps(sig))  # JSON-serializable, as the broker will carry it
    text = json.dumps(flat)
    assert "secret description" not in text
    assert _names(sig) == ["chain", "agency.agent.ux_designer",
                           "agency.agent.frontend_developer"]
    assert integration_signature(app, "p1").task == "agency.orchestrator.integrate"
    first = sig.tasks[0]
    assert first.kwargs == {"project_id": "p1", "task_id": "id-0", "title": "Title 0"}
    assert first.immutable


def test_routes_send_each_agent_to_its_own_queue() -> None:
    import celeryconfig

    for agent in AgentType:
        route = celeryconfig.route_task(f"agency.agent.{agent.value}", (), {}, {})
        assert route["queue"] == agent.value
    assert celeryconfig.route_task("agency.orchestrator.plan", (), {}, {})["queue"] == \
        "orchestrator"
    assert celeryconfig.accept_content == ["json"]
