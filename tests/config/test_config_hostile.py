"""site.yaml written to break the loader: each mistake is a located problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedipress.cli import main
from fedipress.config import load_config
from fedipress.errors import ConfigError
from support.config import MINIMAL, load, only_problem, problems, write

# --- URLs that urlsplit cannot read -----------------------------------------------------------

BROKEN_URL = '"http://[::1/x.png"'


@pytest.mark.parametrize(
    ("yaml_text", "line", "key"),
    [
        (f"  avatar: {BROKEN_URL}\n", 5, "author.avatar"),
        (f"  links:\n    - name: Code\n      url: {BROKEN_URL}\n", 7, "author.links[1].url"),
        (f"fediverse:\n  avatar: {BROKEN_URL}\n", 6, "fediverse.avatar"),
        (f"fediverse:\n  header: {BROKEN_URL}\n", 6, "fediverse.header"),
        (f"fediverse:\n  inbox_url: {BROKEN_URL}\n", 6, "fediverse.inbox_url"),
        (f"fediverse:\n  shared_inbox_url: {BROKEN_URL}\n", 6, "fediverse.shared_inbox_url"),
        ("fediverse:\n  inbox_url: 'https://blog.example:99999/inbox'\n", 6, "fediverse.inbox_url"),
        ("fediverse:\n  avatar: 'https://blog.example:port/a.png'\n", 6, "fediverse.avatar"),
    ],
)
def test_unreadable_url_is_a_located_problem(
    tmp_path: Path, yaml_text: str, line: int, key: str
) -> None:
    found_line, message = only_problem(tmp_path, MINIMAL + yaml_text)
    assert found_line == line
    assert message.startswith(f"{key}: cannot be read as a URL, got '")
    assert "IPv6" in message and "65535" in message


@pytest.mark.parametrize("key", ["also_known_as", "blocked"])
def test_unreadable_url_in_a_list_is_a_located_problem(tmp_path: Path, key: str) -> None:
    text = (
        MINIMAL
        + f'fediverse:\n  {key}:\n    - https://ok.example/users/a\n    - "https://[::1/x"\n'
    )
    line, message = only_problem(tmp_path, text)
    assert line == 8
    assert message == f"fediverse.{key}: expected an absolute https:// URL, got 'https://[::1/x'"


def test_url_without_a_host_is_refused(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "  avatar: 'https://:443/a.png'\n")
    assert line == 5 and message.startswith("author.avatar: expected an https:// URL")


def test_unreadable_base_url_in_file_and_on_the_command_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("https://blog.example", '"http://[::1/x"')
    line, message = only_problem(tmp_path, text)
    assert line == 2 and message.startswith("base_url: must be an absolute http(s) URL")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, MINIMAL, base_url="http://[::1/x")
    [problem] = info.value.problems
    assert problem.file == "--base-url" and "must be an absolute http(s) URL" in problem.message


def test_cli_prints_one_line_and_exits_2_for_a_broken_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL + f"  avatar: {BROKEN_URL}\n")
    assert main(["build", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.endswith(
        "site.yaml:5: author.avatar: cannot be read as a URL, got 'http://[::1/x.png';"
        " close the [ ] around an IPv6 address and keep the port a number up to 65535"
    )


# --- NUL characters and symlink loops in paths ------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "line", "key"),
    [
        ('output_dir: "pub\\0lic"\n', 5, "output_dir"),
        ('content_dir: "con\\0tent"\n', 5, "content_dir"),
        ('theme: "de\\0fault"\n', 5, "theme"),
        ('fediverse:\n  public_key_file: "a\\0b"\n', 6, "fediverse.public_key_file"),
        ('fediverse:\n  blocked: ["spam\\0.example"]\n', 6, "fediverse.blocked"),
        ('description: "a\\0b"\n', 5, "description"),
    ],
)
def test_nul_character_is_a_located_problem(
    tmp_path: Path, yaml_text: str, line: int, key: str
) -> None:
    assert only_problem(tmp_path, MINIMAL + yaml_text) == (
        line,
        f"{key}: contains a NUL character (\\0); remove it",
    )


def test_nul_in_a_required_value_is_one_problem(tmp_path: Path) -> None:
    text = MINIMAL.replace("title: My Blog", 'title: "My\\0Blog"')
    assert only_problem(tmp_path, text) == (1, "title: contains a NUL character (\\0); remove it")


def test_symlink_loop_as_output_dir_or_key_file_does_not_crash(tmp_path: Path) -> None:
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    config = load(
        tmp_path, MINIMAL + "output_dir: loop-a\nfediverse:\n  public_key_file: loop-b/key.pem\n"
    )
    assert config.output_dir == tmp_path / "loop-a"
    assert config.fediverse.public_key_file == "loop-b/key.pem"


# --- numbers too large for int() --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("9" * 5000, "999999999999… (5,000 characters)"),
        ("100001", "100001"),
        ("0x" + "f" * 5000, "0xffffffffff… (5,002 characters)"),
        ("1" + ":59" * 200, "1:59:59:59:5… (601 characters)"),
    ],
)
def test_huge_number_is_too_large_with_the_range(tmp_path: Path, value: str, shown: str) -> None:
    assert only_problem(tmp_path, MINIMAL + f"posts_per_page: {value}\n") == (
        5,
        f"posts_per_page: too large; use a number from 1 to 100000, got {shown}",
    )
    assert only_problem(tmp_path, MINIMAL + f"feeds:\n  items: {value}\n") == (
        6,
        f"feeds.items: too large; use a number from 1 to 100000, got {shown}",
    )


def test_hugely_negative_number_is_below_the_minimum(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "posts_per_page: -" + "9" * 5000 + "\n")
    assert (line, message) == (
        5,
        "posts_per_page: must be at least 1, got -99999999999… (5,001 characters)",
    )


def test_largest_allowed_number_and_leading_zeros(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL + "posts_per_page: 100_000\n").posts_per_page == 100_000
    # YAML 1.1 reads a leading 0 as octal; thousands of zeros are still a small number.
    assert load(tmp_path, MINIMAL + "posts_per_page: " + "0" * 5000 + "17\n").posts_per_page == 15


# --- YAML the reader refuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "line", "message"),
    [
        (
            "title: !!python/name:os.system\n",
            1,
            "title: the YAML tag !!python/name:os.system is not allowed",
        ),
        (
            "title: !!python/object/apply:os.system ['ls']\n",
            1,
            "title: the YAML tag !!python/object/apply:os.system is not allowed",
        ),
        ("title: !secret blog-title\n", 1, "title: the YAML tag !secret is not allowed"),
        (
            "title: T\nfediverse:\n  blocked:\n    - a.example\n    - !!python/str b.example\n",
            5,
            "fediverse.blocked[2]: the YAML tag !!python/str is not allowed",
        ),
        ("title: T\n!!python/name:x key: 1\n", 2, "key: the YAML tag !!python/name:x is"),
    ],
)
def test_foreign_yaml_tag_is_named(tmp_path: Path, yaml_text: str, line: int, message: str) -> None:
    text = yaml_text + MINIMAL.replace("title: My Blog\n", "")
    found_line, found = only_problem(tmp_path, text)
    assert found_line == line
    assert found.startswith(message)
    assert found.endswith("is not allowed in site.yaml; remove it and write the plain value")


def test_every_foreign_tag_is_reported(tmp_path: Path) -> None:
    text = MINIMAL + "description: !x a\nlanguage: !y en\n"
    assert [line for line, _ in problems(tmp_path, text)] == [5, 6]


def test_yaml_own_tags_and_aliases_are_fine(tmp_path: Path) -> None:
    text = (
        "title: !!str 1984\nbase_url: https://blog.example\nauthor: &me\n  name: Zoë\n"
        "posts_per_page: !!int 5\nfediverse:\n  blocked: &b [a.example, b.example]\n"
    )
    config = load(tmp_path, text)
    assert (config.title, config.posts_per_page) == ("1984", 5)
    assert config.fediverse.blocked == ("a.example", "b.example")


def test_recursive_and_exponential_aliases_load_quickly(tmp_path: Path) -> None:
    laughs = "".join(
        f"  - &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}]\n" for i in range(1, 30)
    )
    text = MINIMAL + "x: &loop [*loop]\nlaughs:\n  - &l0 [a]\n" + laughs
    found = problems(tmp_path, text)
    assert [message.split(";")[0] for _, message in found] == [
        "unknown key 'x'",
        "unknown key 'laughs'",
    ]


@pytest.mark.parametrize(("char", "code"), [("\0", "0000"), ("\x07", "0007"), ("\ufffe", "FFFE")])
def test_forbidden_character_names_its_line(tmp_path: Path, char: str, code: str) -> None:
    text = MINIMAL + f"description: a{char}b\n"
    assert only_problem(tmp_path, text) == (
        5,
        f"contains the character U+{code}, which YAML does not allow; delete it"
        " (an editor may show it as ^@, a box or nothing at all)",
    )


def test_cli_prints_a_nul_byte_problem_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL.replace("title: My Blog", "title: My\0Blog"))
    assert main(["build", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.endswith(
        "site.yaml:1: contains the character U+0000, which YAML does not allow;"
        " delete it (an editor may show it as ^@, a box or nothing at all)"
    )


def test_deep_nesting_is_a_problem_not_a_recursion_error(tmp_path: Path) -> None:
    [(line, message)] = problems(tmp_path, MINIMAL + "x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert line is None and message.startswith("YAML nesting is too deep")


# --- output_dir and the site's themes/ ---------------------------------------------------------


@pytest.mark.parametrize("value", ["themes", "themes/", "./themes", "themes/public", "themes/x/y"])
def test_output_dir_in_or_at_themes_is_refused(tmp_path: Path, value: str) -> None:
    (tmp_path / "themes" / "mine").mkdir(parents=True)
    assert only_problem(tmp_path, MINIMAL + f"output_dir: '{value}'\n") == (
        5,
        "output_dir: must not be, contain or be inside themes/, which holds your themes (the"
        " build deletes stale files in it; use a folder of its own such as 'public')",
    )


def test_output_dir_containing_a_symlinked_themes_folder_is_refused(tmp_path: Path) -> None:
    site, shared = tmp_path / "site", tmp_path / "shared"
    (shared / "themes").mkdir(parents=True)
    site.mkdir()
    (site / "themes").symlink_to(shared / "themes")
    line, message = only_problem(site, MINIMAL + "output_dir: ../shared\n")
    assert line == 5 and "themes/" in message


def test_default_output_dir_symlinked_into_themes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "themes" / "mine").mkdir(parents=True)
    (tmp_path / "public").symlink_to(tmp_path / "themes" / "mine")
    line, message = only_problem(tmp_path, MINIMAL)
    assert line == 1
    assert message.startswith("output_dir (public/ by default): must not be, contain or be inside")


def test_output_dir_beside_themes_is_fine(tmp_path: Path) -> None:
    (tmp_path / "themes").mkdir()
    config = load(tmp_path, MINIMAL + "output_dir: themes-out\n")
    assert config.output_dir == tmp_path / "themes-out"


# --- a content folder that is not there -------------------------------------------------------


def test_misspelt_content_dir_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    text = MINIMAL + "content_dir: contnet\n"
    assert load(tmp_path, text).content_dir == tmp_path / "contnet"  # not asked to check
    assert only_problem(tmp_path, text, require_content=True) == (
        5,
        "content_dir: 'contnet' is not a folder (it does not exist); did you mean 'content'?",
    )


def test_content_dir_that_is_a_file_or_a_dangling_symlink(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    assert only_problem(tmp_path, MINIMAL + "content_dir: notes.txt\n", require_content=True) == (
        5,
        "content_dir: 'notes.txt' is not a folder (it is a file); create it or correct the name",
    )
    line, message = only_problem(tmp_path, MINIMAL + "content_dir: gone\n", require_content=True)
    assert line == 5 and "(a symlink to something that is not there)" in message


def test_missing_default_content_folder_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    (tmp_path / "content").rmdir()
    with pytest.raises(ConfigError) as info:
        load_config(path, require_content=True)
    [problem] = info.value.problems
    assert (problem.line, problem.message) == (
        None,
        "no content/ folder next to it; create content/posts/ for your posts, or set"
        " `content_dir:` to the folder that holds them",
    )


def test_dangling_content_symlink_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    (tmp_path / "content").rmdir()
    (tmp_path / "content").symlink_to(tmp_path / "moved-away")
    with pytest.raises(ConfigError) as info:
        load_config(path, require_content=True)
    assert [p.message.split(";")[0] for p in info.value.problems] == [
        "no content/ folder next to it"
    ]


def test_build_with_a_missing_content_dir_keeps_the_built_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)  # a CI build makes no key pair; this one must
    site = tmp_path / "blog"
    assert main(["init", str(site)]) == 0
    assert main(["build", "--config", str(site / "site.yaml")]) == 0
    built = sorted(p.relative_to(site) for p in (site / "public").rglob("*"))
    assert any("hello-world" in str(p) for p in built)
    yaml_path = site / "site.yaml"
    yaml_path.write_text(
        yaml_path.read_text(encoding="utf-8") + "content_dir: contnet\n", encoding="utf-8"
    )
    capsys.readouterr()
    assert main(["build", "--config", str(yaml_path)]) == 2
    assert "content_dir: 'contnet' is not a folder" in capsys.readouterr().err
    assert sorted(p.relative_to(site) for p in (site / "public").rglob("*")) == built


def test_commands_that_read_content_refuse_a_missing_folder_and_others_do_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL)
    (tmp_path / "content").rmdir()
    for command in (["build"], ["serve"], ["new", "Hello"], ["publish", "--dry-run"]):
        assert main([*command, "--config", str(path)]) == 2, command
        assert "site.yaml: no content/ folder next to it" in capsys.readouterr().err
    assert not (tmp_path / "content").exists()
    # The inbox, keys and follower commands may run on a server that holds only site.yaml.
    assert main(["interactions", "--config", str(path)]) == 0
