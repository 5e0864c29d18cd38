"""What the web app needs from the core: Editor.fork/display/close, display copies, the alpha PNG,
exclusive atomic writes and the output names."""
from __future__ import annotations

import io
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autoinpaint import EditOptions, Editor, InputError
from autoinpaint.api import default_output
from autoinpaint.imaging.display import alpha_png, display_copy, display_size, png_gray8
from autoinpaint.errors import TooLargeError
from autoinpaint.imaging.image_io import load_image, write_atomic
from conftest import gradient_photo

ROOT = Path(__file__).resolve().parents[1]
STICKER = ROOT / "samples" / "catalogue_sticker.jpg"
CLASSICAL = EditOptions(segmenter="classical", inpainter="telea")


def test_fork_shares_pixels_and_embedding_but_not_the_selection():
    ed = Editor(CLASSICAL).open(STICKER)
    ed.select(points=[(527, 442)])
    fork = ed.fork()
    assert fork.image is ed.image and fork.state.embeddings is ed.state.embeddings
    assert fork.mask is None and fork.state.alpha is None
    fork.select(rects=[(10, 10, 60, 40)])
    result = fork.apply("remove")
    # the original session still holds its own click and no result
    assert ed.mask[442, 527] and not ed.mask[20, 20] and ed.result is None
    assert fork.mask[20, 20] and not fork.mask[442, 527]
    keep = fork.alpha == 0
    assert np.array_equal(result[keep], ed.image[keep])


