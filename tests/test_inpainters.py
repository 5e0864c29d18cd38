"""Classical inpainters fill holes plausibly and deterministically."""
from __future__ import annotations

import numpy as np
import pytest

from autoinpaint.inpaint import load_inpainter


def psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-9))


@pytest.fixture
def smooth():
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    img = np.stack([xx / 160 * 200 + 20, yy / 120 * 200 + 20, np.full_like(xx, 128)], 2)
    return img.astype(np.uint8)


@pytest.mark.parametrize("name", ["hybrid", "patchmatch", "telea", "ns"])
def test_fills_smooth_hole(smooth, name):
    mask = np.zeros(smooth.shape[:2], np.uint8)
    mask[50:70, 60:90] = 255
    damaged = smooth.copy()
    damaged[mask > 0] = (255, 0, 0)
    out = load_inpainter(name)(damaged, mask)
    assert out.shape == smooth.shape and out.dtype == np.uint8
    hole = mask > 0
    assert psnr(out[hole], smooth[hole]) > 24                 # red paint is gone (it scores ~5 dB)
    assert psnr(damaged[hole], smooth[hole]) < 10


def test_patchmatch_is_deterministic(smooth):
    rng = np.random.default_rng(0)
    img = np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[40:80, 40:100] = 255
    for name in ("patchmatch", "hybrid"):
        inpainter = load_inpainter(name)
        assert np.array_equal(inpainter(img, mask), inpainter(img, mask))


def test_auto_is_classical_and_says_so(capsys):
    inp = load_inpainter("auto")
    assert inp.name == "hybrid"
    assert "classical" in capsys.readouterr().err
    assert load_inpainter("auto", quiet=True) is inp            # loaded once per process


def test_hybrid_keeps_patchmatch_detail_on_ns_colours():
    """hybrid = NS low frequencies + PatchMatch high frequencies, only inside the hole."""
    import cv2

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    img = np.clip(np.stack([xx, yy, xx + yy], 2) + rng.normal(0, 12, (120, 160, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 50:110] = 255
    out = load_inpainter("hybrid")(img, mask)
    hole = mask > 0
    assert np.array_equal(out[~hole], img[~hole])
    low = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 2)  # noqa: E731
    ns, pm = load_inpainter("ns")(img, mask), load_inpainter("patchmatch")(img, mask)
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    assert np.abs(low(out) - low(ns))[inner].mean() < 2.0       # colours of Navier–Stokes
    detail = lambda a: np.abs(cv2.Laplacian(a.astype(np.float32), cv2.CV_32F))[inner].mean()  # noqa: E731
    assert detail(out) > 0.8 * detail(pm) > 2 * detail(ns)     # texture of PatchMatch
