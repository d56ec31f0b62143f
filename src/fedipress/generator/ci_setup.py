"""`fedipress ci github|gitlab` and `init --ci`: fit a ready-made workflow to this blog and
write it where the CI service looks.

The text comes from `ci_workflows` (pure); this module finds what it depends on: the git
repository around the site (a workflow in a subfolder's `.github/` never runs, so the file
goes to the repository's top and the steps run in the site's folder), the branch whose pushes
deploy, the configured folders. Writing never replaces a file unless asked (`force`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..config import SiteConfig
from ..errors import FedipressError
from .ci_workflows import (
    DEFAULT_DEPLOY,
    DEFAULT_SCHEDULE,
    Workflow,
    WorkflowOptions,
    ci_workflow,
)
from .slug import slugify

__all__ = ["SCHEDULE_OFF", "CiPlan", "CiRequest", "init_workflow", "plan_ci", "write_ci"]

# `--schedule off`: no scheduled runs (each costs runner minutes; a private repository on
# GitHub's free plan would spend most of its month on an hourly schedule).
SCHEDULE_OFF = "off"


@dataclass(frozen=True)
class CiRequest:
    """What the user asked for. None means "choose": the branch is found in git, the
    schedule is hourly on GitHub (GitLab keeps schedules outside the file), the Cloudflare
    Pages project is named after the site's folder."""

    provider: str
    deploy: str = DEFAULT_DEPLOY
    branch: str | None = None
    schedule: str | None = None
    cloudflare_project: str | None = None


@dataclass(frozen=True)
class CiPlan:
    """The workflow for this blog, where it goes, and what to tell the user (one line each)."""

    workflow: Workflow
    target: Path
    report: tuple[str, ...]


def plan_ci(config: SiteConfig, request: CiRequest) -> CiPlan:
    """The workflow for the blog of `config`, fitted to the repository it is in."""
    repo = _repository(config.root)
    top = repo or config.root
    site_dir = _relative(config.root, top, "the site folder")
    _relative(config.output_dir, top, "the output folder")
    _relative(config.content_dir, top, "the content folder")
    if request.branch is not None:
        branch, source = request.branch, "--branch"
    elif request.provider == "gitlab":
        branch, source = None, ""
    else:
        branch, source = _git_branch(top if repo else None)
    if request.cloudflare_project is not None and request.deploy != "cloudflare":
        raise FedipressError("--project names a Cloudflare Pages project; it goes with"
                             " --deploy cloudflare")
    options = WorkflowOptions(
        deploy=request.deploy,
        branch=branch,
        schedule=_schedule(request),
        site_dir=site_dir,
        config_file=os.path.relpath(config.config_file, config.root).replace(os.sep, "/"),
        output_dir=os.path.relpath(config.output_dir, config.root).replace(os.sep, "/"),
        content_dir=os.path.relpath(config.content_dir, config.root).replace(os.sep, "/"),
        cloudflare_project=request.cloudflare_project or _project_name(config.root),
    )
    workflow = ci_workflow(request.provider, options)
    report = list(workflow.notes)
    if source:
        if source != "--branch":
            source += "; --branch to change"
        report[0] = report[0].replace(f"on push to {branch}",
                                      f"on push to {branch} ({source})", 1)
    if repo is None:
        report.append(f"note: {config.root} is not in a git repository; the file is written"
                      " there, so make that folder the top of the repository you push")
    key = config.root / config.fediverse.public_key_file
    if not key.is_file():
        report.append(f"note: {key.name} is missing; run `fedipress keys generate` and commit"
                      " it: a CI build never makes a key")
    return CiPlan(workflow, top / workflow.path, (*report, *_secrets_lines(workflow)))


