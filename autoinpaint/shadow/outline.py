"""The shadow's outline and penumbra: a soft step across a signed distance, its offset fitted piece by
piece along the outline (one smooth path, Viterbi) and its width (σ) globally.

:func:`~.find.find_shadow` fits them on its working copy against the measured darkening
(:class:`LevelCost`); when that copy is smaller than the photo, :func:`refine_outline` fits them
again on the matte's own box at the photo's resolution (or a copy of it of at most 384 px), against the
slope of the log-image across the outline (:class:`SlopeCost`): a shadow's penumbra is a few pixels
wide at any photo size, which a copy of the whole window cannot place. There σ may also widen with the
distance from the object (:func:`fit_widening`), as a real shadow's penumbra does. After the pieces'
offsets, on either copy, σ is fitted on the measured darkening and the slope together (:func:`fit_sigma`).
"""
from __future__ import annotations

import numpy as np

from ..imaging.pixels import grey, merge

BEND = 4.0               # cost of bending the outline by 1 working px between neighbouring pieces
SEGMENT = 4              # outline piece (px) whose offset is fitted on its own
# outline offsets tried (working px, > 0 outwards); float32, as the distances are (a float64 offset made the
# step's arithmetic float64: ~5 ms more per search at 12 MP)
OFFSETS = tuple(np.linspace(-4, 4, 17, dtype=np.float32))
FINE = 1.0               # σ (px) of the smoothing the penumbra is measured on
PENUMBRAS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)  # penumbra σ tried (working px)
# refitting (refine_outline), in px of the refit's copy
FULL_REACH = 1.5         # how far (working px) the working copy's outline may be off
FULL_BEND = 0.04         # cost of bending the outline by 1 px, over the working copy's scale to this copy
FULL_PENUMBRAS = (0.5, 0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32)  # σ tried
PASSES = 2               # rounds of fitting the outline's pieces, then σ again
# a real shadow's penumbra widens with the distance from the edge that casts it (the sun is half a degree
# wide): σ = σ0 + growth × the distance from the object, growths tried (px of σ per px)
GROWTHS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.045)
WIDEN_GAIN = 0.99        # ... taken only when it leaves at most this share of the misfit of none
WIDEN_SAMPLES = 6000     # band pixels the widening is fitted on (a regular subsample)


