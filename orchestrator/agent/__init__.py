"""A specialist agent: its runner, prompts, tools, knowledge base and review."""
