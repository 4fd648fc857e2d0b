"""The agents' shared prefix as a request of its own: counted once, and warmed before a fan-out.

The cache finds an entry by everything before its breakpoint, and by the model, the output
format and the thinking settings; so this request is what every agent's first turn sends up to
its breakpoint (runner.work): the agent model, the agents' tools, the handbook and project
brief as the first system block, the agents' output schema, their effort and the project's
cache life. What follows the breakpoint (persona, task) is not part of the key.
"""

from __future__ import annotations

from orchestrator.agent.prompts import shared_prefix
from orchestrator.agent.runtime import Runtime
from orchestrator.agent.tools import AGENT_TOOLS
from orchestrator.domain import prompt_labels as L
from orchestrator.domain.constants import Role
from orchestrator.domain.models import AgentOutput, ProjectRecord
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Message, TextBlock
from orchestrator.llm.structured import call

# The smallest answer the API takes: the warm-up's answer is never read.
WARMUP_MAX_TOKENS = 1


def prefix_request(rt: Runtime, project: ProjectRecord) -> CompletionRequest:
    """A call that shares the agents' cache key and says nothing else."""
    return CompletionRequest(
        role=Role.WARMUP, model=rt.model_for(Role.AGENT), system=[shared_prefix(project)],
        messages=[Message(role="user", content=[TextBlock(text=L.WARMUP)])],
        tools=list(AGENT_TOOLS), schema_name="agent_output",
        json_schema=AgentOutput.model_json_schema(), max_tokens=WARMUP_MAX_TOKENS,
        effort=rt.effort_for(Role.AGENT), cache_ttl=rt.cache_ttl(project))


def count_prefix(rt: Runtime, project: ProjectRecord) -> int:
    """The prefix's tokens as the agent model counts them (a free count, no answer)."""
    return rt.provider.count_tokens(prefix_request(rt, project))


def warm_up(rt: Runtime, project: ProjectRecord) -> CompletionResponse:
    """Write the prefix to the cache: one paid call, in the project's ledger."""
    request = prefix_request(rt, project)
    meter = rt.meter(project.id)
    response = call(rt.provider, request, rt.policy, meter)
    meter.record(request, response, 1)
    return response
