"""Hugo's publishDate and expiryDate: real `fedipress build` runs on a small blog, the pages
it writes, the line saying what it left out, `file:LINE:` errors, and publish's plan once a
post has expired (planned against a real SQLite store from the build's own manifest)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.config import load_config
from fedipress.federation.mentions import canonical_manifest
from fedipress.federation.publish import load_manifest, plan_changes, queue_plan
from fedipress.generator.build import build_site
from fedipress.model import Site
from fedipress.store import open_store
from support.scheduled import make_dated_blog

PAST, FUTURE = "2020-01-01", "2999-01-01"


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CI", raising=False)  # a CI build makes no key pair, so no federation
    root = make_dated_blog(tmp_path / "blog")
    write(root, "posts/steady.md", f"---\ntitle: Steady\ndate: {PAST}\n---\nAlways here.\n")
    return root


def write(root: Path, rel: str, text: str) -> None:
    path = root / "content" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def post(root: Path, name: str, *lines: str) -> None:
    """content/posts/NAME.md with a title and the front matter `lines`."""
    write(root, f"posts/{name}.md", "---\n" + "\n".join([f"title: {name}", *lines])
          + "\n---\nBody of the post.\n")


def build(root: Path, capsys: pytest.CaptureFixture[str], *argv: str,
          code: int = 0) -> tuple[list[str], list[str]]:
    """`fedipress build`: its stdout and stderr lines."""
    capsys.readouterr()
    assert main(["build", "--config", str(root / "site.yaml"), *argv]) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return out.splitlines(), err.splitlines()


def page(root: Path, path: str) -> str | None:
    file = root / "public" / path / "index.html"
    return file.read_text(encoding="utf-8") if file.is_file() else None


def shown_dates(html: str) -> set[str]:
    """The dates the post page shows (its <time datetime> of the post's date)."""
    return set(re.findall(r'class="dt-published" datetime="(\d{4}-\d{2}-\d{2})', html))


# --- publishDate -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["publishDate", "publishdate", "pubdate", "PublishDate",
                                 "published"])
