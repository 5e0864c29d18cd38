"""One store of loaded models, bounded by bytes: segmenters, detectors, LaMa networks, diffusion pipelines.

Like spandrel's ``ModelLoader``, the store is an object that its owner hands in: the CLI makes one per
process, the web app's :class:`~autoinpaint.server.context.ServerContext` owns one, each batch worker
owns one, and the Python API and :class:`~autoinpaint.editor.Editor` take ``store=`` (else the process
default, :func:`default_store`). :func:`autoinpaint.models.registry.load` puts every model in it under one key
(kind, family, weights, device, precision, ...), so a model loads once per store however many steps ask.

Bound: the bytes the held models occupy, counted by :func:`footprint`: the parameters and buffers of
every torch module an entry holds (a diffusers pipeline: its components), each tensor once even when
two entries share it, plus the file size of every ONNX Runtime session it owns. When a new model
makes the total exceed ``max_bytes``, the least recently used entries are dropped until it fits; the
newest is never dropped, so a model larger than the whole budget is still held, alone. Dropping an
entry drops the store's reference: the memory is freed once no running step holds the model.

Budget: ``$AUTOINPAINT_MODEL_MEMORY`` (MB), else half of the machine's physical memory. Nothing heavy is
imported here: torch, diffusers and onnxruntime are looked at only when already loaded.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import types
from collections import OrderedDict
from typing import Any, Callable, Hashable

from ..errors import InputError

__all__ = ["ENV_BUDGET", "ModelStore", "default_budget", "default_store", "footprint", "model_bytes",
           "resolve_store"]

ENV_BUDGET = "AUTOINPAINT_MODEL_MEMORY"  # MB
FALLBACK_BUDGET = 8 << 30  # when the physical memory cannot be read
_MAX_DEPTH = 5  # attribute levels searched for modules (wrapper -> predictor -> model, ...)
_MAX_ITEMS = 256  # a larger container (a tokenizer's vocabulary) holds no models


def default_budget() -> int:
    """Bytes: ``$AUTOINPAINT_MODEL_MEMORY`` MB, else half of the physical memory (8 GiB when unknown)."""
    raw = os.environ.get(ENV_BUDGET, "").strip()
    if raw:
        try:
            mb = float(raw)
        except ValueError:
            mb = -1.0
        if mb < 0:
            raise InputError(f"${ENV_BUDGET} must be a number of MB (>= 0), got {raw!r}")
        return int(mb * 2**20)
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return FALLBACK_BUDGET


# ----------------------------------------------------------------------------------------------- sizes
def footprint(obj: Any) -> dict[tuple, int]:
    """What ``obj`` holds in memory, as {storage id: bytes}: every parameter and buffer of the torch
    modules found in it (attributes, dicts, lists, a diffusers pipeline's components; up to a few levels
    deep), keyed by (device, data pointer) so a tensor shared by two modules counts once; and for every
    ONNX Runtime session its model file's size. Loose tensors and arrays (embeddings) are not models
    and are not counted."""
    out: dict[tuple, int] = {}
    for _ in range(3):  # another thread may add an attribute meanwhile (a lazily opened session)
        try:
            _walk(obj, out, set(), 0)
            return out
        except RuntimeError:
            out.clear()
    return out


def model_bytes(obj: Any) -> int:
    """Bytes of :func:`footprint`."""
    return sum(footprint(obj).values())


_SKIP = (str, bytes, bytearray, int, float, bool, complex, type(None), type, range)
_CODE = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType, functools.partial)


def _walk(obj: Any, out: dict, seen: set, depth: int) -> None:
    if isinstance(obj, _SKIP) or id(obj) in seen:
        return
    seen.add(id(obj))
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(obj, torch.nn.Module):
            for tensor in (*obj.parameters(), *obj.buffers()):
                if tensor.device.type != "meta":
                    out[(str(tensor.device), tensor.data_ptr())] = tensor.numel() * tensor.element_size()
            return
        if isinstance(obj, torch.Tensor):
            return
    ort = sys.modules.get("onnxruntime")
    if ort is not None and isinstance(obj, ort.InferenceSession):
        path = getattr(obj, "_model_path", None)
        if path and os.path.isfile(path):
            out[("file", os.path.realpath(path))] = os.path.getsize(path)
        return
    diffusers = sys.modules.get("diffusers")
    if diffusers is not None and isinstance(obj, _pipeline_class(diffusers)):
        for component in list(obj.components.values()):
            _walk(component, out, seen, depth + 1)
        return
    if depth >= _MAX_DEPTH:
        return
    if isinstance(obj, dict):
        if len(obj) <= _MAX_ITEMS:
            for value in list(obj.values()):
                _walk(value, out, seen, depth + 1)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        if len(obj) <= _MAX_ITEMS:
            for value in list(obj):
                _walk(value, out, seen, depth + 1)
        return
    if type(obj).__module__ in ("builtins", "numpy") or isinstance(obj, _CODE):
        return  # arrays, functions, bound methods, modules: no models inside
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        for value in list(attrs.values()):
            _walk(value, out, seen, depth + 1)


def _pipeline_class(diffusers):
    try:
        return diffusers.DiffusionPipeline
    except (AttributeError, ImportError):  # a diffusers import still under way
        return ()


# ----------------------------------------------------------------------------------------------- store
class ModelStore:
    """Loaded models by key, bounded by bytes, least recently used dropped first.

    ``get(key, factory)`` returns the model of ``key``, loading it with ``factory()`` once: concurrent
    requests for one key wait for the first load; other keys load meanwhile. Thread-safe.

    Args:
        max_bytes: the bound (see the module's docstring); None: :func:`default_budget`.

    ``loads`` counts the loads done, ``evictions`` the entries dropped to stay in the bound.
    """

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = default_budget() if max_bytes is None else max(0, int(max_bytes))
        self.loads = 0
        self.evictions = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """The model of ``key`` (now the most recently used), loaded by ``factory()`` when absent."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            model = factory()
            self._insert(key, model, loaded=True)
        return model

    def put(self, key: Hashable, model: Any) -> None:
        """Hold ``model`` under ``key`` as the most recently used, then drop the least recently used
        entries while the total is over the bound (never this one)."""
        self._insert(key, model, loaded=False)

    def _insert(self, key: Hashable, model: Any, loaded: bool) -> None:
        with self._lock:
            self._items[key] = model
            self._items.move_to_end(key)
            if loaded:
                self.loads += 1
            evicted = self._shrink()
        if evicted:
            evicted.clear()  # the store's last references go here, outside the lock
            _release_cuda_cache()

    def find(self, predicate: Callable[[Hashable], bool]) -> Any | None:
        """The most recently used model whose key satisfies ``predicate`` (its place is unchanged), or None."""
        with self._lock:
            for key in reversed(self._items):
                if predicate(key):
                    return self._items[key]
        return None

    def discard(self, key: Hashable) -> None:
        """Drop ``key`` if held."""
        with self._lock:
            model = self._items.pop(key, None)
            self._sizes.pop(key, None)
            self._key_locks.pop(key, None)
        del model

    def clear(self) -> None:
        """Drop every model (each is freed once nothing else holds it)."""
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
            self._sizes.clear()
            self._key_locks.clear()
        del items

    @property
    def nbytes(self) -> int:
        """The bytes the held models occupy now (shared tensors counted once)."""
        with self._lock:
            merged: dict = {}
            for model in self._items.values():
                merged.update(footprint(model))
            return sum(merged.values())

    def sizes(self) -> dict[Hashable, int]:
        """Bytes of each entry when last measured (on any load), least recently used first."""
        with self._lock:
            return {key: self._sizes.get(key, 0) for key in self._items}

    def keys(self) -> list:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"ModelStore({len(self)} models, max_bytes={self.max_bytes})"

    def _shrink(self) -> list:
        """Measure every entry (a held model may have grown since: an encoder loaded on first use, an
        ONNX session opened) and drop the least recently used while the union is over the bound."""
        prints = {key: footprint(model) for key, model in self._items.items()}
        self._sizes = {key: sum(p.values()) for key, p in prints.items()}
        evicted = []
        while len(self._items) > 1 and _union_bytes(prints.values()) > self.max_bytes:
            key, model = self._items.popitem(last=False)
            prints.pop(key)
            self._sizes.pop(key, None)
            self._key_locks.pop(key, None)
            self.evictions += 1
            evicted.append(model)
        if evicted:
            from ..log import logger

            logger.debug("model store: dropped %d model(s) to stay within %d MB", len(evicted), self.max_bytes >> 20)
        return evicted


def _union_bytes(prints) -> int:
    merged: dict = {}
    for p in prints:
        merged.update(p)
    return sum(merged.values())


def _release_cuda_cache() -> None:
    """Give CUDA's cached blocks back once an eviction dropped a model (only when CUDA is in use)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------ process default
_DEFAULT: ModelStore | None = None
_DEFAULT_LOCK = threading.Lock()


def default_store() -> ModelStore:
    """The process's default store (created on first use with :func:`default_budget`): what the
    Python API and an Editor use when no ``store`` is handed in."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = ModelStore()
        return _DEFAULT


def resolve_store(store: ModelStore | None) -> ModelStore:
    """``store``, or the process default when None."""
    return store if store is not None else default_store()
