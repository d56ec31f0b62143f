"""content/ -> Site: the only module that reads the content directory.

Layout it understands:

    content/posts/**.md                   a post (nested folders are fine)
    content/posts/**/<name>/index.md      a post "bundle": files beside index.md are published
                                          next to the post's page (images, downloads)
    content/pages/**.md, .../index.md     a page at /<slug>/ (bundles work the same)
    content/static/**                     copied as-is to the root of the output

Every file is read once; front matter is checked key by key (frontmatter.py) and every mistake
in every file is collected as a `Problem` naming `content/...:LINE`, so one run shows them all.
Markdown rendering (markup.py) is the costly part: it is cached by content (`ParseCache`,
parsecache.py) and the misses can be spread over several processes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import markdown
import pygments  # type: ignore[import-untyped]

from .config import SiteConfig
from .errors import ContentError, Problem
from .frontmatter import (
    _PARSE_VERSION,
    _display,
    _parse,
    _Parsed,
)
from .markup import MARKUP_VERSION, Rendered, render_markdown
from .model import Post, Site
from .parsecache import ParseCache
from .slug import publishable_name

__all__ = [
    "LoadResult",
    "ParseCache",
    "SourceFile",
    "discover",
    "load_site",
    "static_files",
]

_MARKDOWN_SUFFIXES = (".md", ".markdown")
# A Post taken whole from the parse cache: (post, file as errors name it, output path line).
_Hit = tuple[Post, str, int]

@dataclass(frozen=True)
class SourceFile:
    """One file under content/. `source` is relative to the content directory (posix)."""

    kind: Literal["post", "page", "static"]
    source: str
    path: Path
    bundle_files: tuple[str, ...] = ()  # bundles only: files beside index.md, relative to it


@dataclass(frozen=True)
class LoadResult:
    site: Site
    problems: tuple[Problem, ...]  # broken files skipped (only non-empty with keep_going)
    sources: tuple[SourceFile, ...] = ()  # the posts and pages found (for `sources=` next time)
    drafts_left_out: int = 0  # drafts not built (no `drafts`), so the build can say so
    future_left_out: int = 0  # posts dated after `now` not built (no `future`)


# --------------------------------------------------------------------------------------------
# Discovery


def _content_dir(config: SiteConfig) -> Path:
    return config.root / config.content_dir


def _hidden(name: str) -> bool:
    # Dotfiles, editor backups and lock files are never content.
    return name.startswith((".", "#", "~")) or name.endswith(("~", ".swp", ".tmp"))


def _walk(top: Path) -> Iterable[tuple[Path, list[str], list[str]]]:
    """os.walk's top-down (folder, subfolders, files), sorted, without hidden names. Files are
    regular files (through symlinks) with UTF-8 names: a dangling link, a socket or a FIFO
    (which would block a read forever) is passed over, and so is a name no URL can carry.
    Symlinked folders are not followed, as os.walk does not."""
    pending = [str(top)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = [e for e in listing if not _hidden(e.name) and publishable_name(e.name)]
        except OSError:
            continue
        dirnames = sorted(e.name for e in entries if _is_dir(e))
        filenames = sorted(e.name for e in entries if _is_file(e))
        yield Path(folder), dirnames, filenames
        # (a caller may prune dirnames in place, as with os.walk)
        pending.extend(os.path.join(folder, d) for d in reversed(dirnames)
                       if not os.path.islink(os.path.join(folder, d)))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # follows a symlink; False for sockets, FIFOs, devices
    except OSError:
        return False



def _discover_documents(content: Path, kind: Literal["post", "page"]) -> list[SourceFile]:
    top = content / ("posts" if kind == "post" else "pages")
    found: list[SourceFile] = []
    if not top.is_dir():
        return found
    for directory, dirnames, filenames in _walk(top):
        if directory != top and "index.md" in filenames:
            # A bundle: everything below it belongs to this post, including subfolders.
            resources = []
            for sub, _dirs, files in _walk(directory):
                for name in files:
                    rel = (sub / name).relative_to(directory).as_posix()
                    if rel != "index.md" and not name.endswith(_MARKDOWN_SUFFIXES):
                        resources.append(rel)
            index = directory / "index.md"
            found.append(
                SourceFile(
                    kind, index.relative_to(content).as_posix(), index, tuple(sorted(resources))
                )
            )
            dirnames[:] = []
            continue
        # Plain string joins: pathlib's relative_to per file is most of a walk of 10,000 posts.
        prefix = directory.relative_to(content).as_posix() + "/"
        folder = str(directory) + os.sep
        for name in filenames:
            if name.endswith(_MARKDOWN_SUFFIXES):
                found.append(SourceFile(kind, prefix + name, Path(folder + name)))
    return found


def discover(config: SiteConfig) -> list[SourceFile]:
    """Posts, pages and static files under the content directory, in a stable order."""
    content = _content_dir(config)
    files = _discover_documents(content, "post") + _discover_documents(content, "page")
    static = content / "static"
    if static.is_dir():
        for directory, _dirs, filenames in _walk(static):
            for name in filenames:
                path = directory / name
                files.append(SourceFile("static", path.relative_to(content).as_posix(), path))
    return files


# --------------------------------------------------------------------------------------------
# Loading


def _render_chunk(jobs: list[tuple[str, str, str]]) -> list[Rendered]:
    return [render_markdown(body, page_url=u, site_url=s) for body, u, s in jobs]


# Files rendered per job handed to a worker: small enough that the workers finish within a
# few milliseconds of each other, large enough that passing jobs around stays cheap.
_RENDER_BATCH = 32


class _Renderer:
    """Renders the Markdown of files as their front matter is read (`add`), in worker
    processes once there are enough of them: the workers start on the first batch while
    this process still reads the rest, instead of after all front matter is parsed."""

    def __init__(self, workers: int, site_url: str, cache: ParseCache | None,
                 wanted: Callable[[_Parsed], bool],
                 while_rendering: Callable[[], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.workers, self.site_url, self.cache = workers, site_url, cache
        self.wanted, self.while_rendering = wanted, while_rendering
        self.progress = progress
        self._reported = 0
        self._pending: list[_Parsed] = []
        self._submitted: list[tuple[list[_Parsed], Any]] = []  # (files, their Future)
        self._pool: Any = None

    def add(self, parsed: _Parsed) -> None:
        """Queue a freshly parsed file (one whose rendering may be in the cache) unless the
        build leaves it out (a draft, a future post). One whose path clashes with another
        file's is rendered for nothing: rare, and an error anyway."""
        if not self.wanted(parsed):
            return
        if self.cache is not None and self.cache.get(parsed.key) is not None:
            return
        self._pending.append(parsed)
        if self.workers > 1 and len(self._pending) >= _RENDER_BATCH:
            self._submit()

    def _submit(self) -> None:
        if self._pool is None:
            # Imported here: only a parse of many files uses it (~13 ms of a rebuild).
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        batch, self._pending = self._pending, []
        jobs = [(p.body, p.fields["url"], self.site_url) for p in batch]
        self._submitted.append((batch, self._pool.submit(_render_chunk, jobs)))
        self._report(sum(len(b) for b, future in self._submitted if future.done()))

    def results(self) -> dict[int, Rendered]:
        """Every queued file's rendering by id() of its _Parsed; the rest of the queue is
        rendered here unless a pool is already running."""
        if self._pending and self._pool is not None:
            self._submit()
        if self._pool is not None and self.while_rendering is not None:
            self.while_rendering()  # this process would only wait for the workers
        done: dict[int, Rendered] = {}
        try:
            for batch, future in self._submitted:
                for p, r in zip(batch, future.result(), strict=True):
                    done[id(p)] = r
                self._report(len(done))
        finally:
            self.close()
        for p, r in zip(self._pending, _render_chunk(
                [(p.body, p.fields["url"], self.site_url) for p in self._pending]), strict=True):
            done[id(p)] = r
        self._pending = []
        return done

    def _report(self, rendered: int) -> None:
        # Batches finish out of order: the count of those collected so far can be below an
        # earlier count of those finished. What is shown never goes back.
        if self.progress is not None and rendered > self._reported:
            self._reported = rendered
            self.progress(rendered)

    def close(self) -> None:
        """Stop the workers (also when loading fails: nothing waits for their work)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._submitted = []


def _settings(config: SiteConfig) -> str:
    """What a file's Post depends on besides the file: the post cache key. Python-Markdown's
    and Pygments' versions are here (not only in the rendering key) because a cached Post
    carries its rendering."""
    text = (f"{_PARSE_VERSION}\0{MARKUP_VERSION}\0{markdown.__version__}\0"
            f"{pygments.__version__}\0{config!r}")
    return hashlib.sha256(text.encode()).hexdigest()


def _parse_all(
    config: SiteConfig, sources: Iterable[SourceFile], cache: ParseCache | None = None,
    on_parsed: Callable[[_Parsed], None] | None = None,
) -> tuple[list[_Parsed | _Hit], list[Problem]]:
    """Each file's finished Post from the cache (a `_Hit`) when its stat is unchanged, else
    its checked front matter (`_Parsed`, from the cache or the file), also handed to
    `on_parsed` as soon as it is known."""
    parsed: list[_Parsed | _Hit] = []
    problems: list[Problem] = []
    settings = _settings(config) if cache is not None else ""
    stat = os.stat
    for sf in sources:
        try:
            # Stat before reading: an edit in between leaves a stale stat in the cache, which
            # only means parsing the file again next time.
            st = stat(sf.path)
            if cache is not None:
                hit = cache.cached_post(sf, st, settings)
                if hit is not None:
                    parsed.append(hit)
                    continue
                checked = cache.parsed(sf, st, settings)
                if checked is not None:
                    parsed.append(checked)
                    if on_parsed is not None:
                        on_parsed(checked)
                    continue
            raw = sf.path.read_bytes()
        except OSError as exc:
            problems.append(Problem(_display(config, sf.path), None, f"cannot read: {exc}"))
            continue
        result = _parse(sf, raw, config)
        if isinstance(result, list):
            problems.extend(result)
        else:
            parsed.append(result)
            if on_parsed is not None:
                on_parsed(result)
            if cache is not None:
                cache.put_parsed(result, st, settings)
    return parsed, problems


def load_site(
    config: SiteConfig,
    *,
    now: datetime,
    drafts: bool = False,
    future: bool = False,
    keep_going: bool = False,
    cache: ParseCache | None = None,
    workers: int = 1,
    sources: Sequence[SourceFile] | None = None,
    while_rendering: Callable[[], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Read every post and page and render its Markdown.

    `sources` (the previous result's, when the caller knows no file was added, removed or
    moved since) saves walking the content folder; each file is still stat'ed.
    `while_rendering` is called once all front matter is read while worker processes still
    render Markdown (only when they do): work the caller needs next can run then.
    `progress(rendered, files)` hears how many files the workers have rendered, of all the
    posts and pages found (only when workers render: otherwise loading is quick).

    Drafts are included only with `drafts`, posts dated after `now` only with `future`.
    Every broken file becomes a Problem; unless `keep_going`, any problem raises
    ContentError listing all of them, otherwise the broken files are skipped and returned.
    """
    if sources is None:
        sources = [sf for sf in discover(config) if sf.kind != "static"]
    def wanted(p: _Parsed) -> bool:
        f = p.fields
        return _published(f["draft"], f["kind"], f["date"], now=now, drafts=drafts,
                          future=future)

    count = len(sources)
    renderer = _Renderer(workers, config.base_url, cache, wanted, while_rendering,
                         None if progress is None else lambda done: progress(done, count))
    try:
        return _load(config, sources, renderer, now=now, drafts=drafts, future=future,
                     keep_going=keep_going, cache=cache)
    finally:
        renderer.close()


