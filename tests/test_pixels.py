"""Pixel helpers: the fast every-k-th-pixel copy picks exactly what NumPy's slice picks."""
from __future__ import annotations

import numpy as np
import pytest

from autoinpaint.imaging.pixels import every_kth


@pytest.mark.parametrize("shape,dtype", [((301, 403, 3), np.uint8), ((301, 403), np.uint8),
                                         ((203, 157, 1), np.uint16), ((200, 160, 4), np.uint16),
                                         ((97, 401, 2), np.uint8)])
def test_every_kth_is_the_strided_slice(shape, dtype):
    rng = np.random.default_rng(len(shape) * 7 + shape[0])
    image = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    h, w = shape[:2]
    cases = [(0, h, 0, w), (h - 5, h, w - 7, w), (1, h, 2, w - 1)]   # whole, a corner, cut by the edges
    cases += [tuple(int(v) for v in (*sorted(rng.integers(0, h, 2) + [0, 1]), *sorted(rng.integers(0, w, 2) + [0, 1])))
              for _ in range(20)]
    for k in range(1, 8):
        for y0, y1, x0, x1 in cases:
            picked = every_kth(image, y0, y1, x0, x1, k)
            assert picked.flags.c_contiguous
            assert np.array_equal(picked, image[y0:y1:k, x0:x1:k]), (k, y0, y1, x0, x1)
