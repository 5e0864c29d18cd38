"""The offline (classical) segmenter on generated scenes with known masks (benchmarks/scenes.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoinpaint.segment.classical import ClassicalSegmenter  # noqa: E402
from autoinpaint.selection import Selection  # noqa: E402
from benchmarks.scenes import backdrop, real_scene, sticker_scene, studio_scene  # noqa: E402

W, H = 800, 560


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture(scope="module")
def seg():
    return ClassicalSegmenter()


def test_interface(seg):
    assert seg.name == "classical"
    sc = studio_scene(W, H, np.random.default_rng(0), "plain")
    m = seg(sc.image, Selection(points=(sc.point,)))
    assert m.dtype == bool and m.shape == (H, W)


@pytest.mark.parametrize("kind", ["plain", "gradient"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_single_click_on_studio_backdrop(seg, kind, seed):
    sc = studio_scene(W, H, np.random.default_rng(seed), kind)
    assert iou(seg(sc.image, Selection(points=(sc.point,))), sc.mask) >= 0.9


@pytest.mark.parametrize("make", [lambda r: studio_scene(W, H, r, "gradient"), lambda r: real_scene(W, H, r)],
                         ids=["studio", "real"])
def test_box(seg, make):
    ious = []
    for seed in (3, 4, 5):
        sc = make(np.random.default_rng(seed))
        ious.append(iou(seg(sc.image, Selection(boxes=(sc.box,))), sc.mask))
    assert np.median(ious) >= 0.9 and min(ious) >= 0.75, ious


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_click_on_price_sticker_selects_the_sticker_not_the_product(seg, seed):
    sc = sticker_scene(W, H, np.random.default_rng(seed))
    m = seg(sc.image, Selection(points=(sc.point,)))
    assert iou(m, sc.mask) >= 0.8
    # the product around the sticker stays unselected
    product = (np.abs(sc.background.astype(int) - sc.image.astype(int)).sum(axis=2) == 0) & ~sc.mask
    assert m.sum() < 1.5 * sc.mask.sum()
    assert (m & product).sum() < 0.1 * sc.mask.sum()


def _two_objects(rng):
    """Two flat-coloured objects side by side (touching) on a gradient backdrop."""
    img = backdrop(W, H, rng, "gradient")
    left = np.zeros((H, W), bool)
    right = np.zeros((H, W), bool)
    cv2.ellipse(left.view(np.uint8), (300, 280), (110, 150), 0, 0, 360, 1, -1)
    cv2.ellipse(right.view(np.uint8), (470, 280), (90, 120), 0, 0, 360, 1, -1)
    right &= ~left
    img[left] = (40, 70, 160)
    img[right] = (170, 50, 40)
    return img, left, right


def test_negative_point_excludes_a_region(seg):
    img, left, right = _two_objects(np.random.default_rng(0))
    both = left | right
    box = (185, 125, 565, 435)
    with_box = seg(img, Selection(boxes=(box,)))
    assert iou(with_box, both) >= 0.9  # the box alone takes both objects
    m = seg(img, Selection(boxes=(box,), negatives=((480, 280),)))
    assert iou(m, left) >= 0.85
    assert (m & right).sum() < 0.05 * right.sum()
    # the same with a click: positive on the left object, negative on the right one
    m = seg(img, Selection(points=((300, 280),), negatives=((480, 280),)))
    assert iou(m, left) >= 0.85
    assert (m & right).sum() < 0.05 * right.sum()


def test_two_boxes_give_the_union(seg):
    rng = np.random.default_rng(3)
    img = backdrop(W, H, rng, "plain")
    a = np.zeros((H, W), bool)
    b = np.zeros((H, W), bool)
    cv2.rectangle(a.view(np.uint8), (80, 100), (260, 300), 1, -1)
    cv2.circle(b.view(np.uint8), (600, 380), 90, 1, -1)
    img[a] = (30, 120, 60)
    img[b] = (200, 60, 150)
    m = seg(img, Selection(boxes=((70, 90, 272, 312), (500, 280, 702, 482))))
    assert iou(m & a, a) >= 0.9 and iou(m & b, b) >= 0.9
    assert iou(m, a | b) >= 0.9


def test_same_input_same_mask(seg):
    sc = real_scene(W, H, np.random.default_rng(7))
    sel = Selection(points=(sc.point,))
    assert np.array_equal(seg(sc.image, sel), seg(sc.image, sel))
