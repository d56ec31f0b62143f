"""site.yaml -> SiteConfig: read the file, parse the YAML, report every problem at once.

`load_config` is the only file read in configuration; `parse_config` does the rest from text
(and, asked to, checks that the content folder exists).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from yaml.nodes import MappingNode

from ..errors import ConfigError, FedipressError, Problem
from .schema import Checker, describe, is_null, node_line
from .sections import read_site
from .settings import SiteConfig

__all__ = ["load_config", "parse_config"]


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
        mark = error.problem_mark or error.context_mark
        what = error.problem or error.context or "cannot be parsed"
        raise ConfigError(
            [
                Problem(
                    file,
                    mark.line + 1 if mark is not None else None,
                    f"YAML syntax error: {what}; check the indentation, colons and quotes"
                    " on this line and the one before",
                )
            ]
        ) from None
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
