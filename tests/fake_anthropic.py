"""A local HTTP server that speaks the Anthropic Messages API, for driving the real SDK.

It answers through the offline model, which reads the request's prompts, tools and tool
results as Claude would (tool use included), reports usage with prompt caching as the API
accounts it (each model's minimum cacheable length, breakpoints, 20-block lookback, 5-minute
life: orchestrator/llm/cache.py), and injects faults: 429 with retry-after, 529, 500, broken
JSON, schema violations, answers slower than the client's timeout, refusals, hostile artifact
paths, scripted "revise" verdicts.
Modes come from `script` first, then at random with the configured rates.

With `Faults.rate_limits` it also enforces an organisation's rate limits as the API does: a
token bucket per model and dimension, refilled continuously (limit per `rate_window`, a
minute unless a test compresses time), that admits a request on its uncached input tokens and
its `max_tokens` and then settles with what it used; a request that does not fit gets 429
`rate_limit_error` with `retry-after` (whole seconds), and every response carries the
`anthropic-ratelimit-*` headers (resets as RFC 3339 times).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agency_offline import model as offline_model
from agency_offline import reading
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
from orchestrator.llm.cache import PromptCache, count_tokens
from orchestrator.llm.wire import block_json


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
    """A request as the API receives it, for the offline model to answer."""
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
        tool_choice=(body.get("tool_choice") or {}).get("type", "auto"),
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

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self.cache = PromptCache()
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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

    def _usage(self, body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, int]:
        tokens = self.cache.account(body, count_tokens(content))
        usage = {"input_tokens": tokens.input, "output_tokens": tokens.output,
                 "cache_read_input_tokens": tokens.cache_read,
                 "cache_creation_input_tokens": tokens.cache_write}
        with self._lock:
            self.usage.append(usage)
        return usage

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

    def _reply(self, body: dict[str, Any], mode: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        errors = {"rate_limit": (429, "rate_limit_error", "Number of requests exceeded"),
                  "bad_request": (400, "invalid_request_error", "messages: invalid request"),
                  "overloaded": (529, "overloaded_error", "Overloaded"),
                  "server_error": (500, "api_error", "Internal server error")}
        if mode in errors:
            status, kind, message = errors[mode]
            headers = {"retry-after": str(self.faults.retry_after)} if status == 429 else {}
            return status, {"type": "error", "error": {"type": kind, "message": message}}, headers
        task = task_title(body)
        # A slow task is slow once per attempt, on its first turn.
        extra = max((v for k, v in self.faults.slow_tasks.items()
                     if task and task.startswith(k) and _first_turn(body)), default=0.0)
        fmt = (body.get("output_config") or {}).get("format") or {}
        title = (fmt.get("schema") or {}).get("title", "")
        extra += self.faults.slow_schemas.get(title, 0.0)
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(self.faults.slow_seconds if mode == "slow"
                       else self.faults.latency + extra)
        finally:
            with self._lock:
                self.in_flight -= 1
        try:
            content, stop = answer(body)
        except reading.UnreadablePrompt as exc:  # as the API rejects a request it cannot take
            return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                     "message": str(exc)}}, {}
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
        text = "".join(b.get("text", "") for b in content if b["type"] == "text")
        if mode == "broken_json":
            content, stop = [{"type": "text", "text": "Here is the JSON you asked for: "
                              + text[: len(text) // 2]}], "end_turn"
        elif mode == "schema_violation":
            content, stop = [{"type": "text", "text": json.dumps({"unexpected": True})}], "end_turn"
        elif mode == "refusal":
            content, stop = [{"type": "text", "text": "I can't help with that."}], "refusal"
        message = {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
                   "model": body["model"], "content": content,
                   "stop_reason": stop, "stop_sequence": None,
                   "usage": self._usage(body, content)}
        with self._lock:
            self.answered.append(task)
        return 200, message, {}

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

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """A request that passed authentication: the rate limits, then the reply."""
        need = self._need(body)
        headers = self._admit(body, need)
        if headers is not None:
            message = ("This request would exceed your organization's rate limit. "
                       "For details, refer to https://docs.claude.com/en/api/rate-limits.")
            return 429, {"type": "error", "error": {"type": "rate_limit_error",
                                                     "message": message}}, headers
        status, payload, headers = self._reply(body, self._mode(body))
        if need:
            headers = {**headers, **self._settle(body, need, status, payload)}
        return status, payload, headers

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]
                      ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                # The client may have given up (a timeout), as a real server would see it.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with fake._lock:
                    fake.requests.append({"body": body, "headers": dict(self.headers),
                                          "at": time.monotonic()})
                if self.path != "/v1/messages":
                    self._send(404, {"type": "error", "error": {
                        "type": "not_found_error", "message": self.path}}, {})
                    return
                bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                if fake.api_key not in (self.headers.get("x-api-key"), bearer):
                    self._send(401, {"type": "error", "error": {
                        "type": "authentication_error", "message": "invalid API key"}}, {})
                    return
                self._send(*fake.answer(body))

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
