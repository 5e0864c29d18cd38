"""The lit ground's level around a cast shadow: a surface per channel fitted robustly to the texture-
smoothed photo over the unshadowed ground (:func:`lit_level`). A shadow is then the ratio of the photo to
this level: 1 where the ground is lit, below 1 where it is darker (:mod:`.find`).

The surface is a plane, or a quadratic where the ground departs from a plane (a lens's vignetting, a
lamp's falloff); where the window holds two grounds (:func:`.grounds.two_grounds`), one per ground.
"""
from __future__ import annotations

import numpy as np

from ..imaging.pixels import grey, merge
from .grounds import Grounds, sample_step

CURVED = 0.06            # the lit level is a quadratic surface where that departs from a plane by more than
                         # this share of it (vignetting 0.2: 0.095-0.15; evenly lit texture, the shadow left
                         # out of the fit: at most 0.045)
DARK_MIN = 0.2           # a pixel is darker than the lit ground (a shadow candidate; left out of the level's
                         # refit) when its brightness drops by at least this share


def lit_level(mean: np.ndarray, valid: np.ndarray, passes: int = 3,
              grounds: Grounds | None = None) -> np.ndarray:
    """The lit ground's level: a surface per channel fitted to ``mean`` (H×W×3, texture-smoothed) over
    ``valid`` pixels, refitted without the regions clearly darker than it (the shadow, dark clutter);
    ``passes=1``: one least-squares fit over ``valid``, nothing left out. The surface is a plane, or a
    quadratic where that departs from the plane by more than ``CURVED`` (:func:`_surface`). With
    ``grounds`` (:func:`.grounds.two_grounds`), one surface per ground, blended by its share per pixel."""
    import cv2

    sides = () if grounds is None else (valid & grounds.first, valid & grounds.second)
    if sides and min(int(side.sum()) for side in sides) >= 64:   # else too little of one ground is seen
        first, second = (lit_level(mean, side, passes) for side in sides)
        share = merge([grounds.share] * 3)
        return (share * first + (1 - share) * second).astype(np.float32)

    h, w = valid.shape
    u = np.arange(w, dtype=np.float32) / w - 0.5   # centred coordinates, a share of the side
    v = np.arange(h, dtype=np.float32) / h - 0.5
    step = sample_step(valid)
    sub = np.zeros_like(valid)
    sub[::step, ::step] = True
    keep, plane = valid, None
    for _ in range(passes):
        use = keep & sub
        if use.sum() < 12:
            break
        plane = _surface(u, v, mean, use)
        dark = (1 - grey(mean / plane)) >= DARK_MIN
        keep = valid & ~cv2.dilate(dark.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if plane is None:   # too little ground sampled for a surface: its median
        plane = np.broadcast_to(np.median(mean[valid & sub], axis=0), mean.shape)
    return plane.astype(np.float32)


def _terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """N×6: 1, u, v, u², uv, v² at N points."""
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


def _surface(u: np.ndarray, v: np.ndarray, mean: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Least squares of ``mean`` (H×W×3) over ``use`` in the coordinates ``u`` (W) and ``v`` (H): the
    plane, or the quadratic when that departs from the plane by more than ``CURVED`` over ``use`` (its
    99th percentile): a lens's vignetting, a lamp's falloff. H×W×3, at least 1."""
    ys, xs = np.nonzero(use)
    terms, values = _terms(u[xs], v[ys]), mean[ys, xs]
    coef = _least_squares(terms[:, :3], values)
    if len(values) >= 24:
        curved = _least_squares(terms, values)
        departure = np.abs(np.maximum(terms @ curved, 1) / np.maximum(terms[:, :3] @ coef, 1) - 1).mean(axis=1)
        if float(np.percentile(departure, 99)) > CURVED:
            coef = curved
    row = coef[0] + coef[1] * u[:, None]   # W×3: the terms in u alone, then in v alone (H×3)
    col = coef[2] * v[:, None]
    if len(coef) == 3:   # channel by channel (H×W planes, merged)
        return merge([np.maximum(row[None, :, c] + col[:, c, None], 1.0) for c in range(3)])
    row, col = row + coef[3] * (u * u)[:, None], col + coef[5] * (v * v)[:, None]
    uv = v[:, None] * u[None, :]
    return merge([np.maximum(row[None, :, c] + col[:, c, None] + coef[4, c] * uv, 1.0) for c in range(3)])


def _least_squares(terms: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The least-squares coefficients (T×C) of ``values`` (N×C) over ``terms`` (N×T), solved from the
    normal equations (T ≤ 6 smooth terms over a few thousand points: well conditioned; ~10× faster than
    ``np.linalg.lstsq`` over the points, whose LAPACK call a busy machine slows most)."""
    t, y = terms.astype(np.float64), values.astype(np.float64)
    return np.linalg.lstsq(t.T @ t, t.T @ y, rcond=None)[0].astype(np.float32)
