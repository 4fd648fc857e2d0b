"""The agency handbook ships with the package and is long enough to be cached as a prefix."""

from __future__ import annotations

from importlib.resources import files

from orchestrator.domain.constants import AgentType


def handbook() -> str:
    return files("orchestrator.agent").joinpath("handbook.md").read_text(encoding="utf-8")


def test_handbook_length_fits_the_cached_prefix() -> None:
    assert 17_000 <= len(handbook()) <= 19_000


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
