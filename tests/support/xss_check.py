"""Two independent detectors of injected script in a built page.

    baseline = Baseline.of(page_html_without_conversation)
    markup_problems(html, baseline)        # 1. the HTML as html.parser reads it
    with BrowserProbe(profile) as probe:   # 2. the page as headless Chromium runs it
        probe.visit(url, baseline.scripts)

1. Parsing: no `<script>` or `<style>` element, `style` attribute or refresh `<meta>` the theme
   itself does not have (the baseline: the same page built without any conversation), no `on*`
   attribute, no URL attribute (href, src, action, ...) with a scheme other than http(s), no
   frame, object, embed or base element.

2. Chromium, driven over its DevTools pipe (`--remote-debugging-pipe`: JSON on fds 3 and 4, no
   extra dependency). Why these hooks rather than a marker each payload sets: a payload that runs
   without calling our marker would go unseen, so the detector watches the engine instead:
   - every script V8 compiles (Debugger.scriptParsed: inline scripts, event handler attributes
     when they fire, javascript: URLs, srcdoc frames) whose source is not one of the theme's;
   - every dialog (Page.javascriptDialogOpening) and, through a trap installed before the page's
     own scripts, every call of alert/confirm/prompt/print;
   - every navigation of the page or frame created in it (Page.frameRequestedNavigation,
     frameNavigated, frameAttached);
   - and, after load, the DOM as Chromium parsed it (which can differ from html.parser's reading:
     "mutation XSS"): on* attributes and non-http(s) URL attributes. Events that fire only on
     interaction (mouseover, focus, keydown, ...) are dispatched to every element first, so a
     handler that would wait for the reader's mouse runs, and is seen, now. `click` and `submit`
     are left out: the theme's own forms navigate on them, and javascript: links are caught by
     the DOM check.
   All other host names resolve to nothing (--host-resolver-rules), so a page cannot reach out.

Shared by several test modules (which must not import each other).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = "/usr/bin/chromium"
URL_ATTRIBUTES = frozenset({
    "href", "src", "action", "formaction", "data", "xlink:href", "poster", "background",
    "cite", "ping", "codebase", "lowsrc", "dynsrc", "manifest", "icon", "srcdoc", "longdesc",
})
FRAME_TAGS = frozenset({"iframe", "frame", "frameset", "object", "embed", "applet", "base",
                        "portal"})
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_STRIPPED = re.compile(r"[\x00-\x20\x7f]")


def _scheme(value: str) -> str | None:
    """The scheme a browser would see (it drops ASCII whitespace and controls first)."""
    match = _SCHEME.match(_STRIPPED.sub("", value).lower())
    return match.group(1) if match else None


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.style_attrs: list[str] = []
        self.refreshes: list[str] = []
        self.handlers: list[str] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.frames: list[str] = []
        self._in: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value[:60]!r}>")
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value))
            if name == "srcset":
                for part in value.split(","):
                    self.urls.append((tag, name, part.strip().split(" ")[0]))
            if name == "style":
                self.style_attrs.append(value)
        if tag in FRAME_TAGS:
            self.frames.append(tag)
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.refreshes.append(values.get("content", ""))
        if tag == "script" and values.get("src"):
            self.scripts.append("src:" + values["src"])
        if tag in ("script", "style"):
            self._in = (tag, [])

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._in[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in is not None and tag == self._in[0]:
            body = "".join(self._in[1]).strip()
            (self.scripts if tag == "script" else self.styles).append(body)
            self._in = None


def _read(html: str) -> _Reader:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader


@dataclass(frozen=True)
class Baseline:
    """What the theme itself puts in a page: its scripts, styles and URL schemes."""

    scripts: frozenset[str] = frozenset()
    styles: frozenset[str] = frozenset()
    style_attrs: frozenset[str] = frozenset()
    refreshes: frozenset[str] = frozenset()
    schemes: frozenset[str] = field(default_factory=lambda: frozenset({"http", "https"}))

    @classmethod
    def of_theme(cls, theme: Path, *pages: str) -> Baseline:
        """The baseline of `pages` plus the static `<script>` and `<style>` blocks and style
        attributes written in the theme's templates (a theme may add a script only to pages
        with a conversation; a block with template code in it must then be in `pages`)."""
        found = cls.of(*pages)
        scripts, styles, attrs = set(found.scripts), set(found.styles), set(found.style_attrs)
        for template in sorted(theme.rglob("*.html")):
            text = template.read_text(encoding="utf-8")
            for kind, body in re.findall(r"<(script|style)>(.*?)</\1>", text, re.DOTALL):
                if "{{" not in body and "{%" not in body:
                    (scripts if kind == "script" else styles).add(body.strip())
            attrs.update(v for v in re.findall(r'style="([^"{}]*)"', text))
        return replace(found, scripts=frozenset(scripts), styles=frozenset(styles),
                       style_attrs=frozenset(attrs))

    @classmethod
    def of(cls, *pages: str) -> Baseline:
        read = [_read(page) for page in pages]
        return cls(
            scripts=frozenset(s for r in read for s in r.scripts),
            styles=frozenset(s for r in read for s in r.styles),
            style_attrs=frozenset(s for r in read for s in r.style_attrs),
            refreshes=frozenset(s for r in read for s in r.refreshes),
            schemes=frozenset({"http", "https"}) | {
                s for r in read for _, _, v in r.urls if (s := _scheme(v))},
        )


def markup_problems(html: str, baseline: Baseline = Baseline()) -> list[str]:
    """What in `html` could run script or restyle the page, beyond what the theme has."""
    read = _read(html)
    problems = [f"script not from the theme: {s[:80]!r}" for s in read.scripts
                if s not in baseline.scripts]
    problems += [f"style element not from the theme: {s[:80]!r}" for s in read.styles
                 if s not in baseline.styles]
    problems += [f"style attribute not from the theme: {s[:80]!r}" for s in read.style_attrs
                 if s not in baseline.style_attrs]
    problems += [f"refresh not from the theme: {s[:80]!r}" for s in read.refreshes
                 if s not in baseline.refreshes]
    problems += [f"event handler attribute {h}" for h in read.handlers]
    problems += [f"<{tag} {name}> with scheme {scheme}: {value[:80]!r}"
                 for tag, name, value in read.urls
                 if (scheme := _scheme(value)) and scheme not in baseline.schemes]
    problems += [f"<{tag}> element" for tag in read.frames]
    return problems


# --- Chromium -----------------------------------------------------------------------------------

_TRAP = """
(() => {
  const report = (what) => { try { window.__fedipressXss(String(what)); } catch (e) {} };
  for (const name of ["alert", "confirm", "prompt", "print"]) {
    window[name] = function () { report(name + "(" + Array.from(arguments).join(",") + ")"); };
  }
})();
//# sourceURL=fedipress-xss-trap
"""

_EVENTS = [
    "mouseover", "mouseenter", "mousemove", "mouseout", "mouseleave", "mousedown", "mouseup",
    "pointerover", "pointerenter", "pointermove", "pointerdown", "pointerup", "pointerleave",
    "focus", "focusin", "blur", "focusout", "keydown", "keyup", "keypress", "wheel", "scroll",
    "copy", "cut", "paste", "input", "change", "select", "toggle", "beforetoggle", "load",
    "error", "animationstart", "animationend", "transitionend", "touchstart", "touchend",
    "contextmenu", "dblclick", "auxclick", "drag", "dragstart", "dragenter", "drop", "play",
    "begin", "beginEvent", "start", "resize", "hashchange", "message", "show", "invalid",
]

_PROBE = """
(() => {
  const events = %s;
  for (const el of Array.from(document.querySelectorAll("*"))) {
    for (const name of events) {
      try { el.dispatchEvent(new Event(name)); } catch (e) {}
    }
  }
  const found = [];
  const urls = new Set(%s);
  for (const el of Array.from(document.querySelectorAll("*"))) {
    for (const a of Array.from(el.attributes)) {
      const name = a.name.toLowerCase();
      if (name.startsWith("on")) found.push("DOM: " + el.localName + " has " + name);
      if (urls.has(name)) {
        const v = a.value.replace(/[\\u0000-\\u0020\\u007f]/g, "").toLowerCase();
        const m = /^([a-z][a-z0-9+.-]*):/.exec(v);
        if (m && m[1] !== "http" && m[1] !== "https")
          found.push("DOM: " + el.localName + " " + name + "=" + a.value.slice(0, 60));
      }
    }
  }
  return found;
})()
//# sourceURL=fedipress-xss-probe
"""
_OURS = ("fedipress-xss-trap", "fedipress-xss-probe")


class BrowserProbe:
    """Headless Chromium that reports anything a page runs beyond the theme's own scripts."""

    def __init__(self, profile: Path, *, settle: float = 0.25) -> None:
        self.settle = settle
        read_cmd, self._write = os.pipe()  # we write commands -> chromium reads fd 3
        self._read, write_evt = os.pipe()  # chromium writes fd 4 -> we read
        self.proc = subprocess.Popen(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--mute-audio",
                "--remote-debugging-pipe", f"--user-data-dir={profile}",
                # Nothing but loopback resolves: a page cannot reach any other host.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=lambda: (os.dup2(read_cmd, 3), os.dup2(write_evt, 4)) and None,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(read_cmd)
        os.close(write_evt)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        target = self.call("Target.createTarget", url="about:blank", session=False)["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True, session=False)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Debugger"):
            self.call(f"{domain}.enable")
        self.call("Runtime.addBinding", name="__fedipressXss")
        self.call("Page.addScriptToEvaluateOnNewDocument", source=_TRAP)

    # --- the pipe ---

    def _message(self, deadline: float) -> dict[str, Any] | None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._read], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        if message.get("method") == "Page.javascriptDialogOpening":
            self._send("Page.handleJavaScriptDialog", {"accept": False})  # else the page hangs
        return message

    def _send(self, method: str, params: dict[str, Any], session: bool = True) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._write, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def call(self, method: str, *, session: bool = True, **params: Any) -> dict[str, Any]:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + 30
        while True:
            reply = self._message(deadline)
            if reply is None:
                raise RuntimeError(f"{method}: no answer from chromium in 30 s")
            if reply.get("id") == wanted:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def _collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (message := self._message(deadline)) is not None:
            if "method" in message:
                self.events.append(message)

    # --- a visit ---

    def visit(self, url: str, known_scripts: frozenset[str] = frozenset()) -> list[str]:
        """Load `url`, wake every handler, and return what ran or moved that should not have."""
        self.events.clear()
        frame = self.call("Page.navigate", url=url)["frameId"]
        deadline = time.monotonic() + 20
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            message = self._message(deadline)
            if message is None:
                return [f"{url} did not finish loading in 20 s"]
            if "method" in message:
                self.events.append(message)
        self._collect(self.settle)
        dom = self.call(
            "Runtime.evaluate", returnByValue=True,
            expression=_PROBE % (json.dumps(_EVENTS), json.dumps(sorted(URL_ATTRIBUTES))),
        )["result"].get("value") or []
        self._collect(self.settle)
        findings = [str(f) for f in dom]
        loaded = False
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.bindingCalled" and params.get("name") == "__fedipressXss":
                findings.append(f"dialog function called: {params.get('payload')}")
            elif method == "Page.javascriptDialogOpening":
                findings.append(f"dialog opened: {params.get('type')} {params.get('message')}")
            elif method == "Page.frameRequestedNavigation":
                findings.append(f"navigation requested ({params.get('reason')}):"
                                f" {params.get('url', '')[:80]}")
            elif method == "Page.frameAttached":
                findings.append("a frame was created")
            elif method == "Page.frameNavigated":
                nav = params.get("frame", {})
                if nav.get("id") != frame or nav.get("parentId"):
                    findings.append(f"a frame navigated to {nav.get('url', '')[:80]}")
                elif loaded or nav.get("url") != url:
                    findings.append(f"the page navigated to {nav.get('url', '')[:80]}")
                loaded = True
            elif method == "Debugger.scriptParsed":
                finding = self._script(params, known_scripts)
                if finding:
                    findings.append(finding)
        return findings

    def _script(self, params: dict[str, Any], known: frozenset[str]) -> str | None:
        if params.get("url") in _OURS or params.get("executionContextAuxData", {}).get(
                "type") == "isolated":
            return None
        try:
            source = self.call("Debugger.getScriptSource", scriptId=params["scriptId"])
        except RuntimeError:
            return f"a script ran ({params.get('url')!r}), its source is gone"
        text = str(source.get("scriptSource", "")).strip()
        if text in known or text.endswith(_OURS):
            return None
        return f"a script ran: {text[:80]!r}"

    def close(self) -> None:
        try:
            self._send("Browser.close", {}, session=False)
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self._read)
        os.close(self._write)

    def __enter__(self) -> BrowserProbe:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
