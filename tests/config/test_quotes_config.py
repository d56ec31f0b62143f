"""site.yaml's quote policy and count refresh interval: defaults, values, one-line mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.config import MINIMAL, load, problems


def test_defaults(tmp_path: Path) -> None:
    fedi = load(tmp_path, MINIMAL).fediverse
    assert (fedi.quotes, fedi.count_refresh_minutes) == ("anyone", 15)


@pytest.mark.parametrize("policy", ["anyone", "followers", "nobody"])
def test_each_policy(tmp_path: Path, policy: str) -> None:
    text = MINIMAL + f"fediverse:\n  quotes: {policy}\n  count_refresh_minutes: 0\n"
    fedi = load(tmp_path, text).fediverse
    assert (fedi.quotes, fedi.count_refresh_minutes) == (policy, 0)


def test_mistakes_are_reported_with_their_lines(tmp_path: Path) -> None:
    text = MINIMAL + "fediverse:\n  quotes: friends\n  count_refresh_minutes: -5\n"
    assert problems(tmp_path, text) == [
        (6, "fediverse.quotes: must be one of anyone | followers | nobody, got 'friends'"),
        (7, "fediverse.count_refresh_minutes: must be at least 0, got -5"),
    ]
