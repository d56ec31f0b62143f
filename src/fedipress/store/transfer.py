"""Store administration: `fedipress store migrate` and `fedipress store copy`.

`migrate_store(location)` applies the named migrations to a SQLite file or a PostgreSQL
database. `copy_to_postgresql(source, url)` moves a SQLite store to PostgreSQL: every table the
schema has (followers, ledger, activities, the delivery queue, seen ids, the inbox log,
interactions, keys, blocks, the caches, quote authorizations, announced counts), row ids
included, in ONE target transaction that commits only when every table's count on the target
equals the source's.
`copy_to_sqlite(url, path)` is the way back, into a new file: `publish --dry-run` plans against
such a copy, so nothing it does reaches the real store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .migrations import MIGRATIONS, apply_migrations

__all__ = ["CopyReport", "MigrateReport", "copy_to_postgresql", "copy_to_sqlite",
           "migrate_store"]

# Copied first so the deliveries' foreign key finds its activities; the rest in name order.
_FIRST = ("activities",)
# Tables with an identity row id: the sequence continues after the highest copied id.
_IDENTITY = {"deliveries": "id", "inbox_log": "id"}


@dataclass(frozen=True)
class MigrateReport:
    where: str
    applied: tuple[str, ...]  # now
    current: str  # the newest migration the store has

    def lines(self) -> list[str]:
        if not self.applied:
            return [f"{self.where}: up to date ({self.current})"]
        return [f"{self.where}: applied {name}" for name in self.applied] + [
            f"{self.where}: now at {self.current}"]


@dataclass(frozen=True)
class CopyReport:
    source: str
    target: str
    counts: tuple[tuple[str, int], ...]  # (table, rows), verified equal on both sides
    replaced: bool

    def lines(self) -> list[str]:
        total = sum(n for _, n in self.counts)
        out = [f"  {table}: {n}" for table, n in self.counts]
        verb = "replaced what it held with" if self.replaced else "copied"
        out.append(f"{self.target}: {verb} {total} rows from {self.source}; every table's count"
                   " checked on both sides")
        return out


def migrate_store(location: Path | str) -> MigrateReport:
    """Apply the pending migrations to the store at `location` (file path or postgresql URL)."""
    newest = MIGRATIONS[-1].name
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from .postgres import migrate_postgres_store
        from .postgres_base import redact_url

        applied = migrate_postgres_store(location)
        return MigrateReport(redact_url(location), tuple(applied), newest)
    path = Path(location)
    if not path.is_file():
        raise StoreError(f"{path}: no state database here yet; fedipress creates it (at the"
                         " newest version) the first time a command needs it")
    from .sqlite_base import _connect

    try:
        conn = _connect(path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot use the state database: {exc}") from exc
    try:
        applied = apply_migrations(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot use the state database: {exc}") from exc
    finally:
        conn.close()
    return MigrateReport(str(path), tuple(applied), newest)


def _tables(conn: sqlite3.Connection) -> list[str]:
    names = [str(r[0]) for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name != 'migrations' ORDER BY name")]
    return [t for t in _FIRST if t in names] + [t for t in names if t not in _FIRST]


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def copy_to_postgresql(
    source: Path,
    url: str,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _line: None,
) -> CopyReport:
    """Copy the SQLite store at `source` into the PostgreSQL database at `url`.

    The target is migrated first (as `store migrate` would) and must then hold exactly the
    migrations the source has. A target that already holds rows is refused unless `force`,
    which empties it first (inside the same transaction). The source is read in one read
    transaction, so a service still writing to it cannot make the counts disagree; stop it
    anyway, or what it records after the copy stays behind in the file.
    """
    import psycopg

    from .postgres import migrate_postgres_store
    from .postgres_base import applied_pg_migrations, redact_url

    where = redact_url(url)
    if not source.is_file():
        raise StoreError(f"{source}: no state database to copy")
    from .sqlite import open_store as open_sqlite_store

    open_sqlite_store(source).close()  # brings the file to this version (SQLite migrates)
    migrate_postgres_store(url)
    src = sqlite3.connect(f"file:{source.resolve()}?mode=ro", uri=True, isolation_level=None)
    try:
        src.execute("BEGIN")  # one snapshot of the source for the rows and the counts
        source_migrations = [str(r[0]) for r in src.execute(
            "SELECT name FROM migrations ORDER BY rowid")]
        tables = _tables(src)
        counts = {t: int(src.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}
        try:
            target = psycopg.connect(url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreError(f"{where}: cannot connect to the PostgreSQL store: "
                             f"{_last_line(exc)}") from None
        with target:
            target_migrations = applied_pg_migrations(target)
            if sorted(target_migrations) != sorted(source_migrations):
                raise StoreError(
                    f"{where}: its migrations ({', '.join(target_migrations)}) differ from"
                    f" {source}'s ({', '.join(source_migrations)}); run the same fedipress"
                    " version on both")
            held = [t for t in tables if target.execute(
                f'SELECT EXISTS (SELECT 1 FROM "{t}")').fetchone() == (True,)]
            if held and not force:
                raise StoreError(
                    f"{where}: already holds rows ({', '.join(held)}); copy into an empty"
                    " database, or add --force to replace what it holds")
            if held:
                target.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
            for table in tables:
                _copy_table(src, target, table, progress)
            for table, column in _IDENTITY.items():
                if table in counts:
                    target.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                        f" COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)")
            copied = {t: int(_first(target.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()))
                      for t in tables}
            wrong = [f"{t} {counts[t]} -> {copied[t]}" for t in tables if copied[t] != counts[t]]
            if wrong:
                target.rollback()
                raise StoreError(f"{where}: counts differ after the copy ({'; '.join(wrong)});"
                                 " nothing was kept")
        src.execute("COMMIT")
    finally:
        src.close()
    return CopyReport(str(source), where, tuple(counts.items()), replaced=bool(held))


def _copy_table(src: sqlite3.Connection, target: Any, table: str,
                progress: Callable[[str], None]) -> None:
    columns = _columns(src, table)
    names = ", ".join(f'"{c}"' for c in columns)
    rows = src.execute(f'SELECT {names} FROM "{table}"')
    with target.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        n = 0
        for row in rows:
            copy.write_row(row)
            n += 1
            if n % 50_000 == 0:
                progress(f"{table}: {n} rows")


def _first(row: Any) -> Any:
    return row[0] if row else 0


def _last_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def copy_to_sqlite(url: str, target: Path) -> None:
    """Copy the PostgreSQL store at `url` into a NEW SQLite file `target`, in one read-only
    snapshot of the source (REPEATABLE READ). Both must be at this version's schema."""
    import psycopg

    from .postgres_base import redact_url
    from .sqlite import open_store as open_sqlite_store

    if target.exists():
        raise StoreError(f"{target}: already exists; copy_to_sqlite writes a new file only")
    open_sqlite_store(target).close()  # the schema, at this version
    dest = sqlite3.connect(target, isolation_level=None)
    try:
        with psycopg.connect(url, connect_timeout=10) as source:
            source.read_only = True
            source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            dest.execute("BEGIN IMMEDIATE")
            for table in _tables(dest):
                columns = _columns(dest, table)
                names = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join("?" * len(columns))
                with source.cursor(name=f"copy_{table}") as rows:
                    rows.itersize = 2000
                    rows.execute(f'SELECT {names} FROM "{table}"')
                    dest.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
            dest.execute("COMMIT")
    except psycopg.Error as exc:
        raise StoreError(f"{redact_url(url)}: cannot read the PostgreSQL store:"
                         f" {_last_line(exc)}") from None
    finally:
        dest.close()
