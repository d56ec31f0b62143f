"""Ready-made CI workflows: GitHub Actions and GitLab CI files that build, deploy and publish.

`fedipress ci github|gitlab` and `fedipress init --ci github|gitlab` write what `ci_workflow`
returns. Each run: install the fedipress that wrote the file (pinned), restore the build
cache (`.fedipress/cache`), build, deploy the output folder to Netlify, Cloudflare Pages or a
server over rsync, then `fedipress publish --no-build` through the blog's own service
(FEDIPRESS_SERVICE_URL, FEDIPRESS_SERVICE_TOKEN). The runner keeps no state: the service holds
the key, the followers and the ledger.

Secrets are referenced by name only (`${{ secrets.NAME }}`, GitLab's `$NAME`): this module
never sees a value. Pure: options in, text out; the files are written by `ci_setup`.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from posixpath import join, normpath

from .. import __version__
from ..errors import FedipressError
from ..wording import docs_url

__all__ = [
    "DEFAULT_DEPLOY", "DEFAULT_SCHEDULE", "DEPLOYS", "PROVIDERS", "Secret", "Workflow",
    "WorkflowOptions", "ci_workflow", "workflow_path",
]

PROVIDERS = ("github", "gitlab")
# rsync first, and the default: a fedipress blog already needs a machine for its service, and
# that machine can serve the site too (nginx or Caddy set the content types, one host, no
# third-party account). Netlify and Cloudflare Pages read the `_headers` file the build writes.
DEPLOYS = ("rsync", "netlify", "cloudflare")
DEFAULT_DEPLOY = "rsync"
# Hourly, at a minute past the busy top of the hour, so a post dated in the future goes out
# within the hour after its date.
DEFAULT_SCHEDULE = "17 * * * *"

_PATHS = {"github": ".github/workflows/fedipress.yml", "gitlab": ".gitlab-ci.yml"}

# Versions of what the workflows run besides fedipress. Majors only, so fixes arrive; both
# npm tools need Node 22 or later.
_PYTHON = "3.12"
_NODE = "22"
_NETLIFY_CLI = "netlify-cli@27"
_WRANGLER = "wrangler@4"
_CHECKOUT = "actions/checkout@v4"
_SETUP_PYTHON = "actions/setup-python@v5"
_SETUP_NODE = "actions/setup-node@v4"
_CACHE = "actions/cache@v4"
_UPLOAD = "actions/upload-artifact@v4"


@dataclass(frozen=True)
class Secret:
    """A secret the workflow reads by name: a repository secret (GitHub) or a CI/CD variable
    (GitLab). `what` tells the user what to put there."""

    name: str
    what: str


@dataclass(frozen=True)
class WorkflowOptions:
    """What a workflow is made from. Paths are POSIX, relative: `site_dir` to the repository
    root ("." when site.yaml is at the top), `config_file` and `output_dir` to `site_dir`."""

    deploy: str = DEFAULT_DEPLOY
    fedipress_version: str = __version__
    # The branch whose pushes deploy. GitHub needs a name; None on GitLab means the project's
    # default branch, whatever it is ($CI_DEFAULT_BRANCH).
    branch: str | None = None
    schedule: str | None = DEFAULT_SCHEDULE  # GitHub only: GitLab keeps schedules in its UI
    site_dir: str = "."
    config_file: str = "site.yaml"
    output_dir: str = "public"
    content_dir: str = "content"
    cloudflare_project: str = "blog"


@dataclass(frozen=True)
class Workflow:
    """A generated file: where it goes (relative to the repository root), its text, the
    secrets to add, and what else the user must do (one line each)."""

    path: str
    text: str
    secrets: tuple[Secret, ...]
    notes: tuple[str, ...]


_SERVICE_SECRETS = (
    Secret("FEDIPRESS_SERVICE_URL", "the address of your `fedipress inbox` service"),
    Secret("FEDIPRESS_SERVICE_TOKEN", "the service's owner token (`fedipress service token`)"),
)
_DEPLOY_SECRETS = {
    "rsync": (
        Secret("DEPLOY_SSH_KEY", "a private SSH key allowed to write the site folder"),
        Secret("DEPLOY_KNOWN_HOSTS", "the server's line(s) from `ssh-keyscan HOST`"),
        Secret("DEPLOY_TARGET", "where the site goes, e.g. deploy@blog.example:/srv/blog/"),
    ),
    "netlify": (
        Secret("NETLIFY_AUTH_TOKEN", "a Netlify personal access token"),
        Secret("NETLIFY_SITE_ID", "the site's ID (Site configuration > Site details)"),
    ),
    "cloudflare": (
        Secret("CLOUDFLARE_API_TOKEN", "a Cloudflare API token with Pages: Edit"),
        Secret("CLOUDFLARE_ACCOUNT_ID", "your Cloudflare account ID"),
    ),
}
_DEPLOY_NAMES = {
    "rsync": "a server, with rsync over SSH",
    "netlify": "Netlify",
    "cloudflare": "Cloudflare Pages",
}

# git forbids far more in a branch name; these are the characters that could break out of a
# YAML string or a shell word, plus what would make the trigger match nothing.
_BRANCH = re.compile(r"[A-Za-z0-9._/+-]+")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*,/-]+")
_CLOUDFLARE_PROJECT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,56}[a-z0-9])?")
_VERSION = re.compile(r"[0-9A-Za-z.+!-]+")
_UNSAFE_PATH = re.compile(r"[\x00-\x1f\x7f'\"\\`$]")
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9 ._/=@,+-]*")


def workflow_path(provider: str) -> str:
    """Where `provider`'s file goes, relative to the repository root."""
    return _PATHS[_provider(provider)]


