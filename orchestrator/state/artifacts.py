"""Artifact files: from the paths a model proposes to files safely inside the artifacts folder.

`plan_artifact_paths` is pure: it turns every proposed path into one that any common filesystem
(Linux, macOS, Windows, case-sensitive or not) can hold, and makes the whole set writable
together. `write_artifact` then writes one planned path without ever following a symlink.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
import stat
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator.domain.errors import UnsafeArtifactPath
from orchestrator.domain.models import TaskRecord

NAME_MAX = 255
"""Bytes in one file name: the limit of ext4, APFS and (in UTF-16 units, so looser) NTFS."""
MAX_DEPTH = 16
"""Components kept of one path; deeper directories are dropped, the file name is kept."""
MAX_PATH_BYTES = 1024
"""Bytes kept of one relative path, so the output folder's own path fits under PATH_MAX."""

# Characters Windows refuses in names; a folder copied there must still unpack.
_FORBIDDEN = re.compile(r'[<>:"|?*]')
_DRIVE = re.compile(r"[A-Za-z]:")
# Control, format (bidi overrides, zero-width), surrogate and line/paragraph separators: none
# can be written portably, and format characters make a name display as something it is not.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Windows device names, reserved with any extension and in any case.
_RESERVED = frozenset({
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$",
    *(f"{dev}{n}" for dev in ("COM", "LPT") for n in "123456789\u00b9\u00b2\u00b3"),
})


def plan_artifact_paths(proposed: Sequence[str]) -> list[PurePosixPath]:
    """Safe, distinct, prefix-free relative paths for all of a project's artifacts, in order."""
    space = _Namespace()
    return [space.claim(normalise(path) or [f"artifact-{n}"])
            for n, path in enumerate(proposed, start=1)]


def normalise(proposed: str) -> list[str]:
    """The components of a proposed path once cleaned; empty when nothing usable is left."""
    text = "".join(c for c in proposed if unicodedata.category(c) not in _UNPRINTABLE)
    raw = [p.strip() for p in unicodedata.normalize("NFC", text).replace("\\", "/").split("/")]
    raw = [p for p in raw if p not in ("", ".", "..")]
    if raw and _DRIVE.fullmatch(raw[0]):  # `C:/x`; `a:b` is a name and becomes `a_b`
        raw = raw[1:]
    parts = [name for name in map(_clean_name, raw) if name]
    return _cap(parts)


def _clean_name(part: str) -> str:
    # Windows drops trailing dots and spaces, so `a.` and `a` would be one file there.
    name = _FORBIDDEN.sub("_", part).strip().rstrip(". ")
    return _fit(_unreserved(name), "") if name else ""


def _unreserved(name: str) -> str:
    base, dot, rest = name.partition(".")
    return f"{base}_{dot}{rest}" if base.rstrip(" ").upper() in _RESERVED else name


def _split_ext(name: str) -> tuple[str, str]:
    cut = name.rfind(".")
    return (name[:cut], name[cut:]) if cut > 0 else (name, "")


def _fit(name: str, tag: str) -> str:
    """`name` with `tag` before its extension, its stem cut to keep it within NAME_MAX bytes."""
    stem, ext = _split_ext(name)
    if len(ext.encode()) > NAME_MAX // 2:  # an absurd "extension" is just part of the name
        stem, ext = name, ""
    budget = NAME_MAX - len(ext.encode()) - len(tag.encode())
    if len(stem.encode()) > budget:
        stem = stem.encode()[:budget].decode(errors="ignore").rstrip(". ")
    return f"{stem}{tag}{ext}"


def _cap(parts: list[str]) -> list[str]:
    """Keep the file name and as many leading directories as the depth and length limits allow."""
    if not parts:
        return parts
    *dirs, name = parts
    size = len(name.encode())
    kept: list[str] = []
    for d in dirs[:MAX_DEPTH - 1]:
        size += len(d.encode()) + 1
        if size > MAX_PATH_BYTES:
            break
        kept.append(d)
    return [*kept, name]


def _fold(parts: Sequence[str]) -> str:
    """The key under which case-insensitive filesystems see a path as the same one."""
    return unicodedata.normalize("NFC", "/".join(parts).casefold())


