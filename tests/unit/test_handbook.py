"""The agency handbook ships with the package and is long enough to be cached as a prefix."""

from __future__ import annotations

from importlib.resources import files

from orchestrator.domain.catalog import MODELS, OFFLINE
from orchestrator.domain.constants import AgentType
from orchestrator.domain.settings import Settings
from orchestrator.llm.cache import minimum_for, model_tokens


def handbook() -> str:
    return files("orchestrator.agent").joinpath("handbook.md").read_text(encoding="utf-8")


def test_handbook_alone_is_a_cacheable_prefix_on_every_model() -> None:
    """Every agent's prompt caches from the handbook on: it must reach each model's minimum
    by itself (a short brief adds little), and not be longer than caching needs, for every
    call reads it (and the first of five minutes writes it)."""
    model = Settings().agent_model
    assert model_tokens(model, handbook()) >= minimum_for(model)
    longest = max(s.cache_minimum for s in [*MODELS.values(), OFFLINE])
    for name in [*MODELS, "offline"]:
        tokens = model_tokens(name, handbook())
        assert minimum_for(name) <= tokens <= 2 * 1.3 * longest, (name, tokens)


def test_handbook_covers_tools_contract_and_every_agent() -> None:
    text = handbook()
    for tool in ("search_knowledge(query)", "read_task_output(task)",
                 "write_artifact(path, content)", "request_review(note)"):
        assert tool in text
    for agent in AgentType:
        assert f"### {agent.value}\n" in text
    for heading in ("## 3. The output contract", "## 6. Security and privacy",
                    "## 7. What reviewers check"):
        assert heading in text
