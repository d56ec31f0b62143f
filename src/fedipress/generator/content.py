"""content/ -> Site: the only module that reads the content directory.

Layout it understands:

    content/posts/**.md                   a post (nested folders are fine)
    content/posts/**/<name>/index.md      a post "bundle": files beside index.md are published
                                          next to the post's page (images, downloads)
    content/pages/**.md, .../index.md     a page at /<slug>/ (bundles work the same)
    content/*.md, content/<name>/index.md a page too (Hugo keeps `about.md` at the top)
    content/static/**                     copied as-is to the root of the output

Markdown found anywhere else (another top-level folder such as Hugo's `post/`, a Hugo
`_index.md`, a Jekyll `index.md` home page) is not published and is reported as a warning.

Every file is read once; front matter is checked key by key (frontmatter.py) and every mistake
in every file is collected as a `Problem` naming `content/...:LINE`, so one run shows them all.
Markdown rendering (markup.py) is the costly part: it is cached by content (`ParseCache`,
parsecache.py) and the misses can be spread over several processes.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import markdown
import pygments  # type: ignore[import-untyped]

from ..config import SiteConfig
from ..errors import ContentError, Problem
from ..model import Post, Site
from .frontmatter import _PARSE_VERSION, _display, _parse
from .markup import MARKUP_VERSION, Rendered, media_type_of, render_markdown
from .migration_syntax import MARKER, SYNTAX_VERSION, Note, preprocess, resolve
from .parsecache import ParseCache
from .slug import publishable_name
from .sources import SourceFile, _Parsed

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
class LoadResult:
    site: Site
    problems: tuple[Problem, ...]  # broken files skipped (only non-empty with keep_going)
    sources: tuple[SourceFile, ...] = ()  # the posts and pages found (for `sources=` next time)
    drafts_left_out: int = 0  # drafts not built (no `drafts`), so the build can say so
    future_left_out: int = 0  # posts dated after `now` not built (no `future`)
    expired_left_out: int = 0  # posts past their expiryDate (never built)
    # Built anyway, but not as written: a Hugo shortcode or Jekyll tag left as text, a
    # reference to no post, Markdown in a folder that is not published (`file:LINE`).
    warnings: tuple[Problem, ...] = ()
    rendered: int = 0  # files whose Markdown was rendered by this load (not from the cache)


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



# Hugo's list-page text (`_index.md`: the home page, a section's page); at the top of the
# content folder, `index.md` is Jekyll's home page. fedipress makes those pages itself.
_HOME_TEXT = ("fedipress's home page shows `title` and `description` from site.yaml above"
              " the latest posts; move any text of it there or into a page under"
              " content/pages/, and remove the file")
_SECTION_TEXT = ("fedipress lists posts on the home page, the tag pages and the archive"
                 " itself; move any text of it into a page under content/pages/, and remove"
                 " the file")
# Top-level folders with a meaning of their own (everything else holding Markdown is reported).
_KNOWN_FOLDERS = frozenset({"posts", "pages", "static"})


def _discover_documents(content: Path, kind: Literal["post", "page"],
                        warnings: list[Problem], shown: Callable[[Path], str]) -> list[SourceFile]:
    top = content / ("posts" if kind == "post" else "pages")
    found: list[SourceFile] = []
    if not top.is_dir():
        return found
    for directory, dirnames, filenames in _walk(top):
        if "_index.md" in filenames:
            warnings.append(Problem(shown(directory / "_index.md"), 1,
                                    "a Hugo section page (_index.md) is not published: "
                                    + _SECTION_TEXT))
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
            if name.endswith(_MARKDOWN_SUFFIXES) and name != "_index.md":
                found.append(SourceFile(kind, prefix + name, Path(folder + name)))
    return found


def _discover_top(content: Path, warnings: list[Problem],
                  shown: Callable[[Path], str]) -> list[SourceFile]:
    """Pages at the top of the content folder, as Hugo keeps them (`content/about.md`,
    `content/about/index.md`); other top-level folders holding Markdown are reported."""
    found: list[SourceFile] = []
    if not content.is_dir():
        return found
    _top, dirnames, filenames = next(iter(_walk(content)), (content, [], []))
    for name in filenames:
        if not name.endswith(_MARKDOWN_SUFFIXES):
            continue
        path = content / name
        if name in ("_index.md", "index.md"):
            what = "Hugo's home page text" if name == "_index.md" else "a home page (index.md)"
            warnings.append(Problem(shown(path), 1,
                                    f"{what} is not published: {_HOME_TEXT}"))
            continue
        if not _has_front_matter(path):
            # A README or notes kept beside the content (these were never published): a
            # page needs a title, so a file without front matter is not taken for one.
            warnings.append(Problem(shown(path), 1, "not published: a page here needs front"
                                    " matter (a --- block with a `title:`) at its top"))
            continue
        found.append(SourceFile("page", name, path))
    for folder in dirnames:
        if folder in _KNOWN_FOLDERS:
            continue
        directory = content / folder
        index = directory / "index.md"
        if index.is_file():
            # A Hugo leaf bundle at the top (content/about/index.md): a page with its files.
            resources = tuple(sorted(
                (sub / f).relative_to(directory).as_posix()
                for sub, _dirs, files in _walk(directory) for f in files
                if not f.endswith(_MARKDOWN_SUFFIXES)))
            found.append(SourceFile("page", f"{folder}/index.md", index, resources))
            continue
        count = sum(1 for _sub, _dirs, files in _walk(directory)
                    for f in files if f.endswith(_MARKDOWN_SUFFIXES))
        if count:
            files = "file is" if count == 1 else "files are"
            warnings.append(Problem(
                shown(directory) + "/", None,
                f"{count} Markdown {files} not published: posts belong in content/posts/ and"
                " pages in content/pages/ (or directly in content/); move them there"))
    return found


def _has_front_matter(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            first = file.readline(64)
    except OSError:
        return True  # (reading it again as a page reports why it cannot be read)
    return first.removeprefix(b"\xef\xbb\xbf").rstrip() in (b"---", b"+++")


def discover(config: SiteConfig, warnings: list[Problem] | None = None) -> list[SourceFile]:
    """Posts, pages and static files under the content directory, in a stable order.
    What is found but not published (Hugo's `_index.md`, Markdown in a folder of no meaning
    here) is added to `warnings`."""
    content = _content_dir(config)
    noted: list[Problem] = [] if warnings is None else warnings
    def shown(path: Path) -> str:
        return _display(config, path)

    files = (_discover_documents(content, "post", noted, shown)
             + _discover_documents(content, "page", noted, shown)
             + _discover_top(content, noted, shown))
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
    # Hugo shortcodes and Jekyll tags first: Markdown would mangle them (migration_syntax).
    return [render_markdown(preprocess(body), page_url=u, site_url=s) for body, u, s in jobs]


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
    text = (f"{_PARSE_VERSION}\0{MARKUP_VERSION}\0{SYNTAX_VERSION}\0{markdown.__version__}\0"
            f"{pygments.__version__}\0{config!r}")
    return hashlib.sha256(text.encode()).hexdigest()


def _parse_all(
    config: SiteConfig, sources: Iterable[SourceFile], cache: ParseCache | None = None,
    on_parsed: Callable[[_Parsed], None] | None = None,
) -> tuple[list[_Parsed | _Hit], list[Problem]]:
    """Each file's finished Post from the cache (a `_Hit`) when its stat or else its bytes
    are unchanged, else its checked front matter (`_Parsed`, from the cache or the file),
    also handed to `on_parsed` as soon as it is known."""
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
        if cache is not None:
            # Another stat, maybe the same bytes: a fresh clone (every mtime is the checkout
            # time) with the cache CI restored finds its files by content.
            digest = hashlib.sha256(raw).hexdigest()
            hit = cache.cached_post(sf, st, settings, digest)
            if hit is not None:
                parsed.append(hit)
                continue
            checked = cache.parsed(sf, st, settings, digest)
            if checked is not None:
                parsed.append(checked)
                if on_parsed is not None:
                    on_parsed(checked)
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

    Drafts are included only with `drafts`, posts dated after `now` only with `future`;
    posts whose expiryDate is `now` or earlier never.
    Every broken file becomes a Problem; unless `keep_going`, any problem raises
    ContentError listing all of them, otherwise the broken files are skipped and returned.
    """
    found: list[Problem] = []
    if sources is None:
        sources = [sf for sf in discover(config, found) if sf.kind != "static"]
    def wanted(p: _Parsed) -> bool:
        f = p.fields
        return _left_out(f["draft"], f["kind"], f["date"], f.get("scheduled", False),
                         f.get("expires"), now=now, drafts=drafts, future=future) is None

    count = len(sources)
    renderer = _Renderer(workers, config.base_url, cache, wanted, while_rendering,
                         None if progress is None else lambda done: progress(done, count))
    try:
        result = _load(config, sources, renderer, now=now, drafts=drafts, future=future,
                       keep_going=keep_going, cache=cache)
    finally:
        renderer.close()
    if found:
        result = replace(result, warnings=tuple(found) + result.warnings)
    return result


