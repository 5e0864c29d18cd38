"""Pixel conversions between the image as decoded (any of L, LA, RGB, RGBA; 8 or 16 bit) and the
H×W×3 uint8 RGB that models work on. Pure numpy (OpenCV for the alpha fill); no stage imports."""
from __future__ import annotations

import numpy as np


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """H×W×C uint8/uint16 (C = 1..4) → H×W×3 uint8 RGB for a model."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    c = image.shape[2]
    rgb = image[..., :3] if c >= 3 else np.repeat(image[..., :1], 3, axis=2)
    return np.ascontiguousarray(rgb)


def from_rgb8(rgb: np.ndarray, like: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A model's output (H×W×3 uint8) → the channels and dtype of ``like``. An alpha channel is
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
        if alpha.dtype == np.uint8:
            alpha = cv2.inpaint(alpha, mask, 3, cv2.INPAINT_TELEA)
        else:
            fill = alpha[mask == 0].mean() if (mask == 0).any() else alpha
            alpha = np.where(mask > 0, fill, alpha).astype(alpha.dtype)
        color = np.concatenate([color, alpha[..., None]], axis=2)
    return color.astype(like.dtype)
