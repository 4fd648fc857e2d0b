"""The local Messages API server is as strict as the API: each refusal and each behaviour,
driven with raw JSON over HTTP (and, for streaming, through the installed SDK)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from orchestrator.domain.catalog import spec
from orchestrator.domain.prompt_labels import TASK_TITLE
from tests.fake_anthropic import FakeAnthropic, Faults
from tests.fake_anthropic_answers import cut, sse

KEY = "sk-test-strict"
OLD = "claude-haiku-4-5"  # no thinking unless asked, prefill allowed, the older tokenizer
HAIKU = "claude-haiku-5-5"  # 5.x, thinks unless told `disabled`
OPUS = "claude-opus-5-5"  # always thinks
OFF = {"type": "disabled"}


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY) as server:
        yield server


def user(text: str = "Say hello.") -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def body(model: str = OLD, *messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1000, "messages": list(messages) or [user()],
            **extra}


def post(fake: FakeAnthropic, payload: dict[str, Any],
         path: str = "/v1/messages") -> httpx.Response:
    return httpx.post(fake.url + path, json=payload, timeout=30,
                      headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})


def ok(fake: FakeAnthropic, payload: dict[str, Any]) -> dict[str, Any]:
    response = post(fake, payload)
    assert response.status_code == 200, response.text
    assert fake.refused == []
    return dict(response.json())


def refused(fake: FakeAnthropic, payload: dict[str, Any], message: str, status: int = 400,
            kind: str = "invalid_request_error", path: str = "/v1/messages") -> str:
    """The request is refused as the API refuses it; the message (which must contain
    `message`) is kept in fake.refused."""
    response = post(fake, payload, path)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == kind
    assert message in error["error"]["message"], error["error"]["message"]
    assert error["request_id"] == response.headers["request-id"]
    assert error["request_id"].startswith("req_")
    assert fake.refused == [error["error"]["message"]]
    assert fake.refusals[error["error"]["message"]] == 1
    return str(error["error"]["message"])


def tool_turn(thinking: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """A conversation with one tool call answered."""
    call = {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "x"}}
    return [user(), {"role": "assistant", "content": [*(thinking or []), call]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": "found"}]}]


TOOLS = [{"name": n, "description": n, "input_schema": {"type": "object"}}
         for n in ("search", "ask_person")]


# --- refusals --------------------------------------------------------------------------------


def test_an_unknown_model_is_not_found(fake: FakeAnthropic) -> None:
    refused(fake, body("claude-nonesuch-9"), "model: claude-nonesuch-9", 404, "not_found_error")


def test_catalog_models_dated_ids_and_the_tests_own_ids_are_known(fake: FakeAnthropic) -> None:
    for model in ("claude-haiku-4-5-20251001", "claude-sonnet-4-6", "claude-test-0a1b2c"):
        ok(fake, body(model, thinking=OFF) if model.startswith("claude-test") else body(model))


def test_no_messages(fake: FakeAnthropic) -> None:
    refused(fake, {"model": OLD, "max_tokens": 10, "messages": []},
            "messages: at least one message is required")


def test_the_first_message_must_be_the_users(fake: FakeAnthropic) -> None:
    refused(fake, body(OLD, {"role": "assistant", "content": "Hi"}, user()),
            'first message must use the "user" role')


def test_roles_must_alternate(fake: FakeAnthropic) -> None:
    refused(fake, body(OLD, user(), user("again")),
            'roles must alternate between "user" and "assistant", but found multiple "user"')


def test_a_5x_model_takes_no_prefill(fake: FakeAnthropic) -> None:
    prefill = {"role": "assistant", "content": [{"type": "text", "text": "{"}]}
    refused(fake, body(HAIKU, user(), prefill, thinking=OFF),
            "This model does not support assistant message prefill. The conversation must "
            "end with a user message.")


def test_an_older_model_takes_prefill(fake: FakeAnthropic) -> None:
    ok(fake, body(OLD, user(), {"role": "assistant", "content": [{"type": "text", "text": "{"}]}))


def test_a_tool_use_needs_its_result_at_the_start_of_the_next_message(fake: FakeAnthropic
                                                                      ) -> None:
    messages = tool_turn()
    messages[2]["content"].insert(0, {"type": "text", "text": "Here is the result:"})
    refused(fake, body(OLD, *messages, tools=TOOLS),
            "messages.2: `tool_use` ids were found without `tool_result` blocks immediately "
            "after: toolu_1")


def test_a_tool_result_must_answer_a_tool_use_of_the_previous_message(fake: FakeAnthropic
                                                                      ) -> None:
    messages = tool_turn()
    messages[2]["content"].append({"type": "tool_result", "tool_use_id": "toolu_9",
                                   "content": "?"})
    refused(fake, body(OLD, *messages, tools=TOOLS),
            "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: "
            "toolu_9")


@pytest.mark.parametrize(("text", "message"), [
    ("", "messages: text content blocks must be non-empty"),
    ("  \n", "messages: text content blocks must contain non-whitespace text")])
def test_empty_text_blocks(fake: FakeAnthropic, text: str, message: str) -> None:
    refused(fake, body(OLD, user(text)), message)


def test_an_empty_system_block(fake: FakeAnthropic) -> None:
    refused(fake, body(OLD, system=[{"type": "text", "text": ""}]),
            "system: text content blocks must be non-empty")


def test_at_most_four_cache_breakpoints(fake: FakeAnthropic) -> None:
    mark = {"type": "ephemeral"}
    system = [{"type": "text", "text": f"part {n}", "cache_control": mark} for n in range(4)]
    prompt = {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": mark}]}
    refused(fake, body(OLD, prompt, system=system),
            "A maximum of 4 blocks with cache_control may be provided. Found 5.")


def test_a_one_hour_breakpoint_must_come_before_five_minute_ones(fake: FakeAnthropic) -> None:
    hour, five = {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral"}
    ok(fake, body(OLD, system=[{"type": "text", "text": "a", "cache_control": hour},
                               {"type": "text", "text": "b", "cache_control": five}]))
    refused(fake, body(OLD, system=[{"type": "text", "text": "a", "cache_control": five},
                                    {"type": "text", "text": "b", "cache_control": hour}]),
            "ttl='1h' cache_control block must not come after a ttl='5m'")


@pytest.mark.parametrize("key", ["temperature", "top_p", "top_k"])
def test_sampling_parameters_on_a_5x_model(fake: FakeAnthropic, key: str) -> None:
    refused(fake, body(HAIKU, thinking=OFF, **{key: 1}), f"`{key}` is not supported")


def test_sampling_parameters_with_thinking(fake: FakeAnthropic) -> None:
    ok(fake, body("claude-sonnet-4-6", temperature=0.5))  # no thinking: fine
    refused(fake, body("claude-sonnet-4-6", temperature=0.5, thinking={"type": "adaptive"}),
            "`temperature` may not be set when thinking is enabled")


@pytest.mark.parametrize(("model", "extra", "message"), [
    (OPUS, {"thinking": OFF}, "thinking.type.disabled is not supported for this model"),
    ("claude-sonnet-5", {"thinking": {"type": "enabled", "budget_tokens": 2000}},
     "thinking.type.enabled is not supported for this model"),
    (OLD, {"thinking": {"type": "adaptive"}}, "thinking.type.adaptive is not supported"),
    (OLD, {"output_config": {"effort": "low"}}, "does not support the effort parameter")])
def test_a_thinking_parameter_the_model_does_not_take(fake: FakeAnthropic, model: str,
                                                     extra: dict[str, Any], message: str
                                                     ) -> None:
    refused(fake, body(model, **extra), message)


def test_manual_thinking_on_an_older_model_thinks(fake: FakeAnthropic) -> None:
    answer = ok(fake, body(OLD, max_tokens=3000,
                           thinking={"type": "enabled", "budget_tokens": 1024}))
    assert answer["content"][0]["type"] == "thinking"


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "search"}])
def test_forced_tool_choice_with_thinking(fake: FakeAnthropic, choice: dict[str, Any]) -> None:
    ok(fake, body(HAIKU, tools=TOOLS, tool_choice=choice, thinking=OFF))
    fake.refused.clear()
    refused(fake, body(OPUS, tools=TOOLS, tool_choice=choice),
            "Thinking may not be enabled when tool_choice forces tool use.")


def test_a_thinking_tool_turn_must_come_back_with_its_thinking(fake: FakeAnthropic) -> None:
    refused(fake, body(OPUS, *tool_turn(), tools=TOOLS),
            "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            "`tool_use`")


def asked(fake: FakeAnthropic, model: str = OPUS) -> list[dict[str, Any]]:
    """A conversation in which the server called a tool (ask_person), its result sent back."""
    fake.faults.questions = {"Write": ("Which pages?", "three pages")}
    prompt = user(f"{TASK_TITLE}Write the docs\nMore.")
    answer = ok(fake, body(model, prompt, tools=TOOLS))
    assert answer["stop_reason"] == "tool_use"
    call = next(b for b in answer["content"] if b["type"] == "tool_use")
    return [prompt, {"role": "assistant", "content": answer["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                          "content": "no answer yet"}]}]


def test_a_thinking_tool_turn_passed_back_as_returned_is_taken(fake: FakeAnthropic) -> None:
    messages = asked(fake)
    assert messages[1]["content"][0]["type"] == "thinking"
    ok(fake, body(OPUS, *messages, tools=TOOLS))
    # not thinking (a model that may think, told not to): no thinking block is needed
    ok(fake, body(HAIKU, *tool_turn(), tools=TOOLS, thinking=OFF))


def test_a_tool_turn_with_thinking_signed_for_another_turn_is_refused(fake: FakeAnthropic
                                                                      ) -> None:
    thought = {"type": "thinking", "thinking": "Search first.",
               "signature": fake.sign(OPUS, "Search first.")}
    refused(fake, body(OPUS, *tool_turn([thought]), tools=TOOLS),
            "messages.1.content.0: The block is bound to a different conversation")


@pytest.mark.parametrize("change", ["text", "model"])
def test_a_thinking_block_changed_or_from_another_model_is_refused(fake: FakeAnthropic,
                                                                   change: str) -> None:
    signed_by = "claude-fable-5-1" if change == "model" else OPUS
    thought = {"type": "thinking", "thinking": "Search first." + (" Then." * (change == "text")),
               "signature": fake.sign(signed_by, "Search first.")}
    refused(fake, body(OPUS, *tool_turn([thought]), tools=TOOLS),
            "messages.1.content.0: Invalid `signature` in `thinking` block")


def test_max_tokens_above_the_models_cap(fake: FakeAnthropic) -> None:
    cap = spec(OLD).max_output
    refused(fake, body(OLD, max_tokens=cap + 1),
            f"max_tokens: {cap + 1} > {cap}, which is the maximum allowed number of output "
            f"tokens for {OLD}")


def test_a_prompt_over_the_context_window(fake: FakeAnthropic) -> None:
    window = spec(OLD).context_window
    message = refused(fake, body(OLD, user("word " * (window + 1000))), "prompt is too long: ")
    assert message.endswith(f" tokens > {window} maximum")
    assert int(message.split()[4]) > window


def test_count_tokens_checks_as_messages_do_and_counts_per_model(fake: FakeAnthropic) -> None:
    text = "The same text on two tokenizers. " * 200
    old = post(fake, {"model": OLD, "messages": [user(text)]}, "/v1/messages/count_tokens")
    new = post(fake, {"model": HAIKU, "messages": [user(text)]}, "/v1/messages/count_tokens")
    assert old.status_code == new.status_code == 200
    assert new.json()["input_tokens"] == pytest.approx(1.3 * old.json()["input_tokens"], 0.01)
    assert fake.requests == [] and len(fake.counted) == 2 and fake.usage == []
    refused(fake, {"model": OLD, "messages": [user(""), ]}, "non-empty",
            path="/v1/messages/count_tokens")


def test_a_well_behaved_conversation_is_never_refused(fake: FakeAnthropic) -> None:
    messages = asked(fake)
    answer = ok(fake, body(OPUS, *messages, tools=TOOLS))
    messages += [{"role": "assistant", "content": answer["content"]},
                 user("Thanks. Now the summary, please.")]
    ok(fake, body(OPUS, *messages, tools=TOOLS))
    assert fake.refused == [] and not fake.refusals


# --- behaviour -------------------------------------------------------------------------------


def test_usage_counts_tokens_per_model(fake: FakeAnthropic) -> None:
    text = "Count me with both tokenizers. " * 300
    old = ok(fake, body(OLD, user(text)))["usage"]
    new = ok(fake, body(HAIKU, user(text), thinking=OFF))["usage"]
    assert new["input_tokens"] == pytest.approx(1.3 * old["input_tokens"], 0.01)


def test_a_thinking_answer_starts_with_a_signed_block_longer_with_more_effort(
        fake: FakeAnthropic) -> None:
    spent = {}
    for effort in ("low", "medium", "high", "max"):
        answer = ok(fake, body(OPUS, max_tokens=4000, output_config={"effort": effort}))
        thought = answer["content"][0]
        assert thought["type"] == "thinking"
        assert thought["signature"] == fake.sign(OPUS, thought["thinking"])
        assert answer["content"][1]["type"] == "text"
        usage = answer["usage"]
        spent[effort] = usage["output_tokens_details"]["thinking_tokens"]
        assert usage["output_tokens"] > spent[effort]
    assert 30 <= spent["low"] < spent["medium"] < spent["high"] < spent["max"]
    assert 300 <= spent["high"] <= 500


def test_a_model_that_may_think_thinks_by_default_on_5x_only(fake: FakeAnthropic) -> None:
    assert ok(fake, body(HAIKU))["content"][0]["type"] == "thinking"
    assert ok(fake, body(HAIKU, thinking=OFF))["content"][0]["type"] == "text"
    assert ok(fake, body("claude-sonnet-4-6"))["content"][0]["type"] == "text"
    adaptive = ok(fake, body("claude-sonnet-4-6", thinking={"type": "adaptive"}))
    assert adaptive["content"][0]["type"] == "thinking"


def test_an_answer_is_cut_at_max_tokens(fake: FakeAnthropic) -> None:
    full = ok(fake, body(OLD))
    answer = ok(fake, body(OLD, max_tokens=5))
    assert full["stop_reason"] == "end_turn" and full["usage"]["output_tokens"] > 5
    assert answer["stop_reason"] == "max_tokens" and answer["usage"]["output_tokens"] == 5
    text = answer["content"][0]["text"]
    assert full["content"][0]["text"].startswith(text) and len(text) < 25


def test_thinking_is_cut_first(fake: FakeAnthropic) -> None:
    answer = ok(fake, body(OPUS, max_tokens=20, output_config={"effort": "high"}))
    assert [b["type"] for b in answer["content"]] == ["thinking"]
    assert answer["stop_reason"] == "max_tokens" and answer["usage"]["output_tokens"] == 20
    assert answer["usage"]["output_tokens_details"]["thinking_tokens"] == 20
    thought = answer["content"][0]
    assert thought["signature"] == fake.sign(OPUS, thought["thinking"])


def test_a_tool_call_cut_mid_input_keeps_a_partial_input() -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": "write_artifact",
             "input": {"path": "docs/a.md", "content": "x" * 400}}
    content, output, thinking, was_cut = cut(OLD, [{"type": "text", "text": "Writing."},
                                                   block], 40, b"k")
    assert was_cut and output == 40 and thinking == 0
    assert [b["type"] for b in content] == ["text", "tool_use"]
    partial = content[1]["input"]
    assert partial.get("path") == "docs/a.md" and partial != block["input"]
    assert cut(OLD, [block], 1, b"k")[0][0]["input"] == {}


def test_long_answers_on_demand_are_cut(fake: FakeAnthropic) -> None:
    fake.faults.long_answers = {"Write": 2000}
    task = user(f"{TASK_TITLE}Write the docs\nMore.")
    long = ok(fake, body(OLD, task, max_tokens=4000))
    assert long["stop_reason"] == "end_turn" and long["usage"]["output_tokens"] > 2000
    short = ok(fake, body(OLD, task, max_tokens=1000))
    assert short["stop_reason"] == "max_tokens" and short["usage"]["output_tokens"] == 1000


def test_text_after_tool_results_gets_an_empty_end_turn(fake: FakeAnthropic) -> None:
    messages = tool_turn()
    messages[2]["content"].append({"type": "text", "text": "Answer now."})
    answer = ok(fake, body(OLD, *messages, tools=TOOLS))
    assert answer["content"] == [] and answer["stop_reason"] == "end_turn"
    assert 2 <= answer["usage"]["output_tokens"] <= 3


def test_a_refusal_says_why(fake: FakeAnthropic) -> None:
    fake.script = deque(["refusal"])
    answer = ok(fake, body(OLD))
    assert answer["stop_reason"] == "refusal"
    assert answer["stop_details"]["type"] == "refusal"
    assert answer["stop_details"]["category"] == "cyber"
    assert answer["stop_details"]["explanation"]


def test_one_hour_cache_entries_are_reported_apart(fake: FakeAnthropic) -> None:
    hour = {"type": "ephemeral", "ttl": "1h"}
    system = [{"type": "text", "text": "Long shared prefix. " * 1200, "cache_control": hour}]
    first = ok(fake, body(OLD, system=system))["usage"]
    second = ok(fake, body(OLD, system=system))["usage"]
    assert first["cache_creation_input_tokens"] > 4096
    assert first["cache_creation"] == {"ephemeral_5m_input_tokens": 0,
                                       "ephemeral_1h_input_tokens":
                                       first["cache_creation_input_tokens"]}
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation"]["ephemeral_1h_input_tokens"] == 0


def test_errors_carry_the_request_id(fake: FakeAnthropic) -> None:
    fake.script = deque(["overloaded"])
    response = post(fake, body(OLD))
    assert response.status_code == 529
    assert response.json()["request_id"] == response.headers["request-id"]
    assert fake.refused == []  # a fault is not a refusal


# --- streaming -------------------------------------------------------------------------------


def _events(fake: FakeAnthropic, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    with httpx.stream("POST", fake.url + "/v1/messages", json={**payload, "stream": True},
                      headers={"x-api-key": KEY}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    out = []
    for chunk in text.strip().split("\n\n"):
        name, data = chunk.split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_a_stream_sends_the_apis_events_in_order(fake: FakeAnthropic) -> None:
    fake.chunk = 20
    events = _events(fake, body(OPUS, output_config={"effort": "low"}))
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names and all(n == e["type"] for n, e in events)
    start = events[0][1]["message"]
    assert start["content"] == [] and start["usage"]["output_tokens"] == 1
    assert {"input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
            "cache_creation"} <= set(start["usage"])
    deltas = [e["delta"]["type"] for n, e in events if n == "content_block_delta"]
    thinking = [d for d in deltas if d in ("thinking_delta", "signature_delta")]
    assert thinking.count("thinking_delta") > 1 and thinking[-1] == "signature_delta"
    assert deltas.count("text_delta") > 1
    stops = [e["index"] for n, e in events if n == "content_block_stop"]
    assert stops == [0, 1]
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == fake.messages[-1]["usage"]["output_tokens"]


def test_a_streamed_tool_call_sends_its_input_in_json_chunks() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "search",
            "input": {"q": "a long query " * 5}}
    message: dict[str, Any] = {"content": [call],
               "stop_reason": "tool_use",
               "usage": dict.fromkeys(("input_tokens", "cache_creation_input_tokens",
                                       "cache_read_input_tokens", "cache_creation",
                                       "output_tokens", "output_tokens_details"), 0)}
    events = sse(message, chunk=16)
    partial = "".join(e["delta"]["partial_json"] for n, e in events
                      if n == "content_block_delta")
    assert sum(n == "content_block_delta" for n, _ in events) > 2
    assert json.loads(partial) == call["input"]


@pytest.mark.parametrize("payload", [
    body(OPUS, output_config={"effort": "low"}),
    body(OPUS, max_tokens=60, output_config={"effort": "low"}),  # thinking, then a cut text
    body(OLD, max_tokens=7)])
def test_the_sdk_reassembles_a_stream_into_the_same_message(fake: FakeAnthropic,
                                                           payload: dict[str, Any]) -> None:
    client = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)
    created = client.messages.create(**payload).model_dump()
    with client.messages.stream(**payload) as stream:
        streamed = stream.get_final_message().model_dump()
    created.pop("id"), streamed.pop("id")
    assert streamed == created
    assert fake.refused == []


def test_an_error_before_a_stream_is_a_plain_http_error(fake: FakeAnthropic) -> None:
    client = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as raised, client.messages.stream(
            **body("claude-nonesuch-1")) as stream:
        stream.get_final_message()
    assert raised.value.request_id and raised.value.request_id.startswith("req_")


def test_faults_still_apply_to_a_stream(fake: FakeAnthropic) -> None:
    fake.script = deque(["rate_limit"])
    response = post(fake, {**body(OLD), "stream": True})
    assert response.status_code == 429 and response.headers["retry-after"]


def test_latency_is_spread_over_the_streamed_events() -> None:
    """A read timeout shorter than the whole answer but longer than the gap between events
    times out the plain call and not the stream."""
    with FakeAnthropic(api_key=KEY, faults=Faults(latency=1.2)) as fake:
        fake.chunk = 8
        client = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0,
                                     timeout=httpx.Timeout(0.6, connect=5.0))
        with client.messages.stream(**body(OLD)) as stream:
            assert stream.get_final_message().stop_reason == "end_turn"
        assert len(sse(fake.messages[-1], fake.chunk)) > 10
        with pytest.raises(anthropic.APITimeoutError):
            client.messages.create(**body(OLD))


def test_a_stream_may_end_in_an_error_event(fake: FakeAnthropic) -> None:
    fake.script = deque(["stream_error"])
    client = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"), \
            client.messages.stream(**body(OLD)) as stream:
        stream.get_final_message()
    fake.script = deque(["stream_error"])
    assert post(fake, body(OLD)).status_code == 529  # not streamed: a plain 529


def test_a_stream_that_stalls_times_out_on_its_read_timeout() -> None:
    with FakeAnthropic(api_key=KEY, faults=Faults(slow_seconds=1.5)) as fake:
        fake.script = deque(["stall"])
        client = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0,
                                     timeout=httpx.Timeout(0.5, connect=5.0))
        with pytest.raises((anthropic.APITimeoutError, httpx.ReadTimeout)), \
                client.messages.stream(**body(OLD)) as stream:
            stream.get_final_message()
        assert fake.messages  # it had begun: a possibly billed answer


def test_the_sdk_reassembles_streamed_tool_calls_whole_or_cut() -> None:
    """The SDK's own accumulation over the events gives the message as sent unstreamed: a
    thinking block, a text, a whole tool call and one cut mid-input."""
    from anthropic.lib.streaming._messages import accumulate_event
    from anthropic.types import Message

    thought = "Search, then write."
    blocks: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": thought, "signature": "sig_x"},
        {"type": "text", "text": "Writing the files."},
        {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "x y"}},
        {"type": "tool_use", "id": "toolu_2", "name": "write_artifact",
         "input": {"path": "docs/a.md", "content": "words " * 200}}]
    content, output, _, was_cut = cut(OLD, blocks, 60, b"k")
    assert was_cut and content[-1]["input"] not in ({}, blocks[-1]["input"])
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": OLD,
               "content": content, "stop_reason": "max_tokens", "stop_sequence": None,
               "stop_details": None,
               "usage": {"input_tokens": 10, "output_tokens": output,
                         "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
                         "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                            "ephemeral_1h_input_tokens": 0},
                         "output_tokens_details": {"thinking_tokens": 5}}}
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for _, event in sse(message, chunk=7):
        if event["type"] != "ping":
            snapshot = accumulate_event(event=event, current_snapshot=snapshot,  # type: ignore[arg-type]
                                        json_bufs=json_bufs)
    assert snapshot is not None
    assert snapshot.model_dump() == Message.model_validate(message).model_dump()


def test_siblings_that_arrive_together_all_write_and_a_later_request_reads() -> None:
    """A cache entry is readable once the answer that wrote it begins (arrival + latency)."""
    import threading

    system = [{"type": "text", "text": "Shared prefix. " * 1600,
               "cache_control": {"type": "ephemeral"}}]
    with FakeAnthropic(api_key=KEY, faults=Faults(latency=1.0)) as fake:
        found: list[dict[str, Any]] = []
        barrier = threading.Barrier(2)

        def sibling() -> None:
            barrier.wait()
            found.append(post(fake, body(OLD, system=system)).json()["usage"])

        threads = [threading.Thread(target=sibling) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        later = post(fake, body(OLD, system=system)).json()["usage"]
    assert [u["cache_read_input_tokens"] for u in found] == [0, 0]
    assert found[0]["cache_creation_input_tokens"] == found[1]["cache_creation_input_tokens"]
    assert later["cache_read_input_tokens"] == found[0]["cache_creation_input_tokens"] > 4096


def test_an_answer_that_fills_the_context_window_stops_there(fake: FakeAnthropic) -> None:
    window = spec(OLD).context_window
    # ~4 characters a token: a prompt that leaves about a dozen tokens of the window
    counted = post(fake, {"model": OLD, "messages": [user("word " * 159_980)]},
                   "/v1/messages/count_tokens").json()["input_tokens"]
    assert window - 40 < counted < window
    answer = ok(fake, body(OLD, user("word " * 159_980), max_tokens=1000))
    assert answer["stop_reason"] == "model_context_window_exceeded"
    assert answer["usage"]["output_tokens"] == window - counted


def test_a_field_the_api_does_not_take(fake: FakeAnthropic) -> None:
    refused(fake, body(OLD, effort="high"), "effort: Extra inputs are not permitted")


def test_count_tokens_takes_no_max_tokens(fake: FakeAnthropic) -> None:
    refused(fake, body(OLD), "max_tokens: Extra inputs are not permitted",
            path="/v1/messages/count_tokens")


def test_long_artifacts_lengthen_the_first_file_a_turn_writes() -> None:
    from tests.fake_anthropic_answers import lengthen

    calls = [{"type": "tool_use", "id": f"toolu_{n}", "name": "write_artifact",
              "input": {"path": f"docs/{n}.md", "content": "# Title\n"}} for n in range(2)]
    longer = lengthen(calls, OLD, 0, 500)
    first, second = (c["input"]["content"] for c in longer)
    assert first.startswith("# Title\n") and len(first) > 1500
    assert second == "# Title\n"
