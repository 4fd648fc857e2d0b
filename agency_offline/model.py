"""The offline model: reads a request's prompts and tool results, as Claude would, and answers.

It gets exactly what the Anthropic API gets (system blocks, messages, tools, the output
schema) and nothing else, so the prompts are exercised offline too. Its answers are
deterministic: the analysis and plan for the request, and for an agent a tool loop of its own
(search the knowledge base, write its files, answer), a reviewer's verdict, and the
integrated deliverable. Usage is accounted as the API would, prompt caching included.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from agency_offline import classify as offline
from agency_offline import ledger as offline_stats
from agency_offline.writer import Dependency, Finding, TaskBrief, artifacts_for, draft
from orchestrator.agent.prompts import AGENT_PROMPTS
from orchestrator.domain.constants import AgentType, ProjectType
from orchestrator.domain.models import CriterionCheck, Verdict
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Content,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from orchestrator.llm.cache import PromptCache, count_tokens
from orchestrator.llm.structured import LAST_TURN
from orchestrator.llm.wire import request_json

MODEL_NAME = "offline"
_DEP = re.compile(r"^## Input from task (\d+) '(.*)' \((\w+)\)$", re.MULTILINE)
_HIT = re.compile(r"^\d+\. \[(.+?)\] (.*)$")
# Sections that are not the work itself: the agent's checklist of its own criteria (a claim,
# not evidence) and what it quotes from elsewhere.
_NOT_WORK = re.compile(r"^## (?:Acceptance criteria|Sources|What the project's knowledge base "
                       r"says)\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
_WORD = re.compile(r"[a-z][a-z0-9-]{3,}")
_STOP = frozenset({"with", "that", "this", "from", "into", "each", "every", "their", "have",
                   "will", "complete", "consistent", "inputs", "should", "must", "the"})


def line(text: str, prefix: str) -> str:
    """The rest of the first line of `text` that starts with `prefix`."""
    for row in text.splitlines():
        if row.startswith(prefix):
            return row[len(prefix):].strip()
    return ""


def items(text: str, prefix: str) -> list[str]:
    return [i.strip() for i in line(text, prefix).split("; ") if i.strip()]


def schema_title(request: CompletionRequest) -> str:
    return str((request.json_schema or {}).get("title", ""))


class Transcript:
    """What happened so far in a conversation: the tool calls made and what they returned."""

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        self.first = request.messages[0].text if request.messages else ""
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
        last = self.request.messages[-1].text if self.request.messages else ""
        return (bool(self.request.tools) and self.request.tool_choice == "auto"
                and LAST_TURN not in last)

    def called(self, name: str) -> bool:
        return any(call.name == name for call, _ in self.results)

    def findings(self) -> list[Finding]:
        found = []
        for call, result in self.results:
            if call.name == "search_knowledge" and not result.is_error:
                for row in result.content.splitlines():
                    match = _HIT.match(row)
                    if match:
                        # The search marks matched words **so**; a draft quotes plain text.
                        found.append(Finding(source=match.group(1),
                                             snippet=match.group(2).replace("**", "")))
        return found

    def written(self) -> set[str]:
        return {str(call.input.get("path")) for call, result in self.results
                if call.name == "write_artifact" and not result.is_error}

    def notes(self) -> list[str]:
        """Every reviewer's note sent back so far."""
        notes = []
        for message in self.request.messages[1:]:
            text = message.text if message.role == "user" else ""
            if text.startswith("Review round"):
                notes += [r[2:].strip() for r in text.splitlines() if r.startswith("- ")]
        return notes

    def use(self, *calls: tuple[str, dict[str, Any]]) -> list[Content]:
        return [ToolUseBlock(id=f"toolu_offline_{self.turns:02d}_{n}", name=name, input=args)
                for n, (name, args) in enumerate(calls)]


def _agent(system: str) -> AgentType:
    return next((a for a, prompt in AGENT_PROMPTS.items() if prompt in system),
                AgentType.PROJECT_MANAGER)


def _dependencies(text: str) -> list[Dependency]:
    found = []
    matches = list(_DEP.finditer(text))
    for n, match in enumerate(matches):
        end = matches[n + 1].start() if n + 1 < len(matches) else len(text)
        body = text[match.end():end].strip()
        summary = line(body, "Summary:")
        content = body.split("\n\n", 1)[1] if "\n\n" in body else body
        found.append(Dependency(title=match.group(2), agent_type=match.group(3),
                                summary=summary, excerpt=content[:600]))
    return found


def task_brief(t: Transcript) -> TaskBrief:
    system = t.request.system_text
    return TaskBrief(agent_type=_agent(system), title=line(t.first, "Your task:"),
                     description=line(t.first, "Description:"), request=line(system, "Request:"),
                     deliverables=items(t.first, "Deliverables:"),
                     criteria=items(t.first, "Acceptance criteria:"),
                     dependencies=_dependencies(t.first), findings=t.findings(),
                     review_notes=t.notes())


