"""The report's pictures as inline SVG: the dependency graph and the timeline by worker.

Pure functions over task records; every string a model or a person wrote is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from itertools import pairwise

from orchestrator.domain.display import visible
from orchestrator.domain.models import TaskRecord

CRITICAL = "#d9480f"
MEASURED = "#1864ab"

# Small helpers ------------------------------------------------------------------------------


def esc(text: object) -> str:
    """Text fit for HTML and SVG content or a quoted attribute; control characters visible
    (a raw ESC is no use in a page, and harmful to whoever reads its source on a terminal)."""
    return escape(visible(str(text)), quote=True)


def cut(text: str, limit: int) -> str:
    """One line of at most `limit` characters, with an ellipsis when shortened."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def stamp(value: datetime | None) -> str:
    """A moment in UTC to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "\u2014"


def seconds(value: float | None) -> str:
    """A duration for people: seconds with two decimals, minutes past one."""
    if value is None:
        return "\u2014"
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def duration(task: TaskRecord) -> float | None:
    """Seconds from the task's (last) start to its finish; None until it finished."""
    if task.started_at and task.finished_at:
        return max(0.0, (task.finished_at - task.started_at).total_seconds())
    return None


# The dependency graph -----------------------------------------------------------------------

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 176, 58, 44, 16, 12


def depths(tasks: Sequence[TaskRecord]) -> dict[str, int]:
    """Each task's column: the longest path (in edges) from a task with no dependencies."""
    by_id = {t.id: t for t in tasks}
    found: dict[str, int] = {}
    for task in sorted(tasks, key=lambda t: t.index):
        _depth(task, by_id, found, set())
    return found


def _depth(task: TaskRecord, by_id: dict[str, TaskRecord], found: dict[str, int],
           visiting: set[str]) -> int:
    if task.id in found:
        return found[task.id]
    visiting.add(task.id)  # a stored plan is acyclic; the guard keeps a bad row from looping
    parents = [by_id[d] for d in task.dependencies if d in by_id and d not in visiting]
    found[task.id] = 1 + max((_depth(p, by_id, found, visiting) for p in parents), default=-1)
    visiting.discard(task.id)
    return found[task.id]


def layout(tasks: Sequence[TaskRecord]) -> dict[str, tuple[int, int]]:
    """(column, row) per task id: columns by depth, rows by the mean row of the parents."""
    depth = depths(tasks)
    place: dict[str, tuple[int, int]] = {}
    for column in range(max(depth.values(), default=-1) + 1):
        members = [t for t in tasks if depth[t.id] == column]

        def weight(t: TaskRecord) -> tuple[float, int]:
            rows = [place[d][1] for d in t.dependencies if d in place]
            return (sum(rows) / len(rows) if rows else -1.0, t.index)

        for row, task in enumerate(sorted(members, key=weight)):
            place[task.id] = (column, row)
    return place


def planned_chain(tasks: Sequence[TaskRecord]) -> list[str]:
    """The critical path the planner marked (estimated tokens), in dependency order."""
    depth = depths(tasks)
    return [t.id for t in sorted((t for t in tasks if t.on_critical_path),
                                 key=lambda t: (depth[t.id], t.index))]


def measured_chain(tasks: Sequence[TaskRecord]) -> tuple[list[str], float]:
    """The chain of dependencies with the longest total measured run time, and that time."""
    by_id = {t.id: t for t in tasks}
    depth = depths(tasks)
    best: dict[str, tuple[float, str | None]] = {}
    for task in sorted(tasks, key=lambda t: (depth[t.id], t.index)):
        parent = max((d for d in task.dependencies if d in best),
                     key=lambda d: (best[d][0], -by_id[d].index), default=None)
        best[task.id] = ((best[parent][0] if parent else 0.0) + (duration(task) or 0.0), parent)
    if not best or max(v for v, _ in best.values()) <= 0:
        return [], 0.0
    end = max(best, key=lambda i: (best[i][0], -by_id[i].index))
    chain: list[str] = []
    node: str | None = end
    while node is not None:
        chain.append(node)
        node = best[node][1]
    return chain[::-1], best[end][0]


def _pairs(chain: Sequence[str]) -> set[tuple[str, str]]:
    return set(pairwise(chain))


def _xy(place: tuple[int, int]) -> tuple[int, int]:
    return PAD + place[0] * (NODE_W + COL_GAP), PAD + place[1] * (NODE_H + ROW_GAP)


