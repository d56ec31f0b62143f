"""Theme search path -> Jinja2 environment.

A theme is a directory with `templates/` and `static/`. The search path runs from the site's
own theme directory (`<root>/themes/<name>/`) through the parents named by `theme.yaml`
(`extends: default`, the default when the file is missing) down to the packaged default theme,
so a site overrides any single template or static file without copying the rest (the MkDocs
custom_dir idea). A template can still reach a parent's version of itself with a `!<theme>/`
prefix, e.g. `{% extends "!default/post.html" %}` (pelican's `!simple/`).

Loading and compiling templates is file I/O, so this module lives at the edge; render.py only
receives the finished environment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from difflib import get_close_matches
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import jinja2
import jinja2.meta
import yaml
from jinja2 import nodes

from ..config import SiteConfig
from ..errors import ThemeError
from .slug import publishable_name

__all__ = [
    "PACKAGED_THEMES",
    "ThemeDir",
    "ThemeEnvironment",
    "available_themes",
    "format_date",
    "make_environment",
    "render_template",
    "theme_fingerprint",
    "theme_search_path",
    "theme_static_files",
]

PACKAGED_THEMES = Path(__file__).resolve().parent / "themes"

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class ThemeDir:
    """One theme on the search path: its name, directory, and how errors should name it."""

    name: str
    path: Path
    label: str  # "themes/mine" (site) or "fedipress/themes/default" (packaged)


class ThemeEnvironment(jinja2.Environment):
    """A Jinja2 environment that remembers the theme directories it searches, child first."""

    theme_dirs: tuple[ThemeDir, ...] = ()
    theme_hash: str = ""  # theme_fingerprint() at creation; pages' fingerprints include it

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as a plain dict copied when it loads, not Jinja's ChainMap
        over the environment's: every context a render makes (one per include) takes the
        set of their keys, and iterating a ChainMap costs several times a dict. The copy
        misses globals set after the template loaded: make_environment sets them all first."""
        return {**self.globals, **(d or {})}


