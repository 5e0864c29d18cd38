"""Inpainting stage: the ``Inpainter`` interface (:mod:`.base`), the ``Inpaint`` step (crop-and-stitch
around the mask for every inpainter) and ``load_inpainter`` to get one by name or path."""
from __future__ import annotations

from ..composite import crop_region
from ..errors import InputError
from ..log import notice
from ..mask_ops import hard_mask
from ..pipeline import timed
from ..pixels import from_rgb8, to_rgb8
from ..registry import CLASSICAL_INPAINTERS as CLASSICAL
from .base import (MODES, BaseInpainter, Cancelled, Inpainter, InpaintRequest, InpaintResult,
                   Progress)

# best PSNR σ2 with detail as sharp as the surroundings in benchmarks/bench_foundation.py
DEFAULT_CLASSICAL = "hybrid"
DEFAULT_PADDING_MASK_CROP = 64

__all__ = ["CLASSICAL", "DEFAULT_CLASSICAL", "DEFAULT_PADDING_MASK_CROP", "MODES", "BaseInpainter", "Cancelled",
           "Inpaint", "Inpainter", "InpaintRequest", "InpaintResult", "Progress", "from_rgb8",
           "load_inpainter", "to_rgb8"]


class Inpaint:
    """Pipeline step: crop around ``state.alpha > 0`` with ``padding_mask_crop`` px, inpaint the crop,
    store it in ``state.inpainted`` and its box in ``state.crop`` (stitched by ``Composite``).

    Args:
        inpainter: an Inpainter, or a name/path for :func:`load_inpainter`.
        padding_mask_crop: context in px around the mask's bounding box; None = whole image.
        request: call-time values (mode, prompt, seed, progress callback, ...).
        load_options: passed to :func:`load_inpainter` (``device``, ``dtype``, ``resolution``, ...).
    """

    name = "inpaint"

    def __init__(self, inpainter: "Inpainter | str" = "auto", padding_mask_crop: int | None = DEFAULT_PADDING_MASK_CROP,
                 request: InpaintRequest | None = None, **load_options):
        if padding_mask_crop is not None and padding_mask_crop < 0:
            raise InputError(f"--padding-mask-crop must be >= 0, got {padding_mask_crop}")
        self._spec = inpainter
        self._load_options = load_options
        self.padding_mask_crop = padding_mask_crop
        self.request = request or InpaintRequest()

    @property
    def inpainter(self) -> Inpainter:
        if isinstance(self._spec, str):
            self._spec = load_inpainter(self._spec, **self._load_options)
        return self._spec

    def __call__(self, state):
        hard = hard_mask(state.alpha)
        if not hard.any():
            raise InputError("the mask is empty: nothing to inpaint")
        inpainter = timed(state, "load", lambda: self.inpainter)
        region = crop_region(hard, self.padding_mask_crop, inpainter.crop_aspect)
        x0, y0, x1, y1 = region
        crop, crop_mask = state.image[y0:y1, x0:x1], hard[y0:y1, x0:x1]
        result = inpainter.inpaint(to_rgb8(crop), crop_mask, self.request)
        state.inpainted = from_rgb8(result.image, crop, crop_mask)
        state.crop = region
        state.metadata["inpainter"] = inpainter.name
        state.metadata.update(result.metadata)  # diffusion: model, seed, steps, ...
        return state

    def __repr__(self) -> str:
        name = self._spec if isinstance(self._spec, str) else self._spec.name
        return f"Inpaint({name!r}, padding_mask_crop={self.padding_mask_crop}, mode={self.request.mode!r})"


AUTO_REMOVE_FAMILIES = ("lama",)  # learned removal models ``auto`` may choose for ``remove``, best first


def resolve_auto(mode: str = "remove") -> tuple[str, str]:
    """(spec, why) that ``auto`` stands for: for ``remove`` the first present model of
    :func:`autoinpaint.registry.known` (``inpainter``) in :data:`AUTO_REMOVE_FAMILIES` (LaMa when its
    weights are in the checkpoint folders), else the classical default (no weights needed)."""
    from ..registry import known

    if mode == "remove":
        for model in known("inpainter"):
            where = model.family in AUTO_REMOVE_FAMILIES and model.location()
            if where:
                return model.name, f"{model.name} ({model.description}; {where})"
    return DEFAULT_CLASSICAL, (f"{DEFAULT_CLASSICAL} (classical, needs no weights; for learned removal get "
                               "LaMa with: autoinpaint models download lama)")


def load_inpainter(spec: str = "auto", **options) -> Inpainter:
    """Get an inpainter by name: ``auto`` (the best one present; the choice is logged), ``hybrid``,
    ``patchmatch``, ``telea``, ``ns``, ``lama`` or a LaMa weights file (:mod:`autoinpaint.inpaint.lama`),
    or a diffusion model alias / hub id / local path (see :mod:`autoinpaint.inpaint.diffusion`), or any
    spec another registered family claims.

    ``options`` are load-time values (``device``, ``dtype``, ``offload``, ``scheduler``,
    ``resolution``, ``lama_max_side``, ``trust_checkpoint``, ...). Loaded once per process and reused."""
    from ..registry import load

    options.pop("quiet", None)  # older callers; notices go through logging now
    if spec in (None, "", "auto"):
        spec, why = resolve_auto()
        notice(f"inpainter auto -> {why}")
    return load("inpainter", spec, **options)