def test_display_copy_is_8bit_srgb_oriented_and_downscaled(tmp_path):
    rgb16 = gradient_photo(300, 200, 3, np.uint16)
    ed = Editor(CLASSICAL).open(rgb16, embed=False)
    shown = ed.display(max_side=150)
    assert shown.dtype == np.uint8 and shown.shape == (100, 150, 3)
    assert ed.display(max_side=150) is shown  # kept
    expected = (rgb16[::2, ::2].astype(np.float64) / 257).mean()
    assert abs(shown.mean() - expected) < 2
    # EXIF orientation 6 (rotate 90° clockwise): the display copy is upright like the pipeline's image
    im = Image.fromarray(gradient_photo(64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    im.save(path, exif=exif, quality=95)
    ed = Editor(CLASSICAL).open(path, embed=False)
    assert ed.size == (32, 64) and ed.display().shape == (64, 32, 3)
    # RGBA keeps its alpha; grey becomes RGB
    rgba = gradient_photo(40, 30, 4)
    assert display_copy(rgba).shape == (30, 40, 4)
    assert display_copy(gradient_photo(40, 30, 1)).shape == (30, 40, 3)
    assert display_size(4000, 3000, 2048) == (2048, 1536) and display_size(800, 600, 2048) == (800, 600)


def _adobe_rgb_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC profile with Adobe RGB (1998) primaries (D50) and gamma 2.2."""
    import struct

    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz(x, y, z):
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    text = b"Adobe RGB test"
    desc = (b"desc" + b"\0" * 4 + struct.pack(">I", len(text) + 1) + text + b"\0"
            + b"\0" * 8 + b"\0" * 3 + b"\0" * 67)
    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 563) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.6097, 0.3111, 0.0195)),
            (b"gXYZ", xyz(0.2053, 0.6257, 0.0609)), (b"bXYZ", xyz(0.1492, 0.0632, 0.7446)),
            (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12
              + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def test_display_copy_converts_a_wide_gamut_profile_to_srgb():
    from autoinpaint.state import ImageInfo

    pixels = np.zeros((2, 2, 3), np.uint8)
    pixels[0, 0] = (200, 60, 50)   # a red: more saturated once Adobe RGB is mapped to sRGB
    pixels[1, 1] = (128, 128, 128)  # a grey stays grey
    shown = display_copy(pixels, ImageInfo(icc_profile=_adobe_rgb_profile()))
    red, grey = shown[0, 0].astype(int), shown[1, 1].astype(int)
    assert red[0] >= 220, red  # converted (measured 231), not passed through
    assert grey.max() - grey.min() <= 2
    assert np.array_equal(display_copy(pixels, ImageInfo(icc_profile=b"not a profile")), pixels)  # no error


def test_close_releases_the_image_and_a_pending_embedding():
    ed = Editor(CLASSICAL).open(STICKER, embed=False)
    pending: Future = Future()  # stands for an embedding still waiting in the queue
    ed.state.embeddings["classical"] = pending
    fork = ed.fork()
    ed.close()
    assert pending.cancelled() and "classical" not in fork.state.embeddings
    with pytest.raises(InputError, match="no image open"):
        ed.select(points=[(1, 1)])
    fork.select(points=[(527, 442)])  # the fork computes the embedding itself
    assert fork.mask.any()


def test_alpha_png_matches_a_plain_resize_and_decodes_anywhere():
    import cv2

    alpha = np.zeros((300, 400), np.float32)
    alpha[100:160, 200:280] = 1
    alpha[95:100, 200:280] = 0.5
    full = np.asarray(Image.open(io.BytesIO(alpha_png(alpha, box=(200, 95, 280, 160)))))
    assert full.dtype == np.uint8 and np.array_equal(full, np.round(alpha * 255).astype(np.uint8))
    small = np.asarray(Image.open(io.BytesIO(alpha_png(alpha, (200, 150), box=(200, 95, 280, 160)))))
    ref = cv2.resize(np.round(alpha * 255).astype(np.uint8), (200, 150), interpolation=cv2.INTER_AREA)
    assert small.shape == (150, 200) and np.abs(small.astype(int) - ref).max() <= 1
    noise = np.random.default_rng(0).integers(0, 256, (17, 23), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_gray8(noise)))), noise)
    assert np.array_equal(cv2.imdecode(np.frombuffer(png_gray8(noise), np.uint8), 0), noise)


def test_exclusive_atomic_write_never_replaces(tmp_path):
    target = tmp_path / "out.jpg"
    write_atomic(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"]  # no temporary file left behind


def test_pixel_limit_is_a_too_large_error():
    data = io.BytesIO()
    Image.new("L", (300, 300)).save(data, "PNG")
    with pytest.raises(TooLargeError, match="over the limit"):
        load_image(data.getvalue(), max_pixels=10_000)
    assert issubclass(TooLargeError, InputError)  # exit code 2, like every bad input


def test_output_names():
    from autoinpaint.server.editing import output_name

    assert default_output("a/photo.jpg", "fill") == "a/photo.filled.jpg"
    assert default_output("photo.png", "replace") == "photo.replaced.png"
    assert output_name("photo.jpg", "remove", "JPEG") == "photo.inpainted.jpg"
    assert output_name("photo.heic", "remove", "PNG") == "photo.inpainted.png"
    assert output_name("scan.TIF", "fill", "TIFF") == "scan.filled.TIF"


def test_embedding_runs_in_the_background():
    ed = Editor(CLASSICAL).open(STICKER)
    future = ed.start_embedding()
    future.result(timeout=30)
    t0 = time.perf_counter()
    assert ed.embedding_ready() and time.perf_counter() - t0 < 0.1


def test_heic_photos_open_and_show(tmp_path):
    import subprocess
    import sys

    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.fromarray(gradient_photo(64, 48)).save(buf, "HEIF", quality=95)
    path = tmp_path / "phone.heic"
    path.write_bytes(buf.getvalue())
    # a fresh process: decoding registers pillow-heif by itself
    code = f"from autoinpaint.imaging.image_io import load_image; a, i = load_image({str(path)!r}); print(a.shape, i.format)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() in ("(48, 64, 3) HEIF", "(48, 64, 3) PNG"), r.stderr  # written back as HEIF if it can
    ed = Editor(CLASSICAL).open(buf.getvalue(), embed=False)
    assert ed.size == (64, 48) and ed.display().shape == (48, 64, 3)
    assert np.abs(ed.image.astype(int) - gradient_photo(64, 48)).mean() < 6


def test_a_click_waiting_for_the_embedding_does_not_block_a_fork():
    import threading

    ed = Editor(CLASSICAL).open(STICKER, embed=False)
    pending: Future = Future()  # the encoder still running
    ed.state.embeddings["classical"] = pending
    clicked = threading.Thread(target=ed.select, kwargs={"points": [(527, 442)]})
    clicked.start()
    time.sleep(0.2)
    assert clicked.is_alive()  # waiting for the embedding
    forks = []
    forking = threading.Thread(target=lambda: forks.append(ed.fork()))  # an edit job starting meanwhile
    forking.start()
    forking.join(2)
    done_early = not forking.is_alive()
    pending.set_result(ed.image.copy())  # the classical segmenter's embedding is the image itself
    forking.join(30)
    assert done_early and forks[0].mask is None
    clicked.join(30)
    assert not clicked.is_alive() and ed.mask[442, 527]


def test_cmyk_and_16bit_tiff_show_as_8bit_rgb(tmp_path):
    cmyk = tmp_path / "print.jpg"
    Image.fromarray(gradient_photo(64, 48)).convert("CMYK").save(cmyk, quality=95)
    ed = Editor(CLASSICAL).open(cmyk, embed=False)
    shown = ed.display()
    assert shown.shape == (48, 64, 3) and shown.dtype == np.uint8
    assert np.abs(shown.astype(int) - gradient_photo(64, 48)).mean() < 8
    tiff = tmp_path / "scan.tif"
    grey16 = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21)
    Image.fromarray(grey16).save(tiff)
    ed = Editor(CLASSICAL).open(tiff, embed=False)
    shown = ed.display()
    assert ed.image.dtype == np.uint16 and shown.shape == (48, 64, 3) and shown.dtype == np.uint8
    assert abs(int(shown[47, 63, 0]) - round(int(grey16[47, 63]) / 257)) <= 1
