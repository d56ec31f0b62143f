"""The federation manifest: what `publish` diffs against, in <state_dir>.

`manifest.json` holds the actor document and the names of the object files beside it in
`federation/`; together they hold every federated post's object document (with its hash and
published date). Objects are spread over a fixed number of files by a hash of their id, so an
edit rewrites one file of ~1/64 of the objects instead of the whole manifest (~170 MB at
10,000 posts); unchanged files are kept as they are. Object files are named by their content
and `manifest.json` is replaced last, so a reader always sees one build's complete set.
read_federation_manifest() returns the whole {"actor", "objects"} mapping. Nothing here ever
goes into public/.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..generator.output import write_atomic
from ..generator.outputsync import _FP, _SHA, _SIZE, PARALLEL_RENDER_THRESHOLD, _Entry, _parallel_ok
from ..model import Post, Site

__all__ = [
    "MANIFEST_NAME",
    "PREVIEW_FLAGS",
    "FederationManifest",
    "read_build_flags",
    "read_federation_manifest",
]

MANIFEST_NAME = "manifest.json"
OBJECTS_DIR = "federation"
# Objects per file is posts / 64: ~160 (~2.7 MB) at 10,000 posts, what an edit rewrites.
SHARDS = 64
# manifest.json's "format": 3 records the build's flags under "build"; 2 has none; a manifest
# without "format" holds its objects inline (and no flags either).
_FORMAT = 3
# The build flags that make a preview (drafts, future-dated posts): publish refuses such a build.
PREVIEW_FLAGS = ("drafts", "future")
_OBJECTS_FORMAT = 4
_SHARD_NAME = re.compile(r"objects-[0-9]{2}-[0-9a-f]{16}\.json")

# object.json fingerprint -> (object id, object file name, start, end of its entry there)
_ObjectIndex = dict[str, tuple[str, str, int, int]]
# object file name -> (size, mtime_ns) when the index was written
_FileSigs = dict[str, tuple[int, int]]


def shard_of(object_id: str) -> int:
    """Which object file holds `object_id` (stable across builds, versions and machines)."""
    return zlib.crc32(object_id.encode("utf-8")) % SHARDS


def read_build_flags(state_dir: Path) -> dict[str, bool] | None:
    """The flags the last build recorded ({"drafts": ..., "future": ...}), read from
    manifest.json alone (not its object files): None when that build was made by a fedipress
    that did not record them (format 2 or older). Raises FileNotFoundError when there is no
    manifest, OSError or ValueError when it is damaged."""
    data = json.loads((state_dir / MANIFEST_NAME).read_bytes())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return build_flags_of(data)


def build_flags_of(data: Mapping[str, Any]) -> dict[str, bool] | None:
    """The recorded build flags of a manifest's top level (see read_build_flags)."""
    flags = data.get("build")
    if flags is None:
        return None
    if not isinstance(flags, Mapping) or not all(
            isinstance(flags.get(name), bool) for name in PREVIEW_FLAGS):
        raise ValueError('"build" does not record the build\'s flags')
    return {name: bool(flags[name]) for name in PREVIEW_FLAGS}


def read_federation_manifest(state_dir: Path) -> dict[str, Any]:
    """{"actor": ..., "objects": {id: {"hash", "published", "doc"}}} as the last build wrote
    it, with "build": the build's flags (see read_build_flags) when it recorded them. Raises
    FileNotFoundError when there is none, OSError or ValueError when it is damaged.
    """
    path = state_dir / MANIFEST_NAME
    for attempt in range(3):
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if "object_files" not in data:
            return data  # an older build's manifest: the objects inline
        files = data.pop("object_files")
        data.pop("format", None)
        if not isinstance(files, list) or not all(
                isinstance(name, str) and _SHARD_NAME.fullmatch(name) for name in files):
            raise ValueError('"object_files" is not a list of object file names')
        objects: dict[str, Any] = {}
        try:
            for name in files:
                part = json.loads((state_dir / OBJECTS_DIR / name).read_bytes())
                if not isinstance(part, dict):
                    raise ValueError(f"{OBJECTS_DIR}/{name}: not a JSON object")
                objects.update(part)
        except FileNotFoundError:
            if attempt < 2:
                continue  # a build replaced the manifest between the two reads: read it again
            raise
        data["objects"] = objects
        return data
    raise AssertionError("unreachable")


