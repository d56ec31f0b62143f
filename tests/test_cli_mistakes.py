"""Command-line mistakes end in one `error: ...` line and exit 2, never a traceback, and leave
nothing behind. Each case here once crashed (an adversarial run found them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.scaffold import init_site


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """main(argv): its exit code and stderr (argparse's own refusals exit too: caught here)."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def one_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
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
    root = tmp_path / "b"
    init_site(root)
    monkeypatch.chdir(root)
    for path in sorted((root / "content").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "content").rmdir()
    (root / "content").write_text("x")
    line = one_error(*run_cli(["new", "x"], capsys))
    assert f"{root / 'content'}: is a file, not a folder" in line
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
    monkeypatch.setattr("fedipress.scaffold.front_matter", lambda *a, **k: "\udcff")
    with pytest.raises(UnicodeEncodeError):
        main(["new", "--page", "Hello"])
    assert tree(blog) == before


@pytest.mark.parametrize("where", ["site.yaml/x", "site.yaml/x/y"])
def test_init_under_a_file(blog: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    line = one_error(*run_cli(["init", where], capsys))
    assert line.startswith("error: site.yaml: is a file, not a folder;")


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
    assert line.startswith("error: /proc/h38x: cannot create this folder")


@pytest.mark.parametrize("existing", [False, True])
def test_init_failing_halfway_removes_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    # site.yaml and .gitignore are written before the first post; make that post unwritable.
    monkeypatch.setattr("fedipress.scaffold._HELLO_WORLD", "\udcff{date}")
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
