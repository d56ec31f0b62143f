"""A small microformats2 reader: the items of an HTML page as mf2 JSON (type, properties,
children), enough for the conversation's markup (h-entry, h-cite, h-card; p-, u-, dt-, e-
properties with their values read as the microformats2 parsing rules do for the elements
the themes use). Not a full parser: no implied properties, no backcompat classes.

    items = mf2_items(html)       # the top-level items, nested items under their properties

Shared by the page tests and the end-to-end conversation test; `parse_items` is the independent
reading, by mf2py."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from typing import Any

__all__ = ["mf2_items", "parse_items"]


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


@dataclasses.dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    children: list[_Node | str] = dataclasses.field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def html(self) -> str:
        out = []
        for c in self.children:
            if isinstance(c, str):
                out.append(c)
            else:
                out.append(f"<{c.tag}>{c.html()}</{c.tag}>")
        return "".join(out)


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


_PROP = re.compile(r"^(p|u|dt|e)-([a-z0-9-]+)$")


def _value(node: _Node, prefix: str) -> Any:
    a = node.attrs
    if prefix == "u":
        for key in ("href", "src", "value"):
            if key in a:
                return a[key]
    if prefix == "dt":
        for key in ("datetime", "value"):
            if key in a:
                return a[key]
    if prefix == "e":
        return {"html": node.html().strip(), "value": node.text().strip()}
    if prefix == "p" and node.tag == "data":
        return a.get("value", "")
    if prefix == "p" and node.tag == "img":
        return a.get("alt", "")
    return " ".join(node.text().split())


def _item(node: _Node) -> dict[str, Any]:
    item: dict[str, Any] = {"type": [c for c in node.classes if c.startswith("h-")],
                            "properties": {}, "children": []}
    _walk(node, item)
    return item


def _walk(node: _Node, item: dict[str, Any]) -> None:
    for child in node.children:
        if isinstance(child, str):
            continue
        props = [m.groups() for c in child.classes if (m := _PROP.match(c))]
        if any(c.startswith("h-") for c in child.classes):
            nested = _item(child)
            for _, name in props:
                item["properties"].setdefault(name, []).append(nested)
            if not props:
                item["children"].append(nested)
            continue
        for prefix, name in props:
            item["properties"].setdefault(name, []).append(_value(child, prefix))
        _walk(child, item)


def mf2_items(html: str) -> list[dict[str, Any]]:
    tree = _Tree()
    tree.feed(html)
    top: dict[str, Any] = {"properties": {}, "children": []}
    _walk(tree.root, top)
    return list(top["children"])


def parse_items(html: str, url: str) -> tuple[list[dict[str, Any]], str]:
    """The page's top-level items as mf2py reads them (an implementation that is not ours, in
    the test extras), with the name of the reader."""
    import mf2py  # type: ignore[import-untyped,unused-ignore]

    parsed: dict[str, Any] = mf2py.parse(doc=html, url=url)
    return list(parsed["items"]), "mf2py"
