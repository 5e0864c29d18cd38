"""The umbra's darkening (used by :mod:`.find`, on the window's working copy): against the lit level
fitted again without the shadow, and once the outline is known, from the ground's brightness
statistics (:mod:`.darkening`) where the umbra holds many texture units, else by least squares under
the matte; and how much it changes away from the object (for the doubt signals)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging.pixels import grey, merge
from .darkening import fade, statistic_weights, weighted_darkening
from .edge import MeasuredGround
from .level import lit_level
from .outline import grown, normconv, reach_box, step
from .region import Darker
from .window import Window

COARSE_COPY = 0.5        # a working copy at most this share of the photo's size is too coarse for a sharp
                         # penumbra: its σ is fitted again on the finer copy, against a lit level that
                         # follows the ground around the shadow, ...
LOCAL = 0.25             # ... smoothed over this share of the object's size, and the umbra's darkening is
RING = 0.3               # read from the ground's statistics against the ground this far around the shadow
                         # (a share of the object's size), ...
RING_MIN = 90            # ... and at least this many of the photo's px: a few units of the texture (stones,
                         # clumps of grass); a narrower ring's ground differs from the umbra's more by chance
THIN_UMBRA = 8           # an umbra at most twice this many working px across is thin (a high sun's sliver):
                         # read a working pixel further in, and again on the outline's finer copy


def relevel(edge: MeasuredGround, dark: Darker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lit level again, over all the ground but the shadow (its penumbra and the coarse smoothing's
    reach too), and the umbra's darkening against it; with where that reach is (H'×W' bool). The search
    had to leave out every darker patch, which on coarse texture leaves the level too bright (under the
    shadow, on average: gravel +1.0 / +3.7 %, grass +1.1 / +2.4 % on the tuning / held-out scenes;
    refitted: +0.3 / +2.2, -0.1 / +1.6), so the darkening came out too strong and the outline too far out."""
    import cv2

    valid, region, mean = edge.valid, edge.region, edge.mean
    away = cv2.dilate(region.astype(np.uint8), dark.smear).astype(bool)
    if (valid & ~away).sum() < 64:
        return dark.lit, dark.darkening, away
    lit = lit_level(mean, valid & ~away, passes=1, grounds=edge.grounds)
    darker = 1 - grey(mean / lit)
    core = region & (darker >= np.percentile(darker[region], 50))
    return lit, np.clip(np.median(1 - (mean / lit)[core], axis=0), 0.02, 0.95).astype(np.float32), away


@dataclass
class Umbra:
    """The umbra's ``darkening`` (per channel) found by :func:`read_umbra`, the ``lit`` level the outline is
    refitted against (H'×W'×3), and where the ground's statistics gave it (:mod:`.darkening`; else None
    and 0): their ``weights``, the ``core`` they were read on (H'×W' bool: the matte's 0.95 line, a
    working pixel further in where the umbra is thin) and the umbra's ``thickness`` (working px, the
    widest disk in it)."""

    darkening: np.ndarray
    lit: np.ndarray = field(repr=False)
    weights: np.ndarray | None = None
    core: np.ndarray | None = field(default=None, repr=False)
    thickness: float = 0.0

    @property
    def thin(self) -> bool:
        """A sliver's umbra, read a working pixel further in (``THIN_UMBRA``)."""
        return self.core is not None and self.thickness <= THIN_UMBRA


