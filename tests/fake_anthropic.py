"""A local HTTP server that speaks the Anthropic Messages API, for driving the real SDK.

It answers through the offline model, which reads the request's prompts, tools and tool
results as Claude would (tool use included), reports usage with prompt caching as the API
accounts it (each model's minimum cacheable length, breakpoints, 20-block lookback, 5-minute
and 1-hour lives, an entry readable once the answer that wrote it begins:
orchestrator/llm/cache.py), and injects faults: 429 with retry-after, 529, 500, broken
JSON, schema violations, answers slower than the client's timeout, refusals, hostile artifact
paths, scripted "revise" verdicts, answers longer than `max_tokens`.
Modes come from `script` first, then at random with the configured rates; a streamed answer
may also stall after its first event ("stall") or end in an `error` event ("stream_error").

It is as strict as the API (every per-model fact from orchestrator/domain/catalog.py; the
checks in tests/fake_anthropic_rules.py): it refuses with 400 `invalid_request_error` (404 for
an unknown model) what the API refuses -- roles that do not alternate, a conversation that does
not start with the user or ends on the assistant on a model that takes no prefill, a `tool_use`
not answered by its `tool_result` at the start of the next message, empty text, more than 4
cache breakpoints or a 1-hour one after a 5-minute one, sampling parameters on 5.x models or
with thinking, a thinking parameter or effort the model does not take, a forced `tool_choice`
with thinking, a tool turn of a thinking request passed back without the signed thinking block
returned with those very tool calls (or with a block changed), `max_tokens` above the model's
cap, a prompt over its context window -- and keeps each refusal's message in `refused`. It
answers as the API does (tests/fake_anthropic_answers.py): a request that thinks gets a signed
thinking block first (longer with more effort); an answer is cut at `max_tokens` (stop reason
`max_tokens`) or where it fills the context window (`model_context_window_exceeded`); text
after tool results gets an empty `end_turn`; `"stream": true` gets server-sent events as the
API sends them, the latency spread over them; and `/v1/messages/count_tokens` counts.

With `Faults.rate_limits` it also enforces an organisation's rate limits as the API does: a
token bucket per model and dimension, refilled continuously (limit per `rate_window`, a
minute unless a test compresses time), that admits a request on its uncached input tokens and
its `max_tokens` and then settles with what it used; a request that does not fit gets 429
`rate_limit_error` with `retry-after` (whole seconds), and every response carries the
`anthropic-ratelimit-*` headers (resets as RFC 3339 times).

It also serves the Message Batches API (tests/fake_anthropic_batches.py): a batch's requests
are checked and answered as live ones, released `batch_seconds` after it was created; the
batches are kept in `batches`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agency_offline import model as offline_model
from agency_offline import reading
from orchestrator.domain.catalog import spec
from orchestrator.domain.constants import Role
from orchestrator.llm.base import (
    CompletionRequest,
    Content,
    Message,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from orchestrator.llm.cache import PromptCache, prompt_tokens
from orchestrator.llm.wire import block_json
from tests.fake_anthropic_answers import cut, lengthen, reasoning, sse, text_after_tool_results
from tests.fake_anthropic_batches import Batch, Batches, route
from tests.fake_anthropic_rules import Issued, Plan, Refused, sign, validate

__all__ = ["FakeAnthropic", "Faults", "Refused", "cut", "sse", "task_title"]


def _content(value: str | list[dict[str, Any]]) -> list[Content]:
    if isinstance(value, str):
        return [TextBlock(text=value)]
    out: list[Content] = []
    for item in value:
        cache = "cache_control" in item
        if item.get("type") == "text":
            out.append(TextBlock(text=item["text"], cache=cache))
        elif item.get("type") == "tool_use":
            out.append(ToolUseBlock(id=item["id"], name=item["name"], input=item["input"]))
        elif item.get("type") == "tool_result":
            body = item.get("content", "")
            if isinstance(body, list):
                body = "".join(b.get("text", "") for b in body)
            out.append(ToolResultBlock(tool_use_id=item["tool_use_id"], content=body,
                                       is_error=bool(item.get("is_error")), cache=cache))
    return out


def request_from_json(body: dict[str, Any], role: Role = Role.AGENT) -> CompletionRequest:
    """A request as the API receives it, for the offline model to answer (thinking blocks
    are left out: the offline model reads only what was said)."""
    system = body.get("system") or []
    fmt = (body.get("output_config") or {}).get("format") or {}
    return CompletionRequest(
        role=role, model=body["model"], max_tokens=body.get("max_tokens", 8000),
        system=[TextBlock(text=system)] if isinstance(system, str) else [
            TextBlock(text=b["text"], cache="cache_control" in b) for b in system],
        messages=[Message(role=m["role"], content=_content(m["content"]))
                  for m in body.get("messages", [])],
        tools=[Tool(name=t["name"], description=t.get("description", ""),
                    input_schema=t["input_schema"]) for t in body.get("tools") or []],
        tool_choice="none" if (body.get("tool_choice") or {}).get("type") == "none" else "auto",
        json_schema=fmt.get("schema"))


class _Server(ThreadingHTTPServer):
    # A burst of a thousand clients connecting at once is queued as a real API front end would
    # queue it: the default backlog of 5 would make most of them retry their SYN a second later.
    request_queue_size = 4096
    daemon_threads = True


@dataclass
class Faults:
    rate_limit: float = 0.0
    overloaded: float = 0.0
    server_error: float = 0.0
    broken_json: float = 0.0
    schema_violation: float = 0.0
    slow: float = 0.0
    retry_after: float = 0.05
    slow_seconds: float = 2.0
    latency: float = 0.0  # every answer takes this long, like a real model
    slow_tasks: dict[str, float] = field(default_factory=dict)  # task title -> seconds
    slow_schemas: dict[str, float] = field(default_factory=dict)  # "Analysis" -> seconds
    # Modes for a task's next calls, by title prefix: {"Write": deque(["bad_request"])}.
    task_modes: dict[str, deque[str]] = field(default_factory=dict)
    # Artifact paths a task's answer proposes, by title prefix (a model's hostile paths).
    artifacts: dict[str, list[str]] = field(default_factory=dict)
    # Task-title prefix -> (question, assumption): on its first turn the agent asks a person
    # through the ask_person tool, as Claude would when the brief leaves a decision open.
    questions: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Verdicts of a task's reviews, by title prefix: {"Frontend": deque(["revise"])}.
    verdicts: dict[str, deque[str]] = field(default_factory=dict)
    # The organisation's limits per model, as the API enforces them: {"rpm": 50, "itpm":
    # 30000, "otpm": 8000} per `rate_window` seconds (any subset).
    rate_limits: dict[str, int] = field(default_factory=dict)
    rate_window: float = 60.0
    # Task-title prefix -> extra tokens: the agent's answer (its Markdown `content`, or the
    # text) is that much longer, so that a small `max_tokens` cuts it.
    long_answers: dict[str, int] = field(default_factory=dict)
    # Task-title prefix -> extra tokens in the first file each write_artifact turn writes.
    long_artifacts: dict[str, int] = field(default_factory=dict)

    def draw(self, rng: random.Random) -> str:
        roll = rng.random()
        for mode in ("rate_limit", "overloaded", "server_error", "broken_json",
                     "schema_violation", "slow"):
            rate = float(getattr(self, mode))
            if roll < rate:
                return mode
            roll -= rate
        return "ok"


def _first_text(body: dict[str, Any]) -> str:
    """The prompt the conversation started with (an agent's task, a reviewer's brief): its
    first message's first text block, as the offline model reads it."""
    messages = body.get("messages") or [{"content": ""}]
    content = messages[0]["content"]
    if isinstance(content, str):
        return content
    return next((b.get("text", "") for b in content if b.get("type") == "text"), "")


