"""`fedipress publish` through the service, as a CI run does it: a fresh clone with CI=true, no
.fedipress/, no private key, only FEDIPRESS_SERVICE_URL and FEDIPRESS_SERVICE_TOKEN. A real
`fedipress inbox` (real key, store, token) plans with the same code as the local publish and
its delivery loop delivers to a real loopback follower."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedipress.activitypub.httpsig import sign_cavage
from fedipress.config import load_config
from fedipress.federation.manifest import PREVIEW_FLAGS
from fedipress.federation.service_client import (
    ServicePublishOptions,
    ServiceTarget,
    chunks,
    publish_through_service,
)
from fedipress.store import Follower
from support.inbox import AS2, REMOTE_KEY, Remote, actor_doc
from support.inbox_sink import InboxSink
from support.interop_peer import start_peer
from support.service import (
    KEYS,
    Service,
    ci_publish,
    clean_env,
    make_clone,
    read_json,
    start_service,
    write_post,
)

pytestmark = pytest.mark.slow


def _activities(sink: InboxSink, path: str, kind: str) -> list[dict[str, object]]:
    return [json.loads(p.body) for p in sink.posts_to(path) if json.loads(p.body)["type"] == kind]


def _wait_for(sink: InboxSink, path: str, kind: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(_activities(sink, path, kind)) < count:
        assert time.monotonic() < deadline, f"no {kind} delivered to {path}"
        time.sleep(0.1)
    time.sleep(1.0)  # long enough for a duplicate to show up, had one been queued


def _like(service_base: str, remote: Remote, post: str) -> httpx.Response:
    """A signed Like of `post` from the loopback remote's alice, to the service's inbox."""
    alice = remote.url("/users/alice")
    remote.docs["/users/alice"] = actor_doc(remote, "alice")
    body = json.dumps({"@context": "https://www.w3.org/ns/activitystreams",
                       "id": alice + "/likes/1", "type": "Like", "actor": alice,
                       "object": post}).encode()
    host = service_base.split("/")[2]
    headers = {"Content-Type": AS2, "Host": host}
    headers |= sign_cavage("POST", service_base + "inbox", headers, body,
                           key_id=alice + "#main-key", private_key=REMOTE_KEY,
                           now=datetime.now(UTC))
    return httpx.post(service_base + "inbox", content=body, headers=headers)


def test_ci_clone_publishes_through_the_service(tmp_path: Path, remote: Remote) -> None:
    with InboxSink((KEYS / "blog-public.pem").read_bytes()) as sink:
        bob = Follower(actor_id=sink.url("/users/bob"), inbox=sink.url("/users/bob/inbox"),
                       shared_inbox=None, handle="bob@127.0.0.1", name="Bob",
                       followed_at=datetime.now(UTC))
        service = start_service(tmp_path / "home", followers=[bob])
        try:
            clone = make_clone(service, tmp_path / "ci")
            assert not (clone / ".fedipress").exists()

            # The service's first publish: its post of an hour ago is news.
            first = ci_publish(clone, service)
            assert first.code == 0, first.err
            assert ("first publish: 1 new post announced, 0 older posts recorded as already"
                    " published") in first.out, first.out
            assert "1 new, 0 updated, 0 deleted; queued for 1 inbox" in first.out
            _wait_for(sink, "/users/bob/inbox", "Create", 1)

            write_post(clone, "second", "A new post.")
            second = ci_publish(clone, service)
            assert second.code == 0, second.err
            assert "1 new, 0 updated, 0 deleted; queued for 1 inbox" in second.out, second.out
            assert "first publish" not in second.out
            _wait_for(sink, "/users/bob/inbox", "Create", 2)
            created = [c["object"]["id"]  # type: ignore[index]
                       for c in _activities(sink, "/users/bob/inbox", "Create")]
            assert sorted(created) == [service.base + "posts/first/object.json",
                                       service.base + "posts/second/object.json"]
            assert all(p.verified_ours and p.verified_independent for p in sink.posts)

            again = ci_publish(clone, service)
            assert again.code == 0, again.err
            assert "0 new, 0 updated, 0 deleted; nothing queued" in again.out
            time.sleep(1.0)
            assert len(_activities(sink, "/users/bob/inbox", "Create")) == 2

            write_post(clone, "second", "A new post, edited.")
            edit = ci_publish(clone, service)
            assert edit.code == 0, edit.err
            assert "0 new, 1 updated, 0 deleted; queued for 1 inbox" in edit.out, edit.out
            _wait_for(sink, "/users/bob/inbox", "Update", 1)
            assert len(_activities(sink, "/users/bob/inbox", "Update")) == 1
            assert len(_activities(sink, "/users/bob/inbox", "Create")) == 2

            # A post built in CI is the service's own: a Like of it is stored and exported.
            second_id = service.base + "posts/second/object.json"
            assert _like(service.base, remote, second_id).status_code == 202
            export = httpx.get(service.api("/conversations"), headers=service.auth()).json()
            assert export["objects"][second_id]["likes"][0]["kind"] == "like"

            for run in (first, second, again, edit):
                assert service.token not in run.out + run.err

            # The clone never held a store or a key: the service did all of it.
            assert not (clone / ".fedipress" / "state.db").exists()
            assert not (clone / ".fedipress" / "private-key.pem").exists()
        finally:
            log = service.stop()
        assert service.token not in log


def test_wrong_token_and_mismatched_actor_are_refused(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home")
    try:
        clone = make_clone(service, tmp_path / "ci")
        wrong = ci_publish(clone, service, token="w" * 64)
        assert wrong.code == 2
        assert "refused the owner token" in wrong.err
        assert "w" * 64 not in wrong.err + wrong.out
        assert service.ledger() == {}

        other = make_clone(service, tmp_path / "other")
        text = (other / "site.yaml").read_text().replace(service.base, "https://other.example/")
        (other / "site.yaml").write_text(text)
        # The build before the publish already sees it (the service's conversation export
        # is for another actor); a build made without the service reaches the service's 409.
        early = ci_publish(other, service)
        assert early.code == 2 and "the service speaks for" in early.err
        assert subprocess.run(
            [sys.executable, "-m", "fedipress.cli", "build", "--config",
             str(other / "site.yaml")], env=clean_env(), capture_output=True, timeout=120,
        ).returncode == 0
        refused = ci_publish(other, service, "--no-build")
        assert refused.code == 2
        assert "409" in refused.err and "this service answers for" in refused.err
        assert service.ledger() == {}

        # The right actor id with a key the service cannot sign for.
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = stranger.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        actor = json.loads((service.root / "public" / "actor.json").read_text())
        actor["publicKey"]["publicKeyPem"] = pem
        r = httpx.post(service.api("/publish/sessions"), json={"actor": actor},
                       headers=service.auth())
        assert r.status_code == 409
        assert "does not match this service's private key" in r.json()["error"]
        assert service.ledger() == {}
    finally:
        service.stop()


def test_a_preview_build_is_not_published_through_the_service(tmp_path: Path) -> None:
    """A job that built with --drafts (a staging deploy) and then publishes through the
    service is refused, with or without --no-build, as a local publish is: nothing uploaded."""
    service = start_service(tmp_path / "home")
    try:
        clone = make_clone(service, tmp_path / "ci")
        draft = write_post(clone, "secret-draft", "Not yet.")
        draft.write_text(draft.read_text().replace("slug:", "draft: true\nslug:", 1))
        build = subprocess.run(
            [sys.executable, "-m", "fedipress.cli", "build", "--drafts", "--config",
             str(clone / "site.yaml")], capture_output=True, cwd=clone, timeout=120,
            env=clean_env(CI="true"))
        assert build.returncode == 0, build.stderr.decode()
        for args in (("--no-build",), ()):
            refused = ci_publish(clone, service, *args)
            assert refused.code == 2, (args, refused.out, refused.err)
            line = refused.err.strip().splitlines()[-1]
            assert "was built with --drafts: a preview build" in line, (args, refused.err)
            assert service.ledger() == {}, args
    finally:
        service.stop()


def _manifest(service_base: str, actor: dict[str, object], n: int) -> dict[str, object]:
    old = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    objects = {}
    for i in range(n):
        oid = f"{service_base}posts/p{i}/object.json"
        objects[oid] = {"hash": f"h{i}", "published": old,
                        "doc": {"id": oid, "type": "Note", "content": f"<p>{i}</p>",
                                "published": old}}
    return {"actor": actor, "objects": objects}


def test_chunked_upload_applies_only_at_commit(tmp_path: Path) -> None:
    service = start_service(tmp_path / "home")
    try:
        actor = json.loads((service.root / "public" / "actor.json").read_text())
        manifest = _manifest(service.base, actor, 3000)
        objects = manifest["objects"]
        assert isinstance(objects, dict)
        groups = list(chunks(objects, 16 * 1024))
        assert len(groups) > 20
        assert all(len(json.dumps({"objects": g})) < 17 * 1024 for g in groups)

        # Interrupted: begun, half the chunks sent, never committed -> nothing applied.
        begun = read_json(httpx.post(service.api("/publish/sessions"), json={"actor": actor},
                                     headers=service.auth()))
        session = begun["session"]
        for group in groups[: len(groups) // 2]:
            r = httpx.post(service.api(f"/publish/sessions/{session}/objects"),
                           json={"objects": group}, headers=service.auth())
            assert r.status_code == 200, r.text
        assert service.ledger() == {}
        # A commit that claims more than arrived (a lost chunk) applies nothing either.
        r = httpx.post(service.api(f"/publish/sessions/{session}/commit"),
                       json={"objects": len(objects)}, headers=service.auth())
        assert r.status_code == 422
        assert service.ledger() == {}

        # One request over the body limit is refused, not half-read.
        r = httpx.post(service.api("/publish/sessions"),
                       json={"actor": actor, "pad": "x" * (1 << 20)}, headers=service.auth())
        assert r.status_code == 413

        # The client in small chunks: all 3000 arrive and apply in one commit.
        clone = make_clone(service, tmp_path / "ci")
        (clone / ".fedipress").mkdir()
        # As a build writes it: with its flags (not a preview), else publish refuses it.
        built = manifest | {"build": dict.fromkeys(PREVIEW_FLAGS, False)}
        (clone / ".fedipress" / "manifest.json").write_text(json.dumps(built))
        answer = publish_through_service(
            load_config(clone / "site.yaml"), ServiceTarget(service.base, service.token),
            ServicePublishOptions(build=False, allow_private=True, chunk_bytes=16 * 1024),
            err=lambda _l: None,
        )
        assert answer["recorded"] == 3000, answer
        assert len([k for k in service.ledger() if "/posts/p" in k]) == 3000
    finally:
        service.stop()


def test_client_errors_are_one_line(tmp_path: Path) -> None:
    """Without the token, with a service that is not there, and to a loopback address without
    the opt-in: one line each, exit 2, and the token never shown."""
    from support.service import TOKEN, clean_env, free_port, site_yaml

    clone = tmp_path / "ci"
    (clone / "content" / "posts").mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    (clone / "site.yaml").write_text(site_yaml(url))
    (clone / "fedipress-public-key.pem").write_bytes((KEYS / "blog-public.pem").read_bytes())
    write_post(clone, "first")

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fedipress.cli", "publish", "--config",
             str(clone / "site.yaml")], capture_output=True, text=True, timeout=120,
            env=clean_env(CI="true", FEDIPRESS_SERVICE_URL=url, **env), cwd=clone)

    no_token = run()
    assert no_token.returncode == 2
    assert no_token.stderr.strip().splitlines() == [
        f"fedipress: error: publishing through {url} needs the owner token in"
        " FEDIPRESS_SERVICE_TOKEN (the value the service was started with)"]

    private = run(FEDIPRESS_SERVICE_TOKEN=TOKEN)
    assert private.returncode == 2
    assert "FEDIPRESS_ALLOW_PRIVATE_ADDRESSES=1" in private.stderr.splitlines()[-1]

    down = run(FEDIPRESS_SERVICE_TOKEN=TOKEN, FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1")
    assert down.returncode == 2
    last = down.stderr.splitlines()[-1]
    assert "the service cannot be reached" in last and "Traceback" not in down.stderr
    for result in (no_token, private, down):
        assert TOKEN not in result.stdout + result.stderr


def test_first_publish_through_the_service_backfills_older_posts_when_asked(tmp_path: Path) -> None:
    with InboxSink((KEYS / "blog-public.pem").read_bytes()) as sink:
        bob = Follower(actor_id=sink.url("/users/bob"), inbox=sink.url("/users/bob/inbox"),
                       shared_inbox=None, handle="bob@127.0.0.1", name="Bob",
                       followed_at=datetime.now(UTC))
        service = start_service(tmp_path / "home", followers=[bob], posts=())
        try:
            clone = make_clone(service, tmp_path / "ci")
            write_post(clone, "older", age=timedelta(days=30))
            write_post(clone, "newer", age=timedelta(days=20))
            write_post(clone, "today", age=timedelta(hours=2))
            first = ci_publish(clone, service, "--backfill", "1")
            assert first.code == 0, first.err
            assert "2 new, 0 updated, 0 deleted; queued for 1 inbox" in first.out, first.out
            assert ("first publish: 1 new post announced, 1 older post announced for"
                    " --backfill, 1 older post recorded as already published") in first.out
            _wait_for(sink, "/users/bob/inbox", "Create", 2)
            created = sorted(c["object"]["id"].rsplit("/", 2)[1]  # type: ignore[index]
                             for c in _activities(sink, "/users/bob/inbox", "Create"))
            assert created == ["newer", "today"]

            # A later --backfill has only back-dated posts new to the ledger to announce.
            again = ci_publish(clone, service, "--backfill", "1")
            assert again.code == 0, again.err
            assert "nothing queued" in again.out
            assert "note: --backfill 1: 0 new back-dated posts to announce" in again.err
        finally:
            service.stop()


# --- the issue's own check, end to end --------------------------------------------------------


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=Tester", "-c", "user.email=tester@example.invalid",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def _state(service: Service) -> tuple[dict[str, str], list[tuple[str, str]], list[str]]:
    """What a publish could change on the service: the ledger, the queue rows (activity,
    inbox) and the stored activities, read beside the running service."""
    conn = sqlite3.connect(f"file:{service.root / '.fedipress' / 'state.db'}?mode=ro",
                           uri=True)
    try:
        queue = sorted(conn.execute("SELECT activity_id, inbox FROM deliveries").fetchall())
        stored = sorted(r[0] for r in conn.execute("SELECT activity_id FROM activities"))
    finally:
        conn.close()
    return service.ledger(), queue, stored


class _CiRun:
    """One CI job on a fresh `git clone` of the blog: CI=true, no .fedipress/, the service's
    address and owner token as the only fedipress settings (plus the opt-in to loopback
    addresses that a test on one machine needs)."""

    def __init__(self, repo: Path, service: Service, dest: Path, token: str) -> None:
        _git("clone", "--quiet", str(repo), str(dest), cwd=repo.parent)
        assert not (dest / ".fedipress").exists() and not (dest / "public").exists()
        self.root, self.service = dest, service
        self.env = clean_env(CI="true", FEDIPRESS_SERVICE_URL=service.base,
                             FEDIPRESS_SERVICE_TOKEN=token,
                             FEDIPRESS_ALLOW_PRIVATE_ADDRESSES="1")

    def fedipress(self, *args: str) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            [sys.executable, "-m", "fedipress.cli", *args, "--config",
             str(self.root / "site.yaml")], capture_output=True, text=True, cwd=self.root,
            env=self.env, timeout=120, stdin=subprocess.DEVNULL, check=False)
        assert "Traceback" not in run.stderr, run.stderr
        assert self.env["FEDIPRESS_SERVICE_TOKEN"] not in run.stdout + run.stderr
        return run

    def build(self, *flags: str) -> None:
        built = self.fedipress("build", *flags)
        assert built.returncode == 0, built.stderr

    def deploy(self) -> None:
        """public/ copied to the service's site folder, as rsync --delete would."""
        source, target = self.root / "public", self.service.root / "public"
        shutil.copytree(source, target, dirs_exist_ok=True)
        for path in sorted(target.rglob("*"), reverse=True):
            if not (source / path.relative_to(target)).exists():
                path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()

    def publish(self) -> subprocess.CompletedProcess[str]:
        return self.fedipress("publish", "--no-build")


