"""The owner API of a real `fedipress inbox` (real key, store and token on loopback): bearer
auth in constant time, 401 that changes nothing, rate-limited failures, the token kept out of
the log, health, followers, deliveries, the conversation export and the OpenAPI document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedipress.cli import main
from fedipress.errors import FedipressError
from fedipress.federation.owner_api import (
    MIN_TOKEN_CHARS,
    OwnerApi,
    load_owner_token,
    new_token,
)
from fedipress.store import Follower, Interaction, open_store
from support.service import (
    KEYS,
    PREFIX,
    REPO,
    clean_env,
    make_clone,
    read_json,
    start_service,
)

pytestmark = pytest.mark.slow


def _follower(n: int) -> Follower:
    return Follower(actor_id=f"https://f{n}.example/users/u{n}",
                    inbox=f"https://f{n}.example/users/u{n}/inbox", shared_inbox=None,
                    handle=f"u{n}@f{n}.example", name=f"U{n}", followed_at=datetime.now(UTC))


def test_auth_rate_limit_and_token_kept_out_of_the_log(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home")
    wrong = "Z" * 60
    try:
        actor = json.loads((service.root / "public" / "actor.json").read_text())
        for headers in ({}, {"Authorization": f"Bearer {wrong}"},
                        {"Authorization": f"Basic {service.token}"}):
            for method, path, body in (("GET", "/followers", None), ("GET", "/health", None),
                                       ("POST", "/publish/sessions", {"actor": actor})):
                r = httpx.request(method, service.api(path), json=body, headers=headers)
                assert r.status_code == 401, (path, r.text)
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert wrong not in r.text and service.token not in r.text
        assert service.ledger() == {}
        assert httpx.get(service.api("/followers"), headers=service.auth()).status_code == 200

        # One address that keeps guessing is stopped; then even the right token waits.
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        codes = [httpx.get(service.api("/health"),
                           headers=attacker | {"Authorization": f"Bearer {wrong}{i}"}
                           ).status_code for i in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
        r = httpx.get(service.api("/health"), headers=attacker | service.auth())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # Others are not affected.
        assert httpx.get(service.api("/health"), headers=service.auth()).status_code == 200
    finally:
        log = service.stop()
    assert "owner API: refused GET /.fedipress/api/v1/followers from 127.0.0.1: wrong token" \
        in log
    assert service.token not in log
    assert wrong not in log


def test_health_followers_deliveries_and_conversations(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home", followers=[_follower(n) for n in range(3)])
    try:
        health = read_json(httpx.get(service.api("/health"), headers=service.auth()))
        assert health["key_matches"] is True and health["status"] == "ok"
        assert health["followers"] == 3

        page1 = read_json(httpx.get(service.api("/followers?per_page=2"),
                                    headers=service.auth()))
        assert page1["count"] == 3 and len(page1["followers"]) == 2  # type: ignore[arg-type]
        assert page1["next"] == f"{PREFIX}/followers?page=2&per_page=2"
        page2 = read_json(httpx.get(service.base.rstrip("/") + str(page1["next"]),
                                    headers=service.auth()))
        assert [f["id"] for f in page2["followers"]] == ["https://f2.example/users/u2"]  # type: ignore[union-attr, index]
        assert page2["next"] is None
        assert httpx.get(service.api("/followers?per_page=0"),
                         headers=service.auth()).status_code == 400

        deliveries = read_json(httpx.get(service.api("/deliveries"), headers=service.auth()))
        assert set(deliveries["counts"]) >= {"pending", "failed"}  # type: ignore[arg-type]
        assert deliveries["failures"] == []

        # Conversations: the first publish puts the post in the ledger; a reply and a like
        # arrive; an unapproved reply is not public and is left out.
        clone = make_clone(service, tmp_path / "ci")
        proc = subprocess.run(
            [sys.executable, "-m", "fedipress.cli", "publish", "--config",
             str(clone / "site.yaml")], capture_output=True, cwd=REPO, timeout=120,
            env=clean_env(CI="true", FEDIPRESS_SERVICE_URL=service.base,
                          FEDIPRESS_SERVICE_TOKEN=service.token,
                          FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1"))
        assert proc.returncode == 0, proc.stderr.decode()
        post = service.base + "posts/first/object.json"
        store = open_store(service.root / ".fedipress" / "state.db")
        now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        try:
            store.add_interaction(Interaction("https://f1.example/l/1", "like",
                                              "https://f1.example/users/u1", post, now, now))
            for n, approved in ((1, True), (2, False)):
                store.add_interaction(Interaction(
                    f"https://f{n}.example/c/{n}", "reply", f"https://f{n}.example/users/u{n}",
                    post, now, now, author_name=f"U{n}", content_html=f"<p>r{n}<script>x</script>",
                    content_safe_html=f"<p>r{n}</p>", approved=approved,
                    reply_object_id=f"https://f{n}.example/notes/{n}"))
        finally:
            store.close()
        first = httpx.get(service.api("/conversations"), headers=service.auth())
        second = httpx.get(service.api("/conversations"), headers=service.auth())
        assert first.content == second.content  # deterministic
        export = read_json(first)
        entry = export["objects"][post]  # type: ignore[index]
        assert len(entry["likes"]) == 1 and entry["boosts"] == []
        [reply] = entry["replies"]
        assert reply["id"] == "https://f1.example/notes/1"
        assert reply["content_html"] == "<p>r1</p>"
        assert "script" not in first.text and "r2" not in first.text

        # The published actor.json now carries another key: health says so.
        actor_path = service.root / "public" / "actor.json"
        actor = json.loads(actor_path.read_text())
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        actor["publicKey"]["publicKeyPem"] = other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        actor_path.write_text(json.dumps(actor))
        health = read_json(httpx.get(service.api("/health"), headers=service.auth()))
        assert health["key_matches"] is False and health["status"] == "key mismatch"
        assert "fedipress keys show" in str(health["problem"])
    finally:
        service.stop()


def test_openapi_document_is_public_and_lists_every_route(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home")
    try:
        r = httpx.get(service.api("/openapi.json"))
        assert r.status_code == 200
        doc = read_json(r)
    finally:
        service.stop()
    assert doc["openapi"] == "3.1.0"
    paths = doc["paths"]
    assert isinstance(paths, dict)
    store = open_store(tmp_path / "x.db")
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        from fedipress.config import load_config

        key = load_pem_private_key((KEYS / "blog-private.pem").read_bytes(), None)
        api = OwnerApi(load_config(service.root / "site.yaml"), store, key, new_token(),  # type: ignore[arg-type]
                       fetcher=None, clock=lambda: datetime.now(UTC), site_dir=None,
                       allow_private=False)
        served = {(m.lower(), route.path)  # type: ignore[attr-defined]
                  for route in api.routes() for m in route.methods or ()  # type: ignore[attr-defined]
                  if m != "HEAD"}
    finally:
        store.close()
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    assert documented == served
    for ops in paths.values():
        for op in ops.values():
            assert op["summary"] and op["operationId"]


def test_token_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "token"]) == 0
    printed = capsys.readouterr().out.strip()
    assert len(printed) >= MIN_TOKEN_CHARS and printed != new_token()
    assert load_owner_token(None, {"FEDIPRESS_SERVICE_TOKEN": printed}) == printed
    assert load_owner_token(None, {}) is None
    with pytest.raises(FedipressError) as short:
        load_owner_token(None, {"FEDIPRESS_SERVICE_TOKEN": "short-secret-123"})
    assert "short-secret-123" not in str(short.value)
    assert "fedipress service token" in str(short.value)
    token_file = tmp_path / "token"
    token_file.write_text(printed + "\n")
    assert load_owner_token(token_file, {}) == printed
    assert load_owner_token(token_file, {"FEDIPRESS_SERVICE_TOKEN": "e" * 50}) == "e" * 50

    # site.yaml's service.token_file is read by the service; a short token stops it at start.
    root = tmp_path / "blog"
    root.mkdir()
    (root / "site.yaml").write_text(
        "title: T\nbase_url: https://blog.example/\nauthor:\n  name: A\n  handle: a\n"
        "service:\n  token_file: secret/token\n")
    (root / "secret").mkdir()
    (root / "secret" / "token").write_text("too-short")
    (root / "fedipress-public-key.pem").write_bytes((KEYS / "blog-public.pem").read_bytes())
    state = root / ".fedipress"
    state.mkdir(mode=0o700)
    (state / "private-key.pem").write_bytes((KEYS / "blog-private.pem").read_bytes())
    (state / "private-key.pem").chmod(0o600)
    proc = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "inbox", "--config", str(root / "site.yaml"),
         "--port", "0"], capture_output=True, timeout=60, cwd=REPO, env=clean_env())
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "owner token must be at least" in err
    assert "too-short" not in err

    (root / "site.yaml").write_text(
        "title: T\nbase_url: https://blog.example/\nauthor:\n  name: A\n  handle: a\n"
        "service:\n  token_file: public/token\n")
    assert main(["inbox", "--config", str(root / "site.yaml"), "--port", "0"]) == 2
    assert "service.token_file: must not be inside the output directory" in \
        capsys.readouterr().err
    assert os.environ.get("FEDIPRESS_SERVICE_TOKEN") is None


def test_a_refusal_inside_the_api_is_an_answer_not_a_5xx(tmp_path: Path) -> None:
    """A FedipressError while planning (what the local publish would print as one line) is a
    422 with that line; a store that cannot be reached is a 503 to retry."""
    import asyncio

    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from starlette.applications import Starlette

    from fedipress.config import load_config
    from fedipress.errors import StoreError

    (tmp_path / "site.yaml").write_text(
        "title: T\nbase_url: https://blog.example/\nauthor:\n  name: A\n  handle: a\n")
    store = open_store(tmp_path / "state.db")
    key = load_pem_private_key((KEYS / "blog-private.pem").read_bytes(), None)
    token = new_token()
    api = OwnerApi(load_config(tmp_path / "site.yaml"), store, key, token,  # type: ignore[arg-type]
                   fetcher=None, clock=lambda: datetime.now(UTC), site_dir=None,
                   allow_private=False)

    async def too_large(request: object) -> None:
        raise FedipressError("Create of x is 70 KiB even shortened")

    async def store_down(request: object) -> None:
        raise StoreError("database is locked")

    api.deliveries = too_large  # type: ignore[method-assign, assignment]
    api.followers = store_down  # type: ignore[method-assign, assignment]

    async def main() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=Starlette(routes=api.routes()))
        async with httpx.AsyncClient(transport=transport, base_url="https://blog.example",
                                     headers={"Authorization": f"Bearer {token}"}) as c:
            return (await c.get(PREFIX + "/deliveries"), await c.get(PREFIX + "/followers"))

    try:
        refused, down = asyncio.run(main())
    finally:
        store.close()
    assert refused.status_code == 422
    assert refused.json() == {"error": "Create of x is 70 KiB even shortened"}
    assert down.status_code == 503 and down.headers["retry-after"] == "60"
