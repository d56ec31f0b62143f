"""Python-Markdown's internals, as the speed-ups of markup_speedups.py reach them: by name.

PURE, like markup.py: a name looked up on a module, nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["internal"]


def internal(module: str, name: str) -> Any:
    """A name from Python-Markdown's internals, or None when this release has no such name.

    Every internal is looked up through here, never imported: a release that drops or moves
    one loses the speed-up that needs it, and fedipress still imports and renders the same
    HTML with the stock passes.
    """
    try:
        return getattr(import_module(module), name, None)
    except ImportError:
        return None
