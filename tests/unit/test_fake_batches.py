"""The Message Batches API of the local server, through the installed SDK; and the Anthropic
provider's batch path against it: each batched answer is the live one, at half price."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from orchestrator.domain.catalog import DEFAULT_PRICES
from orchestrator.domain.constants import Role
from orchestrator.domain.errors import ContextOverflow, ModelRefused, TransientModelError
from orchestrator.domain.pricing import cost_usd
from orchestrator.domain.settings import Settings
from orchestrator.llm import batches
from orchestrator.llm.anthropic import AnthropicProvider
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Message, TextBlock
from tests.fake_anthropic import FakeAnthropic

KEY = "sk-test-batches"
OLD = "claude-haiku-4-5"  # no thinking unless asked
HAIKU = "claude-haiku-5-5"  # thinks (signed thinking blocks)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY, batch_seconds=0.6) as server:
        yield server


@pytest.fixture
def client(fake: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)


def params(text: str = "Say hello.", model: str = OLD, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1000,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
            **extra}


def ended(client: anthropic.Anthropic, batch_id: str) -> Any:
    for _ in range(100):
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} never ended")


def post(fake: FakeAnthropic, payload: Any, path: str = "/v1/messages/batches",
         key: str = KEY) -> httpx.Response:
    return httpx.post(fake.url + path, json=payload, timeout=30,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"})


def test_a_batch_is_in_progress_then_ends_with_its_results(
        fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(requests=[
        {"custom_id": "a", "params": params("Say hello.")},
        {"custom_id": "b-2", "params": params("Say goodbye.", HAIKU)}])
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.results_url is None and batch.ended_at is None
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (2, 0, 0)
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    # Before it ends the SDK has no results_url to read; the server refuses the path too.
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        list(client.messages.batches.results(batch.id))
    early = httpx.get(f"{fake.url}/v1/messages/batches/{batch.id}/results",
                      headers={"x-api-key": KEY})
    assert early.status_code == 400, early.text
    assert early.json()["error"]["type"] == "invalid_request_error"
    done = ended(client, batch.id)
    assert done.request_counts.succeeded == 2 and done.request_counts.processing == 0
    assert done.results_url == f"{fake.url}/v1/messages/batches/{batch.id}/results"
    assert done.ended_at is not None and done.ended_at >= done.created_at
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {"a", "b-2"}
    a, b = results["a"], results["b-2"]
    assert a.type == "succeeded" and b.type == "succeeded"
    assert a.message.content[0].type == "text" and a.message.usage.input_tokens > 0
    assert b.message.content[0].type == "thinking"  # signed, as a live answer's
    assert b.message.content[0].signature == fake.sign(HAIKU, b.message.content[0].thinking)
    assert set(fake.batches) == {batch.id} and len(fake.batches[batch.id].requests) == 2
    assert fake.refused == [fake.refused[0]]  # only the early results request


def test_an_invalid_request_errors_while_the_others_succeed(
        fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    bad = params()
    bad["messages"].append({"role": "user", "content": [{"type": "text", "text": "again"}]})
    batch = client.messages.batches.create(requests=[
        {"custom_id": "good", "params": params()},
        {"custom_id": "bad", "params": bad},
        {"custom_id": "zero", "params": params(max_tokens=0)},
        {"custom_id": "nomodel", "params": params(model="claude-nonesuch-9")}])
    done = ended(client, batch.id)
    counts = done.request_counts
    assert (counts.succeeded, counts.errored) == (1, 3)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["good"].type == "succeeded"
    for name in ("bad", "zero"):
        result = results[name]
        assert result.type == "errored", name
        assert result.error.error.type == "invalid_request_error", name
    assert results["nomodel"].type == "errored"
    assert results["nomodel"].error.error.type == "not_found_error"
    assert len(fake.refused) == 3 and any("max_tokens" in m for m in fake.refused)


@pytest.mark.parametrize(("payload", "said"), [
    ({"requests": []}, "between 1 and 100000"),
    ({}, "requests: Field required"),
    ({"requests": [{"custom_id": "a b", "params": params()}]}, "String should match"),
    ({"requests": [{"custom_id": "x" * 65, "params": params()}]}, "String should match"),
    ({"requests": [{"custom_id": "a", "params": params()},
                   {"custom_id": "a", "params": params()}]}, "Duplicate custom_id"),
    ({"requests": [{"custom_id": "a", "params": params(stream=True)}]}, "stream"),
    ({"requests": [{"custom_id": "a"}]}, "params: Field required"),
    ({"requests": [{"custom_id": "a", "params": params(), "extra": 1}]}, "Extra inputs"),
])
def test_a_malformed_batch_is_refused_whole(fake: FakeAnthropic, payload: Any,
                                            said: str) -> None:
    response = post(fake, payload)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert said in error["error"]["message"]
    assert fake.batches == {} and len(fake.refused) == 1


def test_the_batch_endpoints_need_the_key_and_a_known_batch(fake: FakeAnthropic) -> None:
    assert post(fake, {"requests": [{"custom_id": "a", "params": params()}]},
                key="sk-wrong").status_code == 401
    missing = httpx.get(f"{fake.url}/v1/messages/batches/msgbatch_nope",
                        headers={"x-api-key": KEY})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert fake.batches == {}


def test_a_canceled_batch_ends_with_its_requests_canceled(
        fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.batch_seconds = 30.0
    batch = client.messages.batches.create(requests=[
        {"custom_id": "one", "params": params()}, {"custom_id": "two", "params": params()}])
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    done = ended(client, batch.id)
    assert done.request_counts.canceled == 2 and done.request_counts.succeeded == 0
    kinds = {r.custom_id: r.result.type for r in client.messages.batches.results(batch.id)}
    assert kinds == {"one": "canceled", "two": "canceled"}
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    assert fake.batches == {}


def test_a_batch_still_processing_cannot_be_deleted(fake: FakeAnthropic,
                                                    client: anthropic.Anthropic) -> None:
    fake.batch_seconds = 30.0
    batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": params()}])
    with pytest.raises(anthropic.BadRequestError, match="cancel it"):
        client.messages.batches.delete(batch.id)
    assert set(fake.batches) == {batch.id}


def test_batches_are_listed_newest_first(fake: FakeAnthropic,
                                         client: anthropic.Anthropic) -> None:
    first = client.messages.batches.create(requests=[{"custom_id": "a", "params": params()}])
    second = client.messages.batches.create(requests=[{"custom_id": "a", "params": params()}])
    page = client.messages.batches.list(limit=1)
    assert [b.id for b in page.data] == [second.id] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=5, after_id=second.id).data] \
        == [first.id]


# --- the provider ------------------------------------------------------------------------


def _provider(fake: FakeAnthropic) -> AnthropicProvider:
    return AnthropicProvider(Settings(ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.url))


def _request(text: str, model: str = OLD, max_tokens: int = 1000,
             effort: str | None = None) -> CompletionRequest:
    return CompletionRequest(role=Role.AGENT, model=model, max_tokens=max_tokens, effort=effort,
                             system=[TextBlock(text="You are terse.")],
                             messages=[Message(role="user", content=[TextBlock(text=text)])])


def _collected(provider: AnthropicProvider, batch_id: str) -> dict[str, Any]:
    for _ in range(100):
        out = provider.collect_batch(batch_id)
        if out is not None:
            return out
        time.sleep(0.05)
    raise AssertionError("never ended")


def test_the_provider_batches_byte_for_byte_and_answers_as_live_at_half_price(
        fake: FakeAnthropic) -> None:
    provider = _provider(fake)
    assert batches(provider) is provider
    requests = {"plain": _request("Say hello."), "thinks": _request("Say hi.", HAIKU, effort="low"),
                "cut": _request("Say something long.", max_tokens=1)}
    live = {name: provider.complete(r) for name, r in requests.items()}
    sent_live = [r["body"] for r in fake.requests]
    batch_id = provider.submit_batch(list(requests.items()))
    assert provider.collect_batch(batch_id) is None  # still in progress
    sent = {r["custom_id"]: r["params"] for r in fake.batches[batch_id].requests}
    assert [sent[name] for name in requests] == sent_live  # exactly the live params
    got = _collected(provider, batch_id)
    assert set(got) == set(requests)
    for name, answer in got.items():
        assert isinstance(answer, CompletionResponse), (name, answer)
        before = live[name]
        assert answer.batch and not before.batch
        assert answer.content == before.content, name
        assert answer.stop_reason == before.stop_reason, name
        assert answer.request_id == f"{batch_id}/{name}"
        assert answer.message_id and answer.message_id != before.message_id
        assert answer.tokens == before.tokens, name
        assert cost_usd(DEFAULT_PRICES, answer.model, answer.tokens, batch=True) \
            == pytest.approx(cost_usd(DEFAULT_PRICES, before.model, before.tokens) / 2)
    assert got["cut"].stop_reason == "max_tokens"
    assert got["thinks"].tokens.thinking > 0
    assert any(b.type == "thinking" for b in got["thinks"].content)


def test_the_provider_maps_failed_results_to_live_errors(fake: FakeAnthropic) -> None:
    provider = _provider(fake)
    fake.expire.add("late")
    fake.script.append("overloaded")  # the first request's answer: an overloaded_error
    bad = CompletionRequest(role=Role.AGENT, model=OLD, system=[], messages=[
        Message(role="assistant", content=[TextBlock(text="I start.")])])
    huge = _request("word " * 210_000)
    batch_id = provider.submit_batch([("busy", _request("Busy?")),
                                      ("ok", _request("Say hello.")), ("bad", bad),
                                      ("huge", huge), ("late", _request("Later."))])
    got = _collected(provider, batch_id)
    assert isinstance(got["ok"], CompletionResponse)
    assert isinstance(got["busy"], TransientModelError) and "overloaded" in str(got["busy"])
    assert type(got["bad"]) is ModelRefused and "invalid_request_error" in str(got["bad"])
    assert got["bad"].request_id == f"{batch_id}/bad"
    assert isinstance(got["huge"], ContextOverflow)
    assert isinstance(got["late"], TransientModelError) and "expired" in str(got["late"])


def test_the_provider_cancels_and_a_canceled_request_is_worth_sending_live(
        fake: FakeAnthropic) -> None:
    fake.batch_seconds = 30.0
    provider = _provider(fake)
    batch_id = provider.submit_batch([("a", _request("Say hello."))])
    provider.cancel_batch(batch_id)
    got = _collected(provider, batch_id)
    assert isinstance(got["a"], TransientModelError) and "canceled" in str(got["a"])
    assert got["a"].request_id == f"{batch_id}/a"


def test_the_provider_refuses_a_bad_batch_before_sending(fake: FakeAnthropic) -> None:
    provider = _provider(fake)
    for items in ([], [("a b", _request("x"))], [("a", _request("x")), ("a", _request("y"))]):
        with pytest.raises(ValueError, match="custom ids"):
            provider.submit_batch(items)
    assert fake.batches == {} and fake.refused == []


def test_a_refused_batch_raises_as_a_live_call_would(fake: FakeAnthropic) -> None:
    provider = AnthropicProvider(Settings(ANTHROPIC_API_KEY="sk-wrong",
                                          ANTHROPIC_BASE_URL=fake.url))
    with pytest.raises(ModelRefused, match="401"):
        provider.submit_batch([("a", _request("x"))])
    with pytest.raises(ModelRefused, match="404"):
        _provider(fake).collect_batch("msgbatch_nope")
