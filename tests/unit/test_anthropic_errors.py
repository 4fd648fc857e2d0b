"""What Agency makes of the API's errors: retry or not, how long to wait, the request id."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from orchestrator.domain.errors import ContextOverflow, ModelRefused, TransientModelError
from orchestrator.llm.anthropic import classify, failure, retry_after

URL = "http://127.0.0.1:9/v1/messages"


def _error(status: int, message: str, **headers: str) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": "x", "message": message}}
    response = httpx2.Response(status, json=body, headers={"request-id": "req_abc", **headers},
                               request=httpx2.Request("POST", URL))
    client = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9")
    return client._make_status_error(message, body=body, response=response)


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": "soon"}) is None


def test_x_should_retry_wins_over_the_status_code() -> None:
    assert classify(_error(500, "boom", **{"x-should-retry": "false"}))[0] is False
    assert classify(_error(400, "busy", **{"x-should-retry": "true"}))[0] is True
    assert classify(_error(529, "Overloaded"))[0] is True
    assert classify(_error(400, "bad"))[0] is False


def test_every_error_a_person_sees_names_the_request_id() -> None:
    refused = failure(_error(400, "messages: roles must alternate"))
    assert isinstance(refused, ModelRefused) and "(request req_abc)" in str(refused)
    assert refused.request_id == "req_abc"
    transient = failure(_error(529, "Overloaded", **{"retry-after-ms": "1500"}))
    assert isinstance(transient, TransientModelError)
    assert "(request req_abc)" in str(transient) and transient.retry_after == 1.5
    assert not transient.lost  # an error answer: nothing was generated


def test_a_prompt_over_the_window_is_a_context_overflow() -> None:
    found = failure(_error(400, "prompt is too long: 208310 tokens > 200000 maximum"))
    assert isinstance(found, ContextOverflow)


@pytest.mark.parametrize(("exc", "lost"), [
    (anthropic.APITimeoutError(request=httpx2.Request("POST", URL)), True),
    (anthropic.APIConnectionError(request=httpx2.Request("POST", URL)), True),
])
def test_a_call_that_gave_no_answer_after_it_was_sent_may_have_been_billed(
        exc: Exception, lost: bool) -> None:
    found = failure(exc)
    assert isinstance(found, TransientModelError) and found.lost is lost


def test_a_call_that_never_connected_was_not_billed() -> None:
    request = httpx2.Request("POST", URL)
    try:
        raise anthropic.APIConnectionError(request=request) from httpx2.ConnectError("refused")
    except anthropic.APIConnectionError as exc:
        found = failure(exc)
    assert isinstance(found, TransientModelError) and not found.lost
