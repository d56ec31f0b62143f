"""A YAML syntax error names the line of the mistake, not the line where the YAML parser gave
up: an unclosed quote on line 4 of a 38-line site.yaml used to be reported as `site.yaml:39`.
Both site.yaml and the front matter of content files, through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.generator.scaffold import init_site


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "blog"
    init_site(root)
    monkeypatch.chdir(root)
    # A CI build makes no key pair and would stop at that before reaching the content.
    monkeypatch.delenv("CI", raising=False)
    return root


def build_error(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["build", "-q"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def break_line(path: Path, key: str, new: str) -> int:
    """Replace the line starting with `key` by `new`; its 1-based number."""
    lines = path.read_text().splitlines()
    number = next(n for n, line in enumerate(lines) if line.startswith(key))
    lines[number] = new
    path.write_text("\n".join(lines) + "\n")
    return number + 1


@pytest.mark.parametrize("quote", ['"', "'"])
def test_unclosed_quote_in_site_yaml(blog: Path, capsys: pytest.CaptureFixture[str],
                                     quote: str) -> None:
    site = blog / "site.yaml"
    line = break_line(site, "title:", f"title: {quote}My blog")
    assert len(site.read_text().splitlines()) > line + 20  # far from the end, as reported
    assert build_error(capsys) == (
        f"site.yaml:{line}: YAML syntax error: the {quote} opened on this line is never closed;"
        f" add the closing {quote} at the end of the value"
    )


def test_unclosed_quote_closed_by_a_later_quote(blog: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # A later quoted value closes the runaway one; YAML then fails there, far below.
    site = blog / "site.yaml"
    line = break_line(site, "title:", 'title: "My blog')
    later = break_line(site, "description:", 'description: "A blog" about things')
    assert later > line + 2
    assert build_error(capsys) == (
        f"site.yaml:{line}: YAML syntax error: the \" opened on this line is closed only on"
        f" line {later}, so the lines in between became part of this value; add the closing"
        " \" on this line"
    )


def test_unclosed_bracket_in_site_yaml(blog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = blog / "site.yaml"
    line = break_line(site, "timezone:", "timezone: [UTC")
    error = build_error(capsys)
    assert error.startswith(
        f"site.yaml:{line}: YAML syntax error: the [ opened on this line is not closed with ]"
        f" (YAML stopped on line {line + 1}:"
    ), error


def test_mistake_at_the_end_of_the_file_names_the_last_line(
    blog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = blog / "site.yaml"
    text = site.read_text()
    site.write_text(text + "extra: [a, b\n\n\n")
    last = len(text.splitlines()) + 1
    assert build_error(capsys).startswith(f"site.yaml:{last}: YAML syntax error: the [ opened")


def test_indentation_mistake_keeps_its_own_line(blog: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    site = blog / "site.yaml"
    line = break_line(site, "  bio:", " bio: wrong indentation")
    error = build_error(capsys)
    assert error.startswith(f"site.yaml:{line}: YAML syntax error: "), error
    assert "check the indentation" in error


@pytest.mark.parametrize("quote", ['"', "'"])
def test_unclosed_quote_in_front_matter(blog: Path, capsys: pytest.CaptureFixture[str],
                                        quote: str) -> None:
    post = blog / "content/posts/hello-world.md"
    # Front matter line 2 of the file: `title: Hello, world`; the block has lines below it.
    line = break_line(post, "title:", f"title: {quote}Hello, world")
    assert line == 2
    assert build_error(capsys) == (
        f"content/posts/hello-world.md:{line}: front matter is not valid YAML: the {quote}"
        f" opened on this line is never closed; add the closing {quote} at the end of the value"
    )


def test_unclosed_bracket_in_front_matter(blog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    post = blog / "content/posts/hello-world.md"
    line = break_line(post, "tags:", "tags: [meta")
    error = build_error(capsys)
    assert error.startswith(
        f"content/posts/hello-world.md:{line}: front matter is not valid YAML: the [ opened on"
        " this line is not closed with ]"
    ), error
