"""LoRA adapters for the diffusion inpainters (``--lora ID|PATH[:SCALE]``) and ``--fast`` (the published
few-step LoRA of the model's family with its scheduler, steps and guidance).

Where a LoRA comes from follows :mod:`autoinpaint.models.hub`: a hub id is read from the local Hugging Face cache
only (its ``pytorch_lora_weights.safetensors``, the name diffusers saves and the LCM-LoRA repos use; a
missing one is ModelMissingError, exit 3, naming the ``hf download`` command, unless
``AUTOINPAINT_ALLOW_DOWNLOAD=1``); a local ``.safetensors`` file or a folder holding one is used as it is.
Weights are safetensors only (read with ``safetensors``, never unpickled).

LoRAs are loaded with diffusers' ``load_lora_weights`` (the peft backend), weighted with
``set_adapters`` and fused into the weights (``fuse_lora`` then ``unload_lora_weights``), so a step costs
what it costs without them. A fused pipeline is another model: :mod:`.diffusion_loading` keys its cache
by the LoRAs too, and never shares weights between pipelines with different LoRAs.

Nothing here imports torch, diffusers or peft until a LoRA is applied.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ModelMissingError
from ..models import hub

LORA_FILE = "pytorch_lora_weights.safetensors"
# --fast: the published few-step LoRA per model family (Latent Consistency Models, LCM-LoRA), and the
# values it was distilled for: the LCM scheduler, 4 steps, guidance 1 (<= 1: diffusers turns classifier-free
# guidance off, so each step is one UNet pass instead of two)
FAST_LORAS = {"sd15": "latent-consistency/lcm-lora-sdv1-5", "sdxl": "latent-consistency/lcm-lora-sdxl"}
FAST_SCHEDULER = "lcm"
FAST_STEPS = 4
FAST_GUIDANCE = 1.0


@dataclass(frozen=True)
class Lora:
    """One resolved LoRA: ``path`` of its safetensors file, ``scale`` (its weight when fused), ``name``
    as the user gave it (for reports)."""

    path: str
    scale: float
    name: str


def parse_lora(spec: str) -> tuple[str, float]:
    """``ID|PATH[:SCALE]`` → (ID or PATH, scale); the scale defaults to 1.0."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("--lora needs ID, PATH or ID:SCALE")
    spec = spec.strip()
    head, sep, tail = spec.rpartition(":")
    if sep and head:
        try:
            scale = float(tail)
        except ValueError:
            return spec, 1.0
        if not math.isfinite(scale) or abs(scale) > 10:
            raise InputError(f"--lora {spec}: the scale must be a number within -10..10")
        return head, scale
    return spec, 1.0


def _looks_like_path(name: str) -> bool:
    return (name.startswith((".", "~", "/")) or name.count("/") != 1
            or name.lower().endswith(hub.SAFE_SUFFIXES + hub.PICKLE_SUFFIXES) or not hub.is_hub_id(name))


def is_local(spec: str) -> bool:
    """A path (existing, or written like one: ``./``, ``~``, ``/``, a weights suffix) rather than a hub id."""
    name, _ = parse_lora(spec)
    return _looks_like_path(name)


def _safetensors_in(folder: Path) -> Path:
    if (folder / LORA_FILE).is_file():
        return folder / LORA_FILE
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".safetensors")
    if len(found) == 1:
        return found[0]
    if not found:
        hub.require_safe_weights(folder, "LoRA")  # says "pickles" when that is what is there
    raise ModelMissingError(f"LoRA folder {folder} holds {len(found)} .safetensors files; pass the file itself")


def resolve_lora(spec: str) -> Lora:
    """``ID|PATH[:SCALE]`` → :class:`Lora` (a file on this machine). Raises ModelMissingError (exit 3) for a
    hub id that is not cached (with the ``hf download`` command), a path that does not exist, or
    weights that are not safetensors."""
    name, scale = parse_lora(spec)
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return Lora(str(_safetensors_in(path).resolve()), scale, spec)
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise ModelMissingError(f"refusing LoRA {path}: not a .safetensors file (pickled weights can run "
                                    "code when loaded); convert it to safetensors")
        return Lora(str(path.resolve()), scale, spec)
    if _looks_like_path(name):
        raise ModelMissingError(f"LoRA {name!r}: no such file or folder")
    cached = hub.cached_file(name, LORA_FILE)
    if cached is None:
        if not hub.download_allowed():
            raise hub.missing(name, "LoRA", "--lora")
        cached = _download(name)
    return Lora(cached, scale, spec)


