"""Performance shortcuts in the build must give the same bytes as the plain computation."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fedipress.activitypub.site import federation_manifest
from fedipress.config import load_config
from fedipress.federation.manifest import (
    FederationManifest,
    entry_from_object_json,
    read_federation_manifest,
)
from fedipress.generator.build import Builder
from fedipress.generator.content import load_site

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _site(dest: Path) -> Path:
    shutil.copytree(FIXTURES / "sites" / "basic", dest)
    shutil.copy(FIXTURES / "keys" / "blog-public.pem", dest / "fedipress-public-key.pem")
    return dest


def _expected(root: Path) -> str:
    config = load_config(root / "site.yaml")
    site = load_site(config, now=NOW).site
    pem = (root / "fedipress-public-key.pem").read_bytes()
    return json.dumps(federation_manifest(site, pem), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def _manifest(root: Path) -> str:
    """The federation manifest the build wrote (manifest.json and its object files), in the
    form _expected gives."""
    data = read_federation_manifest(root / ".fedipress")
    # The build's flags (recorded for publish) are not part of the documents.
    assert data.pop("build") == {"drafts": False, "future": False}
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_cached_federation_objects_equal_federation_manifest(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    post = root / "content" / "posts" / "2026-11-01-watching.md"

    def builder() -> Builder:
        return Builder(load_config(root / "site.yaml"), log=lambda _line: None)

    builder().build(now=NOW)
    assert _manifest(root) == _expected(root)
    cache = root / ".fedipress" / "cache" / "federation-objects.marshal"
    assert cache.is_file()

    # A fresh process after an edit: the other objects come from the cache file.
    with post.open("a", encoding="utf-8") as f:
        f.write("\nA new closing paragraph.\n")
    builder().build(now=NOW)
    assert "A new closing paragraph." in _manifest(root)
    assert _manifest(root) == _expected(root)

    # The dev server's builder keeps the cache in memory across edits and removals.
    b = builder()
    b.build(now=NOW)
    with post.open("a", encoding="utf-8") as f:
        f.write("\nAnd another one.\n")
    b.build([post], now=NOW)
    assert _manifest(root) == _expected(root)
    (root / "content" / "posts" / "2026-09-14-hello.md").unlink()
    b.build(now=NOW)
    assert _manifest(root) == _expected(root)
    assert len(json.loads(_manifest(root))["objects"]) == 2


def test_damaged_object_cache_is_recomputed(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    cache = root / ".fedipress" / "cache" / "federation-objects.marshal"
    cache.write_bytes(b"\x00garbage")
    os.remove(root / ".fedipress" / "manifest.json")
    Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    assert _manifest(root) == _expected(root)


# --- the reducer's fast tokenizer ---------------------------------------------------------------

_PIECES = [
    "<p>", "</p>", '<a href="x/y">', "<a href='../z' class=\"mention hashtag foo\">", "</a>",
    "<br>", "<br/>", "<br />", '<img src="a.png" alt="A &amp; b" width="10">', "<h2 id=x>",
    "</h2>", "<table>", "<tr>", "<td>", "</td>", "<th>", "</tr>", "</table>", " ", "\n", "text",
    "&amp;", "&lt;", "&rsquo;", "&", "<", ">", "<!-- c -->", "<!---->", "<!-- a -- b -->",
    "<script>x<p></script>", "<style>", "</style>", '<div class="h-entry x">', "</div>",
    '<span class="h-card">', "</span>", '<ol start="3">', "<li value=2>", "</li>", "</ol>",
    '<A HREF="Q">', "</A>", "<a href=x=y>", "<a href= >", '<a "q">', '<a href="x"title="y">',
    '<a / href="x">', "<em>", "</em>", "<code>", "</code>", "<pre>", "</pre>", "<figcaption>",
    "</figcaption>", "<svg><p>in</p></svg>", "<![CDATA[x]]>", "<!DOCTYPE html>", "<?pi?>",
    "</ p>", '<a\nhref="n">', "<input disabled>", "<hr/>", "<p/>", "<span/>",
    '<a href="&quot;x">', "'", '"',
]


def _reduced_by_html_parser(source: str, base_url: str) -> object:
    from fedipress.activitypub import reduce as r

    # The plain path: html.parser drives _Reducer and nh3 always runs (reduce_html's one-pass
    # reading and its nh3 shortcut are what is under test).
    parser = r._Reducer(base_url)
    parser.feed(source)
    parser.close()
    cleaned = r._clean("".join(parser.out)).replace("<p></p>", "").strip()
    return r.Reduced(html=cleaned, images=tuple(parser.images))


def test_fast_reduction_equals_html_parser() -> None:
    import random

    from fedipress.activitypub.reduce import _fast_tokens, reduce_html
    from fedipress.generator.markup import render_markdown

    base = "https://blog.example/posts/x/"
    rnd = random.Random(7)
    for _ in range(3000):
        source = "".join(rnd.choice(_PIECES) for _ in range(rnd.randint(1, 25)))
        assert reduce_html(source, base_url=base) == _reduced_by_html_parser(source, base), source
    # Markdown's own output takes the fast path (else the test above proves nothing about it).
    body = render_markdown(
        "## Title\n\nSome *text* with [a link](../a/) and `code`, & more.\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n![pic](p.png)\n\n```python\nx = 1 < 2\n```\n",
        page_url=base, site_url="https://blog.example/",
    ).html
    assert _fast_tokens(body) is not None
    assert reduce_html(body, base_url=base) == _reduced_by_html_parser(body, base)


# --- the post cache -----------------------------------------------------------------------------


def test_post_cache_reuses_a_parse_by_stat_and_matches_a_fresh_parse(tmp_path: Path) -> None:
    from fedipress.generator.content import ParseCache

    root = _site(tmp_path / "blog")
    config = load_config(root / "site.yaml")
    fresh = load_site(config, now=NOW).site
    cache = ParseCache.for_site(config)
    cache.load()
    first = load_site(config, now=NOW, cache=cache).site
    cache.save()
    assert first == fresh and all(p.fingerprint for p in first.posts)

    again = ParseCache.for_site(config)
    again.load()
    second = load_site(config, now=NOW, cache=again).site
    assert second == fresh  # from the cache files: same posts, fingerprints included

    # Same size and mtime: the cached parse is used without reading the file ...
    post = root / "content" / "posts" / "2026-11-01-watching.md"
    st = post.stat()
    text = post.read_text(encoding="utf-8")
    swapped = text.replace("title:", "title: X", 1)[: len(text)]
    assert len(swapped.encode()) == st.st_size and swapped != text
    post.write_text(swapped, encoding="utf-8")
    os.utime(post, ns=(st.st_atime_ns, st.st_mtime_ns))
    third = ParseCache.for_site(config)
    third.load()
    assert load_site(config, now=NOW, cache=third).site == fresh
    # ... and any other mtime means the file is parsed again.
    os.utime(post, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    fourth = ParseCache.for_site(config)
    fourth.load()
    changed = load_site(config, now=NOW, cache=fourth).site
    assert changed == load_site(config, now=NOW).site != fresh
    edited = {p.source: p for p in changed.posts}["posts/2026-11-01-watching.md"]
    before = {p.source: p for p in fresh.posts}["posts/2026-11-01-watching.md"]
    assert edited.title != before.title and edited.fingerprint != before.fingerprint


def test_post_cache_is_keyed_by_the_config(tmp_path: Path) -> None:
    from dataclasses import replace

    from fedipress.generator.content import ParseCache

    root = _site(tmp_path / "blog")
    config = load_config(root / "site.yaml")
    cache = ParseCache.for_site(config)
    load_site(config, now=NOW, cache=cache)
    cache.save()
    other = replace(config, base_url="https://elsewhere.example/")
    again = ParseCache.for_site(other)
    again.load()
    site = load_site(other, now=NOW, cache=again).site
    assert site == load_site(other, now=NOW).site
    assert all(p.url.startswith("https://elsewhere.example/") for p in site.posts)


def test_post_pages_fingerprinted_by_post_follow_neighbour_edits(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    builder = Builder(load_config(root / "site.yaml"), log=lambda _line: None)
    builder.build(now=NOW)
    public = root / "public"
    pages = {p: p.read_bytes() for p in public.rglob("index.html")}
    post = root / "content" / "posts" / "2026-11-01-watching.md"
    text = post.read_text(encoding="utf-8")
    title = next(line for line in text.splitlines() if line.startswith("title:"))
    post.write_text(text.replace(title, "title: A brand new title", 1), encoding="utf-8")
    result = builder.build([post], now=NOW)
    changed = {p for p, data in pages.items() if p.read_bytes() != data}
    assert result.written >= len(changed) >= 3  # the post, its older neighbour, home at least
    neighbours = [p for p in changed if b"A brand new title" in p.read_bytes()]
    assert len(neighbours) >= 3
    # The older neighbour's page links to it as "newer": re-rendered though it did not change.
    older = next(p for p in pages if "tomatoes" in p.as_posix() and "tags" not in p.parts)
    assert older in changed and b"A brand new title" in older.read_bytes()
    # The targeted rebuild left the manifest file as it was (memory only): a fresh builder
    # renders what changed since, to the same bytes, and then plans the same fingerprints.
    after = {p: p.read_bytes() for p in public.rglob("*") if p.is_file()}
    Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    assert {p: p.read_bytes() for p in public.rglob("*") if p.is_file()} == after
    again = Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    assert again.skipped_render == again.files


def test_indented_json_equals_json_dumps_with_indent() -> None:
    import random

    from fedipress.activitypub.documents import indented_json

    rnd = random.Random(3)

    def value(depth: int = 0) -> object:
        kind = rnd.randint(0, 9 if depth < 4 else 5)
        if kind == 0:
            return rnd.choice(["", "a", 'q"uo\\te', "{[,:]}", "é ünï \u2028 \n\t", '\\"', "x\\"])
        if kind == 1:
            return rnd.randint(-10**6, 10**6)
        if kind == 2:
            return rnd.random() * 1e10
        if kind == 3:
            return rnd.choice([True, False, None])
        if kind == 4:
            return rnd.choice([[], {}])
        if kind == 5:
            return "s" * rnd.randint(0, 3)
        if kind in (6, 7):
            keys = ["a", "b", ":", ",", "{", '"k', "z"]
            return {rnd.choice(keys) + str(i): value(depth + 1) for i in range(rnd.randint(0, 4))}
        return [value(depth + 1) for _ in range(rnd.randint(0, 4))]

    for _ in range(3000):
        v = value()
        for sort_keys in (False, True):
            for level in (0, 2):
                expected = json.dumps(v, ensure_ascii=False, indent=2, sort_keys=sort_keys)
                expected = expected.replace("\n", "\n" + "  " * level)
                assert indented_json(v, sort_keys=sort_keys, level=level) == expected
    # What the direct writer hands to the general path: floats that are not finite, tuples,
    # keys that are not strings, subclasses of str, dict and int.

    class Text(str):
        pass

    class Table(dict):  # type: ignore[type-arg]
        pass

    unusual: list[object] = [
        float("nan"), float("inf"), -0.0, (1, "a"), {1: "x", 2: [True]}, {True: None},
        Text("t"), Table(b=1, a=2), [{"k": (3.5, None)}], {"a": {"b": [1, 2.0]}},
    ]
    for v in unusual:
        for sort_keys in (False, True):
            expected = json.dumps(v, ensure_ascii=False, indent=2, sort_keys=sort_keys)
            assert indented_json(v, sort_keys=sort_keys) == expected


def test_outputs_reused_between_in_process_builds_render_the_same_bytes(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    builder = Builder(load_config(root / "site.yaml"), log=lambda _line: None)
    builder.build(now=NOW)
    public = root / "public"
    edited = root / "content" / "posts" / "2026-11-01-watching.md"
    with edited.open("a", encoding="utf-8") as f:
        f.write("\nA later paragraph.\n")
    builder.build([edited], now=NOW)
    expected = {p: p.read_bytes() for p in public.rglob("*") if p.is_file()}
    # Outputs of the unchanged post come from the builder's memo (planned by the first
    # build); deleted, they are rendered again through the current plan.
    hello = [p for p in expected if "hello" in p.as_posix() and "tags" not in p.parts]
    assert {p.name for p in hello} >= {"index.html", "object.json"}
    for p in hello:
        p.unlink()
    result = builder.build(now=NOW)
    assert result.written == len(hello)
    assert {p: p.read_bytes() for p in public.rglob("*") if p.is_file()} == expected


def test_targeted_rebuild_walks_the_content_folder_only_when_files_come_or_go(
        tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    builder = Builder(load_config(root / "site.yaml"), log=lambda _line: None)
    builder.build(now=NOW)
    posts = root / "content" / "posts"
    edited = posts / "2026-11-01-watching.md"
    with edited.open("a", encoding="utf-8") as f:
        f.write("\nEdited in place.\n")
    assert builder._known_sources([edited])  # an edit: the last build's list is enough
    builder.build([edited], now=NOW)
    assert "Edited in place." in _manifest(root)
    # A new file is not in that list: the folder is walked and the post appears.
    new = posts / "2026-11-20-new.md"
    new.write_text("---\ntitle: Brand new\n---\nFresh.\n", encoding="utf-8")
    assert builder._known_sources([new]) is None
    builder.build([new], now=NOW)
    assert "Brand new" in (root / "public" / "index.html").read_text(encoding="utf-8")
    # A removed one neither.
    new.unlink()
    assert builder._known_sources([new]) is None
    builder.build([new], now=NOW)
    assert "Brand new" not in (root / "public" / "index.html").read_text(encoding="utf-8")
    assert _manifest(root) == _expected(root)


def test_markup_cache_edits_go_to_a_delta_file(tmp_path: Path) -> None:
    from fedipress.generator.content import ParseCache

    root = _site(tmp_path / "blog")
    config = load_config(root / "site.yaml")
    cache = ParseCache.for_site(config)
    load_site(config, now=NOW, cache=cache)
    cache.save()
    base = cache.path.read_bytes()
    post = root / "content" / "posts" / "2026-11-01-watching.md"
    with post.open("a", encoding="utf-8") as f:
        f.write("\nDelta paragraph.\n")
    second = ParseCache.for_site(config)
    second.load()
    site = load_site(config, now=NOW, cache=second).site
    assert (second.hits, second.misses) == (len(site.posts) + len(site.pages) - 1, 1)
    second.save()
    assert cache.path.read_bytes() == base and cache.delta_path.is_file()
    # Base plus delta is exactly what the build used: the edited post's old rendering is gone.
    third = ParseCache.for_site(config)
    third.load()
    assert len(third) == len(second) == len(site.posts) + len(site.pages)
    assert load_site(config, now=NOW, cache=third).site == load_site(config, now=NOW).site
    assert third.misses == 0


def test_parallel_cold_build_writes_the_same_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fedipress.generator.outputsync

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}

    serial = _site(tmp_path / "serial")
    Builder(load_config(serial / "site.yaml"), log=lambda _line: None, workers=1).build(now=NOW)
    monkeypatch.setattr(fedipress.generator.outputsync, "PARALLEL_RENDER_THRESHOLD", 5)
    in_parent: list[Path] = []
    real_write = fedipress.generator.outputsync.write_atomic

    def write(path: Path, data: bytes, *, clear_way: bool = False) -> os.stat_result:
        in_parent.append(path)  # a forked worker appends to its own copy of the list
        return real_write(path, data, clear_way=clear_way)

    monkeypatch.setattr(fedipress.generator.outputsync, "write_atomic", write)
    in_parent_entries: list[str] = []
    real_entry = FederationManifest._manifest_entry

    def entry(self: FederationManifest, site: Any, post: Any,
              fp: str | None) -> tuple[str | None, str, bytes]:
        in_parent_entries.append(post.path)
        return real_entry(self, site, post, fp)

    monkeypatch.setattr(FederationManifest, "_manifest_entry", entry)
    parallel = _site(tmp_path / "parallel")
    result = Builder(load_config(parallel / "site.yaml"), log=lambda _line: None,
                     workers=2).build(now=NOW)
    assert result.written > 5
    # The pages were written by worker processes: the parent wrote only its caches.
    assert not any((parallel / "public") in p.parents for p in in_parent)
    # ...and the workers also made the federation manifest's entries from the object
    # documents they rendered: none was read back or built again here.
    assert in_parent_entries == []
    assert fedipress.generator.outputsync._JOBS == []
    assert fedipress.generator.outputsync._JOB_AFTER is None
    assert tree(parallel / "public") == tree(serial / "public")
    assert _manifest(parallel) == _manifest(serial) == _expected(parallel)


def test_manifest_entries_computed_by_workers_equal_the_plain_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _site(tmp_path / "blog")
    builder = Builder(load_config(root / "site.yaml"), log=lambda _line: None, workers=2)
    builder.build(now=NOW)
    (root / ".fedipress" / "manifest.json").unlink()  # nothing to splice from
    site = load_site(load_config(root / "site.yaml"), now=NOW).site
    missing = [(p, builder._object_fps.get(p.path + "object.json")) for p in site.posts]
    serial = builder._federation._manifest_entries(site, missing)
    monkeypatch.setattr("fedipress.generator.outputsync.PARALLEL_RENDER_THRESHOLD", 1)
    many = missing * 400  # over the pool's threshold
    parallel = builder._federation._manifest_entries(site, many)
    assert parallel == serial * 400
    builder.build(now=NOW)
    assert _manifest(root) == _expected(root)


def test_activitypub_plan_memo_reuses_outputs_and_follows_counts(tmp_path: Path) -> None:
    from fedipress.activitypub.documents import federated_posts
    from fedipress.activitypub.site import plan_activitypub

    root = _site(tmp_path / "blog")
    site = load_site(load_config(root / "site.yaml"), now=NOW).site
    pem = (root / "fedipress-public-key.pem").read_bytes()
    memo: dict[tuple[object, ...], object] = {}
    first = {o.path: o for o in plan_activitypub(site, pem, fingerprint_salt="s", memo=memo)}
    post = federated_posts(site)[0]
    counts = {post.url + "object.json": {"likes": 3}}
    second = {o.path: o for o in plan_activitypub(site, pem, fingerprint_salt="s", memo=memo,
                                                  interaction_counts=counts)}
    changed = {p for p, o in second.items() if o.fingerprint != first[p].fingerprint}
    # The post object embeds its counts (issue 14), and so does the outbox page embedding it.
    assert changed == {post.path + "likes.json", post.path + "object.json", "outbox/page-1.json"}
    assert b'"totalItems": 3' in second[post.path + "likes.json"].render()
    other = federated_posts(site)[1]
    assert second[other.path + "object.json"] is first[other.path + "object.json"]
    assert json.loads(second[other.path + "object.json"].render())["id"].endswith("object.json")


def test_strays_are_found_in_folders_changed_since_the_last_walk(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")

    def build() -> object:
        return Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)

    build()
    build()  # a no-change build: folders unchanged since the last walk are not listed again
    assert (root / ".fedipress" / "cache" / "build-dirs.marshal").is_file()
    public = root / "public"
    post_dir = next(p.parent for p in public.rglob("object.json"))
    (post_dir / "stray.html").write_text("left by hand")
    (post_dir / "junk").mkdir()
    (post_dir / "junk" / "deeper.txt").write_text("x")
    result = build()
    assert result.removed == 2  # type: ignore[attr-defined]
    assert not (post_dir / "stray.html").exists() and not (post_dir / "junk").exists()
    # And the walk after that removal saw the folder as it is now: nothing left to remove.
    assert build().removed == 0  # type: ignore[attr-defined]


def test_an_edit_rewrites_only_the_object_file_holding_the_post(tmp_path: Path) -> None:
    from fedipress.federation.manifest import shard_of

    root = _site(tmp_path / "blog")
    post = root / "content" / "posts" / "2026-11-01-watching.md"
    folder = root / ".fedipress" / "federation"

    def build() -> None:
        Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)

    def files() -> dict[str, tuple[int, int]]:
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}

    build()
    before = files()
    objects = read_federation_manifest(root / ".fedipress")["objects"]
    assert len(before) == len({shard_of(oid) for oid in objects}) > 1
    for name in before:  # each file is a plain JSON object of its share of the objects
        text = (folder / name).read_text(encoding="utf-8")
        part = json.loads(text)
        assert text == json.dumps(part, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert {shard_of(oid) for oid in part} == {int(name.split("-")[1])}
    edited = next(oid for oid in objects if "watching" in oid)
    with post.open("a", encoding="utf-8") as f:
        f.write("\nOne more paragraph.\n")
    build()
    after = files()
    number = f"objects-{shard_of(edited):02d}-"
    assert {n for n in before if not n.startswith(number)} \
        == {n for n in after if not n.startswith(number)}
    for name in after:
        if not name.startswith(number):
            assert after[name] == before[name]  # not even rewritten
    (old_name,) = (n for n in before if n.startswith(number))
    (new_name,) = (n for n in after if n.startswith(number))
    assert old_name != new_name  # named by content; the old one is gone
    assert "One more paragraph." in _manifest(root)
    assert _manifest(root) == _expected(root)


def test_object_file_changed_by_hand_is_computed_again(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    build = Builder(load_config(root / "site.yaml"), log=lambda _line: None).build
    build(now=NOW)
    folder = root / ".fedipress" / "federation"
    for path in folder.iterdir():  # same length, other bytes: stale byte ranges
        path.write_text(path.read_text(encoding="utf-8").replace('"', "'"), encoding="utf-8")
    post = root / "content" / "posts" / "2026-11-01-watching.md"
    with post.open("a", encoding="utf-8") as f:
        f.write("\nOne more line.\n")
    Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    assert _manifest(root) == _expected(root)
    (folder / "objects-99-0123456789abcdef.json").write_text("{}")  # left by an older build
    with post.open("a", encoding="utf-8") as f:
        f.write("\nAnd one more.\n")
    Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    assert not (folder / "objects-99-0123456789abcdef.json").exists()
    names = json.loads((root / ".fedipress" / "manifest.json").read_text())["object_files"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_reading_the_manifest_checks_its_object_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "federation").mkdir(parents=True)
    manifest = state / "manifest.json"
    with pytest.raises(FileNotFoundError):
        read_federation_manifest(state)
    # An older build's manifest holds its objects inline: still read.
    manifest.write_text(json.dumps({"actor": {"id": "a"}, "objects": {"x": {"hash": "h"}}}))
    assert read_federation_manifest(state)["objects"] == {"x": {"hash": "h"}}
    for files in (["../../etc/passwd"], ["objects-01-0123456789abcdef.json/.."], "x", [1]):
        manifest.write_text(json.dumps({"actor": {}, "format": 2, "object_files": files}))
        with pytest.raises(ValueError, match="object_files"):
            read_federation_manifest(state)
    name = "objects-01-0123456789abcdef.json"
    manifest.write_text(json.dumps({"actor": {}, "format": 2, "object_files": [name]}))
    with pytest.raises(FileNotFoundError):
        read_federation_manifest(state)
    (state / "federation" / name).write_text("[]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_federation_manifest(state)
    (state / "federation" / name).write_text('{"y": {"hash": "z"}}')
    assert read_federation_manifest(state) == {"actor": {}, "objects": {"y": {"hash": "z"}}}


def test_removing_a_post_rewrites_the_file_it_shared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One object file for all: the removed post's neighbours are still there, unchanged.
    monkeypatch.setattr("fedipress.federation.manifest.SHARDS", 1)
    root = _site(tmp_path / "blog")

    def build() -> None:
        Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)

    build()
    assert len(list((root / ".fedipress" / "federation").iterdir())) == 1
    (root / "content" / "posts" / "2026-09-14-hello.md").unlink()
    build()
    assert len(read_federation_manifest(root / ".fedipress")["objects"]) == 2
    assert _manifest(root) == _expected(root)


def test_a_rebuild_imports_no_signing_network_or_store_code(tmp_path: Path) -> None:
    # A fresh `fedipress build` pays for every import at start-up (10,000 posts: a rebuild's
    # budget is 1.5 s); what only publish and the inbox need must stay out of it.
    import subprocess
    import sys

    root = _site(tmp_path / "blog")
    for _ in range(2):  # the second build finds a cache folder to remember the checked key in
        Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)
    with (root / "content" / "posts" / "2026-11-01-watching.md").open("a") as f:
        f.write("\nOne more paragraph.\n")
    script = (
        "import sys\n"
        "from fedipress.generator.build import Builder\n"
        "from fedipress.config import load_config\n"
        f"Builder(load_config({str(root / 'site.yaml')!r}), log=lambda _l: None).build()\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=120)
    loaded = set(done.stdout.split())
    assert "fedipress.generator.build" in loaded and "fedipress.store.snapshot" in loaded
    for unwanted in ("cryptography", "httpx", "concurrent.futures.process",
                     "multiprocessing", "fedipress.store.protocol",
                     "fedipress.store.sqlite", "fedipress.federation.signing",
                     "fedipress.federation.remote"):
        assert unwanted not in loaded, unwanted


def test_federation_manifest_follows_the_actor_and_skips_when_nothing_changed(
        tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")

    def build() -> None:
        Builder(load_config(root / "site.yaml"), log=lambda _line: None).build(now=NOW)

    build()
    manifest = root / ".fedipress" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    build()
    assert manifest.stat().st_mtime_ns == stamp  # the key says nothing changed
    config = root / "site.yaml"
    config.write_text(config.read_text().replace("  display_name: Test Author",
                                                 "  display_name: Renamed Author"))
    build()
    assert read_federation_manifest(root / ".fedipress")["actor"]["name"] == "Renamed Author"
    assert _manifest(root) == _expected(root)


def test_console_build_ends_the_process_with_everything_written(tmp_path: Path) -> None:
    # The console script ends `fedipress build` with os._exit (no teardown of the loaded
    # site): the summary must still reach a pipe, and every cache and manifest be complete.
    import subprocess
    import sys

    root = _site(tmp_path / "blog")
    command = [sys.executable, "-c", "from fedipress.cli import run; run()", "build",
               "--config", str(root / "site.yaml")]
    # Buffered output, as usual for a pipe (this machine's environment may say otherwise).
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "CI": ""}
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("built ") and first.stdout.endswith(
        " s\nleft out 1 draft and 1 future-dated post (--drafts --future to include them)\n"
    )
    assert _manifest(root) == _expected(root)
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "(0 written," in again.stdout and " 0 removed)" in again.stdout
    broken = subprocess.run([*command[:4], "--config", str(tmp_path / "missing.yaml")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert broken.returncode == 2 and broken.stderr.startswith("fedipress: error: ")


def test_object_json_bytes_give_the_entry_the_manifest_would_compute(tmp_path: Path) -> None:
    root = _site(tmp_path / "blog")
    builder = Builder(load_config(root / "site.yaml"), log=lambda _line: None, workers=1)
    builder.build(now=NOW)
    site = load_site(load_config(root / "site.yaml"), now=NOW).site
    post = site.posts[0]
    rel = post.path + "object.json"
    data = (root / "public" / rel).read_bytes()
    fp = builder._object_fps[rel]
    assert entry_from_object_json(rel, data) == \
        builder._federation._manifest_entry(site, post, fp)[1:]
    # Only object documents, and only ones that read as one.
    assert entry_from_object_json(post.path + "likes.json", data) is None
    assert entry_from_object_json(rel, b"{not json") is None
    assert entry_from_object_json(rel, b'{"type": "Note"}') is None


def test_render_blocks_keep_groups_whole_and_hand_out_the_last_groups_first() -> None:
    from fedipress.generator.outputsync import _BLOCKS_PER_WORKER, _render_blocks

    # 40 groups of 5 outputs (a post's files), then 60 outputs of one group each (lists).
    paths = [f"g{g:02d}/{i}" for g in range(40) for i in range(5)]
    paths += [f"z/{i:02d}" for i in range(60)]
    paths.reverse()  # the given order does not matter, the key does

    def key(path: str) -> tuple[int, str]:
        head, _, tail = path.partition("/")
        return (int(head[1:]), path) if head != "z" else (100 + int(tail), path)

    blocks = _render_blocks(paths, 2, key)
    assert sorted(i for b in blocks for i in b) == list(range(len(paths)))
    size = -(-len(paths) // (2 * _BLOCKS_PER_WORKER))
    for block in blocks:
        groups = [key(paths[i])[0] for i in block]
        assert groups == sorted(groups)
        assert len(block) < size + 5  # a block ends at the first group boundary past size
    owner: dict[int, int] = {}
    for number, block in enumerate(blocks):
        for i in block:
            assert owner.setdefault(key(paths[i])[0], number) == number  # never split
    # The list outputs (the last groups) are handed out first.
    assert {key(paths[i])[0] >= 100 for i in blocks[0]} == {True}
    assert {key(paths[i])[0] for i in blocks[-1]} <= set(range(40))


def test_locality_keeps_each_outbox_page_with_the_posts_it_embeds(tmp_path: Path) -> None:
    from fedipress.activitypub import documents as d
    from fedipress.generator.build import _locality

    site = load_site(load_config(_site(tmp_path / "blog") / "site.yaml"), now=NOW).site
    key = _locality(site)
    posts = d.federated_posts(site)
    assert posts
    for number in range(1, d.outbox_page_count(site) + 1):
        page = key(d.outbox_page_path(number))[0]
        chunk = posts[(number - 1) * d.OUTBOX_PAGE_SIZE:number * d.OUTBOX_PAGE_SIZE]
        for post in chunk:
            assert key(post.path + "object.json")[0] == page
            assert key(post.path + "index.html")[0] == page
    groups = {key(p.path + "index.html")[0] for p in posts}
    assert key("index.html")[0] > max(groups)
    assert key("tags/index.html")[0] != key("index.html")[0]


def _many_posts_site(dest: Path, count: int = 40) -> Path:
    root = _site(dest)
    for i in range(count):
        (root / "content" / "posts" / f"2026-08-{i % 28 + 1:02d}-extra-{i}.md").write_text(
            f"---\ntitle: Extra {i}\n---\nBody of extra post {i}, with *emphasis*.\n")
    return root


def test_templates_are_compiled_while_workers_render_markdown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = Builder._environment

    def environment(self: Builder) -> tuple[Any, str]:
        made.append("env")
        return real(self)

    monkeypatch.setattr(Builder, "_environment", environment)
    root = _many_posts_site(tmp_path / "blog")
    builder = Builder(load_config(root / "site.yaml"), log=lambda _line: None, workers=2)
    builder.build(now=NOW)
    # Made once, while the Markdown workers ran, and taken by the plan (not made again).
    assert made == ["env"]
    assert builder._prepared is None
    compiled = list((root / ".fedipress" / "cache" / "templates").iterdir())
    assert len(compiled) >= 10  # every template of the theme, not only the ones rendered

    serial = _many_posts_site(tmp_path / "serial")
    Builder(load_config(serial / "site.yaml"), log=lambda _line: None, workers=1).build(now=NOW)
    assert made == ["env", "env"]  # no workers: the plan makes its own
    for rel in ("index.html", "posts/extra-3/index.html", "feed.xml"):
        assert (root / "public" / rel).read_bytes() == (serial / "public" / rel).read_bytes()


def test_a_broken_template_is_reported_where_it_is_used_not_while_compiling_ahead(
        tmp_path: Path) -> None:
    from fedipress.errors import ThemeError

    root = _many_posts_site(tmp_path / "blog")
    theme = root / "themes" / "mine"
    (theme / "templates").mkdir(parents=True)
    (theme / "theme.yaml").write_text("extends: default\n")
    (theme / "templates" / "unused.html").write_text("{% if %}\n")  # never rendered
    config_file = root / "site.yaml"
    config_file.write_text(config_file.read_text() + "theme: mine\n")
    Builder(load_config(config_file), log=lambda _line: None, workers=2).build(now=NOW)
    assert (root / "public" / "index.html").is_file()

    (theme / "templates" / "post.html").write_text("{% extends 'base.html' %}\n{% if %}\n")
    with pytest.raises(ThemeError, match=r"themes/mine/templates/post\.html:2"):
        Builder(load_config(config_file), log=lambda _line: None, workers=2).build(
            now=NOW, clean=True)
