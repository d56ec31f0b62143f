"""The CLI documents itself and the documentation keeps up with it (STYLE.md habit 8).

Every command and subcommand (walked from fedipress.cli.build_parser(), so a new one is covered
the moment it exists) has help text, an "example:" in its description that parses, and a mention
in README.md or docs/*.md; `--help` runs for each one as a real process; links in the docs point
to files (and headings) that exist.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedipress.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("followers", "add")
    help: str | None
    parser: argparse.ArgumentParser

    @property
    def name(self) -> str:
        return " ".join(self.path)


def walk_commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[Command]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                path = (*prefix, name)
                yield Command(path, helps.get(name), sub)
                yield from walk_commands(sub, path)


def examples_of(command: Command) -> list[str]:
    """The command lines listed under "example:" in the description."""
    description = command.parser.description or ""
    _, found, after = description.partition("example:")
    if not found:
        return []
    return [line.strip() for line in after.splitlines() if line.strip().startswith("fedipress")]


def check_command(command: Command, docs_text: str, parser: argparse.ArgumentParser) -> list[str]:
    """What is missing from one command's documentation, as readable problems."""
    problems = []
    if not (command.help or "").strip():
        problems.append(f"fedipress {command.name}: no help text (add_parser(..., help=...))")
    examples = examples_of(command)
    if not examples:
        problems.append(
            f"fedipress {command.name}: its description has no 'example:' with a command line"
        )
    for example in examples:
        if not example.startswith(f"fedipress {command.name}"):
            problems.append(f"fedipress {command.name}: example {example!r} is another command")
            continue
        try:
            parser.parse_args(shlex.split(example)[1:])
        except SystemExit:
            problems.append(f"fedipress {command.name}: example {example!r} does not parse")
    words = r"\s+".join(re.escape(word) for word in command.path)
    if not re.search(rf"\bfedipress\s+{words}(?![\w-])", docs_text):
        problems.append(
            f"fedipress {command.name}: not mentioned as `fedipress {command.name}` in README.md"
            " or docs/*.md"
        )
    return problems


def read_docs() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in DOC_FILES)


# --- links --------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def heading_anchors(markdown_text: str) -> set[str]:
    """GitHub's anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in _FENCE.sub("", markdown_text).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def check_links(document: Path) -> list[str]:
    """Relative links in a Markdown file that point to no file (or to no heading in it)."""
    text = document.read_text(encoding="utf-8")
    prose = _INLINE_CODE.sub("", _FENCE.sub("", text))
    problems = []
    for target in _LINK.findall(prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        line = text[: text.find(f"]({target}")].count("\n") + 1
        if not linked.exists():
            problems.append(f"{document.name}:{line}: link to {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(
            linked.read_text(encoding="utf-8")
        ):
            problems.append(f"{document.name}:{line}: link to {target}: no such heading")
    return problems


# --- the tests on the real CLI and docs -------------------------------------------------------

COMMANDS = list(walk_commands(build_parser()))
COMMAND_IDS = [c.name for c in COMMANDS]


def test_the_walk_finds_commands_and_subcommands() -> None:
    # Guard against a vacuous pass: a broken walk would check nothing.
    names = set(COMMAND_IDS)
    assert {"init", "build", "publish", "inbox", "keys generate", "followers approve"} <= names
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_command_has_help_example_and_docs(command: Command) -> None:
    problems = check_command(command, read_docs(), build_parser())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("document", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_links_point_to_existing_files(document: Path) -> None:
    problems = check_links(document)
    assert not problems, "\n".join(problems)


def test_readme_links_every_doc() -> None:
    # The guides are reachable from the README (a new docs/ page nobody links is lost).
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in DOC_FILES[1:] if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"README.md links none of: {', '.join(unlinked)}"


# --- --help as a real process -------------------------------------------------------------------


def fedipress_executable() -> list[str]:
    """The installed console script (pyproject [project.scripts]); `python -m` if not installed."""
    script = Path(sysconfig.get_path("scripts")) / "fedipress"
    if script.exists():
        return [str(script)]
    found = shutil.which("fedipress")
    return [found] if found else [sys.executable, "-m", "fedipress.cli"]


@dataclass(frozen=True)
class HelpRun:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def help_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], HelpRun]:
    # All --help processes at once: each is a fresh interpreter, run side by side they take the
    # time of one. The working directory has no site.yaml: --help must not need one.
    cwd = tmp_path_factory.mktemp("help")
    env = {**os.environ, "COLUMNS": "100"}
    paths = [(), *(c.path for c in COMMANDS)]
    processes = {
        path: subprocess.Popen(
            [*fedipress_executable(), *path, "--help"], cwd=cwd, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for path in paths
    }
    runs = {}
    for path, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        runs[path] = HelpRun(process.returncode, stdout, stderr)
    return runs


@pytest.mark.parametrize("path", [(), *(c.path for c in COMMANDS)],
                         ids=["fedipress", *COMMAND_IDS])
def test_help_runs(help_runs: dict[tuple[str, ...], HelpRun], path: tuple[str, ...]) -> None:
    run = help_runs[path]
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.startswith(f"usage: {' '.join(['fedipress', *path])}"), run.stdout
    if path:
        assert "example:\n  fedipress " + " ".join(path) in run.stdout, run.stdout
    else:
        # The top-level help lists every command with its help text.
        for command in COMMANDS:
            if len(command.path) == 1:
                assert re.search(rf"^\s+{command.name}\s+\S", run.stdout, re.MULTILINE), (
                    command.name
                )


# --- the checkers fail on bad input -------------------------------------------------------------


def _bad_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedipress")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("silent")  # no help, no description
    sub.add_parser("vague", help="does things", description="does things")
    wrong = sub.add_parser("wrong", help="an example for another command",
                           description="x\n\nexample:\n  fedipress other")
    wrong.add_argument("--n", type=int)
    broken = sub.add_parser("broken", help="an example that does not parse",
                            description="x\n\nexample:\n  fedipress broken --n many")
    broken.add_argument("--n", type=int)
    keys = sub.add_parser("keys", help="k", description="k\n\nexample:\n  fedipress keys make")
    keys_sub = keys.add_subparsers(dest="action")
    keys_sub.add_parser("make", help="m", description="m\n\nexample:\n  fedipress keys make")
    return parser


def test_check_command_flags_each_gap(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _bad_parser()
    commands = {c.name: c for c in walk_commands(parser)}
    assert list(commands) == ["silent", "vague", "wrong", "broken", "keys", "keys make"]
    docs = "Run `fedipress vague`, `fedipress wrong`, `fedipress broken`.\nfedipress keys make\n"

    def problems(name: str) -> str:
        return "\n".join(check_command(commands[name], docs, parser))

    assert "no help text" in problems("silent")
    assert "no 'example:'" in problems("silent")
    assert "not mentioned" in problems("silent")
    assert problems("vague") == "fedipress vague: its description has no 'example:' with a" \
        " command line"
    assert "is another command" in problems("wrong")
    assert "does not parse" in problems("broken")
    assert problems("keys make") == ""
    # `fedipress keys make` mentions keys too; the mention must be a whole word sequence
    assert check_command(commands["keys"], "fedipress keysmith", parser) == [
        "fedipress keys: not mentioned as `fedipress keys` in README.md or docs/*.md"
    ]
    capsys.readouterr()  # argparse's own error message for the broken example


def test_check_links_flags_missing_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "real.md").write_text("# Real\n\n## A heading, here\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "See [real](docs/real.md), [part](docs/real.md#a-heading-here),\n"
        "[gone](docs/gone.md) and [bad anchor](docs/real.md#nope).\n"
        "[web](https://example.com/x.md) `[code](nothere.md)`\n"
        "```\n[fenced](nothere.md)\n```\n"
    )
    assert check_links(readme) == [
        "README.md:2: link to docs/gone.md: no such file",
        "README.md:2: link to docs/real.md#nope: no such heading",
    ]


# --- docs a pip user can reach ------------------------------------------------------------------

PROJECT_URL = "https://github.com/fedipress/fedipress"
_DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*")


def bare_docs_paths(root: Path) -> list[str]:
    """Mentions of `docs/...` in the package that are not part of a full URL: an installed
    package has no docs/ folder, so a reader cannot follow them."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in {".py", ".html", ".xml", ".yaml", ".txt"}:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            without_urls = re.sub(r"https?://\S+", "", line)
            for match in _DOCS_PATH.finditer(without_urls):
                if match.group() in {"docs/", "docs/NAME.md"}:
                    continue  # wording.py describing the helper itself
                found.append(f"{path.relative_to(root)}:{number}: {match.group()}")
    return found


