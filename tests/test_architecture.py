"""The import direction, the absence of import cycles and the sans-I/O rules, checked on the
source with `ast`.

Imports flow one way: cli -> orchestration (generator.build, federation.publish,
federation.inbox_server, ...) -> edges (content reading, output writing, store, HTTP, keys) ->
the pure core (activitypub/, generator.markup, model, config, ...), and no two modules import
each other, directly or round a longer circle. The pure core does no I/O: no files, sockets, SQL,
clock, environment or globals; time comes in as an argument.

Each rule is a checker function `(modules) -> list of "file:line: message"` so that it can be run
on the real package and on a deliberately bad package written to tmp_path: every rule is shown to
fail on a bad module, so no test here can pass vacuously.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = REPO / "src" / "fedipress"
PACKAGE = "fedipress"

# --- the rules as data --------------------------------------------------------------------------

# Pure modules (relative to the package); everything under activitypub/ is pure too.
PURE_MODULES = frozenset({
    "model", "wording", "generator.markup", "generator.markup_speedups",
    "generator.markup_speedups_inline", "generator.markup_speedups_blocks",
    "generator.markup_internals", "generator.markup_writers", "generator.render",
    "generator.feeds", "generator.slug", "generator.contenttypes", "generator.migration_syntax",
    "generator.ci_workflows", "generator.conversation_view",
})
PURE_PACKAGES = frozenset({"activitypub"})

# Package modules that do I/O (files, network, SQL, terminal, clock). A name ending in "*" is a
# prefix (federation.inbox, .inbox_handlers, .inbox_server; federation.publish, .publish_plan,
# ...); a package name covers its submodules.
IO_MODULES = (
    "store", "progress", "cli",
    "generator.build", "generator.devserver", "generator.output", "generator.content",
    "generator.scaffold", "generator.ci_setup",
    "federation.remote", "federation.netguard", "federation.delivery", "federation.publish*",
    "federation.inbox*", "federation.keys", "federation.signing", "federation.doctor*",
    "federation.followers", "federation.deliveries", "federation.interactions",
    "federation.avatars",
)

# Libraries that open files, sockets or processes, read the clock or randomness, or hold global
# state. A pure module must not import them at all, not even lazily inside a function: the point
# is that the pure core *cannot* do I/O, not that it happens not to today.
IO_LIBRARIES = (
    "os", "sys", "io", "time", "random", "secrets", "socket", "ssl", "select", "selectors",
    "sqlite3", "subprocess", "multiprocessing", "concurrent", "asyncio", "shutil", "tempfile",
    "glob", "fileinput", "logging", "signal", "urllib.request", "http.client", "http.server",
    "http.cookiejar", "ftplib", "smtplib", "webbrowser", "httpx", "httpcore", "anyio", "h11",
    "requests", "aiohttp", "starlette", "uvicorn", "watchdog", "yaml",
)
# pathlib's pure classes compute paths without touching the disk; Path, PosixPath... do I/O.
PURE_PATHLIB_NAMES = frozenset({"PurePath", "PurePosixPath", "PureWindowsPath"})

# What activitypub/ may import from the rest of the package: the data it turns into documents
# and the error tree. "fedipress" itself is the package root (__version__).
ACTIVITYPUB_MAY_IMPORT = frozenset({"", "model", "config", "errors", "generator.slug",
                                    "generator.contenttypes"})

# Attribute chains that read the clock, the environment, randomness or the terminal. Matched on
# the end of the dotted name, so `datetime.now` also catches `dt.datetime.now`.
CLOCK_ENV_ATTRIBUTES = (
    "datetime.now", "datetime.utcnow", "datetime.today", "date.today",
    "time.time", "time.time_ns", "time.monotonic", "time.perf_counter", "time.sleep",
    "os.environ", "os.getenv", "os.getcwd", "os.urandom", "Path.cwd", "Path.home",
    "sys.stdin", "sys.stdout", "sys.stderr", "sys.argv", "uuid.uuid1", "uuid.uuid4",
)
# Functions that do I/O when called by their bare name.
IO_BUILTINS = frozenset({"open", "input", "print", "breakpoint", "exec", "eval", "__import__"})
# Method names that read or write files whatever the object (Path, zipfile, ...).
IO_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes"})

# Calls that must not run while a module is imported (anywhere in the package): they would bake
# configuration, environment, clock, files or connections into module state (STYLE.md habit 3).
# (Calls to the CLOCK_ENV_ATTRIBUTES count too.)
IMPORT_TIME_CALLS = (
    "getenv", "load_config", "sqlite3.connect", "socket.socket",
    "httpx.Client", "httpx.AsyncClient", "subprocess.run", "subprocess.Popen",
    "subprocess.check_output", "random.random", "random.choice", "random.randint",
)

# The import direction, as layers: a module may import its own layer and the ones below it,
# never one above. New modules must be placed here (test_every_module_has_a_layer says so).
LAYERS: dict[str, int] = {
    # 0: the pure core: data, errors, configuration schema and the pure document builders
    "": 0, "errors": 0, "model": 0, "wording": 0, "config": 0, "activitypub": 0,
    "generator": 0, "generator.sources": 0, "generator.slug": 0, "generator.contenttypes": 0,
    "generator.markup": 0, "generator.markup_speedups": 0, "generator.markup_writers": 0,
    "generator.markup_speedups_inline": 0, "generator.markup_speedups_blocks": 0,
    "generator.markup_internals": 0, "generator.migration_syntax": 0,
    "generator.feeds": 0, "generator.ci_workflows": 0, "generator.conversation_view": 0,
    "federation": 0, "federation.ratelimit": 0,
    # 1: edges: one kind of I/O or rendering each
    "store": 1, "progress": 1,
    "generator.content": 1, "generator.frontmatter": 1, "generator.parsecache": 1,
    "generator.themes": 1, "generator.render": 1, "generator.output": 1,
    "generator.outputsync": 1, "generator.rendercache": 1,
    "federation.keys": 1, "federation.netguard": 1, "federation.remote": 1,
    "federation.signing": 1, "federation.delivery": 1, "federation.hosting": 1,
    "federation.hosting_gone": 1, "federation.avatars": 1, "federation.hosthealth": 1,
    "federation.mentions": 1, "federation.manifest": 1, "federation.publish_checks": 1,
    "federation.moderation": 1,
    # 2: orchestration: what a command calls (publish_plan too: it purges blocked followers and
    # resolves mentions over HTTP, for publish and publish_dry_run alike)
    "generator.build": 2, "generator.devserver": 2, "generator.scaffold": 2,
    "generator.ci_setup": 2,
    "federation.publish": 2, "federation.publish_plan": 2, "federation.publish_dry_run": 2,
    "federation.inbox": 2, "federation.inbox_handlers": 2,
    "federation.inbox_server": 2, "federation.doctor": 2, "federation.followers": 2,
    "federation.deliveries": 2, "federation.interactions": 2, "federation.leave": 2,
    "federation.owner_api": 2, "federation.service_publish": 2, "federation.service_client": 2,
    "federation.service_http": 1, "generator.conversation_source": 2,
    "federation.doctor_probe": 2,
    "federation.webhook": 2, "federation.author_feed": 2, "federation.live_comments": 2,
    "federation.comments": 2, "federation.interact": 2,
    "federation.quotes": 2,
    "federation.worker": 2,
    # 3: the command line (a package of its own once split: its modules share the layer)
    "cli": 3, "__main__": 3,
}
# Subpackages that group modules of several layers: the package's own __init__ has a layer, and
# each module in it must be listed by its dotted name (a new one cannot inherit a layer).
GROUPS = frozenset({"generator", "federation"})
# No module grows past this: split by concept (issue 12), not by size.
MAX_MODULE_LINES = 800
LAYER_NAMES = ("core", "edge", "orchestration", "cli")


# --- reading the package ------------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str  # dotted, relative to the package: "" (the package), "markup", "activitypub.site"
    path: Path
    tree: ast.Module
    is_package: bool

    @property
    def dotted(self) -> str:
        return f"{PACKAGE}.{self.name}" if self.name else PACKAGE

    def where(self, line: int) -> str:
        try:
            shown = self.path.relative_to(REPO)
        except ValueError:
            shown = self.path
        return f"{shown}:{line}"


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted name; for `from m import n`, "m.n" when n is (or may be) a module
    line: int
    internal: bool  # inside the fedipress package


def load_modules(root: Path) -> list[Module]:
    """Every .py file under `root` (a package directory named like PACKAGE) as a parsed Module."""
    modules = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules.append(Module(".".join(parts), path, tree, is_package))
    return modules


def imports_of(module: Module, known: frozenset[str]) -> Iterator[Import]:
    """All imports anywhere in the module (lazy ones inside functions included), resolved."""
    package_parts = [PACKAGE, *module.name.split(".")] if module.name else [PACKAGE]
    if not module.is_package:
        package_parts = package_parts[:-1]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _make_import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package_parts[: len(package_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if _is_internal(base) and _relative(candidate) not in known:
                    # `from .model import Post`: Post is a name in fedipress.model
                    yield _make_import(base, node.lineno)
                else:
                    yield _make_import(candidate, node.lineno)


def _is_internal(dotted: str) -> bool:
    return dotted == PACKAGE or dotted.startswith(PACKAGE + ".")


def _relative(dotted: str) -> str:
    return dotted[len(PACKAGE) + 1 :] if dotted != PACKAGE else ""


def _make_import(target: str, line: int) -> Import:
    return Import(target, line, _is_internal(target))


def _matches(name: str, prefix: str) -> bool:
    if prefix.endswith("*"):
        return name.startswith(prefix[:-1])
    return name == prefix or name.startswith(prefix + ".")


def is_pure(module: Module) -> bool:
    top = module.name.split(".")[0]
    return module.name in PURE_MODULES or top in PURE_PACKAGES


def dotted_name(node: ast.expr) -> str | None:
    """`a.b.c` for Name/Attribute chains (calls in the chain are skipped: `x().y` -> None)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _ends_with(dotted: str, suffix: str) -> bool:
    return dotted == suffix or dotted.endswith("." + suffix)


