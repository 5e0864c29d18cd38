"""What tells a cast shadow from other dark ground beside the object (used by :mod:`.find`).

A shadow darkens the ground's channels alike (it keeps the ground's chroma), or, in the sun's shadow
that only the blue sky lights, red more than green and green more than blue; a stain or a dark thing
darkens them otherwise. And a shadow's umbra stands out of the ground's own texture: the gaps between
coarse stones beside an object that casts none are no darker than the darkest spots of the ground
anywhere around. And how well the shadow can be taken out at all: on coarse texture its outline is
placed only to within a pixel or two, which costs most where the outline is long for the shadow's area
(a small or thin shadow), and, in a JPEG, what relighting does to the compression's error.
"""
from __future__ import annotations

import numpy as np

from ..imaging.pixels import channel_spread, grey, merge, to_rgb8
from .outline import normconv

SKY_MIN = 0.12           # a sky-lit shadow: red darkened more than blue by at least this share of the mean
SKY_MAX = 1.0            # ... and at most this (beyond, a dark blue thing rather than a shadow)
TEXTURE_PCT = 99         # the lit ground's own darkest spots: this percentile of its darkness
ERROR_SCALE = 2.3        # the relit shadow's expected error: this many times the texture's spread (grey
ERROR_AREA = 3.0         # levels) times (outline / area + this / √area), px (the bench's median, round 25)
ERROR_RING = 25          # px: the lit ground around the shadow whose texture is measured (from 2 px out),
ERROR_LOCAL = 16         # about its own level there (a blur of this σ, px): not the step between two grounds
ERROR_SIZE = 256         # measured on every k-th pixel of the matte's box and ring, about this many across or fewer
# a JPEG's error once relit is measured on tiles of lit ground: a JPEG's coding unit (px, 4:2:0), at most this
TILE = 16                # many of them, from up to this far (px) around the shadow
TILES = 256
TILE_RING = 64


def sky_shape(ratio: np.ndarray, dark: np.ndarray, near: np.ndarray) -> np.ndarray | None:
    """The shape across R, G, B (mean 1) of a sky-lit shadow's darkening, measured on the darker half
    of ``near`` (H'×W' bool: the dark ground touching the object); ``ratio`` (H'×W'×3) is the
    brightness over the lit ground's, ``dark`` (H'×W') 1 − its mean over channels. None when the
    channels darken alike, or not in a sky's way (the shadow must then keep the ground's chroma)."""
    if near.sum() < 16:
        return None
    loss = 1 - ratio[near & (dark >= np.percentile(dark[near], 50))]
    shape = np.median(loss / np.maximum(loss.mean(axis=1, keepdims=True), 1e-6), axis=0)
    shape /= shape.mean()
    tilt = float(shape[0] - shape[2])
    if not SKY_MIN <= tilt <= SKY_MAX or not shape[0] + SKY_MIN / 2 >= shape[1] >= shape[2] - SKY_MIN / 2:
        return None
    return shape.astype(np.float32)


def chroma_spread(ratio: np.ndarray, dark: np.ndarray, shape: np.ndarray | None) -> np.ndarray:
    """Per pixel (H'×W'), how unlike a shadow's its channels darken: the spread of ``ratio`` across
    channels, or with a sky-lit ``shape`` (:func:`sky_shape`), the spread of the darkening about
    ``dark`` × ``shape``."""
    if shape is None:
        return channel_spread(ratio)
    off = (1 - ratio) - merge([dark * shape[c] for c in range(ratio.shape[2])])
    return channel_spread(off)


