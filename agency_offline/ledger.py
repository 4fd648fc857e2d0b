"""The offline model's performance advice, from the statistics in the prompt, as Claude would
read them (`agency stats --llm`)."""

from __future__ import annotations

from typing import Any

from orchestrator.domain.models import Optimization

NO_DATA = "No finished tasks yet: run a project, then ask again."


def _utilization(m: dict[str, Any]) -> list[str]:
    queues = sorted(m.get("utilisation", []), key=lambda q: -q["utilisation"])
    advice = []
    for q in queues[:3]:
        share = q["utilisation"]
        then = ("add workers to it" if share >= 0.7 else
                "it has room: give its slots to a busier queue" if share < 0.2 else
                "its workers are reasonably loaded")
        advice.append(f"Queue {q['queue']} was busy {share:.0%} of its capacity "
                      f"({q['busy_seconds']:.1f}s over {q['tasks']} tasks, "
                      f"{q['concurrency']} slots per worker): {then}.")
    return advice


def _tokens(m: dict[str, Any]) -> list[str]:
    agents = sorted((a for a in m.get("tokens_by_agent_type", []) if a.get("tasks")),
                    key=lambda a: -a["tokens_per_task"])
    advice = []
    for a in agents[:3]:
        tokens = a["tokens"]
        read = tokens["cache_read"] / a["total_tokens"] if a["total_tokens"] else 0.0
        advice.append(f"{a['agent_type']} uses {a['tokens_per_task']:,.0f} tokens per task "
                      f"({read:.0%} cache reads, ${a['cost_per_task']:.4f} per task): pass it "
                      "dependency summaries rather than whole outputs.")
    return advice


def _parallel(m: dict[str, Any]) -> list[str]:
    return [f"Task {t['index']} '{t['title']}' ({t['agent_type']}) ran {t['seconds']:.1f}s: "
            "split it so its dependents can start on the parts they need."
            for t in m.get("slowest_tasks", [])[:3]]


def _bottlenecks(m: dict[str, Any]) -> list[str]:
    advice = [f"Queue {q['queue']}: tasks waited {q['mean_wait_seconds']:.1f}s and ran "
              f"{q['mean_seconds']:.1f}s on average (p95 {q['p95_seconds']:.1f}s)."
              for q in m.get("slowest_queues", [])[:3]]
    advice += [s["text"] for s in m.get("suggestions", [])
               if s.get("action", {}).get("rule") == "scale_out"]
    return advice


def _prompts(m: dict[str, Any]) -> list[str]:
    rejected = m.get("review_rejection_rate", {}).get("by_agent_type", [])
    advice = [f"Reviews of {r['agent_type']} asked for revisions {r['rate']:.0%} of the time: "
              "state its acceptance criteria in its brief as checks it can run."
              for r in rejected if r["rate"] > 0]
    advice += [s["text"] for s in m.get("suggestions", [])
               if s.get("action", {}).get("rule") == "costliest_prompt"]
    return advice


def optimization(m: dict[str, Any]) -> Optimization:
    """Deterministic advice derived from the statistics the prompt holds (reading.metrics)."""
    parts = (_utilization(m), _tokens(m), _parallel(m), _bottlenecks(m), _prompts(m))
    filled = [found or [NO_DATA] for found in parts]
    return Optimization(agent_utilization=filled[0], token_efficiency=filled[1],
                        task_parallelization=filled[2], bottlenecks=filled[3],
                        prompt_optimization=filled[4])