class _Namespace:
    """Names claimed so far: a file may not sit where a directory is, nor twice in any case."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: dict[str, str] = {}  # folded prefix -> the spelling first used for it

    def claim(self, parts: list[str]) -> PurePosixPath:
        *dirs, name = parts
        placed: list[str] = []
        for d in dirs:
            placed.append(self._directory(placed, d))
        placed.append(self._file(placed, name))
        self.files.add(_fold(placed))
        for depth in range(1, len(placed)):
            self.dirs.setdefault(_fold(placed[:depth]), placed[depth - 1])
        return PurePosixPath(*placed)

    def _directory(self, parent: list[str], name: str) -> str:
        # A directory is shared (in the spelling first seen, so that case-insensitive and
        # case-sensitive filesystems agree); it only has to avoid names that files hold.
        free = next(c for c in _variants(name) if _fold([*parent, c]) not in self.files)
        return self.dirs.get(_fold([*parent, free]), free)

    def _file(self, parent: list[str], name: str) -> str:
        return next(c for c in _variants(name)
                    if _fold([*parent, c]) not in self.files
                    and _fold([*parent, c]) not in self.dirs)


def _variants(name: str) -> Iterator[str]:
    """`name`, then `name-2`, `name-3`, ... with the number before the extension."""
    yield name
    for n in itertools.count(2):
        yield _fit(name, f"-{n}")


ARTIFACTS = PurePosixPath("artifacts")


@dataclass(frozen=True)
class PlacedArtifact:
    """An artifact a task proposed, and where it is written (relative to artifacts/)."""

    task_id: str
    task: str
    proposed: str
    path: PurePosixPath
    content: str

    @property
    def renamed(self) -> bool:
        return self.proposed != self.path.as_posix()

    def as_json(self) -> dict[str, str]:
        return {"task": self.task, "task_id": self.task_id, "proposed": self.proposed,
                "path": (ARTIFACTS / self.path).as_posix()}


def place_artifacts(tasks: Sequence[TaskRecord]) -> list[PlacedArtifact]:
    """Every task's artifacts, in task order, each with the path it is written to (at
    integration, and in the copy a review's checks run on)."""
    pairs = [(t, a) for t in tasks for a in (t.output.artifacts if t.output else [])]
    paths = plan_artifact_paths([a.path for _, a in pairs])
    return [PlacedArtifact(t.id, t.title, a.path, p, a.content)
            for (t, a), p in zip(pairs, paths, strict=True)]


# POSIX only (like the rest of the deployment): `dir_fd` lets every step below stay inside the
# directory already opened, so no symlink, planted before or during the write, is ever followed.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def write_artifact(root: Path, path: PurePosixPath, content: str | bytes) -> Path:
    """Write `content` to `root / path` without following any symlink below `root`.

    Whatever stands in the way inside `root` (a symlink, a file where a directory must go, a
    directory where the file must go) is stale output of an earlier write and is replaced.
    """
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise UnsafeArtifactPath(f"{str(path)!r} is not a planned artifact path")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in path.parts[:-1]:
            child = _open_dir(fd, name)
            os.close(fd)
            fd = child
        # Lone surrogates cannot be encoded; a `?` beats losing the file.
        _replace_file(fd, path.name, content if isinstance(content, bytes)
                      else content.encode(errors="replace"))
    finally:
        os.close(fd)
    return _inside(root, path)


def _inside(root: Path, path: PurePosixPath) -> Path:
    """The file written, once it is seen to resolve inside `root`."""
    target = root / path
    if not target.resolve().is_relative_to(root.resolve()):
        raise UnsafeArtifactPath(f"artifact {str(path)!r} resolves outside {root}")
    return target


def _open_dir(parent: int, name: str) -> int:
    """Open (creating it if need be) the directory `name` in `parent`, never through a symlink."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        pass
    except OSError:
        if _is_dir(parent, name):
            raise
        _remove(parent, name)
    with contextlib.suppress(FileExistsError):  # a concurrent writer of the same plan
        os.mkdir(name, dir_fd=parent)
    return os.open(name, _DIR_FLAGS, dir_fd=parent)


def _replace_file(parent: int, name: str, data: bytes) -> None:
    """Write a fresh file and rename it over `name`, so a symlink there is replaced, not
    followed, and a concurrent reader never sees half a file."""
    temp = f".{secrets.token_hex(8)}.part"
    fd = os.open(temp, _TEMP_FLAGS, 0o666, dir_fd=parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        _rename(parent, temp, name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=parent)
        raise


def _rename(parent: int, temp: str, name: str) -> None:
    try:
        os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except OSError:
        if not _is_dir(parent, name):
            raise
        _remove(parent, name)
        os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)


def _is_dir(parent: int, name: str) -> bool:
    return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)


def _remove(parent: int, name: str) -> None:
    """Remove a stale entry; a symlink goes itself, its target is never touched."""
    if _is_dir(parent, name):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)
