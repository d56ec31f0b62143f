"""Front matter `quotes:`: who may quote one post, over site.yaml's fediverse.quotes, down to
the built object.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedipress.generator.content import load_site
from support.content import NOW, make_config, problems_of, write


@pytest.mark.parametrize(("written", "expected"), [
    ("quotes: nobody", "nobody"), ("quotes: followers", "followers"),
    ("quotes: anyone", "anyone"), ("quotes: false", "nobody"), ("quotes: true", "anyone"),
    ("", None),
])
def test_quotes_key(tmp_path: Path, written: str, expected: str | None) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", f"---\ntitle: A\n{written}\n---\nText.\n")
    (post,) = load_site(make_config(tmp_path), now=NOW).site.posts
    assert post.quotes == expected
    assert "quotes" not in post.extra


def test_a_wrong_value_is_one_problem_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "posts/2026-01-01-a.md", "---\ntitle: A\nquotes: friends\n---\nText.\n")
    [problem] = problems_of(tmp_path)
    assert ":3:" in problem
    assert "`quotes`: expected anyone, followers or nobody, got 'friends'" in problem


def test_the_build_publishes_each_posts_policy(tmp_path: Path) -> None:
    from fedipress.cli import main

    keys = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
    (tmp_path / "site.yaml").write_text(
        "title: Q\nbase_url: https://q.example/\nauthor:\n  name: Q\n  handle: q\n"
        "fediverse:\n  quotes: followers\n")
    (tmp_path / "fedipress-public-key.pem").write_text((keys / "blog-public.pem").read_text())
    write(tmp_path, "posts/2026-01-01-open.md", "---\ntitle: Open\nquotes: anyone\n---\nx\n")
    write(tmp_path, "posts/2026-01-02-default.md", "---\ntitle: Default\n---\nx\n")
    write(tmp_path, "posts/2026-01-03-closed.md", "---\ntitle: Closed\nquotes: nobody\n---\nx\n")
    assert main(["build", "--config", str(tmp_path / "site.yaml"), "--quiet"]) == 0

    def can_quote(slug: str) -> list[str]:
        doc = json.loads((tmp_path / "public" / "posts" / slug / "object.json").read_text())
        return list(doc["interactionPolicy"]["canQuote"]["automaticApproval"])

    assert can_quote("open") == ["https://www.w3.org/ns/activitystreams#Public"]
    assert can_quote("default") == ["https://q.example/followers.json",
                                    "https://q.example/actor.json"]
    assert can_quote("closed") == ["https://q.example/actor.json"]
