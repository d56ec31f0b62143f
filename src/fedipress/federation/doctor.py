"""`fedipress doctor URL|HANDLE`: check a deployed blog the way a Mastodon server would.

Each check is one line, PASS, WARN or FAIL; a failure says what was observed and how to fix it.
The order follows what Mastodon does when someone searches for the blog:

  home page     reachable; it (or <base>/actor.json) leads to the actor
  actor         200, an ActivityPub content type, under 1 MiB, id = URL, an actor type with
                preferredUsername and inbox, a public key that parses
  WebFinger     acct:<preferredUsername>@<actor host> on the actor's host (the reverse check),
                and on the handle's domain when that differs: subject stable, self = actor id
  post          the newest post object from the outbox: content type, size, id = URL, same
                host as the actor; its HTML page links to it with <link rel="alternate">
  NodeInfo      /.well-known/nodeinfo and the document it points to (WARN only: not needed
                to follow, but crawlers and server software read it)

Every request goes through netguard (public addresses only unless --allow-private-addresses);
the actor and post are then fetched once more with RemoteFetcher, whose rules are Mastodon's.
Exit 0 when nothing failed, 1 when something did, 2 for a user error (a refused URL).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import unquote

import httpx

from ..errors import FedipressError, FetchError, UnsafeURLError
from ..wording import docs_url
from .netguard import GuardedTransport, check_url
from .remote import (
    AP_ACCEPT,
    JRD_ACCEPT,
    FetchPolicy,
    RemoteFetcher,
    actor_url_from_jrd,
    check_json_depth,
    is_activitypub_content_type,
    parse_actor,
    user_agent,
)

__all__ = ["Check", "DoctorReport", "check_blog", "diagnose", "format_report"]

Status = Literal["pass", "warn", "fail"]
MAX_BYTES = 1 << 20  # Mastodon's body_with_limit
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HANDLE_RE = re.compile(r"^@?([^@/\s:]+)@([^@/\s]+)$")
_HOSTING_FIX = ("Fix: serve {what} with Content-Type application/activity+json (every .json"
                " under / that fedipress writes) — see `fedipress hosting` for your host.")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorReport:
    target: str
    checks: tuple[Check, ...]

    @property
    def failed(self) -> int:
        return sum(1 for c in self.checks if c.status == "fail")

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass(frozen=True)
class _Answer:
    url: str  # final URL after redirects
    status: int
    content_type: str
    body: bytes
    too_big: bool


class _Links(HTMLParser):
    """Every <link> element's attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append({k.lower(): v or "" for k, v in attrs})


def _ap_alternates(page: bytes) -> list[str]:
    parser = _Links()
    parser.feed(page.decode("utf-8", "replace"))
    return [
        link["href"] for link in parser.links
        if "alternate" in link.get("rel", "").lower().split() and link.get("href")
        and is_activitypub_content_type(link.get("type", ""))
    ]


def _json_of(body: bytes) -> Any:
    """The parsed JSON, or None when it nests too deep or does not parse."""
    if not check_json_depth(body):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _host(url: str) -> str:
    try:
        return httpx.URL(url).netloc.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError):
        return ""


def _same(a: str, b: str) -> bool:
    try:
        return a == b or httpx.URL(a) == httpx.URL(b)
    except (httpx.InvalidURL, TypeError):
        return False


