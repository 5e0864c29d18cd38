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


def test_hybrid_keeps_patchmatch_detail_on_smooth_colours():
    """hybrid = the smooth fill's low frequencies + PatchMatch high frequencies, only inside the hole."""
    import cv2

    from autoinpaint.inpaint.membrane import smooth_fill

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    img = np.clip(np.stack([xx, yy, xx + yy], 2) + rng.normal(0, 12, (120, 160, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 50:110] = 255
    out = load_inpainter("hybrid")(img, mask)
    hole = mask > 0
    assert np.array_equal(out[~hole], img[~hole])
    low = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 2)  # noqa: E731
    smooth, pm = smooth_fill(img, hole), load_inpainter("patchmatch")(img, mask)
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    assert np.abs(low(out) - low(smooth))[inner].mean() < 2.0   # colours of the smooth fill
    detail = lambda a: np.abs(cv2.Laplacian(a.astype(np.float32), cv2.CV_32F))[inner].mean()  # noqa: E731
    assert detail(out) > 0.8 * detail(pm) > 2 * detail(smooth)  # texture of PatchMatch


def vignetted_backdrop(noise: float = 2.5) -> np.ndarray:
    """A studio backdrop: a bowl-shaped vignette off centre plus sensor noise, 320×240."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:240, 320:0:-1].astype(np.float32)
    r2 = ((xx - 160) / 160) ** 2 + ((yy - 100) / 120) ** 2
    bowl = np.stack([200 - 60 * r2, 215 - 55 * r2, 205 - 60 * r2], 2)
    return np.clip(bowl + rng.normal(0, noise, (240, 320, 3)), 0, 255).astype(np.uint8)


def test_hybrid_continues_a_vignetted_backdrop_without_seams():
    """A product removed from a vignetted studio backdrop: the fill's low frequencies follow the bowl
    (Navier–Stokes, the colours before, and a plain membrane are 8-9 grey levels off in the middle)."""
    import cv2

    truth = vignetted_backdrop()
    img, mask = truth.copy(), np.zeros((240, 320), np.uint8)
    mask[60:190, 90:230] = 255
    img[mask > 0] = (150, 90, 200)
    low = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 3)  # noqa: E731
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    error = lambda a: np.abs(low(a) - low(truth))[inner]  # noqa: E731
    out = load_inpainter("hybrid")(img, mask)
    assert error(out).mean() < 1.0 and error(out).max() < 4.0
    assert error(load_inpainter("ns")(img, mask)).mean() > 5.0  # what the old colours did here
    # no seam: the hole's border ring differs from just outside it by no more than the noise does
    ring_in = (mask > 0) & ~(cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0)
    ring_out = (cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0) & (mask == 0)
    assert abs(low(out)[ring_in].mean() - low(truth)[ring_in].mean()) < 1.0
    assert abs(low(out)[ring_out].mean() - low(truth)[ring_out].mean()) < 1.0


def test_membrane_fill_is_exact_on_a_ramp_and_keeps_what_is_known():
    """Laplace's equation: a linear ramp is its own membrane, through the coarse solve (a hole of over
    20 000 pixels) and the relaxation; pixels outside the hole are the input's; edge cases."""
    from autoinpaint.inpaint.membrane import membrane_fill, smooth_fill

    yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
    ramp = np.stack([xx * 0.5 + 20, yy * 0.6 + 10, 200 - xx * 0.2 - yy * 0.1], 2)
    hole = np.zeros((300, 400), bool)
    hole[40:260, 60:350] = True  # 63 800 px: one pyramid level down, then relaxed
    for fill in (membrane_fill, smooth_fill):
        out = fill(ramp, hole)
        assert out.dtype == np.float32 and out.shape == ramp.shape
        assert np.abs(out - ramp)[hole].max() < 0.01
        assert np.array_equal(out[~hole], ramp[~hole])
    edge = np.zeros((300, 400), bool)
    edge[:100, 150:250] = True  # on the picture's top, where nothing is known: the membrane is flat
    # across the frame (within what is known); the backdrop's plane, known on three sides, carries the ramp
    flat = membrane_fill(ramp, edge)[edge]
    assert (flat >= ramp[~edge].min(0) - 1e-3).all() and (flat <= ramp[~edge].max(0) + 1e-3).all()
    assert np.abs(smooth_fill(ramp, edge) - ramp)[edge].max() < 0.01
    assert np.array_equal(membrane_fill(ramp, np.zeros_like(hole)), ramp)
    yy, xx = np.mgrid[0:600, 0:600].astype(np.float32)
    big = np.stack([xx * 0.3 + 20, yy * 0.3 + 10, 200 - xx * 0.1], 2)
    thin = np.zeros((600, 600), bool)
    thin[6:-6, 6:-6] = True  # a 6-px margin: the coarse levels lose it, the solve stays where it is whole
    assert np.abs(membrane_fill(big, thin) - big)[thin].max() < 0.01
    grey = membrane_fill(ramp[..., 0], hole)
    assert grey.shape == (300, 400, 1) and np.abs(grey[..., 0] - ramp[..., 0])[hole].max() < 0.01
    assert np.allclose(membrane_fill(ramp, np.ones_like(hole)), ramp.mean((0, 1)))


