"""Flower's configuration for Agency: projects on the task list, and a history that survives.

`agency flower` (which the Procfile and docker-compose.yml run) starts Flower with this file.

- Each task row is named after what it does and its project: "Frontend implementation |
  project 45d03c20", "Planning | project 45d03c20". Search (by id prefix, name, anything in
  the row) works on the task as Celery reported it, so it keeps working.
- Agent tasks' results say their project and how far it is ("project 45d03c20: 5/9 done").
- Flower keeps its state in `flower.db` under AGENCY_HOME (a volume in docker-compose.yml),
  saved every few seconds and on shutdown, so a restart keeps the history.
- `/metrics` (Prometheus) answers without credentials, like any scrape target: it carries task
  names, worker names, counts and run times, never arguments, results, ids or titles. Every
  other page and API needs FLOWER_BASIC_AUTH. tests/integration/test_production.py checks both.
"""

from __future__ import annotations

import ast
from typing import Any

from orchestrator.domain.constants import INTEGRATE_TASK, PLAN_TASK
from orchestrator.domain.settings import get_settings

_home = get_settings().home
_home.mkdir(parents=True, exist_ok=True)

persistent = True
db = str(_home / "flower.db")
state_save_interval = 5000  # milliseconds
tasks_columns = "name,uuid,state,result,received,started,runtime,worker,retries"
natural_time = False

_ROLES = {PLAN_TASK: "Planning", INTEGRATE_TASK: "Integration"}


def _kwargs(text: Any) -> dict[str, Any]:
    """The task's keyword arguments, as the event reported them (their repr)."""
    if isinstance(text, dict):
        return text
    try:
        value = ast.literal_eval(str(text))
    except Exception:  # not a literal (or cut short by Celery's repr limit): keep the name
        return {}
    return value if isinstance(value, dict) else {}


def format_task(task: Any) -> Any:
    """Name a task row after its title (or role) and its project."""
    kwargs = _kwargs(task.kwargs)
    project = kwargs.get("project_id")
    title = kwargs.get("title") or _ROLES.get(task.name)
    if str(task.name).startswith("agency.review.") and kwargs.get("task_id"):
        title = f"Review round {kwargs.get('round')} of task {str(kwargs['task_id'])[:8]}"
    if project and title:
        task.name = f"{title} | project {str(project)[:8]}"
    return task
