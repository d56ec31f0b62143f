"""`fedipress init` / `fedipress new` and slugify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fedipress.cli import main
from fedipress.config import load_config
from fedipress.errors import FedipressError
from fedipress.generator.scaffold import init_site, new_post
from fedipress.generator.slug import slugify

NOW = datetime(2024, 3, 31, 0, 30, 15, 123456, tzinfo=UTC)


def read_front_matter(path: Path) -> dict[str, object]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    block = text.split("---\n", 2)[1]
    loaded = yaml.safe_load(block)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "my-blog"
    init_site(root, now=NOW)
    return root


# --- init -------------------------------------------------------------------------------------


def test_init_writes_a_site_that_loads(tmp_path: Path) -> None:
    root = tmp_path / "my-blog"
    created = init_site(root, now=NOW)
    relative = sorted(str(p.relative_to(root)) for p in created)
    assert relative == [
        ".gitignore",
        "content/pages/about.md",
        "content/posts/hello-world.md",
        "content/static/.gitkeep",
        "site.yaml",
    ]
    config = load_config(root / "site.yaml")
    assert config.title == "My blog"
    assert config.base_url == "https://example.com/"
    assert config.handle == "you@example.com"
    gitignore = (root / ".gitignore").read_text().splitlines()
    assert "/public/" in gitignore and ".fedipress/" in gitignore
    hello = read_front_matter(root / "content/posts/hello-world.md")
    assert hello["title"] == "Hello, world"
    assert hello["date"] == datetime(2024, 3, 31, 0, 30, 15, tzinfo=UTC)
    assert read_front_matter(root / "content/pages/about.md") == {"title": "About"}


def test_init_into_existing_empty_dir(tmp_path: Path) -> None:
    assert len(init_site(tmp_path, now=NOW)) == 5


def test_init_refuses_non_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FedipressError, match="folder is not empty"):
        init_site(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(FedipressError, match="is not a folder"):
        init_site(tmp_path / "x")


def test_init_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "blog")]) == 0
    out = capsys.readouterr().out
    assert f"created {tmp_path / 'blog' / 'site.yaml'}" in out
    assert main(["init", str(tmp_path / "blog")]) == 2
    assert "folder is not empty" in capsys.readouterr().err


# --- new --------------------------------------------------------------------------------------


def test_new_post_front_matter_in_site_timezone(site: Path) -> None:
    (site / "site.yaml").write_text(
        (site / "site.yaml").read_text().replace("timezone: UTC", "timezone: Europe/Berlin")
    )
    config = load_config(site / "site.yaml")
    path = new_post(config, "Grüße aus Köln: \"Teil 1\"", now=NOW)
    assert path == site / "content/posts/grusse-aus-koln-teil-1.md"
    meta = read_front_matter(path)
    assert meta == {
        "title": 'Grüße aus Köln: "Teil 1"',
        "date": datetime(2024, 3, 31, 0, 30, 15, tzinfo=UTC),
        "tags": [],
        "draft": True,  # a draft, as `hugo new` writes: never announced half-written
    }
    # 00:30 UTC is still winter time in Berlin (CEST starts at 01:00 UTC that day).
    assert "date: 2024-03-31T01:30:15+01:00\n" in path.read_text()
    later = new_post(config, "Summer", now=NOW + timedelta(hours=1))
    assert "date: 2024-03-31T03:30:15+02:00\n" in later.read_text()


def test_new_page(site: Path) -> None:
    config = load_config(site / "site.yaml")
    path = new_post(config, "Colophon", page=True, now=NOW)
    assert path == site / "content/pages/colophon.md"
    assert read_front_matter(path)["draft"] is True


def test_new_naive_now_is_site_local(site: Path) -> None:
    config = load_config(site / "site.yaml")
    path = new_post(config, "Naive", now=datetime(2024, 1, 2, 3, 4, 5))
    assert "date: 2024-01-02T03:04:05+00:00\n" in path.read_text()


def test_new_other_offset_converted(site: Path) -> None:
    config = load_config(site / "site.yaml")
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    path = new_post(config, "Offset", now=moment)
    assert "date: 2024-01-02T08:04:05+00:00\n" in path.read_text()


def test_new_refuses_to_overwrite(site: Path) -> None:
    config = load_config(site / "site.yaml")
    target = site / "content/posts/hello-world.md"
    before = target.read_bytes()
    with pytest.raises(FedipressError) as info:
        new_post(config, "Hello World!", now=NOW)
    assert str(info.value).startswith(f"{target}: already exists")
    assert target.read_bytes() == before


def test_new_refuses_bundle_with_same_slug(site: Path) -> None:
    config = load_config(site / "site.yaml")
    bundle = site / "content/posts/tomatoes/index.md"
    bundle.parent.mkdir()
    bundle.write_text("---\ntitle: x\n---\n")
    with pytest.raises(FedipressError, match="tomatoes/index.md: already exists"):
        new_post(config, "Tomatoes", now=NOW)


def test_new_non_latin_title_falls_back_to_date(site: Path) -> None:
    config = load_config(site / "site.yaml")
    path = new_post(config, "日本語の記事", now=NOW)
    assert path.name == "post-20240331-003015.md"
    assert read_front_matter(path)["title"] == "日本語の記事"


def test_new_empty_title(site: Path) -> None:
    with pytest.raises(FedipressError, match="title is empty"):
        new_post(load_config(site / "site.yaml"), "  ")


def test_new_cli(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "From the CLI", "--config", str(site / "site.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"created {site / 'content/posts/from-the-cli.md'}"
    # It says the post is a draft, what that means and how to see it.
    assert out[1].startswith("it is a draft: build, serve and publish leave it out until you"
                             " set `draft: false` in from-the-cli.md")
    assert "fedipress serve --drafts" in out[1]
    assert read_front_matter(site / "content/posts/from-the-cli.md")["draft"] is True


def test_new_cli_options(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)  # under CI `new` asks for no key pair either
    (site / "site.yaml").write_text(
        (site / "site.yaml").read_text().replace("timezone: UTC", "timezone: Europe/Berlin")
    )
    argv = ["new", "Trip report", "--no-draft", "--date", "2024-05-01T09:30",
            "--tags", "travel, food,Ünïcode", "--slug", "my-trip", "--config",
            str(site / "site.yaml")]
    assert main(argv) == 0
    path = site / "content/posts/my-trip.md"
    out = capsys.readouterr().out.splitlines()
    assert out == [f"created {path}", "it is not a draft: the next build shows it and the next"
                   " publish announces it to followers"]
    meta = read_front_matter(path)
    assert meta["draft"] is False
    assert meta["tags"] == ["travel", "food", "Ünïcode"]
    # A time without an offset is wall-clock time in the site's zone.
    assert meta["date"] == datetime(2024, 5, 1, 7, 30, tzinfo=UTC)
    assert "date: 2024-05-01T09:30:00+02:00\n" in path.read_text()
    # The written post builds: date, tags and slug are what the build reads.
    assert main(["build", "-q", "--config", str(site / "site.yaml")]) == 0
    assert (site / "public/posts/my-trip/index.html").is_file()
    assert (site / "public/tags/food/index.html").is_file()


def test_new_cli_future_date_is_explained(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "Later", "--date", "2999-01-01", "--config",
                 str(site / "site.yaml")]) == 0
    out = capsys.readouterr().out
    assert "its date 2999-01-01T00:00:00+00:00 is in the future" in out
    assert "fedipress serve --future" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--date", "yesterday"], "argument --date: 'yesterday' is not a date; give YYYY-MM-DD"),
    (["--date", "2024-13-01"], "argument --date: '2024-13-01' is not a date"),
    (["--tags", "a,,b"], "argument --tags: 'a,,b' has an empty tag; separate tags with single"),
    (["--tags", ""], "argument --tags: '' has an empty tag"),
    (["--slug", "My Trip"], "argument --slug: 'My Trip' is not a slug; use lower-case letters,"
                            " digits and single hyphens, e.g. my-trip"),
    (["--slug", "--"], "argument --slug: expected one argument"),
    (["--slug", "a--b"], "argument --slug: 'a--b' is not a slug"),
    (["--slug", "日本"], "argument --slug: '日本' is not a slug; use lower-case letters, digits"
                       " and single hyphens ("),
])
def test_new_cli_refuses_bad_options_in_one_line(
    site: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = sorted(site.rglob("*"))
    assert main(["new", "Title", *argv, "--config", str(site / "site.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"fedipress: error: {message}"), err
    assert sorted(site.rglob("*")) == before


def test_new_post_refuses_a_bad_slug(site: Path) -> None:
    with pytest.raises(FedipressError, match="the slug 'A B' is not a slug"):
        new_post(load_config(site / "site.yaml"), "x", slug="A B")


# --- slugify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Hello, World!", "hello-world"),
        ("Grüße, Café!", "grusse-cafe"),
        ("Alice’s   Notebook", "alices-notebook"),
        ("Ørsted & Łódź — 2024", "orsted-lodz-2024"),
        ("  --Already-a-slug--  ", "already-a-slug"),
        ("ＦＵＬＬ ｗｉｄｔｈ", "full-width"),
        ("日本語", ""),
    ],
)
def test_slugify_examples(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slugify_cuts_long_titles_at_a_word() -> None:
    slug = slugify("word " * 40)
    assert len(slug) <= 80 and slug.endswith("word") and "--" not in slug


@given(st.text())
def test_slugify_output_is_url_safe(text: str) -> None:
    slug = slugify(text)
    assert len(slug) <= 80
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in slug)
    assert not slug.startswith("-") and not slug.endswith("-") and "--" not in slug
    assert slugify(slug) == slug


def test_init_links_the_published_docs(tmp_path: Path) -> None:
    # A pip-installed fedipress has no docs/ folder: the starter site links the published page.
    from fedipress.wording import docs_url

    init_site(tmp_path / "b")
    text = (tmp_path / "b" / "site.yaml").read_text()
    assert docs_url("configuration") in text
    assert "docs/configuration.md" not in text.replace(docs_url("configuration"), "")


def test_new_page_with_tags_is_refused(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(site.rglob("*"))
    assert main(["new", "About", "--page", "--tags", "x", "--config",
                 str(site / "site.yaml")]) == 2
    assert capsys.readouterr().err == (
        "fedipress: error: --tags is for posts: pages are not listed under tags; leave out"
        " --tags or --page\n"
    )
    assert sorted(site.rglob("*")) == before


def test_new_non_utf8_tag_is_one_error_line(site: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(site.rglob("*"))
    assert main(["new", "Title", "--tags", "ok,\udcff", "--config",
                 str(site / "site.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedipress: error: the tags '\\udcff' is not UTF-8 text"), err
    assert sorted(site.rglob("*")) == before
