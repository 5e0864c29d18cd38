"""Reading and writing images so that the output matches the input: orientation, mode, bit depth,
format, JPEG quantisation tables and chroma subsampling, ICC profile and EXIF (per format:
:mod:`autoinpaint.imaging.formats`). Any bytes decode or raise InputError. Writes are atomic."""
from __future__ import annotations

import errno
import io
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from ..errors import InputError, TooLargeError
from ..log import warning
from ..state import ImageInfo
from .formats import FORMAT_BY_SUFFIX, SUFFIX_BY_FORMAT, read_info  # noqa: F401 - re-exported

if TYPE_CHECKING:
    import PIL.Image

DEFAULT_MAX_PIXELS = 100_000_000  # decompression-bomb guard; --max-pixels / AUTOINPAINT_MAX_PIXELS



class _QuietNative:
    """While held (by any thread), what C libraries print on file descriptor 2 (libpng, libtiff, OpenCV
    warnings about a damaged file) goes to /dev/null: a bad input gives one ``Error:`` line, not
    decoder chatter. Re-entrant; the first holder redirects, the last restores."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                try:
                    sys.stderr.flush()
                    saved = os.dup(2)
                    null = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(null, 2)
                    os.close(null)
                    self._saved = saved
                except (OSError, ValueError):
                    self._saved = None
            self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = None


QUIET_NATIVE = _QuietNative()


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
    name = str(path) if len(str(path)) <= 300 else str(path)[:150] + "..." + str(path)[-100:]
    try:
        if not path.exists():
            raise InputError(f"{name}: no such file")
        if not path.is_file():
            raise InputError(f"{name}: not a file")
        data = path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    array, info = decode_image(data, name, max_pixels)
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
    mode = _mode_of(array)
    bits = 16 if array.dtype == np.uint16 else 8
    return np.ascontiguousarray(array), ImageInfo(format="PNG", mode=mode, file_mode=mode, bits=bits)


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Decode an encoded image (``name`` is used in messages). See :func:`load_image`.

    Whatever the bytes are, this returns or raises InputError (exit code 2): a decoder's exception on
    a damaged file is turned into one, and decoder warnings are silenced."""
    from PIL import Image, UnidentifiedImageError

    from .formats import is_heif, register_heif

    max_pixels = max_pixels_default() if max_pixels is None else max_pixels
    if not data:
        raise InputError(f"{name}: file is empty (0 bytes)")
    Image.MAX_IMAGE_PIXELS = None  # we check the limit ourselves, with a clear message
    with warnings.catch_warnings(), QUIET_NATIVE:
        warnings.simplefilter("ignore")
        try:
            if is_heif(data) and not register_heif():
                raise InputError(f"{name}: reading HEIC/HEIF needs pillow-heif (pip install pillow-heif)")
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise InputError(f"{name}: not an image file, or a format that cannot be read") from None
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted bytes is bad input
            raise InputError(f"{name}: not an image file, or a damaged one that cannot be read "
                             f"({_reason(exc)})") from None
        return _decode(im, name, max_pixels, data)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _decode(im, name: str, max_pixels: int | None, data: bytes | None = None) -> tuple[np.ndarray, ImageInfo]:
    """An opened PIL image (lazy) → upright array and ImageInfo; ``data``: its encoded bytes, if any."""
    max_pixels = max_pixels_default() if max_pixels is None else max_pixels
    try:
        w, h = im.size
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{name}: image header is corrupt ({_reason(exc)})") from None
    if w <= 0 or h <= 0:
        raise InputError(f"{name}: image header says {w}x{h} pixels")
    if w * h > max_pixels:
        raise TooLargeError(f"{name}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,} "
                         f"(raise it with --max-pixels or AUTOINPAINT_MAX_PIXELS)")
    with warnings.catch_warnings(), QUIET_NATIVE:
        warnings.simplefilter("ignore")
        try:
            info = read_info(im, data, name)
            array, native = _pixels(im, info, data)
        except InputError:
            raise
        except MemoryError:
            raise InputError(f"{name}: not enough memory to decode {w}x{h} pixels") from None
        except Exception as exc:  # noqa: BLE001 - a decoder failing on damaged data is bad input
            raise InputError(f"{name}: image data is truncated or corrupt ({_reason(exc)})") from None
    if array.shape[:2] != (h, w):
        raise InputError(f"{name}: image data is truncated or corrupt (decoded {array.shape[1]}x"
                         f"{array.shape[0]}, header says {w}x{h})")
    info.mode = _mode_of(array)
    if native is not None:
        info.native = orient(native, info.orientation)
    return orient(array, info.orientation), info


