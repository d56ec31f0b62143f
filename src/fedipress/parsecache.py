"""The parse cache: what parsing content files produced, kept in <state_dir>/cache/ between
builds (rendered Markdown by content hash, checked front matter by file stat, with small delta
files for edits). See `ParseCache`.
"""

from __future__ import annotations

import marshal
import os
import pickle
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .config import SiteConfig
from .frontmatter import _Parsed
from .markup import Rendered, media_type_of
from .model import Image, Post

if TYPE_CHECKING:
    from .content import SourceFile

__all__ = ["ParseCache"]

_Entry = tuple[str, str, str, int, int, tuple[tuple[str, str], ...], tuple[str, ...], bool]


def _to_entry(r: Rendered) -> _Entry:
    images = tuple((i.url, i.alt) for i in r.images)
    return (
        r.html,
        r.summary_html,
        r.toc_html,
        r.word_count,
        r.reading_minutes,
        images,
        r.mentions,
        r.has_more,
    )


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


_PostEntry = tuple[int, int, tuple[str, ...], str, dict[str, Any], dict[str, Any], int, str, str]


class ParseCache:
    """What parsing content files produced, kept in `<state_dir>/cache/` between builds.

    Rendered Markdown by content hash (`markup.marshal`): the key covers the Markdown body,
    the page and site URLs (links are made absolute) and the versions of everything that
    shapes the HTML, so a hit is always safe to reuse. Stored with marshal (plain tuples and
    strings) because it loads 10,000 entries in a few tens of milliseconds.

    Checked front matter by file (`posts.pickle`): keyed by the file's size and mtime_ns, its
    bundle files and `settings` (the config and code versions), so an unchanged file costs
    one stat: no read, no YAML. Pickled because the fields hold datetimes with time zones;
    the file lives in the site's own state folder, next to its keys.

    `save()` keeps only the entries this build used.
    """

    VERSION = 2
    POSTS_VERSION = 2
    FILE_NAME = "markup.marshal"
    DELTA_FILE_NAME = "markup-delta.marshal"
    POSTS_FILE_NAME = "posts.pickle"
    POSTS_DELTA_FILE_NAME = "posts-delta.pickle"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.FILE_NAME
        self.delta_path = directory / self.DELTA_FILE_NAME
        self.posts_path = directory / self.POSTS_FILE_NAME
        self.posts_delta_path = directory / self.POSTS_DELTA_FILE_NAME
        # The posts file's own entries (before its delta), by identity: what a delta omits.
        self._posts_base_id: str | None = None
        self._posts_base: dict[str, _PostEntry] = {}
        self._base_id: str | None = None  # names the base file a delta file applies to
        self._base_keys: set[str] = set()  # the keys in the base file
        self._entries: dict[str, _Entry] = {}
        self._used: dict[str, _Entry] = {}
        self._posts: dict[str, _PostEntry] = {}
        self._posts_used: dict[str, _PostEntry] = {}
        # Post objects by fingerprint, in memory only: a long-lived builder hands the same
        # object to the next build, so per-object memos downstream stay warm.
        self._objects: dict[str, Post] = {}
        self._objects_used: dict[str, Post] = {}
        self._dirty = False
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_site(cls, config: SiteConfig) -> ParseCache:
        return cls(config.state_dir / "cache")

    def __len__(self) -> int:
        return len(self._entries)

    def load(self) -> None:
        """Read the cache files; a missing, corrupt or other-version file means an empty cache."""
        try:
            data = marshal.loads(self.path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(data, tuple) and len(data) == 3 and data[0] == self.VERSION \
                and isinstance(data[2], dict):
            self._entries, self._base_id, self._base_keys = data[2], data[1], set(data[2])
            self._load_delta()
        elif isinstance(data, tuple) and len(data) == 2 and data[0] == 1 \
                and isinstance(data[1], dict):
            self._entries = data[1]  # the first format: rewritten whole on the next save
        try:
            posts = pickle.loads(self.posts_path.read_bytes())
        except Exception:  # noqa: BLE001 - any damage only costs parsing the files again
            return
        if isinstance(posts, tuple) and len(posts) == 3 and posts[0] == self.POSTS_VERSION \
                and isinstance(posts[1], str) and isinstance(posts[2], dict):
            self._posts_base_id, self._posts_base = posts[1], posts[2]
            self._posts = dict(posts[2])
            self._load_posts_delta()

    def _load_posts_delta(self) -> None:
        try:
            delta = pickle.loads(self.posts_delta_path.read_bytes())
        except Exception:  # noqa: BLE001 - any damage only costs parsing the files again
            return
        if isinstance(delta, tuple) and len(delta) == 4 and delta[:2] == (
                self.POSTS_VERSION, self._posts_base_id) and isinstance(delta[2], dict):
            for key in delta[3]:
                self._posts.pop(key, None)
            self._posts.update(delta[2])

    def _load_delta(self) -> None:
        try:
            delta = marshal.loads(self.delta_path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(delta, tuple) and len(delta) == 4 and delta[:2] == (
                self.VERSION, self._base_id) and isinstance(delta[2], dict):
            for key in delta[3]:
                self._entries.pop(key, None)
            self._entries.update(delta[2])

    def save(self, *, write: bool = True) -> None:
        """Write the entries used since load() (or the last save) atomically; drop the rest.

        A long-lived cache (the dev server rebuilding) keeps only what the last build used,
        so it does not grow with every edit. With `write=False` (or nothing new since the
        last save) the files are left as they are: entries are found by content and stat,
        so an older file is never wrong, only less complete.

        The Markdown file (~100 MB at 10,000 posts) is rewritten only when much changed;
        a few edits go to a small delta file (entries added and keys dropped since).
        """
        changed = self._dirty or self._used.keys() != self._entries.keys() \
            or self._posts_used.keys() != self._posts.keys() or not self.path.is_file()
        if write and changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            used = self._used
            added = {k: v for k, v in used.items() if k not in self._base_keys}
            dropped = [k for k in self._base_keys if k not in used]
            small = max(64, len(used) // 10)
            if self._base_id is not None and len(added) <= small and len(dropped) <= small:
                _replace(self.delta_path,
                         marshal.dumps((self.VERSION, self._base_id, added, dropped)))
            else:
                self._base_id = os.urandom(8).hex()
                _replace(self.path, marshal.dumps((self.VERSION, self._base_id, used)))
                self.delta_path.unlink(missing_ok=True)
                self._base_keys = set(used)
            self._save_posts()
            self._dirty = False
        self._entries, self._used = self._used, {}
        self._posts, self._posts_used = self._posts_used, {}
        self._objects, self._objects_used = self._objects_used, {}

    def _save_posts(self) -> None:
        """Like the Markdown file: an edit writes the few changed entries to a delta file
        (pickling all 10,000 entries again took ~0.1 s); the base is rewritten when much
        changed. Entries taken from the cache are the very objects loaded, so `is` finds
        what changed."""
        used, base = self._posts_used, self._posts_base
        added = {k: v for k, v in used.items() if base.get(k) is not v}
        dropped = [k for k in base if k not in used]
        small = max(64, len(used) // 10)
        if self._posts_base_id is not None and len(added) <= small and len(dropped) <= small:
            _replace(self.posts_delta_path,
                     pickle.dumps((self.POSTS_VERSION, self._posts_base_id, added, dropped),
                                  protocol=pickle.HIGHEST_PROTOCOL))
            return
        self._posts_base_id = os.urandom(8).hex()
        _replace(self.posts_path, pickle.dumps((self.POSTS_VERSION, self._posts_base_id, used),
                                               protocol=pickle.HIGHEST_PROTOCOL))
        self.posts_delta_path.unlink(missing_ok=True)
        self._posts_base = dict(used)

    def get(self, key: str) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used[key] = entry
        return _from_entry(entry)

    def touch(self, key: str) -> bool:
        """Keep the rendering `key` (used without being read); False when it is not here."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        self.hits += 1
        self._used[key] = entry
        return True

    def put(self, key: str, rendered: Rendered) -> None:
        entry = _to_entry(rendered)
        self._entries[key] = entry
        self._used[key] = entry
        self._dirty = True

    def parsed(self, sf: SourceFile, st: os.stat_result, settings: str) -> _Parsed | None:
        """The cached check of `sf` if the file, its bundle and the settings are unchanged."""
        entry = self._posts.get(sf.source)
        if entry is None or entry[0] != st.st_size or entry[1] != st.st_mtime_ns \
                or entry[2] != sf.bundle_files or entry[3] != settings \
                or entry[7] not in self._entries:
            return None
        self._posts_used[sf.source] = entry
        fields = dict(entry[4], extra=MappingProxyType(entry[5]))
        return _Parsed(sf, fields.pop("_file"), fields, "", entry[6], entry[7], entry[8])

    def put_parsed(self, p: _Parsed, st: os.stat_result, settings: str) -> None:
        fields = {k: v for k, v in p.fields.items() if k != "extra"}
        fields["_file"] = p.file
        entry: _PostEntry = (st.st_size, st.st_mtime_ns, p.source.bundle_files, settings,
                             fields, dict(p.fields["extra"]), p.path_line, p.key, p.fields_hash)
        self._posts_used[p.source.source] = entry
        self._dirty = True

    def post(self, fingerprint: str) -> Post | None:
        post = self._objects.get(fingerprint)
        if post is not None:
            self._objects_used[fingerprint] = post
        return post

    def put_post(self, post: Post) -> None:
        self._objects_used[post.fingerprint] = post


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
