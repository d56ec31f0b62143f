"""Every activity publish sends stays under 60 KiB (Misskey's inbox refuses over 64 KiB): a
long post federates an excerpt and a link. Real site files, a real SQLite store, the real key
pair and a real loopback inbox that refuses, as Misskey does, any body over 64 KiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fedipress.activitypub import documents as d
from fedipress.activitypub.site import federation_manifest
from fedipress.cli import main
from fedipress.config import load_config
from fedipress.federation.publish import ActivityTooLargeError, plan_changes
from fedipress.generator.content import load_site
from fedipress.model import Site
from fedipress.store import Follower, open_store
from support.inbox_sink import InboxSink

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BLOG = "https://blog.example/"
LIMIT = 60 * 1024
MISSKEY_LIMIT = 64 * 1024
NOW = datetime.now(UTC)


def site_yaml(post_type: str) -> str:
    return (f"title: Long Blog\nbase_url: {BLOG}\nauthor:\n  name: Tester\n  handle: tester\n"
            f"fediverse:\n  display_name: Tester\n  bio: Long posts.\n"
            f"  post_type: {post_type}\n")


def long_post(root: Path, slug: str = "long", *, extra: str = "", tags: int = 3000,
              summary: bool = True) -> Path:
    """~250 KB of text, thousands of tags, four images with 5,000-character descriptions."""
    date = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    alt = "A very detailed description of the picture. " * 120
    images = "\n\n".join(f"![{alt} {i}](https://cdn.example/img-{i}.png)" for i in range(4))
    paragraphs = "\n\n".join(
        f"Paragraph {i} of a very long article, where 1 < 2 & \"quotes\" é are escaped. " * 12
        for i in range(300))
    tag_list = ", ".join(f"topic{i}" for i in range(tags))
    head = [f"title: A very long article {extra}", f"date: {date}", f"slug: {slug}",
            f"tags: [{tag_list}]",
            f"image:\n  src: https://cdn.example/cover.png\n  alt: {alt.strip()}"]
    if summary:
        head.append("summary: What this long article says, in two sentences. It says a lot.")
    path = root / "content" / "posts" / f"{slug}.md"
    path.write_text("---\n" + "\n".join(head) + f"\n---\n{images}\n\n{paragraphs}\n{extra}\n",
                    encoding="utf-8")
    return path


def make_root(tmp: Path, post_type: str) -> Path:
    root = tmp / "site"
    (root / "content" / "posts").mkdir(parents=True)
    (root / "site.yaml").write_text(site_yaml(post_type))
    (root / "fedipress-public-key.pem").write_bytes(
        (FIXTURES / "keys" / "blog-public.pem").read_bytes())
    return root


def plan_for(root: Path, ledger: Any = None, backfill: int = 0) -> Any:
    # (an hour-old post is news on the first publish too: no --backfill needed)
    config = load_config(root / "site.yaml")
    site = load_site(config, now=NOW).site
    manifest = federation_manifest(site, (root / "fedipress-public-key.pem").read_bytes())
    return plan_changes(ledger or {}, manifest, site=Site(config=config, posts=(), pages=()),
                        now=NOW, backfill=backfill), manifest


def check_fits(body: bytes, url: str, *, article: bool, tags: int = 3000) -> dict[str, Any]:
    assert len(body) < LIMIT, f"{len(body)} bytes"
    activity = json.loads(body)
    obj = activity["object"]
    assert obj["id"] == url + "object.json" and obj["url"] == url
    assert activity["id"].startswith(obj["id"] + "#")
    content = obj["content"]
    assert f'<a href="{url}">Read more</a>' in content
    assert obj["contentMap"] == {"en": content}
    if article:
        assert obj["summary"].startswith("What this long article says")
        assert "What this long article says" in content
    else:
        assert content.startswith("<p><strong>A very long article")
        assert "Paragraph 0 of a very long article" in content
        assert "where 1 &lt; 2 &amp;" in content  # the excerpt is escaped text
    assert len(obj["attachment"]) == 4  # the pictures still go with it
    assert all(len(a["name"]) <= 1501 for a in obj["attachment"])
    hashtags = [t for t in obj.get("tag", []) if t["type"] == "Hashtag"]
    assert 0 < len(hashtags) <= tags
    return activity


@pytest.mark.parametrize("post_type", ["note", "article"])
def test_a_long_posts_create_and_update_stay_under_60_kib(tmp_path: Path, post_type: str
                                                          ) -> None:
    root = make_root(tmp_path, post_type)
    long_post(root)
    plan, manifest = plan_for(root)
    url = BLOG + "posts/long/"
    # What object.json serves stays whole: only what is sent is shortened.
    served = manifest["objects"][url + "object.json"]["doc"]
    assert len(d.serialize(served)) > 4 * LIMIT
    [create] = plan.activities
    assert create.kind == "Create"
    check_fits(create.body, url, article=post_type == "article")
    assert any("replaced by an excerpt and a link" in note for note in plan.notes)
    assert any("hashtags left out" in note for note in plan.notes)

    ledger = {e.object_id: e for e in plan.ledger_updates}
    long_post(root, extra="Edited.")
    update_plan, _ = plan_for(root, ledger)
    [update] = update_plan.activities
    assert update.kind == "Update"
    check_fits(update.body, url, article=post_type == "article")
    # Deterministic: the same ledger plans the same bytes (a re-run stores nothing new).
    again, _ = plan_for(root, ledger)
    assert again.activities[0].body == update.body


def test_a_short_post_is_sent_whole(tmp_path: Path) -> None:
    root = make_root(tmp_path, "note")
    long_post(root, tags=3)
    text = (root / "content" / "posts" / "long.md").read_text()
    (root / "content" / "posts" / "long.md").write_text(text.split("\n\n", 1)[0] + "\nShort.\n")
    plan, manifest = plan_for(root)
    [create] = plan.activities
    sent = json.loads(create.body)["object"]
    assert sent["content"] == manifest["objects"][BLOG + "posts/long/object.json"]["doc"][
        "content"]
    assert plan.notes == ()


def test_a_post_that_cannot_be_shortened_enough_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path, "note")
    long_post(root, tags=1)
    path = root / "content" / "posts" / "long.md"
    handles = " ".join(f"@reader{i}@server{i}.example" for i in range(1500))
    path.write_text(path.read_text() + f"\n{handles}\n")
    with pytest.raises(ActivityTooLargeError) as raised:
        plan_for(root)
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert "Create of https://blog.example/posts/long/object.json" in message
    assert "mentions too many accounts" in message


# --- delivered for real ----------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[InboxSink]:
    with InboxSink((FIXTURES / "keys" / "blog-public.pem").read_bytes()) as server:
        yield server


def test_the_signed_body_a_follower_receives_fits_misskeys_inbox(
        tmp_path: Path, sink: InboxSink, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    root = make_root(tmp_path, "note")
    state = root / ".fedipress"
    state.mkdir(mode=0o700)
    (state / "private-key.pem").write_bytes((FIXTURES / "keys" / "blog-private.pem").read_bytes())
    (state / "private-key.pem").chmod(0o600)
    store = open_store(state / "state.db")
    try:
        store.upsert_followers([Follower(
            actor_id=sink.url("/users/mk"), inbox=sink.url("/users/mk/inbox"),
            shared_inbox=None, handle="mk@127.0.0.1", name="mk", followed_at=datetime.now(UTC))])
    finally:
        store.close()
    config = str(root / "site.yaml")
    assert main(["publish", "--config", config, "--allow-private-addresses", "--wait", "1"]) == 0
    long_post(root, tags=300)  # (each tag has a page: 3,000 would make a slow build)
    capsys.readouterr()
    code = main(["publish", "--config", config, "--allow-private-addresses", "--wait", "10"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "sent 1," in out
    assert "replaced by an excerpt and a link" in err
    [received] = sink.posts
    assert received.verified_ours and received.verified_independent
    assert len(received.body) < LIMIT < MISSKEY_LIMIT
    check_fits(received.body, BLOG + "posts/long/", article=False, tags=300)


def test_an_accept_of_a_bloated_follow_fits_too(tmp_path: Path) -> None:
    """The inbox takes bodies up to 1 MiB; the Accept (or Reject) echoing a Follow must not
    grow with whatever extra members the Follow carried."""
    root = make_root(tmp_path, "note")
    site = Site(config=load_config(root / "site.yaml"), posts=(), pages=())
    follow = {"@context": "https://www.w3.org/ns/activitystreams",
              "id": "https://social.example/follows/1", "type": "Follow",
              "actor": {"id": "https://social.example/users/bob", "type": "Person",
                        "summary": "x" * 300_000},
              "object": BLOG + "actor.json", "padding": ["y" * 1000] * 300}
    answers = (d.accept_activity(site, follow, accept_id=BLOG + "#accept"),
               d.reject_activity(site, follow, reject_id=BLOG + "#reject"))
    for doc in answers:
        body = d.serialize(doc)
        assert len(body) < LIMIT
        obj = json.loads(body)["object"]
        assert obj == {"id": "https://social.example/follows/1", "type": "Follow",
                       "actor": "https://social.example/users/bob", "object": BLOG + "actor.json"}
    # An ordinary Follow is still echoed exactly as received.
    small = {k: v for k, v in follow.items() if k != "padding"}
    small["actor"] = "https://social.example/users/bob"
    echoed = json.loads(d.serialize(d.accept_activity(site, small, accept_id=BLOG + "#a")))
    assert echoed["object"] == {k: v for k, v in small.items() if k != "@context"}