def test_smooth_fill_trusts_the_backdrop_curve_only_where_it_fits():
    """The quadratic carries a vignette's bowl; on texture (where it leaves more than noise) the fill is
    the plain membrane."""
    from autoinpaint.inpaint.membrane import membrane_fill, smooth_fill

    truth = vignetted_backdrop()
    hole = np.zeros((240, 320), bool)
    hole[60:190, 90:230] = True
    assert np.abs(smooth_fill(truth, hole) - truth)[hole].mean() < 3.0        # noise (σ 2.5) only
    assert np.abs(membrane_fill(truth, hole) - truth)[hole].mean() > 6.0      # flattened bowl
    rough = vignetted_backdrop(noise=25.0)
    assert np.array_equal(smooth_fill(rough, hole), membrane_fill(rough, hole))


def test_hybrid_takes_a_plain_backdrops_grain_instead_of_patchmatch():
    """On a plain backdrop the hybrid's detail is the backdrop's own grain (no PatchMatch: it says so, and
    it is seeded); the hole is as grainy as the ring around it, its low frequencies follow the backdrop."""
    import cv2

    from autoinpaint.inpaint.grain import backdrop_grain
    from autoinpaint.inpaint.membrane import fit_backdrop

    truth = vignetted_backdrop()
    img, mask = truth.copy(), np.zeros((240, 320), np.uint8)
    mask[60:190, 90:230] = 255
    img[mask > 0] = (150, 90, 200)
    inpainter = load_inpainter("hybrid")
    result = inpainter.inpaint(img, mask)
    assert result.metadata == {"hybrid_detail": "grain"}
    out = result.image
    assert np.array_equal(out, inpainter.inpaint(img, mask).image)  # same input, same grain
    hole = mask > 0
    assert np.array_equal(out[~hole], img[~hole])
    high = lambda a: a.astype(np.float32) - cv2.GaussianBlur(a.astype(np.float32), (0, 0), 2)  # noqa: E731
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    ring = (cv2.dilate(mask, np.ones((31, 31), np.uint8)) > 0) & ~hole
    grain_in, grain_out = high(out)[inner].std(), high(truth)[ring].std()
    assert 0.8 < grain_in / grain_out < 1.25                      # as grainy as its surroundings
    low = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 3)  # noqa: E731
    assert np.abs(low(out) - low(truth))[inner].mean() < 1.0
    # the grain is the ring's own: tiles of what the fitted surface leaves there, nothing of the object
    backdrop = fit_backdrop(img, hole)
    assert backdrop.plain and backdrop.rms < 4
    grain = backdrop_grain(img, hole, backdrop, seed=0)
    ys, xs = np.nonzero(hole)
    box = np.zeros_like(hole)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    assert not grain[~box].any() and grain[hole].std() > 1.0
    residual = img.astype(np.float32) - backdrop.surface(0, 240, 0, 320)
    assert np.abs(grain).max() <= np.abs(residual[backdrop.ring]).max() + 1e-3
    # texture around the hole (not a plain backdrop): PatchMatch, as before
    textured = np.clip(truth.astype(int) + np.random.default_rng(5).normal(0, 25, truth.shape), 0, 255).astype(np.uint8)
    textured[hole] = (150, 90, 200)
    assert inpainter.inpaint(textured, mask).metadata == {"hybrid_detail": "patchmatch"}


