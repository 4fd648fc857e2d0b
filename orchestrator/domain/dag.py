"""The dependency graph: validation, critical path, priorities and series-parallel structure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from orchestrator.domain.constants import MAX_PLAN_TASKS, AgentType, TaskPriority
from orchestrator.domain.errors import PlanError
from orchestrator.domain.models import Plan

_AGENT_IDS = frozenset(a.value for a in AgentType)


@dataclass(frozen=True)
class Graph:
    """A validated plan graph: `deps[i]` are the indices task i depends on."""

    deps: tuple[tuple[int, ...], ...]
    weights: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.deps)

    def successors(self) -> list[list[int]]:
        succ: list[list[int]] = [[] for _ in self.deps]
        for node, parents in enumerate(self.deps):
            for parent in parents:
                succ[parent].append(node)
        return succ

    def topological_order(self) -> list[int]:
        """Kahn's order, lowest index first among ready nodes (deterministic)."""
        indegree = [len(d) for d in self.deps]
        succ = self.successors()
        ready = deque(i for i, n in enumerate(indegree) if n == 0)
        order: list[int] = []
        while ready:
            node = ready.popleft()
            order.append(node)
            for nxt in succ[node]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        return order

    def ancestors(self) -> list[int]:
        """Transitive ancestors of every node, as bit masks."""
        anc = [0] * self.size
        for node in self.topological_order():
            for parent in self.deps[node]:
                anc[node] |= anc[parent] | (1 << parent)
        return anc


def _label(plan: Plan, index: int) -> str:
    return f"task {index} ({plan.tasks[index].title!r})"


def _check_task(plan: Plan, index: int) -> None:
    task, size = plan.tasks[index], len(plan.tasks)
    if task.agent_type not in _AGENT_IDS:
        known = ", ".join(sorted(_AGENT_IDS))
        raise PlanError(
            f"{_label(plan, index)}: unknown agent type {task.agent_type!r} (known: {known})"
        )
    seen: set[int] = set()
    for dep in task.dependencies:
        if dep == index:
            raise PlanError(f"{_label(plan, index)} depends on itself")
        if not 0 <= dep < size:
            raise PlanError(
                f"{_label(plan, index)} depends on task {dep}, which does not exist "
                f"(valid indices are 0 to {size - 1})"
            )
        if dep in seen:
            raise PlanError(f"{_label(plan, index)} lists dependency {dep} more than once")
        seen.add(dep)


def _check_advisory(plan: Plan) -> None:
    size = len(plan.tasks)
    fields = {
        "execution_order": plan.execution_order,
        "critical_path": plan.critical_path,
        "parallel_groups": [i for group in plan.parallel_groups for i in group],
    }
    for name, indices in fields.items():
        bad = [i for i in indices if not 0 <= i < size]
        if bad:
            raise PlanError(f"{name} refers to task {bad[0]}, which does not exist")


def find_cycle(deps: tuple[tuple[int, ...], ...]) -> list[int] | None:
    """A dependency cycle as a list of indices (first == last), or None."""
    state = [0] * len(deps)  # 0 new, 1 on stack, 2 done
    for root in range(len(deps)):
        if state[root]:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path: list[int] = []
        while stack:
            node, pos = stack.pop()
            if pos == 0:
                state[node] = 1
                path.append(node)
            if pos < len(deps[node]):
                stack.append((node, pos + 1))
                nxt = deps[node][pos]
                if state[nxt] == 1:
                    return [*path[path.index(nxt) :], nxt]
                if state[nxt] == 0:
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def validate_plan(plan: Plan) -> Graph:
    """Check every graph rule and name the offending item; return the graph."""
    if not plan.tasks:
        raise PlanError("the plan has no tasks")
    if len(plan.tasks) > MAX_PLAN_TASKS:
        raise PlanError(f"the plan has {len(plan.tasks)} tasks; at most {MAX_PLAN_TASKS} allowed")
    for index in range(len(plan.tasks)):
        _check_task(plan, index)
    _check_advisory(plan)
    deps = tuple(tuple(t.dependencies) for t in plan.tasks)
    cycle = find_cycle(deps)
    if cycle:
        # deps point backwards in time: reverse so the message reads in execution order.
        chain = " -> ".join(_label(plan, i) for i in reversed(cycle))
        raise PlanError(f"dependency cycle: {chain}")
    return Graph(deps=deps, weights=tuple(t.estimated_tokens for t in plan.tasks))


