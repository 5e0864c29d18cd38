"""Synthetic scenes with known ground truth, for benchmarks, tests and samples.

A scene pastes an object with a known mask onto a background whose pixels are known everywhere,
so segmentation IoU and inpainting quality (against the true background) can be measured.
Backgrounds: studio backdrops (plain or gradient) drawn here, and real photos shipped inside the
scikit-image wheel (public domain / CC0, see samples/README.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

REAL_BACKGROUNDS = ("brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket")


@dataclass
class Scene:
    image: np.ndarray        # H×W×3 uint8 RGB
    mask: np.ndarray         # H×W bool, the object
    background: np.ndarray   # H×W×3 uint8, the scene without the object
    point: tuple[int, int]   # a click inside the object (x, y)
    box: tuple[int, int, int, int]  # tight half-open box of the object
    kind: str


def skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def backdrop(w: int, h: int, rng: np.random.Generator, kind: str = "gradient") -> np.ndarray:
    """A studio backdrop: plain, or a soft vertical gradient with a vignette, plus sensor noise."""
    base = rng.uniform(170, 245, 3)
    if kind == "plain":
        img = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
    else:
        top = base
        bottom = np.clip(base - rng.uniform(30, 70), 60, 255)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img = (top * (1 - t) + bottom * t) * np.ones((1, w, 1), np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.hypot((xx - w / 2) / w, (yy - h / 2) / h)
        img *= (1 - 0.25 * r ** 2)[..., None]
    img += rng.normal(0, 1.5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def real_background(name: str, w: int, h: int) -> np.ndarray:
    return cv2.resize(skimage_photo(name), (w, h), interpolation=cv2.INTER_CUBIC if w > 400 else cv2.INTER_AREA)


def blob_mask(w: int, h: int, cx: float, cy: float, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random star-shaped blob (an object silhouette)."""
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    radii = np.ones(64)
    for k in range(2, 6):
        radii += rng.uniform(0, 0.12) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    aspect = rng.uniform(0.6, 1.4)
    pts = np.stack([cx + radius * radii * np.cos(angles) * aspect, cy + radius * radii * np.sin(angles)], 1)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def product(w: int, h: int, cx: float, cy: float, size: float, rng: np.random.Generator):
    """A shaded catalogue product (bottle, mug or box): (RGB H×W×3 float, mask H×W bool)."""
    mask = np.zeros((h, w), np.uint8)
    kind = rng.integers(3)
    bw, bh = size * rng.uniform(0.45, 0.7), size
    x0, y0 = int(cx - bw / 2), int(cy - bh / 2)
    if kind == 0:   # bottle: body + neck
        cv2.rectangle(mask, (x0, int(y0 + bh * 0.3)), (int(x0 + bw), int(y0 + bh)), 1, -1)
        cv2.ellipse(mask, (int(cx), int(y0 + bh * 0.3)), (int(bw / 2), int(bh * 0.12)), 0, 180, 360, 1, -1)
        cv2.rectangle(mask, (int(cx - bw * 0.15), y0), (int(cx + bw * 0.15), int(y0 + bh * 0.25)), 1, -1)
    elif kind == 1:  # mug: body + handle
        cv2.rectangle(mask, (x0, y0), (int(x0 + bw), int(y0 + bh * 0.8)), 1, -1)
        cv2.ellipse(mask, (int(x0 + bw), int(y0 + bh * 0.4)), (int(bw * 0.3), int(bh * 0.22)), 0, -90, 90, 1,
                    max(2, int(bw * 0.1)))
    else:            # box, slightly rotated
        rect = ((cx, cy), (bw * 1.3, bh * 0.8), float(rng.uniform(-12, 12)))
        cv2.fillPoly(mask, [np.round(cv2.boxPoints(rect)).astype(np.int32)], 1)
    colour = rng.uniform(20, 230, 3)
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    shade = (1 + 0.35 * np.cos((xx - (cx / w * 2 - 1)) * 2.2))[..., None] * 0.8
    img = np.clip(colour * shade * np.ones((h, 1, 1), np.float32), 0, 255)
    return img, mask.astype(bool)


