"""Edges of a kept object: a trimap from its mask, closed-form alpha matting in the band around the
edge (pymatting), and the object's own colours there with the old background taken out
(foreground colour estimation).

The trimap: pixels deeper than ``px`` inside the mask are the core (alpha 1, colours kept
bit-identical), pixels farther than ``px`` outside are background (alpha 0), the band between is
solved. The band is processed in overlapping tiles, so memory and time grow with the length of the
object's outline, not with the photo's pixel count (a 12 MP photo costs what its edge costs).
pymatting (and numba) are imported only when a band is solved.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..imaging.pixels import to_rgb8
from ..mask.refine import bbox

TILE = 256          # px: side of a tile's centre, whose alpha is kept
OVERLAP = 24        # px: context around a tile's centre that the solver also sees
# alpha below SNAP_LOW is 0 (exactly the background), above SNAP_HIGH 1: on a camera's photo (sensor
# noise, JPEG) the solver leaves a haze of 1-10 % alpha on the backdrop (benchmarks/bench_background.py)
SNAP_LOW = 0.10
SNAP_HIGH = 0.95
EPSILON = 1e-6      # closed-form matting's regularisation (pymatting's laplacian epsilon)


def make_trimap(mask: np.ndarray, px: int) -> np.ndarray:
    """H×W bool object mask → H×W float64 trimap: 1 core (deeper than ``px`` inside), 0 background
    (farther than ``px`` outside), 0.5 the unknown band. ``px`` = 0: the mask itself (a hard edge)."""
    import cv2

    if px <= 0:
        return mask.astype(np.float64)
    m = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if not (inside > px).any():  # an object thinner than the band (a pen, a strap): narrow the band
        px = int(inside.max()) - 1
        if px <= 0:
            return mask.astype(np.float64)
    trimap = np.full(mask.shape, 0.5)
    trimap[inside > px] = 1.0
    trimap[outside > px] = 0.0
    return trimap


def _tiles(unknown: np.ndarray):
    """Centre boxes (x0, y0, x1, y1) of the tiles that hold unknown pixels."""
    box = bbox(unknown)
    if box is None:
        return
    x0, y0, x1, y1 = box
    for ty in range(y0, y1, TILE):
        for tx in range(x0, x1, TILE):
            cx1, cy1 = min(tx + TILE, x1), min(ty + TILE, y1)
            if unknown[ty:cy1, tx:cx1].any():
                yield tx, ty, cx1, cy1


def _window(box, shape):
    h, w = shape
    x0, y0, x1, y1 = box
    return max(x0 - OVERLAP, 0), max(y0 - OVERLAP, 0), min(x1 + OVERLAP, w), min(y1 + OVERLAP, h)


def estimate_matte(rgb: np.ndarray, trimap: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """H×W×3 uint8 + trimap → alpha H×W float32 in [0, 1], exactly 0/1 on the known pixels and
    snapped to 0/1 (:func:`snap`). Closed-form matting, tile by tile over the band; a tile that sees
    no core or no background (a thin part far from the object's body) keeps ``mask`` (H×W bool)."""
    from pymatting.alpha.estimate_alpha_cf import estimate_alpha_cf

    alpha = (trimap == 1).astype(np.float32)
    unknown = (trimap != 0) & (trimap != 1)
    for tile in _tiles(unknown):
        wx0, wy0, wx1, wy1 = _window(tile, trimap.shape)
        tri = trimap[wy0:wy1, wx0:wx1]
        if not ((tri == 1).any() and (tri == 0).any()):
            # a band with no core or no background in sight: nothing to learn colours from
            hard = mask[wy0:wy1, wx0:wx1].astype(np.float64) if mask is not None else np.full(tri.shape, 0.5)
            solved = np.where(tri == 0.5, hard, tri)
        else:
            solved = estimate_alpha_cf(rgb[wy0:wy1, wx0:wx1].astype(np.float64) / 255, tri,
                                       laplacian_kwargs={"epsilon": EPSILON}, cg_kwargs={"maxiter": 2000})
        x0, y0, x1, y1 = tile
        part = solved[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
        band = unknown[y0:y1, x0:x1]
        alpha[y0:y1, x0:x1][band] = part[band]
    return drop_specks(snap(alpha), trimap == 1)


def drop_specks(alpha: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Zero the islands of alpha > 0 that do not touch the object's ``core`` (noise the solver turned
    into a few opaque pixels on the backdrop); fur and strands attached to the object stay."""
    import cv2

    if not core.any():
        return alpha
    n, labels = cv2.connectedComponents((alpha > 0).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    alpha[~keep[labels]] = 0
    return alpha


def snap(alpha: np.ndarray) -> np.ndarray:
    """Alpha under ``SNAP_LOW`` → 0, over ``SNAP_HIGH`` → 1 (in place; returned)."""
    alpha[alpha < SNAP_LOW] = 0
    alpha[alpha > SNAP_HIGH] = 1
    return alpha


def estimate_colours(image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """The object's colours with the old background taken out, like ``image`` (H×W×C, its dtype):
    bit-identical where alpha is 1 in the trimap (the core) and where alpha is 0; in the band, the
    foreground pixels pymatting's multilevel estimator finds (colour channels only)."""
    from pymatting.foreground.estimate_foreground_ml import estimate_foreground_ml

    out = image.copy()
    band = (alpha > 0) & (trimap != 1)
    if not band.any():
        return out
    top = float(np.iinfo(image.dtype).max)
    colour = image[..., :3] if image.shape[2] >= 3 else image[..., :1]
    for tile in _tiles(band):
        wx0, wy0, wx1, wy1 = _window(tile, alpha.shape)
        patch = colour[wy0:wy1, wx0:wx1].astype(np.float64) / top
        grey = patch.shape[2] == 1
        if grey:
            patch = np.repeat(patch, 3, axis=2)
        fg = estimate_foreground_ml(patch, alpha[wy0:wy1, wx0:wx1].astype(np.float64))
        if grey:
            fg = fg[..., :1]
        x0, y0, x1, y1 = tile
        part = np.clip(np.rint(fg[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] * top), 0, top).astype(image.dtype)
        sel = band[y0:y1, x0:x1]
        out[y0:y1, x0:x1, :colour.shape[2]][sel] = part[sel]
    return out


class Matte:
    """Pipeline step: ``state.mask`` (the kept object) → ``state.alpha`` (its opacity, H×W float32:
    1 core, 0 background, matted in a ``px`` band around the edge) and ``state.foreground`` (like
    ``state.image``: the object's colours, old background taken out in the band). ``px`` = 0: a hard
    edge (alpha = the mask)."""

    name = "matte"

    def __init__(self, px: int = 8):
        if px < 0:
            raise InputError(f"--matte must be >= 0 px, got {px}")
        self.px = int(px)

    def __call__(self, state):
        mask = state.mask
        if mask is None or not mask.any():
            raise InputError("the selection yields an empty mask: nothing to keep")
        if self.px == 0:
            alpha = mask.astype(np.float32)
            state.foreground = state.image
        else:
            # work in a window around the object (all of it is local): a small product in a 12 MP
            # photo costs what its outline costs
            h, w = mask.shape
            x0, y0, x1, y1 = bbox(mask)
            m = self.px + OVERLAP + 2
            x0, y0, x1, y1 = max(x0 - m, 0), max(y0 - m, 0), min(x1 + m, w), min(y1 + m, h)
            part, image = mask[y0:y1, x0:x1], state.image[y0:y1, x0:x1]
            trimap = make_trimap(part, self.px)
            alpha = np.zeros((h, w), np.float32)
            alpha[y0:y1, x0:x1] = estimate_matte(to_rgb8(image), trimap, part)
            state.foreground = state.image.copy()
            state.foreground[y0:y1, x0:x1] = estimate_colours(image, alpha[y0:y1, x0:x1], trimap)
        if state.image.shape[2] in (2, 4):  # the input's own transparency stays transparent
            alpha = alpha * (state.image[..., -1].astype(np.float32) / np.iinfo(state.image.dtype).max)
        state.alpha = alpha.astype(np.float32)
        state.metadata["matte_px"] = self.px
        return state

    def __repr__(self) -> str:
        return f"Matte(px={self.px})"
