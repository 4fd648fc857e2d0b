"""The offline model: reads a request's prompts and tool results, as Claude would, and answers.

It gets exactly what the Anthropic API gets (system blocks, messages, tools, the output
schema) and nothing else, so the prompts are exercised offline too. Its answers are
deterministic: the analysis and plan for the request, and for an agent a tool loop of its own
(search the knowledge base, write its files, answer), a reviewer's verdict, and the
integrated deliverable. Usage is accounted as the API would, prompt caching included.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import BaseModel

from agency_offline import classify as offline
from agency_offline import ledger as offline_stats
from agency_offline import reading
from agency_offline.latency import Latency
from agency_offline.reading import Transcript, UnreadablePrompt
from agency_offline.writer import (
    NOT_WORK,
    Dependency,
    Finding,
    TaskBrief,
    artifacts_for,
    draft,
)
from orchestrator.domain import prompt_labels as L
from orchestrator.domain.models import (
    AgentOutput,
    Analysis,
    CriterionCheck,
    Deliverable,
    Optimization,
    Plan,
    Verdict,
)
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Content,
    Progress,
    TextBlock,
    ToolUseBlock,
)
from orchestrator.llm.cache import PromptCache, count_tokens
from orchestrator.llm.wire import request_json

MODEL_NAME = "offline"
EXCERPT_CHARS = 600  # what the writer quotes from a dependency's output
# Sections that are not the work itself: the agent's checklist of its own criteria (a claim,
# not evidence) and what it quotes from elsewhere.
_NOT_WORK = re.compile(f"^## (?:{'|'.join(map(re.escape, NOT_WORK))})\n.*?(?=^## |\\Z)",
                       re.MULTILINE | re.DOTALL)
_WORD = re.compile(r"[a-z][a-z0-9-]{3,}")
_STOP = frozenset({"with", "that", "this", "from", "into", "each", "every", "their", "have",
                   "will", "complete", "consistent", "inputs", "should", "must", "the"})


def _findings(t: Transcript) -> list[Finding]:
    # The search marks matched words **so**; a draft quotes plain text.
    return [Finding(source=h.source, snippet=h.snippet.replace("**", "")) for h in t.hits()]


def task_brief(request: CompletionRequest, t: Transcript) -> TaskBrief:
    """What the writer is given: the task as its prompt states it, what the agent found, and
    the reviewers' notes."""
    task = reading.agent_task(request)
    return TaskBrief(
        agent_type=task.agent_type, title=task.title, description=task.description,
        request=task.request, deliverables=task.deliverables, criteria=task.criteria,
        dependencies=[Dependency(title=i.title, agent_type=i.agent_type, summary=i.summary,
                                 excerpt=i.content[:EXCERPT_CHARS]) for i in task.inputs],
        findings=_findings(t), review_notes=t.review_notes())


def _use(t: Transcript, *calls: tuple[str, dict[str, Any]]) -> list[Content]:
    return [ToolUseBlock(id=f"toolu_offline_{t.turns:02d}_{n}", name=name, input=args)
            for n, (name, args) in enumerate(calls)]


def agent_turn(request: CompletionRequest, t: Transcript) -> list[Content]:
    """Search first, then write the files, then answer."""
    b = task_brief(request, t)
    if t.may_call and not t.called("search_knowledge"):
        query = " ".join([b.title, *b.deliverables])
        return _use(t, ("search_knowledge", {"query": query}))
    files = artifacts_for(b)
    if t.may_call and files and not t.called("write_artifact"):
        return _use(t, *(("write_artifact", {"path": a.path, "content": a.content})
                         for a in files))
    output = draft(b)
    written = t.written()
    kept = [a for a in output.artifacts if a.path not in written]
    return [TextBlock(text=output.model_copy(update={"artifacts": kept}).model_dump_json())]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def verdict(review: reading.Review) -> Verdict:
    """Each criterion is met when the work (not its own checklist) covers most of its words."""
    seen = _words(_NOT_WORK.sub("", review.work))
    checks = []
    for criterion in review.criteria:
        words = _words(criterion)
        missing = sorted(words - seen)
        met = not words or len(missing) <= len(words) * 0.4
        checks.append(CriterionCheck(criterion=criterion, met=met, note="" if met else (
            f"add {criterion}. The work does not cover: {', '.join(missing[:6])}")))
    failing = [c for c in checks if not c.met]
    return Verdict(verdict="revise" if failing else "pass", criteria=checks,
                   summary=f"{len(checks) - len(failing)} of {len(checks)} criteria met.")


