"""A large photo reaches the detector shrunk by ``zero_shot.shrink`` (halvings, then area averaging):
the boxes in the photo's pixels are those the plain one-step area resize gives, within 1 px."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.importorskip("transformers")
cv2 = pytest.importorskip("cv2")

from detect_fixtures import save_omdet_turbo  # noqa: E402

from autoinpaint.detect import zero_shot  # noqa: E402


def big_photo() -> np.ndarray:
    """1100×900: a smooth gradient, a bright sticker and a dark bar (≥ 4× the tiny model's 128² input)."""
    yy, xx = np.mgrid[0:900, 0:1100]
    img = np.stack([(xx * 0.2 + 30) % 256, (yy * 0.25 + 60) % 256, (xx + yy) * 0.1 % 256], -1).astype(np.uint8)
    img[300:420, 640:860] = (250, 245, 240)
    img[600:660, 100:500] = (20, 30, 40)
    return img


def test_shrink_halves_large_photos_only_and_stays_close_to_area_resize():
    img = big_photo()
    small = zero_shot.shrink(img, (128, 128))
    plain = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    assert small.shape == plain.shape == (128, 128, 3)
    assert np.abs(small.astype(int) - plain).mean() < 1.0
    medium = img[:400, :500]  # under 4× the target: one area resize, exactly as before
    np.testing.assert_array_equal(zero_shot.shrink(medium, (128, 128)),
                                  cv2.resize(medium, (128, 128), interpolation=cv2.INTER_AREA))


def subpixel_oracle(detector):
    """**Stands in for the network's forward pass only** (loader, processor, shrink and post-processing stay
    real): measures the bright sticker in the ``pixel_values`` the processor produced to a fraction of a
    pixel (the column and row profiles of its brightness above the flat background) and reports it as
    query 0 for the first phrase, in the model's normalised coordinates."""
    from types import SimpleNamespace

    import torch

    def forward(pixel_values, classes_input_ids=None, **_):
        plane = pixel_values[0].mean(0).double()
        bg, fg = plane.min(), plane.max()
        weight = ((plane - bg) / (fg - bg)).clamp(0, 1)
        hh, ww = plane.shape
        box = []
        for profile, n in ((weight.sum(0), ww), (weight.sum(1), hh)):
            where = torch.arange(n, dtype=torch.float64) + 0.5
            box.append(((profile * where).sum() / profile.sum() / n).item())  # centre
            box.append((profile.sum() / profile.max() / n).item())  # extent
        boxes = torch.tensor([[box[0], box[2], box[1], box[3]], [0.2, 0.2, 0.1, 0.1]])[None]
        logits = torch.full((1, 2, classes_input_ids.shape[0]), -6.0)
        logits[0, 0, 0] = 5.0
        return SimpleNamespace(decoder_class_logits=logits, decoder_coord_logits=boxes)

    return forward


def test_omdet_boxes_in_photo_pixels_match_the_one_step_resize(tmp_path, monkeypatch):
    """The tiny OmDet-Turbo's real loader, processor and box mapping; a sub-pixel oracle for the network:
    the sticker's box in the photo's pixels is the one the old one-step area resize gives, within 1 px, and
    it is where the sticker is (within the 128² input's resolution)."""
    from autoinpaint.detect import DetectParams, load_detector

    detector = load_detector(str(save_omdet_turbo(tmp_path / "omdet")), device="cpu")
    monkeypatch.setattr(detector.model, "forward", subpixel_oracle(detector))
    img = np.full((1000, 1300, 3), 90, np.uint8)  # ≥ 4× the 128² input: halved once
    img[333:471, 517:1003] = (250, 245, 240)  # the sticker: x 517..1003, y 333..471
    calls = []
    real = zero_shot.shrink
    monkeypatch.setattr(zero_shot, "shrink", lambda image, target: calls.append(target) or real(image, target))
    params = DetectParams(box_threshold=0.5)
    (new,) = detector.detect(img, ["price sticker"], params)
    assert calls == [(128, 128)]
    monkeypatch.setattr(zero_shot, "shrink", lambda image, target: cv2.resize(image, target,
                                                                             interpolation=cv2.INTER_AREA))
    (old,) = detector.detect(img, ["price sticker"], params)
    assert new.phrase == old.phrase == "price sticker"
    assert np.abs(np.subtract(new.box, old.box)).max() <= 1.0, (new.box, old.box)
    assert np.abs(np.subtract(new.box, (517, 333, 1003, 471))).max() <= 1300 / 128, new.box
