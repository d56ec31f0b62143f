"""The PostgreSQL engine base: the connection pool, transactions, the SQL dialect and migrations.

postgres.py assembles PostgresStore from this base and the same parts by topic as SQLite
(sqlite.py's StoreParts), so both engines run one body of SQL. The parts write SQLite's
dialect (`?` placeholders); `PgConnection` translates each statement once, through a closed
table of rewrites, and anything the table does not cover fails in the contract tests that run
on both engines.

Concurrency model (the store documentation's PostgreSQL section):
- a psycopg_pool ConnectionPool; connections are in autocommit mode, so a read holds no
  transaction and no snapshot between calls;
- a write is one explicit transaction (READ COMMITTED) on a connection the current thread keeps
  for the length of the block; nested store calls on that thread become savepoints, exactly as
  on SQLite; other threads and processes write at the same time (row locks, not one writer);
- idempotency stays a schema property: concurrent inserts of the same activity id, seen id or
  follower wait on the unique index and then do nothing, so two processes never both win.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

from ..errors import StoreError
from ..wording import docs_url
from .migrations import MIGRATIONS, Migration, check_known

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PgConnection", "PostgresBase", "applied_pg_migrations", "redact_url", "to_postgresql"]

Row = tuple[Any, ...]

# SQLite spellings in the shared parts and what PostgreSQL says for them. Closed on purpose:
# a new SQLite-only construct must be added here (and is caught by the contract tests).
_REWRITES = (
    ("substr(host, -?)", "right(host, ?)"),  # the last n characters
    ("MAX(attempts - 1, 0)", "GREATEST(attempts - 1, 0)"),  # scalar max of two values
)
_PLACEHOLDER = re.compile(r"\?")
_LOCK_MIGRATIONS = 0x66656469  # pg_advisory_xact_lock key: "fedi", serialises migrators


@lru_cache(maxsize=512)
def to_postgresql(sql: str) -> str:
    """A statement of the shared parts in PostgreSQL's dialect and psycopg's placeholders."""
    for sqlite_text, pg_text in _REWRITES:
        sql = sql.replace(sqlite_text, pg_text)
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


def redact_url(url: str) -> str:
    """The database URL without a password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://…"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class PgConnection:
    """A psycopg connection seen through the subset of sqlite3.Connection the parts use:
    `execute` (returning a cursor with rowcount, fetchone, fetchall), `executemany` and
    `total_changes`, with statements translated by `to_postgresql`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        self.total_changes = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cursor = self.raw.execute(to_postgresql(sql), tuple(params))
        if cursor.rowcount > 0 and not sql.lstrip().upper().startswith("SELECT"):
            self.total_changes += cursor.rowcount
        return cursor

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        # psycopg pipelines the rows and reports the sum of their rowcounts (an ON CONFLICT
        # DO NOTHING row counts 0), which is what total_changes needs.
        cursor.executemany(to_postgresql(sql), [tuple(p) for p in seq])
        if cursor.rowcount > 0:
            self.total_changes += cursor.rowcount
        return cursor


def applied_pg_migrations(conn: psycopg.Connection[Any]) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (position BIGINT GENERATED ALWAYS AS IDENTITY,"
        " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    return [str(r[0]) for r in conn.execute("SELECT name FROM migrations ORDER BY position")]


class PostgresBase:
    """The pool, transactions and migration checks shared by the PostgresStore parts."""

    dialect = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        from psycopg_pool import ConnectionPool, PoolTimeout

        self.url = url
        self.where = redact_url(url)
        self.max_connections = max_connections  # callers size their thread pools to it
        self._local = threading.local()
        self._closed = False
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            open=False,
            name="fedipress-store",
        )
        # One plain connection first: a wrong password or database fails at once with libpq's
        # reason, where the pool would retry in the background until its timeout.
        error = _probe_error(url)
        try:
            if error is not None:
                raise PoolTimeout(error)
            self._pool.open(wait=True, timeout=10)
        except PoolTimeout:
            error = error or "the server did not answer in time"
            self._pool.close()
            raise StoreError(
                f"{self.where}: cannot connect to the PostgreSQL store: {error}; check the URL,"
                " that the server runs, and the password (PGPASSWORD or ~/.pgpass)"
            ) from None
        try:
            self._check_schema()
        except BaseException:
            self._pool.close()
            raise

    def _check_schema(self) -> None:
        with self._pool.connection() as conn:
            done = applied_pg_migrations(conn)
        check_known(done, self.where, MIGRATIONS)
        pending = [m.name for m in MIGRATIONS if m.name not in done]
        if pending:
            raise StoreError(
                f"{self.where}: the PostgreSQL store needs migrations ({', '.join(pending)});"
                " run `fedipress store migrate` once, with every fedipress process stopped"
                " or upgraded"
            )

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
        """Apply the migrations not yet recorded; see `migrate_postgresql`."""
        with self._pool.connection() as conn:
            return migrate_postgresql(conn, self.where, migrations)

    # --- connections and transactions --------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")

    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[Any]:
        """One atomic write on this thread's connection; nested calls become savepoints.

        Every commit is durable (synchronous_commit stays on), so `durable` changes nothing."""
        current: PgConnection | None = getattr(self._local, "conn", None)
        if current is not None:
            with current.raw.transaction():
                yield current
            return
        self._check_open()
        with self._pool.connection() as raw:
            conn = PgConnection(raw)
            self._local.conn = conn
            try:
                with raw.transaction():
                    yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group store calls made on this thread into one atomic transaction."""
        with self._write(durable=True):
            yield

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        current: PgConnection | None = getattr(self._local, "conn", None)
        if current is not None:  # see this transaction's own writes
            return list(current.execute(sql, params).fetchall())
        self._check_open()
        with self._pool.connection() as raw:
            return list(raw.execute(to_postgresql(sql), tuple(params)).fetchall())

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    # --- maintenance: SQLite's file tools have PostgreSQL's own tools as counterparts --------

    def integrity_check(self) -> str:
        return "ok"  # PostgreSQL checks its pages itself (data checksums, amcheck)

    def checkpoint(self) -> None:
        """Nothing to fold back: PostgreSQL checkpoints on its own."""

    def backup(self, target: object) -> None:
        raise StoreError(
            f"{self.where}: back up a PostgreSQL store with pg_dump (see"
            f" {docs_url('scaling', 'backups')})"
        )


def migrate_postgresql(
    conn: psycopg.Connection[Any], where: str, migrations: Sequence[Migration] = MIGRATIONS
) -> list[str]:
    """Apply every migration not yet recorded, each in one transaction with its record.

    A transaction-level advisory lock serialises migrators, so two processes running
    `fedipress store migrate` at once apply each migration once. A database recording a
    migration this version does not know is refused before anything runs.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATIONS,))
        done = applied_pg_migrations(conn)
    check_known(done, where, migrations)
    applied: list[str] = []
    for migration in migrations:
        if migration.name in done:
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATIONS,))
            row = conn.execute(
                "SELECT 1 FROM migrations WHERE name = %s", (migration.name,)
            ).fetchone()
            if row is None:
                for statement in migration.for_dialect("postgresql"):
                    conn.execute(statement.replace("%", "%%"), ())
                conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (%s,"
                    " to_char(clock_timestamp() AT TIME ZONE 'UTC',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))",
                    (migration.name,),
                )
                applied.append(migration.name)
    return applied


def _probe_error(url: str) -> str | None:
    """Why a connection fails, in libpq's words; None when it works."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()
        return text[-1] if text else type(exc).__name__
    return None
