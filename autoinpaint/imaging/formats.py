"""What each image format holds, how a file's details are read, and how pixels are written back the
same way: format, mode, bit depth, compression, lossless or not, palette, ICC profile, EXIF, XMP.

The format × mode table (also in the README):

======  ==========================================================  ==========================
format  modes kept                                                  written
======  ==========================================================  ==========================
PNG     1, L, LA, P (+tRNS), RGB, RGBA, 16-bit grey/grey+alpha/RGB/  lossless
        RGBA
JPEG    L, RGB, CMYK; quantisation tables, subsampling, progressive  same tables (lossy)
TIFF    1, L, LA, P, RGB, RGBA, CMYK, 16-bit grey, 16-bit RGB(A)     its own compression
WebP    RGB, RGBA                                                   lossless stays lossless;
                                                                    lossy at quality 90
GIF     P, L (one frame); transparency                              lossless
BMP     1, L, P, RGB                                                lossless
AVIF    L, RGB, RGBA (8-bit)                                        quality 90
HEIF    L, RGB, RGBA (8-bit; pillow-heif)                           quality 90
======  ==========================================================  ==========================

A file this table does not cover (an animation, several pages, 32-bit or float pixels, a premultiplied
or YCbCr/LAB TIFF, a 10-bit HEIF, an RGBA BMP, ...) is refused with exit code 2 and the reason, never
quietly converted. Writing another format than the input's (the output's suffix) converts to the
nearest mode that format holds and says what was lost.
"""
from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np

from ..errors import InputError
from ..state import ImageInfo

FORMAT_BY_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG",
                    ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".dib": "BMP",
                    ".gif": "GIF", ".avif": "AVIF", ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF"}
SUFFIX_BY_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
                    "GIF": ".gif", "AVIF": ".avif", "HEIF": ".heic", "MPO": ".jpg"}

# the file modes each writer keeps exactly
WRITABLE = {
    "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "LA;16", "RGB;16", "RGBA;16"},
    "JPEG": {"L", "RGB", "CMYK"},
    "TIFF": {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "RGB;16", "RGBA;16"},
    "WEBP": {"RGB", "RGBA"},
    "GIF": {"L", "P"},
    "BMP": {"1", "L", "P", "RGB"},
    "AVIF": {"L", "RGB", "RGBA"},
    "HEIF": {"L", "RGB", "RGBA"},
}
KEEPS_ICC = {"PNG", "JPEG", "TIFF", "WEBP", "AVIF", "HEIF"}
KEEPS_EXIF = {"PNG", "JPEG", "TIFF", "WEBP", "AVIF", "HEIF"}
LOSSY_QUALITY = 90  # WebP (lossy), AVIF, HEIF: the file does not say its quality; re-encoded at this
TIFF_WRITABLE = {"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits", "jpeg", "group3",
                 "group4", "tiff_ccitt", "lzma", "zstd"}
# 16-bit colour TIFF (written by tifffile; PIL holds 8 bits a channel): PIL's compression name → tifffile's
_TIFF16 = {"raw": None, "tiff_lzw": "lzw", "tiff_adobe_deflate": "adobe_deflate", "tiff_deflate": "deflate",
           "packbits": "packbits"}

# the modes to try, in order, when a format cannot hold the file's own one
_FALLBACK = {"1": ["1", "L", "RGB"], "L": ["L", "RGB"], "LA": ["LA", "RGBA", "L", "RGB"],
             "P": ["P", "RGB", "L"], "PA": ["P", "RGBA", "RGB"], "RGB": ["RGB"], "RGBA": ["RGBA", "RGB"],
             "CMYK": ["CMYK", "RGB"], "I;16": ["I;16", "L", "RGB"], "LA;16": ["LA;16", "LA", "RGBA", "L", "RGB"],
             "RGB;16": ["RGB;16", "RGB"], "RGBA;16": ["RGBA;16", "RGBA", "RGB"]}
_REFUSED_MODES = {"I": "32-bit integer", "F": "32-bit float", "RGBa": "premultiplied alpha",
                  "La": "premultiplied alpha", "YCbCr": "YCbCr", "LAB": "CIELAB", "HSV": "HSV", "RGBX": "RGBX",
                  "PA": "palette + alpha channel"}
