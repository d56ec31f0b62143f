"""Local avatar copies (federation/avatars.py, `fediverse.cache_avatars`): fetched through the safe
fetcher from a real loopback server, checked by their bytes (type, size, pixels), stored under a
content-hash name, reused from the cache, and put in place of every remote avatar."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from fedipress.activitypub.conversation import (
    Conversations,
    Person,
    PostConversation,
    Reaction,
    Reply,
)
from fedipress.config import load_config
from fedipress.errors import FedipressError
from fedipress.federation.avatars import (
    MAX_BYTES,
    REFRESH,
    RETRY,
    AvatarCache,
    ImageRefused,
    avatar_urls,
    build_avatars,
    check_image,
    localize_avatars,
    sniff,
)
from fedipress.federation.remote import FetchPolicy
from support.file_server import FileServer

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def png(width: int, height: int) -> bytes:
    """A real PNG (grey, 8 bit), decodable by any viewer."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0,
                                                             0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def png_header(width: int, height: int) -> bytes:
    """Only a header claiming a size: what a decompression bomb looks like before decoding."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


GIF = b"GIF89a" + struct.pack("<HH", 48, 32) + b"\x00\x00\x00" + b"\x3b"
JPEG = (b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
        + b"\xff\xdb" + struct.pack(">H", 4) + b"\x00\x00"
        + b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 120, 160, 1) + b"\x01\x11\x00"
        + b"\xff\xd9")
WEBP_LOSSLESS = (b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8L" + struct.pack("<I", 5)
                 + b"\x2f" + struct.pack("<I", (64 - 1) | ((48 - 1) << 14)) + b"\x00" * 8)
WEBP_EXTENDED = (b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8X" + struct.pack("<I", 10)
                 + b"\x00\x00\x00\x00" + (400 - 1).to_bytes(3, "little")
                 + (300 - 1).to_bytes(3, "little"))
WEBP_LOSSY = (b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8 " + struct.pack("<I", 10)
              + b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", 200, 100) + b"\x00" * 4)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(3, 2), ("png", 3, 2)),
        (GIF, ("gif", 48, 32)),
        (JPEG, ("jpeg", 160, 120)),
        (WEBP_LOSSLESS, ("webp", 64, 48)),
        (WEBP_EXTENDED, ("webp", 400, 300)),
        (WEBP_LOSSY, ("webp", 200, 100)),
        (SVG, None),
        (b"<html><script>alert(1)</script>", None),
        (b"\xff\xd8\xff\xe0\x00", None),  # a JPEG cut short
        (b"", None),
    ],
)
def test_the_bytes_say_what_an_image_is(data: bytes, expected: object) -> None:
    assert sniff(data) == expected


def test_check_image_limits() -> None:
    assert check_image(png(400, 400)) == ".png"
    assert check_image(JPEG) == ".jpg"
    assert check_image(GIF) == ".gif"
    assert check_image(WEBP_EXTENDED) == ".webp"
    with pytest.raises(ImageRefused, match="not a PNG, JPEG, GIF or WebP"):
        check_image(SVG)
    with pytest.raises(ImageRefused, match="40000 x 40000 pixels"):
        check_image(png_header(40_000, 40_000))
    with pytest.raises(ImageRefused, match="1025 x 1 pixels"):
        check_image(png_header(1025, 1))
    with pytest.raises(ImageRefused, match="0 x 5 pixels"):
        check_image(png_header(0, 5))
    with pytest.raises(ImageRefused, match="larger than 512 KiB"):
        check_image(png_header(10, 10) + b"\0" * MAX_BYTES)


# --- from a real server ------------------------------------------------------------------------


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer()
    server.files.update({
        "/a.png": ("image/png", png(400, 400)),
        "/b.jpg": ("image/jpeg", JPEG),
        "/same.png": ("image/png", png(400, 400)),
        "/svg": ("image/svg+xml", SVG),
        "/svg-as-png": ("image/png", SVG),
        "/huge.png": ("image/png", png(1100, 2)),
        "/big.png": ("image/png", png_header(10, 10) + b"\0" * (MAX_BYTES + 1)),
        "/html-type.png": ("text/html", png(4, 4)),
    })
    yield server
    server.close()


def cache(tmp_path: Path, *, private: bool = True) -> AvatarCache:
    return AvatarCache(tmp_path / "avatars", policy=FetchPolicy(allow_private=private),
                       user_agent="test")


def test_avatars_are_fetched_checked_and_named_by_their_content(
    tmp_path: Path, files: FileServer,
) -> None:
    urls = [files.url(p) for p in files.files]
    result = cache(tmp_path).update(urls, NOW)
    assert result.fetched == len(urls)
    good = {files.url("/a.png"), files.url("/b.jpg"), files.url("/same.png")}
    assert set(result.paths) == good
    assert result.paths[files.url("/a.png")] == result.paths[files.url("/same.png")]
    assert all(p.startswith("avatars/") for p in result.paths.values())
    assert result.files[result.paths[files.url("/b.jpg")]] == JPEG
    assert len(result.files) == 2
    reasons = {url.rsplit("/", 1)[1]: why for url, why in result.refused.items()}
    assert "not a PNG, JPEG, GIF or WebP" in reasons["svg"]  # an image/* type, script inside
    assert "not a PNG, JPEG, GIF or WebP" in reasons["svg-as-png"]
    assert "1100 x 2 pixels" in reasons["huge.png"]
    assert "larger than" in reasons["big.png"]
    assert "is not an image" in reasons["html-type.png"]


def test_the_cache_is_reused_and_refreshed(tmp_path: Path, files: FileServer) -> None:
    urls = [files.url("/a.png"), files.url("/svg")]
    first = cache(tmp_path).update(urls, NOW)
    assert len(files.gets) == 2
    again = cache(tmp_path).update(urls, NOW + timedelta(hours=1))
    assert again.fetched == 0 and len(files.gets) == 2
    assert again.paths == first.paths and again.files == first.files
    assert again.refused == first.refused  # the refusal is remembered, with its reason
    cache(tmp_path).update(urls, NOW + RETRY + timedelta(minutes=1))
    assert files.gets[2:] == ["/svg"]  # a refusal is retried sooner than a copy is refreshed
    cache(tmp_path).update(urls, NOW + REFRESH + timedelta(minutes=1))
    assert sorted(files.gets[3:]) == ["/a.png", "/svg"]


def test_a_damaged_cache_file_is_not_trusted(tmp_path: Path, files: FileServer) -> None:
    url = files.url("/a.png")
    result = cache(tmp_path).update([url], NOW)
    [name] = [p for p in (tmp_path / "avatars").iterdir() if p.suffix == ".png"]
    name.write_bytes(SVG)
    again = cache(tmp_path).update([url], NOW + timedelta(hours=1))
    assert url not in again.paths and "cached copy unreadable" in again.refused[url]
    assert result.paths  # it was there before


def test_only_https_and_public_addresses_without_the_test_opt_in(
    tmp_path: Path, files: FileServer,
) -> None:
    plain = files.url("/a.png")
    loopback = "https://127.0.0.1:1/a.png"
    result = cache(tmp_path, private=False).update(
        [plain, loopback, "javascript:alert(1)", "data:image/png;base64,AAAA"], NOW)
    assert result.paths == {}
    assert result.refused[plain] == "not an https URL"
    assert result.refused["javascript:alert(1)"] == "not an https URL"
    assert "127.0.0.1" in result.refused[loopback]  # netguard refused it before connecting
    assert files.gets == []


def _person(name: str, avatar: str | None) -> Person:
    return Person(id=f"https://m.example/users/{name}", name=name, avatar=avatar)


def test_the_conversation_gets_local_avatars_or_none() -> None:
    post = "https://blog.example/posts/a/object.json"
    conv = PostConversation(
        post,
        replies=(Reply("r1", post, "2026-11-01T00:00:00Z", "<p>hi</p>",
                       _person("a", "https://m.example/a.png")),),
        likes=(Reaction("like", _person("b", "https://m.example/b.png"), "2026-11-01T00:00:00Z"),),
        boosts=(Reaction("boost", _person("c", None), "2026-11-01T00:00:00Z"),),
    )
    conversations = Conversations("actor", MappingProxyType({post: conv}))
    assert avatar_urls(conversations) == {"https://m.example/a.png", "https://m.example/b.png"}
    local = localize_avatars(conversations, {"https://m.example/a.png": "avatars/x.png"}, "/blog/")
    shown = local.for_post(post)
    assert shown is not None
    assert shown.replies[0].author.avatar == "/blog/avatars/x.png"
    assert shown.likes[0].actor.avatar is None  # not cached: no remote image instead
    assert shown.boosts[0].actor.avatar is None


def test_the_setting_is_off_by_default_and_read_from_site_yaml(tmp_path: Path) -> None:
    base = "title: T\nbase_url: https://blog.example/\nauthor:\n  name: A\n  handle: a\n"
    (tmp_path / "site.yaml").write_text(base)
    assert load_config(tmp_path / "site.yaml").fediverse.cache_avatars is False
    (tmp_path / "site.yaml").write_text(base + "fediverse:\n  cache_avatars: true\n")
    assert load_config(tmp_path / "site.yaml").fediverse.cache_avatars is True
    (tmp_path / "site.yaml").write_text(base + "fediverse:\n  cache_avatars: sometimes\n")
    with pytest.raises(FedipressError, match=r"site.yaml:7: fediverse.cache_avatars"):
        load_config(tmp_path / "site.yaml")


def test_what_a_build_gets(tmp_path: Path, files: FileServer) -> None:
    post = "https://blog.example/posts/a/object.json"
    good, bad = files.url("/a.png"), files.url("/svg")
    conv = PostConversation(post, likes=(
        Reaction("like", _person("a", good), "2026-11-01T00:00:00Z"),
        Reaction("like", _person("b", bad), "2026-11-01T00:00:01Z"),
    ))
    conversations = Conversations("actor", MappingProxyType({post: conv}))
    warnings: list[str] = []

    def run(enabled: bool) -> tuple[Conversations, dict[str, bytes]]:
        return build_avatars(conversations, enabled=enabled, base_url="https://blog.example/b/",
                             cache_dir=tmp_path / "cache", policy=FetchPolicy(allow_private=True),
                             user_agent="test", now=NOW, warn=warnings.append)

    assert run(False) == (conversations, {}) and files.gets == []  # off: nothing fetched
    local, written = run(True)
    shown = local.for_post(post)
    assert shown is not None
    [path] = written
    assert shown.likes[0].actor.avatar == "/b/" + path and written[path] == png(400, 400)
    assert shown.likes[1].actor.avatar is None
    assert warnings == [f"note: 1 avatar not copied, shown as a placeholder: {bad}:"
                        " not a PNG, JPEG, GIF or WebP image"]
