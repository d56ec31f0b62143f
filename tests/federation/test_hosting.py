"""Content types and host configuration files."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedipress.activitypub.site import plan_activitypub
from fedipress.cli import main
from fedipress.errors import FedipressError
from fedipress.federation.hosting import HOST_KINDS, hosting_config, plan_host_files
from fedipress.generator.contenttypes import content_type_for, is_activitypub_path, needs_cors
from fedipress.wording import docs_url
from support.documents import make_config, make_site

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
    assert 'Header always set Access-Control-Allow-Origin "*"' in text  # on 400/404 too
    assert "ProxyPreserveHost On" in text  # the Host the sender signed, port included
    assert "ProxyPass        /inbox http://127.0.0.1:8080/inbox" in text
    # the proxy is a note: a RewriteRule [P] without mod_proxy would break the whole site
    assert all(line.startswith("#") for line in text.splitlines() if "[P" in line)
    # WebFinger rules as <If> + Redirect: mod_rewrite in .htaccess would make Apache answer
    # 403 for the whole site where Options FollowSymLinks is off
    assert "RewriteEngine On\n" not in text.replace("#   RewriteEngine On\n", "")
    assert text.count("Redirect 400") == 3 and text.count("Redirect 404") == 1
    assert text.count("<If ") == 1 and text.count("<ElseIf ") == 3


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
    # $host would drop a non-default port from the Host the sender signed
    assert "proxy_set_header Host $http_host;" in text and "$host;" not in text
    assert "listen 443 ssl;" in text
    assert text.count("{") == text.count("}")
    redirect = hosting_config(make_config(handle_domain="alice.example"), "nginx")
    assert "server_name alice.example;" in redirect
    assert "return 302 https://blog.example/.well-known/webfinger$is_args$args;" in redirect
    # Servers ask https://alice.example/.well-known/webfinger: the apex's block listens for
    # https with alice.example's own certificate, not on nginx's default plain port 80.
    apex = redirect.split("server_name alice.example;")[0].rsplit("server {", 1)[1]
    assert "listen 443 ssl;" in apex
    assert "ssl_certificate     /etc/letsencrypt/live/alice.example/fullchain.pem;" in apex


def test_caddy_specifics() -> None:
    text = hosting_config(make_config(), "caddy")
    assert "reverse_proxy /inbox 127.0.0.1:8080" in text
    assert text.count("{") - text.count("{query}") == text.count("}") - text.count("{query}")


def test_inbox_on_another_host_is_not_proxied() -> None:
    config = make_config(
        inbox_url="https://inbox.example/inbox", shared_inbox_url="https://inbox.example/inbox"
    )
    # The inbox is not proxied (a signature covers the Host header); only quote
    # authorizations are, to the inbox's own server (a plain GET).
    nginx = hosting_config(config, "nginx")
    assert "location = /inbox" not in nginx and nginx.count("proxy_pass") == 1
    assert "proxy_pass https://inbox.example;" in nginx
    caddy = hosting_config(config, "caddy")
    assert "reverse_proxy /inbox" not in caddy and caddy.count("reverse_proxy") == 1
    apache = hosting_config(config, "apache")
    assert "ProxyPass        /inbox" not in apache
    assert "#   ProxyPass        /.fedipress/quotes/ https://inbox.example/.fedipress/quotes/" \
        in apache


def test_quote_authorizations_go_to_the_service() -> None:
    """FEP-044f: the service serves each authorization from the moment it accepts a quote, at
    an address on the blog's host: every configuration sends that folder to the service."""
    config = make_config()
    nginx = hosting_config(config, "nginx")
    block = nginx.split("location ^~ /.fedipress/quotes/ {", 1)[1].split("}", 1)[0]
    assert "proxy_pass http://127.0.0.1:8080;" in block
    assert "proxy_set_header Host $http_host;" in block
    assert "reverse_proxy /.fedipress/quotes/* 127.0.0.1:8080" in hosting_config(config, "caddy")
    apache = hosting_config(config, "apache")
    assert "#   ProxyPass        /.fedipress/quotes/ http://127.0.0.1:8080/.fedipress/quotes/" \
        in apache
    assert "_redirects" not in _files(config)  # the service runs beside the blog
    elsewhere = make_config(inbox_url="https://inbox.example/inbox",
                            shared_inbox_url="https://inbox.example/inbox")
    caddy = hosting_config(elsewhere, "caddy")
    assert "reverse_proxy /.fedipress/quotes/* https://inbox.example {" in caddy
    redirects = _files(elsewhere)["_redirects"]
    assert "/.fedipress/quotes/*  https://inbox.example/.fedipress/quotes/:splat  302" in redirects
    for kind in ("netlify", "cloudflare"):
        assert "/.fedipress/quotes/*  https://inbox.example/.fedipress/quotes/:splat  302" \
            in hosting_config(elsewhere, kind)


