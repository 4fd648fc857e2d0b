"""The organisation's Anthropic rate limits, shared by every worker on every machine.

Anthropic limits requests, input tokens and output tokens per minute, per model, with token
buckets that refill continuously. Before each call a worker takes its share from a bucket of
the same shape in Redis (one per model and dimension, atomic in a Lua script, on Redis's clock),
so many ready tasks wait their turn instead of meeting a storm of 429s. As the API does, a call
is admitted on estimates (input: the request's size; output: `max_tokens`), and the difference
is settled once the usage is known. Every response's `anthropic-ratelimit-*` headers tune the
buckets: a limit lower than the configured one (or any limit, when none is configured) is
adopted, and what is left never exceeds what the server says is left; a 429 with `retry-after`
holds every worker back that long. Without Redis (embedded mode) the same buckets live in the
process.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from orchestrator.domain.constants import Dimension, LLMKind, redis_client_options
from orchestrator.domain.errors import TransientModelError
from orchestrator.domain.models import Tokens
from orchestrator.domain.pricing import longest_prefix
from orchestrator.domain.settings import RateLimit, Settings
from orchestrator.llm.base import CompletionRequest, CompletionResponse, ServerLimits
from orchestrator.llm.cache import count_tokens
from orchestrator.llm.wire import request_json

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds: every limit is per minute, refilled at limit/60 a second
STATE_TTL = 3600  # seconds: a bucket (and the limit the server taught it) idle this long goes
KEY_PREFIX = "agency:ratelimit"
# Models whose cache reads still count toward the input-token limit (marked † in Anthropic's
# rate-limit table); for every other model only uncached input and cache writes count.
CACHE_READS_COUNT = ("claude-3-haiku", "claude-3-5-haiku")


class Charge(NamedTuple):
    """An amount per dimension, in `Dimension` order."""

    requests: int
    input_tokens: int
    output_tokens: int


def bucket_of(table: Mapping[str, RateLimit], model: str) -> tuple[str, Charge]:
    """The bucket a model's calls share (the longest configured model-id prefix, else the model
    id) and its configured limits (0: none)."""
    name = longest_prefix(table, model)
    if name is None:
        return model, Charge(0, 0, 0)
    limit = table[name]
    return name, Charge(limit.rpm or 0, limit.itpm or 0, limit.otpm or 0)


class Limiter(Protocol):
    """Token buckets per (model, dimension); every amount is in `Dimension` order."""

    def acquire(self, model: str, charge: Charge) -> float:
        """Take `charge` and return 0, or take nothing and return the seconds until it fits."""

    def settle(self, model: str, refund: Charge) -> None:
        """Give back what was taken but not used (negative: take what was used beyond it)."""

    def observe(self, model: str, limits: ServerLimits) -> None:
        """Adopt what the server said of its limits and of what is left."""

    def block(self, model: str, seconds: float) -> None:
        """Admit nothing for this model for `seconds` (a 429's `retry-after`)."""


# KEYS: the model's "blocked until" key, then its bucket per dimension (hashes of tokens, ts
# and the server's limit). ARGV: op, window, ttl, then three numbers per dimension: the
# configured limit (0: none) and the op's two operands.
LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op, window, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function arg(i, n) return tonumber(ARGV[3 + 3 * (i - 1) + n]) end
local function num(x) return string.format('%.17g', x) end
local function effective(configured, learned)
  if learned and (configured <= 0 or learned < configured) then return learned end
  return configured
end
local function level(key, configured)
  local h = redis.call('HMGET', key, 'tokens', 'ts', 'limit')
  local limit = effective(configured, tonumber(h[3]))
  local tokens, ts = tonumber(h[1]), tonumber(h[2])
  if limit <= 0 or not tokens then return limit, limit end
  return math.min(limit, tokens + math.max(0, now - ts) * limit / window), limit
end
local function save(key, tokens, limit)
  tokens = math.max(-limit, math.min(limit, tokens))
  redis.call('HSET', key, 'tokens', num(tokens), 'ts', num(now))
  redis.call('EXPIRE', key, ttl)
end
if op == 'acquire' then
  local wait, plan = 0, {}
  local blocked = tonumber(redis.call('GET', KEYS[1]))
  if blocked and blocked > now then wait = blocked - now end
  for i = 1, #KEYS - 1 do
    local tokens, limit = level(KEYS[i + 1], arg(i, 1))
    if limit > 0 then
      local need = arg(i, 2)
      local fits = math.min(need, limit)
      if tokens < fits then wait = math.max(wait, (fits - tokens) * window / limit) end
      plan[#plan + 1] = {KEYS[i + 1], tokens - need, limit}
    end
  end
  if wait > 0 then return num(wait) end
  for _, p in ipairs(plan) do save(p[1], p[2], p[3]) end
elseif op == 'settle' then
  for i = 1, #KEYS - 1 do
    local tokens, limit = level(KEYS[i + 1], arg(i, 1))
    if limit > 0 and arg(i, 2) ~= 0 then save(KEYS[i + 1], tokens + arg(i, 2), limit) end
  end
elseif op == 'observe' then
  for i = 1, #KEYS - 1 do
    local server, remaining = arg(i, 2), arg(i, 3)
    if server > 0 then
      local tokens, before = level(KEYS[i + 1], arg(i, 1))
      redis.call('HSET', KEYS[i + 1], 'limit', server)
      local limit = effective(arg(i, 1), server)
      if before <= 0 then tokens = limit end
      save(KEYS[i + 1], math.min(tokens, remaining), limit)
    end
  end
elseif op == 'block' then
  local seconds = arg(1, 2)
  local until_ = now + seconds
  local current = tonumber(redis.call('GET', KEYS[1]))
  if not current or current < until_ then
    redis.call('SET', KEYS[1], num(until_), 'PX', math.ceil(seconds * 1000) + 1000)
  end
end
return '0'
"""


@dataclass
class RedisLimiter:
    """The buckets in Redis, shared by every process that reaches it. Fails open: with Redis
    unreachable a call goes ahead unthrottled (the API's own limit still applies), logged."""

    client: Any  # redis.Redis
    table: Mapping[str, RateLimit] = field(default_factory=dict)
    window: float = WINDOW
    prefix: str = KEY_PREFIX

    def __post_init__(self) -> None:
        self._script = self.client.register_script(LUA)

    def keys(self, model: str) -> list[str]:
        name, _ = bucket_of(self.table, model)
        return [f"{self.prefix}:{name}:blocked",
                *(f"{self.prefix}:{name}:{d.name.lower()}" for d in Dimension)]

    def _run(self, op: str, model: str, pairs: list[tuple[float, float]]) -> float:
        _, configured = bucket_of(self.table, model)
        args: list[str | float] = [op, self.window, STATE_TTL]
        for limit, (a, b) in zip(configured, pairs, strict=True):
            args += [limit, a, b]
        import redis

        try:
            return float(self._script(keys=self.keys(model), args=args))
        except redis.RedisError as exc:
            log.warning("rate limit not applied (%s: %s)", type(exc).__name__, exc)
            return 0.0

    def acquire(self, model: str, charge: Charge) -> float:
        return self._run("acquire", model, [(n, 0) for n in charge])

    def settle(self, model: str, refund: Charge) -> None:
        self._run("settle", model, [(n, 0) for n in refund])

    def observe(self, model: str, limits: ServerLimits) -> None:
        self._run("observe", model, _server_pairs(limits))

    def block(self, model: str, seconds: float) -> None:
        self._run("block", model, [(seconds, 0), (0, 0), (0, 0)])


def _server_pairs(limits: ServerLimits) -> list[tuple[float, float]]:
    """(limit, remaining) per dimension; (0, 0) where the server said nothing."""
    out: list[tuple[float, float]] = []
    for dimension in Dimension:
        window = limits.windows.get(dimension)
        out.append((window.limit, window.remaining) if window else (0, 0))
    return out


@dataclass
class _Bucket:
    tokens: float = 0.0
    at: float = 0.0
    learned: float | None = None
    fresh: bool = True


@dataclass
class LocalLimiter:
    """The same buckets inside one process (embedded mode: its workers are threads)."""

    table: Mapping[str, RateLimit] = field(default_factory=dict)
    window: float = WINDOW
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, Dimension], _Bucket] = {}
        self._blocked: dict[str, float] = {}

    def _level(self, name: str, dimension: Dimension, configured: int,
               now: float) -> tuple[_Bucket, float, float]:
        """A bucket, its tokens now (refilled since its last write) and its effective limit."""
        bucket = self._buckets.setdefault((name, dimension), _Bucket())
        learned = bucket.learned
        limit = float(learned if learned and (configured <= 0 or learned < configured)
                      else configured)
        if limit <= 0 or bucket.fresh:
            return bucket, limit, limit
        return bucket, min(limit, bucket.tokens + max(0.0, now - bucket.at) * limit
                           / self.window), limit

    def _save(self, bucket: _Bucket, tokens: float, limit: float, now: float) -> None:
        bucket.tokens, bucket.at, bucket.fresh = max(-limit, min(limit, tokens)), now, False

    def acquire(self, model: str, charge: Charge) -> float:
        name, configured = bucket_of(self.table, model)
        with self._lock:
            now = self.clock()
            wait = max(0.0, self._blocked.get(name, 0.0) - now)
            plan = []
            for dimension, limit_set, need in zip(Dimension, configured, charge, strict=True):
                bucket, tokens, limit = self._level(name, dimension, limit_set, now)
                if limit > 0:
                    fits = min(need, limit)
                    if tokens < fits:
                        wait = max(wait, (fits - tokens) * self.window / limit)
                    plan.append((bucket, tokens - need, limit))
            if wait > 0:
                return wait
            for bucket, tokens, limit in plan:
                self._save(bucket, tokens, limit, now)
            return 0.0

    def settle(self, model: str, refund: Charge) -> None:
        name, configured = bucket_of(self.table, model)
        with self._lock:
            now = self.clock()
            for dimension, limit_set, back in zip(Dimension, configured, refund, strict=True):
                bucket, tokens, limit = self._level(name, dimension, limit_set, now)
                if limit > 0 and back:
                    self._save(bucket, tokens + back, limit, now)

    def observe(self, model: str, limits: ServerLimits) -> None:
        name, configured = bucket_of(self.table, model)
        with self._lock:
            now = self.clock()
            for dimension, limit_set, (server, remaining) in zip(
                    Dimension, configured, _server_pairs(limits), strict=True):
                if server <= 0:
                    continue
                bucket, tokens, before = self._level(name, dimension, limit_set, now)
                bucket.learned = server
                _, _, limit = self._level(name, dimension, limit_set, now)
                self._save(bucket, min(limit if before <= 0 else tokens, remaining), limit, now)

    def block(self, model: str, seconds: float) -> None:
        name, _ = bucket_of(self.table, model)
        with self._lock:
            self._blocked[name] = max(self._blocked.get(name, 0.0), self.clock() + seconds)


def estimate(request: CompletionRequest, output_cap: int | None) -> Charge:
    """What a call is admitted on: its input by size (about four characters a token, cached
    prefix included: the API only knows it is cached once it reads it), its output at
    `max_tokens` as the API counts it at admission (or at `output_cap` when lower)."""
    output = request.max_tokens if output_cap is None else min(request.max_tokens, output_cap)
    return Charge(1, count_tokens(request_json(request)), output)


def used(model: str, tokens: Tokens) -> Charge:
    """What a call counted against the limits: cache reads do not count toward input tokens,
    except on the few older models that still count them."""
    reads = tokens.cache_read if model.startswith(CACHE_READS_COUNT) else 0
    return Charge(1, tokens.input + tokens.cache_write + reads, tokens.output)


@dataclass(frozen=True)
class Admission:
    """A call the limiter let through: what it took, and how long it waited first."""

    model: str
    taken: Charge
    waited: float


@dataclass
class Throttle:
    """The limiter as a model call meets it: wait for admission, then settle with the usage
    and the server's headers."""

    limiter: Limiter
    output_cap: int | None = None
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random  # in [0, 1): a tenth of it stretches a wait

    def admit(self, request: CompletionRequest) -> Admission:
        """Sleep (never spin) until the call fits; a little jitter keeps waiting workers from
        all waking at once."""
        charge = estimate(request, self.output_cap)
        waited = 0.0
        while (wait := self.limiter.acquire(request.model, charge)) > 0:
            wait *= 1 + self.jitter() / 10
            self.sleep(wait)
            waited += wait
        return Admission(request.model, charge, waited)

    def answered(self, admission: Admission, response: CompletionResponse) -> None:
        spent = used(admission.model, response.tokens)
        self.limiter.settle(admission.model, Charge(
            *(t - s for t, s in zip(admission.taken, spent, strict=True))))
        if response.limits is not None:
            self.limiter.observe(admission.model, response.limits)

    def failed(self, admission: Admission, exc: BaseException) -> None:
        """No tokens were used; a refused (429) request does not count either, any other
        failed request does (the server may have taken it). A 429's `retry-after` holds
        every worker back."""
        limited = isinstance(exc, TransientModelError) and exc.rate_limited
        requests, inputs, outputs = admission.taken
        self.limiter.settle(admission.model, Charge(requests if limited else 0, inputs, outputs))
        if isinstance(exc, TransientModelError):
            if exc.limits is not None:
                self.limiter.observe(admission.model, exc.limits)
            if limited and exc.retry_after:
                self.limiter.block(admission.model, exc.retry_after)


def make_throttle(settings: Settings) -> Throttle | None:
    """The throttle the settings ask for: none for the offline model or when turned off; Redis
    buckets when Redis is configured (or is the broker), else buckets in this process."""
    if not settings.rate_limit_enabled or settings.llm_kind is LLMKind.OFFLINE:
        return None
    url = settings.effective_rate_limit_redis
    if url is None:
        limiter: Limiter = LocalLimiter(settings.rate_limits)
    else:
        import redis

        limiter = RedisLimiter(redis.Redis.from_url(url, **redis_client_options(url)),
                               settings.rate_limits)
    return Throttle(limiter, settings.rate_limit_output_estimate)
