"""Diffusion inpainting with ``diffusers.AutoPipelineForInpainting`` (SD 1.5, SD 2, SDXL, Kandinsky 2.2, ...).

How a call works (the :class:`~autoinpaint.inpaint.Inpaint` step has already cut a crop around the mask
with ``padding_mask_crop`` px of context, grown to this inpainter's ``crop_aspect``, exactly like
diffusers' ``get_crop_region``):

1. the crop is resized to the model's working resolution (512 px for SD 1.5/2, 1024 px for SDXL: the
   UNet's ``sample_size`` × the VAE scale factor; area-preserving for odd crops, multiples of 8);
2. the model sees a *hard* mask: every pixel with alpha > 0, resized, then dilated by one latent cell
   (the VAE scale factor, 8 px at model resolution) so thin masks survive the 8× latent downsampling;
3. the pipeline runs at that size with ``output_type="np"``; its output is resized back to the crop size;
4. the ``Composite`` step stitches it with the soft alpha: pixels with alpha 0 stay bit-identical.

We deliberately do **not** pass diffusers' own ``padding_mask_crop``: the project's crop-and-stitch
does the same job for every pipeline (also those without the argument, e.g. Kandinsky 2.2), works in
the input's own dtype (16-bit, alpha channel) and guarantees bit-exact pixels outside the mask, which
diffusers' ``apply_overlay`` (a PIL paste after a resize round trip) does not.

``mode="remove"`` removes without inventing a new object: the hole is pre-filled by a classical
inpainter (PatchMatch by default), then denoised at strength :data:`REMOVE_STRENGTH` with
:data:`REMOVE_PROMPT` / :data:`REMOVE_NEGATIVE_PROMPT` (each overridable).

Models are loaded once per process: pipelines are cached by (source, device, dtype, offload,
scheduler); a new scheduler reuses the loaded weights. Per-call parameters (prompt, seed, ...) are
cheap. torch and diffusers are imported lazily, so importing this module costs nothing.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..device import resolve_device
from ..errors import InputError, ModelMissingError, ModelRuntimeError

ALIASES = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "sd-1.5": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "sd2": "stabilityai/stable-diffusion-2-inpainting",
    "sdxl": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    "kandinsky22": "kandinsky-community/kandinsky-2-2-decoder-inpaint",
}
DEFAULT_MODEL = "sd15"
DEFAULT_NEGATIVE_PROMPT = "bad anatomy, deformed, ugly, blurry, low quality, watermark, text"
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 7.5
DEFAULT_STRENGTH = 1.0
SDXL_MAX_STRENGTH = 0.99  # SDXL inpainting 0.1 returns noise-like fills at strength 1.0
# "remove": pre-fill with a classical inpainter, then only refine it.
REMOVE_PREFILL = "hybrid"  # the classical remove default (benchmarks/bench_foundation.py)
REMOVE_STRENGTH = 0.6
REMOVE_PROMPT = "empty background, seamless continuation of the surrounding scene, natural texture, photo"
REMOVE_NEGATIVE_PROMPT = ("object, person, animal, face, text, watermark, logo, frame, new object, "
                          "bad anatomy, deformed, ugly, blurry")
MODES = ("replace", "fill", "remove")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")

# name -> (diffusers scheduler class, extra config)
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {}),
    "dpm++-karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
}
DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16", "half": "float16",
          "bf16": "bfloat16", "bfloat16": "bfloat16"}

_LOCK = threading.RLock()
_PIPELINES: dict[tuple, Any] = {}


def _notice(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"autoinpaint: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` is ``hub`` (repo id), ``folder`` (diffusers layout) or ``file``."""

    kind: str
    location: str
    name: str


def _fetch_hint(repo: str) -> str:
    return (f"fetch it once with `hf download {repo}` (older huggingface_hub: `huggingface-cli download {repo}`), "
            f"or set AUTOINPAINT_ALLOW_DOWNLOAD=1 to let this command download it, "
            f"or pass a local folder / .safetensors file with --model/--inpainter")