def ci_workflow(provider: str, options: WorkflowOptions) -> Workflow:
    """The workflow file for `provider` ("github" or "gitlab"); FedipressError for options
    that cannot make a working file."""
    _check(provider, options)
    secrets = _SERVICE_SECRETS + _DEPLOY_SECRETS[options.deploy]
    if provider == "github":
        return Workflow(_PATHS[provider], _github(options, secrets), secrets,
                        _github_notes(options))
    return Workflow(_PATHS[provider], _gitlab(options, secrets), secrets, _gitlab_notes(options))


# --- checks -----------------------------------------------------------------------------------


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise FedipressError(f"no workflow for {provider!r}; choose one of"
                             f" {', '.join(PROVIDERS)}")
    return provider


def _check(provider: str, options: WorkflowOptions) -> None:
    _provider(provider)
    if options.deploy not in DEPLOYS:
        raise FedipressError(f"no deploy step for {options.deploy!r}; choose one of"
                             f" {', '.join(DEPLOYS)}")
    if not _VERSION.fullmatch(options.fedipress_version):
        raise FedipressError(f"{options.fedipress_version!r} is not a fedipress version")
    branch = options.branch
    if branch is not None and (not _BRANCH.fullmatch(branch) or branch.startswith(("-", "/"))
                               or branch.endswith("/") or ".." in branch):
        raise FedipressError(f"{branch!r} is not a branch name git accepts; give the branch"
                             " that deploys, e.g. --branch main")
    if options.schedule is not None:
        if provider == "gitlab":
            raise FedipressError("GitLab keeps pipeline schedules in the project (Build >"
                                 " Pipeline schedules), not in .gitlab-ci.yml; leave out"
                                 " --schedule and add the schedule there")
        fields = options.schedule.split()
        if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
            raise FedipressError(f"{options.schedule!r} is not a cron schedule: give five fields,"
                                 f" minute hour day month weekday, e.g. {DEFAULT_SCHEDULE!r}"
                                 " (hourly)")
    if options.deploy == "cloudflare" and not _CLOUDFLARE_PROJECT.fullmatch(
            options.cloudflare_project):
        raise FedipressError(f"{options.cloudflare_project!r} is not a Cloudflare Pages project"
                             " name: lower-case letters, digits and hyphens, at most 58")
    for what, path in (("the site folder", options.site_dir),
                       ("the site file", options.config_file),
                       ("the output folder", options.output_dir),
                       ("the content folder", options.content_dir)):
        if _UNSAFE_PATH.search(path) or path.startswith("/"):
            raise FedipressError(f"{what} {path!r} cannot be named in a workflow file (quotes,"
                                 " $, backslashes or control characters); rename it")


