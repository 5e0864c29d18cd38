"""Every format and mode comes back as it went in, or is refused (issue 12, item 3).

Each case writes a small input file, removes a drawn rectangle through the real command line and
checks the output: the input's format, mode, bit depth, ICC profile, EXIF, compression / lossless /
progressive / subsampling / palette; every pixel outside the mask identical (in the file for lossless
formats, before encoding for lossy ones); the output decodes fully. Files this project cannot keep
are refused with exit code 2 and the reason.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from autoinpaint import EditOptions, Selection, edit
from autoinpaint.imaging.formats import choose_mode, pixels_for, register_heif
from autoinpaint.imaging.image_io import load_image
from conftest import gradient_photo
from icc_fixtures import cmyk_profile

register_heif()
W, H = 96, 72
RECT = "30,20,60,50"
ARGS = ["--rect", RECT, "--inpainter", "telea", "--dilate", "3", "--feather", "0", "-q"]
OPTIONS = EditOptions(inpainter="telea", dilate=3, feather=0, quiet=True)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
CMYK_ICC = cmyk_profile()
MAKE = "autoinpaint-test"


def exif() -> bytes:
    e = Image.Exif()
    e[0x010F] = MAKE
    return e.tobytes()


def rgba8() -> np.ndarray:
    a = gradient_photo(W, H, 4)
    a[:, :8, 3] = 0      # fully transparent columns with varied colour under them
    a[:, 8:16, 3] = 128  # and half-transparent ones
    return a


def blocks(colours: int = 4) -> np.ndarray:
    """Flat colour blocks: a fill inside one block needs no new colour."""
    palette = np.array([[200, 30, 30], [30, 160, 60], [40, 60, 200], [230, 220, 40], [20, 20, 20],
                        [240, 240, 240]], np.uint8)[:colours]
    img = np.zeros((H, W, 3), np.uint8)
    for i in range(colours):
        img[:, i * W // colours:(i + 1) * W // colours] = palette[i]
    img[:, :] = palette[1]
    img[:, :20] = palette[0]
    img[:, 70:] = palette[2]
    img[60:, :] = palette[3 % colours]
    return img


# -------------------------------------------------------------------------------------------- builders


def pil(mode_maker: Callable[[], Image.Image], fmt: str, **kw):
    def build(path: Path) -> None:
        mode_maker().save(path, fmt, **kw)
    return build


def rgb_img():
    return Image.fromarray(gradient_photo(W, H))


def grey_img():
    return Image.fromarray(gradient_photo(W, H, 1)[..., 0])


def la_img():
    a = rgba8()
    return Image.fromarray(np.stack([a[..., 0], a[..., 3]], -1), "LA")


def rgba_img():
    return Image.fromarray(rgba8(), "RGBA")


def bilevel_img():
    return Image.fromarray(gradient_photo(W, H, 1)[..., 0] > 128)


def palette_img(colours: int = 4):
    return Image.fromarray(blocks(colours)).quantize(colors=colours, method=Image.Quantize.MEDIANCUT)


def full_palette_img():
    return Image.fromarray(gradient_photo(W, H)).quantize(colors=256, method=Image.Quantize.MEDIANCUT)


def cmyk_img():
    return Image.fromarray(gradient_photo(W, H, 4), "CMYK")


def grey16_img():
    return Image.fromarray(gradient_photo(W, H, 1, np.uint16)[..., 0])


def cv2_16(channels: int, ext: str, icc: bytes | None = None, ex: bytes | None = None):
    def build(path: Path) -> None:
        a = gradient_photo(W, H, channels, np.uint16)
        bgr = cv2.cvtColor(a, cv2.COLOR_RGB2BGR if channels == 3 else cv2.COLOR_RGBA2BGRA)
        kinds, blobs = [], []
        for kind, blob in ((cv2.IMAGE_METADATA_ICCP, icc), (cv2.IMAGE_METADATA_EXIF, ex)):
            if blob:
                kinds.append(kind)
                blobs.append(np.frombuffer(blob, np.uint8))
        params = [cv2.IMWRITE_TIFF_COMPRESSION, 5] if ext == ".tif" else []
        ok, buf = cv2.imencodeWithMetadata(ext, bgr, kinds, blobs, params)
        assert ok
        path.write_bytes(buf.tobytes())
    return build


def png_la16(path: Path) -> None:
    a = gradient_photo(W, H, 2, np.uint16).astype(">u2")
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(H))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, 4, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tiff16_with_icc(path: Path) -> None:
    import tifffile

    tifffile.imwrite(path, gradient_photo(W, H, 3, np.uint16), photometric="rgb", compression="lzw",
                     predictor=True, iccprofile=SRGB, metadata=None, software=False)


@dataclass
class Case:
    name: str
    suffix: str
    build: Callable[[Path], None]
    lossy: bool = False
    checks: dict = field(default_factory=dict)


CASES = [
    Case("png-1", ".png", pil(bilevel_img, "PNG")),
    Case("png-L", ".png", pil(grey_img, "PNG", exif=exif())),
    Case("png-LA", ".png", pil(la_img, "PNG")),
    Case("png-P", ".png", pil(palette_img, "PNG")),
    Case("png-P-tRNS", ".png", pil(palette_img, "PNG", transparency=bytes([0, 128, 255, 255]))),
    Case("png-RGB", ".png", pil(rgb_img, "PNG", icc_profile=SRGB, exif=exif())),
    Case("png-RGBA", ".png", pil(rgba_img, "PNG", icc_profile=SRGB)),
    Case("png-I16", ".png", pil(grey16_img, "PNG")),
    Case("png-LA16", ".png", png_la16),
    Case("png-RGB16", ".png", cv2_16(3, ".png", SRGB, exif())),
    Case("png-RGBA16", ".png", cv2_16(4, ".png")),
    Case("jpeg-L", ".jpg", pil(grey_img, "JPEG", quality=90), lossy=True),
    Case("jpeg-RGB-444", ".jpg", pil(rgb_img, "JPEG", quality=85, subsampling=0, icc_profile=SRGB, exif=exif()),
         lossy=True),
    Case("jpeg-RGB-420", ".jpg", pil(rgb_img, "JPEG", quality=70, subsampling=2), lossy=True),
    Case("jpeg-progressive", ".jpg", pil(rgb_img, "JPEG", quality=80, progressive=True), lossy=True),
    Case("jpeg-CMYK", ".jpg", pil(cmyk_img, "JPEG", quality=90), lossy=True),
    Case("jpeg-CMYK-ICC", ".jpg", pil(cmyk_img, "JPEG", quality=90, icc_profile=CMYK_ICC, exif=exif()),
         lossy=True),
    Case("tiff-1-group4", ".tif", pil(bilevel_img, "TIFF", compression="group4")),
    Case("tiff-L", ".tif", pil(grey_img, "TIFF")),
    Case("tiff-RGB-lzw", ".tif", pil(rgb_img, "TIFF", compression="tiff_lzw", icc_profile=SRGB, exif=exif())),
    Case("tiff-RGB-deflate", ".tif", pil(rgb_img, "TIFF", compression="tiff_adobe_deflate")),
    Case("tiff-RGB-packbits", ".tif", pil(rgb_img, "TIFF", compression="packbits")),
    Case("tiff-RGB-jpeg", ".tif", pil(rgb_img, "TIFF", compression="jpeg", quality=90), lossy=True),
    Case("tiff-RGBA", ".tif", pil(rgba_img, "TIFF", compression="tiff_lzw")),
    Case("tiff-P", ".tif", pil(palette_img, "TIFF")),
    Case("tiff-I16", ".tif", pil(grey16_img, "TIFF", compression="tiff_lzw")),
    Case("tiff-RGB16", ".tif", tiff16_with_icc),
    Case("tiff-RGBA16", ".tif", cv2_16(4, ".tif")),
    Case("tiff-CMYK", ".tif", pil(cmyk_img, "TIFF", compression="tiff_lzw", icc_profile=CMYK_ICC)),
    Case("webp-lossless-RGB", ".webp", pil(rgb_img, "WEBP", lossless=True, icc_profile=SRGB, exif=exif())),
    Case("webp-lossless-RGBA", ".webp", pil(rgba_img, "WEBP", lossless=True, exact=True)),
    Case("webp-lossy-RGB", ".webp", pil(rgb_img, "WEBP", quality=80), lossy=True),
    Case("webp-lossy-RGBA", ".webp", pil(rgba_img, "WEBP", quality=80), lossy=True),
    Case("gif-P", ".gif", pil(palette_img, "GIF")),
    Case("gif-P-transparent", ".gif", pil(palette_img, "GIF", transparency=0)),
    Case("gif-full-palette", ".gif", pil(full_palette_img, "GIF")),
    Case("bmp-1", ".bmp", pil(bilevel_img, "BMP")),
    Case("bmp-L", ".bmp", pil(grey_img, "BMP")),
    Case("bmp-P", ".bmp", pil(palette_img, "BMP")),
    Case("bmp-RGB", ".bmp", pil(rgb_img, "BMP")),
    Case("avif-RGB", ".avif", pil(rgb_img, "AVIF", quality=80, icc_profile=SRGB, exif=exif()), lossy=True),
    Case("avif-RGBA", ".avif", pil(rgba_img, "AVIF", quality=80), lossy=True),
    Case("heif-RGB", ".heic", pil(rgb_img, "HEIF", quality=80, icc_profile=SRGB, exif=exif()), lossy=True),
    Case("heif-RGBA", ".heic", pil(rgba_img, "HEIF", quality=80), lossy=True),
]


def file_pixels(path: Path) -> np.ndarray:
    """The file's own pixel values: palette indices, CMYK inks, 16-bit samples (all channels)."""
    array, info = load_image(path)
    if info.bits == 16:
        return array
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_format_and_mode_kept(cli, tmp_path, case):
    src, out, alpha = tmp_path / f"in{case.suffix}", tmp_path / f"out{case.suffix}", tmp_path / "alpha.png"
    case.build(src)
    r = cli("remove", src, *ARGS, "-o", out, "--mask-out", alpha)
    assert r.code == 0, r.err
    assert "Traceback" not in r.err
    keep = np.asarray(Image.open(alpha)) == 0
    assert 0.5 * keep.size < keep.sum() < keep.size
    with Image.open(src) as a, Image.open(out) as b:
        b.load()                                              # decodes fully
        assert b.format == a.format and b.size == a.size
        assert b.mode == a.mode, (a.mode, b.mode)
        assert b.info.get("icc_profile") == a.info.get("icc_profile")
        if a.getexif().get(0x010F) == MAKE:
            assert b.getexif().get(0x010F) == MAKE
        if a.format == "TIFF":
            assert b.info.get("compression") == a.info.get("compression")
        if a.format == "JPEG":
            from PIL import JpegImagePlugin

            assert b.quantization == a.quantization
            assert JpegImagePlugin.get_sampling(b) == JpegImagePlugin.get_sampling(a)
            assert bool(b.info.get("progressive")) == bool(a.info.get("progressive"))
        if a.format == "WEBP":
            from autoinpaint.imaging.formats import webp_lossless

            assert webp_lossless(out.read_bytes()) is webp_lossless(src.read_bytes()) is (not case.lossy)
        if a.mode == "P":
            used = np.unique(np.asarray(a)[keep])
            pa = np.asarray(a.getpalette()).reshape(-1, 3)
            pb = np.asarray(b.getpalette()).reshape(-1, 3)
            assert np.array_equal(pa[used], pb[used])         # the kept pixels' palette entries
            if "transparency" in a.info:
                assert b.info.get("transparency") is not None
    before, after = file_pixels(src), file_pixels(out)
    a_arr, info = load_image(src)
    b_arr, info_b = load_image(out)
    assert b_arr.shape == a_arr.shape and b_arr.dtype == a_arr.dtype   # channels and bit depth
    assert info_b.bits == info.bits and info_b.file_mode == info.file_mode
    if case.lossy:
        # exact before encoding: the pixels handed to the encoder, in the file's own mode
        state = edit(src, Selection(rects=((30, 20, 60, 50),)), OPTIONS)
        assert np.array_equal(state.alpha == 0, keep)
        mode, notes = choose_mode(state.info, state.result, info.format)
        pre = np.asarray(pixels_for(mode, state.result, state.info, info.format))
        assert notes == [] and np.array_equal(pre[keep], before[keep])
        # and the file itself stays close to the input away from the edit
        far = cv2.erode(keep.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert np.abs(after.astype(int) - before.astype(int))[far].mean() < 8
    else:
        assert np.array_equal(after[keep], before[keep])      # bit-identical in the file
    hole = a_arr[~keep].reshape(-1, a_arr.shape[2])
    assert not np.array_equal(b_arr[~keep], a_arr[~keep]) or len(np.unique(hole, axis=0)) == 1  # flat: may stay


def test_palette_kept_where_the_fill_fits(cli, tmp_path):
    src, out = tmp_path / "p.png", tmp_path / "o.png"
    palette_img().save(src)
    r = cli("remove", src, *ARGS, "-o", out)
    assert r.code == 0 and r.err == ""
    with Image.open(out) as b:
        assert b.mode == "P" and len(b.getpalette()) // 3 == 4      # no entry added: the fill snapped


def test_full_palette_png_becomes_rgb_and_says_so(cli, tmp_path):
    src, out = tmp_path / "p.png", tmp_path / "o.png"
    full_palette_img().save(src)
    r = cli("remove", src, *ARGS[:-1], "--json", "-o", out)
    assert r.code == 0
    import json

    rec = json.loads(r.out)
    assert any("palette" in n and "RGB" in n for n in rec["output_notes"]), rec
    with Image.open(out) as b, Image.open(src) as a:
        assert b.mode == "RGB"
        keep = np.ones((H, W), bool)
        keep[15:55, 25:65] = False
        assert np.array_equal(np.asarray(b)[keep], np.asarray(a.convert("RGB"))[keep])
    r = cli("remove", src, *ARGS[:-1], "-o", tmp_path / "o2.png")
    assert r.code == 0 and "palette" in r.err and "RGB" in r.err


def test_another_format_converts_and_says_what_is_lost(cli, tmp_path):
    src = tmp_path / "in.png"
    rgba_img().save(src)
    r = cli("remove", src, *ARGS[:-1], "-o", tmp_path / "out.jpg")
    assert r.code == 0 and "alpha channel is dropped" in r.err
    with Image.open(tmp_path / "out.jpg") as b:
        assert b.format == "JPEG" and b.mode == "RGB"
    src16 = tmp_path / "in16.png"
    cv2_16(3, ".png")(src16)
    r = cli("remove", src16, *ARGS[:-1], "-o", tmp_path / "out16.webp")
    assert r.code == 0 and "16-bit becomes 8-bit" in r.err
    src_cmyk = tmp_path / "c.jpg"
    cmyk_img().save(src_cmyk, icc_profile=CMYK_ICC)
    r = cli("remove", src_cmyk, *ARGS[:-1], "-o", tmp_path / "c.png")
    assert r.code == 0 and "CMYK becomes RGB" in r.err
    with Image.open(tmp_path / "c.png") as b:
        assert b.mode == "RGB" and "icc_profile" not in b.info   # a CMYK profile on RGB would mislabel it


def test_cmyk_is_inpainted_through_its_icc_profile(tmp_path):
    from autoinpaint.imaging import native

    src = tmp_path / "c.tif"
    cmyk_img().save(src, icc_profile=CMYK_ICC)
    array, info = load_image(src)
    assert native.uses_icc(info.icc_profile) and info.file_mode == "CMYK"
    expected = np.asarray(native.cmyk_to_rgb(np.asarray(Image.open(src)), CMYK_ICC))
    assert np.array_equal(array, expected)                       # the working RGB is the profile's view
    assert not np.array_equal(array, np.asarray(Image.open(src).convert("RGB")))


def write_multipage_tiff(path: Path) -> None:
    rgb_img().save(path, save_all=True, append_images=[rgb_img()])


def write_animated_gif(path: Path) -> None:
    palette_img().save(path, save_all=True, append_images=[palette_img(3)], duration=100)


def write_float_tiff(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).random((H, W), np.float32)).save(path)


