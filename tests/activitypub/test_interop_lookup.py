"""Issue 3: a blog built by fedipress can be looked up by an independent implementation.

The fixture site is built with `fedipress build`, served by `fedipress serve` the way a
production host must serve it, and then Fedify (tests/interop/peer.mjs) resolves the handle,
the actor, its key, its outbox and followers, and posts by their object URL and by their HTML
page. Lookups run with Mastodon's Content-Type rule on (see interop_peer.start_peer).

The negative test serves the same build with `python -m http.server`, which sends
application/json for .json files: the lookup must fail, and the reason must name the type.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.interop_peer import free_port, lookup, require_harness, start_peer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SITE = FIXTURES / "sites" / "basic"
HANDLE_USER = "tester"  # author.handle in the fixture's site.yaml
AP_JSON = "application/activity+json"


@dataclass(frozen=True)
class ServedBlog:
    root: Path
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def handle(self) -> str:
        return f"{HANDLE_USER}@127.0.0.1:{self.port}"

    @property
    def actor_id(self) -> str:
        return self.base + "actor.json"

    @property
    def public(self) -> Path:
        return self.root / "public"


def _fedipress(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedipress.cli", *args]


def _copy_site(tmp: Path) -> Path:
    root = tmp / "blog"
    shutil.copytree(SITE, root)
    # The committed test key pair: the build publishes the public half, and the private half
    # is where publish would look for it (the inbox and publish tests reuse this site shape).
    shutil.copy(FIXTURES / "keys" / "blog-public.pem", root / "fedipress-public-key.pem")
    state = root / ".fedipress"
    state.mkdir()
    private = state / "private-key.pem"
    shutil.copy(FIXTURES / "keys" / "blog-private.pem", private)
    private.chmod(0o600)
    return root


def _build(root: Path, port: int) -> None:
    completed = subprocess.run(
        _fedipress("build", "--base-url", f"http://127.0.0.1:{port}/", "--quiet"),
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 0, completed.stderr


def _wait_http(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode} before {url}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within 30 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class _TypedHandler(SimpleHTTPRequestHandler):
    """Only used while fedipress.generator.devserver does not exist: production content types."""

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        from fedipress.generator.contenttypes import content_type_for

        relative = Path(path).relative_to(Path(self.directory)).as_posix()
        return content_type_for(relative)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def blog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedBlog]:
    require_harness()
    root = _copy_site(tmp_path_factory.mktemp("served"))
    port = free_port()
    _build(root, port)
    served = ServedBlog(root, port)
    webfinger = f"{served.base}.well-known/webfinger?resource=acct:{served.handle}"
    if importlib.util.find_spec("fedipress.generator.devserver") is not None:
        log = (root.parent / "serve.log").open("wb")
        process = subprocess.Popen(
            _fedipress("serve", "--port", str(port), "--no-reload",
                       "--base-url", served.base),
            cwd=root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        try:
            _wait_http(webfinger, process)
            yield served
        finally:
            _stop(process)
            log.close()
    else:
        handler = lambda *a: _TypedHandler(*a, directory=str(served.public))  # noqa: E731
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            _wait_http(webfinger)
            yield served
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    """The resolved object, or a failure that shows what Fedify and the server said."""
    assert result["ok"], (
        f"Fedify lookup of {result['target']} failed: {result.get('error')}\n"
        f"fetches: {result.get('fetches')}\nFedify: {result.get('fedify_log')}"
    )
    assert result["returncode"] == 0
    obj: dict[str, Any] = result["object"]
    return obj


def _published_slugs(blog: ServedBlog) -> set[str]:
    return {p.parent.name for p in (blog.public / "posts").glob("*/object.json")}


# --- the handle, the actor and its key ---------------------------------------------------------


def test_handle_resolves_through_webfinger_to_the_actor(blog: ServedBlog) -> None:
    result = lookup(blog.handle)
    actor = _ok(result)

    jrd = result["webfinger"]
    assert jrd["subject"] == f"acct:{blog.handle}"
    self_links = [link for link in jrd["links"] if link["rel"] == "self"]
    assert [link["href"] for link in self_links] == [blog.actor_id]
    assert self_links[0]["type"] == AP_JSON

    assert actor["kind"] == "actor"
    assert actor["type"] == "Person"
    assert actor["id"] == blog.actor_id
    assert actor["preferred_username"] == HANDLE_USER
    assert actor["name"] == "Test Author"
    assert actor["inbox"] == blog.base + "inbox"
    assert actor["shared_inbox"] == blog.base + "inbox"
    assert actor["outbox_id"] == blog.base + "outbox.json"
    assert actor["followers_id"] == blog.base + "followers.json"

    # Every document Fedify fetched came with the type Mastodon requires (strict mode would
    # have refused the lookup otherwise; this says which requests were made).
    fetched = {
        f["url"]: f["content_type"] for f in result["fetches"] if "webfinger" not in f["url"]
    }
    assert fetched[blog.actor_id] == AP_JSON
    assert all(ct == AP_JSON for ct in fetched.values()), fetched


def test_actor_key_parses_as_rsa_owned_by_the_actor(blog: ServedBlog) -> None:
    key = _ok(lookup(blog.handle))["public_key"]
    assert key == {
        "id": blog.actor_id + "#main-key",
        "owner": blog.actor_id,
        "parsed": True,
        "algorithm": "RSASSA-PKCS1-v1_5",
        "modulus_bits": 2048,  # tests/fixtures/keys/blog-public.pem
    }


def test_actor_url_resolves_to_the_same_actor(blog: ServedBlog) -> None:
    actor = _ok(lookup(blog.actor_id))
    assert actor["kind"] == "actor"
    assert actor["id"] == blog.actor_id
    assert actor["public_key"]["parsed"] is True


# --- collections -------------------------------------------------------------------------------


def test_outbox_lists_every_published_post_as_create(blog: ServedBlog) -> None:
    actor = _ok(lookup(blog.handle))
    outbox = actor["outbox"]
    slugs = _published_slugs(blog)
    # The fixture has three published posts (one draft, one future post are left out).
    assert slugs == {"hello", "tomatoes", "watching"}

    assert outbox["type"] == "OrderedCollection"
    assert outbox["total_items"] == len(slugs)
    assert outbox["first"] is not None, "Mastodon treats a collection without `first` as hidden"
    assert outbox["traversed_count"] == len(slugs)

    items = outbox["first_page_items"]
    assert items, "the first outbox page is empty"
    objects = {}
    for item in items:
        assert item["type"] == "Create"
        assert item["actor"] == blog.actor_id
        assert item["object"]["attributed_to"] == blog.actor_id
        objects[item["object"]["id"]] = item["object"]
    expected = {blog.base + f"posts/{slug}/object.json" for slug in slugs}
    assert set(objects) <= expected
    # Newest first: the fixture's newest post leads the first page.
    assert items[0]["object"]["id"] == blog.base + "posts/watching/object.json"


def test_followers_collection_is_countable_and_empty(blog: ServedBlog) -> None:
    followers = _ok(lookup(blog.handle))["followers"]
    assert followers["id"] == blog.base + "followers.json"
    assert followers["total_items"] == 0
    assert followers["traversed_count"] == 0


# --- posts -------------------------------------------------------------------------------------


def _check_tomatoes(post: dict[str, Any], blog: ServedBlog) -> None:
    # Expectations come from the fixture's Markdown, not from our own JSON.
    assert post["kind"] == "object"
    assert post["type"] == "Note"
    assert post["id"] == blog.base + "posts/tomatoes/object.json"
    assert post["attributed_to"] == blog.actor_id
    assert post["url"] == blog.base + "posts/tomatoes/"
    assert post["published"] == "2026-10-02T16:30:00Z"  # 18:30+02:00 in front matter
    assert "Late, small and delicious." in post["content"]
    assert "Tomatoes &amp; peppers" in post["content"]
    assert "https://www.w3.org/ns/activitystreams#Public" in post["to"]
    assert blog.base + "followers.json" in post["cc"]
    assert {"type": "Hashtag", "name": "#garden", "href": blog.base + "tags/garden/"} in post[
        "tags"
    ]
    assert post["attachments"] == [
        {
            "type": "Image",
            "name": "A red tomato",
            "media_type": "image/svg+xml",
            "url": blog.base + "posts/tomatoes/tomato.svg",
        }
    ]


def test_post_object_resolves_by_its_id(blog: ServedBlog) -> None:
    _check_tomatoes(_ok(lookup(blog.base + "posts/tomatoes/object.json")), blog)


def test_post_resolves_from_its_html_page_via_link_alternate(blog: ServedBlog) -> None:
    page = blog.base + "posts/tomatoes/"
    result = lookup(page)
    _check_tomatoes(_ok(result), blog)
    # Fedify got HTML first and followed <link rel="alternate" type="application/activity+json">.
    first, second = result["fetches"][0], result["fetches"][1]
    assert first["url"] == page
    assert first["content_type"].startswith("text/html")
    assert second["url"] == blog.base + "posts/tomatoes/object.json"
    assert second["content_type"] == AP_JSON


def test_text_and_links_survive_fedify_parsing(blog: ServedBlog) -> None:
    post = _ok(lookup(blog.base + "posts/hello/"))
    assert post["id"] == blog.base + "posts/hello/object.json"
    # `& "quotes" ]]>` in the Markdown arrive as escaped text.
    assert "&amp;" in post["content"]
    assert "]]&gt;" in post["content"]
    # The relative Markdown link [about page](/about/) is absolute: remote servers have no base.
    assert f'href="{blog.base}about/"' in post["content"]
    names = {tag["name"].lower() for tag in post["tags"] if tag["type"] == "Hashtag"}
    assert names == {"#meta", "#fediverse"}


# --- the wrong host ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_static_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedBlog]:
    """The same site served by `python -m http.server`: .json goes out as application/json."""
    require_harness()
    root = _copy_site(tmp_path_factory.mktemp("plain"))
    port = free_port()
    _build(root, port)
    served = ServedBlog(root, port)
    log = (root.parent / "http-server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(served.public)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        _wait_http(served.base + "actor.json", process)
        yield served
    finally:
        _stop(process)
        log.close()


def test_wrong_content_type_makes_the_actor_lookup_fail(plain_static_host: ServedBlog) -> None:
    result = lookup(plain_static_host.handle)
    assert not result["ok"]
    assert result["returncode"] == 1
    assert "object" not in result
    # The reason names the document and the type it was served with.
    assert f"{plain_static_host.actor_id} was served as application/json" in result["error"]
    assert "application/json" in result["stderr"]


def test_wrong_content_type_makes_the_post_lookup_fail(plain_static_host: ServedBlog) -> None:
    result = lookup(plain_static_host.base + "posts/tomatoes/")
    assert not result["ok"]
    assert "posts/tomatoes/object.json was served as application/json" in result["error"]


def test_fedify_alone_tolerates_application_json(plain_static_host: ServedBlog) -> None:
    """Why the harness adds Mastodon's rule: Fedify 1.9 parses application/json anyway.

    If this starts failing, Fedify became strict itself and the harness rule can go.
    """
    result = lookup(plain_static_host.handle, strict_content_type=False)
    actor = _ok(result)
    assert actor["id"] == plain_static_host.actor_id
    types = {f["url"]: f["content_type"] for f in result["fetches"]}
    assert types[plain_static_host.actor_id] == "application/json"


# --- the harness itself ------------------------------------------------------------------------


def test_missing_harness_skips_locally_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from support import interop_peer

    monkeypatch.setattr(interop_peer, "NODE", tmp_path / "no-node")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        interop_peer.require_harness()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="npm ci"):
        interop_peer.require_harness()


def test_peer_follow_is_verified_and_accept_is_matched(tmp_path: Path) -> None:
    """The peer's own plumbing, peer to peer: what later interop tests rely on."""
    with (
        start_peer(tmp_path, username="bob") as bob,
        start_peer(tmp_path, username="carol") as carol,
    ):
        sent = carol.follow(bob.handle)
        assert sent["actor"] == bob.actor_id

        follow = bob.wait_for(lambda a: a["type"] == "Follow")
        assert follow["id"] == sent["id"]
        assert follow["actor"] == carol.actor_id
        assert follow["verified"] is True
        assert follow["signature"]["scheme"] == "rfc9421"  # Fedify's first knock
        assert follow["signature"]["key_id"] == carol.actor_id + "#main-key"

        accept = carol.wait_for(lambda a: a["type"] == "Accept")
        assert accept["matched_follow"] is True
        assert accept["matched_follow_id"] == sent["id"]
        assert bob.followers() == [carol.actor_id]

        undo = carol.undo_follow()
        assert bob.wait_for(lambda a: a["type"] == "Undo")["id"] == undo["id"]
        assert bob.followers() == []

        # The log file holds the same entries as the control API, one JSON object a line.
        logged = [json.loads(line) for line in bob.log_path.read_text().splitlines()]
        assert [e["id"] for e in logged] == [e["id"] for e in bob.received()]


def test_peer_refuses_and_logs_an_unsigned_delivery(tmp_path: Path) -> None:
    with start_peer(tmp_path) as bob:
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": "http://127.0.0.1:9/activities/forged",
            "type": "Create",
            "actor": "http://127.0.0.1:9/users/mallory",
            "object": {"id": "http://127.0.0.1:9/notes/1", "type": "Note", "content": "hi"},
        }
        response = httpx.post(
            bob.inbox, json=activity, headers={"Content-Type": AP_JSON}, timeout=30
        )
        assert response.status_code == 401
        [entry] = bob.received()
        assert entry["verified"] is False
        assert entry["status"] == 401
        assert entry["id"] == activity["id"]
        assert entry["signature"]["scheme"] is None
