"""A tiny progress bar for terminals; silent elsewhere (CI prints one summary line instead).

    bar = Progress(total=1204, enabled=sys.stderr.isatty(), label="delivering")
    for item in work:
        ...
        bar.advance()
    bar.close()

No dependency and no threads: the bar redraws at most every `min_interval` seconds, on the
same line, with a carriage return. Disabled, every method is a no-op.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "render_bar"]


def render_bar(done: int, total: int, *, label: str = "", width: int = 30) -> str:
    """`label [#########.....] 312/1,204` (pure, for tests and other callers)."""
    total = max(total, done, 0)
    filled = width if total == 0 else min(width, done * width // total)
    bar = "#" * filled + "." * (width - filled)
    prefix = f"{label} " if label else ""
    return f"{prefix}[{bar}] {done:,}/{total:,}"


class Progress:
    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        label: str = "",
        stream: TextIO | None = None,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled and total > 0
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval
        self.clock = clock
        self._last = float("-inf")
        self._drawn = False

    def advance(self, _item: Any = None, *, by: int = 1) -> None:
        """Count `by` more items done (accepts and ignores one argument, e.g. a result)."""
        self.done += by
        if not self.enabled:
            return
        now = self.clock()
        if now - self._last >= self.min_interval or self.done >= self.total:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        self.stream.write("\r" + render_bar(self.done, self.total, label=self.label))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Finish the bar's line, so the summary that follows starts on its own."""
        if self.enabled and self._drawn:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
