"""Crop-and-stitch: crop regions match diffusers' get_crop_region; pixels outside alpha stay exact."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from autoinpaint import Composite, Inpaint
from autoinpaint.inpaint import BaseInpainter, InpaintResult
from autoinpaint.composite import blend, crop_region, stitch
from autoinpaint.errors import InputError
from autoinpaint.state import EditState
from conftest import gradient_photo


@pytest.mark.parametrize("seed", range(12))
def test_crop_region_matches_diffusers(seed):
    from diffusers.image_processor import VaeImageProcessor

    rng = np.random.default_rng(seed)
    h, w = rng.integers(60, 300, 2)
    mask = np.zeros((h, w), np.uint8)
    x0, y0 = rng.integers(0, w - 5), rng.integers(0, h - 5)
    mask[y0:y0 + rng.integers(1, 40), x0:x0 + rng.integers(1, 40)] = 255
    pad = int(rng.integers(0, 50))
    pw, ph = [(512, 512), (768, 512), (512, 1024)][seed % 3]
    ours = crop_region(mask, pad, pw / ph)
    theirs = VaeImageProcessor.get_crop_region(Image.fromarray(mask), pw, ph, pad)
    assert ours == tuple(int(v) for v in theirs)


def test_crop_region_without_aspect_and_whole_image():
    mask = np.zeros((100, 200), np.uint8)
    mask[0:10, 190:200] = 1                          # touches the top-right corner
    assert crop_region(mask, 16) == (174, 0, 200, 26)
    assert crop_region(mask, None) == (0, 0, 200, 100)
    with pytest.raises(InputError):
        crop_region(np.zeros((5, 5), np.uint8), 4)


def test_blend_exact_where_alpha_zero_and_one():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 65535, (50, 60, 3), dtype=np.uint16)
    b = rng.integers(0, 65535, (50, 60, 3), dtype=np.uint16)
    alpha = rng.choice([0.0, 0.3, 1.0], (50, 60)).astype(np.float32)
    out = blend(a, b, alpha)
    assert np.array_equal(out[alpha == 0], a[alpha == 0])
    assert np.array_equal(out[alpha == 1], b[alpha == 1])
    mid = alpha == 0.3
    assert np.allclose(out[mid], a[mid] * 0.7 + b[mid] * 0.3, atol=1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_blend_on_views_of_every_mode(dtype, channels):
    """Crops of larger photos (strided views, as the stitch and the shadow's fill pass them), every
    channel count: alpha 1 gives the inpainted value, 0 the input's, in between the rounded mix."""
    rng = np.random.default_rng(channels)
    top = np.iinfo(dtype).max
    photo = rng.integers(0, top, (70, 90, channels), endpoint=True).astype(dtype)
    painted = rng.integers(0, top, (70, 90, channels), endpoint=True).astype(dtype)
    alpha = rng.choice([0.0, 0.25, 0.6, 1.0], (40, 50)).astype(np.float32)
    a, b = photo[10:50, 20:70], painted[25:65, 3:53]
    out = blend(a, b, alpha)
    assert out.dtype == dtype and out.shape == a.shape
    assert np.array_equal(out[alpha == 0], a[alpha == 0]) and np.array_equal(out[alpha == 1], b[alpha == 1])
    soft = (alpha > 0) & (alpha < 1)
    mix = a[soft] * (1 - alpha[soft, None]) + b[soft] * alpha[soft, None].astype(np.float64)
    assert np.abs(out[soft] - mix).max() <= 0.5 + 1e-3 * top / 255


class RecordingInpainter(BaseInpainter):
    """Paints the hole a constant colour and records the crop it was given."""

    name = "recording"

    def __init__(self, crop_aspect=None):
        self.crop_aspect, self.calls = crop_aspect, []

    def inpaint(self, image, mask, request):
        self.calls.append((image.shape, mask.shape))
        out = image.copy()
        out[mask > 0] = (255, 0, 255)
        return InpaintResult(out)


@pytest.mark.parametrize("where", ["center", "corner", "edge"])
def test_inpaint_step_crops_and_stitch_is_exact(where):
    img = gradient_photo(623, 401)
    alpha = np.zeros((401, 623), np.float32)
    y, x = {"center": (200, 300), "corner": (0, 0), "edge": (380, 610)}[where]
    alpha[y:y + 21, x:x + 13] = 1.0
    alpha[max(y - 2, 0):y, x:x + 13] = 0.5
    rec = RecordingInpainter()
    state = EditState(image=img, alpha=alpha)
    state = Composite()(Inpaint(rec, padding_mask_crop=10)(state))
    x0, y0, x1, y1 = state.crop
    assert rec.calls[0][0] == (y1 - y0, x1 - x0, 3)                  # inpainter saw only the crop
    assert x1 - x0 < 623 and y1 - y0 < 401
    assert state.result.shape == img.shape
    assert np.array_equal(state.result[alpha == 0], img[alpha == 0])
    assert np.all(state.result[alpha == 1] == (255, 0, 255))


def test_inpaint_step_grows_crop_to_inpainter_aspect():
    img = gradient_photo(400, 300)
    alpha = np.zeros((300, 400), np.float32)
    alpha[100:110, 50:250] = 1
    rec = RecordingInpainter(crop_aspect=1.0)
    state = Inpaint(rec, padding_mask_crop=8)(EditState(image=img, alpha=alpha))
    x0, y0, x1, y1 = state.crop
    assert x1 - x0 == y1 - y0 == 216


def test_empty_alpha_never_reaches_the_inpainter():
    rec = RecordingInpainter()
    with pytest.raises(InputError, match="empty"):
        Inpaint(rec)(EditState(image=gradient_photo(50, 40), alpha=np.zeros((40, 50), np.float32)))
    assert rec.calls == []


def test_stitch_rejects_alpha_outside_crop():
    img = gradient_photo(50, 40)
    alpha = np.zeros((40, 50), np.float32)
    alpha[0, 0] = 1
    with pytest.raises(ValueError):
        stitch(img, img[10:20, 10:20], (10, 10, 20, 20), alpha)