# --- shared pieces ----------------------------------------------------------------------------


def _q(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text, ensure_ascii=False)


def _in_repo(options: WorkflowOptions, path: str) -> str:
    """`path` (relative to the site) relative to the repository root."""
    return normpath(join(options.site_dir, path))


def _fedipress(options: WorkflowOptions, command: str) -> str:
    extra = "" if options.config_file == "site.yaml" else \
        f" --config {shlex.quote(options.config_file)}"
    return f"fedipress {command}{extra}"


def _pin(options: WorkflowOptions) -> str:
    return f"python -m pip install fedipress=={options.fedipress_version}"


def _scalar(text: str) -> str:
    """`text` as a YAML scalar: plain when nothing in it means anything to YAML (a command line
    reads best that way), double-quoted otherwise (a path with `: ` or ` #` in it)."""
    return text if _PLAIN.fullmatch(text) else _q(text)


def _secret_check(names: tuple[str, ...], github: bool) -> list[str]:
    """A shell script that fails, naming every missing secret, before anything is deployed."""
    where = ("repository secrets (Settings > Secrets and variables > Actions)" if github
             else "CI/CD variables (Settings > CI/CD > Variables)")
    prefix = "::error::" if github else ""
    return [
        'missing=""',
        f"for name in {' '.join(names)}; do",
        '  [ -n "$(printenv "$name")" ] || missing="$missing $name"',
        "done",
        'if [ -n "$missing" ]; then',
        f'  echo "{prefix}add these {where}:$missing; see {docs_url("ci")}"',
        "  exit 1",
        "fi",
    ]


def _header(options: WorkflowOptions, provider: str, secrets: tuple[Secret, ...],
            where: str) -> list[str]:
    width = max(len(s.name) for s in secrets)
    lines = [
        "# Build this fedipress blog, deploy it and announce new posts to its followers.",
        f"# Written by `fedipress ci {provider}` (fedipress {options.fedipress_version});"
        f" `fedipress ci {provider} --force`",
        "# writes it anew. How it works and how to set it up:",
        f"# {docs_url('ci', 'ready-made-workflows')}",
        "#",
        "# The runner starts empty and keeps nothing: `fedipress publish` sends what the build",
        "# made to the blog's own service (`fedipress inbox`), which holds the private key,",
        "# the followers and what was already announced. Commit fedipress-public-key.pem:",
        "# a CI build never makes a key.",
        "#",
        f"# It reads these {where};",
        "# their values are never written here:",
    ]
    lines += [f"#   {s.name.ljust(width)}  {s.what}" for s in secrets]
    lines += [
        "#",
        "# Why not GitHub Pages? It serves every .json file as application/json and",
        "# .well-known/webfinger (no extension) as application/octet-stream, and offers no way",
        "# to set a response header. Mastodon and other servers ignore an actor or a post that",
        "# is not served as application/activity+json, and WebFinger needs",
        "# application/jrd+json with Access-Control-Allow-Origin: *, so a blog served by GitHub",
        "# Pages alone can be neither found nor followed (and Pages cannot receive the inbox's",
        "# POSTs). Deploy to a host that reads the public/_headers file the build writes",
        "# (Netlify, Cloudflare Pages) or to your own server (nginx or Caddy: `fedipress",
        "# hosting nginx`).",
    ]
    if provider == "gitlab":
        lines.append("# GitLab Pages sets no custom header either.")
    lines.append("")
    return lines


def _block(lines: list[str], indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}{line}" if line else "" for line in lines]


# --- GitHub Actions ---------------------------------------------------------------------------


