"""A project's knowledge base: what it was asked, planned and produced, searchable by words.

Writes join the caller's transaction, so a task's output is searchable exactly when its
completion committed. Search takes plain words only: the user's text never reaches the full-text
engine as query syntax (no operators, quotes, prefixes or column filters of theirs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.domain.errors import BadInput
from orchestrator.domain.intake import storable
from orchestrator.domain.models import AgentOutput, Analysis, Plan, PlanTask
from orchestrator.state.store import Connector, Session, now

# Longer bodies are cut: the index stays small and a runaway artifact cannot swamp a search.
MAX_BODY_CHARS = 200_000
# A query's words beyond these add cost and no precision.
MAX_QUERY_WORDS = 32
MAX_WORD_CHARS = 100
# Letters and digits of any script; everything else (operators, quotes, `_`) separates words.
_WORD = re.compile(r"[^\W_]+")
_BINARY_SAMPLE = 8192


class Kind(StrEnum):
    """What a knowledge row holds."""

    REQUEST = "request"
    ANALYSIS = "analysis"
    PLAN = "plan"
    OUTPUT = "output"
    ARTIFACT = "artifact"


@dataclass(frozen=True)
class Hit:
    """One search result; a higher `rank` is a better match."""

    source: str
    kind: str
    ref: str
    title: str
    snippet: str
    rank: float


# Indexing --------------------------------------------------------------------------------------


def index_project(tx: Session, project_id: str, request: str, analysis: Analysis | None,
                  plan: Plan | None) -> None:
    """Index the request, and the analysis and plan when there are ones."""
    _put(tx, project_id, Kind.REQUEST, "", "request", "Request", request)
    if analysis is not None:
        _put(tx, project_id, Kind.ANALYSIS, "", "analysis", "Analysis",
             render_analysis(analysis))
    if plan is not None:
        _put(tx, project_id, Kind.PLAN, "", "plan", "Plan", render_plan(plan))


def reindex_project(tx: Session, project_id: str) -> None:
    """Index what the project's row holds inside `tx` (its analysis or plan just saved)."""
    row = tx.fetch_one("get_project", {"id": project_id})
    if row is None:
        return
    analysis = Analysis.model_validate_json(row["analysis"]) if row["analysis"] else None
    plan = Plan.model_validate_json(row["plan"]) if row["plan"] else None
    index_project(tx, project_id, row["request"], analysis, plan)


def index_output(tx: Session, project_id: str, task_id: str, index: int, title: str,
                 agent_type: str, output: AgentOutput) -> None:
    """Index a task's output and its text artifacts (binary-looking ones are left out)."""
    task = f"task {index} {title!r}"
    _put(tx, project_id, Kind.OUTPUT, task_id, f"{task} ({agent_type})", title,
         f"{output.summary}\n\n{output.content}")
    for artifact in output.artifacts:
        if not looks_binary(artifact.content):
            _put(tx, project_id, Kind.ARTIFACT, f"{task_id}:{artifact.path}",
                 f"artifact {artifact.path} from {task}", artifact.path, artifact.content)


def _put(tx: Session, project_id: str, kind: Kind, ref: str, source: str, title: str,
         body: str) -> None:
    tx.send("upsert_knowledge", {
        "project_id": project_id, "kind": kind.value, "ref": storable(ref),
        "source": storable(source), "title": storable(title),
        "body": storable(body[:MAX_BODY_CHARS]), "now": now()})


def looks_binary(text: str) -> bool:
    """True for content that is not prose or code: NULs, or many control or replacement
    characters (bytes decoded as text)."""
    sample = text[:_BINARY_SAMPLE]
    odd = sum(1 for c in sample if (c < " " and c not in "\t\n\r\f\v") or c == "\ufffd")
    return "\x00" in sample or odd * 10 > len(sample)


def render_analysis(analysis: Analysis) -> str:
    """The analysis as readable text, as a person would search it."""
    return "\n".join(part for part in (
        f"Project type: {analysis.project_type.value} ({analysis.complexity.value}, "
        f"about {analysis.estimated_hours:g} hours)",
        f"Agents: {', '.join(a.value for a in analysis.required_agents)}",
        _section("Requirements", analysis.key_requirements),
        _section("Risks", analysis.potential_risks),
        _section("Success criteria", analysis.success_criteria),
        f"Approach: {analysis.recommended_approach}") if part)


def render_plan(plan: Plan) -> str:
    """The plan as readable text: each task with what it delivers and how it is accepted."""
    return "\n\n".join(_render_task(index, task) for index, task in enumerate(plan.tasks))


def _render_task(index: int, task: PlanTask) -> str:
    return "\n".join(part for part in (
        f"Task {index}: {task.title} ({task.agent_type})", task.description,
        _section("Deliverables", task.deliverables),
        _section("Acceptance criteria", task.acceptance_criteria)) if part)


def _section(name: str, items: list[str]) -> str:
    return f"{name}:\n" + "\n".join(f"- {item}" for item in items) if items else ""


# Search ----------------------------------------------------------------------------------------


def query_words(query: str) -> list[str]:
    """The searchable words of a query: letters and digits only, lower case, each once."""
    words = dict.fromkeys(w.lower()[:MAX_WORD_CHARS] for w in _WORD.findall(query))
    return list(words)[:MAX_QUERY_WORDS]


def tsquery(words: list[str]) -> str:
    """PostgreSQL: any of the words (to_tsquery stems them and drops stop words)."""
    return " | ".join(words)


def fts5_query(words: list[str]) -> str:
    """SQLite FTS5: any of the words, each a quoted string, so none is read as an operator."""
    return " OR ".join(f'"{word}"' for word in words)


_QUERIES: dict[str, tuple[str, Callable[[list[str]], str]]] = {
    "postgresql": ("search_knowledge_postgresql", tsquery),
    "sqlite": ("search_knowledge_sqlite", fts5_query),
}


def search(db: Connector, project_id: str, query: str, limit: int = 5) -> list[Hit]:
    """The project's best matches for any of the query's words, best first, with snippets."""
    words = query_words(query)
    if not words:
        raise BadInput("the query has no words to search for")
    name, build = _QUERIES[db.dialect]
    rows = db.fetch_all(name, {"project_id": project_id, "query": build(words),
                               "limit": limit})
    return [Hit(source=r["source"], kind=r["kind"], ref=r["ref"], title=r["title"],
                snippet=" ".join(str(r["snippet"] or "").split()), rank=float(r["rank"]))
            for r in rows]