@dataclass(frozen=True)
class Schedule:
    """Critical-path analysis with estimated tokens as the duration proxy."""

    critical_path: tuple[int, ...]
    length: int
    slack: tuple[int, ...]

    def priority(self, index: int) -> TaskPriority:
        """Critical path first; then by how little slack a task has."""
        ratio = self.slack[index] / self.length if self.length else 0.0
        if self.slack[index] == 0:
            return TaskPriority.CRITICAL
        if ratio < 0.25:
            return TaskPriority.HIGH
        if ratio < 0.6:
            return TaskPriority.NORMAL
        return TaskPriority.LOW


def schedule(graph: Graph) -> Schedule:
    """Longest path by estimated tokens, and every task's slack against it."""
    order = graph.topological_order()
    succ = graph.successors()
    head = [0] * graph.size  # longest weighted path ending at the node, inclusive
    for node in order:
        head[node] = graph.weights[node] + max((head[p] for p in graph.deps[node]), default=0)
    tail = [0] * graph.size  # longest weighted path starting at the node, inclusive
    for node in reversed(order):
        tail[node] = graph.weights[node] + max((tail[s] for s in succ[node]), default=0)
    length = max(head)
    slack = tuple(length - (head[i] + tail[i] - graph.weights[i]) for i in range(graph.size))
    node = max(range(graph.size), key=lambda i: (head[i], -i))
    path = [node]
    while graph.deps[node]:
        node = max(graph.deps[node], key=lambda p: (head[p], -p))
        path.append(node)
    return Schedule(critical_path=tuple(reversed(path)), length=length, slack=slack)


# Series-parallel structure ------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    node: int


@dataclass(frozen=True)
class Series:
    parts: tuple[Shape, ...]


@dataclass(frozen=True)
class Parallel:
    parts: tuple[Shape, ...]


Shape = Leaf | Series | Parallel


def _components(graph: Graph, nodes: list[int]) -> list[list[int]]:
    members = set(nodes)
    neighbours: dict[int, set[int]] = {n: set() for n in nodes}
    for node in nodes:
        for parent in graph.deps[node]:
            if parent in members:
                neighbours[node].add(parent)
                neighbours[parent].add(node)
    seen: set[int] = set()
    parts: list[list[int]] = []
    for start in nodes:
        if start in seen:
            continue
        seen.add(start)
        queue, part = [start], []
        while queue:
            node = queue.pop()
            part.append(node)
            fresh = neighbours[node] - seen
            seen |= fresh
            queue.extend(fresh)
        parts.append(sorted(part))
    return parts


def _series_cut(nodes: list[int], order: list[int], anc: list[int]) -> int | None:
    """Smallest k such that every node of the prefix is an ancestor of every node after it."""
    ordered = [n for n in order if n in set(nodes)]
    prefix = 0
    for k in range(1, len(ordered)):
        prefix |= 1 << ordered[k - 1]
        if all(anc[r] & prefix == prefix for r in ordered[k:]):
            return k
    return None


def _shape(graph: Graph, nodes: list[int], order: list[int], anc: list[int]) -> Shape:
    if len(nodes) == 1:
        return Leaf(nodes[0])
    parts = _components(graph, nodes)
    if len(parts) > 1:
        return Parallel(tuple(_shape(graph, p, order, anc) for p in parts))
    ordered = [n for n in order if n in set(nodes)]
    cut = _series_cut(nodes, order, anc)
    if cut is None:
        # Not series-parallel: start the sources first, then the rest. Correct, but a node
        # may wait for a source it does not depend on (exact release by the store comes later).
        members = set(nodes)
        sources = [n for n in ordered if not members & set(graph.deps[n])]
        cut = len(sources)
        ordered = sources + [n for n in ordered if n not in set(sources)]
    head = _shape(graph, sorted(ordered[:cut]), order, anc)
    rest = _shape(graph, sorted(ordered[cut:]), order, anc)
    flat: list[Shape] = []
    for part in (head, rest):
        flat.extend(part.parts if isinstance(part, Series) else (part,))
    return Series(tuple(flat))