def _route(parent: tuple[int, int], child: tuple[int, int]) -> str:
    """An edge's path: a curve to the next column; past it, along the gap between two rows
    (the one nearest both ends), so that it never runs behind a node it does not touch."""
    (px, py), (cx, cy) = _xy(parent), _xy(child)
    x1, y1, x2, y2 = px + NODE_W, py + NODE_H // 2, cx - 2, cy + NODE_H // 2
    if child[0] - parent[0] <= 1:
        mid = (x1 + x2) // 2
        return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
    gaps = [PAD + r * (NODE_H + ROW_GAP) - ROW_GAP // 2 for r in range(max(parent[1],
                                                                           child[1]) + 2)]
    lane = min(gaps, key=lambda g: abs(g - y1) + abs(g - y2))
    a, b = x1 + COL_GAP, x2 + 2 - COL_GAP
    bend = COL_GAP // 2
    return (f"M{x1},{y1} C{x1 + bend},{y1} {x1 + bend},{lane} {a},{lane} L{b},{lane} "
            f"C{b + bend},{lane} {b + bend},{y2} {x2},{y2}")


def _edge(parent: tuple[int, int], child: tuple[int, int], classes: str) -> str:
    marker = "arrow-critical" if "critical" in classes.split() else "arrow"
    return (f'<path class="{classes}" d="{_route(parent, child)}" '
            f'marker-end="url(#{marker})"/>')


def _node(task: TaskRecord, place: tuple[int, int], planned: set[str],
          measured: set[str]) -> str:
    x, y = _xy(place)
    classes = ["node", f"status-{task.status.value}"]
    classes += ["critical"] if task.id in planned else []
    classes += ["measured"] if task.id in measured else []
    ring = (f'<rect class="measured-ring" x="{x - 4}" y="{y - 4}" width="{NODE_W + 8}" '
            f'height="{NODE_H + 8}" rx="9"/>' if task.id in measured else "")
    took = duration(task)
    state = task.status.value + (f" \u00b7 {seconds(took)}" if took is not None else "")
    return (f'<g class="{" ".join(classes)}" data-index="{task.index}" '
            f'data-status="{task.status.value}"><title>{esc(task.title)}</title>{ring}'
            f'<rect class="box" x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 8}" y="{y + 18}" class="label">'
            f'{task.index}. {esc(cut(task.title, 21))}</text>'
            f'<text x="{x + 8}" y="{y + 35}" class="agent">{esc(task.agent_type.value)}</text>'
            f'<text x="{x + 8}" y="{y + 50}" class="state">{esc(state)}</text></g>')


_MARKERS = (
    '<defs>'
    '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
    'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
    'class="arrowhead"/></marker>'
    '<marker id="arrow-critical" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
    'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
    'class="arrowhead critical"/></marker></defs>')


def graph_svg(tasks: Sequence[TaskRecord]) -> str:
    """The plan as an SVG picture: columns by depth, arrows from dependency to dependent."""
    if not tasks:
        return '<p class="empty">No tasks yet: the request is still being planned.</p>'
    place = layout(tasks)
    planned, (measured, _) = planned_chain(tasks), measured_chain(tasks)
    critical_edges, measured_edges = _pairs(planned), _pairs(measured)
    edges = []
    for task in tasks:
        for dep in task.dependencies:
            if dep in place:
                classes = "edge" + (" critical" if (dep, task.id) in critical_edges else "")
                classes += " measured" if (dep, task.id) in measured_edges else ""
                edges.append(_edge(place[dep], place[task.id], classes))
    nodes = [_node(t, place[t.id], set(planned), set(measured)) for t in tasks]
    columns = 1 + max(c for c, _ in place.values())
    rows = 1 + max(r for _, r in place.values())
    width = 2 * PAD + columns * NODE_W + (columns - 1) * COL_GAP
    height = 2 * PAD + rows * NODE_H + (rows - 1) * ROW_GAP
    return (f'<svg id="dependency-graph" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Dependency graph of {len(tasks)} tasks">{_MARKERS}'
            f'<g class="edges">{"".join(edges)}</g><g class="nodes">{"".join(nodes)}</g></svg>')


# The timeline -------------------------------------------------------------------------------

LABEL_W, PLOT_W, LANE_H, AXIS_H, CHAR_W = 170, 900, 22, 30, 6.4


@dataclass(frozen=True)
class Phase:
    """A span of the orchestrator's own work: planning or integration (end None: going on)."""

    name: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Bar:
    """One bar: seconds from the project's creation, its label, tooltip and CSS classes."""

    start: float
    end: float
    label: str
    tip: str
    classes: str
    index: int | None = None


def task_bars(tasks: Sequence[TaskRecord], origin: datetime, until: datetime,
              planned: set[str]) -> dict[str, list[Bar]]:
    """A bar per started task (a running one reaches `until`), grouped by worker."""
    rows: dict[str, list[Bar]] = {}
    for task in sorted((t for t in tasks if t.started_at), key=lambda t: (t.started_at, t.index)):
        assert task.started_at is not None
        start = (task.started_at - origin).total_seconds()
        end = ((task.finished_at or until) - origin).total_seconds()
        classes = f"bar status-{task.status.value}"
        classes += " critical" if task.id in planned else ""
        classes += " running" if task.finished_at is None else ""
        tip = f"{task.title} ({task.agent_type.value}): {start:.2f} s to {end:.2f} s"
        rows.setdefault(task.worker or "(no worker recorded)", []).append(
            Bar(start, end, f"{task.index}. {cut(task.title, 30)}", tip, classes, task.index))
    return rows


