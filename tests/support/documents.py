"""ActivityPub document helpers: a site, its posts, the golden files they are compared to.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedipress.config import Author, AuthorLink, FediverseConfig, ProfileField, SiteConfig
from fedipress.model import Image, Post, Site, Tag

GOLDEN = Path(__file__).parents[1] / "golden"
KEY = (Path(__file__).parents[1] / "fixtures" / "keys" / "blog-public.pem").read_text()
BASE = "https://blog.example/"


def make_config(**fediverse: Any) -> SiteConfig:
    fed = FediverseConfig(
        username="alice",
        handle_domain="blog.example",
        display_name="Alice Example",
        bio="Writing about *static sites* and the [fediverse](https://joinmastodon.org/).",
        inbox_url=BASE + "inbox",
        shared_inbox_url=BASE + "inbox",
        avatar=BASE + "avatar.png",
        header=BASE + "header.jpg",
        fields=(
            ProfileField("Blog", BASE),
            ProfileField("Pronouns", "she/her"),
        ),
        also_known_as=("https://mastodon.example/users/alice",),
        published="2023-01-01T00:00:00Z",
    )
    fed = replace(fed, **fediverse)
    return SiteConfig(
        root=Path("/nonexistent"),
        title="Alice's Blog",
        base_url=BASE,
        author=Author(name="Alice", handle="alice",
                      links=(AuthorLink("Code", "https://code.example/alice"),)),
        fediverse=fed,
        language="en",
    )


def make_post(slug: str, day: int, **kw: Any) -> Post:
    url = f"{BASE}posts/{slug}/"
    fields: dict[str, Any] = dict(
        source=f"posts/{slug}.md",
        kind="post",
        slug=slug,
        title=f"Post {slug}",
        date=datetime(2024, 3, day, 9, 30, tzinfo=UTC),
        url=url,
        path=f"posts/{slug}/",
        html=f"<p>Body of {slug}.</p>",
        summary_html=f"<p>Summary of {slug}.</p>",
        lang="en",
    )
    fields.update(kw)
    return Post(**fields)


def hello_post() -> Post:
    return make_post(
        "hello",
        20,
        title="Hello, fediverse",
        updated=datetime(2024, 3, 21, 8, 0, tzinfo=UTC),
        html=(
            "<h2>Why</h2>"
            '<p>Read <a href="../other/">the other post</a> and say hi to '
            '<span class="h-card"><a class="mention u-url" href="https://social.example/@bob">'
            "@bob@social.example</a></span>.</p>"
            '<p><img src="/media/cat.png" alt="A cat" width="640" height="480"></p>'
            "<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>"
            "<script>alert(1)</script>"
        ),
        summary_html="<p>Why this blog federates.</p>",
        tags=(
            Tag("python", "python", BASE + "tags/python/"),
            Tag("static sites", "static-sites", BASE + "tags/static-sites/"),
        ),
        image=Image(BASE + "posts/hello/cover.jpg", alt="Cover", width=1200, height=630),
        images=(Image(BASE + "media/cat.png", alt="A cat", media_type="image/png"),),
        pinned=True,
    )


def make_site(posts: int = 3, **fediverse: Any) -> Site:
    extra = [make_post(f"p{i}", i % 28 + 1, date=datetime(2024, 1, 1, tzinfo=UTC)
                       .replace(day=i % 28 + 1, hour=i % 24)) for i in range(1, posts)]
    all_posts = sorted([hello_post(), *extra], key=lambda p: p.date, reverse=True)
    return Site(config=make_config(**fediverse), posts=tuple(all_posts), pages=())


def check_golden(name: str, doc: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n" if not isinstance(doc, str) else doc
    if os.environ.get("FEDIPRESS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with FEDIPRESS_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


WHEN = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
