"""Agency orchestrator: planning, the dependency graph, canvas compilation, the store and the CLI."""
