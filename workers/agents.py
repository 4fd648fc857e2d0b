"""The ten specialist agents: a system prompt each, and the service that runs one task."""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.constants import AgentType, ProjectStatus, Role, TaskStatus
from orchestrator.errors import AttemptFailed, HeldElsewhere, NotRunnable, TaskNotReady
from orchestrator.llm.structured import ask_structured
from orchestrator.models import AgentOutput, ProjectRecord, TaskDefinition, TaskRecord
from orchestrator.runtime import Runtime
from orchestrator.scheduler import Claim, Completion

log = logging.getLogger(__name__)

_COMMON = """
You work inside an AI agency. The orchestrator gives you one task of a larger project, the
project's request, and the outputs of the tasks yours depends on. Do the task completely and
concretely, as a senior professional would hand it to a client. Answer with one JSON object:
summary (two sentences), content (your full work in Markdown), artifacts (optional files, each
with a relative path and its content)."""

AGENT_PROMPTS: dict[AgentType, str] = {
    AgentType.MARKETING: "You are the agency's Marketing specialist: marketing strategy, "
    "positioning, content planning, SEO and SEM, campaign channels and KPIs.",
    AgentType.FRONTEND_DEVELOPER: "You are the agency's Frontend Developer: React and Vue, "
    "semantic HTML, CSS, accessibility, performance, and faithful UI implementation.",
    AgentType.BACKEND_DEVELOPER: "You are the agency's Backend Developer: APIs, data models, "
    "databases, business logic, security and scalability.",
    AgentType.MOBILE_DEVELOPER: "You are the agency's Mobile Developer: iOS and Android "
    "applications, app architecture, offline behaviour and store releases.",
    AgentType.DEVOPS_ENGINEER: "You are the agency's DevOps Engineer: infrastructure, "
    "deployment, CI/CD, observability and reliability.",
    AgentType.DATA_ANALYST: "You are the agency's Data Analyst: data analysis, metrics, "
    "reporting, statistics and actionable insights.",
    AgentType.UX_DESIGNER: "You are the agency's UX Designer: user research, personas, user "
    "flows, wireframes and prototypes, usability.",
    AgentType.PROJECT_MANAGER: "You are the agency's Project Manager: scope, sprint planning, "
    "milestones, responsibilities, risks and tracking.",
    AgentType.QA_ENGINEER: "You are the agency's QA Engineer: test strategy, test cases, "
    "accessibility and performance checks, release quality gates.",
    AgentType.CONTENT_WRITER: "You are the agency's Content Writer: blog posts, documentation, "
    "website and product copy in a clear, consistent voice.",
}


def system_prompt(agent: AgentType) -> str:
    return AGENT_PROMPTS[agent] + "\n" + _COMMON


def definition(project: ProjectRecord, task: TaskRecord) -> TaskDefinition:
    """The seed's task definition: what this agent is asked, with the project's context."""
    requirements = project.analysis.key_requirements if project.analysis else []
    return TaskDefinition(
        task_id=task.id, project_id=project.id, agent_type=task.agent_type, title=task.title,
        description=task.description,
        input_data={"requirements": task.deliverables, "criteria": task.acceptance_criteria,
                    "context": requirements},
        dependencies=task.dependencies, priority=task.priority,
        estimated_tokens=task.estimated_tokens)


def task_prompt(project: ProjectRecord, task: TaskDefinition, deps: list[TaskRecord]) -> str:
    data = task.input_data
    lines = [f"Project request: {project.request}",
             f"Project type: {project.project_type or 'custom'}",
             "Project requirements: " + "; ".join(data["context"]), "",
             f"Your task: {task.title} (priority {task.priority.value})",
             f"Description: {task.description}",
             "Deliverables: " + "; ".join(data["requirements"]),
             "Acceptance criteria: " + "; ".join(data["criteria"]), ""]
    for dep in deps:
        body = dep.output.content if dep.output else ""
        lines += [f"## Input from '{dep.title}' ({dep.agent_type.value})",
                  body[:6000], ""]
    return "\n".join(lines)


def claim_task(rt: Runtime, task_id: str, worker: str
               ) -> tuple[Claim, TaskRecord, ProjectRecord] | None:
    """Claim the task for an attempt, with what the work needs (title, inputs and deps do not
    change once planned), or say why not: None when it already completed (a completed task is
    never executed again, whatever the broker redelivers)."""
    task = rt.store.task(task_id)
    project = rt.store.project(task.project_id)
    if project.status is not ProjectStatus.RUNNING:
        raise NotRunnable(f"project {project.id} is {project.status.value}")
    claim = rt.scheduler.start_task(task_id, worker, rt.leases.until())
    if claim is not None:
        return claim, task, project
    task = rt.store.task(task_id)
    if task.status is TaskStatus.COMPLETED:
        return None
    if task.status is TaskStatus.BLOCKED:
        raise TaskNotReady(f"task {task_id} still waits for {task.pending_deps} dependencies")
    if task.status is TaskStatus.IN_PROGRESS:
        raise HeldElsewhere(f"task {task_id} is in progress on {task.worker}")
    raise NotRunnable(f"task {task_id} is {task.status.value}")


def run_agent_task(rt: Runtime, task_id: str, worker: str,
                   progress: Callable[[str], None] | None = None) -> Completion | None:
    """Load the task and its inputs from the store, do the work, save it, complete the task.

    Raises NotRunnable or TaskNotReady for a message that must not run, and AttemptFailed
    (with the cause) when a claimed attempt fails; workers/base.py decides what follows.
    """
    claimed = claim_task(rt, task_id, worker)
    if claimed is None:
        log.info("task %s already completed; not run again", task_id)
        return None
    claim, task, project = claimed
    try:
        with rt.leases.hold(claim):
            deps = [rt.store.task(d) for d in task.dependencies]
            if progress:
                progress("calling model")
            output = _work(rt, claim, project, task, deps)
            if progress:
                progress("saving output")
            return rt.durably("completion", lambda: rt.scheduler.complete_task(claim, output))
    except Exception as exc:
        raise AttemptFailed(claim.project_id, claim, exc) from exc


def _work(rt: Runtime, claim: Claim, project: ProjectRecord, task: TaskRecord,
          deps: list[TaskRecord]) -> AgentOutput:
    return ask_structured(
        rt.provider, role=Role.AGENT, model=rt.model_for(Role.AGENT),
        system=system_prompt(task.agent_type),
        prompt=task_prompt(project, definition(project, task), deps),
        schema=AgentOutput, schema_name="agent_output",
        hints={"request": project.request, "agent_type": task.agent_type.value,
               "title": task.title, "description": task.description,
               "deliverables": task.deliverables,
               "acceptance_criteria": task.acceptance_criteria,
               "dependencies": [{"title": d.title, "agent_type": d.agent_type.value,
                                 "summary": d.output.summary if d.output else ""}
                                for d in deps]},
        meter=rt.meter(project.id, claim), policy=rt.policy)
