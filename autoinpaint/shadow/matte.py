"""The shadow's matte (used by :mod:`.find`): its outline on the window's working copy, then the matte at
full resolution in its own box, the outline fitted again on the photo's pixels where the working copy
is smaller (:func:`.outline.refine_outline`)."""
from __future__ import annotations

import numpy as np

from ..imaging.pixels import grey, to_rgb8
from ..mask.refine import disk
from .darkening import MIN_PIXELS, weighted_darkening
from .edge import PlacedEdge
from .outline import (FINE, OFFSETS, PASSES, PENUMBRAS, LevelCost, across, fit_sigma, local_offsets, log_slopes,
                      nearest_values, normconv, reach_box, refine_outline, step)
from .umbra import COARSE_COPY, Umbra
from .window import Window

OUTLINE_SMOOTH = 0.5     # σ of the smoothing of the region's outline (its signed distance), a share of the
                         # search's coarse smoothing
MATTE_MIN = 0.04         # matte below this (a darkening of a few grey levels at most) is left alone
REFINE_SIZE = 384        # longest side (px) of the copy of the matte's box the outline is fitted again on
THIN_RING = 8            # a thin umbra's darkening is read again on that copy against a ring this many
                         # working px wide


def fit_outline(small: np.ndarray, valid: np.ndarray, near: np.ndarray, lit: np.ndarray, region: np.ndarray,
                darkening: float, coarse: float) -> tuple[np.ndarray, float, float]:
    """The shadow's outline on the working copy: the signed distance (H'×W' float32, working px, > 0
    outside) to the ``region``'s outline, its pieces' offsets fitted, and the offset and penumbra σ
    (working px) left to apply: ``step(signed − offset, σ)`` is the matte. ``small``: the working copy;
    ``valid``: the ground; ``near``: the object grown by 2 px; ``lit``: the lit ground's level;
    ``darkening``: the umbra's (mean over channels); ``coarse``: the search's smoothing σ."""
    import cv2

    # under the object next to the shadow: shadow too (the near band whose nearest ground is the region's,
    # not the band along the object's edge past the shadow's: that took ~40 px beside it at 12 MP)
    ring = near & cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    ring &= nearest_values(~near, region)
    inside = (region | ring).astype(np.uint8)
    signed = (cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
              - cv2.distanceTransform(inside, cv2.DIST_L2, 5)).astype(np.float32)  # working px, > 0 outside
    # the region's outline follows the texture's dark gaps at the coarse scale (wiggles a stone or a
    # brick wide) where a shadow's is smooth: smooth the signed distance (unless that takes most of a
    # thin region away); the pieces' offsets then follow the shadow's own shape
    smooth = cv2.GaussianBlur(signed, (0, 0), OUTLINE_SMOOTH * coarse)
    if (smooth <= 0).sum() >= 0.5 * inside.sum():
        signed, inside = smooth, (smooth <= 0).astype(np.uint8)
    fine = normconv(small, valid, FINE)
    raw = (1 - grey(fine / lit)) / darkening
    band = valid & (np.abs(signed) <= max(4.0, 2 * coarse))
    if band.sum() < 8:
        return signed, 0.0, 1.0
    d, r = signed[band], raw[band]
    thin = max(1, d.size // 4000)  # a global fit: a few thousand pixels of the band are plenty
    d, r = d[::thin], r[::thin]
    best, best_err = (0.0, 1.0), np.inf
    for offset in OFFSETS[::2]:  # whole px: the pieces refine it
        for sigma in PENUMBRAS:
            err = float(((step(d - offset, float(np.hypot(sigma, FINE))) - r) ** 2).mean())
            if err < best_err:
                best, best_err = (offset, sigma), err
    offset, sigma = best
    # the outline's offset, segment by segment along it: a shadow's outline is not the coarse one's; σ
    # again after each pass, on the level and the log-image's slope across the outline together
    slopes = log_slopes(fine)
    for _ in range(PASSES):
        signed = signed - local_offsets(inside, signed, band, LevelCost(raw, float(np.hypot(sigma, FINE))), offset)
        offset = 0.0
        sigma = fit_sigma(signed[band][::thin], raw[band][::thin], PENUMBRAS,
                          slope=across(slopes, signed)[band][::thin], darkening=darkening)
    return signed, offset, sigma


def full_matte(image: np.ndarray, not_ground: np.ndarray, win: Window, umbra: Umbra, signed: np.ndarray,
               offset: float, sigma: float, placed: PlacedEdge | None
               ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """The matte at full resolution, in its own box: the signed distance (the outline fitted again on the
    photo's pixels when the working copy is smaller: :func:`refined_outline`) through the step, cut where the
    shadow stops at a ``placed`` edge. Its box (x0, y0, x1, y1, full px), the matte (float32 in [0, 1],
    below ``MATTE_MIN`` set to 0) and the umbra's darkening (read again on the finer copy where the
    umbra is thin); None when nothing is left."""
    (wx0, wy0, wx1, wy1), s, darkening = win.box, win.scale, umbra.darkening
    rb = reach_box(signed, offset, sigma)
    fx0, fy0 = max(int(rb[0] / s) - 2, 0), max(int(rb[1] / s) - 2, 0)
    fx1, fy1 = min(int(np.ceil(rb[2] / s)) + 2, wx1 - wx0), min(int(np.ceil(rb[3] / s)) + 2, wy1 - wy0)
    keep = None if placed is None else placed.on_box((fx0, fy0, fx1, fy1))   # the shadow's side of the edge
    if s < 1:
        # a thin umbra's darkening is read again where it is more than a pixel or two wide (not where the
        # shadow stops at a building's shade: the ring beyond it is partly that shade's)
        dist, sigma, finer = refined_outline(image, not_ground, (wx0, wy0), (fx0, fy0, fx1, fy1), signed, umbra.lit,
                                             offset, sigma, float(darkening.mean()), s, s <= COARSE_COPY,
                                             None if keep is None else keep < 0.5,
                                             umbra.weights if umbra.thin and keep is None else None)
        if finer is not None:
            darkening = finer
    else:
        dist, sigma = signed[fy0:fy1, fx0:fx1] - offset, max(sigma, 0.35)
    matte = step(dist, sigma)
    if keep is not None:   # cut where the shadow stops
        matte *= keep
    matte[matte < MATTE_MIN] = 0
    if not matte.any():
        return None
    return (wx0 + fx0, wy0 + fy0, wx0 + fx1, wy0 + fy1), np.clip(matte, 0, 1).astype(np.float32), darkening


def refined_outline(image: np.ndarray, mask: np.ndarray, corner: tuple[int, int], box: tuple[int, int, int, int],
                    signed: np.ndarray, lit: np.ndarray, offset: float, sigma: float, darkening: float,
                    s: float, fit_penumbra: bool, other: np.ndarray | None = None, weights: np.ndarray | None = None
                    ) -> tuple[np.ndarray, float | np.ndarray, np.ndarray | None]:
    """The matte's signed distance (full px, over ``box``: the matte's box in the window whose top-left
    corner is ``corner``) and σ (full px), fitted again on a copy of the photo there of at most
    ``REFINE_SIZE`` px (the photo itself when it is smaller) on the ground (not ``mask``): ``signed``,
    ``lit``, ``offset`` and ``sigma`` are the working copy's (working px, downscaled by ``s``);
    ``fit_penumbra``: fit σ again too, widening away from the objects where that explains the photo
    better (σ then h×w float32, per pixel: :func:`.outline.fit_widening`); ``other``: (h×w bool over
    ``box``, full px) no ground of the shadow's either (beyond the edge it stops at). Third: with the
    statistics' ``weights`` (a thin umbra's), the umbra's darkening read on that copy against a ring
    ``THIN_RING`` working px wide beyond the penumbra (:func:`.darkening.weighted_darkening`); else None."""
    import cv2

    fx0, fy0, fx1, fy1 = box
    x0, y0, x1, y1 = corner[0] + fx0, corner[1] + fy0, corner[0] + fx1, corner[1] + fy1
    r = min(1.0, REFINE_SIZE / max(x1 - x0, y1 - y0))
    size = (max(1, round((x1 - x0) * r)), max(1, round((y1 - y0) * r)))
    xs = ((fx0 + (np.arange(size[0], dtype=np.float32) + 0.5) / r) * s - 0.5)[None, :].repeat(size[1], 0)
    ys = ((fy0 + (np.arange(size[1], dtype=np.float32) + 0.5) / r) * s - 0.5)[:, None].repeat(size[0], 1)
    dist = (cv2.remap(signed, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) - offset) * (r / s)
    lit = cv2.remap(lit, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def on_copy(region: np.ndarray) -> np.ndarray:   # h×w bool, full px → uint8 0/1 on the copy
        region = region.astype(np.uint8)
        return region if r == 1 else (cv2.resize(region * np.uint8(255), size, interpolation=cv2.INTER_AREA) > 2
                                      ).astype(np.uint8)

    crop, objects = to_rgb8(image[y0:y1, x0:x1]), mask[y0:y1, x0:x1]
    if r < 1:
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    obj = on_copy(objects if other is None else objects | other)
    ground = ~cv2.dilate(obj, disk(2)).astype(bool)
    # the distance from the objects, which the penumbra widens with
    near = obj if other is None else on_copy(objects)
    away = cv2.distanceTransform(1 - near, cv2.DIST_L2, 3) if fit_penumbra and near.any() else None
    dist, sigma = refine_outline(crop.astype(np.float32), ground, lit, dist, max(sigma, 0.35) * r / s, darkening,
                                 s / r, fit_penumbra, away)
    finer = None
    if weights is not None:
        edge = 3 * sigma + 2
        umbra = ground & (step(dist, sigma) >= 0.95)
        ring = ground & (dist > edge) & (dist <= edge + THIN_RING * r / s)
        if umbra.sum() >= MIN_PIXELS and ring.sum() >= MIN_PIXELS:
            ratio = crop / lit
            finer = weighted_darkening(ratio[umbra], ratio[ring], weights)
    if r < 1:
        dist = cv2.resize(dist, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        if not np.isscalar(sigma):
            sigma = cv2.resize(sigma, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return dist / r, sigma / r, finer