def test_remove_on_a_studio_photo_reports_the_grain_and_leaves_no_seam(cli, tmp_path):
    """`remove --mask … --json` on a product shot against a vignetted backdrop: the hybrid takes the
    backdrop's grain (said in --json), pixels outside the mask's alpha are the input's, and the filled
    area's low frequencies are the backdrop's."""
    import json

    import cv2
    from PIL import Image

    truth = vignetted_backdrop()
    photo, mask = truth.copy(), np.zeros((240, 320), np.uint8)
    cv2.rectangle(photo, (110, 70), (200, 170), (140, 60, 190), -1)  # the product
    cv2.rectangle(mask, (110, 70), (200, 170), 255, -1)
    Image.fromarray(photo).save(tmp_path / "shot.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    r = cli("remove", tmp_path / "shot.png", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out.png",
            "--inpainter", "hybrid", "--json")
    assert r.code == 0, r.err
    record = json.loads(r.out)
    assert record["inpainter"] == "hybrid" and record["hybrid_detail"] == "grain"
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    near = cv2.dilate(mask, np.ones((41, 41), np.uint8)) > 0  # the mask grown past its dilation and feather
    assert np.array_equal(out[~near], photo[~near])
    low = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 3)  # noqa: E731
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    assert np.abs(low(out) - low(truth))[inner].mean() < 1.0


def test_backdrop_grain_leaves_out_specks_on_the_ring():
    """A fringe of the object or dust on the ring is not copied into the hole tile after tile."""
    from autoinpaint.inpaint.grain import backdrop_grain
    from autoinpaint.inpaint.membrane import fit_backdrop

    img = vignetted_backdrop()
    hole = np.zeros((240, 320), bool)
    hole[60:190, 90:230] = True
    specks = np.zeros_like(hole)
    specks[50:200:9, 80:240:11] = True
    specks &= ~hole  # on the ring and beyond: 40 grey levels brighter, one pixel each
    img = img.copy()
    img[specks] = np.clip(img[specks].astype(int) + 40, 0, 255).astype(np.uint8)
    backdrop = fit_backdrop(img, hole)
    assert backdrop.plain and (specks & backdrop.ring).sum() > 20
    grain = backdrop_grain(img, hole, backdrop, seed=3)
    assert np.abs(grain[hole]).max() < 15  # the backdrop's noise (σ 2.5) only, no speck
    assert grain[hole].std() > 1.5


def test_smooth_fill_does_not_extrapolate_the_backdrop_past_its_ring():
    """A hole over most of the picture with known pixels on one side only: the quadratic would be guessed
    across the hole (values far outside the photo's, before this check); the fill stays the membrane,
    within what is known. A hole on the picture's frame but mostly enclosed keeps part of the curve."""
    from autoinpaint.inpaint.membrane import fit_backdrop, membrane_fill, smooth_fill

    truth = vignetted_backdrop()
    hole = np.zeros((240, 320), bool)
    hole[:, :280] = True
    out = smooth_fill(truth, hole)
    known = truth[~hole].reshape(-1, 3)
    assert (out[hole] >= known.min(0) - 1e-3).all() and (out[hole] <= known.max(0) + 1e-3).all()
    assert np.array_equal(out, membrane_fill(truth, hole))
    backdrop = fit_backdrop(truth, hole)
    assert backdrop.enclosed < 0.5 and backdrop.weight == 0.0 and backdrop.plain  # the grain still applies
    edge = np.zeros((240, 320), bool)
    edge[0:60, 100:220] = True  # on the top of the frame, enclosed on three sides
    backdrop = fit_backdrop(truth, edge)
    assert 0.5 < backdrop.enclosed < 0.75 and 0 < backdrop.weight < 1
    assert np.abs(smooth_fill(truth, edge) - truth)[edge].mean() < np.abs(membrane_fill(truth, edge) - truth)[edge].mean()


@pytest.mark.parametrize("ground", ["gravel", "noise"])
def test_hybrid_keeps_the_grounds_texture_a_few_pixels_across(ground):
    """On gravel or paving the hole keeps the texture a few pixels across (stones, the paving's grain): its
    band-pass (σ 1.5 minus σ 6 px) is at least 0.6 of the ring's around it. The hybrid took only the detail
    under 2 px from PatchMatch, on the smooth fill's colours: a flat patch under fine cracks, 0.32-0.36 of
    the ring's texture here (now, under 8 px: 0.71-0.91; PatchMatch alone 0.74-0.95)."""
    import cv2
    import scenes as S
    from bench_foundation import texture   # the benchmark's measure: mean |band-pass| over a region

    img = S.ground(ground, 320, 240, np.random.default_rng(5))
    mask = np.zeros((240, 320), np.uint8)
    cv2.circle(mask, (160, 120), 60, 255, -1)
    inner = cv2.erode(mask, np.ones((7, 7), np.uint8)) > 0
    ring = (cv2.dilate(mask, np.ones((41, 41), np.uint8)) > 0) & ~(cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0)
    out = load_inpainter("hybrid")(img, mask)
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert texture(out, inner) >= 0.6 * texture(img, ring)