def _first_turn(body: dict[str, Any]) -> bool:
    return len(body.get("messages") or []) == 1


def task_title(body: dict[str, Any]) -> str:
    """The agent task a request works on ("" for planning, reviews and integration)."""
    return reading.read_task_title(_first_text(body)) or ""


def _propose(content: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
    """The model proposes these (hostile) paths: as files it writes, and in its answer."""
    out = []
    for block in content:
        if block["type"] == "tool_use" and block["name"] == "write_artifact":
            out += [{**block, "id": f"{block['id']}_{n}",
                     "input": {"path": p, "content": f"proposed as {p!r}\n"}}
                    for n, p in enumerate(paths)]
            continue
        if block["type"] == "text" and block["text"].startswith("{"):
            data = json.loads(block["text"])
            if "artifacts" in data:
                data["artifacts"] = [{"path": p, "content": f"proposed as {p!r}\n"}
                                     for p in paths]
                block = {**block, "text": json.dumps(data)}
        out.append(block)
    return out


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """What a cooperative Claude would say: the offline model reads the same request."""
    content = offline_model.respond(request_from_json(body))
    stop = "tool_use" if any(isinstance(b, ToolUseBlock) for b in content) else "end_turn"
    return [block_json(b) for b in content], stop


# Faults.rate_limits keys and the header family each one is reported in.
DIMENSIONS = {"rpm": "requests", "itpm": "input-tokens", "otpm": "output-tokens"}


@dataclass
class Bucket:
    """One limit, replenished continuously up to its size, as the API's are."""

    limit: float
    window: float
    tokens: float
    at: float

    def level(self, now: float) -> float:
        self.tokens = min(self.limit, self.tokens + (now - self.at) * self.limit / self.window)
        self.at = now
        return self.tokens

    def wait(self, need: float, now: float) -> float:
        """Seconds until `need` fits (0: it fits now)."""
        short = min(need, self.limit) - self.level(now)
        return max(0.0, short * self.window / self.limit)

    def headers(self, family: str, now: float) -> dict[str, str]:
        full = time.time() + (self.limit - self.level(now)) * self.window / self.limit
        reset = datetime.fromtimestamp(math.ceil(full), UTC).isoformat().replace("+00:00", "Z")
        return {f"anthropic-ratelimit-{family}-limit": str(int(self.limit)),
                f"anthropic-ratelimit-{family}-remaining": str(max(0, int(self.tokens))),
                f"anthropic-ratelimit-{family}-reset": reset}


def itpm_cost(usage: dict[str, int]) -> int:
    """What counts toward input tokens per minute: cache reads do not (current models)."""
    return usage["input_tokens"] + usage["cache_creation_input_tokens"]


@dataclass
class Reply:
    """What the server sends: a status, a JSON body (or a stream of events), headers, and how
    long the answer takes before (or, streamed, across) its events."""

    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stream: bool = False
    stall: float = 0.0  # streamed: seconds before the first byte (a slow answer)
    task: str | None = None  # an answer's task title ("" for none); None: not an answer
    # Streamed: "stall" stops `slow_seconds` after message_start, "stream_error" sends an
    # overloaded_error event after the first block starts (as the API may, after a 200).
    mode: str = "ok"


@dataclass
class FakeAnthropic:
    api_key: str = "sk-test-fake"
    faults: Faults = field(default_factory=Faults)
    seed: int = 1
    script: deque[str] = field(default_factory=deque)
    usage: list[dict[str, int]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    admitted: list[float] = field(default_factory=list)  # when each request passed the limits
    limited: int = 0  # requests refused with 429 by the rate limits
    port: int = 0  # 0: any free port
    in_flight: int = 0  # answers being prepared right now (their latency included)
    answered: list[str] = field(default_factory=list)  # each 200 answer's task title, in order
    peak_in_flight: int = 0
    # Every request the API would have refused: its message (a well-behaved client: none).
    refused: list[str] = field(default_factory=list)
    counted: list[dict[str, Any]] = field(default_factory=list)  # count_tokens bodies
    messages: list[dict[str, Any]] = field(default_factory=list)  # every 200 message sent
    chunk: int = 48  # characters per streamed delta
    batch_seconds: float = 1.0  # a Message Batch is in progress this long, then ends
    batches: dict[str, Batch] = field(default_factory=dict)  # id -> the batch
    expire: set[str] = field(default_factory=set)  # custom ids whose batched request expires

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self.secret = secrets.token_bytes(32)
        self._issued: Issued = {}
        self.cache = PromptCache()
        self.batch_api = Batches(self)
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        # (a short poll: a test's server stops at once)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def refusals(self) -> Counter[str]:
        """How many times each refusal message was given."""
        with self._lock:
            return Counter(self.refused)

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def totals(self) -> dict[str, int]:
        keys = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                "cache_creation_input_tokens")
        with self._lock:
            return {k: sum(u[k] for u in self.usage) for k in keys}

    def sign(self, model: str, thinking: str) -> str:
        """The signature this server gives a thinking block of `model`."""
        return sign(self.secret, model, thinking)

    def _mode(self, body: dict[str, Any]) -> str:
        task = task_title(body)
        with self._lock:
            queued = next((q for k, q in self.faults.task_modes.items()
                           if task and task.startswith(k) and q), None)
            if queued is not None:
                mode = queued.popleft()
            else:
                mode = self.script.popleft() if self.script else self.faults.draw(self._rng)
            self.modes.append(mode)
            return mode

    def task_calls(self, turns: bool = False) -> dict[str, int]:
        """How many times each agent task (by title) was taken up by the model: conversations
        started (the first turn of an attempt), or with `turns` every call of its tool loop.
        Reviews are not counted."""
        counts: dict[str, int] = {}
        with self._lock:
            for request in self.requests:
                title = task_title(request["body"])
                if title and (turns or _first_turn(request["body"])):
                    counts[title] = counts.get(title, 0) + 1
        return counts

    def _verdict(self, body: dict[str, Any], content: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
        """A scripted "revise" for a task's review (by title prefix), else the model's own."""
        brief = reading.read_review(_first_text(body))
        reviewed = brief.title
        with self._lock:
            queued = next((q for k, q in self.faults.verdicts.items()
                           if reviewed.startswith(k) and q), None)
            forced = queued.popleft() if queued is not None else None
        if forced != "revise":
            return content
        criteria = brief.criteria or ["the brief"]
        verdict = {"verdict": "revise", "summary": "One criterion is not met yet.",
                   "criteria": [{"criterion": c, "met": n != 0,
                                 "note": "" if n else "add a section that shows it, by name"}
                                for n, c in enumerate(criteria)]}
        return [{"type": "text", "text": json.dumps(verdict)}]

    def _content(self, body: dict[str, Any], mode: str, title: str
                 ) -> tuple[list[dict[str, Any]], str, dict[str, Any] | None]:
        """The answer's blocks before thinking and `max_tokens`: the offline model's, with the
        faults applied."""
        task = task_title(body)
        model = body["model"]
        if text_after_tool_results(body):  # as the API documents: an empty end_turn
            return [], "end_turn", None
        content, stop = answer(body)
        asked = next((v for k, v in self.faults.questions.items()
                      if task and task.startswith(k)), None)
        if asked is not None and _first_turn(body) and title != "Verdict":
            content, stop = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}",
                              "name": "ask_person",
                              "input": {"question": asked[0], "assumption": asked[1]}}], \
                "tool_use"
        if title == "Verdict":
            content = self._verdict(body, content)
        paths = next((v for k, v in self.faults.artifacts.items() if task and task.startswith(k)),
                     None)
        if paths is not None:
            content = _propose(content, paths)
        longer = next((v for k, v in self.faults.long_answers.items()
                       if task and task.startswith(k)), 0)
        files = next((v for k, v in self.faults.long_artifacts.items()
                      if task and task.startswith(k)), 0)
        if longer or files:
            content = lengthen(content, model, longer, files)
        text = "".join(b.get("text", "") for b in content if b["type"] == "text")
        details = None
        if mode == "broken_json":
            content, stop = [{"type": "text", "text": "Here is the JSON you asked for: "
                              + text[: len(text) // 2]}], "end_turn"
        elif mode == "schema_violation":
            content, stop = [{"type": "text", "text": json.dumps({"unexpected": True})}], "end_turn"
        elif mode == "refusal":
            content, stop = [{"type": "text", "text": "I can't help with that."}], "refusal"
            details = {"type": "refusal", "category": "cyber",
                       "explanation": "This request was flagged by the cyber-harm classifier."}
        return content, stop, details

    def _reply(self, body: dict[str, Any], mode: str, plan: Plan, arrival: float) -> Reply:
        errors = {"rate_limit": (429, "rate_limit_error", "Number of requests exceeded"),
                  "bad_request": (400, "invalid_request_error", "messages: invalid request"),
                  "overloaded": (529, "overloaded_error", "Overloaded"),
                  "server_error": (500, "api_error", "Internal server error")}
        stream = bool(body.get("stream"))
        if mode == "stream_error" and not stream:  # (an error event in a stream; else 529)
            mode = "overloaded"
        if mode in errors:
            status, kind, said = errors[mode]
            headers = {"retry-after": str(self.faults.retry_after)} if status == 429 else {}
            return Reply(status, {"type": "error", "error": {"type": kind, "message": said}},
                         headers)
        task = task_title(body)
        model = body["model"]
        # A slow task is slow once per attempt, on its first turn.
        extra = max((v for k, v in self.faults.slow_tasks.items()
                     if task and task.startswith(k) and _first_turn(body)), default=0.0)
        fmt = (body.get("output_config") or {}).get("format") or {}
        title = (fmt.get("schema") or {}).get("title", "")
        extra += self.faults.slow_schemas.get(title, 0.0)
        slow = mode == "slow" or (mode == "stall" and not stream)
        delay = self.faults.slow_seconds if slow else self.faults.latency + extra
        try:
            content, stop, details = self._content(body, mode, title)
        except reading.UnreadablePrompt as exc:  # as the API rejects a request it cannot take
            raise Refused(str(exc)) from exc
        if plan.thinks:
            if content:
                subject = task or title or "the question"
                thought = reasoning(model, plan.effort, subject)
            else:
                thought = "The tool results are in."
            content = [{"type": "thinking", "thinking": thought,
                        "signature": self.sign(model, thought)}, *content]
        # The answer ends at max_tokens, or where the context window is full.
        room = spec(model).context_window - prompt_tokens(body)
        limit = min(body["max_tokens"], room)
        content, output, thinking, was_cut = cut(model, content, limit, self.secret)
        calls = frozenset(b["id"] for b in content if b["type"] == "tool_use")
        if calls:
            with self._lock:
                for block in content:
                    if block["type"] == "thinking":
                        self._issued.setdefault(block["signature"], []).append(calls)
        if was_cut:
            stop = "max_tokens" if limit == body["max_tokens"] else "model_context_window_exceeded"
            details = None
        if not any(b["type"] != "thinking" for b in content) and not was_cut \
                and stop == "end_turn":
            output = thinking + 3  # an empty answer: a few tokens, no text
        # The answer begins after its latency (streamed: after its first share of it); the
        # entries this request writes are readable from then.
        stall = 0.0
        if stream:  # the latency spread over the events; a slow answer stalls instead
            stall, delay = (delay, 0.0) if slow else (0.0, delay)
            dummy = dict.fromkeys(("input_tokens", "cache_creation_input_tokens",
                                   "cache_read_input_tokens", "cache_creation",
                                   "output_tokens", "output_tokens_details"), 0)
            events = len(sse({"content": content, "usage": dummy, "stop_reason": stop},
                             self.chunk))
            begins = arrival + stall + delay / events
        else:
            begins = arrival + delay
        tokens = self.cache.account(body, output, now=arrival, begins=begins)
        usage = {"input_tokens": tokens.input, "output_tokens": tokens.output,
                 "cache_read_input_tokens": tokens.cache_read,
                 "cache_creation_input_tokens": tokens.cache_write}
        with self._lock:
            self.usage.append(usage)
        message = {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
                   "model": model, "content": content,
                   "stop_reason": stop, "stop_sequence": None, "stop_details": details,
                   "usage": {**usage, "cache_creation": {
                       "ephemeral_5m_input_tokens": tokens.cache_write - tokens.cache_write_1h,
                       "ephemeral_1h_input_tokens": tokens.cache_write_1h},
                       "output_tokens_details": {"thinking_tokens": thinking}}}
        return Reply(200, message, {}, delay, stream, stall, task, mode)

    def _limits(self, model: str, now: float) -> dict[str, Bucket]:
        """The model's buckets (under the lock), made full on first use."""
        out = {}
        for key, limit in self.faults.rate_limits.items():
            bucket = self._buckets.get((model, key))
            if bucket is None or bucket.limit != limit:
                bucket = self._buckets[(model, key)] = Bucket(
                    limit, self.faults.rate_window, float(limit), now)
            out[key] = bucket
        return out

    def _limit_headers(self, buckets: dict[str, Bucket], now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        for key, bucket in buckets.items():
            headers.update(bucket.headers(DIMENSIONS[key], now))
        tokens = [b for k, b in buckets.items() if k != "rpm"]
        if tokens:  # the combined family: the most restrictive token limit
            headers.update(min(tokens, key=lambda b: b.tokens).headers("tokens", now))
        return headers

    def _need(self, body: dict[str, Any]) -> dict[str, float]:
        """What a request is admitted on: its uncached input as the cache stands, and its
        `max_tokens` (settled with the real output afterwards)."""
        if not self.faults.rate_limits:
            return {}
        tokens = self.cache.account(body, 0, record=False)
        return {"rpm": 1.0, "otpm": float(body.get("max_tokens", 0)),
                "itpm": float(tokens.input + tokens.cache_write)}

    def _admit(self, body: dict[str, Any], need: dict[str, float]) -> dict[str, str] | None:
        """Take the request's share of the limits; None when it fits, else its 429 headers."""
        with self._lock:
            now = time.monotonic()
            buckets = self._limits(body["model"], now)
            wait = max((b.wait(need[k], now) for k, b in buckets.items()), default=0.0)
            if wait > 0:
                self.limited += 1
                self.modes.append("limited")
                headers = self._limit_headers(buckets, now)
                return {"retry-after": str(max(1, math.ceil(wait))), **headers}
            for key, bucket in buckets.items():
                bucket.tokens -= need[key]
            self.admitted.append(now)
        return None

    def _settle(self, body: dict[str, Any], taken: dict[str, float], status: int,
                payload: dict[str, Any]) -> dict[str, str]:
        """Adjust the estimates to what the answer used (an error used no tokens)."""
        usage = payload.get("usage") if status == 200 else None
        spent = {"itpm": itpm_cost(usage), "otpm": usage["output_tokens"]} if usage else {}
        with self._lock:
            now = time.monotonic()
            buckets = self._limits(body["model"], now)
            for key in ("itpm", "otpm"):
                if key in buckets:
                    bucket = buckets[key]
                    bucket.tokens = min(bucket.limit, bucket.level(now) + taken[key]
                                        - spent.get(key, 0))
            return self._limit_headers(buckets, now)

    def _refuse(self, exc: Refused) -> Reply:
        with self._lock:
            self.refused.append(exc.message)
            log = os.environ.get("AGENCY_FAKE_REFUSALS")  # a file to list refusals in
            if log:
                test = os.environ.get("PYTEST_CURRENT_TEST", "")
                with open(log, "a", encoding="utf-8") as out:
                    out.write(json.dumps({"test": test, "message": exc.message}) + "\n")
        return Reply(exc.status, {"type": "error", "error": {"type": exc.kind,
                                                             "message": exc.message}})

    def reply(self, body: dict[str, Any]) -> Reply:
        """A request that passed authentication: the API's checks, the rate limits, then the
        reply."""
        arrival = time.monotonic()
        try:
            with self._lock:
                issued = {k: list(v) for k, v in self._issued.items()}
            plan = validate(body, self.secret, issued=issued)
        except Refused as exc:
            return self._refuse(exc)
        need = self._need(body)
        headers = self._admit(body, need)
        if headers is not None:
            message = ("This request would exceed your organization's rate limit. "
                       "For details, refer to https://docs.claude.com/en/api/rate-limits.")
            return Reply(429, {"type": "error", "error": {"type": "rate_limit_error",
                                                          "message": message}}, headers)
        try:
            reply = self._reply(body, self._mode(body), plan, arrival)
        except Refused as exc:
            reply = self._refuse(exc)
        if need:
            reply.headers = {**reply.headers,
                             **self._settle(body, need, reply.status, reply.payload)}
        return reply

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The reply as (status, body, headers), its latency waited out."""
        reply = self.reply(body)
        self._wait(reply.delay)
        self.sent(reply)
        return reply.status, reply.payload, reply.headers

    def sent(self, reply: Reply) -> None:
        """An answer goes out (once its latency is over): it counts as answered."""
        if reply.task is not None:
            with self._lock:
                self.answered.append(reply.task)
                self.messages.append(reply.payload)

    def count(self, body: dict[str, Any]) -> Reply:
        """`POST /v1/messages/count_tokens`: the same checks, no cache, no rate limit."""
        try:
            with self._lock:
                issued = {k: list(v) for k, v in self._issued.items()}
            validate(body, self.secret, counting=True, issued=issued)
        except Refused as exc:
            return self._refuse(exc)
        with self._lock:
            self.counted.append(body)
        return Reply(200, {"input_tokens": prompt_tokens(body)})

    def _wait(self, seconds: float) -> None:
        """An answer being prepared: counted in flight while it takes its time."""
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _head(self, status: int, headers: dict[str, str], kind: str,
                      length: int | None, request_id: str) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                if length is not None:
                    self.send_header("content-length", str(length))
                self.send_header("request-id", request_id)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def _send(self, reply: Reply, request_id: str) -> None:
                payload = reply.payload
                if payload.get("type") == "error":
                    payload = {**payload, "request_id": request_id}
                data = json.dumps(payload).encode()
                if reply.delay:
                    fake._wait(reply.delay)
                fake.sent(reply)
                self._head(reply.status, reply.headers, "application/json", len(data),
                           request_id)
                # The client may have given up (a timeout), as a real server would see it.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def _stream(self, reply: Reply, request_id: str) -> None:
                """Server-sent events, the latency spread over them (a slow answer stalls
                before its first byte)."""
                events = sse(reply.payload, fake.chunk)
                with fake._lock:
                    fake.in_flight += 1
                    fake.peak_in_flight = max(fake.peak_in_flight, fake.in_flight)
                try:
                    gap = reply.delay / len(events)
                    if reply.stall:
                        time.sleep(reply.stall)
                    fake.sent(reply)
                    self._head(200, reply.headers, "text/event-stream; charset=utf-8", None,
                               request_id)
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        for name, data in events:
                            if gap and name != "ping":
                                time.sleep(gap)
                            if reply.mode == "stream_error" and name == "content_block_delta":
                                name, data = "error", {"type": "error", "error": {
                                    "type": "overloaded_error", "message": "Overloaded"}}
                            self.wfile.write(
                                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                            self.wfile.flush()
                            if name == "error":
                                return
                            if reply.mode == "stall" and name == "message_start":
                                time.sleep(fake.faults.slow_seconds)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _authorized(self, request_id: str) -> bool:
                bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                if fake.api_key in (self.headers.get("x-api-key"), bearer):
                    return True
                self._send(Reply(401, {"type": "error", "error": {
                    "type": "authentication_error", "message": "invalid API key"}}),
                    request_id)
                return False

            def _batches(self, method: str, body: Any, size: int, request_id: str) -> None:
                """The Message Batches endpoints (tests/fake_anthropic_batches.py)."""
                endpoint, batch_id, query = route(self.path)
                api = fake.batch_api
                if (method, endpoint) == ("POST", "batches"):
                    self._send(api.create(body, size), request_id)
                elif (method, endpoint) == ("GET", "batches"):
                    self._send(api.listing(query), request_id)
                elif (method, endpoint) == ("GET", "batch") and batch_id:
                    self._send(api.retrieve(batch_id), request_id)
                elif (method, endpoint) == ("DELETE", "batch") and batch_id:
                    self._send(api.delete(batch_id), request_id)
                elif (method, endpoint) == ("POST", "cancel") and batch_id:
                    self._send(api.cancel(batch_id), request_id)
                elif (method, endpoint) == ("GET", "results") and batch_id:
                    refused, data = api.results(batch_id)
                    if refused is not None:
                        self._send(refused, request_id)
                        return
                    self._head(200, {}, "application/binary", len(data), request_id)
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(data)
                else:
                    self._send(fake._refuse(Refused(f"Not found: {method} {self.path}", 404,
                                                    "not_found_error")), request_id)

            def do_GET(self) -> None:
                request_id = f"req_{uuid.uuid4().hex[:24]}"
                if self._authorized(request_id):
                    self._batches("GET", None, 0, request_id)

            def do_DELETE(self) -> None:
                request_id = f"req_{uuid.uuid4().hex[:24]}"
                if self._authorized(request_id):
                    self._batches("DELETE", None, 0, request_id)

            def do_POST(self) -> None:
                request_id = f"req_{uuid.uuid4().hex[:24]}"
                size = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(size)
                if self.path.startswith("/v1/messages/batches"):
                    if self._authorized(request_id):
                        try:
                            body = json.loads(raw) if raw else {}
                        except ValueError:
                            self._send(fake._refuse(Refused("body: invalid JSON")), request_id)
                            return
                        self._batches("POST", body, size, request_id)
                    return
                body = json.loads(raw)
                if self.path not in ("/v1/messages", "/v1/messages/count_tokens"):
                    self._send(fake._refuse(Refused(f"Not found: {self.path}", 404,
                                                    "not_found_error")), request_id)
                    return
                bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                if fake.api_key not in (self.headers.get("x-api-key"), bearer):
                    with fake._lock:
                        if self.path == "/v1/messages":
                            fake.requests.append({"body": body, "headers": dict(self.headers),
                                                  "at": time.monotonic()})
                    self._send(Reply(401, {"type": "error", "error": {
                        "type": "authentication_error", "message": "invalid API key"}}),
                        request_id)
                    return
                if self.path == "/v1/messages/count_tokens":
                    self._send(fake.count(body), request_id)
                    return
                with fake._lock:
                    fake.requests.append({"body": body, "headers": dict(self.headers),
                                          "at": time.monotonic(), "request_id": request_id})
                reply = fake.reply(body)
                if reply.status == 200 and reply.stream:
                    self._stream(reply, request_id)
                else:
                    self._send(reply, request_id)

        return Handler


def main() -> None:
    """Serve until killed (benchmarks run it as a process of its own): print the URL first."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args()
    with FakeAnthropic(faults=Faults(latency=args.latency), port=args.port) as fake:
        print(fake.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