class _Doctor:
    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self.checks: list[Check] = []
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(allow_private=policy.allow_private),
            timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
            follow_redirects=False, trust_env=False,
            headers={"User-Agent": user_agent("fedipress doctor")},
        )

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    async def get(self, url: str, accept: str) -> _Answer:
        """GET with up to 3 redirects, each hop checked; at most MAX_BYTES + 1 bytes read."""
        current = url
        for _hop in range(self.policy.max_redirects + 1):
            check_url(current, allow_private=self.policy.allow_private)
            try:
                async with self.client.stream("GET", current,
                                              headers={"Accept": accept}) as response:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = str(httpx.URL(current).join(response.headers["location"]))
                        continue
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            break
                    return _Answer(current, response.status_code,
                                   response.headers.get("content-type", ""),
                                   body[: MAX_BYTES + 1], len(body) > MAX_BYTES)
            except httpx.HTTPError as exc:
                raise FetchError(f"{current}: {type(exc).__name__}: {str(exc)[:200]}") from None
        raise FetchError(f"{url}: more than {self.policy.max_redirects} redirects")

    async def fetch(self, name: str, url: str, accept: str, fix: str = "") -> _Answer | None:
        """`get`, recording a fetch that fails as a failed check (None); refusals propagate."""
        try:
            return await self.get(url, accept)
        except UnsafeURLError:
            raise
        except FetchError as exc:
            self.add(name, "fail", f"{url} cannot be fetched: {exc}", fix)
            return None

    async def fetcher_confirms(self, url: str) -> str | None:
        """None when RemoteFetcher (Mastodon's rules) accepts `url`, else its error."""
        async with RemoteFetcher(policy=self.policy,
                                 user_agent=user_agent("fedipress doctor")) as fetcher:
            try:
                await fetcher.fetch_json(url)
            except FetchError as exc:
                return str(exc)
        return None

    # -- one ActivityPub document --

    async def ap_document(self, name: str, url: str, *, what: str,
                          expect_host: str | None = None) -> dict[str, Any] | None:
        """Fetch `url` as ActivityPub JSON and check everything Mastodon checks."""
        answer = await self.fetch(
            name, url, AP_ACCEPT, "Fix: make sure the site is deployed and reachable over https."
        )
        if answer is None:
            return None
        if answer.status != 200:
            self.add(name, "fail", f"{answer.url} answers HTTP {answer.status} (expected 200)",
                     f"Fix: deploy {what} (run `fedipress build` and upload the whole output"
                     " folder, including .well-known/).")
            return None
        if not is_activitypub_content_type(answer.content_type):
            shown = answer.content_type or "no Content-Type"
            self.add(name, "fail", f"{answer.url} is served as {shown}; Mastodon ignores it"
                     " (it accepts only application/activity+json or application/ld+json;"
                     ' profile="https://www.w3.org/ns/activitystreams").',
                     _HOSTING_FIX.format(what=what))
            return None
        if answer.too_big:
            self.add(name, "fail", f"{answer.url} is larger than 1 MiB; Mastodon stops reading"
                     " at 1 MiB", "Fix: shorten it (e.g. note_content: summary for posts).")
            return None
        data = _json_of(answer.body)
        if not isinstance(data, dict):
            self.add(name, "fail", f"{answer.url} is not a JSON object",
                     "Fix: rebuild with `fedipress build` and upload the files unchanged.")
            return None
        doc_id = data.get("id")
        if not isinstance(doc_id, str) or not _same(doc_id, answer.url):
            self.add(name, "fail", f"{answer.url} has id {doc_id!r}; Mastodon requires the id to"
                     " equal the URL it fetched",
                     "Fix: set base_url in site.yaml to the address the site is served from,"
                     " then rebuild and redeploy.")
            return None
        if expect_host is not None and _host(doc_id) != expect_host:
            self.add(name, "fail", f"{doc_id} is on {_host(doc_id)}, not on the actor's host"
                     f" {expect_host}; Mastodon drops objects from another origin",
                     "Fix: serve the actor and the posts from the same host (one base_url).")
            return None
        problem = await self.fetcher_confirms(answer.url)
        if problem is not None:
            self.add(name, "fail", f"a Mastodon-like fetch refuses it: {problem}")
            return None
        return data

    # -- WebFinger --

    def webfinger_url(self, user: str, domain: str, scheme_hint: str) -> str:
        scheme = "https"
        if self.policy.allow_private and scheme_hint == "http":
            scheme = "http"  # testing on one machine: the blog itself is served over http
        return str(httpx.URL(f"{scheme}://{domain}/.well-known/webfinger",
                             params={"resource": f"acct:{user}@{domain}"}))

    async def webfinger(self, name: str, user: str, domain: str, actor_id: str,
                        scheme_hint: str, expect_subject: str | None) -> str | None:
        """Check the JRD for acct:user@domain; returns its subject when all is well."""
        url = self.webfinger_url(user, domain, scheme_hint)
        answer = await self.fetch(
            name,
            url,
            JRD_ACCEPT,
            "Fix: serve .well-known/webfinger on this host — see `fedipress hosting`.",
        )
        if answer is None:
            return None
        if answer.status != 200:
            self.add(name, "fail", f"{url} answers HTTP {answer.status} (expected 200)",
                     "Fix: upload .well-known/webfinger and make the host answer"
                     " /.well-known/webfinger?resource=… with it — see `fedipress hosting`.")
            return None
        jrd = _json_of(answer.body)
        if not isinstance(jrd, dict):
            self.add(name, "fail", f"{url} is not JSON (served as {answer.content_type!r})",
                     "Fix: serve the built .well-known/webfinger file unchanged.")
            return None
        subject = jrd.get("subject")
        self_href = actor_url_from_jrd(jrd)
        if not isinstance(subject, str) or not subject.strip():
            self.add(name, "fail", f"{url} has no subject", "Fix: rebuild and redeploy.")
            return None
        if self_href is None:
            self.add(name, "fail", f"{url} has no rel=self link of type"
                     " application/activity+json", "Fix: rebuild and redeploy.")
            return None
        if self_href != actor_id:
            self.add(name, "fail", f"{url}: the self link is {self_href}, but the actor id is"
                     f" {actor_id}; Mastodon requires them to be identical",
                     "Fix: serve the WebFinger document fedipress built for this base_url"
                     " (rebuild after changing base_url, and upload .well-known/ too).")
            return None
        if expect_subject is not None and subject != expect_subject:
            self.add(name, "fail", f"{url} gives subject {subject}, the other host gives"
                     f" {expect_subject}; Mastodon requires the subject to be stable",
                     "Fix: serve the same .well-known/webfinger file on both hosts.")
            return None
        note = "" if answer.content_type.split(";")[0].strip() == "application/jrd+json" else \
            f" (served as {answer.content_type or 'no Content-Type'}; application/jrd+json is" \
            " recommended)"
        self.add(name, "pass", f"{unquote(url)} → {subject}, self = actor id{note}")
        return subject

    # -- the whole run --

    async def run(self, target: str) -> None:
        handle = _HANDLE_RE.match(target.strip())
        if handle:
            await self.run_from_handle(handle.group(1), handle.group(2).lower())
        else:
            await self.run_from_url(target.strip())

    async def run_from_handle(self, user: str, domain: str) -> None:
        hint = "http" if self.policy.allow_private else "https"
        url = self.webfinger_url(user, domain, hint)
        check_url(url, allow_private=self.policy.allow_private)
        try:
            answer = await self.get(url, JRD_ACCEPT)
            jrd = _json_of(answer.body) if answer.status == 200 else None
        except FetchError as exc:
            if isinstance(exc, UnsafeURLError):
                raise
            jrd = None
        actor_url = actor_url_from_jrd(jrd) if isinstance(jrd, dict) else None
        if actor_url is None:
            self.add("WebFinger", "fail", f"{url} does not lead to an actor",
                     "Fix: serve .well-known/webfinger on the handle's domain — see"
                     f" `fedipress hosting` (and {docs_url('hosting')} for handle"
                     " domains).")
            return
        await self.check_actor_and_rest(actor_url, given_handle=f"{user}@{domain}")

    async def run_from_url(self, url: str) -> None:
        if "://" not in url:
            url = "https://" + url
        # check_url parses first: a malformed URL is refused, not raised as httpx.InvalidURL.
        parsed = check_url(url, allow_private=self.policy.allow_private)
        if not url.endswith("/") and parsed.path in ("", "/"):
            url += "/"
        actor_url = str(httpx.URL(url).join("/actor.json"))
        home = await self.fetch(
            "home page",
            url,
            "text/html",
            "Fix: check the address, DNS and that the site is deployed.",
        )
        if home is None:
            return
        if home.status != 200:
            self.add("home page", "fail", f"{home.url} answers HTTP {home.status}",
                     "Fix: deploy the output folder (public/) to this address.")
        else:
            found = _ap_alternates(home.body)
            if found:
                actor_url = str(httpx.URL(home.url).join(found[0]))
                how = "<link rel=alternate> to"
            else:
                how = "no <link rel=alternate>; trying"
            self.add("home page", "pass", f"{home.url} answers 200 ({how} {actor_url})")
        await self.check_actor_and_rest(actor_url, given_handle=None)

    async def check_actor_and_rest(self, actor_url: str, given_handle: str | None) -> None:
        data = await self.ap_document("actor", actor_url, what="actor.json")
        if data is None:
            return
        try:
            actor = parse_actor(data, where=actor_url)
        except FetchError as exc:
            self.add("actor", "fail", str(exc), "Fix: rebuild with `fedipress build`.")
            return
        if actor.preferred_username is None:
            self.add("actor", "fail", f"{actor_url} has no preferredUsername",
                     "Fix: rebuild with `fedipress build`.")
            return
        self.add("actor", "pass", f"{actor.id} is a {actor.type} served as ActivityPub JSON,"
                 f" id = URL, inbox {actor.inbox}")
        if actor.public_key is None:
            self.add("public key", "fail", f"{actor_url} has no usable publicKey (id, owner ="
                     " actor id, publicKeyPem)", "Fix: run `fedipress keys generate` and"
                     " rebuild; followers' servers cannot verify signed deliveries without it.")
        else:
            self.add("public key", "pass", f"{actor.public_key.key_id} parses as a public key")

        actor_host = _host(actor.id)
        scheme = httpx.URL(actor.id).scheme
        subject = await self.webfinger("WebFinger (actor host)", actor.preferred_username,
                                       actor_host, actor.id, scheme, None)
        handle = given_handle or (subject.removeprefix("acct:") if subject else None)
        if handle is not None and "@" in handle:
            user, domain = handle.rsplit("@", 1)
            if domain.lower() != actor_host or given_handle is not None:
                await self.webfinger("WebFinger (handle)", user, domain.lower(), actor.id,
                                     scheme, subject)
        if subject is not None:
            self.add("handle", "pass", f"followable as @{subject.removeprefix('acct:')}")

        await self.check_post(data, actor.id, actor_host)
        await self.check_nodeinfo(actor.id)

    async def check_post(self, actor: dict[str, Any], actor_id: str, actor_host: str) -> None:
        outbox_url = actor.get("outbox")
        if not isinstance(outbox_url, str):
            self.add("post", "warn", "the actor has no outbox; no post to check")
            return
        outbox = await self.ap_document("outbox", outbox_url, what="outbox.json",
                                        expect_host=actor_host)
        if outbox is None:
            return
        page: Any = outbox.get("first", outbox)
        if isinstance(page, str):
            page = await self.ap_document("outbox page", page, what="the outbox pages",
                                          expect_host=actor_host)
            if page is None:
                return
        items = page.get("orderedItems", page.get("items", [])) if isinstance(page, dict) else []
        object_id = None
        for item in items if isinstance(items, list) else []:
            obj = item.get("object") if isinstance(item, dict) else None
            object_id = obj.get("id") if isinstance(obj, dict) else obj
            if isinstance(object_id, str):
                break
        if not isinstance(object_id, str):
            self.add("post", "warn", "the outbox lists no posts yet; no post to check")
            return
        obj = await self.ap_document("post object", object_id, what="posts/*/object.json",
                                     expect_host=actor_host)
        if obj is None:
            return
        attributed = obj.get("attributedTo")
        if attributed != actor_id:
            self.add("post object", "fail", f"{object_id} is attributed to {attributed!r}, not"
                     f" {actor_id}", "Fix: rebuild with `fedipress build`.")
            return
        self.add("post object", "pass", f"{object_id} served as ActivityPub JSON, id = URL,"
                 " same host as the actor")
        page_url = obj.get("url")
        page_url = page_url if isinstance(page_url, str) else None
        if page_url is None:
            self.add("post page", "warn", f"{object_id} has no url (HTML page) to check")
            return
        html_page = await self.fetch("post page", page_url, "text/html")
        if html_page is None:
            return
        links = [str(httpx.URL(html_page.url).join(h)) for h in _ap_alternates(html_page.body)]
        if html_page.status != 200:
            self.add("post page", "fail", f"{page_url} answers HTTP {html_page.status}",
                     "Fix: upload the whole output folder.")
        elif object_id not in links:
            self.add("post page", "fail", f"{page_url} has no <link rel=\"alternate\""
                     f' type="application/activity+json" href="{object_id}">; pasting the'
                     " page's address into Mastodon's search will not find the post",
                     "Fix: keep {% block head %}{{ super() }} in your theme's post template"
                     " (the default theme writes this link).")
        else:
            self.add("post page", "pass", f"{page_url} links to its object")

    async def check_nodeinfo(self, actor_id: str) -> None:
        url = str(httpx.URL(actor_id).join("/.well-known/nodeinfo"))
        fix = "Fix: upload .well-known/nodeinfo and nodeinfo/2.1 from the output folder."
        try:
            answer = await self.get(url, "application/json")
            data = _json_of(answer.body) if answer.status == 200 else None
            links = data.get("links") if isinstance(data, dict) else None
            href = next((link.get("href") for link in links or []
                         if isinstance(link, dict) and "nodeinfo" in str(link.get("rel"))),
                        None)
            if not isinstance(href, str):
                self.add("NodeInfo", "warn", f"{url} is missing or lists no NodeInfo", fix)
                return
            doc = await self.get(href, "application/json")
            info = _json_of(doc.body) if doc.status == 200 else None
        except UnsafeURLError:
            raise
        except (FetchError, ValueError) as exc:
            self.add("NodeInfo", "warn", f"{url}: {exc}", fix)
            return
        software = info.get("software") if isinstance(info, dict) else None
        if not isinstance(software, dict) or not software.get("name"):
            self.add("NodeInfo", "warn", f"{href} is not a NodeInfo document", fix)
            return
        self.add("NodeInfo", "pass", f"{href}: {software.get('name')} {software.get('version')}")


