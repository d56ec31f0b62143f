"""Where a build's conversation comes from: the local store (read-only: never created, never
changed), the service's owner API export for a CI build in a fresh clone (a real `fedipress
inbox` on loopback), or nowhere. The same conversation gives the same bytes either way; a
service that cannot be asked stops a CI build with one line and lets a local build go on."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fedipress.config import load_config
from fedipress.errors import FedipressError
from fedipress.generator.build import BuildOptions, run_build
from support.conversation import add_like, seed_store
from support.service import (
    KEYS,
    REPO,
    TOKEN,
    clean_env,
    make_clone,
    site_yaml,
    start_service,
    write_post,
)

SECRETS = ("SECRET-FOLLOWERS", "SECRET-DIRECT", "SECRET-HELD")


def _blog(root: Path, base: str = "https://blog.example/") -> Path:
    root.mkdir(parents=True)
    (root / "site.yaml").write_text(site_yaml(base))
    shutil.copy(KEYS / "blog-public.pem", root / "fedipress-public-key.pem")
    write_post(root, "first")
    return root


def _build(root: Path, environ: dict[str, str] | None = None, *, ci: bool = False,
           lines: list[str] | None = None) -> None:
    said = lines if lines is not None else []
    run_build(load_config(root / "site.yaml"), BuildOptions(ci=ci), log=said.append,
              warn=said.append, environ=environ or {})


def _page(root: Path) -> bytes:
    pages = sorted((root / "public" / "posts").glob("*/index.html"))
    assert len(pages) == 1, pages
    return pages[0].read_bytes()


def _object_id(root: Path) -> str:
    found = sorted((root / "public").glob("posts/*/object.json"))
    assert len(found) == 1
    base = load_config(root / "site.yaml").base_url
    return base + found[0].relative_to(root / "public").as_posix()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli_build(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "build", "--config", str(root / "site.yaml")],
        capture_output=True, text=True, env=clean_env(**env), cwd=REPO, timeout=120)


def test_the_store_is_read_and_never_created_or_changed(tmp_path: Path) -> None:
    root = _blog(tmp_path / "blog")
    db = root / ".fedipress" / "state.db"
    _build(root)
    assert not db.exists()  # no store: none made
    assert b'class="conversation"' not in _page(root)
    oid = _object_id(root)
    seed_store(db, oid)
    files = sorted(p.name for p in db.parent.iterdir())
    before = _sha(db)
    _build(root)
    assert _sha(db) == before
    # Reading a WAL database read-only may leave SQLite's shared-memory index beside it
    # (as the running inbox does); nothing else appears.
    after = {p.name for p in db.parent.iterdir()}
    assert after - set(files) <= {"state.db-wal", "state.db-shm"}
    page = _page(root).decode()
    assert "First reply" in page and "Answer to the first" in page
    assert "2 replies · 1 like · 1 boost · 1 quote" in page
    assert not any(secret in page for secret in SECRETS)
    # A new like re-renders the page at the next build (its fingerprint follows it).
    add_like(db, oid, 40)
    _build(root)
    assert "2 replies · 2 likes · 1 boost · 1 quote" in _page(root).decode()


def test_the_conversation_is_read_from_a_postgresql_store(
    tmp_path: Path, postgres_url: str
) -> None:
    """site.yaml `store:` names a PostgreSQL database: the build reads the same public
    conversation from it (and creates no state.db), held and private replies left out."""
    root = _blog(tmp_path / "blog")
    with (root / "site.yaml").open("a") as f:
        f.write(f"store: {postgres_url}\n")
    _build(root)
    oid = _object_id(root)
    seed_store(postgres_url, oid)
    _build(root)
    page = _page(root).decode()
    assert "First reply" in page and "Answer to the first" in page
    assert "2 replies · 1 like · 1 boost · 1 quote" in page
    assert not any(secret in page for secret in SECRETS)
    assert not (root / ".fedipress" / "state.db").exists()


def test_same_conversation_same_bytes(tmp_path: Path) -> None:
    root = _blog(tmp_path / "blog")
    _build(root)
    seed_store(root / ".fedipress" / "state.db", _object_id(root))
    _build(root)
    first = _page(root)
    shutil.rmtree(root / "public")
    shutil.rmtree(root / ".fedipress" / "cache")
    _build(root)
    assert _page(root) == first


def test_a_service_url_without_token_is_refused(tmp_path: Path) -> None:
    root = _blog(tmp_path / "blog")
    with pytest.raises(FedipressError, match="needs the owner token in FEDIPRESS_SERVICE_TOKEN"):
        _build(root, {"FEDIPRESS_SERVICE_URL": "https://blog.example/"})
    with pytest.raises(FedipressError, match="expected the service's address"):
        _build(root, {"FEDIPRESS_SERVICE_URL": "blog.example", "FEDIPRESS_SERVICE_TOKEN": "t"})


def test_a_ci_build_reads_the_services_conversation(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home")
    try:
        home = service.root
        oid = _object_id(home)
        seed_store(home / ".fedipress" / "state.db", oid)
        local = _cli_build(home)
        assert local.returncode == 0, local.stderr
        expected = _page(home)
        assert b"First reply" in expected
        env = {"CI": "true", "FEDIPRESS_SERVICE_URL": service.base,
               "FEDIPRESS_SERVICE_TOKEN": TOKEN, "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES": "1"}
        clone = make_clone(service, tmp_path / "ci")
        run = _cli_build(clone, **env)
        assert run.returncode == 0, run.stderr
        assert "conversation: 2 replies and 3 reactions on 1 post from the service" in run.stderr
        assert _page(clone) == expected  # store build and service build: the same bytes
        # ... and the same post object: its collections count the service's conversation.
        [local_object, ci_object] = [
            (root / "public" / oid.removeprefix(service.base)).read_bytes()
            for root in (home, clone)]
        assert json.loads(ci_object)["replies"]["totalItems"] == 2
        assert ci_object == local_object
        assert not (clone / ".fedipress" / "state.db").exists()
        assert not any(s.encode() in _page(clone) for s in SECRETS)
        again = make_clone(service, tmp_path / "ci2")
        assert _cli_build(again, **env).returncode == 0
        assert _page(again) == expected

        refused = _cli_build(make_clone(service, tmp_path / "ci3"),
                             **(env | {"FEDIPRESS_SERVICE_TOKEN": "wrong-" + TOKEN}))
        assert refused.returncode == 2
        assert "refused the owner token" in refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.splitlines()) == 1

        other = make_clone(service, tmp_path / "other")
        (other / "site.yaml").write_text(site_yaml("https://other.example/"))
        wrong_blog = _cli_build(other, **env)
        assert wrong_blog.returncode == 2
        assert "the service speaks for" in wrong_blog.stderr and "Traceback" not in \
            wrong_blog.stderr
    finally:
        service.stop()
    # The service is gone: CI stops, a local build goes on without it, and says so.
    down = _cli_build(make_clone(service, tmp_path / "ci4"), **env)
    assert down.returncode == 2
    assert "cannot be reached" in down.stderr and "Traceback" not in down.stderr
    offline = make_clone(service, tmp_path / "laptop")
    run = _cli_build(offline, **(env | {"CI": ""}))
    assert run.returncode == 0, run.stderr
    assert "warning:" in run.stderr and "in CI this stops the build" in run.stderr
    assert b'class="conversation"' not in _page(offline)


def test_the_render_pack_never_gives_back_a_page_with_an_old_conversation(
    tmp_path: Path,
) -> None:
    root = _blog(tmp_path / "blog")
    _build(root, ci=True)
    db = root / ".fedipress" / "state.db"
    oid = _object_id(root)
    seed_store(db, oid)
    _build(root, ci=True)  # writes the render pack, as a CI build does
    shutil.rmtree(root / "public")  # a fresh clone: only .fedipress/cache/ restored
    add_like(db, oid, 41)
    _build(root, ci=True)
    assert "2 replies · 2 likes · 1 boost · 1 quote" in _page(root).decode()
