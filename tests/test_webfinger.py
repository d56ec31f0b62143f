"""WebFinger, host-meta and NodeInfo documents, and acct: parsing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedipress.activitypub import documents as d
from fedipress.activitypub import webfinger as wf
from test_documents import BASE, check_golden, make_config, make_site


def test_webfinger_golden() -> None:
    check_golden("webfinger.json", wf.webfinger_document(make_config()))


def test_host_meta_golden() -> None:
    check_golden("host-meta.xml", wf.host_meta(make_config()))


def test_nodeinfo_golden() -> None:
    config = make_config()
    check_golden("nodeinfo-discovery.json", wf.nodeinfo_discovery(config))
    check_golden(
        "nodeinfo.json", wf.nodeinfo_document(config, local_posts=3, software_version="0.1.0")
    )


def test_self_link_is_the_actor_id_byte_for_byte() -> None:
    site = make_site()
    jrd = wf.webfinger_document(site.config)
    actor = d.actor_document(site, "KEY")
    (self_link,) = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_link == {"rel": "self", "type": "application/activity+json", "href": actor["id"]}
    assert jrd["subject"] == "acct:alice@blog.example"
    assert jrd["aliases"] == [actor["id"], BASE]
    profile = [link for link in jrd["links"] if link["rel"].endswith("profile-page")]
    assert profile == [
        {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": BASE}
    ]


def test_handle_domain_differs_from_host() -> None:
    config = make_config(handle_domain="alice.example")
    jrd = wf.webfinger_document(config)
    assert jrd["subject"] == "acct:alice@alice.example"  # the canonical handle, on both hosts
    assert jrd["links"][0]["href"] == BASE + "actor.json"  # the actor stays on the blog host
    assert wf.is_own_resource(config, "acct:alice@alice.example")
    assert wf.is_own_resource(config, "acct:alice@blog.example")  # Mastodon's reverse check


def test_host_meta_template() -> None:
    root = ET.fromstring(wf.host_meta(make_config()))
    (link,) = root
    assert link.tag == "{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link"
    assert link.get("rel") == "lrdd"
    assert link.get("template") == BASE + ".well-known/webfinger?resource={uri}"


def test_nodeinfo_fields() -> None:
    info = wf.nodeinfo_document(make_config(), local_posts=12)
    assert info["version"] == "2.1"
    assert info["software"]["name"] == "fedipress"
    assert info["protocols"] == ["activitypub"]
    assert info["usage"] == {"users": {"total": 1}, "localPosts": 12}
    assert info["openRegistrations"] is False
    assert info["metadata"] == {"nodeName": "Alice's Blog"}
    links = wf.nodeinfo_discovery(make_config())["links"]
    assert links == [
        {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": BASE + "nodeinfo/2.1"}
    ]
    json.dumps(info)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("acct:alice@blog.example", ("alice", "blog.example")),
        ("alice@blog.example", ("alice", "blog.example")),
        ("@alice@Blog.Example", ("alice", "blog.example")),
        ("acct:alice@127.0.0.1:8001", ("alice", "127.0.0.1:8001")),
        ("acct%3Aalice%40blog.example", ("alice", "blog.example")),
        ("https://blog.example/@alice", ("alice", "blog.example")),
        ("https://social.example/users/bob", ("bob", "social.example")),
        ("https://blog.example/actor.json", ("", "blog.example")),
        ("http://127.0.0.1:8001/", ("", "127.0.0.1:8001")),
    ],
)
def test_parse_acct(resource: str, expected: tuple[str, str]) -> None:
    assert wf.parse_acct(resource) == expected


@pytest.mark.parametrize("bad", ["", "alice", "acct:alice", "a@b@c", "@@b", "https://", "a b@c"])
def test_parse_acct_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        wf.parse_acct(bad)


_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=20)


@given(user=_part, domain=_part, form=st.sampled_from(["acct:{}@{}", "{}@{}", "@{}@{}"]))
def test_parse_acct_round_trips(user: str, domain: str, form: str) -> None:
    assert wf.parse_acct(form.format(user, domain)) == (user, domain)


@given(st.text(max_size=60))
def test_parse_acct_never_crashes(text: str) -> None:
    try:
        user, domain = wf.parse_acct(text)
    except ValueError:
        return
    assert "@" not in user and domain


def test_is_own_resource() -> None:
    config = make_config()
    for yes in (
        "acct:alice@blog.example",
        "ALICE@blog.example",
        "@alice@blog.example",
        BASE + "actor.json",
        BASE,
        BASE.rstrip("/"),
    ):
        assert wf.is_own_resource(config, yes), yes
    for no in (
        "acct:bob@blog.example",
        "acct:alice@other.example",
        "https://blog.example/@bob",
        "https://other.example/actor.json",
        "nonsense",
        "",
    ):
        assert not wf.is_own_resource(config, no), no
