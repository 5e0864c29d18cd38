"""Two grounds in the window around the object (used by :mod:`.find`): a kerb, a path beside a lawn, a
slab beside the asphalt. One lit level for both lies between them: the darker ground reads as a shadow
and a shadow across the edge darkens unlike itself on either side. Each ground gets its own level,
blended per pixel by its share.

Two grounds of different colour are told apart by their chromaticity (the channels over their sum),
which a shadow keeps; two of the same colour and different brightness by a straight edge across the
whole window, the ground brighter on one side of it all along (but where a shadow reaches it): a
shadow's edge stops where the shadow does. A shadow that stops at that edge, the ground beyond it
darker (a building's shade), may go on in it unseen: a doubt signal (:meth:`Grounds.ends_at_darker`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUNDS_APART = 0.03     # two grounds of different colour: chromaticities this far apart (and 4 times their
GROUND_SHARE = 0.1       # spread), each at least this share of the ground
EDGE_STEP = 0.15         # two grounds of one colour: brightness apart by at least this much (log: 14 %) ...
EDGE_PIECES = 6          # ... across a straight edge, on this many pieces along it (at least 4 measured), all but one
EDGE_ANGLES = 36         # the edge's directions tried (every 5°)
COARSE_ANGLES = 3        # ... every this many first, then those between around the best of them
EDGE_PURE = 0.05         # ... each ground's level fitted where the other's share is below this (the edge's band,
                         # smoothed, mixes the two: all targets on 127 -> 140 of 192 scenes, `--edge-level 0.6, 1.5`)
ENDS_ACROSS = 0.05       # a shadow with less than this share of it beyond that band stops at the edge ...
ENDS_BESIDE = 0.9        # ... cast from an object standing away from it: this share of it beside the object


@dataclass
class Grounds:
    """Two grounds in the window: per pixel the ``share`` of the first (H×W float32, 0..1, smoothed as the
    image it levels), and the pixels each ground's own level is fitted on (``first``, ``second``: H×W bool).
    Two grounds of one colour have a straight ``edge`` between them: its normal's angle (radians) and
    offset (px; the first ground lies beyond it, along the normal) and the log brightness's step across it
    (``rise``); None for grounds told apart by colour."""

    share: np.ndarray
    first: np.ndarray
    second: np.ndarray
    edge: tuple[float, float] | None = None
    rise: float = 0.0

    @classmethod
    def split(cls, share: np.ndarray, pure: float = 0.5, edge: tuple[float, float] | None = None,
              rise: float = 0.0) -> Grounds:
        """Each ground's pixels: where the other's share is below ``pure`` (0.5: every pixel, on its side)."""
        return cls(share, share >= max(0.5, 1 - pure), share < min(0.5, pure), edge, rise)

    def stays_on(self, region: np.ndarray) -> int | None:
        """The ground the shadow ``region`` (H×W bool) reaches the edge from and stops at it on (0: the
        first, 1: the second), counted beyond the edge's band (the fits' pixels: the coarse smoothing
        spreads a shadow that stops at the edge into it); None when it goes on across the edge or does not
        reach it. Grounds told apart by colour have no band: their edge is not placed."""
        on = (int((region & self.first).sum()), int((region & self.second).sum()))
        if min(on) > ENDS_ACROSS * sum(on) or not (region & ~self.first & ~self.second).any():
            return None
        return 0 if on[0] >= on[1] else 1

    def ends_at_darker(self, region: np.ndarray, beside: np.ndarray) -> bool:
        """Whether the shadow ``region`` (H×W bool) reaches the edge from one ground and stops there, away
        from the object (``beside``: H×W bool, the object and the ground next to it, where a shadow on one
        side of the edge goes on under the object), the other ground being darker: in the shade of a wall
        or a building beyond the edge, a shadow goes on unseen, as dark as that ground, so where it ends is
        a guess."""
        ground = self.stays_on(region)
        if ground is None or not (region & ~self.first & ~self.second & ~beside).any():
            return False   # it goes on across the edge, or does not reach it away from the object
        own = self.first if ground == 0 else self.second
        contact = region & beside
        if (contact & own).sum() < ENDS_BESIDE * contact.sum():
            return False   # the object stands at the edge: the shadow comes out from under it across the edge
        return (self.rise > 0) == (ground == 0)   # the first ground lies beyond the edge, ``rise`` up to it


def sample_step(valid: np.ndarray) -> int:
    """Every how many rows and columns the ground (``valid``, H×W bool) is sampled for a fit: a few thousand
    pixels are plenty."""
    return max(1, int(np.sqrt(valid.sum() / 6000)))


def two_grounds(mean: np.ndarray, valid: np.ndarray, smooth: float) -> Grounds | None:
    """The two grounds in the window, or None for one. ``mean``: H×W×3, the image smoothed by ``smooth``
    (σ, px) over ``valid`` (H×W bool, the ground)."""
    share = two_colours(mean, valid)
    if share is not None:   # each pixel's share from its own chromaticity: texture mixes them too, not only the edge
        return Grounds.split(share)
    edge = brightness_edge(mean, valid, smooth)
    return None if edge is None else Grounds.split(edge[0], EDGE_PURE, edge[1], edge[2])


def two_colours(mean: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
    """Two grounds of different colour: the share of the first from each pixel's chromaticity (its place
    between the two means along their main axis: the edge's band, smoothed, is a mix); None for one."""
    step = sample_step(valid)
    points = _chromaticity(mean[::step, ::step][valid[::step, ::step]])   # every pixel's only for two grounds
    if len(points) < 200:
        return None
    centre = points.mean(axis=0)
    axis = np.linalg.svd(points - centre, full_matrices=False)[2][0]
    along = (points - centre) @ axis
    low, high = np.percentile(along, 25), np.percentile(along, 75)
    for _ in range(10):   # two means along the chromaticities' main axis
        upper = along >= (low + high) / 2
        if upper.all() or not upper.any():
            return None
        high, low = along[upper].mean(), along[~upper].mean()
    spread = float(np.sqrt(np.square(along - np.where(upper, high, low)).mean()))
    if high - low < max(GROUNDS_APART, 4 * spread) or min(upper.mean(), 1 - upper.mean()) < GROUND_SHARE:
        return None
    return np.clip(((_chromaticity(mean) - centre) @ axis - low) / (high - low), 0, 1).astype(np.float32)