def agent_turn(t: Transcript) -> list[Content]:
    """Search first, then write the files, then answer."""
    b = task_brief(t)
    if t.may_call and not t.called("search_knowledge"):
        query = " ".join([b.title, *b.deliverables])
        return t.use(("search_knowledge", {"query": query}))
    files = artifacts_for(b)
    if t.may_call and files and not t.called("write_artifact"):
        return t.use(*(("write_artifact", {"path": a.path, "content": a.content})
                       for a in files))
    output = draft(b)
    written = t.written()
    kept = [a for a in output.artifacts if a.path not in written]
    return [TextBlock(text=output.model_copy(update={"artifacts": kept}).model_dump_json())]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def verdict(t: Transcript) -> Verdict:
    """Each criterion is met when the work (not its own checklist) covers most of its words."""
    evidence = _NOT_WORK.sub("", t.first.split("## Output under review", 1)[-1])
    seen = _words(evidence)
    checks = []
    for criterion in items(t.first, "Acceptance criteria:"):
        words = _words(criterion)
        missing = sorted(words - seen)
        met = not words or len(missing) <= len(words) * 0.4
        checks.append(CriterionCheck(criterion=criterion, met=met, note="" if met else (
            f"add {criterion}. The work does not cover: {', '.join(missing[:6])}")))
    failing = [c for c in checks if not c.met]
    return Verdict(verdict="revise" if failing else "pass", criteria=checks,
                   summary=f"{len(checks) - len(failing)} of {len(checks)} criteria met.")


def integration_turn(t: Transcript) -> list[Content]:
    """Read the knowledge base for the success criteria, then integrate."""
    criteria = [r[2:] for r in t.first.split("Success criteria:", 1)[-1].splitlines()
                if r.startswith("- ")]
    if t.may_call and not t.called("search_knowledge"):
        return t.use(("search_knowledge", {"query": " ".join(criteria) or "deliverable"}))
    body = t.first.split("Task Results:\n", 1)[1].split("\n\nCreate an integrated", 1)[0]
    # (`task`/`result`: the one-shot prompt of earlier versions, which benchmarks still run.)
    results = [{"title": r.get("title", r.get("task")), "agent_type": r["agent"],
                "summary": r.get("summary", str(r.get("result", "")).split("\n", 1)[0])}
               for r in json.loads(body)]
    result = offline.deliverable({"request": line(t.first, "Project:"), "results": results,
                                  "success_criteria": criteria,
                                  "findings": [f"{f.snippet} (source: {f.source})"
                                               for f in t.findings()]})
    return [TextBlock(text=result.model_dump_json())]


def respond(request: CompletionRequest) -> list[Content]:
    """The offline model's next message for this request."""
    t = Transcript(request)
    match schema_title(request):
        case "Analysis":
            text = t.first.split("Request: ", 1)[-1].split("\n\nProvide", 1)[0]
            return [TextBlock(text=offline.analyze(text).model_dump_json())]
        case "Plan":
            kind = ProjectType(line(t.first, "Project Type:") or "custom")
            plan = offline.plan(kind, line(t.first, "Description:"))
            return [TextBlock(text=plan.model_dump_json())]
        case "AgentOutput":
            return agent_turn(t)
        case "Verdict":
            return [TextBlock(text=verdict(t).model_dump_json())]
        case "Deliverable":
            return integration_turn(t)
        case "Optimization":
            return [TextBlock(text=offline_stats.optimization(t.first).model_dump_json())]
        case _:
            return [TextBlock(text="{}")]


class OfflineProvider:
    """Deterministic answers through the same seam as the Anthropic provider."""

    name = "offline"

    def __init__(self, latency: float = 0.0, spread: float = 0.0) -> None:
        self.latency, self.spread = latency, spread
        self.cache = PromptCache()

    def delay(self, request: CompletionRequest) -> float:
        """Seconds this call takes: `latency`, times a factor within 1 +- `spread` that is fixed
        per agent task (from its title), so that tasks differ in length as real ones do."""
        if not self.spread:
            return self.latency
        title = line(Transcript(request).first, "Your task:")
        if not title:
            return self.latency
        digest = int.from_bytes(hashlib.blake2b(title.encode(), digest_size=8).digest(), "big")
        return self.latency * (1 - self.spread + 2 * self.spread * digest / 2**64)

    def complete(self, request: CompletionRequest) -> CompletionResponse:
        started = time.monotonic()
        delay = self.delay(request)
        if delay:
            time.sleep(delay)
        content = respond(request)
        body = request_json(request.model_copy(update={"model": MODEL_NAME}))
        tokens = self.cache.account(body, count_tokens(
            [json.dumps(b.model_dump()) for b in content]))
        stop = "tool_use" if any(isinstance(b, ToolUseBlock) for b in content) else "end_turn"
        return CompletionResponse(content=content, model=MODEL_NAME, tokens=tokens,
                                  latency_ms=int((time.monotonic() - started) * 1000),
                                  stop_reason=stop)
