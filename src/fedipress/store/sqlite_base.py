"""The SQLite backend's core: connections, transactions, maintenance and shared helpers.

sqlite.py assembles SQLiteStore from this base and the parts by topic.

Concurrency model (the SQLite row of reliability-anchors §0 and §3):
- every connection sets busy_timeout (30 s) *before* journal_mode=WAL, then synchronous=NORMAL
  and foreign_keys=ON;
- all writes go through one writer connection guarded by a re-entrant lock, each in a
  `BEGIN IMMEDIATE` transaction so two processes never deadlock upgrading a read lock;
- transactions that plan deliveries run with synchronous=FULL: once they commit, a power loss
  cannot roll back a plan whose deliveries may already have been sent;
- reads use one connection per thread (WAL readers never block the writer), except on a thread
  inside a write transaction, which reads through the writer to see its own uncommitted rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Self, cast
from urllib.parse import urlsplit

from ..errors import StoreError
from .migrations import apply_migrations

__all__ = ["BUSY_TIMEOUT_MS", "Row", "SQLiteBase"]

BUSY_TIMEOUT_MS = 30_000
_CHUNK = 500  # rows per executemany / IN (...) list: well under SQLite's variable limit

Row = tuple[Any, ...]


def _ts(moment: datetime) -> str:
    """Aware datetime -> fixed-width UTC text that sorts as it compares."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware datetimes, got naive {moment!r}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _opt_ts(moment: datetime | None) -> str | None:
    return None if moment is None else _ts(moment)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _opt_dt(text: str | None) -> datetime | None:
    return None if text is None else _dt(text)


def _host(url: str) -> str:
    """The URL's host, lower-cased; "" when it has none or cannot be parsed (`http://[::1`)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _chunks(items: Iterable[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
        check_same_thread=False,  # guarded by our lock (writer) or used by one thread (readers)
    )
    try:
        # busy_timeout first: switching to WAL takes a lock and may otherwise fail at once.
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal":
            raise StoreError(
                f"{path}: SQLite refused WAL mode (got {mode!r}); keep the state database "
                "on a local disk, not a network share"
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteBase:
    """Connections, transactions and maintenance shared by the SQLiteStore parts.

    Thread-safe: any thread may call any method. `transaction()` makes the calls made on the
    current thread inside its block one atomic, durable (synchronous=FULL) unit; other threads'
    writes wait for it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0  # nesting of write transactions; only touched while holding _lock
        self._tx_thread: int | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = _connect(path)
        try:
            apply_migrations(self._writer, path)
        except BaseException:
            self._writer.close()
            raise

    # --- connections and transactions --------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                for reader in self._readers:
                    reader.close()
                self._readers.clear()
            self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")

    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One atomic write. Nested calls (same thread) become savepoints of the outer one."""
        with self._lock:
            self._check_open()
            conn = self._writer
            if self._depth:
                savepoint = f"sp{self._depth}"
                conn.execute(f"SAVEPOINT {savepoint}")
                self._depth += 1
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                    raise
                else:
                    conn.execute(f"RELEASE {savepoint}")
                finally:
                    self._depth -= 1
                return
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._depth, self._tx_thread = 1, threading.get_ident()
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                else:
                    conn.execute("COMMIT")
                finally:
                    self._depth, self._tx_thread = 0, None
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group store calls made on this thread into one atomic, durable transaction.

        >>> with store.transaction():
        ...     store.upsert_follower(follower)
        ...     store.plan_deliveries(accept, [follower.inbox], now)
        """
        with self._write(durable=True):
            yield

    def _reader(self) -> sqlite3.Connection:
        self._check_open()
        if self._depth and self._tx_thread == threading.get_ident():
            return self._writer  # see this transaction's own writes
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._reader().execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return cast(Row | None, self._reader().execute(sql, params).fetchone())

    # --- maintenance -------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """ "ok", or SQLite's description of what is broken."""
        rows = self._all("PRAGMA integrity_check")
        return "\n".join(str(r[0]) for r in rows)

    def journal_mode(self) -> str:
        return str(self._all("PRAGMA journal_mode")[0][0])

    def checkpoint(self) -> None:
        """Fold the WAL back into the main file (after a large publish, or before a backup)."""
        with self._lock:
            self._check_open()
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def backup(self, target: Path) -> None:
        """A consistent copy via SQLite's online backup (never copy state.db without -wal)."""
        dest = sqlite3.connect(str(target))
        try:
            with self._lock:
                self._check_open()
                self._writer.backup(dest)
        finally:
            dest.close()
