"""The federation manifest: <state_dir>/manifest.json, what `publish` diffs against.

It holds the actor document and every federated post's object document (with its hash and
published date), written as json.dumps(indent=2, sort_keys=True, ensure_ascii=False). A
rebuild splices it: each unchanged object's entry is copied as a byte range from the previous
file (indexed in cache/federation-objects.marshal) and only edited posts' entries are
computed. It never goes into public/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import mmap
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .model import Post, Site
from .output import write_atomic
from .outputsync import _FP, _SHA, _SIZE, PARALLEL_RENDER_THRESHOLD, _Entry, _parallel_ok

__all__ = ["FederationManifest"]

_OBJECTS_FORMAT = 3
_ObjectIndex = dict[str, tuple[str, int, int]]


class FederationManifest:
    """Writes the federation manifest, keeping the object index in memory between builds."""

    def __init__(self) -> None:
        # object.json fingerprint -> (object id, start, end of its entry in manifest.json),
        # valid for the manifest of `_objects_sig` (size, mtime_ns); None until loaded.
        self._objects: _ObjectIndex | None = None
        self._objects_sig: tuple[int, int] = (-1, -1)
        # The inputs of the latest write (forked entry workers read them from this object).
        self._state_dir = Path()
        self._key = ""
        self._object_fps: Mapping[str, str] = {}
        self._mentions: Mapping[str, str] = {}
        self._written: Mapping[str, _Entry] | None = None
        self._output_dir = Path()
        self._workers: int | None = None

    def forget(self, state_dir: Path) -> None:
        """Trust no cache for the next write (`build --clean`)."""
        self._objects = {}
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
    ) -> None:
        """Write <state_dir>/manifest.json unless `key` (a hash of the fingerprints of the
        actor and object documents it is made of) says the file on disk is current.

        `object_fps` maps a post's object.json output path to its fingerprint, `written` is
        the build manifest's entries for what this build wrote into `output_dir` (an
        object.json is read back instead of built again).
        """
        self._state_dir, self._key = state_dir, key
        self._object_fps, self._mentions = object_fps, mentions
        self._written, self._output_dir, self._workers = written, output_dir, workers
        self._write(site, public_key)

    def _write(self, site: Site, public_key: bytes) -> None:
        try:
            from .activitypub.site import federation_manifest
        except ImportError:
            return
        target = self._state_dir / "manifest.json"
        key_file = self._state_dir / "cache" / "federation-manifest.key"
        try:
            if target.is_file() and key_file.read_text() == self._key:
                return
        except OSError:
            pass
        if not self._write_spliced_manifest(site, public_key, target):
            data = federation_manifest(site, public_key, mentions=self._mentions)
            _write_text_atomic(
                target, [json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"])
        write_atomic(key_file, self._key.encode())

    def _load_object_index(self, index_file: Path) -> tuple[tuple[int, int], _ObjectIndex]:
        if self._objects is not None:
            return self._objects_sig, self._objects
        try:
            loaded = marshal.loads(index_file.read_bytes())
            if isinstance(loaded, tuple) and len(loaded) == 4 \
                    and loaded[:2] == (_OBJECTS_FORMAT, __version__) \
                    and isinstance(loaded[2], tuple) and isinstance(loaded[3], dict):
                return loaded[2], loaded[3]
        except (OSError, EOFError, ValueError, TypeError):
            pass  # no index: every entry is computed
        return (-1, -1), {}

    def _write_spliced_manifest(self, site: Site, public_key: bytes, target: Path) -> bool:
        """Write json.dumps(federation_manifest(...), indent=2, sort_keys=True,
        ensure_ascii=False) + "\n" to `target`, byte for byte, copying each unchanged
        object's entry from the previous manifest. False when the documents module is missing.

        Each object document depends on exactly what its object.json fingerprint hashes
        (config, theme, version, the post), so an unchanged fingerprint means an unchanged
        entry. The index (`federation-objects.marshal`) maps a fingerprint to the object id
        and the entry's byte range in the manifest file it was written with (checked by size
        and mtime), so an edit at 10,000 posts copies ~150 MB of bytes instead of loading,
        re-encoding and saving them. tests/test_build_perf.py checks the bytes.
        """
        try:
            from .activitypub import documents as d
        except ImportError:
            return False
        index_file = self._state_dir / "cache" / "federation-objects.marshal"
        sig, known = self._load_object_index(index_file)
        with contextlib.ExitStack() as stack:
            old: mmap.mmap | None = None
            old_fd = -1
            try:
                handle = stack.enter_context(target.open("rb"))
                st = os.fstat(handle.fileno())
                if (st.st_size, st.st_mtime_ns) == sig and st.st_size > 0:
                    old = stack.enter_context(
                        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
                    old_fd = handle.fileno()
            except (OSError, ValueError):
                old = None
            if old is None:
                known = {}
            size = len(old) if old is not None else 0
            objects: dict[str, tuple[str | None, bytes | tuple[int, int]]] = {}
            missing: list[tuple[Post, str | None]] = []
            for post in d.federated_posts(site):
                fp = self._object_fps.get(post.path + "object.json")
                hit = known.get(fp) if fp is not None else None
                if hit is not None and 0 <= hit[1] <= hit[2] <= size:
                    objects[hit[0]] = (fp, (hit[1], hit[2]))
                else:
                    missing.append((post, fp))
            for fp, oid, entry in self._manifest_entries(site, missing):
                objects[oid] = (fp, entry)
            actor = _nested_json(d.actor_document(site, public_key), 1)
            fresh: _ObjectIndex = {}
            # Segments of the new file: bytes, or a (start, end) range of the old file. Runs
            # of unchanged entries that sat side by side in the old file (the separators and
            # keys between them the same bytes) become one range, copied by the kernel.
            segments: list[bytes | tuple[int, int]] = [
                ('{\n  "actor": ' + actor + ',\n  "objects": ').encode()]
            pos = len(segments[0])
            if objects:
                segments.append(b"{\n")
                pos += 2
                for i, oid in enumerate(sorted(objects)):
                    fp, body = objects[oid]
                    lead = (",\n" if i else "") + f"    {_json_key(oid)}: "
                    head = lead.encode()
                    pos += len(head)
                    last = segments[-1]
                    if isinstance(body, tuple):
                        start, end = body
                        if isinstance(last, tuple) and last[1] + len(head) == start \
                                and old is not None and old[last[1]:start] == head:
                            segments[-1] = (last[0], end)
                        else:
                            segments += [head, body]
                        length = end - start
                    else:
                        segments += [head, body]
                        length = len(body)
                    if fp is not None:
                        fresh[fp] = (oid, pos, pos + length)
                    pos += length
                segments.append(b"\n  }")
            else:
                segments.append(b"{}")
            segments.append(b"\n}\n")
            written = _write_segments_atomic(target, segments, old_fd, old)
            objects.clear()
            segments.clear()
        self._objects, self._objects_sig = fresh, written
        write_atomic(index_file, marshal.dumps((_OBJECTS_FORMAT, __version__, written, fresh)))
        return True

    def _manifest_entry(self, site: Site, post: Post,
                        fp: str | None) -> tuple[str | None, str, bytes]:
        """(fingerprint, object id, the entry's JSON as nested in the manifest)."""
        from .activitypub import documents as d

        doc = self._written_document(post.path + "object.json", fp)
        if doc is None:
            doc = d.object_document(site, post, mentions=self._mentions)
        value = {"hash": d.object_hash(doc), "published": doc["published"], "doc": doc}
        return fp, doc["id"], _nested_json(value, 2).encode("utf-8")

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


# The federation manifest's entries to compute in forked workers (see _manifest_entries).
_ENTRY_JOBS: tuple[FederationManifest, Site, list[tuple[Post, str | None]]] | None = None


def _entry_chunk(indices: range) -> list[tuple[str | None, str, bytes]]:
    assert _ENTRY_JOBS is not None
    writer, site, missing = _ENTRY_JOBS
    return [writer._manifest_entry(site, *missing[i]) for i in indices]


def _write_segments_atomic(path: Path, segments: Sequence[bytes | tuple[int, int]],
                           src_fd: int, src: mmap.mmap | None) -> tuple[int, int]:
    """write_atomic for a file made of bytes and (start, end) ranges of the open file
    `src_fd` (mapped as `src`), copied in the kernel where it can (copy_file_range), else
    from the map. Returns the new file's (size, mtime_ns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    kernel_copy = hasattr(os, "copy_file_range")
    try:
        try:
            # Small pieces are joined up to ~1 MiB per write (never all: a cold build's
            # manifest is ~170 MB of pieces).
            pending: list[bytes] = []
            pending_size = 0
            for segment in segments:
                if not isinstance(segment, tuple):
                    pending.append(segment)
                    pending_size += len(segment)
                    if pending_size >= 1 << 20:
                        _write_all(fd, b"".join(pending))
                        pending.clear()
                        pending_size = 0
                    continue
                _write_all(fd, b"".join(pending))
                pending.clear()
                pending_size = 0
                start, end = segment
                if src is None:
                    raise ValueError("a range of no file")
                while start < end and kernel_copy:
                    try:
                        done = os.copy_file_range(src_fd, fd, end - start, start)
                    except OSError:  # another file system, an old kernel: copy by hand
                        done = 0
                    if done <= 0:
                        kernel_copy = False
                        break
                    start += done
                if start < end:
                    with memoryview(src) as view:
                        _write_all(fd, view[start:end])
            _write_all(fd, b"".join(pending))
            os.fchmod(fd, 0o644)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return st.st_size, st.st_mtime_ns


def _write_all(fd: int, data: bytes | memoryview) -> None:
    with memoryview(data) as view:
        while view:
            view = view[os.write(fd, view):]


def _write_text_atomic(path: Path, pieces: Iterable[str]) -> None:
    """write_atomic for text given in pieces, encoded as it is written (never joined)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.writelines(pieces)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _nested_json(value: Any, level: int) -> str:
    """`value` as json.dumps(indent=2, sort_keys=True) writes it `level` containers deep.

    Newlines only ever separate structure (strings escape theirs), so indenting every line
    by the nesting depth gives exactly the bytes of the enclosing dump.
    """
    from .activitypub.documents import indented_json

    # Same bytes as json.dumps(indent=2) with the lines shifted, through the C encoder.
    return indented_json(value, sort_keys=True, level=level)


def _json_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)