def series_parallel(graph: Graph) -> Shape:
    """The graph as nested series and parallel parts, ready to compile into canvas."""
    return _shape(graph, list(range(graph.size)), graph.topological_order(), graph.ancestors())


def implied_waits(shape: Shape, size: int) -> list[int]:
    """For each node, the mask of nodes the shape makes it wait for."""
    waits = [0] * size

    def walk(part: Shape, before: int) -> int:
        if isinstance(part, Leaf):
            waits[part.node] = before
            return 1 << part.node
        if isinstance(part, Parallel):
            done = 0
            for sub in part.parts:
                done |= walk(sub, before)
            return done
        acc = before
        members = 0
        for sub in part.parts:
            added = walk(sub, acc)
            acc |= added
            members |= added
        return members

    walk(shape, 0)
    return waits


def false_waits(graph: Graph, shape: Shape) -> list[tuple[int, int]]:
    """Pairs (node, other) where the shape makes node wait for a task it does not depend on."""
    anc = graph.ancestors()
    extra: list[tuple[int, int]] = []
    for node, mask in enumerate(implied_waits(shape, graph.size)):
        surplus = mask & ~anc[node]
        extra.extend((node, o) for o in range(graph.size) if surplus >> o & 1)
    return extra


# Units: exact scheduling of any graph ------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """Nodes launched together as one canvas.

    The root unit (head None) starts at dispatch; it holds the sources. Every other unit has a
    head whose dependencies the store counts down; every other member depends only on members,
    so the unit's canvas makes no task wait for anything but its own dependencies.
    """

    head: int | None
    members: tuple[int, ...]


def subgraph(graph: Graph, members: list[int]) -> Graph:
    """The induced subgraph, renumbered in the order of `members`."""
    index = {n: i for i, n in enumerate(members)}
    return Graph(deps=tuple(tuple(index[p] for p in graph.deps[n] if p in index)
                            for n in members),
                 weights=tuple(graph.weights[n] for n in members))


def cheap_joins(shape: Shape, flat_joins: bool = True) -> bool:
    """True when every join in the shape's canvas costs milliseconds.

    A parallel part followed by more work compiles to a chord. With a result backend that
    joins natively (a counter bumped by each header task: Redis, and the embedded in-memory
    cache) a chord whose header is flat, a group of single tasks, fires as its last task ends.
    A header with chains or groups inside is joined by polling (`join_native`, every 0.5 s; the
    counter also overcounts: "Chord counter incremented too many times"), and a backend without
    native joins polls every chord with `chord_unlock`. Such joins are left to the store, which
    releases a task the moment its last dependency completes.
    """
    match shape:
        case Leaf():
            return True
        case Parallel(parts=parts):
            return all(cheap_joins(p, flat_joins) for p in parts)
        case Series(parts=parts):
            for part in parts[:-1]:
                if isinstance(part, Parallel) and not (
                        flat_joins and all(isinstance(p, Leaf) for p in part.parts)):
                    return False
            return all(cheap_joins(p, flat_joins) for p in parts)


def fits_one_unit(graph: Graph, flat_joins: bool = True) -> bool:
    """True when one canvas can run the graph exactly, with joins that cost milliseconds."""
    shape = series_parallel(graph)
    return not false_waits(graph, shape) and cheap_joins(shape, flat_joins)


def units(graph: Graph, heads: frozenset[int] = frozenset(),
          flat_joins: bool = True) -> list[Unit]:
    """Cover the graph with exact units, growing each greedily in topological order.

    `heads` are nodes that also wait on work outside the graph (still running elsewhere): each
    heads a unit of its own, released by the store, and is never a member of another unit.
    `flat_joins`: whether the result backend joins a flat chord natively; see `cheap_joins`.
    """
    order = graph.topological_order()
    placed: set[int] = set()
    found: list[Unit] = []
    sources = [n for n in order if not graph.deps[n] and n not in heads]
    for head, start in [(None, sources), *((n, [n]) for n in order)]:
        if head is not None and head in placed:
            continue
        members = list(start)
        for node in order:
            if node in placed or node in members or not graph.deps[node] or node in heads:
                continue
            if set(graph.deps[node]) <= set(members) and fits_one_unit(
                    subgraph(graph, [*members, node]), flat_joins):
                members.append(node)
        placed.update(members)
        found.append(Unit(head=head, members=tuple(members)))
    return found
