"""Local copies of the avatars shown in the conversation (`fediverse.cache_avatars: true`).

Off by default: a page then references each avatar at its https URL on the author's server, and
the build fetches nothing. Turned on, the build asks this module for local copies, so a reader's
browser never contacts the servers of the people who replied:

    cache = AvatarCache(config.state_dir / "cache" / "avatars", policy=policy, user_agent=ua)
    result = cache.update(urls, now)           # fetches what is missing or old, concurrently
    result.files                              # {"avatars/<sha256>.png": bytes, ...} for public/
    local = localize_avatars(conversations, result.paths, base_path="/")

Every avatar is fetched through the safe fetcher (federation/netguard.py, remote.py: https,
public addresses only unless the policy opts in for tests), then checked by its bytes, not by
what the server says it is: PNG, JPEG, GIF or WebP by magic number (never SVG, which can carry
script), at most MAX_BYTES, and at most MAX_SIDE pixels on each side (the size is read from the
image header, so an image that claims a huge size is refused before anything decodes it).
fedipress has no image library, so it does not resize: an image outside the limits is not
stored, and the page shows no picture for that person rather than falling back to the remote URL
(the point of caching is that readers' browsers make no third-party requests). Mastodon serves
avatars at 400 x 400, well within the limits.

Stored under a content-hash name, so a changed avatar gets a new file and an unchanged one keeps
its bytes and URL (builds stay byte-identical). An index beside the files remembers, per URL, the
file and when it was checked; a copy is refetched after REFRESH, a refusal retried after RETRY, so
a build does not hammer a server that refused once. Every refusal is reported with its reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from ..activitypub.conversation import Conversations, Person, PostConversation, Reaction
from ..activitypub.remote_html import safe_url
from ..config import SiteConfig
from ..errors import FetchError
from ..model import Output
from ..wording import plural
from .remote import FetchPolicy, RemoteFetcher, user_agent

__all__ = [
    "MAX_BYTES",
    "MAX_SIDE",
    "REFRESH",
    "RETRY",
    "AvatarCache",
    "AvatarResult",
    "ImageRefused",
    "avatar_urls",
    "avatars_for_build",
    "build_avatars",
    "check_image",
    "localize_avatars",
    "sniff",
]

MAX_BYTES = 512 * 1024
MAX_SIDE = 1024  # pixels, each side
REFRESH = timedelta(days=7)
RETRY = timedelta(days=1)
PUBLIC_DIR = "avatars"  # under the output directory
_INDEX = "index.json"
_PARALLEL = 4
_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "gif": ".gif", "webp": ".webp"}
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                       0xCF})


class ImageRefused(ValueError):
    """The bytes are not an image fedipress stores; the message says why."""


# --- what the bytes are ------------------------------------------------------------------------


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if marker in _JPEG_SOF and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        if length < 2:
            return None
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def sniff(data: bytes) -> tuple[str, int, int] | None:
    """(kind, width, height) of a PNG, JPEG, GIF or WebP, from its header; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if data.startswith(b"\xff\xd8\xff"):
        size = _jpeg_size(data)
        return ("jpeg", *size) if size else None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = _webp_size(data)
        return ("webp", *size) if size else None
    return None


def check_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_side: int = MAX_SIDE) -> str:
    """The file extension for `data` (".png", ...) if it is an avatar fedipress stores."""
    if len(data) > max_bytes:
        raise ImageRefused(f"larger than {max_bytes // 1024} KiB ({len(data) // 1024} KiB)")
    found = sniff(data)
    if found is None:
        raise ImageRefused("not a PNG, JPEG, GIF or WebP image")
    kind, width, height = found
    if not (0 < width <= max_side and 0 < height <= max_side):
        raise ImageRefused(f"{width} x {height} pixels; at most {max_side} x {max_side} are"
                           " stored (fedipress does not resize)")
    return _EXTENSIONS[kind]


# --- the cache ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AvatarResult:
    """`paths`: remote URL -> path under the output directory ("avatars/<hash>.png");
    `files`: that path -> the bytes to write; `refused`: remote URL -> why it has no copy."""

    paths: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)
    fetched: int = 0  # how many were fetched by this update (the rest came from the cache)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


