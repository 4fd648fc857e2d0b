"""Whatever paths a model proposes, every artifact is written, inside its folder, and listed."""

from __future__ import annotations

import json
import os
import random
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import pytest

from orchestrator.domain.constants import AgentType, ProjectStatus, TaskPriority, TaskStatus
from orchestrator.domain.errors import UnsafeArtifactPath
from orchestrator.domain.models import AgentOutput, Artifact, Deliverable, ProjectRecord, TaskRecord
from orchestrator.services.deliverable import ARTIFACTS, write_outputs
from orchestrator.state.artifacts import MAX_DEPTH, NAME_MAX, plan_artifact_paths, write_artifact

RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)


def fold(path: PurePosixPath) -> str:
    return unicodedata.normalize("NFC", path.as_posix().casefold())


def content(i: int, proposed: str) -> str:
    return f"artifact {i}, proposed as {proposed!r}\n"


def assert_plan_is_safe(proposed: list[str], planned: list[PurePosixPath]) -> None:
    """One relative, portable path each; none twice in any case; no file where a dir must be."""
    assert len(planned) == len(proposed)
    files = [fold(p) for p in planned]
    assert len(set(files)) == len(files), planned
    dirs = {fold(PurePosixPath(*p.parts[:i])) for p in planned for i in range(1, len(p.parts))}
    assert not dirs & set(files), planned
    for path in planned:
        assert path.parts and not path.is_absolute() and len(path.parts) <= MAX_DEPTH
        for name in path.parts:
            assert name not in (".", "..") and name == name.strip() and not name.endswith(".")
            assert 0 < len(name.encode()) <= NAME_MAX
            assert name.isprintable() and not set(name) & set('\\<>:"|?*'), name
            assert not RESERVED.fullmatch(name), name


def files_under(root: Path) -> dict[PurePosixPath, str]:
    """Every file below `root`, which must all be regular files that resolve inside it."""
    found: dict[PurePosixPath, str] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            entry = Path(folder, name)
            assert not entry.is_symlink(), entry
            assert entry.resolve().is_relative_to(root.resolve()), entry
        for name in names:
            entry = Path(folder, name)
            found[PurePosixPath(entry.relative_to(root).as_posix())] = entry.read_text()
    return found


def write_all(root: Path, proposed: list[str]) -> list[PurePosixPath]:
    planned = plan_artifact_paths(proposed)
    for i, (want, path) in enumerate(zip(proposed, planned, strict=True)):
        write_artifact(root, ARTIFACTS / path, content(i, want))
    return planned


def assert_all_written(root: Path, proposed: list[str]) -> list[PurePosixPath]:
    """Plan and write `proposed` under root/artifacts; every one is there with its content."""
    planned = write_all(root, proposed)
    assert_plan_is_safe(proposed, planned)
    written = files_under(root / ARTIFACTS)
    assert len(written) == len(proposed)
    for i, (want, path) in enumerate(zip(proposed, planned, strict=True)):
        assert written[path] == content(i, want)
    return planned


