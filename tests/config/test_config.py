"""site.yaml loading: defaults, overrides, and every kind of mistake with its exact line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fedipress.cli import main
from fedipress.config import load_config, parse_config
from fedipress.errors import ConfigError, FedipressError
from support.config import MINIMAL, load, only_problem, problems, write

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- defaults ---------------------------------------------------------------------------------


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert config.title == "My Blog"
    assert config.base_url == "https://blog.example/"
    assert config.root == tmp_path
    assert config.config_file == tmp_path / "site.yaml"
    assert config.output_dir == tmp_path / "public"
    assert config.content_dir == tmp_path / "content"
    assert (config.language, config.timezone, config.permalink) == ("en", "UTC", "/posts/{slug}/")
    assert (config.posts_per_page, config.theme, config.description) == (10, "default", "")
    assert config.author.handle == "zoe-muller"
    assert config.author.avatar is None and config.author.links == ()
    fedi = config.fediverse
    assert fedi.username == "zoe-muller"
    assert fedi.handle_domain == "blog.example"
    assert fedi.display_name == "Zoë Müller"
    assert fedi.bio == ""
    assert fedi.inbox_url == "https://blog.example/inbox"
    assert fedi.shared_inbox_url == "https://blog.example/inbox"
    assert (fedi.post_type, fedi.note_content) == ("note", "full")
    assert fedi.federate and fedi.discoverable and fedi.indexable
    assert not fedi.manually_approves_followers
    assert fedi.public_key_file == "fedipress-public-key.pem"
    assert config.handle == "zoe-muller@blog.example"
    assert config.feeds.items == 20 and config.feeds.atom


def test_example_site_loads() -> None:
    config = load_config(REPO_ROOT / "site.yaml")
    assert config.base_url == "https://alice.example/"
    assert config.author.avatar == "https://alice.example/images/avatar.svg"
    assert config.fediverse.avatar == config.author.avatar
    assert config.fediverse.fields[0].name == "Blog"
    assert config.posts_per_page == 5
    assert config.tz.key == "Europe/Berlin"


def test_fediverse_defaults_follow_the_author(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        title: T
        base_url: http://127.0.0.1:8001/blog
        author:
          name: Alice
          handle: alice
          bio: I *grow* things.
          avatar: /images/a.svg
        """,
    )
    assert config.base_url == "http://127.0.0.1:8001/blog/"
    assert config.author.avatar == "http://127.0.0.1:8001/blog/images/a.svg"
    assert config.fediverse.handle_domain == "127.0.0.1:8001"
    assert config.fediverse.username == "alice"
    assert config.fediverse.bio == "I *grow* things."
    assert config.fediverse.avatar == "http://127.0.0.1:8001/blog/images/a.svg"
    assert config.fediverse.inbox_url == "http://127.0.0.1:8001/blog/inbox"


def test_full_fediverse_section(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        MINIMAL
        + """\
fediverse:
  username: notes
  handle_domain: Example.COM
  display_name: Notes
  bio: ""
  header: https://cdn.example/h.png
  fields:
    - name: Blog
      value: https://blog.example/
  also_known_as: [https://old.example/users/zoe]
  post_type: article
  note_content: summary
  federate: false
  discoverable: no
  indexable: false
  manually_approves_followers: true
  blocked: [Spam.Example, https://bad.example/users/troll]
  inbox_url: https://inbox.example/inbox
  published: 2020-01-02T03:04:05
timezone: Europe/Berlin
language: no
""",
    )
    fedi = config.fediverse
    assert config.handle == "notes@example.com"
    assert fedi.display_name == "Notes" and fedi.bio == ""
    assert fedi.header == "https://cdn.example/h.png"
    assert fedi.fields[0].value == "https://blog.example/"
    assert fedi.also_known_as == ("https://old.example/users/zoe",)
    assert (fedi.post_type, fedi.note_content) == ("article", "summary")
    assert not (fedi.federate or fedi.discoverable or fedi.indexable)
    assert fedi.manually_approves_followers
    assert fedi.blocked == ("spam.example", "https://bad.example/users/troll")
    assert fedi.inbox_url == fedi.shared_inbox_url == "https://inbox.example/inbox"
    assert fedi.published == "2020-01-02T03:04:05+01:00"  # naive -> site timezone
    assert config.language == "no"  # Norwegian, not YAML 1.1's False


