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

A request with ``mode="remove"`` removes without inventing a new object: the hole is pre-filled by
another inpainter (the ``remove`` default of ``--inpainter auto``), then denoised at strength
:data:`REMOVE_STRENGTH` with :data:`REMOVE_PROMPT` / :data:`REMOVE_NEGATIVE_PROMPT` (each overridable).

Load-time values (model, device, dtype, offload, scheduler, working resolution) make the inpainter;
call-time values (prompt, seed, steps, ...) come in each :class:`~autoinpaint.inpaint.base.InpaintRequest`,
and what a call did comes back in its :class:`~autoinpaint.inpaint.base.InpaintResult`. Loading lives in
:mod:`.diffusion_loading`. torch and diffusers are imported lazily, so importing this module costs nothing.
"""
from __future__ import annotations

import inspect
import math
import re
import secrets
import threading
from typing import Any

import numpy as np

from ..errors import InputError
from ..log import notice
from ..models.device import resolve_device
from .base import BaseInpainter, Cancelled, InpaintRequest, InpaintResult
from .diffusion_loading import (ALIASES, DEFAULT_MODEL, SCHEDULERS, LoadedPipeline, _is_oom, _oom_error,
                                default_resolution, family, get_pipeline, resolve_dtype, resolve_source,
                                size_multiple, vae_scale)

__all__ = ["ALIASES", "DEFAULT_MODEL", "DiffusionInpainter", "load_diffusion_inpainter", "model_mask",
           "parse_resolution", "resolve_source", "working_size"]

DEFAULT_NEGATIVE_PROMPT = "bad anatomy, deformed, ugly, blurry, low quality, watermark, text"
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 7.5
DEFAULT_STRENGTH = 1.0
SDXL_MAX_STRENGTH = 0.99  # SDXL inpainting 0.1 returns noise-like fills at strength 1.0
# "remove": pre-fill with another inpainter, then only refine it.
REMOVE_PREFILL = "auto"  # the remove default of --inpainter auto (classical hybrid without weights)
REMOVE_STRENGTH = 0.6
REMOVE_PROMPT = "empty background, seamless continuation of the surrounding scene, natural texture, photo"
REMOVE_NEGATIVE_PROMPT = ("object, person, animal, face, text, watermark, logo, frame, new object, "
                          "bad anatomy, deformed, ugly, blurry")


# ----------------------------------------------------------------------------------------------- geometry
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
class DiffusionInpainter(BaseInpainter):
    """An :class:`~autoinpaint.inpaint.base.Inpainter` around a loaded diffusers inpainting pipeline.

    Args:
        pipe: e.g. ``AutoPipelineForInpainting.from_pretrained(...)`` (already on its device).
        model: display name (alias, id or path).
        resolution: working resolution (int or (w, h)); default: the model's native one.
        prefill: inpainter spec that pre-fills the hole for ``remove`` requests (``auto``: the remove
            default, ``hybrid``, ``telea``, ...).
        lock: serialises calls on ``pipe`` (shared by every inpainter on the same pipeline).
        device, dtype, offload, scheduler: what the loader chose, for reports.
        store: the :class:`~autoinpaint.models.store.ModelStore` the pre-fill inpainter loads into
            (None: the process default).
    """

    store = None  # the pre-fill's model store (set by __init__; None: the process default)

    def __init__(self, pipe, *, model: str = "custom", resolution=None, prefill: str = REMOVE_PREFILL,
                 lock=None, device: str | None = None, dtype: str | None = None, offload: str | None = None,
                 scheduler: str | None = None, loras: tuple[str, ...] = (), fast: bool = False,
                 default_steps: int = DEFAULT_STEPS, default_guidance: float = DEFAULT_GUIDANCE, store=None):
        self.pipe, self.model = pipe, model
        self.store = store
        self.family = family(pipe)
        self.prefill = prefill
        self.multiple = size_multiple(pipe)
        self.latent_cell = vae_scale(pipe)
        tw, th = parse_resolution(resolution) or (default_resolution(pipe),) * 2
        self.resolution = (max(self.multiple, tw // self.multiple * self.multiple),
                           max(self.multiple, th // self.multiple * self.multiple))
        self.crop_aspect = self.resolution[0] / self.resolution[1]
        self.device, self.dtype, self.offload, self.scheduler = device, dtype, offload, scheduler or "default"
        self.loras, self.fast = tuple(loras), bool(fast)
        self.default_steps, self.default_guidance = int(default_steps), float(default_guidance)
        self.name = f"diffusion:{model}" + (":fast" if self.fast else "")
        self._params = set(inspect.signature(pipe.__call__).parameters)
        self._lock = lock or threading.Lock()

    def generation(self, request: InpaintRequest) -> tuple[dict[str, Any], list[str]]:
        """The values a call runs with (the request's, else the mode's defaults), and notices."""
        remove = request.mode == "remove"
        notices = []
        strength = float(request.strength if request.strength is not None else
                         (REMOVE_STRENGTH if remove else DEFAULT_STRENGTH))
        if self.family == "sdxl" and strength > SDXL_MAX_STRENGTH:
            notices.append(f"SDXL inpainting: strength {strength:g} -> {SDXL_MAX_STRENGTH} "
                           "(1.0 gives noise-like fills with this model)")
            strength = SDXL_MAX_STRENGTH
        if "strength" not in self._params and strength < 1:
            notices.append(f"{type(self.pipe).__name__} has no strength parameter: --strength ignored")
        negative = request.negative_prompt
        if negative is None:
            negative = REMOVE_NEGATIVE_PROMPT if remove else DEFAULT_NEGATIVE_PROMPT
        values = {
            "prompt": request.prompt if request.prompt is not None else (REMOVE_PROMPT if remove else ""),
            "negative_prompt": negative,
            "steps": int(request.steps or self.default_steps),
            "guidance": float(self.default_guidance if request.guidance is None else request.guidance),
            "strength": strength,
            "seed": int(request.seed) if request.seed is not None else secrets.randbelow(2**31),
        }
        return values, notices

    def _prefill(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
        from ..models.registry import resolve_auto
        from . import load_inpainter

        spec = resolve_auto("inpainter", mode="remove")[0] if self.prefill in (None, "", "auto") else self.prefill
        filler = load_inpainter(spec, self.store)
        return filler.inpaint(image, mask, InpaintRequest()).image, filler.name

    def inpaint(self, image: np.ndarray, mask: np.ndarray,
                request: InpaintRequest | None = None) -> InpaintResult:
        """Repaint ``mask`` (H×W, >0 = fill) of ``image`` (H×W×3 uint8) at the working resolution."""
        import torch
        from PIL import Image

        request = request or InpaintRequest(mode="replace")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"diffusion inpainter expects H×W×3 uint8, got {image.shape} {image.dtype}")
        if mask.shape != image.shape[:2]:
            raise InputError(f"mask {mask.shape} does not match image {image.shape[:2]}")
        if not (mask > 0).any():
            raise InputError("the mask is empty: nothing to inpaint")
        values, notices = self.generation(request)
        h, w = image.shape[:2]
        meta: dict[str, Any] = {}
        if request.mode == "remove":
            image, meta["prefill"] = self._prefill(image, np.where(mask > 0, 255, 0).astype(np.uint8))
        size = working_size(w, h, self.resolution, self.multiple)
        work = _resize(image, size)
        work_mask = model_mask(mask, size, self.latent_cell)
        kwargs = {"prompt": values["prompt"], "image": Image.fromarray(work),
                  "mask_image": Image.fromarray(work_mask), "height": size[1], "width": size[0],
                  "num_inference_steps": values["steps"], "guidance_scale": values["guidance"],
                  "negative_prompt": values["negative_prompt"] or None, "strength": values["strength"],
                  "generator": torch.Generator("cpu").manual_seed(values["seed"]), "output_type": "np"}
        kwargs = {k: v for k, v in kwargs.items() if k in self._params}
        progress = request.progress
        if progress is not None and "callback_on_step_end" in self._params:
            def on_step(pipe, step, timestep, callback_kwargs):
                total = getattr(pipe, "_num_timesteps", None) or values["steps"]
                progress(step + 1, int(total))  # may raise Cancelled: stops the run
                return callback_kwargs

            kwargs["callback_on_step_end"] = on_step
        try:
            with self._lock, torch.inference_mode():
                self.pipe.set_progress_bar_config(disable=True)
                out = self.pipe(**kwargs)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001
            if _is_oom(exc):
                raise _oom_error(f"inpainting at {size[0]}x{size[1]}", self.resolution) from None
            raise
        images = out.images if hasattr(out, "images") else out[0]
        result = np.asarray(images[0])
        if result.dtype != np.uint8:
            result = np.clip(np.rint(np.nan_to_num(result.astype(np.float32)) * 255), 0, 255).astype(np.uint8)
        nsfw = getattr(out, "nsfw_content_detected", None)
        if nsfw and any(nsfw):
            notices.append("the model's safety checker blanked the result (NSFW detected); try another seed or prompt")
        if result.shape[:2] != (size[1], size[0]):  # a pipeline that ignored height/width
            result = _resize(result, size)
        for n in notices:
            notice(n)
        meta.update({"model": self.model, "pipeline": type(self.pipe).__name__, "device": self.device,
                     "dtype": self.dtype, "offload": self.offload, "scheduler": self.scheduler,
                     "seed": values["seed"], "steps": values["steps"], "guidance": values["guidance"],
                     "strength": values["strength"], "diffusion_mode": request.mode, "resolution": list(size)})
        if self.loras:
            meta["lora"] = list(self.loras)
        if self.fast:
            meta["fast"] = True
        if notices:
            meta["notices"] = notices
        return InpaintResult(np.ascontiguousarray(_resize(result, (w, h))), meta)

    def __repr__(self) -> str:
        return f"DiffusionInpainter({self.model!r}, resolution={self.resolution})"


def load_diffusion_inpainter(spec: str = DEFAULT_MODEL, *, device: str | None = "auto", dtype: str | None = "auto",
                             offload=None, scheduler: str | None = None, resolution=None,
                             prefill: str = REMOVE_PREFILL, config: str | None = None,
                             lora: tuple[str, ...] | None = None, fast: bool | None = None,
                             store=None) -> DiffusionInpainter:
    """Load the model ``spec`` on ``device`` (once per ``store``: the pipeline is kept in it,
    :func:`.diffusion_loading.get_pipeline`) and wrap it (a light wrapper, made per call).

    ``spec``: an alias (:data:`ALIASES`), a hub id (loaded from the local cache only; a missing one is
    :class:`~autoinpaint.errors.ModelMissingError` with the command that fetches it, unless
    ``$AUTOINPAINT_ALLOW_DOWNLOAD=1`` and not ``HF_HUB_OFFLINE``), a local diffusers folder, or a single
    ``.safetensors``/``.ckpt`` file (``from_single_file`` with ``config``, a local diffusers folder, or the
    matching config repo from the local cache; never a download). ``offload``: True forces model CPU
    offload, None/False/"auto" offloads on CUDA only when free VRAM is short.

    ``lora``: ``ID|PATH[:SCALE]`` specs (:mod:`.lora`), fused into the weights. ``fast``: add the published
    few-step LoRA of the model's family (LCM-LoRA for SD 1.5 and SDXL) before them, use its scheduler
    (``lcm``, unless ``scheduler`` says otherwise), and default to its steps (4) and guidance (1.0: no
    classifier-free guidance, one UNet pass per step). A LoRA that is not on this machine is
    ModelMissingError (exit 3) with the ``hf download`` command, raised before the model loads.
    """
    from .lora import FAST_GUIDANCE, FAST_SCHEDULER, FAST_STEPS, fast_lora, resolve_lora

    if scheduler and scheduler.lower() not in SCHEDULERS and scheduler.lower() != "default":
        raise InputError(f"unknown scheduler {scheduler!r}: default|{'|'.join(SCHEDULERS)}")
    parse_resolution(resolution)  # a bad value fails before the model loads
    source = resolve_source(spec)
    specs = tuple(lora or ())
    if fast:
        specs = (fast_lora(source),) + specs
        scheduler = scheduler or FAST_SCHEDULER
    loras = tuple(resolve_lora(s) for s in specs)
    dev = resolve_device(device)
    dtype_name = resolve_dtype(dtype, dev)
    loaded: LoadedPipeline = get_pipeline(source, dev, dtype_name, True if offload is True else "auto",
                                          scheduler, config, loras, store=store)
    defaults = {"default_steps": FAST_STEPS, "default_guidance": FAST_GUIDANCE} if fast else {}
    return DiffusionInpainter(loaded.pipe, model=spec, resolution=resolution, prefill=prefill, lock=loaded.lock,
                              device=dev, dtype=dtype_name, offload=loaded.offload, scheduler=scheduler,
                              loras=tuple(lo.name for lo in loras), fast=bool(fast), store=store, **defaults)
