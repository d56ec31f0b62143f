"""CI build benchmark: a cold build against a fresh clone with only the build cache restored.

    python benchmarks/bench_ci_cache.py --posts 10000 --runs 3 [--seed 1] [--work DIR]

What a push-to-deploy CI run sees (docs/ci.md): a fresh `git clone` (every file's mtime is
the checkout time, `public/` does not exist since it is not in git), and `.fedipress/cache/`
restored by the workflow's cache step, nothing else of `.fedipress/`. Steps:

  1. the corpus (benchmarks/corpus.py) is committed to a git repository under --work
  2. the previous CI run: a fresh `git clone` of it into the workspace (below), one cold
     build (CI=true); its `.fedipress/cache/` is copied aside, as the workflow's cache step
     saves it; the workspace is deleted
  3. per run, alternating so that a noisy moment hits both alike:
     cold    a fresh `git clone` into the workspace, one post edited, `fedipress build`
     cached  a fresh `git clone` into the workspace, the saved cache copied into
             `.fedipress/cache/`, the same post edited, `fedipress build`
     (each build's public/ is moved aside and the workspace deleted before the next clone)

The workspace is one path, as on a CI runner (GitHub's is /home/runner/work/REPO/REPO on
every run): the generated host configuration names the output folder's absolute path, so
the fingerprints of the outputs (and the render cache's entries) belong to it. A cache
restored at another path still finds every post by content (no Markdown is rendered again),
but renders every page.

Each build is `python -m fedipress.cli build` in a fresh process; the figure is its wall
time. The cached build runs with CI=true (the plain log with phase times and what the cache
saved, and it appends its changes to the render pack, as CI does). The cold build runs without
CI, so it does not write the render pack: the cold figure is a plain cold build's, not
inflated by the ~900 MiB a first CI build writes into its cache. The clones are deleted
after each run. The cached build's `public/` is compared with the cold build's byte for byte
(the same edit), so a fast wrong build cannot pass. Medians and the ratio are printed.

--work defaults to /dev/shm (memory): the figures then measure fedipress, not the disk, as on
a CI runner whose disk is not shared with other jobs.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
    subprocess.run(["git", *args], cwd=cwd, check=True, env=env, capture_output=True)


def _build(site: Path, *, ci: bool = True) -> tuple[float, str]:
    """(wall seconds, stdout) of `fedipress build` in a fresh process, as CI runs it (or, with
    `ci=False`, as on a workstation: no render pack is written)."""
    env = {**os.environ, "CI": "true" if ci else "", "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fedipress.cli", "build"], cwd=site, env=env,
                          capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"build in {site} failed:\n{proc.stderr[-4000:]}")
    return elapsed, proc.stdout.strip()


def _edit(site: Path, tag: str) -> None:
    # The newest post (corpus files are named YYYY-MM-DD-slug.md, in date order).
    post = sorted((site / "content" / "posts").glob("*.md"))[-1]
    with post.open("a", encoding="utf-8") as f:
        f.write(f"\nOne more paragraph, added by the CI benchmark ({tag}).\n")


def _same_tree(a: Path, b: Path) -> list[str]:
    """Paths that differ between two output folders (missing on one side or other bytes)."""
    differ: list[str] = []

    def walk(cmp: filecmp.dircmp[str], rel: str) -> None:
        differ.extend(f"{rel}{n}" for n in cmp.left_only + cmp.right_only + cmp.funny_files)
        _match, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files,
                                                    shallow=False)
        differ.extend(f"{rel}{n}" for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{rel}{name}/")

    walk(filecmp.dircmp(a, b), "")
    return differ


def _phases(stdout: str) -> str:
    found = re.search(r"^phases: (.*)$", stdout, re.M)
    return found.group(1) if found else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/dev/shm"),
                        help="where the repository and the clones go (default /dev/shm)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import corpus  # benchmarks/corpus.py

    work = args.work / f"fedipress-bench-ci-{os.getpid()}"
    work.mkdir(parents=True)
    try:
        repo = work / "repo"
        print(f"corpus: {args.posts} posts (seed {args.seed}) in {repo}", flush=True)
        corpus.write_site(repo, corpus.generate_posts(args.posts, args.seed), seed=args.seed)
        (repo / ".gitignore").write_text("/public/\n/.fedipress/\n", encoding="utf-8")
        _git("init", "-q", "-b", "main", cwd=repo)
        _git("add", "-A", cwd=repo)
        _git("commit", "-q", "-m", "the corpus", cwd=repo)

        workspace = work / "workspace" / "site"
        _git("clone", "-q", str(repo), str(workspace), cwd=work)
        seconds, out = _build(workspace)
        print(f"previous CI run (makes the cache): {seconds:.2f} s; {_phases(out)}", flush=True)
        saved = work / "saved-cache"
        shutil.copytree(workspace / ".fedipress" / "cache", saved)
        shutil.rmtree(workspace)
        size = sum(f.stat().st_size for f in saved.rglob("*") if f.is_file())
        print(f"saved .fedipress/cache/: {size / 2**20:.1f} MiB", flush=True)

        cold: list[float] = []
        cached: list[float] = []
        for run in range(1, args.runs + 1):
            trees: dict[str, Path] = {}
            for kind in ("cold", "cached") if run % 2 else ("cached", "cold"):
                _git("clone", "-q", str(repo), str(workspace), cwd=work)
                if kind == "cached":
                    shutil.copytree(saved, workspace / ".fedipress" / "cache")
                _edit(workspace, "one edit")
                seconds, out = _build(workspace, ci=kind == "cached")
                (cold if kind == "cold" else cached).append(seconds)
                lines = out.splitlines()
                detail = f"\n    {_phases(out)}\n    {lines[-1]}" if kind == "cached" else ""
                print(f"run {run} {kind:6}: {seconds:6.2f} s  {lines[0]}{detail}", flush=True)
                trees[kind] = work / f"public-{kind}"
                os.replace(workspace / "public", trees[kind])
                shutil.rmtree(workspace)
            differ = _same_tree(trees["cold"], trees["cached"])
            if differ:
                print(f"FAIL: the cached build's public/ differs from the cold build's in"
                      f" {len(differ)} files, e.g. {differ[:5]}")
                return 1
            for tree in trees.values():
                shutil.rmtree(tree)
        load = os.getloadavg()
        cold_m, cached_m = statistics.median(cold), statistics.median(cached)
        print(f"\n{args.posts} posts, {args.runs} runs, in {args.work}"
              f" (load average {load[0]:.2f}):")
        print(f"  cold build (fresh clone, no cache):        median {cold_m:.2f} s"
              f"  ({', '.join(f'{s:.2f}' for s in cold)})")
        print(f"  cached build (fresh clone, cache restored): median {cached_m:.2f} s"
              f"  ({', '.join(f'{s:.2f}' for s in cached)})")
        print(f"  ratio: {cold_m / cached_m:.2f}x; public/ identical in every run")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