def _left_out(draft: bool, kind: str, date: datetime, scheduled: bool,
              expires: datetime | None, *, now: datetime, drafts: bool,
              future: bool) -> Literal["draft", "future", "expired"] | None:
    """Why this build leaves a file out, or None: drafts are built only with `drafts`,
    posts dated after `now` (and pages waiting for a publishDate) only with `future`, and
    nothing once its expiryDate has come."""
    if draft and not drafts:
        return "draft"
    if not future and (kind == "post" or scheduled) and date > now:
        return "future"
    if expires is not None and expires <= now:
        return "expired"
    return None


def _load(config: SiteConfig, sources: Sequence[SourceFile], renderer: _Renderer, *,
          now: datetime, drafts: bool, future: bool, keep_going: bool,
          cache: ParseCache | None) -> LoadResult:
    loaded, problems = _parse_all(config, sources, cache, renderer.add)

    # Two files, or a file and an alias, must not claim the same output folder.
    owners: dict[str, str] = {}
    unique: list[_Parsed | _Hit] = []
    drafts_left_out = future_left_out = expired_left_out = 0
    left_out: list[str] = []  # sources of the files left out (for references to them)
    for item in loaded:
        if isinstance(item, tuple):  # a cached Post
            post, file, path_line = item
            why = _left_out(post.draft, post.kind, post.date, post.scheduled, post.expires,
                            now=now, drafts=drafts, future=future)
            claimed = [post.path, *post.aliases]
            source = post.source
        else:
            fields, file, path_line = item.fields, item.file, item.path_line
            why = _left_out(fields["draft"], fields["kind"], fields["date"],
                            fields.get("scheduled", False), fields.get("expires"),
                            now=now, drafts=drafts, future=future)
            claimed = [fields["path"], *fields["aliases"]]
            source = fields["source"]
        if why is not None:
            if why == "draft":
                drafts_left_out += 1
            elif why == "future":
                future_left_out += 1
            else:
                expired_left_out += 1
            left_out.append(source)
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
    posts, pages, warnings = _resolve_migrated(config, posts, pages, left_out)
    site = Site(config=config, posts=tuple(posts), pages=tuple(pages))
    return LoadResult(site=site, problems=tuple(problems), sources=tuple(sources),
                      drafts_left_out=drafts_left_out, future_left_out=future_left_out,
                      expired_left_out=expired_left_out,
                      warnings=tuple(warnings), rendered=len(made_now))


