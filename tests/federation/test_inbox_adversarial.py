"""Hostile requests to the inbox: every rejection path, SSRF through keyId, and a fuzz test
asserting that nothing from outside produces a 5xx."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedipress.federation.inbox import InboxSettings
from support.inbox import (
    ACTOR,
    AS2,
    NOW,
    OTHER_KEY,
    POST,
    Env,
    Remote,
    actor_doc,
    make_env,
)


def nothing_stored(env: Env) -> bool:
    return (
        env.count("inbox_log") == 0
        and env.count("seen_activities") == 0
        and env.count("followers") == 0
        and env.count("interactions") == 0
        and env.count("remote_keys") == 0
        and env.count("deliveries") == 0
    )


def test_unsigned_request_is_401(env: Env) -> None:
    body = json.dumps(env.activity("Follow", ACTOR)).encode()
    [r] = env.send((body, {"Content-Type": AS2}))
    assert r.status_code == 401 and "missing" in r.json()["error"]
    assert nothing_stored(env)


def test_forged_signature_is_401(env: Env) -> None:
    r = env.post(env.activity("Follow", ACTOR), key=OTHER_KEY)
    assert r.status_code == 401 and r.json()["error"] == "signature does not verify"
    assert nothing_stored(env)


def test_digest_mismatch_is_401(env: Env) -> None:
    body, headers = env.signed(env.activity("Follow", ACTOR))
    tampered = body.replace(b"Follow", b"Like")
    [r] = env.send((tampered, headers))
    assert r.status_code == 401 and "digest" in r.json()["error"]
    assert nothing_stored(env)


def test_stale_date_is_401(env: Env) -> None:
    r = env.post(env.activity("Follow", ACTOR), now=NOW - timedelta(hours=3))
    assert r.status_code == 401 and "window" in r.json()["error"]


def test_wrong_content_type_is_415(env: Env) -> None:
    body, headers = env.signed(env.activity("Follow", ACTOR), content_type="text/plain")
    assert env.send((body, headers))[0].status_code == 415
    assert nothing_stored(env)


def test_oversized_body_is_413(env: Env) -> None:
    activity = env.activity("Follow", ACTOR)
    activity["padding"] = "x" * (1 << 20)
    r = env.post(activity)
    assert r.status_code == 413
    assert nothing_stored(env)


def test_oversized_body_with_lying_content_length_is_413(env: Env) -> None:
    activity = env.activity("Follow", ACTOR)
    activity["padding"] = "x" * (1 << 20)
    body, headers = env.signed(activity)

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    import asyncio

    import httpx

    from fedipress.federation.inbox import create_app
    from fedipress.federation.remote import FetchPolicy, RemoteFetcher

    async def main() -> int:
        async with RemoteFetcher(policy=FetchPolicy(allow_private=True), user_agent="t") as f:
            app = create_app(env.config, env.store, f, clock=lambda: NOW)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://blog.example") as c:
                r = await c.post("/inbox", content=chunks(), headers=headers)  # chunked
                return r.status_code

    assert asyncio.run(main()) == 413
    assert nothing_stored(env)


def test_deeply_nested_json_is_400(env: Env) -> None:
    body = (
        b'{"id": "x", "type": "Like", "actor": "https://a.example/", "o": '
        + (b"[" * 5000 + b"]" * 5000)
        + b"}"
    )
    body, headers = env.signed(body)
    r = env.send((body, headers))[0]
    assert r.status_code == 400 and "nested" in r.json()["error"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"type": "Like"}', b'{"id": "x", "type": "Like", "actor": 5}'],
)
def test_malformed_activity_is_400(env: Env, body: bytes) -> None:
    r = env.send(env.signed(body))[0]
    assert r.status_code == 400
    assert nothing_stored(env)


def test_key_owner_must_be_the_actor(env: Env, remote: Remote) -> None:
    # Mallory signs correctly with her own key, claiming to be Alice.
    remote.docs["/users/mallory"] = actor_doc(remote, "mallory")
    like = env.activity("Like", POST)
    r = env.post(like, key_id=remote.url("/users/mallory#main-key"))
    assert r.status_code == 401 and "actor" in r.json()["error"]
    assert env.store.recent_interactions() == []
    assert env.count("inbox_log") == 0


def test_key_on_another_host_is_refused_without_fetching(env: Env, remote: Remote) -> None:
    remote.gets.clear()
    r = env.post(env.activity("Like", POST), key_id="http://localhost:1/users/x#main-key")
    assert r.status_code == 401
    assert remote.gets == []


def test_keyid_on_our_own_host_is_refused(env: Env) -> None:
    r = env.post(env.activity("Like", POST), key_id=ACTOR + "#main-key")
    assert r.status_code == 401 and "this server" in r.json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:9", "10.0.0.1", "169.254.169.254"])
def test_ssrf_keyid_without_opt_in_is_refused(tmp_path: Path, remote: Remote, host: str) -> None:
    env = make_env(tmp_path, remote, allow_private=False)
    actor = f"https://{host}/users/x"
    activity = env.activity("Follow", ACTOR, actor=actor)
    r = env.post(activity, key_id=actor + "#main-key")
    assert r.status_code == 401 and "refused" in r.json()["error"]
    assert nothing_stored(env)
    env.store.close()


def test_replayed_request_stores_nothing_new(env: Env) -> None:
    signed = env.signed(env.activity("Follow", ACTOR))
    first = env.send(signed)
    counts = (env.count("inbox_log"), env.count("deliveries"), env.count("seen_activities"))
    again = env.send(signed, signed)
    assert [r.status_code for r in first + again] == [202, 202, 202]
    assert (env.count("inbox_log"), env.count("deliveries"), env.count("seen_activities")) == counts


def test_blocked_domain_in_site_yaml_is_403(tmp_path: Path, remote: Remote) -> None:
    env = make_env(tmp_path, remote, blocked=("127.0.0.1",))
    r = env.post(env.activity("Follow", ACTOR))
    assert r.status_code == 403
    assert nothing_stored(env)
    env.store.close()


def test_blocked_actor_in_store_is_403(env: Env) -> None:
    env.store.add_block(env.alice, NOW)
    assert env.post(env.activity("Like", POST)).status_code == 403
    assert env.store.recent_interactions() == []


def test_rate_limit_per_ip_is_429_with_retry_after(tmp_path: Path, remote: Remote) -> None:
    limits = InboxSettings(ip_per_minute=1, ip_burst=2)
    env = make_env(tmp_path, remote, settings=limits)
    requests = [env.signed(env.activity("Add", POST, n)) for n in range(3)]
    responses = env.send(*requests)
    assert [r.status_code for r in responses] == [202, 202, 429]
    assert int(responses[2].headers["Retry-After"]) >= 1
    # Another address is not limited.
    assert (
        env.send(env.signed(env.activity("Add", POST, 9)), ip="198.51.100.1")[0].status_code == 202
    )
    env.store.close()


def test_rate_limit_per_signing_host(tmp_path: Path, remote: Remote) -> None:
    limits = InboxSettings(host_per_minute=1, host_burst=1)
    env = make_env(tmp_path, remote, settings=limits)
    # The IP limit is generous: the second request is refused for its signing host.
    a, b = env.send(
        env.signed(env.activity("Add", POST, 1)), env.signed(env.activity("Add", POST, 2))
    )
    assert (a.status_code, b.status_code) == (202, 429)
    env.store.close()


def test_get_inbox_is_405_and_healthz_is_ok(env: Env) -> None:
    import asyncio

    import httpx

    from fedipress.federation.inbox import create_app
    from fedipress.federation.remote import FetchPolicy, RemoteFetcher

    async def main() -> tuple[int, int, dict[str, str]]:
        async with RemoteFetcher(policy=FetchPolicy(allow_private=True), user_agent="t") as f:
            app = create_app(env.config, env.store, f, clock=lambda: NOW)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://blog.example") as c:
                inbox = await c.get("/inbox")
                health = await c.get("/healthz")
                return inbox.status_code, health.status_code, health.json()

    assert asyncio.run(main()) == (405, 200, {"status": "ok"})


# --- fuzz: nothing from outside may produce a 5xx ---------------------------------------------

_header_names = st.sampled_from(
    [
        "content-type",
        "signature",
        "signature-input",
        "digest",
        "content-digest",
        "date",
        "host",
        "content-length",
        "authorization",
        "x-forwarded-for",
    ]
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


# JSON-shaped bodies with the pieces a parser or an encoder downstream may choke on: lone
# surrogate escapes, raw bytes that are not UTF-8, NaN, numbers out of range, repeated keys.
_hostile_json = st.lists(
    st.sampled_from([
        b'{"id": "https://a.example/1", "type": "Follow", "actor": "https://a.example/u", ',
        b'"object": "', b'"summary": "', b'\\ud800', b'\\udfff', b'\\ud83d\\ude00', b'\xff',
        b'\xed\xa0\x80', b'", ', b'"', b'NaN', b'-Infinity', b'1e99999', b'9' * 5000,
        b'"type": "Like", ', b'[', b']', b'{', b'}', b'\x00', b'\\u0000',
    ]),
    max_size=12,
).map(b"".join)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=300),
        _hostile_json,
        _json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "id": st.text(max_size=30),
                "type": st.sampled_from(
                    [
                        "Follow",
                        "Like",
                        "Undo",
                        "Create",
                        "Delete",
                        "Move",
                        "Update",
                        "Announce",
                        "X",
                    ]
                ),
                "actor": st.sampled_from(["https://a.example/u", "http://[::1", "x", ""]),
                "object": _json_values,
            }
        ).map(lambda v: json.dumps(v).encode()),
    ),
    headers=st.dictionaries(
        _header_names,
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        max_size=6,
    ),
    sign=st.booleans(),
)
def test_fuzzed_requests_never_5xx(
    tmp_path_factory: pytest.TempPathFactory,
    remote_server: Remote,
    body: bytes,
    headers: dict[str, str],
    sign: bool,
) -> None:
    remote_server.docs["/users/alice"] = actor_doc(remote_server, "alice")
    env = make_env(tmp_path_factory.mktemp("fuzz"), remote_server)
    try:
        sent = dict(headers)
        if sign:
            signed_body, signed_headers = env.signed(body)
            sent = {**signed_headers, **{k: v for k, v in headers.items() if k != "content-type"}}
            body = signed_body
        sent.pop("content-length", None)  # httpx sets it; a wrong one is a client-side error
        sent.setdefault("content-type", AS2)
        [r] = env.send((body, sent))
        assert r.status_code < 500, r.text
    finally:
        env.store.close()
