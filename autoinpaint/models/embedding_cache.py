"""Cache of image embeddings (every promptable segmenter family), in process (LRU) and on disk
across processes.

An entry holds what a segmenter's ``embed`` computes, so a prediction needs no image encoder:
named tensors (SAM: ``features`` 1×C×h×w; SAM 2: the embedding and its high-resolution feature
maps), ``original_size`` (H, W of the image in pixels) and ``input_size`` (H, W after resizing to
the encoder's size). Entries are safetensors files (tensors and string metadata only: nothing is
unpickled) named by a key built from the image content hash, the model fingerprint and the
precision.
The same directory also keeps the prompt-encoder and mask-decoder weights of each checkpoint
("heads"), so a cache hit need not read the full checkpoint, and the ONNX exports of the decoders
(``onnx/``, :mod:`.onnx_decoder`), under the same size bound and ``cache clear``.

Location: ``$AUTOINPAINT_CACHE``, else ``$AUTOINPAINT_HOME/cache``, else ``~/.cache/autoinpaint``
(this module uses its ``sam/`` sub-directory). Size bound: ``$AUTOINPAINT_CACHE_MAX_MB`` (default
1024), least recently used files evicted first. A corrupt or mismatched entry is deleted and
treated as a miss, never an error.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..log import warning
from .paths import cache_dir  # noqa: F401 - re-exported for callers

FORMAT = "autoinpaint-embedding-2"
_MEMORY: "OrderedDict[str, Embedding]" = OrderedDict()  # shared by all caches in the process
_MEMORY_LOCK = threading.Lock()


@dataclass
class Embedding:
    """``tensors``: name → torch tensor (a bare tensor is stored as ``features``);
    ``original_size``/``input_size``: (H, W) in pixels; ``derived``: what a model computes from the
    tensors once per image on its first use of them (kept in memory with the embedding, never on disk)."""

    tensors: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.tensors, dict):
            self.tensors = {"features": self.tensors}

    @property
    def features(self):
        """The main embedding tensor (1×C×h×w)."""
        return self.tensors["features"]

    def arrays(self) -> list:
        """Every tensor it holds in memory: its ``tensors`` and what was derived from them."""
        held = list(self.tensors.values())
        for derived in self.derived.values():
            held += list(derived.values()) if isinstance(derived, dict) else [derived]
        return held


def image_key(image: np.ndarray, *parts: object) -> str:
    """Cache key of ``image`` (its content and shape) for one model: ``parts`` name the model and how it
    runs (fingerprint, precision, input size)."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(repr(image.shape).encode())
    return hashlib.sha256("|".join([digest.hexdigest(), *map(str, parts)]).encode()).hexdigest()[:40]


class CachedEncoder:
    """``embed`` of the promptable segmenters: validate the image, take the embedding from the cache,
    else run ``_encode`` (one image at a time, under ``_lock``) and cache it. A subclass sets
    ``cache``, ``_lock`` and ``encoder_runs`` and defines ``embedding_key(image)`` and ``_encode(image)``."""

    cache: "EmbeddingCache"
    encoder_runs: int

    def embed(self, image: np.ndarray) -> "Embedding":
        """Embedding of ``image`` (H×W×3 uint8 RGB): from the cache, or by running the image encoder
        (then cached in memory and on disk)."""
        image = np.ascontiguousarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            from ..errors import InputError

            raise InputError("SAM needs an H×W×3 uint8 RGB image")
        key = self.embedding_key(image)
        emb = self.cache.get(key)
        if emb is None:
            with self._lock:
                emb = self._encode(image)
                self.encoder_runs += 1
            self.cache.put(key, emb)
        self._prepare(emb)
        return emb

    def _prepare(self, emb: "Embedding") -> None:
        """What a model derives from an embedding once, before its first click (kept in
        ``emb.derived``; nothing by default): done here, where the encoder runs (the web app's
        background thread), so a first click does not wait for it."""


def _warn(message: str) -> None:
    warning(message)


