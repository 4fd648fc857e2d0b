"""The shared rate limit as a model call meets it: estimates, settling, headers, settings.

The buckets themselves (Lua in Redis, and the in-process twin) are tested against a real Redis
in tests/integration/test_ratelimit.py.
"""

from __future__ import annotations

import pytest

from orchestrator.domain.constants import Dimension, LLMKind, Role
from orchestrator.domain.errors import ConfigError, TransientModelError
from orchestrator.domain.models import Tokens
from orchestrator.domain.settings import RateLimit, Settings, get_settings
from orchestrator.llm.anthropic import server_limits
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ServerLimits,
    TextBlock,
    Window,
)
from orchestrator.llm.ratelimit import (
    Charge,
    LocalLimiter,
    RedisLimiter,
    Throttle,
    bucket_of,
    estimate,
    make_throttle,
    used,
)
from orchestrator.llm.structured import RetryPolicy, call

REQUEST = CompletionRequest(role=Role.AGENT, model="claude-haiku-4-5", max_tokens=8000,
                            system=[TextBlock(text="s" * 400)],
                            messages=[Message(role="user", content=[TextBlock(text="hi")])])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording:
    """A limiter that admits after a script of waits, recording what it was told."""

    def __init__(self, *waits: float) -> None:
        self.waits = list(waits)
        self.acquired: list[Charge] = []
        self.settled: list[Charge] = []
        self.observed: list[ServerLimits] = []
        self.blocked: list[float] = []

    def acquire(self, model: str, charge: Charge) -> float:
        self.acquired.append(charge)
        return self.waits.pop(0) if self.waits else 0.0

    def settle(self, model: str, refund: Charge) -> None:
        self.settled.append(refund)

    def observe(self, model: str, limits: ServerLimits) -> None:
        self.observed.append(limits)

    def block(self, model: str, seconds: float) -> None:
        self.blocked.append(seconds)


class Meter:
    def __init__(self) -> None:
        self.admitted = 0
        self.waits: list[float] = []
        self.retries: list[float] = []

    def admit(self) -> None:
        self.admitted += 1

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int, turn: object = None) -> None:
        pass

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        self.retries.append(delay)

    def throttled(self, waited: float) -> None:
        self.waits.append(waited)


LIMITS = ServerLimits(windows={Dimension.REQUESTS: Window(limit=50, remaining=49)})


class Answers:
    """A provider that answers (or fails) from a script."""

    name = "answers"

    def __init__(self, *outcomes: Tokens | Exception) -> None:
        self.outcomes = list(outcomes)

    def complete(self, request: CompletionRequest, progress: object = None) -> CompletionResponse:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return CompletionResponse(content=[TextBlock(text="ok")], model=request.model,
                                  tokens=outcome, latency_ms=1, limits=LIMITS)


def test_estimate_counts_the_request_and_max_tokens_as_the_api_does() -> None:
    charge = estimate(REQUEST, None)
    assert charge.requests == 1 and charge.output_tokens == 8000
    assert 100 < charge.input_tokens < 200  # 400 characters of system prompt, and the rest
    assert estimate(REQUEST, 2000).output_tokens == 2000
    assert estimate(REQUEST, 20_000).output_tokens == 8000


def test_cache_reads_do_not_count_toward_input_tokens_on_current_models() -> None:
    tokens = Tokens(input=100, output=50, cache_read=5000, cache_write=300)
    assert used("claude-haiku-4-5", tokens) == Charge(1, 400, 50)
    assert used("claude-3-5-haiku-20241022", tokens) == Charge(1, 5400, 50)


def test_the_longest_configured_prefix_names_the_bucket() -> None:
    table = {"claude": RateLimit(rpm=10), "claude-haiku": RateLimit(rpm=5, otpm=100)}
    assert bucket_of(table, "claude-haiku-4-5") == ("claude-haiku", Charge(5, 0, 100))
    assert bucket_of(table, "claude-sonnet-4-6") == ("claude", Charge(10, 0, 0))
    assert bucket_of(table, "other") == ("other", Charge(0, 0, 0))


def test_a_call_waits_its_turn_noted_once_and_not_counted_as_a_call() -> None:
    limiter, slept, meter = Recording(0.5, 0.25, 0.0), [], Meter()
    throttle = Throttle(limiter, sleep=slept.append)
    call(Answers(Tokens(input=90, output=700)), REQUEST, RetryPolicy(throttle=throttle), meter)
    assert len(limiter.acquired) == 3 and 0.75 <= sum(slept) <= 0.825  # slept, never spun
    assert meter.admitted == 1 and meter.waits == [pytest.approx(sum(slept))]
    taken = limiter.acquired[0]
    assert limiter.settled == [Charge(0, taken.input_tokens - 90, 8000 - 700)]
    assert limiter.observed == [LIMITS]


