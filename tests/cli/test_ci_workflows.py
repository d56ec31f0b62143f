"""`fedipress ci github|gitlab` and `init --ci`: the generated workflows, parsed as YAML and
checked step by step; their shell scripts run for real where they can run here."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedipress import __version__
from fedipress.cli import build_parser, main

GITHUB = Path(".github/workflows/fedipress.yml")
GITLAB = Path(".gitlab-ci.yml")
SECRET_REF = re.compile(r"\$\{\{ secrets\.([A-Z0-9_]+) \}\}")
DEPLOY_SECRETS = {
    "rsync": {"DEPLOY_SSH_KEY", "DEPLOY_KNOWN_HOSTS", "DEPLOY_TARGET"},
    "netlify": {"NETLIFY_AUTH_TOKEN", "NETLIFY_SITE_ID"},
    "cloudflare": {"CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"},
}
SERVICE_SECRETS = {"FEDIPRESS_SERVICE_URL", "FEDIPRESS_SERVICE_TOKEN"}
# Values a careless generator could copy from the environment into the file.
SENTINELS = {name: f"sentinel-{name.lower()}-b7d1" for name in
             SERVICE_SECRETS | set().union(*DEPLOY_SECRETS.values())}


@pytest.fixture(autouse=True)
def secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SENTINELS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A new blog that is the top of its own git repository, on branch main."""
    folder = tmp_path / "myblog"
    assert main(["init", str(folder)]) == 0
    _git(folder, "init", "-q", "-b", "main")
    return folder


def _git(folder: Path, *arguments: str) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "-C", str(folder), *arguments], check=True, capture_output=True)


def _ci(site: Path, *arguments: str) -> int:
    return main(["ci", *arguments, "--config", str(site)])


def _github(site: Path, *arguments: str) -> tuple[dict[str, Any], str]:
    assert _ci(site, "github", *arguments) == 0
    text = (site / GITHUB).read_text(encoding="utf-8")
    return yaml.safe_load(text), text


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _index(steps: list[dict[str, Any]], found: Any) -> int:
    matches = [i for i, step in enumerate(steps) if found(step)]
    assert len(matches) == 1, [s.get("name") for s in steps]
    return matches[0]


def _uses(action: str) -> Any:
    return lambda step: str(step.get("uses", "")).startswith(action + "@")


def _runs(command: str) -> Any:
    return lambda step: command in str(step.get("run", ""))


def _fedipress_commands(script: str) -> list[list[str]]:
    return [shlex.split(line.strip()) for line in script.splitlines()
            if line.strip().startswith("fedipress ")]


# --- GitHub Actions ---------------------------------------------------------------------------


@pytest.mark.parametrize("deploy", ["rsync", "netlify", "cloudflare"])
def test_github_workflow_builds_deploys_and_publishes_in_order(site: Path, deploy: str) -> None:
    workflow, _ = _github(site, "--deploy", deploy)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"] == {"branches": ["main"]}
    assert triggers["schedule"] == [{"cron": "17 * * * *"}]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["permissions"] == {"contents": "read"}

    steps = _steps(workflow)
    checkout = _index(steps, _uses("actions/checkout"))
    python = _index(steps, _uses("actions/setup-python"))
    install = _index(steps, _runs("pip install"))
    assert steps[install]["run"] == f"python -m pip install fedipress=={__version__}"
    cache = _index(steps, _uses("actions/cache"))
    assert steps[cache]["with"]["path"] == ".fedipress/cache"
    assert "hashFiles('site.yaml', 'content/**', 'themes/**')" in steps[cache]["with"]["key"]
    assert __version__ in steps[cache]["with"]["key"]
    build = _index(steps, _runs("fedipress build"))
    upload = _index(steps, _uses("actions/upload-artifact"))
    assert steps[upload]["with"]["include-hidden-files"] is True
    assert steps[upload]["with"]["path"] == "public"
    deploy_at = _index(steps, lambda s: str(s.get("name", "")).startswith("Deploy"))
    publish = _index(steps, _runs("fedipress publish"))
    assert checkout < python < install < cache < build < upload < deploy_at < publish
    assert publish == len(steps) - 1

    assert steps[publish]["run"] == "fedipress publish --no-build"
    assert steps[publish]["env"] == {name: f"${{{{ secrets.{name} }}}}"
                                     for name in SERVICE_SECRETS}
    step = steps[deploy_at]
    assert set(step["env"]) == DEPLOY_SECRETS[deploy]
    if deploy == "rsync":
        assert "rsync " in step["run"] and 'public/ "$DEPLOY_TARGET"' in step["run"]
        assert "StrictHostKeyChecking=yes" in step["run"]
    elif deploy == "netlify":
        assert step["run"].startswith("npx --yes netlify-cli@")
        assert "deploy --dir public --prod --no-build" in step["run"]
        assert _index(steps, _uses("actions/setup-node")) < deploy_at
    else:
        assert step["run"].startswith("npx --yes wrangler@")
        assert "pages deploy public --project-name myblog --branch main" in step["run"]
        assert _index(steps, _uses("actions/setup-node")) < deploy_at


