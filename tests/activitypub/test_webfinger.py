"""WebFinger, host-meta and NodeInfo documents, and acct: parsing."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedipress.activitypub import documents as d
from fedipress.activitypub import webfinger as wf
from support.documents import BASE, check_golden, make_config, make_site


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
        "acct:ALICE@Blog.Example",  # user and host compare case-insensitively
        "ACCT:alice@blog.example",  # so does the scheme (RFC 3986 3.1)
        "acct:al%69ce@blog.example",  # RFC 7565: the userpart may be percent-encoded
        BASE + "actor.json",
        BASE,
        BASE.rstrip("/"),
        "HTTPS://BLOG.EXAMPLE/actor.json",
    ):
        assert wf.is_own_resource(config, yes), yes
    for no in (
        "acct:bob@blog.example",
        "acct:alice@other.example",
        "https://blog.example/@bob",
        "https://blog.example/@alice",  # not a URL the blog has
        "https://blog.example/ACTOR.json",  # paths are case-sensitive
        "https://other.example/actor.json",
        "alice@blog.example",  # not a URI: RFC 7033 wants acct:
        "@alice@blog.example",
        "mailto:alice@blog.example",
        "nonsense",
        "",
    ):
        assert not wf.is_own_resource(config, no), no


# --- the WebFinger answer (RFC 7033), shared by `serve` and `inbox --site` ---------------------

OWN = "acct:alice@blog.example"


def _answer(query: str, built: bytes | None = None) -> wf.WebfingerAnswer:
    return wf.webfinger_answer(make_config(), query, built)


@pytest.mark.parametrize(
    "query",
    [
        f"resource={OWN}",
        "resource=acct%3Aalice%40blog.example",  # percent-encoded, as clients send it
        "resource=acct:alice%40blog.example",
        "resource=acct%3AAlice%40BLOG.EXAMPLE",
        "resource=https%3A%2F%2Fblog.example%2Factor.json",  # the actor URL
        "resource=https://blog.example/",  # the blog URL
        "resource=https://blog.example",
        f"resource={OWN}&unrelated=1",
    ],
)
def test_own_account_gets_the_jrd(query: str) -> None:
    answer = _answer(query)
    assert answer.status == 200
    assert answer.content_type == "application/jrd+json"
    assert answer.headers == {"Access-Control-Allow-Origin": "*"}
    assert json.loads(answer.body) == wf.webfinger_document(make_config())


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("", "is required"),
        ("rel=self", "is required"),
        ("resource", "is empty"),
        ("resource=", "is empty"),
        (f"resource=={OWN}", "not a URI"),  # resource==acct:... (a typo'd query)
        ("resource=alice@blog.example", "not a URI"),  # bare user@host
        ("resource=you@blog.example", "not a URI"),
        ("resource=@alice@blog.example", "not a URI"),
        ("resource=acct%253Aalice%2540blog.example", "not a URI"),  # encoded twice
        ("resource=acct:alice", "not a URI"),
        ("resource=acct:@blog.example", "not a URI"),
        ("resource=acct:alice@", "not a URI"),
        ("resource=acct:al ice@blog.example", "not a URI"),
        ("resource=acct:alice@blog.example%0A", "not a URI"),
        ("resource=%FF", "not valid UTF-8"),
        (f"resource={OWN}&resource={OWN}", "parameter once"),  # repeated, even if equal
        (f"resource={OWN}&resource=acct:bob@blog.example", "give the resource parameter once"),
    ],
)
def test_missing_or_malformed_resource_is_400(query: str, why: str) -> None:
    answer = _answer(query)
    assert answer.status == 400, answer
    assert answer.content_type.startswith("text/plain")
    assert why in answer.body.decode()
    assert b"subject" not in answer.body  # no JRD
    assert answer.headers == {"Access-Control-Allow-Origin": "*"}


@pytest.mark.parametrize(
    "resource",
    [
        "acct:no-such-account@blog.example",
        "acct%3Ano-such-account%40blog.example",
        "acct:alice@other.example",
        "acct:alice@blog.example.evil",
        "mailto:abc@def.com",
        "mailto:alice@blog.example",
        "tel:%2B1-555-0100",  # a literal + in a query string would be a space
        "https://blog.example/@alice",
        "https://blog.example/posts/hello/",
        "https://other.example/actor.json",
        "http://blog.example/actor.json",  # not the actor id: another scheme
    ],
)
def test_other_accounts_and_schemes_are_404(resource: str) -> None:
    answer = _answer(f"resource={resource}")
    assert answer.status == 404, answer
    assert answer.content_type.startswith("text/plain")
    assert b"subject" not in answer.body
    assert "acct:alice@blog.example" in answer.body.decode()  # says which account is here


def test_rel_filters_links_and_keeps_subject_and_aliases() -> None:
    full = wf.webfinger_document(make_config())
    only_self = json.loads(_answer(f"resource={OWN}&rel=self").body)
    assert only_self["subject"] == full["subject"] and only_self["aliases"] == full["aliases"]
    assert [link["rel"] for link in only_self["links"]] == ["self"]
    both = json.loads(
        _answer(f"resource={OWN}&rel=self&rel=http%3A%2F%2Fwebfinger.net%2Frel%2Fprofile-page")
        .body)
    assert both["links"] == full["links"]
    none = json.loads(_answer(f"resource={OWN}&rel=urn:nothing").body)
    assert none["links"] == [] and none["subject"] == full["subject"]


def test_built_document_is_sent_as_built() -> None:
    built = b'{"subject": "acct:alice@blog.example", "links": [{"rel": "self"}, {"rel": "x"}]}'
    assert _answer(f"resource={OWN}", built).body == built  # the same bytes a static host sends
    assert json.loads(_answer(f"resource={OWN}&rel=x", built).body)["links"] == [{"rel": "x"}]
    garbage = b"<html>not json</html>"  # sent whole: rel is ignored (RFC 7033 4.3 allows it)
    assert _answer(f"resource={OWN}&rel=self", garbage).body == garbage
    assert _answer("resource=acct:bob@blog.example", built).status == 404


def test_handle_domain_and_site_host_are_both_accepted() -> None:
    config = make_config(handle_domain="alice.example")
    for resource in ("acct:alice@alice.example", "acct:alice@blog.example"):
        answer = wf.webfinger_answer(config, f"resource={resource}")
        assert answer.status == 200
        assert json.loads(answer.body)["subject"] == "acct:alice@alice.example"
    assert wf.webfinger_answer(config, "resource=acct:alice@elsewhere.example").status == 404


@given(st.text(max_size=80))
def test_webfinger_answer_never_crashes(query: str) -> None:
    answer = _answer(query)
    assert answer.status in (200, 400, 404)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


# --- `fedipress serve` and `fedipress inbox --site` answer alike, over HTTP ------------------


def _http_cases(host: str, user: str) -> list[tuple[str, int]]:
    own = f"acct:{user}@{host}"
    base = f"http://{host}/"
    return [
        ("", 400),
        ("resource=", 400),
        (f"resource={own}", 200),
        (f"resource={quote(own, safe='')}", 200),
        (f"resource={own.upper()}", 200),
        (f"resource={quote(base + 'actor.json', safe='')}", 200),
        (f"resource={base}", 200),
        (f"resource={own}&rel=self", 200),
        (f"resource=={own}", 400),
        (f"resource=you-too@{host}", 400),  # bare user@host
        (f"resource={user}@{host}", 400),
        (f"resource={own}&resource={own}", 400),
        (f"resource={quote(quote(own, safe=''), safe='')}", 400),
        (f"resource=acct:no-such-account@{host}", 404),
        ("resource=mailto:abc@def.com", 404),
        (f"resource=acct:{user}@other.example", 404),
    ]


def test_serve_and_inbox_answer_webfinger_alike(tmp_path: Path) -> None:
    from fedipress.config import load_config
    from fedipress.federation.inbox import create_app
    from fedipress.federation.remote import FetchPolicy, RemoteFetcher
    from fedipress.store import open_store
    from support.devserver import make_served_site, start_serve

    site = make_served_site(tmp_path / "blog")
    served = start_serve(site)
    try:
        host = served.url.removeprefix("http://").rstrip("/")
        config = load_config(site / "site.yaml", base_url=served.url)
        user = config.fediverse.username
        store = open_store(tmp_path / "state.db")

        async def inbox_answers() -> list[httpx.Response]:
            async with RemoteFetcher(policy=FetchPolicy(allow_private=True),
                                     user_agent="t") as fetcher:
                app = create_app(config, store, fetcher, clock=lambda: datetime.now(UTC),
                                 site_dir=site / ".fedipress" / "serve")
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url=served.url) as client:
                    return [await client.get(f"/.well-known/webfinger?{query}")
                            for query, _ in _http_cases(host, user)]

        from_inbox = asyncio.run(inbox_answers())
        store.close()
        for (query, expected), inbox in zip(_http_cases(host, user), from_inbox, strict=True):
            status, headers, body = served.get(f"/.well-known/webfinger?{query}")
            assert (status, inbox.status_code) == (expected, expected), (query, body)
            assert headers["access-control-allow-origin"] == "*", query
            assert inbox.headers["access-control-allow-origin"] == "*", query
            if expected == 200:
                assert headers["content-type"] == "application/jrd+json", query
                assert inbox.headers["content-type"].startswith("application/jrd+json"), query
                assert json.loads(body) == inbox.json(), query
                assert inbox.json()["subject"] == f"acct:{user}@{host}"
            else:
                assert b"subject" not in body and "subject" not in inbox.text, query
        filtered = json.loads(served.get(
            f"/.well-known/webfinger?resource=acct:{user}@{host}&rel=self")[2])
        assert [link["rel"] for link in filtered["links"]] == ["self"]
    finally:
        code, err = served.stop()
        assert code == 0, err