# TIFF tags that describe the file's layout (written anew), not the photo: left out of its EXIF
_TIFF_LAYOUT = {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 282, 283, 284, 286, 287,
                296, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 340, 341, 530, 531, 532, 34675}


# ---------------------------------------------------------------------------------------------- reading


def is_heif(data: bytes) -> bool:
    """An ISO-BMFF file with a HEIF/HEIC brand (what pillow-heif reads)."""
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in (
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1")


def register_heif() -> bool:
    """Register pillow-heif's HEIF opener and writer with PIL; False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def png_header(data: bytes | None) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR, or None."""
    if data and len(data) > 26 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return data[24], data[25]
    return None


def webp_lossless(data: bytes | None) -> bool | None:
    """True for a VP8L (lossless) WebP, False for VP8 (lossy), None when unknown."""
    if not data or len(data) < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if kind == b"VP8L":
            return True
        if kind == b"VP8 ":
            return False
        pos += 8 + size + (size & 1)
    return None


def read_info(im, data: bytes | None, name: str) -> ImageInfo:
    """The details of an opened (not yet loaded) PIL image that the output must keep. Raises
    InputError for what cannot be kept: animations, several pages or images, unsupported modes."""
    fmt = im.format or "PNG"
    if fmt == "MPO":
        fmt = "JPEG"
    if fmt not in WRITABLE:
        raise InputError(f"{name}: {fmt} images are not supported (read and written: "
                         f"{', '.join(sorted(WRITABLE))})")
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1 and im.format != "MPO":
        what = "pages" if fmt == "TIFF" else "frames"
        raise InputError(f"{name}: {fmt} with {frames} {what} (an animation or a multi-page file) is not "
                         f"supported: only a single image is edited, and the others would be lost")
    info = ImageInfo(format=fmt, icc_profile=im.info.get("icc_profile") or None)
    if frames > 1:  # MPO: a camera JPEG with more images (a preview, a depth or gain map)
        info.extra["notes"] = [f"the file holds {frames} images (MPO); only the first one is written"]
    if fmt == "HEIF":
        extra = sum(len(im.info.get(k) or []) for k in ("depth_images", "aux"))
        if extra:
            info.extra["notes"] = [f"the HEIF's {extra} depth/auxiliary image(s) are not written"]
    mode = im.mode
    if mode in _REFUSED_MODES:
        raise InputError(f"{name}: {fmt} in mode {mode} ({_REFUSED_MODES[mode]}) is not supported")
    if mode == "1":
        info.file_mode, info.bits = "1", 1
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        info.file_mode, info.bits = "I;16", 16
    else:
        info.file_mode = mode
    if fmt == "HEIF" and int(im.info.get("bit_depth", 8) or 8) > 8:
        raise InputError(f"{name}: a {im.info['bit_depth']}-bit HEIF is not supported (it would be written "
                         f"as 8-bit)")
    try:
        exif = im.getexif()
        if fmt == "TIFF":  # a TIFF's EXIF is its first IFD: keep the photo's tags, not the file's layout
            for tag in [t for t in exif if t in _TIFF_LAYOUT]:
                del exif[tag]
        if exif:
            orientation = exif.get(0x0112, 1)
            info.orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
            if 0x0112 in exif:
                exif[0x0112] = 1
            info.exif = exif.tobytes()
    except Exception:  # noqa: BLE001 - an EXIF block that does not parse is kept as it is, unread
        raw = im.info.get("exif")
        info.exif = bytes(raw) if isinstance(raw, (bytes, bytearray)) and raw else None
        info.orientation = 1
    dpi = im.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        try:
            info.dpi = tuple(float(v) for v in dpi)
        except (TypeError, ValueError):
            info.dpi = None
    for key in ("xmp", "comment", "background"):
        if im.info.get(key) is not None:
            info.extra[key] = im.info[key]
    if fmt == "PNG" and getattr(im, "text", None):
        info.extra["png_text"] = dict(im.text)
    if mode in ("L", "RGB", "I;16") and "transparency" in im.info:
        info.extra["transparency"] = im.info["transparency"]
    if fmt == "JPEG":
        _read_jpeg(im, info)
    elif fmt == "TIFF":
        _read_tiff(im, info, name)
    elif fmt == "WEBP":
        info.lossless = webp_lossless(data)
    elif fmt == "BMP" and mode == "RGBA":
        raise InputError(f"{name}: a BMP with an alpha channel is not supported (BMP output would lose the "
                         f"alpha); convert it to PNG first")
    png = png_header(data) if fmt == "PNG" else None
    if png and png[0] == 16:
        info.bits = 16
        info.file_mode = {0: "I;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}.get(png[1], info.file_mode)
        if b"tRNS" in data[:data.find(b"IDAT")] and png[1] in (0, 2):
            raise InputError(f"{name}: a 16-bit PNG with a transparent colour (tRNS) is not supported")
    return info


def _read_jpeg(im, info: ImageInfo) -> None:
    from PIL import JpegImagePlugin

    info.jpeg_qtables = getattr(im, "quantization", None) or None
    info.jpeg_quality = estimate_jpeg_quality(info.jpeg_qtables)
    sampling = JpegImagePlugin.get_sampling(im)
    info.jpeg_subsampling = sampling if sampling in (0, 1, 2) else None
    info.progressive = bool(im.info.get("progressive") or im.info.get("progression"))


def _read_tiff(im, info: ImageInfo, name: str) -> None:
    info.compression = im.info.get("compression", "raw")
    if info.compression not in TIFF_WRITABLE:
        raise InputError(f"{name}: TIFF compression {info.compression!r} cannot be written back")
    bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else ((bits,) if bits else ())
    samples = len(bits)
    if bits and max(bits) == 16 and im.mode not in ("I;16", "I;16B", "I;16L", "I;16N"):
        if samples not in (3, 4) or im.tag_v2.get(262) != 2:
            raise InputError(f"{name}: a 16-bit TIFF with {samples} samples per pixel is not supported")
        info.bits, info.file_mode = 16, "RGB;16" if samples == 3 else "RGBA;16"
        if info.compression not in _TIFF16:
            raise InputError(f"{name}: a 16-bit colour TIFF with compression {info.compression!r} cannot be "
                             f"written back")
        if info.exif and len(im.getexif().keys() - _TIFF_LAYOUT - {0x0112}) > 0:
            raise InputError(f"{name}: a 16-bit colour TIFF with EXIF cannot be written back with its EXIF; "
                             f"write a 16-bit PNG instead (-o NAME.png keeps EXIF and ICC)")
    elif bits and max(bits) > 16:
        raise InputError(f"{name}: a {max(bits)}-bit TIFF is not supported")


def tiff_16bit_rgb(data: bytes) -> np.ndarray:
    """Decode a 16-bit RGB(A) TIFF in full (PIL would give 8 bits): H×W×3|4 uint16 RGB(A)."""
    import tifffile

    arr = tifffile.imread(io.BytesIO(data), maxworkers=1)
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError("cannot decode the 16-bit TIFF")
    return arr


def png_16bit(data: bytes, colour_type: int) -> np.ndarray:
    """Decode a 16-bit PNG in full: H×W×C uint16 (grey, grey+alpha, RGB or RGBA)."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise ValueError("cannot decode the 16-bit PNG")
    if arr.ndim == 2:
        return arr[..., None]
    if colour_type == 4:  # OpenCV gives grey+alpha as BGRA
        return np.ascontiguousarray(arr[..., [0, 3]])
    if colour_type == 0:
        return np.ascontiguousarray(arr[..., :1])
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)


def estimate_jpeg_quality(qtables: dict | None) -> int | None:
    """Estimate the libjpeg quality (1–100) whose luminance table is closest to the file's."""
    if not qtables or 0 not in qtables:
        return None
    table = np.asarray(list(qtables[0]), np.float64)
    best, best_err = None, np.inf
    for q in range(1, 101):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        ref = np.clip(np.floor((_STD_LUMA * scale + 50) / 100), 1, 255)
        err = np.abs(np.sort(ref) - np.sort(table)).sum()
        if err < best_err:
            best, best_err = q, err
    return best


_STD_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
                      57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35,
                      55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112,
                      100, 103, 99], np.float64)


