"""Smooth fills of a hole from its surroundings: the colours under ``hybrid``'s copied texture.

* :func:`membrane_fill`: the smoothest surface (a solution of Laplace's equation) through the
  hole's surroundings. Inside the hole every value is the mean of its four neighbours, outside it
  the photo's own: a linear gradient comes back exactly, with no edges of its own. Navier–Stokes
  (OpenCV's ``INPAINT_NS``, ``hybrid``'s colours before) marches in from the border and carries each
  border pixel's noise along straight lines: streaks and wedge-shaped seams on a plain or gradient
  backdrop.
* :func:`smooth_fill`: the membrane plus a studio backdrop's curvature. A vignette is a bowl, which
  a membrane flattens (on a vignetted backdrop 9 grey levels off in the middle of a 140×130 hole); a
  quadratic fitted to a ring around the hole carries it. The quadratic is trusted as far as it
  explains the ring (fully where what is left is sensor noise, not at all on texture, where its
  curvature would be a guess).

Solved coarse to fine: a mask-aware image pyramid down to at most :data:`_DIRECT` unknown cells (or
to the last level whose known blocks still surround the hole), solved there exactly, then each finer
level starts from the coarser solution and relaxes it with Jacobi sweeps.
``benchmarks/bench_foundation.py`` measures the hybrid on both.
"""
from __future__ import annotations

import numpy as np

_NEIGHBOURS = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)
_CONTEXT = 64  # px of surroundings kept around the hole: the coarse levels need known cells around it
_DIRECT = 1500  # at most this many unknown cells are solved directly (dense LU) on the coarsest level
_RING = 24  # px: the ring around the hole that the backdrop's quadratic is fitted to
_NOISE = (4.0, 8.0)  # grey levels (RMS left by the quadratic on the ring): trusted fully below, not above
_ENCLOSED = (0.5, 0.75)  # share of the hole's outline on known pixels (the rest on the picture's frame):
# the quadratic is trusted not at all below, fully above; beyond the ring it would extrapolate


def membrane_fill(image: np.ndarray, hole: np.ndarray, sweeps: int = 20) -> np.ndarray:
    """Fill ``hole`` (H×W bool) of ``image`` (H×W or H×W×C, any numeric dtype) with the membrane
    through its surroundings. Returns H×W×C float32: the image outside the hole, the membrane inside.
    ``sweeps``: Jacobi sweeps per pyramid level (the levels below carry the low frequencies; on a
    370×290 px hole in a noisy backdrop, 20 sweeps leave 0.14 grey levels on average from the fully
    relaxed fill)."""
    return _fill(image, hole, sweeps, trend=False)


def smooth_fill(image: np.ndarray, hole: np.ndarray, sweeps: int = 20,
                backdrop: Backdrop | None = None) -> np.ndarray:
    """:func:`membrane_fill` plus the curvature of a smooth backdrop around the hole (``backdrop``,
    :func:`fit_backdrop` of the same image and hole when not given, weighted by how well it explains
    the ring). Same arguments and result."""
    return _fill(image, hole, sweeps, trend=backdrop or fit_backdrop(image, hole) or False)


