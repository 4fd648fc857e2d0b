"""What the Messages API refuses, checked as the API checks it (for tests/fake_anthropic.py).

Every per-model fact comes from orchestrator/domain/catalog.py. A refusal is `Refused` with the
API's status, error type and message; `validate` also says whether the request thinks, and how
hard. Thinking blocks are signed with an HMAC over the model and the thinking text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.catalog import MODELS, ModelSpec, Thinking, longest_prefix, spec
from orchestrator.llm.cache import prompt_tokens, ttl_of

# Model ids the tests use beyond the catalog's: the rate-limit tests' own ("claude-test-…", a
# 4.x-like model as catalog.UNKNOWN describes it).
TEST_MODELS = ("claude-test-",)
EFFORTS = ("low", "medium", "high", "xhigh", "max")
SAMPLING = ("temperature", "top_p", "top_k")
# The request fields the API takes (the installed SDK's create and count_tokens parameters),
# the sampling ones refused with a message of their own.
COUNT_FIELDS = frozenset({
    "cache_control", "message", "messages", "model", "output_config", "prefill", "speed",
    "system", "thinking", "tool_choice", "tools", "user_profile_id", "workspace_id",
    *SAMPLING})
MESSAGE_FIELDS = COUNT_FIELDS | {"container", "diagnostics", "inference_geo", "max_tokens",
                                 "metadata", "service_tier", "stop_sequences", "stream"}
OUTPUT_FIELDS = frozenset({"effort", "format"})
PREFILL = ("This model does not support assistant message prefill. The conversation must "
           "end with a user message.")
THINKING_FIRST = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
    "`{found}`. When `thinking` is enabled, a final `assistant` message must start with a "
    "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
    "recommend you include thinking blocks from previous turns. To avoid this requirement, "
    "disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class Refused(Exception):
    """A request the API would not take: its status, error type and message."""

    def __init__(self, message: str, status: int = 400,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.status, self.kind = message, status, kind


def known_model(model: str) -> bool:
    return (longest_prefix(MODELS, model) is not None
            or any(model.startswith(p) for p in TEST_MODELS))


def generation(model: str) -> int:
    """The model's major version by its catalog row (0 for a model outside the catalog)."""
    name = longest_prefix(MODELS, model)
    found = re.match(r"claude-[a-z]+-(\d+)", name or "")
    return int(found.group(1)) if found else 0


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def sign(secret: bytes, model: str, thinking: str) -> str:
    mac = hmac.new(secret, f"{model}\n{thinking}".encode(), hashlib.sha256).hexdigest()
    return f"sig_{mac}"


# A thinking block's signature -> the sets of tool-call ids it was returned with.
Issued = dict[str, list[frozenset[str]]]


@dataclass(frozen=True)
class Plan:
    """What validation found out about a request: whether it thinks, and how hard."""

    thinks: bool
    effort: str


def _thinking_plan(body: dict[str, Any], model: str, model_spec: ModelSpec,
                   counting: bool) -> Plan:
    mode = model_spec.thinking
    five = generation(model) >= 5
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    output = body.get("output_config") or {}
    effort = output.get("effort")
    if effort is not None:
        if mode in (Thinking.EXTENDED, Thinking.NONE):
            raise Refused("output_config.effort: This model does not support the effort "
                          "parameter.")
        if effort not in EFFORTS:
            raise Refused(f"output_config.effort: Input should be {', '.join(map(repr, EFFORTS))}")
    if thinking is not None and kind is None:
        raise Refused("thinking: Field required: type")
    thinks: bool
    if kind == "disabled":
        if mode is Thinking.ALWAYS:
            raise Refused("thinking.type.disabled is not supported for this model: it always "
                          "thinks. Use thinking.type.adaptive and output_config.effort to "
                          "control thinking behavior.")
        thinks = False
    elif kind == "enabled":
        if five or mode is Thinking.ALWAYS:
            raise Refused("thinking.type.enabled is not supported for this model. Use "
                          "thinking.type.adaptive and output_config.effort to control "
                          "thinking behavior.")
        if mode is Thinking.NONE:
            raise Refused("thinking: This model does not support thinking.")
        budget = (thinking or {}).get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Refused("thinking.enabled.budget_tokens: Input should be greater than or "
                          "equal to 1024")
        if not counting and budget >= body.get("max_tokens", 0):
            raise Refused("`max_tokens` must be greater than `thinking.budget_tokens`. Please "
                          "consult our documentation at https://docs.claude.com/en/docs/"
                          "build-with-claude/extended-thinking#max-tokens-and-context-window-"
                          "size")
        thinks = True
    elif kind in ("adaptive", "between_tools"):
        if mode in (Thinking.EXTENDED, Thinking.NONE):
            raise Refused(f"thinking.type.{kind} is not supported for this model.")
        thinks = True
    elif kind is not None:
        raise Refused(f"thinking: Input tag '{kind}' found using 'type' does not match any of "
                      "the expected tags: 'adaptive', 'disabled', 'enabled'")
    else:  # omitted: a model that always thinks, or a 5.x model that may, thinks adaptively
        thinks = mode is Thinking.ALWAYS or (mode is Thinking.ADAPTIVE and five)
    return Plan(thinks=thinks, effort=effort or model_spec.default_effort or "high")