def available_themes(root: Path) -> list[str]:
    """Names of packaged themes and of the site's `themes/` directories, sorted."""
    names = {p.name for p in PACKAGED_THEMES.iterdir() if p.is_dir()}
    site_dir = root / "themes"
    if site_dir.is_dir():
        names |= {p.name for p in site_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return sorted(names)


def _key_location(file: Path, key: str, label: str) -> str:
    """`label:LINE` of the top-level `key:` in a YAML file (just `label` if not found)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return label
    found = re.search(rf"^{key}\s*:", text, re.MULTILINE)
    return f"{label}:{text.count(chr(10), 0, found.start()) + 1}" if found else label


def _read_extends(theme_yaml: Path, label: str) -> str | None:
    try:
        data = yaml.safe_load(theme_yaml.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ThemeError(f"{label}/theme.yaml{line}: not valid YAML") from None
    except ValueError as exc:  # not UTF-8, or a date-shaped value that is no real date
        raise ThemeError(f"{label}/theme.yaml: cannot be read: {exc}") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ThemeError(f"{label}/theme.yaml:1: expected a mapping like `extends: default`")
    for key in data:
        if key != "extends":  # a misspelt `extends:` would silently mean the default theme
            where = _key_location(theme_yaml, re.escape(str(key)), f"{label}/theme.yaml")
            hint = "; did you mean 'extends'?" if get_close_matches(str(key), ["extends"]) \
                else ""
            raise ThemeError(f"{where}: unknown key {str(key)!r}; theme.yaml has only"
                             f" `extends:`{hint}")
    extends = data.get("extends")
    if extends is None:
        return None
    if not isinstance(extends, str) or not extends.strip():
        raise ThemeError(f"{label}/theme.yaml: `extends` must be a theme name, e.g. default")
    return extends.strip()


def theme_search_path(config: SiteConfig) -> tuple[ThemeDir, ...]:
    """The theme directories to search, child first, always ending with the packaged default.

    `<root>/themes/<name>/` comes first when it exists (even for name "default": that is how a
    site overrides a single file of the default theme), then the packaged theme of that name,
    then whatever `theme.yaml` extends. An unknown name raises ThemeError listing the choices.
    """
    chain: list[ThemeDir] = []
    seen: list[str] = []
    name: str | None = config.theme
    # Where the current name was asked for (file, key, label); read only to name an error.
    named_in: tuple[Path, str, str] = (config.config_file, "theme", config.config_file.name)
    while name is not None:
        if name in seen:
            cycle = " -> ".join([*seen, name])
            raise ThemeError(f"themes/{seen[-1]}/theme.yaml: themes extend in a loop ({cycle})")
        seen.append(name)
        site_dir = config.root / "themes" / name
        packaged = PACKAGED_THEMES / name
        if not site_dir.is_dir() and not packaged.is_dir():
            choices = ", ".join(available_themes(config.root))
            raise ThemeError(f"{_key_location(*named_in)}: unknown theme {name!r}; available"
                             f" themes: {choices}")
        parent: str | None = None
        if site_dir.is_dir():
            label = f"themes/{name}"
            chain.append(ThemeDir(name, site_dir, label))
            theme_yaml = site_dir / "theme.yaml"
            if theme_yaml.is_file():
                parent = _read_extends(theme_yaml, label)
                named_in = (theme_yaml, "extends", f"{label}/theme.yaml")
        if packaged.is_dir():
            chain.append(ThemeDir(name, packaged, f"fedipress/themes/{name}"))
            theme_yaml = packaged / "theme.yaml"
            if parent is None and theme_yaml.is_file():
                parent = _read_extends(theme_yaml, f"fedipress/themes/{name}")
                named_in = (theme_yaml, "extends", f"fedipress/themes/{name}/theme.yaml")
        if parent is None and name != "default":
            parent = "default"  # every theme falls back to the default for what it lacks
        name = parent
    return tuple(chain)


class _ThemeLoader(jinja2.BaseLoader):
    """Child-first lookup over the theme chain, plus `!<theme>/name` for a named theme's copy."""

    def __init__(self, dirs: tuple[ThemeDir, ...]) -> None:
        self.dirs = dirs
        # The source get_source() last returned per name, for load() to analyse (_memoize).
        self._sources: dict[str, str] = {}
        self._loading: set[str] = set()  # names being loaded now (an include cycle guard)

    def _candidates(self, template: str) -> Iterator[Path]:
        parts = template.split("/")
        if any(p in ("", ".", "..") for p in parts):
            return
        if template.startswith("!"):
            theme, _, rest = template[1:].partition("/")
            # The site's own copy of `theme` is what `!theme/` usually wants to bypass, so
            # a packaged theme of that name wins; otherwise the site directory is used.
            named = [d for d in self.dirs if d.name == theme]
            named.sort(key=lambda d: not d.label.startswith("fedipress/"))
            for d in named:
                yield d.path / "templates" / rest
            return
        for d in self.dirs:
            yield d.path / "templates" / template

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        for path in self._candidates(template):
            if path.is_file():
                source = path.read_text(encoding="utf-8")
                mtime = path.stat().st_mtime
                self._sources[template] = source
                return source, str(path), lambda p=path, m=mtime: p.stat().st_mtime == m
        raise jinja2.TemplateNotFound(template)

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        """The template, its output remembered per input when it is a pure partial
        (_memoize). Called once per name and environment (Jinja caches the result)."""
        self._loading.add(name)
        try:
            template = super().load(environment, name, globals)
            source = self._sources.pop(name, None)
            if source is not None:
                _memoize(environment, template, source, self._loading)
        finally:
            self._loading.discard(name)
        return template

    def list_templates(self) -> list[str]:
        found: set[str] = set()
        for d in self.dirs:
            base = d.path / "templates"
            if base.is_dir():
                found |= {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
        return sorted(found)


# --- partials rendered once per input -------------------------------------------------------

# Context names whose values are the same objects on every page of a plan (render.py's site
# view, config and nav; each post's Post; a tag page's Tag, missing elsewhere), plus Jinja's
# pure default globals. A template that reads nothing else makes the same text for the same
# objects: a post's meta line on the home page and on its own page, the footer's profile on
# every page. (The default post_meta.html reads `tag` to leave a tag page's own tag out, so a
# summary there is rendered once per tag page rather than once per post.)
_STABLE_NAMES = frozenset({
    "post", "site", "config", "nav", "theme_version", "tag",
    "range", "dict", "namespace", "cycler", "joiner",
})
# Filters whose output is not a function of their input (`lipsum` is a global, not stable).
_IMPURE_FILTERS = frozenset({"random", "shuffle"})
# Whole-memo bounds per template: a cold build at 10,000 posts keeps ~10,000 summaries
# (~15 MB); past either bound the memo starts again rather than grow without end.
_MEMO_ENTRIES = 50_000
_MEMO_CHARS = 64_000_000


def _stable_inputs(
    env: jinja2.Environment, source: str, name: str, loading: set[str]
) -> tuple[str, ...] | None:
    """The context names `source`'s output depends on (its includes' too), or None when it
    could depend on anything else: a name outside _STABLE_NAMES, an impure filter, an
    extends, import or dynamic include, an include that fails to load."""
    facts = _source_facts(env, source, name)
    if facts is None:
        return None
    own, includes = facts
    names = set(own)
    for target in includes:
        if target in loading:
            return None  # an include cycle: rendering reports it, as without the memo
        try:
            inner = env.get_template(target, name)
        except Exception:  # noqa: BLE001 - a broken template fails where it is rendered
            return None
        inner_names: tuple[str, ...] | None = getattr(inner, "_fedipress_inputs", None)
        if inner_names is None:
            return None
        names.update(inner_names)
    return tuple(sorted(names))


# What each template source reads and includes, by (name, source): parsing a template again
# for every environment (one per build, so every dev-server rebuild) cost ~2 ms a template.
# Bounded: a theme has a few dozen templates; edits in the dev server add versions.
_FACTS: dict[tuple[str, str], tuple[frozenset[str], tuple[str, ...]] | None] = {}
_FACTS_LIMIT = 512


def _source_facts(env: jinja2.Environment, source: str, name: str,
                  ) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """(names `source` reads, templates it includes) when those are all that decide its
    output apart from its includes, else None (see _stable_inputs)."""
    key = (name, source)
    if key in _FACTS:
        return _FACTS[key]
    facts = _parse_facts(env, source, name)
    if len(_FACTS) >= _FACTS_LIMIT:
        _FACTS.clear()
    _FACTS[key] = facts
    return facts


def _parse_facts(env: jinja2.Environment, source: str, name: str,
                 ) -> tuple[frozenset[str], tuple[str, ...]] | None:
    try:
        ast = env.parse(source, name)
        names = frozenset(jinja2.meta.find_undeclared_variables(ast))
    except Exception:  # noqa: BLE001 - a broken template fails where it is rendered
        return None
    if not names <= _STABLE_NAMES:
        return None
    if any(f.name in _IMPURE_FILTERS for f in ast.find_all(nodes.Filter)):
        return None
    if any(True for _ in ast.find_all((nodes.Extends, nodes.Import, nodes.FromImport))):
        return None
    includes: list[str] = []
    for include in ast.find_all(nodes.Include):
        target = include.template
        if not isinstance(target, nodes.Const) or not isinstance(target.value, str):
            return None
        includes.append(target.value)
    return names, tuple(includes)


def _memoize(
    env: jinja2.Environment, template: jinja2.Template, source: str, loading: set[str]
) -> None:
    """Make `template` render once per set of input objects when its output can depend on
    nothing but the _STABLE_NAMES it reads (see _stable_inputs).

    Jinja renders an `{% include %}` by calling the template's root_render_func with a new
    context, so this wraps that function: the key is the identity of each input's value
    (the values are kept with the text, so an id is never reused while remembered). A site
    theme's override of the partial is a different template with its own memo, and the
    memo lives as long as the environment, which a build makes for each plan.
    """
    inputs = _stable_inputs(env, source, template.name or "", loading)
    template._fedipress_inputs = inputs  # type: ignore[attr-defined]
    if inputs is None:
        return
    render = template.root_render_func
    memo: dict[tuple[int, ...], tuple[tuple[object, ...], str]] = {}
    size = [0]

    def root(context: jinja2.runtime.Context) -> Iterator[str]:
        resolve = context.resolve_or_missing
        values = tuple([resolve(n) for n in inputs])
        key = tuple(map(id, values))
        hit = memo.get(key)
        if hit is not None:
            yield hit[1]
            return
        text = "".join(render(context))
        if len(memo) >= _MEMO_ENTRIES or size[0] >= _MEMO_CHARS:
            memo.clear()
            size[0] = 0
        memo[key] = (values, text)
        size[0] += len(text)
        yield text

    template.root_render_func = root


def format_date(value: datetime, tz: Any) -> str:
    """`14 September 2026` in the site's time zone; month names fixed so output is locale-free."""
    local = value.astimezone(tz)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def make_environment(config: SiteConfig) -> ThemeEnvironment:
    """A Jinja2 environment over the site's theme search path (autoescaped HTML).

    Filters: `date` ("14 September 2026"), `isodate` (ISO 8601 with offset), `year`, all in
    `config.timezone`. Globals: `theme_version` (short theme hash for cache-busting URLs).
    There is deliberately no `now`: the same input must give byte-identical output.
    """
    dirs = theme_search_path(config)
    env = ThemeEnvironment(
        loader=_ThemeLoader(dirs),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        # A plain dict of loaded templates instead of the default LRU of 400 behind a lock:
        # every {% include %} looks its template up again (~13,000 lookups at 1,000 posts),
        # and a theme has a few dozen templates.
        cache_size=-1,
    )
    env.theme_dirs = dirs
    tz = config.tz

    def isodate(v: Any) -> Any:
        return v.astimezone(tz).isoformat() if isinstance(v, datetime) else v

    env.filters["date"] = lambda v: format_date(v, tz) if isinstance(v, datetime) else v
    env.filters["isodate"] = isodate
    env.filters["year"] = lambda v: v.astimezone(tz).year if isinstance(v, datetime) else v
    env.theme_hash = theme_fingerprint(env)
    env.globals["theme_version"] = env.theme_hash[:10]
    return env


def _files(root: Path) -> Iterator[Path]:
    # Regular files only (a socket or FIFO would fail or block a read), with names a URL can
    # carry (a name that is not UTF-8 cannot be published).
    if root.is_dir():
        yield from sorted(p for p in root.rglob("*") if p.is_file() and publishable_name(p.name))


def theme_fingerprint(env: jinja2.Environment) -> str:
    """sha256 over every template and static file on the search path (names and bytes)."""
    digest = hashlib.sha256()
    for d in getattr(env, "theme_dirs", ()):
        digest.update(f"theme {d.name} {d.label}\0".encode())
        for path in _files(d.path):
            digest.update(path.relative_to(d.path).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def theme_static_files(config: SiteConfig) -> list[tuple[str, Path]]:
    """(output path like "theme/style.css", source) for each static asset; child themes win."""
    chosen: dict[str, Path] = {}
    for d in theme_search_path(config):
        static = d.path / "static"
        for path in _files(static):
            rel = path.relative_to(static).as_posix()
            if any(part.startswith(".") for part in rel.split("/")):
                continue  # editor swap files, .DS_Store and the like are not assets
            chosen.setdefault(f"theme/{rel}", path)
    return sorted(chosen.items())


# --- errors that name the template file and line ----------------------------------------------


def _label(env: jinja2.Environment, filename: str | None, name: str | None) -> str:
    if filename:
        path = Path(filename)
        for d in getattr(env, "theme_dirs", ()):
            if path.is_relative_to(d.path):
                return f"{d.label}/{path.relative_to(d.path).as_posix()}"
        return filename
    return name or "<template>"


def _template_frame(env: jinja2.Environment, tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost traceback frame that runs template code (Jinja maps it to source lines)."""
    found: tuple[str, int] | None = None
    dirs = [d.path for d in getattr(env, "theme_dirs", ())]
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if any(Path(filename).is_relative_to(p) for p in dirs):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _raise_theme_error(env: jinja2.Environment, name: str, exc: BaseException) -> NoReturn:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = _label(env, exc.filename, exc.name or name)
        raise ThemeError(f"{where}:{exc.lineno}: {exc.message}") from None
    if isinstance(exc, jinja2.TemplateNotFound):
        searched = ", ".join(f"{d.label}/templates" for d in getattr(env, "theme_dirs", ()))
        raise ThemeError(
            f"{_label(env, None, name)}: template {exc.name!r} not found (searched {searched})"
        ) from None
    frame = _template_frame(env, exc.__traceback__)
    if frame is not None:
        where = f"{_label(env, frame[0], name)}:{frame[1]}"
    else:
        where = _label(env, None, name)
    raise ThemeError(f"{where}: {type(exc).__name__}: {exc}") from None


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """Render `name` with `context`; any template failure becomes a ThemeError with file:line."""
    try:
        return env.get_template(name).render(context)
    except ThemeError:
        raise
    except Exception as exc:  # noqa: BLE001 - every template failure is the theme author's
        _raise_theme_error(env, name, exc)