def write_int32_tiff(path: Path) -> None:
    Image.fromarray(np.arange(W * H, dtype=np.int32).reshape(H, W)).save(path)


def write_tiff16_with_exif(path: Path) -> None:
    import tifffile

    tifffile.imwrite(path, gradient_photo(W, H, 3, np.uint16), photometric="rgb", compression="lzw",
                     metadata=None, software=False, extratags=[(0x010F, "s", 0, "camera", True)])


REFUSED = [("animated GIF", ".gif", write_animated_gif, "2 frames"),
           ("multi-page TIFF", ".tif", write_multipage_tiff, "2 pages"),
           ("float TIFF", ".tif", write_float_tiff, "32-bit float"),
           ("int32 TIFF", ".tif", write_int32_tiff, "32-bit integer"),
           ("16-bit TIFF with EXIF", ".tif", write_tiff16_with_exif, "EXIF")]


@pytest.mark.parametrize("name,suffix,build,fragment", REFUSED, ids=[r[0] for r in REFUSED])
def test_what_cannot_be_kept_is_refused(cli, tmp_path, name, suffix, build, fragment):
    src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    build(src)
    r = cli("remove", src, *ARGS, "-o", out)
    assert r.code == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], r.err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [src.name]


# ------------------------------------------------------------------------------ output safety under faults
# (issue 12, item 4): a write error part-way leaves the previous file, or nothing, and exits 2 with why


