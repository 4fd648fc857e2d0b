"""docker-compose.yml and the Procfile cover every queue (checked by parsing: no Docker here)."""

from __future__ import annotations

import re

import yaml

from orchestrator.constants import ALL_QUEUES
from tests.conftest import REPO


def _compose() -> dict[str, dict[str, object]]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services: dict[str, dict[str, object]] = data["services"]
    return services


def test_compose_has_a_scalable_service_per_queue() -> None:
    services = _compose()
    for queue in ALL_QUEUES:
        command = services[queue]["command"]
        assert isinstance(command, list)
        assert command[command.index("-Q") + 1] == queue
        assert command[command.index("-n") + 1] == f"{queue}@%h"
        # --scale needs no fixed container name and no published host port.
        assert "container_name" not in services[queue] and "ports" not in services[queue]
    assert {"redis", "postgres", "flower"} <= set(services)


def test_compose_takes_credentials_from_the_environment() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${FLOWER_BASIC_AUTH:?" in text
    services = _compose()
    flower_env = services["flower"]["environment"]
    assert isinstance(flower_env, dict)
    assert flower_env["FLOWER_BASIC_AUTH"].startswith("${")
    assert not re.search(r"PASSWORD:\s*[\"']?[A-Za-z0-9]", text)  # no literal password


def test_procfile_has_a_worker_per_queue_and_flower() -> None:
    lines = dict(line.split(":", 1) for line in (REPO / "Procfile").read_text().splitlines()
                 if line and not line.startswith("#"))
    for queue in ALL_QUEUES:
        assert f"celery -A workers.app worker -Q {queue} -n {queue}@%h" in lines[queue]
    assert lines["flower"].strip() == "agency flower"
