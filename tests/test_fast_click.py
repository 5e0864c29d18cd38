"""A repeat click's mask upscaling at SAM's real sizes (256² logits; SAM 1's 1024² padded input): the
windowed, NumPy-located interpolation (or OpenCV's resize where the mask is large) gives the mask of
PyTorch's full interpolation."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sam_fixtures import assert_same_mask  # noqa: E402


def test_upscaling_at_sam_sizes_equals_the_full_interpolation(monkeypatch):
    from autoinpaint.models import device
    from autoinpaint.segment.upscale import upscale_masks

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:256, 0:256]
    sizes = [(900, 1200), (3000, 4000), (4000, 3000), (480, 640), (1000, 1000), (333, 1777)]
    for busy in (False, True):  # one torch thread on a busy CPU: the same masks
        monkeypatch.setattr(device, "cpu_is_busy", lambda: busy)
        for k, size in enumerate(sizes):
            blobs = [(6 - np.hypot(yy - rng.uniform(0, 256), xx - rng.uniform(0, 256)) * rng.uniform(0.05, 1.5)
                      + rng.normal(0, 0.3, (256, 256))).astype(np.float32) for _ in range(1 + k % 2)]
            logits = np.stack(blobs) if k != 3 else rng.normal(0.3, 1, (1, 256, 256)).astype(np.float32)
            crop = (round(1024 * size[0] / max(size)), round(1024 * size[1] / max(size)))
            for square, c in ((1024, crop), (None, None)):
                got = upscale_masks(logits, size, c, square)
                assert_same_mask(got, logits, size, c, square)
            assert got.any() and not got.all()
    # nothing positive, or positive only in SAM 1's padding: an empty mask
    assert not upscale_masks(-np.ones((1, 256, 256), np.float32), (900, 1200), (768, 1024), 1024).any()
    padding = -np.ones((1, 256, 256), np.float32)
    padding[0, 200:, :] = 5  # rows 800+ of the 1024² input: below the 768 rows the image fills
    assert not upscale_masks(padding, (900, 1200), (768, 1024), 1024).any()


def test_upscaling_from_threads_at_once_gives_each_call_its_own_mask():
    """The full resize writes into arrays kept between calls; calls from several threads at once (the web
    app's) must not share them: each gets the mask it gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    from autoinpaint.segment.upscale import upscale_masks

    rng = np.random.default_rng(5)
    calls = []
    for k in range(12):
        size = [(900, 1200), (768, 1024), (1000, 1000)][k % 3]
        crop = (round(1024 * size[0] / max(size)), round(1024 * size[1] / max(size)))
        calls.append((rng.normal(0.2 * (k % 4), 1, (1, 256, 256)).astype(np.float32), size, crop, 1024))
    alone = [upscale_masks(*c) for c in calls]
    assert all(m.mean() > 0.1 for m in alone)  # large masks: the full-resize path
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda c: upscale_masks(*c), calls * 3))
    for k, got in enumerate(together):
        np.testing.assert_array_equal(got, alone[k % len(calls)])
