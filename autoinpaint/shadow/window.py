"""The part of the photo a cast shadow is searched in: a window around the object (a shadow is attached
to it), and its working copy, downscaled to at most ``WORK_SIZE`` px (:class:`Window`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging.pixels import every_kth, to_rgb8
from ..mask.refine import disk

WORK_SIZE = 384          # longest side (px) of the window's working copy


@dataclass
class Window:
    """The part of the photo a shadow is searched in, and its working copy (downscaled by ``scale``).

    box: (x0, y0, x1, y1) half-open, full-resolution px; frame: which of its sides (top, bottom, left,
    right) are the photo's borders; small: H'×W'×3 float32, the working copy (8-bit RGB levels); obj,
    near, valid: H'×W' bool, the object, it grown by 2 px, the ground (neither, nor near ``others``, the
    other selected objects, or None)."""

    box: tuple[int, int, int, int]
    frame: tuple[bool, bool, bool, bool]
    scale: float
    small: np.ndarray = field(repr=False)
    obj: np.ndarray = field(repr=False)
    near: np.ndarray = field(repr=False)
    valid: np.ndarray = field(repr=False)
    others: np.ndarray | None = field(repr=False)

    @classmethod
    def around(cls, image: np.ndarray, mask: np.ndarray, exclude: np.ndarray | None, box: tuple[int, int, int, int],
               side: int, reach: tuple[float, float, float, float]) -> "Window":
        """The window reaching ``reach`` times ``side`` (px) beyond ``box`` (top, bottom, left, right), at
        most ``WORK_SIZE`` px across on its working copy; ``mask``, ``exclude``: H×W bool."""
        import cv2

        h, w = mask.shape
        top, bottom, left, right = (int(r * side) + 8 for r in reach)
        wx0, wy0 = max(box[0] - left, 0), max(box[1] - top, 0)
        wx1, wy1 = min(box[2] + right, w), min(box[3] + bottom, h)
        s = min(1.0, WORK_SIZE / max(wx1 - wx0, wy1 - wy0))
        size = (max(1, round((wx1 - wx0) * s)), max(1, round((wy1 - wy0) * s)))
        # every k-th pixel, then the area average: each working pixel still averages at least 9 of them, at
        # a fraction of the cost of averaging all (a 12 MP window: ~10× faster)
        k = max(1, int(1 / s) // 3)
        o = k // 2

        def working(region: np.ndarray) -> np.ndarray:
            """The window's part of ``region`` (H×W bool) on the working copy: any of it in a working pixel."""
            if s == 1:
                return region[wy0:wy1, wx0:wx1].copy()
            picked = every_kth(region.view(np.uint8), wy0 + o, wy1, wx0 + o, wx1, k)
            return cv2.resize(picked * np.uint8(255), size, interpolation=cv2.INTER_AREA) > 2

        picked = to_rgb8(every_kth(image, wy0 + o, wy1, wx0 + o, wx1, k))
        small = (picked if s == 1 else cv2.resize(picked, size, interpolation=cv2.INTER_AREA)).astype(np.float32)
        obj = working(mask)
        halo = disk(2)   # 2 px around what is not ground
        near = cv2.dilate(obj.astype(np.uint8), halo).astype(bool)
        valid, others = ~near, None
        if exclude is not None and exclude[wy0:wy1, wx0:wx1].any():
            others = working(exclude)
            valid &= ~cv2.dilate(others.astype(np.uint8), halo).astype(bool)
        return cls((wx0, wy0, wx1, wy1), (wy0 == 0, wy1 == h, wx0 == 0, wx1 == w), s, small, obj, near, valid,
                   others)
