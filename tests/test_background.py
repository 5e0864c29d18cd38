"""``autoinpaint background``: keep the object, replace the rest. Every target of the issue on
generated studio shots with a known alpha (benchmarks/scenes.py ``studio_shot``): matte IoU, core
unchanged, pixels 3 px outside exactly the colour, framing to ±1 px, matting beats a hard mask (SAD),
alpha outputs, bad input (exit 2, nothing written), --invert, API and batch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import scenes
from autoinpaint import EditOptions, Editor, api
from autoinpaint.cutout import make_trimap, plan_layout
from autoinpaint.cutout.matte import estimate_matte
from autoinpaint.mask.refine import bbox, distance_outside
from autoinpaint.selection import Selection


@pytest.fixture(scope="module")
def shot():
    return scenes.studio_shot(320, 240, rng=np.random.default_rng(5))


@pytest.fixture
def files(tmp_path, shot):
    photo, mask = tmp_path / "shot.png", tmp_path / "mask.png"
    Image.fromarray(shot.image).save(photo)
    Image.fromarray((shot.mask * 255).astype(np.uint8)).save(mask)
    return photo, mask


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# ------------------------------------------------------------------------------------------ targets
def test_matte_iou_and_sad_beat_a_hard_mask(shot):
    # a segmenter's mask is off by a pixel or two: test on the true mask grown by 2 px
    grown = distance_outside(shot.mask) <= 2
    hard_sad = np.abs(grown.astype(np.float32) - shot.alpha).sum()
    alpha = estimate_matte(shot.image, make_trimap(grown, 6))
    assert iou(alpha > 0.5, shot.alpha > 0.5) >= 0.95
    sad = np.abs(alpha - shot.alpha).sum()
    assert sad < 0.5 * hard_sad, (sad, hard_sad)
    assert set(np.unique(alpha[make_trimap(grown, 6) == 1])) == {1.0}


def test_white_background_core_exact_and_outside_exactly_white(cli, files, shot, tmp_path):
    photo, mask = files
    out = tmp_path / "white.png"
    r = cli("background", photo, "--mask", mask, "-o", out)
    assert r.code == 0, r.err
    result = read(out)
    assert result.shape == shot.image.shape
    core = make_trimap(shot.mask, EditOptions.matte) == 1
    assert np.array_equal(result[core], shot.image[core])
    far = distance_outside(shot.alpha > 0) >= 3
    assert (result[far] == 255).all()
    # the edge band blends: some pixels are neither the photo nor white
    band = ~core & ~far
    assert ((result[band] != 255).any(axis=1) & (result[band] != shot.image[band]).any(axis=1)).any()


def test_colour_and_hard_edge(cli, files, shot, tmp_path):
    photo, mask = files
    out = tmp_path / "c.png"
    r = cli("background", photo, "--mask", mask, "--color", "#1E90FF", "--matte", "0", "--no-fill-holes", "-o", out)
    assert r.code == 0, r.err
    result = read(out)
    assert np.array_equal(result[shot.mask], shot.image[shot.mask])  # hard edge: the mask is kept as is
    assert (result[~shot.mask] == (0x1E, 0x90, 0xFF)).all()


def test_transparent_outputs_keep_alpha(cli, files, shot, tmp_path):
    photo, mask = files
    for suffix in (".png", ".webp", ".tif", ".avif"):
        out = tmp_path / f"cut{suffix}"
        r = cli("background", photo, "--mask", mask, "--color", "transparent", "-o", out)
        assert r.code == 0, (suffix, r.err)
        im = Image.open(out)
        assert im.mode == "RGBA", suffix
        a = np.asarray(im)[..., 3]
        far = distance_outside(shot.alpha > 0) >= 3
        # AVIF is lossy (quality 90), its alpha too: within a few levels of 0; the others exactly 0
        assert (a[far] <= (3 if suffix == ".avif" else 0)).all(), suffix
        core = make_trimap(shot.mask, EditOptions.matte) == 1
        assert (a[core] >= 250).all(), suffix
        if suffix in (".png", ".tif"):  # lossless: the core is the photo's, bit for bit
            assert (a[core] == 255).all()
            assert np.array_equal(np.asarray(im)[..., :3][core], shot.image[core])
        assert iou(a > 127, shot.alpha > 0.5) >= 0.95, suffix


def test_transparent_as_jpeg_is_refused_and_default_output_is_png(cli, tmp_path, shot, files):
    _, mask = files
    photo = tmp_path / "shot.jpg"
    Image.fromarray(shot.image).save(photo, quality=95)
    out = tmp_path / "cut.jpg"
    r = cli("background", photo, "--mask", mask, "--color", "transparent", "-o", out)
    assert r.code == 2
    assert r.err.strip().count("\n") == 0 and r.err.startswith("Error:") and "-o NAME.png" in r.err
    assert not out.exists()
    r = cli("background", photo, "--mask", mask, "--color", "transparent")
    assert r.code == 0, r.err
    assert Image.open(tmp_path / "shot.background.png").mode == "RGBA"
    r = cli("background", photo, "--mask", mask, "--color", "white")  # opaque: keeps the JPEG format
    assert r.code == 0 and Image.open(tmp_path / "shot.background.jpg").format == "JPEG"
    gif = tmp_path / "shot.gif"
    Image.fromarray(shot.image).convert("P", palette=Image.ADAPTIVE).save(gif)
    r = cli("background", gif, "--mask", mask)
    assert r.code == 2 and r.err.startswith("Error: GIF holds 256 colours") and "-o NAME.png" in r.err
    assert not (tmp_path / "shot.background.gif").exists()
    assert cli("background", gif, "--mask", mask, "-o", tmp_path / "from_gif.png").code == 0


@pytest.mark.parametrize("args, words", [
    (("--color", "sky-ish"), "--color"),
    (("--color", "#12345"), "--color"),
    (("--margin", "46"), "--margin"),
    (("--margin", "-1"), "--margin"),
    (("--canvas", "3000x3000", "--max-pixels", "1000000"), "max-pixels"),
    (("--canvas", "banana"), "--canvas"),
    (("--min-side", "2000"), "upscale"),
    (("--color", "red", "--blur", "4"), "choose one background"),
])
def test_bad_input_exit_2_one_line_nothing_written(cli, files, tmp_path, args, words):
    photo, mask = files
    out = tmp_path / "bad.png"
    r = cli("background", photo, "--mask", mask, *args, "-o", out)
    assert r.code == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and words in lines[0], r.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "shot.png"]


def test_upscale_over_2x_says_so():
    with pytest.raises(Exception, match=r"upscale the object 2\.50× \(the most is 2×\)"):
        plan_layout((0, 0, 100, 100), "square", 0, "center", 250, (400, 400))


# ------------------------------------------------------------------------------------------ framing
@pytest.mark.parametrize("canvas, margin, align, min_side", [
    ("300x300", 10, "center", None),
    ("400x250", 5, "bottom", None),
    ("square", 8, "center", None),
    ("square", 8, "bottom", 350),
    (None, 12, "center", None),
])
def test_framing_within_one_pixel(files, shot, canvas, margin, align, min_side):
    photo, mask = files
    opts = EditOptions(segmenter="classical", color="transparent", canvas=canvas, margin=margin, align=align,
                       min_side=min_side)
    state = api.edit(str(photo), Selection(mask_path=str(mask)), opts, action="background")
    h, w = state.result.shape[:2]
    got = bbox(state.result[..., 3] > 0)
    bw, bh = got[2] - got[0], got[3] - got[1]
    if canvas and "x" in canvas:
        assert (w, h) == tuple(map(int, canvas.split("x")))
    elif canvas == "square":
        assert w == h
    else:
        assert abs(w / h - 320 / 240) < 0.01
    if min_side:
        assert min(w, h) >= min_side and min(w, h) <= min_side + 1
    m = margin / 100
    inner_w, inner_h = w * (1 - 2 * m), h * (1 - 2 * m)
    # the box fills the canvas less the margins on its limiting side, and fits on the other
    assert min(abs(bw - inner_w), abs(bh - inner_h)) <= 1 + 1e-9, (got, w, h)
    assert bw <= inner_w + 1 and bh <= inner_h + 1
    assert abs((got[0] + got[2]) / 2 - w / 2) <= 1
    if align == "center":
        assert abs((got[1] + got[3]) / 2 - h / 2) <= 1
    else:
        assert abs(got[3] - (h - h * m)) <= 1
    # the new canvas area is transparent, the object's box exactly where the layout put it
    assert state.metadata["framing"]["object_box"] == pytest.approx(list(got), abs=1)


def test_framing_at_scale_one_keeps_the_core_and_fills_new_area_with_the_colour(files, shot):
    photo, mask = files
    state = api.edit(str(photo), Selection(mask_path=str(mask)),
                     EditOptions(segmenter="classical", color="#808000", canvas="square", margin=20),
                     action="background")
    frame = state.metadata["framing"]
    assert frame["scale"] == 1.0
    ox, oy = frame["offset"]
    core = make_trimap(shot.mask, EditOptions.matte) == 1
    ys, xs = np.nonzero(core)
    assert np.array_equal(state.result[ys + oy, xs + ox], shot.image[ys, xs])
    assert (state.result[:3] == (0x80, 0x80, 0)).all() and (state.result[:, :3] == (0x80, 0x80, 0)).all()


# ------------------------------------------------------------------------------------------ blur, shadow
def test_blur_background_keeps_object_and_blurs_the_rest(files, shot):
    photo, mask = files
    state = api.edit(str(photo), Selection(mask_path=str(mask)),
                     EditOptions(segmenter="classical", backdrop_blur=6), action="background")
    core = make_trimap(shot.mask, EditOptions.matte) == 1
    assert np.array_equal(state.result[core], shot.image[core])
    far = distance_outside(shot.alpha > 0) >= 20
    # the backdrop is a smooth gradient: blurring leaves it within a level or two, and no object colour
    diff = np.abs(state.result[far].astype(int) - shot.background[far].astype(int))
    assert diff.max() <= 3


def test_soft_contact_shadow_under_the_object_only(files, shot):
    photo, mask = files
    sel = Selection(mask_path=str(mask))
    plain = api.edit(str(photo), sel, EditOptions(segmenter="classical"), action="background").result
    shaded = api.edit(str(photo), sel, EditOptions(segmenter="classical", contact_shadow="soft",
                                                   shadow_opacity=0.6), action="background").result
    lighter = api.edit(str(photo), sel, EditOptions(segmenter="classical", contact_shadow="soft",
                                                    shadow_opacity=0.2), action="background").result
    x0, y0, x1, y1 = shot.box
    below = shaded[y1:y1 + 4, (x0 + x1) // 2].astype(int)
    assert (below < 255).all() and below.min() < 200  # darkened under the base
    assert shaded[y1:y1 + 4, (x0 + x1) // 2].astype(int).sum() < lighter[y1:y1 + 4, (x0 + x1) // 2].astype(int).sum()
    assert np.array_equal(shaded[:y0 - 3], plain[:y0 - 3])  # above the object: untouched white
    core = make_trimap(shot.mask, EditOptions.matte) == 1
    assert np.array_equal(shaded[core], plain[core])


def test_16bit_and_grey_inputs(tmp_path, shot):
    sel = Selection(rects=((100, 50, 220, 200),))
    rgb16 = shot.image.astype(np.uint16) * 257 + 3
    state = api.edit(rgb16, sel, EditOptions(segmenter="classical"), action="background")
    assert state.result.dtype == np.uint16
    core = make_trimap(state.mask, EditOptions.matte) == 1
    assert np.array_equal(state.result[core], rgb16[core])
    assert (state.result[:40] == 65535).all()
    grey = shot.image[..., :1].copy()
    state = api.edit(grey, sel, EditOptions(segmenter="classical", color="red"), action="background")
    assert state.result.shape[2] == 3 and (state.result[:40] == (255, 0, 0)).all()


# ------------------------------------------------------------------------------------------ --invert
def test_invert_mask_and_remove(cli, files, shot, tmp_path):
    photo, mask = files
    plain, inverted = tmp_path / "m.png", tmp_path / "mi.png"
    assert cli("mask", photo, "--mask", mask, "--dilate", "0", "--feather", "0", "-o", plain).code == 0
    r = cli("mask", photo, "--mask", mask, "--dilate", "0", "--feather", "0", "--invert", "-o", inverted)
    assert r.code == 0, r.err
    assert np.array_equal(read(inverted) > 0, ~(read(plain) > 0))
    out = tmp_path / "rest.png"
    r = cli("remove", photo, "--mask", mask, "--invert", "--inpainter", "telea", "-o", out)
    assert r.code == 0, r.err
    result = read(out)
    core = make_trimap(shot.mask, 9) == 1  # the object, less the dilation and feather of the inverted mask
    assert np.array_equal(result[core], shot.image[core])
    assert (result[~shot.mask] != shot.image[~shot.mask]).any()


# ------------------------------------------------------------------------------------------ API
def test_editor_apply_and_one_liner_agree_with_the_cli(cli, files, tmp_path):
    import autoinpaint

    photo, mask = files
    out = tmp_path / "cli.png"
    assert cli("background", photo, "--mask", mask, "--color", "transparent", "--canvas", "square", "-o", out).code == 0
    ed = Editor(EditOptions(segmenter="classical")).open(str(photo), embed=False)
    ed.select(Selection(mask_path=str(mask)))
    result = ed.apply("background", color="transparent", canvas="square")
    assert np.array_equal(result, read(out))
    assert ed.output_format() == "PNG" and ed.summary()["action"] == "background"
    one = autoinpaint.background(read(photo), mask=str(mask), color="transparent", canvas="square")
    assert np.array_equal(one, result)
    state = api.run_edit(str(photo), Selection(mask_path=str(mask)),
                         EditOptions(color="transparent", canvas="square"), action="background",
                         output=tmp_path / "api.webp")
    assert Image.open(state.output_path).mode == "RGBA"


# ------------------------------------------------------------------------------------------ batch
def test_batch_background_rows_jsonl_and_csv(tmp_path, files, shot):
    photo, mask = files
    rows = [{"input": "shot.png", "mask": "mask.png", "action": "background", "color": "#ffffff",
             "canvas": "400x400", "margin": 10, "output": "{stem}.white.png"},
            {"input": "shot.png", "mask": "mask.png", "action": "background", "color": "transparent",
             "shadow": "soft", "output": "{stem}.cut.webp"},
            {"input": "shot.png", "mask": "mask.png", "action": "background", "color": "nope",
             "output": "{stem}.bad.png"}]
    recipe = tmp_path / "r.jsonl"
    recipe.write_text("".join(json.dumps(r) + "\n" for r in rows))
    csv = tmp_path / "r.csv"
    csv.write_text("input,mask,action,blur,matte,min_side,align,canvas,output\n"
                   "shot.png,mask.png,background,5,4,300,bottom,square,{stem}.blur.png\n")
    for rec, outdir in ((recipe, tmp_path / "o1"), (csv, tmp_path / "o2")):
        p = subprocess.run([sys.executable, "-m", "autoinpaint", "batch", str(rec), "-o", str(outdir), "--workers", "1",
                            "--segmenter", "classical", "-q"], capture_output=True, text=True, timeout=300)
        records = {Path(r["output"]).name: r for r in map(json.loads, (outdir / "manifest.jsonl").read_text().splitlines())}
        if rec == recipe:
            assert records["shot.white.png"]["status"] == "done", records
            white = read(outdir / "shot.white.png")
            assert white.shape == (400, 400, 3)
            box = records["shot.white.png"]["bbox"]
            assert max(box[2] - box[0], box[3] - box[1]) in (319, 320, 321)  # 400 less 2 × 10 %
            assert Image.open(outdir / "shot.cut.webp").mode == "RGBA"
            assert records["shot.bad.png"]["status"] == "failed" and "--color" in records["shot.bad.png"]["error"]
            assert not (outdir / "shot.bad.png").exists()
            assert p.returncode != 0
        else:
            assert p.returncode == 0, p.stderr
            blurred = read(outdir / "shot.blur.png")
            assert blurred.shape[0] == blurred.shape[1] >= 300


def test_a_handle_opening_shows_the_new_background_small_specks_are_filled(tmp_path):
    # a ring (a mug's handle seen from the side) with a 1-px speck in its wall
    image = np.full((120, 160, 3), (90, 140, 120), np.uint8)
    yy, xx = np.mgrid[0:120, 0:160]
    ring = (np.hypot(xx - 80, yy - 60) < 40) & (np.hypot(xx - 80, yy - 60) > 22)
    image[ring] = (180, 60, 200)
    mask = ring.copy()
    mask[60, 110] = False                      # a speck the segmenter missed
    path = tmp_path / "mask.png"
    Image.fromarray((mask * 255).astype(np.uint8)).save(path)
    for state in (api.edit(image, Selection(mask_path=str(path)), EditOptions(segmenter="classical", matte=0),
                           action="background"),):
        assert (state.result[60, 80] == 255).all()           # the opening: the new background
        assert (state.result[60, 110] == (180, 60, 200)).all()  # the speck: the object
    ed = Editor(EditOptions(segmenter="classical")).open(image, embed=False)
    ed.select(Selection(mask_path=str(path)))
    result = ed.apply("background", matte=0)
    assert (result[60, 80] == 255).all() and (result[60, 110] == (180, 60, 200)).all()


def test_batch_folder_mode_transparent_defaults_to_png_and_hashes_of_old_rows_hold(tmp_path, shot):
    from autoinpaint.batch.recipe import param_hash

    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(shot.image).save(shots / name, quality=95)
    out = tmp_path / "out"
    x0, y0, x1, y1 = shot.box
    p = subprocess.run([sys.executable, "-m", "autoinpaint", "batch", str(shots), "-o", str(out), "--workers", "1",
                        "--action", "background", "--rect", f"{x0},{y0},{x1},{y1}", "--color", "transparent",
                        "--canvas", "square", "--segmenter", "classical", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    for name in ("a.png", "b.png"):
        im = Image.open(out / name)
        assert im.mode == "RGBA" and im.width == im.height
    # the new options at their defaults leave a remove row's hash as older versions computed it
    sel = Selection(points=((1, 2),))
    plain = param_hash(str(shots / "a.jpg"), sel, "remove", EditOptions(), str(out / "x.jpg"))
    opts = EditOptions().to_dict()
    for name in ("invert", "color", "backdrop_blur", "matte", "canvas", "margin", "align", "min_side",
                 "contact_shadow", "shadow_opacity", "shadow", "lora", "fast", "runtime"):
        opts.pop(name)
    import hashlib

    from autoinpaint import __version__
    from autoinpaint.imaging.storage import absolute, identity

    opts.pop("quiet")
    old = {"v": 1, "autoinpaint": __version__, "input": absolute(str(shots / "a.jpg")),
           "input_id": identity(str(shots / "a.jpg")), "selection": sel.describe(), "mask_id": identity(None),
           "action": "remove", "options": opts, "output": absolute(str(out / "x.jpg"))}
    assert plain == hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:20]
    assert param_hash(str(shots / "a.jpg"), sel, "remove", EditOptions(invert=True), str(out / "x.jpg")) != plain


def test_camera_noise_and_jpeg_leave_no_haze_on_the_backdrop(cli, tmp_path):
    shot = scenes.studio_shot(320, 240, soft=4.0, rng=np.random.default_rng(100))
    noisy = np.clip(shot.image + np.random.default_rng(101).normal(0, 2.0, shot.image.shape), 0, 255)
    photo = tmp_path / "camera.jpg"
    Image.fromarray(noisy.astype(np.uint8)).save(photo, quality=85)
    mask = tmp_path / "mask.png"
    Image.fromarray((shot.mask * 255).astype(np.uint8)).save(mask)
    out = tmp_path / "white.png"
    assert cli("background", photo, "--mask", mask, "-o", out).code == 0
    result, original = read(out), read(photo)
    far = distance_outside(shot.alpha > 0) >= 3
    assert (result[far] == 255).all()
    core = make_trimap(shot.mask, EditOptions.matte) == 1
    assert np.array_equal(result[core], original[core])


def test_specks_off_the_object_are_dropped_strands_on_it_stay():
    from autoinpaint.cutout.matte import drop_specks

    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 1
    alpha[5:10, 20] = 0.4          # a strand growing out of the object
    alpha[2, 2] = 0.3              # a speck on the backdrop
    core = np.zeros_like(alpha, bool)
    core[12:28, 12:28] = True
    out = drop_specks(alpha.copy(), core)
    assert out[2, 2] == 0 and (out[5:10, 20] == 0.4).all() and (out[10:30, 10:30] == 1).all()


def test_parts_thinner_than_the_band_stay_opaque():
    from autoinpaint.cutout.matte import estimate_matte

    # a pen alone, 6 px wide: thinner than the 8-px band on each side of its edge
    image = np.full((80, 200, 3), (225, 228, 232), np.uint8)
    pen = np.zeros((80, 200), bool)
    pen[37:43, 20:180] = True
    image[pen] = (40, 90, 160)
    alpha = estimate_matte(image, make_trimap(pen, 8), pen)
    assert (alpha[39:41, 25:175] == 1).all() and iou(alpha > 0.5, pen) >= 0.95
    # a long 5-px strap on a body: its far end is out of sight of the body's core
    image = np.full((120, 420, 3), (225, 228, 232), np.uint8)
    mask = np.zeros((120, 420), bool)
    mask[40:100, 20:80] = True
    mask[58:63, 80:400] = True
    image[mask] = (40, 90, 160)
    alpha = estimate_matte(image, make_trimap(mask, 8), mask)
    assert (alpha[60, 90:390] > 0.5).all() and iou(alpha > 0.5, mask) >= 0.95


def test_preview_of_a_framed_cutout_places_the_clicks_and_shows_the_transparency(files, shot):
    from autoinpaint.imaging.preview import panels

    photo, mask = files
    state = api.edit(str(photo), Selection(points=(shot.point,)),
                     EditOptions(segmenter="classical", color="transparent", canvas="300x300", margin=10),
                     action="background")
    prompts, overlay, result = panels(state, height=300)
    fs, (ox, oy) = state.metadata["framing"]["scale"], state.metadata["framing"]["offset"]
    x, y = int(shot.point[0] * fs + ox), int(shot.point[1] * fs + oy)
    assert tuple(prompts[y, x]) == (0, 220, 0)                      # the click, where it went on the canvas
    corner = result[:16, :16].reshape(-1, 3)
    assert {tuple(c) for c in corner} == {(205, 205, 205), (245, 245, 245)}  # a checkerboard: see-through
