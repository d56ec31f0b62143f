"""Store part (both engines): the per-host circuit breaker (migration 0007_scaling).

A host that has failed every delivery since `first_failure_at` (no success in between) is
"failing"; after a day of that the delivery loop pauses it: `pause_host` moves all its pending
deliveries to `paused_until` in ONE statement instead of letting each fail on its own schedule.
The first success, or anything the host sends us (`resume_host`), clears it and makes its
paused deliveries due at once. Hosts failing for seven days are reported (`dead_hosts`) and
their followers removed only on request (`prune_dead_hosts`), never automatically.
"""

from __future__ import annotations

from datetime import datetime

from .protocol import HostHealth
from .sqlite_base import Row, SQLiteBase, _opt_dt, _ts

__all__ = ["HostsMixin"]

_COLS = "host, first_failure_at, last_failure_at, last_success_at, paused_until"


def _health(row: Row) -> HostHealth:
    return HostHealth(row[0], _opt_dt(row[1]), _opt_dt(row[2]), _opt_dt(row[3]),
                      _opt_dt(row[4]))


class HostsMixin(SQLiteBase):
    def record_host_failure(self, host: str, now: datetime) -> HostHealth:
        """One more failed delivery to `host` (a retryable failure: 5xx, 429, timeouts,
        connection errors); returns its state, `first_failure_at` the start of the run."""
        now_s = _ts(now)
        with self._write() as c:
            rows = c.execute(
                "INSERT INTO host_health (host, first_failure_at, last_failure_at)"
                " VALUES (?, ?, ?)"
                " ON CONFLICT (host) DO UPDATE SET last_failure_at = excluded.last_failure_at,"
                " first_failure_at = COALESCE(host_health.first_failure_at,"
                " excluded.first_failure_at)"
                f" RETURNING {_COLS}",
                (host, now_s, now_s),
            ).fetchall()  # fetch all: a RETURNING statement left unfinished blocks COMMIT
        return _health(rows[0])

    def record_host_success(self, host: str, now: datetime) -> int:
        """A delivery to `host` succeeded: it is healthy again. Returns how many of its paused
        deliveries became due now (0 when it was not paused)."""
        return self._clear_host(host, now, success=True)

    def resume_host(self, host: str, now: datetime) -> int:
        """`host` sent us something (it is alive): clear its failures and pause; returns how
        many paused deliveries became due now."""
        return self._clear_host(host, now, success=False)

    def _clear_host(self, host: str, now: datetime, *, success: bool) -> int:
        now_s = _ts(now)
        with self._write() as c:
            rows = c.execute(
                "SELECT paused_until FROM host_health WHERE host = ?"
                " AND (first_failure_at IS NOT NULL OR paused_until IS NOT NULL)", (host,)
            ).fetchall()
            if not rows and not success:
                return 0
            c.execute(
                "UPDATE host_health SET first_failure_at = NULL, paused_until = NULL"
                + (", last_success_at = ?" if success else "") + " WHERE host = ?",
                (now_s, host) if success else (host,),
            )
            if not rows or rows[0][0] is None or rows[0][0] <= now_s:
                return 0
            return int(c.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE host = ? AND state = 'pending'"
                " AND next_attempt_at > ?", (now_s, host, now_s)).rowcount)

    def pause_host(self, host: str, until: datetime, now: datetime) -> int:
        """Pause `host` until `until`: every pending delivery due before then is moved there,
        in one statement. Returns how many moved."""
        until_s = _ts(until)
        with self._write() as c:
            c.execute(
                "INSERT INTO host_health (host, first_failure_at, last_failure_at, paused_until)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET"
                " paused_until = excluded.paused_until",
                (host, _ts(now), _ts(now), until_s),
            )
            return int(c.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE host = ? AND state = 'pending'"
                " AND next_attempt_at < ?", (until_s, host, until_s)).rowcount)

    def failing_hosts(self) -> list[HostHealth]:
        """Hosts in a run of failures (or paused), longest failing first."""
        return [_health(r) for r in self._all(
            f"SELECT {_COLS} FROM host_health WHERE first_failure_at IS NOT NULL"
            " OR paused_until IS NOT NULL ORDER BY first_failure_at, host")]

    def dead_hosts(self, failing_since: datetime) -> list[tuple[HostHealth, int]]:
        """Hosts failing every delivery since `failing_since` or earlier, with how many
        followers (of any state) are on each."""
        rows = self._all(
            f"SELECT {_COLS}, (SELECT COUNT(*) FROM followers AS f WHERE f.host = h.host)"
            " FROM host_health AS h WHERE first_failure_at IS NOT NULL"
            " AND first_failure_at <= ? ORDER BY first_failure_at, host",
            (_ts(failing_since),),
        )
        return [(_health(r), int(r[5])) for r in rows]

    def prune_dead_hosts(self, failing_since: datetime) -> tuple[int, int, int]:
        """Remove the followers on every host dead since `failing_since` and give up their
        unfinished deliveries (failed, with the reason): (hosts, followers, deliveries)."""
        with self._write() as c:
            hosts = [str(r[0]) for r in c.execute(
                "SELECT host FROM host_health WHERE first_failure_at IS NOT NULL"
                " AND first_failure_at <= ?", (_ts(failing_since),)).fetchall()]
            followers = deliveries = 0
            for host in hosts:
                followers += int(c.execute(
                    "DELETE FROM followers WHERE host = ?", (host,)).rowcount)
                deliveries += int(c.execute(
                    "UPDATE deliveries SET state = 'failed', lease_owner = NULL,"
                    " lease_expires_at = NULL, last_error = 'host failed every delivery since"
                    " its followers were pruned' WHERE host = ? AND state = 'pending'",
                    (host,)).rowcount)
                c.execute("DELETE FROM host_health WHERE host = ?", (host,))
        return len(hosts), followers, deliveries
