"""Small in-memory sites rendered with the real themes.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fedipress.config import Author, AuthorLink, FediverseConfig, SiteConfig
from fedipress.generator.render import plan_pages
from fedipress.generator.themes import make_environment
from fedipress.model import Image, Output, Post, Site, Tag

BASE = "https://alice.example/"
BODY = """<p>This year's tomatoes were late, small and <em>absolutely</em> delicious.</p>
<h2 id="notes">Notes</h2>
<ol><li>Start seeds indoors in March.</li><li>Pinch the side shoots every week.</li></ol>
<pre class="highlight"><code>def water(plant):
    return plant.soil.water(litres=2)  # a deliberately long line that must scroll inside the box
</code></pre>
<table><thead><tr><th>Variety</th><th>Taste</th><th>Yield</th><th>Colour</th><th>Notes</th></tr></thead>
<tbody><tr><td>Black Krim</td><td>★★★</td><td>★★</td><td>dark red</td><td>splits in rain</td></tr>
<tr><td>Sungold</td><td>★★★</td><td>★★★</td><td>orange</td><td>very sweet</td></tr></tbody></table>
<p>A long address that must wrap: https://example.com/a/really/long/path/without/any/spaces/at/all</p>
"""


def make_config(root: Path, *, base_url: str = BASE, **changes: Any) -> SiteConfig:
    author = Author(
        name="Alice Example",
        handle="alice",
        avatar=f"{base_url}images/avatar.svg",
        bio="Gardener, programmer, and *reluctant* early riser.",
        links=(
            AuthorLink("Code", "https://code.example/alice"),
            AuthorLink("Photos", "https://photos.example/@alice"),
        ),
    )
    host = base_url.split("/")[2]
    fedi = FediverseConfig(
        username="alice",
        handle_domain=host,
        display_name="Alice Example",
        bio="I write about gardens.",
        inbox_url=f"{base_url}inbox",
        shared_inbox_url=f"{base_url}inbox",
    )
    config = SiteConfig(
        root=root,
        title="Alice's Notebook",
        base_url=base_url,
        author=author,
        fediverse=fedi,
        description="Notes on gardens, code and the open web.",
        timezone="Europe/Berlin",
        posts_per_page=3,
        output_dir=root / "public",
        content_dir=root / "content",
        config_file=root / "site.yaml",
    )
    return dataclasses.replace(config, **changes)


def make_post(
    base_url: str, i: int, *, tags: tuple[str, ...] = ("garden",), **changes: Any
) -> Post:
    slug = f"post-{i}"
    date = datetime(2025, 12, 20, 22, 30, tzinfo=UTC) + timedelta(days=30 * i)
    post = Post(
        source=f"posts/{slug}.md",
        kind="post",
        slug=slug,
        title=f"Post number {i} about <tomatoes> & friends",
        date=date,
        url=f"{base_url}posts/{slug}/",
        path=f"posts/{slug}/",
        html=BODY,
        summary_html=f"<p>Summary of post {i}: tomatoes &amp; more.</p>",
        lang="en",
        tags=tuple(Tag(t, t.lower(), f"{base_url}tags/{t.lower()}/") for t in tags),
        toc_html='<ul><li><a href="#notes">Notes</a></li></ul>',
        word_count=120,
        reading_minutes=3,
        content_hash=f"hash-{i}",
    )
    return dataclasses.replace(post, **changes)


def make_site(root: Path, *, base_url: str = BASE, n_posts: int = 7, **config: Any) -> Site:
    cfg = make_config(root, base_url=base_url, **config)
    posts = []
    for i in range(n_posts, 0, -1):  # newest first
        tags = ("garden", "Code") if i % 2 else ("garden",)
        extra: dict[str, Any] = {}
        if i == n_posts:
            extra["image"] = Image(
                f"{base_url}posts/post-{i}/cover.svg", alt="Three tomatoes", width=1200, height=630
            )
            extra["aliases"] = ("2019/01/old-name/", "posts/post-1/")
            extra["updated"] = datetime(2026, 8, 1, 8, 0, tzinfo=UTC)
        posts.append(make_post(base_url, i, tags=tags, **extra))
    about = Post(
        source="pages/about.md",
        kind="page",
        slug="about",
        title="About",
        date=datetime(2025, 1, 1, tzinfo=UTC),
        url=f"{base_url}about/",
        path="about/",
        html="<p>I garden and I write code.</p>",
        summary_html="<p>I garden and I write code.</p>",
        lang="en",
        federate=False,
        aliases=("about-me/",),
        content_hash="about",
    )
    return Site(config=cfg, posts=tuple(posts), pages=(about,))


def render_all(site: Site, salt: str = "salt") -> dict[str, str]:
    env = make_environment(site.config)
    return {o.path: o.render().decode() for o in plan_pages(site, env, fingerprint_salt=salt)}


def plan(site: Site, salt: str = "salt") -> dict[str, Output]:
    env = make_environment(site.config)
    return {o.path: o for o in plan_pages(site, env, fingerprint_salt=salt)}
