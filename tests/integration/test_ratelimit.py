"""The shared rate limit against a real Redis, and against the local Messages API server.

The buckets' own tests move time on by hand: the in-process limiter's clock is a fake, and the
Redis limiter's (Redis's own TIME) is moved on by rewinding the stored timestamps, so that no
test waits for a refill. Only the end-to-end cases against the local server, whose limit is
enforced on real time, run on a compressed window of a second.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from orchestrator.domain.constants import Dimension, Role
from orchestrator.domain.errors import TransientModelError
from orchestrator.domain.settings import RateLimit, Settings
from orchestrator.llm.anthropic import AnthropicProvider
from orchestrator.llm.base import CompletionRequest, Message, ServerLimits, TextBlock, Window
from orchestrator.llm.ratelimit import (
    KEY_PREFIX,
    STATE_TTL,
    Charge,
    Limiter,
    LocalLimiter,
    RedisLimiter,
    Throttle,
)
from orchestrator.llm.structured import RetryPolicy, call
from tests.fake_anthropic import FakeAnthropic, Faults

KEY = "sk-test-ratelimit"


class Clock:
    """The in-process limiter's time, moved on by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Limiters:
    """Limiters of one test, all on one set of buckets, and a way to let time pass for them."""

    def __init__(self, model: str, redis_url: str | None) -> None:
        self.model, self.redis_url = model, redis_url
        self.clock = Clock()
        self.clients: list[redis.Redis] = []
        self._local: LocalLimiter | None = None

    def __call__(self, table: dict[str, RateLimit], window: float = 1.0) -> Limiter:
        """In process: the one limiter its threads share; on Redis: a new client each time."""
        if self.redis_url is None:
            if self._local is None:
                self._local = LocalLimiter(table, window=window, clock=self.clock)
            return self._local
        self.clients.append(redis.Redis.from_url(self.redis_url))
        return RedisLimiter(self.clients[-1], table, window=window)

    def advance(self, seconds: float) -> None:
        """As if `seconds` passed: the fake clock moves on, or every stored time of this test's
        buckets on Redis moves back (a bucket refills by now - ts; "blocked until" nears)."""
        self.clock.now += seconds
        if self.redis_url is None:
            return
        client = redis.Redis.from_url(self.redis_url)
        try:
            for key in client.scan_iter(match=f"{KEY_PREFIX}:{self.model}*"):
                if client.type(key) == b"hash":
                    client.hincrbyfloat(key, "ts", -seconds)
                else:  # the "blocked until" string (INCRBYFLOAT keeps its expiry)
                    client.incrbyfloat(key, -seconds)
        finally:
            client.close()

    def waits(self, got: float, expected: float) -> bool:
        """`got` is the wait `expected`: exactly in process; on Redis no longer, and shorter
        only by the moments its clock ran on between the calls (a loaded machine's)."""
        if self.redis_url is None:
            return got == pytest.approx(expected, abs=1e-9)
        return expected - 0.5 < got <= expected + 1e-9

    def close(self) -> None:
        for c in self.clients:
            c.close()


@pytest.fixture
def model() -> str:
    return f"claude-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(redis_url: str, model: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.delete(*RedisLimiter(c).keys(model))  # only this test's keys
    c.close()


@pytest.fixture(params=["redis", "local"])
def make(request: pytest.FixtureRequest, model: str) -> Iterator[Limiters]:
    """A limiter factory for this test's model, on Redis or in process."""
    url: str | None = None
    if request.param == "redis":
        request.getfixturevalue("client")  # deletes this test's keys afterwards
        url = request.getfixturevalue("redis_url")
    limiters = Limiters(model, url)
    yield limiters
    limiters.close()