def step(distance: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """A soft step: 1 well inside (distance < 0), 0 well outside, the normal CDF across the edge
    (its logistic approximation, within 0.01); ``sigma`` one σ, or one per pixel (broadcast against
    ``distance``: a penumbra that widens). Worked in place for one σ: it runs on every pixel near the
    outline for each offset tried."""
    if np.isscalar(sigma):
        z = np.asarray(1.702 * distance)
        z /= max(sigma, 1e-3)
    else:   # σ per pixel (broadcast against the distance)
        z = 1.702 * distance / np.maximum(sigma, np.float32(1e-3))
    np.clip(z, -30, 30, out=z)
    np.exp(z, out=z)
    z += 1
    return np.reciprocal(z, out=z).astype(np.float32, copy=False)


def normconv(values: np.ndarray, weight: np.ndarray, sigma: float, tent: bool = False) -> np.ndarray:
    """Gaussian average of ``values`` over the pixels where ``weight`` is 1 (normalised convolution);
    ``tent``: a tent of the same σ instead (OpenCV's stack blur: its cost does not grow with σ)."""
    import cv2

    if sigma <= 0:
        return values.astype(np.float32)

    def like_values(plane: np.ndarray) -> np.ndarray:   # H×W, or in each of the values' channels
        return plane if values.ndim == 2 else merge([plane] * values.shape[2])

    size = (2 * max(1, round(np.sqrt(6) * sigma)) + 1,) * 2
    blur = (lambda a: cv2.stackBlur(a, size)) if tent else (lambda a: cv2.GaussianBlur(a, (0, 0), sigma))
    w = weight.astype(np.float32)
    num = blur(np.asarray(values, np.float32) * like_values(w))
    return num / like_values(np.maximum(blur(w), 1e-4))


def log_slopes(fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-image's derivatives (d/dy, d/dx; H×W) of ``fine`` (H×W×3, 8-bit levels, finely smoothed)."""
    dy, dx = np.gradient(np.log(np.maximum(grey(fine), 1.0)))
    return dy, dx


def across(slopes: tuple[np.ndarray, np.ndarray], distance: np.ndarray) -> np.ndarray:
    """The log-image's slope across the outline (H×W): its derivatives (:func:`log_slopes`) along the
    signed ``distance``'s gradient (what :class:`SlopeCost` reads)."""
    sy, sx = np.gradient(distance)
    return slopes[1] * sx + slopes[0] * sy


def fit_sigma(distance: np.ndarray, raw: np.ndarray, sigmas, between: bool = False,
              slope: np.ndarray | None = None, darkening: float = 0.0) -> float:
    """The penumbra's σ (one of ``sigmas``) whose step, measured at FINE, best explains ``raw`` (the
    darkening over the umbra's, per pixel) at ``distance`` from the outline (least squares);
    ``between``: the minimum of the parabola through the best and its neighbours, between them.

    With ``slope`` (the log-image's derivative across the outline there, as :class:`SlopeCost`'s) and the
    umbra's ``darkening``: the σ that explains both, the level's squared misfit and the slope's absolute
    one joined as the log-likelihoods of a normal and a Laplace misfit (½ log of the mean square + log of
    the mean absolute). The level alone is pulled wide around a narrow penumbra by the ground's low
    frequencies (its level beside the shadow is not the lit level fitted around it); the slope alone
    (white for a 1/f² texture) holds a wide penumbra's low, broad slope too loosely."""
    errors = np.array([float(((step(distance, float(np.hypot(sg, FINE))) - raw) ** 2).mean()) for sg in sigmas])
    if slope is not None:
        steep = np.array([float(SlopeCost(slope, darkening, float(np.hypot(sg, FINE))).at(slice(None))(distance).mean())
                          for sg in sigmas])
        errors = 0.5 * np.log(np.maximum(errors, 1e-12)) + np.log(np.maximum(steep, 1e-12))
    return _least(sigmas, errors) if between else float(sigmas[int(np.argmin(errors))])


def _least(sigmas, errors) -> float:
    """The σ of ``sigmas`` with the least of ``errors``, or between its neighbours the least of the
    parabola through the three."""
    i = int(np.argmin(errors))
    if 0 < i < len(sigmas) - 1:
        a, b, _ = np.polyfit(sigmas[i - 1:i + 2], errors[i - 1:i + 2], 2)
        if a > 0:
            return float(np.clip(-b / (2 * a), sigmas[i - 1], sigmas[i + 1]))
    return float(sigmas[i])


def fit_widening(distance: np.ndarray, raw: np.ndarray, away: np.ndarray, sigmas) -> tuple[float, float]:
    """The penumbra's σ at the object (one of ``sigmas``, then between them as :func:`fit_sigma`) and its
    growth per px of distance from it (one of ``GROWTHS``; none unless that leaves at most ``WIDEN_GAIN``
    of the misfit) whose step, measured at FINE, best explains ``raw`` (as :func:`fit_sigma`'s) at
    ``distance`` from the outline and ``away`` from the object (N each, px; least squares)."""
    growths, base = np.asarray(GROWTHS, np.float32), np.asarray(sigmas, np.float32)[:, None]
    row, level, far = (np.asarray(v, np.float32)[None, :] for v in (distance, raw, away))
    errors = np.array([np.square(step(row, np.hypot(base + g * far, np.float32(FINE))) - level).mean(axis=1)
                       for g in growths])   # growths × sigmas
    k = int(np.argmin(errors.min(axis=1)))
    if errors[k].min() > WIDEN_GAIN * errors[0].min():
        k = 0
    return _least(sigmas, errors[k]), float(growths[k])


class LevelCost:
    """Squared misfit between the step and ``raw``, the measured darkening over the umbra's (H×W)."""

    def __init__(self, raw: np.ndarray, sigma: float):
        self.raw, self.sigma = raw, sigma

    def at(self, where: np.ndarray):
        r = self.raw[where]

        def cost(distance):
            s = step(distance, self.sigma)
            s -= r
            return np.square(s, out=s)
        return cost


class SlopeCost:
    """Absolute misfit between ``slope`` (H×W: the log-image's derivative along the signed distance's
    gradient) and a shadow's own slope there: what is left is the relit ground's slope, which the true
    outline makes smallest. Texture shows in it at fine scale only (the slope of a 1/f² texture is
    white), and the absolute value lets the ground's own edges (stones, joints) count as outliers."""

    def __init__(self, slope: np.ndarray, darkening: float, sigma: float):
        self.slope, self.darkening, self.sigma = slope, darkening, sigma

    def at(self, where: np.ndarray):
        g, k, dk = self.slope[where], 1.702 / self.sigma, self.darkening

        def cost(distance):   # |g − dk·k·s·(1 − s) / (1 − dk·s)|, in place
            s = step(distance, self.sigma)
            slope = dk * k * s
            slope *= 1 - s
            s *= dk
            slope /= np.subtract(1, s, out=s)
            return np.abs(np.subtract(g, slope, out=slope), out=slope)
        return cost


def local_offsets(inside: np.ndarray, signed: np.ndarray, band: np.ndarray, cost, offset: float = 0.0,
                  offsets=OFFSETS, segment: int = SEGMENT, bend: float = BEND) -> np.ndarray:
    """An offset (px) per pixel: the outline's shift that ``cost`` (:class:`LevelCost`,
    :class:`SlopeCost`) finds best for each ``segment``-px piece of the outline (its pixels' nearest
    piece), one of ``offsets``, smoothed along the outline and across the image; ``offset`` far from
    the band."""
    import cv2

    contours, _ = cv2.findContours(inside, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.full(signed.shape, offset, np.float32)
    h, w = inside.shape
    piece = np.full((h, w), -1, np.int32)
    starts, n = [], 0
    for c in contours:
        pts = c[:, 0]
        ids = n + np.arange(len(pts)) // segment
        piece[pts[:, 1], pts[:, 0]] = ids
        starts.append((n, int(ids[-1]) + 1))
        n = int(ids[-1]) + 1
    near_piece = nearest_values(piece >= 0, piece, fill=-1)
    sel = band & (near_piece >= 0)
    ids, d, misfit = near_piece[sel], signed[sel], cost.at(sel)
    err = np.stack([np.bincount(ids, misfit(d - o), minlength=n) for o in offsets], axis=1)
    offsets = np.asarray(offsets, np.float32)
    best = np.full(n, offset, np.float32)
    for a, b in starts:  # the smoothest run of offsets along each outline that explains the data
        best[a:b] = smooth_path(err[a:b], offsets, bend)
    return cv2.GaussianBlur(best[near_piece], (0, 0), segment / 2)   # every pixel has a nearest piece


def nearest_values(source: np.ndarray, values: np.ndarray, fill=0) -> np.ndarray:
    """For every pixel, ``values`` (H×W) at the nearest pixel of ``source`` (H×W bool; L2 distance);
    ``fill`` where ``source`` is empty."""
    import cv2

    _, labels = cv2.distanceTransformWithLabels((~source).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    idx = np.flatnonzero(source.ravel())
    lut = np.full(int(labels.max()) + 1, fill, values.dtype)
    lut[labels.ravel()[idx]] = values.ravel()[idx]
    return lut[labels]


def smooth_path(cost: np.ndarray, values: np.ndarray, bend: float) -> np.ndarray:
    """Viterbi: one of ``values`` per row of ``cost`` (n×L) minimising the costs plus ``bend`` per unit
    of change between neighbours."""
    jump = bend * np.abs(values[:, None] - values[None, :])
    total = cost[0].copy()
    back = np.zeros(cost.shape, np.int64)
    for i in range(1, len(cost)):
        moves = total[:, None] + jump                  # from (rows) → to (columns)
        back[i] = moves.argmin(axis=0)
        total = cost[i] + moves.min(axis=0)
    path = np.empty(len(cost), np.int64)
    path[-1] = int(total.argmin())
    for i in range(len(cost) - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return values[path]


def refine_outline(crop: np.ndarray, valid: np.ndarray, lit: np.ndarray, distance: np.ndarray, sigma: float,
                   darkening: float, scale: float, fit_penumbra: bool = True, away: np.ndarray | None = None
                   ) -> tuple[np.ndarray, float | np.ndarray]:
    """The outline and penumbra fitted again on a finer copy than the working one.

    crop: h×w×3 float32, the photo in the matte's box (8-bit RGB levels), at its own resolution or
    downscaled; valid: h×w bool, the ground (not the object); lit: h×w×3, the lit ground's level there;
    distance: h×w float32, the signed distance (crop px, > 0 outside) to the working copy's outline;
    sigma: its penumbra's σ (crop px); darkening: the umbra's (mean over channels); scale: the working
    copy's size over the crop's (< 1); fit_penumbra: fit σ again too (else keep ``sigma``: when the
    working copy is nearly as fine as the crop, the pieces' offsets, free to follow the texture, make the
    refitted penumbra too sharp); away: h×w float32, the distance from the object (crop px): with it and
    ``fit_penumbra``, σ is fitted as widening with that distance (:func:`fit_widening`) and returned
    per pixel (h×w float32). Returns the refined signed distance and σ (crop px)."""
    fine = normconv(crop, valid, FINE)
    raw = (1 - grey(fine / lit)) / darkening
    slopes = log_slopes(fine)
    reach = FULL_REACH / scale
    offsets = np.linspace(-reach, reach, len(OFFSETS), dtype=np.float32)
    sigmas = np.array([sg for sg in FULL_PENUMBRAS if sg <= 1.5 * max(sigma, 1.0)] or [FULL_PENUMBRAS[0]])
    band = valid & (np.abs(distance) <= reach + 3 * sigma)
    if band.sum() < 16:
        return distance, sigma
    thin = max(1, int(band.sum()) // 20000)  # a global fit: some thousands of pixels are plenty

    def penumbra(distance: np.ndarray) -> float:
        return fit_sigma(distance[band][::thin], raw[band][::thin], sigmas, True,
                         across(slopes, distance)[band][::thin], darkening)

    if fit_penumbra:
        sigma = penumbra(distance)
    segment, bend = max(SEGMENT, round(SEGMENT / scale)), FULL_BEND / scale
    for _ in range(PASSES):
        cost = SlopeCost(across(slopes, distance), darkening, float(np.hypot(sigma, FINE)))
        distance = distance - local_offsets((distance <= 0).astype(np.uint8), distance, band, cost,
                                            offsets=offsets, segment=segment, bend=bend)
        if fit_penumbra:
            sigma = penumbra(distance)
        offsets = offsets / 2
    if fit_penumbra and away is not None:
        few = max(1, int(band.sum()) // WIDEN_SAMPLES)
        base, growth = fit_widening(distance[band][::few], raw[band][::few], away[band][::few], sigmas)
        if growth > 0:
            return distance, np.maximum(base + growth * away, 0.35).astype(np.float32)
    return distance, max(sigma, 0.35)


def reach_box(signed: np.ndarray, offset: float, sigma: float) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1, working px) of what the matte ``step(signed − offset, σ)`` reaches."""
    from ..mask.refine import bbox

    return bbox(signed <= offset + 3 * sigma + 4)


def grown(box: tuple[int, int, int, int], px: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1) grown by ``px`` on each side, within an array of ``shape`` (H, W, ...)."""
    return max(box[0] - px, 0), max(box[1] - px, 0), min(box[2] + px, shape[1]), min(box[3] + px, shape[0])
