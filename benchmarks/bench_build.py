"""Build benchmark: cold, no-change, one-edit (fresh process) and in-process (serve) rebuilds.

    python benchmarks/bench_build.py --posts 1000 --runs 3 [--seed 1] [--corpus DIR] [--pelican]

Every measurement runs in a fresh subprocess (this script with --child), so imports and
interpreter start-up are paid the way `fedipress build` pays them; "process" is that
subprocess's wall time, "build" is BuildResult.seconds inside it. Per run:

  cold        public/ and .fedipress/ moved aside (deleted after all runs): no parse cache,
              no manifest, a fresh output folder as in a clean checkout
  no-change   the same build again
  edit        the newest post gets one more paragraph, then a fresh build process
  serve-edit  one process (what `fedipress serve` keeps): Builder.build() once, then the newest
              post is edited and Builder.build(changed_paths=[it]) is timed; like the dev
              server's builder it writes no federation manifest

The edited post is restored after each run. Printed figures are medians over --runs. Peak
memory is the child's VmHWM (main process) and ru_maxrss of its children (the largest pool
worker). The corpus is benchmarks/.corpus/bench-<posts>-<seed> (generated when missing).

--pelican builds the Pelican copy of the same corpus with Pelican 4.12 installed into
benchmarks/.venv-pelican (a throwaway venv, never a fedipress dependency) for a ratio, twice
per run, alternating: with pelicanconf.py, which asks Pelican for what fedipress makes of the
corpus (the same Markdown extensions, among them a table of contents with heading permalinks
and smart punctuation, and the same feeds), and with pelicanconf-defaults.py (Pelican's
default Markdown extensions, one Atom feed), which does less than fedipress does.

Both programs import from bytecode, as after a normal `pip install`: the fedipress package
and Pelican's venv are byte-compiled (compileall) before timing. Where PYTHONDONTWRITEBYTECODE
is set (this machine sets it) pip writes no .pyc files, and every run would otherwise
compile its modules from source (~0.3 s of a Pelican run, ~0.05 s of a fedipress one).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
PELICAN_VERSION = "4.12.0"
# name -> (settings file written by corpus.py, what it asks of Pelican)
PELICAN_SETTINGS = {
    "pelican": ("pelicanconf.py", "the same Markdown extensions and feeds as fedipress"),
    "pel-default": ("pelicanconf-defaults.py", "its default Markdown extensions, one feed"),
}


# --- child side ----------------------------------------------------------------------------------


def _vmhwm_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _edit(path: Path, tag: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(f"\nOne more paragraph, added by the benchmark ({tag}).\n")


def _child(mode: str, site: Path, edit: Path | None) -> NoReturn:
    from fedipress.config import load_config
    from fedipress.generator.build import Builder

    def quiet(_line: str) -> None:
        pass

    config = load_config(site / "site.yaml")
    # The dev server's builder never writes the federation manifest (devserver._DevBuilder):
    # a preview must not become what publish announces.
    builder = Builder(config, log=quiet, federation_manifest=mode != "serve-edit")
    if mode == "serve-edit":
        assert edit is not None
        builder.build()  # the dev server's first build; then a save in the editor
        _edit(edit, "serve")
        result = builder.build(changed_paths=[edit])
    else:
        result = builder.build()
    measured = {
        "seconds": result.seconds,
        "phases": result.phase_seconds,
        "written": result.written,
        "unchanged": result.unchanged,
        "skipped_render": result.skipped_render,
        "posts": result.posts,
        "files": result.files,
        "rss_main_kib": _vmhwm_kib(),
        "rss_worker_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }
    # Ends the way the `fedipress build` console script does (fedipress/cli/site.py, which
    # holds build.run_build's result): with the builder still alive, no teardown of the
    # loaded site.
    print(json.dumps(measured), flush=True)
    os._exit(0)


# --- parent side ---------------------------------------------------------------------------------


def _run_child(mode: str, site: Path, edit: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--corpus", str(site)]
    if edit is not None:
        cmd += ["--edit", str(edit)]
    env = {**os.environ, "CI": "", "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{mode} build failed:\n{proc.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["process"] = elapsed
    return data


def _ensure_corpus(args: argparse.Namespace) -> tuple[Path, Path | None]:
    sys.path.insert(0, str(HERE))
    import corpus  # benchmarks/corpus.py

    site: Path = args.corpus or HERE / ".corpus" / f"bench-{args.posts}-{args.seed}"
    pelican = site.with_name(site.name + "-pelican") if args.pelican else None
    if not (site / "site.yaml").exists() or (pelican and not (pelican / "content").exists()):
        posts = corpus.generate_posts(args.posts, args.seed)
        if not (site / "site.yaml").exists():
            corpus.write_site(site, posts, seed=args.seed)
        if pelican is not None and not (pelican / "content").exists():
            corpus.write_pelican(pelican, posts)
    if pelican is not None:
        corpus.write_pelican_confs(pelican)  # a corpus made earlier gets the current settings
    return site, pelican


def _newest_post(site: Path) -> Path:
    # Corpus files are named YYYY-MM-DD-slug.md with increasing slugs: the last is the newest.
    return sorted((site / "content" / "posts").glob("*.md"))[-1]


def _set_aside(folder: Path, names: tuple[str, ...]) -> None:
    """Move `names` out of `folder` into a trash folder beside it, removed by _empty_trash
    after the measurements. On this machine's ext4 (mounted with `discard`), files created
    right after a large tree was deleted cost ~2x to create: deleting the last run's output
    before a cold build made it measure the file system catching up (1,000 posts: write phase
    1.8-2.3 s instead of 1.4 s in a fresh folder, as a clean CI checkout has)."""
    trash = _trash(folder)
    trash.mkdir(exist_ok=True)
    for name in names:
        if (folder / name).exists():
            (folder / name).rename(trash / f"{name}-{time.time_ns()}")


def _trash(folder: Path) -> Path:
    return folder.with_name(f".trash-{folder.name}")


def _empty_trash(*folders: Path) -> None:
    for folder in folders:
        shutil.rmtree(_trash(folder), ignore_errors=True)


def _reset(site: Path) -> None:
    _set_aside(site, ("public", ".fedipress"))


def _pelican_bin() -> Path:
    venv = HERE / ".venv-pelican"
    binary = venv / "bin" / "pelican"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                        f"pelican=={PELICAN_VERSION}", "markdown", "pygments"], check=True)
    _byte_compile(venv / "bin" / "python", *sorted(venv.glob("lib/python*/site-packages")))
    return binary


def _byte_compile(python: Path | str, *folders: Path) -> None:
    """What pip install does unless PYTHONDONTWRITEBYTECODE is set: write the .pyc files
    (quick when they are current)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(python), "-m", "compileall", "-q", *map(str, folders)], env=env,
                   check=True, stdout=subprocess.DEVNULL)


