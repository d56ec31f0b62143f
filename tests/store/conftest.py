"""The store's contract runs on both engines: `store` is a fresh SQLite file or a fresh
PostgreSQL database (the throwaway cluster of tests/support/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedipress.store import SQLiteStore, StoreParts, open_store
from fedipress.store.sqlite import open_store as open_sqlite_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreParts]:
    if request.param == "sqlite":
        s = open_store(tmp_path / "state" / "state.db")
    else:
        s = open_store(request.getfixturevalue("postgres_url"))
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """SQLite only: for what is about the file (pragmas, WAL, backups, STRICT tables)."""
    s = open_sqlite_store(tmp_path / "state" / "state.db")
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store for several processes lives: a SQLite file path or a PostgreSQL URL
    (a string either way, so it crosses a process boundary as is)."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("postgres_url"))
