"""Mask stage semantics: object alpha 1, dilate by exact distance, feather ramp, blur, holes, islands."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from autoinpaint.errors import InputError
from autoinpaint.mask.refine import RefineMask, bbox, distance_outside, erode, fill_holes, hard_mask, make_alpha, \
    remove_small_islands
from autoinpaint.state import EditState


def disk(h=101, w=101, r=20, cx=50, cy=50):
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_object_alpha_one_and_dilate_exact_distance():
    m = disk()
    a = make_alpha(m, dilate=6, feather=0)
    assert np.all(a[m] == 1)
    d = distance_outside(m)
    assert np.array_equal(a > 0, d <= 6)
    assert set(np.unique(a)) <= {0.0, 1.0}


def test_feather_ramps_outward_to_zero():
    m = disk()
    a = make_alpha(m, dilate=10, feather=6)
    d = distance_outside(m)
    assert np.all(a[d <= 4] == 1)                     # solid part: dilate - feather
    ramp = (d > 4) & (d < 11)
    assert np.all((a[ramp] > 0) & (a[ramp] < 1))
    assert np.all(a[d >= 11] == 0)
    # monotone non-increasing along a ray leaving the object
    row = a[50, 70:90]
    assert np.all(np.diff(row) <= 1e-6)


def test_feather_wider_than_dilate_extends_outside():
    m = disk()
    a = make_alpha(m, dilate=0, feather=5)
    assert np.all(a[m] == 1)
    assert (a[~m] > 0).any()


def test_blur_matches_diffusers_pil_gaussian_outside_object():
    m = disk()
    a = make_alpha(m, blur=4)
    ref = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(4)),
                     np.float32) / 255
    assert np.allclose(a[~m], ref[~m])
    assert np.all(a[m] == 1)


def test_hard_mask_is_every_positive_alpha():
    a = np.array([[0, 0.001, 0.5, 1.0]], np.float32)
    assert hard_mask(a).tolist() == [[0, 255, 255, 255]]


def test_fill_holes_and_islands():
    m = disk(r=20) & ~disk(r=5)
    m[0:3, 0:3] = True                  # a 9-px island in the corner
    filled = fill_holes(m)
    assert filled[50, 50] and filled.sum() == disk(r=20).sum() + 9
    cleaned = remove_small_islands(filled, 10)
    assert not cleaned[0:3, 0:3].any() and cleaned[50, 50]


def test_refine_mask_step_and_errors():
    state = EditState(mask=disk())
    out = RefineMask(dilate=3, feather=2)(state)
    assert out.alpha.shape == (101, 101) and out.alpha[50, 50] == 1
    with pytest.raises(InputError, match="empty"):
        RefineMask()(EditState(mask=np.zeros((10, 10), bool)))
    with pytest.raises(InputError, match="empty"):
        RefineMask(min_area=10_000)(EditState(mask=disk()))
    with pytest.raises(InputError):
        RefineMask(dilate=-1)


def test_bbox_half_open():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True
    assert bbox(m) == (3, 2, 7, 5)
    assert bbox(np.zeros((3, 3), bool)) is None


@pytest.mark.parametrize("kw", [dict(dilate=8, feather=4), dict(dilate=0, feather=6, blur=3),
                                dict(erode=2, min_area=30, dilate=3), dict(fill_holes=False, dilate=5, blur=1.5)])
def test_windowed_refine_equals_whole_image(kw):
    """RefineMask works in a window around the object; the result equals the whole-image computation."""
    rng = np.random.default_rng(0)
    mask = disk(200, 300, r=25, cx=60, cy=40) & ~disk(200, 300, r=6, cx=60, cy=40)
    mask |= disk(200, 300, r=3, cx=5, cy=195)                   # a small island touching the border
    mask |= rng.random((200, 300)) > 0.9995                    # scattered specks
    state = RefineMask(**kw)(EditState(mask=mask.copy()))
    m = erode(mask, kw.get("erode", 0))
    m = remove_small_islands(m, kw.get("min_area", 0))
    if kw.get("fill_holes", True):
        m = fill_holes(m)
    expected = make_alpha(m, kw.get("dilate", 0), kw.get("feather", 0), kw.get("blur", 0))
    assert np.array_equal(state.mask, m)
    assert np.allclose(state.alpha, expected, atol=1e-6) and np.array_equal(state.alpha > 0, expected > 0)


def test_distance_outside_is_the_exact_euclidean_distance_every_call():
    """OpenCV's precise L2 transform is a few 1e-5 px off and not the same from call to call (OpenCV 5.1, one
    thread); the feather's alpha must not depend on which call it got: every call gives sqrt of the exact
    integer squared distance (scipy's exact EDT as the oracle)."""
    import cv2
    from scipy import ndimage

    from autoinpaint.mask.refine import distance_outside

    m = np.zeros((300, 400), np.uint8)
    cv2.circle(m, (200, 150), 60, 1, -1)
    cv2.rectangle(m, (20, 20), (90, 200), 1, -1)
    m = m.astype(bool)
    exact = np.sqrt(np.rint(ndimage.distance_transform_edt(~m) ** 2).astype(np.float32))
    threads = cv2.getNumThreads()
    try:
        for n in (1, threads):
            cv2.setNumThreads(n)
            for _ in range(6):
                assert np.array_equal(distance_outside(m), exact)
    finally:
        cv2.setNumThreads(threads)


# ------------------------------------------------------------------------------- the click's mask stage, fast
def photo_masks() -> list[np.ndarray]:
    """Object masks from real photos (thresholds of samples/, so ragged and touching the borders), a
    stripe pattern like a random-weight SAM mask's, specks, and the edge cases: empty, full, one row,
    one column, one pixel."""
    import cv2

    from conftest import ROOT

    masks = []
    for name, t in (("rocket.jpg", 90), ("catalogue_sticker.jpg", 150), ("coffee.jpg", 110)):
        grey = np.asarray(Image.open(ROOT / "samples" / name).convert("L").resize((240, 180)))
        masks.append(grey < t)
    stripes = np.zeros((120, 160), bool)
    stripes[:80, ::7] = stripes[:80, 1::7] = True  # thin teeth from the top border
    stripes[80:] = True
    masks.append(stripes)
    masks.append(np.random.default_rng(0).random((90, 130)) > 0.97)
    masks += [np.zeros((40, 50), bool), np.ones((40, 50), bool), np.array([[0, 1, 0, 0, 0, 0, 1]], bool),
              np.array([[0], [0], [1], [0], [0]], bool), np.ones((1, 1), bool)]
    edge = np.zeros((100, 100), np.uint8)
    cv2.circle(edge, (0, 99), 40, 1, -1)  # a quarter disk in a corner
    masks.append(edge.astype(bool))
    return masks


def reference_alpha(mask: np.ndarray, dilate: int, feather: int) -> np.ndarray:
    """make_alpha's dilate/feather as it was computed before the squared-distance table (commit 842c01e)."""
    dist = distance_outside(mask)
    if feather <= 0:
        return (dist <= dilate).astype(np.float32)
    solid = max(dilate - feather, 0)
    outer = solid + feather
    alpha = np.clip((outer + 1 - dist) / (feather + 1), 0, 1).astype(np.float32)
    alpha[dist <= solid] = 1
    return alpha


@pytest.mark.parametrize("reach", [1, 2, 9, 15])
def test_squared_distance_below_is_the_exact_squared_distance_capped(reach):
    from scipy import ndimage

    from autoinpaint.mask.refine import squared_distance_below

    for m in photo_masks():
        got = squared_distance_below(m, reach)
        if m.any():
            exact = np.rint(ndimage.distance_transform_edt(~m) ** 2)
            expected = np.minimum(exact, reach * reach).astype(np.uint8)
        else:  # nothing to be near
            expected = np.full(m.shape, reach * reach, np.uint8)
        assert got.dtype == np.uint8 and np.array_equal(got, expected), (m.shape, reach)


@pytest.mark.parametrize("dilate, feather", [(8, 4), (0, 6), (6, 0), (3, 3), (14, 0), (10, 4), (2, 12), (15, 0),
                                             (20, 10)])
def test_make_alpha_equals_the_distance_formula_exactly(dilate, feather):
    """The squared-distance table (dilate + feather + 1 ≤ 15) and the distance transform (beyond) give
    the very float32 values of the formula on distance_outside, on ragged photo masks and edge cases."""
    for m in photo_masks():
        expected = reference_alpha(m, dilate, feather)
        got = make_alpha(m, dilate, feather)
        assert got.dtype == np.float32 and np.array_equal(got, expected), (m.shape, dilate, feather)
        assert np.array_equal(make_alpha(m, dilate, feather, blur=2), np.maximum(
            np.asarray(Image.fromarray(np.round(expected * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)),
                       np.float32) / 255, m.astype(np.float32)))


def test_refine_on_the_whole_photo_owns_its_arrays():
    """A mask touching every border: the window is the whole photo, the result is used as it is, but
    never as a view of the input (nothing cleaned: fill_holes off, no erode)."""
    m = photo_masks()[0]
    assert bbox(m) == (0, 0, m.shape[1], m.shape[0])
    for fill in (False, True):
        given = m.copy()
        state = RefineMask(dilate=8, feather=4, fill_holes=fill)(EditState(mask=given))
        expected = fill_holes(m) if fill else m
        assert np.array_equal(state.mask, expected) and not np.shares_memory(state.mask, given)
        assert np.array_equal(state.alpha, reference_alpha(expected, 8, 4))
        given[:] = ~given  # the segmenter's array changing later does not change the selection
        assert np.array_equal(state.mask, expected)
