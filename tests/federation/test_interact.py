"""The post form's redirect without JavaScript (GET /.fedipress/interact) on a real
`fedipress inbox`: the reader's server, handle or address becomes a 303 to its
authorize_interaction page for one of this blog's posts; anything else (another site's address,
a private IP, nonsense) is a plain 400 page saying what to type, never a redirect."""

from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from fedipress.federation.interact import server_host
from support.service import start_service

pytestmark = pytest.mark.slow

ROUTE = ".fedipress/interact"


@pytest.mark.parametrize(("typed", "host"), [
    ("mastodon.social", "mastodon.social"),
    ("  Mastodon.Social.  ", "mastodon.social"),
    ("@me@mastodon.social", "mastodon.social"),
    ("me@social.example:8443", "social.example:8443"),
    ("acct:me@mastodon.social", "mastodon.social"),
    ("https://mastodon.social/@me", "mastodon.social"),
    ("mastodon.social/about", "mastodon.social"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("93.184.216.34", "93.184.216.34"),  # a public IP literal is someone's server
])
def test_what_a_reader_may_type(typed: str, host: str) -> None:
    assert server_host(typed, allow_private=False) == host


@pytest.mark.parametrize("typed", [
    "", "   ", "localhost", "not a server", "javascript:alert(1)", "ftp://mastodon.social",
    "https://user@evil.example@mastodon.social", "mastodon.social:0", "mastodon.social:99999",
    "mastodon.social:x", "-bad-.example", "a..example", "[::1]", "127.0.0.1", "10.0.0.8",
    "192.168.1.1:443", "169.254.169.254", "0.0.0.0", "@me@127.0.0.1", "https://10.1.2.3/",
    "x" * 400 + ".example",
])
def test_what_is_refused(typed: str) -> None:
    assert server_host(typed, allow_private=False) is None


def test_loopback_only_with_the_opt_in() -> None:
    assert server_host("127.0.0.1:8443", allow_private=True) == "127.0.0.1:8443"
    assert server_host("127.0.0.1:8443", allow_private=False) is None


def test_the_route_redirects_to_the_readers_server(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home", allow_private=False)
    post = service.base + "posts/first/object.json"
    url = service.base + ROUTE
    authorize = "/authorize_interaction?uri=" + quote(post, safe="")
    readers = itertools.count(1)  # each request from its own address: no rate limit here
    try:
        def ask(**params: str) -> httpx.Response:
            return httpx.get(url, params=params,
                             headers={"X-Forwarded-For": f"198.51.100.{next(readers)}"})

        for typed, intent in (("mastodon.social", "reply"), ("@me@mastodon.social", "like"),
                              ("https://mastodon.social/@me", "boost")):
            r = ask(server=typed, uri=post, intent=intent)
            assert r.status_code == 303, r.text
            assert r.headers["location"] == "https://mastodon.social" + authorize
            assert r.headers["cache-control"] == "no-store"
        assert ask(server="social.example:8443", uri=post).headers["location"] == \
            "https://social.example:8443" + authorize

        def refused(hint: str, **params: str) -> str:
            r = ask(**params)
            assert r.status_code == 400, (params, r.status_code, r.headers)
            assert "location" not in r.headers
            assert r.headers["content-type"].startswith("text/html")
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert hint in r.text, r.text
            return r.text

        hint = "Type the address of your server, like mastodon.social"
        for bad in ("", "not a server", "localhost", "127.0.0.1", "10.0.0.8",
                    "@me@192.168.1.1", "https://169.254.169.254/latest", "javascript:alert(1)"):
            page = refused(hint, server=bad, uri=post)
            # The page offers the form again, for this post, with what was typed escaped.
            assert f'name="uri" value="{post}"' in page
        page = refused(hint, server='"><script>alert(1)</script>', uri=post)
        assert "<script>" not in page
        refused("Choose Reply, Like or Boost", server="mastodon.social", uri=post,
                intent="delete")

        # Open-redirect attempts: only this blog's addresses are ever sent on.
        only = "only opens posts of " + service.base
        for uri in ("https://evil.example/", "http://127.0.0.1:1/x", "",
                    service.base.rstrip("/") + ".evil.example/x",
                    "//evil.example/", post + "\r\nLocation: https://evil.example/"):
            refused(only, server="mastodon.social", uri=uri)
        r = httpx.get(url + "?server=mastodon.social&uri=" + quote(post, safe="")
                      + "&uri=https%3A%2F%2Fevil.example%2F",
                      headers={"X-Forwarded-For": "198.51.100.250"})
        assert r.status_code == 400 and "location" not in r.headers
        assert ask(server="mastodon.social").status_code == 400
        assert httpx.post(url, data={"server": "mastodon.social", "uri": post}
                          ).status_code == 405

        # One address asking too often is slowed down; others are not.
        flood = {"X-Forwarded-For": "203.0.113.77"}
        codes = [httpx.get(url, params={"server": "mastodon.social", "uri": post},
                           headers=flood).status_code for _ in range(40)]
        assert codes[:20] == [303] * 20 and codes.count(429) >= 15
        assert ask(server="mastodon.social", uri=post).status_code == 303
    finally:
        log = service.stop()
    assert "interact redirects at /.fedipress/interact" in log
    assert "interact: refused uri 'https://evil.example/'" in log
    assert "interact: 203.0.113.77 is asking too often; answered 429" in log
    assert "Traceback" not in log


def test_loopback_servers_with_the_opt_in(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home")  # --allow-private-addresses, as tests run it
    post = service.base + "posts/first/object.json"
    try:
        r = httpx.get(service.base + ROUTE, params={"server": "127.0.0.1:8443", "uri": post})
        assert r.status_code == 303
        assert r.headers["location"].startswith("https://127.0.0.1:8443/authorize_interaction?")
    finally:
        service.stop()
