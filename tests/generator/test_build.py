"""The build: incremental sync of outputs into a real temp folder, safety, and whole sites."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.generator.build import Builder, BuildResult, build_site, sync_outputs
from fedipress.generator.output import OutputDirError, check_output_dir, target_path, write_atomic
from fedipress.model import Output
from support.build import copy_site, load

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
    # Later builds (the folder now has a manifest) keep them too, and say so each time;
    # a stray that appears after the first build is the build's to remove.
    (public / "later.txt").write_text("left by a hand edit")
    notes.clear()
    result = sync_outputs([Plan().output("a.txt", "a")], public, tmp_path / "m.json",
                          log=notes.append)
    assert tree(public) == {"a.txt": b"a", "precious.txt": b"mine"} and result.removed == 1
    assert any("left 1 file" in n for n in notes)
    sync_outputs([Plan().output("b.txt", "b")], public, tmp_path / "m.json", log=notes.append)
    assert tree(public) == {"b.txt": b"b", "precious.txt": b"mine"}
    # --clean means: make the folder exactly the build.
    result = sync_outputs([Plan().output("a.txt", "a")], public, tmp_path / "m.json",
                          clean=True, log=notes.append)
    assert tree(public) == {"a.txt": b"a"} and result.removed == 2
    (public / "new.txt").write_text("?")  # the folder is the build's now
    sync_outputs([Plan().output("a.txt", "a")], public, tmp_path / "m.json", log=notes.append)
    assert tree(public) == {"a.txt": b"a"}


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


def test_parallel_render_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fedipress.generator.outputsync

    monkeypatch.setattr(fedipress.generator.outputsync, "PARALLEL_RENDER_THRESHOLD", 100)
    pids: list[int] = []
    monkeypatch.setattr(fedipress.generator.outputsync, "write_atomic",
                        lambda path, data, **kw: (pids.append(os.getpid()),
                                                  write_atomic(path, data, **kw))[1])
    # (A new output folder is written without temporary files: counted the same way.)
    write_new = fedipress.generator.outputsync._write_new
    monkeypatch.setattr(fedipress.generator.outputsync, "_write_new",
                        lambda path, data: (pids.append(os.getpid()), write_new(path, data))[1])
    outs = [Plan().output(f"p/{i}/index.html", f"page {i}") for i in range(450)]
    parallel = sync_outputs(outs, tmp_path / "a", tmp_path / "a.json", workers=2,
                            log=lambda _l: None)
    serial = sync_outputs(outs, tmp_path / "b", tmp_path / "b.json", workers=1,
                          log=lambda _l: None)
    assert parallel.written == serial.written == 450
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    # Only the serial build's writes (and the manifests) ran in this process: the pool did run.
    assert pids.count(os.getpid()) == 450 + 2


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


# --- whole sites (need content, render and themes; skipped until those modules exist) -----------

ATOM = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(f"fedipress.{m}") is None]


_SITE_MODULES = ("generator.content", "generator.render", "generator.themes")
needs_site = pytest.mark.skipif(
    bool(_missing(*_SITE_MODULES)),
    reason=f"fedipress modules not written yet: {_missing(*_SITE_MODULES)}",
)


Build = Callable[..., BuildResult]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return copy_site("basic", tmp_path / "blog")


@pytest.fixture
def build(site: Path) -> Build:
    def run(**kw: object) -> BuildResult:
        kw.setdefault("now", NOW)
        return build_site(load(site), log=lambda _l: None, **kw)  # type: ignore[arg-type]

    return run


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in root.rglob("*") if p.is_file()}


def post_dir(public: Path, title: str) -> Path:
    """The folder of the post titled `title`, found through feed.xml (slugs are content's job)."""
    root = ET.fromstring((public / "feed.xml").read_bytes())
    for entry in root.findall(f"{ATOM}entry"):
        if entry.findtext(f"{ATOM}title") == title:
            url = entry.findtext(f"{ATOM}id") or ""
            return public / url.removeprefix("https://blog.example/")
    raise AssertionError(f"no post titled {title!r} in feed.xml")


def feed_titles(public: Path) -> list[str]:
    root = ET.fromstring((public / "feed.xml").read_bytes())
    return [e.findtext(f"{ATOM}title") or "" for e in root.findall(f"{ATOM}entry")]


@needs_site
def test_full_build(site: Path, build: Build) -> None:
    result = build()
    public = site / "public"
    assert result.posts == 3 and result.pages == 1 and result.problems == ()
    assert result.written == len(mtimes(public)) > 10
    for rel in ("index.html", "feed.xml", "rss.xml", "feed.json", "sitemap.xml", "robots.txt",
                "images/avatar.svg", "tags/garden/feed.xml"):
        assert (public / rel).is_file(), rel
    assert feed_titles(public) == ["Watching files", "Tomatoes & peppers", "Hello, fediverse"]
    tomatoes = post_dir(public, "Tomatoes & peppers")
    assert (tomatoes / "tomato.svg").is_file()  # bundle file beside its post
    if not _missing("generator.markup"):
        assert (public / "theme" / "highlight.css").stat().st_size > 0
    # Build state stays out of the published folder.
    assert not any(p.name in ("manifest.json", "build-manifest.marshal", "private-key.pem")
                   for p in public.rglob("*"))
    assert (site / ".fedipress" / "cache" / "build-manifest.marshal").is_file()
    if not _missing("federation.keys", "activitypub.site"):
        assert (site / ".fedipress" / "manifest.json").is_file()
    assert set(result.phase_seconds) >= {"parse", "plan", "write"}


@needs_site
def test_rebuild_with_nothing_changed_writes_nothing(site: Path, build: Build) -> None:
    first = build()
    before = mtimes(site / "public")
    again = build()
    assert again.written == 0 and again.removed == 0
    assert again.skipped_render == again.unchanged == first.written
    assert mtimes(site / "public") == before


@needs_site
def test_editing_one_post_rewrites_only_what_depends_on_it(site: Path, build: Build) -> None:
    build()
    public = site / "public"
    before = mtimes(public)
    hello = post_dir(public, "Hello, fediverse")
    source = site / "content" / "posts" / "2026-09-14-hello.md"
    source.write_text(source.read_text() + "\nOne more line.\n")
    result = build()
    after = mtimes(public)
    changed = {p for p in after if after[p] != before.get(p)}
    rel_hello = hello.relative_to(public).as_posix()
    assert f"{rel_hello}/index.html" in changed
    assert {"feed.xml", "rss.xml", "feed.json"} <= changed
    assert "sitemap.xml" not in changed and "robots.txt" not in changed
    assert "images/avatar.svg" not in changed
    watching = post_dir(public, "Watching files").relative_to(public).as_posix()
    assert f"{watching}/index.html" not in changed
    assert result.written == len(changed) < len(after) // 2
    assert "One more line." in (hello / "index.html").read_text()


@needs_site
def test_removed_post_loses_its_files(site: Path, build: Build) -> None:
    build()
    public = site / "public"
    tomatoes = post_dir(public, "Tomatoes & peppers")
    shutil.rmtree(site / "content" / "posts" / "2026-10-02-tomatoes")
    result = build()
    assert not tomatoes.exists()
    assert result.removed >= 2  # the page and its bundle image at least
    assert feed_titles(public) == ["Watching files", "Hello, fediverse"]


@needs_site
def test_stray_files_removed_and_nothing_outside(site: Path, build: Build) -> None:
    build()
    public = site / "public"
    (public / "posts" / "stray.html").write_text("old")
    (public / "junk").mkdir()
    (public / "junk" / "x.txt").write_text("old")
    beside = site / "notes.txt"
    beside.write_text("not part of the output")
    result = build()
    assert result.removed == 2
    assert not (public / "posts" / "stray.html").exists() and not (public / "junk").exists()
    assert beside.read_text() == "not part of the output"
    assert (site / "content" / "pages" / "about.md").is_file()


@needs_site
def test_refuses_to_build_into_the_site_folder(site: Path) -> None:
    config = replace(load(site), output_dir=site)
    with pytest.raises(OutputDirError, match="output_dir"):
        build_site(config, now=NOW, log=lambda _l: None)
    assert (site / "site.yaml").is_file()


@needs_site
def test_drafts_and_future_flags(site: Path, build: Build) -> None:
    build()
    assert "An unfinished draft" not in feed_titles(site / "public")
    result = build(drafts=True, future=True)
    titles = feed_titles(site / "public")
    assert {"An unfinished draft", "A post from the future"} <= set(titles)
    assert result.posts == 5
    # Back to a normal build: the draft's and future post's files go away again.
    result = build()
    assert result.removed > 0 and result.posts == 3


@needs_site
def test_broken_content_lists_every_file(tmp_path: Path) -> None:
    from fedipress.errors import ContentError

    site = copy_site("broken", tmp_path / "blog")
    with pytest.raises(ContentError) as info:
        build_site(load(site), now=NOW, log=lambda _l: None)
    message = str(info.value)
    assert "2026-09-02-bad-yaml.md" in message and "2026-09-03-bad-date.md" in message
    assert "2026-09-04-impossible-date.md:3: `date`: 2026-02-30 is not a real date" in message
    assert not (site / "public").exists()


@needs_site
def test_keep_going_builds_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = copy_site("broken", tmp_path / "blog")
    result = build_site(load(site), now=NOW, keep_going=True, log=lambda _l: None)
    assert len(result.problems) == 3 and result.posts == 1
    assert feed_titles(site / "public") == ["A good post"]
    err = capsys.readouterr().err
    assert err.count("warning: ") == 3 and "bad-yaml.md" in err


@needs_site
def test_builds_are_deterministic(tmp_path: Path) -> None:
    trees = []
    for stamp, name in enumerate(("one", "two")):
        site = copy_site("basic", tmp_path / name / "blog")
        # Two checkouts made at different times: every file's mtime differs (the undated
        # about page once took its sitemap lastmod from it).
        for file in (site / "content").rglob("*"):
            os.utime(file, (1_700_000_000 + stamp * 86_400,) * 2)
        build_site(load(site), now=NOW, log=lambda _l: None)
        trees.append(tree(site / "public"))
    assert trees[0] == trees[1]
    # --clean rebuilds from scratch and still gives the same bytes.
    site = tmp_path / "one" / "blog"
    build_site(load(site), now=NOW, clean=True, log=lambda _l: None)
    assert tree(site / "public") == trees[0]


@needs_site
def test_builder_rebuilds_after_a_change(site: Path) -> None:
    builder = Builder(load(site), log=lambda _l: None)
    first = builder.build(now=NOW)
    assert builder.build(now=NOW).written == 0
    page = site / "content" / "pages" / "about.md"
    page.write_text(page.read_text() + "\nMore about me.\n")
    result = builder.build([page], now=NOW)
    assert 0 < result.written < first.written


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        [sys.executable, "-m", "fedipress.cli", "build", "--config", str(site / "site.yaml"),
         *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


@needs_site
def test_cli_build_prints_one_summary_line(site: Path) -> None:
    done = _cli(site)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("built ") and " from 3 posts" in lines[0]
    # The example's draft and future post: what was left out, and the flags that include it.
    assert lines[1:] == [
        "left out 1 draft and 1 future-dated post (--drafts --future to include them)"
    ]
    assert "Traceback" not in done.stderr
    quiet = _cli(site, "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == ""


@needs_site
def test_cli_broken_content_exits_2_with_one_line_per_file(tmp_path: Path) -> None:
    site = copy_site("broken", tmp_path / "blog")
    done = _cli(site)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    # One `file:LINE: message` line per problem, as the issue asks and editors parse.
    errors = done.stderr.splitlines()
    assert all(re.match(r"content/posts/[\w-]+\.md:\d+: \S", line) for line in errors), errors
    assert len(errors) >= 3
    assert any("bad-yaml.md" in line for line in errors)
    assert any("bad-date.md" in line for line in errors)
    assert any("impossible-date.md:3: `date`: 2026-02-30 is not a real date" in line
               for line in errors)
    kept = _cli(site, "--keep-going")
    assert kept.returncode == 0 and "Traceback" not in kept.stderr
    warnings = [line for line in kept.stderr.splitlines() if ": warning: " in line]
    assert len(warnings) == 3
    assert all(re.match(r"content/posts/[\w-]+\.md:\d+: warning: \S", w) for w in warnings)


@needs_site
@pytest.mark.skipif(bool(_missing("federation.keys", "activitypub.site")),
                    reason="needs keys, activitypub")
def test_federation_manifest_follows_the_posts(site: Path, build: Build) -> None:

    from fedipress.federation.manifest import read_federation_manifest

    build()
    manifest = site / ".fedipress" / "manifest.json"
    first = read_federation_manifest(site / ".fedipress")
    assert len(first["objects"]) == 3
    stamp = manifest.stat().st_mtime_ns
    build()
    assert manifest.stat().st_mtime_ns == stamp  # nothing changed: not even recomputed
    (site / "content" / "posts" / "2026-09-14-hello.md").unlink()
    build()
    assert len(read_federation_manifest(site / ".fedipress")["objects"]) == 2


def test_progress_bar_only_after_a_second(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import fedipress.generator.outputsync as b
    import fedipress.progress

    clock = [100.0]
    monkeypatch.setattr(fedipress.progress.time, "monotonic", lambda: clock[0])
    bar = b.build_progress(True, "rendering", 200)
    bar.update(10)
    assert capsys.readouterr().err == ""  # under a second: silent
    clock[0] += 1.5
    bar.update(100)
    bar.close()
    err = capsys.readouterr().err
    assert f"\rrendering [{'#' * 15}{'.' * 15}] 100/200 (50%)" in err
    assert err.endswith("\r\033[K")  # cleared: the build's summary line follows
    quiet = b.build_progress(False, "rendering", 200)
    clock[0] += 5
    quiet.update(150)
    quiet.close()
    assert capsys.readouterr().err == ""
    # A phase starting after the build has already run for a second shows at once: a
    # 1.6 s build of 0.8 s parsing and 0.8 s writing shows a bar too.
    late = b.build_progress(True, "rendering", 200, since=clock[0] - 1.2)
    late.update(20)
    late.close()
    assert "\rrendering [###" + "." * 27 + "] 20/200 (10%)" in capsys.readouterr().err
    early = b.build_progress(True, "rendering", 200, since=clock[0] - 0.5)
    early.update(20)
    assert capsys.readouterr().err == ""


def test_a_long_parse_shows_its_own_progress_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import fedipress.progress

    root = copy_site("basic", tmp_path / "blog")
    for i in range(40):
        (root / "content" / "posts" / f"2026-08-{i % 28 + 1:02d}-more-{i}.md").write_text(
            f"---\ntitle: More {i}\n---\nBody {i}.\n")
    clock = [100.0]

    def tick() -> float:  # every look at the clock is half a second later
        clock[0] += 0.5
        return clock[0]

    monkeypatch.setattr(fedipress.progress.time, "monotonic", tick)  # also build's clock
    Builder(load(root), log=lambda _l: None, workers=2, progress=True).build(now=NOW)
    err = capsys.readouterr().err
    assert "\rparsing " in err and "\rrendering " in err
    assert err.index("\rparsing ") < err.index("\rrendering ")
    assert err.endswith("\r\033[K")  # the line is cleared at the end


@needs_site
def test_preview_builds_leave_the_federation_manifest_alone(site: Path) -> None:
    Builder(load(site), log=lambda _l: None, federation_manifest=False).build(now=NOW)
    assert (site / "public" / "index.html").is_file()
    assert not (site / ".fedipress" / "manifest.json").exists()


# --- hostile content trees and hand edits (an adversarial run found each as a traceback) ----


@needs_site
@pytest.mark.parametrize(("file", "text", "expected"), [
    ("pages/tags.md", "---\ntitle: Tags\n---\nx\n",
     "content/pages/tags.md: its URL makes 'tags/index.html', which is also another output's"),
    ("pages/a.md", "---\ntitle: A\nurl: /actor.json/\n---\nx\n",
     "content/pages/a.md: its URL needs 'actor.json' as a folder, but that is another"),
    ("pages/b.md", "---\ntitle: B\naliases: [/feed.xml]\n---\nx\n",
     "content/pages/b.md: its alias needs 'feed.xml' as a folder"),
    ("static/posts", "a file where the posts' folder goes\n",
     "content/static/posts: this file makes 'posts', which is also the folder of other"),
], ids=["page-on-tags", "url-on-actor", "alias-on-feed", "static-on-posts"])
def test_an_output_path_fedipress_makes_itself_is_a_content_error(
        tmp_path: Path, file: str, text: str, expected: str) -> None:
    site = copy_site("basic", tmp_path / "blog")
    target = site / "content" / file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    done = _cli(site)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(expected), done.stderr


@needs_site
def test_hand_edits_that_swap_files_and_folders_are_repaired(tmp_path: Path) -> None:
    site = copy_site("basic", tmp_path / "blog")
    build_site(load(site), now=NOW, log=lambda _l: None)
    public = site / "public"
    expected = tree(public)
    shutil.rmtree(public / "posts")
    (public / "posts").write_text("a file where a folder was")
    (public / "index.html").unlink()
    (public / "index.html" / "sub").mkdir(parents=True)
    build_site(load(site), now=NOW, log=lambda _l: None)
    assert tree(public) == expected


@needs_site
def test_odd_files_in_the_content_tree_are_passed_over(tmp_path: Path) -> None:
    import socket as socket_module

    site = copy_site("basic", tmp_path / "blog")
    build_site(load(site), now=NOW, log=lambda _l: None)
    expected = tree(site / "public")
    posts, static = site / "content" / "posts", site / "content" / "static"
    static.mkdir(exist_ok=True)
    os.mkfifo(posts / "2026-01-01-fifo.md")  # reading it would block forever
    os.mkfifo(static / "pipe")
    (posts / "2026-01-02-gone.md").symlink_to(tmp_path / "nowhere.md")
    (static / os.fsdecode(b"f\xff.txt")).write_text("a name no URL can carry")
    sock = socket_module.socket(socket_module.AF_UNIX)
    try:
        sock.bind(str(static / "sock"))
        build_site(load(site), now=NOW, log=lambda _l: None)
    finally:
        sock.close()
    assert tree(site / "public") == expected


@needs_site
def test_a_copied_file_over_a_federation_document_is_warned_about(tmp_path: Path) -> None:
    site = copy_site("basic", tmp_path / "blog")
    static = site / "content" / "static"
    static.mkdir(exist_ok=True)
    (static / "actor.json").write_text("{}")
    (static / "outbox.json").write_text("{}")
    (static / "robots.txt").write_text("User-agent: *\n")  # a documented, quiet override
    lines: list[str] = []
    build_site(load(site), now=NOW, log=lines.append)
    warned = sorted(line for line in lines if ": warning: " in line)
    assert warned == [
        f"content/static/{name}: warning: replaces the generated {name}, which other servers"
        " read to follow the blog; remove it unless you mean to"
        for name in ("actor.json", "outbox.json")
    ]
    assert (site / "public" / "actor.json").read_text() == "{}"  # still the user's choice


@needs_site
def test_an_image_the_site_does_not_provide_is_warned_about(tmp_path: Path) -> None:
    site = copy_site("basic", tmp_path / "blog")
    (site / "content" / "posts" / "2026-09-20-pics.md").write_text(
        "---\ntitle: Pics\nimage: cover.jpg\n---\n"
        "![here](/img/here.png) ![gone](/img/gone%20too.png) ![far](https://o.example/f.png)\n")
    (site / "content" / "static" / "img").mkdir(parents=True)
    (site / "content" / "static" / "img" / "here.png").write_bytes(b"\x89PNG")
    lines: list[str] = []
    build_site(load(site), now=NOW, log=lines.append)
    base = load(site).base_url
    assert sorted(line for line in lines if ": warning: image" in line) == [
        f"content/posts/2026-09-20-pics.md: warning: image {base}{rel} is not part of the"
        " site; put the file beside the post (a bundle) or under content/static/"
        for rel in ("img/gone%20too.png", "posts/pics/cover.jpg")
    ]
