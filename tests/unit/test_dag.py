"""Graph validation names the offender; structure and critical path are right."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from orchestrator.domain import dag
from orchestrator.domain.constants import MAX_PLAN_TASKS, TaskPriority
from orchestrator.domain.errors import PlanError
from orchestrator.domain.models import Plan
from tests.conftest import make_plan


def _exact(graph: dag.Graph) -> bool:
    """The graph's canvas makes no task wait for a task it does not depend on."""
    return not dag.false_waits(graph, dag.series_parallel(graph))


def _error(plan: Plan) -> str:
    with pytest.raises(PlanError) as info:
        dag.validate_plan(plan)
    return info.value.message


def test_empty_plan_is_refused() -> None:
    assert _error(Plan(tasks=[])) == "the plan has no tasks"


def test_too_many_tasks_is_refused() -> None:
    assert "at most" in _error(make_plan({}, MAX_PLAN_TASKS + 1))


def test_unknown_agent_type_names_task_and_type() -> None:
    plan = make_plan({}, 3, ["marketing", "marketing", "astrologer"])
    message = _error(plan)
    assert "task 2 ('Task 2')" in message and "'astrologer'" in message
    assert "qa_engineer" in message  # the known types are listed


def test_self_dependency() -> None:
    assert _error(make_plan({1: [1]}, 3)) == "task 1 ('Task 1') depends on itself"


@pytest.mark.parametrize("bad", [7, -1])
def test_dangling_dependency(bad: int) -> None:
    message = _error(make_plan({2: [0, bad]}, 3))
    assert message.startswith(f"task 2 ('Task 2') depends on task {bad}, which does not exist")


def test_duplicate_dependency() -> None:
    assert "lists dependency 0 more than once" in _error(make_plan({1: [0, 0]}, 2))


def test_cycle_is_named_in_execution_order() -> None:
    message = _error(make_plan({0: [2], 1: [0], 2: [1], 3: [0]}, 4))
    assert message == ("dependency cycle: task 0 ('Task 0') -> task 1 ('Task 1') -> "
                       "task 2 ('Task 2') -> task 0 ('Task 0')")


def test_two_node_cycle() -> None:
    assert _error(make_plan({0: [1], 1: [0]}, 2)).startswith("dependency cycle:")


def test_advisory_indices_must_exist() -> None:
    plan = make_plan({1: [0]}, 2).model_copy(update={"critical_path": [0, 5]})
    assert _error(plan) == "critical_path refers to task 5, which does not exist"


def test_critical_path_and_priorities() -> None:
    # 0 -> {1 (heavy), 2 (light)} -> 3
    plan = Plan.model_validate({"tasks": [
        {"title": "a", "agent_type": "ux_designer", "estimated_tokens": 1000},
        {"title": "b", "agent_type": "backend_developer", "dependencies": [0],
         "estimated_tokens": 9000},
        {"title": "c", "agent_type": "content_writer", "dependencies": [0],
         "estimated_tokens": 500},
        {"title": "d", "agent_type": "qa_engineer", "dependencies": [1, 2],
         "estimated_tokens": 1000}]})
    sched = dag.schedule(dag.validate_plan(plan))
    assert sched.critical_path == (0, 1, 3)
    assert sched.length == 11000
    assert sched.slack == (0, 0, 8500, 0)
    assert sched.priority(1) is TaskPriority.CRITICAL
    assert sched.priority(2) is TaskPriority.LOW


SHAPES = {
    "chain": ({1: [0], 2: [1]}, 3, "Series(Leaf0,Leaf1,Leaf2)"),
    "fan_out": ({1: [0], 2: [0], 3: [0]}, 4, "Series(Leaf0,Parallel(Leaf1,Leaf2,Leaf3))"),
    "fan_in": ({3: [0, 1, 2]}, 4, "Series(Parallel(Leaf0,Leaf1,Leaf2),Leaf3)"),
    "diamond": ({1: [0], 2: [0], 3: [1, 2]}, 4, "Series(Leaf0,Parallel(Leaf1,Leaf2),Leaf3)"),
    "independent": ({}, 2, "Parallel(Leaf0,Leaf1)"),
    "nested": ({1: [0], 2: [1], 3: [0], 4: [2, 3]}, 5,
               "Series(Leaf0,Parallel(Series(Leaf1,Leaf2),Leaf3),Leaf4)"),
}


def _render(shape: dag.Shape) -> str:
    if isinstance(shape, dag.Leaf):
        return f"Leaf{shape.node}"
    return f"{type(shape).__name__}({','.join(_render(p) for p in shape.parts)})"


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_series_parallel_shapes_are_exact(name: str) -> None:
    edges, size, expected = SHAPES[name]
    graph = dag.validate_plan(make_plan(edges, size))
    shape = dag.series_parallel(graph)
    assert _render(shape) == expected
    assert dag.false_waits(graph, shape) == []