class FederationManifest:
    """Writes the federation manifest, keeping the object index in memory between builds."""

    def __init__(self) -> None:
        # None until loaded from cache/federation-objects.marshal.
        self._objects: _ObjectIndex | None = None
        self._file_sigs: _FileSigs = {}
        # The inputs of the latest write (forked entry workers read them from this object).
        self._state_dir = Path()
        self._key = ""
        self._object_fps: Mapping[str, str] = {}
        self._mentions: Mapping[str, str] = {}
        self._written: Mapping[str, _Entry] | None = None
        self._output_dir = Path()
        self._workers: int | None = None
        self._rendered: Mapping[str, object] = {}
        self._flags: dict[str, bool] = dict.fromkeys(PREVIEW_FLAGS, False)

    def forget(self, state_dir: Path) -> None:
        """Trust no cache for the next write (`build --clean`)."""
        self._objects, self._file_sigs = {}, {}
        (state_dir / "cache" / "federation-manifest.key").unlink(missing_ok=True)

    def write(
        self,
        site: Site,
        public_key: bytes,
        *,
        state_dir: Path,
        key: str,
        object_fps: Mapping[str, str],
        mentions: Mapping[str, str],
        written: Mapping[str, _Entry] | None,
        output_dir: Path,
        workers: int | None,
        rendered: Mapping[str, object] | None = None,
        flags: Mapping[str, bool] | None = None,
    ) -> None:
        """Write <state_dir>/manifest.json and its object files unless `key` (a hash of the
        fingerprints of the actor and object documents they are made of) says the files on
        disk are current.

        `object_fps` maps a post's object.json output path to its fingerprint, `written` is
        the build manifest's entries for what this build wrote into `output_dir` (an
        object.json is read back instead of built again). `rendered` maps the object.json
        paths this build rendered to their entries (`entry_from_object_json`, computed where
        they were rendered): those need neither. `flags` are the build's --drafts and
        --future, recorded so that publish can refuse a preview build.
        """
        self._rendered = rendered or {}
        self._flags = {name: bool((flags or {}).get(name)) for name in PREVIEW_FLAGS}
        # The same documents built with other flags are another manifest (publish reads them).
        marks = "".join(name[0] for name in PREVIEW_FLAGS if self._flags[name])
        self._state_dir, self._key = state_dir, f"{key}:{_FORMAT}:{marks}"
        self._object_fps, self._mentions = object_fps, mentions
        self._written, self._output_dir, self._workers = written, output_dir, workers
        self._write(site, public_key)

    def _write(self, site: Site, public_key: bytes) -> None:
        try:
            from ..activitypub import documents as d
        except ImportError:
            return
        target = self._state_dir / MANIFEST_NAME
        key_file = self._state_dir / "cache" / "federation-manifest.key"
        try:
            if target.is_file() and key_file.read_text() == self._key:
                return
        except OSError:
            pass
        index_file = self._state_dir / "cache" / "federation-objects.marshal"
        known, sigs = self._load_object_index(index_file)
        folder = self._state_dir / OBJECTS_DIR
        valid = _current_files(folder, sigs)

        # Each object document depends on exactly what its object.json fingerprint hashes
        # (config, theme, version, the post): an unchanged fingerprint, an unchanged entry.
        shards: list[list[tuple[str, str | None, tuple[str, int, int] | bytes]]] = \
            [[] for _ in range(SHARDS)]
        missing: list[tuple[Post, str | None]] = []
        for post in d.federated_posts(site):
            rel = post.path + "object.json"
            fp = self._object_fps.get(rel)
            hit = known.get(fp) if fp is not None else None
            if hit is not None and hit[1] in valid:
                oid, name, start, end = hit
                shards[shard_of(oid)].append((oid, fp, (name, start, end)))
                continue
            made = self._rendered.get(rel) if fp is not None else None
            if isinstance(made, tuple):  # rendered by this build, for this fingerprint
                oid, body = made
                shards[shard_of(oid)].append((oid, fp, body))
            else:
                missing.append((post, fp))
        for fp, oid, entry in self._manifest_entries(site, missing):
            shards[shard_of(oid)].append((oid, fp, entry))

        names: list[str] = []
        fresh: _ObjectIndex = {}
        fresh_sigs: _FileSigs = {}
        old_bytes: dict[str, bytes] = {}
        counts: dict[str, int] = {}
        for _fp, (_oid, name, _s, _e) in known.items():
            counts[name] = counts.get(name, 0) + 1
        for number, entries in enumerate(shards):
            if not entries:
                continue
            entries.sort(key=lambda e: e[0])
            sources = {e[2][0] for e in entries if isinstance(e[2], tuple)}
            if len(sources) == 1 and all(isinstance(e[2], tuple) for e in entries):
                (name,) = sources
                if counts.get(name) == len(entries) and name.startswith(f"objects-{number:02d}-"):
                    # The same objects as the file already holds, in the same order: keep it.
                    names.append(name)
                    fresh_sigs[name] = sigs[name]
                    for oid, fp, (_n, start, end) in entries:
                        if fp is not None:
                            fresh[fp] = (oid, name, start, end)
                    continue
            pieces: list[bytes] = [b"{\n"]
            pos = 2
            spans: list[tuple[str, str | None, int, int]] = []
            for i, (oid, fp, body) in enumerate(entries):
                head = ((",\n" if i else "") + f"  {_json_key(oid)}: ").encode()
                if isinstance(body, tuple):
                    source, start, end = body
                    if source not in old_bytes:
                        old_bytes[source] = (folder / source).read_bytes()
                    body = old_bytes[source][start:end]
                pieces += [head, body]
                pos += len(head)
                spans.append((oid, fp, pos, pos + len(body)))
                pos += len(body)
            pieces.append(b"\n}\n")
            data = b"".join(pieces)
            name = f"objects-{number:02d}-{hashlib.sha256(data).hexdigest()[:16]}.json"
            st = write_atomic(folder / name, data)
            names.append(name)
            fresh_sigs[name] = (st.st_size, st.st_mtime_ns)
            for oid, fp, start, end in spans:
                if fp is not None:
                    fresh[fp] = (oid, name, start, end)
        old_bytes.clear()

        actor = _nested_json(d.actor_document(site, public_key), 1)
        files = _nested_json(names, 1)
        flags = _nested_json(self._flags, 1)
        manifest = (f'{{\n  "actor": {actor},\n  "build": {flags},\n  "format": {_FORMAT},\n'
                    f'  "object_files": {files}\n}}\n')
        write_atomic(target, manifest.encode("utf-8"))
        _remove_other_files(folder, set(names))
        self._objects, self._file_sigs = fresh, fresh_sigs
        write_atomic(index_file, marshal.dumps(
            (_OBJECTS_FORMAT, __version__, fresh_sigs, fresh)))
        write_atomic(key_file, self._key.encode())

    def _load_object_index(self, index_file: Path) -> tuple[_ObjectIndex, _FileSigs]:
        if self._objects is not None:
            return self._objects, self._file_sigs
        try:
            loaded = marshal.loads(index_file.read_bytes())
            if isinstance(loaded, tuple) and len(loaded) == 4 \
                    and loaded[:2] == (_OBJECTS_FORMAT, __version__) \
                    and isinstance(loaded[2], dict) and isinstance(loaded[3], dict):
                return loaded[3], loaded[2]
        except (OSError, EOFError, ValueError, TypeError):
            pass  # no index: every entry is computed
        return {}, {}

    def _manifest_entry(self, site: Site, post: Post,
                        fp: str | None) -> tuple[str | None, str, bytes]:
        """(fingerprint, object id, the entry's JSON as nested in an object file)."""
        from ..activitypub import documents as d

        doc = self._written_document(post.path + "object.json", fp)
        if doc is None:
            doc = d.object_document(site, post, mentions=self._mentions)
        return (fp, *_entry_of(doc))

    def _manifest_entries(self, site: Site, missing: list[tuple[Post, str | None]],
                          ) -> list[tuple[str | None, str, bytes]]:
        """The entries of `missing`, over forked workers when there are many (a cold build:
        every object.json read back, hashed and re-encoded, ~0.35 ms a post)."""
        workers = self._workers if self._workers is not None else (os.cpu_count() or 1)
        if len(missing) < 1000 or not _parallel_ok(PARALLEL_RENDER_THRESHOLD, workers):
            return [self._manifest_entry(site, post, fp) for post, fp in missing]
        import multiprocessing

        global _ENTRY_JOBS
        _ENTRY_JOBS = (self, site, missing)
        try:
            size = -(-len(missing) // (workers * 4))
            chunks = [range(i, min(i + size, len(missing))) for i in range(0, len(missing), size)]
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                return [e for part in pool.map(_entry_chunk, chunks) for e in part]
        finally:
            _ENTRY_JOBS = None

    def _written_document(self, rel: str, fingerprint: str | None) -> dict[str, Any] | None:
        """The object document this build wrote (or kept) at `rel`, read back from its JSON.

        object.json is serialize(object_document(...)) for exactly this fingerprint, and JSON
        reads back to an equal document, far cheaper than building it again (HTML reduction).
        """
        entry = (self._written or {}).get(rel)
        if fingerprint is None or entry is None or entry[_FP] != fingerprint:
            return None
        try:
            data = (self._output_dir / rel).read_bytes()
            if len(data) != entry[_SIZE] or hashlib.sha256(data).hexdigest() != entry[_SHA]:
                return None  # changed on disk since the write: build the document instead
            doc = json.loads(data)
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None


def entry_from_object_json(rel: str, data: bytes) -> tuple[str, bytes] | None:
    """(object id, manifest entry) of an object.json output's bytes; None for other outputs.

    Meant for the build's after-render hook: a cold build renders object documents in forked
    workers, which then also make their manifest entries instead of this process reading
    every file back afterwards.
    """
    if not rel.endswith("/object.json"):
        return None
    doc = getattr(data, "document", None)  # documents.DocumentBytes: no need to parse
    if doc is None:
        try:
            doc = json.loads(data)
        except ValueError:
            return None
    if not (isinstance(doc, dict) and isinstance(doc.get("id"), str)):
        return None
    return _entry_of(doc, getattr(data, "strings", None))


def _entry_of(doc: dict[str, Any], strings: Any = None) -> tuple[str, bytes]:
    """(object id, the entry's JSON as nested in an object file); `strings`: the JSON
    encodings of the document's long strings, when it was just serialized."""
    from ..activitypub import documents as d

    # = _nested_json({"hash": object_hash(doc), "published": ..., "doc": doc}, 1)
    return doc["id"], d.manifest_entry_json(doc, level=1, strings=strings).encode("utf-8")


# The federation manifest's entries to compute in forked workers (see _manifest_entries).
_ENTRY_JOBS: tuple[FederationManifest, Site, list[tuple[Post, str | None]]] | None = None


def _entry_chunk(indices: range) -> list[tuple[str | None, str, bytes]]:
    assert _ENTRY_JOBS is not None
    writer, site, missing = _ENTRY_JOBS
    return [writer._manifest_entry(site, *missing[i]) for i in indices]


def _current_files(folder: Path, sigs: _FileSigs) -> set[str]:
    """The object files whose size and mtime are still what the index recorded: only their
    byte ranges can be trusted (a file changed by hand is computed again)."""
    valid: set[str] = set()
    for name, sig in sigs.items():
        try:
            st = os.stat(folder / name)
        except OSError:
            continue
        if (st.st_size, st.st_mtime_ns) == tuple(sig):
            valid.add(name)
    return valid


def _remove_other_files(folder: Path, keep: set[str]) -> None:
    """Object files of earlier builds are removed once manifest.json names the new set."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name not in keep and _SHARD_NAME.fullmatch(entry.name):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _nested_json(value: Any, level: int) -> str:
    """`value` as json.dumps(indent=2, sort_keys=True) writes it `level` containers deep.

    Newlines only ever separate structure (strings escape theirs), so indenting every line
    by the nesting depth gives exactly the bytes of the enclosing dump.
    """
    from ..activitypub.documents import indented_json

    # Same bytes as json.dumps(indent=2) with the lines shifted, through the C encoder.
    return indented_json(value, sort_keys=True, level=level)


def _json_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)