def _github(options: WorkflowOptions, secrets: tuple[Secret, ...]) -> str:
    branch = options.branch or "main"
    version = options.fedipress_version
    hashed = ", ".join(f"'{_in_repo(options, p)}'" for p in (
        options.config_file, f"{options.content_dir}/**", "themes/**"))
    cache_key = f"fedipress-{version}-"
    output = options.output_dir
    lines = _header(options, "github", secrets, "repository secrets (Settings > Secrets and"
                    " variables > Actions)")
    lines += [
        "name: fedipress",
        "",
        "on:",
        "  push:",
        f"    branches: [{_q(branch)}]",
    ]
    if options.schedule is not None:
        lines += [
            "  # Scheduled runs publish posts dated in the future once their time has come.",
            "  # GitHub runs schedules on the default branch only, sometimes late, and pauses",
            "  # them in a public repository after 60 days without a commit.",
            "  schedule:",
            f"    - cron: {_q(options.schedule)}",
        ]
    lines += [
        "  workflow_dispatch: {}",
        "",
        "permissions:",
        "  contents: read",
        "",
        "# One run at a time; the next one waits. A publish is never cancelled halfway.",
        "concurrency:",
        "  group: fedipress",
        "  cancel-in-progress: false",
        "",
        "jobs:",
        "  fedipress:",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 30",
    ]
    if options.site_dir != ".":
        lines += [
            "    defaults:",
            "      run:",
            f"        working-directory: {_q(options.site_dir)}",
        ]
    names = tuple(s.name for s in secrets)
    lines += [
        "    steps:",
        "      - name: Check out the blog",
        f"        uses: {_CHECKOUT}",
        "",
        "      - name: Check the secrets",
        "        env:",
        *[f"          {name}: ${{{{ secrets.{name} }}}}" for name in names],
        "        run: |",
        *_block(_secret_check(names, github=True), 10),
        "",
        "      - name: Set up Python",
        f"        uses: {_SETUP_PYTHON}",
        "        with:",
        f"          python-version: {_q(_PYTHON)}",
        "",
        "      - name: Install fedipress",
        "        # The release that wrote this file; `fedipress ci github --force` after an",
        "        # upgrade moves the pin.",
        f"        run: {_scalar(_pin(options))}",
        "",
        "      - name: Restore the build cache",
        "        # Keyed on the content: an unchanged blog restores its exact cache, an edited",
        "        # one the newest cache, which the build brings up to date (and this step saves).",
        f"        uses: {_CACHE}",
        "        with:",
        f"          path: {_q(_in_repo(options, '.fedipress/cache'))}",
        f"          key: {_q(cache_key + '${{ hashFiles(' + hashed + ') }}')}",
        "          restore-keys: |",
        f"            {cache_key}",
        "",
        "      - name: Build",
        "        # With the service's address and token the pages show each post's replies,",
        "        # likes, boosts and quotes, read from the service.",
        "        env:",
        *[f"          {s.name}: ${{{{ secrets.{s.name} }}}}" for s in _SERVICE_SECRETS],
        f"        run: {_scalar(_fedipress(options, 'build'))}",
        "",
        "      - name: Keep the built site",
        "        # Download it from the run's page to see exactly what was deployed.",
        "        # include-hidden-files: since v4 the artifact action leaves out files and",
        "        # folders whose names start with a dot, .well-known/ (WebFinger) among them.",
        f"        uses: {_UPLOAD}",
        "        with:",
        "          name: site",
        f"          path: {_q(_in_repo(options, output))}",
        "          include-hidden-files: true",
        "          if-no-files-found: error",
        "          retention-days: 7",
        "",
        *_github_deploy(options, branch),
        "",
        "      - name: Publish through the fedipress service",
        "        # --no-build: announce exactly what was deployed. The service queues the",
        "        # deliveries and retries them; this step ends once they are queued.",
        "        env:",
        *[f"          {s.name}: ${{{{ secrets.{s.name} }}}}" for s in _SERVICE_SECRETS],
        f"        run: {_scalar(_fedipress(options, 'publish --no-build'))}",
    ]
    return "\n".join(lines) + "\n"


def _env(deploy: str) -> list[str]:
    return ["        env:",
            *[f"          {s.name}: ${{{{ secrets.{s.name} }}}}" for s in _DEPLOY_SECRETS[deploy]]]


