"""Hugo shortcodes and Jekyll Liquid tags in imported posts -> plain Markdown. PURE.

A blog moved from Hugo or Jekyll keeps its `{{< figure >}}`, `{{< ref >}}`,
`{% highlight %}` and `{% post_url %}`. Left to Markdown they come out mangled (curly
quotes, code swallowed into an HTML tag, broken links), so `preprocess` runs on a body
before Markdown and rewrites the common ones into what fedipress makes of the equivalent
Markdown:

    Hugo figure                      <figure> with the image and a Markdown caption
    Hugo highlight, Jekyll highlight a fenced code block (the same Pygments path)
    Hugo youtube                     a plain link to the video (no iframe, no request to
                                     YouTube until the reader clicks; survives federation)
    Hugo gist, Jekyll gist           a plain link to the gist (no script)
    Hugo ref/relref, Jekyll          a link marker, resolved against the whole site once
      post_url/link                  every post is known (`resolve`)
    Jekyll raw                       its contents as written (nothing inside is rewritten)
    Jekyll comment                   nothing (it never showed)
    {{ site.baseurl }}, {{ site.url }}, {{ "x" | relative_url }} (Jekyll)   the path itself

Anything else (`{{< tweet >}}`, `{% include %}`, `{{ page.title }}`) is left visible exactly
as written (every punctuation character as an entity, so neither smart quotes, emphasis nor
attribute lists touch it) and noted for a build warning. Inside code (fenced, indented or
inline) nothing is rewritten except the escape forms whose only purpose is showing such
syntax in code: Hugo's `{{</* x */>}}` becomes `{{< x >}}` and Jekyll's `{% raw %}` and
`{% endraw %}` disappear, as they do on the old site.

What depends on other posts or needs a warning is carried through Markdown as a marker,
`fedipress-x:<kind><line>.<hex>`: letters and digits that Markdown, smart punctuation and
URL rewriting leave alone (a reference, where its URL will go) or the same inside an HTML
comment (a warning), and that a cached rendering keeps. `resolve` turns them into URLs and
warnings (with the line in the file: bodies keep file line numbers) on every build, so a
rendering stays pure and cacheable.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MARKER", "SYNTAX_VERSION", "Note", "preprocess", "resolve", "verbatim"]

MARKER = "fedipress-x:"
# Bump whenever `preprocess` makes something else of the same body: renderings are cached
# by their body (frontmatter._render_key).
SYNTAX_VERSION = 1

# Kinds of markers: a warning (hex of its message) or a reference (hex of its target).
_WARN = "w"
_REF_KINDS = {"h": "ref", "r": "relref", "p": "post_url", "l": "link"}

# A warning is an HTML comment (kept out of heading ids, word counts and the text); one on a
# line of its own goes with its line. A reference is bare text (it may be a link's href).
_MARKER_RE = re.compile(
    r"(^)?(<!--)?fedipress-x:([whrpl])(\d+)\.([0-9a-f]*)(?(2)-->)(\n)?", re.MULTILINE)

# Hugo: {{< name args >}} / {{% name args %}}, closers {{< /name >}}, self-closing
# {{< name />}}; the escape form {{</* ... */>}} shows the shortcode itself.
_HUGO = re.compile(
    r"\{\{([<%])\s*(/?)\s*([A-Za-z_][\w./-]*)((?:[^>%\"`]|\"(?:[^\"\\\n]|\\.)*\"|`[^`]*`"
    r"|[>%](?!\}\}))*?)\s*(/?)\s*([>%])\}\}",
    re.DOTALL,
)
_CLOSER = {"<": ">", "%": "%"}
# (The inside stops at a brace: a stray opener costs a few characters, not a long search.)
_HUGO_ESCAPED = re.compile(r"\{\{([<%])/\*((?:[^{*]|\*(?!/)){0,4000}?)\*/([>%])\}\}")
_HUGO_ARG = re.compile(
    r"\s*(?:([A-Za-z_][\w-]*)\s*=\s*)?(\"(?:[^\"\\]|\\.)*\"|`[^`]*`|[^\s\"`=]+)")
# Liquid: {% tag args %} (with - for whitespace control) and {{ expression }}.
_LIQUID_TAG = re.compile(r"\{%-?\s*([A-Za-z_]\w*)((?:[^%]|%(?!\}))*?)\s*-?%\}")
_LIQUID_RAW = re.compile(r"\{%-?\s*(?:end)?raw\s*-?%\}")
_HUGO_HIGHLIGHT_END = re.compile(r"\{\{([<%])\s*/\s*highlight\s*([>%])\}\}")
_HIGHLIGHT_END = re.compile(r"\{%-?\s*endhighlight\s*-?%\}")
_RAW_END = re.compile(r"\{%-?\s*endraw\s*-?%\}")
_COMMENT_END = re.compile(r"\{%-?\s*endcomment\s*-?%\}")
_LIQUID_OUT = re.compile(r"\{\{-?\s*((?:[^}<%]|\}(?!\}))*?)\s*-?\}\}")
# Only what is recognisably Jekyll's: `{{ x }}` alone may be anything (math, a template
# language the post is about).
_JEKYLL_OBJECT = re.compile(
    r"(?:site|page|post|include|layout|paginator|forloop|jekyll|content)\b|[\"'].*\|", re.DOTALL)
_URL_ONLY = re.compile(
    r"""^site\.(?:baseurl|url)$|^(["'])(.*)\1\s*\|\s*(?:relative_url|absolute_url)$""", re.DOTALL)

_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"[ \t]{0,3}(?:[*+-]|\d{1,9}[.)])(?:[ \t]|$)")
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_GIST_ID = re.compile(r"[0-9A-Fa-f]{1,40}|\d+")
_GIST_USER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_LANG = re.compile(r"[\w+#.-]+")
_LINES = re.compile(r"\d+(?:-\d+)?")

