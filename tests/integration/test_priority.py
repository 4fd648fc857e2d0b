"""Critical path first: on Redis, a worker takes the most urgent message of its queue first."""

from __future__ import annotations

from datetime import UTC, datetime

from celery import Celery

import celeryconfig
from orchestrator.domain.constants import AgentType, TaskPriority, TaskStatus
from orchestrator.domain.models import TaskRecord
from orchestrator.services.canvas import agent_signature


def _task(index: int, priority: TaskPriority) -> TaskRecord:
    return TaskRecord(
        id=f"task-{index}", project_id="p1", index=index, title=f"Task {index}",
        description="", agent_type=AgentType.FRONTEND_DEVELOPER, priority=priority,
        estimated_tokens=1000, deliverables=[], acceptance_criteria=[],
        on_critical_path=priority is TaskPriority.CRITICAL, status=TaskStatus.PENDING,
        attempts=0, pending_deps=0, worker=None, output=None, error=None,
        queued_at=datetime.now(UTC), started_at=None, finished_at=None)


def test_critical_tasks_leave_the_queue_first(redis_url: str) -> None:
    app = Celery("priority-test", broker=redis_url, set_as_current=False)
    app.conf.task_routes = celeryconfig.task_routes
    app.conf.task_queues = celeryconfig.task_queues
    order = [TaskPriority.LOW, TaskPriority.NORMAL, TaskPriority.CRITICAL, TaskPriority.HIGH,
             TaskPriority.LOW]
    for index, priority in enumerate(order):  # queued with no worker, least urgent first
        agent_signature(app, "p1", _task(index, priority)).apply_async()
    taken = []
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(AgentType.FRONTEND_DEVELOPER.value)
        for _ in order:
            message = queue.get(timeout=5)
            taken.append(message.payload[1]["task_id"])
            message.ack()
        queue.close()
    assert taken == ["task-2", "task-3", "task-1", "task-0", "task-4"]