def test_github_secrets_are_referenced_by_name_never_written(site: Path) -> None:
    for deploy in DEPLOY_SECRETS:
        workflow, text = _github(site, "--deploy", deploy, "--force")
        for value in SENTINELS.values():
            assert value not in text
        referenced = set()
        for step in _steps(workflow):
            for name, value in step.get("env", {}).items():
                # Every value handed to a step is a secret reference of the same name.
                assert value == f"${{{{ secrets.{name} }}}}", (name, value)
                referenced.add(name)
        assert referenced == SERVICE_SECRETS | DEPLOY_SECRETS[deploy]
        assert set(SECRET_REF.findall(text)) == referenced
        for name in referenced:  # and the header tells the user to add each one
            assert re.search(rf"^#\s+{name}\s+\S", text, re.MULTILINE), name


def test_github_workflow_explains_why_not_github_pages(site: Path) -> None:
    _, text = _github(site)
    comments = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    assert "Why not GitHub Pages?" in comments
    assert "application/activity+json" in comments
    assert "application/jrd+json" in comments


def test_every_upload_artifact_includes_hidden_files(site: Path) -> None:
    for deploy in DEPLOY_SECRETS:
        workflow, _ = _github(site, "--deploy", deploy, "--force")
        uploads = [s for s in _steps(workflow) if _uses("actions/upload-artifact")(s)]
        assert uploads
        assert all(s["with"]["include-hidden-files"] is True for s in uploads)


def test_fedipress_commands_in_the_workflows_parse(site: Path) -> None:
    workflow, _ = _github(site)
    scripts = [str(s.get("run", "")) for s in _steps(workflow)]
    assert _ci(site, "gitlab") == 0
    gitlab = yaml.safe_load((site / GITLAB).read_text(encoding="utf-8"))
    scripts += [line for job in ("build", "deploy", "publish") for line in gitlab[job]["script"]]
    commands = [c for script in scripts for c in _fedipress_commands(script)]
    assert [c[:2] for c in commands] == [["fedipress", "build"], ["fedipress", "publish"]] * 2
    for command in commands:
        build_parser().parse_args(command[1:])  # SystemExit (a failure) on a wrong option


