"""Smoke test of the benchmark scripts: a tiny corpus is deterministic and bench_build runs."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.postgres import PostgresCluster

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _corpus(out: Path, posts: int, seed: int = 1) -> None:
    subprocess.run([sys.executable, str(BENCH / "corpus.py"), "--posts", str(posts),
                    "--out", str(out), "--seed", str(seed)], check=True, capture_output=True)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.timeout(60)
def test_corpus_is_deterministic_and_shaped(tmp_path: Path) -> None:
    _corpus(tmp_path / "a", 12)
    _corpus(tmp_path / "b", 12)
    _corpus(tmp_path / "c", 12, seed=2)
    a = _files(tmp_path / "a")
    assert a == _files(tmp_path / "b")
    assert a != _files(tmp_path / "c")
    posts = [v.decode() for k, v in a.items() if k.startswith("content/posts/")]
    assert len(posts) == 12
    assert sum("```" in p for p in posts) == 4  # a third carry a fenced code block
    for text in posts:
        body = text.split("---\n", 2)[2]
        assert 600 <= len(body.split()) <= 1400  # 600-1,200 words plus markup tokens
        assert "\n## " in body and "](" in body and "tags: [topic-" in text
    assert "site.yaml" in a and "fedipress-public-key.pem" in a


@pytest.mark.timeout(120)
def test_bench_build_runs_once(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_build.py"), "--posts", "20", "--runs", "1",
         "--corpus", str(site), "--json", str(tmp_path / "out.json")],
        check=True, capture_output=True, text=True,
    )
    for name in ("cold", "no-change", "edit", "serve-edit"):
        assert f"\n{name} " in proc.stdout
    import json

    runs = json.loads((tmp_path / "out.json").read_text())["runs"]
    assert runs["cold"][0]["posts"] == 20
    assert runs["cold"][0]["skipped_render"] == 0
    assert runs["cold"][0]["written"] == runs["cold"][0]["files"]  # from a fresh folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "site"]  # trash emptied
    assert runs["no-change"][0]["written"] == 0
    assert runs["no-change"][0]["skipped_render"] == runs["no-change"][0]["files"]
    assert 0 < runs["edit"][0]["written"] < runs["edit"][0]["files"]
    assert runs["serve-edit"][0]["written"] == runs["edit"][0]["written"]
    # The benchmark restores the post it edits.
    fresh = tmp_path / "fresh"
    _corpus(fresh, 20)
    assert _files(fresh / "content") == _files(site / "content")


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_bench_ci_cache_runs_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_ci_cache.py"), "--posts", "20", "--runs", "1",
         "--work", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )
    assert "public/ identical in every run" in proc.stdout
    # Only the edited post is parsed again (and the corpus's undated page); the rest of the
    # site comes from the restored cache.
    assert "cache: 2 of 21 content files parsed, 1 rendered from Markdown" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # clones and saved cache removed


@pytest.mark.timeout(120)
def test_bench_delivery_reaches_every_inbox_once() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_delivery.py"), "--followers", "30", "--inboxes", "6",
         "--delay", "0.01", "--runs", "1"],
        check=True, capture_output=True, text=True, timeout=110,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("followers"))
    # The script itself fails unless the servers received exactly one POST per inbox.
    assert "deliveries      6" in line and "sent 6 failed 0 received 6" in line


@pytest.mark.timeout(180)
def test_bench_delivery_on_postgresql_with_two_worker_processes(
    postgres: PostgresCluster,
) -> None:
    # `postgres` only to skip (or fail under CI) like every PostgreSQL test: the benchmark
    # starts a throwaway cluster of its own.
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_delivery.py"), "--followers", "40", "--inboxes", "8",
         "--delay", "0.01", "--runs", "1", "--postgres", "--workers", "2"],
        check=True, capture_output=True, text=True, timeout=170,
    )
    assert "store PostgreSQL; 2 worker processes" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("followers"))
    assert "sent 8 failed 0 received 8 verified 8" in line and "per worker sent" in line


@pytest.mark.timeout(120)
def test_bench_inbox_gets_verified_posts_accepted() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_inbox.py"), "--seconds", "1", "--runs", "1",
         "--rates", "", "--concurrency", "2", "--warmup", "0.2", "--budget-rate", "100"],
        check=True, capture_output=True, text=True, timeout=110,
    )
    step = next(x for x in proc.stdout.splitlines() if x.startswith("concurrency   2"))
    # Every signed Like was verified and accepted: no other status, no error.
    assert "non-2xx 0  errors 0" in step


def _processors(md: object) -> dict[str, set[str]]:
    """Every registered processor of a Markdown instance, as module:name per stage."""
    stages = {"pre": "preprocessors", "block": "parser.blockprocessors",
              "inline": "inlinePatterns", "tree": "treeprocessors", "post": "postprocessors"}
    found: dict[str, set[str]] = {}
    for stage, path in stages.items():
        registry = md
        for part in path.split("."):
            registry = getattr(registry, part)
        found[stage] = {f"{type(registry[item.name]).__module__}:{item.name}"  # type: ignore[index]
                        for item in registry._priority}  # type: ignore[attr-defined]
    return found


def test_pelican_settings_ask_for_what_fedipress_does() -> None:
    """The ratio compares equal work: Pelican's parser has every processor of fedipress's
    (smart punctuation by smarty; Pelican's metadata reader aside; mentions are fedipress's
    own), and its feeds are the corpus's feeds."""
    import markdown

    from fedipress.generator import markup

    spec = importlib.util.spec_from_file_location("_bench_corpus", BENCH / "corpus.py")
    assert spec is not None and spec.loader is not None
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)

    settings: dict[str, object] = {}
    exec(corpus.PELICAN_CONF, settings)  # a settings file is plain Python
    configs = settings["MARKDOWN"]["extension_configs"]  # type: ignore[index]
    pelican = _processors(markdown.Markdown(extensions=list(configs), extension_configs=configs))
    fedipress = _processors(markup._new_markdown(stock=True)[0])
    assert pelican["tree"] - fedipress["tree"] == {"markdown.treeprocessors:smarty"}
    ours = "fedipress.generator.markup"
    assert fedipress["tree"] - pelican["tree"] == {f"{ours}:fedipress_typography"}
    assert fedipress["inline"] - pelican["inline"] == {f"{ours}:fedipress_mention"}
    assert pelican["pre"] - fedipress["pre"] == {"markdown.extensions.meta:meta"}
    for stage in ("block", "post"):
        assert pelican[stage] == fedipress[stage], stage
    assert configs["markdown.extensions.toc"] == {"permalink": True}
    items = int(corpus.SITE_YAML.split("items: ")[1].split()[0])
    assert settings["FEED_MAX_ITEMS"] == items
    assert "full_content: true" in corpus.SITE_YAML and settings["RSS_FEED_SUMMARY_ONLY"] is False
    assert settings["FEED_ALL_ATOM"] and settings["FEED_ALL_RSS"]
    assert settings["TAG_FEED_ATOM"] and settings["TAG_FEED_RSS"]
    defaults: dict[str, object] = {}
    exec(corpus.PELICAN_CONF_DEFAULTS, defaults)
    assert "MARKDOWN" not in defaults  # Pelican's own defaults, for the earlier comparison
