"""A shadow that stops at the edge between two grounds of one colour (used by :mod:`.find`).

A shadow that reaches the straight edge between two grounds (:mod:`.grounds`) and does not go on across
it stops there: beyond it, in a building's or a wall's shade, it goes on unseen, as dark as that ground
(or the shadow's end just meets the edge). Nothing beyond the edge is the shadow's, but the working
copy places the edge only to a working pixel (about 3 photo px at 1200x900) and blends the two grounds'
lit levels across it, so the shadow's lit level came out too dark near it (its darkening too light)
and its soft matte spilled over the edge into the other ground. The edge is placed again on the
photo's own pixels (on pieces along it clear of the object and the shadow, the step of the median
brightness profile across it; a straight line through them); the ground beyond it is then no ground of
the shadow's, and its matte is cut there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging.pixels import grey
from .grounds import EDGE_ANGLES, Grounds, two_levels
from .outline import normconv
from .region import Darker
from .window import Window

PIECES = 8           # the edge is placed on this many pieces along it, each measured on at least
PIECE_ROWS = 4       # this many lines across it clear of the object and the shadow
MISPLACED = 2.0      # px: a piece farther than this from the line through the others is left out; the edge is
                     # not placed unless most pieces (and three at least) line up
UMBRA = 0.8          # a line across the edge is the shadow's when this share of its 2-5 px before the edge is


@dataclass
class PlacedEdge:
    """The edge on the photo's pixels: the points ``origin + t·along + a·normal`` with ``a = line(t)``
    (window px; ``line`` the coefficients of a straight line, :func:`numpy.polyval`); the shadow's
    side is the normal's (``keep`` 1) or the other (-1)."""

    origin: np.ndarray
    normal: np.ndarray
    along: np.ndarray
    line: np.ndarray
    keep: int

    def share(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """The share of each pixel centred at (``xs``, ``ys``: window px, broadcast) on the shadow's side
        (0..1, float32: a pixel's coverage by a straight edge)."""
        x, y = xs - self.origin[0], ys - self.origin[1]
        into = (x * self.normal[0] + y * self.normal[1]
                - np.polyval(self.line, x * self.along[0] + y * self.along[1])) * self.keep
        return np.clip(0.5 + into, 0, 1).astype(np.float32)

    def on_box(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """:meth:`share` over ``box`` (x0, y0, x1, y1, window px): (y1−y0)×(x1−x0)."""
        x0, y0, x1, y1 = box
        return self.share(np.arange(x0, x1, dtype=np.float64)[None, :], np.arange(y0, y1, dtype=np.float64)[:, None])

    def on_working(self, shape: tuple[int, int], scale: float) -> np.ndarray:
        """:meth:`share` of each working pixel (``shape``: H'×W', the window downscaled by ``scale``)."""
        xs = (np.arange(shape[1], dtype=np.float64) + 0.5) / scale - 0.5
        ys = (np.arange(shape[0], dtype=np.float64) + 0.5) / scale - 0.5
        return self.share(xs[None, :], ys[:, None])


def place_edge(image: np.ndarray, not_ground: np.ndarray, window: tuple[int, int, int, int], scale: float,
               line: tuple[float, float], beyond: bool, rise: float, region: np.ndarray,
               darkening: float) -> PlacedEdge | None:
    """The edge between two grounds placed on the photo's pixels, where the shadow stops at it; None when
    it cannot be placed or the shadow goes on beyond it (on the lines across the edge from the shadow, the
    ground beyond it darker than beside the shadow by at least half the umbra's ``darkening``: a shadow
    that crosses onto a darker ground of its own colour, found on one side only).

    image: H×W×C, the photo; not_ground: H×W bool, the selected objects; window: (x0, y0, x1, y1), photo
    px; scale: the working copy's size over the window's; line: the edge on the working copy, its
    normal's angle (radians) and offset (working px: the points p with p·normal = offset); beyond: the
    shadow lies on the side the normal points to; rise: the log brightness's step across the edge along
    the normal (its sign is what is looked for); region: H'×W' bool, the shadow on the working copy;
    darkening: its umbra's (mean over channels)."""
    import cv2

    angle, offset = line
    n, d = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    # working px i covers the window's photo px around (i + 0.5) / scale - 0.5
    origin = (offset - (0.5 * scale - 0.5) * (n[0] + n[1])) / scale * n
    wx0, wy0, wx1, wy1 = window
    corners = np.array([[0, 0], [wx1 - wx0, 0], [0, wy1 - wy0], [wx1 - wx0, wy1 - wy0]], np.float64) - origin
    ends = corners @ d
    ts = np.arange(np.floor(ends.min()), np.ceil(ends.max()) + 1, max(1.0, float(np.ptp(ends)) / 2000))
    # photo px: the working line is off by a working px or two, and its direction (one of EDGE_ANGLES) by up
    # to half their step, which its ends' offset grows with
    reach = int(np.ceil(3 / scale + 3 + np.tan(np.pi / EDGE_ANGLES / 2) * np.abs(ends).max()))
    across = np.arange(-reach, reach + 1, dtype=np.float64)
    pts = origin + ts[:, None, None] * d + across[None, :, None] * n      # T×A×2, window px
    px, py = pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32)
    h, w = not_ground.shape
    inside = (px + wx0 >= 0) & (py + wy0 >= 0) & (px + wx0 <= w - 1) & (py + wy0 <= h - 1)
    sampled = cv2.remap(image, px + wx0, py + wy0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    sampled = sampled.reshape(len(ts), len(across), -1)
    colour = sampled[..., :3] if sampled.shape[2] >= 3 else sampled[..., :1]   # not alpha
    level = np.log(np.maximum(grey(colour.astype(np.float32)), 1.0))
    blocked = cv2.remap(not_ground.view(np.uint8), px + wx0, py + wy0, cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_REPLICATE) > 0
    # the shadow on the working copy, and its penumbra's reach (2 working px beyond the half-way region)
    wx, wy = (px + 0.5) * scale - 0.5, (py + 0.5) * scale - 0.5
    shadow = cv2.remap(region.astype(np.float32), wx, wy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    reached = cv2.remap(cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)), wx, wy, cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT) > 0
    clear = (inside & ~blocked & ~reached).all(axis=1)
    rows = np.flatnonzero(clear)
    if len(rows) < PIECE_ROWS:
        return None
    placed = []
    for piece in np.array_split(rows, min(PIECES, len(rows) // PIECE_ROWS)):
        where = _step_at(np.median(level[piece], axis=0), across, rise)
        if where is not None:
            placed.append((float(ts[piece].mean()), where))
    if len(placed) < 3:
        return None
    t, c = np.array(placed).T
    fit = _line(t, c)
    near = np.abs(c - np.polyval(fit, t)) <= MISPLACED
    if 2 <= near.sum() < len(near):   # one piece on something else (a joint, a stone): the line through the others
        fit = _line(t[near], c[near])
        near = np.abs(c - np.polyval(fit, t)) <= MISPLACED
    if near.sum() < max(3, len(placed) // 2 + 1):
        return None   # the pieces do not line up: no straight edge is seen
    # does the shadow go on beyond the edge? The ground beyond it on the lines across it from the shadow,
    # against the same ground on the clear lines
    into = (across[None, :] - np.polyval(fit, ts)[:, None]) * (1 if beyond else -1)   # px into the shadow's side
    other = inside & ~blocked & (into <= -2) & (into >= -(3 / scale + 5))
    own = inside & (into >= 2) & (into <= 5)
    under = ((shadow * own).sum(axis=1) >= UMBRA * np.maximum(own.sum(axis=1), 1)) & own.any(axis=1)
    under &= other.any(axis=1)
    lit = clear & other.any(axis=1)
    if under.sum() >= PIECE_ROWS and lit.sum() >= PIECE_ROWS:
        drop = float(np.median(level[other & lit[:, None]]) - np.median(level[other & under[:, None]]))
        if drop >= -0.5 * np.log(max(1 - darkening, 1e-3)):
            return None
    return PlacedEdge(origin, n, d, fit, 1 if beyond else -1)


def _step_at(profile: np.ndarray, across: np.ndarray, rise: float) -> float | None:
    """Where ``profile`` (log brightness at ``across``, px) steps by ``rise``'s sign: the split that two
    levels fit best, then the crossing of their midpoint (sub-px); None when the step is under half of
    ``rise`` or of the other sign."""
    k = np.arange(2, len(profile) - 1)
    i = int(k[np.argmin(two_levels(profile, k))])
    low, high = profile[:i].mean(), profile[i:].mean()
    if (high - low) * np.sign(rise) < 0.5 * abs(rise):
        return None
    mid, a, b = (low + high) / 2, profile[i - 1], profile[i]
    frac = 0.5 if a == b else float(np.clip((mid - a) / (b - a), 0, 1))
    return float(across[i - 1] + frac * (across[i] - across[i - 1]))


def _line(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The least-squares line c = a·t + b (a constant for one point)."""
    return np.polyfit(t, c, 1) if len(t) >= 2 and np.ptp(t) > 0 else np.array([0.0, float(c.mean())])


@dataclass
class MeasuredGround:
    """The ground a shadow is measured on after :func:`stop_at_edge`: ``valid``, ``region`` and ``mean``
    (H'×W', the beyond of the edge left out when it was placed), ``grounds`` (None once one is left),
    ``placed`` (the edge on the photo's pixels, or None) and ``ends_at_ground`` (the shadow stops there)."""

    valid: np.ndarray = field(repr=False)
    region: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    grounds: Grounds | None
    placed: PlacedEdge | None = None
    ends_at_ground: bool = False


def stop_at_edge(image: np.ndarray, not_ground: np.ndarray, win: Window, dark: Darker, region: np.ndarray,
                 coarse: float) -> MeasuredGround:
    """A shadow that stops at the edge between two grounds of one colour (a building's shade beyond it):
    the edge placed on the photo's pixels (``not_ground``: H×W bool, the selected objects), the ground
    beyond it none of the shadow's from here on (``mean`` smoothed again at ``coarse`` without it)."""
    import cv2

    grounds = dark.grounds
    ground = None if grounds is None or grounds.edge is None else grounds.stays_on(region)
    if ground is None:
        return MeasuredGround(win.valid, region, dark.mean, grounds)
    ends_at_ground = grounds.ends_at_darker(region, cv2.dilate(win.obj.astype(np.uint8), dark.smear).astype(bool))
    placed = place_edge(image, not_ground, win.box, win.scale, grounds.edge, ground == 0, grounds.rise, region,
                        float(dark.darkening.mean()))
    if placed is None:
        return MeasuredGround(win.valid, region, dark.mean, grounds, None, ends_at_ground)
    valid = win.valid & (placed.on_working(win.valid.shape, win.scale) >= 0.5)   # one ground left
    return MeasuredGround(valid, region & valid, normconv(win.small, valid, coarse), None, placed, ends_at_ground)
