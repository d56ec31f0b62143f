"""Output sync: make the output directory hold exactly a build's outputs, doing as little
work as the previous build's manifest allows.

An output whose fingerprint and file (size, mtime) match the build manifest is not rendered;
one whose bytes match is not written; what the previous build produced and this one does not,
and stray files, are removed. Rendering is spread over forked workers for a cold build. The
build manifest (.fedipress/cache/build-manifest.marshal) remembers, per output path, the
fingerprint and the sha256, size and mtime of the bytes written; build-dirs.marshal beside it
remembers the folders walked for strays.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..config import SiteConfig
from ..model import Output
from ..progress import Progress
from ..wording import plural
from .output import PROTECTED_NAMES, remove_empty_dirs, remove_file, target_path, write_atomic
from .rendercache import RenderPack

__all__ = [
    "PARALLEL_RENDER_MIN_CPUS",
    "PARALLEL_RENDER_THRESHOLD",
    "SyncResult",
    "sync_outputs",
]

Log = Callable[[str], None]

_MANIFEST_FORMAT = 3  # marshal: (format, output_dir, {rel: (fp, sha256, size, mtime_ns)})
# Rendering is spread over forked worker processes for at least this many outputs to render
# and PARALLEL_RENDER_MIN_CPUS CPUs (a cold build; a rebuild renders a handful). Workers take
# contiguous blocks in the order the caller gives (`locality`), so the outputs that share lazy
# work (a post's object.json and the outbox page embedding it) mostly land in one worker.
PARALLEL_RENDER_THRESHOLD = 2000
PARALLEL_RENDER_MIN_CPUS = 2
_BLOCKS_PER_WORKER = 16


# What the previous build knows about one output file: (fingerprint, sha256, size, mtime_ns).
# A plain tuple: ~50,000 are loaded per build, straight from marshal (a NamedTuple's Python
# __new__ alone cost 0.15 s at 10,000 posts), and saved back the same way.
_Entry = tuple[str, str, int, int]
_FP: Final = 0
_SHA: Final = 1
_SIZE: Final = 2
_MTIME: Final = 3


# --- manifests ----------------------------------------------------------------------------------


def _manifest_path(config: SiteConfig) -> Path:
    return config.state_dir / "cache" / "build-manifest.marshal"


def _load_manifest(path: Path, output_dir: Path) -> dict[str, _Entry] | None:
    """The previous build's entries for `output_dir`, or None when there are none we trust.

    Stored with marshal (~50,000 tuples load in a few tens of milliseconds, where JSON took
    0.25 s at 10,000 posts); the older build-manifest.json beside it is still read once.
    """
    try:
        data = marshal.loads(path.read_bytes())
    except FileNotFoundError:
        older = path.with_suffix(".json")
        return _load_json_manifest(older, output_dir) if older != path else None
    except (OSError, EOFError, ValueError, TypeError):
        return None  # a damaged cache only costs a full rebuild
    if not (isinstance(data, tuple) and len(data) == 3
            and data[:2] == (_MANIFEST_FORMAT, str(output_dir)) and isinstance(data[2], dict)):
        return None
    entries: dict[str, _Entry] = data[2]
    # Shapes only (marshal wrote what _save_manifest gave it; damage fails to load at all).
    if {type(e) for e in entries.values()} <= {tuple} and {len(e) for e in entries.values()} <= {4}:
        return entries
    return None


def _load_json_manifest(path: Path, output_dir: Path) -> dict[str, _Entry] | None:
    """The JSON manifest of earlier versions (formats 1 and 2), read once after an upgrade."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("output_dir") != str(output_dir):
            return None
        if data.get("format") == 2:  # rel: [fingerprint, sha256, size, mtime]
            entries = {rel: tuple(e) for rel, e in data["files"].items()}
            if all(len(e) == 4 and isinstance(e[_SIZE], int) and isinstance(e[_MTIME], int)
                   for e in entries.values()):
                return entries
            return None
        if data.get("format") == 1:  # the first format: one object per file
            return {
                rel: (e["fingerprint"], e["sha256"], int(e["size"]), int(e["mtime_ns"]))
                for rel, e in data["files"].items()
            }
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # A missing or damaged cache only costs a full rebuild.
        return None


