"""A file's own pixels (CMYK, palette indices, black-and-white) and the RGB / grey pixels the pipeline
works on, in both directions.

Decoding converts the file's pixels to working ones; encoding converts the result back. Every pixel
whose working value is what decoding gave keeps the file's own value exactly (the same CMYK ink
values, the same palette index); only the others are converted. CMYK goes through the file's ICC
profile when it has a usable one (LittleCMS, to sRGB and back), else through PIL's plain formula.
"""
from __future__ import annotations

import functools
import io

import numpy as np

# -------------------------------------------------------------------------------------------- CMYK


@functools.lru_cache(maxsize=8)
def _cmyk_transforms(icc: bytes | None):
    """(CMYK→RGB, RGB→CMYK) LittleCMS transforms through ``icc`` (a CMYK profile) and sRGB, or None
    when there is no profile or it is not a usable CMYK output profile."""
    if not icc or len(icc) < 128 or icc[16:20] != b"CMYK":
        return None
    try:
        from PIL import ImageCms

        cmyk = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        intent = ImageCms.Intent.RELATIVE_COLORIMETRIC
        return (ImageCms.buildTransform(cmyk, srgb, "CMYK", "RGB", intent),
                ImageCms.buildTransform(srgb, cmyk, "RGB", "CMYK", intent))
    except Exception:  # noqa: BLE001 - a damaged or unusual profile: fall back to the plain formula
        return None


def uses_icc(icc: bytes | None) -> bool:
    """True when CMYK pixels are converted through ``icc`` (else PIL's plain formula)."""
    return _cmyk_transforms(icc) is not None


def cmyk_to_rgb(cmyk: np.ndarray, icc: bytes | None) -> np.ndarray:
    """H×W×4 uint8 CMYK → H×W×3 uint8 RGB (sRGB through ``icc`` when usable)."""
    from PIL import Image, ImageCms

    im = Image.fromarray(np.ascontiguousarray(cmyk), "CMYK")
    transforms = _cmyk_transforms(icc)
    rgb = ImageCms.applyTransform(im, transforms[0]) if transforms else im.convert("RGB")
    return np.asarray(rgb)


def rgb_to_cmyk(rgb: np.ndarray, icc: bytes | None) -> np.ndarray:
    """H×W×3 uint8 RGB → H×W×4 uint8 CMYK, the inverse route of :func:`cmyk_to_rgb`."""
    from PIL import Image, ImageCms

    im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    transforms = _cmyk_transforms(icc)
    cmyk = ImageCms.applyTransform(im, transforms[1]) if transforms else im.convert("CMYK")
    return np.asarray(cmyk)


def to_cmyk(rgb: np.ndarray, native: np.ndarray | None, icc: bytes | None) -> np.ndarray:
    """The working RGB result → CMYK to write: the file's own CMYK where the pixel is what decoding
    gave (bit-identical ink values), converted elsewhere."""
    if native is None or native.shape[:2] != rgb.shape[:2]:
        return rgb_to_cmyk(rgb, icc)
    same = np.all(rgb == cmyk_to_rgb(native, icc), axis=2)
    out = native.copy()
    if not same.all():
        out[~same] = rgb_to_cmyk(rgb[~same][None], icc)[0]
    return out


# ----------------------------------------------------------------------------------------- palette


def palette_table(im) -> np.ndarray:
    """A P image's palette as N×4 uint8 RGBA (alpha from its transparency: a single index or tRNS)."""
    raw = im.getpalette("RGB") or []
    table = np.asarray(raw, np.uint8).reshape(-1, 3)
    alpha = np.full((len(table), 1), 255, np.uint8)
    trns = im.info.get("transparency")
    if isinstance(trns, int) and 0 <= trns < len(table):
        alpha[trns] = 0
    elif isinstance(trns, (bytes, bytearray)):
        n = min(len(trns), len(table))
        alpha[:n, 0] = np.frombuffer(bytes(trns[:n]), np.uint8)
    return np.concatenate([table, alpha], axis=1)


def has_alpha(table: np.ndarray) -> bool:
    return bool((table[:, 3] < 255).any())


def from_palette(indices: np.ndarray, table: np.ndarray) -> np.ndarray:
    """H×W indices → H×W×3 RGB, or H×W×4 RGBA when the palette has transparency."""
    if len(table) == 0:
        table = np.zeros((1, 4), np.uint8)
    safe = np.minimum(indices, len(table) - 1)
    return np.ascontiguousarray(table[safe] if has_alpha(table) else table[safe, :3])