class Backdrop:
    """A quadratic per channel fitted (least squares) to the known pixels within :data:`_RING` px of a
    hole: ``coef`` 6×C over (1, x, y, x², xy, y²) in coordinates centred on the hole and scaled by its
    size; ``rms``: what it leaves on that ring, in grey levels; ``ring``: the ring (H×W bool);
    ``enclosed``: the share of the hole's outline that borders known pixels rather than the picture's
    frame; ``weight``: how far the fill trusts its curvature (1 up to ``_NOISE[0]`` RMS, 0 from
    ``_NOISE[1]``; times 0…1 as ``enclosed`` goes from ``_ENCLOSED[0]`` to ``_ENCLOSED[1]``: a ring on one
    side of the hole only would have the quadratic extrapolate across it)."""

    def __init__(self, coef: np.ndarray, centre: tuple[float, float], scale: float, rms: float,
                 ring: np.ndarray, enclosed: float = 1.0) -> None:
        self.coef, self.centre, self.scale, self.rms, self.ring = coef, centre, scale, rms, ring
        self.enclosed = enclosed
        fits = np.clip((_NOISE[1] - rms) / (_NOISE[1] - _NOISE[0]), 0.0, 1.0)
        surrounds = np.clip((enclosed - _ENCLOSED[0]) / (_ENCLOSED[1] - _ENCLOSED[0]), 0.0, 1.0)
        self.weight = float(fits * surrounds)

    @property
    def plain(self) -> bool:
        """Whether the ring is the smooth surface plus no more than sensor noise."""
        return self.rms <= _NOISE[0]

    def surface(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The fitted surface on rows y0:y1, columns x0:x1: (y1−y0)×(x1−x0)×C float32."""
        y = ((np.arange(y0, y1) - self.centre[0]) / self.scale).astype(np.float32)[:, None, None]
        x = ((np.arange(x0, x1) - self.centre[1]) / self.scale).astype(np.float32)[None, :, None]
        c = self.coef.astype(np.float32)
        # c0 + c1·x + c2·y + c3·x² + c4·xy + c5·y², as (c0 + c1·x + c3·x²) + y·(c2 + c4·x + c5·y)
        return (c[0] + x * (c[1] + c[3] * x)) + y * ((c[2] + c[4] * x) + c[5] * y)


def fit_backdrop(image: np.ndarray, hole: np.ndarray) -> Backdrop | None:
    """:class:`Backdrop` of ``image`` (H×W×C) around ``hole`` (H×W bool); None without enough ring."""
    import cv2

    if not hole.any() or hole.all():
        return None
    dist = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 3)
    ring = ~hole & (dist <= _RING)
    ry, rx = np.nonzero(ring)
    if len(ry) < 24:
        return None
    ys, xs = np.nonzero(hole)
    centre, scale = (ys.mean(), xs.mean()), max(np.ptp(ys), np.ptp(xs), 1) / 2 + _RING  # coordinates of order 1
    y, x = (ry - centre[0]) / scale, (rx - centre[1]) / scale
    a = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], 1)
    values = image.reshape(image.shape[0], image.shape[1], -1)[ry, rx].astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, values, rcond=None)  # 6×C
    return Backdrop(coef, centre, scale, float(np.sqrt(((a @ coef - values) ** 2).mean())), ring, _enclosed(hole))


def _enclosed(hole: np.ndarray) -> float:
    """The share of ``hole``'s outline (its pixels next to another or on the array's frame) that borders
    known pixels rather than the frame: 1 for a hole inside the picture, less for one on its edge."""
    import cv2

    inner = hole & ~cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT,
                              borderValue=1).astype(bool)  # outline pixels next to a known one
    framed = hole.copy()
    framed[1:-1, 1:-1] = False  # hole pixels on the frame
    return float(inner.sum() / max(1, (inner | framed).sum()))


def _fill(image: np.ndarray, hole: np.ndarray, sweeps: int, trend: Backdrop | bool) -> np.ndarray:
    out = image.astype(np.float32, copy=True)
    if out.ndim == 2:
        out = out[..., None]
    if not hole.any():
        return out
    if hole.all():
        out[:] = out.reshape(-1, out.shape[2]).mean(0)
        return out
    ys, xs = np.nonzero(hole)
    y0, x0 = max(0, ys.min() - _CONTEXT), max(0, xs.min() - _CONTEXT)
    y1, x1 = min(hole.shape[0], ys.max() + 1 + _CONTEXT), min(hole.shape[1], xs.max() + 1 + _CONTEXT)
    values, unknown = out[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    if trend and trend.weight > 0:
        # the membrane is linear in its border values: the membrane of (image − w·quadratic), plus w·quadratic
        # back, is the plain membrane plus w × the quadratic's own departure from a membrane (0 on the border)
        surface = trend.weight * trend.surface(y0, y1, x0, x1)
        filled = _membrane(values - surface, unknown, sweeps) + surface
    else:
        filled = _membrane(values, unknown, sweeps)
    values[unknown] = filled[unknown]
    return out


def _membrane(values: np.ndarray, unknown: np.ndarray, sweeps: int) -> np.ndarray:
    """The membrane over ``unknown`` (h×w bool) of ``values`` (h×w×C float32), coarse to fine."""
    import cv2

    levels = [(values, (~unknown).astype(np.float32))]
    while (levels[-1][1] == 0).sum() > _DIRECT:
        coarser = _half(*levels[-1])
        # solve this level when the coarser one would no longer have whole known blocks all around the
        # hole (a thin margin, an odd size): its membrane would run flat where they are missing
        if _enclosed(coarser[1] == 0) < _enclosed(levels[-1][1] == 0) - 0.05:
            break
        levels.append(coarser)
    u = _solve(*levels[-1])
    for v, known in reversed(levels[:-1]):
        h, w = known.shape
        up = cv2.resize(u, (2 * u.shape[1], 2 * u.shape[0]), interpolation=cv2.INTER_LINEAR)
        u = _relax(up.reshape(up.shape[0], up.shape[1], -1)[:h, :w], v, known, sweeps)
    return u


def _relax(start: np.ndarray, values: np.ndarray, known: np.ndarray, sweeps: int) -> np.ndarray:
    """Jacobi sweeps of Laplace's equation on the unknown cells, from ``start``; known cells keep ``values``."""
    import cv2

    free = (known == 0).astype(np.float32)[..., None]
    fixed = values * (1 - free)  # the known cells' values, 0 on the free ones
    u = start * free + fixed
    mean = np.empty_like(u)
    target = mean[..., 0] if u.shape[2] == 1 else mean  # OpenCV returns one channel as H×W
    for _ in range(sweeps):
        cv2.filter2D(u, -1, _NEIGHBOURS, dst=target, borderType=cv2.BORDER_REPLICATE)
        np.multiply(mean, free, out=u)  # a blend, not a masked copy: two plain passes, much faster
        u += fixed
    return u


