"""Small in-memory sites for feed tests, and finding a rendered file by its path.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fedipress.config import Author, FediverseConfig, SiteConfig
from fedipress.model import Output, Post, Site, Tag

BASE = "https://alice.example/"
CET = timezone(timedelta(hours=2))


def make_config(**changes: object) -> SiteConfig:
    config = SiteConfig(
        root=Path("/site"),
        title="Alice's <Notebook> & more",
        base_url=BASE,
        author=Author(name="Alice Example", handle="alice", avatar=BASE + "avatar.png"),
        fediverse=FediverseConfig(
            username="alice", handle_domain="alice.example", display_name="Alice",
            bio="", inbox_url=BASE + "inbox", shared_inbox_url=BASE + "inbox",
        ),
        description="Notes on gardens",
        language="en",
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def tag(name: str) -> Tag:
    return Tag(name=name, slug=name.lower(), url=f"{BASE}tags/{name.lower()}/")


def post(slug: str, day: int, *, tags: tuple[Tag, ...] = (), **changes: object) -> Post:
    p = Post(
        source=f"posts/{slug}.md", kind="post", slug=slug, title=f"Title {slug}",
        date=datetime(2026, 10, day, 18, 30, tzinfo=CET), url=f"{BASE}posts/{slug}/",
        path=f"posts/{slug}/",
        html=f'<p>Body of {slug} <img src="pic.png" alt=""> <a href="/about/">about</a>'
             f' <a href="#fn">fn</a> <a href="https://other.example/x">x</a></p>',
        summary_html=f"<p>Summary of {slug}</p>", lang="en", tags=tags, content_hash=slug,
    )
    return replace(p, **changes)  # type: ignore[arg-type]


def make_site(n: int = 3, **config_changes: object) -> Site:
    garden, code = tag("Garden"), tag("Code")
    posts = tuple(
        post(f"p{i}", i + 1, tags=(garden,) if i % 2 else (garden, code)) for i in range(n)
    )[::-1]  # newest first
    page = replace(post("about", 1), kind="page", url=BASE + "about/", path="about/")
    return Site(config=make_config(**config_changes), posts=posts, pages=(page,))


def by_path(outputs: list[Output]) -> dict[str, Output]:
    return {o.path: o for o in outputs}