def _github_deploy(options: WorkflowOptions, branch: str) -> list[str]:
    output = shlex.quote(options.output_dir)
    if options.deploy == "rsync":
        return [
            f"      - name: {_scalar(f'Deploy {options.output_dir}/ with rsync over SSH')}",
            "        # DEPLOY_TARGET is the folder the web server serves, and that folder only:",
            "        # --delete removes what the build no longer makes (a deleted post).",
            *_env("rsync"),
            "        run: |",
            *_block(_rsync_script(output), 10),
        ]
    node = [
        "      - name: Set up Node.js",
        f"        uses: {_SETUP_NODE}",
        "        with:",
        f"          node-version: {_q(_NODE)}",
        "",
    ]
    if options.deploy == "netlify":
        return node + [
            f"      - name: {_scalar(f'Deploy {options.output_dir}/ to Netlify')}",
            "        # The build's _headers file gives the ActivityPub files their content types.",
            *_env("netlify"),
            f"        run: {_scalar(_netlify(output))}",
        ]
    return node + [
        f"      - name: {_scalar(f'Deploy {options.output_dir}/ to Cloudflare Pages')}",
        "        # The build's _headers file gives the ActivityPub files their content types.",
        "        # Create the project once: npx wrangler pages project create"
        f" {options.cloudflare_project} --production-branch {branch}",
        *_env("cloudflare"),
        f"        run: {_scalar(_wrangler(options, output, shlex.quote(branch)))}",
    ]


def _rsync_script(output: str) -> list[str]:
    # The key and known_hosts come from secrets; StrictHostKeyChecking=yes refuses a server
    # that is not the one in DEPLOY_KNOWN_HOSTS rather than trusting whoever answers.
    return [
        "umask 077",
        "mkdir -p ~/.ssh",
        "if [ -f \"$DEPLOY_SSH_KEY\" ]; then cp \"$DEPLOY_SSH_KEY\" ~/.ssh/fedipress_deploy;"
        " else printf '%s\\n' \"$DEPLOY_SSH_KEY\" > ~/.ssh/fedipress_deploy; fi",
        "printf '%s\\n' \"$DEPLOY_KNOWN_HOSTS\" > ~/.ssh/fedipress_known_hosts",
        "rsync --recursive --links --times --compress --delete --delay-updates \\",
        "  -e \"ssh -i $HOME/.ssh/fedipress_deploy -o IdentitiesOnly=yes"
        " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$HOME/.ssh/fedipress_known_hosts\""
        " \\",
        f"  {output}/ \"$DEPLOY_TARGET\"",
    ]


def _netlify(output: str) -> str:
    return f"npx --yes {_NETLIFY_CLI} deploy --dir {output} --prod --no-build"


def _wrangler(options: WorkflowOptions, output: str, branch: str) -> str:
    return (f"npx --yes {_WRANGLER} pages deploy {output} --project-name"
            f" {options.cloudflare_project} --branch {branch}")


def _github_notes(options: WorkflowOptions) -> tuple[str, ...]:
    when = f"on push to {options.branch or 'main'}"
    if options.schedule is not None:
        when += f" and on the schedule {options.schedule!r}"
    return (f"It runs {when}, and deploys to {_DEPLOY_NAMES[options.deploy]}.",)


# --- GitLab CI --------------------------------------------------------------------------------


