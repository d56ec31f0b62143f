"""On PostgreSQL the inbox's rate limits and key-refetch cooldown hold across processes (each
`env.send` below is a fresh inbox app, as a second process would be); on SQLite they are per
process, as documented."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fedipress.federation.inbox import InboxSettings
from fedipress.store import open_store, shared_limits
from support.inbox import POST, Remote, make_env


def test_a_signing_host_limit_holds_across_inbox_processes(
    tmp_path: Path, remote: Remote, postgres_url: str
) -> None:
    env = make_env(tmp_path, remote, settings=InboxSettings(host_per_minute=1, host_burst=2))
    env.store.close()
    env.store = open_store(postgres_url)  # type: ignore[assignment]
    try:
        first = env.send(env.signed(env.activity("Add", POST, 1)),
                         env.signed(env.activity("Add", POST, 2)))
        assert [r.status_code for r in first] == [202, 202]
        # Another process (a new app on the same store): the host's bucket is already empty.
        [again] = env.send(env.signed(env.activity("Add", POST, 3)))
        assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    finally:
        env.store.close()


def test_on_sqlite_each_process_has_its_own_limits(tmp_path: Path, remote: Remote) -> None:
    env = make_env(tmp_path, remote, settings=InboxSettings(host_per_minute=1, host_burst=2))
    try:
        assert shared_limits(env.store) is None
        env.send(env.signed(env.activity("Add", POST, 1)), env.signed(env.activity("Add", POST, 2)))
        [again] = env.send(env.signed(env.activity("Add", POST, 3)))
        assert again.status_code == 202
    finally:
        env.store.close()


def test_token_buckets_and_refetch_claims_are_exact_under_contention(postgres_url: str) -> None:
    stores = [open_store(postgres_url) for _ in range(4)]
    try:
        limits = [shared_limits(s) for s in stores]
        assert all(limits)
        now = time.time()
        allowed: list[bool] = []
        refetches: list[bool] = []
        barrier = threading.Barrier(len(stores))

        def hammer(n: int) -> None:
            limit = limits[n]
            assert limit is not None
            barrier.wait()
            for _ in range(10):
                allowed.append(limit.take_rate_token("server:a.example", now, 0.001, 7) is None)
                refetches.append(limit.claim_key_refetch("https://a.example/u#k", now, 60))

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert allowed.count(True) == 7  # the burst, shared by all four "processes"
        assert refetches.count(True) == 1  # one refetch per interval, whoever asks
        limit = limits[0]
        assert limit is not None
        assert limit.claim_key_refetch("https://a.example/u#k", now + 61, 60)
        wait = limit.take_rate_token("server:a.example", now, 60, 7)
        assert wait is not None and 0 < wait <= 1.0
        assert limit.take_rate_token("server:a.example", now + 1, 60, 7) is None  # refilled
    finally:
        for s in stores:
            s.close()


def test_chained_buckets_take_the_second_only_when_the_first_allows(postgres_url: str) -> None:
    """take_rate_tokens (the address's and the server's bucket in one statement, every POST)
    behaves as take_rate_token called in turn, stopping at the first refusal."""
    stores = [open_store(postgres_url) for _ in range(4)]
    try:
        limits = [shared_limits(s) for s in stores]
        now = time.time()
        results: list[tuple[int, float] | None] = []
        barrier = threading.Barrier(len(stores))

        def hammer(n: int) -> None:
            limit = limits[n]
            assert limit is not None
            barrier.wait()
            for _ in range(5):
                results.append(limit.take_rate_tokens(
                    [("address:10.0.0.1", 0.001, 6), ("server:b.example", 0.001, 4)], now))

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # 20 requests: the address allows 6 (burst), of which the server allows 4.
        assert results.count(None) == 4
        assert sum(1 for r in results if r is not None and r[0] == 1) == 2
        assert sum(1 for r in results if r is not None and r[0] == 0) == 14
        assert all(r[1] > 0 for r in results if r is not None)
        limit = limits[0]
        assert limit is not None
        # The server's bucket was not touched by the 14 the address refused: a fresh address
        # finds it empty only by its own 4 + 2 takes, and refills at its own rate.
        refused = limit.take_rate_tokens(
            [("address:10.0.0.2", 60, 5), ("server:b.example", 60, 4)], now + 1)
        assert refused is None  # one token refilled at 1/s
        second = limit.take_rate_tokens(
            [("address:10.0.0.2", 60, 5), ("server:b.example", 60, 4)], now + 1)
        assert second is not None and second[0] == 1 and abs(second[1] - 1.0) < 0.01
        assert limit.take_rate_tokens([], now) is None
        assert limit.take_rate_tokens([("address:10.0.0.3", 60, 1)], now) is None
        third = limit.take_rate_tokens([("address:10.0.0.3", 60, 1)], now)
        assert third is not None and third[0] == 0 and abs(third[1] - 1.0) < 0.01
    finally:
        for s in stores:
            s.close()


def test_store_threads_on_postgresql_are_capped_at_the_pool_size(
    tmp_path: Path, remote: Remote, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More threads than pooled connections only queue for one (each a thread started and
    woken): on PostgreSQL the inbox's store calls share a limiter of the pool's size; on
    SQLite they keep anyio's default."""
    import anyio.to_thread

    seen: list[int | None] = []
    real = anyio.to_thread.run_sync

    async def recording(func: Any, *args: Any, limiter: Any = None, **kw: Any) -> Any:
        seen.append(None if limiter is None else int(limiter.total_tokens))
        return await real(func, *args, limiter=limiter, **kw)

    monkeypatch.setattr(anyio.to_thread, "run_sync", recording)
    for sub in ("pg", "sqlite"):
        (tmp_path / sub).mkdir()
    env = make_env(tmp_path / "pg", remote, store_url=postgres_url)
    try:
        [response] = env.send(env.signed(env.activity("Like", POST, 1)))
        assert response.status_code == 202
        assert seen and set(seen) == {env.store.max_connections}  # type: ignore[attr-defined]
    finally:
        env.store.close()
    seen.clear()
    env = make_env(tmp_path / "sqlite", remote)
    try:
        [response] = env.send(env.signed(env.activity("Like", POST, 2)))
        assert response.status_code == 202
        assert seen and set(seen) == {None}
    finally:
        env.store.close()