def init_workflow(target: Path, provider: str, deploy: str = DEFAULT_DEPLOY) -> CiPlan:
    """The workflow for a blog `fedipress init` is about to create in `target`, which becomes
    the top of its repository: the branch is git's init.defaultBranch, else main."""
    branch: str | None = None
    source = ""
    if provider == "github":
        branch, source = _git_branch(None)
    request = CiRequest(provider, deploy=deploy, branch=branch)
    options = WorkflowOptions(deploy=deploy, branch=branch, schedule=_schedule(request),
                              cloudflare_project=_project_name(target))
    workflow = ci_workflow(provider, options)
    report = list(workflow.notes)
    if source:
        report[0] = report[0].replace(
            f"on push to {branch}", f"on push to {branch} ({source}; `fedipress ci"
            f" {provider} --force --branch NAME` to change)", 1)
    return CiPlan(workflow, target / workflow.path, (*report, *_secrets_lines(workflow)))


def write_ci(plan: CiPlan, *, force: bool = False) -> Path:
    """Write the planned file; an existing one is replaced only with `force` (atomically, so a
    failure leaves the old file whole). Returns the path written."""
    path = plan.target
    data = plan.workflow.text.encode("utf-8")
    if path.is_dir():
        raise FedipressError(f"{path}: is a folder; move it out of the way")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FedipressError(f"{path.parent}: cannot create this folder"
                             f" ({(error.strerror or str(error)).lower()})") from None
    if not force:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise FedipressError(f"{path}: already exists; not overwriting it (--force replaces"
                                 " it, --stdout prints the new one instead)") from None
        except OSError as error:
            raise FedipressError(f"{path}: cannot create this file ({error.strerror});"
                                 " check the folder's permissions") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise FedipressError(f"{path}: cannot write this file ({error.strerror});"
                             " check the folder's permissions") from None
    return path


# --- what the workflow depends on ---------------------------------------------------------------


def _schedule(request: CiRequest) -> str | None:
    if request.schedule == SCHEDULE_OFF:
        return None
    if request.provider == "github" and request.schedule is None:
        return DEFAULT_SCHEDULE
    return request.schedule  # on GitLab, a given schedule is refused by ci_workflow


def _repository(folder: Path) -> Path | None:
    """The top of the git work tree holding `folder` (`.git` is a folder, or a file in a
    linked work tree or submodule); None outside any."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


def _relative(path: Path, top: Path, what: str) -> str:
    """`path` relative to `top`, POSIX-style; refused when outside it: a CI run has only the
    repository's clone."""
    try:
        relative = PurePath(os.path.relpath(path, top))
    except ValueError:  # another drive on Windows
        relative = PurePath("..", path)
    if relative.parts[:1] == ("..",):
        raise FedipressError(f"{what} {path} is outside the repository {top}; a CI run has only"
                             " the repository, so move it inside")
    return relative.as_posix()


def _git(arguments: Sequence[str], folder: Path | None) -> str | None:
    """One git query's answer, or None when git is absent, fails or has no answer."""
    command = ["git", *(["-C", str(folder)] if folder is not None else []), *arguments]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    answer = done.stdout.strip()
    return answer if done.returncode == 0 and answer else None


def _git_branch(repo: Path | None) -> tuple[str, str]:
    """The branch whose pushes deploy, and where that came from: origin's default branch,
    else the branch checked out, else the branch `git init` would make, else main."""
    if repo is not None:
        remote = _git(["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"], repo)
        if remote is not None and remote.startswith("origin/"):
            return remote.removeprefix("origin/"), "origin's default branch"
        current = _git(["symbolic-ref", "--quiet", "--short", "HEAD"], repo)
        if current is not None:
            return current, "the branch checked out"
    configured = _git(["config", "--get", "init.defaultBranch"], repo)
    if configured is not None:
        return configured, "git's init.defaultBranch"
    return "main", "GitHub's default"


def _project_name(root: Path) -> str:
    """A Cloudflare Pages project name from the site's folder: at most 58 of [a-z0-9-]."""
    name = slugify(root.resolve().name)[:58].strip("-")
    return name or "blog"


def _secrets_lines(workflow: Workflow) -> list[str]:
    github = workflow.path.startswith(".github/")
    where = ("repository secrets (Settings > Secrets and variables > Actions)" if github
             else "CI/CD variables (Settings > CI/CD > Variables, Masked and Protected)")
    width = max(len(s.name) for s in workflow.secrets)
    return [f"Add these {where}:",
            *[f"  {s.name.ljust(width)}  {s.what}" for s in workflow.secrets]]