# ---------------------------------------------------------------------------------------------- writing


def working_mode(array: np.ndarray) -> str:
    c = array.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    if array.dtype == np.uint16:
        return "I;16" if c == 1 else f"{mode};16"
    return mode


def choose_mode(info: ImageInfo, array: np.ndarray, fmt: str) -> tuple[str, list[str]]:
    """The mode to write ``fmt`` in, and notes on what is lost. The input's own format must keep the
    file's own mode (else InputError); another format (chosen by the output's suffix) gets the nearest
    mode it holds."""
    own = info.file_mode or working_mode(array)
    if own == "P" and array.shape[2] == 4:
        own = "PA"  # a palette with transparency: its fallback keeps the alpha
    writable = WRITABLE.get(fmt)
    if writable is None:
        raise InputError(f"cannot write {fmt} images (choose one of {', '.join(sorted(WRITABLE))})")
    chain = _FALLBACK.get(own, [own])
    if info.extra.get("alpha_required"):  # a transparent cut-out: never drop its alpha silently
        check_alpha_format(fmt)
    if chain[0] in writable:
        return chain[0], []
    if fmt == info.format:
        raise InputError(f"{fmt} cannot store mode {own} as it was read")
    for mode in chain[1:]:
        if mode in writable:
            return mode, [f"{fmt} output: {_loss(own, mode)}"]
    raise InputError(f"{fmt} cannot store a {own} image without changing its colours "
                     f"(it holds {', '.join(sorted(writable))}); choose another output format")