def test_a_future_publish_date_waits_and_is_counted(
    blog: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    post(blog, "soon", f"date: {PAST}", f"{key}: {FUTURE}")
    out, _ = build(blog, capsys)
    assert out[1] == "left out 1 future-dated post (--future to include it)"
    assert page(blog, "2020/01/soon") is None
    assert page(blog, "2020/01/steady") is not None
    objects = load_manifest(load_config(blog / "site.yaml"))["objects"]
    assert any("/2020/01/steady/" in oid for oid in objects)
    assert not any("/soon/" in oid for oid in objects)  # nothing to announce
    # --future builds it: at the address Hugo gives it (from `date`), showing publishDate.
    out, _ = build(blog, capsys, "--future")
    assert len(out) == 1
    html = page(blog, "2020/01/soon")
    assert html is not None and shown_dates(html) == {FUTURE}


def test_a_past_publish_date_is_built_with_that_date(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post(blog, "went-up", f"date: {PAST}", "publishDate: 2020-03-05T10:00:00+00:00",
         "lastmod: 2020-02-01")  # edited before it went up: no "Updated" line
    out, _ = build(blog, capsys)
    assert len(out) == 1, out
    html = page(blog, "2020/01/went-up")
    assert html is not None and shown_dates(html) == {"2020-03-05"}
    assert "dt-updated" not in html
    # The feed dates it when it went up, so readers sort it there.
    feed = (blog / "public" / "feed.xml").read_text(encoding="utf-8")
    entry = feed[feed.index("<id>https://blog.example/2020/01/went-up/</id>"):]
    entry = entry[: entry.index("</entry>")]
    assert "<published>2020-03-05T10:00:00+00:00</published>" in entry
    assert feed.index("went-up") < feed.index("steady")  # newest first


def test_an_earlier_publish_date_changes_nothing(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post(blog, "early", "date: 2020-06-01", "publishDate: 2020-05-01")
    build(blog, capsys)
    html = page(blog, "2020/06/early")
    assert html is not None and shown_dates(html) == {"2020-06-01"}


def test_publish_date_without_date_is_the_date(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post(blog, "only-publish", "publishDate: 2021-07-08")
    post(blog, "only-publish-later", f"publishDate: {FUTURE}")
    out, _ = build(blog, capsys)
    assert out[1] == "left out 1 future-dated post (--future to include it)"
    html = page(blog, "2021/07/only-publish")
    assert html is not None and shown_dates(html) == {"2021-07-08"}


def test_a_page_waits_for_its_publish_date(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pages are built whatever their `date`, but a publishDate is a request to wait."""
    write(blog, "pages/launch.md", f"---\ntitle: Launch\npublishDate: {FUTURE}\n---\nSoon.\n")
    write(blog, "pages/about.md", f"---\ntitle: About\ndate: {FUTURE}\n---\nMe.\n")
    out, _ = build(blog, capsys)
    assert out[1] == "left out 1 future-dated post (--future to include it)"
    assert page(blog, "launch") is None and page(blog, "about") is not None
    build(blog, capsys, "--future")
    assert page(blog, "launch") is not None


# --- expiryDate --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["expiryDate", "expirydate", "unpublishdate"])
def test_an_expired_post_is_left_out_and_counted(
    blog: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    post(blog, "gone", f"date: {PAST}", f"{key}: 2021-01-01")
    post(blog, "lasting", f"date: {PAST}", f"{key}: {FUTURE}")
    out, _ = build(blog, capsys)
    assert out[1] == "left out 1 expired post (past its expiryDate)"
    assert page(blog, "2020/01/gone") is None
    assert page(blog, "2020/01/lasting") is not None
    # No option brings it back: it has expired, not been held back.
    out, _ = build(blog, capsys, "--drafts", "--future")
    assert out[1] == "left out 1 expired post (past its expiryDate)"
    assert page(blog, "2020/01/gone") is None


def test_left_out_line_with_drafts_future_and_expired(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post(blog, "draft", f"date: {PAST}", "draft: true")
    post(blog, "later", f"date: {FUTURE}")
    post(blog, "gone-1", f"date: {PAST}", "expiryDate: 2020-02-01")
    post(blog, "gone-2", f"date: {PAST}", "expiryDate: 2020-02-02")
    out, _ = build(blog, capsys)
    assert out[1] == ("left out 1 draft and 1 future-dated post (--drafts --future to include"
                      " them), and 2 expired posts (past their expiryDate)")


def test_a_link_to_an_expired_post_is_flagged(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post(blog, "gone", f"date: {PAST}", "expiryDate: 2021-01-01")
    write(blog, "posts/linker.md", f"---\ntitle: Linker\ndate: {PAST}\n---\n"
          'See [it]({{< ref "gone" >}}).\n')
    _, err = build(blog, capsys)
    assert any("content/posts/linker.md:" in line and "an expired post" in line for line in err)


# --- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("lines", "line", "message"), [
    (["date: 2020-01-01", "publishDate: next tuesday"], 4,
     "`publishDate`: expected a date like 2026-01-31"),
    (["date: 2020-01-01", "expiryDate: soon"], 4, "`expiryDate`: expected a date like"),
    (["date: 2020-01-01", "expirydate: 12000-01-01"], 4, "`expirydate`: expected a date like"),
    (["date: 2020-01-01", "unpublishdate: 2020-02-30"], 4,
     "2020-02-30 is not a real date or time"),
    (["date: 2020-01-01", "expiryDate: 2019-12-31"], 4,
     "`expiryDate`: 2019-12-31T00:00:00+00:00 is not after the post's date,"
     " 2020-01-01T00:00:00+00:00, so the post would never be published"),
    (["date: 2020-01-01", "publishDate: 2020-03-01", "expiryDate: 2020-02-01"], 5,
     "`expiryDate`: 2020-02-01T00:00:00+00:00 is not after the post's date,"
     " 2020-03-01T00:00:00+00:00"),
    (["date: 2020-01-01", "publishDate: 2020-02-01", "pubdate: 2020-02-01"], 5,
     "`pubdate`: says the same as `publishDate` on line 4; keep one of them"),
    (["publishDate: [2020]"], 3, "`publishDate`: expected a date like"),
])
def test_bad_values_are_one_line_errors_with_file_and_line(
    blog: Path, capsys: pytest.CaptureFixture[str], lines: list[str], line: int, message: str
) -> None:
    post(blog, "bad", *lines)
    _, err = build(blog, capsys, code=2)
    found = [e for e in err if e.startswith(f"content/posts/bad.md:{line}: ")]
    assert len(found) == 1, err
    assert message in found[0]


def test_toml_front_matter_dates(blog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(blog, "posts/toml.md", "+++\ntitle = \"Toml\"\ndate = 2020-01-01\n"
          "publishDate = 2999-01-01T00:00:00Z\n+++\nBody.\n")
    write(blog, "posts/toml-gone.md", "+++\ntitle = \"Toml gone\"\ndate = 2020-01-01\n"
          "expiryDate = 2020-06-01\n+++\nBody.\n")
    out, _ = build(blog, capsys)
    assert out[1] == ("left out 1 future-dated post (--future to include it), and"
                      " 1 expired post (past its expiryDate)")


# --- publish -----------------------------------------------------------------------------------


def test_publish_after_expiry_plans_a_delete(blog: Path, tmp_path: Path) -> None:
    """Announced (recorded) while live; once expiryDate passes, the next build leaves it out
    and publish's plan sends followers a Delete for it, and nothing for the other post."""
    post(blog, "offer", f"date: {PAST}", "expiryDate: 2026-06-01T12:00:00Z")
    config = load_config(blog / "site.yaml")
    site = Site(config=config, posts=(), pages=())
    before, after = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, 12, tzinfo=UTC)
    logged: list[str] = []
    assert build_site(config, now=before, log=logged.append).posts == 2
    store = open_store(tmp_path / "state.db")
    try:
        first = plan_changes(store.get_ledger(), canonical_manifest(load_manifest(config)),
                             site=site, now=before)
        offer = next(c.object_id for c in first.changes if "/2020/01/offer/" in c.object_id)
        queue_plan(store, first, before)
        assert store.get_ledger()[offer].state == "live"

        # (The second build takes the post from the parse cache: its expiry is kept there.)
        assert any((blog / ".fedipress").rglob("parse*.pickle"))
        result = build_site(config, now=after, log=logged.append)
        assert (result.posts, result.expired_left_out) == (1, 1)
        assert page(blog, "2020/01/offer") is None  # its page is removed from public/
        plan = plan_changes(store.get_ledger(), canonical_manifest(load_manifest(config)),
                            site=site, now=after)
        assert [(c.action, c.object_id) for c in plan.changes] == [("Delete", offer)]
        queue_plan(store, plan, after)
        assert store.get_ledger()[offer].state == "deleted"
    finally:
        store.close()
