"""Reading and writing images so that the output matches the input: orientation, mode, bit depth,
format, JPEG quantisation tables and chroma subsampling, ICC profile and EXIF. Writes are atomic."""
from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from .errors import InputError, TooLargeError
from .state import ImageInfo

if TYPE_CHECKING:
    import PIL.Image

DEFAULT_MAX_PIXELS = 100_000_000  # decompression-bomb guard; --max-pixels / AUTOINPAINT_MAX_PIXELS

FORMAT_BY_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".webp": "WEBP",
                    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
SUFFIX_BY_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
                    "MPO": ".jpg"}


def max_pixels_default() -> int:
    value = os.environ.get("AUTOINPAINT_MAX_PIXELS")
    return int(value) if value and value.isdigit() else DEFAULT_MAX_PIXELS


ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, "PIL.Image.Image", np.ndarray]
"""What the API accepts as an image: a path, encoded bytes, a PIL image or an H×W(×C) array."""


def load_image(source: ImageInput, max_pixels: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Decode ``source`` into an upright H×W×C array (uint8, or uint16 for 16-bit PNG) and its ImageInfo.

    ``source`` is a path, encoded bytes, a ``PIL.Image`` or an array (H×W or H×W×C, C = 1..4, uint8 or
    uint16; taken as it is, written as PNG unless the output path says otherwise).
    Raises InputError for a missing, empty, truncated, non-image or over-large (``max_pixels``) input.
    """
    from PIL import Image

    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, Image.Image):
        return _decode(source, "<PIL image>", max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), "<bytes>", max_pixels)
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    array, info = decode_image(data, str(path), max_pixels)
    info.path = str(path)
    return array, info


def _from_array(array: np.ndarray, max_pixels: int | None) -> tuple[np.ndarray, ImageInfo]:
    max_pixels = max_pixels_default() if max_pixels is None else max_pixels
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or array.dtype not in (np.uint8, np.uint16):
        raise InputError(f"an image array must be H×W or H×W×C (C = 1..4) of uint8 or uint16, "
                         f"got shape {array.shape} {array.dtype}")
    h, w = array.shape[:2]
    if h == 0 or w == 0:
        raise InputError("the image array is empty")
    if w * h > max_pixels:
        raise TooLargeError(f"{w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}")
    modes = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
    mode = modes[array.shape[2]]
    if array.dtype == np.uint16:
        mode = "I;16" if array.shape[2] == 1 else f"{mode};16"
    return np.ascontiguousarray(array), ImageInfo(format="PNG", mode=mode)


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Decode an encoded image (``name`` is used in messages). See :func:`load_image`."""
    from PIL import Image, UnidentifiedImageError

    max_pixels = max_pixels_default() if max_pixels is None else max_pixels
    if not data:
        raise InputError(f"{name}: file is empty (0 bytes)")
    Image.MAX_IMAGE_PIXELS = None  # we check the limit ourselves, with a clear message
    if _is_heif(data):
        _register_heif(name)
    try:
        im = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InputError(f"{name}: not an image file, or a format that cannot be read") from None
    return _decode(im, name, max_pixels, data)


def _is_heif(data: bytes) -> bool:
    """HEIC/HEIF/AVIF-family files start with an ISO-BMFF ``ftyp`` box."""
    return data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis",
                                                      b"mif1", b"msf1")


def _register_heif(name: str) -> None:
    """Teach PIL to read HEIC/HEIF (iPhone photos) through pillow-heif, once, when one comes."""
    try:
        import pillow_heif
    except ImportError:
        raise InputError(f"{name}: a HEIC/HEIF photo needs pillow-heif (pip install pillow-heif)") from None
    pillow_heif.register_heif_opener()


def _decode(im, name: str, max_pixels: int | None, data: bytes | None = None) -> tuple[np.ndarray, ImageInfo]:
    """An opened PIL image (lazy) → upright array and ImageInfo; ``data``: its encoded bytes, if any."""
    max_pixels = max_pixels_default() if max_pixels is None else max_pixels
    w, h = im.size
    if w * h > max_pixels:
        raise TooLargeError(f"{name}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,} "
                         f"(raise it with --max-pixels or AUTOINPAINT_MAX_PIXELS)")
    try:
        info = _read_info(im, None)
        if data is not None and im.format == "PNG" and _png_bit_depth(data) == 16:
            array, info.mode = _decode_16bit_png(data)
        else:
            im.load()
            array, info.mode = _to_array(im)
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise InputError(f"{name}: image data is truncated or corrupt ({exc})") from None
    return orient(array, info.orientation), info


def _read_info(im, path: str | None) -> ImageInfo:
    fmt = "JPEG" if im.format == "MPO" else (im.format if im.format in SUFFIX_BY_FORMAT else "PNG")
    info = ImageInfo(path=path, format=fmt, icc_profile=im.info.get("icc_profile"))
    exif = im.getexif()
    if exif:
        info.orientation = int(exif.get(0x0112, 1) or 1)
        if 0x0112 in exif:
            exif[0x0112] = 1
        info.exif = exif.tobytes()
    if "dpi" in im.info:
        info.dpi = tuple(float(v) for v in im.info["dpi"])
    if fmt == "JPEG":
        from PIL import JpegImagePlugin

        info.jpeg_qtables = getattr(im, "quantization", None) or None
        info.jpeg_quality = estimate_jpeg_quality(info.jpeg_qtables)
        sampling = JpegImagePlugin.get_sampling(im)
        info.jpeg_subsampling = sampling if sampling in (0, 1, 2) else None
    return info