def _chromaticity(rgb: np.ndarray) -> np.ndarray:
    """…×3 → the channels over their sum (a shadow keeps them)."""
    return rgb / np.maximum(rgb.sum(axis=-1, keepdims=True), 1e-3)


def brightness_edge(mean: np.ndarray, valid: np.ndarray,
                    smooth: float) -> tuple[np.ndarray, tuple[float, float], float] | None:
    """Two grounds of one colour: the straight line that splits the ground's log brightness best in two
    (:func:`_best_split`), kept when the brightness steps across it by at least ``EDGE_STEP`` all along
    it but on one piece (:func:`_steps_along`) and the two sides differ as much away from it; the share of
    the side beyond it, smoothed as ``mean`` is (σ ``smooth``, px), the line (its normal's angle and
    offset) and the step. None for one ground."""
    from .outline import normconv

    step = sample_step(valid)
    ys, xs = np.nonzero(valid[::step, ::step])
    if len(ys) < 200:
        return None
    ys, xs = (ys * step).astype(np.float32), (xs * step).astype(np.float32)
    level = np.log(np.maximum(mean[ys.astype(int), xs.astype(int)].mean(axis=1), 1.0))
    angle, offset = _best_split(xs, ys, level)
    across = xs * np.cos(angle) + ys * np.sin(angle) - offset
    along = -xs * np.sin(angle) + ys * np.cos(angle)
    band = max(3 * smooth, 6.0)
    steps = _steps_along(level, across, along, band, smooth)
    if len(steps) < EDGE_PIECES * 2 // 3:
        return None
    rise = float(np.median(steps))
    off = ~((steps / rise >= 0.5) & (steps / rise <= 2)) if rise else np.ones(len(steps), bool)
    # the shadows of objects side by side step across a line here and there, unevenly; but one piece in
    # the middle may step less (the object's shadow reaching the edge darkens the ground before it there
    # as a building's shade does beyond it), not one at an end (a dark region along a straight line)
    inner = off.sum() == 1 and len(steps) > EDGE_PIECES * 2 // 3 and not (off[0] or off[-1])
    if abs(rise) < EDGE_STEP or not (off.sum() == 0 or inner):
        return None
    # the grounds differ away from the line too: beside a straight bright joint (bricks' mortar) the band's
    # step is the joint's, gone further out
    before, beyond = level[across < -band], level[across > band]
    if min(len(before), len(beyond)) < 12 or (np.median(beyond) - np.median(before)) / rise < 0.5:
        return None
    h, w = valid.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = (xx * np.cos(angle) + yy * np.sin(angle) > offset).astype(np.float32)
    return np.clip(normconv(side, valid, smooth), 0, 1).astype(np.float32), (angle, offset), rise


