"""The command line works the way people type it: a group's options after its action too,
every argument and option explained with its default, and one shape for every usage error."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from fedipress.cli import build_parser, main
from fedipress.cli.shared import help_with_default


def all_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, (*path, name))


def help_gaps(parser: argparse.ArgumentParser) -> list[str]:
    """Every argument or option of every (sub)parser without help text, or whose help does
    not mention its default (required positionals have none)."""
    gaps = []
    for path, sub in all_parsers(parser):
        where = " ".join(("fedipress", *path))
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            text = help_with_default(action)
            if not (text or "").strip() or text == argparse.SUPPRESS:
                gaps.append(f"{where} {name}: no help text")
                continue
            assert text is not None
            optional = bool(action.option_strings) or action.nargs in ("?", "*")
            if isinstance(action, argparse._SubParsersAction):
                optional = not action.required
            if optional and "default" not in text:
                gaps.append(f"{where} {name}: help does not say its default")
    return gaps


def test_every_argument_and_option_has_help_and_its_default() -> None:
    gaps = help_gaps(build_parser())
    assert not gaps, "\n".join(gaps)


def test_the_help_check_finds_each_gap() -> None:
    # The check above cannot pass vacuously: it flags each kind of gap.
    parser = argparse.ArgumentParser(prog="fedipress")
    sub = parser.add_subparsers(dest="command", help="commands (default: none)")
    p = sub.add_parser("thing")
    p.add_argument("name")  # a required positional without help
    p.add_argument("--count", type=int, default=None, help="how many")  # default not said
    p.add_argument("--quiet", action="store_true")  # no help
    p.add_argument("--level", default=3, help="how loud")  # formatter adds it: fine
    assert help_gaps(parser) == [
        "fedipress thing name: no help text",
        "fedipress thing --count: help does not say its default",
        "fedipress thing --quiet: no help text",
    ]


def test_help_output_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "how long to keep retrying within this run (default: 60.0)" in out
    assert "write, store and send nothing (default: off)" in out
    assert "(default: site.yaml)" in out and "(default: site.yaml's base_url)" in out
    # An action shows its group's options with the group's defaults.
    assert main(["followers", "add", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--allow-private-addresses" in out and "(default: off)" in out
    assert "(default: site.yaml)" in out


# --- a group's options before and after its action ----------------------------------------------


@pytest.mark.parametrize(("argv", "expected"), [
    (["followers", "--allow-private-addresses", "add", "https://a.example/u"], True),
    (["followers", "add", "https://a.example/u", "--allow-private-addresses"], True),
    (["followers", "add", "--allow-private-addresses", "https://a.example/u"], True),
    (["followers", "add", "https://a.example/u"], False),
])
def test_group_flag_before_or_after_the_action(argv: list[str], expected: bool) -> None:
    args = build_parser().parse_args(argv)
    assert args.allow_private_addresses is expected
    assert args.actor == "https://a.example/u"


@pytest.mark.parametrize("argv", [
    ["followers", "--config", "x/site.yaml", "--json", "list"],
    ["followers", "list", "--config", "x/site.yaml", "--json"],
    ["followers", "-c", "x/site.yaml", "list", "--json"],
    ["followers", "--json", "list", "-c", "x/site.yaml"],
])
def test_group_options_given_on_either_side_are_kept(argv: list[str]) -> None:
    # The action's copy of an option has no default of its own (SUPPRESS), so a value given
    # before the action is not reset by the action's parser.
    args = build_parser().parse_args(argv)
    assert args.config == "x/site.yaml" and args.json is True
    assert args.followers_command == "list"


@pytest.mark.parametrize("argv", [
    ["keys", "show", "--config", "x/site.yaml"],
    ["keys", "--config", "x/site.yaml", "show"],
    ["deliveries", "retry", "--config", "x/site.yaml"],
    ["deliveries", "--config", "x/site.yaml", "retry"],
    ["followers", "remove", "https://a.example/u", "--base-url", "http://127.0.0.1:1/",
     "--config", "x/site.yaml"],
])
def test_every_group_takes_its_options_after_the_action(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.config == "x/site.yaml"


def test_group_defaults_hold_when_no_option_is_given() -> None:
    args = build_parser().parse_args(["followers", "add", "https://a.example/u"])
    assert args.config == "site.yaml" and args.base_url is None and args.json is False
    args = build_parser().parse_args(["followers"])
    assert args.followers_command is None and args.config == "site.yaml"


def test_every_group_option_is_shared_with_every_action() -> None:
    # Walked, so that a group or option added later is covered too.
    missing = []
    for path, parser in all_parsers(build_parser()):
        if not path:
            continue  # the top level's --version is not a command's option
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            group_options = {
                s for a in parser._actions if a.option_strings for s in a.option_strings
            }
            for name, sub in action.choices.items():
                theirs = {s for a in sub._actions for s in a.option_strings}
                for option in sorted(group_options - theirs):
                    missing.append(f"fedipress {' '.join((*path, name))}: no {option}")
    assert not missing, "\n".join(missing)


# --- usage errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message", "command"), [
    (["serve", "--port", "http"], "argument --port: 'http' is not a whole number", "serve"),
    (["hosting", "iis"], "argument host_kind: invalid choice: 'iis'", "hosting"),
    (["followers", "add"], "the following arguments are required: actor", "followers add"),
    (["keys"], "the following arguments are required: ACTION", "keys"),
    (["build", "--nope"], "unrecognized arguments: --nope", "build"),
    (["followers", "add", "https://a.example/u", "--nope"], "unrecognized arguments: --nope",
     "followers add"),
    (["nope"], "argument COMMAND: invalid choice: 'nope'", ""),
])
def test_usage_errors_end_in_one_fedipress_error_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str, command: str
) -> None:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("usage: fedipress"), lines
    assert lines[-1].startswith(f"fedipress: error: {message}"), lines
    # It names the --help of the command the mistake was typed for.
    assert lines[-1].endswith(f"(see `{' '.join(['fedipress', command]).strip()} --help`)"), lines
    assert sum("error" in line for line in lines) == 1, lines