def _time_pelican(binary: Path, folder: Path, settings: str) -> float:
    _set_aside(folder, ("output",))  # as fedipress's output: a fresh folder each run
    started = time.perf_counter()
    subprocess.run([str(binary), "content", "-s", settings, "-o", "output", "-q"],
                   cwd=folder, check=True, capture_output=True, timeout=3600)
    return time.perf_counter() - started


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _report(name: str, rows: list[dict[str, Any]], posts: int) -> None:
    build = _median([r["seconds"] for r in rows])
    process = _median([r["process"] for r in rows])
    phases = {k: _median([r["phases"].get(k, 0.0) for r in rows]) for k in rows[0]["phases"]}
    shown = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
    rss = max(r["rss_main_kib"] for r in rows) / 1024
    worker = max(r["rss_worker_kib"] for r in rows) / 1024
    last = rows[-1]
    rate = f"{posts / process:8.1f} posts/s" if name == "cold" else " " * 15
    print(f"{name:<11} process {process:7.2f} s  build {build:7.2f} s  {rate}"
          f"  peak RSS {rss:6.0f} MiB (worker {worker:.0f} MiB)")
    print(f"{'':<11} phases (s): {shown}; written {last['written']:,},"
          f" render skipped {last['skipped_render']:,} of {last['files']:,}")
    runs = ", ".join(f"{r['process']:.2f}" for r in rows)
    print(f"{'':<11} runs (process s): {runs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--corpus", type=Path, help="site folder (default under .corpus/)")
    parser.add_argument("--pelican", action="store_true", help="also time Pelican 4.12")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--edit", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        _child(args.child, args.corpus, args.edit)
    if args.runs < 1 or args.posts < 1:
        parser.error("--posts and --runs must be at least 1")

    site, pelican = _ensure_corpus(args)
    import fedipress

    _byte_compile(sys.executable, Path(fedipress.__file__).resolve().parent)
    newest = _newest_post(site)
    original = newest.read_bytes()
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in
                                                ("cold", "no-change", "edit", "serve-edit")}
    print(f"corpus {site} ({args.posts:,} posts, seed {args.seed}); {os.cpu_count()} CPUs;"
          f" load average {os.getloadavg()[0]:.2f}")
    try:
        for run in range(1, args.runs + 1):
            _reset(site)
            results["cold"].append(_run_child("build", site))
            results["no-change"].append(_run_child("build", site))
            _edit(newest, f"run {run}")
            results["edit"].append(_run_child("build", site))
            newest.write_bytes(original)
            results["serve-edit"].append(_run_child("serve-edit", site, newest))
            newest.write_bytes(original)
            print(f"run {run}/{args.runs}: " + ", ".join(
                f"{k} {v[-1]['process']:.2f} s" for k, v in results.items()), flush=True)
    finally:
        newest.write_bytes(original)
    try:
        _report_all(args, site, pelican, results)
    finally:
        # Only now: deleting the set-aside trees between runs would slow what follows.
        _empty_trash(site, *([pelican] if pelican is not None else []))
    return 0


def _report_all(args: argparse.Namespace, site: Path, pelican: Path | None,
                results: dict[str, list[dict[str, Any]]]) -> None:
    print()
    for name, rows in results.items():
        if name == "serve-edit":
            # In-process: the figure is the rebuild alone, not the process.
            for r in rows:
                r["process"] = r["seconds"]
        _report(name, rows, args.posts)
    out: dict[str, Any] = {"posts": args.posts, "seed": args.seed, "runs": results}
    if pelican is not None:
        binary = _pelican_bin()
        cold = _median([r["process"] for r in results["cold"]])
        # Alternated, so a noisy moment on a shared machine falls on both settings alike.
        times: dict[str, list[float]] = {name: [] for name in PELICAN_SETTINGS}
        for _ in range(args.runs):
            for name, (settings, _label) in PELICAN_SETTINGS.items():
                times[name].append(_time_pelican(binary, pelican, settings))
        for name, (settings, label) in PELICAN_SETTINGS.items():
            median = _median(times[name])
            print(f"{name:<11} process {median:7.2f} s  {args.posts / median:8.1f} posts/s"
                  f"  (Pelican {PELICAN_VERSION}, {settings}: {label};"
                  f" runs {', '.join(f'{t:.2f}' for t in times[name])})")
            print(f"{'':<11} fedipress cold is {median / cold:.2f}x faster")
        out["pelican"] = times
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
