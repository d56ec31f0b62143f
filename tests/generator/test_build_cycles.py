"""A finished build is freed by reference counting: nothing it made sits in reference cycles.

At 10,000 posts a cycle through the planner kept ~160,000 objects (posts, outputs, their
render closures) alive until the cyclic collector ran: 0.075 s at interpreter exit for a
fresh `fedipress build`, and the dev server's memory stayed up between builds.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.config import load_config
from fedipress.generator.build import Builder

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# Types a build makes per post or per plan; none may be left for the cyclic collector.
BUILD_TYPES = {"Post", "Output", "Site", "Tag", "_Planner", "_Pages", "_PlannerHolder",
               "_Objects", "_Holder", "_Keys", "Builder", "FederationManifest"}


def _site(dest: Path) -> Path:
    shutil.copytree(FIXTURES / "sites" / "basic", dest)
    state = dest / ".fedipress"
    state.mkdir()
    shutil.copy(FIXTURES / "keys" / "blog-private.pem", state / "private-key.pem")
    os.chmod(state / "private-key.pem", 0o600)
    shutil.copy(FIXTURES / "keys" / "blog-public.pem", dest / "fedipress-public-key.pem")
    return dest


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """gc.garbage of one collection with DEBUG_SAVEALL (every unreachable object, cycles
    and what hangs off them); the collector's state is restored after."""
    found: list[object] = []
    debug, enabled = gc.get_debug(), gc.isenabled()
    gc.collect()  # earlier garbage (other tests', pytest's) is not this test's
    gc.garbage.clear()
    yield found
    gc.set_debug(debug)
    gc.garbage.clear()
    if enabled:
        gc.enable()


def _collect_saved(found: list[object]) -> Counter[str]:
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return Counter(type(o).__name__ for o in found if type(o).__name__ in BUILD_TYPES)


def _build_and_drop(site: Path, *, edit: bool) -> None:
    builder = Builder(load_config(site / "site.yaml"), log=lambda _l: None)
    builder.build(now=NOW)
    if edit:  # a second, targeted build by the same builder (what the dev server does)
        post = sorted((site / "content" / "posts").rglob("*.md"))[0]
        post.write_text(post.read_text(encoding="utf-8") + "\nOne more line.\n",
                        encoding="utf-8")
        builder.build([post], now=NOW)
    del builder


@pytest.mark.parametrize("edit", [False, True], ids=["one-build", "rebuild"])
def test_finished_build_leaves_no_cycles(tmp_path: Path, saved_garbage: list[object],
                                         edit: bool) -> None:
    site = _site(tmp_path / "blog")
    _build_and_drop(site, edit=False)  # cold: the parse cache fills
    gc.collect()  # (a cold build's Markdown instances are the markdown package's cycles)
    gc.garbage.clear()
    _build_and_drop(site, edit=edit)
    left = _collect_saved(saved_garbage)
    assert not left, f"objects of a finished build freed only by the cyclic collector: {left}"