def _download(repo: str) -> str:
    from huggingface_hub import hf_hub_download

    from ..log import notice

    notice(f"downloading {repo} (allowed by AUTOINPAINT_ALLOW_DOWNLOAD)")
    try:
        return hf_hub_download(repo, LORA_FILE)
    except Exception as exc:  # noqa: BLE001 - network, missing repo: one clear line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelMissingError(f"download of LoRA {repo} failed: {first}") from None


# --------------------------------------------------------------------------------------------- --fast
def model_family(source: hub.ModelSource) -> str:
    """``sd15``, ``sdxl`` or ``other`` for a diffusion model source, read from its configs (no weights):
    ``model_index.json``'s pipeline class, and the UNet's cross-attention width (1024 = SD 2.x)."""
    if source.kind == "file":
        from .single_file import single_file_class

        _, _, model_type = single_file_class(source.location)
        if model_type.startswith("xl_"):
            return "sdxl"
        return "sd15" if model_type in ("v1", "inpainting") else "other"
    folder = Path(source.location) if source.kind == "folder" else hub.snapshot_folder(source.location,
                                                                                         "model_index.json")
    try:
        index = json.loads((folder / "model_index.json").read_text())
        unet = json.loads((folder / "unet" / "config.json").read_text()) if (folder / "unet").is_dir() else {}
    except (OSError, TypeError, ValueError):
        return "other"
    cls = str(index.get("_class_name", ""))
    if "XL" in cls:
        return "sdxl"
    if cls.startswith("StableDiffusion") and "3" not in cls and unet.get("cross_attention_dim") != 1024:
        return "sd15"
    return "other"


def fast_lora(source: hub.ModelSource) -> str:
    """The hub id of the few-step LoRA for ``source``'s family; InputError when none is published."""
    fam = model_family(source)
    if fam not in FAST_LORAS:
        raise InputError(f"--fast: no published few-step LoRA for {source.name!r} (LCM-LoRA exists for SD 1.5 "
                         "and SDXL); use --lora ID|PATH with --scheduler lcm|tcd and --steps instead")
    return FAST_LORAS[fam]


# ---------------------------------------------------------------------------------------------- fusing
def apply_loras(pipe, loras: tuple[Lora, ...]) -> None:
    """Load ``loras`` into ``pipe`` (diffusers ``load_lora_weights``), weight them by their scales and
    fuse them into its weights. ModelMissingError when peft is missing or a LoRA does not fit the model."""
    if not loras:
        return
    if not hasattr(pipe, "load_lora_weights"):
        raise InputError(f"{type(pipe).__name__} does not take LoRAs")
    try:
        import peft  # noqa: F401 - diffusers' LoRA loading needs its peft backend
    except ImportError:
        raise ModelMissingError("--lora and --fast need the peft package: pip install peft") from None
    from diffusers.utils import logging as dlog
    from safetensors.torch import load_file

    verbosity = dlog.get_verbosity()
    dlog.set_verbosity_error()  # "no LoRA keys for the text encoder" and the like: not the user's concern
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # one adapter per LoRA
            _fuse(pipe, loras, load_file)
    finally:
        dlog.set_verbosity(verbosity)


def _fuse(pipe, loras: tuple[Lora, ...], load_file) -> None:
    """One adapter per LoRA, weighted, fused, adapters dropped. A failure leaves ``pipe`` half-changed: the
    caller drops it (a freshly loaded pipeline, never cached)."""
    names = []
    for i, lora in enumerate(loras):
        name = f"lora{i}"
        try:
            pipe.load_lora_weights(load_file(lora.path), adapter_name=name)
        except Exception as exc:  # noqa: BLE001 - a LoRA of another model, a corrupt file: one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelMissingError(f"LoRA {lora.name!r} does not fit this model: {first[:200]}") from None
        names.append(name)
    pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])
    pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
    pipe.unload_lora_weights()  # the fused weights stay; the adapter layers go
