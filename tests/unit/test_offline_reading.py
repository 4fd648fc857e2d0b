"""The offline model reads back every field the real prompt builders write, and raises on a
prompt whose labels were edited, rather than guessing (agency_offline/reading.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from agency_offline import reading
from agency_offline.model import OfflineProvider, respond
from agency_offline.reading import UnreadablePrompt
from orchestrator.agent.prompts import (
    DEPENDENCY_CHARS,
    EXCERPT_CHARS,
    agent_system,
    reviewer_system,
    task_prompt,
)
from orchestrator.agent.review import ARTIFACT_EXCERPT, review_prompt, revise_prompt
from orchestrator.agent.tools import AGENT_TOOLS, search_result
from orchestrator.domain.constants import (
    AgentType,
    Complexity,
    ProjectStatus,
    ProjectType,
    Role,
    TaskPriority,
    TaskStatus,
)
from orchestrator.domain.models import (
    AgentOutput,
    Analysis,
    Artifact,
    CriterionCheck,
    Deliverable,
    Plan,
    PlanTask,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
    Verdict,
)
from orchestrator.domain.prompt_labels import LAST_TURN
from orchestrator.domain.prompts import (
    ORCHESTRATOR_SYSTEM,
    analysis_prompt,
    decomposition_prompt,
    optimization_prompt,
)
from orchestrator.llm.base import (
    CompletionRequest,
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from orchestrator.services.integrate import integration_request
from orchestrator.services.planner import project_context
from orchestrator.state.knowledge import Hit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# A request over two lines, with characters a label reader could trip on.
REQUEST = "Build a website for Rise & Shine, a bakery in Leeds\nwith online orders: 'fresh' (daily)"
ANALYSIS = Analysis(
    project_type=ProjectType.WEBSITE, complexity=Complexity.MODERATE, estimated_hours=12,
    required_agents=[AgentType.FRONTEND_DEVELOPER], key_requirements=["online orders", "menu"],
    potential_risks=["seasonal menu"], success_criteria=["orders work on a phone",
                                                         "the menu is current"],
    recommended_approach="content first")
PROJECT = ProjectRecord(
    id="p-1", request=REQUEST, project_type=ProjectType.WEBSITE, complexity=Complexity.MODERATE,
    status=ProjectStatus.RUNNING, budget_tokens=100_000, analysis=ANALYSIS,
    plan=Plan(tasks=[PlanTask(title="Copy", agent_type="content_writer"),
                     PlanTask(title="Site", agent_type="frontend_developer", dependencies=[0])]),
    output_dir="out", error=None, created_at=T0, updated_at=T0, finished_at=None)


def task(index: int, title: str, agent: AgentType, output: AgentOutput | None = None,
         **fields: Any) -> TaskRecord:
    values: dict[str, Any] = {
        "id": f"task-{index}", "project_id": PROJECT.id, "index": index, "title": title,
        "description": f"Write the {title} part.\nKeep it short (two pages).",
        "agent_type": agent, "priority": TaskPriority.HIGH, "estimated_tokens": 4000,
        "deliverables": ["home page", "order form"],
        "acceptance_criteria": ["works on a phone", "names the opening hours"],
        "on_critical_path": True, "status": TaskStatus.COMPLETED, "attempts": 1,
        "pending_deps": 0, "worker": None, "output": output, "error": None, "queued_at": None,
        "started_at": None, "finished_at": None, **fields}
    return TaskRecord(**values)


SHORT = AgentOutput(summary="The copy is done.", content="# Copy\n\nWarm words. Fresh bread.",
                    artifacts=[Artifact(path="content/home.md", content="Home"),
                               Artifact(path="content/about.md", content="About")])
LONG = AgentOutput(summary="A long plan.", content="Step by step. " * (DEPENDENCY_CHARS // 10))
DEPS = [task(0, "Copy 'home' (v2)", AgentType.CONTENT_WRITER, SHORT),
        task(2, "Plan", AgentType.PROJECT_MANAGER, LONG),
        task(3, "Research", AgentType.MARKETING, None)]
TASK = task(4, "Site: pages (HTML)", AgentType.FRONTEND_DEVELOPER)


def request(system: list[TextBlock], *messages: Message, schema: type[BaseModel] | None = None,
            role: Role = Role.AGENT) -> CompletionRequest:
    json_schema = schema.model_json_schema() if schema is not None else None
    return CompletionRequest(role=role, model="m", system=system, messages=list(messages),
                             json_schema=json_schema)


def user(text: str) -> Message:
    return Message(role="user", content=[TextBlock(text=text)])


def agent_request(*later: Message) -> CompletionRequest:
    return request(agent_system(PROJECT, TASK.agent_type), user(task_prompt(TASK, DEPS)),
                   *later, schema=AgentOutput)


def test_an_agent_task_reads_back_field_by_field() -> None:
    view = reading.agent_task(agent_request())
    assert (view.request, view.title, view.index, view.task_id) == (
        REQUEST, TASK.title, TASK.index, TASK.id)
    assert (view.agent_type, view.priority) == (TASK.agent_type, TASK.priority.value)
    assert view.description == TASK.description
    assert (view.deliverables, view.criteria) == (TASK.deliverables, TASK.acceptance_criteria)
    short, long, empty = view.inputs
    assert (short.index, short.title, short.agent_type, short.summary, short.content,
            short.files) == (0, DEPS[0].title, "content_writer", SHORT.summary, SHORT.content,
                             ["content/home.md", "content/about.md"])
    # A long output is shown cut, with the call that reads the rest.
    assert long.summary == LONG.summary and long.files == []
    assert long.content.startswith(LONG.content[:EXCERPT_CHARS].rstrip())
    assert 'read_task_output("2")' in long.content
    assert (empty.index, empty.title, empty.summary, empty.content) == (3, "Research", "", "")
    assert reading.task_title(agent_request()) == TASK.title


def test_the_agent_is_read_from_the_task_line_not_the_persona() -> None:
    for agent in AgentType:
        prompt = task_prompt(task(1, "T", agent), [])
        assert reading.read_agent_task(agent_system(PROJECT, agent)[0].text,
                                       prompt).agent_type is agent


def test_a_conversation_reads_back_its_tool_results_and_review_notes() -> None:
    hits = [Hit(source="task 0 'Copy' output", kind="output", ref="0", title="Copy",
                snippet="Warm **words** [sic] for the home page", rank=2.0),
            Hit(source="request", kind="request", ref="", title="", snippet="a bakery",
                rank=1.0)]
    use = ToolUseBlock(id="toolu_1", name="search_knowledge", input={"query": "copy"})
    wrote = ToolUseBlock(id="toolu_2", name="write_artifact",
                         input={"path": "site/index.html", "content": "<p>"})
    verdict = Verdict(verdict="revise", summary="One left.", criteria=[
        CriterionCheck(criterion="works on a phone", met=False, note="add a viewport"),
        CriterionCheck(criterion="names the opening hours", met=True),
        CriterionCheck(criterion="links the menu", met=False)])
    req = agent_request(
        Message(role="assistant", content=[use, wrote]),
        Message(role="user", content=[
            ToolResultBlock(tool_use_id="toolu_1", content=search_result(hits)),
            ToolResultBlock(tool_use_id="toolu_2", content="written")]),
        Message(role="assistant", content=[TextBlock(text="{}")]),
        user(revise_prompt(1, verdict)))
    t = reading.Transcript(req)
    assert t.hits() == [reading.Hit(source=h.source, snippet=h.snippet) for h in hits]
    assert t.written() == {"site/index.html"} and t.called("search_knowledge")
    assert t.review_notes() == ["works on a phone: add a viewport", "links the menu: not met"]
    assert reading.hits(search_result([])) == []


def test_the_last_turn_note_ends_tool_use_and_leaves_the_prompt_as_written() -> None:
    offered = agent_request().model_copy(update={"tools": AGENT_TOOLS})
    assert reading.Transcript(offered).may_call
    last = Message(role="user", content=[TextBlock(text=task_prompt(TASK, DEPS)),
                                         TextBlock(text=LAST_TURN)])
    req = offered.model_copy(update={"messages": [last]})
    assert not reading.Transcript(req).may_call
    assert reading.agent_task(req) == reading.agent_task(agent_request())


def test_a_review_reads_back_field_by_field() -> None:
    big = "x" * (ARTIFACT_EXCERPT + 10)
    output = AgentOutput(summary="Pages done.", content="# Pages\n\nThe home page.",
                         artifacts=[Artifact(path="site/index.html", content="<h1>Hi</h1>"),
                                    Artifact(path="site/big.css", content=big)])
    prompt = review_prompt(TASK, output, ["is the menu enough?", "check the form"])
    req = request(reviewer_system(PROJECT, "qa_engineer"), user(prompt), schema=Verdict)
    view = reading.review(req)
    assert (view.index, view.title, view.agent_type) == (4, TASK.title, "frontend_developer")
    assert view.description == TASK.description
    assert (view.deliverables, view.criteria) == (TASK.deliverables, TASK.acceptance_criteria)
    assert view.asks == ["is the menu enough?", "check the form"]
    assert (view.summary, view.content) == (output.summary, output.content)
    assert [f.path for f in view.files] == ["site/index.html", "site/big.css"]
    assert view.files[0].content == "<h1>Hi</h1>"
    assert view.files[1].content == big[:ARTIFACT_EXCERPT] + "\n[... 10 more characters]"
    assert reading.task_title(req) is None  # a review is no agent's task


def test_an_integration_reads_back_field_by_field() -> None:
    tasks = [task(0, "Copy", AgentType.CONTENT_WRITER, SHORT),
             task(1, "Site", AgentType.FRONTEND_DEVELOPER, None)]
    reviews = {"task-0": [ReviewRecord(reviewer="qa_engineer", verdict="pass", round=1,
                                       attempt=1, notes=[], summary="ok", at=T0)]}
    req = request([TextBlock(text=ORCHESTRATOR_SYSTEM)],
                  user(integration_request(PROJECT, tasks, reviews)), schema=Deliverable)
    view = reading.integration(req)
    assert (view.request, view.project_type) == (REQUEST, "website")
    assert view.success_criteria == ANALYSIS.success_criteria
    assert [(r.index, r.title, r.agent_type, r.summary, r.files, r.review)
            for r in view.results] == [
        (0, "Copy", "content_writer", SHORT.summary, ["content/home.md", "content/about.md"],
         "pass by qa_engineer after 1 round(s)"),
        (1, "Site", "frontend_developer", "", [], "not reviewed")]


def test_the_planning_prompts_read_back() -> None:
    assert reading.read_analysis(analysis_prompt(REQUEST)) == REQUEST
    context = project_context(PROJECT, ANALYSIS)
    asked = reading.read_decomposition(decomposition_prompt(
        context.description, context.project_type.value, context.requirements,
        context.constraints))
    assert asked.project_type is ProjectType.WEBSITE and asked.description == REQUEST
    assert (asked.requirements, asked.constraints) == (ANALYSIS.key_requirements,
                                                       context.constraints)


def test_the_statistics_read_back() -> None:
    metrics = {"utilisation": [{"queue": "marketing", "utilisation": 0.5}], "note": "a\nb"}
    assert reading.read_metrics(optimization_prompt(metrics)) == metrics


# Each prompt, and an edit of one of its labels: the parser must refuse the edited prompt.
EDITS: list[tuple[str, Callable[[], str], Callable[[str], object], str, str]] = [
    ("task title", lambda: task_prompt(TASK, DEPS),
     lambda p: reading.read_agent_task(agent_system(PROJECT, TASK.agent_type)[0].text, p),
     "Your task: ", "Task title: "),
    ("task line", lambda: task_prompt(TASK, DEPS),
     lambda p: reading.read_agent_task(agent_system(PROJECT, TASK.agent_type)[0].text, p),
     ", agent frontend_developer,", ", agent type frontend_developer,"),
    ("criteria", lambda: task_prompt(TASK, DEPS),
     lambda p: reading.read_agent_task(agent_system(PROJECT, TASK.agent_type)[0].text, p),
     "Acceptance criteria: ", "Criteria: "),
    ("input summary", lambda: task_prompt(TASK, DEPS),
     lambda p: reading.read_agent_task(agent_system(PROJECT, TASK.agent_type)[0].text, p),
     "Summary: ", "In short: "),
    ("brief request", lambda: agent_system(PROJECT, TASK.agent_type)[0].text,
     lambda s: reading.read_agent_task(s, task_prompt(TASK, DEPS)),
     "\nRequest: ", "\nThe request: "),
    ("review head", lambda: review_prompt(TASK, SHORT, []), reading.read_review,
     "Review task 4", "Check task 4"),
    ("under review", lambda: review_prompt(TASK, SHORT, []), reading.read_review,
     "## Output under review", "## The output"),
    ("integration results", lambda: integration_request(PROJECT, DEPS, {}),
     reading.read_integration, "Task Results:", "Results:"),
    ("integration result key", lambda: integration_request(PROJECT, DEPS, {}),
     reading.read_integration, '"agent":', '"agent_type":'),
    ("analysis", lambda: analysis_prompt(REQUEST), reading.read_analysis,
     "Provide a JSON response with:", "Answer in JSON with:"),
    ("decomposition", lambda: decomposition_prompt(REQUEST, "website", [], {}),
     reading.read_decomposition, "Requirements: ", "Needs: "),
    ("decomposition type", lambda: decomposition_prompt(REQUEST, "website", [], {}),
     reading.read_decomposition, "Project Type: website", "Project Type: a website"),
    ("metrics", lambda: optimization_prompt({}), reading.read_metrics,
     "Current Metrics:", "Metrics now:"),
]


@pytest.mark.parametrize(("build", "read", "label", "edited"),
                         [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_an_edited_label_makes_the_parser_raise(build: Callable[[], str],
                                                 read: Callable[[str], object], label: str,
                                                 edited: str) -> None:
    prompt = build()
    read(prompt)  # as built, it reads
    assert label in prompt
    with pytest.raises(UnreadablePrompt):
        read(prompt.replace(label, edited))


def test_an_unknown_agent_or_schema_is_an_error_not_a_fallback() -> None:
    prompt = task_prompt(TASK, []).replace("agent frontend_developer", "agent barista")
    with pytest.raises(UnreadablePrompt, match="barista"):
        reading.read_agent_task(agent_system(PROJECT, TASK.agent_type)[0].text, prompt)
    odd = request([TextBlock(text="s")], user("Say hello"), schema=CriterionCheck)
    with pytest.raises(UnreadablePrompt, match="CriterionCheck"):
        respond(odd)
    with pytest.raises(UnreadablePrompt):
        OfflineProvider().complete(request(agent_system(PROJECT, TASK.agent_type),
                                           user("Do something nice"), schema=AgentOutput))


def test_a_title_or_an_item_over_two_lines_reads_back() -> None:
    """A plan file may hold line breaks anywhere; the fields still read back whole."""
    odd = task(5, "Site:\nthe pages", AgentType.FRONTEND_DEVELOPER,
               deliverables=["home\npage", "order form"],
               acceptance_criteria=["works on\na phone"])
    view = reading.read_agent_task(agent_system(PROJECT, odd.agent_type)[0].text,
                                   task_prompt(odd, DEPS[:1]))
    assert (view.title, view.deliverables, view.criteria) == (
        odd.title, odd.deliverables, odd.acceptance_criteria)
    assert view.inputs[0].title == DEPS[0].title
    review = reading.read_review(review_prompt(odd, SHORT, ["why\nso?"]))
    assert (review.title, review.deliverables, review.criteria, review.asks) == (
        odd.title, odd.deliverables, odd.acceptance_criteria, ["why\nso?"])
