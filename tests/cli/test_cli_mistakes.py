"""Command-line mistakes end in one `fedipress: error: ...` line and exit 2, never a traceback,
and leave nothing behind. Each case here once crashed (an adversarial run found them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.generator.scaffold import init_site


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """main(argv): its exit code and stderr. argparse's refusals are returned too, not raised."""
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def one_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fedipress: error: "), err
    return lines[0]


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "b"
    init_site(root)
    monkeypatch.chdir(root)
    return root


# --- fedipress new / init ---------------------------------------------------------------------


def test_new_non_utf8_title_leaves_nothing(blog: Path) -> None:
    # A non-UTF-8 argument reaches Python as a lone surrogate; run the real console script.
    before = tree(blog)
    done = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "new", os.fsdecode(b"\xff")],
        cwd=blog, capture_output=True, text=True, errors="replace", timeout=60, check=False,
    )
    line = one_error(done.returncode, done.stderr)
    assert "not UTF-8" in line
    assert tree(blog) == before


def test_new_into_posts_that_is_a_file(blog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    posts = blog / "content/posts"
    for child in posts.iterdir():
        child.unlink()
    posts.rmdir()
    posts.write_text("x")
    line = one_error(*run_cli(["new", "x"], capsys))
    assert f"{posts}: is a file, not a folder" in line
    assert posts.read_text() == "x"


def test_new_into_content_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from fedipress.config import load_config
    from fedipress.errors import FedipressError
    from fedipress.generator.scaffold import new_post

    root = tmp_path / "b"
    init_site(root)
    monkeypatch.chdir(root)
    config = load_config(root / "site.yaml")  # loaded while content/ was still a folder
    for path in sorted((root / "content").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "content").rmdir()
    (root / "content").write_text("x")
    with pytest.raises(FedipressError, match=f"^{root / 'content'}: is a file, not a folder"):
        new_post(config, "x")
    # From the command line, site.yaml's check may name the problem first; either way it is
    # one line, exit 2, and nothing is written.
    code, err = run_cli(["new", "x"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "content" in err
    assert tree(root) == [".gitignore", "content", "site.yaml"]


def test_new_failing_write_removes_the_folders_it_made(
    blog: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # content/pages is absent, so `new --page` makes it; a text that cannot be written (here a
    # front matter with a lone surrogate) must take that folder away again.
    pages = blog / "content/pages"
    (pages / "about.md").unlink()
    pages.rmdir()
    before = tree(blog)
    monkeypatch.setattr("fedipress.generator.scaffold.front_matter", lambda *a, **k: "\udcff")
    with pytest.raises(UnicodeEncodeError):
        main(["new", "--page", "Hello"])
    assert tree(blog) == before


@pytest.mark.parametrize("where", ["site.yaml/x", "site.yaml/x/y"])
def test_init_under_a_file(blog: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    line = one_error(*run_cli(["init", where], capsys))
    assert line.startswith("fedipress: error: site.yaml: is a file, not a folder;")


def test_init_dangling_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dang").symlink_to("nowhere")
    line = one_error(*run_cli(["init", "dang"], capsys))
    assert "dang: is a symbolic link to nowhere, which does not exist" in line
    assert tree(tmp_path) == ["dang"]


def test_init_where_folders_cannot_be_made(capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc")
    line = one_error(*run_cli(["init", "/proc/h38x"], capsys))
    assert line.startswith("fedipress: error: /proc/h38x: cannot create this folder")


@pytest.mark.parametrize("existing", [False, True])
def test_init_failing_halfway_removes_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    # site.yaml and .gitignore are written before the first post; make that post unwritable.
    monkeypatch.setattr("fedipress.generator.scaffold._HELLO_WORLD", "\udcff{date}")
    target = tmp_path / "new"
    if existing:
        target.mkdir()  # the user's empty folder stays, empty
    with pytest.raises(UnicodeEncodeError):
        init_site(target)
    assert tree(tmp_path) == (["new"] if existing else [])


def test_init_non_utf8_folder_name(tmp_path: Path) -> None:
    name = os.fsdecode(b"blog-\xff")
    done = subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "init", name],
        cwd=tmp_path, capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b'title: "My Blog"' in (tmp_path / name / "site.yaml").read_bytes()


# --- the key pair and .fedipress ----------------------------------------------------------------


@pytest.mark.parametrize("command", [["build", "-q"], ["keys", "show"], ["publish", "--dry-run"],
                                     ["followers"], ["interactions"]])
def test_state_folder_that_is_a_file(blog: Path, capsys: pytest.CaptureFixture[str],
                                     command: list[str]) -> None:
    (blog / ".fedipress").write_text("x")
    line = one_error(*run_cli(command, capsys))
    assert f"{blog / '.fedipress'}: is a file, not a folder" in line
    assert (blog / ".fedipress").read_text() == "x"


def test_generate_keypair_with_state_folder_a_file(tmp_path: Path) -> None:
    from fedipress.config import load_config
    from fedipress.errors import KeyPairError
    from fedipress.federation.keys import generate_keypair

    init_site(tmp_path / "b")
    (tmp_path / "b/.fedipress").write_text("x")
    config = load_config(tmp_path / "b/site.yaml")
    with pytest.raises(KeyPairError, match=r"^\.fedipress: is a file, not a folder"):
        generate_keypair(config)
    assert not (tmp_path / "b/fedipress-public-key.pem").exists()


def test_private_key_that_is_a_folder(blog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["keys", "generate"], capsys)[0] == 0
    capsys.readouterr()
    key = blog / ".fedipress/private-key.pem"
    key.unlink()
    key.mkdir()
    line = one_error(*run_cli(["keys", "show"], capsys))
    assert "private-key.pem: is a folder, not the private key file" in line
    assert "readable by other users" not in line and "chmod" not in line
    line = one_error(*run_cli(["keys", "generate", "--force"], capsys))
    assert "private-key.pem: is a folder, not a key file" in line
    assert key.is_dir() and not any(key.iterdir())


def test_public_key_file_outside_the_site_is_never_to_be_deleted(
    blog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "someone-elses.txt"
    outside.write_text("not a key\n")
    site = blog / "site.yaml"
    site.write_text(site.read_text().replace(
        "  post_type: note", f"  public_key_file: {outside}\n  post_type: note"))
    line = one_error(*run_cli(["build", "-q"], capsys))
    assert f"{outside}: is not a PEM public key" in line
    assert "delete" not in line and "move it aside" not in line
    assert "fediverse.public_key_file" in line
    # One inside the site is the blog's own: moving it aside is fair advice, deleting is not.
    (blog / "k.pem").write_text("not a key\n")
    site.write_text(site.read_text().replace(str(outside), "k.pem"))
    line = one_error(*run_cli(["build", "-q"], capsys))
    assert "k.pem: is not a PEM public key" in line and "move it aside" in line
    assert "delete" not in line


def test_public_key_file_that_is_a_folder(blog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = blog / "site.yaml"
    site.write_text(site.read_text().replace(
        "  post_type: note", "  public_key_file: keys\n  post_type: note"))
    (blog / "keys").mkdir()
    line = one_error(*run_cli(["build", "-q"], capsys))
    assert "keys: is a folder, not a key file" in line


# --- text arguments and block targets --------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["block", "\udcff"],
    ["block", "https://\udcff.example/users/bob"],
    ["followers", "add", "\udcff"],
    ["followers", "remove", "https://a.example/\udcff"],
    ["doctor", "\udcff"],
    ["build", "--base-url", "http://\udcff/"],
])
def test_non_utf8_text_arguments(blog: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str]) -> None:
    before = tree(blog)
    line = one_error(*run_cli(argv, capsys))
    assert "is not UTF-8 text" in line
    assert tree(blog) == before


def test_non_utf8_config_path_is_a_path_not_text(blog: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    line = one_error(*run_cli(["build", "--config", "\udcff"], capsys))
    assert "not found" in line


@pytest.mark.parametrize("target", ["http://[::1", "https://", "http://[zz]/users/x"])
def test_block_unparsable_url(blog: Path, capsys: pytest.CaptureFixture[str],
                              target: str) -> None:
    line = one_error(*run_cli(["block", target], capsys))
    assert line.startswith(
        f"fedipress: error: cannot block {target!r}: not an actor URL; give a domain"
    )


def test_store_refuses_non_utf8_block_and_tolerates_bad_urls(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from fedipress.errors import StoreError
    from fedipress.store import open_store

    store = open_store(tmp_path / "state.sqlite3")
    try:
        with pytest.raises(StoreError, match="not UTF-8 text"):
            store.add_block("spam\udcff.example", datetime.now(UTC))
        assert store.is_blocked("http://[::1") is False
        assert store.list_blocks() == []
    finally:
        store.close()


# --- numbers checked by the parser -------------------------------------------------------------


@pytest.mark.parametrize(("argv", "option"), [
    (["serve", "--port", "99999"], "--port"),
    (["serve", "--port", "-1"], "--port"),
    (["serve", "--port", "http"], "--port"),
    (["inbox", "--port", "65536"], "--port"),
    (["interactions", "--limit", "99999999999999999999999"], "--limit"),
    (["interactions", "--limit", "0"], "--limit"),
    (["interactions", "--limit", "-5"], "--limit"),
    (["publish", "--wait", "nan"], "--wait"),
    (["publish", "--wait", "inf"], "--wait"),
    (["publish", "--wait=-inf"], "--wait"),
    (["publish", "--wait", "-1"], "--wait"),
    (["publish", "--wait", "1e400"], "--wait"),
    (["publish", "--wait", "soon"], "--wait"),
    (["publish", "--backfill", "-3"], "--backfill"),
    (["publish", "--backfill", "99999999999999999999999"], "--backfill"),
])
def test_parser_refuses_numbers_out_of_range(blog: Path, capsys: pytest.CaptureFixture[str],
                                             argv: list[str], option: str) -> None:
    before = tree(blog)
    code, err = run_cli(argv, capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"fedipress: error: argument {option}: "), err
    assert last.endswith(f"(see `fedipress {argv[0]} --help`)"), err
    assert "give a" in last  # says what to type instead
    assert tree(blog) == before


@pytest.mark.parametrize(("argv", "name", "value"), [
    (["serve", "--port", "0"], "port", 0),
    (["serve", "--port", "65535"], "port", 65535),
    (["inbox", "--port", "1"], "port", 1),
    (["interactions", "--limit", "1"], "limit", 1),
    (["interactions", "--limit", "100000"], "limit", 100000),
    (["publish", "--wait", "0"], "wait", 0.0),
    (["publish", "--wait", "2.5"], "wait", 2.5),
    (["publish", "--backfill", "0"], "backfill", 0),
])
def test_parser_accepts_numbers_in_range(argv: list[str], name: str, value: object) -> None:
    from fedipress.cli import build_parser

    assert getattr(build_parser().parse_args(argv), name) == value


def test_main_returns_the_code_of_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["serve", "--help"]) == 0
    assert main(["no-such-command"]) == 2
    capsys.readouterr()


def test_interactions_with_the_largest_limit_runs(blog: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(["interactions", "--limit", "100000", "--json"], capsys)
    assert code == 0


# --- fedipress doctor ----------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "expected"), [
    (["http://[::1"], "fedipress: error: http://[::1: not a valid URL"),
    (["https://blog.example:-1/"],
     "fedipress: error: https://blog.example:-1/: -1 is not a port number"),
    (["--allow-private-addresses", "http://127.0.0.1:99999/"],
     "fedipress: error: http://127.0.0.1:99999/: 99999 is not a port number"),
    (["alice@[::1"], "fedipress: error: alice@[::1: [::1 is not a valid domain"),
    (["https://"], "fedipress: error: https://: URL has no host"),
])
def test_doctor_mistyped_target(capsys: pytest.CaptureFixture[str], argv: list[str],
                                expected: str) -> None:
    line = one_error(*run_cli(["doctor", *argv], capsys))
    assert line.startswith(expected)
    assert line.endswith("give the blog's address (https://alice.example/) or its handle"
                         " (alice@alice.example)")
    assert "--allow-private-addresses" not in line  # a typo, not a policy refusal


def test_doctor_private_refusal_names_the_opt_in_only_when_it_is_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDIPRESS_ALLOW_PRIVATE_ADDRESSES", raising=False)
    line = one_error(*run_cli(["doctor", "https://127.0.0.1/"], capsys))
    assert "not a public address" in line and "add --allow-private-addresses" in line
