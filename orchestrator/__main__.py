"""`python -m orchestrator` is `agency`."""

from orchestrator.cli import main

main()
