"""Light through the object (its handle, between its legs): lit holes in the shadow's region, and the
umbra's darkening read away from them (used by :mod:`.find`, on the window's working copy)."""
from __future__ import annotations

import numpy as np

from ..imaging.pixels import grey
from ..mask.refine import disk
from .evidence import chroma_spread
from .outline import normconv
from .region import CHROMA_MAX, touching

LIT_HOLE = 0.25          # a hole in the shadow is found where it is darker by under this share of the umbra's
                         # darkening, at half the coarse scale, ...
HOLE_SPOT = 0.4          # ... over a spot at least this many times the coarse σ in radius (a bright stone's
                         # or blade's spot in the umbra is smaller)


def lit_holes(small: np.ndarray, valid: np.ndarray, lit: np.ndarray, region: np.ndarray, ground: np.ndarray,
              darkening: float, coarse: float) -> np.ndarray:
    """Lit holes in the shadow ``region`` (H'×W' bool, its holes filled): light through the object (its
    handle, between its legs). At half the coarse scale, the parts of it half-way lit or more that hold
    a spot lit as ``LIT_HOLE`` says, brighter than the umbra's texture can be (the ``ground``'s
    brightest spots, its 99th percentile, darkened by ``darkening``), in the lit ground's chroma (a
    white or painted thing lying in the shadow is no hole) and at least ``HOLE_SPOT`` times the coarse
    σ in radius (nor is a bright stone in the umbra). What it cannot tell from a hole: a thing lying in
    the shadow as coloured as the ground and brighter than any of it around."""
    from ..mask.refine import remove_small_islands

    none = np.zeros_like(region)
    channels = normconv(small, valid, max(1.0, coarse / 2)) / lit
    ratio = grey(channels)
    spot = np.pi * (HOLE_SPOT * coarse) ** 2
    seeds = region & (ratio >= 1 - LIT_HOLE * darkening)
    if seeds.sum() < spot or ground.sum() < 64:   # most shadows: no lit spot that large at all
        return none
    seeds &= ratio >= float(np.percentile(ratio[ground], 99)) * (1 - darkening)
    seeds &= chroma_spread(channels, 1 - ratio, None) <= CHROMA_MAX   # the ground's own chroma, lit
    seeds = remove_small_islands(seeds, int(np.ceil(spot)))
    if not seeds.any():
        return none
    return touching(region & (ratio >= 1 - darkening / 2), seeds)


def around_holes(small: np.ndarray, valid: np.ndarray, lit: np.ndarray, region: np.ndarray, holes: np.ndarray,
                 coarse: float, darkening: np.ndarray) -> np.ndarray:
    """The umbra's darkening again once the lit ``holes`` are cut out of the shadow's ``region`` (H'×W' bool,
    working copy): at the coarse scale their light spreads over the shadow around them, which is thin there
    (a handle's shadow is a ring round its hole), so the umbra came out too light and the outline's fit
    too sharp (1200x900, holes 0.3 of the object's radius: 1-12 % too light, σ 0-0.5 working px for a
    true 0.5-1.2). Read at half the coarse scale, on the region over half that scale in from its outline
    and beyond the coarse smoothing's reach from the holes (the median of the ratio there: what is left is
    the umbra); ``darkening`` where fewer than 16 working px are left."""
    import cv2

    rest = region & ~cv2.dilate(holes.astype(np.uint8), disk(int(np.ceil(coarse)))).astype(bool)
    rest &= cv2.erode(region.astype(np.uint8), disk(int(np.ceil(coarse / 2)))).astype(bool)
    if rest.sum() < 16:
        return darkening
    ratio = normconv(small, valid, max(1.0, coarse / 2)) / lit
    return np.clip(np.median(1 - ratio[rest], axis=0), 0.02, 0.95).astype(np.float32)