def _make_post(p: _Parsed, r: Rendered, cache: ParseCache | None) -> Post:
    # The fields and the rendering (named by its key) are all a Post is made of.
    fingerprint = hashlib.sha256(f"{p.fields_hash}\0{p.key}".encode()).hexdigest()
    if MARKER in r.html or MARKER in r.summary_html or MARKER in r.toc_html:
        # Looked for once here, not in every post's HTML on every build (~50 ms at 10,000).
        fingerprint = _UNRESOLVED + fingerprint
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


# --------------------------------------------------------------------------------------------
# References between posts written as Hugo shortcodes or Jekyll tags (migration_syntax.py)


# Starts the fingerprint of a Post whose rendering holds markers of migration_syntax (never a
# hex digit: other fingerprints are plain SHA-256 hex digests).
_UNRESOLVED = "m:"


def _resolve_migrated(config: SiteConfig, posts: list[Post], pages: list[Post],
                      left_out: list[str]) -> tuple[list[Post], list[Post], list[Problem]]:
    """Posts and pages with the markers of migration_syntax turned into URLs (a reference
    needs the whole site, so it is resolved here, on every build, not in the cached
    rendering), and its notes as warnings naming the file and line."""
    warnings: list[Problem] = []
    index: _References | None = None

    def fixed(post: Post) -> Post:
        nonlocal index
        if not post.fingerprint.startswith(_UNRESOLVED):
            return post
        if index is None:
            index = _References(config, posts + pages, left_out)
        notes: list[Note] = []
        lookup = index.lookup_for(post)
        html = resolve(post.html, lookup, notes)
        seen = len(notes)
        summary_html = resolve(post.summary_html, lookup, notes)
        toc_html = resolve(post.toc_html, lookup, [])
        del notes[seen:]  # (the summary repeats part of the body: its notes are there too)
        file = _display(config, _content_dir(config) / post.source)
        for note in sorted(set(notes), key=lambda n: n.line):
            warnings.append(Problem(file, note.line, note.message))
        # An image written as `![x]({% link images/x.png %})`: its URL was a marker too.
        images = tuple(
            replace(image, url=url, media_type=media_type_of(url)) if MARKER in image.url
            and (url := html_lib.unescape(resolve(image.url, lookup, []))) else image
            for image in post.images)
        fingerprint = hashlib.sha256(f"{post.fingerprint}\0{html}\0{summary_html}".encode())
        return replace(post, html=html, summary_html=summary_html, toc_html=toc_html,
                       images=images, fingerprint=fingerprint.hexdigest())

    return [fixed(p) for p in posts], [fixed(p) for p in pages], warnings


