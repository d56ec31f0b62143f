"""The YAML node reader behind site.yaml: typed values out of nodes, every problem kept.

A `Checker` reads text, numbers, booleans, choices, URLs and lists from a `Section` (one
mapping of the file) and records each mistake as `file:line: message` instead of stopping,
so that the user sees all of them at once (STYLE.md habit 4).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast
from urllib.parse import urljoin

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import Problem
from ..wording import plural
from .values import split_url

__all__ = ["Checker", "Entry", "Section", "describe", "is_null", "node_line"]

_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_YAML_TAG = "tag:yaml.org,2002:"
# The tags yaml.SafeLoader itself knows (and `<<` merge keys). Any other tag is either a
# python/... tag meant to run code, which SafeLoader would refuse anyway, or a local !tag of
# another tool; either way its value would be read as something it is not.
_PLAIN_TAGS = frozenset(
    _YAML_TAG + name
    for name in (
        "null", "bool", "int", "float", "binary", "timestamp", "omap", "pairs", "set", "str",
        "seq", "map", "merge", "value",
    )
)  # fmt: skip


class Entry(NamedTuple):
    key: Node
    value: Node


@dataclass
class Section:
    """One mapping of site.yaml: its dotted `path`, where it starts, and its entries."""

    path: str
    line: int
    entries: dict[str, Entry]

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def line_of(self, key: str) -> int:
        entry = self.entries.get(key)
        return node_line(entry.key) if entry else self.line


def node_line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping (key: value lines)"
    if isinstance(node, SequenceNode):
        return "a list"
    if is_null(node):
        return "nothing"
    return repr(cast(str, node.value))


def _nul_message(name: str) -> str:
    # A "\0" escape in a quoted value: no setting has a use for it, file names cannot hold
    # it (the OS refuses them with a ValueError) and XML feeds cannot carry it.
    return f"{name}: contains a NUL character (\\0); remove it"


def _small_int(node: ScalarNode) -> int | None:
    """The YAML int in `node`, or None when it has too many digits to be a sensible setting.

    int() refuses strings over 4300 digits with a ValueError, and a long sexagesimal
    (1:2:3:…) would take long to build; no setting needs more than a few digits.
    """
    digits = cast(str, node.value).strip().lstrip("+-").replace("_", "").lstrip("0")
    if len(digits) > 100:
        return None
    try:
        return int(yaml.constructor.SafeConstructor().construct_yaml_int(node))
    except ValueError:
        return None


class Checker:
    """Reads typed values out of YAML nodes and collects every problem with its line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def refuse_tags(self, document: Node) -> bool:
        """Record a problem for each node with a tag other than YAML's own; True if any.

        Walks iteratively and visits each node once: an alias (`*a`) shares its node, so a
        "billion laughs" document stays small, and `&a [*a]` makes a cycle.
        """
        found = False
        seen: set[int] = set()
        todo: list[tuple[Node, str]] = [(document, "")]
        while todo:
            node, path = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.tag not in _PLAIN_TAGS:
                tag = node.tag
                shown = "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag
                where = f"{path}: " if path else ""
                self.add(
                    node_line(node),
                    f"{where}the YAML tag {shown} is not allowed in site.yaml; remove it and"
                    " write the plain value",
                )
                found = True
            if isinstance(node, MappingNode):
                for key, value in cast(list[tuple[Node, Node]], node.value):
                    name = cast(str, key.value) if isinstance(key, ScalarNode) else "?"
                    todo.append((key, path or name))
                    todo.append((value, f"{path}.{name}" if path else name))
            elif isinstance(node, SequenceNode):
                for index, item in enumerate(cast(list[Node], node.value)):
                    todo.append((item, f"{path}[{index + 1}]"))
        return found

    def section(self, node: Node, path: str, line: int, known: Sequence[str]) -> Section:
        entries: dict[str, Entry] = {}
        if not isinstance(node, MappingNode):
            return Section(path, line, entries)
        where = f" in {path}" if path else ""
        for key_node, value_node in cast(list[tuple[Node, Node]], node.value):
            if not isinstance(key_node, ScalarNode):
                self.add(
                    node_line(key_node),
                    f"a key{where} must be a plain word, got {describe(key_node)}",
                )
                continue
            key = cast(str, key_node.value)
            if key in entries:
                self.add(
                    node_line(key_node),
                    f"duplicate key {key!r}{where} (first on line"
                    f" {node_line(entries[key].key)}); keep only one",
                )
            elif key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
                self.add(node_line(key_node), f"unknown key {key!r}{where}; {hint}")
            else:
                entries[key] = Entry(key_node, value_node)
        return Section(path, line, entries)

    def subsection(
        self, parent: Section, key: str, known: Sequence[str], *, required: str | None = None
    ) -> Section | None:
        entry = parent.entries.get(key)
        if entry is None:
            if required:
                self.add(
                    parent.line, f"missing required section {parent.name(key)!r}; add `{required}`"
                )
            return None
        if is_null(entry.value):
            # `feeds:` with nothing under it means "all defaults".
            return Section(parent.name(key), node_line(entry.key), {})
        if not isinstance(entry.value, MappingNode):
            self.add(
                node_line(entry.key),
                f"{parent.name(key)}: expected indented `key: value`"
                f" lines (a mapping), got {describe(entry.value)}",
            )
            return None
        return self.section(entry.value, parent.name(key), node_line(entry.key), known)

    def _scalar(self, section: Section, key: str, required: str | None) -> Entry | None:
        entry = section.entries.get(key)
        if entry is None or is_null(entry.value):
            if required:
                where = section.line if entry is None else node_line(entry.key)
                what = "missing required key" if entry is None else "empty required key"
                self.add(where, f"{what} {section.name(key)!r}; add e.g. `{required}`")
            return None
        return entry

    def text(self, section: Section, key: str, *, required: str | None = None) -> str | None:
        entry = self._scalar(section, key, required)
        if entry is None:
            return None
        if not isinstance(entry.value, ScalarNode):
            self.add(
                node_line(entry.key),
                f"{section.name(key)}: expected text, got {describe(entry.value)}",
            )
            return None
        # The source text, not the YAML 1.1 reading: `language: no` is Norwegian, not False,
        # and `title: 1984` is a title.
        value = cast(str, entry.value.value)
        if "\0" in value:
            self.add(node_line(entry.key), _nul_message(section.name(key)))
            return None
        if required and not value.strip():
            self.add(
                node_line(entry.key),
                f"{section.name(key)}: must not be empty; add e.g. `{required}`",
            )
            return None
        return value

    def integer(self, section: Section, key: str, *, minimum: int, maximum: int) -> int | None:
        entry = self._scalar(section, key, None)
        if entry is None:
            return None
        node = entry.value
        if not (isinstance(node, ScalarNode) and node.tag == _INT):
            self.add(
                node_line(entry.key),
                f"{section.name(key)}: expected a number, got {describe(node)}",
            )
            return None
        source = cast(str, node.value)
        number = _small_int(node)
        negative = source.lstrip().startswith("-")
        shown = source
        if len(source) > 24:
            shown = f"{source[:12]}… ({plural(len(source), 'character')})"
        if (number is None and negative) or (number is not None and number < minimum):
            self.add(
                node_line(entry.key),
                f"{section.name(key)}: must be at least {minimum}, got {shown}",
            )
            return None
        if number is None or number > maximum:
            self.add(
                node_line(entry.key),
                f"{section.name(key)}: too large; use a number from {minimum} to {maximum},"
                f" got {shown}",
            )
            return None
        return number

    def boolean(self, section: Section, key: str) -> bool | None:
        entry = self._scalar(section, key, None)
        if entry is None:
            return None
        node = entry.value
        if not (isinstance(node, ScalarNode) and node.tag == _BOOL):
            self.add(
                node_line(entry.key),
                f"{section.name(key)}: expected true or false, got {describe(node)}",
            )
            return None
        return yaml.constructor.SafeConstructor().construct_yaml_bool(node)

    def choice(self, section: Section, key: str, options: Sequence[str]) -> str | None:
        value = self.text(section, key)
        if value is None:
            return None
        if value not in options:
            self.add(
                section.line_of(key),
                f"{section.name(key)}: must be one of {' | '.join(options)}, got {value!r}",
            )
            return None
        return value

    def url(
        self,
        section: Section,
        key: str,
        base: str,
        *,
        required: str | None = None,
        schemes: Sequence[str] = ("http", "https"),
    ) -> str | None:
        """An absolute URL, or a site-relative one ("/images/a.svg") resolved against base."""
        value = self.text(section, key, required=required)
        if value is None:
            return None
        value = value.strip()
        parts = split_url(value)
        if parts is None:
            self.add(
                section.line_of(key),
                f"{section.name(key)}: cannot be read as a URL, got {value!r}; close the"
                " [ ] around an IPv6 address and keep the port a number up to 65535",
            )
            return None
        if parts.scheme:
            if parts.scheme not in schemes or (parts.scheme != "mailto" and not parts.hostname):
                self.add(
                    section.line_of(key),
                    f"{section.name(key)}: expected an https:// URL"
                    f" or a path on this site such as /images/me.png, got {value!r}",
                )
                return None
            return value
        if value.startswith("//"):
            self.add(
                section.line_of(key),
                f"{section.name(key)}: write the scheme too"
                f" (https:{value}) or a path on this site, got {value!r}",
            )
            return None
        return urljoin(base, value.lstrip("/"))

    def _sequence(self, section: Section, key: str) -> list[Node]:
        entry = self._scalar(section, key, None)
        if entry is None:
            return []
        if not isinstance(entry.value, SequenceNode):
            self.add(
                node_line(entry.key),
                f"{section.name(key)}: expected a list (lines starting"
                f" with '- '), got {describe(entry.value)}",
            )
            return []
        return cast(list[Node], entry.value.value)

    def list_of_text(self, section: Section, key: str) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for node in self._sequence(section, key):
            if isinstance(node, ScalarNode) and "\0" in cast(str, node.value):
                self.add(node_line(node), _nul_message(section.name(key)))
            elif isinstance(node, ScalarNode) and not is_null(node):
                out.append((node_line(node), cast(str, node.value)))
            else:
                self.add(
                    node_line(node),
                    f"{section.name(key)}: each entry must be text, got {describe(node)}",
                )
        return out

    def list_of_checked(
        self, section: Section, key: str, clean: Callable[[str], tuple[str, str | None]]
    ) -> list[str]:
        """A list of text whose entries `clean` checks; each refused entry is a problem on its
        own line, reported as `section.key: <what clean said>`."""
        out: list[str] = []
        for line, value in self.list_of_text(section, key):
            value, error = clean(value)
            if error:
                self.add(line, f"{section.name(key)}: {error}")
            else:
                out.append(value)
        return out

    def list_of_mappings(
        self, section: Section | None, key: str, known: Sequence[str]
    ) -> list[Section]:
        if section is None:
            return []
        out: list[Section] = []
        for index, node in enumerate(self._sequence(section, key)):
            path = f"{section.name(key)}[{index + 1}]"
            if not isinstance(node, MappingNode):
                self.add(
                    node_line(node),
                    f"{path}: expected `{known[0]}:` and `{known[1]}:` lines, got {describe(node)}",
                )
                continue
            out.append(self.section(node, path, node_line(node), known))
        return out
