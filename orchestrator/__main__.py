"""`python -m orchestrator` is `agency`."""

from orchestrator.interfaces.cli import main

main()
