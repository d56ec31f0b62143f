"""What `fedipress build` and `publish` tell a new user: the drafts and future posts a build
left out (and the flag that includes them), and that base_url is still init's placeholder."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.generator.build import BuildResult
from fedipress.generator.scaffold import PLACEHOLDER_BASE_URL, init_site


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CI", raising=False)
    root = tmp_path / "blog"
    init_site(root)
    monkeypatch.chdir(root)
    return root


def post(blog: Path, name: str, *, draft: bool = False, date: str = "2024-01-01") -> None:
    (blog / f"content/posts/{name}.md").write_text(
        f"---\ntitle: {name}\ndate: {date}\ndraft: {'true' if draft else 'false'}\n---\nText.\n"
    )


def build(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[str], str]:
    capsys.readouterr()
    assert main(["build", *argv]) == 0
    out, err = capsys.readouterr()
    return out.splitlines(), err


def test_build_says_what_it_left_out_and_how_to_include_it(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post(blog, "one-draft", draft=True)
    post(blog, "two-draft", draft=True)
    post(blog, "later", date="2999-01-01")
    post(blog, "later-draft", draft=True, date="2999-01-01")  # counted once, as a draft
    out, _ = build(capsys, "--base-url", "http://127.0.0.1:8000/")
    assert out[0].startswith("built ") and "from 1 post and 1 page" in out[0]
    assert out[1] == "left out 3 drafts and 1 future-dated post (--drafts --future to include them)"
    out, _ = build(capsys, "--base-url", "http://127.0.0.1:8000/", "--drafts")
    assert out[1] == "left out 2 future-dated posts (--future to include them)"
    out, _ = build(capsys, "--base-url", "http://127.0.0.1:8000/", "--future")
    assert out[1] == "left out 3 drafts (--drafts to include them)"
    out, _ = build(capsys, "--base-url", "http://127.0.0.1:8000/", "--drafts", "--future")
    assert len(out) == 1 and "from 5 posts" in out[0]


def test_left_out_wording() -> None:
    result = BuildResult(written=0, unchanged=0, removed=0, skipped_render=0, posts=0, pages=0,
                         problems=(), seconds=0.0)
    assert result.left_out() is None
    one = BuildResult(written=0, unchanged=0, removed=0, skipped_render=0, posts=0, pages=0,
                      problems=(), seconds=0.0, drafts_left_out=1)
    assert one.left_out() == "left out 1 draft (--drafts to include it)"


def test_build_warns_while_base_url_is_the_placeholder(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (blog / "site.yaml").read_text().splitlines()
    line = lines.index(f"base_url: {PLACEHOLDER_BASE_URL}") + 1
    _, err = build(capsys)
    warnings = [w for w in err.splitlines() if "placeholder" in w]
    assert warnings == [
        f"site.yaml:{line}: warning: base_url is still the placeholder {PLACEHOLDER_BASE_URL}"
        " that `fedipress init` wrote; links, feeds and the fediverse actor point there: set it"
        " to the blog's public address (it becomes the fediverse handle's domain), or pass"
        " --base-url for a local test"
    ]
    # Not with --quiet (errors only), not with a base URL for this run, nor once site.yaml has
    # the real address.
    _, err = build(capsys, "-q")
    assert "placeholder" not in err
    _, err = build(capsys, "--base-url", "http://127.0.0.1:8000/")
    assert "placeholder" not in err
    (blog / "site.yaml").write_text((blog / "site.yaml").read_text().replace(
        PLACEHOLDER_BASE_URL, "https://blog.example.org/"))
    _, err = build(capsys)
    assert "placeholder" not in err


def test_publish_warns_while_base_url_is_the_placeholder(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    main(["publish", "--dry-run"])
    err = capsys.readouterr().err
    assert "site.yaml:" in err and ": warning: base_url is still the placeholder" in err
    assert "nothing published reaches them" in err