def _stem(source: str) -> str:
    """posts/2019-01-31-name.md -> 2019-01-31-name; a bundle's posts/name/index.md -> name."""
    path = PurePosixPath(source)
    return path.parent.name if path.name == "index.md" else path.stem


def _without_suffix(path: str) -> str:
    for suffix in (*_MARKDOWN_SUFFIXES, ".html"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


class _References:
    """What a Hugo `ref`, a Jekyll `post_url` or `link` names, among the posts and pages."""

    def __init__(self, config: SiteConfig, documents: list[Post], left_out: list[str]) -> None:
        self.config = config
        self.by_path: dict[str, Post] = {}
        self.by_stem: dict[str, list[Post]] = {}
        for doc in documents:
            path = _without_suffix(doc.source)
            self.by_path[path] = doc
            if path.endswith("/index"):
                self.by_path[path[: -len("/index")]] = doc
            self.by_stem.setdefault(_stem(doc.source), []).append(doc)
        self.left_out = {_stem(s) for s in left_out} | {_without_suffix(s) for s in left_out}

    def lookup_for(self, post: Post) -> Callable[[str, str], str | tuple[None, str]]:
        def lookup(kind: str, target: str) -> str | tuple[None, str]:
            written, _, anchor = target.partition("#")
            suffix = f"#{anchor}" if anchor else ""
            if kind in "hr" and not written.strip():
                return post.url + suffix  # {{< ref "#anchor" >}}: this page
            if kind != "p" and _without_suffix(written.strip()).strip("/").removeprefix(
                    "content/") in ("", "index", "_index"):
                return self.config.base_url + suffix  # the home page (content/_index.md)
            if kind == "l" and not written.endswith((*_MARKDOWN_SUFFIXES, ".html")):
                return self.static(written, suffix)
            found = self.find(kind, written.strip(), post)
            return found.url + suffix if isinstance(found, Post) else (None, found)
        return lookup

    def find(self, kind: str, written: str, post: Post) -> Post | str:
        name = {"h": "ref", "r": "relref", "p": "post_url", "l": "link"}[kind]
        path = _without_suffix(written).strip("/")
        if path.startswith("content/"):
            path = path[len("content/"):]
        if path.endswith(("/index", "/_index")):
            path = path.rsplit("/", 1)[0]
        if kind in "hr" and not written.startswith("/"):
            # Hugo looks beside the page first.
            here = PurePosixPath(post.source).parent
            if PurePosixPath(post.source).name == "index.md":
                here = here.parent
            beside = posixpath.normpath(posixpath.join(here.as_posix(), path))
            if beside in self.by_path:
                return self.by_path[beside]
        if kind != "p" and path in self.by_path:
            return self.by_path[path]
        stem = path.rsplit("/", 1)[-1]
        candidates = self.by_stem.get(stem, [])
        if kind == "p":
            candidates = [c for c in candidates if c.kind == "post"]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            listed = ", ".join(f"content/{c.source}" for c in candidates[:3])
            return (f"`{name}` {written!r} matches several posts ({listed}); write its path"
                    f" from the content folder, such as {candidates[0].source!r}")
        if stem in self.left_out or path in self.left_out:
            return (f"`{name}` {written!r} names a draft, a future or an expired"
                    " post, which this build leaves out: the link would be broken")
        return (f"`{name}` {written!r} names no post or page of this site (looked for"
                f" {_stem(written) or written!r} under content/): the link would be broken;"
                " fix the name or the file")

    def static(self, written: str, suffix: str) -> str | tuple[None, str]:
        rel = written.strip().lstrip("/")
        static = _content_dir(self.config) / "static"
        candidate = static / rel
        if rel and ".." not in rel.split("/") and candidate.is_file():
            return self.config.url(rel) + suffix
        return (None, f"`link` {written!r} names no file: put it in content/static/{rel}"
                      " (copied to the site as it is)")


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