class AvatarCache:
    """Avatars kept in `directory` (in the state folder's cache, beside the build's caches)."""

    def __init__(self, directory: Path, *, policy: FetchPolicy, user_agent: str,
                 fetcher: RemoteFetcher | None = None) -> None:
        self.directory = directory
        # The size cap is enforced while reading, so an oversized body is never held whole.
        self.policy = replace(policy, max_bytes=min(policy.max_bytes, MAX_BYTES))
        self.user_agent = user_agent
        self._fetcher = fetcher  # tests: a fetcher of their own

    def _read_index(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads((self.directory / _INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no cache yet, or a damaged one: start over (it is only a cache)
        entries = data.get("avatars") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, dict)}

    def _write_index(self, index: Mapping[str, Mapping[str, str]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self.directory / (_INDEX + ".tmp")
        temp.write_text(json.dumps({"format": 1, "avatars": dict(sorted(index.items()))},
                                   indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temp, self.directory / _INDEX)

    def _fresh(self, entry: Mapping[str, str], now: datetime) -> bool:
        checked = _parse_iso(entry.get("checked"))
        if checked is None:
            return False
        if "refused" in entry:
            return now - checked < RETRY
        name = entry.get("file", "")
        return now - checked < REFRESH and bool(name) and (self.directory / name).is_file()

    async def _fetch(self, fetcher: RemoteFetcher, url: str) -> dict[str, str]:
        """The index entry for `url` after fetching and checking it (the file is written)."""
        try:
            _final, data = await fetcher.fetch_image(url)
            ext = check_image(data)
        except (FetchError, ImageRefused) as exc:
            return {"refused": str(exc)[:300]}
        name = hashlib.sha256(data).hexdigest()[:32] + ext
        path = self.directory / name
        if not path.is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            temp = path.with_suffix(".tmp")
            temp.write_bytes(data)
            os.replace(temp, path)
        return {"file": name}

    async def _fetch_all(self, urls: list[str]) -> dict[str, dict[str, str]]:
        limit = asyncio.Semaphore(_PARALLEL)

        async def one(fetcher: RemoteFetcher, url: str) -> tuple[str, dict[str, str]]:
            async with limit:
                return url, await self._fetch(fetcher, url)

        if self._fetcher is not None:
            return dict(await asyncio.gather(*(one(self._fetcher, u) for u in urls)))
        async with RemoteFetcher(policy=self.policy, user_agent=self.user_agent) as fetcher:
            return dict(await asyncio.gather(*(one(fetcher, u) for u in urls)))

    def update(self, urls: Iterable[str], now: datetime) -> AvatarResult:
        """Local copies of `urls`: from the cache when fresh, else fetched now. Only https URLs
        are fetched (http as well when the policy allows private addresses: tests)."""
        wanted: list[str] = []
        refused: dict[str, str] = {}
        for url in sorted(set(urls)):
            if safe_url(url, https_only=not self.policy.allow_private) is None:
                refused[url] = "not an https URL"
            else:
                wanted.append(url)
        index = self._read_index()
        stale = [u for u in wanted if not self._fresh(index.get(u, {}), now)]
        if stale:
            fetched = asyncio.run(self._fetch_all(stale))
            for url, entry in fetched.items():
                index[url] = {**entry, "checked": _iso(now)}
            self._write_index(index)
        paths: dict[str, str] = {}
        files: dict[str, bytes] = {}
        for url in wanted:
            entry = index.get(url, {})
            if "refused" in entry:
                refused[url] = entry["refused"]
                continue
            try:
                data = (self.directory / entry.get("file", "")).read_bytes()
                ext = check_image(data)  # a cache file edited or damaged since is not trusted
            except (OSError, ImageRefused) as exc:
                refused[url] = f"cached copy unreadable: {exc}"
                continue
            rel = f"{PUBLIC_DIR}/{hashlib.sha256(data).hexdigest()[:32]}{ext}"
            paths[url] = rel
            files[rel] = data
        return AvatarResult(MappingProxyType(paths), MappingProxyType(files),
                            MappingProxyType(refused), len(stale))


# --- the conversation with local avatars -------------------------------------------------------


def _person(p: Person, paths: Mapping[str, str], base_path: str) -> Person:
    local = paths.get(p.avatar) if p.avatar else None
    return replace(p, avatar=base_path + local if local else None)


def _reactions(items: tuple[Reaction, ...], paths: Mapping[str, str],
               base_path: str) -> tuple[Reaction, ...]:
    return tuple(replace(r, actor=_person(r.actor, paths, base_path)) for r in items)


def localize_avatars(conversations: Conversations, paths: Mapping[str, str],
                     base_path: str) -> Conversations:
    """`conversations` with every avatar pointing at its local copy (`base_path` + path, e.g.
    "/avatars/<hash>.png"), or at nothing when it has none: no remote image is left."""
    local: dict[str, PostConversation] = {}
    for oid, conv in conversations.objects.items():
        local[oid] = replace(
            conv,
            replies=tuple(replace(r, author=_person(r.author, paths, base_path))
                          for r in conv.replies),
            likes=_reactions(conv.likes, paths, base_path),
            boosts=_reactions(conv.boosts, paths, base_path),
            quotes=_reactions(conv.quotes, paths, base_path),
        )
    return replace(conversations, objects=MappingProxyType(local))


def avatar_urls(conversations: Conversations) -> set[str]:
    """Every avatar URL the conversation shows."""
    found: set[str] = set()
    for conv in conversations.objects.values():
        people = [r.author for r in conv.replies]
        people += [r.actor for r in (*conv.likes, *conv.boosts, *conv.quotes)]
        found.update(p.avatar for p in people if p.avatar)
    return found


def build_avatars(
    conversations: Conversations,
    *,
    enabled: bool,
    base_url: str,
    cache_dir: Path,
    policy: FetchPolicy,
    user_agent: str,
    now: datetime,
    warn: Callable[[str], None],
) -> tuple[Conversations, dict[str, bytes]]:
    """What a build does with `fediverse.cache_avatars` (`enabled`): the conversation with local
    avatars and the files to write under the output directory. Off, or nothing to show: the
    conversation as it is and no files; nothing is fetched."""
    urls = avatar_urls(conversations) if enabled else set()
    if not urls:
        return conversations, {}
    result = AvatarCache(cache_dir, policy=policy, user_agent=user_agent).update(urls, now)
    if result.refused:
        # One line per build, however many failed: the first says why, the count the rest.
        url, why = sorted(result.refused.items())[0]
        more = len(result.refused) - 1
        warn(f"note: {plural(len(result.refused), 'avatar')} not copied, shown as a placeholder:"
             f" {url}: {why}" + (f" (and {more} more)" if more else ""))
    base_path = urlsplit(base_url).path or "/"
    return localize_avatars(conversations, result.paths, base_path), dict(result.files)


def avatars_for_build(conversations: Conversations, config: SiteConfig,
                      environ: Mapping[str, str], *,
                      note: Callable[[str], None]) -> tuple[Conversations, list[Output]]:
    """generator/build.py's call: the conversation its pages show and the avatar files it
    writes (outputs like any other, so the output sync keeps, writes and removes them and their
    content hash is their fingerprint). Off: unchanged, nothing fetched. Never fails the build:
    an avatar that cannot be copied is shown as a placeholder (`note` says how many)."""
    policy = FetchPolicy.from_options(False, environ)  # FEDIPRESS_ALLOW_PRIVATE_ADDRESSES: tests
    shown, files = build_avatars(
        conversations, enabled=config.fediverse.cache_avatars, base_url=config.base_url,
        cache_dir=config.state_dir / "cache" / PUBLIC_DIR, policy=policy,
        user_agent=user_agent(config.base_url), now=datetime.now(UTC), warn=note)
    return shown, [Output(path=rel, fingerprint=hashlib.sha256(data).hexdigest(),
                          render=_constant(data)) for rel, data in sorted(files.items())]


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data
