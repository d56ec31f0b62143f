"""Every public module declares its API in `__all__`, and every name there exists (STYLE.md 6).

Modules are imported for real (not parsed), so names that come from re-exports count and a typo
in `__all__` is caught the same way `from fedipress.x import *` would fail on it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import fedipress


def public_modules(package: ModuleType) -> Iterator[str]:
    """Dotted names of the package and its modules, skipping _private ones (and __main__)."""
    yield package.__name__
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield info.name


def check_exports(module: ModuleType) -> list[str]:
    where = f"{module.__name__} ({module.__file__})"
    exported = module.__dict__.get("__all__")
    if exported is None:
        return [f"{where}: no __all__; list the module's public API in it"]
    if not isinstance(exported, list | tuple) or not all(isinstance(n, str) for n in exported):
        return [f"{where}: __all__ must be a list or tuple of strings, got {exported!r}"]
    problems = [
        f"{where}: __all__ names {name!r}, which the module does not define"
        for name in exported
        if not hasattr(module, name)
    ]
    duplicates = sorted({name for name in exported if exported.count(name) > 1})
    if duplicates:
        problems.append(f"{where}: __all__ lists {', '.join(duplicates)} more than once")
    return problems


MODULES = list(public_modules(fedipress))


def test_the_package_is_walked() -> None:
    # Guard against a vacuous pass (a broken walk would check nothing).
    assert {"fedipress", "fedipress.cli", "fedipress.activitypub.documents", "fedipress.store"} <= (
        set(MODULES)
    )
    assert len(MODULES) >= 30


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_and_defines_all(name: str) -> None:
    problems = check_exports(importlib.import_module(name))
    assert not problems, "\n".join(problems)


# --- the checker fails on bad modules ---------------------------------------------------------


@pytest.fixture
def bad_package(tmp_path: Path) -> Iterator[ModuleType]:
    root = tmp_path / "badpkg_exports"
    root.mkdir()
    (root / "__init__.py").write_text('__all__ = ["missing", "thing", "thing"]\nthing = 1\n')
    (root / "no_all.py").write_text("def f() -> int:\n    return 1\n")
    (root / "not_strings.py").write_text("__all__ = [len]\n")
    (root / "_private.py").write_text("x = 1\n")
    (root / "good.py").write_text('__all__ = ["f"]\n\n\ndef f() -> int:\n    return 1\n')
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("badpkg_exports")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] == "badpkg_exports"]:
            del sys.modules[name]


def test_checker_flags_bad_modules(bad_package: ModuleType) -> None:
    names = list(public_modules(bad_package))
    assert names == [
        "badpkg_exports", "badpkg_exports.good", "badpkg_exports.no_all",
        "badpkg_exports.not_strings",
    ]
    found = {name: check_exports(importlib.import_module(name)) for name in names}
    assert found["badpkg_exports.good"] == []
    assert len(found["badpkg_exports"]) == 2
    assert "names 'missing', which the module does not define" in found["badpkg_exports"][0]
    assert "lists thing more than once" in found["badpkg_exports"][1]
    assert "no __all__" in found["badpkg_exports.no_all"][0]
    assert "list or tuple of strings" in found["badpkg_exports.not_strings"][0]