def test_admits_up_to_the_limit_then_says_how_long_to_wait(make: Limiters, model: str) -> None:
    # A minute's window (a refill every 20 s): the moments a loaded machine spends between two
    # calls on Redis are small beside it.
    limiter = make({model: RateLimit(rpm=3)}, window=60.0)
    assert [limiter.acquire(model, Charge(1, 0, 0)) for _ in range(3)] == [0, 0, 0]
    wait = limiter.acquire(model, Charge(1, 0, 0))
    assert make.waits(wait, 60 / 3)
    make.advance(wait / 2)
    assert make.waits(limiter.acquire(model, Charge(1, 0, 0)), wait / 2)
    make.advance(wait / 2 + 1e-9)  # (a sleeper wakes no earlier than told; floats round)
    assert limiter.acquire(model, Charge(1, 0, 0)) == 0  # refilled, continuously


def test_a_refused_call_takes_nothing(make: Limiters, model: str) -> None:
    limiter = make({model: RateLimit(rpm=2, itpm=100)}, window=60.0)
    assert limiter.acquire(model, Charge(1, 100, 0)) == 0
    for _ in range(20):
        assert limiter.acquire(model, Charge(1, 100, 0)) > 50  # input tokens ran out
    assert limiter.acquire(model, Charge(1, 0, 0)) == 0  # so its request was never taken
    assert limiter.acquire(model, Charge(1, 0, 0)) > 25


def test_settling_gives_back_what_was_not_used_and_takes_what_was(make: Limiters,
                                                                  model: str) -> None:
    limiter = make({model: RateLimit(otpm=1000)}, window=60.0)
    assert limiter.acquire(model, Charge(1, 0, 800)) == 0  # max_tokens at admission
    assert limiter.acquire(model, Charge(1, 0, 800)) > 30
    limiter.settle(model, Charge(0, 0, 700))  # it wrote 100
    assert limiter.acquire(model, Charge(1, 0, 800)) == 0
    limiter.settle(model, Charge(0, 0, -500))  # it wrote 1300: the bucket owes 400
    assert limiter.acquire(model, Charge(1, 0, 1)) == pytest.approx(401 * 60 / 1000, rel=0.01)


def test_a_call_larger_than_the_limit_waits_for_a_full_bucket(make: Limiters,
                                                              model: str) -> None:
    limiter = make({model: RateLimit(itpm=100)})
    assert limiter.acquire(model, Charge(1, 50, 0)) == 0
    wait = limiter.acquire(model, Charge(1, 500, 0))
    assert make.waits(wait, 0.5)  # until the bucket is full, not for 500 tokens
    make.advance(wait)
    assert limiter.acquire(model, Charge(1, 500, 0)) == 0  # admitted, in debt
    assert make.waits(limiter.acquire(model, Charge(1, 1, 0)), 1.01)  # a bucket's debt at most


def test_the_server_lowers_a_limit_and_what_is_left(make: Limiters, model: str) -> None:
    limiter = make({model: RateLimit(rpm=100)}, window=60.0)
    limiter.observe(model, ServerLimits(windows={
        Dimension.REQUESTS: Window(limit=10, remaining=2)}))
    assert [limiter.acquire(model, Charge(1, 0, 0)) for _ in range(2)] == [0, 0]
    assert limiter.acquire(model, Charge(1, 0, 0)) == pytest.approx(6.0, rel=0.01)  # 10/min
    # Models under one configured prefix share its bucket (and what the server taught it).
    assert limiter.acquire(f"{model}-20260101", Charge(1, 0, 0)) > 5


def test_a_429_holds_back_every_worker(make: Limiters, model: str) -> None:
    first, second = make({}), make({})
    first.block(model, 0.4)
    wait = second.acquire(model, Charge(1, 0, 0))
    assert make.waits(wait, 0.4)
    make.advance(wait)
    assert second.acquire(model, Charge(1, 0, 0)) == 0


