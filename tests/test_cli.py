"""The command line: results, --json, mask output, and bad input → one `Error:` line, exit code, no file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, gradient_photo

FAST = ["--inpainter", "telea", "-q"]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(gradient_photo(320, 240)).save(path)
    return path


def assert_error(result, code, fragment, *paths):
    assert result.code == code, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.err
    for p in paths:
        assert not os.path.exists(p), f"{p} was written"
    folders = {os.path.dirname(str(p)) for p in paths if os.path.isdir(os.path.dirname(str(p)))}
    assert [f for d in folders for f in os.listdir(d) if f.endswith(".tmp")] == []  # no temp file left


def test_remove_json_record(cli, photo, tmp_path):
    out = tmp_path / "out.png"
    alpha = tmp_path / "alpha.png"
    r = cli("remove", photo, "--rect", "100,80,140,120", "--json", "-o", out, "--inpainter", "ns",
            "--feather", "0", "--mask-out", alpha)
    assert r.code == 0, r.err
    rec = json.loads(r.out)
    assert rec["input"] == str(photo) and rec["output"] == str(out) and rec["size"] == [320, 240]
    assert rec["inpainter"] == "ns" and rec["segmenter"] is None
    assert set(rec["timings"]) == {"load", "segment", "mask", "inpaint", "composite", "save", "total"}
    x0, y0, x1, y1 = rec["bbox"]
    assert x0 < 100 and y0 < 80 and x1 > 140 and y1 > 120          # dilated by the default 8 px
    assert rec["mask_pixels"] == int((np.asarray(Image.open(alpha)) > 0).sum()) > 40 * 40
    assert out.exists() and r.err == ""


def test_mask_command_raw_rect_and_mask_out(cli, photo, tmp_path):
    out = tmp_path / "m.png"
    r = cli("mask", photo, "--rect", "10,20,50,60", "--dilate", "0", "--feather", "0", "-o", out, "-q")
    assert r.code == 0, r.err
    m = np.asarray(Image.open(out))
    expected = np.zeros((240, 320), np.uint8)
    expected[20:60, 10:50] = 255
    assert m.dtype == np.uint8 and np.array_equal(m, expected)
    # --mask-out writes the final (dilated, feathered) alpha of a remove, 255 on the object
    out2, alpha = tmp_path / "o.png", tmp_path / "alpha.png"
    assert cli("remove", photo, "--rect", "10,20,50,60", "-o", out2, "--mask-out", alpha, *FAST).code == 0
    a = np.asarray(Image.open(alpha))
    assert np.all(a[20:60, 10:50] == 255) and 0 < a[40, 55] < 255 and a[40, 70] == 0


def test_mask_file_and_ellipse_and_relative(cli, photo, tmp_path):
    maskfile = tmp_path / "sel.png"
    sel = np.zeros((240, 320), np.uint8)
    sel[100:130, 200:260] = 255
    Image.fromarray(sel).save(maskfile)
    out = tmp_path / "m.png"
    r = cli("mask", photo, "--mask", maskfile, "--ellipse", "0.1,0.1,0.2,0.3", "--relative",
            "--dilate", "0", "--feather", "0", "-o", out, "-q")
    # --relative applies to the drawn ellipse; the mask file is used as it is
    assert r.code == 0, r.err
    m = np.asarray(Image.open(out)) > 0
    assert np.array_equal(m[100:130, 200:260], np.ones((30, 60), bool))
    assert m[int(0.2 * 240), int(0.15 * 320)] and not m[5, 5]


def test_preview_written(cli, photo, tmp_path):
    out, prev = tmp_path / "o.png", tmp_path / "p.png"
    assert cli("remove", photo, "--rect", "100,80,140,120", "-o", out, "--preview", prev, *FAST).code == 0
    w, h = Image.open(prev).size
    assert 240 < h < 300 and w == 3 * 320 + 12   # three 240 px panels and the mask's verdict under them


def test_input_never_overwritten(cli, photo):
    before = photo.read_bytes()
    r = cli("remove", photo, "--rect", "1,1,20,20", "-o", photo, *FAST)
    assert_error(r, 2, "overwrite")
    assert photo.read_bytes() == before
    assert cli("remove", photo, "--rect", "1,1,20,20", "-o", photo, "--overwrite", *FAST).code == 0
    assert photo.read_bytes() != before


def test_default_output_beside_input(cli, photo):
    assert cli("remove", photo, "--rect", "1,1,20,20", *FAST).code == 0
    assert (photo.parent / "photo.inpainted.png").exists()


# ---- bad input: one line, documented exit code, no output file -------------------------------------

def test_missing_file(cli, tmp_path):
    out = tmp_path / "o.png"
    assert_error(cli("remove", tmp_path / "nope.jpg", "--point", "1,1", "-o", out), 2, "no such file", out)


def test_zero_byte_file(cli, tmp_path):
    (tmp_path / "z.jpg").write_bytes(b"")
    out = tmp_path / "o.jpg"
    assert_error(cli("remove", tmp_path / "z.jpg", "--point", "1,1", "-o", out), 2, "empty", out)


def test_truncated_file(cli, tmp_path):
    src = tmp_path / "t.jpg"
    Image.fromarray(gradient_photo(300, 200)).save(src, quality=90)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    out = tmp_path / "o.jpg"
    assert_error(cli("remove", src, "--rect", "1,1,20,20", "-o", out), 2, "truncated", out)


def test_non_image_file(cli, tmp_path):
    (tmp_path / "x.png").write_text("hello, not an image")
    out = tmp_path / "o.png"
    assert_error(cli("remove", tmp_path / "x.png", "--point", "1,1", "-o", out), 2, "not an image", out)


def test_pixel_limit(cli, photo, tmp_path):
    out = tmp_path / "o.png"
    assert_error(cli("remove", photo, "--rect", "1,1,20,20", "--max-pixels", "1000", "-o", out), 2,
                 "over the limit", out)


def test_point_outside(cli, photo, tmp_path):
    out = tmp_path / "o.png"
    assert_error(cli("remove", photo, "--point", "320,10", "-o", out), 2, "outside", out)
    assert_error(cli("remove", photo, "--point", "1.5,0.5", "--relative", "-o", out), 2, "relative", out)


def test_box_outside_and_inverted(cli, photo, tmp_path):
    out = tmp_path / "o.png"
    assert_error(cli("remove", photo, "--box", "10,10,400,50", "-o", out), 2, "outside", out)
    assert_error(cli("remove", photo, "--box", "100,100,50,150", "-o", out), 2, "inverted", out)


def test_malformed_coordinates(cli, photo, tmp_path):
    out = tmp_path / "o.png"
    assert_error(cli("remove", photo, "--point", "12", "-o", out), 2, "--point", out)
    assert_error(cli("remove", photo, "--box", "a,b,c,d", "-o", out), 2, "--box", out)


def test_empty_selection_and_empty_mask(cli, photo, tmp_path):
    out = tmp_path / "o.png"
    assert_error(cli("remove", photo, "-o", out), 2, "nothing selected", out)
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((240, 320), np.uint8)).save(black)
    assert_error(cli("remove", photo, "--mask", black, "-o", out), 2, "empty mask", out)


def test_mask_of_another_size(cli, photo, tmp_path):
    small = tmp_path / "small.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(small)
    out = tmp_path / "o.png"
    assert_error(cli("remove", photo, "--mask", small, "-o", out), 2, "10x10", out)


def test_unwritable_output(cli, photo, tmp_path):
    out = tmp_path / "missing_dir" / "o.png"
    assert_error(cli("remove", photo, "--rect", "1,1,20,20", "-o", out, *FAST), 2, "cannot write", out)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions do not bind
            return
        target = locked / "o.png"
        assert_error(cli("remove", photo, "--rect", "1,1,20,20", "-o", target, *FAST), 2, "cannot write", target)
    finally:
        locked.chmod(0o700)


def test_unknown_option_is_usage_error(cli, photo):
    r = cli("remove", photo, "--bogus")
    assert r.code == 2 and r.err.startswith("Error: ") and len(r.err.strip().splitlines()) == 1


def test_unknown_inpainter_is_missing_model(cli, photo, tmp_path):
    out = tmp_path / "o.png"
    r = cli("remove", photo, "--rect", "1,1,20,20", "--inpainter", str(tmp_path / "no_such_model"), "-o", out)
    assert r.code == 3 and r.err.startswith("Error: ") and not out.exists()


def test_help_documents_exit_codes_and_is_light():
    code = ("import sys, autoinpaint.cli as c\n"
            "try:\n    c.run(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'diffusers', 'cv2', 'segment_anything') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "Exit codes" in r.stdout and "HEAVY []" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "autoinpaint", "remove", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--padding-mask-crop" in r.stdout and "Exit codes" in r.stdout