def resolve_source(spec: str) -> ModelSource:
    """Alias, hub id, local diffusers folder or single checkpoint file → :class:`ModelSource`."""
    if not spec or not isinstance(spec, str):
        raise InputError("no diffusion model given")
    name = ALIASES.get(spec.lower(), spec)
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelMissingError(f"{path} is not a diffusers pipeline folder (no model_index.json); "
                                    "use save_pretrained() output or a single .safetensors/.ckpt file")
        return ModelSource("folder", str(path.resolve()), spec)
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise InputError(f"{path}: not a checkpoint file ({', '.join(SINGLE_FILE_SUFFIXES)})")
        return ModelSource("file", str(path.resolve()), spec)
    looks_like_path = (name.lower().endswith(SINGLE_FILE_SUFFIXES) or name.startswith((".", "~", "/"))
                       or os.sep in name.replace("/", "") or name.count("/") > 1)
    if looks_like_path:
        raise ModelMissingError(f"model {spec!r}: no such file or folder")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return ModelSource("hub", name, spec)
    raise InputError(f"unknown inpainter/model {spec!r}: use auto|hybrid|patchmatch|telea|ns, an alias "
                     f"({', '.join(ALIASES)}), a hub id (owner/name) or a local folder/.safetensors file")


def _hub_cached(repo: str, filename: str = "model_index.json") -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo, filename), str)
    except Exception:  # noqa: BLE001 - malformed id or cache: treat as not cached
        return False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _has_fp16_variant(source: ModelSource) -> bool:
    if source.kind == "folder":
        return any(".fp16." in p.name for p in Path(source.location).rglob("*.fp16.*"))
    if source.kind == "hub":
        return any(_hub_cached(source.location, f"unet/diffusion_pytorch_model.fp16.{ext}")
                   for ext in ("safetensors", "bin"))
    return False


# ------------------------------------------------------------------------------------------ device policy
@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 instructions (AMX-BF16 or AVX512-BF16; Linux /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def resolve_dtype(dtype: str | None, device: str) -> str:
    """``auto`` → float16 on CUDA/MPS; on the CPU bfloat16 when it has bf16 instructions, else float32.

    Measured with the SD 1.5 UNet (``benchmarks/bench_diffusion.py --sizes "" --compare-dtypes``): one
    forward at 512 px, batch 2: Xeon with AMX, 16 threads: fp32 2.0 s, bf16 1.2 s; EPYC with
    AVX512-BF16, 2 threads, at 256 px: fp32 13.1 s, bf16 6.1–10.2 s. Returns the torch dtype's name."""
    dtype = (dtype or "auto").lower()
    if dtype == "auto":
        if device == "cpu":
            return "bfloat16" if cpu_has_native_bf16() else "float32"
        return "float16"
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}: auto|fp32|fp16|bf16")
    name = DTYPES[dtype]
    if name == "float16" and device == "cpu":
        raise InputError("fp16 is not supported on the CPU: use --dtype fp32 (default) or bf16")
    return name


def _param_bytes(pipe) -> int:
    import torch

    total = 0
    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in comp.parameters())
    return total


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _oom_error(where: str, resolution) -> ModelRuntimeError:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return ModelRuntimeError(f"out of GPU memory while {where}: retry with --offload (model CPU offload), a "
                             f"smaller --resolution (now {resolution}; e.g. 768 or 512), --dtype fp16, "
                             f"or --device cpu")


def _place(pipe, device: str, offload, working_pixels: int, quiet: bool) -> str:
    """Move ``pipe`` to ``device``; model CPU offload when asked, or on CUDA when free VRAM is short.
    Returns "on"/"off". Offload is never attempted without an accelerator (diffusers raises)."""
    import torch

    if device == "cpu":
        if offload is True:
            _notice("--offload ignored: model CPU offload needs a GPU", quiet)
        return "off"
    if offload in (None, False, "auto") and device.startswith("cuda"):
        need = _param_bytes(pipe) + int(1.5 * 2**30 * working_pixels / 512**2)  # weights + activations
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        offload = need > free
        if offload:
            _notice(f"free GPU memory {free / 2**30:.1f} GiB < ~{need / 2**30:.1f} GiB needed: "
                    "using model CPU offload", quiet)
    if offload is True:
        pipe.enable_model_cpu_offload(device=device)
        return "on"
    pipe.to(device)
    return "off"