# --- the checkers -------------------------------------------------------------------------------

Checker = Callable[[list[Module]], list[str]]


def check_pure_imports_no_io_module(modules: list[Module]) -> list[str]:
    known = frozenset(m.name for m in modules)
    problems = []
    for module in filter(is_pure, modules):
        for imp in imports_of(module, known):
            if not imp.internal:
                continue
            target = _relative(imp.target)
            for io_module in IO_MODULES:
                if _matches(target, io_module):
                    problems.append(
                        f"{module.where(imp.line)}: pure module {module.dotted} imports the I/O"
                        f" module {imp.target}; pass the data in as an argument instead"
                    )
    return problems


def check_pure_imports_no_io_library(modules: list[Module]) -> list[str]:
    known = frozenset(m.name for m in modules)
    problems = []
    for module in filter(is_pure, modules):
        for imp in imports_of(module, known):
            if imp.internal:
                continue
            reason = _io_library(imp.target)
            if reason:
                problems.append(
                    f"{module.where(imp.line)}: pure module {module.dotted} imports {imp.target}"
                    f" ({reason}); keep I/O at the edges and pass values in"
                )
    return problems


def _io_library(target: str) -> str | None:
    if target == "pathlib" or (
        target.startswith("pathlib.") and target.split(".")[1] not in PURE_PATHLIB_NAMES
    ):
        return "a filesystem path; only PurePath/PurePosixPath are pure"
    for library in IO_LIBRARIES:
        if _matches(target, library):
            return "files, sockets, processes, clock, randomness or global state"
    return None