def _loss(src: str, dst: str) -> str:
    what = []
    if "A" in src.replace("PA", "A") and "A" not in dst:
        what.append("the alpha channel is dropped")
    if src.endswith("16") and not dst.endswith("16"):
        what.append("16-bit becomes 8-bit")
    if src == "CMYK":
        what.append("CMYK becomes RGB")
    if src in ("P", "PA") and dst not in ("P",):
        what.append(f"the palette image becomes {dst}")
    if src == "1" and dst != "1":
        what.append(f"the black-and-white image becomes {dst}")
    return ", ".join(what) or f"{src} is written as {dst}"


def pixels_for(mode: str, array: np.ndarray, info: ImageInfo, fmt: str):
    """The working ``array`` as a PIL image (or an array for 16-bit colour) in ``mode``; for P, None
    when the fill's colours do not fit the palette (except GIF: the nearest colours)."""
    from PIL import Image

    from . import native

    if mode.endswith(";16") or mode == "I;16":
        arr = array if array.dtype == np.uint16 else array.astype(np.uint16) * 257
        arr = _channels(arr, {"I;16": 1, "LA;16": 2, "RGB;16": 3, "RGBA;16": 4}[mode])
        return Image.fromarray(np.ascontiguousarray(arr[..., 0])) if mode == "I;16" else arr
    arr8 = array if array.dtype == np.uint8 else ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if mode == "CMYK":
        native_cmyk = info.native if info.file_mode == "CMYK" else None
        return Image.fromarray(native.to_cmyk(_channels(arr8, 3), native_cmyk, info.icc_profile), "CMYK")
    if mode == "P":
        table = info.palette if info.palette is not None and info.file_mode == "P" else None
        if table is None:
            return None
        binary = fmt == "GIF" or bool(np.isin(table[:, 3], (0, 255)).all()
                                      and (table[:, 3] == 0).sum() <= 1)
        work = arr8 if arr8.shape[2] in (3, 4) else _channels(arr8, 3)
        if native.has_alpha(table):
            work = _channels(work, 4)
        else:
            work = _channels(work, 3)
        mapped = native.to_palette(work, info.native, table, binary, nearest=fmt == "GIF")
        if mapped is None:
            return None
        indices, table = mapped
        im = Image.fromarray(indices, "P")
        im.putpalette(table[:, :3].tobytes(), "RGB")
        alpha = table[:, 3]
        if (alpha < 255).any():
            clear = np.flatnonzero(alpha == 0)
            if fmt == "GIF" or (len(clear) == 1 and np.isin(alpha, (0, 255)).all()):
                im.info["transparency"] = int(clear[0]) if len(clear) else None
            else:
                im.info["transparency"] = alpha.tobytes()
        return im
    if mode == "1":
        return Image.fromarray(native.to_bilevel(_channels(arr8, 1)))
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    arr8 = _channels(arr8, channels)
    return Image.fromarray(arr8[..., 0] if channels == 1 else arr8, mode)


