"""Everything the offline model reads from a request, read in one place, into typed views.

The offline model answers from the output schema, the tools and what it reads here. The
prompts are read by the labels the builders write them with (orchestrator/domain/
prompt_labels.py); tests/unit/test_offline_reading.py builds real prompts and reads every field
back. A prompt without a label it needs raises UnreadablePrompt, naming the label: an edit to
a prompt cannot silently change what the offline model answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from orchestrator.domain import prompt_labels as L
from orchestrator.domain.constants import AgentType, ProjectType
from orchestrator.domain.errors import ModelRefused
from orchestrator.llm.base import (
    CompletionRequest,
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)


class UnreadablePrompt(ModelRefused):
    """The offline model cannot read this prompt: a label it needs is missing or malformed."""


# What a template's field may match: numbers and agent types are one word; a knowledge
# source ends at the first "] " (a snippet may hold brackets); anything else is the rest of
# its line, backtracking to let the template's fixed text that follows match.
_FIELD_PATTERNS = {"index": r"\d+", "rank": r"\d+", "round": r"\d+", "agent_type": r"\w+",
                   "source": r"[^\n]+?"}
_REST_OF_LINE = r"[^\n]*"
_ANY_LINES = r"[\s\S]*?"  # a title may hold a line break: up to the template's next fixed text


@cache
def pattern(template: str, across_lines: bool = False) -> re.Pattern[str]:
    """A label template ("Task: index {index}, ...") as a pattern with a group per field."""
    free = _ANY_LINES if across_lines else _REST_OF_LINE
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(
        re.escape(part) if n % 2 == 0 else f"(?P<{part}>{_FIELD_PATTERNS.get(part, free)})"
        for n, part in enumerate(parts)))


def labelled(row: str, label: str, what: str) -> str:
    """The rest of a line that must start with `label`."""
    if not row.startswith(label.rstrip()):
        raise UnreadablePrompt(f"{what}: expected a line starting {label!r}, got {row[:120]!r}")
    return row[len(label.rstrip()):].strip()


def listed(value: str) -> list[str]:
    """A list written on one line, its items joined with LIST_SEPARATOR."""
    return [i.strip() for i in value.split(L.LIST_SEPARATOR) if i.strip()]


def in_order(text: str, labels: list[str], what: str) -> list[str]:
    """The values of fields that follow each other in `text` in this order, each label starting
    a line (the first starting `text`). Found from the end, each label's last occurrence before
    the next one's, so a value may span lines."""
    values: list[str] = []
    end = len(text)
    for label in reversed(labels[1:]):
        at = text.rfind("\n" + label, 0, end)
        if at < 0:
            raise UnreadablePrompt(f"{what}: no {label.strip()!r} line")
        values.insert(0, text[at + 1 + len(label):end].strip())
        end = at
    if not text.startswith(labels[0]):
        raise UnreadablePrompt(f"{what}: expected {labels[0].strip()!r}, got {text[:120]!r}")
    return [text[len(labels[0]):end].strip(), *values]


def between(text: str, start: str, end: str, what: str) -> str:
    """The text after the first `start` and before the last `end` that follows it."""
    _, found, rest = text.partition(start)
    if not found:
        raise UnreadablePrompt(f"{what}: no {start.strip()!r} in the prompt")
    body, found, _ = rest.rpartition(end)
    if not found:
        raise UnreadablePrompt(f"{what}: nothing ends the {start.strip()!r} field "
                               f"(expected {end.strip()!r})")
    return body


