"""ARCHITECTURE.md is kept true: it names every part of the package and only paths that exist.

Each check is a function of (document text, folders) so that it is also run on a made-up
package in tmp_path, where it must find what is missing: no check here can pass vacuously.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = REPO / "src" / "fedipress"
DOC = REPO / "ARCHITECTURE.md"

SUBPACKAGES = ("generator", "federation", "cli")

# Folders of a blog (made by a build or kept beside site.yaml), not of this repository.
BLOG_FOLDERS = ("public/", ".fedipress/")

_CODE = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def named(text: str) -> set[str]:
    """Everything written as `code` outside fenced blocks."""
    return set(_CODE.findall(_FENCE.sub("", text)))


def package_parts(package_root: Path) -> list[str]:
    """Top-level modules ("errors.py") and subpackages ("store/") of the package."""
    parts = [p.name for p in package_root.glob("*.py") if p.name != "__main__.py"]
    parts += [p.name + "/" for p in package_root.iterdir()
              if p.is_dir() and (p / "__init__.py").is_file()]
    return sorted(parts)


def unnamed_parts(text: str, package_root: Path) -> list[str]:
    """Parts of the package that the document does not name (as `store/` or `errors.py`)."""
    names = named(text)
    return [part for part in package_parts(package_root) if part not in names]


def path_names(text: str) -> list[str]:
    """The `code` names that are paths: with a "/", or a file name with a known suffix."""
    return sorted(
        name for name in named(text)
        if re.fullmatch(r"[\w.][\w./-]*", name)
        and ("/" in name or name.endswith((".py", ".md", ".yaml", ".toml")))
        and not name.startswith(BLOG_FOLDERS)
    )


def path_exists(name: str, repo: Path, package_root: Path) -> bool:
    """Paths are relative to the repository, or (the package's own) to src/fedipress/."""
    return (repo / name).exists() or (package_root / name).exists()


def outside_references(text: str) -> list[str]:
    """Links and paths that lead out of the repository (it must be readable on its own)."""
    found = [f"link to {target}" for target in re.findall(r"\]\(([^)]*)\)", text)
             if ":" in target or target.startswith("..")]
    found += [f"path {name}" for name in _CODE.findall(text) if "../" in name]
    found += [f"url {url}" for url in re.findall(r"https?://\S+", text)]
    return found


# --- the real document ---------------------------------------------------------------------


def test_the_document_exists_and_is_short() -> None:
    lines = doc_text().splitlines()
    assert 40 < len(lines) < 250, "ARCHITECTURE.md is read in ten minutes: keep it short"


def test_every_subpackage_and_top_level_module_is_named() -> None:
    assert unnamed_parts(doc_text(), PACKAGE_ROOT) == []


@pytest.mark.parametrize("name", path_names(DOC.read_text(encoding="utf-8")))
def test_every_path_named_exists(name: str) -> None:
    assert path_exists(name, REPO, PACKAGE_ROOT), f"ARCHITECTURE.md names {name}: no such path"


def test_the_parts_that_stay_are_named() -> None:
    names = named(doc_text())
    staying = ["activitypub/", "config/", "store/", "errors.py", "model.py", "wording.py",
               "progress.py", "__init__.py", *SUBPACKAGES]
    assert [part for part in staying if part.rstrip("/") + "/" not in names
            and part not in names] == []


def test_nothing_links_outside_the_repository() -> None:
    assert outside_references(doc_text()) == []


def test_each_library_decision_has_its_line() -> None:
    text = doc_text()
    assert "## Libraries and why" in text
    section = text.split("## Libraries and why", 1)[1]
    decisions = [line for line in section.splitlines() if line.startswith("- ")]
    # The ones issue 12 names, each kept or replaced with its reason on one line.
    for subject in ("structured fields", "Progress bar", "HTTP signatures"):
        assert any(subject in line for line in decisions), subject


def test_readme_links_the_architecture() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "](ARCHITECTURE.md)" in readme


# --- the checks fail where they should -----------------------------------------------------


def _made_up_package(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "fedipress"
    (root / "store").mkdir(parents=True)
    for name in ("__init__.py", "errors.py", "model.py", "store/__init__.py", "store/sql.py"):
        (root / name).write_text("")
    (root / "themes").mkdir()  # a data folder, not a subpackage
    return root


def test_unnamed_parts_are_found(tmp_path: Path) -> None:
    root = _made_up_package(tmp_path)
    text = "The face `__init__.py`, `errors.py` and the `store/`.\n```\nmodel.py `model.py`\n```\n"
    assert unnamed_parts(text, root) == ["model.py"]
    assert unnamed_parts(text + "`model.py`", root) == []


def test_missing_paths_are_found(tmp_path: Path) -> None:
    root = _made_up_package(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("")
    text = ("`store/sql.py`, `store/gone.py`, `docs/a.md`, `docs/b.md`, `errors.py`, `nope.py`,"
            " `public/`, `.fedipress/state.db`, `Site`, `init`/`new`")
    names = path_names(text)
    assert names == ["docs/a.md", "docs/b.md", "errors.py", "nope.py", "store/gone.py",
                     "store/sql.py"]
    assert [n for n in names if not path_exists(n, tmp_path, root)] == [
        "docs/b.md", "nope.py", "store/gone.py"]


def test_outside_references_are_found() -> None:
    text = "See [design](../shared/DESIGN.md), `../shared/DESIGN.md`, https://example.org/x and" \
           " [ok](docs/a.md)."
    assert outside_references(text) == [
        "link to ../shared/DESIGN.md", "path ../shared/DESIGN.md", "url https://example.org/x"]