CASES: list[tuple[str, list[str], list[str] | None]] = [
    ("file then directory", ["x", "x/y"], ["x", "x-2/y"]),
    ("directory then file", ["x/y", "x"], ["x/y", "x-2"]),
    ("renamed directory is shared", ["x", "x/a", "x/b"], ["x", "x-2/a", "x-2/b"]),
    ("file where another's directory is", ["docs/a.md", "docs"], ["docs/a.md", "docs-2"]),
    ("nul byte", ["a\x00b"], ["ab"]),
    ("dot", ["."], ["artifact-1"]),
    ("dot dot", [".."], ["artifact-1"]),
    ("parent escape", ["../../etc/passwd"], ["etc/passwd"]),
    ("parent inside", ["a/../../b"], ["a/b"]),
    ("absolute", ["/etc/x"], ["etc/x"]),
    ("windows drive", ["C:\\x\\y"], ["x/y"]),
    ("windows drive, forward slashes", ["/c:/x"], ["x"]),
    ("colon in a name", ["a:b"], ["a_b"]),
    ("unc path", ["\\\\server\\share\\f.txt"], ["server/share/f.txt"]),
    ("backslashes", ["a\\b\\c.txt"], ["a/b/c.txt"]),
    ("empty", [""], ["artifact-1"]),
    ("whitespace only", ["  \t "], ["artifact-1"]),
    ("slashes only", ["///"], ["artifact-1"]),
    ("double slash", ["a//b"], ["a/b"]),
    ("dot slash", ["./a"], ["a"]),
    ("trailing slash", ["dir/"], ["dir"]),
    ("long name", ["n" * 300 + ".md"], ["n" * (NAME_MAX - 3) + ".md"]),
    ("long multibyte name", ["é" * 200 + ".md"], ["é" * 126 + ".md"]),
    ("long name twice", ["n" * 300, "n" * 300], ["n" * NAME_MAX, "n" * (NAME_MAX - 2) + "-2"]),
    ("deep", ["/".join(["d"] * 100) + "/f.txt"], ["/".join(["d"] * (MAX_DEPTH - 1)) + "/f.txt"]),
    ("long path", ["/".join(["d" * 200] * 10) + "/f"], ["/".join(["d" * 200] * 5) + "/f"]),
    ("control characters", ["a\x01b\x1fc\x7f\nd\r.md"], ["abcd.md"]),
    ("bidi override", ["report\u202egpj.exe"], ["reportgpj.exe"]),
    ("zero width", ["a\u200bb.md"], ["ab.md"]),
    ("same path twice", ["README.md", "README.md", "README.md"],
     ["README.md", "README-2.md", "README-3.md"]),
    ("suffix already taken", ["a.md", "a-2.md", "a.md"], ["a.md", "a-2.md", "a-3.md"]),
    ("case only", ["A.md", "a.md"], ["A.md", "a-2.md"]),
    ("case only directories", ["Docs/a.md", "docs/b.md"], ["Docs/a.md", "Docs/b.md"]),
    ("case only against a directory", ["Docs/a.md", "docs"], ["Docs/a.md", "docs-2"]),
    ("composed and decomposed", ["caf\u00e9.md", "cafe\u0301.md"],
     ["caf\u00e9.md", "caf\u00e9-2.md"]),
    ("reserved names", ["CON", "nul.txt", "com1.tar.gz", "lpt9/x", "Aux "],
     ["CON_", "nul_.txt", "com1_.tar.gz", "lpt9_/x", "Aux_"]),
    ("reserved-looking names are fine", ["console", "con-1.md"], ["console", "con-1.md"]),
    ("windows forbidden characters", ['a<b>c:d"e|f?g*h.md'], ["a_b_c_d_e_f_g_h.md"]),
    ("trailing dots and spaces", ["notes. ", "notes"], ["notes", "notes-2"]),
    ("dots only", ["...", ". ./.."], ["artifact-1", "artifact-2"]),
    ("hidden files stay", [".env", ".github/workflows/ci.yml"],
     [".env", ".github/workflows/ci.yml"]),
    ("generated name already taken", ["artifact-2", ""], ["artifact-2", "artifact-2-2"]),
    ("tilde", ["~/x"], ["~/x"]),
]


@pytest.mark.parametrize(("proposed", "expected"), [(p, e) for _, p, e in CASES],
                         ids=[name for name, _, _ in CASES])
def test_hostile_paths_are_all_written_inside(tmp_path: Path, proposed: list[str],
                                              expected: list[str] | None) -> None:
    planned = assert_all_written(tmp_path, proposed)
    if expected is not None:
        assert [p.as_posix() for p in planned] == expected


def test_all_cases_together_in_one_project(tmp_path: Path) -> None:
    assert_all_written(tmp_path, [p for _, proposed, _ in CASES for p in proposed])


HOSTILE = ["a", "B", "x", "/", "//", "\\", ".", "..", "./", "../", " ", "\t", "\x00", "\x01",
           "\n", "\x7f", "\u202e", "\u200b", "\ufeff", "\u2028", "\ud800", ":", "C:", "c:\\",
           "~", "*", "?", '"', "<", "|", "CON", "nul", "com1", ".md", ".tar.gz", "-2", "é",
           "e\u0301", "ß", "SS", "\u0130", "n" * 200, "é" * 100, "artifact-1", "%2e%2e"]