def json_field(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadablePrompt(f"{what}: not JSON ({exc})") from exc


def prompt_text(request: CompletionRequest) -> str:
    """The prompt the conversation started with: its first message's first text block (a
    last-turn note may follow it as a block of its own)."""
    first = request.messages[0].content if request.messages else []
    return next((b.text for b in first if isinstance(b, TextBlock)), "")


def schema_title(request: CompletionRequest) -> str:
    """The output schema's title: which answer is asked for ("" when none is)."""
    return str((request.json_schema or {}).get("title", ""))


@dataclass(frozen=True)
class Hit:
    """One knowledge-base search hit, as the search tool wrote it."""

    source: str
    snippet: str


def hits(result: str) -> list[Hit]:
    """The hits of a search_knowledge result ("no matches": none)."""
    found = []
    for row in result.splitlines():
        match = pattern(L.SEARCH_HIT).fullmatch(row)
        if match:
            found.append(Hit(source=match["source"], snippet=match["snippet"]))
    return found


class Transcript:
    """What happened so far in a conversation: the tool calls made and what they returned,
    and the reviewers' notes sent back."""

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        calls: dict[str, ToolUseBlock] = {}
        self.results: list[tuple[ToolUseBlock, ToolResultBlock]] = []
        self.turns = 0
        for message in request.messages:
            if message.role == "assistant":
                self.turns += 1
            for block in message.content:
                if isinstance(block, ToolUseBlock):
                    calls[block.id] = block
                elif isinstance(block, ToolResultBlock) and block.tool_use_id in calls:
                    self.results.append((calls[block.tool_use_id], block))

    @property
    def may_call(self) -> bool:
        """Tools are offered, and the last message does not say the turns are up."""
        said = False
        if self.request.messages:  # the note travels in the last tool result, or as text
            said = any(L.LAST_TURN in (b.text if isinstance(b, TextBlock) else b.content)
                       for b in self.request.messages[-1].content
                       if isinstance(b, TextBlock | ToolResultBlock))
        return bool(self.request.tools) and self.request.tool_choice == "auto" and not said

    def called(self, name: str) -> bool:
        return any(call.name == name for call, _ in self.results)

    def hits(self) -> list[Hit]:
        """Every hit of every knowledge-base search so far."""
        return [hit for call, result in self.results
                if call.name == "search_knowledge" and not result.is_error
                for hit in hits(result.content)]

    def written(self) -> set[str]:
        return {str(call.input.get("path")) for call, result in self.results
                if call.name == "write_artifact" and not result.is_error}

    def review_notes(self) -> list[str]:
        """Every reviewer's note sent back so far, in order."""
        return [note for message in self.request.messages[1:] for note in revise_notes(message)]


def revise_notes(message: Message) -> list[str]:
    """The notes of a reviewer's "revise", when this message is one."""
    text = message.text if message.role == "user" else ""
    head = text.split("\n", 1)[0]
    if not pattern(L.REVISE_HEAD).match(head):
        return []
    return [r.removeprefix(L.BULLET).strip() for r in text.splitlines()[1:]
            if r.startswith(L.BULLET)]


@dataclass(frozen=True)
class Input:
    """A dependency's output as the task's prompt holds it (content: as shown, maybe cut)."""

    index: int
    title: str
    agent_type: str
    summary: str = ""
    content: str = ""
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AgentTask:
    """An agent's task: the project's request (from the brief) and its own task prompt."""

    request: str
    title: str
    index: int
    task_id: str
    agent_type: AgentType
    priority: str
    description: str
    deliverables: list[str]
    criteria: list[str]
    inputs: list[Input]


def project_request(system: str) -> str:
    """The request, from the project brief in the system prompt."""
    return between(system, "\n" + L.BRIEF_REQUEST, "\n" + L.BRIEF_PROJECT_TYPE,
                   "project brief").strip()


def agent_task(request: CompletionRequest) -> AgentTask:
    return read_agent_task(request.system_text, prompt_text(request))


def task_title(request: CompletionRequest) -> str | None:
    """The title of the agent task this request works on; None when it is no agent's task."""
    return read_task_title(prompt_text(request))


def read_task_title(prompt: str) -> str | None:
    head = prompt.split("\n", 1)[0]
    return head.removeprefix(L.TASK_TITLE).strip() if head.startswith(L.TASK_TITLE) else None


def read_agent_task(system: str, prompt: str) -> AgentTask:
    """The task prompt's header (title, task line, description, deliverables, criteria) and its
    inputs, each under its INPUT_HEAD line."""
    what = "agent task"
    heads = list(re.finditer(f"^{pattern(L.INPUT_HEAD).pattern}$", prompt, re.MULTILINE))
    header = prompt[:heads[0].start()] if heads else prompt
    task_line = re.search(f"^{pattern(L.TASK_LINE).pattern}$", header, re.MULTILINE)
    if task_line is None or not header.startswith(L.TASK_TITLE):
        raise UnreadablePrompt(f"{what}: expected {L.TASK_TITLE!r}, then a line like "
                               f"{L.TASK_LINE!r}")
    meta = task_line.groupdict()
    description, deliverables, criteria = in_order(
        header[task_line.end() + 1:], [L.DESCRIPTION, L.DELIVERABLES, L.CRITERIA], what)
    try:
        agent = AgentType(meta["agent_type"])
    except ValueError as exc:
        raise UnreadablePrompt(f"{what}: no agent type {meta['agent_type']!r}") from exc
    return AgentTask(
        request=project_request(system),
        title=header[len(L.TASK_TITLE):task_line.start()].strip(), index=int(meta["index"]),
        task_id=meta["id"], agent_type=agent, priority=meta["priority"],
        description=description, deliverables=listed(deliverables), criteria=listed(criteria),
        inputs=[_input(head, prompt[head.end():heads[n + 1].start() if n + 1 < len(heads)
                                    else len(prompt)])
                for n, head in enumerate(heads)])


_FILES = re.compile(f"\n{re.escape(L.FILES)}\n((?:{re.escape(L.BULLET)}[^\n]*\n?)+)\\Z")


def _input(head: re.Match[str], section: str) -> Input:
    index, title, agent = int(head["index"]), head["title"], head["agent_type"]
    body = section.strip("\n")
    if body == L.NO_OUTPUT:
        return Input(index=index, title=title, agent_type=agent)
    summary_row, _, content = body.partition("\n\n")
    files = _FILES.search(content)
    if files:
        content = content[:files.start()]
    return Input(index=index, title=title, agent_type=agent,
                 summary=labelled(summary_row, L.SUMMARY, f"input from task {index}"),
                 content=content,
                 files=[r.removeprefix(L.BULLET) for r in files[1].splitlines()] if files else [])


@dataclass(frozen=True)
class ReviewFile:
    """A file of the output under review, as the review prompt shows it (maybe cut)."""

    path: str
    content: str


@dataclass(frozen=True)
class Review:
    """A reviewer's brief: the task, what the agent asked, and the output under review (work:
    all of it as shown, summary and files included)."""

    index: int
    title: str
    agent_type: str
    description: str
    deliverables: list[str]
    criteria: list[str]
    asks: list[str]
    summary: str
    content: str
    files: list[ReviewFile]
    work: str


def review(request: CompletionRequest) -> Review:
    return read_review(prompt_text(request))


def read_review(prompt: str) -> Review:
    what = "review"
    brief, found, work = prompt.partition(f"\n\n{L.UNDER_REVIEW}\n")
    if not found:
        raise UnreadablePrompt(f"{what}: no {L.UNDER_REVIEW!r} in the prompt")
    brief = brief.partition(f"\n\n{L.CHECKS_HEAD}\n")[0]  # the checks decide by themselves
    head = re.match(pattern(L.REVIEW_HEAD, across_lines=True).pattern + "\n", brief)
    if head is None:
        raise UnreadablePrompt(f"{what}: expected a first line like {L.REVIEW_HEAD!r}")
    task, *asks = brief[head.end():].split("\n" + L.AGENT_ASKS)
    description, deliverables, criteria = in_order(
        task, [L.DESCRIPTION, L.DELIVERABLES, L.CRITERIA], what)
    summary_row, _, output = work.partition("\n\n")
    heads = list(re.finditer(f"\n\n{pattern(L.FILE_HEAD).pattern}\n", output))
    return Review(
        index=int(head["index"]), title=head["title"], agent_type=head["agent_type"],
        description=description, deliverables=listed(deliverables),
        criteria=listed(criteria), asks=[a.strip() for a in asks],
        summary=labelled(summary_row, L.SUMMARY, what),
        content=output[:heads[0].start()] if heads else output,
        files=[ReviewFile(path=h["path"], content=output[h.end():heads[n + 1].start()
                                                          if n + 1 < len(heads) else None])
               for n, h in enumerate(heads)],
        work=work)


@dataclass(frozen=True)
class TaskResult:
    """One task's line in the integration prompt."""

    index: int
    title: str
    agent_type: str
    summary: str
    files: list[str]
    review: str


@dataclass(frozen=True)
class Integration:
    """The integrator's brief: the request, every task's result, the success criteria."""

    request: str
    project_type: str
    results: list[TaskResult]
    success_criteria: list[str]


def integration(request: CompletionRequest) -> Integration:
    return read_integration(prompt_text(request))


def read_integration(prompt: str) -> Integration:
    what = "integration"
    head = between(prompt, L.INTEGRATION_PROJECT, L.INTEGRATION_END, what)
    request, found, rest = head.rpartition("\n" + L.INTEGRATION_PROJECT_TYPE)
    if not found:
        raise UnreadablePrompt(f"{what}: no {L.INTEGRATION_PROJECT_TYPE!r} line")
    project_type, found, body = rest.partition("\n\n" + L.INTEGRATION_RESULTS)
    if not found:
        raise UnreadablePrompt(f"{what}: no {L.INTEGRATION_RESULTS!r} after the project type")
    rows = json_field(body, what)
    try:
        results = [TaskResult(index=int(r["task"]), title=str(r["title"]),
                              agent_type=str(r["agent"]), summary=str(r["summary"]),
                              files=[str(f) for f in r["files"]], review=str(r["review"]))
                   for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadablePrompt(f"{what}: a task result lacks {exc}") from exc
    _, found, tail = prompt.rpartition(L.INTEGRATION_END)
    _, found, listing = tail.partition("\n\n" + L.SUCCESS_CRITERIA)
    criteria = []
    for row in listing.split("\n") if found else []:
        if not row.startswith(L.BULLET):
            break
        criteria.append(row.removeprefix(L.BULLET))
    return Integration(request=request, project_type=project_type, results=results,
                       success_criteria=criteria)


@dataclass(frozen=True)
class Decomposition:
    """The orchestrator's decomposition request."""

    project_type: ProjectType
    description: str
    requirements: list[str]
    constraints: dict[str, Any]


def analysis_request(request: CompletionRequest) -> str:
    """The request the analysis prompt asks about."""
    return read_analysis(prompt_text(request))


def read_analysis(prompt: str) -> str:
    return between(prompt, L.ANALYSIS_REQUEST, L.ANALYSIS_END, "analysis")


def decomposition(request: CompletionRequest) -> Decomposition:
    return read_decomposition(prompt_text(request))


def read_decomposition(prompt: str) -> Decomposition:
    what = "decomposition"
    body = between(prompt, L.PLAN_PROJECT_TYPE, L.PLAN_END, what)
    kind, found, rest = body.partition("\n" + L.PLAN_DESCRIPTION)
    description, found_too, rest = rest.rpartition("\n" + L.PLAN_REQUIREMENTS)
    requirements, found_all, constraints = rest.partition("\n" + L.PLAN_CONSTRAINTS)
    if not (found and found_too and found_all):
        raise UnreadablePrompt(f"{what}: expected {L.PLAN_DESCRIPTION!r}, "
                               f"{L.PLAN_REQUIREMENTS!r} and {L.PLAN_CONSTRAINTS!r} in order")
    try:
        project_type = ProjectType(kind.strip())
    except ValueError as exc:
        raise UnreadablePrompt(f"{what}: no project type {kind.strip()!r}") from exc
    needs, limits = json_field(requirements, what), json_field(constraints, what)
    if not isinstance(needs, list) or not isinstance(limits, dict):
        raise UnreadablePrompt(f"{what}: requirements must be a JSON list, constraints an "
                               "object")
    return Decomposition(project_type=project_type, description=description,
                         requirements=[str(n) for n in needs], constraints=limits)


def metrics(request: CompletionRequest) -> dict[str, Any]:
    return read_metrics(prompt_text(request))


def read_metrics(prompt: str) -> dict[str, Any]:
    """The statistics the optimisation prompt holds."""
    found = json_field(between(prompt, L.METRICS, L.METRICS_END, "optimization"), "optimization")
    if not isinstance(found, dict):
        raise UnreadablePrompt("optimization: the metrics must be a JSON object")
    return found
