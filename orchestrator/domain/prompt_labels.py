"""The labels prompts are written with, and read back by the offline model: one spelling.

The prompt builders (orchestrator/agent/prompts.py and review.py, orchestrator/domain/prompts.py,
orchestrator/services/integrate.py, orchestrator/agent/tools.py) write these; the offline
model's one parser (agency_offline/reading.py) reads them, and tests/unit/test_offline_reading.py
builds real prompts and reads every field back. An edit that breaks a label fails that test,
and the parser raises on a prompt it cannot read rather than guessing.

A template's `{fields}` are written with `str.format` and read back by the parser. Lists on
one line (deliverables, acceptance criteria) are joined with `LIST_SEPARATOR`.
"""

from __future__ import annotations

LIST_SEPARATOR = "; "
BULLET = "- "

# The project brief, in the system prompt of every agent, reviewer and the integrator.
BRIEF_REQUEST = "Request: "
BRIEF_PROJECT_TYPE = "Project type: "

# An agent's task: the first message of its conversation.
TASK_TITLE = "Your task: "
TASK_LINE = "Task: index {index}, id {id}, agent {agent_type}, priority {priority}"
DESCRIPTION = "Description: "
DELIVERABLES = "Deliverables: "
CRITERIA = "Acceptance criteria: "
INPUT_HEAD = "## Input from task {index} '{title}' ({agent_type})"
NO_OUTPUT = "(no output)"
SUMMARY = "Summary: "
FILES = "Files:"

# A reviewer's notes, sent back to the agent in its conversation (one bullet per note).
REVISE_HEAD = "Review round {round}: revise."

# A review: the reviewer's first message.
REVIEW_HEAD = "Review task {index} '{title}' by the {agent_type}."
AGENT_ASKS = "The agent asks: "
UNDER_REVIEW = "## Output under review"
CHECKS_HEAD = "## Checks run on its files (a failed check sends the work back, whatever you say)"
FILE_HEAD = "## File {path}"

# One knowledge-base hit in a search_knowledge result.
SEARCH_HIT = "{rank}. [{source}] {snippet}"

# Said on a conversation's last turn. `tool_choice` stays "auto" (changing it would throw away
# the cached conversation); a tool call made anyway is not run and counts as an invalid answer.
LAST_TURN = "You have no turns left for tools: answer now with the JSON object."

# The orchestrator's own prompts (orchestrator/domain/prompts.py): each field's label, and the
# fixed text that follows the field.
ANALYSIS_REQUEST = "Request: "
ANALYSIS_END = "\n\nProvide a JSON response with:"
PLAN_PROJECT_TYPE = "Project Type: "
PLAN_DESCRIPTION = "Description: "
PLAN_REQUIREMENTS = "Requirements: "
PLAN_CONSTRAINTS = "Constraints: "
PLAN_END = "\n\nCreate a detailed task breakdown with:"
INTEGRATION_PROJECT = "Project: "
INTEGRATION_PROJECT_TYPE = "Project Type: "
INTEGRATION_RESULTS = "Task Results:\n"
INTEGRATION_END = "\n\nCreate an integrated deliverable with:"
SUCCESS_CRITERIA = "Success criteria:\n"
METRICS = "Current Metrics:\n"
METRICS_END = "\n\nProvide recommendations for:"

# A warm-up of the agents' shared prefix (orchestrator/agent/prefix.py): its only message; the
# answer is cut at one token and never read.
WARMUP = "Warm-up of the project's cached brief: no task yet."
