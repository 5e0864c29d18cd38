"""What tells a cast shadow from other dark ground beside the object (used by :mod:`.find`).

A shadow darkens the ground's channels alike (it keeps the ground's chroma), or, in the sun's shadow
that only the blue sky lights, red more than green and green more than blue; a stain or a dark thing
darkens them otherwise. And a shadow's umbra stands out of the ground's own texture: the gaps between
coarse stones beside an object that casts none are no darker than the darkest spots of the ground
anywhere around.
"""
from __future__ import annotations

import numpy as np

from ..imaging.pixels import channel_spread, merge

SKY_MIN = 0.12           # a sky-lit shadow: red darkened more than blue by at least this share of the mean
SKY_MAX = 1.0            # ... and at most this (beyond, a dark blue thing rather than a shadow)
TEXTURE_PCT = 99         # the lit ground's own darkest spots: this percentile of its darkness


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
