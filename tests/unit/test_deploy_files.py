"""docker-compose.yml, the Procfile and deploy/kubernetes cover every queue (checked by parsing:
no Docker or Kubernetes here)."""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

import yaml

from orchestrator.domain.constants import (
    ALL_QUEUES,
    MESSAGE_PRIORITY,
    ORCHESTRATOR_QUEUE,
    PLAN_PRIORITY,
)
from orchestrator.domain.settings import Settings
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
        assert command[:3] == ["python", "-m", "workers"]
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


def _procfile() -> dict[str, list[str]]:
    """Each Procfile process's command line, as `sh -c` would split it."""
    lines = (REPO / "Procfile").read_text().splitlines()
    return {name: shlex.split(command) for name, command in
            (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))}


def _worker_argv(argv: list[str]) -> list[str]:
    """The worker's own command line: without the shell's `exec` and `env VAR=value ...`."""
    if argv[:1] == ["exec"]:
        argv = argv[1:]
    if argv[:1] == ["env"]:
        argv = argv[1:]
        while argv and "=" in argv[0]:
            argv = argv[1:]
    return argv


def test_procfile_has_a_worker_per_queue_and_flower() -> None:
    processes = _procfile()
    assert set(processes) == {*ALL_QUEUES, "flower"}
    for queue in ALL_QUEUES:
        argv = _worker_argv(processes[queue])
        # `python -m workers` is `celery -A workers.app worker` without Celery's other commands.
        assert argv[:3] == ["python", "-m", "workers"], processes[queue]
        assert argv.count("-Q") == 1 and argv[argv.index("-Q") + 1] == queue
        assert argv[argv.index("-n") + 1] == f"{queue}@%h"  # the node name `workers` lists
        # `exec`: honcho's signals reach the worker, not a shell in between.
        assert processes[queue][0] == "exec"
    assert processes["flower"][:2] == ["agency", "flower"]


# deploy/kubernetes: plain manifests, checked the same way (parsed, never applied).
K8S = REPO / "deploy" / "kubernetes"
Doc = dict[str, Any]


def _manifests(*, example: bool = False) -> list[Doc]:
    """Every YAML document under deploy/kubernetes (the Secret template only when asked)."""
    docs: list[Doc] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml" or (path.name == "secret.example.yaml") != example:
            continue
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def _of_kind(kind: str) -> dict[str, Doc]:
    docs = [doc for doc in _manifests() if doc["kind"] == kind]
    by_name = {doc["metadata"]["name"]: doc for doc in docs}
    assert len(by_name) == len(docs), f"two {kind}s share a name"
    return by_name


def _k8s_name(queue: str) -> str:
    """Kubernetes names allow no underscore: frontend_developer -> frontend-developer."""
    return queue.replace("_", "-")


def _container(deployment: Doc) -> Doc:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _setting_variables() -> set[str]:
    """The environment variables orchestrator.domain.settings.Settings reads."""
    return {info.validation_alias if isinstance(info.validation_alias, str)
            else f"AGENCY_{field.upper()}" for field, info in Settings.model_fields.items()}


def test_k8s_one_deployment_per_queue_and_nothing_else() -> None:
    deployments = _of_kind("Deployment")
    workers = {doc["metadata"]["labels"]["agency/queue"] for doc in deployments.values()
               if doc["metadata"]["labels"].get("app.kubernetes.io/name") == "worker"}
    assert sorted(workers) == sorted(ALL_QUEUES)
    assert set(deployments) == {_k8s_name(q) for q in ALL_QUEUES} | {"redis", "flower", "metrics"}


def test_k8s_each_worker_consumes_its_queue_with_a_unique_node_name() -> None:
    deployments = _of_kind("Deployment")
    for queue in ALL_QUEUES:
        container = _container(deployments[_k8s_name(queue)])
        command = container["command"]
        assert command[:3] == ["python", "-m", "workers"]
        assert command.count("-Q") == 1 and command[command.index("-Q") + 1] == queue
        # $(POD_NAME) is expanded by Kubernetes from the downward API: one name per pod.
        assert command[command.index("-n") + 1] == f"{queue}@$(POD_NAME)"
        env = {item["name"]: item for item in container["env"]}
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert container["image"] == "agency:latest"
        spec = deployments[_k8s_name(queue)]["spec"]
        assert "replicas" not in spec  # KEDA owns the count
        assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 300


def test_k8s_one_scaled_object_per_queue_on_its_redis_list() -> None:
    scaled = _of_kind("ScaledObject")
    assert set(scaled) == {_k8s_name(q) for q in ALL_QUEUES}
    deployments = _of_kind("Deployment")
    for queue in ALL_QUEUES:
        spec = scaled[_k8s_name(queue)]["spec"]
        assert spec["scaleTargetRef"]["name"] == _k8s_name(queue) in deployments
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"redis"}
        lists = [t["metadata"]["listName"] for t in triggers]
        assert lists[0] == queue
        # Further triggers may only watch the queue's priority lists (kombu: name + sep + step).
        assert all(name in {f"{queue}\x06\x16{step}" for step in (3, 6, 9)} for name in lists[1:])
        if queue != ORCHESTRATOR_QUEUE:  # agent messages carry every priority: all lists count
            assert sorted(lists) == sorted(
                [queue, *(f"{queue}\x06\x16{p}" for p in set(MESSAGE_PRIORITY.values()) if p)])
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    orchestrator = scaled[_k8s_name(ORCHESTRATOR_QUEUE)]["spec"]
    assert orchestrator["minReplicaCount"] >= 1  # it runs the reconciler
    # Planning is sent at PLAN_PRIORITY: its list must be watched too.
    assert f"{ORCHESTRATOR_QUEUE}\x06\x16{PLAN_PRIORITY}" in [
        t["metadata"]["listName"] for t in orchestrator["triggers"]]