def integration_turn(request: CompletionRequest, t: Transcript) -> list[Content]:
    """Read the knowledge base for the success criteria, then integrate."""
    brief = reading.integration(request)
    criteria = brief.success_criteria
    if t.may_call and not t.called("search_knowledge"):
        return _use(t, ("search_knowledge", {"query": " ".join(criteria) or "deliverable"}))
    results = [{"title": r.title, "agent_type": r.agent_type, "summary": r.summary}
               for r in brief.results]
    result = offline.deliverable({"request": brief.request, "results": results,
                                  "success_criteria": criteria,
                                  "findings": [f"{f.snippet} (source: {f.source})"
                                               for f in _findings(t)]})
    return [TextBlock(text=result.model_dump_json())]


ANSWERS = (Analysis, Plan, AgentOutput, Verdict, Deliverable, Optimization)


def _json(answer: BaseModel) -> list[Content]:
    return [TextBlock(text=answer.model_dump_json())]


def is_warmup(request: CompletionRequest) -> bool:
    """A warm-up of the agents' cached prefix (its only message says so)."""
    first = request.messages[0].content if request.messages else []
    return bool(first) and isinstance(first[0], TextBlock) and first[0].text == L.WARMUP


def respond(request: CompletionRequest) -> list[Content]:
    """The offline model's next message for this request, by the answer its schema asks for;
    UnreadablePrompt for a schema it does not answer or a prompt it cannot read. A request
    that asks for no schema gets a line of text, as the Messages API answers any prompt
    (Agency always asks for one; tests of the transport do not)."""
    if is_warmup(request):
        return [TextBlock(text="{")]  # cut at its one token: a warm-up's answer is not read
    t = Transcript(request)
    title = reading.schema_title(request)
    if not title:
        return [TextBlock(text="The offline model answers structured requests; this one "
                               "asked for no output schema.")]
    if title == Analysis.__name__:
        return _json(offline.analyze(reading.analysis_request(request)))
    if title == Plan.__name__:
        asked = reading.decomposition(request)
        return _json(offline.plan(asked.project_type, asked.description))
    if title == AgentOutput.__name__:
        return agent_turn(request, t)
    if title == Verdict.__name__:
        return _json(verdict(reading.review(request)))
    if title == Deliverable.__name__:
        return integration_turn(request, t)
    if title == Optimization.__name__:
        return _json(offline_stats.optimization(reading.metrics(request)))
    raise UnreadablePrompt(f"the offline model answers no schema {title!r} (it answers "
                           f"{', '.join(m.__name__ for m in ANSWERS)})")


class OfflineProvider:
    """Deterministic answers through the same seam as the Anthropic provider."""

    name = "offline"
    # No Message Batches: its answers would live in one process's memory, and a batch is
    # collected by whichever process polls it (orchestrator.llm.base.BatchProvider).
    supports_batches = False

    def __init__(self, latency: float = 0.0, spread: float = 0.0) -> None:
        self.latency = Latency(latency, spread)
        self.cache = PromptCache()

    def delay(self, request: CompletionRequest) -> float:
        """Seconds this call takes (agency_offline/latency.py)."""
        return self.latency.of(reading.task_title(request))

    def count_tokens(self, request: CompletionRequest) -> int:
        """The prompt's tokens as this model counts them (what its cache accounting counts)."""
        body = request_json(request.model_copy(update={"model": MODEL_NAME}))
        return self.cache.account(body, 0, record=False).input_total

    def complete(self, request: CompletionRequest,
                 progress: Progress | None = None) -> CompletionResponse:
        started = time.monotonic()
        delay = self.delay(request)
        if delay:
            time.sleep(delay)
        content = respond(request)
        body = request_json(request.model_copy(update={"model": MODEL_NAME}))
        output = count_tokens([json.dumps(b.model_dump()) for b in content])
        stop = "tool_use" if any(isinstance(b, ToolUseBlock) for b in content) else "end_turn"
        if is_warmup(request):
            output, stop = min(output, request.max_tokens), "max_tokens"
        # As the API does: the request is matched against the cache when it arrives, and
        # the entries it writes are readable once its answer begins (siblings that arrive
        # together each write the prefix).
        tokens = self.cache.account(body, output, now=started, begins=started + delay)
        return CompletionResponse(content=content, model=MODEL_NAME, tokens=tokens,
                                  latency_ms=int((time.monotonic() - started) * 1000),
                                  stop_reason=stop)
