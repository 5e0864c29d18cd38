"""Output keeps the input's size, orientation, mode, bit depth, format and quality; alpha-0 pixels are
bit-identical (in the file for lossless formats, before encoding for JPEG)."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from autoinpaint import EditOptions, Selection, run_edit
from autoinpaint.imaging.image_io import load_image, orient
from conftest import gradient_photo

RECT = Selection(rects=((200, 120, 260, 190),))
FAST = EditOptions(inpainter="telea", dilate=4, feather=3, quiet=True)


def _write(path, array, mode=None, **kw):
    if array.dtype == np.uint16:  # PIL cannot write 16-bit RGB: use OpenCV like the project does
        bgr = array[..., 0] if array.shape[2] == 1 else cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(path), bgr)
        return
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array, mode=mode).save(path, **kw)


CASES = [("rgb.png", 3, np.uint8), ("rgba.png", 4, np.uint8), ("gray.png", 1, np.uint8),
         ("rgb16.png", 3, np.uint16), ("gray16.png", 1, np.uint16)]


@pytest.mark.parametrize("name,channels,dtype", CASES)
def test_png_modes_keep_bit_depth_and_unmasked_pixels(tmp_path, name, channels, dtype):
    src = gradient_photo(623, 401, channels, dtype)
    _write(tmp_path / name, src)
    out = tmp_path / f"out_{name}"
    state = run_edit(tmp_path / name, RECT, FAST, "remove", out)
    back, info = load_image(out)
    assert back.shape == src.shape and back.dtype == src.dtype  # size, channels, bit depth
    keep = state.alpha == 0
    assert keep.sum() > 0.9 * keep.size
    assert np.array_equal(back[keep], src[keep])                 # bit-identical in the written file
    assert not np.array_equal(back[~keep], src[~keep])           # and the hole did change
    assert info.format == "PNG"


@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_keeps_quality_tables_and_subsampling(tmp_path, subsampling):
    from PIL import JpegImagePlugin

    src = gradient_photo(623, 401)
    path = tmp_path / "in.jpg"
    Image.fromarray(src).save(path, quality=77, subsampling=subsampling)
    decoded = np.asarray(Image.open(path))
    out = tmp_path / "out.jpg"
    state = run_edit(path, RECT, FAST, "remove", out)
    keep = state.alpha == 0
    assert np.array_equal(state.result[keep], decoded[keep])     # exact before encoding
    with Image.open(path) as a, Image.open(out) as b:
        assert b.format == "JPEG" and b.size == a.size
        assert b.quantization == a.quantization                  # same quality
        assert JpegImagePlugin.get_sampling(b) == JpegImagePlugin.get_sampling(a) == subsampling
    back = np.asarray(Image.open(out)).astype(int)
    far = cv2.erode(keep.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    # re-encoding at the same quality: far from the edit the error stays at JPEG's own level
    assert np.abs(back[far] - decoded[far]).mean() < 2.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_like_pil(tmp_path, orientation):
    src = gradient_photo(120, 80, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(src).save(path, exif=exif.tobytes())
    arr, info = load_image(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert np.array_equal(arr, expected)
    assert info.orientation == orientation


def test_oriented_jpeg_output_is_upright_with_orientation_reset(tmp_path):
    src = gradient_photo(300, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display: upright image is 200×300
    path = tmp_path / "rot.jpg"
    Image.fromarray(src).save(path, exif=exif.tobytes(), quality=90)
    out = tmp_path / "out.jpg"
    run_edit(path, Selection(points=(), rects=((50, 100, 90, 160),)), FAST, "remove", out)
    with Image.open(out) as im:
        assert im.size == (200, 300)
        assert im.getexif().get(0x0112, 1) == 1


def test_icc_profile_kept(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = gradient_photo(200, 150)
    for name in ("icc.png", "icc.jpg"):
        Image.fromarray(src).save(tmp_path / name, icc_profile=icc)
        out = tmp_path / f"out_{name}"
        run_edit(tmp_path / name, Selection(rects=((50, 50, 90, 90),)), FAST, "remove", out)
        assert Image.open(out).info.get("icc_profile") == icc


def test_sixteen_bit_icc_profile_kept(tmp_path):
    from autoinpaint.imaging.image_io import encode_image
    from autoinpaint.state import ImageInfo

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode_image(gradient_photo(64, 48, 3, np.uint16), ImageInfo(icc_profile=icc), "PNG")
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == icc
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (48, 64, 3)


def test_palette_png_becomes_rgb_png(tmp_path):
    src = Image.fromarray(gradient_photo(100, 80)).convert("P")
    src.save(tmp_path / "p.png")
    arr, info = load_image(tmp_path / "p.png")
    assert arr.shape == (80, 100, 3) and info.mode == "RGB"


def test_orient_is_inverse_consistent():
    a = np.arange(6 * 4 * 3).reshape(6, 4, 3)
    assert np.array_equal(orient(orient(a, 3), 3), a)
    assert np.array_equal(orient(orient(a, 6), 8), a)