def _check_text(where: str, block: dict[str, Any]) -> None:
    text = block.get("text")
    if not isinstance(text, str) or not text:
        raise Refused(f"{where}: text content blocks must be non-empty")
    if not text.strip():
        raise Refused(f"{where}: text content blocks must contain non-whitespace text")


def _check_cache_markers(body: dict[str, Any]) -> None:
    """At most 4 breakpoints, and no 1-hour one after a 5-minute one (tools, system, then
    messages)."""
    markers: list[Any] = []
    for tool in body.get("tools") or []:
        if "cache_control" in tool:
            markers.append(tool["cache_control"])
    system = body.get("system")
    for block in system if isinstance(system, list) else []:
        if "cache_control" in block:
            markers.append(block["cache_control"])
    for message in body.get("messages") or []:
        for block in blocks_of(message):
            if "cache_control" in block:
                if block.get("type") in ("thinking", "redacted_thinking"):
                    raise Refused("cache_control cannot be set for thinking blocks")
                markers.append(block["cache_control"])
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for part in inner if isinstance(inner, list) else []:
                if isinstance(part, dict) and "cache_control" in part:
                    markers.append(part["cache_control"])
    if body.get("cache_control"):
        markers.append(body["cache_control"])
    if len(markers) > 4:
        raise Refused(f"A maximum of 4 blocks with cache_control may be provided. "
                      f"Found {len(markers)}.")
    seen_5m = False
    for marker in markers:
        if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
            raise Refused("cache_control.type: Input should be 'ephemeral'")
        ttl = ttl_of(marker)
        if ttl not in ("5m", "1h"):
            raise Refused("cache_control.ttl: Input should be '5m' or '1h'")
        if ttl == "1h" and seen_5m:
            raise Refused("A ttl='1h' cache_control block must not come after a ttl='5m' "
                          "cache_control block. Note that blocks are processed in the "
                          "following order: `tools`, `system`, `messages`.")
        seen_5m = seen_5m or ttl == "5m"