def test_base_url_override_replaces_and_derives(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL, base_url="http://127.0.0.1:8000")
    assert config.base_url == "http://127.0.0.1:8000/"
    assert config.fediverse.handle_domain == "127.0.0.1:8000"
    assert config.fediverse.inbox_url == "http://127.0.0.1:8000/inbox"


def test_base_url_override_makes_file_value_optional(tmp_path: Path) -> None:
    config = load(tmp_path, "title: T\nauthor: {name: A}\n", base_url="http://[::1]:9000/x")
    assert config.base_url == "http://[::1]:9000/x/"


def test_bad_override_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, MINIMAL, base_url="127.0.0.1:8000")
    (problem,) = info.value.problems
    assert str(problem).startswith("--base-url: must be an absolute http(s) URL")


def test_directory_argument_finds_site_yaml(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    assert load_config(tmp_path).title == "My Blog"


def test_relative_path_is_named_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "title: [\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("site.yaml")
    assert str(info.value).startswith("site.yaml:")


# --- every mistake ----------------------------------------------------------------------------


def test_missing_file() -> None:
    with pytest.raises(FedipressError) as info:
        load_config(Path("/nonexistent-dir/site.yaml"))
    assert str(info.value).startswith("/nonexistent-dir/site.yaml: not found (run `fedipress init")


def test_empty_file(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "# just a comment\n")
    assert line == 1 and "the file is empty" in message


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "\n- title\n") == (
        2, "the top level must be `key: value` lines (a mapping), got a list"
    )


def test_yaml_syntax_error_line(tmp_path: Path) -> None:
    # The line of the mistake, where the [ was opened, not where YAML gave up.
    line, message = only_problem(tmp_path, "title: ok\nbase_url: x\nauthor: [a\nnext: 1\n")
    assert line == 3
    assert message.startswith("YAML syntax error: the [ opened on this line is not closed with ]"
                              " (YAML stopped on line 4: expected ',' or ']'")


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "title: ok\nauthor:\n\tname: x\n")
    assert line == 3 and "YAML syntax error" in message


def test_unknown_key_suggests_closest(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "posts_per_pgae: 3\nfediverse:\n  usernme: x\n")
    assert found == [
        (5, "unknown key 'posts_per_pgae'; did you mean 'posts_per_page'?"),
        (7, "unknown key 'usernme' in fediverse; did you mean 'username'?"),
    ]


def test_unknown_key_without_close_match_lists_known(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "feeds:\n  zzz: 1\n")
    assert line == 6
    assert message == "unknown key 'zzz' in feeds; known keys: atom, rss, json, items, full_content"


def test_duplicate_key(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "title: again\n")
    assert line == 5 and message.startswith("duplicate key 'title' (first on line 1)")


def test_wrong_types(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        MINIMAL
        + """\
posts_per_page: ten
feeds:
  atom: maybe
  items: [1]
author2: x
""",
    )
    assert (5, "posts_per_page: expected a number, got 'ten'") in found
    assert (7, "feeds.atom: expected true or false, got 'maybe'") in found
    assert (8, "feeds.items: expected a number, got a list") in found


def test_text_expected(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "description:\n  a: b\n")
    assert (line, message) == (5, "description: expected text, got a mapping (key: value lines)")


def test_missing_required_keys(tmp_path: Path) -> None:
    found = problems(tmp_path, "language: en\nauthor:\n  bio: hi\n")
    assert found == [
        (1, "missing required key 'title'; add e.g. `title: My Blog`"),
        (1, "missing required key 'base_url'; add e.g. `base_url: https://example.com/`"),
        (2, "missing required key 'author.name'; add e.g. `name: Your Name`"),
    ]


def test_missing_author_section(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, "title: T\nbase_url: https://x.example/\n")
    assert line == 1 and message.startswith("missing required section 'author'")