# ---------------------------------------------------------------------------------------------- loading
def _make_scheduler(pipe, scheduler: str | None):
    if not scheduler or scheduler == "default":
        return None
    key = scheduler.lower()
    if key not in SCHEDULERS:
        raise InputError(f"unknown scheduler {scheduler!r}: default|{'|'.join(SCHEDULERS)}")
    import diffusers

    cls_name, extra = SCHEDULERS[key]
    return getattr(diffusers, cls_name).from_config(pipe.scheduler.config, **extra)


def _from_pretrained(source: ModelSource, torch_dtype, variant: str | None, local_only: bool):
    from diffusers import AutoPipelineForInpainting

    kwargs = {"dtype": torch_dtype, "local_files_only": local_only}
    if variant:
        kwargs["variant"] = variant
    return AutoPipelineForInpainting.from_pretrained(source.location, **kwargs)


def _single_file_class(path: str):
    """Pick the inpainting pipeline class for a single checkpoint file and the diffusers repo that
    holds its component configs."""
    import diffusers
    from diffusers.loaders.single_file_utils import (DIFFUSERS_DEFAULT_PIPELINE_PATHS, infer_diffusers_model_type,
                                                     load_single_file_checkpoint)

    checkpoint = load_single_file_checkpoint(path, local_files_only=True)
    model_type = infer_diffusers_model_type(checkpoint)
    del checkpoint
    if model_type.startswith("xl_"):
        cls = diffusers.StableDiffusionXLInpaintPipeline
    elif model_type in ("v1", "v2", "inpainting", "inpainting_v2"):
        cls = diffusers.StableDiffusionInpaintPipeline
    else:
        raise ModelMissingError(f"{path}: single-file checkpoints of type {model_type!r} are not supported; "
                                "convert it to a diffusers folder (save_pretrained) and pass the folder")
    config = DIFFUSERS_DEFAULT_PIPELINE_PATHS[model_type]["pretrained_model_name_or_path"]
    return cls, config, model_type


def _from_single_file(source: ModelSource, torch_dtype, config: str | None):
    """``from_single_file`` with a local config only: the config folder given, or the matching diffusers
    repo's configs from the local cache. Never downloads."""
    cls, default_config, model_type = _single_file_class(source.location)
    if config is None:
        if not _hub_cached(default_config):
            raise ModelMissingError(
                f"{source.location} ({model_type}) needs the diffusers configs of {default_config} (no weights): "
                f"`hf download {default_config} --include '*.json' '*.txt'`, or pass a local diffusers "
                f"folder of the same architecture as config")
        config = default_config
    return cls.from_single_file(source.location, config=config, dtype=torch_dtype, local_files_only=True)