def test_buckets_live_under_their_keys_on_redis_time(client: redis.Redis, model: str,
                                                     redis_url: str) -> None:
    limiter = RedisLimiter(redis.Redis.from_url(redis_url), {model: RateLimit(rpm=5, otpm=10)})
    assert limiter.acquire(model, Charge(1, 0, 4)) == 0
    key = f"agency:ratelimit:{model}:output_tokens"
    state = client.hgetall(key)
    assert float(state[b"tokens"]) == pytest.approx(6, abs=0.01)
    assert abs(float(state[b"ts"]) - client.time()[0]) < 5
    assert 0 < client.ttl(key) <= STATE_TTL
    assert client.exists(f"agency:ratelimit:{model}:requests")
    assert not client.exists(f"agency:ratelimit:{model}:input_tokens")  # not limited


def test_twenty_threads_never_exceed_the_limit(make: Limiters, model: str) -> None:
    """Twenty threads at once, each with its own client, take exactly what the bucket holds,
    then exactly what refilled: no admission is lost or doubled in a race."""
    limit, window, tries = 20, 60.0, 3
    admitted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(20)
    limiters = [make({model: RateLimit(rpm=limit)}, window=window) for _ in range(20)]

    def worker(limiter: Limiter) -> None:
        start.wait()
        won = sum(1 for _ in range(tries) if limiter.acquire(model, Charge(1, 0, 0)) == 0)
        with lock:
            admitted.append(won)

    def round_() -> int:
        admitted.clear()
        threads = [threading.Thread(target=worker, args=(lim,)) for lim in limiters]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(admitted)

    # Redis's clock runs on meanwhile: a full round refills 1/180 of a request a second.
    assert round_() == limit
    make.advance(window * 5 / limit)
    assert round_() == 5


def assert_within(times: list[float], limit: int, window: float) -> None:
    """In every span of time, at most a full bucket plus what refilled during it."""
    for span in (0.05, 0.25, 0.5, 1.0, 2.0):
        for i, start in enumerate(times):
            inside = sum(1 for t in times[i:] if t - start < span)
            assert inside <= limit + span * limit / window + 1, (span, inside)


# Against the local Messages API server, through the real SDK and call().

def _request(model: str) -> CompletionRequest:
    return CompletionRequest(role=Role.ANALYZE, model=model, max_tokens=1000,
                             system=[TextBlock(text="You are terse.")],
                             messages=[Message(role="user", content=[TextBlock(
                                 text="Build a website for a bakery")])])


def _run(fake: FakeAnthropic, threads: int, calls: int,
         throttle: Callable[[], Throttle | None]) -> tuple[float, list[BaseException]]:
    """`threads` workers, each with its own client and limiter, make `calls` calls each."""
    errors: list[BaseException] = []

    def worker() -> None:
        provider = AnthropicProvider(Settings(ANTHROPIC_API_KEY=KEY,
                                              ANTHROPIC_BASE_URL=fake.url))
        policy = RetryPolicy(attempts=30, backoff=0.05, max_backoff=2.0, throttle=throttle())
        try:
            for _ in range(calls):
                call(provider, _request("claude-haiku-4-5"), policy, None)
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return time.monotonic() - started, errors


