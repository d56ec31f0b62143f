"""progress.py: the terminal progress bar shared by `fedipress build` and `publish`."""

from __future__ import annotations

import io

from fedipress.progress import Progress, render_bar


def test_render_bar_fills_in_proportion_and_names_the_count() -> None:
    assert render_bar(0, 4, label="delivering", width=8) == "delivering [........] 0/4 (0%)"
    assert render_bar(3, 4, width=8) == "[######..] 3/4 (75%)"
    assert render_bar(1_204, 1_204, width=4) == "[####] 1,204/1,204 (100%)"
    assert render_bar(5, 3, width=4) == "[####] 5/5 (100%)"  # more done than planned: full
    assert render_bar(0, 0, width=4) == "[####] 0/0 (100%)"


class _Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_redraws_at_most_every_interval_and_always_at_the_end() -> None:
    out, clock = io.StringIO(), _Clock()
    bar = Progress(10, enabled=True, label="x", stream=out, clock=clock, min_interval=1.0)
    bar.advance()
    bar.advance()  # same instant: not redrawn
    clock.now += 1.0
    bar.advance()
    for _ in range(7):
        bar.advance()  # the last one reaches the total: drawn whatever the interval
    assert [line for line in out.getvalue().split("\r") if line] == [
        "x [###...........................] 1/10 (10%)",
        "x [#########.....................] 3/10 (30%)",
        "x [##############################] 10/10 (100%)",
    ]
    bar.close()
    assert out.getvalue().endswith("10/10 (100%)\n")  # a delivery's summary starts below


def test_count_never_goes_back_and_results_are_accepted() -> None:
    out, clock = io.StringIO(), _Clock()
    bar = Progress(100, enabled=True, stream=out, clock=clock, min_interval=0.0)
    bar.update(64)
    bar.update(32)  # a batch finished out of order reports a lower count
    bar.advance("a delivery result", by=4)
    assert bar.done == 68
    assert out.getvalue().split("\r")[-1].endswith(" 68/100 (68%)")


def test_disabled_or_empty_or_early_writes_nothing() -> None:
    out, clock = io.StringIO(), _Clock()
    for bar in (Progress(5, enabled=False, stream=out, clock=clock),
                Progress(0, enabled=True, stream=out, clock=clock),
                Progress(5, enabled=True, stream=out, clock=clock, show_after=1.0)):
        bar.advance()
        bar.close()
    assert out.getvalue() == ""
    late = Progress(5, enabled=True, stream=out, clock=clock, show_after=1.0,
                    since=clock.now - 2.0, erase=True)
    late.advance()
    late.close()
    assert out.getvalue() == "\r[######........................] 1/5 (20%)\r\033[K"