def test_a_429_refunds_everything_and_holds_every_worker_back() -> None:
    limiter, meter = Recording(), Meter()
    throttle = Throttle(limiter, sleep=lambda _: None)
    limited = TransientModelError("HTTP 429", 2.0, rate_limited=True, limits=LIMITS)
    call(Answers(limited, Tokens(input=1, output=1)), REQUEST,
         RetryPolicy(attempts=2, backoff=0, throttle=throttle), meter)
    assert limiter.blocked == [2.0]
    assert limiter.settled[0] == limiter.acquired[0]  # the refused request is given back whole
    assert limiter.observed[0] == LIMITS and meter.retries == [2.0] and meter.admitted == 2


def test_an_outage_keeps_the_request_counted_and_refunds_the_tokens() -> None:
    limiter = Recording()
    throttle = Throttle(limiter, sleep=lambda _: None)
    with pytest.raises(TransientModelError):
        call(Answers(TransientModelError("HTTP 529")), REQUEST,
             RetryPolicy(attempts=1, throttle=throttle), None)
    taken = limiter.acquired[0]
    assert limiter.settled == [Charge(0, taken.input_tokens, taken.output_tokens)]
    assert limiter.blocked == []


def test_headers_are_read_as_the_api_sends_them() -> None:
    limits = server_limits({
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-01-01T10:00:01Z",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "not a time",
        "anthropic-ratelimit-input-tokens-limit": "many"})
    assert limits is not None
    assert set(limits.windows) == {Dimension.REQUESTS, Dimension.OUTPUT_TOKENS}
    requests = limits.windows[Dimension.REQUESTS]
    assert (requests.limit, requests.remaining) == (50, 49)
    assert requests.reset is not None and requests.reset.second == 1
    assert limits.windows[Dimension.OUTPUT_TOKENS].reset is None
    assert server_limits({"retry-after": "3"}) is None


def test_the_local_buckets_admit_refill_and_refuse_without_taking() -> None:
    clock = Clock()
    limiter = LocalLimiter({"m": RateLimit(rpm=2, itpm=100)}, clock=clock)
    assert limiter.acquire("m", Charge(1, 60, 0)) == 0
    assert limiter.acquire("m", Charge(1, 60, 0)) == pytest.approx(20 * 60 / 100)
    assert limiter.acquire("m", Charge(1, 0, 0)) == 0  # the refused call took no request
    assert limiter.acquire("m", Charge(1, 0, 0)) == pytest.approx(30.0)
    clock.now += 30
    limiter.settle("m", Charge(0, 60, 0))
    assert limiter.acquire("m", Charge(1, 60, 0)) == 0


def test_the_server_teaches_an_unconfigured_model_its_limit() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock=clock)
    assert limiter.acquire("m", Charge(1, 10, 10)) == 0  # nothing known: not limited
    limiter.observe("m", ServerLimits(windows={Dimension.REQUESTS: Window(limit=6,
                                                                          remaining=1)}))
    assert limiter.acquire("m", Charge(1, 10, 10)) == 0
    assert limiter.acquire("m", Charge(1, 10, 10)) == pytest.approx(10.0)
    limiter.block("m", 30)
    clock.now += 10
    assert limiter.acquire("m", Charge(1, 0, 0)) == pytest.approx(20.0)


def test_settings_read_the_table_and_pick_where_buckets_live(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENCY_BROKER_URL", "AGENCY_RATE_LIMITS", "AGENCY_RATE_LIMIT_REDIS",
                 "AGENCY_LLM", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENCY_RATE_LIMITS", '{"claude-haiku": {"rpm": 50, "otpm": 8000}}')
    s = Settings()
    assert s.rate_limits["claude-haiku"] == RateLimit(rpm=50, otpm=8000)
    assert s.effective_rate_limit_redis is None and make_throttle(s) is None  # offline
    monkeypatch.setenv("AGENCY_LLM", LLMKind.ANTHROPIC.value)
    assert isinstance(make_throttle(Settings()).limiter, LocalLimiter)  # type: ignore[union-attr]
    monkeypatch.setenv("AGENCY_BROKER_URL", "redis://127.0.0.1:1/0")
    throttle = make_throttle(Settings())
    assert throttle is not None and isinstance(throttle.limiter, RedisLimiter)
    monkeypatch.setenv("AGENCY_RATE_LIMIT_ENABLED", "false")
    assert make_throttle(Settings()) is None
    monkeypatch.setenv("AGENCY_RATE_LIMITS", '{"claude": {"rpm": 0}}')
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=r"AGENCY_RATE_LIMITS \(claude.rpm\)"):
        get_settings()
    get_settings.cache_clear()