def two_levels(values: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The squared residual of ``values`` (N, in order) fitted by two levels, the first over its first
    ``k`` (for each of ``k``: 1..N−1)."""
    c1, c2 = np.cumsum(values), np.cumsum(values * values)
    left = c2[k - 1] - c1[k - 1] ** 2 / k
    right = (c2[-1] - c2[k - 1]) - (c1[-1] - c1[k - 1]) ** 2 / (len(values) - k)
    return left + right


def _best_split(xs: np.ndarray, ys: np.ndarray, level: np.ndarray) -> tuple[float, float]:
    """The line (its normal's angle, radians, and offset along it, px) that splits the points (``xs``,
    ``ys``: N) best in two levels of ``level`` (N; least squares, each side at least ``GROUND_SHARE`` of
    them), of ``EDGE_ANGLES`` directions."""
    n, least = len(level), int(GROUND_SHARE * len(level))
    k = np.arange(max(least, 1), n - max(least, 1))
    total = float(np.square(level - level.mean()).sum())
    tried = {}

    def split(i: int) -> tuple[float, float]:   # direction i's best (residual's drop, offset)
        if i not in tried:
            angle = i * np.pi / EDGE_ANGLES
            p = xs * np.cos(angle) + ys * np.sin(angle)
            order = np.argsort(p, kind="stable")
            ps, costs = p[order], two_levels(level[order], k)
            j = int(np.argmin(costs))
            tried[i] = (total - float(costs[j]), float((ps[k[j] - 1] + ps[k[j]]) / 2))
        return tried[i]

    # every COARSE_ANGLES-th direction, then the ones between around the best of them
    coarse = max(range(0, EDGE_ANGLES, COARSE_ANGLES), key=lambda i: split(i)[0])
    for i in range(coarse - COARSE_ANGLES + 1, coarse + COARSE_ANGLES):
        split(i % EDGE_ANGLES)
    best = max(sorted(tried), key=lambda i: tried[i][0])
    return best * np.pi / EDGE_ANGLES, tried[best][1]


def _steps_along(level: np.ndarray, across: np.ndarray, along: np.ndarray, band: float,
                 smooth: float) -> np.ndarray:
    """The step of ``level`` across a line, on each of ``EDGE_PIECES`` pieces along it that has points on
    both sides: the median beyond (``across`` > ``smooth``, up to ``band``) minus the median before."""
    near = np.abs(across) <= band
    if near.sum() < 100:
        return np.zeros(0)
    ends = np.linspace(along[near].min(), along[near].max() + 1e-3, EDGE_PIECES + 1)
    steps = []
    for a, b in zip(ends[:-1], ends[1:]):
        piece = near & (along >= a) & (along < b)
        before, beyond = level[piece & (across < -smooth)], level[piece & (across > smooth)]
        if min(len(before), len(beyond)) >= 12:
            steps.append(float(np.median(beyond) - np.median(before)))
    return np.array(steps)
