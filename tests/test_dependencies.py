"""The dependency lock and the set-up commands a new user runs.

A fresh clone must be green on any day: scripts/test installs the exact versions of
requirements/lock.txt into a virtual environment of its own, and the README's two commands are
the ones CI runs. These tests fail when the lock no longer satisfies pyproject.toml, when a
direct dependency is missing from it, when the environment under test drifted from it, or when
the README, scripts/test and .ci/run stop agreeing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements" / "lock.txt"


def _project() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


def _direct_requirements() -> list[Requirement]:
    project = _project()
    runtime = project["dependencies"]
    extras = project["optional-dependencies"]
    assert isinstance(runtime, list) and isinstance(extras, dict)
    return [Requirement(text) for text in [*runtime, *extras["test"]]]


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_direct_dependency_is_locked_at_a_version_its_range_allows() -> None:
    pins = _locked()
    problems = []
    for requirement in _direct_requirements():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name}: not in requirements/lock.txt")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement.name}=={pins[name]} is outside {requirement}")
    assert not problems, "; ".join(problems) + " (refresh with scripts/lock)"


def test_the_lock_says_how_it_was_made_and_how_to_refresh_it() -> None:
    header = LOCK.read_text(encoding="utf-8").splitlines()[:3]
    assert any("uv pip compile pyproject.toml --extra test" in line for line in header)
    assert any("refresh: scripts/lock" in line for line in header)
    lock_script = REPO / "scripts" / "lock"
    assert os.access(lock_script, os.X_OK)
    assert "-o requirements/lock.txt" in lock_script.read_text(encoding="utf-8")


def test_the_environment_under_test_is_the_locked_one() -> None:
    """Under scripts/test every installed distribution the lock names has the locked version."""
    if os.environ.get("FEDIPRESS_DEPS"):
        pytest.skip("scripts/test-deps runs on purpose against other versions than the lock")
    venv = os.environ.get("VIRTUAL_ENV")
    if not venv or Path(sys.prefix).resolve() != Path(venv).resolve():
        pytest.skip("not run by scripts/test (no virtual environment of its own)")
    drift = []
    for name, version in _locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a platform-specific pin (colorama on Windows) that does not apply here
        if installed != version:
            drift.append(f"{name} {installed} (locked {version})")
    assert not drift, "installed versions differ from requirements/lock.txt: " + ", ".join(drift)


def test_scripts_test_makes_a_fresh_environment_from_the_lock() -> None:
    script = (REPO / "scripts" / "test").read_text(encoding="utf-8")
    assert "python3 -m venv --clear" in script
    assert "requirements/lock.txt" in script
    assert re.search(r"--constraint \"\$deps\"", script)
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "export CI=true" in ci and "scripts/test" in ci


def test_readme_opens_with_the_two_set_up_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert block, "README.md has no set-up commands"
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2, commands
    install, tests = commands
    assert "-c requirements/lock.txt" in install and "fedipress build" in install
    assert tests.split("#")[0].strip() == "scripts/test"


def test_test_deps_refuses_an_unknown_set_of_versions() -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "test-deps"), "oldest"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "usage: scripts/test-deps newest|lowest" in result.stderr
