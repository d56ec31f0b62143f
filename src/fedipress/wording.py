"""Small helpers for what fedipress prints: counted nouns and links to the documentation.

An installed package has no docs/ folder, so every message that sends the reader to the
documentation links to the project's published copy (docs_url) instead of naming a path.
"""

from __future__ import annotations

__all__ = ["DOCS_BASE", "PROJECT_URL", "docs_url", "plural"]

PROJECT_URL = "https://github.com/fedipress/fedipress"
DOCS_BASE = f"{PROJECT_URL}/blob/main/docs/"

# Nouns whose plural is not the noun + "s" (the ones fedipress counts).
_IRREGULAR = {
    "delivery": "deliveries",
    "activity": "activities",
    "reply": "replies",
    "entry": "entries",
    "inbox": "inboxes",
    "match": "matches",
    "is": "are",
    "was": "were",
    "has": "have",
    "this": "these",
}


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """`1 delivery`, `2 deliveries`, `0 posts`: the count (with thousands separators) and the
    noun in the form that count takes; `plural_form` for a noun not known here."""
    if count == 1:
        return f"{count:,} {noun}"
    many = plural_form or _IRREGULAR.get(noun) or f"{noun}s"
    return f"{count:,} {many}"


def docs_url(name: str, heading: str | None = None) -> str:
    """The published page of docs/NAME.md (and its `#heading` anchor, if given)."""
    name = name.removeprefix("docs/").removesuffix(".md")
    anchor = f"#{heading}" if heading else ""
    return f"{DOCS_BASE}{name}.md{anchor}"