def _check_roles(messages: list[dict[str, Any]], model: str, plan: Plan) -> None:
    """A user first, then turns that alternate, each with content; on a model that takes no
    prefill (5.x, or thinking) the user last."""
    if not messages:
        raise Refused("messages: at least one message is required")
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            raise Refused(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i and message["role"] == messages[i - 1]["role"]:
            raise Refused('messages: roles must alternate between "user" and "assistant", '
                          f'but found multiple "{message["role"]}" roles in a row')
        last = i == len(messages) - 1 and message["role"] == "assistant"
        if not blocks_of(message) and not last:
            raise Refused(f"messages.{i}: all messages must have non-empty content except "
                          "for the optional final assistant message")
    if messages[0]["role"] != "user":
        raise Refused('messages: first message must use the "user" role')
    if messages[-1]["role"] == "assistant" and (generation(model) >= 5 or plan.thinks):
        raise Refused(PREFILL)


def _check_blocks(messages: list[dict[str, Any]], model: str, secret: bytes) -> None:
    """No empty text; thinking only from the assistant, each block signed by this server for
    this model (a redacted block is never this server's)."""
    for i, message in enumerate(messages):
        for j, block in enumerate(blocks_of(message)):
            kind, where = block.get("type"), f"messages.{i}.content.{j}"
            if kind == "text":
                _check_text("messages", block)
            elif kind == "thinking":
                if message["role"] != "assistant":
                    raise Refused(f"{where}: thinking blocks may only be in assistant messages")
                signature = block.get("signature")
                expected = sign(secret, model, str(block.get("thinking", "")))
                if not (isinstance(signature, str)
                        and hmac.compare_digest(signature, expected)):
                    raise Refused(f"{where}: Invalid `signature` in `thinking` block")
            elif kind == "redacted_thinking":
                raise Refused(f"{where}: Invalid `data` in `redacted_thinking` block")


def _tool_ids(message: dict[str, Any]) -> list[str]:
    return [str(b.get("id")) for b in blocks_of(message) if b.get("type") == "tool_use"]


def _check_tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool call answered at the start of the next message; every result answering a
    call of the message before."""
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            if i + 1 == len(messages):
                continue
            leading = []
            for block in blocks_of(messages[i + 1]):
                if block.get("type") != "tool_result":
                    break
                leading.append(block.get("tool_use_id"))
            missing = [t for t in _tool_ids(message) if t not in leading]
            if missing:
                raise Refused(f"messages.{i + 1}: `tool_use` ids were found without "
                              f"`tool_result` blocks immediately after: {', '.join(missing)}. "
                              "Each `tool_use` block must have a corresponding `tool_result` "
                              "block in the next message.")
            continue
        asked = set(_tool_ids(messages[i - 1])) if i else set()
        for j, block in enumerate(blocks_of(message)):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in asked:
                raise Refused(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                              f"`tool_result` blocks: {block.get('tool_use_id')}. Each "
                              "`tool_result` block must have a corresponding `tool_use` block "
                              "in the previous message.")


def _check_thinking_turn(messages: list[dict[str, Any]], issued: Issued | None) -> None:
    """A thinking request's last tool turn starts with the thinking this server returned
    with those very tool calls."""
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant" and _tool_ids(m)]
    if not turns:
        return
    blocks = blocks_of(messages[turns[-1]])
    if blocks[0].get("type") not in ("thinking", "redacted_thinking"):
        raise Refused(THINKING_FIRST.format(i=turns[-1], found=blocks[0].get("type")))
    calls = frozenset(_tool_ids(messages[turns[-1]]))
    signatures = [str(b.get("signature")) for b in blocks if b.get("type") == "thinking"]
    if issued is not None and not any(calls <= ids for sig in signatures
                                      for ids in issued.get(sig, ())):
        raise Refused(f"messages.{turns[-1]}.content.0: The block is bound to a different "
                      "conversation: the thinking does not belong to this turn's tool use")


def _check_messages(messages: list[dict[str, Any]], model: str, plan: Plan,
                    secret: bytes, issued: Issued | None) -> None:
    _check_roles(messages, model, plan)
    _check_blocks(messages, model, secret)
    _check_tool_pairs(messages)
    if plan.thinks:
        _check_thinking_turn(messages, issued)


def validate(body: dict[str, Any], secret: bytes, *, counting: bool = False,
             issued: Issued | None = None) -> Plan:
    """The request as the API checks it; Refused when it would not take it (`counting`: for
    count_tokens, which takes no `max_tokens` and counts a prompt of any length; `issued`:
    what thinking the server returned with which tool calls, to hold a tool turn to its own
    thinking)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Refused("model: Field required")
    if not known_model(model):
        raise Refused(f"model: {model}", 404, "not_found_error")
    model_spec = spec(model)
    for key in body:
        if key not in (COUNT_FIELDS if counting else MESSAGE_FIELDS):
            raise Refused(f"{key}: Extra inputs are not permitted")
    for key in body.get("output_config") or {}:
        if key not in OUTPUT_FIELDS:
            raise Refused(f"output_config.{key}: Extra inputs are not permitted")
    if not counting:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int):
            raise Refused("max_tokens: Field required")
        if max_tokens < 1:
            raise Refused("max_tokens: Input should be greater than or equal to 1")
        if max_tokens > model_spec.max_output:
            raise Refused(f"max_tokens: {max_tokens} > {model_spec.max_output}, which is the "
                          f"maximum allowed number of output tokens for {model}")
    plan = _thinking_plan(body, model, model_spec, counting)
    for key in SAMPLING:
        if key in body and generation(model) >= 5:
            raise Refused(f"`{key}` is not supported on this model.")
        if key in body and plan.thinks:
            raise Refused(f"`{key}` may not be set when thinking is enabled.")
    choice = (body.get("tool_choice") or {}).get("type")
    if plan.thinks and choice in ("any", "tool"):
        raise Refused("Thinking may not be enabled when tool_choice forces tool use.")
    for n, tool in enumerate(body.get("tools") or []):
        if not _TOOL_NAME.match(str(tool.get("name", ""))):
            raise Refused(f"tools.{n}.custom.name: String should match pattern "
                          "'^[a-zA-Z0-9_-]{1,64}$'")
    system = body.get("system")
    if isinstance(system, list):
        for block in system:
            _check_text("system", block)
    _check_cache_markers(body)
    _check_messages(body.get("messages") or [], model, plan, secret, issued)
    if not counting:
        tokens = prompt_tokens(body)
        if tokens > model_spec.context_window:
            raise Refused(f"prompt is too long: {tokens} tokens > "
                          f"{model_spec.context_window} maximum")
    return plan