class _quiet_loading:
    """Silence diffusers' / transformers' loading progress bars when ``quiet``."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __enter__(self):
        if self.quiet:
            from diffusers.utils import logging as dlog
            from transformers.utils import logging as tlog

            dlog.disable_progress_bar()
            tlog.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        if self.quiet:
            from diffusers.utils import logging as dlog
            from transformers.utils import logging as tlog

            dlog.enable_progress_bar()
            tlog.enable_progress_bar()
        return False


def _load(source: ModelSource, dtype_name: str, allow_download: bool, config: str | None, quiet: bool):
    import torch

    torch_dtype = getattr(torch, dtype_name)
    try:
        if source.kind == "file":
            return _from_single_file(source, torch_dtype, config)
        local_only = True
        if source.kind == "hub" and not _hub_cached(source.location):
            if _offline() or not allow_download:
                raise ModelMissingError(f"model {source.location} is not available offline: "
                                        + _fetch_hint(source.location))
            local_only = False
            _notice(f"downloading {source.location} (allowed by allow_download)", quiet)
        variant = "fp16" if dtype_name == "float16" and _has_fp16_variant(source) else None
        try:
            return _from_pretrained(source, torch_dtype, variant, local_only)
        except (OSError, ValueError):
            if variant is None:
                raise
            return _from_pretrained(source, torch_dtype, None, local_only)
    except ModelMissingError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = _fetch_hint(source.location) if source.kind == "hub" else "check the path"
        raise ModelMissingError(f"cannot load diffusion model {source.name!r}: {first}; {hint}") from None


def get_pipeline(source: ModelSource, device: str, dtype_name: str, offload="auto", scheduler: str | None = None,
                 allow_download: bool = False, config: str | None = None, quiet: bool = False):
    """The cached diffusers pipeline for (source, device, dtype, offload, scheduler); loads it once.
    Another scheduler for an already loaded model reuses its weights. Returns (pipe, offload_state)."""
    key = (source.kind, source.location, device, dtype_name, str(offload), (scheduler or "default").lower())
    with _LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        base = next((v for k, v in _PIPELINES.items() if k[:5] == key[:5]), None)
        if base is not None:
            base_pipe, offload_state = base
            components = dict(base_pipe.components)
            sched = _make_scheduler(base_pipe, scheduler)
            if sched is None:
                sched = type(base_pipe.scheduler).from_config(base_pipe.scheduler.config)
            components["scheduler"] = sched
            pipe = type(base_pipe)(**components)
        else:
            with _quiet_loading(quiet):
                pipe = _load(source, dtype_name, allow_download, config, quiet)
            sched = _make_scheduler(pipe, scheduler)
            if sched is not None:
                pipe.scheduler = sched
            try:
                offload_state = _place(pipe, device, offload, _default_resolution(pipe) ** 2, quiet)
            except Exception as exc:  # noqa: BLE001
                if _is_oom(exc):
                    raise _oom_error("loading the model", _default_resolution(pipe)) from None
                raise
        _PIPELINES[key] = (pipe, offload_state)
        return _PIPELINES[key]


def clear_cache() -> None:
    """Forget every loaded pipeline (frees their memory once no inpainter references them)."""
    with _LOCK:
        _PIPELINES.clear()


# ----------------------------------------------------------------------------------------------- geometry
def _family(pipe) -> str:
    name = type(pipe).__name__
    if "XL" in name:
        return "sdxl"
    if name.startswith("StableDiffusion") and "3" not in name:
        return "sd"
    return name


def _vae_scale(pipe) -> int:
    return int(getattr(pipe, "vae_scale_factor", None) or getattr(pipe, "movq_scale_factor", None) or 8)


def _size_multiple(pipe) -> int:
    name = type(pipe).__name__
    return 16 if name.startswith(("Flux", "QwenImage")) else 8


def _default_resolution(pipe) -> int:
    """The model's native side: the UNet/transformer ``sample_size`` × the VAE scale factor (512 for
    SD 1.5, 1024 for SDXL), falling back to 512 (1024 for SDXL-like pipelines)."""
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    if isinstance(sample, (list, tuple)):
        sample = sample[0]
    if isinstance(sample, int) and sample > 0:
        return sample * _vae_scale(pipe)
    return 1024 if _family(pipe) == "sdxl" else 512


def parse_resolution(resolution) -> tuple[int, int] | None:
    """``None`` | ``768`` | ``"768"`` | ``"1024x768"`` → (width, height) or None."""
    if resolution in (None, "", 0, "auto"):
        return None
    if isinstance(resolution, int):
        w = h = resolution
    else:
        m = re.fullmatch(r"\s*(\d+)\s*(?:[x×,]\s*(\d+))?\s*", str(resolution))
        if not m:
            raise InputError(f"--resolution: expected PX or WxH, got {resolution!r}")
        w = int(m.group(1))
        h = int(m.group(2) or m.group(1))
    if min(w, h) < 64 or max(w, h) > 4096:
        raise InputError(f"--resolution must be within 64..4096 px, got {resolution!r}")
    return w, h


def working_size(crop_w: int, crop_h: int, target: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """Size to run the model at for a crop: the target resolution when the crop has its aspect (the usual
    case, the crop was grown to it), else the crop's aspect at the target's area; multiples of ``multiple``."""
    tw, th = target
    if abs(crop_w * th - crop_h * tw) <= max(crop_w, crop_h) * max(tw, th) * 0.01:
        w, h = tw, th
    else:
        scale = math.sqrt(tw * th / (crop_w * crop_h))
        w, h = crop_w * scale, crop_h * scale
    return (max(multiple, int(round(w / multiple)) * multiple), max(multiple, int(round(h / multiple)) * multiple))


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    w, h = size
    if img.shape[1] == w and img.shape[0] == h:
        return img
    shrink = w * h < img.shape[0] * img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def model_mask(mask: np.ndarray, size: tuple[int, int], dilate: int) -> np.ndarray:
    """Hard crop mask (H×W, >0 = fill) → the mask the model sees at ``size``: every pixel touched by the
    mask after resizing, dilated by ``dilate`` px (one latent cell), uint8 {0, 255}."""
    import cv2

    m = (mask > 0).astype(np.uint8) * 255
    w, h = size
    if m.shape[1] != w or m.shape[0] != h:
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA)
    m = np.where(m > 0, 255, 0).astype(np.uint8)
    if dilate > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1)))
    return m


# ------------------------------------------------------------------------------------------------ inpainter
class DiffusionInpainter:
    """An :class:`~autoinpaint.inpaint.Inpainter` around a loaded diffusers inpainting pipeline.

    Args:
        pipe: e.g. ``AutoPipelineForInpainting.from_pretrained(...)`` (already on its device).
        model: display name (alias, id or path).
        mode: ``replace`` / ``fill`` (prompted) or ``remove`` (pre-fill + refine, see module doc).
        prompt, negative_prompt, steps, guidance, strength, seed: per-call generation parameters;
            ``None`` picks the documented default of the mode. ``seed=None`` draws a random seed that
            is reported in :attr:`metadata` (so any result can be reproduced).
        resolution: working resolution (int or (w, h)); default: the model's native one.
        prefill: classical inpainter for ``remove`` (``hybrid``, ``patchmatch``, ``telea``, ``ns``).
        quiet: no progress bar or notices on stderr.
    """

    def __init__(self, pipe, *, model: str = "custom", mode: str = "replace", prompt: str | None = None,
                 negative_prompt: str | None = None, steps: int | None = None, guidance: float | None = None,
                 strength: float | None = None, seed: int | None = None, resolution=None,
                 prefill: str = REMOVE_PREFILL, quiet: bool = False, device: str | None = None,
                 dtype: str | None = None, offload: str | None = None, scheduler: str | None = None):
        if mode not in MODES:
            raise InputError(f"unknown diffusion mode {mode!r}: {'|'.join(MODES)}")
        if steps is not None and steps < 1:
            raise InputError(f"--steps must be >= 1, got {steps}")
        if guidance is not None and guidance < 0:
            raise InputError(f"--guidance must be >= 0, got {guidance}")
        if strength is not None and not 0 < strength <= 1:
            raise InputError(f"--strength must be in (0, 1], got {strength}")
        if seed is not None and not 0 <= int(seed) < 2**64:
            raise InputError(f"--seed must be in 0..2**64-1, got {seed}")
        self.pipe, self.model, self.mode, self.quiet = pipe, model, mode, quiet
        self.family = _family(pipe)
        remove = mode == "remove"
        self.prompt = prompt if prompt is not None else (REMOVE_PROMPT if remove else "")
        if negative_prompt is None:
            negative_prompt = REMOVE_NEGATIVE_PROMPT if remove else DEFAULT_NEGATIVE_PROMPT
        self.negative_prompt = negative_prompt
        self.steps = int(steps or DEFAULT_STEPS)
        self.guidance = float(DEFAULT_GUIDANCE if guidance is None else guidance)
        self.requested_strength = float(strength if strength is not None else
                                         (REMOVE_STRENGTH if remove else DEFAULT_STRENGTH))
        self.strength = self.requested_strength
        self.notices: list[str] = []
        if self.family == "sdxl" and self.strength > SDXL_MAX_STRENGTH:
            self.strength = SDXL_MAX_STRENGTH
            self._say(f"SDXL inpainting: strength {self.requested_strength:g} -> {SDXL_MAX_STRENGTH} "
                      "(1.0 gives noise-like fills with this model)")
        self.seed = None if seed is None else int(seed)
        self.prefill = prefill if remove else None
        self.multiple = _size_multiple(pipe)
        self.latent_cell = _vae_scale(pipe)
        tw, th = parse_resolution(resolution) or (_default_resolution(pipe),) * 2
        self.resolution = (max(self.multiple, tw // self.multiple * self.multiple),
                           max(self.multiple, th // self.multiple * self.multiple))
        self.crop_aspect = self.resolution[0] / self.resolution[1]
        self.device, self.dtype, self.offload, self.scheduler = device, dtype, offload, scheduler or "default"
        self.name = f"diffusion:{model}"
        self._params = set(inspect.signature(pipe.__call__).parameters)
        self.last_seed: int | None = None
        self.last_size: tuple[int, int] | None = None

    def _say(self, msg: str) -> None:
        self.notices.append(msg)
        _notice(msg, self.quiet)

    @property
    def metadata(self) -> dict:
        """What ``--json`` reports about the last call."""
        meta = {"model": self.model, "pipeline": type(self.pipe).__name__, "device": self.device,
                "dtype": self.dtype, "offload": self.offload, "scheduler": self.scheduler,
                "seed": self.last_seed if self.last_seed is not None else self.seed, "steps": self.steps,
                "guidance": self.guidance, "strength": self.strength, "diffusion_mode": self.mode,
                "resolution": list(self.last_size or self.resolution)}
        if self.prefill:
            meta["prefill"] = self.prefill
        if self.notices:
            meta["notices"] = list(self.notices)
        return meta

    def _prefill(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from .classical import ClassicalInpainter

        return ClassicalInpainter(self.prefill)(image, mask)

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch
        from PIL import Image

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"diffusion inpainter expects H×W×3 uint8, got {image.shape} {image.dtype}")
        if mask.shape != image.shape[:2]:
            raise InputError(f"mask {mask.shape} does not match image {image.shape[:2]}")
        if not (mask > 0).any():
            raise InputError("the mask is empty: nothing to inpaint")
        h, w = image.shape[:2]
        if self.prefill:
            image = self._prefill(image, np.where(mask > 0, 255, 0).astype(np.uint8))
        size = working_size(w, h, self.resolution, self.multiple)
        work = _resize(image, size)
        work_mask = model_mask(mask, size, self.latent_cell)
        seed = self.seed if self.seed is not None else secrets.randbelow(2**31)
        self.last_seed, self.last_size = seed, size
        generator = torch.Generator("cpu").manual_seed(seed)
        kwargs = {"prompt": self.prompt, "image": Image.fromarray(work), "mask_image": Image.fromarray(work_mask),
                  "height": size[1], "width": size[0], "num_inference_steps": self.steps,
                  "guidance_scale": self.guidance, "negative_prompt": self.negative_prompt or None,
                  "strength": self.strength, "generator": generator, "output_type": "np"}
        if "strength" not in self._params and self.strength < 1:
            self._say(f"{type(self.pipe).__name__} has no strength parameter: --strength ignored")
        kwargs = {k: v for k, v in kwargs.items() if k in self._params}
        total = max(1, int(self.steps * self.strength)) if "strength" in self._params else self.steps
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="denoising", unit="step", leave=False, disable=self.quiet, file=sys.stderr)
        if "callback_on_step_end" in self._params:
            def on_step(pipe, step, timestep, callback_kwargs):
                if step == 0 and isinstance(getattr(pipe, "_num_timesteps", None), int):
                    bar.total = pipe._num_timesteps  # the scheduler's real count (strength, PNDM warm-up)
                    bar.refresh()
                bar.update(1)
                return callback_kwargs

            kwargs["callback_on_step_end"] = on_step
            self.pipe.set_progress_bar_config(disable=True)
        else:
            self.pipe.set_progress_bar_config(disable=self.quiet, leave=False)
        try:
            with torch.inference_mode():
                out = self.pipe(**kwargs)
        except Exception as exc:  # noqa: BLE001
            if _is_oom(exc):
                raise _oom_error(f"inpainting at {size[0]}x{size[1]}", self.resolution) from None
            raise
        finally:
            bar.close()
        images = out.images if hasattr(out, "images") else out[0]
        result = np.asarray(images[0])
        if result.dtype != np.uint8:
            result = np.clip(np.rint(np.nan_to_num(result.astype(np.float32)) * 255), 0, 255).astype(np.uint8)
        nsfw = getattr(out, "nsfw_content_detected", None)
        if nsfw and any(nsfw):
            self._say("the model's safety checker blanked the result (NSFW detected); try another seed or prompt")
        if result.shape[:2] != (size[1], size[0]):  # a pipeline that ignored height/width
            result = _resize(result, size)
        return np.ascontiguousarray(_resize(result, (w, h)))

    def __repr__(self) -> str:
        return (f"DiffusionInpainter({self.model!r}, mode={self.mode!r}, steps={self.steps}, "
                f"resolution={self.resolution})")


def load_diffusion_inpainter(spec: str = DEFAULT_MODEL, *, mode: str = "replace", prompt: str | None = None,
                             negative_prompt: str | None = None, steps: int | None = None,
                             guidance: float | None = None, strength: float | None = None, seed: int | None = None,
                             device: str | None = "auto", dtype: str | None = "auto", offload=None,
                             scheduler: str | None = None, resolution=None, prefill: str = REMOVE_PREFILL,
                             allow_download: bool | None = None, config: str | None = None, quiet: bool = False,
                             **ignored) -> DiffusionInpainter:
    """Load (once per process) the model ``spec`` and wrap it with per-call parameters.

    ``spec``: an alias (:data:`ALIASES`), a hub id (loaded from the local cache only; a missing one is
    :class:`~autoinpaint.errors.ModelMissingError` with the command that fetches it, unless
    ``allow_download`` (default: ``$AUTOINPAINT_ALLOW_DOWNLOAD=1``) and not ``HF_HUB_OFFLINE``), a local
    diffusers folder, or a single
    ``.safetensors``/``.ckpt`` file (``from_single_file`` with ``config``, a local diffusers folder, or the
    matching config repo from the local cache; never a download). ``offload``: True forces model CPU
    offload, None/False/"auto" offloads on CUDA only when free VRAM is short.
    """
    if allow_download is None:
        allow_download = os.environ.get("AUTOINPAINT_ALLOW_DOWNLOAD", "").strip().lower() in ("1", "true", "yes")
    if scheduler and scheduler.lower() not in SCHEDULERS and scheduler.lower() != "default":
        raise InputError(f"unknown scheduler {scheduler!r}: default|{'|'.join(SCHEDULERS)}")
    if mode not in MODES:
        raise InputError(f"unknown diffusion mode {mode!r}: {'|'.join(MODES)}")
    source = resolve_source(spec)
    dev = resolve_device(device)
    dtype_name = resolve_dtype(dtype, dev)
    offload_key = True if offload is True else "auto"
    pipe, offload_state = get_pipeline(source, dev, dtype_name, offload_key, scheduler, allow_download, config, quiet)
    return DiffusionInpainter(pipe, model=spec, mode=mode, prompt=prompt, negative_prompt=negative_prompt,
                              steps=steps, guidance=guidance, strength=strength, seed=seed, resolution=resolution,
                              prefill=prefill, quiet=quiet, device=dev, dtype=dtype_name, offload=offload_state,
                              scheduler=scheduler)