def test_non_series_parallel_graph_never_starts_early() -> None:
    # The "N": 2 needs 0 and 1, 3 needs only 1.
    graph = dag.validate_plan(make_plan({2: [0, 1], 3: [1]}, 4))
    shape = dag.series_parallel(graph)
    assert dag.false_waits(graph, shape) == [(3, 0)]  # documented approximation


def _leaves(part: dag.Shape) -> list[int]:
    if isinstance(part, dag.Leaf):
        return [part.node]
    return [n for sub in part.parts for n in _leaves(sub)]


def _random_graphs(seed: int, count: int, most: int) -> Iterator[tuple[int, dag.Graph]]:
    """Random DAGs of 1 to `most` tasks, each with up to 3 dependencies."""
    rng = random.Random(seed)
    for _ in range(count):
        size = rng.randint(1, most)
        edges = {i: sorted(rng.sample(range(i), rng.randint(0, min(i, 3)))) for i in range(size)}
        yield size, dag.validate_plan(make_plan(edges, size))


def test_random_graphs_wait_for_every_ancestor() -> None:
    for size, graph in _random_graphs(7, 300, 12):
        shape = dag.series_parallel(graph)
        waits = dag.implied_waits(shape, size)
        assert sorted(_leaves(shape)) == list(range(size))  # every task exactly once
        for node, anc in enumerate(graph.ancestors()):
            assert waits[node] & anc == anc  # never before a dependency


def test_series_parallel_graph_is_one_unit() -> None:
    graph = dag.validate_plan(make_plan({1: [0], 2: [0], 3: [1, 2]}, 4))
    assert dag.units(graph) == [dag.Unit(head=None, members=(0, 1, 2, 3))]


def test_n_shape_gets_a_store_released_unit() -> None:
    graph = dag.validate_plan(make_plan({2: [0, 1], 3: [1]}, 4))
    assert dag.units(graph) == [dag.Unit(head=None, members=(0, 1, 2)),
                                dag.Unit(head=3, members=(3,))]


def test_nodes_that_wait_outside_the_graph_head_their_own_units() -> None:
    """Recovery: 1 and 2 also wait on work running elsewhere, so the store releases them."""
    graph = dag.validate_plan(make_plan({1: [0], 3: [1, 2]}, 4))
    found = dag.units(graph, frozenset({1, 2}))
    assert found[0] == dag.Unit(head=None, members=(0,))
    heads = {u.head: u.members for u in found[1:]}
    assert set(heads) <= {1, 2, 3} and 1 in heads and 2 in heads
    assert all(1 not in m and 2 not in m for h, m in heads.items() if h not in (1, 2))


def test_random_graphs_split_into_exact_units() -> None:
    for size, graph in _random_graphs(11, 200, 16):
        found = dag.units(graph)
        members = [n for u in found for n in u.members]
        assert sorted(members) == list(range(size))  # every task in exactly one unit
        assert found[0].head is None and all(u.head is not None for u in found[1:])
        for unit in found:
            inside = set(unit.members)
            for node in unit.members:
                if node != unit.head and graph.deps[node]:
                    assert set(graph.deps[node]) <= inside  # only the head waits outside
            assert _exact(dag.subgraph(graph, list(unit.members)))


def test_random_graphs_join_only_where_a_join_is_cheap() -> None:
    """With a native join, chord headers are flat; without one (embedded), there is no chord."""
    for flat in (True, False):
        for size, graph in _random_graphs(13, 150, 14):
            found = dag.units(graph, flat_joins=flat)
            assert sorted(n for u in found for n in u.members) == list(range(size))
            for unit in found:
                shape = dag.series_parallel(dag.subgraph(graph, list(unit.members)))
                assert dag.cheap_joins(shape, flat)
                assert _exact(dag.subgraph(graph, list(unit.members)))


def test_a_join_after_chains_is_released_by_the_store() -> None:
    """a -> (b -> c | d -> e) -> f: the chord header would hold chains, which Redis joins by
    polling every 0.5 s; f is released by the store instead. A flat join stays a chord."""
    graph = dag.validate_plan(make_plan({1: [0], 2: [1], 3: [0], 4: [3], 5: [2, 4]}, 6))
    assert dag.units(graph) == [dag.Unit(head=None, members=(0, 1, 3, 2, 4)),
                                dag.Unit(head=5, members=(5,))]
    flat = dag.validate_plan(make_plan({1: [0], 2: [0], 3: [1, 2]}, 4))
    assert dag.units(flat) == [dag.Unit(head=None, members=(0, 1, 2, 3))]
    assert dag.units(flat, flat_joins=False) == [dag.Unit(head=None, members=(0, 1, 2)),
                                                 dag.Unit(head=3, members=(3,))]
    assert not dag.cheap_joins(dag.series_parallel(flat), flat_joins=False)
