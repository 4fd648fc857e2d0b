"""Moving ready work to the queues: dispatch, release and recovery are one path.

A set of tasks (a new plan, or what a fault left: a dead worker's task, messages the broker
lost, a retried task) is sent together with everything downstream of it as exact launch
units: chains, groups and chords where the graph is series-parallel, and heads that the store
releases when their last dependency completes. Publishing is best effort: every row records
the broker epoch of the message that carries it, and the reconciler sends again whatever a
lost or restarted broker no longer holds.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable

from celery import Celery
from celery.canvas import Signature

from orchestrator.agent.runtime import Runtime
from orchestrator.domain import dag
from orchestrator.domain.constants import (
    PLAN_PRIORITY,
    AgentType,
    ProjectStatus,
    TaskStatus,
    redis_client_options,
)
from orchestrator.domain.lifecycle import HELD, NOT_STARTED
from orchestrator.domain.models import TaskRecord
from orchestrator.services import warmup
from orchestrator.services.canvas import (
    agent_signature,
    integration_signature,
    native_joins,
    plan_signature,
    review_signature,
    unit_canvas,
)
from orchestrator.state.transitions import Completion

log = logging.getLogger(__name__)

ROOT_UNIT = "root"
EPOCH_KEY = "agency:epoch"
_UNDONE = NOT_STARTED
_local_epoch = f"local-{uuid.uuid4()}"
_clients: dict[tuple[int, str], object] = {}
_lock = threading.Lock()


def broker_epoch(rt: Runtime) -> str:
    """An id of the broker's current life: a Redis that restarted empty has a new one.

    The in-memory broker of the embedded mode lives as long as this process.
    """
    url = rt.settings.effective_broker_url
    if not url.startswith(("redis://", "rediss://")):
        return _local_epoch
    import redis

    key = (os.getpid(), url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = redis.Redis.from_url(url, **redis_client_options(url))
    assert isinstance(client, redis.Redis)
    mine = str(uuid.uuid4())
    previous = client.set(EPOCH_KEY, mine, nx=True, get=True)
    return previous.decode() if isinstance(previous, bytes) else mine


def _publish(rt: Runtime, project_id: str, signature: Signature,
             mark: Callable[[str], None]) -> bool:
    """Send, then record the epoch it was sent in; False (logged) when the broker is away.

    Every message of a project has the project's id as its root id (the planning message's
    own id), whoever sends it: a worker, the reconciler or the CLI. Flower links them."""
    try:
        epoch = broker_epoch(rt)
        signature.apply_async(root_id=project_id, parent_id=project_id)
    except Exception as exc:  # kombu, redis and socket errors alike: the reconciler resends
        log.warning("could not publish %s (%s); the reconciler will send it again",
                    signature.task or "canvas", exc)
        return False
    try:
        mark(epoch)
    except Exception as exc:  # unmarked: at worst sent twice, which a claim makes harmless
        log.warning("could not record what was sent: %s", exc)
    return True


def send_plan(rt: Runtime, app: Celery, project_id: str) -> bool:
    # Lower priority than integration: finishing started projects comes before planning more.
    # The planning message's id is the project's: it is the root of all its tasks.
    return _publish(rt, project_id, plan_signature(app, project_id).set(
        priority=PLAN_PRIORITY, task_id=project_id),
                    lambda epoch: rt.scheduler.mark_project_sent(project_id, epoch))


def send_integration(rt: Runtime, app: Celery, project_id: str) -> bool:
    return _publish(rt, project_id, integration_signature(app, project_id),
                    lambda epoch: rt.scheduler.mark_project_sent(project_id, epoch))


def _graph(tasks: list[TaskRecord]) -> dag.Graph:
    """The graph among these tasks only (dependencies outside them are done or counted)."""
    index = {t.id: i for i, t in enumerate(tasks)}
    return dag.Graph(deps=tuple(tuple(index[d] for d in t.dependencies if d in index)
                                for t in tasks),
                     weights=tuple(t.estimated_tokens for t in tasks))


def dispatch(rt: Runtime, app: Celery, project_id: str,
             scope: Iterable[str] | None = None) -> None:
    """Send `scope` (default: every task) and its undone descendants as exact launch units."""
    tasks = rt.store.tasks(project_id)
    if scope is None:
        wanted = {t.id for t in tasks}
    else:
        wanted = set(scope)
        for task_id in list(wanted):
            wanted.update(rt.store.descendants(task_id))
    todo = [t for t in tasks if t.id in wanted and t.status in _UNDONE]
    if not todo:
        if all(t.status is TaskStatus.COMPLETED for t in tasks) and rt.scheduler.move_project(
                project_id, ProjectStatus.INTEGRATING):
            send_integration(rt, app, project_id)
        return
    status = {t.id: t.status for t in tasks}
    inside = {t.id for t in todo}
    # A task that also waits on work outside the set (running elsewhere) is released by the store.
    heads = frozenset(i for i, t in enumerate(todo)
                      if any(d not in inside and status[d] is not TaskStatus.COMPLETED
                             for d in t.dependencies))
    found = dag.units(_graph(todo), heads, flat_joins=native_joins(app))
    rt.store.assign_units({ROOT_UNIT if u.head is None else todo[u.head].id:
                           [todo[m].id for m in u.members] for u in found if u.members})
    if len(found) > 1:
        log.info("project %s: %d launch units", project_id, len(found))
    roots = [todo[m] for u in found if u.head is None for m in u.members]
    warmup.before_start(rt, project_id, tasks, [
        t.id for t in roots if not inside.intersection(t.dependencies)])
    for unit in found:
        if unit.head is None and unit.members:
            launch(rt, app, project_id, [todo[m] for m in unit.members])
    if scope is None and all(t.started_at is None for t in tasks):  # the project's first
        warmup.check_prefix(rt, project_id)


def launch(rt: Runtime, app: Celery, project_id: str, members: list[TaskRecord]) -> None:
    """Send one unit's tasks as chains, groups and chords."""
    if not members:  # a unit another dispatch took over meanwhile: it sends them
        return
    shape = dag.series_parallel(_graph(members))
    ids = [t.id for t in members]
    _publish(rt, project_id, unit_canvas(app, project_id, members, shape),
             lambda epoch: rt.scheduler.mark_sent(ids, epoch))