def headings(obj: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """n×2 float64 (y, x): for each label 0..n−1 of ``labels`` (H×W int), the mean of the unit vectors
    from ``obj``'s centre (H×W bool) to its pixels: which way that piece lies from the object, and how
    one-sidedly (length 1: all one way, 0: all around). Zeros for a label without pixels, or no object."""
    oy, ox = np.nonzero(obj)
    ys, xs = np.nonzero(labels)
    if not oy.size or not ys.size:
        return np.zeros((n, 2))
    piece = labels[ys, xs]
    vy, vx = ys - oy.mean(), xs - ox.mean()
    norm = np.maximum(np.hypot(vx, vy), 1e-6)
    count = np.maximum(np.bincount(piece, minlength=n), 1)
    sums = np.stack([np.bincount(piece, vy / norm, minlength=n), np.bincount(piece, vx / norm, minlength=n)], 1)
    return sums / count[:, None]


def texture_contrast(dark: np.ndarray, ground: np.ndarray, darkening: float, dark_min: float,
                     disk: np.ndarray, reach: int) -> float:
    """How many times the umbra's ``darkening`` is the lit ground's own darkest spots': the
    ``TEXTURE_PCT`` percentile of ``dark`` (H'×W', texture-smoothed as the search's) over ``ground``
    (H'×W' bool, the ground away from the candidate), without the areas darker than ``dark_min`` that
    ``disk`` (the search's neck) fits in, grown by ``reach`` px: other shadows. Below ~1 the candidate
    is what the texture shows anywhere; 99 when there is too little ground to tell."""
    import cv2

    others = cv2.morphologyEx((ground & (dark >= dark_min)).astype(np.uint8), cv2.MORPH_OPEN, disk)
    ground = ground & ~cv2.dilate(others, np.ones((2 * reach + 1,) * 2, np.uint8)).astype(bool)
    if ground.sum() < 64:
        return 99.0
    spots = max(float(np.percentile(dark[ground], TEXTURE_PCT)), darkening / 99)
    return round(min(darkening / spots, 99.0), 3)


def expected_error(image: np.ndarray, not_ground: np.ndarray, box: tuple[int, int, int, int],
                   matte: np.ndarray) -> float:
    """The mean absolute error (grey levels) to expect where the shadow was, once relit: the spread of
    the lit ground's brightness around it (its standard deviation about the local level, texture and
    noise alike, the step to another ground beside it left out: what an outline a pixel or two off and
    a darkening a per cent or two off are relit with) times the length of its outline over its area
    (the share of it those pixels make; the object's edge is no outline), plus ``ERROR_AREA`` over the
    square root of its area (the darkening's error: fewer texture units under it), times
    ``ERROR_SCALE`` (the median over the bench's generated scenes, ``benchmarks/bench_shadow.py``).

    image: H×W×C as decoded; not_ground: H×W bool, the selected objects; box: (x0, y0, x1, y1), the
    matte's, full-resolution px; matte: its (y1−y0)×(x1−x0) float coverage. 0 when the shadow's half-way
    line encloses nothing outside the objects or no lit ground is around it."""
    import cv2

    h, w = not_ground.shape
    x0, y0, x1, y1 = box
    X0, Y0, X1, Y1 = max(x0 - ERROR_RING, 0), max(y0 - ERROR_RING, 0), min(x1 + ERROR_RING, w), min(y1 + ERROR_RING, h)
    k = max(1, max(X1 - X0, Y1 - Y0) // ERROR_SIZE)
    m = np.zeros((Y1 - Y0, X1 - X0), np.float32)
    m[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0] = matte
    m, objects = m[::k, ::k], not_ground[Y0:Y1:k, X0:X1:k]
    near = cv2.dilate(objects.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    inside = (m >= 0.5) & ~objects
    area = int(inside.sum())
    # the outline: the half-way line's pixels with a pixel of lit ground beside them (the photo's
    # border is none: the erosion keeps what meets it)
    outline = inside & ~cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~near
    away = cv2.distanceTransform((m <= 0.02).astype(np.uint8), cv2.DIST_L2, 3) * k
    ring = (m <= 0.02) & ~near & (away > 2) & (away <= ERROR_RING)
    if area == 0 or ring.sum() < 16:
        return 0.0
    brightness = grey(to_rgb8(image[Y0:Y1:k, X0:X1:k]).astype(np.float32))
    spread = float((brightness - normconv(brightness, ring, ERROR_LOCAL / k, tent=True))[ring].std())
    return round(float(ERROR_SCALE * spread * (outline.sum() / (area * k) + ERROR_AREA / (k * np.sqrt(area)))), 2)


def compression_error(image: np.ndarray, not_ground: np.ndarray, box: tuple[int, int, int, int],
                      matte: np.ndarray, darkening: np.ndarray, qtables: dict, subsampling: int | None = None,
                      origin: tuple[int, int] = (0, 0)) -> float:
    """The error (grey levels, mean absolute) a JPEG's compression leaves in its relit umbra: a JPEG
    quantises the shadow's darkened texture with the same steps as lit ground's, losing more of it, and
    relighting scales that loss up by 1 / (1 − darkening). It adds to :func:`expected_error`'s as an
    independent error does (:func:`relit_error`). Measured on the photo's own lit ground around the
    shadow: up to ``TILES`` of its 16-px tiles (on the JPEG's block grid, which starts at ``origin``, y
    and x; no object, no shadow in them) darkened as the umbra is, compressed with the photo's
    quantisation ``qtables`` (PIL's) and ``subsampling``, decoded and relit: their mean absolute
    difference from themselves. 0 when no tile of lit ground is near.

    image: H×W×C as decoded; not_ground: H×W bool, the selected objects; box: (x0, y0, x1, y1), the
    matte's, full-resolution px; matte: its (y1−y0)×(x1−x0) float coverage; darkening: per channel."""
    import io

    from PIL import Image

    h, w = not_ground.shape
    x0, y0, x1, y1 = box
    # the tiles of the grid around the box, those with no object and no shadow in them
    oy, ox = origin
    X0, Y0 = ox + max(0, x0 - TILE_RING - ox) // TILE * TILE, oy + max(0, y0 - TILE_RING - oy) // TILE * TILE
    X1 = X0 + max(0, min(x1 + TILE_RING, w) - X0) // TILE * TILE
    Y1 = Y0 + max(0, min(y1 + TILE_RING, h) - Y0) // TILE * TILE
    if X1 <= X0 or Y1 <= Y0:
        return 0.0
    busy = not_ground[Y0:Y1, X0:X1].copy()
    top, left = max(y0, Y0), max(x0, X0)   # where the matte's box and the tiles' area meet
    shadow = matte[top - y0:max(top, Y1) - y0, left - x0:max(left, X1) - x0] > 0
    busy[top - Y0:top - Y0 + shadow.shape[0], left - X0:left - X0 + shadow.shape[1]] |= shadow
    ty, tx = (Y1 - Y0) // TILE, (X1 - X0) // TILE
    free = ~busy.reshape(ty, TILE, tx, TILE).any(axis=(1, 3))
    rows, cols = np.nonzero(free)
    if not len(rows):
        return 0.0
    pick = np.linspace(0, len(rows) - 1, min(TILES, len(rows))).round().astype(int)
    side = int(np.ceil(np.sqrt(len(pick))))
    rgb = to_rgb8(image[Y0:Y1, X0:X1]).reshape(ty, TILE, tx, TILE, 3).transpose(0, 2, 1, 3, 4)
    tiles = rgb[rows[pick], cols[pick]]   # k×16×16×3, laid out side by side (the last row's gaps: tiles again)
    tiles = np.concatenate([tiles, tiles[:side * side - len(tiles)]])
    mosaic = tiles.reshape(side, side, TILE, TILE, 3).transpose(0, 2, 1, 3, 4).reshape(side * TILE, side * TILE, 3)
    grey_photo = image.shape[2] < 3   # its darkening: the channels' mean
    keep = 1 - np.clip(np.asarray(darkening, np.float32), 0, 0.95)
    keep = np.full(3, keep.mean(), np.float32) if grey_photo else keep
    dark = np.clip(np.rint(mosaic * keep), 0, 255).astype(np.uint8)
    options = {} if grey_photo or subsampling not in (0, 1, 2) else {"subsampling": subsampling}
    buffer = io.BytesIO()
    try:
        Image.fromarray(dark[..., 0] if grey_photo else dark).save(buffer, "JPEG", qtables=qtables, **options)
        back = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float32)
    except (OSError, ValueError, TypeError, KeyError):   # tables PIL cannot write: no estimate
        return 0.0
    relit = (back / keep).reshape(side, TILE, side, TILE, 3).transpose(0, 2, 1, 3, 4).reshape(side * side, -1)
    error = np.abs(relit - tiles.reshape(side * side, -1).astype(np.float32))[:len(pick)]
    return round(float(error.mean()), 2)


def relit_error(error: float, compression: float) -> float:
    """The error to expect where the shadow was, once relit (grey levels): the outline's and darkening's
    (:func:`expected_error`) and a JPEG's (:func:`compression_error`), independent, in quadrature (on
    the bench's JPEG sets, q80-95 at 480x360 to 12 MP, the MAD over it has a median of 1.01, within ×1.6
    of it on 88 % of the scenes; summed, the small photos' and the large ones' medians were 0.7 and 1.5)."""
    return round(float(np.hypot(error, compression)), 2)
