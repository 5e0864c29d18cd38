"""LaMa weights: every supported file → one state dict for spandrel's LaMa architecture, under the
project's rule for files that can run code when read.

Formats (told apart by content, not by name):

- **safetensors** with spandrel's key layout (``model.model.*``, as IOPaint's TorchScript carries it) or
  LaMa's own (``generator.model.*``): read directly, nothing runs. Every conversion below writes this.
- **TorchScript** ``big-lama.pt`` (what IOPaint distributes): ``torch.jit.load`` runs the archive's code,
  so it is read only when trusted (below); its ``state_dict()`` is kept, as spandrel and ComfyUI do.
- **``torch.save`` files** (``.ckpt``/``.pth``/``.pt``/``.bin``): ``torch.load(weights_only=True)`` first;
  a file that needs full unpickling (LaMa's Lightning ``best.ckpt`` pickles its OmegaConf training
  config) is read only when trusted, with classes that are not installed replaced by inert stand-ins.

Trusted means: the file's SHA-256 is one we publish (:func:`trusted_digests`), or the caller says so
(``--trust-checkpoint``). Otherwise :class:`~autoinpaint.errors.ModelMissingError` (exit 3) says why.
A trusted file is converted once to safetensors (``cache_dir()/lama/SHA256.safetensors``; the
downloaded ``big-lama.pt`` beside itself, see :func:`convert_checkpoint`), written atomically; later
loads of the same content read the conversion. torch is imported only when a file is read.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelMissingError
from ..models.checkpoints import KNOWN, file_digest
from ..models.paths import cache_dir
from ..models.registry import LAMA_KEYS
from ..models.weight_files import safetensors_keys, torch_archive_kind

# Another published build of the same network: simple-lama-inpainting v0.1.0's big-lama.pt (TorchScript,
# 205,803,670 bytes), SHA-256 as pinned by several projects that use it.
SIMPLE_LAMA_SHA256 = "7ba7aa7ac37a4d41fdbbeba3a2af7ead18058552997e3a3cd1a3b2210c9e6b4c"
TRUST_HINT = ("pass --trust-checkpoint if you trust where it came from, or get the verified file with: "
              "autoinpaint models download lama")


def trusted_digests() -> dict[str, str]:
    """SHA-256 → description of the LaMa files that may be read even though reading runs code."""
    known = KNOWN["lama"]
    return {known.sha256: f"{known.filename} ({known.url})",
            SIMPLE_LAMA_SHA256: "big-lama.pt (simple-lama-inpainting v0.1.0)"}


@dataclass
class LamaWeights:
    """A LaMa state dict (spandrel's ``model.model.*`` keys) and where it came from.

    source: the file read (a conversion when one was used); sha256: the original file's digest when it
    was computed; format: ``safetensors``, ``torchscript``, ``pickle`` or ``weights-only``."""

    state: dict
    source: Path
    format: str
    sha256: str | None = None


def read_lama_weights(path: str | Path, trust: bool = False) -> LamaWeights:
    """Read the LaMa weights of ``path`` (any supported format) under the trust rule (module doc)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelMissingError(f"LaMa weights {path} do not exist; get them with: autoinpaint models download lama")
    if safetensors_keys(path) is not None:
        return LamaWeights(lama_state(_read_safetensors(path), path), path, "safetensors")
    kind = torch_archive_kind(path)
    if kind is None:
        raise ModelMissingError(f"cannot read {path}: not a safetensors, TorchScript or torch.save file")
    if kind != "torchscript":
        state = _weights_only(path)
        if state is not None:
            return LamaWeights(lama_state(state, path), path, "weights-only")
    digest = file_digest(path)
    converted = conversion_path(digest)
    if converted.is_file():
        return LamaWeights(lama_state(_read_safetensors(converted), converted), converted, "safetensors", digest)
    if not (trust or digest in trusted_digests()):
        what = ("it is a TorchScript archive, and loading one runs the code inside it" if kind == "torchscript"
                else "it needs full unpickling, which can run code")
        raise ModelMissingError(f"refusing {path}: {what}; its SHA-256 {digest[:16]}... is not a LaMa file we "
                                f"publish; {TRUST_HINT}")
    state = lama_state(_torchscript(path) if kind == "torchscript" else _unpickle(path), path)
    write_safetensors(state, converted, {"source": path.name, "source_sha256": digest})
    return LamaWeights(state, path, kind, digest)


def conversion_path(digest: str) -> Path:
    """Where the safetensors conversion of a file with SHA-256 ``digest`` lives."""
    return cache_dir() / "lama" / f"{digest}.safetensors"


def convert_checkpoint(source: Path, dest: Path) -> Path:
    """``checkpoints.download``'s conversion of the verified ``big-lama.pt``: ``dest`` (safetensors),
    written once, atomically."""
    dest = Path(dest)
    if not dest.is_file():
        state = lama_state(_torchscript(source) if torch_archive_kind(source) == "torchscript"
                           else _unpickle(source), source)
        write_safetensors(state, dest, {"source": Path(source).name})
    return dest


def lama_state(state: dict, path: Path) -> dict:
    """The generator's tensors with spandrel's ``model.model.`` prefix, from any key layout: a bare
    state dict, a Lightning checkpoint (``state_dict`` → ``generator.model.*``, discriminator and
    losses dropped), or a TorchScript module's ``state_dict()``."""
    import torch

    for key in ("state_dict", "model_state_dict", "model", "params_ema", "params", "net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    marker = LAMA_KEYS[0].removeprefix("model.model.")  # "1.bn_l.running_mean"
    prefix = next((k[: -len(marker)] for k in state if isinstance(k, str) and k.endswith("model." + marker)),
                  None) if isinstance(state, dict) else None
    if prefix is None:
        raise ModelMissingError(f"{path} is not a LaMa checkpoint (no {LAMA_KEYS[0]!r} or "
                                f"{LAMA_KEYS[1]!r}); get one with: autoinpaint models download lama")
    out = {"model.model." + k[len(prefix):]: v for k, v in state.items()
           if k.startswith(prefix) and torch.is_tensor(v)}
    return {k: v.contiguous() for k, v in out.items()}


def write_safetensors(state: dict, dest: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``state`` to ``dest`` atomically (a temporary file in the same folder, then a rename)."""
    from safetensors.torch import save_file

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp,
                  metadata={"format": "pt", "architecture": "LaMa", **(metadata or {})})
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


# ------------------------------------------------------------------------------------------ readers
def _read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # truncated, bad header
        raise ModelMissingError(f"cannot read {path} (truncated or not safetensors: "
                                f"{str(exc).splitlines()[0][:160]})") from None


def _weights_only(path: Path) -> dict | None:
    """``torch.load(weights_only=True)``; None when the file needs full unpickling."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return None
    except Exception as exc:  # truncated zip, bad magic number, ...
        raise ModelMissingError(f"cannot read {path} (truncated or not a checkpoint: "
                                f"{str(exc).splitlines()[0][:160]})") from None


def _torchscript(path: Path) -> dict:
    import torch

    try:
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except Exception as exc:  # noqa: BLE001
        raise ModelMissingError(f"cannot read the TorchScript archive {path}: "
                                f"{str(exc).strip().splitlines()[0][:160]}") from None


class _Missing:
    """Stands in for a pickled class that is not installed (e.g. OmegaConf in a Lightning checkpoint)."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.__dict__["state"] = state


class _TrustedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_Missing,), {"__module__": module})


_TRUSTED_PICKLE = types.SimpleNamespace(Unpickler=_TrustedUnpickler, __name__="pickle",
                                        load=lambda f, **kw: _TrustedUnpickler(f, **kw).load())


def _unpickle(path: Path) -> dict:
    """Full unpickling, for a trusted file only."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_TRUSTED_PICKLE)
    except Exception as exc:  # noqa: BLE001
        raise ModelMissingError(f"cannot read {path}: {str(exc).strip().splitlines()[0][:160]}") from None
