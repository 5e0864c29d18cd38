"""Inpainting stage: the ``Inpainter`` interface, the ``Inpaint`` step (crop-and-stitch around the
mask for every inpainter) and ``load_inpainter`` to get one by name or path."""
from __future__ import annotations

import functools
import sys
from typing import Protocol

import numpy as np

from ..composite import crop_region
from ..errors import InputError, ModelMissingError
from ..mask_ops import hard_mask
from ..pipeline import timed

CLASSICAL = ("hybrid", "patchmatch", "telea", "ns")
# best PSNR σ2 with detail as sharp as the surroundings in benchmarks/bench_foundation.py
DEFAULT_CLASSICAL = "hybrid"
DEFAULT_PADDING_MASK_CROP = 64


class Inpainter(Protocol):
    """Fills the hole of an image.

    ``__call__(image, mask)``: ``image`` is H×W×3 uint8 RGB, ``mask`` H×W uint8 with 255 = fill,
    0 = keep; returns H×W×3 uint8 RGB. Pixels outside the mask may change (the compositing stage
    restores them). Optional attributes: ``crop_aspect`` (width/height of the working resolution:
    the crop is grown to that aspect, like diffusers' ``get_crop_region``).
    """

    name: str

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """H×W×C uint8/uint16 (C = 1..4) → H×W×3 uint8 RGB for an inpainter."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    c = image.shape[2]
    rgb = image[..., :3] if c >= 3 else np.repeat(image[..., :1], 3, axis=2)
    return np.ascontiguousarray(rgb)


def from_rgb8(rgb: np.ndarray, like: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inpainter output (H×W×3 uint8) → the channels and dtype of ``like``. An alpha channel is
    filled in the hole with OpenCV Telea; 16-bit values are scaled by 257."""
    import cv2

    c = like.shape[2]
    if c < 3:
        color = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]
    else:
        color = rgb
    if like.dtype == np.uint16:
        color = color.astype(np.uint16) * 257
    if c in (2, 4):
        alpha = np.ascontiguousarray(like[..., -1])
        alpha = cv2.inpaint(alpha, mask, 3, cv2.INPAINT_TELEA) if alpha.dtype == np.uint8 else \
            np.where(mask > 0, alpha[mask == 0].mean() if (mask == 0).any() else alpha, alpha).astype(alpha.dtype)
        color = np.concatenate([color, alpha[..., None]], axis=2)
    return color.astype(like.dtype)


class Inpaint:
    """Pipeline step: crop around ``state.alpha > 0`` with ``padding_mask_crop`` px, inpaint the crop,
    store it in ``state.inpainted`` and its box in ``state.crop`` (stitched by ``Composite``).

    Args:
        inpainter: an Inpainter, or a name/path for :func:`load_inpainter`.
        padding_mask_crop: context in px around the mask's bounding box; None = whole image.
    """

    name = "inpaint"

    def __init__(self, inpainter: "Inpainter | str" = "auto", padding_mask_crop: int | None = DEFAULT_PADDING_MASK_CROP,
                 **load_options):
        if padding_mask_crop is not None and padding_mask_crop < 0:
            raise InputError(f"--padding-mask-crop must be >= 0, got {padding_mask_crop}")
        self._spec = inpainter
        self._load_options = load_options
        self.padding_mask_crop = padding_mask_crop

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
        region = crop_region(hard, self.padding_mask_crop, getattr(inpainter, "crop_aspect", None))
        x0, y0, x1, y1 = region
        crop, crop_mask = state.image[y0:y1, x0:x1], hard[y0:y1, x0:x1]
        filled = inpainter(to_rgb8(crop), crop_mask)
        state.inpainted = from_rgb8(filled, crop, crop_mask)
        state.crop = region
        state.metadata["inpainter"] = inpainter.name
        state.metadata.update(getattr(inpainter, "metadata", None) or {})  # diffusion: model, seed, steps, ...
        return state

    def __repr__(self) -> str:
        name = self._spec if isinstance(self._spec, str) else self._spec.name
        return f"Inpaint({name!r}, padding_mask_crop={self.padding_mask_crop})"


@functools.lru_cache(maxsize=4)
def _load_cached(spec: str, options: tuple) -> Inpainter:
    opts = dict(options)
    if spec in CLASSICAL:
        from .classical import ClassicalInpainter

        return ClassicalInpainter(spec)
    try:
        from .diffusion import load_diffusion_inpainter
    except ImportError as exc:
        raise ModelMissingError(f"inpainter {spec!r} needs the diffusion stage, which is not installed "
                                f"({exc}); classical ones: {', '.join(CLASSICAL)}") from None
    return load_diffusion_inpainter(spec, **opts)


def load_inpainter(spec: str = "auto", quiet: bool = False, **options) -> Inpainter:
    """Get an inpainter by name: ``auto`` (the classical default), ``hybrid``, ``patchmatch``, ``telea``, ``ns``,
    or a diffusion model alias / hub id / local path (see ``autoinpaint.inpaint.diffusion``).
    Loaded once per process and reused."""
    if spec in (None, "", "auto"):
        spec = DEFAULT_CLASSICAL
        if not quiet:
            print(f"autoinpaint: inpainter auto -> {spec} (classical, needs no weights)", file=sys.stderr)
    if spec not in CLASSICAL:
        options["quiet"] = quiet  # diffusion: progress bar and notices
    return _load_cached(spec, tuple(sorted(options.items())))
