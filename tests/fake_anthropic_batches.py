"""The Message Batches API of the local fake server (tests/fake_anthropic.py).

What it relies on, from the API's documentation:

- `POST /v1/messages/batches` takes `{"requests": [{"custom_id", "params"}, ...]}`: 1 to
  100,000 requests, each `custom_id` unique within the batch, 1-64 characters matching
  `^[a-zA-Z0-9_-]{1,64}$`; `params` are Messages API creation parameters (the SDK types them
  `MessageCreateParamsNonStreaming`: no `stream`). A batch is at most 256 MB.
  (https://platform.claude.com/docs/en/api/messages/batches/create,
  https://platform.claude.com/docs/en/build-with-claude/batch-processing)
- Each request is processed independently: a request the Messages API would refuse becomes
  an `errored` result (its `error` an error response, e.g. `invalid_request_error`) and the
  others still run. `max_tokens: 0` (cache pre-warming) is not supported inside a batch.
  (batch-processing guide)
- A batch is `in_progress`, `canceling` or `ended`. `request_counts` (processing, succeeded,
  errored, canceled, expired) sum to the batch's requests; requests stay `processing` until
  processing of the entire batch ends. `results_url`, `ended_at` are set only once it ended;
  `expires_at` is 24 hours after creation; `cancel_initiated_at` once a cancel was asked.
  (https://platform.claude.com/docs/en/api/messages/batches/retrieve)
- Results are a `.jsonl` file at `results_url`, one `{"custom_id", "result"}` a line, not in
  request order; a result's `type` is `succeeded` (with `message`), `errored` (with
  `error`), `canceled` or `expired`. They are available only once the whole batch ended.
  (https://platform.claude.com/docs/en/api/messages/batches/results, and the SDK:
  anthropic/types/messages/message_batch_individual_response.py; the SDK's `results()`
  refuses a batch without `results_url` before it sends anything)
- `POST .../cancel` may be made any time before processing ends: the batch is `canceling`,
  requests not yet processed end `canceled`, then the batch ends.
  (https://platform.claude.com/docs/en/api/messages/batches/cancel)
- `DELETE /v1/messages/batches/{id}` deletes an ended batch; one still processing must be
  canceled first. (https://platform.claude.com/docs/en/api/messages/batches/delete)
- `GET /v1/messages/batches` lists the most recent first: `limit` (1-1000, default 20),
  `before_id`, `after_id`; `{"data", "has_more", "first_id", "last_id"}`.
  (https://platform.claude.com/docs/en/api/messages/batches/list)
- Batched usage costs 50% of the standard prices (orchestrator/domain/pricing.py).

Assumptions of this fake where the docs say nothing: results asked for before the batch ended
get 400 `invalid_request_error`; an unknown batch id 404 `not_found_error`; canceling an ended
batch returns it unchanged; a batch is not counted against the Messages rate limits (the API
has its own batch limits, not modelled) and carries no `anthropic-ratelimit-*` headers.

The answers are the live path's (`FakeAnthropic._reply`: the same offline answers, usage,
cache accounting, signed thinking, `max_tokens` cuts), all computed when the batch is created
and released when it ends, `fake.batch_seconds` later. `fake.expire` names custom ids whose
request ends `expired` instead.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.fake_anthropic_rules import Refused, validate

if TYPE_CHECKING:
    from tests.fake_anthropic import FakeAnthropic, Reply

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
EXPIRES = timedelta(hours=24)


def _stamp(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


@dataclass
class Batch:
    """One batch: what was sent, what each request came to (released once it ended)."""

    id: str
    created_at: datetime
    born: float  # time.monotonic() at creation
    ends: float  # time.monotonic() when processing ends
    requests: list[dict[str, Any]]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # custom_id -> result
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None

    def status(self, now: float) -> str:
        if now >= self.ends:
            if self.ended_at is None:
                self.ended_at = self.created_at + timedelta(
                    seconds=max(0.0, self.ends - self.born))
            return "ended"
        return "canceling" if self.cancel_initiated_at is not None else "in_progress"


class Batches:
    """The batch endpoints of one fake server."""

    def __init__(self, fake: FakeAnthropic) -> None:
        self.fake = fake
        self._lock = threading.Lock()

    # --- the endpoints -----------------------------------------------------------------

    def create(self, body: Any, size: int) -> Reply:
        try:
            requests = self._check(body, size)
        except Refused as exc:
            return self.fake._refuse(exc)
        now = time.monotonic()
        batch = Batch(id=f"msgbatch_{uuid.uuid4().hex[:24]}", created_at=datetime.now(UTC),
                      born=now, ends=now + self.fake.batch_seconds, requests=requests)
        for item in requests:
            batch.results[item["custom_id"]] = self._result(item["custom_id"], item["params"])
        with self._lock:
            self.fake.batches[batch.id] = batch
        return self._reply(200, self._json(batch))

    def retrieve(self, batch_id: str) -> Reply:
        batch = self.fake.batches.get(batch_id)
        if batch is None:
            return self._missing(batch_id)
        return self._reply(200, self._json(batch))

    def results(self, batch_id: str) -> tuple[Reply | None, bytes]:
        """The JSONL file (None and its bytes), or a refusal."""
        batch = self.fake.batches.get(batch_id)
        if batch is None:
            return self._missing(batch_id), b""
        if batch.status(time.monotonic()) != "ended":
            return self.fake._refuse(Refused(
                f"Message Batch {batch_id} has not ended: its results are available once "
                "processing ends")), b""
        lines = [json.dumps({"custom_id": cid, "result": result})
                 for cid, result in reversed(list(batch.results.items()))]  # any order
        return None, ("\n".join(lines) + "\n").encode()

    def cancel(self, batch_id: str) -> Reply:
        batch = self.fake.batches.get(batch_id)
        if batch is None:
            return self._missing(batch_id)
        now = time.monotonic()
        with self._lock:
            if batch.status(now) != "ended" and batch.cancel_initiated_at is None:
                batch.cancel_initiated_at = datetime.now(UTC)
                # Every request not yet processed is canceled; the batch ends soon after.
                batch.results = {cid: {"type": "canceled"} for cid in batch.results}
                batch.ends = min(batch.ends, now + min(0.2, self.fake.batch_seconds))
        return self._reply(200, self._json(batch))

    def delete(self, batch_id: str) -> Reply:
        batch = self.fake.batches.get(batch_id)
        if batch is None:
            return self._missing(batch_id)
        if batch.status(time.monotonic()) != "ended":
            return self.fake._refuse(Refused(
                f"Message Batch {batch_id} is still processing: cancel it before deleting it"))
        with self._lock:
            del self.fake.batches[batch_id]
        return self._reply(200, {"id": batch_id, "type": "message_batch_deleted"})

    def listing(self, query: str) -> Reply:
        args = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            limit = int(args.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return self.fake._refuse(Refused("limit: Input should be between 1 and 1000"))
        newest = sorted(self.fake.batches.values(), key=lambda b: b.born, reverse=True)
        ids = [b.id for b in newest]
        if "after_id" in args and args["after_id"] in ids:  # the page after (older)
            newest = newest[ids.index(args["after_id"]) + 1:]
        elif "before_id" in args and args["before_id"] in ids:  # the page before (newer)
            newest = newest[:ids.index(args["before_id"])][-limit:]
        page = newest[:limit]
        return self._reply(200, {"data": [self._json(b) for b in page],
                                 "has_more": len(newest) > limit,
                                 "first_id": page[0].id if page else None,
                                 "last_id": page[-1].id if page else None})

    # --- the parts -----------------------------------------------------------------------

    def _check(self, body: Any, size: int) -> list[dict[str, Any]]:
        """The batch's shape, as the API refuses a whole batch."""
        if size > MAX_BYTES:
            raise Refused(f"Request size {size} exceeds the 256 MB batch limit", 413,
                          "request_too_large")
        if not isinstance(body, dict):
            raise Refused("body: Input should be a valid dictionary")
        extra = sorted(set(body) - {"requests"})
        if extra:
            raise Refused(f"{extra[0]}: Extra inputs are not permitted")
        requests = body.get("requests")
        if not isinstance(requests, list):
            raise Refused("requests: Field required" if requests is None
                          else "requests: Input should be a valid list")
        if not 1 <= len(requests) <= MAX_REQUESTS:
            raise Refused(f"requests: List should have between 1 and {MAX_REQUESTS} items, "
                          f"not {len(requests)}")
        seen: set[str] = set()
        for n, item in enumerate(requests):
            where = f"requests.{n}"
            if not isinstance(item, dict):
                raise Refused(f"{where}: Input should be a valid dictionary")
            for key in ("custom_id", "params"):
                if key not in item:
                    raise Refused(f"{where}.{key}: Field required")
            extra = sorted(set(item) - {"custom_id", "params"})
            if extra:
                raise Refused(f"{where}.{extra[0]}: Extra inputs are not permitted")
            custom_id = item["custom_id"]
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                raise Refused(f"{where}.custom_id: String should match pattern "
                              f"'{CUSTOM_ID.pattern}'")
            if custom_id in seen:
                raise Refused(f"{where}.custom_id: Duplicate custom_id {custom_id!r}: each "
                              "must be unique within the Message Batch")
            seen.add(custom_id)
            params = item["params"]
            if not isinstance(params, dict):
                raise Refused(f"{where}.params: Input should be a valid dictionary")
            if "stream" in params:
                raise Refused(f"{where}.params.stream: Extra inputs are not permitted "
                              "(a batched request is not streamed)")
        return requests

    def _result(self, custom_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request's result: the live path's checks and answer."""
        fake = self.fake
        if custom_id in fake.expire:
            return {"type": "expired"}
        try:
            if params.get("max_tokens") == 0:
                raise Refused("max_tokens: 0 (cache pre-warming) is not supported in a "
                              "Message Batch; use a max_tokens of at least 1")
            with fake._lock:
                issued = {k: list(v) for k, v in fake._issued.items()}
            plan = validate(params, fake.secret, issued=issued)
            reply = fake._reply(params, fake._mode(params), plan, time.monotonic())
        except Refused as exc:
            reply = fake._refuse(exc)
        if reply.status != 200:
            return {"type": "errored",
                    "error": {"type": "error", "error": reply.payload["error"],
                              "request_id": None}}
        fake.sent(reply)
        return {"type": "succeeded", "message": reply.payload}

    def _json(self, batch: Batch) -> dict[str, Any]:
        with self._lock:
            status = batch.status(time.monotonic())
            counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled",
                                    "expired"), 0)
            if status == "ended":
                for result in batch.results.values():
                    counts[result["type"]] += 1
            else:
                counts["processing"] = len(batch.results)
            return {"id": batch.id, "type": "message_batch", "processing_status": status,
                    "request_counts": counts, "created_at": _stamp(batch.created_at),
                    "expires_at": _stamp(batch.created_at + EXPIRES),
                    "ended_at": _stamp(batch.ended_at) if status == "ended" else None,
                    "cancel_initiated_at": _stamp(batch.cancel_initiated_at),
                    "archived_at": None,
                    "results_url": (f"{self.fake.url}/v1/messages/batches/{batch.id}/results"
                                    if status == "ended" else None)}

    def _missing(self, batch_id: str) -> Reply:
        return self.fake._refuse(Refused(f"Message Batch {batch_id!r} not found", 404,
                                         "not_found_error"))

    @staticmethod
    def _reply(status: int, payload: dict[str, Any]) -> Reply:
        from tests.fake_anthropic import Reply
        return Reply(status, payload)


def route(path: str) -> tuple[str, str | None, str]:
    """(endpoint, batch id, query) of a batch path; endpoint "" when it is none."""
    parts = urlsplit(path)
    segments = parts.path.rstrip("/").split("/")[1:]  # v1, messages, batches, ...
    if segments[:3] != ["v1", "messages", "batches"]:
        return "", None, parts.query
    rest = segments[3:]
    if not rest:
        return "batches", None, parts.query
    if len(rest) == 1:
        return "batch", rest[0], parts.query
    if len(rest) == 2 and rest[1] in ("results", "cancel"):
        return rest[1], rest[0], parts.query
    return "", None, parts.query