def test_secret_check_step_names_every_missing_secret(site: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    workflow, _ = _github(site)
    check = next(s for s in _steps(workflow) if s.get("name") == "Check the secrets")
    env = {"PATH": "/usr/bin:/bin", "FEDIPRESS_SERVICE_URL": "https://blog.example/",
           "DEPLOY_TARGET": ""}
    missing = subprocess.run([bash, "-eo", "pipefail", "-c", check["run"]], env=env,
                             capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stdout.startswith("::error::add these repository secrets")
    named = missing.stdout.split(":", 4)[-1]
    for name in ("FEDIPRESS_SERVICE_TOKEN", "DEPLOY_SSH_KEY", "DEPLOY_KNOWN_HOSTS",
                 "DEPLOY_TARGET"):
        assert name in named
    assert "FEDIPRESS_SERVICE_URL" not in named
    env.update({name: "x" for name in SERVICE_SECRETS | DEPLOY_SECRETS["rsync"]})
    ok = subprocess.run([bash, "-eo", "pipefail", "-c", check["run"]], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_schedule_can_be_changed_or_turned_off(site: Path) -> None:
    workflow, _ = _github(site, "--schedule", "5 */6 * * *")
    assert workflow[True]["schedule"] == [{"cron": "5 */6 * * *"}]
    workflow, text = _github(site, "--schedule", "off", "--force")
    assert "schedule" not in workflow[True] and "cron" not in text
    assert set(workflow[True]) == {"push", "workflow_dispatch"}


def test_site_in_a_subfolder_of_the_repository(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    top = tmp_path / "repo"
    top.mkdir()
    _git(top, "init", "-q", "-b", "trunk")
    assert main(["init", str(top / "blog")]) == 0
    capsys.readouterr()
    assert _ci(top / "blog", "github") == 0
    assert "on push to trunk (the branch checked out" in capsys.readouterr().out
    assert not (top / "blog" / GITHUB).exists()  # GitHub reads workflows at the top only
    workflow = yaml.safe_load((top / GITHUB).read_text(encoding="utf-8"))
    assert workflow[True]["push"] == {"branches": ["trunk"]}
    assert workflow["jobs"]["fedipress"]["defaults"] == {"run": {"working-directory": "blog"}}
    steps = _steps(workflow)
    # `uses:` steps ignore working-directory: their paths start at the repository's top.
    assert steps[_index(steps, _uses("actions/cache"))]["with"]["path"] == "blog/.fedipress/cache"
    assert "'blog/site.yaml', 'blog/content/**'" in steps[_index(
        steps, _uses("actions/cache"))]["with"]["key"]
    assert steps[_index(steps, _uses("actions/upload-artifact"))]["with"]["path"] == "blog/public"

    assert _ci(top / "blog", "gitlab", "--branch", "release") == 0
    gitlab = yaml.safe_load((top / GITLAB).read_text(encoding="utf-8"))
    assert gitlab["workflow"]["rules"][0]["if"].startswith('$CI_COMMIT_BRANCH == "release" &&')
    assert gitlab["build"]["script"][-2:] == ["cd blog", "fedipress build"]
    assert gitlab["build"]["cache"]["paths"] == ["blog/.fedipress/cache/"]
    assert gitlab["publish"]["script"][-2:] == ["cd blog", "fedipress publish --no-build"]


def test_branch_is_origins_default_branch_not_the_one_checked_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    upstream = tmp_path / "upstream"
    assert main(["init", str(upstream)]) == 0
    _git(upstream, "init", "-q", "-b", "stable")
    _git(upstream, "add", ".")
    _git(upstream, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm",
         "blog")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(upstream), str(clone))
    _git(clone, "checkout", "-q", "-b", "feature")
    capsys.readouterr()
    workflow, _ = _github(clone)
    assert workflow[True]["push"] == {"branches": ["stable"]}
    assert "on push to stable (origin's default branch; --branch to change)" in \
        capsys.readouterr().out
    workflow, _ = _github(clone, "--branch", "feature", "--force")
    assert workflow[True]["push"] == {"branches": ["feature"]}


def test_configured_folders_and_site_file_are_used(site: Path) -> None:
    text = (site / "site.yaml").read_text(encoding="utf-8")
    (site / "site.yaml").unlink()
    (site / "blog settings.yaml").write_text(
        text + "output_dir: www\ncontent_dir: posts-src\n", encoding="utf-8")
    (site / "content").rename(site / "posts-src")
    assert main(["ci", "github", "--deploy", "netlify",
                 "--config", str(site / "blog settings.yaml")]) == 0
    steps = _steps(yaml.safe_load((site / GITHUB).read_text(encoding="utf-8")))
    assert steps[_index(steps, _uses("actions/upload-artifact"))]["with"]["path"] == "www"
    key = steps[_index(steps, _uses("actions/cache"))]["with"]["key"]
    assert "hashFiles('blog settings.yaml', 'posts-src/**', 'themes/**')" in key
    deploy = steps[_index(steps, lambda s: str(s.get("name", "")).startswith("Deploy"))]
    assert "deploy --dir www --prod" in deploy["run"]
    commands = [c for s in steps for c in _fedipress_commands(str(s.get("run", "")))]
    assert commands == [["fedipress", "build", "--config", "blog settings.yaml"],
                        ["fedipress", "publish", "--no-build", "--config", "blog settings.yaml"]]


def test_names_that_mean_something_to_yaml_stay_names(tmp_path: Path) -> None:
    top = tmp_path / "repo"
    top.mkdir()
    _git(top, "init", "-q", "-b", "main")
    folder = top / "my #blog: 2"
    assert main(["init", str(folder)]) == 0
    with (folder / "site.yaml").open("a", encoding="utf-8") as file:
        file.write('output_dir: "out #1"\n')
    for provider in ("github", "gitlab"):
        assert _ci(folder, provider, "--deploy", "netlify") == 0
    steps = _steps(yaml.safe_load((top / GITHUB).read_text(encoding="utf-8")))
    assert steps[_index(steps, _uses("actions/upload-artifact"))]["with"]["path"] == \
        "my #blog: 2/out #1"
    assert "hashFiles('my #blog: 2/site.yaml'" in \
        steps[_index(steps, _uses("actions/cache"))]["with"]["key"]
    deploy = steps[_index(steps, lambda s: str(s.get("name", "")).startswith("Deploy"))]
    assert deploy["name"] == "Deploy out #1/ to Netlify"
    assert shlex.split(deploy["run"])[4:6] == ["--dir", "out #1"]
    gitlab = yaml.safe_load((top / GITLAB).read_text(encoding="utf-8"))
    assert gitlab["deploy"]["script"][0] == "cd 'my #blog: 2'"
    assert gitlab["build"]["artifacts"]["paths"][0] == "my #blog: 2/out #1/"


# --- GitLab CI --------------------------------------------------------------------------------


@pytest.mark.parametrize("deploy", ["rsync", "netlify", "cloudflare"])
def test_gitlab_pipeline_stages_jobs_and_rules(site: Path, deploy: str) -> None:
    assert _ci(site, "gitlab", "--deploy", deploy) == 0
    text = (site / GITLAB).read_text(encoding="utf-8")
    pipeline = yaml.safe_load(text)
    assert pipeline["stages"] == ["build", "deploy", "publish"]
    (rule,) = pipeline["workflow"]["rules"]
    assert rule["if"].startswith("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && (")
    for source in ("push", "schedule", "web"):
        assert f'$CI_PIPELINE_SOURCE == "{source}"' in rule["if"]
    assert "Pipeline schedules" in text  # where GitLab's schedule is set, said in a comment

    build = pipeline["build"]
    assert build["stage"] == "build" and build["image"].startswith("python:")
    assert build["cache"] == {"key": f"fedipress-{__version__}", "paths": [".fedipress/cache/"]}
    assert build["script"][1:] == [f"python -m pip install fedipress=={__version__}",
                                   "fedipress build"]
    assert set(build["artifacts"]["paths"]) == {"public/", ".fedipress/"}
    assert ".fedipress/cache/**/*" in build["artifacts"]["exclude"]

    job = pipeline["deploy"]
    assert job["stage"] == "deploy" and job["needs"] == ["build"]
    script = "\n".join(job["script"])
    if deploy == "rsync":
        assert "rsync " in script and 'public/ "$DEPLOY_TARGET"' in script
    elif deploy == "netlify":
        assert job["image"].startswith("node:")
        assert "netlify-cli@" in script and "--dir public --prod --no-build" in script
    else:
        assert "wrangler@" in script and "--project-name myblog" in script

    publish = pipeline["publish"]
    assert publish["stage"] == "publish"
    assert {"job": "build", "artifacts": True} in publish["needs"]
    assert {"job": "deploy", "artifacts": False} in publish["needs"]
    assert publish["script"][-1] == "fedipress publish --no-build"
    assert publish["resource_group"] == job["resource_group"]

    for value in SENTINELS.values():
        assert value not in text
    for name in SERVICE_SECRETS | DEPLOY_SECRETS[deploy]:
        assert name in build["script"][0]  # the first thing the pipeline does: check them


def test_gitlab_refuses_a_schedule_in_the_file(site: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _ci(site, "gitlab", "--schedule", "17 * * * *") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Pipeline schedules" in error
    assert not (site / GITLAB).exists()


# --- writing ----------------------------------------------------------------------------------


def test_refuses_to_overwrite_without_force(site: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    target = site / GITHUB
    target.parent.mkdir(parents=True)
    target.write_text("# mine\n", encoding="utf-8")
    assert _ci(site, "github") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "already exists" in error and "--force" in error
    assert target.read_text(encoding="utf-8") == "# mine\n"

    assert _ci(site, "github", "--stdout") == 0
    printed = capsys.readouterr()
    assert yaml.safe_load(printed.out)["name"] == "fedipress"
    assert "FEDIPRESS_SERVICE_TOKEN" in printed.err  # the setup notes, off stdout
    assert target.read_text(encoding="utf-8") == "# mine\n"

    assert _ci(site, "github", "--force") == 0
    assert capsys.readouterr().out.startswith(f"replaced {target}")
    assert yaml.safe_load(target.read_text(encoding="utf-8"))["name"] == "fedipress"
    assert not [p for p in target.parent.iterdir() if p != target]  # no temporary left


@pytest.mark.parametrize(("arguments", "words"), [
    (["github", "--schedule", "hourly"], "not a cron schedule"),
    (["github", "--schedule", "61 * * * * *"], "five fields"),
    (["github", "--branch=-x"], "not a branch name"),
    (["github", "--branch", "a b"], "not a branch name"),
    (["github", "--project", "blog"], "--deploy cloudflare"),
    (["github", "--deploy", "cloudflare", "--project", "My Blog"], "Cloudflare Pages project"),
])
def test_mistakes_are_one_line(site: Path, capsys: pytest.CaptureFixture[str],
                               arguments: list[str], words: str) -> None:
    assert _ci(site, *arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and words in error, error
    assert not (site / GITHUB).exists()


def test_missing_public_key_is_pointed_out(site: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _ci(site, "github", "--stdout") == 0
    assert "fedipress-public-key.pem is missing; run `fedipress keys generate`" in \
        capsys.readouterr().err
    assert main(["keys", "generate", "--config", str(site)]) == 0
    capsys.readouterr()
    assert _ci(site, "github", "--stdout") == 0
    assert "public-key.pem" not in capsys.readouterr().err


def test_ci_needs_a_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "github", "--config", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / ".github").exists()


# --- init --ci --------------------------------------------------------------------------------


def test_init_ci_github_writes_the_workflow_in_the_new_blog(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "newblog"
    assert main(["init", str(folder), "--ci", "github", "--deploy", "netlify"]) == 0
    out = capsys.readouterr().out
    assert f"created {folder / GITHUB}" in out
    assert "NETLIFY_AUTH_TOKEN" in out and "FEDIPRESS_SERVICE_TOKEN" in out
    workflow = yaml.safe_load((folder / GITHUB).read_text(encoding="utf-8"))
    steps = _steps(workflow)
    assert "netlify-cli@" in steps[_index(steps, lambda s: "Deploy" in s.get("name", ""))]["run"]
    assert (folder / "site.yaml").is_file()
    assert "fedipress-public-key.pem is missing" not in out  # a new blog: keys come next
    # The new blog builds with the options the workflow's build step uses (the sentinel
    # service address is no address: a build would refuse to read a conversation there).
    monkeypatch.delenv("FEDIPRESS_SERVICE_URL")
    assert main(["keys", "generate", "--config", str(folder)]) == 0
    assert main(["build", "--config", str(folder)]) == 0


def test_init_ci_gitlab_and_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "a"), "--ci", "gitlab"]) == 0
    assert yaml.safe_load((tmp_path / "a" / GITLAB).read_text(encoding="utf-8"))["stages"]
    capsys.readouterr()
    assert main(["init", str(tmp_path / "b"), "--deploy", "netlify"]) == 2
    assert "--ci" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_rsync_deploy_script_copies_hidden_files_and_deletes_stale_ones(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deploy step's own script, run by bash against a local target (rsync reaches a
    `host:path` through the same options over SSH): `.well-known/` and `_headers` arrive, a
    file the build no longer makes goes."""
    bash, rsync = shutil.which("bash"), shutil.which("rsync")
    if bash is None or rsync is None:
        pytest.skip("bash or rsync is not installed (apt-get install rsync)")
    workflow, _ = _github(site)
    step = next(s for s in _steps(workflow) if str(s.get("name", "")).startswith("Deploy"))
    assert main(["keys", "generate", "--config", str(site)]) == 0  # committed, in a real blog
    monkeypatch.delenv("FEDIPRESS_SERVICE_URL")  # (a sentinel, not the service's address)
    assert main(["build", "--config", str(site)]) == 0
    target = tmp_path / "served"
    (target / "posts" / "gone").mkdir(parents=True)
    (target / "posts" / "gone" / "index.html").write_text("old", encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "DEPLOY_SSH_KEY": "not a real key",
           "DEPLOY_KNOWN_HOSTS": "blog.example ssh-ed25519 AAAA", "DEPLOY_TARGET": f"{target}/"}
    done = subprocess.run([bash, "-eo", "pipefail", "-c", step["run"]], cwd=site, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / ".well-known" / "webfinger").is_file()
    assert (target / "_headers").is_file()
    assert (target / "actor.json").read_bytes() == (site / "public" / "actor.json").read_bytes()
    assert not (target / "posts" / "gone").exists()
    key = home / ".ssh" / "fedipress_deploy"
    assert key.read_text(encoding="utf-8") == "not a real key\n"
    assert key.stat().st_mode & 0o077 == 0  # the private key is the runner user's alone