def send_review(rt: Runtime, app: Celery, project_id: str, task_id: str, round_: int,
                agent: AgentType) -> bool:
    """A parked task's review round, on its reviewer's queue."""
    return _publish(rt, project_id, review_signature(app, project_id, task_id, round_, agent),
                    lambda epoch: rt.scheduler.mark_sent([task_id], epoch))


def send_resume(rt: Runtime, app: Celery, project_id: str, task_id: str) -> bool:
    """A woken task's next agent message: it resumes the attempt and replays its journal."""
    task = rt.store.task(task_id)
    return _publish(rt, project_id, agent_signature(app, project_id, task),
                    lambda epoch: rt.scheduler.mark_sent([task_id], epoch))


def send_next(rt: Runtime, app: Celery, task: TaskRecord) -> bool:
    """A parked task's next message: its review when it waits for one, its agent's own once
    woken; nothing (False) while it waits for a person or a batch, or holds a lease."""
    if task.status not in HELD or task.lease_until is not None:
        return False
    if task.parked is None:
        return send_resume(rt, app, task.project_id, task.id)
    if task.parked.startswith("review:"):
        return send_review(rt, app, task.project_id, task.id,
                           int(task.parked.split(":")[1]), task.agent_type)
    return False


def send_parked(rt: Runtime, app: Celery, project_id: str) -> int:
    """Send again every parked task's next message: after a pause or a budget stop refused
    them. How many were sent."""
    return sum(send_next(rt, app, task) for task in rt.store.tasks(project_id))


def release(rt: Runtime, app: Celery, project_id: str, completion: Completion) -> None:
    """After a completion: send the units whose head it made ready, or integration. What it
    released starts at once (the heads sent here, the rest by the canvas as this task
    returns): a fan-out, warmed first when its prefix may have expired. A task that parked on
    its way (its canvas went no further) has what it released sent from here, with
    everything downstream of it."""
    if completion.detached and completion.ready:
        dispatch(rt, app, project_id, completion.ready)
        return
    heads = (set(completion.heads) if completion.heads is not None  # the completion knew
             else rt.store.unit_heads(completion.ready))  # one query, whatever was released
    ready = [task_id for task_id in completion.ready if task_id in heads]
    fan_out = len(completion.ready) > 1 and rt.settings.cache_warmup
    tasks = rt.store.tasks(project_id) if ready or fan_out else []
    if fan_out:
        warmup.before_start(rt, project_id, tasks, list(completion.ready))
    for head in ready:
        launch(rt, app, project_id, [t for t in tasks if t.unit == head and t.status in _UNDONE])
    if completion.project_done:
        send_integration(rt, app, project_id)