def _published(draft: bool, kind: str, date: datetime, *, now: datetime, drafts: bool,
               future: bool) -> bool:
    """Whether this build includes a file: drafts only with `drafts`, posts dated after
    `now` only with `future`."""
    return (drafts or not draft) and (future or kind != "post" or date <= now)


def _load(config: SiteConfig, sources: Sequence[SourceFile], renderer: _Renderer, *,
          now: datetime, drafts: bool, future: bool, keep_going: bool,
          cache: ParseCache | None) -> LoadResult:
    loaded, problems = _parse_all(config, sources, cache, renderer.add)

    # Two files, or a file and an alias, must not claim the same output folder.
    owners: dict[str, str] = {}
    unique: list[_Parsed | _Hit] = []
    drafts_left_out = future_left_out = 0
    for item in loaded:
        if isinstance(item, tuple):  # a cached Post
            post, file, path_line = item
            draft, kind, date = post.draft, post.kind, post.date
            claimed = [post.path, *post.aliases]
        else:
            fields, file, path_line = item.fields, item.file, item.path_line
            draft, kind, date = fields["draft"], fields["kind"], fields["date"]
            claimed = [fields["path"], *fields["aliases"]]
        if not _published(draft, kind, date, now=now, drafts=drafts, future=future):
            if draft and not drafts:
                drafts_left_out += 1
            else:
                future_left_out += 1
            continue
        clash = next((c for c in claimed if c in owners), None)
        if clash is not None:
            problems.append(
                Problem(
                    file,
                    path_line,
                    f"output path {clash} is also used by {owners[clash]}; "
                    f"give one of them a different `slug:`",
                )
            )
            continue
        for c in claimed:
            owners[c] = file
        unique.append(item)

    if problems and not keep_going:
        raise ContentError(problems)

    # Files not taken whole from the cache: their rendering by key (cached when only the
    # stat or the front matter changed), else what the renderer made of them.
    fresh = [p for p in unique if not isinstance(p, tuple)]
    made_now = renderer.results()
    rendered: dict[int, Rendered] = {}
    for p in fresh:
        hit = made_now.get(id(p))
        if hit is None:  # the renderer passed it over for its cached rendering
            assert cache is not None
            hit = cache.get(p.key)
            assert hit is not None
        rendered[id(p)] = hit
    unrenderable = {id(p) for p in fresh if rendered[id(p)].problem}
    if unrenderable:
        for p in fresh:
            if id(p) in unrenderable:
                problems.append(Problem(p.file, None, rendered[id(p)].problem))
        if not keep_going:
            raise ContentError(problems)
        unique = [item for item in unique if id(item) not in unrenderable]
        fresh = [p for p in fresh if id(p) not in unrenderable]
    made: dict[int, Post] = {}
    for p in fresh:
        made[id(p)] = _make_post(p, rendered[id(p)], cache)

    posts: list[Post] = []
    pages: list[Post] = []
    for item in unique:
        post = item[0] if isinstance(item, tuple) else made[id(item)]
        (posts if post.kind == "post" else pages).append(post)
    posts.sort(key=lambda post: post.slug)
    posts.sort(key=lambda post: post.date, reverse=True)
    pages.sort(key=lambda page: page.path)
    site = Site(config=config, posts=tuple(posts), pages=tuple(pages))
    return LoadResult(site=site, problems=tuple(problems), sources=tuple(sources),
                      drafts_left_out=drafts_left_out, future_left_out=future_left_out)


