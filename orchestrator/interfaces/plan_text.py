"""A project's plan as text: Mermaid for pictures, and the Celery canvas it compiles to.

The canvas is built with the same functions dispatch uses (`dag.units`, `dag.series_parallel`,
`canvas.unit_canvas`) and only printed: nothing is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from celery.canvas import Signature, _chain, chord, group

from orchestrator.domain import dag
from orchestrator.domain.constants import INTEGRATE_TASK
from orchestrator.domain.display import visible
from orchestrator.domain.models import TaskRecord
from orchestrator.services.canvas import native_joins, unit_canvas

_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;",
                    "`": "#96;", "*": "#42;", "_": "#95;"}  # no Markdown in labels either


def mermaid_label(text: str) -> str:
    """Text safe inside a quoted Mermaid label (and on the terminal it is printed to): one line,
    control characters visible, entity codes for what Mermaid parses."""
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in " ".join(visible(text).split()))


def mermaid(tasks: Sequence[TaskRecord]) -> str:
    """`flowchart LR`: a node per task, an edge from each dependency to its dependent, and the
    planned critical path styled with a classDef."""
    node = {t.id: f"t{t.index}" for t in tasks}
    lines = ["flowchart LR"]
    if not tasks:
        lines.append("    %% no tasks yet: the request is still being planned")
    lines += [f'    {node[t.id]}["{t.index}: {mermaid_label(t.title)} '
              f'({t.agent_type.value})"]' for t in tasks]
    lines += [f"    {node[d]} --> {node[t.id]}" for t in tasks for d in t.dependencies
              if d in node]
    critical = [node[t.id] for t in tasks if t.on_critical_path]
    if critical:
        lines.append("    classDef critical stroke:#d9480f,stroke-width:3px")
        lines.append(f"    class {','.join(critical)} critical")
    return "\n".join(lines) + "\n"


def task_graph(tasks: Sequence[TaskRecord]) -> dag.Graph:
    """The graph among these tasks, indexed by their position in `tasks`."""
    index = {t.id: i for i, t in enumerate(tasks)}
    return dag.Graph(deps=tuple(tuple(index[d] for d in t.dependencies if d in index)
                                for t in tasks),
                     weights=tuple(t.estimated_tokens for t in tasks))


def describe(sig: Signature, titles: dict[str, str], depth: int = 0) -> list[str]:
    """A canvas as indented lines: chain(...), group(...), chord(header, body), tasks."""
    pad = "  " * depth
    if isinstance(sig, chord):
        header = describe(group(sig.tasks), titles, depth + 1)
        body = describe(sig.body, titles, depth + 1)
        return [f"{pad}chord(", *header[:-1], header[-1] + ",", *body, f"{pad})"]
    if isinstance(sig, _chain | group):
        kind = "chain" if isinstance(sig, _chain) else "group"
        inner: list[str] = []
        for n, part in enumerate(sig.tasks):
            lines = describe(part, titles, depth + 1)
            inner += [*lines[:-1], lines[-1] + ("," if n < len(sig.tasks) - 1 else "")]
        return [f"{pad}{kind}(", *inner, f"{pad})"]
    task_id = str((sig.kwargs or {}).get("task_id", ""))
    return [f"{pad}{sig.task}  {titles.get(task_id, task_id)}"]


def canvas_text(app: Celery, project_id: str, tasks: Sequence[TaskRecord]) -> str:
    """The launch units a fresh dispatch of every task would send, each as its canvas."""
    if not tasks:
        return "no tasks yet: the request is still being planned\n"
    titles = {t.id: f"#{t.index} {visible(t.title)}" for t in tasks}
    out: list[str] = []
    for unit in dag.units(task_graph(tasks), flat_joins=native_joins(app)):
        members = [tasks[m] for m in unit.members]
        if not members:
            continue
        if unit.head is None:
            out.append("unit root (sent at dispatch):")
        else:
            out.append(f"unit headed by #{tasks[unit.head].index} (the store releases it when "
                       "the head's last dependency completes):")
        shape = dag.series_parallel(task_graph(members))
        out += describe(unit_canvas(app, project_id, members, shape), titles, 1)
    out.append(f"then {INTEGRATE_TASK} (sent by the store when the last task completes)")
    return "\n".join(out) + "\n"