def test_thread_pages_are_activity_json() -> None:
    blocks = _parse_headers(_files(make_config())["_headers"])
    for path in ("/posts/:slug/context.json", "/posts/:slug/replies/*",
                 "/posts/:slug/context/*"):
        assert blocks[path] == {"Content-Type": AP}, path
    assert "location ~ /(replies|context)/page-[0-9]+\\.json$ {" in hosting_config(
        make_config(), "nginx")


def test_owner_api_is_proxied_wherever_the_inbox_is() -> None:
    config = make_config()
    nginx = hosting_config(config, "nginx")
    assert "location ^~ /.fedipress/api/ {" in nginx
    block = nginx.split("location ^~ /.fedipress/api/ {", 1)[1].split("}", 1)[0]
    assert "proxy_pass http://127.0.0.1:8080;" in block
    assert "proxy_set_header Host $http_host;" in block
    assert 'add_header Cache-Control "no-store" always;' in block
    assert "reverse_proxy /.fedipress/api/* 127.0.0.1:8080" in hosting_config(config, "caddy")
    apache = hosting_config(config, "apache")
    assert "#   ProxyPass        /.fedipress/api/ http://127.0.0.1:8080/.fedipress/api/" in apache
    assert '#     Header always set Cache-Control "no-store"' in apache


@pytest.mark.parametrize("kind", ["netlify", "cloudflare"])
def test_static_hosts_point_the_owner_api_at_the_service(kind: str) -> None:
    for config in (make_config(), make_config(inbox_url="https://inbox.example/inbox",
                                              shared_inbox_url="https://inbox.example/inbox")):
        text = hosting_config(config, kind)
        assert "/.fedipress/api/" in text
        assert "FEDIPRESS_SERVICE_URL" in text and docs_url("service") in text


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="nginx"):
        hosting_config(make_config(), "iis")