def _gitlab(options: WorkflowOptions, secrets: tuple[Secret, ...]) -> str:
    version = options.fedipress_version
    python = f"python:{_PYTHON}-slim"
    branch = "$CI_DEFAULT_BRANCH" if options.branch is None else _q(options.branch)
    cd = [] if options.site_dir == "." else \
        [f"    - {_scalar('cd ' + shlex.quote(options.site_dir))}"]
    output = options.output_dir
    state = _in_repo(options, ".fedipress")
    lines = _header(options, "gitlab", secrets, "CI/CD variables (Settings > CI/CD > Variables,"
                    " Masked and Protected)")
    lines[-1:-1] = [
        "#",
        "# GitLab keeps schedules outside this file: add one under Build > Pipeline schedules",
        f"# (e.g. {DEFAULT_SCHEDULE!r}, hourly, on the default branch) so posts dated in the",
        "# future go out once their time has come.",
    ]
    names = tuple(s.name for s in secrets)
    lines += [
        "# Pushes to the branch that deploys, its schedules and runs started by hand; nothing",
        "# else (a merge request or another branch never deploys or publishes).",
        "workflow:",
        "  rules:",
        f"    - if: $CI_COMMIT_BRANCH == {branch} && ($CI_PIPELINE_SOURCE == \"push\""
        " || $CI_PIPELINE_SOURCE == \"schedule\" || $CI_PIPELINE_SOURCE == \"web\")",
        "",
        "stages:",
        "  - build",
        "  - deploy",
        "  - publish",
        "",
        "variables:",
        '  PIP_DISABLE_PIP_VERSION_CHECK: "1"',
        "",
        "build:",
        "  stage: build",
        f"  image: {python}",
        "  # GitLab saves the cache after every run under one key: the next build starts from",
        "  # the newest cache and brings it up to date.",
        "  cache:",
        f"    key: {_q('fedipress-' + version)}",
        "    paths:",
        f"      - {_q(_in_repo(options, '.fedipress/cache') + '/')}",
        "  script:",
        "    - |",
        *_block(_secret_check(names, github=False), 6),
        f"    - {_scalar(_pin(options))}",
        *cd,
        f"    - {_scalar(_fedipress(options, 'build'))}",
        "  # The built site for the deploy job, and the build's record of what it made for the",
        "  # publish job (never the cache, and never a key or a database, which CI has none of).",
        "  artifacts:",
        "    paths:",
        f"      - {_q(_in_repo(options, output) + '/')}",
        f"      - {_q(state + '/')}",
        "    exclude:",
        f"      - {_q(state + '/cache/**/*')}",
        f"      - {_q(state + '/*.pem')}",
        f"      - {_q(state + '/*.db*')}",
        "    expire_in: 1 week",
        "",
        *_gitlab_deploy(options, cd),
        "",
        "publish:",
        "  stage: publish",
        f"  image: {python}",
        "  needs:",
        "    - job: build",
        "      artifacts: true",
        "    - job: deploy",
        "      artifacts: false",
        "  resource_group: fedipress",
        "  interruptible: false",
        "  # --no-build: announce exactly what was deployed. FEDIPRESS_SERVICE_URL and",
        "  # FEDIPRESS_SERVICE_TOKEN come from the CI/CD variables; the service queues the",
        "  # deliveries and retries them.",
        "  script:",
        f"    - {_scalar(_pin(options))}",
        *cd,
        f"    - {_scalar(_fedipress(options, 'publish --no-build'))}",
    ]
    return "\n".join(lines) + "\n"


def _gitlab_deploy(options: WorkflowOptions, cd: list[str]) -> list[str]:
    output = shlex.quote(options.output_dir)
    lines = [
        "deploy:",
        "  stage: deploy",
    ]
    if options.deploy == "rsync":
        lines += [
            "  image: debian:bookworm-slim",
            "  needs: [build]",
            "  resource_group: fedipress",
            "  # DEPLOY_TARGET is the folder the web server serves, and that folder only:",
            "  # --delete removes what the build no longer makes (a deleted post). Give",
            "  # DEPLOY_SSH_KEY the type File: GitLab cannot mask a value of several lines.",
            "  script:",
            "    - apt-get update -qq && apt-get install -y -qq --no-install-recommends rsync"
            " openssh-client",
            *cd,
            "    - |",
            *_block(_rsync_script(output), 6),
        ]
        return lines
    lines += [
        f"  image: node:{_NODE}-slim",
        "  needs: [build]",
        "  resource_group: fedipress",
        "  # The build's _headers file gives the ActivityPub files their content types.",
    ]
    if options.deploy == "netlify":
        return lines + ["  script:", *cd, f"    - {_scalar(_netlify(output))}"]
    branch = shlex.quote(options.branch) if options.branch else '"$CI_DEFAULT_BRANCH"'
    return lines + [
        "  # Create the project once: npx wrangler pages project create"
        f" {options.cloudflare_project} --production-branch BRANCH",
        "  script:",
        *cd,
        f"    - {_scalar(_wrangler(options, output, branch))}",
    ]


def _gitlab_notes(options: WorkflowOptions) -> tuple[str, ...]:
    branch = options.branch or "the default branch"
    return (
        f"It runs on push to {branch}, and deploys to {_DEPLOY_NAMES[options.deploy]}.",
        "Add a schedule under Build > Pipeline schedules (e.g. hourly, "
        f"{DEFAULT_SCHEDULE!r}) so posts dated in the future go out on time.",
    )
