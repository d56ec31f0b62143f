"""site.yaml -> SiteConfig: read the file, parse the YAML, report every problem at once.

`load_config` is the only file read in configuration; `parse_config` does the rest from text
(and, asked to, checks that the content folder exists).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from yaml.error import Mark
from yaml.nodes import MappingNode

from ..errors import ConfigError, FedipressError, Problem
from .schema import Checker, describe, is_null, node_line
from .sections import read_site
from .settings import SiteConfig

__all__ = ["load_config", "parse_config", "yaml_syntax_error"]

# A line that looks like the next `key: value`: inside a quoted value it means the quote was
# left open further up.
_KEY_LINE = re.compile(r"^[ \t]*[A-Za-z_][\w-]*:(?:[ \t]|$)", re.MULTILINE)
_CLOSERS = {"[": "]", "{": "}"}


def _char_at(text: str, mark: Mark) -> str:
    """The character at `mark` by line and column (which libyaml and pyyaml agree on; the
    index may count bytes)."""
    lines = text.splitlines()
    if mark.line < len(lines) and mark.column < len(lines[mark.line]):
        return lines[mark.line][mark.column]
    return ""


def _runaway_quote(text: str, before_line: int) -> tuple[int, int, str] | None:
    """(opening line, closing line, quote) of the first quoted value, before `before_line`
    (0-based), that runs over lines which look like `key: value`: a quote left open there
    swallowed them until the next quote character closed it."""
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if not isinstance(token, yaml.ScalarToken) or token.style not in ('"', "'"):
                continue
            start, end = token.start_mark, token.end_mark
            if start.line > before_line:
                return None
            # Only the lines after the opening one: that one is a `key: "value` itself.
            after = text.find("\n", start.index, end.index)
            if after >= 0 and _KEY_LINE.search(text[after + 1:end.index]):
                return start.line, end.line, token.style
    except yaml.YAMLError:
        return None
    return None


def yaml_syntax_error(error: yaml.MarkedYAMLError, text: str) -> tuple[int | None, str]:
    """(line of the mistake in `text`, 1-based; what is wrong and what to do) for a YAML
    syntax error in `text`.

    PyYAML reports where it gave up, which for a quote or bracket left open is far below the
    mistake (an unclosed quote on line 4 is found at the end of the file). The line that
    opened the quoted value or the bracket is the one to fix."""
    problem = error.problem or error.context or "cannot be parsed"
    found, context = error.problem_mark, error.context_mark
    if error.context == "while scanning a quoted scalar" and context is not None:
        quote = _char_at(text, context) or '"'
        return context.line + 1, (
            f"the {quote} opened on this line is never closed; add the"
            f" closing {quote} at the end of the value"
        )
    if found is not None:
        runaway = _runaway_quote(text, found.line)
        if runaway is not None:
            opened, closed, quote = runaway
            return opened + 1, (
                f"the {quote} opened on this line is closed only on line"
                f" {closed + 1}, so the lines in between became part of this value; add the"
                f" closing {quote} on this line"
            )
    if (
        (error.context or "").startswith("while parsing a flow")
        and context is not None
        and found is not None
        and found.line > context.line
    ):
        bracket = _char_at(text, context) or "["
        closer = _CLOSERS.get(bracket, "]")
        return context.line + 1, (
            f"the {bracket} opened on this line is not closed with {closer}"
            f" (YAML stopped on line {found.line + 1}: {problem}); close it on this line"
        )
    mark = found or context
    if mark is None:
        return None, problem
    line = mark.line + 1
    if "end of stream" in problem or mark.line >= len(text.splitlines()):
        # Found at the end of the file: what is missing belongs to the last line written.
        written = [n for n, t in enumerate(text.splitlines(), 1) if t.strip()]
        line = written[-1] if written else 1
    return line, (
        f"{problem}; check the indentation, colons, brackets and quotes on this line and the"
        " one before"
    )


def load_config(
    path: Path | str = "site.yaml", *, base_url: str | None = None, require_content: bool = False
) -> SiteConfig:
    """Read and validate site.yaml; `base_url` overrides the file's for one run.

    `require_content` (for build, serve, publish and new) makes a missing content folder a
    problem: a build from it would have no posts, delete every built post page and have
    publish announce a Delete for each. Commands that never read content (inbox, keys, …)
    leave it off, so a server holding only site.yaml and the key still runs them.

    Raises ConfigError listing every problem, each as `site.yaml:LINE: message`, or a
    FedipressError when the file does not exist.
    """
    given = str(path)
    file = Path(path)
    if file.is_dir():
        file = file / "site.yaml"
        given = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FedipressError(
            f"{given}: not found (run `fedipress init DIR` to create a new blog, or pass"
            " --config FILE to use another file)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(given, None, "is not UTF-8 text; save it as UTF-8")]) from None
    except OSError as error:
        raise FedipressError(f"{given}: cannot be read ({error.strerror})") from None
    root = Path(os.path.abspath(file)).parent
    return parse_config(
        text, file=given, root=root, base_url=base_url, require_content=require_content
    )


def parse_config(
    text: str,
    *,
    file: str,
    root: Path,
    base_url: str | None = None,
    require_content: bool = False,
) -> SiteConfig:
    """Validate site.yaml's text; `file` is how problems name it, `root` the site directory
    (with `require_content`, checked to hold the content folder; see load_config)."""
    check = Checker(file)
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        line, message = yaml_syntax_error(error, text)
        raise ConfigError([Problem(file, line, f"YAML syntax error: {message}")]) from None
    except yaml.reader.ReaderError as error:
        # A character YAML refuses anywhere (NUL, other control characters); pyyaml names
        # its offset in the text, not its line.
        code = error.character if isinstance(error.character, int) else ord(error.character)
        line = text.count("\n", 0, error.position) + 1
        raise ConfigError(
            [
                Problem(
                    file,
                    line,
                    f"contains the character U+{code:04X}, which YAML does not allow; delete it"
                    " (an editor may show it as ^@, a box or nothing at all)",
                )
            ]
        ) from None
    except yaml.YAMLError as error:
        what = " ".join(str(error).split())
        raise ConfigError([Problem(file, None, f"YAML syntax error: {what}")]) from None
    except RecursionError:
        # pyyaml composes nested [ and { recursively; a few thousand levels exhaust the stack.
        raise ConfigError(
            [
                Problem(
                    file,
                    None,
                    "YAML nesting is too deep (thousands of [ or { inside each other);"
                    " site.yaml needs only a few levels",
                )
            ]
        ) from None
    if document is None or is_null(document):
        raise ConfigError(
            [
                Problem(
                    file,
                    1,
                    "the file is empty; it needs at least `title`, `base_url` and `author:` with"
                    " `name` (`fedipress init` writes a complete example)",
                )
            ]
        )
    if not isinstance(document, MappingNode):
        raise ConfigError(
            [
                Problem(
                    file,
                    node_line(document),
                    f"the top level must be `key: value` lines (a mapping), got"
                    f" {describe(document)}",
                )
            ]
        )
    if check.refuse_tags(document):
        raise ConfigError(sorted(check.problems, key=lambda p: p.line or 0))
    config = read_site(check, document, root, base_url, require_content=require_content)
    if check.problems or config is None:
        raise ConfigError(sorted(check.problems, key=lambda p: p.line or 0))
    return config
