"""Writing into the output directory safely: atomic files, containment, removal.

Every write goes to a temporary file in the destination's own directory and is then renamed
over the target (`os.replace`), so a web server or a killed build never sees half a file.
Every path is resolved and checked to lie inside the output directory before anything is
written or deleted, so neither a `../` in a slug nor a symlink can reach outside it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import FedipressError

__all__ = [
    "OutputDirError",
    "check_output_dir",
    "remove_empty_dirs",
    "remove_file",
    "target_path",
    "write_atomic",
]

# Folders in the output directory a build never deletes, though it does not produce them: a
# deploy checkout (gh-pages) keeps its repository there.
PROTECTED_NAMES = frozenset({".git", ".hg", ".svn"})


class OutputDirError(FedipressError):
    """The output directory is unsafe to build into (it would overwrite or delete sources)."""


def check_output_dir(output_dir: Path, *, site_root: Path, content_dir: Path,
                     state_dir: Path, config_file: Path) -> Path:
    """Return the resolved output directory, or raise when building there could destroy files.

    The build deletes whatever it did not produce, so the output directory must not be, or
    contain, the site's sources, its state, the user's home or the filesystem root.
    """
    where = f"{config_file}: output_dir {str(output_dir)!r}"
    try:
        out = output_dir.resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop
        raise OutputDirError(f"{where} cannot be resolved ({exc})") from None
    home = Path.home().resolve()
    if out == Path(out.anchor):
        raise OutputDirError(f"{where} is the filesystem root; use a folder such as public/")
    if out == home:
        raise OutputDirError(f"{where} is your home folder; use a folder such as public/")
    for name, protected in (("the site folder", site_root), ("the content folder", content_dir),
                            ("the state folder", state_dir)):
        try:
            p = protected.resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop
            raise OutputDirError(f"{config_file}: {name} {str(protected)!r} cannot be"
                                 f" resolved ({exc})") from None
        if out == p or out in p.parents:
            raise OutputDirError(
                f"{where} would contain {name} ({p}); the build deletes files it did not"
                " produce there. Use a separate folder such as public/")
        if p in out.parents and name != "the site folder":
            raise OutputDirError(f"{where} is inside {name} ({p}); use a folder such as public/")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{where} exists and is not a folder")
    return out


def target_path(root: Path, rel: str, checked: set[Path] | None = None) -> Path:
    """`root/rel`, refusing absolute paths, `..` and anything resolving outside `root`.

    `root` must already be resolved. Raises OutputDirError (a planned path escaping the
    output directory comes from a slug, a theme file or a symlink the user can fix).
    `checked` remembers folders already verified during one build (resolving every path's
    parent again costs more than writing the file).
    """
    if not rel or rel.startswith(("/", "\\")) or "\\" in rel or "\0" in rel:
        raise OutputDirError(f"refusing to write {rel!r}: not a relative output path")
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in ("", ".", ".."):
        raise OutputDirError(f"refusing to write {rel!r}: not a plain relative output path")
    path = root.joinpath(*parts)
    if checked is not None and path.parent in checked:
        return path
    # Resolve the parent (it may not exist yet: resolve() is non-strict) so a symlinked
    # folder inside the output directory cannot lead a write elsewhere.
    parent = path.parent.resolve()
    if parent != root and root not in parent.parents:
        raise OutputDirError(f"refusing to write {rel!r}: it leads outside {root} ({parent})")
    if checked is not None:
        checked.add(path.parent)
    return path


def _open_temp(path: Path) -> tuple[int, str]:
    """A new temporary file beside `path` (same folder, so the rename is atomic)."""
    # A fixed per-process name is cheaper than mkstemp's random ones; O_EXCL still refuses
    # to reuse a leftover, and then mkstemp picks a fresh name.
    tmp = os.path.join(path.parent, f".{path.name}.{os.getpid()}.tmp")
    try:
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o644), tmp
    except FileExistsError:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def write_atomic(path: Path, data: bytes, *, clear_way: bool = False) -> os.stat_result:
    """Write `data` to `path` atomically; returns the new file's stat (size, mtime).

    The bytes go to a temporary file that is renamed over `path`; a symlink at `path` is
    replaced itself (rename never follows it), never written through. `clear_way` (for a
    build's own output folder, whose paths were checked by target_path) removes a file where
    a folder must be, or a folder where the file must be: a hand edit of public/ is repaired
    like any other.
    """
    try:
        fd, tmp = _open_temp(path)
    except (FileNotFoundError, NotADirectoryError):
        _make_folder(path.parent, clear_way)
        fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # mkstemp makes 0600 and a umask may narrow 0644: published files must be
            # world-readable.
            os.fchmod(handle.fileno(), 0o644)
            st = os.fstat(handle.fileno())  # the rename keeps size and mtime
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            if not clear_way:
                raise
            shutil.rmtree(path)
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return st


def _make_folder(folder: Path, clear_way: bool) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return
    except (FileExistsError, NotADirectoryError):
        if not clear_way:
            raise
    for ancestor in (*reversed(folder.parents), folder):  # from the top: the first in the way
        if (ancestor.exists() or ancestor.is_symlink()) and not ancestor.is_dir():
            ancestor.unlink()
            break
    folder.mkdir(parents=True, exist_ok=True)


def remove_file(root: Path, rel: str) -> bool:
    """Delete `root/rel` if it exists and lies inside `root`; returns whether it was removed."""
    path = target_path(root, rel)
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    return False


def remove_empty_dirs(root: Path) -> int:
    """Remove empty folders below `root` (never `root` itself); returns how many."""
    removed = 0
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        current = Path(dirpath)
        if current == root:
            continue
        if any(part in PROTECTED_NAMES for part in current.relative_to(root).parts):
            continue
        # Bottom-up, so a folder whose only children were empty folders is empty by now;
        # os.walk's own listing predates those removals, hence the fresh look.
        if not any(current.iterdir()):
            current.rmdir()
            removed += 1
    return removed