def _save_manifest(path: Path, output_dir: Path, entries: dict[str, _Entry]) -> None:
    # Order does not matter to a dict: not sorted.
    write_atomic(path, marshal.dumps((_MANIFEST_FORMAT, str(output_dir), entries)))
    if path.suffix != ".json":
        path.with_suffix(".json").unlink(missing_ok=True)  # the older format, now stale


# --- writing ------------------------------------------------------------------------------------


def _stat_matches(path: Path | str, entry: _Entry) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == entry[_SIZE] and st.st_mtime_ns == entry[_MTIME]


# (status, entry, by-product, source): status is "skipped" (no render), "unchanged" (rendered,
# same bytes) or "written"; the by-product is what `after_render` made of the bytes (or None);
# source is where the bytes came from: _RENDERED, _PACKED (the render pack, checked) or
# _DAMAGED (rendered because the pack's bytes did not match their sha256).
_Outcome = tuple[str, _Entry, object, int]
_RENDERED: Final = 0
_PACKED: Final = 1
_DAMAGED: Final = 2
# Called with (output path, rendered bytes) in the process that rendered them; a value other
# than None is handed back in SyncResult.by_products (it must pickle: workers return it).
AfterRender = Callable[[str, bytes], object]


def _process(out: Output, prev: _Entry | None, root: Path, trust_cache: bool,
             checked: set[Path] | None = None,
             after_render: AfterRender | None = None,
             pack: RenderPack | None = None, fresh: bool = False) -> _Outcome:
    if fresh:
        name = _fresh_target(root, out.path)
    else:
        path = target_path(root, out.path, checked)
        if trust_cache and prev is not None and prev[_FP] == out.fingerprint \
                and _stat_matches(path, prev):
            return "skipped", prev, None, _RENDERED
    source = _RENDERED
    packed = pack.get(out.path, out.fingerprint) if pack is not None else None
    if packed is not None:
        data, sha, extra = packed
        if hashlib.sha256(data).hexdigest() == sha:
            source = _PACKED
            if extra is None and after_render is not None:
                extra = after_render(out.path, data)
        else:
            source = _DAMAGED
    if source != _PACKED:
        data = out.render()
        sha = hashlib.sha256(data).hexdigest()
        extra = after_render(out.path, data) if after_render is not None else None
    if fresh:
        st = _write_new(name, data)
        return "written", (out.fingerprint, sha, st.st_size, st.st_mtime_ns), extra, source
    if trust_cache and prev is not None and prev[_SHA] == sha and _stat_matches(path, prev):
        return "unchanged", (out.fingerprint, sha, prev[_SIZE], prev[_MTIME]), extra, source
    st = write_atomic(path, data, clear_way=True)
    return "written", (out.fingerprint, sha, st.st_size, st.st_mtime_ns), extra, source


def _fresh_target(root: Path, rel: str) -> str:
    """target_path for an output folder this build made, as a string: no folder in it can be
    a symlink leading elsewhere, so only the path's shape is checked (resolving every new
    folder cost a third of writing into it, and pathlib objects another sixth)."""
    parts = rel.split("/")
    if not rel or "\\" in rel or "\0" in rel or any(part in ("", ".", "..") for part in parts):
        target_path(root, rel)  # raises with the reason
    return f"{root}{os.sep}{rel}"


def _narrowing_umask() -> bool:
    # Read once per process (setting it back at once): whether new files need a chmod to be
    # world-readable.
    mask = os.umask(0o022)
    os.umask(mask)
    return bool(mask & 0o644)


_UMASK_NARROWS: bool | None = None