def _make_post(p: _Parsed, r: Rendered, cache: ParseCache | None) -> Post:
    # The fields and the rendering (named by its key) are all a Post is made of.
    fingerprint = hashlib.sha256(f"{p.fields_hash}\0{p.key}".encode()).hexdigest()
    same = cache.same_post(p.key, fingerprint) if cache is not None else None
    summary = p.fields["summary"]
    post = same if same is not None else Post(**dict(
        p.fields,
        html=r.html,
        summary_html=f"<p>{_escape(summary)}</p>" if summary else r.summary_html,
        images=r.images,
        toc_html=r.toc_html,
        word_count=r.word_count,
        reading_minutes=r.reading_minutes,
        mentions=r.mentions,
        has_more=r.has_more,
        fingerprint=fingerprint,
    ))
    if cache is not None:
        cache.put_post(post, r)
    return post


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def static_files(config: SiteConfig, site: Site | None = None) -> list[tuple[str, Path]]:
    """(output-relative path, source file) for everything copied verbatim.

    content/static/images/a.svg -> images/a.svg; a bundle's content/posts/x/tomatoes.svg ->
    <post path>tomatoes.svg. Pass the loaded `site` so that only published posts' bundle
    files are listed; without it every bundle's files are (front matter is read, not rendered).
    """
    content = _content_dir(config)
    out: list[tuple[str, Path]] = []
    bundles: list[SourceFile] = []
    if site is not None:
        # The site knows its bundles: only content/static needs walking (not every post).
        static = content / "static"
        if static.is_dir():
            for directory, _dirs, filenames in _walk(static):
                for name in filenames:
                    path = directory / name
                    out.append((path.relative_to(static).as_posix(), path))
    else:
        for sf in discover(config):
            if sf.kind == "static":
                out.append((sf.source.split("/", 1)[1], sf.path))
            elif sf.bundle_files:
                bundles.append(sf)
    if site is not None:
        for post in (*site.posts, *site.pages):
            if not post.bundle_files:
                continue
            folder = (content / post.source).parent
            out.extend((post.path + rel, folder / rel) for rel in post.bundle_files)
    else:
        parsed, _problems = _parse_all(config, bundles)
        for p in parsed:
            if isinstance(p, tuple):
                continue  # (no cache here: every file is parsed)
            folder = p.source.path.parent
            out.extend((p.fields["path"] + rel, folder / rel) for rel in p.source.bundle_files)
    return sorted(out)
