"""Data and configuration files: they parse, and what they declare holds together."""

from __future__ import annotations

import csv
import io
import json
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

from orchestrator.checks.base import Limits, Outcome

SVG = "{http://www.w3.org/2000/svg}svg"
DOCKER_INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
                       "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
                       "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
COMPOSE_NAMES = {"docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"}


def _text(root: Path, path: str) -> str:
    return (root / path).read_text(encoding="utf-8")


NODES = 200_000  # a document's nodes with YAML's aliases expanded, at most, to be validated


def json_check(root: Path, path: str, limits: Limits) -> Outcome:
    try:
        json.loads(_text(root, path))
    except json.JSONDecodeError as error:
        return False, f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
    except RecursionError:
        return False, "nested too deeply to read"
    return True, "parses as JSON"


def expanded_size(data: Any, limit: int = NODES) -> int:
    """How many nodes a walk of `data` visits (aliases make a small YAML file a huge tree),
    counting up to just past `limit`."""
    seen = 0
    stack = [data]
    while stack and seen <= limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, dict):
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return seen


def _yaml(text: str) -> list[Any]:
    return list(yaml.safe_load_all(text))


def yaml_check(root: Path, path: str, limits: Limits) -> Outcome:
    try:
        documents = _yaml(_text(root, path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return False, f"not valid YAML: {problem}{where}"
    return True, f"parses as YAML ({len(documents)} document{'s' * (len(documents) != 1)})"


def toml_check(root: Path, path: str, limits: Limits) -> Outcome:
    try:
        tomllib.loads(_text(root, path))
    except tomllib.TOMLDecodeError as error:
        return False, f"not valid TOML: {error}"
    return True, "parses as TOML"


def csv_check(root: Path, path: str, limits: Limits) -> Outcome:
    text = _text(root, path)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), dialect) if r]
    except csv.Error as error:
        return False, f"not valid CSV: {error}"
    if not rows:
        return False, "empty: no rows"
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            return False, (f"row {number} has {len(row)} columns, the header has {width} "
                           f"({len(rows)} rows)")
    return True, f"{len(rows)} rows of {width} columns"


def svg_check(root: Path, path: str, limits: Limits) -> Outcome:
    try:
        element = ET.fromstring(_text(root, path))
    except ET.ParseError as error:
        return False, f"not well-formed XML: {error}"
    if element.tag not in (SVG, "svg"):
        return False, f"the root element is <{element.tag}>, not <svg>"
    return True, "well-formed SVG"


def _document(root: Path, path: str) -> Any:
    text = _text(root, path)
    return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)


def is_openapi(root: Path, path: str) -> bool:
    """A JSON or YAML document that says it is OpenAPI (or Swagger), or is named so."""
    name = Path(path).name.lower()
    if name.startswith(("openapi.", "swagger.")):
        return True
    try:
        data = _document(root, path)
    except (ValueError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and ("openapi" in data or "swagger" in data)


def openapi_check(root: Path, path: str, limits: Limits) -> Outcome:
    try:
        data = _document(root, path)
    except (ValueError, yaml.YAMLError):
        return False, "not an OpenAPI document: it does not parse"
    if not isinstance(data, dict):
        return False, "not an OpenAPI document: the top level is not a mapping"
    if expanded_size(data) > NODES:
        return False, f"too large to validate: over {NODES:,} nodes with its aliases expanded"
    from openapi_spec_validator import validate  # slow to import: only when there is one

    try:
        validate(data)
    except Exception as error:  # (the validator's errors have no common base)
        message = getattr(error, "message", None) or str(error).splitlines()[0]
        where = "/".join(str(p) for p in getattr(error, "absolute_path", []) or [])
        return False, f"invalid OpenAPI: {message}" + (f" (at {where})" if where else "")
    version = data.get("openapi") or data.get("swagger")
    return True, f"valid OpenAPI {version}, {len(data.get('paths') or {})} paths"


def is_compose(path: str) -> bool:
    return Path(path).name.lower() in COMPOSE_NAMES


def compose_check(root: Path, path: str, limits: Limits) -> Outcome:
    try:
        data = yaml.safe_load(_text(root, path))
    except yaml.YAMLError as error:
        said = getattr(error, "problem", None) or str(error).splitlines()[0]
        return False, f"not a compose file: {said}"
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not services:
        return False, "no services: a compose file needs a `services` mapping"
    for name, service in services.items():
        if not isinstance(service, dict) or not ({"image", "build", "extends"} & set(service)):
            return False, f"service {name!r} has neither `image` nor `build`"
    return True, f"{len(services)} services: {', '.join(map(str, services))}"


def is_dockerfile(path: str) -> bool:
    name = Path(path).name
    return name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".dockerfile")


def dockerfile_check(root: Path, path: str, limits: Limits) -> Outcome:
    parser = DockerfileParser(fileobj=io.BytesIO((root / path).read_bytes()))
    try:
        instructions = parser.structure
    except Exception as error:  # (the parser raises whatever it met)
        return False, f"does not parse: {error}"
    if not instructions:
        return False, "no instructions"
    unknown = [i for i in instructions if i["instruction"] not in DOCKER_INSTRUCTIONS
               and i["instruction"] != "COMMENT"]
    if unknown:
        first = unknown[0]
        return False, (f"unknown instruction {first['instruction']} "
                       f"(line {first['startline'] + 1})")
    steps = [i for i in instructions if i["instruction"] not in ("COMMENT", "ARG")]
    if not steps or steps[0]["instruction"] != "FROM":
        return False, "the first instruction is not FROM"
    return True, f"{len(steps)} instructions from {steps[0]['value']}"