def test_cli_prints_config(capsys: pytest.CaptureFixture[str], fixtures_dir: Path) -> None:
    site_yaml = fixtures_dir / "sites" / "basic" / "site.yaml"
    assert main(["hosting", "nginx", "--config", str(site_yaml)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# nginx configuration for ")
    assert "default_type application/activity+json" in out


def test_listen_and_upstream_options() -> None:
    local_url = "http://127.0.0.1:8123/"
    local = replace(make_config(handle_domain="127.0.0.1:8123", inbox_url=local_url + "inbox",
                                shared_inbox_url=local_url + "inbox"), base_url=local_url)
    text = hosting_config(local, "nginx")
    assert "    listen 8123;" in text  # base_url's port by default
    text = hosting_config(local, "nginx", listen="127.0.0.1:9000", upstream="127.0.0.1:9001")
    assert "    listen 127.0.0.1:9000;" in text and "proxy_pass http://127.0.0.1:9001;" in text
    caddy = hosting_config(local, "caddy", listen="127.0.0.1:9000", upstream="[::1]:9001")
    assert "http://127.0.0.1:9000 {" in caddy and "    bind 127.0.0.1" in caddy
    assert "reverse_proxy /inbox [::1]:9001" in caddy
    assert "http://127.0.0.1:8123 {" in hosting_config(local, "caddy")  # scheme kept: no TLS
    assert "ProxyPass        /inbox http://10.0.0.2:81/inbox" in hosting_config(
        make_config(), "apache", upstream="10.0.0.2:81")


@pytest.mark.parametrize(
    ("option", "value"),
    [("upstream", "8080"), ("upstream", "host:"), ("upstream", "h:99999"), ("upstream", ":80"),
     ("upstream", "a b:80"), ("upstream", "::1:80"), ("listen", "x"), ("listen", "h;x:80")],
)
def test_bad_addresses_are_one_line_errors(option: str, value: str) -> None:
    with pytest.raises(FedipressError, match=f"--{option} '"):
        hosting_config(make_config(), "nginx", **{option: value})


def test_cli_bad_address(capsys: pytest.CaptureFixture[str], fixtures_dir: Path) -> None:
    site_yaml = fixtures_dir / "sites" / "basic" / "site.yaml"
    assert main(["hosting", "caddy", "--upstream", "nope", "--config", str(site_yaml)]) == 2
    err = capsys.readouterr().err
    assert "--upstream 'nope': expected HOST:PORT" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["netlify", "cloudflare"])
def test_static_hosts_say_what_they_cannot_do(kind: str) -> None:
    text = hosting_config(make_config(), kind)
    assert "_headers cannot look at the query string" in text  # WebFinger answers everything
    assert "set fediverse.inbox_url" in text
    assert "Do not proxy it through this host" in text  # a proxy would change the signed Host
    assert "200!" not in text


# --- the WebFinger rules of nginx and Apache, on the raw query string -------------------------
# tests/federation/test_hosting_real.py runs nginx, Caddy and Apache where installed; here the rules
# nginx and Apache share are replayed in Python on the raw query string for many more queries and
# compared with what the service answers.


def _raw_rules(config: object, query: str) -> int:
    """nginx's `if` sequence / Apache's RewriteCond chain, in order."""
    import re

    from fedipress.federation import hosting

    text = hosting_config(config, "nginx")  # type: ignore[arg-type]
    assert hosting._REPEATED_RE in text and hosting._RAW_URI_RE in text
    own = hosting._own_resource_re(config, raw=True)  # type: ignore[arg-type]
    assert own in text
    apache = hosting_config(config, "apache")  # type: ignore[arg-type]
    assert own[1:-1] in apache and hosting._RAW_URI_RE[1:-1] in apache
    if not re.search(r"(^|&)resource=[^&]", query):
        return 400
    if re.search(hosting._REPEATED_RE, query):
        return 400
    value = re.search(r"(?:^|&)resource=([^&]*)", query)
    assert value is not None
    if not re.search(hosting._RAW_URI_RE, value.group(1)):
        return 400
    bad_acct = bool(re.search(hosting._RAW_BAD_ACCT_RE, value.group(1)))  # nginx: the value
    assert hosting._RAW_BAD_ACCT_RE in text
    # Apache matches on the whole query string: the same answer
    assert bad_acct == bool(re.search("(^|&)resource=" + hosting._RAW_BAD_ACCT_RE[1:], query))
    if bad_acct:
        return 400
    if not re.search(own, value.group(1)):
        return 404
    return 200


RAW_CASES = [
    "", "rel=self", "resource", "resource=", "resource=acct:alice@blog.example",
    "resource=acct%3Aalice%40blog.example", "resource=acct%3aALICE%40Blog.Example",
    "resource=https%3A%2F%2Fblog.example%2Factor.json", "resource=https://blog.example/",
    "resource=https://blog.example", "resource==acct:alice@blog.example",
    "resource=alice@blog.example", "resource=you@blog.example",
    "resource=acct%253Aalice%2540blog.example", "resource=acct:a%20b@blog.example",
    "resource=acct:alice@blog.example&resource=acct:alice@blog.example",
    "resource=acct:alice@blog.example&resource", "resource&resource=acct:alice@blog.example",
    "resource=acct:no-such-account@blog.example", "resource=mailto:abc@def.com",
    "resource=mailto%3Aabc%40def.com", "resource=acct:alice@other.example",
    "resource=https://other.example/actor.json", "resource=https://blog.example/ACTOR.json",
    "resource=acct:alice@blog.example+", "resource=tel:%2B1-555", "resource=%FF",
    "x=1&resource=acct:alice@blog.example&y=2", "resource=acct:alice@blog.example%0A",
    "resource=acct:%E2%9C%93@blog.example", "resource=HTTPS://BLOG.EXAMPLE/actor.json",
    "resource=acct:alice", "resource=acct:@blog.example", "resource=acct:alice@",
    "resource=acct:alice%40", "resource=acct:alice@blog.example@", "resource=acct:a@b@c",
    "resource=acct:alice&x=a@b", "resource=acct%3Aalice%40blog.example%40x",
]


@pytest.mark.parametrize("query", RAW_CASES)
def test_nginx_and_apache_rules_answer_as_the_service(query: str) -> None:
    from fedipress.activitypub.webfinger import webfinger_answer

    config = make_config()
    assert _raw_rules(config, query) == webfinger_answer(config, query).status


def test_nginx_and_apache_rules_for_a_handle_on_another_domain() -> None:
    from fedipress.activitypub.webfinger import webfinger_answer

    config = make_config(handle_domain="alice.example")
    for query in ("resource=acct:alice@alice.example", "resource=acct:alice@blog.example",
                  "resource=acct%3Aalice%40alice.example", "resource=acct:alice@evil.example"):
        assert _raw_rules(config, query) == webfinger_answer(config, query).status, query


# --- every configuration file the docs name is generated (and run by test_hosting_real) -------

DOCS = Path(__file__).resolve().parents[2] / "docs"
# A web server configuration file as the docs name it: a *.conf, a Caddyfile, or one of the
# static hosts' files inside public/ (bare `_redirects` etc. are only talked about).
_CONFIG_NAME = re.compile(
    r"(?<![\w./-])(/?(?:[\w.-]+/)*(?:[\w.-]+\.conf|Caddyfile)"
    r"|public/(?:_headers|_redirects|\.htaccess|[\w.-]+\.conf))(?![\w-]|\.\w)")
_HOSTING_REDIRECT = re.compile(r"fedipress hosting (\w+)(?: [^>\n`]*)? > ([^\s`]+)")


def test_every_config_file_the_docs_name_is_generated() -> None:
    config = make_config()
    # With fediverse.enabled: false the build also writes Netlify's _redirects (410 Gone).
    left = replace(config, fediverse=replace(config.fediverse, enabled=False))
    built = {f"public/{o.path}" for c in (config, left) for o in plan_host_files(c)}
    printed: dict[str, str] = {}  # file -> the `fedipress hosting KIND` that writes it
    texts = {path.name: path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md"))}
    for text in texts.values():
        for kind, target in _HOSTING_REDIRECT.findall(text):
            assert kind in HOST_KINDS, f"docs: `fedipress hosting {kind}` does not exist"
            printed[target] = kind
    named = {(name, file) for file, text in texts.items() for name in _CONFIG_NAME.findall(text)}
    assert any(name.endswith(".conf") for name, _ in named)  # the scan finds what it looks for
    for name, file in sorted(named):
        assert name in built or name in printed, (
            f"docs/{file} names {name}, which neither `fedipress build` nor a documented"
            " `fedipress hosting KIND > FILE` writes")
    # what the docs tell people to run in front of the inbox is what the real-server test runs
    real = (Path(__file__).parent / "test_hosting_real.py").read_text(encoding="utf-8")
    run = re.search(r"@pytest\.fixture\([^)]*params=\[([^\]]*)\]", real)
    assert run is not None
    for kind in set(printed.values()):
        assert f'"{kind}"' in run.group(1), f"`fedipress hosting {kind}` is not run for real"


_PIECES = ["resource=", "resource", "rel=self", "&", "=", "acct", ":", "%3A", "%3a", "alice",
           "ALICE", "bob", "@", "%40", "blog.example", "Blog.Example", "other.example", "https",
           "//", "%2F%2F", "/", "actor.json", "mailto", "%20", "+", "%2B", "x", "%FF", "%0A",
           "?", "%23",  # (a raw # ends the URL: no server sees one in a query)
           "'", "(", ")", "~", "%7E",
           # whole resources, so that near-misses of the blog's own are common
           "resource=acct:alice@blog.example", "resource=acct%3Aalice%40blog.example",
           "resource=https://blog.example/actor.json", "resource=https%3A%2F%2Fblog.example%2F",
           "resource=https://blog.example"]


def _caddy_rules(config: object, query: str) -> int:
    """The Caddy route's matchers, in order, on the decoded first `resource` (Caddy's
    {query.resource}) and the raw query ({query})."""
    import re
    from urllib.parse import parse_qs

    from fedipress.federation import hosting

    text = hosting_config(config, "caddy")  # type: ignore[arg-type]
    own = hosting._own_resource_re(config, raw=False)  # type: ignore[arg-type]
    for pattern in (hosting._REPEATED_RE, hosting._URI_RE, hosting._BAD_ACCT_RE, own):
        assert pattern in text
    def search(pattern: str, text: str) -> bool:
        # RE2's $ is the end of the text; Python's would also match before a final newline
        return re.search(pattern.replace("$", r"\Z"), text) is not None

    first = (parse_qs(query, keep_blank_values=True).get("resource") or [""])[0]
    if first == "" or search(hosting._REPEATED_RE, query):
        return 400
    if not search(hosting._URI_RE, first) or search(hosting._BAD_ACCT_RE, first):
        return 400
    return 200 if search(own, first) else 404


@pytest.mark.parametrize("query", RAW_CASES)
def test_caddy_rules_answer_as_the_service(query: str) -> None:
    from fedipress.activitypub.webfinger import webfinger_answer

    config = make_config()
    assert _caddy_rules(config, query) == webfinger_answer(config, query).status


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_PIECES), max_size=8))
def test_nginx_and_apache_rules_agree_with_the_service_on_any_query(pieces: list[str]) -> None:
    from fedipress.activitypub.webfinger import webfinger_answer

    query = "".join(pieces)
    config = make_config()
    expected = webfinger_answer(config, query).status
    assert _raw_rules(config, query) == expected, query
    assert _caddy_rules(config, query) == expected, query
