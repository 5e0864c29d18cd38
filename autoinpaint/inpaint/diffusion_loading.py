"""Loading diffusers inpainting pipelines: where a model comes from (:mod:`autoinpaint.models.hub` rules),
which dtype, which scheduler, where it runs (device placement, model CPU offload); each pipeline is kept
in the model store handed in (:mod:`autoinpaint.models.store`), so it loads once per store and dropping
it from the store frees its weights. :mod:`.diffusion` uses a loaded pipeline; nothing here runs it.

torch and diffusers are imported lazily, so importing this module costs nothing.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelMissingError, ModelRuntimeError
from ..log import logger, notice
from ..models import hub
from ..models.device import TORCH_DTYPES, resolve_precision
from ..models.hub import ModelSource
from ..models.registry import DIFFUSION_ALIASES as ALIASES
from .single_file import single_file_class

DEFAULT_MODEL = "sd15"
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
    "dpm++-sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "heun": ("HeunDiscreteScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    # few-step schedulers, for distilled models and LoRAs (--fast: lcm with LCM-LoRA)
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}
_LOCK = threading.RLock()  # one load at a time: a second scheduler must find the first's weights


@dataclass
class LoadedPipeline:
    """A pipeline on its device. ``lock`` serialises calls: a diffusers pipeline keeps per-call state
    (guidance scale, timesteps) on itself, so two concurrent calls on one pipeline would mix them."""

    pipe: Any
    offload: str
    lock: Any


# --------------------------------------------------------------------------------------------- sources
def resolve_source(spec: str) -> ModelSource:
    """Alias, hub id, local diffusers folder or single checkpoint file → :class:`~autoinpaint.models.hub.ModelSource`.

    A hub id must be in the local Hugging Face cache (or downloads allowed): otherwise
    ModelMissingError with the ``hf download`` command."""
    source = hub.resolve(spec, ALIASES, marker="model_index.json", what="diffusion model", flag="--model")
    if source.kind == "file" and not source.location.lower().endswith(SINGLE_FILE_SUFFIXES):
        raise InputError(f"{source.location}: not a checkpoint file ({', '.join(SINGLE_FILE_SUFFIXES)})")
    return source


def _has_fp16_variant(source: ModelSource) -> bool:
    if source.kind == "folder":
        return any(".fp16." in p.name for p in Path(source.location).rglob("*.fp16.*"))
    if source.kind == "hub":
        return any(hub.cached_file(source.location, f"unet/diffusion_pytorch_model.fp16.{ext}") is not None
                   for ext in ("safetensors", "bin"))
    return False



# ------------------------------------------------------------------------------------------ device policy
def resolve_dtype(dtype: str | None, device: str) -> str:
    """The torch dtype name for a diffusion model: ``auto`` → float16 on CUDA/MPS; on the CPU the
    project's one rule (:func:`autoinpaint.models.device.resolve_precision`: bfloat16 where measured faster,
    else float32). Measured with the SD 1.5 UNet (``benchmarks/bench_diffusion.py --compare-dtypes``):
    one forward at 512 px, batch 2: Xeon with AMX, 16 threads: fp32 2.0 s, bf16 1.2 s; EPYC, 2 threads,
    at 256 px: fp32 13.1 s, bf16 6.1–10.2 s."""
    return TORCH_DTYPES[resolve_precision(dtype, device, flag="--dtype")]


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


def _place(pipe, device: str, offload, working_pixels: int) -> str:
    """Move ``pipe`` to ``device``; model CPU offload when asked, or on CUDA when free VRAM is short.
    Returns "on"/"off". Offload is never attempted without an accelerator (diffusers raises)."""
    import torch

    if device == "cpu":
        if offload is True:
            notice("--offload ignored: model CPU offload needs a GPU")
        return "off"
    if offload in (None, False, "auto") and device.startswith("cuda"):
        need = _param_bytes(pipe) + int(1.5 * 2**30 * working_pixels / 512**2)  # weights + activations
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        offload = need > free
        if offload:
            notice(f"free GPU memory {free / 2**30:.1f} GiB < ~{need / 2**30:.1f} GiB needed: "
                   "using model CPU offload")
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


def _from_single_file(source: ModelSource, torch_dtype, config: str | None):
    """``from_single_file`` with a local config only: the config folder given, or the matching diffusers
    repo's configs from the local cache. Never downloads."""
    cls, default_config, model_type = single_file_class(source.location)
    if config is None:
        if not hub.is_cached(default_config, "model_index.json"):
            raise ModelMissingError(
                f"{source.location} ({model_type}) needs the diffusers configs of {default_config} (no weights): "
                f"`hf download {default_config} --include '*.json' '*.txt'`, or pass a local diffusers "
                f"folder of the same architecture as config")
        config = default_config
    return cls.from_single_file(source.location, config=config, dtype=torch_dtype, local_files_only=True)


