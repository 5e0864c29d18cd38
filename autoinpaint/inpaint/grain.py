"""A plain backdrop's grain for a hole: what the backdrop's fitted surface leaves on the ring around the
hole (sensor noise, JPEG texture), cut into tiles and laid over the hole in random order.

Where the ring around a hole is a smooth backdrop and nothing more (:attr:`.membrane.Backdrop.plain`),
the hybrid inpainter takes this as its detail instead of PatchMatch's copied texture: on a product shot
PatchMatch spends seconds searching the crop to copy noise; this copies the same noise in milliseconds.
"""
from __future__ import annotations

import numpy as np

from .membrane import Backdrop

TILE = 16  # px: a tile of the ring's grain (the ring is 24 px wide, so whole tiles fit in it)
_OUTLIER = 4.0  # robust σ of the ring's grain beyond which a pixel keeps its tile out of the choice
_OUTLIER_FLOOR = 0.5  # grey levels: the least σ assumed (a noiseless ring has none to measure)


def backdrop_grain(image: np.ndarray, hole: np.ndarray, backdrop: Backdrop, seed: int = 0) -> np.ndarray | None:
    """H×W×C float32: the hole's bounding box covered with :data:`TILE`-px tiles of the ring's residual
    (``image`` minus ``backdrop``'s surface), each from a random place on the ring (``seed``: the same
    input gives the same grain), 0 elsewhere; None when no whole tile fits on the ring."""
    import cv2

    ry, rx = np.nonzero(backdrop.ring)
    y0, y1, x0, x1 = ry.min(), ry.max() + 1, rx.min(), rx.max() + 1
    values = image.reshape(image.shape[0], image.shape[1], -1)
    residual = values[y0:y1, x0:x1].astype(np.float32) - backdrop.surface(y0, y1, x0, x1)
    # tile origins (top-left) whose whole tile lies on the ring, clear of outliers: a fringe of the object
    # or a speck of dust left there would otherwise be copied into the hole, tile after tile
    ring = backdrop.ring[y0:y1, x0:x1]
    size = np.abs(residual).max(axis=2)
    spread = max(_OUTLIER_FLOOR, 1.4826 * float(np.median(np.abs(residual[ring]))))  # robust σ of the grain
    clean = ring & (size <= _OUTLIER * spread)
    ring = (clean if clean.sum() >= 4 * TILE * TILE else ring).astype(np.uint8)
    whole = cv2.erode(ring, np.ones((TILE, TILE), np.uint8), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT,
                      borderValue=0)
    oy, ox = np.nonzero(whole[:whole.shape[0] - TILE + 1, :whole.shape[1] - TILE + 1])
    if len(oy) == 0:
        return None
    ys, xs = np.nonzero(hole)
    hy0, hy1, hx0, hx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rows, cols = -(-(hy1 - hy0) // TILE), -(-(hx1 - hx0) // TILE)
    pick = np.random.default_rng(seed).integers(0, len(oy), rows * cols)
    steps = np.arange(TILE)
    tiles = residual[oy[pick][:, None, None] + steps[None, :, None], ox[pick][:, None, None] + steps[None, None, :]]
    tiles = tiles.reshape(rows, cols, TILE, TILE, -1).transpose(0, 2, 1, 3, 4).reshape(rows * TILE, cols * TILE, -1)
    grain = np.zeros(values.shape, np.float32)
    grain[hy0:hy1, hx0:hx1] = tiles[:hy1 - hy0, :hx1 - hx0]
    return grain
