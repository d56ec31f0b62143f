"""The build: incremental sync of outputs into a real temp folder, safety, and whole sites."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedipress.build import BuildResult, sync_outputs
from fedipress.model import Output
from fedipress.output import OutputDirError, check_output_dir, target_path, write_atomic

# --- sync_outputs with hand-made outputs (no content or theme needed) ---------------------------


class Plan:
    """Outputs whose render() calls are counted, to prove what a rebuild skipped."""

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def output(self, path: str, body: str, fingerprint: str | None = None) -> Output:
        def render() -> bytes:
            self.rendered.append(path)
            return body.encode()

        return Output(path=path, fingerprint=fingerprint or f"fp:{body}", render=render)


def sync(outputs: list[Output], tmp: Path, **kw: object) -> object:
    return sync_outputs(outputs, tmp / "public", tmp / "state" / "m.json",
                        log=lambda _line: None, **kw)  # type: ignore[arg-type]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_first_sync_writes_everything(tmp_path: Path) -> None:
    plan = Plan()
    result = sync([plan.output("index.html", "home"), plan.output("posts/a/index.html", "a")],
                  tmp_path)
    assert tree(tmp_path / "public") == {"index.html": b"home", "posts/a/index.html": b"a"}
    assert (result.written, result.unchanged, result.removed) == (2, 0, 0)  # type: ignore[attr-defined]
    assert (tmp_path / "public" / "index.html").stat().st_mode & 0o777 == 0o644


def test_resync_skips_renders_and_writes(tmp_path: Path) -> None:
    plan = Plan()
    outs = [plan.output("index.html", "home"), plan.output("posts/a/index.html", "a")]
    sync(outs, tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "public").rglob("*") if p.is_file()}
    plan.rendered.clear()
    result = sync(outs, tmp_path)
    assert plan.rendered == []
    assert result.written == 0 and result.skipped_render == 2  # type: ignore[attr-defined]
    assert mtimes == {p: p.stat().st_mtime_ns
                      for p in (tmp_path / "public").rglob("*") if p.is_file()}


def test_changed_fingerprint_same_bytes_is_not_written(tmp_path: Path) -> None:
    plan = Plan()
    sync([plan.output("a.txt", "same", "fp1")], tmp_path)
    before = (tmp_path / "public" / "a.txt").stat().st_mtime_ns
    result = sync([plan.output("a.txt", "same", "fp2")], tmp_path)
    assert plan.rendered == ["a.txt", "a.txt"]
    assert (result.written, result.unchanged, result.skipped_render) == (0, 1, 0)  # type: ignore[attr-defined]
    assert (tmp_path / "public" / "a.txt").stat().st_mtime_ns == before


def test_only_changed_outputs_are_rewritten(tmp_path: Path) -> None:
    plan = Plan()
    sync([plan.output("a.txt", "a"), plan.output("b.txt", "b")], tmp_path)
    plan.rendered.clear()
    result = sync([plan.output("a.txt", "a2"), plan.output("b.txt", "b")], tmp_path)
    assert plan.rendered == ["a.txt"]
    assert result.written == 1 and result.skipped_render == 1  # type: ignore[attr-defined]
    assert (tmp_path / "public" / "a.txt").read_bytes() == b"a2"


def test_deleted_or_edited_output_file_is_restored(tmp_path: Path) -> None:
    plan = Plan()
    outs = [plan.output("a.txt", "a"), plan.output("b.txt", "b")]
    sync(outs, tmp_path)
    (tmp_path / "public" / "a.txt").unlink()
    (tmp_path / "public" / "b.txt").write_bytes(b"hand-edited!")
    result = sync(outs, tmp_path)
    assert tree(tmp_path / "public") == {"a.txt": b"a", "b.txt": b"b"}
    assert result.written == 2  # type: ignore[attr-defined]


def test_removed_outputs_and_strays_are_deleted(tmp_path: Path) -> None:
    plan = Plan()
    sync([plan.output("a.txt", "a"), plan.output("old/deep/x.html", "x")], tmp_path)
    public = tmp_path / "public"
    (public / "stray.txt").write_text("?")
    (public / "dir").mkdir()
    (public / "dir" / ".tmpfile.tmp").write_text("left by a killed build")
    (public / ".git").mkdir()
    (public / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    result = sync([plan.output("a.txt", "a")], tmp_path)
    assert result.removed == 3  # type: ignore[attr-defined]
    assert tree(public) == {"a.txt": b"a", ".git/HEAD": b"ref: refs/heads/gh-pages\n"}
    assert not (public / "old").exists() and not (public / "dir").exists()


def test_first_build_into_a_full_folder_keeps_foreign_files(tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    (public / "precious.txt").write_text("mine")
    notes: list[str] = []
    sync_outputs([Plan().output("a.txt", "a")], public, tmp_path / "m.json", log=notes.append)
    assert (public / "precious.txt").read_text() == "mine"
    assert any("precious" in n or "1 file" in n for n in notes)
    # --clean means: make the folder exactly the build.
    result = sync_outputs([Plan().output("a.txt", "a")], public, tmp_path / "m.json",
                          clean=True, log=notes.append)
    assert tree(public) == {"a.txt": b"a"} and result.removed == 1


def test_symlink_in_output_never_leads_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    public = tmp_path / "public"
    public.mkdir()
    (public / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutputDirError, match="outside"):
        sync_outputs([Plan().output("link/keep.txt", "overwritten")], public.resolve(),
                     tmp_path / "m.json", log=lambda _l: None)
    assert (outside / "keep.txt").read_text() == "keep"
    # As a stray, the link itself is removed, never what it points to.
    sync_outputs([Plan().output("a.txt", "a")], public.resolve(), tmp_path / "m.json",
                 clean=True, log=lambda _l: None)
    assert not (public / "link").exists() and (outside / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a/../../x", "", "a//b", "a\\b"])
def test_target_path_refuses_escapes(tmp_path: Path, rel: str) -> None:
    with pytest.raises(OutputDirError):
        target_path(tmp_path.resolve(), rel)


def test_damaged_manifest_means_full_rebuild(tmp_path: Path) -> None:
    plan = Plan()
    outs = [plan.output("a.txt", "a")]
    sync(outs, tmp_path)
    (tmp_path / "state" / "m.json").write_text("{not json")
    plan.rendered.clear()
    result = sync(outs, tmp_path)
    assert plan.rendered == ["a.txt"] and result.unchanged == 0  # type: ignore[attr-defined]


def test_write_atomic_leaves_no_temp_file_on_failure(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.txt"
    write_atomic(target, b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_parallel_render_matches_serial(tmp_path: Path) -> None:
    outs = [Plan().output(f"p/{i}/index.html", f"page {i}") for i in range(450)]
    parallel = sync_outputs(outs, tmp_path / "a", tmp_path / "a.json", workers=2,
                            log=lambda _l: None)
    serial = sync_outputs(outs, tmp_path / "b", tmp_path / "b.json", workers=1,
                          log=lambda _l: None)
    assert parallel.written == serial.written == 450
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


# --- dangerous output folders -------------------------------------------------------------------


def _check(out: Path, site: Path) -> Path:
    return check_output_dir(out, site_root=site, content_dir=site / "content",
                            state_dir=site / ".fedipress", config_file=site / "site.yaml")


@pytest.mark.parametrize("where", ["site", "content", "parent", "state", "content-sub", "root",
                                   "home"])
def test_refuses_dangerous_output_dir(tmp_path: Path, where: str) -> None:
    site = tmp_path / "blog"
    (site / "content").mkdir(parents=True)
    out = {
        "site": site, "content": site / "content", "parent": tmp_path, "root": Path("/"),
        "state": site / ".fedipress", "content-sub": site / "content" / "public",
        "home": Path.home(),
    }[where]
    with pytest.raises(OutputDirError, match="output_dir"):
        _check(out, site)


def test_accepts_normal_output_dirs(tmp_path: Path) -> None:
    site = tmp_path / "blog"
    site.mkdir()
    assert _check(site / "public", site) == (site / "public").resolve()
    assert _check(tmp_path / "elsewhere", site) == (tmp_path / "elsewhere").resolve()


def test_summary_line() -> None:
    result = BuildResult(written=12, unchanged=1190, removed=2, skipped_render=1190, posts=1000,
                         pages=3, problems=(), seconds=3.214)
    assert result.summary() == ("built 1,202 files (12 written, 1,190 unchanged, 2 removed)"
                                " from 1,000 posts and 3 pages in 3.21 s")
