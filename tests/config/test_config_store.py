"""site.yaml `store:`: a PostgreSQL URL without a password; FEDIPRESS_DATABASE_URL wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedipress.errors import StoreError
from fedipress.store import default_store_path, store_location
from support.config import MINIMAL, load, only_problem


def test_no_store_key_means_sqlite_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDIPRESS_DATABASE_URL", raising=False)
    config = load(tmp_path, MINIMAL)
    assert config.store_url is None
    assert store_location(config.state_dir, config.store_url) == default_store_path(
        config.state_dir)


def test_store_url_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDIPRESS_DATABASE_URL", raising=False)
    config = load(tmp_path, MINIMAL + "store: postgresql://blog@db.example:5433/blog\n")
    assert config.store_url == "postgresql://blog@db.example:5433/blog"
    assert store_location(config.state_dir, config.store_url) == config.store_url


def test_environment_wins_over_site_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(tmp_path, MINIMAL + "store: postgresql://blog@db.example/blog\n")
    monkeypatch.setenv("FEDIPRESS_DATABASE_URL", "postgresql://ops:secret@db2.example/blog")
    assert store_location(config.state_dir, config.store_url) == (
        "postgresql://ops:secret@db2.example/blog")
    monkeypatch.setenv("FEDIPRESS_DATABASE_URL", "sqlite:///tmp/x.db")
    with pytest.raises(StoreError, match="FEDIPRESS_DATABASE_URL: expected a postgresql://"):
        store_location(config.state_dir, config.store_url)


@pytest.mark.parametrize("url", [
    "postgresql://blog:hunter2@db.example/blog",
    "postgresql://db.example/blog?password=hunter2",
])
def test_a_password_in_site_yaml_is_refused(tmp_path: Path, url: str) -> None:
    line, message = only_problem(tmp_path, MINIMAL + f"store: {url}\n")
    assert message.startswith("store: holds a password")
    assert "PGPASSWORD" in message and "hunter2" not in message
    assert line == MINIMAL.count("\n") + 1


def test_store_must_be_a_postgresql_url(tmp_path: Path) -> None:
    _, message = only_problem(tmp_path, MINIMAL + "store: .fedipress/other.db\n")
    assert message.startswith("store: expected a PostgreSQL URL")