def _pixels(im, info: ImageInfo, data: bytes | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The working pixels (H×W×C uint8/uint16: L, LA, RGB, RGBA) and the file's own ones when they
    differ (CMYK values, palette indices); not yet oriented."""
    from . import native
    from .formats import png_16bit, png_header, tiff_16bit_rgb

    if info.bits == 16 and data is not None and info.format == "PNG":
        return png_16bit(data, png_header(data)[1]), None
    if info.bits == 16 and data is not None and info.format == "TIFF" and info.file_mode != "I;16":
        return tiff_16bit_rgb(data), None
    if info.bits == 16 and data is None and info.file_mode != "I;16":
        raise InputError("a 16-bit colour PIL image cannot be read in full; pass the file or an array")
    im.load()
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im).astype(np.uint16)[..., None], None
    if mode == "1":
        return (np.asarray(im, dtype=np.uint8) * 255)[..., None], None
    if mode == "P":
        table = native.palette_table(im)
        indices = np.asarray(im, dtype=np.uint8)
        info.palette = table
        if len(table) == 0:
            raise ValueError("palette image without a palette")
        return native.from_palette(indices, table), indices
    if mode == "CMYK":
        cmyk = np.asarray(im)
        return native.cmyk_to_rgb(cmyk, info.icc_profile), cmyk
    if mode not in ("L", "LA", "RGB", "RGBA"):
        raise InputError(f"mode {mode} is not supported")
    arr = np.asarray(im)
    return np.ascontiguousarray(arr[..., None] if arr.ndim == 2 else arr), None


def _mode_of(array: np.ndarray) -> str:
    modes = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
    mode = modes[array.shape[2]]
    if array.dtype == np.uint16:
        return "I;16" if array.shape[2] == 1 else f"{mode};16"
    return mode


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an H×W×C array, like ``PIL.ImageOps.exif_transpose``."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}
    op = ops.get(orientation)
    return np.ascontiguousarray(op(array)) if op else array


def block_origin(orientation: int, shape: tuple[int, int], block: int = 16) -> tuple[int, int]:
    """Where (y, x) the stored file's ``block``-px grid (a JPEG's coding units) starts in the array that
    :func:`orient` made upright (H×W ``shape``): 0, or, on an axis the orientation reverses, the part of a
    block its far end left."""
    h, w = shape
    return (h % block if orientation in (3, 4, 7, 8) else 0, w % block if orientation in (2, 3, 6, 7) else 0)


def output_format(path: str | os.PathLike, info: ImageInfo) -> str:
    """The format to write: the output suffix decides, else the input's format."""
    return FORMAT_BY_SUFFIX.get(Path(path).suffix.lower(), info.format)


def encode_image(array: np.ndarray, info: ImageInfo, fmt: str) -> bytes:
    """Encode an array decoded by :func:`load_image` as ``fmt``, keeping what ``info`` describes:
    mode, bit depth, palette, CMYK ink values, compression, ICC profile, EXIF (see
    :mod:`autoinpaint.imaging.formats`). Raises InputError when ``fmt`` cannot hold it; what another format
    loses is logged as a warning."""
    data, notes = encode_with_notes(array, info, fmt)
    for note in notes:
        warning(note)
    return data


def encode_with_notes(array: np.ndarray, info: ImageInfo, fmt: str) -> tuple[bytes, list[str]]:
    """:func:`encode_image`, returning the notes on what could not be kept instead of logging them."""
    from .formats import encode

    with warnings.catch_warnings(), QUIET_NATIVE:
        warnings.simplefilter("ignore")
        return encode(array, info, fmt)


def to_pil(array: np.ndarray):
    """An H×W×C array as decoded (8 or 16 bit, C = 1..4) → a PIL image; 16-bit colour, which PIL
    cannot hold, stays an array."""
    from PIL import Image

    c = array.shape[2]
    if array.dtype == np.uint16:
        return Image.fromarray(np.ascontiguousarray(array[..., 0])) if c == 1 else array
    return Image.fromarray(array[..., 0] if c == 1 else array, mode={1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])


def write_atomic(path: str | os.PathLike, data: bytes, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, ``fsync`` and a rename,
    so a reader never sees a half-written file. On any failure (a full disk, an I/O error part-way)
    the temporary file is removed and the previous file at ``path``, if any, is left as it was;
    raises InputError (exit code 2) with the reason. ``exclusive``: never replace an existing file
    (FileExistsError, even when one appears meanwhile: the temporary file is hard-linked into place,
    which fails on an existing name)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder")
    try:
        previous_mode = path.stat().st_mode & 0o777
    except OSError:
        previous_mode = 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            _write_all(fd, data)
            os.fchmod(fd, previous_mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            _link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    except FileExistsError:
        _unlink_quietly(tmp)
        raise
    except OSError as exc:
        _unlink_quietly(tmp)
        kept = "the previous file is unchanged" if path.exists() else "nothing was written"
        raise InputError(f"cannot write {path}: {exc.strerror or exc} ({kept})") from None
    except BaseException:
        _unlink_quietly(tmp)
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


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may take only part of them)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def encode_mask(alpha: np.ndarray) -> bytes:
    """An H×W alpha in [0, 1] (or bool) as an 8-bit grayscale PNG."""
    from PIL import Image

    a = alpha.astype(np.float32) if alpha.dtype != bool else alpha.astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.round(a * 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def save_mask(alpha: np.ndarray, path: str | os.PathLike) -> None:
    """Write an H×W alpha in [0, 1] (or bool) as an 8-bit grayscale PNG, atomically."""
    write_atomic(path, encode_mask(alpha))


def load_mask(path: ImageInput, width: int, height: int, max_pixels: int | None = None,
              name: str | None = None) -> np.ndarray:
    """Read a mask file (any image; brighter than half = selected; a non-constant alpha channel is used instead) as H×W bool.

    ``path`` may also be the file's bytes (``name`` then names it in messages).
    Raises InputError when it cannot be read or its size is not ``width``×``height``.
    """
    name = name or str(path)
    if isinstance(path, (bytes, bytearray, memoryview)):
        array, info = decode_image(bytes(path), name, max_pixels)
    else:
        array, info = load_image(path, max_pixels)
    mh, mw = array.shape[:2]
    if (mw, mh) != (width, height):
        raise InputError(f"mask {name} is {mw}x{mh} but the image is {width}x{height}")
    if array.shape[2] in (2, 4) and not np.all(array[..., -1] == array[..., -1].max()):
        return array[..., -1] > 0
    channels = array[..., :3] if array.shape[2] >= 3 else array[..., :1]
    return channels.max(axis=2) > (np.iinfo(array.dtype).max // 2)
