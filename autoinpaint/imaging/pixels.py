"""Pixel conversions between the image as decoded (any of L, LA, RGB, RGBA; 8 or 16 bit) and the
H×W×3 uint8 RGB that models work on, a fast every-k-th-pixel copy, planes merged into channels, and
per-pixel measures over channels. NumPy (OpenCV, imported lazily, for the alpha fill, the pixel pick and
the merge); no stage imports."""
from __future__ import annotations

import numpy as np


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """H×W×C uint8/uint16 (C = 1..4) → H×W×3 uint8 RGB for a model."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    c = image.shape[2]
    rgb = image[..., :3] if c >= 3 else np.repeat(image[..., :1], 3, axis=2)
    return np.ascontiguousarray(rgb)


def every_kth(image: np.ndarray, y0: int, y1: int, x0: int, x1: int, k: int) -> np.ndarray:
    """``image[y0:y1:k, x0:x1:k]`` (H×W or H×W×C, C ≤ 4, not bool), contiguous. OpenCV's nearest-neighbour
    resize by the whole factor ``k`` picks the same pixels as the slice, about 10× faster than NumPy's
    strided copy of a 12 MP photo; the last row and column of blocks cut by the photo's edge are sliced."""
    import cv2

    if k == 1:
        return np.ascontiguousarray(image[y0:y1, x0:x1])
    h, w = image.shape[:2]
    ny, nx = -(-(y1 - y0) // k), -(-(x1 - x0) // k)
    fy, fx = min(ny, (h - y0) // k), min(nx, (w - x0) // k)   # the blocks whole inside the photo
    out = np.empty((ny, nx) + image.shape[2:], image.dtype)
    if fy and fx:
        part = cv2.resize(image[y0:y0 + fy * k, x0:x0 + fx * k], (fx, fy), interpolation=cv2.INTER_NEAREST)
        out[:fy, :fx] = part.reshape(out[:fy, :fx].shape)
    out[:, fx:] = image[y0:y1:k, x0 + fx * k:x1:k]
    out[fy:, :fx] = image[y0 + fy * k:y1:k, x0:x0 + fx * k:k]
    return out


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


def grey(values: np.ndarray) -> np.ndarray:
    """The mean over channels of ``values`` (H×W×C float): the same numbers as ``values.mean(axis=2)``,
    summed channel by channel (NumPy's strided reduction over a last axis of 3 is ~15× slower)."""
    total = values[..., 0]
    for c in range(1, values.shape[2]):
        total = total + values[..., c]
    return total / values.shape[2]


def merge(planes: list[np.ndarray]) -> np.ndarray:
    """H×W planes (one dtype OpenCV holds: uint8, float32, …) → H×W×C, contiguous: the channels side by
    side, as ``np.stack(planes, axis=2)``, and what a plane broadcasts to against H×W×C (``plane[..., None]``).
    OpenCV's channel merge: NumPy's arithmetic broadcast over a last axis of 3 is ~5× slower than on the
    merged planes."""
    import cv2

    if len(planes) == 1:
        return np.ascontiguousarray(planes[0])[..., None]
    return cv2.merge(list(planes))


def channel_spread(values: np.ndarray) -> np.ndarray:
    """``values.max(axis=2) − values.min(axis=2)`` (H×W×C → H×W), channel by channel (~25× faster)."""
    high, low = values[..., 0], values[..., 0]
    for c in range(1, values.shape[2]):
        high, low = np.maximum(high, values[..., c]), np.minimum(low, values[..., c])
    return high - low
