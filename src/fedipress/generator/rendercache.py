"""The render pack: every output's bytes from the last CI build, in one file of the build cache
(<state_dir>/cache/render-pack.bin), so that a CI build in a fresh clone, where public/ does
not exist (it is not in git) but the workflow restored .fedipress/cache/, writes each page
from the pack instead of rendering it again. See `RenderPack`.
"""

from __future__ import annotations

import marshal
import mmap
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import BinaryIO

__all__ = ["RenderPack"]

# (fingerprint, sha256 of the bytes, offset in the data, size, by-product): the by-product is
# what the build's after-render hook made of the bytes (an object.json's federation manifest
# entry), kept so that a page taken from the pack need not be parsed again.
_Slot = tuple[str, str, int, int, object]
_MAGIC = b"fedipress render pack\n"
_LENGTH = 8  # the index's length, big-endian, at the end of the file


class RenderPack:
    """The bytes of every output of the build that wrote it, by output path and fingerprint.

    One file: a magic line, the outputs' bytes one after another, the index (marshal:
    `(VERSION, {path: (fingerprint, sha256, offset, size, by-product)})`) and its length
    (8 bytes). It is mapped into memory, not read: forked render workers share the pages,
    and only what is used is read from disk.
    An output is taken from the pack only when its fingerprint (which covers everything it is
    made of: the config, the theme, the fedipress version and its own inputs) is the one
    recorded; the caller checks the bytes against the recorded sha256 before writing them, so
    a damaged pack costs a render, never a wrong page.

    Written only by CI builds (`fedipress build` with CI=true), the ones whose next build
    starts without public/; a local build keeps public/ itself and does not need a second
    copy of it.
    """

    VERSION = 1
    FILE_NAME = "render-pack.bin"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.FILE_NAME
        self._index: dict[str, _Slot] = {}
        self._map: mmap.mmap | None = None
        self._start = 0
        self._end = 0  # where the data ends (the index begins)
        self.loaded = False

    def __len__(self) -> int:
        return len(self._index)

    def load(self) -> str | None:
        """Map the pack. Returns why a pack that is there cannot be used (it is then ignored
        and replaced by the next CI build), or None (used, or no pack at all)."""
        self.loaded = True
        try:
            with self.path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size == 0:
                    return f"{self.path} is empty"
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return f"{self.path} cannot be read ({exc})"
        reason = self._read_index(mapped, size)
        if reason is not None:
            mapped.close()
            self._index = {}
            return f"{self.path} {reason}"
        self._map = mapped
        return None

    def _read_index(self, mapped: mmap.mmap, size: int) -> str | None:
        start = len(_MAGIC)
        if size < start + _LENGTH or mapped[:start] != _MAGIC:
            return "is not a fedipress render pack"
        length = int.from_bytes(mapped[size - _LENGTH:], "big")
        end = size - _LENGTH - length  # where the data ends and the index begins
        if end < start:
            return "is cut short (its index runs past the start of the file)"
        try:
            data = marshal.loads(mapped[end:size - _LENGTH])
        except (EOFError, ValueError, TypeError):
            return "has a damaged index"
        if not (isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], dict)):
            return "has a damaged index"
        if data[0] != self.VERSION:
            return f"is format {data[0]!r}, this fedipress reads format {self.VERSION}"
        index: dict[str, _Slot] = data[1]
        room = end - start
        for path, slot in index.items():
            if not (isinstance(path, str) and isinstance(slot, tuple) and len(slot) == 5
                    and isinstance(slot[2], int) and isinstance(slot[3], int)
                    and 0 <= slot[2] and slot[2] + slot[3] <= room):
                return "has a damaged index (an entry points outside the file)"
        self._index, self._start, self._end = index, start, end
        return None

    def holds(self, path: str, fingerprint: str) -> bool:
        slot = self._index.get(path)
        return slot is not None and slot[0] == fingerprint and self._map is not None

    def get(self, path: str, fingerprint: str) -> tuple[bytes, str, object] | None:
        """(the bytes, their recorded sha256, the after-render by-product) of `path` if the
        pack holds it with this fingerprint. The caller checks the sha256."""
        slot = self._index.get(path)
        if slot is None or slot[0] != fingerprint or self._map is None:
            return None
        begin = self._start + slot[2]
        return self._map[begin:begin + slot[3]], slot[1], slot[4]

    def close(self) -> None:
        """Unmap the pack; a save() after this writes it anew from the output folder."""
        if self._map is not None:
            self._map.close()
            self._map = None
        self._index = {}
        self.loaded = True

    def save(self, entries: Mapping[str, tuple[str, str, int, int]], root: Path,
             by_products: Mapping[str, object], damaged: Collection[str] = ()) -> bool:
        """Make the pack hold `entries` (the build manifest: path -> (fingerprint, sha256,
        size, mtime_ns)) with their after-render `by_products`; True when the file changed.

        Bytes the pack already holds (same sha256, not found `damaged` by this build) stay
        where they are; the others are read from the output folder (a file that changed
        since the build wrote it is left out) and appended, with a new index after them. The
        file is written anew, compacted, when over half of it would be dead bytes. An
        append cut short leaves an index that does not load: the next build renders."""
        if not self.loaded:
            self.load()
        old = self._index
        if old.keys() == entries.keys() and all(
                old[p][0] == e[0] and old[p][1] == e[1] for p, e in entries.items()):
            return False
        index: dict[str, _Slot] = {}
        new: list[tuple[str, str, str, int]] = []  # (path, fingerprint, sha, size)
        live = 0
        for path, (fingerprint, sha, size, _mtime) in entries.items():
            slot = old.get(path)
            if slot is not None and slot[1] == sha and path not in damaged:
                extra = by_products.get(path, slot[4])
                index[path] = (fingerprint, sha, slot[2], slot[3], extra)
                live += slot[3]
            else:
                new.append((path, fingerprint, sha, size))
        held = self._end - self._start if self._map is not None else 0  # the data's bytes
        append = bool(index) and held - live <= live
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            self._append(index, new, root, by_products)
        else:
            self._rewrite(entries, root, by_products, damaged)
        return True

    def _append(self, index: dict[str, _Slot], new: list[tuple[str, str, str, int]],
                root: Path, by_products: Mapping[str, object]) -> None:
        with self.path.open("r+b") as out:
            offset = out.seek(0, os.SEEK_END) - self._start
            for path, fingerprint, sha, size in new:
                blob = _read(root, path)
                if blob is None or len(blob) != size:
                    continue
                out.write(blob)
                index[path] = (fingerprint, sha, offset, size, by_products.get(path))
                offset += size
            _write_index(out, index)

    def _rewrite(self, entries: Mapping[str, tuple[str, str, int, int]], root: Path,
                 by_products: Mapping[str, object], damaged: Collection[str]) -> None:
        old = self._index
        tmp = self.path.with_name(f".{self.FILE_NAME}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as out:
                out.write(_MAGIC)
                index: dict[str, _Slot] = {}
                offset = 0
                for path, (fingerprint, sha, size, _mtime) in entries.items():
                    slot = old.get(path)
                    if slot is not None and slot[1] == sha and path not in damaged \
                            and self._map is not None:
                        begin = self._start + slot[2]
                        blob: bytes | None = self._map[begin:begin + slot[3]]
                        extra = by_products.get(path, slot[4])
                    else:
                        blob, extra = _read(root, path), by_products.get(path)
                    if blob is None or len(blob) != size:
                        continue
                    out.write(blob)
                    index[path] = (fingerprint, sha, offset, size, extra)
                    offset += size
                _write_index(out, index)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _write_index(out: BinaryIO, index: dict[str, _Slot]) -> None:
    # The index last (its offsets are known only now), its length at the very end.
    tail = marshal.dumps((RenderPack.VERSION, index))
    out.write(tail + len(tail).to_bytes(_LENGTH, "big"))


def _read(root: Path, path: str) -> bytes | None:
    try:
        with open(os.path.join(root, path), "rb") as handle:
            return handle.read()
    except OSError:
        return None