def check_pure_no_io_calls(modules: list[Module]) -> list[str]:
    """open(), datetime.now(), time.time(), os.environ, global statements... in pure modules."""
    problems = []
    for module in filter(is_pure, modules):
        for node in ast.walk(module.tree):
            if isinstance(node, ast.expr) and (found := _io_use(node)):
                problems.append(
                    f"{module.where(node.lineno)}: pure module {module.dotted} uses {found};"
                    " take it as a parameter (time, text, environment values) instead"
                )
            if isinstance(node, ast.Global):
                problems.append(
                    f"{module.where(node.lineno)}: pure module {module.dotted} assigns the"
                    f" global(s) {', '.join(node.names)}; pure modules keep no state"
                )
    return problems


def _io_use(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        # Attribute access, called or not: `clock=datetime.now` smuggles the clock in as well.
        name = dotted_name(node)
        if name:
            for suffix in CLOCK_ENV_ATTRIBUTES:
                if _ends_with(name, suffix):
                    return name
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in IO_BUILTINS:
            return f"{node.func.id}()"
        if isinstance(node.func, ast.Attribute) and node.func.attr in IO_METHODS:
            return f".{node.func.attr}()"
    return None


def check_activitypub_self_contained(modules: list[Module]) -> list[str]:
    known = frozenset(m.name for m in modules)
    problems = []
    for module in modules:
        if module.name.split(".")[0] != "activitypub":
            continue
        for imp in imports_of(module, known):
            target = _relative(imp.target) if imp.internal else None
            if target is None or _matches(target, "activitypub"):
                continue
            if not any(target == allowed or _matches(target, allowed)
                       for allowed in ACTIVITYPUB_MAY_IMPORT):
                problems.append(
                    f"{module.where(imp.line)}: {module.dotted} imports {imp.target}; activitypub/"
                    " may use only model, config, errors and itself (see activitypub/README.md)"
                )
    return problems


def check_nothing_imports_cli(modules: list[Module]) -> list[str]:
    known = frozenset(m.name for m in modules)
    problems = []
    for module in modules:
        if _matches(module.name, "cli") or module.name == "__main__":
            continue
        for imp in imports_of(module, known):
            if imp.internal and _matches(_relative(imp.target), "cli"):
                problems.append(
                    f"{module.where(imp.line)}: {module.dotted} imports {imp.target}; the CLI is"
                    " the top of the import graph: move what you need into a library module"
                )
    return problems


def layer_of(name: str) -> int | None:
    """The layer of a module; submodules of a listed package share its layer, except in the
    GROUPS, whose modules each have their own."""
    if name in LAYERS:
        return LAYERS[name]
    parts = name.split(".") if name else [""]
    for end in range(len(parts) - 1, 0, -1):
        key = ".".join(parts[:end])
        if key in LAYERS and key not in GROUPS:
            return LAYERS[key]
    return None


def check_every_module_has_a_layer(modules: list[Module]) -> list[str]:
    return [
        f"{module.where(1)}: {module.dotted} has no layer; add it to LAYERS in"
        " tests/test_architecture.py (core / edge / orchestration / cli)"
        for module in modules
        if layer_of(module.name) is None
    ]


def check_imports_flow_downward(modules: list[Module]) -> list[str]:
    known = frozenset(m.name for m in modules)
    problems = []
    for module in modules:
        own = layer_of(module.name)
        if own is None:
            continue  # reported by check_every_module_has_a_layer
        for imp in imports_of(module, known):
            if not imp.internal:
                continue
            theirs = layer_of(_relative(imp.target))
            if theirs is not None and theirs > own:
                problems.append(
                    f"{module.where(imp.line)}: {module.dotted} ({LAYER_NAMES[own]}) imports"
                    f" {imp.target} ({LAYER_NAMES[theirs]}); imports flow cli -> orchestration"
                    " -> edges -> core, never upward"
                )
    return problems


def check_no_import_cycles(modules: list[Module]) -> list[str]:
    """Modules that import each other, directly or round a longer circle, lazy imports and
    TYPE_CHECKING ones included: one problem per circle, at the import that starts it."""
    known = frozenset(m.name for m in modules)
    by_name = {m.name: m for m in modules}
    edges: dict[str, dict[str, int]] = {m.name: {} for m in modules}
    for module in modules:
        for imp in imports_of(module, known):
            if not imp.internal:
                continue
            target = _known_module(_relative(imp.target), known)
            if target is not None and target != module.name:
                edges[module.name].setdefault(target, imp.line)
    problems = []
    for component in _strongly_connected(edges):
        if len(component) < 2:
            continue
        start = min(component)
        path = _path_back(start, component, edges)
        first = by_name[start]
        shown = " -> ".join(f"{PACKAGE}.{n}" if n else PACKAGE for n in [*path, start])
        problems.append(
            f"{first.where(edges[start][path[1]])}: import cycle {shown}; move what they share"
            " into a module both can import, below them"
        )
    return problems


def _known_module(name: str, known: frozenset[str]) -> str | None:
    """The module an import target names: itself, or its nearest known parent package."""
    parts = name.split(".") if name else [""]
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return "" if "" in known else None


def _strongly_connected(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the package is deep enough to make recursion a worry)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def _path_back(start: str, component: list[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """A shortest path start -> ... -> (an importer of start) inside the component."""
    members = set(component)
    previous: dict[str, str] = {}
    queue = [start]
    for node in queue:
        for child in sorted(edges[node]):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return path[::-1]
            if child in members and child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is in a cycle but no path leads back to it")


def check_no_import_time_state(modules: list[Module]) -> list[str]:
    """Code that runs at import (module body, class bodies, decorators, default values) must not
    read configuration, environment, clock or files, nor open connections."""
    problems = []
    for module in modules:
        for node in _import_time_nodes(module.tree):
            if isinstance(node, ast.expr) and (found := _import_time_use(node)):
                problems.append(
                    f"{module.where(node.lineno)}: {module.dotted} runs {found} at import time;"
                    " load it in main() or the function that needs it and pass it down"
                )
    return problems


def _import_time_use(node: ast.AST) -> str | None:
    # Only reads count here: `clock=time.monotonic` or `environ=os.environ` as a default binds a
    # function or the live mapping, read later by the call; `time.monotonic()` reads it now.
    if isinstance(node, ast.Subscript):
        name = dotted_name(node.value)
        if name and _ends_with(name, "os.environ"):
            return f"{name}[...]"
    if isinstance(node, ast.Call):
        name = dotted_name(node.func)
        if name:
            for suffix in (*CLOCK_ENV_ATTRIBUTES, *IMPORT_TIME_CALLS):
                if _ends_with(name, suffix):
                    return f"{name}()"
            if ".os.environ." in f".{name}":  # os.environ.get(...), os.environ.copy()
                return f"{name}()"
            if name in IO_BUILTINS:
                return f"{name}()"
        if isinstance(node.func, ast.Attribute) and node.func.attr in IO_METHODS:
            return f".{node.func.attr}()"
    return None


def _import_time_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Nodes evaluated when the module is imported; function and lambda bodies are not."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            evaluated: list[ast.expr] = [
                *child.decorator_list, *child.args.defaults,
                *(d for d in child.args.kw_defaults if d is not None),
            ]
            for expr in evaluated:
                yield from _walk_evaluated(expr)
        elif isinstance(child, ast.Lambda):
            for expr in [*child.args.defaults, *(d for d in child.args.kw_defaults if d)]:
                yield from _walk_evaluated(expr)
        elif isinstance(child, ast.If) and _is_main_guard(child.test):
            yield from _import_time_nodes(ast.Module(body=child.orelse, type_ignores=[]))
        else:
            yield child
            yield from _import_time_nodes(child)


def _walk_evaluated(expr: ast.expr) -> Iterator[ast.AST]:
    yield expr
    yield from _import_time_nodes(expr)


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def check_module_size(modules: list[Module]) -> list[str]:
    """No module past MAX_MODULE_LINES: a longer one holds more than one concept."""
    problems = []
    for module in modules:
        lines = len(module.path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(
                f"{module.where(1)}: {module.dotted} has {lines:,} lines, over"
                f" {MAX_MODULE_LINES}; split it by concept (as federation/publish*.py are)"
            )
    return problems


CHECKERS: dict[str, Checker] = {
    "pure modules import no I/O module": check_pure_imports_no_io_module,
    "pure modules import no I/O library": check_pure_imports_no_io_library,
    "pure modules call no open/clock/env": check_pure_no_io_calls,
    "activitypub/ imports only model, config, errors": check_activitypub_self_contained,
    "nothing imports cli": check_nothing_imports_cli,
    "every module has a layer": check_every_module_has_a_layer,
    "imports flow downward": check_imports_flow_downward,
    "no import cycles": check_no_import_cycles,
    "no import-time state": check_no_import_time_state,
    "no module past MAX_MODULE_LINES": check_module_size,
}


# --- the tests on the real package --------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> list[Module]:
    modules = load_modules(PACKAGE_ROOT)
    # Guard against checking nothing (a moved src/ would make every rule trivially true).
    names = {m.name for m in modules}
    assert {"", "cli", "model", "generator.markup", "generator.build", "activitypub.documents",
            "store"} <= names
    return modules


def _report(problems: Iterable[str]) -> str:
    return "\n".join(["", *problems])


def test_pure_modules_import_no_io_module(package: list[Module]) -> None:
    problems = check_pure_imports_no_io_module(package)
    assert not problems, _report(problems)


def test_pure_modules_import_no_io_library(package: list[Module]) -> None:
    problems = check_pure_imports_no_io_library(package)
    assert not problems, _report(problems)


def test_pure_modules_use_no_files_clock_or_environment(package: list[Module]) -> None:
    problems = check_pure_no_io_calls(package)
    assert not problems, _report(problems)


def test_activitypub_imports_only_model_config_errors(package: list[Module]) -> None:
    problems = check_activitypub_self_contained(package)
    assert not problems, _report(problems)


def test_nothing_imports_cli(package: list[Module]) -> None:
    problems = check_nothing_imports_cli(package)
    assert not problems, _report(problems)


def test_every_module_has_a_layer(package: list[Module]) -> None:
    problems = check_every_module_has_a_layer(package)
    assert not problems, _report(problems)


def test_imports_flow_downward(package: list[Module]) -> None:
    problems = check_imports_flow_downward(package)
    assert not problems, _report(problems)


def test_no_import_cycles(package: list[Module]) -> None:
    problems = check_no_import_cycles(package)
    assert not problems, _report(problems)


def test_no_import_time_state(package: list[Module]) -> None:
    problems = check_no_import_time_state(package)
    assert not problems, _report(problems)


def test_no_module_past_the_size_limit(package: list[Module]) -> None:
    problems = check_module_size(package)
    assert not problems, _report(problems)


def pure_core_in_architecture_doc() -> tuple[set[str], set[str]]:
    """The modules (by file name: the layout may move them) and packages that the section
    "The pure core" of ARCHITECTURE.md names."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## The pure core", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`([^`\n]+)`", section))
    return ({n.rsplit("/", 1)[-1] for n in names
             if n.endswith(".py") and not n.startswith("tests/")},
            {n.rstrip("/") for n in names if n.endswith("/")})


def test_the_pure_modules_named_in_architecture_exist(package: list[Module]) -> None:
    # A renamed pure module would silently leave the rules; fail instead. ARCHITECTURE.md
    # names the same pure core as these rules check, no more and no less.
    names = {m.name for m in package}
    assert PURE_MODULES <= names, PURE_MODULES - names
    assert sum(is_pure(m) for m in package) >= len(PURE_MODULES) + 5
    files, packages = pure_core_in_architecture_doc()
    assert files == {name.rsplit(".", 1)[-1] + ".py" for name in PURE_MODULES}
    assert packages == set(PURE_PACKAGES)


# --- each checker fails on a deliberately bad package ----------------------------------------

GOOD_MODULES = {
    "__init__.py": '__version__ = "0"\n',
    "errors.py": "class FedipressError(Exception):\n    pass\n",
    "model.py": "from dataclasses import dataclass\n",
    "generator/__init__.py": "",
    "generator/markup.py": "import re\nfrom pathlib import PurePosixPath\n"
                           "from ..model import dataclass\n",
    "activitypub/__init__.py": "",
    "activitypub/documents.py": "from .. import __version__\nfrom ..model import dataclass\n",
    "store/__init__.py": "import sqlite3\n",
    "cli.py": "from .store import sqlite3\n",
}

# One bad package per rule: (checker, files to add, the file:line and words the report must name).
BAD_CASES: dict[str, tuple[Checker, dict[str, str], str, str]] = {
    "module too long": (
        check_module_size,
        {"generator/render.py": "x = 1\n" * (MAX_MODULE_LINES + 1)},
        "generator/render.py:1", f"has {MAX_MODULE_LINES + 1} lines",
    ),
    "pure imports store": (
        check_pure_imports_no_io_module,
        {"generator/markup.py": "import re\n\n\ndef f():\n    from ..store import thing\n"},
        "generator/markup.py:5", "imports the I/O module fedipress.store",
    ),
    "pure imports inbox_server": (
        check_pure_imports_no_io_module,
        {"activitypub/documents.py": "import fedipress.federation.inbox_server\n"},
        "activitypub/documents.py:1", "fedipress.federation.inbox_server",
    ),
    "pure imports httpx": (
        check_pure_imports_no_io_library,
        {"activitypub/sign.py": '"""doc"""\nimport httpx\n'},
        "activitypub/sign.py:2", "imports httpx",
    ),
    "pure imports urllib.request": (
        check_pure_imports_no_io_library,
        {"model.py": "from urllib import request\n"},
        "model.py:1", "urllib.request",
    ),
    "pure imports pathlib.Path": (
        check_pure_imports_no_io_library,
        {"generator/markup.py": "from pathlib import Path, PurePath\n"},
        "generator/markup.py:1", "pathlib.Path",
    ),
    "pure opens a file": (
        check_pure_no_io_calls,
        {"generator/markup.py": "def f(p):\n    return open(p).read()\n"},
        "generator/markup.py:2", "open()",
    ),
    "pure reads the clock": (
        check_pure_no_io_calls,
        {"activitypub/documents.py": "import datetime as dt\n\n\ndef f():\n"
                                     "    return dt.datetime.now(dt.UTC)\n"},
        "activitypub/documents.py:5", "datetime.now",
    ),
    "pure takes the clock as a default": (
        check_pure_no_io_calls,
        {"model.py": "from datetime import datetime\n\n\ndef f(clock=datetime.utcnow):\n"
                     "    return clock()\n"},
        "model.py:4", "datetime.utcnow",
    ),
    "pure reads the environment": (
        check_pure_no_io_calls,
        {"model.py": "import os\n\n\ndef f():\n    return os.environ['HOME']\n"},
        "model.py:5", "os.environ",
    ),
    "pure keeps a global": (
        check_pure_no_io_calls,
        {"generator/markup.py": "_N = 0\n\n\ndef f():\n    global _N\n    _N += 1\n"},
        "generator/markup.py:5", "global(s) _N",
    ),
    "activitypub imports markup": (
        check_activitypub_self_contained,
        {"activitypub/documents.py": "from ..generator.markup import re\n"},
        "activitypub/documents.py:1", "imports fedipress.generator.markup",
    ),
    "a library imports cli": (
        check_nothing_imports_cli,
        {"store/__init__.py": "def f():\n    from ..cli import main\n"},
        "store/__init__.py:2", "imports fedipress.cli",
    ),
    "a module has no layer": (
        check_every_module_has_a_layer,
        {"gizmo.py": "x = 1\n"},
        "gizmo.py:1", "fedipress.gizmo has no layer",
    ),
    "an edge imports orchestration": (
        check_imports_flow_downward,
        {"store/__init__.py": "import sqlite3\n\n\ndef f():\n"
                              "    from ..federation import publish\n",
         "federation/__init__.py": "", "federation/publish.py": ""},
        "store/__init__.py:5", "(edge) imports fedipress.federation.publish (orchestration)",
    ),
    "the core imports an edge": (
        check_imports_flow_downward,
        {"model.py": "from .generator.render import Output\n", "generator/render.py": ""},
        "model.py:1", "(core) imports fedipress.generator.render (edge)",
    ),
    "a module in a group has no layer": (
        check_every_module_has_a_layer,
        {"generator/gizmo.py": "x = 1\n"},
        "generator/gizmo.py:1", "fedipress.generator.gizmo has no layer",
    ),
    "two modules import each other": (
        check_no_import_cycles,
        {"errors.py": "from .model import dataclass\n",
         "model.py": "from dataclasses import dataclass\n\nfrom .errors import FedipressError\n"},
        "errors.py:1", "import cycle fedipress.errors -> fedipress.model -> fedipress.errors",
    ),
    "a circle of three closed by a lazy import": (
        check_no_import_cycles,
        {"generator/markup.py": "from . import render\n",
         "generator/render.py": "from .feeds import x\n",
         "generator/feeds.py": "def f():\n    from .markup import re\n"},
        "generator/feeds.py:2", "import cycle fedipress.generator.feeds"
        " -> fedipress.generator.markup -> fedipress.generator.render -> fedipress.generator.feeds",
    ),
    "config read at import": (
        check_no_import_time_state,
        {"store/__init__.py": "from ..config import load_config\n\nCONFIG = load_config('x')\n"},
        "store/__init__.py:3", "load_config()",
    ),
    "environment read at import": (
        check_no_import_time_state,
        {"cli.py": "import os\n\nclass C:\n    token = os.environ.get('T')\n"},
        "cli.py:4", "os.environ.get()",
    ),
    "environment subscripted at import": (
        check_no_import_time_state,
        {"cli.py": "import os\n\nHOME = os.environ['HOME']\n"},
        "cli.py:3", "os.environ[...]",
    ),
    "clock called at import": (
        check_no_import_time_state,
        {"store/__init__.py": "from datetime import datetime\n\nSTARTED = datetime.now()\n"},
        "store/__init__.py:3", "datetime.now()",
    ),
    "clock read in a default value": (
        check_no_import_time_state,
        {"store/__init__.py": "import time\n\n\ndef f(started=time.time()):\n    return started\n"},
        "store/__init__.py:4", "time.time",
    ),
}


def _write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "src" / PACKAGE
    for name, text in {**GOOD_MODULES, **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize("checker", list(CHECKERS.values()), ids=list(CHECKERS))
def test_checkers_pass_a_good_package(tmp_path: Path, checker: Checker) -> None:
    # The baseline for the bad cases below: the same package without the bad edit is clean, so
    # each failure there comes from the one bad line.
    assert checker(load_modules(_write_package(tmp_path, {}))) == []


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_checkers_fail_a_bad_package(tmp_path: Path, case: str) -> None:
    checker, files, where, words = BAD_CASES[case]
    problems = checker(load_modules(_write_package(tmp_path, files)))
    assert len(problems) == 1, _report(problems)
    assert f"src/{PACKAGE}/{where}: " in problems[0], problems[0]
    assert words in problems[0], problems[0]


def test_every_checker_has_a_failing_case() -> None:
    covered = {checker for checker, *_ in BAD_CASES.values()}
    assert covered == set(CHECKERS.values())


def test_what_is_not_import_time(tmp_path: Path) -> None:
    # The main guard, function bodies and references bound as defaults run later, not at import.
    package = _write_package(tmp_path, {
        "cli.py": "import sys\n\nif __name__ == '__main__':\n    print(sys.argv)\n",
        "store/__init__.py": "import os, time\n\n\ndef f(environ=os.environ, clock=time.time):\n"
                             "    return open(environ['F']).read(), time.time()\n",
    })
    assert check_no_import_time_state(load_modules(package)) == []


# --- scripts/check (ruff + mypy) fails when they find something -------------------------------


def test_check_script_fails_on_problems(tmp_path: Path) -> None:
    # The real script and configuration on a copy of the layout, clean and then with one ruff and
    # one mypy problem, so that a check that silently checks nothing (wrong paths, `|| true`)
    # fails here.
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "check", tmp_path / "scripts" / "check")
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for folder in ("tests", "benchmarks", "src/pkg"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "pkg" / "good.py").write_text("def f(x: int) -> int:\n    return x\n")
    env = {**os.environ, "MYPY_CACHE_DIR": str(tmp_path / ".mypy_cache"), "NO_COLOR": "1"}

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tmp_path / "scripts" / "check")], capture_output=True,
                              text=True, env=env, timeout=120, check=False)

    clean = check()
    assert clean.returncode == 0, clean.stdout + clean.stderr

    (tmp_path / "tests" / "test_lint.py").write_text("import os\n")  # ruff F401
    (tmp_path / "src" / "pkg" / "untyped.py").write_text("def f(x):\n    return x\n")  # mypy
    failed = check()
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "tests/test_lint.py:1:8" in failed.stdout, failed.stdout
    assert "src/pkg/untyped.py:1: error: Function is missing" in failed.stdout, failed.stdout
    assert "scripts/check: failed" in failed.stderr


# --- argparse stays in the command line ------------------------------------------------------


def check_argparse_only_in_cli(modules: list[Module]) -> list[str]:
    """Library functions take typed parameters, so that the inbox service, tests and scripts
    can call what the command line calls: outside fedipress/cli nothing imports argparse or
    mentions its Namespace (in code, a quoted annotation or a comment)."""
    known = frozenset(m.name for m in modules)
    problems = []
    for module in modules:
        if module.name == "cli" or module.name.startswith("cli."):
            continue
        lines = {imp.line for imp in imports_of(module, known)
                 if _matches(imp.target, "argparse")}
        text = module.path.read_text(encoding="utf-8").splitlines()
        lines.update(n for n, line in enumerate(text, 1) if re.search(r"\bNamespace\b", line))
        problems += [
            f"{module.where(line)}: {module.dotted} uses argparse; take typed parameters (an"
            " options dataclass) and let fedipress/cli parse the command line"
            for line in sorted(lines)
        ]
    return problems


def test_argparse_only_in_cli(package: list[Module], tmp_path: Path) -> None:
    problems = check_argparse_only_in_cli(package)
    assert not problems, _report(problems)
    # The check is shown to fail: on an import (a lazy one too) and on a Namespace mentioned.
    bad = load_modules(_write_package(tmp_path, {
        "cli/site.py": "import argparse\n\nargs: argparse.Namespace\n",  # the command line may
        "store/__init__.py": "def f():\n    from argparse import ArgumentParser\n",
        "model.py": "def f(args: 'argparse.Namespace') -> None:\n    pass\n",
    }))
    found = [p.split(": ")[0] for p in check_argparse_only_in_cli(bad)]
    assert found == [f"{tmp_path}/src/{PACKAGE}/model.py:1",
                     f"{tmp_path}/src/{PACKAGE}/store/__init__.py:2"], found


# --- tests/ mirrors the package ------------------------------------------------------------------

TESTS_ROOT = REPO / "tests"
# Folders of tests/ that hold data or helpers rather than the tests of one subpackage.
TEST_DATA_FOLDERS = frozenset({"fixtures", "golden", "interop", "support"})


def _test_tree_files(tests_root: Path) -> Iterator[Path]:
    for path in sorted(tests_root.rglob("*.py")):
        if not set(path.relative_to(tests_root).parts[:-1]) & (TEST_DATA_FOLDERS - {"support"}):
            yield path


def check_no_test_module_imports_another(tests_root: Path) -> list[str]:
    """A test module is run, never imported: a helper two test modules share lives in
    tests/support/ and a shared fixture in a conftest.py, so that moving or deleting one test
    module cannot break another, and no test runs twice under two names."""
    problems = []
    for path in _test_tree_files(tests_root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            bad = sorted({t for t in targets
                          if any(p.startswith("test_") or p == "conftest" for p in t.split("."))})
            problems += [
                f"tests/{path.relative_to(tests_root).as_posix()}:{node.lineno}: imports the test"
                f" module {target}; move what is shared into tests/support/ (fixtures into a"
                " conftest.py)"
                for target in bad[:1]
            ]
    return problems


def check_test_folders_mirror_the_package(tests_root: Path, package_root: Path) -> list[str]:
    """Every folder of tests (tests/generator/, ...) is named after the subpackage it tests, so
    that a test is found where its code is; data and helper folders are the only others."""
    problems = []
    for folder in sorted(p for p in tests_root.rglob("*") if p.is_dir()):
        parts = folder.relative_to(tests_root).parts
        if parts[0] in TEST_DATA_FOLDERS or any(p.startswith((".", "__")) for p in parts):
            continue
        if not (package_root.joinpath(*parts) / "__init__.py").is_file():
            problems.append(
                f"tests/{'/'.join(parts)}/: no subpackage src/{PACKAGE}/{'/'.join(parts)}; put"
                f" its tests in the folder of the subpackage they test (or at tests/ for checks"
                " of the whole package)")
    return problems


def test_no_test_module_imports_another(tmp_path: Path) -> None:
    problems = check_no_test_module_imports_another(TESTS_ROOT)
    assert not problems, _report(problems)
    # The check is shown to fail, on each way of importing a test module.
    (tmp_path / "support").mkdir()
    (tmp_path / "support" / "ok.py").write_text("from support.inbox import Env\n")
    (tmp_path / "test_a.py").write_text("from test_b import helper\n")
    (tmp_path / "support" / "bad.py").write_text("import os\nimport tests.test_b as b\n")
    (tmp_path / "test_c.py").write_text("from tests import test_b\nfrom conftest import f\n")
    assert check_no_test_module_imports_another(tmp_path) == [
        "tests/support/bad.py:2: imports the test module tests.test_b; move what is shared into"
        " tests/support/ (fixtures into a conftest.py)",
        "tests/test_a.py:1: imports the test module test_b; move what is shared into"
        " tests/support/ (fixtures into a conftest.py)",
        "tests/test_c.py:1: imports the test module tests.test_b; move what is shared into"
        " tests/support/ (fixtures into a conftest.py)",
        "tests/test_c.py:2: imports the test module conftest; move what is shared into"
        " tests/support/ (fixtures into a conftest.py)",
    ]


def test_test_folders_mirror_the_package(tmp_path: Path) -> None:
    problems = check_test_folders_mirror_the_package(TESTS_ROOT, PACKAGE_ROOT)
    assert not problems, _report(problems)
    for folder in ("generator", "federation", "activitypub", "store", "config", "cli"):
        assert any((TESTS_ROOT / folder).glob("test_*.py")), f"tests/{folder}/ has no tests"
    # The check is shown to fail on a folder named after no subpackage, at any depth.
    package = _write_package(tmp_path, {})
    for folder in ("store", "store/nothing", "gizmo", "fixtures/site", "support", "__pycache__"):
        (tmp_path / "tests" / folder).mkdir(parents=True)
    assert check_test_folders_mirror_the_package(tmp_path / "tests", package) == [
        f"tests/gizmo/: no subpackage src/{PACKAGE}/gizmo; put its tests in the folder of the"
        " subpackage they test (or at tests/ for checks of the whole package)",
        f"tests/store/nothing/: no subpackage src/{PACKAGE}/store/nothing; put its tests in the"
        " folder of the subpackage they test (or at tests/ for checks of the whole package)",
    ]
