"""The content files as data, shared by discovery (content.py), front matter parsing
(frontmatter.py) and the parse cache (parsecache.py).

Only data lives here, so that those three import it and not each other: content.py uses the
other two, and neither of them reaches back into content.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["SourceFile"]


@dataclass(frozen=True)
class SourceFile:
    """One file under content/. `source` is relative to the content directory (posix)."""

    kind: Literal["post", "page", "static"]
    source: str
    path: Path
    bundle_files: tuple[str, ...] = ()  # bundles only: files beside index.md, relative to it


@dataclass(frozen=True)
class _Parsed:
    """A content file with its front matter checked, before Markdown rendering."""

    source: SourceFile
    file: str  # as errors name it: content/posts/x.md
    fields: dict[str, Any]  # Post keyword arguments except the rendered ones
    body: str  # "" when the parse came from the post cache (`key` names its rendering)
    path_line: int  # where to point when its output path collides
    key: str  # _render_key of the body: names the Markdown rendering in the cache
    fields_hash: str  # _fields_hash(fields): with `key`, the Post's identity