def _to_array(im) -> tuple[np.ndarray, str]:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.int64).clip(0, 65535).astype(np.uint16)
        return arr[..., None], "I;16"
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    return np.ascontiguousarray(arr), im.mode


def _png_bit_depth(data: bytes) -> int:
    return data[24] if len(data) > 25 and data[12:16] == b"IHDR" else 8


def _decode_16bit_png(data: bytes) -> tuple[np.ndarray, str]:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError("cannot decode 16-bit PNG")
    if arr.ndim == 2:
        return arr[..., None], "I;16"
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), "RGB;16"
    return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA), "RGBA;16"


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an H×W×C array, like ``PIL.ImageOps.exif_transpose``."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}
    op = ops.get(orientation)
    return np.ascontiguousarray(op(array)) if op else array


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


def output_format(path: str | os.PathLike, info: ImageInfo) -> str:
    """The format to write: the output suffix decides, else the input's format."""
    return FORMAT_BY_SUFFIX.get(Path(path).suffix.lower(), info.format)


def encode_image(array: np.ndarray, info: ImageInfo, fmt: str) -> bytes:
    """Encode an array decoded by :func:`load_image` in ``fmt``, keeping what ``info`` describes."""
    from PIL import Image

    if array.dtype == np.uint16:
        if fmt == "PNG":
            return _encode_16bit_png(array, info.icc_profile)
        array = (array.astype(np.uint32) * 255 + 32767) // 65535  # other formats: 8-bit
        array = array.astype(np.uint8)
    channels = array.shape[2]
    if fmt == "JPEG" and channels in (2, 4):
        array, channels = array[..., :channels - 1], channels - 1  # JPEG has no alpha
    im = Image.fromarray(array[..., 0] if channels == 1 else array,
                         mode={1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels])
    kw: dict = {}
    if info.icc_profile:
        kw["icc_profile"] = info.icc_profile
    if info.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = info.exif
    if info.dpi:
        kw["dpi"] = info.dpi
    if fmt == "JPEG":
        if info.jpeg_qtables:
            kw["qtables"] = info.jpeg_qtables
        else:
            kw["quality"] = info.jpeg_quality or 95
        if info.jpeg_subsampling is not None and channels == 3:
            kw["subsampling"] = info.jpeg_subsampling
    elif fmt == "WEBP":
        kw["quality"] = 95
    elif fmt == "TIFF":
        kw["compression"] = "tiff_lzw"
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _encode_16bit_png(array: np.ndarray, icc: bytes | None) -> bytes:
    import cv2

    c = array.shape[2]
    bgr = array[..., 0] if c == 1 else cv2.cvtColor(array, cv2.COLOR_RGB2BGR if c == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise InputError("cannot encode 16-bit PNG")
    data = buf.tobytes()
    if icc:  # cv2 drops the profile; insert an iCCP chunk right after IHDR
        body = b"icc\x00\x00" + zlib.compress(icc)
        chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
        data = data[:33] + chunk + data[33:]
    return data


def to_pil(array: np.ndarray):
    """An H×W×C array as decoded (8 or 16 bit, C = 1..4) → a PIL image; 16-bit colour, which PIL
    cannot hold, stays an array."""
    from PIL import Image

    c = array.shape[2]
    if array.dtype == np.uint16:
        return Image.fromarray(np.ascontiguousarray(array[..., 0])) if c == 1 else array
    return Image.fromarray(array[..., 0] if c == 1 else array, mode={1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])


def write_atomic(path: str | os.PathLike, data: bytes, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees a half-written file. Raises InputError when the path cannot be written.
    ``exclusive``: never replace an existing file (FileExistsError, even when one appears meanwhile:
    the temporary file is hard-linked into place, which fails on an existing name)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            _link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    except FileExistsError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link_exclusive(tmp: str, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists (FileExistsError)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename (a tiny race window)
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def save_image(array: np.ndarray, info: ImageInfo, path: str | os.PathLike) -> str:
    """Encode like the input (or as the suffix of ``path`` says) and write atomically; returns the format."""
    fmt = output_format(path, info)
    write_atomic(path, encode_image(array, info, fmt))
    return fmt


def save_mask(alpha: np.ndarray, path: str | os.PathLike) -> None:
    """Write an H×W alpha in [0, 1] (or bool) as an 8-bit grayscale PNG, atomically."""
    from PIL import Image

    a = alpha.astype(np.float32) if alpha.dtype != bool else alpha.astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.round(a * 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    write_atomic(path, buf.getvalue())


def load_mask(path: str | os.PathLike, width: int, height: int, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask file (any image; brighter than half = selected; a non-constant alpha channel is used instead) as H×W bool.

    Raises InputError when it cannot be read or its size is not ``width``×``height``.
    """
    array, info = load_image(path, max_pixels)
    mh, mw = array.shape[:2]
    if (mw, mh) != (width, height):
        raise InputError(f"mask {path} is {mw}x{mh} but the image is {width}x{height}")
    if array.shape[2] in (2, 4) and not np.all(array[..., -1] == array[..., -1].max()):
        return array[..., -1] > 0
    channels = array[..., :3] if array.shape[2] >= 3 else array[..., :1]
    return channels.max(axis=2) > (np.iinfo(array.dtype).max // 2)
