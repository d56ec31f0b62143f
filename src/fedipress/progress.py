"""The progress bar on a terminal, for builds and deliveries; silent elsewhere (CI and pipes
get one summary line from their command instead).

    bar = Progress(total=1204, enabled=sys.stderr.isatty(), label="delivering")
    for item in work:
        ...
        bar.advance()
    bar.close()

No dependency and no threads: the bar redraws at most every `min_interval` seconds, on the
same line, with a carriage return. `show_after` keeps short runs quiet: nothing is drawn
until that many seconds after `since` (a build passes its own start, so a phase that begins
after the build has run for a second shows at once). Disabled, every method is a no-op.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "render_bar"]

ERASE_LINE = "\r\033[K"


def render_bar(done: int, total: int, *, label: str = "", width: int = 30) -> str:
    """`label [#######.......................] 312/1,204 (25%)` (pure, for tests too)."""
    total = max(total, done, 0)
    filled = width if total == 0 else min(width, done * width // total)
    bar = "#" * filled + "." * (width - filled)
    percent = 100 if total == 0 else 100 * done // total
    prefix = f"{label} " if label else ""
    return f"{prefix}[{bar}] {done:,}/{total:,} ({percent}%)"


class Progress:
    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        label: str = "",
        stream: TextIO | None = None,
        min_interval: float = 0.1,
        clock: Callable[[], float] | None = None,
        show_after: float = 0.0,
        since: float | None = None,
        erase: bool = False,
    ) -> None:
        """`erase`: close() clears the line (a build's own summary replaces it) instead of
        drawing it complete and ending it."""
        self.total = total
        self.done = 0
        self.enabled = enabled and total > 0
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval
        self.clock = clock if clock is not None else time.monotonic
        self.show_after = show_after
        self.start = self.clock() if since is None else since
        self.erase = erase
        self._last = float("-inf")
        self._drawn = False

    def advance(self, _item: Any = None, *, by: int = 1) -> None:
        """Count `by` more items done (accepts and ignores one argument, e.g. a result)."""
        self.update(self.done + by)

    def update(self, done: int) -> None:
        """Set the count of items done. It never goes back: parallel workers report
        batches out of order."""
        if done > self.done:
            self.done = done
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start < self.show_after:
            return
        if now - self._last >= self.min_interval or self.done >= self.total:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        self.stream.write("\r" + render_bar(self.done, self.total, label=self.label))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Finish the bar's line, so what follows starts on its own."""
        if not (self.enabled and self._drawn):
            return
        if self.erase:
            self.stream.write(ERASE_LINE)
        else:
            self._draw()
            self.stream.write("\n")
        self.stream.flush()