class _quiet_loading:
    """Silence diffusers' / transformers' loading progress bars unless notices are shown."""

    def __enter__(self):
        import logging

        self.quiet = not logger.isEnabledFor(logging.INFO)
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


def _load(source: ModelSource, dtype_name: str, config: str | None):
    import torch

    torch_dtype = getattr(torch, dtype_name)
    try:
        if source.kind == "file":
            return _from_single_file(source, torch_dtype, config)
        local_only = source.local_files_only
        if not local_only:
            notice(f"downloading {source.location} (allowed by AUTOINPAINT_ALLOW_DOWNLOAD)")
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
        hint = hub.fetch_hint(source.location) if source.kind == "hub" else "check the path"
        raise ModelMissingError(f"cannot load diffusion model {source.name!r}: {first}; {hint}") from None


def get_pipeline(source: ModelSource, device: str, dtype_name: str, offload="auto", scheduler: str | None = None,
                 config: str | None = None, loras: tuple = (), store=None) -> LoadedPipeline:
    """The diffusers pipeline for (source, device, dtype, offload, LoRAs, scheduler), kept in ``store``
    (:class:`~autoinpaint.models.store.ModelStore`; the process default when None); loads it once.
    Another scheduler for an already loaded model reuses its weights (the store counts shared tensors
    once); other LoRAs never do (they are fused into the weights: a pipeline with one LoRA must never
    serve a request without it), so they load the model afresh. ``loras``:
    :class:`~autoinpaint.inpaint.lora.Lora` items, fused in order."""
    from ..models.store import resolve_store

    store = resolve_store(store)
    lora_key = tuple((lora.path, lora.scale) for lora in loras)
    base_key = ("inpainter", "diffusion", source.kind, source.location, device, dtype_name, str(offload), lora_key)
    key = (*base_key, (scheduler or "default").lower())

    def load() -> LoadedPipeline:
        base = store.find(lambda k: isinstance(k, tuple) and k[:len(base_key)] == base_key)
        if base is not None:
            base_pipe, offload_state = base.pipe, base.offload
            components = dict(base_pipe.components)
            sched = _make_scheduler(base_pipe, scheduler)
            if sched is None:
                sched = type(base_pipe.scheduler).from_config(base_pipe.scheduler.config)
            components["scheduler"] = sched
            return LoadedPipeline(type(base_pipe)(**components), offload_state, threading.Lock())
        with _quiet_loading():
            pipe = _load(source, dtype_name, config)
        if loras:
            from .lora import apply_loras

            apply_loras(pipe, tuple(loras))
        sched = _make_scheduler(pipe, scheduler)
        if sched is not None:
            pipe.scheduler = sched
        try:
            offload_state = _place(pipe, device, offload, default_resolution(pipe) ** 2)
        except Exception as exc:  # noqa: BLE001
            if _is_oom(exc):
                raise _oom_error("loading the model", default_resolution(pipe)) from None
            raise
        return LoadedPipeline(pipe, offload_state, threading.Lock())

    with _LOCK:
        return store.get(key, load)


# ----------------------------------------------------------------------------------------- model facts
def family(pipe) -> str:
    """``sdxl``, ``sd`` or the pipeline class name."""
    name = type(pipe).__name__
    if "XL" in name:
        return "sdxl"
    if name.startswith("StableDiffusion") and "3" not in name:
        return "sd"
    return name


def vae_scale(pipe) -> int:
    """Pixels per latent cell (8 for SD)."""
    return int(getattr(pipe, "vae_scale_factor", None) or getattr(pipe, "movq_scale_factor", None) or 8)


def size_multiple(pipe) -> int:
    """Working sizes must be multiples of this (16 for Flux-like transformers, else 8)."""
    name = type(pipe).__name__
    return 16 if name.startswith(("Flux", "QwenImage")) else 8


def default_resolution(pipe) -> int:
    """The model's native side: the UNet/transformer ``sample_size`` × the VAE scale factor (512 for
    SD 1.5, 1024 for SDXL), falling back to 512 (1024 for SDXL-like pipelines)."""
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    if isinstance(sample, (list, tuple)):
        sample = sample[0]
    if isinstance(sample, int) and sample > 0:
        return sample * vae_scale(pipe)
    return 1024 if family(pipe) == "sdxl" else 512