# A shortcode or tag longer than this is taken for text (and keeps each look linear).
_LONGEST = 4000


@dataclass(frozen=True)
class Note:
    """A warning about one place in a body: `line` is the line in the file."""

    line: int
    message: str


def _hex(text: str) -> str:
    return text.encode().hex()


def _unhex(text: str) -> str:
    try:
        return bytes.fromhex(text).decode()
    except ValueError:  # (only a hand-written marker could be broken)
        return text


def _warn_marker(line: int, message: str) -> str:
    # An HTML comment: Markdown keeps it as it is, inline or as a block of its own.
    return f"<!--{MARKER}{_WARN}{line}.{_hex(message)}-->"


def verbatim(text: str) -> str:
    """Text shown exactly as written: ASCII punctuation as numeric entities, which Markdown
    keeps as they are (no emphasis, smart quotes, attribute lists or HTML)."""
    return text.translate(_VERBATIM)


_VERBATIM = {c: f"&#{c};" for c in range(0x21, 0x7f) if not chr(c).isalnum()}


def _unescape_code(text: str) -> str:
    """What code keeps: only the escape forms are undone."""
    if "{{" in text:
        text = _HUGO_ESCAPED.sub(lambda m: "{{" + m.group(1) + m.group(2) + m.group(3) + "}}",
                                 text)
    if "{%" in text:
        text = _LIQUID_RAW.sub("", text)
    return text


