"""A local HTTP server that speaks the Anthropic Messages API, for driving the real SDK.

It answers structured requests by their schema's title (Analysis, Plan, AgentOutput,
Deliverable), reading what it needs from the prompt text as Claude would, reports usage
(including prompt-cache reads and writes), and injects faults: 429 with retry-after, 529,
500, broken JSON, schema violations, answers slower than the client's timeout, refusals.
Modes come from `script` first, then at random with the configured rates.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from orchestrator.constants import AgentType, ProjectType
from orchestrator.llm import offline
from workers.agents import AGENT_PROMPTS


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

    def draw(self, rng: random.Random) -> str:
        roll = rng.random()
        for mode in ("rate_limit", "overloaded", "server_error", "broken_json",
                     "schema_violation", "slow"):
            rate = float(getattr(self, mode))
            if roll < rate:
                return mode
            roll -= rate
        return "ok"


def _line(text: str, prefix: str) -> str:
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return ""


def _agent(system: str) -> AgentType:
    return next(a for a, prompt in AGENT_PROMPTS.items() if system.startswith(prompt))


def answer(schema_title: str, system: str, prompt: str) -> str:
    """What a cooperative Claude would say, as JSON text."""
    if schema_title == "Analysis":
        request = prompt.split("Request: ", 1)[1].split("\n\nProvide", 1)[0]
        return offline.analyze(request).model_dump_json()
    if schema_title == "Plan":
        return offline.plan(ProjectType(_line(prompt, "Project Type:"))).model_dump_json()
    if schema_title == "AgentOutput":
        title = re.sub(r" \(priority \w+\)$", "", _line(prompt, "Your task:"))
        hints = {"agent_type": _agent(system).value, "title": title,
                 "request": _line(prompt, "Project request:"),
                 "deliverables": [d for d in _line(prompt, "Deliverables:").split("; ") if d],
                 "acceptance_criteria": [_line(prompt, "Acceptance criteria:")]}
        return offline.agent_output(hints).model_dump_json()
    if schema_title == "Deliverable":
        body = prompt.split("Task Results:\n", 1)[1].split("\n\nCreate an integrated", 1)[0]
        results = [{"title": r["task"], "agent_type": r["agent"],
                    "summary": r["result"].split("\n", 1)[0]} for r in json.loads(body)]
        return offline.deliverable({"request": _line(prompt, "Project:"),
                                    "results": results}).model_dump_json()
    return "{}"


@dataclass
class FakeAnthropic:
    api_key: str = "sk-test-fake"
    faults: Faults = field(default_factory=Faults)
    seed: int = 1
    script: deque[str] = field(default_factory=deque)
    usage: list[dict[str, int]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._cached: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
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
        task = _line(body["messages"][0]["content"], "Your task:")
        with self._lock:
            queued = next((q for k, q in self.faults.task_modes.items()
                           if task.startswith(k) and q), None)
            if queued is not None:
                mode = queued.popleft()
            else:
                mode = self.script.popleft() if self.script else self.faults.draw(self._rng)
            self.modes.append(mode)
            return mode

    def task_calls(self) -> dict[str, int]:
        """How many times the model was asked for each agent task (by title)."""
        counts: dict[str, int] = {}
        with self._lock:
            for request in self.requests:
                title = re.sub(r" \(priority \w+\)$", "", _line(
                    request["body"]["messages"][0]["content"], "Your task:"))
                if title:
                    counts[title] = counts.get(title, 0) + 1
        return counts

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, int]:
        system = "".join(b["text"] for b in body.get("system", []))
        cached = any("cache_control" in b for b in body.get("system", []))
        key = hashlib.sha256(system.encode()).hexdigest()
        with self._lock:
            hit = key in self._cached
            if cached:
                self._cached.add(key)
        system_tokens = len(system) // 4 + 1
        usage = {"input_tokens": len(json.dumps(body["messages"])) // 4 + 1,
                 "output_tokens": len(text) // 4 + 1,
                 "cache_read_input_tokens": system_tokens if cached and hit else 0,
                 "cache_creation_input_tokens": system_tokens if cached and not hit else 0}
        if not cached:
            usage["input_tokens"] += system_tokens
        with self._lock:
            self.usage.append(usage)
        return usage

    def _reply(self, body: dict[str, Any], mode: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        errors = {"rate_limit": (429, "rate_limit_error", "Number of requests exceeded"),
                  "bad_request": (400, "invalid_request_error", "messages: invalid request"),
                  "overloaded": (529, "overloaded_error", "Overloaded"),
                  "server_error": (500, "api_error", "Internal server error")}
        if mode in errors:
            status, kind, message = errors[mode]
            headers = {"retry-after": str(self.faults.retry_after)} if status == 429 else {}
            return status, {"type": "error", "error": {"type": kind, "message": message}}, headers
        task = _line(body["messages"][0]["content"], "Your task:")
        extra = max((v for k, v in self.faults.slow_tasks.items() if task.startswith(k)),
                    default=0.0)
        fmt = (body.get("output_config") or {}).get("format") or {}
        title = (fmt.get("schema") or {}).get("title", "")
        extra += self.faults.slow_schemas.get(title, 0.0)
        time.sleep(self.faults.slow_seconds if mode == "slow" else self.faults.latency + extra)
        system = "".join(b["text"] for b in body.get("system", []))
        text = answer(title, system, body["messages"][0]["content"])
        paths = next((v for k, v in self.faults.artifacts.items() if task.startswith(k)), None)
        if title == "AgentOutput" and paths is not None:
            data = json.loads(text)
            data["artifacts"] = [{"path": p, "content": f"proposed as {p!r}\n"} for p in paths]
            text = json.dumps(data)
        stop = "end_turn"
        if mode == "broken_json":
            text = "Here is the JSON you asked for: " + text[: len(text) // 2]
        elif mode == "schema_violation":
            text = json.dumps({"unexpected": True})
        elif mode == "refusal":
            text, stop = "I can't help with that.", "refusal"
        message = {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
                   "model": body["model"], "content": [{"type": "text", "text": text}],
                   "stop_reason": stop, "stop_sequence": None,
                   "usage": self._usage(body, text)}
        return 200, message, {}

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
                    fake.requests.append({"body": body, "headers": dict(self.headers)})
                if self.path != "/v1/messages":
                    self._send(404, {"type": "error", "error": {
                        "type": "not_found_error", "message": self.path}}, {})
                    return
                bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                if fake.api_key not in (self.headers.get("x-api-key"), bearer):
                    self._send(401, {"type": "error", "error": {
                        "type": "authentication_error", "message": "invalid API key"}}, {})
                    return
                self._send(*fake._reply(body, fake._mode(body)))

        return Handler
