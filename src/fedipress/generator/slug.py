"""Titles and names -> URL-safe slugs (`[a-z0-9-]`), the same way everywhere.

Pure: string in, string out. Used for post file names (`fedipress new`), default author
handles (config.py) and tag slugs (content.py).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["publishable_name", "slugify"]

# Letters NFKD does not decompose into ASCII plus a combining mark; without this table
# "Straße" would become "strae" and "Ørsted" "rsted".
_TRANSLITERATE = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "ss",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ø": "o",
        "Ø": "o",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "ł": "l",
        "Ł": "l",
        "þ": "th",
        "Þ": "th",
        "ı": "i",
        "\u2019": "'",  # typographic apostrophe, as in "Alice’s"
    }
)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_MAX_LENGTH = 80


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by single hyphens: "Grüße, Café!" -> "grusse-cafe".

    Accents are dropped (NFKD), apostrophes vanish ("Alice's" -> "alices") and anything else
    that is not a letter or digit separates words. Long results are cut at a word boundary
    to at most 80 characters. Returns "" when nothing usable is left (e.g. a title written
    only in a non-Latin script); callers decide on a fallback.
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    # An apostrophe joins a word ("don't" -> "dont") rather than splitting it.
    ascii_text = ascii_text.replace("'", "")
    slug = _NOT_SLUG.sub("-", ascii_text).strip("-")
    if len(slug) > _MAX_LENGTH:
        cut = slug[: _MAX_LENGTH + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut[:_MAX_LENGTH]
        slug = slug.strip("-")
    return slug


def publishable_name(name: str) -> bool:
    """Whether a file name can be published under a URL: a name that is not UTF-8 (read
    from disk as surrogate escapes) has no URL and no place in the manifest."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True