def test_random_hostile_paths(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    for trial in range(300):
        proposed = ["".join(rng.choices(HOSTILE, k=rng.randint(0, 12)))
                    for _ in range(rng.randint(1, 8))]
        root = tmp_path / str(trial)
        root.mkdir()
        assert_all_written(root, proposed)


def test_planning_is_deterministic() -> None:
    proposed = ["x", "x/y", "README.md", "readme.md", ".", "CON"]
    assert plan_artifact_paths(proposed) == plan_artifact_paths(list(proposed))


# Symlinks and stale entries already in the folder: replaced, never followed out of it.

@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("secret")
    return folder


def test_symlinked_file_is_replaced_not_followed(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "out"
    (root / ARTIFACTS).mkdir(parents=True)
    (root / ARTIFACTS / "README.md").symlink_to(outside / "secret.txt")
    assert_all_written(root, ["README.md"])
    assert (outside / "secret.txt").read_text() == "secret"


def test_symlinked_directory_is_replaced_not_followed(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "out"
    (root / ARTIFACTS).mkdir(parents=True)
    (root / ARTIFACTS / "docs").symlink_to(outside, target_is_directory=True)
    assert_all_written(root, ["docs/secret.txt", "docs/new.md"])
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


def test_symlinked_artifacts_folder_is_replaced(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    (root / ARTIFACTS).symlink_to(outside, target_is_directory=True)
    assert_all_written(root, ["secret.txt"])
    assert (outside / "secret.txt").read_text() == "secret"


def test_dangling_symlink_is_replaced(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / ARTIFACTS).mkdir(parents=True)
    (root / ARTIFACTS / "a").symlink_to(tmp_path / "missing")
    (root / ARTIFACTS / "b").symlink_to(tmp_path / "missing")
    assert_all_written(root, ["a", "b/c"])
    assert not (tmp_path / "missing").exists()


def test_stale_entries_in_the_way_are_replaced(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / ARTIFACTS / "x" / "deep").mkdir(parents=True)
    (root / ARTIFACTS / "x" / "deep" / "old.txt").write_text("old")
    (root / ARTIFACTS / "y").write_text("old file where a directory goes")
    assert_all_written(root, ["x", "y/z"])


def test_rewriting_the_same_plan_is_idempotent(tmp_path: Path) -> None:
    proposed = ["x", "x/y", "README.md", "README.md"]
    assert_all_written(tmp_path, proposed)
    assert_all_written(tmp_path, proposed)


@pytest.mark.parametrize("path", ["../x", "/etc/x", "a/../../x"])
def test_writer_refuses_unplanned_paths(tmp_path: Path, path: str) -> None:
    with pytest.raises(UnsafeArtifactPath):
        write_artifact(tmp_path, PurePosixPath(path), "x")
    assert list(tmp_path.iterdir()) == []


# End to end: write_outputs with what a model could propose.

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def task(index: int, *paths: str) -> TaskRecord:
    # The schema refuses some of these paths; the writer must be safe without it (rows stored
    # before a schema change, a looser schema later), so they are built unvalidated.
    artifacts = [Artifact.model_construct(path=p, content=content(index, p)) for p in paths]
    return TaskRecord(
        id=f"task-{index}", project_id="p1", index=index, title=f"Task {index}", description="",
        agent_type=AgentType.CONTENT_WRITER, priority=TaskPriority.NORMAL, estimated_tokens=100,
        deliverables=[], acceptance_criteria=[], on_critical_path=False,
        status=TaskStatus.COMPLETED, attempts=1, pending_deps=0, worker=None,
        output=AgentOutput(summary="s", content=f"output {index}", artifacts=artifacts),
        error=None, queued_at=None, started_at=None, finished_at=None)


def project(output_dir: Path) -> ProjectRecord:
    return ProjectRecord(
        id="p1", request="Build a site", project_type=None, complexity=None,
        status=ProjectStatus.INTEGRATING, budget_tokens=None, analysis=None, plan=None,
        output_dir=str(output_dir), error=None, created_at=NOW, updated_at=NOW, finished_at=None)


DELIVERABLE = Deliverable(executive_summary="Done.", key_deliverables=[], technical_details=[],
                          next_steps=[], success_metrics=[], appendix=[])


def snapshot(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def test_write_outputs_keeps_hostile_paths_inside(tmp_path: Path) -> None:
    root = tmp_path / "projects" / "p1"
    tasks = [task(0, "../../etc/passwd", "/etc/x"), task(1, "x", "x/y"), task(2, "a\x00b", ".")]
    system = {p: snapshot(p) for p in (Path("/etc/passwd"), Path("/etc/x"))}
    write_outputs(project(root), DELIVERABLE, tasks)
    assert {p: snapshot(p) for p in system} == system
    for entry in tmp_path.rglob("*"):
        assert entry.resolve().is_relative_to(root.resolve()) or entry == root.parent
    written = files_under(root / ARTIFACTS)
    assert len(written) == 6
    mapping = json.loads((root / "deliverable.json").read_text())["artifacts"]
    assert [m["proposed"] for m in mapping] == [
        "../../etc/passwd", "/etc/x", "x", "x/y", "a\x00b", "."]
    assert [m["path"] for m in mapping] == [
        "artifacts/etc/passwd", "artifacts/etc/x", "artifacts/x", "artifacts/x-2/y",
        "artifacts/ab", "artifacts/artifact-6"]
    for m, t in zip(mapping, [0, 0, 1, 1, 2, 2], strict=True):
        assert m["task"] == f"Task {t}" and m["task_id"] == f"task-{t}"
        assert (root / m["path"]).read_text() == content(t, m["proposed"])


def markdown_links(markdown: str) -> list[str]:
    return [unquote(link) for link in re.findall(r"\]\((artifacts/[^)]*)\)", markdown)]


def test_markdown_links_where_each_artifact_was_written(tmp_path: Path) -> None:
    tasks = [task(0, "README.md", "docs/"), task(1, "README.md", "my notes (draft).md", "a`b")]
    write_outputs(project(tmp_path), DELIVERABLE, tasks)
    markdown = (tmp_path / "deliverable.md").read_text()
    links = markdown_links(markdown)
    assert len(links) == 5
    assert all((tmp_path / link).is_file() for link in links)
    assert "- [`README.md`](artifacts/README.md), from Task 0\n" in markdown
    assert "- [`README-2.md`](artifacts/README-2.md) (proposed as `README.md`), from Task 1" \
        in markdown
    assert "[`docs`](artifacts/docs) (proposed as `docs/`)" in markdown
    assert "(artifacts/my%20notes%20%28draft%29.md)" in markdown
    assert "[`` a`b ``](artifacts/a%60b)" in markdown


def test_markdown_shows_control_characters_escaped(tmp_path: Path) -> None:
    write_outputs(project(tmp_path), DELIVERABLE, [task(0, "a\x00b\nc")])
    markdown = (tmp_path / "deliverable.md").read_text()
    assert "[`abc`](artifacts/abc) (proposed as `a\\x00b\\nc`), from Task 0" in markdown


def test_no_artifacts_no_section(tmp_path: Path) -> None:
    write_outputs(project(tmp_path), DELIVERABLE, [task(0)])
    assert "## Artifacts" not in (tmp_path / "deliverable.md").read_text()
    assert json.loads((tmp_path / "deliverable.json").read_text())["artifacts"] == []
    assert not (tmp_path / ARTIFACTS).exists()


def test_write_outputs_twice_is_the_same(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "p1"
    root.mkdir()
    (root / ARTIFACTS).symlink_to(outside, target_is_directory=True)
    tasks = [task(0, "secret.txt", "x"), task(1, "x/y")]
    write_outputs(project(root), DELIVERABLE, tasks)
    first = files_under(root)
    write_outputs(project(root), DELIVERABLE, tasks)
    assert files_under(root) == first
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"