def phase_bars(phases: Sequence[Phase], origin: datetime, until: datetime) -> list[Bar]:
    found = []
    for phase in phases:
        start = (phase.start - origin).total_seconds()
        end = ((phase.end or until) - origin).total_seconds()
        found.append(Bar(start, end, phase.name, f"{phase.name}: {start:.2f} s to {end:.2f} s",
                         f"bar phase {phase.name}" + (" running" if phase.end is None else "")))
    return found


def nice_step(span: float, ticks: int = 8) -> float:
    """A 1, 2 or 5 times a power of ten step giving about `ticks` ticks over `span`."""
    raw = max(span, 1e-9) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def lanes(row: Sequence[Bar], scale: float) -> list[list[Bar]]:
    """Pack a row's bars into lanes where neither bars nor their labels overlap."""
    packed: list[tuple[float, list[Bar]]] = []
    for bar in sorted(row, key=lambda b: b.start):
        x = bar.start * scale
        reach = max(bar.end * scale, x + CHAR_W * len(bar.label) + 8)
        for n, (free_from, members) in enumerate(packed):
            if free_from <= x:
                packed[n] = (reach, [*members, bar])
                break
        else:
            packed.append((reach, [bar]))
    return [members for _, members in packed]


def _axis(span: float, scale: float, height: float) -> str:
    step = nice_step(span)
    parts = ['<g class="axis">']
    for n in range(int(span / step + 1e-9) + 1):
        x = LABEL_W + n * step * scale
        parts.append(f'<line x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{height:.0f}"/>'
                     f'<text x="{x:.1f}" y="{AXIS_H - 10}">{n * step:g} s</text>')
    parts.append("</g>")
    return "".join(parts)


def _bar(bar: Bar, y: float, scale: float) -> str:
    x, w = LABEL_W + bar.start * scale, max(2.0, (bar.end - bar.start) * scale)
    index = f' data-index="{bar.index}"' if bar.index is not None else ""
    return (f'<g class="{bar.classes}"{index}><title>{esc(bar.tip)}</title>'
            f'<rect x="{x:.1f}" y="{y + 3:.1f}" width="{w:.1f}" height="{LANE_H - 6}" rx="3"/>'
            f'<text x="{x + 3:.1f}" y="{y + LANE_H - 7:.1f}">{esc(bar.label)}</text></g>')


def _row(classes: str, name: str, bars: Sequence[Bar], y: float, scale: float
         ) -> tuple[str, float]:
    """A row's SVG and its height."""
    packed = lanes(bars, scale)
    height = len(packed) * LANE_H + 8
    parts = [f'<g class="{classes}" data-worker="{esc(name)}">'
             f'<rect class="row-bg" x="0" y="{y:.1f}" width="{LABEL_W + PLOT_W + 10}" '
             f'height="{height}"/><text class="worker" x="6" y="{y + 16:.1f}">'
             f"<title>{esc(name)}</title>{esc(cut(name, 24))}</text>"]
    for n, lane in enumerate(packed):
        parts += [_bar(b, y + 4 + n * LANE_H, scale) for b in lane]
    parts.append("</g>")
    return "".join(parts), height


def gantt_svg(tasks: Sequence[TaskRecord], origin: datetime, finished: datetime | None,
              until: datetime, phases: Sequence[Phase] = ()) -> str:
    """One row per worker, a bar per task from its start to its finish, an axis in seconds
    from `origin`; the orchestrator's planning and integration on a row of their own."""
    rows = task_bars(tasks, origin, until, set(planned_chain(tasks)))
    own = phase_bars(phases, origin, until)
    if not rows:
        return '<p class="empty">No task has started yet.</p>'
    ends = [b.end for row in [*rows.values(), own] for b in row]
    span = max([*ends, (finished - origin).total_seconds() if finished else 0.0, 1e-3])
    scale = PLOT_W / span
    body, y = [], float(AXIS_H)
    if own:
        svg, height = _row("gantt-phases", "orchestrator", own, y, scale)
        body.append(svg)
        y += height + 4
    for worker in sorted(rows):
        svg, height = _row("gantt-row", worker, rows[worker], y, scale)
        body.append(svg)
        y += height + 4
    if finished:
        x = LABEL_W + (finished - origin).total_seconds() * scale
        body.append(f'<g class="finish"><line x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" '
                    f'y2="{y:.1f}"/></g>')
    width = LABEL_W + PLOT_W + 40
    return (f'<svg id="timeline" width="{width}" height="{y:.0f}" '
            f'viewBox="0 0 {width} {y:.0f}" role="img" aria-label="Timeline by worker">'
            f'{_axis(span, scale, y)}{"".join(body)}</svg>')
