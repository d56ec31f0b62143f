"""Counts are printed with the right plural (`queued 1 delivery`, never `1 deliveries`), by
one helper; messages link to the published documentation, never to a docs/ path that an
installed package does not have."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fedipress.wording import docs_url, plural
from support.delivery import Blog, make_blog, person, publish
from support.inbox_sink import InboxSink

SRC = Path(__file__).resolve().parents[1] / "src" / "fedipress"


@pytest.mark.parametrize(("count", "noun", "expected"), [
    (0, "delivery", "0 deliveries"),
    (1, "delivery", "1 delivery"),
    (2, "delivery", "2 deliveries"),
    (1, "activity", "1 activity"),
    (3, "activity", "3 activities"),
    (1, "inbox", "1 inbox"),
    (2, "inbox", "2 inboxes"),
    (1_204, "file", "1,204 files"),
    (1, "post", "1 post"),
    (2, "new activity", "2 new activitys"),  # a phrase the table does not know...
])
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_plural_of_an_unknown_phrase_is_given() -> None:
    # ...is given its plural explicitly, as the callers do.
    assert plural(2, "new activity", "new activities") == "2 new activities"
    assert plural(1, "new activity", "new activities") == "1 new activity"


# A count placeholder ({n:,} or {len(x)}) followed by a word in a fixed plural, or by "(s)".
_FIXED_PLURAL = re.compile(r"\{[^{}]*(?::,|len\()[^{}]*\} [a-z]+s\b|\{[^{}]*\} ?[a-z]+\(s\)")


def fixed_plurals(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _FIXED_PLURAL.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_no_count_is_printed_with_a_fixed_plural() -> None:
    found = fixed_plurals(SRC)
    assert not found, "use fedipress.wording.plural():\n" + "\n".join(found)


def test_the_fixed_plural_check_finds_them(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        'a = f"queued {n:,} deliveries"\nb = f"left {len(x)} files"\nc = f"{n} file(s)"\n'
        'd = f"queued {plural(n, \'delivery\')}"\n'
    )
    assert [line.split(":")[1] for line in fixed_plurals(tmp_path)] == ["1", "2", "3"]


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Blog:
    monkeypatch.delenv("FEDIPRESS_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return make_blog(tmp_path / "site")


@pytest.fixture
def sink(blog_public_pem: bytes) -> Iterator[InboxSink]:
    with InboxSink(blog_public_pem) as server:
        yield server


def test_publish_says_queued_1_delivery(blog: Blog, sink: InboxSink,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    blog.post("old", age=timedelta(days=30))
    blog.follow(person(sink, "bob"))
    assert publish(blog, capsys)[0] == 0  # the first publish announces nothing old
    blog.post("new", "Brand new.")
    code, out, _ = publish(blog, capsys, "--dry-run")
    assert "1 activity to 1 inbox" in out, out
    code, out, err = publish(blog, capsys)
    assert code == 0, err
    assert "queued 1 delivery for 1 new activity" in out, out


# --- documentation links ---------------------------------------------------------------------


def test_docs_url() -> None:
    assert docs_url("keys") == "https://github.com/fedipress/fedipress/blob/main/docs/keys.md"
    assert docs_url("docs/inbox.md", "running-it") == (
        "https://github.com/fedipress/fedipress/blob/main/docs/inbox.md#running-it"
    )


def test_every_docs_url_names_an_existing_page() -> None:
    docs = SRC.parents[1] / "docs"
    names = set()
    for path in SRC.rglob("*.py"):
        names |= set(re.findall(r"docs_url\(\s*\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    assert names, "no docs_url() call found"
    missing = sorted(n for n in names if not (docs / f"{n}.md").is_file())
    assert not missing, missing
