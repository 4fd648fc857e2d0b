"""The docs cannot drift from the code: the command-line reference is the app's own, the
configuration table is the settings', and the README stays a front page whose links resolve."""

from __future__ import annotations

import importlib.util
import re
from enum import Enum
from pathlib import Path
from types import ModuleType

import typer
from typer.core import TyperGroup

from orchestrator.domain.settings import Settings
from orchestrator.interfaces.cli import cli
from tests.conftest import REPO

DOCS = REPO / "docs"
QUICKSTART = (
    "```bash\n"
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"'
    ' && agency run "Build a website for a bakery"\n'
    "pytest\n"
    "```\n"
)


def _gen_cli() -> ModuleType:
    """docs/gen_cli.py, loaded from its file (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_rows(page: Path) -> list[list[str]]:
    """The cells of every row of the page's Markdown tables, header and rule left out."""
    rows = []
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _leaf_commands(group: TyperGroup, prefix: str = "") -> set[str]:
    """Every command of the app, with subgroups spelled out (`db upgrade`)."""
    ctx = typer.Context(group)
    names: set[str] = set()
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, TyperGroup):
            names |= _leaf_commands(command, f"{prefix}{name} ")
        else:
            names.add(f"{prefix}{name}")
    return names


def _variable(field: str) -> str:
    """The environment variable a settings field is read from (its alias, or AGENCY_<NAME>)."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"AGENCY_{field.upper()}"


def _shown(value: object) -> str | None:
    """How the configuration table writes a default, or None when it is prose (unset, tables)."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{int(value)}`" if float(value).is_integer() else f"`{value}`"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, str | Path):
        return str(value)
    return None


def test_cli_reference_is_the_apps_own() -> None:
    gen = _gen_cli()
    page = gen.PAGE.read_text(encoding="utf-8")
    assert gen.render(page) == page, "docs/cli.md is out of date: run python docs/gen_cli.py"
    assert "### `agency run`" in page and "#### `agency db upgrade`" in page


def test_cli_table_names_every_command_and_no_other() -> None:
    app = typer.main.get_command(cli)
    assert isinstance(app, TyperGroup)
    commands = _leaf_commands(app)
    assert "db upgrade" in commands  # subgroups are spelled out
    named: set[str] = set()
    for first, *_ in _table_rows(DOCS / "cli.md"):
        match = re.match(r"`agency ([a-z-]+)(?: ([a-z-]+))?", first)
        assert match, first
        group, sub = match.groups()
        named.add(f"{group} {sub}" if sub and f"{group} {sub}" in commands else group)
    assert named == commands


def test_configuration_lists_every_variable_and_its_default() -> None:
    rows = _table_rows(DOCS / "configuration.md")
    by_variable = {name: row for row in rows for name in re.findall(r"`([A-Z][A-Z_]+)`", row[0])}
    assert set(by_variable) == {_variable(field) for field in Settings.model_fields}
    for field, info in Settings.model_fields.items():
        shown = _shown(info.get_default(call_default_factory=True))
        if shown is not None:
            assert shown in by_variable[_variable(field)][2], (field, shown)


def test_readme_is_a_front_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    assert QUICKSTART in readme  # .ci/run runs these two lines
    assert "AGENCY_TEST_REDIS" in readme and "AGENCY_TEST_PG" in readme
    assert re.search(r"!\[[^\]]+\]\(docs/[a-z-]+\.png\)", readme)


def test_readme_links_resolve() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert targets
    for target in targets:
        assert (REPO / target).exists(), target


def test_every_agency_command_in_a_code_block_exists() -> None:
    app = typer.main.get_command(cli)
    assert isinstance(app, TyperGroup)
    known = {name.split()[0] for name in _leaf_commands(app)}
    used: set[str] = set()
    for page in [REPO / "README.md", *sorted(DOCS.glob("*.md"))]:
        blocks = re.findall(r"```(?:bash|console)\n(.*?)```", page.read_text(encoding="utf-8"),
                            re.DOTALL)
        for block in blocks:
            # A command starts a line, or follows `&&`, kubectl's `--` or a console prompt.
            used |= set(re.findall(r"(?:^|&& |-- |\$ )agency ([a-z][a-z-]*)", block, re.MULTILINE))
    assert {"run", "db", "plan", "approve"} <= used
    assert used <= known, used - known

