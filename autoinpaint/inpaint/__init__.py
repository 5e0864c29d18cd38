"""Inpainting stage: the ``Inpainter`` interface (:mod:`.base`), the ``Inpaint`` step (crop-and-stitch
around the mask for every inpainter) and ``load_inpainter`` to get one by name or path."""
from __future__ import annotations

from ..composite import crop_region
from ..errors import InputError
from ..imaging.pixels import from_rgb8, to_rgb8
from ..mask.refine import hard_mask
from ..models.registry import DEFAULT_CLASSICAL
from ..models.registry import CLASSICAL_INPAINTERS as CLASSICAL
from ..pipeline import timed
from .base import (MODES, BaseInpainter, Cancelled, Inpainter, InpaintRequest, InpaintResult,
                   Progress)

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
        store: the :class:`~autoinpaint.models.store.ModelStore` the model loads into (None: the
            process default).
        load_options: passed to :func:`load_inpainter` (``device``, ``dtype``, ``resolution``, ...).
    """

    name = "inpaint"

    def __init__(self, inpainter: "Inpainter | str" = "auto", padding_mask_crop: int | None = DEFAULT_PADDING_MASK_CROP,
                 request: InpaintRequest | None = None, store=None, **load_options):
        if padding_mask_crop is not None and padding_mask_crop < 0:
            raise InputError(f"--padding-mask-crop must be >= 0, got {padding_mask_crop}")
        self._spec = inpainter
        self._store = store
        self._load_options = load_options
        self.padding_mask_crop = padding_mask_crop
        self.request = request or InpaintRequest()

    @property
    def inpainter(self) -> Inpainter:
        if isinstance(self._spec, str):
            self._spec = load_inpainter(self._spec, self._store, **self._load_options)
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


def load_inpainter(spec: str = "auto", store=None, **options) -> Inpainter:
    """Get an inpainter by name: ``auto`` (the best one present; the choice is logged), ``hybrid``,
    ``patchmatch``, ``telea``, ``ns``, ``lama`` or a LaMa weights file (:mod:`autoinpaint.inpaint.lama`),
    or a diffusion model alias / hub id / local path (see :mod:`autoinpaint.inpaint.diffusion`), or any
    spec another registered family claims.

    ``options`` are load-time values (``device``, ``dtype``, ``offload``, ``scheduler``,
    ``resolution``, ``lama_max_side``, ``trust_checkpoint``, ...). Loaded once per ``store``
    (:class:`~autoinpaint.models.store.ModelStore`; the process default when None) and reused."""
    from ..models.registry import load

    options.pop("quiet", None)  # older callers; notices go through logging now
    return load("inpainter", spec, store, **options)