def sticker(w: int, h: int, cx: float, cy: float, size: float, rng: np.random.Generator):
    """A price sticker: a bright rounded label with dark text."""
    mask = np.zeros((h, w), np.uint8)
    sw, sh = int(size), int(size * 0.55)
    x0, y0 = int(cx - sw / 2), int(cy - sh / 2)
    r = max(2, sh // 4)
    cv2.rectangle(mask, (x0 + r, y0), (x0 + sw - r, y0 + sh), 1, -1)
    cv2.rectangle(mask, (x0, y0 + r), (x0 + sw, y0 + sh - r), 1, -1)
    for px, py in ((x0 + r, y0 + r), (x0 + sw - r, y0 + r), (x0 + r, y0 + sh - r), (x0 + sw - r, y0 + sh - r)):
        cv2.circle(mask, (px, py), r, 1, -1)
    colour = np.array([[250, 200, 20], [240, 60, 40], [40, 200, 90], [250, 250, 250]][rng.integers(4)], np.float32)
    img = np.broadcast_to(colour, (h, w, 3)).astype(np.uint8).copy()
    text = f"${rng.integers(1, 99)}.{rng.integers(10, 99)}"
    scale = sh / 60
    cv2.putText(img, text, (x0 + sw // 8, y0 + int(sh * 0.68)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (20, 20, 20), max(1, int(scale * 2)), cv2.LINE_AA)
    return img.astype(np.float32), mask.astype(bool)


def paste(bg: np.ndarray, obj: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = bg.astype(np.float32).copy()
    out[mask] = obj[mask]
    return np.clip(out, 0, 255).astype(np.uint8)


def _finish(image, mask, background, rng, kind) -> Scene:
    ys, xs = np.nonzero(mask)
    # a click well inside the object: the deepest point of the distance transform, jittered
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    cand = np.argwhere(dist >= 0.6 * dist.max())
    y, x = cand[rng.integers(len(cand))]
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Scene(image, mask, background, (int(x), int(y)), box, kind)


def studio_scene(w: int, h: int, rng: np.random.Generator, kind: str = "gradient") -> Scene:
    """A product on a studio backdrop (plain or gradient); the product is the object."""
    bg = backdrop(w, h, rng, kind)
    size = min(w, h) * rng.uniform(0.35, 0.6)
    obj, mask = product(w, h, w * rng.uniform(0.4, 0.6), h * rng.uniform(0.45, 0.55), size, rng)
    return _finish(paste(bg, obj, mask), mask, bg, rng, f"studio-{kind}")


def real_scene(w: int, h: int, rng: np.random.Generator, name: str | None = None) -> Scene:
    """An object cut from one real photo by a blob silhouette, pasted onto another real photo."""
    name = name or REAL_BACKGROUNDS[rng.integers(len(REAL_BACKGROUNDS))]
    bg = real_background(name, w, h)
    src = [n for n in REAL_BACKGROUNDS if n != name][rng.integers(len(REAL_BACKGROUNDS) - 1)]
    texture = real_background(src, w, h)
    # recolour the cut-out so it is an object of its own, as a pasted product would be
    texture = np.clip(texture.astype(np.float32) * 0.5 + rng.uniform(0, 255, 3) * 0.5, 0, 255)
    radius = min(w, h) * rng.uniform(0.12, 0.22)
    mask = blob_mask(w, h, w * rng.uniform(0.3, 0.7), h * rng.uniform(0.3, 0.7), radius, rng)
    return _finish(paste(bg, texture, mask), mask, bg, rng, f"real-{name}")


def sticker_scene(w: int, h: int, rng: np.random.Generator) -> Scene:
    """A catalogue photo: a product on a backdrop with a price sticker; the sticker is the object."""
    bg = backdrop(w, h, rng, "gradient")
    size = min(w, h) * rng.uniform(0.45, 0.6)
    cx, cy = w * rng.uniform(0.42, 0.58), h * 0.5
    pimg, pmask = product(w, h, cx, cy, size, rng)
    background = paste(bg, pimg, pmask)
    ys, xs = np.nonzero(pmask)
    scx, scy = np.median(xs), np.percentile(ys, 60)
    simg, smask = sticker(w, h, scx, scy, size * 0.22, rng)
    smask &= pmask
    return _finish(paste(background, simg, smask), smask, background, rng, "sticker")


def catalogue_photo(w: int, h: int, seed: int) -> Scene:
    """Deterministic catalogue photo number ``seed`` (used by the batch benchmark)."""
    return sticker_scene(w, h, np.random.default_rng(seed))
