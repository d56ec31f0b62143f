"""The parse cache: what parsing content files produced, kept in <state_dir>/cache/ between
builds (each file's finished Post by file stat or by its bytes' hash, with a small delta file
for edits). See `ParseCache`.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..config import SiteConfig
from ..model import Image, Post
from .markup import Rendered, media_type_of
from .sources import SourceFile, _Parsed

__all__ = ["ParseCache"]

# A rendering kept without a Post (put() alone): plain tuples, like Rendered's fields.
_Entry = tuple[str, str, str, int, int, tuple[tuple[str, str], ...], tuple[str, ...], bool]

# One content file: (size, mtime_ns, bundle_files, settings, file, path_line, key,
# fields_hash, post, fields, summary_html, digest). `post` is the finished Post (it carries its
# Markdown rendering) or None for a file checked but not rendered (a hidden draft), whose
# checked front matter is then in `fields`. `summary_html` is the rendered summary when the
# front matter's own `summary:` replaced it in the Post (None otherwise). `digest` is the
# SHA-256 of the file's bytes, or None when what the file makes depends on more than its bytes
# (an undated page takes its date from the file's mtime).
_FileEntry = tuple[int, int, tuple[str, ...], str, str, int, str, str, Post | None,
                   dict[str, Any] | None, str | None, str | None]


def _to_entry(r: Rendered) -> _Entry:
    images = tuple((i.url, i.alt) for i in r.images)
    return (r.html, r.summary_html, r.toc_html, r.word_count, r.reading_minutes, images,
            r.mentions, r.has_more)


def _from_entry(e: _Entry) -> Rendered:
    return Rendered(
        html=e[0],
        summary_html=e[1],
        toc_html=e[2],
        word_count=e[3],
        reading_minutes=e[4],
        images=tuple(Image(url=u, alt=a, media_type=media_type_of(u)) for u, a in e[5]),
        mentions=e[6],
        has_more=e[7],
    )


def _rendered_of(entry: _FileEntry) -> Rendered:
    post = entry[8]
    assert post is not None
    return Rendered(
        html=post.html,
        summary_html=post.summary_html if entry[10] is None else entry[10],
        toc_html=post.toc_html,
        word_count=post.word_count,
        reading_minutes=post.reading_minutes,
        images=post.images,
        mentions=post.mentions,
        has_more=post.has_more,
    )


_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _mapping(items: dict[str, Any] | None = None) -> Mapping[str, Any]:
    """Unpickles Post.extra (pickle cannot name mappingproxy's type). The usual empty one is
    one shared object rather than 10,000."""
    return MappingProxyType(items) if items else _NO_EXTRA


_POST_FIELDS = tuple(f.name for f in fields(Post))
_new = object.__new__
_set = object.__setattr__


def _post(values: tuple[Any, ...]) -> Post:
    """Unpickles a Post. Its attributes are set one by one in field order, as its __init__
    would (without the frozen check): pickle's default (filling `__dict__` in one go) makes
    instances whose every attribute read is ~1.5x slower in CPython 3.11, which cost the
    plan phase more than the fill saved."""
    post: Post = _new(Post)
    for name, value in zip(_POST_FIELDS, values, strict=True):
        _set(post, name, value)
    return post


def _dumps(data: object) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    # A private dispatch table: registering with copyreg would change pickling process-wide.
    table = copyreg.dispatch_table.copy()
    table[MappingProxyType] = lambda m: (_mapping, (dict(m),) if m else ())
    table[Post] = lambda p: (_post, (tuple(getattr(p, n) for n in _POST_FIELDS),))
    pickler.dispatch_table = table
    pickler.dump(data)
    return out.getvalue()


class ParseCache:
    """What parsing content files produced, kept in `<state_dir>/cache/` between builds.

    One pickle (`parse.pickle`) maps each content file to its finished Post, keyed by the
    file's size and mtime_ns, its bundle files and `settings` (the config and the versions of
    fedipress's parser and renderer, Python-Markdown and Pygments): an unchanged file costs
    one stat, no read, no YAML, no Markdown and no Post construction (unpickling fills the
    Post's instance dict directly). When the stat differs the file is read and its bytes'
    SHA-256 is looked up instead: a fresh clone (git sets every mtime to the checkout time)
    with the cache restored by CI costs a read and a hash per file, not a parse. Pickled
    because Posts hold datetimes with time zones and nested dataclasses; the file lives in
    the site's own state folder, next to its keys.

    Renderings are also found by their key (`get`), which covers the Markdown body, the page
    and site URLs and the versions of everything that shapes the HTML: a file whose stat
    changed but whose body did not is not rendered again. They come from the cached Posts
    (each Post carries its HTML) or, for a rendering `put` without a Post, from a small side
    table.

    An edit writes only the changed entries to `parse-delta.pickle` against the base file's
    id; the base (~100 MB at 10,000 posts) is rewritten when much changed. `save()` keeps
    only the entries this build used.
    """

    # 4: Post.dated; 5: Rendered.problem; 6: the modules moved into fedipress.generator (the
    # pickles name fedipress.generator.parsecache._post where 5 named fedipress.parsecache);
    # 7: entries carry the SHA-256 of the file's bytes (found by content in a fresh clone).
    VERSION = 7
    FILE_NAME = "parse.pickle"
    DELTA_FILE_NAME = "parse-delta.pickle"
    # Earlier formats' files (a Markdown marshal and a front matter pickle): removed when a
    # new base file is written, so 100 MB of stale cache does not linger.
    OLD_FILE_NAMES = ("markup.marshal", "markup-delta.marshal", "posts.pickle",
                      "posts-delta.pickle")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / self.FILE_NAME
        self.delta_path = directory / self.DELTA_FILE_NAME
        self._base_id: str | None = None  # names the base file a delta file applies to
        # The base file's own entries (before its delta), by identity: what a delta omits.
        self._base: dict[str, _FileEntry] = {}
        self._files: dict[str, _FileEntry] = {}  # by source, as loaded (or last saved)
        self._files_used: dict[str, _FileEntry] = {}
        self._loose: dict[str, _Entry] = {}  # renderings without a Post, by key
        self._loose_used: dict[str, _Entry] = {}
        self._by_key: dict[str, _FileEntry] | None = None  # built on the first get()
        self._dirty = False
        self.hits = 0
        self.misses = 0
        self.parsed_files = 0  # files read and checked anew (found neither by stat nor content)

    @classmethod
    def for_site(cls, config: SiteConfig) -> ParseCache:
        return cls(config.state_dir / "cache")

    def __len__(self) -> int:
        """How many renderings the cache holds."""
        keys = {e[6] for e in self._files.values() if e[8] is not None}
        return len(keys | self._loose.keys())

    def load(self) -> str | None:
        """Read the cache files. A missing file means an empty cache; a damaged, foreign or
        other-version one too, and the reason is returned (for a note: it costs parsing)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"cannot read the parse cache {self.path}: {exc}; every file is parsed"
        try:
            data = pickle.loads(raw)
        except Exception:  # noqa: BLE001 - any damage only costs parsing the files again
            return f"{self.path} is damaged or not a parse cache; every file is parsed"
        if not (isinstance(data, tuple) and len(data) == 4 and isinstance(data[1], str)
                and isinstance(data[2], dict) and isinstance(data[3], dict)):
            return f"{self.path} is damaged or not a parse cache; every file is parsed"
        if data[0] != self.VERSION:
            return (f"{self.path} is format {data[0]!r}, this fedipress reads format"
                    f" {self.VERSION}; every file is parsed")
        self._base_id, self._base, self._loose = data[1], data[2], data[3]
        self._files = dict(self._base)
        self._by_key = None
        try:
            delta = pickle.loads(self.delta_path.read_bytes())
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - any damage only costs parsing the files again
            return f"{self.delta_path} is damaged; files edited since {self.path} are parsed"
        if isinstance(delta, tuple) and len(delta) == 5 and delta[:2] == (
                self.VERSION, self._base_id) and isinstance(delta[2], dict) \
                and isinstance(delta[4], dict):
            for source in delta[3]:
                self._files.pop(source, None)
            self._files.update(delta[2])
            self._loose = delta[4]
            return None
        return (f"{self.delta_path} does not belong to {self.path}; files edited since are"
                " parsed")

    def save(self, *, write: bool = True) -> None:
        """Write the entries used since load() (or the last save) atomically; drop the rest.

        A long-lived cache (the dev server rebuilding) keeps only what the last build used,
        so it does not grow with every edit. With `write=False` (or nothing new since the
        last save) the files are left as they are: entries are found by content and stat,
        so an older file is never wrong, only less complete.
        """
        used, base = self._files_used, self._base
        changed = self._dirty or used.keys() != self._files.keys() \
            or self._loose_used.keys() != self._loose.keys() or not self.path.is_file()
        if write and changed:
            self.directory.mkdir(parents=True, exist_ok=True)
            # Entries taken from the cache are the very objects loaded, so `is` finds what
            # changed.
            added = {k: v for k, v in used.items() if base.get(k) is not v}
            dropped = [k for k in base if k not in used]
            small = max(64, len(used) // 10)
            if self._base_id is not None and len(added) <= small and len(dropped) <= small:
                _replace(self.delta_path, _dumps(
                    (self.VERSION, self._base_id, added, dropped, self._loose_used)))
            else:
                self._base_id = os.urandom(8).hex()
                _replace(self.path, _dumps(
                    (self.VERSION, self._base_id, used, self._loose_used)))
                self.delta_path.unlink(missing_ok=True)
                for name in self.OLD_FILE_NAMES:
                    (self.directory / name).unlink(missing_ok=True)
                self._base = dict(used)
            self._dirty = False
        self._files, self._files_used = self._files_used, {}
        self._loose, self._loose_used = self._loose_used, {}
        self._by_key = None

    # -- finished posts --

    def cached_post(self, sf: SourceFile, st: os.stat_result, settings: str,
                    digest: str | None = None) -> tuple[Post, str, int] | None:
        """(the Post, the file as errors name it, the line of its output path) if `sf`, its
        bundle and the settings are unchanged since the Post was made: the file by its stat,
        or with `digest` (the SHA-256 of its bytes) by its contents."""
        entry = self._files.get(sf.source)
        if entry is None or entry[8] is None or not _same_file(entry, st, digest) \
                or entry[2] != sf.bundle_files or entry[3] != settings:
            return None
        self._files_used[sf.source] = entry
        self.hits += 1
        return entry[8], entry[4], entry[5]

    def put_post(self, post: Post, rendered: Rendered) -> None:
        """Attach the finished `post` (made from `rendered`) to its file's entry, which
        put_parsed or parsed made in this build."""
        entry = self._files_used.get(post.source)
        if entry is None:
            return  # not from a file this cache checked
        summary = None if post.summary_html == rendered.summary_html else rendered.summary_html
        self._files_used[post.source] = (*entry[:8], post, None, summary, entry[11])
        self._loose_used.pop(entry[6], None)  # the Post carries it now
        self._dirty = True

    def same_post(self, key: str, fingerprint: str) -> Post | None:
        """The cached Post with this rendering and `fingerprint`, if any: a file whose stat
        changed but whose contents did not keeps its Post object (downstream memos by
        object stay warm in a long-lived builder)."""
        entry = self._index().get(key)
        if entry is None or entry[8] is None or entry[8].fingerprint != fingerprint:
            return None
        return entry[8]

    # -- checked front matter --

    def parsed(self, sf: SourceFile, st: os.stat_result, settings: str,
               digest: str | None = None) -> _Parsed | None:
        """The cached check of `sf` (not rendered) if the file (by stat, or by `digest`), its
        bundle and the settings are unchanged and its rendering is still here (the body is
        not kept)."""
        entry = self._files.get(sf.source)
        if entry is None or entry[9] is None or not _same_file(entry, st, digest) \
                or entry[2] != sf.bundle_files or entry[3] != settings \
                or not self._has(entry[6]):
            return None
        self._files_used[sf.source] = entry
        return _Parsed(sf, entry[4], dict(entry[9]), "", entry[5], entry[6], entry[7])

    def put_parsed(self, p: _Parsed, st: os.stat_result, settings: str) -> None:
        """Keep the check of a file just parsed. Its bytes' SHA-256 (the Post's content_hash)
        lets a later build with another stat find it, unless the result depends on the stat
        itself (an undated page is dated by its mtime)."""
        digest = p.fields["content_hash"] if p.fields.get("dated", True) else None
        self.parsed_files += 1
        entry: _FileEntry = (st.st_size, st.st_mtime_ns, p.source.bundle_files, settings,
                             p.file, p.path_line, p.key, p.fields_hash, None, dict(p.fields),
                             None, digest)
        self._files_used[p.source.source] = entry
        self._dirty = True

    # -- renderings by key --

    def _index(self) -> dict[str, _FileEntry]:
        if self._by_key is None:
            self._by_key = {e[6]: e for e in self._files.values() if e[8] is not None}
        return self._by_key

    def _has(self, key: str) -> bool:
        return key in self._loose or key in self._index()

    def get(self, key: str) -> Rendered | None:
        loose = self._loose.get(key)
        if loose is not None:
            self.hits += 1
            self._loose_used[key] = loose
            return _from_entry(loose)
        entry = self._index().get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        # Kept by the Post made from it (put_post); alone until then.
        rendered = _rendered_of(entry)
        self._loose_used[key] = _to_entry(rendered)
        return rendered

    def put(self, key: str, rendered: Rendered) -> None:
        self._loose_used[key] = _to_entry(rendered)
        self._dirty = True


def _same_file(entry: _FileEntry, st: os.stat_result, digest: str | None) -> bool:
    if digest is None:
        return entry[0] == st.st_size and entry[1] == st.st_mtime_ns
    return entry[11] is not None and entry[11] == digest


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
