"""Copies of an image for a screen: 8-bit sRGB, downscaled, and the alpha of a mask as a small PNG.

A photo is decoded as it is stored (16-bit, grey, with alpha, with an ICC profile such as Adobe RGB
or Display P3); a browser shows reliably only 8-bit sRGB of a sensible size. :func:`display_copy`
makes that copy; :func:`scale_to_fit` says how its pixels map to the full-resolution ones (a click at
display pixel ``(x, y)`` is full-resolution pixel ``(x / scale, y / scale)``).
"""
from __future__ import annotations

import io

import numpy as np

from ..state import ImageInfo
from .pixels import to_rgb8

DEFAULT_MAX_SIDE = 2048  # px: sharp on a 4K screen at full width, ~1/6 of a 12 MP photo's pixels


def scale_to_fit(width: int, height: int, max_side: int | None) -> float:
    """The factor (≤ 1) that brings the longest side to ``max_side`` (1 when it already fits)."""
    if not max_side or max(width, height) <= max_side:
        return 1.0
    return max_side / max(width, height)


def display_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) of the display copy of a ``width``×``height`` image."""
    s = scale_to_fit(width, height, max_side)
    return max(1, round(width * s)), max(1, round(height * s))


def display_copy(image: np.ndarray, info: ImageInfo | None = None,
                 max_side: int | None = DEFAULT_MAX_SIDE) -> np.ndarray:
    """H×W×C (uint8/uint16, C = 1..4, EXIF-oriented as decoded) → h×w×3 (or ×4 with alpha) uint8
    sRGB, the longest side at most ``max_side`` px (area-averaged). An RGB or grey ICC profile in
    ``info`` is converted to sRGB; without one the pixels are taken as sRGB."""
    import cv2

    h, w = image.shape[:2]
    alpha = image[..., -1:] if image.shape[2] in (2, 4) else None
    rgb = to_rgb8(image)
    size = display_size(w, h, max_side)
    if size != (w, h):
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if info is not None and info.icc_profile:
        rgb = _to_srgb(rgb, info.icc_profile)
    if alpha is None:
        return rgb
    a = to_rgb8(alpha)[..., :1]
    if size != (w, h):
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)[..., None]
    return np.concatenate([rgb, a], axis=2)


def _to_srgb(rgb: np.ndarray, icc: bytes) -> np.ndarray:
    """Convert 8-bit RGB pixels tagged with ``icc`` to sRGB (perceptual); unchanged when the profile
    is not an RGB or grey one (a CMYK profile stays with CMYK data), or cannot be read."""
    from PIL import Image, ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if space not in ("RGB", "GRAY"):
            return rgb
        if "srgb" in (profile.profile.profile_description or "").lower():
            return rgb  # already sRGB (the common case): skip the transform
        im = Image.fromarray(rgb) if space == "RGB" else Image.fromarray(rgb[..., 0], "L")
        out = ImageCms.profileToProfile(im, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
        return np.asarray(out)
    except Exception:  # noqa: BLE001 - a broken profile must not stop a preview
        return rgb


def encode_display(pixels: np.ndarray, quality: int = 88) -> tuple[bytes, str]:
    """Encode a display copy: JPEG (fast, small) without alpha, PNG with. Returns (bytes, media type)."""
    import cv2

    if pixels.shape[2] == 4:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        return buf.tobytes(), "image/png"
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes(), "image/jpeg"


def alpha_png(alpha: np.ndarray, size: tuple[int, int] | None = None, box: tuple[int, int, int, int] | None = None,
              level: int = 1) -> bytes:
    """An H×W alpha in [0, 1] (float or bool) → 8-bit grey PNG bytes, area-resized to ``size``
    (w, h) when given. ``box`` (x0, y0, x1, y1): where alpha may be non-zero (0 outside); only that
    window is converted and resized, so a small mask on a 12 MP photo costs what it does on a small
    one. zlib ``level`` 1: a mask is mostly runs of 0 and 255, which level 1 already packs tightly."""
    import cv2

    h, w = alpha.shape
    out_w, out_h = size or (w, h)
    out = np.zeros((out_h, out_w), np.uint8)
    x0, y0, x1, y1 = box if box is not None else (0, 0, w, h)
    if x1 > x0 and y1 > y0:
        sx, sy = out_w / w, out_h / h
        # the display pixels the window touches, and the full-resolution pixels they cover
        dx0, dy0 = int(np.floor(x0 * sx)), int(np.floor(y0 * sy))
        dx1, dy1 = min(int(np.ceil(x1 * sx)), out_w), min(int(np.ceil(y1 * sy)), out_h)
        fx0, fy0 = int(round(dx0 / sx)), int(round(dy0 / sy))
        fx1, fy1 = min(int(round(dx1 / sx)), w), min(int(round(dy1 / sy)), h)
        window = alpha_u8(alpha[fy0:fy1, fx0:fx1])
        if (dx1 - dx0, dy1 - dy0) != (fx1 - fx0, fy1 - fy0):
            window = cv2.resize(window, (dx1 - dx0, dy1 - dy0), interpolation=cv2.INTER_AREA)
        out[dy0:dy1, dx0:dx1] = window
    return png_gray8(out, level)


def png_gray8(pixels: np.ndarray, level: int = 1) -> bytes:
    """An H×W uint8 array as a grey 8-bit PNG: no row filter, zlib at ``level`` (pypng).

    A mask needs no PNG row filters (its runs compress as they are): without the adaptive filter
    search this costs about a third of OpenCV's level-1 PNG on a display-sized mask, and about 0.6×
    PIL's on a 12 MP alpha."""
    import png

    buf = io.BytesIO()
    png.Writer(pixels.shape[1], pixels.shape[0], greyscale=True, bitdepth=8, compression=level).write_array(
        buf, np.ascontiguousarray(pixels).reshape(-1))
    return buf.getvalue()


def alpha_u8(alpha: np.ndarray) -> np.ndarray:
    """An alpha in [0, 1] (float or bool) → uint8 0..255, rounded like ``np.round`` (half to even,
    as :func:`autoinpaint.imaging.image_io.save_mask` writes it); OpenCV's saturating conversion, ~10× faster
    than NumPy's on a 12 MP alpha."""
    import cv2

    if alpha.dtype == np.uint8:
        return np.ascontiguousarray(alpha)
    if alpha.dtype == bool:
        return alpha.view(np.uint8) * np.uint8(255)
    return cv2.convertScaleAbs(np.ascontiguousarray(alpha, np.float32), alpha=255.0)
