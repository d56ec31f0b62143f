"""Helpers for `--dry-run` checks: hash a whole folder, run a command without base_url.

Shared by several test modules (which must not import each other)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from support.e2e_helpers import Blog, CommandResult, _env


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file and folder under `root` (relative path -> sha256 of the bytes, or "dir")."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = "dir"
        for name in files:
            path = Path(folder, name)
            found[os.path.relpath(path, root)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_without_base_url(blog: Blog, argv: tuple[str, ...]) -> CommandResult:
    """`fedipress ARGV` as typed, so site.yaml's base_url counts (Blog.fedipress adds one)."""
    completed = subprocess.run([sys.executable, "-m", "fedipress.cli", *argv], cwd=blog.root,
                               env=_env(blog.env), capture_output=True, text=True, timeout=90,
                               stdin=subprocess.DEVNULL, check=False)
    assert "Traceback" not in completed.stderr, completed.stderr
    return CommandResult(argv, completed.returncode, completed.stdout, completed.stderr)