class EmbeddingCache:
    """Get/put SAM embeddings and checkpoint heads.

    Args:
        directory: where files go (default ``cache_dir() / "sam"``).
        max_bytes: bound on the directory's size on disk.
        memory_items: how many embeddings the in-process LRU keeps.
        disk: False keeps only the in-process LRU (``--no-cache`` turns the whole cache off).
    """

    def __init__(self, directory: Path | None = None, max_bytes: int | None = None,
                 memory_items: int = 8, disk: bool = True):
        self.directory = Path(directory) if directory else cache_dir() / "sam"
        if max_bytes is None:
            max_bytes = int(float(os.environ.get("AUTOINPAINT_CACHE_MAX_MB", 1024)) * 2**20)
        self.max_bytes = max_bytes
        self.memory_items = memory_items
        self.disk = disk

    # -- embeddings -------------------------------------------------------------------------
    def get(self, key: str) -> Embedding | None:
        """The embedding stored under ``key``, from memory or disk, or None."""
        with _MEMORY_LOCK:
            if key in _MEMORY:
                _MEMORY.move_to_end(key)
                return _MEMORY[key]
        if not self.disk:
            return None
        loaded = self._read(self.directory / "embeddings" / f"{key}.safetensors", key)
        if loaded is None:
            return None
        tensors, meta = loaded
        try:
            emb = Embedding(dict(tensors), tuple(json.loads(meta["original_size"])),
                            tuple(json.loads(meta["input_size"])))
            ok = ("features" in emb.tensors and emb.features.ndim == 4 and len(emb.original_size) == 2
                  and len(emb.input_size) == 2)
        except (KeyError, ValueError, TypeError):
            ok = False
        if not ok:
            self._discard(self.directory / "embeddings" / f"{key}.safetensors", "mismatched")
            return None
        self._remember(key, emb)
        return emb

    def put(self, key: str, emb: Embedding) -> None:
        """Store ``emb`` under ``key`` in memory and (if enabled) on disk; disk errors only warn."""
        self._remember(key, emb)
        if self.disk:
            self._write(self.directory / "embeddings" / f"{key}.safetensors",
                        {k: v.contiguous() for k, v in emb.tensors.items()},
                        {"key": key, "original_size": json.dumps(list(emb.original_size)),
                         "input_size": json.dumps(list(emb.input_size))})

    def _remember(self, key: str, emb: Embedding) -> None:
        with _MEMORY_LOCK:
            _MEMORY[key] = emb
            _MEMORY.move_to_end(key)
            while len(_MEMORY) > self.memory_items:
                _MEMORY.popitem(last=False)

    # -- checkpoint heads (prompt encoder + mask decoder) --------------------------------------
    def get_head(self, fingerprint: str) -> tuple[dict, dict] | None:
        """(architecture config, prompt_encoder.* and mask_decoder.* tensors) or None."""
        if not self.disk:
            return None
        path = self.directory / "heads" / f"{fingerprint}.safetensors"
        loaded = self._read(path, fingerprint)
        if loaded is None:
            return None
        tensors, meta = loaded
        try:
            return json.loads(meta["config"]), tensors
        except (KeyError, ValueError):
            self._discard(path, "mismatched")
            return None

    def put_head(self, fingerprint: str, config: dict, tensors: dict) -> None:
        if self.disk:
            self._write(self.directory / "heads" / f"{fingerprint}.safetensors",
                        {k: v.contiguous() for k, v in tensors.items()},
                        {"key": fingerprint, "config": json.dumps(config)})

    # -- files ------------------------------------------------------------------------------
    def _read(self, path: Path, key: str) -> tuple[dict, dict] | None:
        if not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT or meta.get("key") != key:
                    raise ValueError("mismatched")
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except Exception as exc:  # corrupt, truncated, wrong format: a miss, never fatal
            self._discard(path, "corrupt" if str(exc) != "mismatched" else "mismatched")
            return None
        with contextlib.suppress(OSError):  # least recently used eviction goes by mtime
            os.utime(path)
        return tensors, meta

    def _write(self, path: Path, tensors: dict, meta: dict) -> None:
        from safetensors.torch import save_file

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            try:
                save_file(tensors, tmp, metadata={"format": FORMAT, **meta})
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self._evict(keep=path)
        except OSError as exc:
            _warn(f"could not write the cache entry {path}: {exc}")

    def _discard(self, path: Path, why: str) -> None:
        _warn(f"ignoring {why} cache entry {path.name}; it will be rebuilt")
        try:
            path.unlink()
        except OSError:
            pass

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        # embeddings, heads, and the exported ONNX decoders/encoders (sam/onnx/, :mod:`.onnx_decoder`)
        return [p for pattern in ("*.safetensors", "*.onnx") for p in self.directory.rglob(pattern) if p.is_file()]

    def _stats(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every entry, oldest first; entries deleted meanwhile skipped."""
        entries = []
        for path in self.files():
            with contextlib.suppress(OSError):
                st = path.stat()
                entries.append((st.st_mtime, st.st_size, path))
        return sorted(entries, key=lambda e: e[0])

    def _evict(self, keep: Path) -> None:
        entries = self._stats()
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size

    def clear(self) -> tuple[int, int]:
        """Delete every entry on disk and in memory; returns (files, bytes) removed."""
        _MEMORY.clear()
        removed = self._stats()
        for _, _, path in removed:
            path.unlink(missing_ok=True)
        for tmp in self.directory.rglob("*.tmp") if self.directory.is_dir() else ():
            tmp.unlink(missing_ok=True)
        return len(removed), sum(size for _, size, _ in removed)

    def info(self) -> dict:
        entries = self._stats()
        return {"directory": str(self.directory), "entries": len(entries),
                "bytes": sum(size for _, size, _ in entries), "max_bytes": self.max_bytes}
