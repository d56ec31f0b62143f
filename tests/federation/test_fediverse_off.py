"""`fediverse.enabled: false`: the next build publishes no ActivityPub documents, the pages
lose the Follow and reply boxes, and every generated host configuration answers 410 Gone for
the actor, the objects, WebFinger and the inbox, while the pages keep working. The nginx and
Caddy configurations are run for real on loopback where the binaries are installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from fedipress.config import load_config
from fedipress.federation.hosting import HOST_KINDS, hosting_config
from fedipress.federation.hosting_gone import GONE_MESSAGE, gone_paths_regex
from fedipress.generator.build import build_site
from support.interop_peer import free_port
from support.webservers import binary, start_caddy, start_nginx, stop

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AP_NAMES = {"actor.json", "outbox.json", "followers.json", "following.json", "featured.json",
            "object.json", "replies.json", "likes.json", "shares.json", "webfinger",
            "host-meta", "nodeinfo", "2.1"}
GONE = ["/actor.json", "/outbox.json", "/outbox/page-1.json", "/followers.json",
        "/following.json", "/featured.json", "/posts/hello/object.json",
        "/posts/hello/replies.json", "/.well-known/webfinger", "/.well-known/host-meta",
        "/.well-known/nodeinfo", "/nodeinfo/2.1", "/inbox"]
KEPT = ["/", "/posts/hello/", "/feed.xml", "/tags/", "/archive/"]


def make_site(tmp: Path, base_url: str = "https://blog.example/") -> Path:
    root = tmp / "site"
    shutil.copytree(FIXTURES / "sites" / "basic", root)
    shutil.copy(FIXTURES / "keys" / "blog-public.pem", root / "fedipress-public-key.pem")
    text = (root / "site.yaml").read_text(encoding="utf-8")
    (root / "site.yaml").write_text(
        text.replace("base_url: https://blog.example/", f"base_url: {base_url}"),
        encoding="utf-8")
    return root


def switch_off(root: Path) -> None:
    config = root / "site.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "  enabled: false\n",
                      encoding="utf-8")


def ap_files(public: Path) -> list[str]:
    return sorted(p.relative_to(public).as_posix() for p in public.rglob("*")
                  if p.is_file() and (p.name in AP_NAMES or "outbox" in p.parts
                                      or ".well-known" in p.parts))


def test_the_next_build_after_switching_off_has_no_activitypub_files(tmp_path: Path) -> None:
    root = make_site(tmp_path)
    public = root / "public"
    build_site(load_config(root / "site.yaml"), log=lambda _l: None)
    assert "actor.json" in ap_files(public) and "posts/hello/object.json" in ap_files(public)
    assert 'id="follow"' in (public / "index.html").read_text()

    switch_off(root)
    lines: list[str] = []
    result = build_site(load_config(root / "site.yaml"), log=lines.append)
    assert ap_files(public) == []
    assert not (public / ".well-known").exists() and not (public / "outbox").exists()
    assert result.removed > 0
    assert any("fediverse.enabled is false" in line for line in lines)
    # Pages still there, without the Follow box, the reply box or ActivityPub links.
    for page in ("index.html", "posts/hello/index.html", "archive/index.html"):
        html = (public / page).read_text(encoding="utf-8")
        for gone in ('id="follow"', "follow-form", "Reply from the fediverse",
                     "application/activity+json", "fediverse:creator", 'href="#follow"'):
            assert gone not in html, (page, gone)
    assert "Hello" in (public / "posts/hello/index.html").read_text(encoding="utf-8")
    htaccess = (public / ".htaccess").read_text()
    assert "RedirectMatch gone" in htaccess and "ForceType" not in htaccess
    redirects = (public / "_redirects").read_text()
    assert "/actor.json  /404.html  410!" in redirects
    assert "/posts/:slug/object.json  /404.html  410!" in redirects
    assert "activity+json" not in (public / "_headers").read_text()

    # Switched back on: the documents come back.
    config = root / "site.yaml"
    config.write_text(config.read_text().replace("  enabled: false\n", ""), encoding="utf-8")
    build_site(load_config(config), log=lambda _l: None)
    assert "actor.json" in ap_files(public) and not (public / "_redirects").exists()


def test_the_gone_pattern_matches_the_documents_and_not_the_pages(tmp_path: Path) -> None:
    root = make_site(tmp_path)
    switch_off(root)
    pattern = re.compile(gone_paths_regex(load_config(root / "site.yaml")))
    for path in GONE:
        assert pattern.search(path), path
    for path in [*KEPT, "/posts/object-lessons/", "/actor.json.html", "/images/avatar.svg"]:
        assert not pattern.search(path), path


def test_every_host_kind_says_gone(tmp_path: Path) -> None:
    root = make_site(tmp_path)
    switch_off(root)
    config = load_config(root / "site.yaml")
    texts = {kind: hosting_config(config, kind) for kind in HOST_KINDS}
    assert f'return 410 "{GONE_MESSAGE}\\n";' in texts["nginx"]
    assert f'respond @gone "{GONE_MESSAGE}" 410' in texts["caddy"]
    assert "RedirectMatch gone" in texts["apache"]
    assert "410!" in texts["netlify"]
    assert "cannot answer 410" in texts["cloudflare"]
    for kind, text in texts.items():
        assert "application/activity+json" not in text, kind
        assert "proxy_pass" not in text and "reverse_proxy" not in text, kind


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_the_generated_configuration_answers_410_for_real(tmp_path: Path, kind: str) -> None:
    found = binary(kind)
    port = free_port()
    root = make_site(tmp_path, f"http://127.0.0.1:{port}/")
    switch_off(root)
    config = load_config(root / "site.yaml")
    build_site(config, log=lambda _l: None)
    conf = tmp_path / f"{kind}.conf"
    conf.write_text(hosting_config(config, kind, listen=f"127.0.0.1:{port}"), encoding="utf-8")
    start = start_nginx if kind == "nginx" else start_caddy
    process: subprocess.Popen[bytes] = start(found, tmp_path, conf, port)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=10) as client:
            for path in GONE:
                answer = client.get(base + path,
                                    headers={"Accept": "application/activity+json"})
                assert answer.status_code == 410, (kind, path, answer.status_code)
                assert GONE_MESSAGE in answer.text
            finger = client.get(base + "/.well-known/webfinger",
                                params={"resource": f"acct:tester@127.0.0.1:{port}"})
            assert finger.status_code == 410
            assert finger.headers.get("access-control-allow-origin") == "*"
            posted = client.post(base + "/inbox", content=b"{}")
            assert posted.status_code == 410
            for path in KEPT:
                page = client.get(base + path)
                assert page.status_code == 200, (kind, path, page.status_code)
    finally:
        stop(process)
