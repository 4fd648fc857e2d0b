#!/usr/bin/env bash
# Makes bench/.venv-langgraph, a virtual environment of its own for the LangGraph peer benchmark
# (bench/langgraph_peer.py), so that LangGraph never enters the project's own environment.
# Usage: bash bench/setup_langgraph.sh   (then: bench/.venv-langgraph/bin/python bench/langgraph_peer.py)
set -euo pipefail

LANGGRAPH_VERSION="1.2.24"
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-langgraph"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "langgraph==$LANGGRAPH_VERSION"
"$venv/bin/python" -c 'import importlib.metadata as m; print("langgraph", m.version("langgraph"), "in", __import__("sys").prefix)'