def _solve(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Laplace's equation on the unknown cells solved exactly: dense LU for the usual few hundred to
    :data:`_DIRECT` cells (a sparse solver's import alone costs a command 0.25 s), sparse LU past twice
    that. Each unknown cell is the mean of its neighbours inside the array (the array's edge reflects),
    known cells keep ``values``."""
    h, w = known.shape
    free = known == 0
    index = np.full((h, w), -1, np.int64)
    n = int(free.sum())
    index[free] = np.arange(n)
    ys, xs = np.nonzero(free)
    rows, cols, coef = [np.arange(n)], [np.arange(n)], [np.zeros(n)]
    rhs = np.zeros((n, values.shape[2]), np.float64)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        coef[0][inside] += 1.0  # the diagonal: how many neighbours this cell has
        j = np.where(inside, index[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)], -1)
        unknown_nb = inside & (j >= 0)
        rows.append(np.nonzero(unknown_nb)[0])
        cols.append(j[unknown_nb])
        coef.append(-np.ones(int(unknown_nb.sum())))
        known_nb = inside & (j < 0)
        rhs[known_nb] += values[ny[known_nb], nx[known_nb]]
    rows, cols, coef = np.concatenate(rows), np.concatenate(cols), np.concatenate(coef)
    u = values.astype(np.float32, copy=True)
    if n <= 2 * _DIRECT:
        matrix = np.zeros((n, n))
        np.add.at(matrix, (rows, cols), coef)
        solution = np.linalg.solve(matrix, rhs) if n else rhs
    else:  # a hole too large for its ring to reach the coarser levels (a thin margin around a huge hole)
        from scipy.sparse import coo_matrix
        from scipy.sparse.linalg import splu

        solution = splu(coo_matrix((coef, (rows, cols)), shape=(n, n)).tocsc()).solve(rhs)
    u[free] = solution.astype(np.float32)
    return u


def _half(values: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One pyramid level down: each 2×2 block → the mean of its pixels, known where all four are."""
    h, w = known.shape
    hh, hw = (h + 1) // 2, (w + 1) // 2
    pad = ((0, 2 * hh - h), (0, 2 * hw - w))  # an odd last row or column: its edge repeated
    sums = np.pad(values * known[..., None], (*pad, (0, 0)), mode="edge")
    counts = np.pad(known, pad, mode="edge")
    sums = sums.reshape(hh, 2, hw, 2, -1).sum((1, 3))
    counts = counts.reshape(hh, 2, hw, 2).sum((1, 3))
    # only whole known blocks stay known: a partly known block's mean sits off its centre, which would
    # bend the coarse solution (a linear ramp came back 1.2 grey levels off instead of 0.1)
    return sums / np.maximum(counts, 1e-6)[..., None], (counts == 4).astype(np.float32)