async def diagnose(target: str, *, policy: FetchPolicy) -> DoctorReport:
    """Run every check against `target` (a base URL or a handle user@domain).

    Raises UnsafeURLError when the target (or a URL it leads to) is refused by the policy."""
    doctor = _Doctor(policy)
    try:
        await doctor.run(target)
    finally:
        await doctor.client.aclose()
    return DoctorReport(target=target, checks=tuple(doctor.checks))


_LABEL = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def format_report(report: DoctorReport) -> str:
    lines = [f"fedipress doctor {report.target}"]
    for check in report.checks:
        lines.append(f"  {_LABEL[check.status]}  {check.name}: {check.detail}")
        if check.fix and check.status != "pass":
            lines.append(f"        {check.fix}")
    if report.ok:
        lines.append("All checks passed: Mastodon can find and follow this blog.")
    else:
        lines.append(f"{report.failed} check{'s' * (report.failed != 1)} failed.")
    return "\n".join(lines) + "\n"


def _check_target(target: str) -> None:
    """Refuse a mistyped target (`http://[::1`, a port of 99999) as the typo it is, before
    the policy could blame it on private addresses."""
    handle = _HANDLE_RE.match(target)
    if handle:
        url = f"https://{handle.group(2)}/"
    else:
        url = target if "://" in target else "https://" + target
    try:
        check_url(url, allow_private=True)  # the URL's form only; the policy comes later
    except UnsafeURLError as exc:
        what = f"{target}: {handle.group(2)} is not a valid domain" if handle else str(exc)
        raise FedipressError(
            f"{what}; give the blog's address (https://alice.example/) or its handle"
            " (alice@alice.example)") from None


def check_blog(target: str, *, allow_private: bool) -> DoctorReport:
    """`fedipress doctor TARGET`: check a deployed blog (its base URL or handle) the way
    Mastodon would; a mistyped target, or one the fetch policy refuses, raises one line."""
    policy = FetchPolicy.from_options(allow_private, os.environ)
    target = target.strip()
    _check_target(target)
    try:
        return asyncio.run(diagnose(target, policy=policy))
    except UnsafeURLError as exc:
        hint = "" if policy.allow_private else (
            " (to check a blog on this machine or your network, add --allow-private-addresses)")
        raise FedipressError(f"{exc}{hint}") from None
