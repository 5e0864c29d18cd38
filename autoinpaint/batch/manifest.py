"""The batch manifest: one JSON record per row and run, written as rows finish.

* **A local file** (``OUTDIR/manifest.jsonl``, or ``--manifest PATH``): each record is one ``write()`` of
  one line on a file opened ``O_APPEND``, so a ``kill -9`` leaves at worst one torn last line, which
  readers ignore and the next run terminates. **A full disk** never tears a line: a write that fails
  part-way (ENOSPC, EFBIG, EDQUOT) is cut back to the last whole record (``ftruncate``), and a reserve
  of ``RESERVE_BYTES`` held beside the manifest for the run (``.manifest.jsonl.reserve``) is given
  back to make room, so the records of the rows that failed for want of space still get written.
  When even that is spent, :class:`ManifestFull` stops the batch; a resume after space is freed
  does the rest.
* **In an object store** (``--manifest s3://…/manifest.jsonl``): objects cannot be appended to, so the
  records go up in parts: every 2 seconds (``$AUTOINPAINT_MANIFEST_FLUSH_SECONDS``) the new records
  become one object ``MANIFEST.parts/RUN-SEQ.jsonl`` (one upload each, never rewritten); when the run
  ends, the parts are folded into ``MANIFEST`` (one upload) and removed. A ``kill -9`` loses at most the
  last 2 seconds of records: the next run redoes those rows (outputs are deterministic and written whole).

Readers (:meth:`ManifestSnapshot.records`) see what was there when the run opened the manifest, so the
planner never reads the records of its own run.
"""
from __future__ import annotations

import json
import os
import posixpath
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import StorageError
from ..imaging.storage import delete, exists, is_remote, list_files, make_parents, open_binary, write_bytes, write_file

MANIFEST_NAME = "manifest.jsonl"
PARTS = ".parts"
RESERVE_BYTES = 256 * 1024  # ~500 records: the rows in flight when the disk fills, and many more


class ManifestFull(StorageError):
    """The manifest's disk is full, its reserve spent: the batch stops (exit 1); resume once space is freed."""


@dataclass(frozen=True)
class ManifestSnapshot:
    """The manifest as it was when a run opened it (picklable: it travels to the Ray read task).

    ``limit``: bytes of a local file to read; ``skip_run``: parts of this run are not read."""

    spec: str
    limit: int | None = None
    skip_run: str | None = None

    def records(self) -> Iterator[dict]:
        """Every whole record, oldest first; torn or foreign lines are skipped."""
        specs = [self.spec] if exists(self.spec) else []
        if is_remote(self.spec):
            specs += [p for p in _parts(self.spec)
                      if not (self.skip_run and posixpath.basename(p).startswith(self.skip_run))]
        for spec in specs:
            with open_binary(spec) as fh:
                yield from _parse(_limited(fh, self.limit))


def _limited(fh, limit: int | None) -> Iterator[bytes]:
    read = 0
    for raw in fh:
        read += len(raw)
        if limit is not None and read > limit:
            return
        yield raw


def _parse(lines: Iterable) -> Iterator[dict]:
    for raw in lines:
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a torn line from a killed run
        if isinstance(rec, dict):
            yield rec


def _parts(spec: str) -> list[str]:
    folder = spec + PARTS
    return list_files(folder) if exists(folder) else []


