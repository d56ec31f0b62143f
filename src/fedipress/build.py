"""The build: content + theme + config -> the output directory. The only writer of public/.

One build is five phases, timed separately (`BuildResult.phase_seconds`):

  keys        make sure the actor's public key exists (needed by the ActivityPub documents)
  parse       content.load_site: Markdown -> model.Site (cached per file in .fedipress/cache/)
  plan        every generator returns lazily rendered `Output`s with fingerprints
  write       `sync_outputs`: render only outputs whose fingerprint changed (or whose file
              vanished), write only files whose bytes changed, atomically; then remove what
              the previous build produced and this one does not, and stray files
  federation  write .fedipress/manifest.json for `publish`

The build manifest (.fedipress/cache/build-manifest.json) remembers, per output path, the
fingerprint and the sha256, size and mtime of the bytes written. A rebuild with nothing
changed therefore renders nothing and writes nothing. The federation manifest
(.fedipress/manifest.json) is what `publish` diffs against; it never goes into public/.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import marshal
import mmap
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from . import __version__
from .config import SiteConfig
from .errors import ContentError, Problem
from .model import Output, Post, Site
from .output import (
    PROTECTED_NAMES,
    check_output_dir,
    remove_empty_dirs,
    remove_file,
    target_path,
    write_atomic,
)

__all__ = [
    "BuildResult",
    "Builder",
    "SyncResult",
    "build_site",
    "fingerprint_salt",
    "run_build_command",
    "sync_outputs",
]

Log = Callable[[str], None]

_MANIFEST_FORMAT = 3  # marshal: (format, output_dir, {rel: (fp, sha256, size, mtime_ns)})
_OBJECTS_FORMAT = 3
_ObjectIndex = dict[str, tuple[str, int, int]]
# Rendering is spread over forked worker processes for at least this many outputs to render
# and PARALLEL_RENDER_MIN_CPUS CPUs (a cold build; a rebuild renders a handful). Workers take
# contiguous blocks in the order the caller gives (`locality`), so the outputs that share lazy
# work (a post's object.json and the outbox page embedding it) mostly land in one worker.
PARALLEL_RENDER_THRESHOLD = 2000
PARALLEL_RENDER_MIN_CPUS = 2
_BLOCKS_PER_WORKER = 8


@dataclass(frozen=True)
class BuildResult:
    written: int
    unchanged: int
    removed: int
    skipped_render: int  # outputs whose render() was not called at all (fingerprint matched)
    posts: int
    pages: int
    problems: tuple[Problem, ...]
    seconds: float
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return self.written + self.unchanged

    def summary(self) -> str:
        """One line, e.g. `built 1,204 files (12 written, 1,190 unchanged, 2 removed) from …`."""
        pages = f" and {self.pages:,} page{'s' * (self.pages != 1)}" if self.pages else ""
        return (
            f"built {self.files:,} files ({self.written:,} written, {self.unchanged:,} unchanged,"
            f" {self.removed:,} removed) from {self.posts:,} post{'s' * (self.posts != 1)}"
            f"{pages} in {self.seconds:.2f} s"
        )


# What the previous build knows about one output file: (fingerprint, sha256, size, mtime_ns).
# A plain tuple: ~50,000 are loaded per build, straight from marshal (a NamedTuple's Python
# __new__ alone cost 0.15 s at 10,000 posts), and saved back the same way.
_Entry = tuple[str, str, int, int]
_FP: Final = 0
_SHA: Final = 1
_SIZE: Final = 2
_MTIME: Final = 3


def fingerprint_salt(config: SiteConfig, theme_fingerprint: str) -> str:
    """Everything every output depends on besides its own inputs: config, theme, version."""
    digest = hashlib.sha256()
    for part in (repr(config), theme_fingerprint, __version__):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


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


# --- planning -----------------------------------------------------------------------------------


def _file_output(rel: str, source: Path) -> Output:
    """A copied file: fingerprinted by its source's path, size and mtime (no read needed)."""
    st = source.stat()
    fp = hashlib.sha256(f"file\0{source}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    return Output(path=rel, fingerprint=fp, render=source.read_bytes)


def _bytes_output(rel: str, data: bytes) -> Output:
    return Output(path=rel, fingerprint=hashlib.sha256(data).hexdigest(), render=lambda: data)


def _collect(groups: Sequence[tuple[str, Sequence[Output]]],
             overrides: Iterable[Output]) -> list[Output]:
    """Merge generator outputs; two generators claiming one path is a bug in fedipress.

    `overrides` (the site's own content/static files) replace generated files of the same
    path on purpose: a hand-written robots.txt wins over the generated one.
    """
    chosen: dict[str, Output] = {}
    sources: dict[str, str] = {}
    for source, outputs in groups:
        before = len(chosen)
        chosen.update((out.path, out) for out in outputs)
        if len(chosen) - before != len(outputs):  # someone claimed a path twice: find it
            seen = dict(sources)
            for out in outputs:
                if out.path in seen:
                    raise RuntimeError(
                        f"two generators produce {out.path!r}: {seen[out.path]} and {source}")
                seen[out.path] = source
        sources.update(dict.fromkeys((out.path for out in outputs), source))
    for out in overrides:
        chosen[out.path] = out
    return [chosen[path] for path in sorted(chosen)]


# --- writing ------------------------------------------------------------------------------------


def _stat_matches(path: Path | str, entry: _Entry) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == entry[_SIZE] and st.st_mtime_ns == entry[_MTIME]


# (status, entry): status is "skipped" (no render), "unchanged" (rendered, same bytes) or
# "written".
_Outcome = tuple[str, _Entry]


def _process(out: Output, prev: _Entry | None, root: Path, trust_cache: bool,
             checked: set[Path] | None = None) -> _Outcome:
    path = target_path(root, out.path, checked)
    if trust_cache and prev is not None and prev[_FP] == out.fingerprint \
            and _stat_matches(path, prev):
        return "skipped", prev
    data = out.render()
    sha = hashlib.sha256(data).hexdigest()
    if trust_cache and prev is not None and prev[_SHA] == sha and _stat_matches(path, prev):
        return "unchanged", (out.fingerprint, sha, prev[_SIZE], prev[_MTIME])
    st = write_atomic(path, data)
    return "written", (out.fingerprint, sha, st.st_size, st.st_mtime_ns)


# Forked render workers read their jobs from this module global, set just before the fork and
# cleared after: Output.render closures cannot be pickled, but a forked child inherits them.
_JOBS: list[tuple[Output, _Entry | None, Path, bool]] = []
_JOB_CHECKED: set[Path] = set()  # per worker process: folders already verified


def _process_block(indices: list[int]) -> list[_Outcome]:
    outcomes = []
    for index in indices:
        out, prev, root, trust = _JOBS[index]
        outcomes.append(_process(out, prev, root, trust, _JOB_CHECKED))
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


class _Progress:
    """A `\\r` progress line on a terminal once a phase runs for over a second."""

    def __init__(self, enabled: bool, label: str, total: int) -> None:
        self.enabled = enabled and total > 0
        self.label, self.total = label, total
        self.start = self.last = time.monotonic()
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < 1.0 or (now - self.last < 0.1 and done < self.total):
            return
        self.last, self.shown = now, True
        sys.stderr.write(f"\r{self.label} {done:,}/{self.total:,} ({100 * done // self.total}%)")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


@dataclass(frozen=True)
class SyncResult:
    written: int
    unchanged: int  # includes skipped_render
    skipped_render: int
    removed: int
    entries: dict[str, _Entry]


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
) -> SyncResult:
    """Make `output_dir` hold exactly `outputs`, doing as little work as the manifest allows.

    `output_dir` must be checked and resolved (check_output_dir). `previous` is the last
    build's entries if the caller keeps them in memory, or True to read `manifest_file`.
    `clean` ignores the previous entries (everything is rendered and written) and also removes
    strays from a folder no manifest vouches for. `trust_files` (an in-process rebuild whose
    `previous` this process wrote) believes that files with an unchanged fingerprint are still
    there as written: no stat per output and no walk of the folder for strays. `locality`
    maps an output path to a sort key that keeps outputs sharing lazy work together when
    rendering is split over processes.
    """
    root = output_dir
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
        if trust and prev is not None and prev[_FP] == out.fingerprint \
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
    bar = _Progress(progress, "rendering", len(todo))
    if _parallel_ok(len(todo), n_workers):
        outcomes = _write_parallel(todo, old, root, trust, n_workers, bar, locality)
    else:
        outcomes = []
        for i, out in enumerate(todo, 1):
            outcomes.append(_process(out, old.get(out.path), root, trust, checked))
            bar.update(i)
    bar.close()
    for out, (status, entry) in zip(todo, outcomes, strict=True):
        counts[status] += 1
        entries[out.path] = entry

    produced = entries.keys()
    removed = 0
    for rel in sorted(old.keys() - produced):
        removed += remove_file(root, rel)
    scan = clean or not trust_files or previous is None
    dirs_file = manifest_file.with_name(_DIRS_FILE)
    # Folders unchanged (same mtime) since the last walk are not listed again: only a trusted
    # rebuild uses them, and they are saved only when the walk left no stray behind.
    known_dirs = _load_dirs(dirs_file, root) if scan and trust else {}
    seen_dirs: dict[str, tuple[int, tuple[str, ...]]] = {}
    strays, empty_dirs = _strays(root, produced, known_dirs, seen_dirs) if scan \
        else ([], False)
    # Stray files are only deleted from a folder this build already owns: on a first build
    # into a folder of someone else's files, leaving them is the safe mistake.
    if strays and (previous is not None or clean):
        for rel in strays:
            removed += remove_file(root, rel)
    elif strays:
        log(f"note: left {len(strays):,} file(s) in {root} that this build does not produce"
            " (fedipress build --clean removes them)")
    if removed or empty_dirs:
        remove_empty_dirs(root)
    if scan:
        if strays and not (previous is not None or clean):
            dirs_file.unlink(missing_ok=True)
        elif seen_dirs != known_dirs:
            _write_bytes_atomic(dirs_file, [marshal.dumps((_DIRS_FORMAT, str(root), seen_dirs))])
    # A targeted in-process rebuild keeps its manifest in memory only: a stale file on disk
    # costs the next fresh build a re-render of what changed since, never a wrong skip (the
    # skip needs fingerprint, size and mtime to match).
    if (counts["written"] or counts["unchanged"] or removed or old.keys() != produced
            or not manifest_file.is_file()) and not trust_files:
        _save_manifest(manifest_file, root, entries)
    return SyncResult(
        written=counts["written"],
        unchanged=counts["unchanged"] + counts["skipped"],
        skipped_render=counts["skipped"],
        removed=removed,
        entries=entries,
    )


