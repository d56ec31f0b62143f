"""The build: content + theme + config -> the output directory. The only writer of public/.

One build is five phases, timed separately (`BuildResult.phase_seconds`):

  keys        make sure the actor's public key exists (needed by the ActivityPub documents)
  parse       content.load_site: Markdown -> model.Site (cached per file in .fedipress/cache/)
  plan        every generator returns lazily rendered `Output`s with fingerprints
  write       `outputsync.sync_outputs`: render only outputs whose fingerprint changed (or
              whose file vanished), write only files whose bytes changed, atomically; then
              remove what the previous build produced and this one does not, and stray files
  federation  write .fedipress/manifest.json for `publish`

The build manifest (.fedipress/cache/build-manifest.marshal, see outputsync.py) remembers, per
output path, the fingerprint and the sha256, size and mtime of the bytes written. A rebuild
with nothing changed therefore renders nothing and writes nothing. The federation manifest
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .config import SiteConfig
from .errors import ContentError, Problem
from .model import Output, Post, Site
from .output import check_output_dir, write_atomic
from .outputsync import (
    _FP,
    _SHA,
    _SIZE,
    PARALLEL_RENDER_THRESHOLD,
    SyncResult,
    _Entry,
    _load_manifest,
    _manifest_path,
    _parallel_ok,
    sync_outputs,
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

_OBJECTS_FORMAT = 3
_ObjectIndex = dict[str, tuple[str, int, int]]


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



def fingerprint_salt(config: SiteConfig, theme_fingerprint: str) -> str:
    """Everything every output depends on besides its own inputs: config, theme, version."""
    digest = hashlib.sha256()
    for part in (repr(config), theme_fingerprint, __version__):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


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