class Manifest:
    """Where a run's records go: :func:`open_manifest` picks the local or the object-store kind."""

    spec: str

    def open(self) -> ManifestSnapshot:
        """Start appending; returns the snapshot of what earlier runs wrote."""
        raise NotImplementedError

    def append(self, record: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def open_manifest(spec: str) -> Manifest:
    return StoreManifest(spec) if is_remote(spec) else LocalManifest(spec)


def _line(record: dict) -> bytes:
    return (json.dumps(record, default=str) + "\n").encode()


class LocalManifest(Manifest):
    """Append-only JSONL file; one ``write()`` per record; robust to a full disk (see the module notes)."""

    def __init__(self, path: str | os.PathLike, reserve_bytes: int = RESERVE_BYTES):
        self.spec = os.fspath(path)
        self.reserve_bytes = reserve_bytes
        self.reserve = os.path.join(os.path.dirname(self.spec), f".{os.path.basename(self.spec)}.reserve")
        self.reserve_used = False
        self._fd: int | None = None
        self._size = 0

    def open(self) -> ManifestSnapshot:
        make_parents(self.spec)
        self._fd = os.open(self.spec, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.spec, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    os.write(self._fd, b"\n")  # terminate a torn line left by a killed run
                    size += 1
        self._size = size
        self._hold_reserve()
        return ManifestSnapshot(self.spec, limit=size)

    def _hold_reserve(self) -> None:
        """Take ``reserve_bytes`` of real blocks beside the manifest (best effort: none when the disk
        is full already)."""
        try:
            fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            return
        try:
            block = b"\0" * 65536
            left = self.reserve_bytes
            while left > 0:
                left -= os.write(fd, block[:left])
        except OSError:
            pass  # what was written is held all the same
        finally:
            os.close(fd)

    def _release_reserve(self) -> bool:
        try:
            os.unlink(self.reserve)
        except OSError:
            return False
        return True

    def append(self, record: dict) -> None:
        line = _line(record)
        for attempt in range(2):
            try:
                written = os.write(self._fd, line)  # one write on an O_APPEND file
                if written != len(line):
                    raise OSError(28, "short write: No space left on device")
                self._size += written
                return
            except OSError as exc:
                os.ftruncate(self._fd, self._size)  # never leave a torn line behind
                if attempt == 0 and self._release_reserve():
                    self.reserve_used = True
                    continue
                raise ManifestFull(f"cannot record line {record.get('line')} in {self.spec}: "
                                   f"{exc.strerror or exc}; free some space and run the batch again "
                                   f"(it resumes where it stopped)") from None

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        self._release_reserve()


class StoreManifest(Manifest):
    """A manifest object in a store, written as parts while the run goes and folded at the end."""

    def __init__(self, url: str, flush_seconds: float | None = None, flush_records: int = 1000):
        self.spec = url
        self.flush_seconds = flush_seconds or float(os.environ.get("AUTOINPAINT_MANIFEST_FLUSH_SECONDS") or 2.0)
        self.flush_records = flush_records
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._seq = 0
        self.run_id = ""

    def open(self) -> ManifestSnapshot:
        now = time.time()
        self.run_id = (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:]
                       + f"Z-{os.getpid()}")
        self._timer = threading.Thread(target=self._tick, name="manifest-flush", daemon=True)
        self._timer.start()
        return ManifestSnapshot(self.spec, skip_run=self.run_id)

    def _tick(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - kept buffered; close() flushes again and reports it
                pass

    def append(self, record: dict) -> None:
        with self._lock:
            self._buffer.append(_line(record))
            full = len(self._buffer) >= self.flush_records
        if full:
            self.flush()

    def flush(self) -> None:
        """Upload the buffered records as one new part."""
        with self._lock:
            if not self._buffer:
                return
            part = f"{self.spec}{PARTS}/{self.run_id}-{self._seq + 1:06d}.jsonl"
            write_bytes(part, b"".join(self._buffer))  # raises with the records still buffered
            self._buffer.clear()
            self._seq += 1

    def close(self) -> None:
        """Flush, then fold every part (this run's and any a killed run left) into the manifest."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        self.flush()
        parts = _parts(self.spec)
        if not parts:
            return
        with tempfile.NamedTemporaryFile() as tmp:
            for spec in ([self.spec] if exists(self.spec) else []) + parts:
                with open_binary(spec) as fh:
                    for line in fh:
                        tmp.write(line if line.endswith(b"\n") else line + b"\n")
            tmp.flush()
            write_file(self.spec, tmp.name)
        for spec in parts:
            delete(spec)
