"""Agency orchestrator: planning, the graph, canvas compilation, the store and the CLI."""
