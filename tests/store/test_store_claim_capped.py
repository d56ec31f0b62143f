"""claim_due with a per-host cap picks exactly the rows the original ranking query picked.

The capped claim used to rank every due row with a window function (O(queue) per claim); it
now walks the due index and stops at the limit. This property test keeps the old query as the
reference and compares both on random queues: pending and in-flight rows, live and expired
leases, ties in due time, few hosts so that caps bite.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedipress.store import PlannedActivity, SQLiteStore, open_store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)

REFERENCE = (
    "WITH due AS ("
    " SELECT id, host, next_attempt_at FROM deliveries"
    "  WHERE state = 'pending' AND next_attempt_at <= :now"
    " UNION ALL"
    " SELECT id, host, next_attempt_at FROM deliveries"
    "  WHERE state = 'in_flight' AND lease_expires_at <= :now),"
    " busy AS (SELECT host, COUNT(*) AS n FROM deliveries"
    "  WHERE state = 'in_flight' AND lease_expires_at > :now GROUP BY host),"
    " ranked AS (SELECT due.id, due.next_attempt_at,"
    "  ROW_NUMBER() OVER (PARTITION BY due.host"
    "   ORDER BY due.next_attempt_at, due.id) + COALESCE(busy.n, 0) AS slot"
    "  FROM due LEFT JOIN busy ON busy.host = due.host)"
    " SELECT id FROM ranked WHERE slot <= :cap"
    " ORDER BY next_attempt_at, id LIMIT :limit"
)


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def store() -> Iterator[SQLiteStore]:
    # Module scope: hypothesis runs many examples against one file, emptied between them.
    with tempfile.TemporaryDirectory() as tmp:
        s = open_store(Path(tmp) / "state.db")
        s.plan_publication(
            [PlannedActivity("https://blog.example/a/1", None, "Create", b"{}")], [], [], NOW
        )
        yield s
        s.close()


ROW = st.tuples(
    st.sampled_from(["a.example", "b.example", "c.example", "d.example", "e.example"]),
    st.sampled_from(["pending", "in_flight", "delivered"]),
    st.integers(-3, 3),  # next_attempt_at, minutes from now (ties are likely)
    st.integers(-3, 3),  # lease_expires_at, minutes from now (in flight only)
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ROW, max_size=40), limit=st.integers(1, 12), cap=st.integers(1, 4))
def test_capped_claim_matches_the_ranking_query(
    store: SQLiteStore, rows: list[tuple[str, str, int, int]], limit: int, cap: int
) -> None:
    conn = store._writer
    conn.execute("DELETE FROM deliveries")
    for n, (host, state, due, lease) in enumerate(rows):
        conn.execute(
            "INSERT INTO deliveries (activity_id, inbox, host, attempts, next_attempt_at, state,"
            " lease_owner, lease_expires_at, created_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)",
            (
                "https://blog.example/a/1",
                f"https://{host}/inbox/{n}",
                host,
                _ts(NOW + timedelta(minutes=due)),
                state,
                "w" if state == "in_flight" else None,
                _ts(NOW + timedelta(minutes=lease)) if state == "in_flight" else None,
                _ts(NOW),
            ),
        )
    now_s = _ts(NOW)
    expected = [
        r[0] for r in conn.execute(REFERENCE, {"now": now_s, "limit": limit, "cap": cap})
    ]
    got = [r[0] for r in store._due_capped(conn, now_s, limit, cap)]
    assert got == expected