@pytest.mark.interop
@pytest.mark.timeout(300)
def test_the_issues_check_ci_publishes_through_the_service_to_an_independent_follower(
        tmp_path: Path) -> None:
    """As the issue checks it: a service on loopback (key, store, owner token) followed by
    the Fedify peer; a CI run on a fresh clone builds, deploys public/ to the service's site
    folder and publishes, on the service's FIRST publish ever (an empty ledger): the peer
    receives the new post once, verified; an identical run queues nothing; an edit arrives as
    one Update; a wrong token changes nothing; a --drafts build is refused."""
    service = start_service(tmp_path / "home", posts=())
    peer = start_peer(tmp_path)
    try:
        # The independent implementation follows the blog through the service.
        host = service.base.split("/")[2]
        follow_id = peer.follow(f"tester@{host}")["id"]
        accept = peer.wait_for(lambda a: a.get("type") == "Accept"
                               and a.get("matched_follow_id") == follow_id, timeout=30)
        assert accept["verified"] is True, accept
        listed = read_json(httpx.get(service.api("/followers"), headers=service.auth()))
        assert listed["count"] == 1, listed
        assert service.ledger() == {}  # nothing ever published through this service

        # The blog's repository: an archive and one new post, the public key, no state.
        repo = tmp_path / "repo"
        repo.mkdir()
        shutil.copy(service.root / "site.yaml", repo / "site.yaml")
        shutil.copy(service.root / "fedipress-public-key.pem", repo / "fedipress-public-key.pem")
        (repo / ".gitignore").write_text("public/\n.fedipress/\n")
        write_post(repo, "archive-old", "From the old blog.", age=timedelta(days=400))
        write_post(repo, "archive", "Last month.", age=timedelta(days=30))
        write_post(repo, "news", "Fresh news.", age=timedelta(hours=1))
        _git("init", "--quiet", cwd=repo)
        _git("add", "-A", cwd=repo)
        _git("commit", "--quiet", "-m", "blog", cwd=repo)
        news = service.base + "posts/news/object.json"

        def received(kind: str) -> list[dict[str, object]]:
            return [a for a in peer.received() if a.get("type") == kind]

        def arrives_once(kind: str, object_id: str) -> dict[str, object]:
            got = peer.wait_for(lambda a: a.get("type") == kind
                                and a.get("object_id") == object_id, timeout=30)
            time.sleep(2.0)  # long enough for a duplicate to show up, had one been queued
            assert [a["object_id"] for a in received(kind)] == [object_id], received(kind)
            # Verified by Fedify, by our draft-cavage HTTP signature with the blog's key.
            assert got["verified"] is True, got
            signature = got["signature"]
            assert isinstance(signature, dict)
            assert signature["scheme"] == "draft-cavage-http-signatures-12", got
            assert str(signature["key_id"]).startswith(service.base + "actor.json"), got
            assert got["ld_signature"] is False and got["object_proof"] is False, got
            return got

        # 1. The first CI run: build, deploy, publish -> the new post, once, verified.
        first = _CiRun(repo, service, tmp_path / "ci-1", service.token)
        first.build()
        first.deploy()
        published = first.publish()
        assert published.returncode == 0, published.stderr
        assert (f"{service.base}: first publish: 1 new post announced, 2 older posts recorded"
                " as already published; use --backfill N to announce older ones"
                ) in published.stdout, published.stdout
        assert "1 new, 0 updated, 0 deleted; queued for 1 inbox" in published.stdout
        arrives_once("Create", news)
        assert not (first.root / ".fedipress" / "state.db").exists()
        assert not (first.root / ".fedipress" / "private-key.pem").exists()

        # 2. The same commit again (a re-run job): nothing queued, nothing delivered.
        before = _state(service)
        again = _CiRun(repo, service, tmp_path / "ci-2", service.token)
        again.build()
        again.deploy()
        repeated = again.publish()
        assert repeated.returncode == 0, repeated.stderr
        assert "0 new, 0 updated, 0 deleted; nothing queued" in repeated.stdout
        assert "first publish" not in repeated.stdout
        assert _state(service) == before
        time.sleep(1.0)
        assert len(received("Create")) == 1 and received("Update") == []

        # 3. An edit pushed; a job with a wrong token changes nothing (401, no queue rows).
        (repo / "content" / "posts" / "news.md").write_text(
            (repo / "content" / "posts" / "news.md").read_text().replace(
                "Fresh news.", "Fresh news, corrected."))
        _git("commit", "--quiet", "-am", "edit", cwd=repo)
        wrong = _CiRun(repo, service, tmp_path / "ci-3", "w" * 64)
        # The build asks the service for the conversation first, and stops there.
        stopped = wrong.fedipress("build")
        assert stopped.returncode == 2, stopped.stdout + stopped.stderr
        assert "the service refused the owner token" in stopped.stderr, stopped.stderr
        # Built without the service (its address left out), publishing is refused all the same.
        url = wrong.env.pop("FEDIPRESS_SERVICE_URL")
        wrong.build()
        wrong.env["FEDIPRESS_SERVICE_URL"] = url
        refused = wrong.publish()
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.strip().splitlines()[-1].startswith(
            f"fedipress: error: {service.base}.fedipress/api/v1/publish/sessions: the service"
            " refused the owner token"), refused.stderr
        raw = httpx.post(service.api("/publish/sessions"), json={"actor": {}},
                         headers=service.auth("w" * 64))
        assert raw.status_code == 401
        assert _state(service) == before
        assert received("Update") == []

        # ... and the same edit with the right token arrives as exactly one Update.
        edit = _CiRun(repo, service, tmp_path / "ci-4", service.token)
        edit.build()
        edit.deploy()
        edited = edit.publish()
        assert edited.returncode == 0, edited.stderr
        assert "0 new, 1 updated, 0 deleted; queued for 1 inbox" in edited.stdout
        update = arrives_once("Update", news)
        raw_update = update["raw"]
        assert isinstance(raw_update, dict)
        assert "corrected" in raw_update["object"]["content"]
        assert len(received("Create")) == 1

        # 4. A preview job (--drafts) is refused, naming the flag; nothing reaches the service.
        draft = repo / "content" / "posts" / "secret.md"
        write_post(repo, "secret", "Not yet.")
        draft.write_text(draft.read_text().replace("slug:", "draft: true\nslug:", 1))
        _git("add", "-A", cwd=repo)
        _git("commit", "--quiet", "-m", "draft", cwd=repo)
        settled = _state(service)
        preview = _CiRun(repo, service, tmp_path / "ci-5", service.token)
        preview.build("--drafts")
        for args in (("publish", "--no-build"), ("publish",)):
            run = preview.fedipress(*args)
            assert run.returncode == 2, run.stdout + run.stderr
            line = run.stderr.strip().splitlines()[-1]
            assert "was built with --drafts: a preview build" in line, line
            assert "without --drafts" in line, line
        assert _state(service) == settled
        time.sleep(1.0)
        assert len(received("Create")) == 1 and len(received("Update")) == 1
        assert not [a for a in peer.received()
                    if a.get("type") == "listener-error" or a.get("verified") is not True]
    finally:
        peer.stop()
        log = service.stop()
    assert "Traceback" not in log, log
    assert service.token not in log
