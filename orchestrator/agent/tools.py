"""The tools an agent may call, and how each call is answered.

A tool never raises into the loop: a bad call (unknown tool, missing argument, a task that is
not the project's or not done, a hostile path) is answered with an error result the model can
act on. Artifacts written here are kept with the attempt and saved with its output; the files
land under the project's output folder at integration.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from orchestrator.domain import prompt_labels as L
from orchestrator.domain.constants import MIN_ID_PREFIX, TaskStatus
from orchestrator.domain.errors import AgencyError
from orchestrator.domain.models import AgentOutput, Artifact, TaskRecord
from orchestrator.llm.base import Tool, ToolResultBlock, ToolUseBlock
from orchestrator.state import knowledge
from orchestrator.state.artifacts import normalise
from orchestrator.state.store import Store

log = logging.getLogger(__name__)

MAX_ARTIFACTS = 100
MAX_ARTIFACT_CHARS = 2_000_000
READ_CHARS = 20_000
SEARCH_HITS = 5
NO_MATCHES = "no matches"

SEARCH = Tool(
    name="search_knowledge",
    description="Search the project's knowledge base: the request, the analysis, the plan, "
    "every completed task's output and every artifact. Returns ranked snippets, each with "
    "its source. Use it for anything your brief does not hold.",
    input_schema={"type": "object", "properties": {
        "query": {"type": "string", "description": "words to search for"}},
        "required": ["query"], "additionalProperties": False})
READ = Tool(
    name="read_task_output",
    description="The whole output of a completed task of this project, by task index (\"3\") "
    "or task id: its summary, its content and the list of files it wrote; with `path`, the "
    "content of one of those files instead.",
    input_schema={"type": "object", "properties": {
        "task": {"type": "string", "description": "a task index or id"},
        "path": {"type": "string", "description": "one of the task's files (optional)"}},
        "required": ["task"], "additionalProperties": False})
WRITE = Tool(
    name="write_artifact",
    description="Write one text file of your deliverable under the project's output folder. "
    "The path is relative (such as site/index.html): no leading /, no '..', no backslashes. "
    "Writing the same path again replaces the file.",
    input_schema={"type": "object", "properties": {
        "path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"], "additionalProperties": False})
REVIEW = Tool(
    name="request_review",
    description="Ask for your work to be reviewed against the acceptance criteria before the "
    "tasks that depend on it start, with a note for the reviewer.",
    input_schema={"type": "object", "properties": {
        "note": {"type": "string", "description": "what the reviewer should look at"}},
        "required": ["note"], "additionalProperties": False})

ASK = Tool(
    name="ask_person",
    description="Ask the person who requested the project a question you cannot answer from "
    "the brief or the knowledge base, and the decision you will take if nobody answers. Your "
    "task waits for the answer while the rest of the project goes on; ask only what changes "
    "your work.",
    input_schema={"type": "object", "properties": {
        "question": {"type": "string", "description": "one clear question"},
        "assumption": {"type": "string",
                       "description": "what you will assume if no answer comes"}},
        "required": ["question", "assumption"], "additionalProperties": False})

AGENT_TOOLS = [SEARCH, READ, WRITE, REVIEW, ASK]
READ_ONLY_TOOLS = [SEARCH, READ]


def search_result(hits: list[knowledge.Hit]) -> str:
    """What search_knowledge answers: one line per hit, best first."""
    if not hits:
        return NO_MATCHES
    return "\n".join(L.SEARCH_HIT.format(rank=n, source=h.source, snippet=h.snippet)
                     for n, h in enumerate(hits, 1))


class ToolError(Exception):
    """A call the tool cannot honour; its message goes back to the model."""


def check_path(path: str) -> str:
    """The artifact path as given, when it is a plain relative path; else ToolError saying
    what to send instead."""
    if not path or not path.strip():
        raise ToolError("the path is empty")
    problems = []
    if path.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[/\\]", path):
        problems.append("it is absolute")
    if "\\" in path:
        problems.append("it has backslashes")
    if ".." in path.split("/"):
        problems.append("it climbs out with '..'")
    parts = normalise(path)
    clean = "/".join(parts)
    if not problems and clean != path:
        problems.append("it has characters or names a file system cannot hold")
    if problems:
        hint = f"; use {clean!r}" if clean else ""
        raise ToolError(f"path {path!r} refused: {', '.join(problems)}{hint}")
    return clean


@dataclass
class ProjectTools:
    """Tools over one project's store: what agents, reviewers and integration may call."""

    store: Store
    project_id: str
    task_id: str | None = None
    offered: list[Tool] = field(default_factory=lambda: list(READ_ONLY_TOOLS))
    artifacts: dict[str, str] = field(default_factory=dict)
    review_notes: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    # Asks a person (the runner's, with the attempt's claim): question, assumption and the
    # tool call's id -> the tool's result; raises Parked while the answer is not in.
    asker: Callable[[str, str, str], str] | None = None
    # Questions nobody answered in time, with the assumption the agent went on with.
    assumptions: list[tuple[str, str]] = field(default_factory=list)
    # When a list: each call's event (kind, line) waits here to be written with its turn's
    # journal row (`take_notes`), one round trip for the turn instead of one per call.
    pending: list[tuple[str, str]] | None = None

    @property
    def tools(self) -> list[Tool]:
        return self.offered

    def run(self, call: ToolUseBlock) -> ToolResultBlock:
        handlers = {"search_knowledge": self._search, "read_task_output": self._read,
                    "write_artifact": self._write, "request_review": self._review}
        offered = {t.name for t in self.offered}
        try:
            if call.name not in offered:
                raise ToolError(f"unknown tool {call.name!r}; the tools are "
                                f"{', '.join(sorted(offered))}")
            result = (self._ask(call.input, call.id) if call.name == "ask_person"
                      else handlers[call.name](call.input))
            is_error = False
        except ToolError as exc:
            result, is_error = f"error: {exc}", True
        except AgencyError as exc:
            result, is_error = f"error: {exc.message}", True
        self._note(call, result, is_error)
        return ToolResultBlock(tool_use_id=call.id, content=result, is_error=is_error)

    def _note(self, call: ToolUseBlock, result: str, is_error: bool) -> None:
        args = json.dumps({k: (v if k != "content" else f"{len(str(v))} chars")
                           for k, v in call.input.items()}, ensure_ascii=False)[:300]
        line = f"{call.name}({args}) -> {result.splitlines()[0][:200] if result else ''}"
        self.calls.append(line)
        kind = "tool_error" if is_error else "tool"
        if self.pending is not None:
            self.pending.append((kind, line))
            return
        try:
            self.store.note(self.project_id, self.task_id, kind, line)
        except AgencyError as exc:  # a note is not worth failing a call for
            log.warning("could not note a tool call: %s", exc)

    def take_notes(self) -> list[tuple[str, str]]:
        """The calls' events not written yet (see `pending`), handed over once."""
        taken, self.pending = list(self.pending or []), ([] if self.pending is not None
                                                          else None)
        return taken

    @staticmethod
    def _text(args: dict[str, Any], name: str) -> str:
        value = args.get(name)
        if not isinstance(value, str):
            raise ToolError(f"argument {name!r} must be a string")
        return value

    def _search(self, args: dict[str, Any]) -> str:
        return search_result(knowledge.search(self.store.db, self.project_id,
                                              self._text(args, "query"), SEARCH_HITS))

    def _task(self, ref: str) -> TaskRecord:
        tasks = self.store.tasks(self.project_id)
        ref = ref.strip().removeprefix("#")
        found = [t for t in tasks if str(t.index) == ref or t.id == ref
                 or (len(ref) >= MIN_ID_PREFIX and t.id.startswith(ref))]
        if len(found) != 1:
            raise ToolError(f"no single task {ref!r} in this project; give its index "
                            f"(0 to {len(tasks) - 1}) or id")
        return found[0]

    def _read(self, args: dict[str, Any]) -> str:
        task = self._task(self._text(args, "task"))
        if task.status is not TaskStatus.COMPLETED or task.output is None:
            raise ToolError(f"task {task.index} '{task.title}' is {task.status.value}; only "
                            "completed tasks have an output")
        path = args.get("path")
        if path is not None:
            found = [a for a in task.output.artifacts if a.path == path]
            if not found:
                raise ToolError(f"task {task.index} wrote no file {path!r}; its files: "
                                + (", ".join(a.path for a in task.output.artifacts) or "none"))
            body = found[0].content
            cut = f"\n[... {len(body) - READ_CHARS} characters cut]" if len(
                body) > READ_CHARS else ""
            return body[:READ_CHARS] + cut
        body = task.output.content
        if len(body) > READ_CHARS:
            body = body[:READ_CHARS] + f"\n[... {len(body) - READ_CHARS} characters cut]"
        files = "\n".join(f"- {a.path} ({len(a.content)} characters)"
                          for a in task.output.artifacts) or "(none)"
        return (f"# Task {task.index} '{task.title}' ({task.agent_type.value})\n"
                f"Summary: {task.output.summary}\n\n{body}\n\nFiles:\n{files}")

    def _write(self, args: dict[str, Any]) -> str:
        path = check_path(self._text(args, "path"))
        content = self._text(args, "content")
        if len(content) > MAX_ARTIFACT_CHARS:
            raise ToolError(f"{len(content)} characters is more than the "
                            f"{MAX_ARTIFACT_CHARS} a file may hold")
        if path not in self.artifacts and len(self.artifacts) >= MAX_ARTIFACTS:
            raise ToolError(f"a task writes at most {MAX_ARTIFACTS} files")
        self.artifacts[path] = content
        return f"saved {PurePosixPath('artifacts', path)} ({len(content)} characters)"

    def _review(self, args: dict[str, Any]) -> str:
        self.review_notes.append(self._text(args, "note")[:2000])
        return "noted: a reviewer will check your work after you answer"

    def _ask(self, args: dict[str, Any], tool_use_id: str) -> str:
        question = self._text(args, "question").strip()[:2000]
        assumption = self._text(args, "assumption").strip()[:2000]
        if not question or not assumption:
            raise ToolError("give both a question and the assumption you will go on with")
        if self.asker is None:
            raise ToolError("nobody can be asked here: go on with your assumption")
        return self.asker(question, assumption, tool_use_id)

    def replay(self, call: ToolUseBlock) -> None:
        """A call answered before (its result comes from the journal): rebuild what the tool
        keeps (the files written, the review notes, an unanswered question's assumption)
        without running anything that reads the project again."""
        if call.name not in {t.name for t in self.offered}:
            return
        try:
            if call.name == "write_artifact":
                self._write(call.input)
            elif call.name == "request_review":
                self._review(call.input)
            elif call.name == "ask_person":
                self._ask(call.input, call.id)
        except (ToolError, AgencyError):  # it was answered with this error the first time
            pass

    def with_assumptions(self, output: AgentOutput) -> AgentOutput:
        """The answer with every unanswered question and the assumption taken, on record."""
        if not self.assumptions:
            return output
        lines = "\n".join(f"- Asked: {q}\n  No answer came in time; assumed: {a}"
                          for q, a in self.assumptions)
        return output.model_copy(update={
            "content": f"{output.content}\n\n## Open questions\n\n{lines}\n"})

    def with_artifacts(self, output: AgentOutput) -> AgentOutput:
        """The answer with the files written through the tool (the answer's own win on a tie)."""
        own = {a.path for a in output.artifacts}
        written = [Artifact(path=p, content=c) for p, c in self.artifacts.items()
                   if p not in own]
        if not written:
            return output
        return AgentOutput(summary=output.summary, content=output.content,
                           artifacts=[*written, *output.artifacts][:MAX_ARTIFACTS])