def _failing_write(monkeypatch, after: int, err: int = 28, partial: int | None = None):
    """Make ``os.write`` to a temporary output file write ``after`` bytes then fail with ``err``
    (28 = ENOSPC), or write at most ``partial`` bytes per call when ``err`` is 0."""
    import errno
    import os

    real = os.write
    written = {"n": 0}

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.endswith(".tmp"):
            return real(fd, data)
        if partial:
            return real(fd, bytes(data[:partial]))
        room = max(0, after - written["n"])
        if room == 0:
            raise OSError(err, os.strerror(err))
        n = real(fd, bytes(data[:room]))
        written["n"] += n
        return n

    monkeypatch.setattr(os, "write", write)
    return errno


@pytest.mark.parametrize("previous", [True, False], ids=["previous-file", "no-file"])
def test_full_disk_mid_save_keeps_the_previous_file(cli, tmp_path, monkeypatch, previous):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    rgb_img().save(src)
    if previous:
        out.write_bytes(b"the previous output")
    _failing_write(monkeypatch, after=3000)
    r = cli("remove", src, *ARGS, "-o", out)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot write") and "No space left on device" in lines[0]
    assert ("previous file is unchanged" if previous else "nothing was written") in lines[0]
    if previous:
        assert out.read_bytes() == b"the previous output"
    else:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.png"] + (["out.png"] if previous else []))


def test_failing_fsync_leaves_nothing(cli, tmp_path, monkeypatch):
    import errno
    import os

    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    rgb_img().save(src)

    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    r = cli("remove", src, *ARGS, "-o", out)
    assert r.code == 2 and "Input/output error" in r.err and len(r.err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_short_writes_still_give_a_whole_file(cli, tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    rgb_img().save(src)
    assert cli("remove", src, *ARGS, "-o", tmp_path / "ref.png").code == 0
    _failing_write(monkeypatch, after=0, err=0, partial=700)   # every write takes at most 700 bytes
    assert cli("remove", src, *ARGS, "-o", tmp_path / "out.png").code == 0
    assert (tmp_path / "out.png").read_bytes() == (tmp_path / "ref.png").read_bytes()