def _keys(colours: np.ndarray) -> np.ndarray:
    """N×C uint8 colours → one uint32 key each (RGBA, alpha 255 for 3 channels)."""
    c = colours.astype(np.uint32)
    a = c[:, 3] if c.shape[1] == 4 else np.full(len(c), 255, np.uint32)
    return (c[:, 0] << 24) | (c[:, 1] << 16) | (c[:, 2] << 8) | a


SNAP = 4  # grey levels: a fill colour this close to a palette entry (every channel) takes that entry


def to_palette(array: np.ndarray, indices: np.ndarray | None, table: np.ndarray, binary_alpha: bool,
               nearest: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The working RGB(A) result → (H×W uint8 indices, palette N×4) to write.

    Pixels whose colour is what decoding gave keep their index. Other colours use a palette entry of
    exactly that colour, or within :data:`SNAP` grey levels of it (the ±1 noise of an inpainter over a flat
    area), else a free entry (one no pixel uses, or room up to 256). ``binary_alpha``
    (GIF, or one transparent index): alpha below 128 becomes the transparent entry, the rest opaque.
    When the colours do not fit: the nearest entry when ``nearest`` (GIF), else None (the caller
    writes RGB instead and says so)."""
    h, w = array.shape[:2]
    c = array.shape[2]
    table = table.copy()
    if indices is None or indices.shape != (h, w):
        indices = np.zeros((h, w), np.uint8)
        same = np.zeros((h, w), bool)
    else:
        same = np.all(array == from_palette(indices, table)[..., :c], axis=2)
    out = indices.astype(np.uint8).copy()
    if same.all():
        return out, table
    px = array[~same]
    if c == 4 and binary_alpha:
        transparent = np.flatnonzero(table[:, 3] == 0)
        clear = px[:, 3] < 128
        px = px.copy()
        px[:, 3] = np.where(clear, 0, 255)
        if clear.any() and len(transparent):
            px[clear] = table[transparent[0]]
    colours, inverse = np.unique(_keys(px), return_inverse=True)
    inverse = inverse.reshape(-1)
    full = table if c == 4 else table[:, :3]
    entry_keys = _keys(full)
    order = np.argsort(entry_keys, kind="stable")
    pos = np.searchsorted(entry_keys[order], colours)
    found = (pos < len(order)) & (entry_keys[order][np.minimum(pos, len(order) - 1)] == colours)
    index_of = np.where(found, order[np.minimum(pos, len(order) - 1)], -1)
    missing = np.flatnonzero(~found)
    if len(missing):  # an entry within SNAP of every channel is the same colour to the eye
        rgba = np.stack([(colours[missing] >> s) & 255 for s in (24, 16, 8, 0)], axis=1).astype(np.int16)
        diff = np.abs(rgba[:, None, :] - table[None, :, :].astype(np.int16)).max(axis=2)
        near = diff.argmin(axis=1)
        close = diff[np.arange(len(missing)), near] <= SNAP
        index_of[missing[close]] = near[close]
        found[missing[close]] = True
        missing = missing[~close]
    if len(missing):
        # free entries: none of the kept pixels uses them, no found colour is them, not transparent
        used = np.zeros(256, bool)
        used[np.unique(out[same])] = True
        used[index_of[found]] = True
        used[np.flatnonzero(table[:, 3] < 255)] = True
        free = np.flatnonzero(~used)[:len(missing)]
        if len(missing) <= len(free):
            if free.max() >= len(table):
                grow = int(free.max()) + 1 - len(table)
                table = np.concatenate([table, np.tile([0, 0, 0, 255], (grow, 1)).astype(np.uint8)])
            for k, slot in zip(missing, free):
                key = int(colours[k])
                table[slot] = [(key >> 24) & 255, (key >> 16) & 255, (key >> 8) & 255, key & 255]
                index_of[k] = slot
        elif nearest:
            rgba = np.stack([(colours >> s) & 255 for s in (24, 16, 8, 0)], axis=1).astype(np.int32)
            cand = table.astype(np.int32)
            for k in missing:
                d = ((cand - rgba[k]) ** 2 * np.array([1, 1, 1, 4])).sum(axis=1)
                index_of[k] = int(np.argmin(d))
        else:
            return None
    out[~same] = index_of[inverse].astype(np.uint8)
    return out, table


# -------------------------------------------------------------------------------------- bilevel


def to_bilevel(grey: np.ndarray) -> np.ndarray:
    """H×W×1 uint8 grey → H×W bool for a mode '1' image (threshold 128: decoded 0/255 stay as they were)."""
    return grey[..., 0] >= 128