def _args(text: str) -> tuple[list[str], dict[str, str]] | None:
    """Hugo shortcode arguments -> (positional, named); None if they cannot be read."""
    positional: list[str] = []
    named: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _HUGO_ARG.match(text, pos)
        if m is None or m.end() == pos:
            return None
        value = m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif value.startswith("`"):
            value = value[1:-1]
        if m.group(1):
            named[m.group(1)] = value
        else:
            positional.append(value)
        pos = m.end()
    return positional, named


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _md_text(text: str) -> str:
    """Plain text inside Markdown link text: Markdown's special characters escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return re.sub(r"([\\`*_{}\[\]()#+.!|-])", r"\\\1", text)


def _line_ranges(spec: str) -> str | None:
    """'8 15-17' or '8,15-17' -> '8 15 16 17' (Python-Markdown's hl_lines)."""
    numbers: list[str] = []
    for part in re.split(r"[\s,]+", spec.strip()):
        if not part:
            continue
        if not _LINES.fullmatch(part):
            return None
        first, _, last = part.partition("-")
        end = int(last) if last else int(first)
        if end - int(first) > 10_000:
            return None
        numbers.extend(str(n) for n in range(int(first), end + 1))
    return " ".join(numbers)


class _Scanner:
    """One body: `run` returns it rewritten (warnings are markers in it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []
        self._line_pos = 0
        self._line_no = 1
        self._para_end = -1  # the end of the paragraph last asked about (see paragraph_end)
        self._none_after: dict[re.Pattern[str], int] = {}
        self._next: dict[str, int] = {}  # token -> where it occurs next (see `next_of`)

    def next_of(self, token: str, i: int) -> int:
        """Where `token` next occurs at or after `i` (len(text) if nowhere). Each token's
        position is searched forward once over the whole text, not once per line."""
        at = self._next.get(token, -1)
        if at < i:
            at = self.text.find(token, i)
            at = len(self.text) if at < 0 else at
            self._next[token] = at
        return at

    def closing(self, j: int, delimiter: str) -> int:
        """The end of the shortcode or tag opened at `j` (just after the first `delimiter`
        that follows it), or -1 when none is near or another opens first. Bounding each
        look keeps a body full of stray `{{` linear."""
        close = self.next_of(delimiter, j + 2)
        if close >= j + _LONGEST or self.next_of(self.text[j:j + 2], j + 2) < close:
            return -1
        return close + len(delimiter)

    def search(self, pattern: re.Pattern[str], pos: int) -> re.Match[str] | None:
        """pattern.search(text, pos), remembering where it found nothing: many unclosed
        openers then cost one search, not one each."""
        if self._none_after.get(pattern, len(self.text) + 1) <= pos:
            return None
        found = pattern.search(self.text, pos)
        if found is None:
            self._none_after[pattern] = pos
        return found

    def paragraph_end(self, pos: int) -> int:
        """Where the paragraph around `pos` ends (a blank line). Asked in increasing order:
        a paragraph of many code spans is searched once, not once per span."""
        if pos >= self._para_end:
            m = _BLANK_LINE.search(self.text, pos)
            self._para_end = m.start() if m is not None else len(self.text)
        return self._para_end

    def line_of(self, pos: int) -> int:
        # Markers are met in order: count newlines from the last one asked about.
        if pos < self._line_pos:
            self._line_pos, self._line_no = 0, 1
        self._line_no += self.text.count("\n", self._line_pos, pos)
        self._line_pos = pos
        return self._line_no

    # -- the block structure: what is code --------------------------------------------------

    def run(self) -> str:
        text = self.text
        n = len(text)
        i = 0
        fence: tuple[str, int] | None = None  # (character, length) of an open fence
        in_list = False
        prev_blank = True
        indented_code = False
        while i < n:
            end = text.find("\n", i)
            end = n if end < 0 else end + 1
            line = text[i:end]
            stripped = line.strip()
            if fence is not None:
                self.out.append(_unescape_code(line))
                m = _FENCE.match(line)
                if (m is not None and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1]
                        and not line[m.end():].strip()):
                    fence = None
                i = end
                continue
            if not stripped:
                self.out.append(line)
                prev_blank = True
                i = end
                continue
            width = len(line[: len(line) - len(line.lstrip(" \t"))].expandtabs(4))
            m = _FENCE.match(line)
            if m is not None and (width < 4 or in_list) and not (
                    m.group(1)[0] == "`" and "`" in line[m.end():]):
                fence = (m.group(1)[0], len(m.group(1)))
                self.out.append(_unescape_code(line))
                prev_blank = False
                i = end
                continue
            if width >= 4 and not in_list and (prev_blank or indented_code):
                indented_code = True
                self.out.append(_unescape_code(line))
                prev_blank = False
                i = end
                continue
            indented_code = False
            if width < 4:
                if _LIST_ITEM.match(line):
                    in_list = True
                elif prev_blank:
                    in_list = False
            prev_blank = False
            i = self.inline(i, end)
        return "".join(self.out)

    # -- text: code spans, shortcodes and tags -------------------------------------------------

    def inline(self, i: int, end: int) -> int:
        """Rewrite text from `i` to the end of its line (`end`); a construct may run past it.
        Returns where to go on (at a line start)."""
        text = self.text
        out = self.out
        while i < end:
            j = min(self.next_of("`", i), self.next_of("{{", i), self.next_of("{%", i))
            if j >= end:
                out.append(text[i:end])
                return end
            out.append(text[i:j])
            if text[j] == "`":
                i = self.code_span(j)
            elif text.startswith("{%", j):
                i = self.liquid_tag(j)
            else:
                i = self.curly(j)
            if i > end:  # ran over lines: go on to the end of the line it stopped in
                nl = text.find("\n", i)
                end = len(text) if nl < 0 else nl + 1
        return i

    def code_span(self, j: int) -> int:
        text = self.text
        k = j
        while k < len(text) and text[k] == "`":
            k += 1
        ticks = text[j:k]
        # The closing run of as many backticks, within the paragraph.
        para_end = self.paragraph_end(k)
        pos = k
        while True:
            c = text.find(ticks, pos, para_end)
            if c < 0:
                self.out.append(ticks)  # not a code span: literal backticks
                return k
            e = c + len(ticks)
            if e < len(text) and text[e] == "`":
                while e < len(text) and text[e] == "`":
                    e += 1
                pos = e
                continue
            self.out.append(_unescape_code(text[j:e]))
            return e

    def curly(self, j: int) -> int:
        text = self.text
        escaped = None
        if text.startswith(("{{</*", "{{%/*"), j):
            end = self.closing(j, "*/" + _CLOSER[text[j + 2]] + "}}")
            if end >= 0:
                escaped = _HUGO_ESCAPED.match(text, j, end)
        if escaped is not None:
            shown = "{{" + escaped.group(1) + escaped.group(2) + escaped.group(3) + "}}"
            self.out.append(verbatim(shown))
            return escaped.end()
        m = None
        if text[j + 2:j + 3] in ("<", "%"):
            end = self.closing(j, _CLOSER[text[j + 2]] + "}}")
            if end >= 0:
                m = _HUGO.match(text, j, end)
        if m is not None and _CLOSER[m.group(1)] == m.group(6):
            return self.shortcode(m)
        end = self.closing(j, "}}")
        out = _LIQUID_OUT.match(text, j, end) if end >= 0 else None
        if out is not None and _JEKYLL_OBJECT.match(out.group(1)):
            expr = out.group(1).strip()
            url = _URL_ONLY.match(expr)
            if url is not None:
                self.out.append(url.group(2) or "")
            else:
                self.unsupported(j, out.end(), f"Jekyll's `{{{{ {expr} }}}}` is not supported")
            return out.end()
        self.out.append("{{")
        return j + 2

    # -- Hugo -------------------------------------------------------------------------------------

    def shortcode(self, m: re.Match[str]) -> int:
        closing, name, raw_args = m.group(2), m.group(3), m.group(4)
        start, end = m.start(), m.end()
        shown = m.group(0)
        if closing:
            # The closer of a paired shortcode not rewritten: left as written (its opener
            # carries the warning).
            self.out.append(verbatim(shown))
            return end
        line = self.line_of(start)
        args = _args(raw_args)
        if args is None:
            return self.unsupported(start, end, f"cannot read the arguments of `{_short(shown)}`")
        positional, named = args
        if name == "highlight":
            return self.hugo_highlight(m, positional, named)
        if name in ("ref", "relref"):
            target = named.get("path") or (positional[0] if positional else "")
            if not target:
                return self.unsupported(start, end, f"`{_short(shown)}` names no post")
            self.out.append(f"{MARKER}{'h' if name == 'ref' else 'r'}{line}.{_hex(target)}")
            return end
        if name == "figure":
            return self.figure(m, named)
        if name == "youtube":
            video = named.get("id") or (positional[0] if positional else "")
            if not _YOUTUBE_ID.fullmatch(video):
                return self.unsupported(start, end, f"`{_short(shown)}`: expected a YouTube"
                                        " video id such as dQw4w9WgXcQ")
            url = f"https://www.youtube.com/watch?v={video}"
            seconds = named.get("start", "")
            if seconds.isdigit():
                url += f"&t={seconds}s"
            title = named.get("title")
            label = f"Watch on YouTube: {title}" if title else "Watch the video on YouTube"
            self.out.append(f"[{_md_text(label)}]({url})")
            return end
        if name == "gist":
            if len(positional) not in (2, 3) or not _GIST_USER.fullmatch(positional[0]) \
                    or not _GIST_ID.fullmatch(positional[1]):
                return self.unsupported(start, end, f"`{_short(shown)}`: expected"
                                        " {{< gist user id >}} or {{< gist user id file >}}")
            self.out.append(_gist_link(f"{positional[0]}/{positional[1]}",
                                       positional[2] if len(positional) == 3 else None))
            return end
        return self.unsupported(start, end, f"Hugo shortcode `{_short(shown)}` is not supported")

    def hugo_highlight(self, m: re.Match[str], positional: list[str],
                       named: dict[str, str]) -> int:
        start = m.start()
        c = self.search(_HUGO_HIGHLIGHT_END, m.end())
        if c is None:
            return self.unsupported(start, m.end(), "`{{< highlight >}}` is never closed with"
                                    " `{{< /highlight >}}`")
        lang = positional[0] if positional else named.get("lang", "")
        options: dict[str, str] = {}
        spec = positional[1] if len(positional) > 1 else named.get("options", "")
        for part in re.split(r",\s*(?=\w+=)", spec) if spec else []:
            key, _, value = part.strip().partition("=")
            if key:
                options[key.strip()] = value.strip()
        options.update({k: v for k, v in named.items() if k not in ("lang", "options")})
        self.fenced(start, lang, options, self.text[m.end():c.start()])
        return c.end()

    def figure(self, m: re.Match[str], named: dict[str, str]) -> int:
        src = named.get("src", "")
        if not src:
            return self.unsupported(m.start(), m.end(),
                                    f"`{_short(m.group(0))}` has no `src=`")
        caption = named.get("caption", "")
        title = named.get("title", "")
        alt = named.get("alt") or _plain(caption) or title
        img = f'<img src="{_attr(src)}" alt="{_attr(alt)}"'
        for key in ("width", "height", "loading"):
            if named.get(key):
                img += f' {key}="{_attr(named[key])}"'
        img += ">"
        link = named.get("link")
        if link:
            extra = "".join(f' {k}="{_attr(named[k])}"' for k in ("target", "rel") if named.get(k))
            img = f'<a href="{_attr(link)}"{extra}>{img}</a>'
        cls = f' class="{_attr(named["class"])}"' if named.get("class") else ""
        parts = [f"<figure{cls} markdown=\"1\">", img]
        words = []
        if title:
            words.append(f"<strong>{html.escape(title)}</strong>")
        if caption:
            words.append(caption.replace("\n", " "))
        attribution = named.get("attr")
        if attribution:
            shown = html.escape(attribution)
            if named.get("attrlink"):
                shown = f'<a href="{_attr(named["attrlink"])}">{shown}</a>'
            words.append(shown)
        if words:
            parts.append(f'<figcaption markdown="span">{" ".join(words)}</figcaption>')
        parts.append("</figure>")
        self.block(m.start(), "\n".join(parts))
        return m.end()

    # -- Jekyll -----------------------------------------------------------------------------------

    def liquid_tag(self, j: int) -> int:
        text = self.text
        close = self.closing(j, "%}")
        m = _LIQUID_TAG.match(text, j, close) if close >= 0 else None
        if m is None:
            self.out.append("{%")
            return j + 2
        name, rest = m.group(1), m.group(2).strip()
        line = self.line_of(j)
        if name in ("raw", "comment"):
            c = self.search(_RAW_END if name == "raw" else _COMMENT_END, m.end())
            if c is None:
                return self.unsupported(j, m.end(), f"`{{% {name} %}}` is never closed with"
                                        f" `{{% end{name} %}}`")
            if name == "raw":
                self.out.append(text[m.end():c.start()])  # literally, not looked at again
            return c.end()
        if name == "highlight":
            c = self.search(_HIGHLIGHT_END, m.end())
            if c is None:
                return self.unsupported(j, m.end(), "`{% highlight %}` is never closed with"
                                        " `{% endhighlight %}`")
            words = rest.split(None, 1)
            lang = words[0] if words else ""
            options: dict[str, str] = {}
            for om in re.finditer(r"(\w+)(?:=(\"[^\"]*\"|'[^']*'|\S+))?",
                                  words[1] if len(words) > 1 else ""):
                value = om.group(2) or ""
                options[om.group(1)] = value.strip("\"'")
            if "mark_lines" in options:
                options["hl_lines"] = options.pop("mark_lines")
            self.fenced(j, lang, options, text[m.end():c.start()])
            return c.end()
        if name in ("post_url", "link"):
            target = rest.strip().strip("\"'")
            if not target or "{{" in target:
                return self.unsupported(j, m.end(), f"`{_short(m.group(0))}` names no post")
            self.out.append(f"{MARKER}{'p' if name == 'post_url' else 'l'}{line}.{_hex(target)}")
            return m.end()
        if name == "gist":
            words = rest.split()
            ident = words[0].strip("\"'") if words else ""
            user, _, number = ident.rpartition("/")
            if not _GIST_ID.fullmatch(number) or (user and not _GIST_USER.fullmatch(user)):
                return self.unsupported(j, m.end(), f"`{_short(m.group(0))}`: expected"
                                        " {% gist id %} or {% gist user/id file %}")
            self.out.append(_gist_link(ident, words[1].strip("\"'") if len(words) > 1 else None))
            return m.end()
        return self.unsupported(j, m.end(), f"Jekyll tag `{_short(m.group(0))}` is not supported")

    # -- output -----------------------------------------------------------------------------------

    def unsupported(self, start: int, end: int, why: str) -> int:
        line = self.line_of(start)
        self.out.append(verbatim(self.text[start:end]))
        self.out.append(_warn_marker(line, f"{why}; it is shown as written"))
        return end

    def fenced(self, start: int, lang: str, options: dict[str, str], code: str) -> None:
        """A code block as a Markdown fence, on lines of its own at the opener's indentation."""
        attrs: list[str] = []
        dropped: list[str] = []
        for key, value in options.items():
            if key == "hl_lines":
                lines = _line_ranges(value)
                if lines is None:
                    dropped.append(f"{key}={value}")
                else:
                    attrs.append(f'hl_lines="{lines}"')
            elif key == "linenos":
                if value.lower() not in ("false", "none"):
                    attrs.append('linenums="true"')
            elif key == "linenostart" and value.isdigit():
                attrs.append(f'linenostart="{value}"')
            else:
                dropped.append(f"{key}={value}" if value else key)
        if lang and not _LANG.fullmatch(lang):
            dropped.append(f"language {lang!r}")
            lang = ""
        if code.startswith("\r\n"):
            code = code[2:]
        elif code.startswith("\n"):
            code = code[1:]
        code = code.rstrip(" \t")
        if code and not code.endswith("\n"):
            code += "\n"
        code = _unescape_code(code)
        longest = max((len(r) for r in re.findall(r"`+", code)), default=0)
        fence = "`" * max(3, longest + 1)
        if attrs:
            info = "{ " + (f".{lang} " if lang else "") + " ".join(attrs) + " }"
        else:
            info = lang
        indent = self.indent_at(start)
        if indent and any(ln.strip() and not ln.startswith(indent) for ln in code.split("\n")):
            code = "".join(indent + ln if ln.strip() else ln for ln in code.splitlines(True))
        body = f"{indent}{fence}{info}\n{code}{indent}{fence}"
        if dropped:
            note = _warn_marker(self.line_of(start), "code block option(s) " + ", ".join(dropped)
                                + " not supported; the code is shown without them")
            body = f"{indent}{note}\n\n{body}"
        self.block(start, body, indented=True)

    def indent_at(self, pos: int) -> str:
        line_start = self.text.rfind("\n", 0, pos) + 1
        lead = self.text[line_start:pos]
        return lead if not lead.strip() else ""

    def block(self, start: int, body: str, *, indented: bool = False) -> None:
        """`body` as a block of its own: on its own lines, after a blank line. `indented`:
        `body` already carries the opener's indentation (else each line is given it)."""
        indent = self.indent_at(start)
        line_start = self.text.rfind("\n", 0, start) + 1
        if indent or line_start == start:
            if indent and self.out and self.out[-1].endswith(indent):
                self.out[-1] = self.out[-1][: len(self.out[-1]) - len(indent)]
            before = self.text[:line_start]
            if before.strip() and not _BLANK_END.search(before):
                self.out.append("\n")
        else:
            self.out.append("\n\n")
        if indent and not indented:
            body = "".join(indent + ln if ln.strip() else ln for ln in body.splitlines(True))
        self.out.append(body)
        self.out.append("\n")


_BLANK_END = re.compile(r"\n[ \t]*\n$")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _short(shown: str) -> str:
    one_line = " ".join(shown.split())
    return one_line if len(one_line) <= 80 else one_line[:77] + "..."


def _plain(markdown_text: str) -> str:
    text = re.sub(r"<[^>]*>", "", markdown_text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_`]", "", text).strip()


def _gist_link(ident: str, file: str | None) -> str:
    url = f"https://gist.github.com/{ident}"
    if file:
        url += "#file-" + re.sub(r"[^a-z0-9]+", "-", file.lower()).strip("-")
        label = f"View {file} from gist {ident} on GitHub"
    else:
        label = f"View gist {ident} on GitHub"
    return f"[{_md_text(label)}]({url})"


def preprocess(text: str) -> str:
    """A post body with Hugo shortcodes and Jekyll tags rewritten (see the module docstring).
    Bodies without `{{` or `{%` come back as they are."""
    if "{{" not in text and "{%" not in text:
        return text
    return _Scanner(text).run()


# --------------------------------------------------------------------------------------------
# After rendering: markers -> URLs and notes


# What `lookup(kind, target)` answers: the absolute URL, or why there is none.
Lookup = Callable[[str, str], "str | tuple[None, str]"]


def resolve(fragment: str, lookup: Lookup, notes: list[Note]) -> str:
    """`fragment` (rendered HTML) with its markers replaced: references by the URL `lookup`
    gives (or, when it finds nothing, the reference as written, and a note), warnings
    removed and added to `notes`."""
    if MARKER not in fragment:
        return fragment

    def one(m: re.Match[str]) -> str:
        kind, line, value = m.group(3), int(m.group(4)), _unhex(m.group(5))
        newline = m.group(6) or ""
        if kind == _WARN:
            notes.append(Note(line, value))
            alone = m.group(1) is not None and m.group(2) is not None
            return "" if alone else newline
        found = lookup(kind, value)
        if isinstance(found, str):
            return found + newline
        notes.append(Note(line, found[1]))
        name = _REF_KINDS[kind]
        written = (f'{{{{< {name} "{value}" >}}}}' if kind in "hr"
                   else f"{{% {name} {value} %}}")
        return verbatim(written) + newline

    return _MARKER_RE.sub(one, fragment)
