"""What an agent reads: a cached project-wide prefix, then its persona, then its task.

Order matters for cost. The tools, the agency handbook and the project brief (request,
analysis, plan) are the same for every agent of a project: they come first and end with a
cache breakpoint, so every task after the first reads them from the cache. The persona and the
task come after it. The task holds its dependencies' outputs (summarised when long), not every
output of the project: anything else the agent fetches with its tools.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from orchestrator.domain import prompt_labels as L
from orchestrator.domain.constants import AgentType
from orchestrator.domain.models import ProjectRecord, TaskRecord
from orchestrator.llm.base import TextBlock

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

AGENT_CONTRACT = """
You have one task of the project described above. Do it completely and concretely, as a senior
professional would hand it to a client. Use your tools for what your brief does not hold:
search_knowledge for anything in the project, read_task_output for a completed task's whole
output, write_artifact for each file you deliver. When your work is done, answer with one JSON
object: summary (two sentences), content (your full work in Markdown), artifacts (files not
already written with write_artifact; usually none)."""

REVIEWER_PROMPTS: dict[str, str] = {
    AgentType.QA_ENGINEER.value: AGENT_PROMPTS[AgentType.QA_ENGINEER]
    + " Today you review a colleague's work product before anything builds on it.",
    "orchestrator": "You are the agency's Chief Orchestrator. Today you review a specialist's "
    "work before the tasks that depend on it start.",
}

REVIEW_CONTRACT = """
Check the output below against each of the task's acceptance criteria (and its deliverables).
Use search_knowledge or read_task_output if you need the project's other work. Answer with one
JSON object: verdict ("pass" when every criterion is met, else "revise"), criteria (one entry
per acceptance criterion: criterion, met, note saying what to change when not met), summary
(one sentence)."""

# A dependency's output longer than this is summarised in the prompt: its summary and its
# beginning, with the tool call that reads the rest.
DEPENDENCY_CHARS = 4000
EXCERPT_CHARS = 1500


@cache
def handbook() -> str:
    """The agency handbook every agent and reviewer reads first (package data)."""
    return resources.files("orchestrator.agent").joinpath("handbook.md").read_text()


def project_brief(project: ProjectRecord) -> str:
    """The project-wide brief: the request, the analysis and the plan."""
    lines = ["# Project brief", "", f"Project id: {project.id}",
             L.BRIEF_REQUEST + project.request,
             L.BRIEF_PROJECT_TYPE + str(project.project_type or "custom")]
    analysis = project.analysis
    if analysis is not None:
        lines += [f"Complexity: {analysis.complexity.value}, about "
                  f"{analysis.estimated_hours:g} hours", "", "## Analysis", "",
                  "Key requirements:", *(f"- {r}" for r in analysis.key_requirements),
                  "Potential risks:", *(f"- {r}" for r in analysis.potential_risks),
                  "Success criteria:", *(f"- {r}" for r in analysis.success_criteria),
                  f"Recommended approach: {analysis.recommended_approach}"]
    if project.plan is not None:
        lines += ["", "## Plan (task index, title, agent, the tasks it builds on)", ""]
        for index, task in enumerate(project.plan.tasks):
            after = ", ".join(map(str, task.dependencies)) or "-"
            lines.append(f"{index}. {task.title} ({task.agent_type}); after: {after}")
    return "\n".join(lines)


def shared_prefix(project: ProjectRecord) -> TextBlock:
    """The handbook and the brief: one block, the cache breakpoint of every agent's prompt."""
    return TextBlock(text=handbook() + "\n\n" + project_brief(project), cache=True)


def agent_system(project: ProjectRecord, agent: AgentType) -> list[TextBlock]:
    return [shared_prefix(project), TextBlock(text=AGENT_PROMPTS[agent] + "\n" + AGENT_CONTRACT)]


def reviewer_system(project: ProjectRecord, reviewer: str) -> list[TextBlock]:
    return [shared_prefix(project),
            TextBlock(text=REVIEWER_PROMPTS[reviewer] + "\n" + REVIEW_CONTRACT)]


def task_header(task: TaskRecord) -> list[str]:
    """The lines that say what the task is (also read by the offline model and reviewers)."""
    return [L.TASK_TITLE + task.title,
            L.TASK_LINE.format(index=task.index, id=task.id, agent_type=task.agent_type.value,
                               priority=task.priority.value),
            L.DESCRIPTION + task.description,
            L.DELIVERABLES + L.LIST_SEPARATOR.join(task.deliverables),
            L.CRITERIA + L.LIST_SEPARATOR.join(task.acceptance_criteria)]


def dependency_section(dep: TaskRecord) -> list[str]:
    """A dependency's output, whole when short, else its summary and beginning."""
    output = dep.output
    head = L.INPUT_HEAD.format(index=dep.index, title=dep.title, agent_type=dep.agent_type.value)
    if output is None:
        return [head, L.NO_OUTPUT, ""]
    body = output.content
    if len(body) > DEPENDENCY_CHARS:
        body = (body[:EXCERPT_CHARS].rstrip() + f"\n\n[... {len(body) - EXCERPT_CHARS} more "
                f"characters: read_task_output(\"{dep.index}\") returns all of it]")
    files = [L.BULLET + a.path for a in output.artifacts]
    return [head, L.SUMMARY + output.summary, "", body, *([L.FILES, *files] if files else []),
            ""]


def task_prompt(task: TaskRecord, deps: list[TaskRecord]) -> str:
    lines = [*task_header(task), ""]
    for dep in deps:
        lines += dependency_section(dep)
    return "\n".join(lines)