def test_empty_required_value(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL.replace("title: My Blog", "title:"))
    assert (line, message) == (1, "empty required key 'title'; add e.g. `title: My Blog`")


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example/", "blog.example", "/relative", "https://", "https://x.example/?a=1",
     "http://127.0.0.1:99999/", "https://user@x.example/"],
)
def test_bad_base_url(tmp_path: Path, url: str) -> None:
    line, message = only_problem(tmp_path, MINIMAL.replace("https://blog.example", url))
    assert line == 2 and message.startswith("base_url: must")


@pytest.mark.parametrize(
    ("url", "expected"),
    [("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
     ("HTTPS://Blog.Example/sub", "https://blog.example/sub/"),
     ("http://localhost:8000/a/b/", "http://localhost:8000/a/b/")],
)
def test_base_url_normalised(tmp_path: Path, url: str, expected: str) -> None:
    assert load(tmp_path, MINIMAL.replace("https://blog.example", url)).base_url == expected


def test_bad_timezone_suggests(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "timezone: europe/berln\n")
    assert found == [
        (5, "timezone: unknown time zone 'europe/berln'; did you mean 'Europe/Berlin'?")
    ]
    line, message = only_problem(tmp_path, MINIMAL + "timezone: ../../etc/passwd\n")
    assert line == 5 and message.startswith("timezone: unknown time zone")


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [("/posts/{title}/", "unknown placeholder {title}"),
     ("/posts/{year}/", "must contain {slug}"),
     ("/posts/{slug", "unbalanced braces"),
     ("/posts/{slug}", "must end with '/'"),
     ("/../{slug}/", "must be a plain path")],
)
def test_bad_permalink(tmp_path: Path, pattern: str, fragment: str) -> None:
    line, message = only_problem(tmp_path, MINIMAL + f"permalink: '{pattern}'\n")
    assert line == 5 and fragment in message, message


def test_permalink_accepted_forms(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL + "permalink: '{year}/{month}/{day}/{slug}.html'\n").permalink \
        == "/{year}/{month}/{day}/{slug}.html"


def test_posts_per_page_minimum(tmp_path: Path) -> None:
    assert only_problem(tmp_path, MINIMAL + "posts_per_page: 0\n") == (
        5, "posts_per_page: must be at least 1, got 0"
    )


def test_enums(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + "fediverse:\n  post_type: Story\n  note_content: half\n")
    assert found == [
        (6, "fediverse.post_type: must be one of note | article, got 'Story'"),
        (7, "fediverse.note_content: must be one of full | summary, got 'half'"),
    ]


def test_username_and_handle_characters(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        MINIMAL + "  handle: al ice\nfediverse:\n  username: a@b\n  handle_domain: https://x/\n",
    )
    assert [line for line, _ in found] == [5, 7, 8]
    assert found[0][1].startswith("author.handle: may contain only letters")
    assert found[1][1].startswith("fediverse.username: may contain only letters")
    assert found[2][1].startswith("fediverse.handle_domain: expected a host name")


def test_handle_cannot_be_derived(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL.replace("Zoë Müller", "日本"))
    assert line == 3 and "set `handle:`" in message


def test_urls_in_lists(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        MINIMAL
        + """\
  links:
    - name: Code
      url: javascript:alert(1)
    - {name: Mail, url: "mailto:z@blog.example"}
    - just text
fediverse:
  also_known_as:
    - https://ok.example/users/z
    - ok.example/users/z
  blocked: ["spam.example", "not a domain!", 3]
  avatar: //cdn.example/a.png
""",
    )
    assert [line for line, _ in found] == [7, 9, 13, 14, 14, 15]
    assert found[0][1].startswith("author.links[1].url: expected an https:// URL")
    assert found[1][1].startswith("author.links[3]: expected `name:` and `url:` lines")
    assert found[2][1] == "fediverse.also_known_as: expected an absolute https:// URL, got" \
        " 'ok.example/users/z'"
    assert found[3][1].startswith("fediverse.blocked: expected a domain such as")
    assert found[4][1].endswith("got '3'")
    assert found[5][1].startswith("fediverse.avatar: write the scheme too")