def test_many_workers_stay_under_the_servers_limit(redis_url: str) -> None:
    """The same load with the limiter and without: 429s all but vanish."""
    limit, window, threads, calls = 5, 1.0, 8, 4
    faults = Faults(rate_limits={"rpm": limit}, rate_window=window)
    table = {"claude-haiku-4-5": RateLimit(rpm=limit)}
    prefix = f"agency:ratelimit-test-{uuid.uuid4().hex[:8]}"
    clients: list[redis.Redis] = []

    def limited() -> Throttle:
        clients.append(redis.Redis.from_url(redis_url))
        return Throttle(RedisLimiter(clients[-1], table, window=window, prefix=prefix))

    results: dict[str, Any] = {}
    for name, throttle in (("limited", limited), ("unlimited", lambda: None)):
        with FakeAnthropic(api_key=KEY, faults=faults) as fake:
            elapsed, errors = _run(fake, threads, calls, throttle)
            assert errors == []
            assert len(fake.admitted) == threads * calls
            results[name] = {"429": fake.limited, "elapsed": elapsed,
                             "attempts": sorted(r["at"] for r in fake.requests)}
    cleanup = redis.Redis.from_url(redis_url)
    cleanup.delete(*RedisLimiter(cleanup, table, prefix=prefix).keys("claude-haiku-4-5"))
    for c in [*clients, cleanup]:
        c.close()
    print(f"\n429s: {results['limited']['429']} with the limiter, "
          f"{results['unlimited']['429']} without; "
          f"{results['limited']['elapsed']:.1f}s and {results['unlimited']['elapsed']:.1f}s")
    # Admission is on Redis's clock, the server's limit on its own: a request admitted in time
    # and delayed on a loaded machine may still land in a burst. A few, not dozens.
    assert results["limited"]["429"] <= 3
    assert results["unlimited"]["429"] >= 10 * max(1, results["limited"]["429"])
    assert_within(results["limited"]["attempts"], limit, window)  # even the attempts
    ideal = (threads * calls - limit) / limit * window
    assert results["limited"]["elapsed"] <= ideal * 1.5 + 1


def test_an_unconfigured_limiter_learns_the_limit_from_the_headers(redis_url: str,
                                                                   model: str) -> None:
    faults = Faults(rate_limits={"rpm": 3}, rate_window=1.0)
    c = redis.Redis.from_url(redis_url)
    limiter = RedisLimiter(c, {}, window=1.0)
    with FakeAnthropic(api_key=KEY, faults=faults) as fake:
        provider = AnthropicProvider(Settings(ANTHROPIC_API_KEY=KEY,
                                              ANTHROPIC_BASE_URL=fake.url))
        policy = RetryPolicy(attempts=1, throttle=Throttle(limiter))
        for _ in range(8):
            call(provider, _request(model), policy, None)
        assert fake.limited == 0
        assert c.hget(f"agency:ratelimit:{model}:requests", "limit") == b"3"
        assert fake.requests[-1]["at"] - fake.requests[0]["at"] >= (8 - 3) / 3 * 0.9
        unthrottled = RetryPolicy(attempts=1)
        with pytest.raises(TransientModelError, match="HTTP 429"):
            for _ in range(8):
                call(provider, _request(model), unthrottled, None)
    c.delete(*limiter.keys(model))
    c.close()


def test_every_response_carries_the_rate_limit_headers(model: str) -> None:
    faults = Faults(rate_limits={"rpm": 2, "itpm": 100_000, "otpm": 2000})
    with FakeAnthropic(api_key=KEY, faults=faults) as fake:
        provider = AnthropicProvider(Settings(ANTHROPIC_API_KEY=KEY,
                                              ANTHROPIC_BASE_URL=fake.url))
        raw = provider.client.messages.with_raw_response.create(
            model=model, max_tokens=1000,
            messages=[{"role": "user", "content": "Build a website for a bakery"}])
        h = raw.headers
        assert h["anthropic-ratelimit-requests-limit"] == "2"
        assert h["anthropic-ratelimit-requests-remaining"] == "1"
        assert h["anthropic-ratelimit-output-tokens-limit"] == "2000"
        output = raw.parse().usage.output_tokens
        assert int(h["anthropic-ratelimit-output-tokens-remaining"]) == 2000 - output
        assert h["anthropic-ratelimit-input-tokens-reset"].endswith("Z")
        assert "anthropic-ratelimit-tokens-limit" in h
        with pytest.raises(TransientModelError) as caught:
            for _ in range(2):
                provider.complete(_request(model).model_copy(update={"max_tokens": 1500}))
        assert caught.value.rate_limited and caught.value.retry_after is not None
        assert caught.value.retry_after >= 1 and caught.value.limits is not None
        assert caught.value.limits.windows[Dimension.OUTPUT_TOKENS].limit == 2000
        body = fake.requests[-1]["body"]
        assert body["max_tokens"] == 1500
