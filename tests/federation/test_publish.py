"""publish: the pure diff (plan_changes) exhaustively, then queueing into a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fedipress.activitypub import documents as d
from fedipress.config import SiteConfig, parse_config
from fedipress.federation.publish import (
    OLD_POST_AGE,
    Plan,
    actor_ledger_id,
    first_publish_line,
    plan_changes,
    queue_plan,
)
from fedipress.model import Site
from fedipress.store import Follower, LedgerEntry, open_store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BASE = "https://blog.example/"


def make_config(tmp: Path, extra: str = "") -> SiteConfig:
    text = (
        f"title: T\nbase_url: {BASE}\nauthor:\n  name: A\n  handle: a\n"
        f"fediverse:\n  display_name: A\n  bio: hi{extra}\n"
    )
    return parse_config(text, file="site.yaml", root=tmp)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(config=make_config(tmp_path), posts=(), pages=())


def obj(slug: str, content: str = "hello", published: datetime = NOW) -> dict[str, Any]:
    return {
        "id": f"{BASE}posts/{slug}/object.json",
        "type": "Note",
        "published": d.iso(published),
        "attributedTo": f"{BASE}actor.json",
        "content": content,
        "to": [d.PUBLIC],
        "cc": [f"{BASE}followers.json"],
    }


def manifest(*docs: dict[str, Any], name: str = "A") -> dict[str, Any]:
    actor = {"id": f"{BASE}actor.json", "type": "Person", "name": name, "published": "x"}
    return {
        "actor": actor,
        "objects": {
            o["id"]: {"hash": d.object_hash(o), "published": o["published"], "doc": o}
            for o in docs
        },
    }


def ledger_of(plan: Plan, base: dict[str, LedgerEntry] | None = None) -> dict[str, LedgerEntry]:
    result = dict(base or {})
    result.update({e.object_id: e for e in plan.ledger_updates})
    return result


def kinds(plan: Plan) -> list[tuple[str, str | None]]:
    return [(a.kind, a.object_id) for a in plan.activities]


def body(activity: Any) -> dict[str, Any]:
    return json.loads(activity.body)  # type: ignore[no-any-return]


def test_first_publish_announces_recent_posts_and_records_older_ones(site: Site) -> None:
    """An empty ledger (a new service, a CI run's first publish through it): the post of the
    last week is news, the archive is the baseline, and the line says which was which."""
    new = obj("a", published=NOW - timedelta(hours=2))
    old = [obj(f"old{i}", published=NOW - timedelta(days=30 + i)) for i in range(41)]
    m = manifest(new, *old)
    plan = plan_changes({}, m, site=site, now=NOW)
    assert kinds(plan) == [("Create", new["id"])]
    assert plan.first_publish
    ledger = ledger_of(plan)
    assert set(ledger) == {new["id"], *(o["id"] for o in old),
                           actor_ledger_id(f"{BASE}actor.json")}
    assert ledger[new["id"]].last_activity_id == new["id"] + "#create"
    assert all(ledger[o["id"]].last_activity_id is None and ledger[o["id"]].state == "live"
               for o in old)
    assert first_publish_line(plan, f"{BASE}actor.json") == (
        "first publish: 1 new post announced, 41 older posts recorded as already published;"
        " use --backfill N to announce older ones")
    # Publishing again with nothing changed plans nothing at all, and is no first publish.
    again = plan_changes(ledger, m, site=site, now=NOW + timedelta(hours=1))
    assert again.empty and first_publish_line(again, f"{BASE}actor.json") is None


@pytest.mark.parametrize(
    ("age", "announced"),
    [(-timedelta(minutes=5), True), (timedelta(0), True),
     (OLD_POST_AGE - timedelta(minutes=1), True),
     (OLD_POST_AGE + timedelta(minutes=1), False), (timedelta(days=400), False)],
)
def test_first_publish_window(site: Site, age: timedelta, announced: bool) -> None:
    """The same one-week window as a later publish's back-dated rule. (A build never holds a
    post dated after it was made unless it is a preview, which publish refuses; a few
    minutes ahead is the publishing machine's clock behind the building one's.)"""
    post = obj("p", published=NOW - age)
    plan = plan_changes({}, manifest(post), site=site, now=NOW)
    assert bool(plan.activities) is announced
    assert post["id"] in {e.object_id for e in plan.ledger_updates}
    line = first_publish_line(plan, f"{BASE}actor.json")
    assert line is not None and line.startswith(
        "first publish: 1 new post announced, 0 older posts" if announced
        else "first publish: 0 new posts announced, 1 older post recorded")


def test_first_publish_with_only_old_posts_sends_nothing(site: Site) -> None:
    old = obj("a", published=NOW - timedelta(days=30))
    plan = plan_changes({}, manifest(old), site=site, now=NOW)
    assert plan.activities == ()
    reasons = {c.object_id: c.reason for c in plan.changes}
    assert reasons[old["id"]].startswith("first publish: dated more than a week ago")


def test_backfill_announces_only_the_newest_n_oldest_first(site: Site) -> None:
    docs = [obj(f"p{i}", published=NOW - timedelta(days=30 - i)) for i in range(5)]
    plan = plan_changes({}, manifest(*docs), site=site, now=NOW, backfill=2)
    assert kinds(plan) == [("Create", docs[3]["id"]), ("Create", docs[4]["id"])]
    # Backfill ignores the one-week rule: asking for old posts means wanting them.
    assert len(plan.ledger_updates) == 6
    create = body(plan.activities[0])
    assert create["id"] == docs[3]["id"] + "#create"
    assert create["object"]["content"] == "hello"
    assert create["actor"] == f"{BASE}actor.json"


def test_backfill_larger_than_the_blog(site: Site) -> None:
    old = obj("a", published=NOW - timedelta(days=30))
    plan = plan_changes({}, manifest(old, obj("b")), site=site, now=NOW, backfill=10)
    assert kinds(plan) == [("Create", old["id"]), ("Create", obj("b")["id"])]
    assert plan.notes == ("--backfill 10: 1 new back-dated post to announce",)
    assert first_publish_line(plan, f"{BASE}actor.json") == (
        "first publish: 1 new post announced, 1 older post announced for --backfill,"
        " 0 older posts recorded as already published")


def test_new_post_after_first_publish_is_created(site: Site) -> None:
    ledger = ledger_of(plan_changes({}, manifest(obj("a")), site=site, now=NOW))
    plan = plan_changes(ledger, manifest(obj("a"), obj("b")), site=site, now=NOW)
    assert kinds(plan) == [("Create", obj("b")["id"])]
    entry = {e.object_id: e for e in plan.ledger_updates}[obj("b")["id"]]
    assert entry.last_activity_id == obj("b")["id"] + "#create"
    assert entry.content_hash == d.object_hash(obj("b"))


@pytest.mark.parametrize(
    ("age", "announced"),
    [(timedelta(0), True), (OLD_POST_AGE - timedelta(minutes=1), True),
     (OLD_POST_AGE + timedelta(minutes=1), False), (timedelta(days=400), False)],
)
def test_old_dated_posts_are_recorded_silently(site: Site, age: timedelta, announced: bool) -> None:
    ledger = ledger_of(plan_changes({}, manifest(obj("a")), site=site, now=NOW))
    old = obj("imported", published=NOW - age)
    plan = plan_changes(ledger, manifest(obj("a"), old), site=site, now=NOW)
    assert bool(plan.activities) is announced
    assert old["id"] in {e.object_id for e in plan.ledger_updates}


def test_edit_makes_an_update_with_updated_now_and_a_revision_id(site: Site) -> None:
    ledger = ledger_of(plan_changes({}, manifest(obj("a")), site=site, now=NOW))
    later = NOW + timedelta(days=1)
    plan = plan_changes(ledger, manifest(obj("a", "edited")), site=site, now=later)
    assert kinds(plan) == [("Update", obj("a")["id"])]
    update = body(plan.activities[0])
    assert update["type"] == "Update"
    assert update["object"]["updated"] == d.iso(later)
    assert update["object"]["content"] == "edited"
    assert update["id"].startswith(obj("a")["id"] + "#update-")
    # The same ledger and manifest give the same id (a re-run after a crash)...
    again = plan_changes(ledger, manifest(obj("a", "edited")), site=site, now=later)
    assert again.activities[0].activity_id == plan.activities[0].activity_id
    # ...and the ledger records the new hash, so the next publish is quiet.
    assert plan_changes(ledger_of(plan, ledger), manifest(obj("a", "edited")),
                        site=site, now=later).activities == ()


def test_update_ids_are_unique_per_change_even_when_content_returns(site: Site) -> None:
    ledger = ledger_of(plan_changes({}, manifest(obj("a", "A")), site=site, now=NOW))
    ids = []
    for content in ["B", "A", "B", "A"]:
        plan = plan_changes(ledger, manifest(obj("a", content)), site=site, now=NOW)
        ids.append(plan.activities[0].activity_id)
        ledger = ledger_of(plan, ledger)
    assert len(set(ids)) == 4


def test_removed_post_is_deleted_with_a_tombstone(site: Site) -> None:
    ledger = ledger_of(plan_changes({}, manifest(obj("a"), obj("b")), site=site, now=NOW))
    plan = plan_changes(ledger, manifest(obj("b")), site=site, now=NOW)
    assert kinds(plan) == [("Delete", obj("a")["id"])]
    delete = body(plan.activities[0])
    assert delete["object"] == {"id": obj("a")["id"], "type": "Tombstone",
                                "deleted": d.iso(NOW)}
    ledger = ledger_of(plan, ledger)
    assert ledger[obj("a")["id"]].state == "deleted"
    # Already deleted: nothing more.
    assert plan_changes(ledger, manifest(obj("b")), site=site, now=NOW).activities == ()
    # It comes back: a Create with an id that was never used, then a second Delete is new too.
    back = plan_changes(ledger, manifest(obj("a"), obj("b")), site=site, now=NOW)
    assert kinds(back) == [("Create", obj("a")["id"])]
    assert back.activities[0].activity_id != obj("a")["id"] + "#create"
    ledger = ledger_of(back, ledger)
    again = plan_changes(ledger, manifest(obj("b")), site=site, now=NOW)
    assert again.activities[0].activity_id != plan.activities[0].activity_id


def test_federate_false_is_a_removal(site: Site) -> None:
    # A post switched to `federate: false` leaves the manifest: same as a deletion.
    ledger = ledger_of(plan_changes({}, manifest(obj("a")), site=site, now=NOW))
    plan = plan_changes(ledger, manifest(), site=site, now=NOW)
    assert kinds(plan) == [("Delete", obj("a")["id"])]


def test_profile_change_updates_the_actor_but_published_does_not(site: Site) -> None:
    ledger = ledger_of(plan_changes({}, manifest(obj("a")), site=site, now=NOW))
    quiet = manifest(obj("a"))
    quiet["actor"]["published"] = "changed because the oldest post went"
    assert plan_changes(ledger, quiet, site=site, now=NOW).activities == ()
    plan = plan_changes(ledger, manifest(obj("a"), name="New name"), site=site, now=NOW)
    assert kinds(plan) == [("Update(actor)", f"{BASE}actor.json")]
    update = body(plan.activities[0])
    assert update["object"]["name"] == "New name"
    assert update["actor"] == f"{BASE}actor.json"
    ledger = ledger_of(plan, ledger)
    assert plan_changes(ledger, manifest(obj("a"), name="New name"), site=site,
                        now=NOW).activities == ()


def test_send_order_actor_creates_updates_deletes(site: Site) -> None:
    first = manifest(obj("edit"), obj("gone"))
    ledger = ledger_of(plan_changes({}, first, site=site, now=NOW))
    m = manifest(obj("edit", "new"), obj("new2", published=NOW),
                 obj("new1", published=NOW - timedelta(hours=1)), name="Renamed")
    plan = plan_changes(ledger, m, site=site, now=NOW)
    assert [k for k, _ in kinds(plan)] == ["Update(actor)", "Create", "Create", "Update", "Delete"]
    assert kinds(plan)[1][1] == obj("new1")["id"]


def test_naive_now_is_refused(site: Site) -> None:
    with pytest.raises(ValueError):
        plan_changes({}, manifest(), site=site, now=datetime(2026, 1, 1))


# --- queueing into a real store --------------------------------------------------------------


def follower(n: int, shared: str | None = None) -> Follower:
    return Follower(actor_id=f"https://s{n}.example/u/{n}", inbox=f"https://s{n}.example/u/{n}/inbox",
                    shared_inbox=shared, handle=None, name=None, followed_at=NOW)


def test_queue_plan_dedupes_shared_inboxes_and_is_idempotent(site: Site, tmp_path: Path) -> None:
    store = open_store(tmp_path / "state.db")
    try:
        store.upsert_followers(
            [follower(i, "https://big.example/inbox") for i in range(100)]
            + [follower(1000), follower(1001)]
        )
        # The baseline: "a" is dated a month ago, so the first publish records it silently.
        a = obj("a", published=NOW - timedelta(days=30))
        ledger = ledger_of(plan_changes({}, manifest(a), site=site, now=NOW))
        queue_plan(store, plan_changes({}, manifest(a), site=site, now=NOW), NOW)
        assert sum(store.delivery_counts().values()) == 0
        plan = plan_changes(store.get_ledger(), manifest(a, obj("b")), site=site, now=NOW)
        assert store.get_ledger().keys() == ledger.keys()
        result = queue_plan(store, plan, NOW)
        assert result.deliveries == 3  # one shared inbox + two personal inboxes
        inboxes = sorted(x.inbox for x in store.list_deliveries())
        assert inboxes == sorted(["https://big.example/inbox", "https://s1000.example/u/1000/inbox",
                                  "https://s1001.example/u/1001/inbox"])
        # A re-run of the same plan (crash after commit) stores nothing new.
        again = queue_plan(store, plan, NOW)
        assert again.deliveries == 0 and again.new_activities == ()
        assert store.get_activity(plan.activities[0].activity_id) is not None
    finally:
        store.close()
