"""The build: content + theme + config -> the output directory. The only writer of public/.

One build is five phases, timed separately (`BuildResult.phase_seconds`):

  keys        make sure the actor's public key exists (needed by the ActivityPub documents)
  parse       content.load_site: Markdown -> model.Site (cached per file in .fedipress/cache/)
  plan        every generator returns lazily rendered `Output`s with fingerprints
  write       `outputsync.sync_outputs`: render only outputs whose fingerprint changed (or
              whose file vanished), write only files whose bytes changed, atomically; then
              remove what the previous build produced and this one does not, and stray files
  federation  write .fedipress/manifest.json for `publish` (federation_manifest.py)

The build manifest (.fedipress/cache/build-manifest.marshal, see outputsync.py) remembers, per
output path, the fingerprint and the sha256, size and mtime of the bytes written. A rebuild
with nothing changed therefore renders nothing and writes nothing. The federation manifest
(.fedipress/manifest.json) is what `publish` diffs against; it never goes into public/.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .. import __version__
from ..config import SiteConfig
from ..errors import ContentError, Problem
from ..federation.manifest import FederationManifest, entry_from_object_json
from ..model import Output, Site
from ..progress import Progress
from ..wording import plural
from .markup import speedups_off_reason
from .output import OutputDirError, check_output_dir
from .outputsync import (
    SyncResult,
    _Entry,
    _load_manifest,
    _manifest_path,
    build_progress,
    sync_outputs,
)
from .rendercache import RenderPack

__all__ = [
    "BuildOptions",
    "BuildResult",
    "BuildRun",
    "Builder",
    "SyncResult",
    "build_site",
    "fingerprint_salt",
    "run_build",
    "sync_outputs",
]

Log = Callable[[str], None]


def _warn_on_stderr(line: str) -> None:
    print(line, file=sys.stderr)


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
    drafts_left_out: int = 0  # drafts not built (built with --drafts)
    future_left_out: int = 0  # posts dated in the future not built (built with --future)
    expired_left_out: int = 0  # posts past their expiryDate (no option builds them)
    # What the build cache saved: content files found in it neither by stat nor by content
    # (read and checked anew), of `sources`; Markdown renderings made (not from the cache);
    # outputs written from the render pack instead of rendered (see rendercache.py).
    parsed_files: int = 0
    sources: int = 0
    rendered_markdown: int = 0
    from_render_cache: int = 0

    @property
    def files(self) -> int:
        return self.written + self.unchanged

    def left_out(self) -> str | None:
        """`left out 2 drafts and 1 future-dated post (--drafts --future include them)`, with
        `, and 1 expired post (past its expiryDate)` after it; None: nothing left out."""
        parts, flags = [], []
        if self.drafts_left_out:
            parts.append(plural(self.drafts_left_out, "draft"))
            flags.append("--drafts")
        if self.future_left_out:
            parts.append(plural(self.future_left_out, "future-dated post"))
            flags.append("--future")
        expired = None
        if self.expired_left_out:
            its = "their" if self.expired_left_out > 1 else "its"
            expired = (f"{plural(self.expired_left_out, 'expired post')}"
                       f" (past {its} expiryDate)")
        if not parts:
            return None if expired is None else f"left out {expired}"
        them = "them" if self.drafts_left_out + self.future_left_out > 1 else "it"
        line = f"left out {' and '.join(parts)} ({' '.join(flags)} to include {them})"
        return line if expired is None else f"{line}, and {expired}"

    def cache_line(self) -> str:
        """`cache: 1 of 10,001 content files parsed, 1 rendered; 53,990 of 54,012 files from
        the render cache` (printed by CI builds, whose speed depends on the restored cache)."""
        return (f"cache: {self.parsed_files:,} of {plural(self.sources, 'content file')} parsed,"
                f" {self.rendered_markdown:,} rendered from Markdown; {self.from_render_cache:,}"
                f" of {plural(self.written, 'written file')} from the render cache")

    def summary(self) -> str:
        """One line, e.g. `built 1,204 files (12 written, 1,190 unchanged, 2 removed) from …`."""
        pages = f" and {plural(self.pages, 'page')}" if self.pages else ""
        return (
            f"built {plural(self.files, 'file')} ({self.written:,} written, {self.unchanged:,}"
            f" unchanged, {self.removed:,} removed) from {plural(self.posts, 'post')}"
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
             overrides: Iterable[Output], site: Site | None = None) -> list[Output]:
    """Merge generator outputs; a path claimed twice, or a file where another output needs a
    folder, is a content problem (a post's or page's URL is one fedipress makes itself, such
    as /tags/ or /actor.json/), named by the file that asks for it when there is one.

    `overrides` (the site's own content/static files) replace generated files of the same
    path on purpose: a hand-written robots.txt wins over the generated one.
    """
    chosen: dict[str, Output] = {}
    sources: dict[str, str] = {}
    clashes: list[tuple[str, str]] = []  # (path, what else claims it)
    for source, outputs in groups:
        before = len(chosen)
        chosen.update((out.path, out) for out in outputs)
        if len(chosen) - before != len(outputs):  # someone claimed a path twice: find it
            seen = dict(sources)
            for out in outputs:
                if out.path in seen:
                    clashes.append((out.path, "another output's file"))
                seen[out.path] = source
        sources.update(dict.fromkeys((out.path for out in outputs), source))
    for out in overrides:
        chosen[out.path] = out
    # A file on a path another output writes into ("actor.json" and "actor.json/index.html").
    folders: set[str] = set()
    for path in chosen:
        cut = path.rfind("/")
        while cut > 0 and (folder := path[:cut]) not in folders:
            folders.add(folder)
            cut = path.rfind("/", 0, cut)
    clashes += [(path, "the folder of other outputs") for path in folders & chosen.keys()]
    if clashes:
        raise ContentError(_clash_problems(clashes, site))
    return [chosen[path] for path in sorted(chosen)]


def _shown_path(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _clash_problems(clashes: list[tuple[str, str]], site: Site | None) -> list[Problem]:
    # output path -> (file, how it claims it, whether the path is its folder)
    owners: dict[str, tuple[str, str, bool]] = {}
    if site is not None:
        content_dir = site.config.content_dir
        for post in (*site.posts, *site.pages):
            file = _shown_path(content_dir / post.source, site.config.root)
            for path, how in ((post.path, "its URL"),
                              *((alias, "its alias") for alias in post.aliases)):
                owners.setdefault(path + "index.html", (file, how, False))
                owners.setdefault(path.rstrip("/"), (file, how, True))
    problems: list[Problem] = []
    for path, other in sorted(set(clashes)):
        file, how, folder = owners.get(path, ("content/static", "a file", False))
        if path not in owners and site is not None:
            static = site.config.content_dir / "static" / path
            if static.is_file():
                file, how = _shown_path(static, site.config.root), "this file"
        if folder:
            what = f"{how} needs {path!r} as a folder, but that is another output's file"
        else:
            what = f"{how} makes {path!r}, which is also {other}"
        problems.append(Problem(file, None, (
            f"{what}; give it another `slug:`, `url:` or alias (fedipress makes /tags/,"
            " /archive/, /page/N/, the feeds and the ActivityPub files itself)")))
    return problems


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
        output_dir: Path | None = None,
        warn: Log = _warn_on_stderr,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._environ = os.environ if environ is None else environ  # FEDIPRESS_SERVICE_URL..
        self._conversation_source: Any = None  # conversation_source.ConversationSource
        # Skipped broken files and content published not as written: `warn` gets them even
        # when `log` is silenced (--quiet prints errors only, and these are the site's errors).
        self.warn = warn
        # A preview folder inside the state folder (the dev server's local-URL build) in place
        # of config.output_dir, with build caches of its own (see _cache_dir).
        self._output_override = output_dir
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
        # object.json path -> fingerprint, so an edit recomputes only the edited posts'
        # documents for the federation manifest.
        self._object_fps: dict[str, str] = {}
        self._federation = FederationManifest()
        self._mentions: Mapping[str, str] = {}  # the store's mention cache, read in _plan
        self._page_memo: dict[tuple[object, ...], Any] = {}
        self._sources: tuple[Any, ...] = ()  # content.SourceFile of the last build
        self._source_paths: set[str] | None = None
        self._ap_memo: dict[tuple[object, ...], Any] = {}
        # The plan's Jinja environment and fingerprint salt, when made while the Markdown of
        # a cold build was rendered by workers (see _prepare_while_rendering).
        self._prepared: tuple[Any, str] | None = None
        self._left_out = (0, 0, 0)  # the last parse's drafts, future and expired posts
        self._parse_counts = (0, 0, 0)  # the last parse's files parsed, found, rendered
        self._progress_since = time.monotonic()  # set again when each build starts
        self.output_dir = self._check_output_dir()

    def _check_output_dir(self) -> Path:
        c = self.config
        if self._output_override is not None:
            return _check_preview_dir(self._output_override, c)
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
        self._progress_since = time.monotonic()  # progress bars show after a second of build
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
                from ..config import load_config

                self.config = load_config(self.config.config_file)
            self.output_dir = self._check_output_dir()
            self._manifest_loaded = False
            self._cache = None
        config = self.config
        now = now if now is not None else datetime.now(UTC)

        public_key = self._public_key()
        lap("keys")
        if not config.fediverse.enabled:
            self.log("fediverse.enabled is false: no ActivityPub documents written; the host"
                     " configuration answers 410 Gone for them")

        targeted = changed_paths is not None and self._cache is not None and not clean
        site, problems = self._parse(now, clean, targeted, changed)
        left_out = self._left_out
        parse_counts = self._parse_counts
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
            self._manifest = _load_manifest(self._manifest_file(), self.output_dir)
            self._manifest_loaded = True
        federate = public_key is not None and self.federation_manifest
        synced = sync_outputs(
            outputs, self.output_dir, self._manifest_file(), previous=self._manifest,
            clean=clean, workers=self.workers, progress=self.progress, log=self.log,
            trust_files=trust_files, locality=_locality(site),
            after_render=entry_from_object_json if federate else None,
            progress_since=self._progress_since,
            # A preview build never reads or writes it: its pages have another base URL.
            pack=None if self._output_override is not None else RenderPack(
                config.state_dir / "cache"),
            save_pack=self.ci,
        )
        self._manifest = synced.entries
        lap("write")
        if public_key is not None and federate:  # (public_key again: for the type checker)
            if clean:
                self._federation.forget(config.state_dir)  # --clean trusts no cache, this one
            self._write_federation_manifest(site, public_key, synced.by_products)
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
            drafts_left_out=left_out[0],
            future_left_out=left_out[1],
            expired_left_out=left_out[2],
            parsed_files=parse_counts[0],
            sources=parse_counts[1],
            rendered_markdown=parse_counts[2],
            from_render_cache=synced.from_pack,
        )

    def _cache_dir(self) -> Path | None:
        """A preview build's own folder for its build manifest, strays walk and parse cache, so
        it and a real build never evict each other's work. None: the usual state/cache."""
        if self._output_override is None:
            return None
        key = hashlib.sha256(str(self.output_dir).encode()).hexdigest()[:12]
        return self.config.state_dir / "cache" / f"preview-{key}"

    def _manifest_file(self) -> Path:
        folder = self._cache_dir()
        return _manifest_path(self.config) if folder is None else folder / "build-manifest.marshal"

    # -- phases --

    def _write_federation_manifest(self, site: Site, public_key: bytes,
                                   rendered: Mapping[str, object] | None = None) -> None:
        # A hook: devserver's preview builder overrides it to write nothing.
        self._federation.write(
            site, public_key, state_dir=self.config.state_dir, key=self._federation_key,
            object_fps=self._object_fps, mentions=self._mentions, written=self._manifest,
            output_dir=self.output_dir, workers=self.workers, rendered=rendered,
            flags={"drafts": self.drafts, "future": self.future},
        )

    def _public_key(self) -> bytes | None:
        if not self.config.fediverse.enabled:
            # No key, no ActivityPub documents, no federation manifest: the blog has left.
            return None
        try:
            from ..federation.keys import ensure_public_key
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
            cache_dir = self._cache_dir()
            self._cache = content.ParseCache.for_site(self.config) if cache_dir is None \
                else content.ParseCache(cache_dir)
            if not clean:
                # Loading makes ~100,000 objects and no cycles: no collector passes meanwhile.
                enabled = gc.isenabled()
                gc.disable()
                try:
                    why = self._cache.load()
                finally:
                    if enabled:
                        gc.enable()
                if why is not None:
                    self.log(f"note: {why}")
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
        bars: list[Progress] = []

        def progress(rendered: int, files: int) -> None:
            if not bars:  # (the line shows once the build has run for a second)
                bars.append(build_progress(self.progress, "parsing", files,
                                           self._progress_since))
            bars[0].update(rendered)

        parsed_before = self._cache.parsed_files
        try:
            result = content.load_site(
                self.config, now=now, drafts=self.drafts, future=self.future,
                keep_going=self.keep_going, cache=self._cache, workers=workers,
                sources=self._known_sources(changed) if targeted else None,
                while_rendering=self._prepare_while_rendering,
                progress=progress if self.progress else None,
            )
        finally:
            for bar in bars:
                bar.close()
            if pause:
                gc.enable()
        if result.sources != self._sources:
            self._sources, self._source_paths = result.sources, None
        self._left_out = (result.drafts_left_out, result.future_left_out,
                          result.expired_left_out)
        self._parse_counts = (self._cache.parsed_files - parsed_before, len(result.sources),
                              result.rendered)
        problems = tuple(result.problems)
        if problems and not self.keep_going:
            raise ContentError(problems)
        # The dev server's targeted rebuilds keep the cache in memory only: rewriting it (the
        # Markdown of every post) would cost more than the rebuild; it is looked up by content
        # and stat, so the older file on disk is never wrong, only less complete.
        self._cache.save(write=not targeted)
        for problem in problems:
            self.warn(problem.as_warning())
        # Content published not as written, or not at all (Markdown in a folder fedipress
        # does not publish): printed even with --quiet, like the skipped broken files.
        for warning in result.warnings:
            self.warn(warning.as_warning())
        return result.site, problems

    def _environment(self) -> tuple[Any, str]:
        """The plan's Jinja environment and the fingerprint salt of config and theme."""
        from . import themes

        env = themes.make_environment(self.config)
        # Compiled templates kept between processes (keyed by name, checked against the
        # source): a fresh process rendering a few pages spent ~0.06 s compiling them.
        import jinja2

        env.bytecode_cache = jinja2.FileSystemBytecodeCache(
            str(_ensure_dir(self.config.state_dir / "cache" / "templates")))
        return env, fingerprint_salt(self.config, themes.theme_fingerprint(env))

    def _prepare_while_rendering(self) -> None:
        """While workers render a cold build's Markdown, this process would only wait: it
        imports what the plan needs and compiles every template now. The render workers
        forked later inherit the compiled templates instead of each compiling its own."""
        self._prepared = None
        try:
            from ..activitypub import site  # noqa: F401
            from . import feeds, render  # noqa: F401 - for the plan, imported while idle

            env, salt = self._environment()
        except Exception:  # noqa: BLE001 - the plan does this again and reports any error
            return
        for name in env.list_templates():
            try:
                env.get_template(name)
            except Exception:  # noqa: BLE001 - a broken template fails where it is used,
                continue  # with its file and line (themes.render_template)
        self._prepared = (env, salt)

    def _plan(self, site: Site, public_key: bytes | None) -> list[Output]:
        from . import content, feeds, render, themes

        config = self.config
        prepared, self._prepared = self._prepared, None
        env, salt = prepared if prepared is not None else self._environment()
        # Fingerprints by their inputs, kept between this builder's builds: an unchanged post
        # costs a dict lookup per output. Cleared when it outgrows the site (old versions).
        limit = 8 * (len(site.posts) + len(site.pages)) + 1000
        for memo in (self._page_memo, self._ap_memo):
            if len(memo) > limit:
                memo.clear()
        # Counts, mentions and the conversation: from the store, read-only, if there is one; the
        # conversation from the service when FEDIPRESS_SERVICE_URL is set (pages and objects).
        state, conversations, avatars = None, None, list[Output]()
        if public_key is not None:
            from ..store import site_store_location
            from ..store.snapshot import read_build_state
            from .conversation_source import ConversationSource, build_conversations

            store = site_store_location(config)  # a SQLite file or a postgresql:// URL
            state = read_build_state(store, config.url("actor.json"))
            self._conversation_source = self._conversation_source or ConversationSource(
                self._environ)
            conversations = build_conversations(
                config, state, isinstance(store, str) or store.is_file(),
                self._conversation_source, ci=self.ci, log=self.log, warn=self.warn)
            if conversations is not None and config.fediverse.cache_avatars:  # local copies
                from ..federation.avatars import avatars_for_build
                conversations, avatars = avatars_for_build(conversations, config,
                                                           self._environ, note=self.log)
        groups: list[tuple[str, Iterable[Output]]] = [
            ("render", render.plan_pages(site, env, fingerprint_salt=salt,
                                         memo=self._page_memo, conversations=conversations)),
            ("feeds", feeds.plan_feeds(site, fingerprint_salt=salt)), ("avatars", avatars),
        ]
        if state is not None and public_key is not None:
            try:
                from ..activitypub.site import plan_activitypub
            except ImportError:
                pass
            else:
                self._mentions = state.mentions
                ap = plan_activitypub(
                    site, public_key, fingerprint_salt=salt,
                    follower_count=state.follower_count,
                    interaction_counts=state.interaction_counts, mentions=state.mentions,
                    memo=self._ap_memo, conversations=state.conversations
                    if conversations is None else conversations)
                groups.append(("activitypub", ap))
                self._object_fps = {o.path: o.fingerprint for o in ap
                                    if o.path.endswith("/object.json")}
                # The federation manifest is made of the same actor and object documents, so
                # their fingerprints (in plan order, which follows the site) say whether it
                # needs computing again.
                manifest_fps = [o.fingerprint for o in ap if o.path == "actor.json"]
                manifest_fps += self._object_fps.values()
                self._federation_key = hashlib.sha256(
                    "\0".join(manifest_fps).encode()).hexdigest()
        try:
            from ..federation.hosting import plan_host_files
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
        static = content.static_files(config, site)
        self._warn_federation_overrides(static, generated)
        user_files = [_file_output(rel, src) for rel, src in static]
        outputs = _collect(listed, user_files, site)
        self._warn_missing_images(site, outputs)
        return outputs

    def _warn_missing_images(self, site: Site, outputs: list[Output]) -> None:
        """An image of the site's own (a cover or inline) that no output provides is a
        broken image on the page, in the feeds and in the ActivityPub attachment."""
        base = self.config.base_url
        paths: set[str] | None = None
        for post in (*site.posts, *site.pages):
            for image in ((post.image,) if post.image else ()) + post.images:
                if not image.url.startswith(base):
                    continue
                rel = unquote(image.url[len(base):].split("#", 1)[0].split("?", 1)[0])
                if paths is None:
                    paths = {out.path for out in outputs}
                if rel not in paths and rel + "index.html" not in paths:
                    shown = _shown_path(self.config.content_dir / post.source, self.config.root)
                    self.log(f"{shown}: warning: image {image.url} is not part of the site;"
                             " put the file beside the post (a bundle) or under"
                             " content/static/")

    def _warn_federation_overrides(self, static: list[tuple[str, Path]],
                                   generated: set[str]) -> None:
        """A copied file wins over a generated one of the same path, on purpose (a
        hand-written robots.txt). For what other servers read to follow the blog, that is
        almost always a mistake (a bundle's object.json, a stray actor.json): say so."""
        from .contenttypes import is_activitypub_path

        for rel, source in static:
            if rel in generated and (is_activitypub_path(rel) or rel.startswith(".well-known/")
                                     or rel.startswith("nodeinfo/")):
                shown = _shown_path(source, self.config.root)
                self.log(f"{shown}: warning: replaces the generated {rel}, which other servers"
                         " read to follow the blog; remove it unless you mean to")

def _locality(site: Site) -> Callable[[str], tuple[int, str]]:
    """Sort key for splitting rendering over processes. Its first element is a group that
    render blocks never split: each outbox page with the posts it embeds (their object
    documents are then built once, in one process), in outbox order; every other output
    (list pages, feeds) is a group of its own, after them."""
    try:
        from ..activitypub import documents as d
    except ImportError:
        return lambda path: (0, path)
    size = d.OUTBOX_PAGE_SIZE
    group = {post.path: i // size for i, post in enumerate(d.federated_posts(site))}
    rest = len(group) // size + 1

    def key(path: str) -> tuple[int, str]:
        folder, _, name = path.rpartition("/")
        if folder == "outbox" and name.startswith("page-") and name.endswith(".json"):
            number = name[5:-5]
            if number.isdigit():
                return (int(number) - 1, path)
        found = group.get(folder + "/")
        if found is not None:
            return (found, path)
        # A stable number of its own (crc32 of the path; a clash only joins two groups).
        return (rest + zlib.crc32(path.encode()), path)

    return key


def _check_preview_dir(folder: Path, config: SiteConfig) -> Path:
    """The resolved preview folder: a folder of its own directly inside the state folder
    (never published), so the deletions of a build there cannot reach anything else."""
    out = folder.resolve()
    state = config.state_dir.resolve()
    if out.parent != state or out.name in ("cache", "") or out.name.startswith("."):
        raise OutputDirError(f"{config.config_file}: preview folder {str(folder)!r} must be a"
                             f" folder of its own directly inside {state}")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{config.config_file}: preview folder {out} is not a folder")
    return out


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


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


@dataclass(frozen=True)
class BuildOptions:
    """`fedipress build`'s choices. `progress` draws the terminal progress bar on stderr (the
    caller decides: only on a terminal, never under CI)."""

    drafts: bool = False
    future: bool = False
    keep_going: bool = False
    clean: bool = False
    progress: bool = False
    ci: bool = False


@dataclass(frozen=True)
class BuildRun:
    """What `run_build` did. `builder` still holds the loaded site: a caller about to end the
    process can exit while holding this, and skip freeing it object by object (~0.09 s of a
    one-edit rebuild at 10,000 posts, for memory the operating system takes back at once)."""

    result: BuildResult
    builder: Builder = field(repr=False, compare=False)


def run_build(config: SiteConfig, options: BuildOptions, *, log: Log,
              warn: Log = _warn_on_stderr,
              environ: Mapping[str, str] | None = None) -> BuildRun:
    """`fedipress build`: build `config`'s site; progress and notes go to `log`, warnings
    about the content (`file:LINE: warning: ...`) to `warn`.

    Broken content without `keep_going` raises ContentError; with it, each broken file is
    a warning and the rest is built."""
    builder = Builder(config, drafts=options.drafts, future=options.future,
                      keep_going=options.keep_going, log=log, progress=options.progress,
                      ci=options.ci, warn=warn, environ=environ)
    result = builder.build(clean=options.clean)
    slower = speedups_off_reason()
    if slower:
        # Never silent: the pages are right, but a Markdown release fedipress was not tested
        # with costs build time, and the author should know why and what to do.
        log(f"note: {slower}; the pages are the same, builds are slower"
            f" (a newer fedipress may support this Markdown release)")
    return BuildRun(result=result, builder=builder)
