"""Where Hugging Face models come from, for every family (diffusion, SAM 2.1 / HF SAM, detectors).

The rules, the same for every family:

* a hub id (``owner/name``) is read from the local Hugging Face cache only; a model that is not there
  is a :class:`~autoinpaint.errors.ModelMissingError` (exit 3) naming the ``hf download`` command;
* ``AUTOINPAINT_ALLOW_DOWNLOAD=1`` (or ``allow_download=True``) lets autoinpaint download it, unless
  ``HF_HUB_OFFLINE`` is set, which always wins;
* a local folder (``save_pretrained`` output) or a single weights file is used as it is;
* weights are safetensors, or a pickle-free format: a folder whose only weights are pickles
  (``.bin``/``.pt``/``.pth``/``.ckpt``) is refused (exit 3), since unpickling can run code.

Nothing here imports torch, transformers or diffusers.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ModelMissingError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_SUFFIXES = (".safetensors",)
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from.

    kind: ``hub`` (a repo id, ``location`` is the id), ``folder`` or ``file`` (an absolute path).
    name: what the user asked for (alias, id or path), for messages and reports.
    """

    kind: str
    location: str
    name: str

    @property
    def local_files_only(self) -> bool:
        """True unless a hub download is allowed for this source right now."""
        return self.kind != "hub" or is_cached(self.location) or not download_allowed()


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: never touch the network, whatever else says."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_allowed(allow: bool | None = None) -> bool:
    """May a missing hub model be downloaded? ``allow`` (default ``$AUTOINPAINT_ALLOW_DOWNLOAD``),
    never when offline."""
    if allow is None:
        allow = os.environ.get("AUTOINPAINT_ALLOW_DOWNLOAD", "").strip().lower() in ("1", "true", "yes", "on")
    return bool(allow) and not offline()


def is_hub_id(spec: str) -> bool:
    """``owner/name`` that is not an existing local path."""
    return bool(_HUB_ID.fullmatch(spec)) and not Path(os.path.expanduser(spec)).exists()


def cached_file(repo: str, filename: str) -> str | None:
    """Path of ``filename`` of hub ``repo`` in the local Hugging Face cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename)
    except Exception:  # noqa: BLE001 - malformed id or cache: treat as not cached
        return None
    return found if isinstance(found, str) else None


def is_cached(repo: str, marker: str = "config.json") -> bool:
    """True when hub ``repo`` has ``marker`` (its main config file) in the local cache."""
    return cached_file(repo, marker) is not None


def snapshot_folder(repo: str, marker: str = "config.json") -> Path | None:
    """The cached snapshot folder of hub ``repo`` (the folder holding ``marker``), or None."""
    found = cached_file(repo, marker)
    return Path(found).parent if found else None


def fetch_hint(repo: str, flag: str = "--model") -> str:
    """How to get hub ``repo`` onto this machine."""
    return (f"fetch it once with `hf download {repo}` (older huggingface_hub: `huggingface-cli download "
            f"{repo}`), or set AUTOINPAINT_ALLOW_DOWNLOAD=1 to let autoinpaint download it, or pass a "
            f"local folder with {flag}")


def missing(repo: str, what: str = "model", flag: str = "--model") -> ModelMissingError:
    """The error for a hub model that is not in the local cache."""
    why = " (HF_HUB_OFFLINE is set)" if offline() else ""
    return ModelMissingError(f"{what} {repo} is not available offline{why}: {fetch_hint(repo, flag)}")


def resolve(spec: str, aliases: dict[str, str] | None = None, marker: str = "config.json",
            what: str = "model", flag: str = "--model") -> ModelSource:
    """Alias, hub id, local folder (holding ``marker``) or single file → :class:`ModelSource`.

    A hub id that is neither cached nor allowed to download raises ModelMissingError; an existing
    folder without ``marker`` or a path that does not exist too; anything else is an InputError."""
    if not spec or not isinstance(spec, str):
        raise InputError(f"no {what} given")
    name = (aliases or {}).get(spec.lower(), spec)
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        if not (path / marker).is_file():
            raise ModelMissingError(f"{path} is not a {what} folder (no {marker}); "
                                    "use save_pretrained() output")
        return ModelSource("folder", str(path.resolve()), spec)
    if path.is_file():
        return ModelSource("file", str(path.resolve()), spec)
    looks_like_path = (name.startswith((".", "~", "/")) or name.count("/") > 1
                       or name.lower().endswith(PICKLE_SUFFIXES + SAFE_SUFFIXES))
    if looks_like_path:
        raise ModelMissingError(f"{what} {spec!r}: no such file or folder")
    if _HUB_ID.fullmatch(name):
        if not is_cached(name, marker) and not download_allowed():
            raise missing(name, what, flag)
        return ModelSource("hub", name, spec)
    raise InputError(f"unknown {what} {spec!r}: use a known name, a hub id (owner/name) or a local folder")


def require_safe_weights(folder: str | os.PathLike, what: str = "model") -> None:
    """Refuse a local model folder whose weights are only pickles (``pytorch_model.bin`` & co.):
    loading them means unpickling, which can run code. safetensors weights are required."""
    folder = Path(folder)
    files = [p for p in folder.rglob("*") if p.is_file()]
    if any(p.suffix in SAFE_SUFFIXES for p in files):
        return
    pickles = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise ModelMissingError(f"refusing {what} folder {folder}: its weights ({', '.join(sorted(pickles)[:3])}) "
                                "are pickles, which can run code when loaded; convert them to safetensors "
                                "(save_pretrained(..., safe_serialization=True))")
    raise ModelMissingError(f"{what} folder {folder} has no weights (*.safetensors)")


def download(repo: str, progress: bool = True) -> Path:
    """Download hub ``repo`` (safetensors weights, configs, tokenizer files) into the Hugging Face
    cache, on the user's explicit request; refused when ``HF_HUB_OFFLINE`` is set. Returns its folder."""
    if offline():
        raise ModelMissingError(f"cannot download {repo}: HF_HUB_OFFLINE is set")
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if not progress:
        disable_progress_bars()
    try:
        return Path(snapshot_download(repo, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model",
                                                            "*.tiktoken"]))
    except Exception as exc:  # noqa: BLE001 - network, missing repo, disk: one clear line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelMissingError(f"download of {repo} failed: {first}") from None
    finally:
        if not progress:
            enable_progress_bars()