def test_k8s_keda_reaches_the_broker_redis() -> None:
    data = _of_kind("ConfigMap")["agency"]["data"]
    broker = urlsplit(data["AGENCY_BROKER_URL"])
    assert data["REDIS_ADDRESS"] == f"{broker.hostname}:{broker.port}"
    for scaled in _of_kind("ScaledObject").values():
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["metadata"]["addressFromEnv"] == "REDIS_ADDRESS"
            assert trigger["metadata"]["databaseIndex"] == broker.path.strip("/")


def test_k8s_every_container_has_resources() -> None:
    for deployment in _of_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            resources = container["resources"]
            assert resources["requests"]["memory"] and resources["requests"]["cpu"]
            assert resources["limits"]["memory"], container["name"]


def test_k8s_secrets_come_only_from_the_secret_template() -> None:
    assert not [doc for doc in _manifests() if doc["kind"] == "Secret"]
    config = _of_kind("ConfigMap")["agency"]["data"]
    assert not {"AGENCY_DATABASE_URL", "ANTHROPIC_API_KEY", "FLOWER_BASIC_AUTH"} & set(config)
    (secret,) = _manifests(example=True)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "agency"
    values = secret["stringData"]
    assert all("CHANGE-ME" in value for value in values.values())
    assert not values["ANTHROPIC_API_KEY"].startswith("sk-")
    password = urlsplit(values["AGENCY_DATABASE_URL"]).password
    assert password == "CHANGE-ME"
    # Every key a container takes from the Secret is one the template shows how to set.
    for deployment in _of_kind("Deployment").values():
        for item in _container(deployment).get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "agency" and ref["key"] in values


def test_k8s_names_only_real_settings() -> None:
    text = "".join(path.read_text() for path in sorted(K8S.glob("*.yaml")))
    named = set(re.findall(r"\bAGENCY_[A-Z0-9_]+\b", text))
    assert named and named <= _setting_variables(), named - _setting_variables()
    for deployment in _of_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {item["name"] for item in container.get("env", [])}
            assert names <= _setting_variables() | {"POD_NAME"}, names


def test_k8s_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files - {"secret.example.yaml"})
    assert kustomization["namespace"] == "agency"
    for doc in _manifests():
        assert doc["metadata"].get("namespace", "agency") == "agency"


# PgBouncer, an option in both (docs/scaling.md, "The connection budget").
def test_compose_pgbouncer_is_a_profile_in_transaction_mode() -> None:
    services = _compose()
    bouncer = services["pgbouncer"]
    assert bouncer["profiles"] == ["pgbouncer"]  # off unless asked for
    assert str(bouncer["image"]).split(":")[1].startswith("v1.")  # a pinned tag
    env = bouncer["environment"]
    assert isinstance(env, dict)
    assert env["POOL_MODE"] == "transaction" and env["DB_HOST"] == "postgres"
    assert env["TCP_KEEPALIVE"] == "1"
    assert env["DB_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # The workers reach it by name with prepared statements off, when told to.
    worker_env = services["backend_developer"]["environment"]
    assert isinstance(worker_env, dict)
    url = worker_env["AGENCY_DATABASE_URL"]
    assert "@${POSTGRES_HOST:-postgres}:5432/" in url
    assert worker_env["AGENCY_DB_PGBOUNCER"] == "${AGENCY_DB_PGBOUNCER:-false}"
    assert env["LISTEN_PORT"] == "5432"  # the port the URL names
    for name in ("orchestrator", "flower"):
        assert "pgbouncer" not in services[name].get("profiles", [])


def test_k8s_pgbouncer_component() -> None:
    root = K8S / "pgbouncer"
    kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    docs = [doc for name in kustomization["resources"]
            for doc in yaml.safe_load_all((root / name).read_text()) if doc]
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    (service,) = [doc for doc in docs if doc["kind"] == "Service"]
    container = _container(deployment)
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["POOL_MODE"] == "transaction" and env["TCP_KEEPALIVE"] == "1"
    assert container["envFrom"] == [{"secretRef": {"name": "agency-pgbouncer"}}]
    assert container["resources"]["limits"]["memory"]
    assert service["metadata"]["name"] == "pgbouncer"
    assert service["spec"]["ports"][0]["port"] == int(env["LISTEN_PORT"])
    (patch,) = kustomization["patches"]
    config = yaml.safe_load((root / patch["path"]).read_text())
    assert config["kind"] == "ConfigMap" and config["metadata"]["name"] == "agency"
    assert config["data"] == {"AGENCY_DB_PGBOUNCER": "true"}
    assert "AGENCY_DB_PGBOUNCER" in _setting_variables()
    # The README of the component names the Service the workers' URL must point at.
    assert "pgbouncer.agency.svc:5432" in (root / "kustomization.yaml").read_text()
    for doc in docs:
        assert doc["metadata"]["namespace"] == "agency"
