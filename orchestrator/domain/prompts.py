"""The orchestrator's prompts: its persona, and what analysis, decomposition, integration and
optimisation must answer (the keys of the models they are parsed into), as structured outputs.
The labels the offline model reads back are spelled once, in orchestrator/domain/prompt_labels.py.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.domain import prompt_labels as L

ORCHESTRATOR_SYSTEM = """You are the CEO and Chief Orchestrator of an AI Agency.

Your role is to:
1. Analyze incoming project requests and understand their full scope
2. Decompose projects into specific, actionable tasks
3. Assign tasks to the most suitable specialist agents
4. Monitor progress and ensure quality standards
5. Integrate results into cohesive deliverables
6. Maintain communication with stakeholders

You have the following specialist agents at your disposal (use these exact agent_type ids):
- marketing: Marketing strategies, content planning, SEO/SEM
- frontend_developer: React, Vue, UI/UX implementation
- backend_developer: APIs, databases, business logic
- mobile_developer: iOS/Android applications
- devops_engineer: Infrastructure, deployment, CI/CD
- data_analyst: Data analysis, reporting, insights
- ux_designer: User research, wireframes, prototypes
- project_manager: Sprint planning, task tracking
- qa_engineer: Testing, quality assurance
- content_writer: Blog posts, documentation, copy

Decision Framework:
- Prioritize tasks by impact and dependencies
- Optimize for parallel execution where possible
- Ensure quality gates at each stage
- Balance speed with thoroughness
- Consider token budget constraints

Output Format:
Always answer with a single JSON object that matches the requested schema, with no prose
around it."""



def analysis_prompt(request: str) -> str:
    return f"""Analyze this project request and provide a structured breakdown:

{L.ANALYSIS_REQUEST}{request}{L.ANALYSIS_END}
1. project_type: One of [website, mobile_app, marketing_campaign, data_analysis, content_creation, custom]
2. complexity: One of [simple, moderate, complex, enterprise]
3. estimated_hours: Number
4. required_agents: List of agent types needed
5. key_requirements: List of main requirements
6. potential_risks: List of risks
7. success_criteria: List of measurable outcomes
8. recommended_approach: Brief strategy"""


def decomposition_prompt(request: str, project_type: str, requirements: list[str],
                         constraints: dict[str, Any]) -> str:
    return f"""Decompose this project into specific tasks:

{L.PLAN_PROJECT_TYPE}{project_type}
{L.PLAN_DESCRIPTION}{request}
{L.PLAN_REQUIREMENTS}{json.dumps(requirements, indent=2)}
{L.PLAN_CONSTRAINTS}{json.dumps(constraints, indent=2)}{L.PLAN_END}
1. tasks: Array of task objects, each containing:
   - title: Clear task title
   - description: Detailed description
   - agent_type: Which agent should handle this (one of the agent_type ids above)
   - dependencies: Array of task indices (0-based) this depends on; no cycles
   - estimated_tokens: Estimated Claude API tokens
   - deliverables: Expected outputs
   - acceptance_criteria: How to verify completion
2. execution_order: Optimal sequence considering dependencies
3. parallel_groups: Tasks that can run simultaneously
4. critical_path: Tasks that directly impact timeline

Ensure tasks are specific, measurable, and assignable to individual agents."""


def integration_prompt(request: str, project_type: str, results: list[dict[str, object]]) -> str:
    return f"""Integrate the results from all tasks into a cohesive deliverable:

{L.INTEGRATION_PROJECT}{request}
{L.INTEGRATION_PROJECT_TYPE}{project_type}

{L.INTEGRATION_RESULTS}{json.dumps(results, indent=2)}{L.INTEGRATION_END}
1. executive_summary: High-level overview
2. key_deliverables: Main outputs organized by category
3. technical_details: Detailed technical information
4. next_steps: Recommended actions
5. success_metrics: How to measure success
6. appendix: Supporting materials

Ensure the output is cohesive, professional, and ready for client delivery."""


def optimization_prompt(metrics: dict[str, Any]) -> str:
    return f"""Analyze system performance and suggest optimizations:

{L.METRICS}{json.dumps(metrics, indent=2)}{L.METRICS_END}
1. agent_utilization: How to better distribute work
2. token_efficiency: How to reduce token usage
3. task_parallelization: Which tasks can run simultaneously
4. bottlenecks: Identify and address bottlenecks
5. prompt_optimization: Suggestions for better prompts"""