def _write_new(name: str, data: bytes) -> os.stat_result:
    """Write a file into an output folder this build created (or found empty): nothing can
    be reading it yet, so no temporary file and rename (a third of a fresh CI build's write
    phase); a file cut short by a crash is not in the manifest, so the next build writes it
    again. A file already there (it cannot be, but) goes the atomic way."""
    global _UMASK_NARROWS
    if _UMASK_NARROWS is None:
        _UMASK_NARROWS = _narrowing_umask()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        try:
            fd = os.open(name, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(name), exist_ok=True)
            fd = os.open(name, flags, 0o644)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        return write_atomic(Path(name), data, clear_way=True)
    try:
        if _UMASK_NARROWS:  # published files must be world-readable
            os.fchmod(fd, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return os.fstat(fd)
    finally:
        os.close(fd)


# Forked render workers read their jobs from this module global, set just before the fork and
# cleared after: Output.render closures cannot be pickled, but a forked child inherits them.
_JOBS: list[tuple[Output, _Entry | None, Path, bool]] = []
_JOB_AFTER: AfterRender | None = None
_JOB_PACK: RenderPack | None = None
_JOB_FRESH = False
_JOB_CHECKED: set[Path] = set()  # per worker process: folders already verified


def _process_block(indices: list[int]) -> list[_Outcome]:
    outcomes = []
    for index in indices:
        out, prev, root, trust = _JOBS[index]
        outcomes.append(_process(out, prev, root, trust, _JOB_CHECKED, _JOB_AFTER, _JOB_PACK,
                                 _JOB_FRESH))
    return outcomes


def _parallel_ok(count: int, workers: int) -> bool:
    # fork is only safe when this process has no other threads (a dev server's watcher thread
    # could hold a lock the child would inherit forever).
    return (
        count >= PARALLEL_RENDER_THRESHOLD
        and workers > 1
        and sys.platform != "win32"
        and threading.active_count() == 1
    )


def build_progress(enabled: bool, label: str, total: int,
                   since: float | None = None) -> Progress:
    """A build phase's bar: on a terminal once the build has run for over a second (`since`,
    a time.monotonic() reading; default: now), cleared when the phase ends."""
    return Progress(total, enabled=enabled, label=label, show_after=1.0, since=since,
                    erase=True)


@dataclass(frozen=True)
class SyncResult:
    written: int
    unchanged: int  # includes skipped_render
    skipped_render: int
    removed: int
    entries: dict[str, _Entry]
    # Outputs written from the render pack (not rendered), included in written/unchanged.
    from_pack: int = 0
    # after_render's values by output path, for the outputs rendered by this sync.
    by_products: dict[str, object] = field(default_factory=dict)


def sync_outputs(
    outputs: Sequence[Output],
    output_dir: Path,
    manifest_file: Path,
    *,
    previous: dict[str, _Entry] | None | bool = True,
    clean: bool = False,
    workers: int | None = None,
    progress: bool = False,
    log: Log = print,
    trust_files: bool = False,
    locality: Callable[[str], tuple[int, str]] | None = None,
    after_render: AfterRender | None = None,
    progress_since: float | None = None,
    pack: RenderPack | None = None,
    save_pack: bool = False,
) -> SyncResult:
    """Make `output_dir` hold exactly `outputs`, doing as little work as the manifest allows.

    `output_dir` must be checked and resolved (check_output_dir). `previous` is the last
    build's entries if the caller keeps them in memory, or True to read `manifest_file`.
    `clean` ignores the previous entries (everything is rendered and written) and also removes
    strays from a folder no manifest vouches for. `trust_files` (an in-process rebuild whose
    `previous` this process wrote) believes that files with an unchanged fingerprint are still
    there as written: no stat per output and no walk of the folder for strays. `locality`
    maps an output path to a sort key that keeps outputs sharing lazy work together when
    rendering is split over processes. `after_render` derives something from an output's
    bytes where they were rendered (a forked worker, for a cold build), so the caller need
    not read the file back; its values are returned in `by_products`. `progress_since`
    (a time.monotonic() reading) is when the caller's work began: the progress bar shows
    once that is over a second ago. `pack` (the render pack, see rendercache.py) supplies
    the bytes of outputs it holds with the same fingerprint instead of rendering them (not
    with `clean`); with `save_pack` it is rewritten afterwards to hold this build's outputs.
    """
    root = output_dir
    # An output folder made now (a fresh clone in CI) or found empty: files are created in
    # it directly (see _write_new).
    try:
        with os.scandir(root) as listing:
            fresh = next(listing, None) is None
    except FileNotFoundError:
        fresh = True
    root.mkdir(parents=True, exist_ok=True)
    if previous is True:
        previous = _load_manifest(manifest_file, root)
    elif previous is False:
        previous = None
    trust = not clean and previous is not None
    old = previous or {}

    counts = {"written": 0, "unchanged": 0, "skipped": 0}
    entries: dict[str, _Entry] = {}
    todo: list[Output] = []
    checked: set[Path] = set()
    # The cheap check first, in this process: most outputs of a rebuild are skipped here.
    # Only a stat (no path resolution): a skipped file is neither read nor written.
    base = str(root) + os.sep
    for out in outputs:
        prev = old.get(out.path)
        # (No path check: a skipped file is only stat'ed, and an entry exists because an
        # earlier build wrote that path through target_path.)
        if trust and not fresh and prev is not None and prev[_FP] == out.fingerprint \
                and (trust_files or _stat_matches(base + out.path, prev)):
            counts["skipped"] += 1
            entries[out.path] = prev
        else:
            todo.append(out)
    if workers is not None:
        n_workers = workers
    else:
        cpus = os.cpu_count() or 1
        n_workers = cpus if cpus >= PARALLEL_RENDER_MIN_CPUS else 1
    use_pack = pack if pack is not None and todo and not clean else None
    if use_pack is not None and not use_pack.loaded:
        why = use_pack.load()
        if why is not None:
            log(f"note: the render cache {why}; every page is rendered (the next CI build"
                " writes a new one)")
    bar = build_progress(progress, "rendering", len(todo), progress_since)
    try:
        # Outputs taken from the render pack are only copied, which is mostly the kernel's
        # work on files: two processes measured no faster than one (54,000 files, 2 CPUs).
        # Workers are started for rendering only.
        to_render = len(todo) if use_pack is None else sum(
            1 for out in todo if not use_pack.holds(out.path, out.fingerprint))
        if _parallel_ok(to_render, n_workers):
            outcomes = _write_parallel(todo, old, root, trust, n_workers, bar, locality,
                                       after_render, use_pack, fresh)
        else:
            outcomes = []
            for i, out in enumerate(todo, 1):
                outcomes.append(_process(out, old.get(out.path), root, trust, checked,
                                         after_render, use_pack, fresh))
                bar.update(i)
    finally:
        bar.close()
    by_products: dict[str, object] = {}
    verified = 0
    damaged: list[str] = []
    for out, (status, entry, extra, source) in zip(todo, outcomes, strict=True):
        counts[status] += 1
        entries[out.path] = entry
        if extra is not None:
            by_products[out.path] = extra
        if source == _PACKED:
            verified += 1
        elif source == _DAMAGED:
            damaged.append(out.path)
    if damaged:
        one = len(damaged) == 1
        log(f"note: {plural(len(damaged), 'file')} in the render cache did not match"
            f" {'its' if one else 'their'} checksum and {'was' if one else 'were'} rendered"
            " again")

    produced = entries.keys()
    removed = 0
    for rel in sorted(old.keys() - produced):
        removed += remove_file(root, rel)
    # A folder this build made (or found empty) holds nothing but what it wrote: no walk.
    scan = (clean or not trust_files or previous is None) and not fresh
    dirs_file = manifest_file.with_name(_DIRS_FILE)
    # Folders unchanged (same mtime) since the last walk are not listed again: only a trusted
    # rebuild uses them, and they are saved only when the walk left no stray behind.
    known_dirs = _load_dirs(dirs_file, root) if scan and trust else {}
    seen_dirs: dict[str, tuple[int, tuple[str, ...]]] = {}
    strays, empty_dirs = _strays(root, produced, known_dirs, seen_dirs) if scan \
        else ([], False)
    # Files that were in the folder before fedipress's first build into it are someone
    # else's: they are kept (and named in a note) on every build until --clean takes the
    # folder over. Other strays in a folder a build already owns are deleted.
    kept_file = manifest_file.with_name(_KEPT_FILE)
    if fresh:  # nothing of anyone else's is in it, and no folder listing is known
        kept_file.unlink(missing_ok=True)
        dirs_file.unlink(missing_ok=True)
    left: list[str] = []
    if strays and not clean:
        foreign = set(strays) if previous is None else _load_kept(kept_file, root)
        left = [rel for rel in strays if rel in foreign]
        for rel in strays:
            if rel not in foreign:
                removed += remove_file(root, rel)
    elif strays:
        for rel in strays:
            removed += remove_file(root, rel)
    if left:
        log(f"note: left {plural(len(left), 'file')} in {root} that were there before its first"
            " build and that this build does not produce (fedipress build --clean removes"
            " them)")
    if scan and not trust_files:
        if left:
            _write_bytes_atomic(kept_file, [marshal.dumps((_KEPT_FORMAT, str(root),
                                                           sorted(left)))])
        else:
            kept_file.unlink(missing_ok=True)
    if removed or empty_dirs:
        remove_empty_dirs(root)
    if scan:
        if left:
            dirs_file.unlink(missing_ok=True)
        elif seen_dirs != known_dirs:
            _write_bytes_atomic(dirs_file, [marshal.dumps((_DIRS_FORMAT, str(root), seen_dirs))])
    # A targeted in-process rebuild keeps its manifest in memory only: a stale file on disk
    # costs the next fresh build a re-render of what changed since, never a wrong skip (the
    # skip needs fingerprint, size and mtime to match).
    if (counts["written"] or counts["unchanged"] or removed or old.keys() != produced
            or not manifest_file.is_file()) and not trust_files:
        _save_manifest(manifest_file, root, entries)
    if pack is not None:
        if save_pack and not trust_files:
            if clean:
                pack.close()  # --clean trusts no cache: the pack is written anew, not reused
            pack.save(entries, root, by_products, damaged)
        pack.close()
    return SyncResult(
        written=counts["written"],
        unchanged=counts["unchanged"] + counts["skipped"],
        skipped_render=counts["skipped"],
        removed=removed,
        entries=entries,
        by_products=by_products,
        from_pack=verified,
    )


def _render_blocks(paths: Sequence[str], workers: int,
                   locality: Callable[[str], tuple[int, str]] | None = None,
                   ) -> list[list[int]]:
    """Indices of `paths` in blocks for the workers, in the order they are handed out.

    About _BLOCKS_PER_WORKER blocks per worker, cut only between locality groups (the key's
    first element): outputs that share lazy work stay in one process. The last groups (list
    pages and feeds, the costliest outputs) go first, so the phase ends on small blocks with
    every worker busy rather than one finishing a long block alone.
    """
    order = list(range(len(paths)))
    size = max(8, -(-len(order) // (workers * _BLOCKS_PER_WORKER)))
    if locality is None:
        return [order[i:i + size] for i in range(0, len(order), size)]
    keys = [locality(path) for path in paths]
    order.sort(key=keys.__getitem__)
    blocks: list[list[int]] = []
    block: list[int] = []
    for index in order:
        if len(block) >= size and keys[index][0] != keys[block[-1]][0]:
            blocks.append(block)
            block = []
        block.append(index)
    if block:
        blocks.append(block)
    blocks.reverse()
    return blocks


def _write_parallel(todo: list[Output], previous: dict[str, _Entry], root: Path, trust: bool,
                    workers: int, bar: Progress,
                    locality: Callable[[str], tuple[int, str]] | None = None,
                    after_render: AfterRender | None = None,
                    pack: RenderPack | None = None, fresh: bool = False) -> list[_Outcome]:
    import multiprocessing

    global _JOBS, _JOB_AFTER, _JOB_PACK, _JOB_FRESH
    _JOBS = [(out, previous.get(out.path), root, trust) for out in todo]
    _JOB_AFTER, _JOB_PACK, _JOB_FRESH = after_render, pack, fresh
    blocks = _render_blocks([out.path for out in todo], workers, locality)
    try:
        ctx = multiprocessing.get_context("fork")
        outcomes: list[_Outcome | None] = [None] * len(todo)
        done = 0
        with ctx.Pool(workers) as pool:
            for block, results in zip(blocks, pool.imap(_process_block, blocks), strict=True):
                for index, outcome in zip(block, results, strict=True):
                    outcomes[index] = outcome
                done += len(block)
                bar.update(done)
        return [o for o in outcomes if o is not None]
    finally:
        _JOBS, _JOB_AFTER, _JOB_PACK, _JOB_FRESH = [], None, None, False


_DIRS_FILE = "build-dirs.marshal"
_DIRS_FORMAT = 1


# The files found in the output folder by the first build into it (see sync_outputs).
_KEPT_FILE = "kept-files.marshal"
_KEPT_FORMAT = 1


def _load_kept(path: Path, root: Path) -> set[str]:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return set()
    if isinstance(data, tuple) and len(data) == 3 and data[:2] == (_KEPT_FORMAT, str(root)) \
            and isinstance(data[2], list):
        return {rel for rel in data[2] if isinstance(rel, str)}
    return set()


def _load_dirs(path: Path, root: Path) -> dict[str, tuple[int, tuple[str, ...]]]:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if isinstance(data, tuple) and len(data) == 3 and data[:2] == (_DIRS_FORMAT, str(root)) \
            and isinstance(data[2], dict):
        return data[2]
    return {}


def _strays(root: Path, produced: Collection[str],
            known: Mapping[str, tuple[int, tuple[str, ...]]] | None = None,
            seen: dict[str, tuple[int, tuple[str, ...]]] | None = None,
            ) -> tuple[list[str], bool]:
    """Files under `root` no output claims, and whether any folder is empty; one scandir walk.

    Symlinked folders are not followed: a link is one stray entry. `known` maps a folder
    (relative, "" for root) to its (mtime_ns, subfolders) when last walked: a folder with the
    same mtime has had no entry added or removed since, so it is not listed again (one stat
    instead of a scandir; its files were all accounted for then). `seen` receives the same
    for this walk.
    """
    strays: list[str] = []
    empty = False
    known = known or {}
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            continue
        last = known.get(prefix)
        if last is not None and last[0] == mtime:
            subdirs = last[1]
        else:
            try:
                items = list(os.scandir(folder))
            except OSError:
                continue
            if not items:
                empty = True
            found: list[str] = []
            for item in items:
                rel = prefix + item.name
                if item.is_dir(follow_symlinks=False):
                    if not (prefix == "" and item.name in PROTECTED_NAMES):
                        found.append(item.name)
                elif rel not in produced:
                    strays.append(rel)
            subdirs = tuple(found)
        if seen is not None:
            seen[prefix] = (mtime, subdirs)
        # os.path.join per folder was ~0.02 s of a 10,000-post walk; this is the same join.
        head = folder if folder.endswith(os.sep) else folder + os.sep
        for name in subdirs:
            stack.append((head + name, prefix + name + "/"))
    return sorted(strays), empty


def _write_bytes_atomic(path: Path, pieces: Sequence[bytes | memoryview],
                        ) -> tuple[list[int], tuple[int, int]]:
    """write_atomic for bytes given in pieces (never joined). Returns where each piece
    starts (plus the end) and the file's (size, mtime_ns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    offsets = [0]
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
                offsets.append(offsets[-1] + len(piece))
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)
            st = os.fstat(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return offsets, (st.st_size, st.st_mtime_ns)