def test_blocked_numbers_are_text_but_not_domains(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "fediverse:\n  blocked: [3]\n")
    assert line == 6 and "expected a domain" in message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(".", "must not be the site folder"),
     ("..", "must not be the site folder"),
     ("content", "content folder"),
     ("content/out", "content folder"),
     (".fedipress", ".fedipress/")],
)
def test_dangerous_output_dir(tmp_path: Path, value: str, fragment: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    line, message = only_problem(site, MINIMAL + f"output_dir: '{value}'\n")
    assert line == 5 and message.startswith("output_dir: ") and fragment in message


def test_output_dir_outside_root_is_fine(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    config = load(site, MINIMAL + "output_dir: ../site-public\ncontent_dir: src\n")
    assert config.output_dir == tmp_path / "site-public"
    assert config.content_dir == site / "src"


def test_content_dir_inside_output_is_refused(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "content_dir: public/posts\n")
    assert line == 5 and "content folder" in message


def test_public_key_file_not_in_output(tmp_path: Path) -> None:
    line, message = only_problem(
        tmp_path, MINIMAL + "fediverse:\n  public_key_file: public/key.pem\n"
    )
    assert line == 6 and "inside the output directory" in message


def test_bad_published(tmp_path: Path) -> None:
    line, message = only_problem(tmp_path, MINIMAL + "fediverse:\n  published: yesterday\n")
    assert line == 6 and message.startswith("fediverse.published: expected an ISO date")


def test_language_tag(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL + "language: pt-BR\n").language == "pt-BR"
    line, message = only_problem(tmp_path, MINIMAL + "language: English (UK)\n")
    assert line == 5 and message.startswith("language: expected a language tag")


def test_many_mistakes_at_once_sorted_by_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        titel: X
        base_url: ftp://x
        posts_per_page: ten
        timezone: Mars/Base
        author:
          handle: "bad handle"
        feeds:
          items: 0
        fediverse:
          post_type: story
        """,
    )
    assert [line for line, _ in found] == [1, 1, 2, 3, 4, 5, 6, 8, 10]
    assert len({message for _, message in found}) == 9


def test_cli_prints_problems_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, MINIMAL + "posts_per_page: ten\ntimezone: Nowhere/City\n")
    monkeypatch.chdir(tmp_path)
    assert main(["new", "Hello"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "site.yaml:5: posts_per_page: expected a number, got 'ten'",
        "site.yaml:6: timezone: unknown time zone 'Nowhere/City'; use a name such as"
        " 'Europe/Berlin' or 'UTC'",
    ]
    assert "Traceback" not in err
    assert os.listdir(tmp_path / "content") == []


# --- documentation ----------------------------------------------------------------------------


def test_docs_example_loads(tmp_path: Path) -> None:
    import re

    docs = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    match = re.search(r"```yaml\n(.*?)```", docs, re.S)
    assert match is not None
    config = load(tmp_path, match.group(1))
    assert config.handle == "alice@alice.example"


def test_every_key_is_documented() -> None:
    from fedipress import config as module

    docs = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    keys = (
        module._TOP_KEYS + module._AUTHOR_KEYS + module._FEED_KEYS + module._FEDIVERSE_KEYS
    )
    missing = [key for key in keys if f"| `{key}` |" not in docs]
    assert missing == []


# --- robustness -------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    ["title", "base_url", "author", "name", "handle", "fediverse", "feeds", "items", "links",
     "fields", "blocked", "timezone", "permalink", "output_dir", "avatar", "url", "x"]
)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
    st.text(max_size=12), st.sampled_from(["https://a.example/", "/p", "{slug}/", "UTC", ".."]),
)
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _TREES, max_size=8))
def test_any_structure_gives_config_or_located_problems(tree: dict[str, object]) -> None:
    text = yaml.safe_dump(tree, allow_unicode=True)
    try:
        parse_config(text, file="site.yaml", root=Path("/srv/site"))
    except ConfigError as error:
        assert error.problems
        assert all(p.file == "site.yaml" and (p.line or 1) >= 1 for p in error.problems)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=":-[]{}#&*!|>'\"%@` \n\tab1", max_size=60))
def test_any_text_gives_config_or_problems(text: str) -> None:
    try:
        parse_config(text, file="site.yaml", root=Path("/srv/site"))
    except ConfigError as error:
        assert error.problems
