"""Content types and host configuration files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fedipress.activitypub.site import plan_activitypub
from fedipress.cli import main
from fedipress.contenttypes import content_type_for, is_activitypub_path, needs_cors
from fedipress.hosting import HOST_KINDS, hosting_config, plan_host_files
from test_documents import make_config, make_site

AP = "application/activity+json"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("actor.json", AP),
        ("/outbox.json", AP),
        ("outbox/page-3.json", AP),
        ("followers.json", AP),
        ("following.json", AP),
        ("featured.json", AP),
        ("posts/hello/object.json", AP),
        ("2024/01/x/replies.json", AP),
        ("posts/hello/likes.json", AP),
        ("posts/hello/shares.json", AP),
        (".well-known/webfinger", "application/jrd+json"),
        ("/.well-known/host-meta", "application/xrd+xml"),
        (".well-known/nodeinfo", "application/json"),
        ("nodeinfo/2.1", "application/json"),
        ("index.html", "text/html; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("posts/hello/", "text/html; charset=utf-8"),
        ("feed.xml", "application/atom+xml; charset=utf-8"),
        ("rss.xml", "application/rss+xml; charset=utf-8"),
        ("feed.json", "application/feed+json; charset=utf-8"),
        ("tags/python/feed.xml", "application/atom+xml; charset=utf-8"),  # a tag's feeds
        ("/tags/python/rss.xml", "application/rss+xml; charset=utf-8"),
        ("tags/python/page/2/feed.xml", "application/xml; charset=utf-8"),  # not a feed path
        ("posts/x/feed.xml", "application/xml; charset=utf-8"),  # a post bundle's file
        ("sitemap.xml", "application/xml; charset=utf-8"),
        ("theme/style.css", "text/css; charset=utf-8"),
        ("x.js", "text/javascript; charset=utf-8"),
        ("a.svg", "image/svg+xml"),
        ("a.PNG", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.gif", "image/gif"),
        ("a.avif", "image/avif"),
        ("favicon.ico", "image/x-icon"),
        ("robots.txt", "text/plain; charset=utf-8"),
        ("f.woff2", "font/woff2"),
        ("data.json", "application/json"),
        ("posts/x/actor.json", "application/json"),  # only the root actor.json is ours
        ("unknown.bin", "application/octet-stream"),
        ("actor.json?x=1", AP),
    ],
)
def test_content_type_for(path: str, expected: str) -> None:
    assert content_type_for(path) == expected


def test_cors_only_for_discovery_documents() -> None:
    for path in (
        ".well-known/webfinger",
        "/.well-known/host-meta",
        ".well-known/nodeinfo",
        "nodeinfo/2.1",
    ):
        assert needs_cors(path)
    for path in ("actor.json", "index.html", ".well-known/other"):
        assert not needs_cors(path)


def test_every_planned_activitypub_file_gets_activity_json() -> None:
    outputs = plan_activitypub(make_site(posts=25), b"KEY", fingerprint_salt="s")
    for out in outputs:
        if out.path.endswith(".json"):
            assert is_activitypub_path(out.path), out.path
            assert content_type_for(out.path) == AP


def _files(config: object) -> dict[str, str]:
    return {o.path: o.render().decode() for o in plan_host_files(config)}  # type: ignore[arg-type]


def test_headers_file_covers_every_document() -> None:
    headers = _files(make_config())["_headers"]
    blocks = _parse_headers(headers)
    for path in (
        "/actor.json",
        "/outbox.json",
        "/followers.json",
        "/following.json",
        "/featured.json",
        "/outbox/*",
        "/posts/:slug/object.json",
        "/posts/:slug/replies.json",
        "/posts/:slug/likes.json",
        "/posts/:slug/shares.json",
    ):
        assert blocks[path] == {"Content-Type": AP}, path
    assert blocks["/.well-known/webfinger"] == {
        "Content-Type": "application/jrd+json",
        "Access-Control-Allow-Origin": "*",
    }
    assert blocks["/.well-known/host-meta"]["Content-Type"] == "application/xrd+xml"
    assert blocks["/nodeinfo/2.1"]["Access-Control-Allow-Origin"] == "*"


def _parse_headers(text: str) -> dict[str, dict[str, str]]:
    """A small _headers reader: a path line, then indented `Name: value` lines."""
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith((" ", "\t")):
            assert current is not None, f"header line before any path: {line!r}"
            name, value = line.strip().split(": ", 1)
            current[name] = value
        else:
            assert line not in blocks, f"duplicate block {line}"
            current = blocks[line] = {}
    return blocks


def test_headers_follow_permalink_and_base_path() -> None:
    config = replace(
        make_config(), base_url="https://example.org/blog/", permalink="/{year}/{month}/{slug}/"
    )
    blocks = _parse_headers(_files(config)["_headers"])
    assert "/blog/actor.json" in blocks
    assert "/blog/:year/:month/:slug/object.json" in blocks
    assert "/blog/.well-known/webfinger" in blocks


def test_htaccess() -> None:
    text = _files(make_config())[".htaccess"]
    assert "ForceType application/activity+json" in text
    assert '<Files "webfinger">\n  ForceType application/jrd+json' in text
    assert 'Header set Access-Control-Allow-Origin "*"' in text
    assert "ProxyPass        /inbox http://127.0.0.1:8080/inbox" in text
    # the proxy is a note: a RewriteRule [P] without mod_proxy would break the whole site
    assert all(line.startswith("#") for line in text.splitlines() if "RewriteRule" in line)


def test_plan_host_files_fingerprints_are_stable() -> None:
    first = {o.path: o.fingerprint for o in plan_host_files(make_config())}
    assert first == {o.path: o.fingerprint for o in plan_host_files(make_config())}
    other = {o.path: o.fingerprint for o in plan_host_files(make_config(username="bob"))}
    assert all(first[p] != other[p] for p in first)


@pytest.mark.parametrize("kind", HOST_KINDS)
def test_hosting_config_every_kind(kind: str) -> None:
    text = hosting_config(make_config(), kind)
    assert AP in text and "application/jrd+json" in text
    assert "Access-Control-Allow-Origin" in text
    assert "/inbox" in text
    assert "handle domain" not in text.lower() or "must answer" in text
    assert "alice.example" not in text  # nothing about a second host when there is none


@pytest.mark.parametrize("kind", HOST_KINDS)
def test_hosting_config_explains_separate_handle_domain(kind: str) -> None:
    config = make_config(handle_domain="alice.example")
    text = hosting_config(config, kind)
    assert "alice.example must answer /.well-known/webfinger" in text
    assert "subject acct:alice@alice.example" in text


def test_nginx_specifics() -> None:
    text = hosting_config(make_config(), "nginx")
    assert "types { } default_type application/activity+json;" in text
    assert "location = /.well-known/webfinger {" in text
    assert "proxy_pass http://127.0.0.1:8080;" in text
    assert "proxy_set_header Host $host;" in text
    assert text.count("{") == text.count("}")
    redirect = hosting_config(make_config(handle_domain="alice.example"), "nginx")
    assert "server_name alice.example;" in redirect
    assert "return 302 https://blog.example/.well-known/webfinger$is_args$args;" in redirect


def test_caddy_specifics() -> None:
    text = hosting_config(make_config(), "caddy")
    assert "reverse_proxy /inbox 127.0.0.1:8080" in text
    assert text.count("{") - text.count("{query}") == text.count("}") - text.count("{query}")


def test_inbox_on_another_host_is_not_proxied() -> None:
    config = make_config(
        inbox_url="https://inbox.example/inbox", shared_inbox_url="https://inbox.example/inbox"
    )
    assert "proxy_pass" not in hosting_config(config, "nginx")
    assert "reverse_proxy" not in hosting_config(config, "caddy")
    assert "ProxyPass" not in hosting_config(config, "apache")


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="nginx"):
        hosting_config(make_config(), "iis")


def test_cli_prints_config(capsys: pytest.CaptureFixture[str], fixtures_dir: Path) -> None:
    site_yaml = fixtures_dir / "sites" / "basic" / "site.yaml"
    assert main(["hosting", "nginx", "--config", str(site_yaml)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# nginx configuration for ")
    assert "default_type application/activity+json" in out