def _channels(arr: np.ndarray, c: int) -> np.ndarray:
    """Grey ↔ colour and alpha added or dropped, to ``c`` channels (1 L, 2 LA, 3 RGB, 4 RGBA)."""
    import cv2

    have = arr.shape[2]
    if have == c:
        return arr
    colour = arr[..., :3] if have >= 3 else arr[..., :1]
    alpha = arr[..., -1:] if have in (2, 4) else None
    if c in (1, 2) and colour.shape[2] == 3:
        colour = cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_RGB2GRAY)[..., None]
    elif c in (3, 4) and colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    if c in (2, 4):
        top = np.iinfo(arr.dtype).max
        alpha = alpha if alpha is not None else np.full(arr.shape[:2] + (1,), top, arr.dtype)
        return np.ascontiguousarray(np.concatenate([colour, alpha], axis=2))
    return np.ascontiguousarray(colour)


def _icc_fits(icc: bytes | None, mode: str) -> bool:
    """Whether a profile's colour space matches the pixels written (a CMYK profile on RGB pixels
    would mislabel them)."""
    if not icc or len(icc) < 20:
        return False
    space = icc[16:20]
    if mode == "CMYK":
        return space == b"CMYK"
    if mode in ("1", "L", "LA", "I;16", "LA;16"):
        return space == b"GRAY"
    return space == b"RGB "


def encode(array: np.ndarray, info: ImageInfo, fmt: str) -> tuple[bytes, list[str]]:
    """Encode the working ``array`` as ``fmt`` keeping what ``info`` describes; returns the bytes and
    notes on anything that could not be kept. Raises InputError when the format cannot take it."""
    mode, notes = choose_mode(info, array, fmt)
    notes = list(info.extra.get("notes") or []) + notes
    image = pixels_for(mode, array, info, fmt)
    if image is None:  # a palette that cannot hold the fill's colours
        mode = "RGBA" if array.shape[2] in (2, 4) else "RGB"
        if mode not in WRITABLE[fmt]:
            raise InputError(f"the fill's colours do not fit the {fmt}'s palette")
        notes.append(f"the palette has no room for the fill's colours: the image becomes {mode}")
        image = pixels_for(mode, array, info, fmt)
    own = info.file_mode or working_mode(array)
    icc = info.icc_profile if (mode == own or _icc_fits(info.icc_profile, mode)) else None
    if info.icc_profile and not icc:
        notes.append("the ICC profile does not fit the pixels written and is left out")
    if icc and fmt not in KEEPS_ICC:
        notes.append(f"{fmt} cannot hold the ICC profile")
        icc = None
    exif = info.exif if fmt in KEEPS_EXIF else None
    if info.exif and exif is None:
        notes.append(f"{fmt} cannot hold EXIF")
    try:
        if isinstance(image, np.ndarray):  # 16-bit colour
            data = _png16(image, icc, exif, info) if fmt == "PNG" else _tiff16(image, icc, info)
        elif mode in ("I;16", "LA;16") and fmt == "PNG":
            data = _png16(np.asarray(image)[..., None] if mode == "I;16" else image, icc, exif, info)
        else:
            data = _save_pil(image, fmt, mode, info, icc, exif)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the writer refused something the input carries
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot encode the output as {fmt}: {msg}") from None
    return data, notes


def _save_pil(im, fmt: str, mode: str, info: ImageInfo, icc: bytes | None, exif: bytes | None) -> bytes:
    kw: dict[str, Any] = {}
    if icc:
        kw["icc_profile"] = icc
    if exif:
        kw["exif"] = exif
    if info.dpi and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
        kw["dpi"] = info.dpi
    xmp = info.extra.get("xmp")
    if xmp and fmt in ("JPEG", "WEBP", "AVIF", "HEIF"):
        kw["xmp"] = xmp
    transparency = im.info.get("transparency", info.extra.get("transparency") if mode in ("L", "RGB") else None)
    if fmt == "JPEG":
        if info.jpeg_qtables and info.format == "JPEG":
            kw["qtables"] = info.jpeg_qtables
        else:
            kw["quality"] = info.jpeg_quality or 95
        if info.jpeg_subsampling is not None and mode == "RGB":
            kw["subsampling"] = info.jpeg_subsampling
        if info.progressive:
            kw["progressive"] = True
        if isinstance(info.extra.get("comment"), bytes):
            kw["comment"] = info.extra["comment"]
    elif fmt == "PNG":
        from PIL import PngImagePlugin

        text = info.extra.get("png_text")
        if text:
            meta = PngImagePlugin.PngInfo()
            for key, value in text.items():
                if isinstance(value, str) and isinstance(key, str) and key and len(key) < 80:
                    try:
                        value.encode("latin-1")
                        meta.add_text(key, value)
                    except UnicodeEncodeError:
                        meta.add_itxt(key, value)
            kw["pnginfo"] = meta
        if transparency is not None:
            kw["transparency"] = transparency
    elif fmt == "WEBP":
        if info.lossless and info.format == "WEBP":
            kw.update(lossless=True, exact=True, quality=100, method=4)
        else:
            kw.update(quality=LOSSY_QUALITY, alpha_quality=100, exact=True)
    elif fmt == "TIFF":
        compression = info.compression if info.format == "TIFF" else "tiff_lzw"
        if compression in ("group3", "group4", "tiff_ccitt") and mode != "1":
            compression = "tiff_lzw"
        kw["compression"] = compression or "raw"
        if compression == "jpeg":
            kw["quality"] = info.jpeg_quality or LOSSY_QUALITY
    elif fmt == "GIF":
        kw["optimize"] = False
        if transparency is not None:
            kw["transparency"] = transparency
        if isinstance(info.extra.get("background"), int):
            kw["background"] = info.extra["background"]
        if isinstance(info.extra.get("comment"), bytes):
            kw["comment"] = info.extra["comment"]
    elif fmt in ("AVIF", "HEIF"):
        kw["quality"] = LOSSY_QUALITY
        if fmt == "HEIF" and not register_heif():
            raise InputError("writing HEIF needs pillow-heif (pip install pillow-heif)")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