def read_umbra(win: Window, valid: np.ndarray, mean: np.ndarray, lit: np.ndarray, away: np.ndarray,
               signed: np.ndarray, offset: float, sigma: float, darkening: np.ndarray, side: int) -> Umbra:
    """The umbra's darkening again, now that the outline is known (``signed``, ``offset``, ``sigma``:
    :func:`.matte.fit_outline`'s): on a working copy at most ``COARSE_COPY`` of the photo's size, from the
    ground's brightness statistics, and the lit level then follows the ground around the shadow; else by
    least squares under the matte (``darkening`` where too little of it is seen). ``valid``, ``mean``,
    ``lit``, ``away``: the ground, the coarse mean, the lit level and the shadow's reach (H'×W')."""
    import cv2

    small, s = win.small, win.scale
    work_matte = step(signed - offset, max(sigma, 0.35))
    estimate, weights, umbra, thickness = None, None, None, 0.0
    if s <= COARSE_COPY:
        # the object is large in the photo, the umbra holds many texture units: the statistics of the
        # ground's brightness that stray least between patches of lit ground tell its darkening
        # (:mod:`.darkening`; at 1200x900, rms error on gravel 2.6 / 2.0 → 1.8 / 1.2 %, grass 2.0 / 2.3
        # → 2.0 / 1.8 against the least squares below, two sets of 6 scenes) ...
        edge = offset + 3 * max(sigma, 0.35) + 2
        outside = valid & (signed > edge)
        # the umbra: inside the matte's 0.95 line, a working pixel further in where the umbra is thin (a
        # sliver of shadow: there the penumbra in the umbra's statistics made the darkening 3-5 % too light)
        umbra = valid & (work_matte >= 0.95)
        thickness = float(cv2.distanceTransform(umbra.astype(np.uint8), cv2.DIST_L2, 3).max())
        if thickness <= THIN_UMBRA:
            umbra &= step(signed - offset + 1, max(sigma, 0.35)) >= 0.95
        ratio, ring = small / lit, outside & (signed <= edge + max(RING * side, RING_MIN) * s)
        weights = statistic_weights(ratio, umbra, ring, outside)
        if weights is not None:
            estimate = weighted_darkening(ratio[umbra], ratio[ring], weights)
        # ... and the lit level under the shadow follows the ground around it (the plane's departure,
        # interpolated): the refit of the outline measures against it, in the matte's box (and the working
        # px its interpolation reads around it), smoothed there from the ground within the smoothing's reach
        local = LOCAL * side * s
        x0, y0, x1, y1 = grown(reach_box(signed, offset, sigma), 5, lit.shape)
        X0, Y0, X1, Y1 = grown((x0, y0, x1, y1), int(round(4 * local)) + 1, lit.shape)
        plane = normconv(grey(mean[Y0:Y1, X0:X1] / lit[Y0:Y1, X0:X1]), (valid & ~away)[Y0:Y1, X0:X1], local)
        lit = lit.copy()
        lit[y0:y1, x0:x1] *= merge([plane[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]] * 3)
    use = valid & (work_matte >= 0.5)
    if estimate is not None:
        darkening = estimate
    elif use.sum() >= 16:
        # least squares of image = lit · (1 − matte · darkening) over the shadow's half (texture averages out)
        m, l = work_matte[use][:, None], lit[use]
        refit = (m * l * (l - small[use])).sum(axis=0) / np.maximum((m * m * l * l).sum(axis=0), 1e-6)
        darkening = np.clip(refit, 0.02, 0.95).astype(np.float32)
    return Umbra(darkening, lit, weights, umbra, thickness)


def umbra_fade(win: Window, umbra: Umbra) -> float:
    """How much the umbra's darkening changes away from the object (:func:`.darkening.fade`), measured on the
    working copy's umbra where :func:`read_umbra` read its statistics (where the umbra holds many texture
    units), its texture smoothed over the umbra alone (the lit ground beyond the penumbra left out); 0
    elsewhere and for a sliver's (its umbra is mostly the penumbra's reach)."""
    import cv2

    from ..mask.refine import bbox

    if umbra.core is None or umbra.thin:   # (an empty core is thin)
        return 0.0
    away = cv2.distanceTransform((~win.obj).astype(np.uint8), cv2.DIST_L2, 3)
    # smoothed over the umbra's box and the smoothing's reach around it only (the same values there)
    x0, y0, x1, y1 = grown(bbox(umbra.core), int(round(2 * umbra.thickness)) + 1, umbra.core.shape)
    core = umbra.core[y0:y1, x0:x1]
    darker = 1 - grey(normconv(win.small[y0:y1, x0:x1], core, umbra.thickness / 2) / umbra.lit[y0:y1, x0:x1])
    return fade(darker[core], away[y0:y1, x0:x1][core])
