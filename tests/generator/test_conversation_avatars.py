"""`fediverse.cache_avatars` in a real build: the conversation comes from a service export on
loopback, the avatars from a loopback image server. Off (the default), pages reference the
https avatars and the image server hears nothing; on, pages reference local copies under
`avatars/` named by their content, written (and later removed) as build outputs, and an avatar
that cannot be copied is a placeholder, said once in a note, never a failed build."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
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
from fedipress.generator.build import BuildOptions, run_build
from support.file_server import FileServer
from support.service import KEYS, site_yaml, write_post

TOKEN = "avatar-test-token"


def png(side: int, shade: int = 0x80) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + bytes([shade]) * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Loopback(FileServer):
    """The service (its conversation export) and the people's servers (their avatars)."""

    @property
    def requests(self) -> list[str]:
        return self.gets

    def images(self) -> list[str]:
        return [r for r in self.gets if not r.startswith("/.fedipress/")]


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    yield server
    server.close()


def _blog(root: Path, *, cache: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    extra = "  cache_avatars: true\n" if cache else ""
    (root / "site.yaml").write_text(site_yaml("https://blog.example/") + extra)
    shutil.copy(KEYS / "blog-public.pem", root / "fedipress-public-key.pem")
    write_post(root, "first")
    return root


def _serve_conversation(server: Loopback, avatars: dict[str, str | None]) -> None:
    """The service's export: a reply from each person in `avatars` (name -> avatar URL)."""
    post = "https://blog.example/posts/first/object.json"
    people = [Person(f"https://people.example/{n}", n.title(), f"{n}@people.example",
                     avatar=url) for n, url in avatars.items()]
    replies = tuple(Reply(f"https://people.example/{p.name}/1", post,
                          f"2026-05-01T10:0{i}:00Z", f"<p>Reply by {p.name}</p>", p)
                    for i, p in enumerate(people))
    likes = (Reaction("like", people[0], "2026-05-01T11:00:00Z"),)
    conv = Conversations("https://blog.example/actor.json",
                         MappingProxyType({post: PostConversation(post, replies, likes)}))
    server.files["/.fedipress/api/v1/conversations"] = (
        "application/json", json.dumps(conv.to_json()).encode())


def _build(root: Path, server: Loopback) -> list[str]:
    said: list[str] = []
    env = {"FEDIPRESS_SERVICE_URL": server.base, "FEDIPRESS_SERVICE_TOKEN": TOKEN,
           "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1"}
    run_build(load_config(root / "site.yaml"), BuildOptions(), log=said.append,
              warn=said.append, environ=env)
    return said


def _page(root: Path) -> str:
    return (root / "public" / "posts" / "first" / "index.html").read_text()


def _srcs(page: str) -> list[str]:
    return re.findall(r'<img class="u-photo conv-avatar" src="([^"]*)"', page)


def test_off_by_default_pages_reference_https_avatars_and_nothing_is_fetched(
        tmp_path: Path, loopback: Loopback) -> None:
    root = _blog(tmp_path / "blog", cache=False)
    https_avatar = "https://127.0.0.1:1/ann.png"  # would fail loudly if anything fetched it
    loopback.files["/bob.png"] = ("image/png", png(40))
    _serve_conversation(loopback, {"ann": https_avatar, "bob": loopback.base + "bob.png"})
    said = _build(root, loopback)
    assert loopback.images() == []  # the image server heard nothing
    assert loopback.requests == ["/.fedipress/api/v1/conversations"]
    page = _page(root)
    assert "Reply by Bob" in page
    assert set(_srcs(page)) == {https_avatar}  # Bob's http avatar: a placeholder
    assert not (root / "public" / "avatars").exists()
    assert not any("avatar" in line for line in said)


def test_on_pages_reference_local_copies_written_as_outputs(
        tmp_path: Path, loopback: Loopback) -> None:
    root = _blog(tmp_path / "blog", cache=True)
    first = png(40)
    loopback.files.update({
        "/ann.png": ("image/png", first),
        "/huge.png": ("image/png", png(1100)),  # over 1,024 pixels a side
        "/svg.png": ("image/png", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    })
    unreachable = "https://127.0.0.1:1/gone.png"
    remote = {"ann": loopback.base + "ann.png", "bob": loopback.base + "huge.png",
              "cat": loopback.base + "svg.png", "dan": unreachable}
    _serve_conversation(loopback, remote)
    said = _build(root, loopback)

    name = f"avatars/{hashlib.sha256(first).hexdigest()[:32]}.png"
    assert (root / "public" / name).read_bytes() == first
    assert sorted(p.name for p in (root / "public" / "avatars").iterdir()) == [name[8:]]
    page = _page(root)
    assert set(_srcs(page)) == {"/" + name}  # Ann's reply and like: the local copy
    for url in remote.values():
        assert url not in page  # no remote avatar, not even for those without a copy
    assert page.count('conv-avatar-none" role="img" aria-label="Bob"') == 1
    assert 'aria-label="Cat"' in page and 'aria-label="Dan"' in page
    notes = [line for line in said if "avatar" in line]
    assert len(notes) == 1, said
    assert notes[0].startswith("note: 3 avatars not copied, shown as a placeholder: ")
    assert notes[0].endswith("(and 2 more)")
    # The build manifest knows the copy as an output of its own.
    assert name.encode() in (root / ".fedipress" / "cache" / "build-manifest.marshal").read_bytes()

    # Ann changes her picture (the cache is refreshed): a new file, a new page, the old one gone.
    second = png(40, shade=0x20)
    loopback.files["/ann.png"] = ("image/png", second)
    shutil.rmtree(root / ".fedipress" / "cache" / "avatars")
    _build(root, loopback)
    new = f"avatars/{hashlib.sha256(second).hexdigest()[:32]}.png"
    assert set(_srcs(_page(root))) == {"/" + new}
    assert sorted(p.name for p in (root / "public" / "avatars").iterdir()) == [new[8:]]

    # Turned off again: the https avatars are back (Dan's), the copies removed, nothing fetched.
    before = len(loopback.images())
    (root / "site.yaml").write_text(site_yaml("https://blog.example/"))
    _build(root, loopback)
    assert set(_srcs(_page(root))) == {unreachable}
    assert not list((root / "public").glob("avatars/*"))
    assert len(loopback.images()) == before