# --------------------------------------------------------------------------------------- 16-bit writers


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png16(array: np.ndarray, icc: bytes | None, exif: bytes | None, info: ImageInfo) -> bytes:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA) with iCCP, eXIf, pHYs and text chunks. Rows are
    filtered with the best of None/Sub/Up/Average/Paeth per row (fewest absolute byte values)."""
    h, w, c = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = array.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, w * c * 2).astype(np.int16)
    bpp = 2 * c
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    up = np.zeros_like(rows)
    up[1:] = rows[:-1]
    upleft = np.zeros_like(rows)
    upleft[1:, bpp:] = rows[:-1, :-bpp]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    candidates = np.stack([rows, rows - left, rows - up, rows - (left + up) // 2, rows - paeth]) & 0xFF
    cost = np.where(candidates > 127, 256 - candidates, candidates).sum(axis=2)
    best = cost.argmin(axis=0)
    filtered = candidates[best, np.arange(h)].astype(np.uint8)
    raw = np.concatenate([best.astype(np.uint8)[:, None], filtered], axis=1).tobytes()
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))]
    if icc:
        out.append(_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))
    if info.dpi:
        ppm = [max(1, int(round(d / 0.0254))) for d in info.dpi]
        out.append(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    for key, value in (info.extra.get("png_text") or {}).items():
        if isinstance(key, str) and isinstance(value, str) and 0 < len(key) < 80:
            body = key.encode("latin-1", "replace") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")
            out.append(_chunk(b"iTXt", body))
    if exif:
        out.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    out += [_chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b"")]
    return b"".join(out)


def _tiff16(array: np.ndarray, icc: bytes | None, info: ImageInfo) -> bytes:
    """A 16-bit RGB(A) TIFF with the input's compression (LZW for another format's input), a
    horizontal predictor where the codec takes one, and the ICC profile (tifffile, imagecodecs)."""
    import tifffile

    compression = info.compression if info.format == "TIFF" else "tiff_lzw"
    if compression not in _TIFF16:
        raise InputError(f"a 16-bit colour TIFF cannot be written with compression {compression!r}")
    codec, buf = _TIFF16[compression], io.BytesIO()
    tifffile.imwrite(buf, array, photometric="rgb", compression=codec, predictor=codec not in (None, "packbits"),
                     extrasamples=("unassalpha",) if array.shape[2] == 4 else None, iccprofile=icc,
                     metadata=None, software=False)  # no description or software tag: they would read as EXIF
    return buf.getvalue()


ALPHA_FORMATS = ("PNG", "WEBP", "TIFF", "AVIF")  # formats that hold a transparent result


def check_alpha_format(fmt: str) -> None:
    """A transparent result needs a format with alpha (PNG, WebP, TIFF, AVIF); else InputError."""
    if fmt not in ALPHA_FORMATS:
        raise InputError(f"{fmt} cannot hold a transparent background: use -o NAME.png "
                         f"(or .webp, .tif, .avif)")