def test_package_mentions_docs_only_by_full_url() -> None:
    found = bare_docs_paths(REPO / "src" / "fedipress")
    assert not found, "use fedipress.wording.docs_url():\n" + "\n".join(found)


def test_bare_docs_path_check_finds_them(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        '"see docs/keys.md"\n'
        f'"see {PROJECT_URL}/blob/main/docs/keys.md"\n'
        "# documented in docs/signatures.md\n"
    )
    (tmp_path / "b.html").write_text("{# See docs/themes.md #}\n")
    assert bare_docs_paths(tmp_path) == [
        "a.py:1: docs/keys.md", "a.py:3: docs/signatures.md", "b.html:1: docs/themes.md"
    ]


def outside_links(readme: Path) -> list[str]:
    """Links and path mentions in a README that lead outside its repository."""
    text = readme.read_text(encoding="utf-8")
    prose = _FENCE.sub("", text)
    found = []
    for target in _LINK.findall(prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            if not target.startswith(PROJECT_URL):
                found.append(f"link to {target}")
            continue
        linked = (readme.parent / target.partition("#")[0]).resolve()
        if not linked.is_relative_to(readme.parent.resolve()):
            found.append(f"link to {target}")
    for mention in re.findall(r"`([^`\n]*\.\./[^`\n]*)`", prose):
        found.append(f"path {mention}")
    return found


def test_readme_links_nothing_outside_the_repository() -> None:
    assert outside_links(REPO / "README.md") == []


def test_outside_links_check_finds_them(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "See `../shared/DESIGN.md`, [design](../DESIGN.md), [x](https://elsewhere.example/)"
        f" and [ok]({PROJECT_URL}/issues), [docs](docs/a.md).\n"
    )
    assert outside_links(tmp_path / "README.md") == [
        "link to ../DESIGN.md", "link to https://elsewhere.example/", "path ../shared/DESIGN.md"
    ]


def test_package_metadata_names_the_project_urls() -> None:
    import tomllib

    urls = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues"}
    assert all(url.startswith(PROJECT_URL) for url in urls.values())
    assert urls["Documentation"] == f"{PROJECT_URL}/tree/main/docs"
    from fedipress.wording import DOCS_BASE
    from fedipress.wording import PROJECT_URL as package_url

    assert package_url == PROJECT_URL and DOCS_BASE == f"{PROJECT_URL}/blob/main/docs/"
