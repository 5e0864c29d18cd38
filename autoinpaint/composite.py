"""Compositing stage: crop around the mask (``padding_mask_crop``), and stitch the inpainted crop
back into the full-resolution image with the feathered alpha.

Guarantee: every pixel whose alpha is 0 is copied from the input unchanged (bit-identical); only
pixels with alpha > 0 are blended, in the input's own dtype.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .mask.refine import bbox

Region = tuple[int, int, int, int]


def crop_region(mask: np.ndarray, padding: int | None, aspect: float | None = None) -> Region:
    """Half-open box (x0, y0, x1, y1) around the non-zero pixels of an H×W ``mask``.

    Like ``diffusers.image_processor.VaeImageProcessor.get_crop_region``: the bounding box grows by
    ``padding`` px on each side (clipped to the image), then, when ``aspect`` (width / height of the
    processing resolution) is given, the short side grows to match it, shifted back inside the
    image where it would cross a border. ``padding=None`` means the whole image.
    """
    h, w = mask.shape[:2]
    box = bbox(mask > 0)
    if box is None:
        raise InputError("the mask is empty: nothing to inpaint")
    if padding is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = box
    x0, y0, x1, y1 = max(x0 - padding, 0), max(y0 - padding, 0), min(x1 + padding, w), min(y1 + padding, h)
    if aspect:
        if (x1 - x0) / (y1 - y0) > aspect:
            y0, y1 = _grow(y0, y1, int((x1 - x0) / aspect - (y1 - y0)), h)
        else:
            x0, x1 = _grow(x0, x1, int((y1 - y0) * aspect - (x1 - x0)), w)
    return int(x0), int(y0), int(x1), int(y1)


def _grow(lo: int, hi: int, diff: int, limit: int) -> tuple[int, int]:
    lo -= diff // 2
    hi += diff - diff // 2
    if hi > limit:
        lo, hi = lo - (hi - limit), limit
    if lo < 0:
        lo, hi = 0, hi - lo
    return lo, min(hi, limit)


def blend(original: np.ndarray, inpainted: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``original·(1−alpha) + inpainted·alpha`` in the original dtype; exact copies where alpha is 0
    (and exact inpainted values where alpha is 1)."""
    import cv2

    info = np.iinfo(original.dtype)
    out = original.copy()
    painted = inpainted if inpainted.dtype == original.dtype else \
        np.clip(np.rint(inpainted.astype(np.float32)), info.min, info.max).astype(original.dtype)
    cv2.copyTo(painted, (alpha >= 1).view(np.uint8), out)   # alpha 1: the inpainted value, as the sum gives
    # the soft rim, computed only there; its pixels indexed once (a boolean mask is scanned whole at each use)
    where = np.nonzero((alpha > 0) & (alpha < 1))
    a = alpha[where][:, None].astype(np.float32)
    mixed = original[where].astype(np.float32) * (1 - a) + inpainted[where].astype(np.float32) * a
    out[where] = np.clip(np.rint(mixed), info.min, info.max).astype(original.dtype)
    return out


def stitch(image: np.ndarray, crop: np.ndarray, region: Region, alpha: np.ndarray) -> np.ndarray:
    """Paste ``crop`` (the inpainted ``region`` of ``image``) back with ``alpha`` (H×W, full size)."""
    x0, y0, x1, y1 = region
    if crop.shape != image[y0:y1, x0:x1].shape:
        raise ValueError(f"inpainted crop {crop.shape} does not match region {region} of {image.shape}")
    if np.any(alpha[:y0]) or np.any(alpha[y1:]) or np.any(alpha[:, :x0]) or np.any(alpha[:, x1:]):
        raise ValueError("alpha reaches outside the crop region")
    result = image.copy()
    result[y0:y1, x0:x1] = blend(image[y0:y1, x0:x1], crop, alpha[y0:y1, x0:x1])
    return result


class Composite:
    """Pipeline step: ``state.inpainted`` (crop) + ``state.alpha`` → ``state.result`` (full size)."""

    name = "composite"

    def __call__(self, state):
        state.result = stitch(state.image, state.inpainted, state.crop, state.alpha)
        return state

    def __repr__(self) -> str:
        return "Composite()"