def _write_parallel(todo: list[Output], previous: dict[str, _Entry], root: Path, trust: bool,
                    workers: int, bar: _Progress,
                    locality: Callable[[str], tuple[int, str]] | None = None) -> list[_Outcome]:
    import multiprocessing

    global _JOBS
    _JOBS = [(out, previous.get(out.path), root, trust) for out in todo]
    order = list(range(len(todo)))
    if locality is not None:
        order.sort(key=lambda i: locality(todo[i].path))
    size = max(8, -(-len(order) // (workers * _BLOCKS_PER_WORKER)))
    blocks = [order[i:i + size] for i in range(0, len(order), size)]
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
        _JOBS = []


_DIRS_FILE = "build-dirs.marshal"
_DIRS_FORMAT = 1


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
        for name in subdirs:
            stack.append((os.path.join(folder, name), prefix + name + "/"))
    return sorted(strays), empty


# --- the builder --------------------------------------------------------------------------------


class Builder:
    """Builds one site, keeping caches in memory between builds (for the dev server).

    `build()` may be called again after files change; the manifest and parse cache stay in
    memory so a rebuild only re-reads what changed. When `changed_paths` includes site.yaml
    the configuration is reloaded with `reload_config` (default: load_config(config_file);
    pass your own to keep a --base-url override).
    """

    def __init__(
        self,
        config: SiteConfig,
        *,
        drafts: bool = False,
        future: bool = False,
        keep_going: bool = False,
        workers: int | None = None,
        log: Log = print,
        progress: bool = False,
        ci: bool = False,
        reload_config: Callable[[], SiteConfig] | None = None,
        federation_manifest: bool = True,
    ) -> None:
        self.config = config
        # False for preview builds (a dev server's local base_url) that publish must never see.
        self.federation_manifest = federation_manifest
        self._reload_config = reload_config
        self.drafts, self.future, self.keep_going = drafts, future, keep_going
        self.workers = workers
        self.log, self.progress, self.ci = log, progress, ci
        self._manifest: dict[str, _Entry] | None = None
        self._manifest_loaded = False
        self._cache: Any = None
        self._federation_key = ""
        # object.json fingerprint -> (object id, manifest entry), so an edit recomputes only
        # the edited posts' documents for the federation manifest (see _federation_text).
        self._object_fps: dict[str, str] = {}
        # object.json fingerprint -> (object id, start, end of its entry in manifest.json),
        # valid for the manifest of `_objects_sig` (size, mtime_ns); None until loaded.
        self._objects: _ObjectIndex | None = None
        self._objects_sig: tuple[int, int] = (-1, -1)
        self._mentions: Mapping[str, str] = {}  # the store's mention cache, read in _plan
        self._page_memo: dict[tuple[object, ...], Any] = {}
        self._sources: tuple[Any, ...] = ()  # content.SourceFile of the last build
        self._source_paths: set[str] | None = None
        self._ap_memo: dict[tuple[object, ...], Any] = {}
        self.output_dir = self._check_output_dir()

    def _check_output_dir(self) -> Path:
        c = self.config
        return check_output_dir(c.output_dir, site_root=c.root, content_dir=c.content_dir,
                                state_dir=c.state_dir, config_file=c.config_file)

    def build(
        self,
        changed_paths: Iterable[Path] | None = None,
        *,
        now: datetime | None = None,
        clean: bool = False,
    ) -> BuildResult:
        # The loaded site is most of this process's objects (~150,000 tracked ones at 10,000
        # posts) and lives for the whole build: after parsing it is frozen out of the cyclic
        # collector's reach, which otherwise rescans it again and again while planning and
        # writing allocate (0.35 -> 0.16 s for the ActivityPub plan alone). Unfrozen after.
        # Planning makes ~150,000 small objects and no garbage cycles worth a collection:
        # the collector is off while it runs (0.52 -> 0.39 s at 10,000 posts), and what it
        # made is frozen too. Rendering (which can make cycles) runs with the collector on.
        enabled = gc.isenabled()
        try:
            return self._build(changed_paths, now=now, clean=clean, collect=enabled)
        finally:
            gc.unfreeze()
            if enabled:
                gc.enable()

    def _build(
        self,
        changed_paths: Iterable[Path] | None,
        *,
        now: datetime | None,
        clean: bool,
        collect: bool,
    ) -> BuildResult:
        started = time.perf_counter()
        phases: dict[str, float] = {}
        mark = [started]

        def lap(name: str) -> None:
            t = time.perf_counter()
            phases[name] = round(t - mark[0], 4)
            mark[0] = t

        changed = [Path(p) for p in changed_paths] if changed_paths is not None else []
        if changed_paths is not None and any(
            p.resolve() == self.config.config_file.resolve() for p in changed
        ):
            if self._reload_config is not None:
                self.config = self._reload_config()
            else:
                from .config import load_config

                self.config = load_config(self.config.config_file)
            self.output_dir = self._check_output_dir()
            self._manifest_loaded = False
            self._cache = None
        config = self.config
        now = now if now is not None else datetime.now(UTC)

        public_key = self._public_key()
        lap("keys")

        targeted = changed_paths is not None and self._cache is not None and not clean
        site, problems = self._parse(now, clean, targeted, changed)
        gc.freeze()
        lap("parse")

        gc.disable()
        outputs = self._plan(site, public_key)
        gc.freeze()
        if collect:
            gc.enable()
        lap("plan")

        # A targeted rebuild (the dev server naming the changed files) after a build in this
        # process trusts its own manifest: no stat per output, no walk for strays.
        trust_files = self._manifest_loaded and changed_paths is not None and not clean
        if not self._manifest_loaded:
            self._manifest = _load_manifest(_manifest_path(config), self.output_dir)
            self._manifest_loaded = True
        synced = sync_outputs(
            outputs, self.output_dir, _manifest_path(config), previous=self._manifest,
            clean=clean, workers=self.workers, progress=self.progress, log=self.log,
            trust_files=trust_files, locality=_locality(site),
        )
        self._manifest = synced.entries
        lap("write")
        if public_key is not None and self.federation_manifest:
            if clean:
                self._objects = {}  # --clean trusts no cache, this one included
                (config.state_dir / "cache" / "federation-manifest.key").unlink(missing_ok=True)
            self._write_federation_manifest(site, public_key)
        lap("federation")

        return BuildResult(
            written=synced.written,
            unchanged=synced.unchanged,
            removed=synced.removed,
            skipped_render=synced.skipped_render,
            posts=len(site.posts),
            pages=len(site.pages),
            problems=problems,
            seconds=time.perf_counter() - started,
            phase_seconds=phases,
        )

    # -- phases --

    def _public_key(self) -> bytes | None:
        try:
            from .keys import ensure_public_key
        except ImportError:
            return None  # keys.py not installed yet: the site builds without ActivityPub
        return ensure_public_key(self.config, ci=self.ci, log=self.log)

    def _known_sources(self, changed: Iterable[Path]) -> Sequence[Any] | None:
        """The last build's source files, if `changed` only edited files among them (no file
        added, removed or moved): then the content folder needs no walk."""
        if not self._sources:
            return None
        if self._source_paths is None:
            self._source_paths = {os.path.abspath(sf.path) for sf in self._sources}
        for path in changed:
            if os.path.abspath(path) not in self._source_paths or not os.path.isfile(path):
                return None
        return self._sources

    def _parse(self, now: datetime, clean: bool, targeted: bool = False,
               changed: Iterable[Path] = ()) -> tuple[Site, tuple[Problem, ...]]:
        from . import content

        if self._cache is None:
            self._cache = content.ParseCache.for_site(self.config)
            if not clean:
                # Loading makes ~100,000 objects and no cycles: no collector passes meanwhile.
                enabled = gc.isenabled()
                gc.disable()
                try:
                    self._cache.load()
                finally:
                    if enabled:
                        gc.enable()
        workers = self.workers
        if workers is None:
            # content.load_site only starts a pool for enough cache misses; worker processes
            # are forked, which is only safe while this process has a single thread.
            workers = (os.cpu_count() or 1) if threading.active_count() == 1 else 1
        # A rebuild (Markdown mostly cached) loads tens of thousands of objects and makes
        # few cycles: no collector passes over them while they pile up. A cold build keeps
        # the collector, since Markdown rendered in this process does make garbage cycles.
        pause = len(self._cache) > 0 and gc.isenabled()
        if pause:
            gc.disable()
        try:
            result = content.load_site(
                self.config, now=now, drafts=self.drafts, future=self.future,
                keep_going=self.keep_going, cache=self._cache, workers=workers,
                sources=self._known_sources(changed) if targeted else None,
            )
        finally:
            if pause:
                gc.enable()
        if result.sources != self._sources:
            self._sources, self._source_paths = result.sources, None
        problems = tuple(result.problems)
        if problems and not self.keep_going:
            raise ContentError(problems)
        # The dev server's targeted rebuilds keep the cache in memory only: rewriting it (the
        # Markdown of every post) would cost more than the rebuild; it is looked up by content
        # and stat, so the older file on disk is never wrong, only less complete.
        self._cache.save(write=not targeted)
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        return result.site, problems

    def _plan(self, site: Site, public_key: bytes | None) -> list[Output]:
        from . import content, feeds, render, themes

        config = self.config
        env = themes.make_environment(config)
        # Compiled templates kept between processes (keyed by name, checked against the
        # source): a fresh process rendering a few pages spent ~0.06 s compiling them.
        import jinja2

        env.bytecode_cache = jinja2.FileSystemBytecodeCache(
            str(_ensure_dir(config.state_dir / "cache" / "templates")))
        salt = fingerprint_salt(config, themes.theme_fingerprint(env))
        # Fingerprints by their inputs, kept between this builder's builds: an unchanged post
        # costs a dict lookup per output. Cleared when it outgrows the site (old versions).
        limit = 8 * (len(site.posts) + len(site.pages)) + 1000
        for memo in (self._page_memo, self._ap_memo):
            if len(memo) > limit:
                memo.clear()
        groups: list[tuple[str, Iterable[Output]]] = [
            ("render", render.plan_pages(site, env, fingerprint_salt=salt,
                                         memo=self._page_memo)),
            ("feeds", feeds.plan_feeds(site, fingerprint_salt=salt)),
        ]
        if public_key is not None:
            try:
                from .activitypub.site import plan_activitypub
            except ImportError:
                pass
            else:
                # Counts and resolved mentions come from the store when there is one
                # (read-only: a build never creates or changes it).
                from .store import default_store_path
                from .store.snapshot import read_build_state

                state = read_build_state(default_store_path(config.state_dir))
                self._mentions = state.mentions
                ap = plan_activitypub(
                    site, public_key, fingerprint_salt=salt,
                    follower_count=state.follower_count,
                    interaction_counts=state.interaction_counts, mentions=state.mentions,
                    memo=self._ap_memo,
                )
                groups.append(("activitypub", ap))
                self._object_fps = {o.path: o.fingerprint for o in ap
                                    if o.path.endswith("/object.json")}
                # The federation manifest is made of the same actor and object documents, so
                # their fingerprints say whether it needs computing again.
                self._federation_key = hashlib.sha256(
                    "\0".join(sorted(o.fingerprint for o in ap)).encode()).hexdigest()
        try:
            from .hosting import plan_host_files
        except ImportError:
            pass
        else:
            groups.append(("hosting", plan_host_files(config)))
        try:
            from .markup import highlight_css
        except ImportError:
            pass
        else:
            groups.append(("markup",
                           [_bytes_output("theme/highlight.css", highlight_css().encode())]))
        generated = {out.path for _, outs in groups for out in outs}
        listed: list[tuple[str, Sequence[Output]]] = [(name, list(outs)) for name, outs in groups]
        # Theme static files give way to generated ones (highlight.css), never the reverse.
        listed.append(("theme static", [
            _file_output(rel, src) for rel, src in themes.theme_static_files(config)
            if rel not in generated
        ]))
        user_files = [_file_output(rel, src) for rel, src in content.static_files(config, site)]
        return _collect(listed, user_files)

    def _write_federation_manifest(self, site: Site, public_key: bytes) -> None:
        try:
            from .activitypub.site import federation_manifest
        except ImportError:
            return
        target = self.config.state_dir / "manifest.json"
        key_file = self.config.state_dir / "cache" / "federation-manifest.key"
        try:
            if target.is_file() and key_file.read_text() == self._federation_key:
                return
        except OSError:
            pass
        if not self._write_spliced_manifest(site, public_key, target):
            data = federation_manifest(site, public_key, mentions=self._mentions)
            _write_text_atomic(
                target, [json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"])
        write_atomic(key_file, self._federation_key.encode())

    def _load_object_index(self, index_file: Path) -> tuple[tuple[int, int], _ObjectIndex]:
        if self._objects is not None:
            return self._objects_sig, self._objects
        try:
            loaded = marshal.loads(index_file.read_bytes())
            if isinstance(loaded, tuple) and len(loaded) == 4 \
                    and loaded[:2] == (_OBJECTS_FORMAT, __version__) \
                    and isinstance(loaded[2], tuple) and isinstance(loaded[3], dict):
                return loaded[2], loaded[3]
        except (OSError, EOFError, ValueError, TypeError):
            pass  # no index: every entry is computed
        return (-1, -1), {}

    def _write_spliced_manifest(self, site: Site, public_key: bytes, target: Path) -> bool:
        """Write json.dumps(federation_manifest(...), indent=2, sort_keys=True,
        ensure_ascii=False) + "\n" to `target`, byte for byte, copying each unchanged
        object's entry from the previous manifest. False when the documents module is missing.

        Each object document depends on exactly what its object.json fingerprint hashes
        (config, theme, version, the post), so an unchanged fingerprint means an unchanged
        entry. The index (`federation-objects.marshal`) maps a fingerprint to the object id
        and the entry's byte range in the manifest file it was written with (checked by size
        and mtime), so an edit at 10,000 posts copies ~150 MB of bytes instead of loading,
        re-encoding and saving them. tests/test_build_perf.py checks the bytes.
        """
        try:
            from .activitypub import documents as d
        except ImportError:
            return False
        index_file = self.config.state_dir / "cache" / "federation-objects.marshal"
        sig, known = self._load_object_index(index_file)
        with contextlib.ExitStack() as stack:
            old: mmap.mmap | None = None
            old_fd = -1
            try:
                handle = stack.enter_context(target.open("rb"))
                st = os.fstat(handle.fileno())
                if (st.st_size, st.st_mtime_ns) == sig and st.st_size > 0:
                    old = stack.enter_context(
                        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
                    old_fd = handle.fileno()
            except (OSError, ValueError):
                old = None
            if old is None:
                known = {}
            size = len(old) if old is not None else 0
            objects: dict[str, tuple[str | None, bytes | tuple[int, int]]] = {}
            missing: list[tuple[Post, str | None]] = []
            for post in d.federated_posts(site):
                fp = self._object_fps.get(post.path + "object.json")
                hit = known.get(fp) if fp is not None else None
                if hit is not None and 0 <= hit[1] <= hit[2] <= size:
                    objects[hit[0]] = (fp, (hit[1], hit[2]))
                else:
                    missing.append((post, fp))
            for fp, oid, entry in self._manifest_entries(site, missing):
                objects[oid] = (fp, entry)
            actor = _nested_json(d.actor_document(site, public_key), 1)
            fresh: _ObjectIndex = {}
            # Segments of the new file: bytes, or a (start, end) range of the old file. Runs
            # of unchanged entries that sat side by side in the old file (the separators and
            # keys between them the same bytes) become one range, copied by the kernel.
            segments: list[bytes | tuple[int, int]] = [
                ('{\n  "actor": ' + actor + ',\n  "objects": ').encode()]
            pos = len(segments[0])
            if objects:
                segments.append(b"{\n")
                pos += 2
                for i, oid in enumerate(sorted(objects)):
                    fp, body = objects[oid]
                    lead = (",\n" if i else "") + f"    {_json_key(oid)}: "
                    head = lead.encode()
                    pos += len(head)
                    last = segments[-1]
                    if isinstance(body, tuple):
                        start, end = body
                        if isinstance(last, tuple) and last[1] + len(head) == start \
                                and old is not None and old[last[1]:start] == head:
                            segments[-1] = (last[0], end)
                        else:
                            segments += [head, body]
                        length = end - start
                    else:
                        segments += [head, body]
                        length = len(body)
                    if fp is not None:
                        fresh[fp] = (oid, pos, pos + length)
                    pos += length
                segments.append(b"\n  }")
            else:
                segments.append(b"{}")
            segments.append(b"\n}\n")
            written = _write_segments_atomic(target, segments, old_fd, old)
            objects.clear()
            segments.clear()
        self._objects, self._objects_sig = fresh, written
        write_atomic(index_file, marshal.dumps((_OBJECTS_FORMAT, __version__, written, fresh)))
        return True

    def _manifest_entry(self, site: Site, post: Post,
                        fp: str | None) -> tuple[str | None, str, bytes]:
        """(fingerprint, object id, the entry's JSON as nested in the manifest)."""
        from .activitypub import documents as d

        doc = self._written_document(post.path + "object.json", fp)
        if doc is None:
            doc = d.object_document(site, post, mentions=self._mentions)
        value = {"hash": d.object_hash(doc), "published": doc["published"], "doc": doc}
        return fp, doc["id"], _nested_json(value, 2).encode("utf-8")

    def _manifest_entries(self, site: Site, missing: list[tuple[Post, str | None]],
                          ) -> list[tuple[str | None, str, bytes]]:
        """The entries of `missing`, over forked workers when there are many (a cold build:
        every object.json read back, hashed and re-encoded, ~0.35 ms a post)."""
        workers = self.workers if self.workers is not None else (os.cpu_count() or 1)
        if len(missing) < 1000 or not _parallel_ok(PARALLEL_RENDER_THRESHOLD, workers):
            return [self._manifest_entry(site, post, fp) for post, fp in missing]
        import multiprocessing

        global _ENTRY_JOBS
        _ENTRY_JOBS = (self, site, missing)
        try:
            size = -(-len(missing) // (workers * 4))
            chunks = [range(i, min(i + size, len(missing))) for i in range(0, len(missing), size)]
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                return [e for part in pool.map(_entry_chunk, chunks) for e in part]
        finally:
            _ENTRY_JOBS = None

    def _written_document(self, rel: str, fingerprint: str | None) -> dict[str, Any] | None:
        """The object document this build wrote (or kept) at `rel`, read back from its JSON.

        object.json is serialize(object_document(...)) for exactly this fingerprint, and JSON
        reads back to an equal document, far cheaper than building it again (HTML reduction).
        """
        entry = (self._manifest or {}).get(rel)
        if fingerprint is None or entry is None or entry[_FP] != fingerprint:
            return None
        try:
            data = (self.output_dir / rel).read_bytes()
            if len(data) != entry[_SIZE] or hashlib.sha256(data).hexdigest() != entry[_SHA]:
                return None  # changed on disk since the write: build the document instead
            doc = json.loads(data)
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None


# The federation manifest's entries to compute in forked workers (see _manifest_entries).
_ENTRY_JOBS: tuple[Builder, Site, list[tuple[Post, str | None]]] | None = None


def _entry_chunk(indices: range) -> list[tuple[str | None, str, bytes]]:
    assert _ENTRY_JOBS is not None
    builder, site, missing = _ENTRY_JOBS
    return [builder._manifest_entry(site, *missing[i]) for i in indices]


def _locality(site: Site) -> Callable[[str], tuple[int, str]]:
    """Sort key for splitting rendering over processes: each federated post's files at its
    place in the outbox, each outbox page next to the posts it embeds (their object
    documents are built once per process), everything else after them."""
    try:
        from .activitypub import documents as d
    except ImportError:
        return lambda path: (0, path)
    place = {post.path: i for i, post in enumerate(d.federated_posts(site))}
    size = d.OUTBOX_PAGE_SIZE
    rest = len(place) + size

    def key(path: str) -> tuple[int, str]:
        folder, _, name = path.rpartition("/")
        if folder == "outbox" and name.startswith("page-") and name.endswith(".json"):
            number = name[5:-5]
            if number.isdigit():
                return ((int(number) - 1) * size, path)
        return (place.get(folder + "/", rest), path)

    return key


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def _write_segments_atomic(path: Path, segments: Sequence[bytes | tuple[int, int]],
                           src_fd: int, src: mmap.mmap | None) -> tuple[int, int]:
    """write_atomic for a file made of bytes and (start, end) ranges of the open file
    `src_fd` (mapped as `src`), copied in the kernel where it can (copy_file_range), else
    from the map. Returns the new file's (size, mtime_ns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    kernel_copy = hasattr(os, "copy_file_range")
    try:
        try:
            # Small pieces are joined up to ~1 MiB per write (never all: a cold build's
            # manifest is ~170 MB of pieces).
            pending: list[bytes] = []
            pending_size = 0
            for segment in segments:
                if not isinstance(segment, tuple):
                    pending.append(segment)
                    pending_size += len(segment)
                    if pending_size >= 1 << 20:
                        _write_all(fd, b"".join(pending))
                        pending.clear()
                        pending_size = 0
                    continue
                _write_all(fd, b"".join(pending))
                pending.clear()
                pending_size = 0
                start, end = segment
                if src is None:
                    raise ValueError("a range of no file")
                while start < end and kernel_copy:
                    try:
                        done = os.copy_file_range(src_fd, fd, end - start, start)
                    except OSError:  # another file system, an old kernel: copy by hand
                        done = 0
                    if done <= 0:
                        kernel_copy = False
                        break
                    start += done
                if start < end:
                    with memoryview(src) as view:
                        _write_all(fd, view[start:end])
            _write_all(fd, b"".join(pending))
            os.fchmod(fd, 0o644)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return st.st_size, st.st_mtime_ns


def _write_all(fd: int, data: bytes | memoryview) -> None:
    with memoryview(data) as view:
        while view:
            view = view[os.write(fd, view):]


def _write_text_atomic(path: Path, pieces: Iterable[str]) -> None:
    """write_atomic for text given in pieces, encoded as it is written (never joined)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.writelines(pieces)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _nested_json(value: Any, level: int) -> str:
    """`value` as json.dumps(indent=2, sort_keys=True) writes it `level` containers deep.

    Newlines only ever separate structure (strings escape theirs), so indenting every line
    by the nesting depth gives exactly the bytes of the enclosing dump.
    """
    from .activitypub.documents import indented_json

    # Same bytes as json.dumps(indent=2) with the lines shifted, through the C encoder.
    return indented_json(value, sort_keys=True, level=level)


def _json_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def build_site(
    config: SiteConfig,
    *,
    now: datetime | None = None,
    drafts: bool = False,
    future: bool = False,
    keep_going: bool = False,
    clean: bool = False,
    workers: int | None = None,
    log: Log = print,
    progress: bool = False,
    ci: bool = False,
) -> BuildResult:
    """Build `config`'s site into its output directory (see the module docstring)."""
    builder = Builder(config, drafts=drafts, future=future, keep_going=keep_going,
                      workers=workers, log=log, progress=progress, ci=ci)
    return builder.build(now=now, clean=clean)


def _truthy_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def run_build_command(config: SiteConfig, args: Any) -> int:
    """`fedipress build`: one summary line on stdout; problems on stderr.

    Exit 0 on success, including `--keep-going` builds that skipped broken files (each is
    printed as a warning); broken content without `--keep-going` raises ContentError (exit 2).
    """
    quiet = bool(getattr(args, "quiet", False))
    ci = _truthy_env("CI")

    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr)

    result = build_site(
        config,
        drafts=bool(getattr(args, "drafts", False)),
        future=bool(getattr(args, "future", False)),
        keep_going=bool(getattr(args, "keep_going", False)),
        clean=bool(getattr(args, "clean", False)),
        log=log,
        progress=not quiet and not ci and sys.stderr.isatty(),
        ci=ci,
    )
    if not quiet:
        print(result.summary())
        if ci:
            phases = ", ".join(f"{k} {v:.2f} s" for k, v in result.phase_seconds.items())
            print(f"phases: {phases}")
    return 0
