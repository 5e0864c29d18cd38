"""The umbra's darkening, from the ground's brightness under the shadow and around it.

A shadow scales the ground, so any statistic of the brightness that scales with it (the mean, a
percentile) gives the darkening as the ratio of that statistic under the umbra to the same around the
shadow. What no statistic sees is the texture: the ground under the umbra is not quite the ground
around it, and which statistic differs least between the two depends on the ground (the mean on
bricks, whose joints are as regular as the bricks; the upper percentiles on gravel and grass, whose
stone tops and blades are evenly lit while the gaps between them are not). So the same ratio is
measured on patches of lit ground shaped like the umbra, each against the ring around it, where it
should be 1, and each statistic's darkening is weighted by the inverse of its mean square stray there.
"""
from __future__ import annotations

import numpy as np

from ..imaging.pixels import grey

PATCHES = 64             # at most this many patches of lit ground are measured
MIN_PATCHES = 8          # ... and with fewer, no estimate (None)
SAMPLES = 3000           # pixels per region a statistic is computed on (a regular subsample)
MIN_PIXELS = 16          # an umbra or ring of fewer pixels is not measured
FADE_FIT = 0.5           # a darkening that changes with the distance from the object: the line has to explain
                         # at least this share of the umbra's variance (else no change is told from the
                         # ground's own darker and lighter patches)


def _statistics(values: np.ndarray) -> np.ndarray:
    """``values`` (N×C) → 4×C per column: the mean, the interquartile mean, the 75th and 90th percentiles."""
    v = np.sort(values[:: max(1, len(values) // SAMPLES)], axis=0)
    n = len(v)
    return np.stack([v.mean(axis=0), v[n // 4: max(n // 4 + 1, 3 * n // 4)].mean(axis=0),
                     v[min(n - 1, int(0.75 * n))], v[min(n - 1, int(0.9 * n))]])


def umbra_darkening(ratio: np.ndarray, umbra: np.ndarray, ring: np.ndarray, lit: np.ndarray) -> np.ndarray | None:
    """The umbra's darkening per channel (C floats in [0.02, 0.95], 0.4 = 40 % darker), or None when
    there is too little lit ground to weigh the statistics on.

    ratio: H×W×C, the image over a smooth lit level (a plane: the texture is left in); umbra: H×W bool,
    the shadow's core; ring: H×W bool, the lit ground around the shadow it is compared with; lit: H×W
    bool, ground away from the shadow and the object, where the patches are taken."""
    weights = statistic_weights(ratio, umbra, ring, lit)
    return None if weights is None else weighted_darkening(ratio[umbra], ratio[ring], weights)


def statistic_weights(ratio: np.ndarray, umbra: np.ndarray, ring: np.ndarray, lit: np.ndarray) -> np.ndarray | None:
    """Each statistic's weight (4 floats, :func:`_statistics`' order): the inverse of its mean square
    stray (log ratio) between patches of ``lit`` ground shaped like the ``umbra`` and the ``ring`` around
    them, or None when fewer than ``MIN_PATCHES`` fit (arguments as :func:`umbra_darkening`'s)."""
    uy, ux = np.nonzero(umbra)
    ry, rx = np.nonzero(ring)
    if len(uy) < MIN_PIXELS or len(ry) < MIN_PIXELS:
        return None
    h, w = umbra.shape
    y0, x0, y1, x1 = int(uy.min()), int(ux.min()), int(uy.max()) + 1, int(ux.max()) + 1
    stride = max(2, min(y1 - y0, x1 - x0) // 2)
    # flat indices into copies padded by the ring's reach past the umbra's box (the padding is no lit
    # ground): a patch's pixels are then its shift added to them (~3× faster than 2-D indexing)
    pad = max(y0 - int(ry.min()), int(ry.max()) + 1 - y1, x0 - int(rx.min()), int(rx.max()) + 1 - x1, 0)
    pw = w + 2 * pad
    ground = np.pad(lit, pad).ravel()
    umbra_at, ring_at = (uy + pad) * pw + ux + pad, (ry + pad) * pw + rx + pad
    shifts = [dy * pw + dx for dy in range(-y0, h - y1 + 1, stride) for dx in range(-x0, w - x1 + 1, stride)
              if ground[umbra_at + (dy * pw + dx)].all()]
    if len(shifts) > PATCHES:
        shifts = [shifts[i] for i in np.linspace(0, len(shifts) - 1, PATCHES).round().astype(int)]
    brightness = np.pad(grey(ratio), pad).ravel()
    inner_at = umbra_at[:: max(1, len(uy) // SAMPLES)]
    strays = []
    for shift in shifts:
        at = ring_at + shift
        at = at[ground[at]]
        if len(at) < MIN_PIXELS:
            continue
        inner = _statistics(brightness[inner_at + shift][:, None])[:, 0]
        outer = _statistics(brightness[at[:: max(1, len(at) // SAMPLES)]][:, None])[:, 0]
        strays.append(np.log(np.maximum(inner, 1e-4) / np.maximum(outer, 1e-4)))
    if len(strays) < MIN_PATCHES:
        return None
    return 1 / np.maximum(np.square(np.array(strays)).mean(axis=0), 1e-8)


def weighted_darkening(umbra: np.ndarray, ring: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The darkening per channel (C floats in [0.02, 0.95]) from the ratio's values under the umbra and
    over the ring around it (N×C, M×C): each statistic's, weighted by ``weights``
    (:func:`statistic_weights`). Also for an umbra too thin to read on the working copy (a high sun's
    sliver: every working pixel of it mixes the penumbra in), read on a finer copy of the matte's box,
    with the weights found on the working copy (the finer copy holds too little lit ground to weigh)."""
    darkening = 1 - _statistics(umbra) / np.maximum(_statistics(ring), 1e-4)
    return np.clip((darkening * weights[:, None]).sum(axis=0) / weights.sum(), 0.02, 0.95).astype(np.float32)


def fade(dark: np.ndarray, away: np.ndarray) -> float:
    """How much the umbra's darkening changes across it with the distance from the object, as a share of
    its mean (−0.2: 20 % lighter at the umbra's far end than at its near one; next to the object, the
    object hides more of the sky that lights the shadow): the least-squares line of ``dark`` (N, the
    umbra's darkness, texture-smoothed) over ``away`` (N, px from the object), from the 5th to the 95th
    percentile of the distance; 0 when the line explains less than ``FADE_FIT`` of the darkness's
    variance (a ground's own patches) or fewer than ``MIN_PIXELS`` are given."""
    if len(dark) < MIN_PIXELS or float(dark.mean()) <= 0:
        return 0.0
    x, y = away.astype(np.float64), dark.astype(np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    sx, sy = float(np.square(dx).mean()), float(np.square(dy).mean())
    if sx <= 0 or sy <= 0:
        return 0.0
    slope = float((dx * dy).mean()) / sx
    if slope * slope * sx / sy < FADE_FIT:
        return 0.0
    return slope * float(np.percentile(x, 95) - np.percentile(x, 5)) / float(y.mean())
