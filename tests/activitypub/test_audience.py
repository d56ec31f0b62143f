"""Followers to inboxes: shared inbox preferred, de-duplicated, stable order, streaming."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedipress.activitypub.audience import (
    FollowerAddress,
    inbox_host,
    inboxes_for,
    iter_inboxes,
)


def follower(n: int, host: str = "a.example", shared: bool = True) -> FollowerAddress:
    return FollowerAddress(
        actor_id=f"https://{host}/users/u{n}",
        inbox=f"https://{host}/users/u{n}/inbox",
        shared_inbox=f"https://{host}/inbox" if shared else None,
    )


def test_one_post_per_shared_inbox() -> None:
    followers = [follower(n) for n in range(100)]
    assert inboxes_for(followers) == ["https://a.example/inbox"]


def test_personal_inbox_without_shared_inbox_and_stable_order() -> None:
    followers = [
        follower(1, "b.example"),
        follower(2, "c.example", shared=False),
        follower(3, "b.example"),
        follower(4, "a.example"),
        follower(5, "c.example", shared=False),
        follower(2, "c.example", shared=False),  # the same follower twice
    ]
    assert inboxes_for(followers) == [
        "https://b.example/inbox",
        "https://c.example/users/u2/inbox",
        "https://a.example/inbox",
        "https://c.example/users/u5/inbox",
    ]


def test_empty_shared_inbox_falls_back_and_empty_inboxes_are_skipped() -> None:
    followers = [
        FollowerAddress("https://x.example/u", "https://x.example/u/inbox", ""),
        FollowerAddress("https://y.example/u", "", None),
        FollowerAddress("https://z.example/u", " https://z.example/u/inbox ", "  "),
    ]
    assert inboxes_for(followers) == ["https://x.example/u/inbox", "https://z.example/u/inbox"]


def test_streaming_variant_is_lazy() -> None:
    def endless() -> Iterator[FollowerAddress]:
        for n in itertools.count():
            yield follower(n, host=f"h{n % 3}.example")

    stream = iter_inboxes(endless())
    assert list(itertools.islice(stream, 3)) == [
        "https://h0.example/inbox",
        "https://h1.example/inbox",
        "https://h2.example/inbox",
    ]


@given(
    st.lists(
        st.builds(
            FollowerAddress,
            actor_id=st.just("https://x/u"),
            inbox=st.sampled_from(["https://a/1", "https://a/2", "https://b/1", ""]),
            shared_inbox=st.sampled_from([None, "", "https://a/shared", "https://b/shared"]),
        ),
        max_size=30,
    )
)
def test_properties(followers: list[FollowerAddress]) -> None:
    got = inboxes_for(followers)
    assert got == list(iter_inboxes(followers))
    assert len(got) == len(set(got))
    expected_set = {f.shared_inbox or f.inbox for f in followers} - {""}
    assert set(got) == expected_set
    # first-seen order
    firsts = [f.shared_inbox or f.inbox for f in followers if (f.shared_inbox or f.inbox)]
    assert got == list(dict.fromkeys(firsts))


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Mastodon.Social/inbox", "mastodon.social"),
        ("https://mastodon.social:443/inbox", "mastodon.social"),
        ("http://example.com:80/inbox", "example.com"),
        ("https://example.com:8443/inbox", "example.com:8443"),
        ("http://127.0.0.1:8000/inbox", "127.0.0.1:8000"),
        ("https://[::1]:8443/inbox", "[::1]:8443"),
        ("https://user@example.com/inbox", "example.com"),
    ],
)
def test_inbox_host(url: str, host: str) -> None:
    assert inbox_host(url) == host


@pytest.mark.parametrize("url", ["/inbox", "not a url", "https:///inbox", "https://h:port/"])
def test_inbox_host_rejects_urls_without_host(url: str) -> None:
    with pytest.raises(ValueError):
        inbox_host(url)
