"""Pixel helpers: the fast every-k-th-pixel copy picks exactly what NumPy's slice picks; merged planes are
what NumPy stacks and broadcasts."""
from __future__ import annotations

import numpy as np
import pytest

from autoinpaint.imaging.pixels import every_kth, merge


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_merge_is_the_stack_and_the_broadcast(dtype, channels):
    rng = np.random.default_rng(channels)
    planes = [(rng.random((37, 53)) * 200).astype(dtype) for _ in range(channels)]
    merged = merge(planes)
    assert merged.shape == (37, 53, channels) and merged.dtype == dtype and merged.flags.c_contiguous
    assert np.array_equal(merged, np.stack(planes, axis=2))
    values = (rng.random((37, 53, channels)) * 100).astype(dtype)
    assert np.array_equal(values * merge([planes[0]] * channels), values * planes[0][..., None])
    view = merge([planes[0][::2, 1::3]])   # a strided view: a contiguous copy
    assert view.flags.c_contiguous and np.array_equal(view[..., 0], planes[0][::2, 1::3])
