"""Synthetic scenes with known ground truth, for benchmarks, tests and samples.

A scene pastes an object with a known mask onto a background whose pixels are known everywhere,
so segmentation IoU and inpainting quality (against the true background) can be measured.
Backgrounds: studio backdrops (plain or gradient) drawn here, and real photos shipped inside the
scikit-image wheel (public domain / CC0, see samples/README.md).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

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
    parts: list | None = None  # multi-coloured objects: one H×W bool mask per colour region


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


# ------------------------------------------------------------------ multi-coloured objects and prompts
# (issue 12: clicks that go wrong, for the doubt signal's flag rates in benchmarks/bench_quality.py)


def two_tone_product(w: int, h: int, cx: float, cy: float, size: float, rng: np.random.Generator):
    """A product of two or three flat colours (a bottle with a label band, a box with a lid, a mug with
    a stripe): (RGB H×W×3 float, mask H×W bool, parts: one H×W bool mask per colour, largest first)."""
    _, mask = product(w, h, cx, cy, size, rng)
    ys, xs = np.nonzero(mask)
    y0, y1 = ys.min(), ys.max() + 1
    n = int(rng.integers(2, 4))
    cuts = np.sort(rng.uniform(0.25, 0.75, n - 1)) * (y1 - y0) + y0
    bands = np.searchsorted(cuts, np.arange(h))[:, None] * np.ones((1, w), int)
    hues = rng.permutation(6)[:n]
    palette = np.array([[200, 40, 40], [40, 160, 60], [40, 70, 200], [230, 200, 40], [240, 240, 235],
                        [40, 40, 45]], np.float32)[hues]
    palette = np.clip(palette + rng.uniform(-20, 20, palette.shape), 0, 255)
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    shade = (1 + 0.25 * np.cos((xx - (cx / w * 2 - 1)) * 2.2))[..., None] * 0.85
    img = np.clip(palette[bands] * shade, 0, 255)
    parts = sorted((mask & (bands == i) for i in range(n)), key=lambda m: -int(m.sum()))
    return img, mask, [p for p in parts if p.any()]


def two_tone_scene(w: int, h: int, rng: np.random.Generator, background: str = "studio") -> Scene:
    """A multi-coloured product on a studio backdrop (``studio``) or a real photo (``real``); the whole
    product is the object, ``parts`` holds its colour regions."""
    if background == "studio":
        bg = backdrop(w, h, rng, "gradient")
    else:
        bg = real_background(REAL_BACKGROUNDS[rng.integers(len(REAL_BACKGROUNDS))], w, h)
    size = min(w, h) * rng.uniform(0.4, 0.6)
    obj, mask, parts = two_tone_product(w, h, w * rng.uniform(0.4, 0.6), h * rng.uniform(0.45, 0.55), size, rng)
    scene = _finish(paste(bg, obj, mask), mask, bg, rng, f"two-tone-{background}")
    scene.parts = parts
    return scene


@dataclass
class Prompt:
    """One way a user may point at a scene's object: ``kind`` says which; ``good`` is whether it is a
    prompt a careful user would give (deep click, box) or one that goes wrong."""

    kind: str
    points: tuple = ()
    boxes: tuple = ()
    good: bool = True


def prompts(scene: Scene, rng: np.random.Generator) -> list[Prompt]:
    """Good prompts (a click deep inside, the tight box, a box 10 % looser) and clicks that go wrong: near
    the object's edge (2–4 px inside), on the background next to it (6–16 px outside), and, for a
    multi-coloured object, on one of its smaller colour parts."""
    h, w = scene.mask.shape
    m8 = scene.mask.astype(np.uint8)
    inside = cv2.distanceTransform(m8, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m8, cv2.DIST_L2, 5)
    x0, y0, x1, y1 = scene.box
    mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    loose = (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(w, int(x1 + mx)), min(h, int(y1 + my)))
    out = [Prompt("click", points=(scene.point,)), Prompt("box", boxes=(scene.box,)),
           Prompt("loose box", boxes=(loose,))]

    def pick(where: np.ndarray):
        cand = np.argwhere(where)
        if len(cand) == 0:
            return None
        y, x = cand[rng.integers(len(cand))]
        return int(x), int(y)

    p = pick((inside >= 2) & (inside <= 4))
    if p:
        out.append(Prompt("edge click", points=(p,), good=False))
    margin = np.zeros((h, w), bool)
    margin[2:-2, 2:-2] = True
    p = pick((outside >= 6) & (outside <= 16) & margin)
    if p:
        out.append(Prompt("background click", points=(p,), good=False))
    if scene.parts and len(scene.parts) > 1:
        part = scene.parts[-1].astype(np.uint8)
        d = cv2.distanceTransform(part, cv2.DIST_L2, 5)
        p = pick(d >= 0.6 * d.max())
        if p:
            out.append(Prompt("part click", points=(p,), good=False))
    return out


@dataclass
class StudioShot:
    """A product on a backdrop with a known soft alpha: ``image = F·alpha + B·(1 − alpha)``."""

    image: np.ndarray        # H×W×3 uint8
    alpha: np.ndarray        # H×W float32 in [0, 1], the true opacity of the object
    foreground: np.ndarray   # H×W×3 uint8, the object's own colours
    background: np.ndarray   # H×W×3 uint8
    mask: np.ndarray         # H×W bool: alpha > 0.5 (what a segmenter would give)
    box: tuple[int, int, int, int]  # half-open box of alpha > 0
    point: tuple[int, int]


def studio_shot(width: int = 320, height: int = 240, soft: float = 3.0, hair: bool = True,
                rng: np.random.Generator | None = None, box: tuple[int, int, int, int] | None = None) -> StudioShot:
    """A bottle-like product (an ellipse over a rectangle) with a ``soft`` px edge ramp and, when
    ``hair``, fine fur strands on its top edge (partial alpha), on a graded studio backdrop."""
    rng = rng or np.random.default_rng(0)
    h, w = height, width
    x0, y0, x1, y1 = box or (int(w * 0.3), int(h * 0.2), int(w * 0.7), int(h * 0.85))
    shape = np.zeros((h, w), np.uint8)
    cx, cw = (x0 + x1) // 2, (x1 - x0) // 2
    top = y0 + (y1 - y0) // 4
    cv2.rectangle(shape, (x0, top), (x1 - 1, y1 - 1), 1, -1)
    cv2.ellipse(shape, (cx, top), (cw, (y1 - y0) // 4), 0, 180, 360, 1, -1)
    inside = cv2.distanceTransform(shape, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - shape, cv2.DIST_L2, 5)
    signed = np.where(shape > 0, inside, -outside)
    alpha = np.clip((signed + soft / 2) / max(soft, 1e-6), 0, 1).astype(np.float32)
    if hair:
        fur = np.zeros((h, w), np.float32)
        for _ in range(max(8, (x1 - x0) // 4)):
            fx = int(rng.integers(x0 + cw // 3, x1 - cw // 3))
            fy = int(np.flatnonzero(shape[:, fx])[0]) if shape[:, fx].any() else top
            length = int(rng.integers(3, 8))
            cv2.line(fur, (fx, fy), (fx + int(rng.integers(-3, 4)), fy - length), 0.6, 1, cv2.LINE_AA)
        alpha = np.maximum(alpha, fur)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fg = np.stack([150 + 60 * np.sin(xx / 9), 60 + 40 * np.cos(yy / 7), 40 + 20 * (xx + yy) / (w + h)], -1)
    bg = np.stack([200 + 30 * yy / h, 205 + 25 * yy / h, 215 + 20 * xx / w], -1)
    a = alpha[..., None]
    image = np.clip(np.rint(fg * a + bg * (1 - a)), 0, 255).astype(np.uint8)
    mask = alpha > 0.5
    ys, xs = np.nonzero(alpha > 0)
    return StudioShot(image=image, alpha=alpha, foreground=np.clip(np.rint(fg), 0, 255).astype(np.uint8),
                      background=np.clip(np.rint(bg), 0, 255).astype(np.uint8), mask=mask,
                      box=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                      point=(cx, (top + y1) // 2))


# ------------------------------------------------------------------ cast shadows (issue 19)

SHADOW_GROUNDS = ("gravel", "brick", "grass", "noise")


@dataclass
class ShadowScene(Scene):
    """A :class:`Scene` whose object casts a soft shadow on textured ground: ``shadow`` is the true
    matte (H×W float32 0..1, where the object hides it too), ``darkening`` the umbra's share of
    brightness lost per channel; ``background`` is the ground with neither object nor shadow."""

    shadow: np.ndarray | None = None
    darkening: np.ndarray | None = None
    angle: float = 0.0
    penumbra: float = 0.0    # σ (px) of the penumbra's blur


def shadowless(scene: ShadowScene) -> ShadowScene:
    """``scene`` with its object on the clean ground: nothing casts a shadow (``shadow`` all 0)."""
    image = scene.background.copy()
    image[scene.mask] = scene.image[scene.mask]
    return replace(scene, image=image, shadow=np.zeros_like(scene.shadow), darkening=scene.darkening * 0)


def cut_off(scene: ShadowScene, margin: int) -> ShadowScene:
    """``scene`` (its shadow cast downwards) with the photo's bottom rows cut off: it ends ``margin`` px
    before the shadow's far end (the lowest row of its 0.5 line), so the shadow leaves the photo."""
    rows = np.flatnonzero(scene.shadow.max(axis=1) >= 0.5)
    end = min(scene.mask.shape[0], int(rows.max()) + 1 - margin)
    xs = np.flatnonzero(scene.mask[:end].any(axis=0))
    ys = np.flatnonzero(scene.mask[:end].any(axis=1))
    return replace(scene, image=scene.image[:end], mask=scene.mask[:end], background=scene.background[:end],
                   shadow=scene.shadow[:end], box=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def across_edge(scene: ShadowScene, ground_name: str, rng: np.random.Generator,
                level: float | None = None) -> ShadowScene:
    """``scene`` with the ground beyond a straight edge (across the shadow's direction, through the middle of
    its umbra) replaced by another (``ground_name``, its own tint and level): the shadow falls across a
    kerb, or from pavement onto grass. ``level``: the other ground's texture in the scene's ground's own
    colour, ``level`` times as bright (a concrete slab beside asphalt, a lawn beside a dark bed)."""
    h, w = scene.mask.shape
    other = ground(ground_name, w, h, rng).astype(np.float32)
    if level is not None:
        colour = scene.background.reshape(-1, 3).astype(np.float32).mean(axis=0)
        other = np.clip(other.mean(axis=2, keepdims=True) * colour / colour.mean() * level, 0, 255)
    ys, xs = np.nonzero(scene.shadow > 0.5)
    yy, xx = np.mgrid[0:h, 0:w]
    beyond = ((xx - xs.mean()) * np.cos(scene.angle) + (yy - ys.mean()) * np.sin(scene.angle)) > 0
    bg = np.where(beyond[..., None], other, scene.background.astype(np.float32))
    image = bg * (1 - scene.shadow[..., None] * scene.darkening)
    image[scene.mask] = scene.image[scene.mask]
    return replace(scene, image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
                   background=np.clip(np.rint(bg), 0, 255).astype(np.uint8))


def into_shade(scene: ShadowScene, level: float = 0.5) -> ShadowScene:
    """``scene`` with the ground beyond a straight edge across its shadow (at 60 % of the shadow's length
    outside the object) in a building's or a wall's shade: the same ground, ``level`` times as bright, where
    the object casts no shadow (no sun reaches it)."""
    h, w = scene.mask.shape
    ys, xs = np.nonzero((scene.shadow > 0.5) & ~scene.mask)
    yy, xx = np.mgrid[0:h, 0:w]
    along = xx * np.cos(scene.angle) + yy * np.sin(scene.angle)
    shade = (along > np.percentile(xs * np.cos(scene.angle) + ys * np.sin(scene.angle), 60)) & ~scene.mask
    dim = scene.background.astype(np.float32) * level
    image = np.where(shade[..., None], dim, scene.image.astype(np.float32))
    background = np.where(shade[..., None], dim, scene.background.astype(np.float32))
    return replace(scene, image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
                   background=np.clip(np.rint(background), 0, 255).astype(np.uint8),
                   shadow=np.where(shade, 0, scene.shadow).astype(np.float32))


def pole_scene(w: int, h: int, rng: np.random.Generator, ground_name: str = "noise", width: int = 12,
               angle: float = -0.38) -> ShadowScene:
    """A thin pole (``width`` px wide, a third of the photo's height tall) on textured ground, its shadow as
    narrow as the pole and as long as a third of the photo's width, cast from its foot at ``angle``
    (radians, image axes), penumbra σ 2 px, 45 % darker."""
    bg = ground(ground_name, w, h, rng)
    x, top, foot_y = w // 2, h // 3, 2 * h // 3
    mask = np.zeros((h, w), np.uint8)
    cv2.rectangle(mask, (x - width // 2, top), (x + width // 2, foot_y), 1, -1)
    foot = np.zeros((h, w), np.uint8)
    end = (int(x + w / 3 * np.cos(angle)), int(foot_y + w / 3 * np.sin(angle)))
    cv2.line(foot, (x, foot_y), end, 1, width)
    matte = cv2.GaussianBlur(foot.astype(np.float32), (0, 0), 2.0)
    matte[matte < 0.01] = 0
    darkening = np.full(3, 0.45, np.float32)
    image = paste(bg.astype(np.float32) * (1 - matte[..., None] * darkening),
                  np.broadcast_to(np.float32([200, 40, 40]), bg.shape), mask.astype(bool))
    scene = _finish(image, mask.astype(bool), bg, rng, f"pole-{ground_name}")
    return ShadowScene(scene.image, scene.mask, scene.background, scene.point, scene.box, scene.kind,
                       shadow=matte, darkening=darkening, angle=angle, penumbra=2.0)


def ground(name: str, w: int, h: int, rng: np.random.Generator, texture: float = 1.0) -> np.ndarray:
    """Textured ground (H×W×3 uint8): a real grey texture (gravel, brick, grass: 512 px photos at their
    own scale, or ``texture`` times it) or paving noise, tinted with a random colour (the ground's chroma)."""
    if name == "noise":
        fine = rng.normal(0, 1, (h, w)).astype(np.float32)
        coarse = cv2.resize(rng.normal(0, 1, (h // 8 + 1, w // 8 + 1)).astype(np.float32), (w, h),
                            interpolation=cv2.INTER_CUBIC)
        grey = 128 + 18 * cv2.GaussianBlur(fine, (0, 0), 1.0) * 2 + 14 * coarse
    else:
        # the texture at its own scale (stones, bricks, blades of grass keep their size in px), mirrored
        # to fill larger grounds
        tex = cv2.cvtColor(skimage_photo(name), cv2.COLOR_RGB2GRAY)
        if texture != 1.0:   # the stones' size in px of a photo of the same scene at another resolution
            tex = cv2.resize(tex, None, fx=texture, fy=texture,
                             interpolation=cv2.INTER_AREA if texture < 1 else cv2.INTER_CUBIC)
        reps = (-(-h // tex.shape[0]), -(-w // tex.shape[1]))
        tiles = [[tex[:: 1 - 2 * (i % 2), :: 1 - 2 * (j % 2)] for j in range(reps[1])] for i in range(reps[0])]
        grey = np.block(tiles)[:h, :w].astype(np.float32)
        grey = 128 + (grey - grey.mean()) * min(1.0, 40 / max(grey.std(), 1))
    tint = rng.uniform(0.75, 1.2, 3).astype(np.float32)
    tint /= tint.mean()
    level = rng.uniform(0.9, 1.3)
    return np.clip(grey[..., None] * tint * level, 0, 255).astype(np.uint8)


def shadow_scene(w: int, h: int, rng: np.random.Generator, ground_name: str | None = None,
                 angle: float | None = None, object_scale: float = 1.0, sky: float = 0.0,
                 objects: int = 1, length: float | None = None, soft: float = 1.0,
                 vignette: float = 0.0, strength: float = 1.0, hole: float = 0.0, texture: float = 1.0,
                 tip: float | None = None, fade: float = 1.0) -> ShadowScene:
    """A coloured object standing on textured ground, its soft shadow cast away from the light at
    ``angle`` (radians, image axes; random when None): the object's footprint swept along the light
    direction, blurred into a penumbra, darkening the ground by 35-60 % with its chroma kept; with
    ``sky``, lit by the blue sky alone: red darkened by ``sky``/2 of that more, blue by as much less;
    ``objects`` > 1: that many, side by side across the photo, under the same sun; ``length``: the
    shadow's length over the object's radius (random in 1.6-2.4 when None: a high sun); ``soft``: the
    penumbra's σ (1.5-4 px) times this (an overcast sky's, or an object high above the ground);
    ``vignette``: the ground lit unevenly, darker towards the photo's corners by up to this share (a
    lens's vignetting; the clean ground too); ``strength``: the darkening (35-60 %) times this (a
    shadow filled in by light from around, an overcast sky's); ``hole``: light through the object (its
    handle, between its legs) leaves a lit disc of this many times the object's radius in its shadow,
    two thirds of the way along it; ``texture``: the ground's texture at this many times its own scale
    in px (0.4: a 1200x900 photo's stones in a 480x360 photo of the same scene); ``tip``: the penumbra's
    σ (px) at the shadow's far end, growing from the object's centre along the light (a real shadow's
    widens with the distance from the edge that casts it; the sun is half a degree wide); ``fade``: the
    darkening at the shadow's far end, this many times that at the object's centre, linearly along the
    light (next to the object, the object hides more of the sky that lights the shadow)."""
    ground_name = ground_name or SHADOW_GROUNDS[rng.integers(len(SHADOW_GROUNDS))]
    angle = float(rng.uniform(0, 2 * np.pi)) if angle is None else float(angle)
    bg = ground(ground_name, w, h, rng, texture)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if vignette:
        falloff = 1 - vignette * ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
        bg = np.clip(np.rint(bg * falloff[..., None]), 0, 255).astype(np.uint8)
    radius = min(w, h) * rng.uniform(0.1, 0.14) * object_scale
    cx, cy = w * 0.5 + rng.uniform(-0.05, 0.05) * w, h * 0.5 + rng.uniform(-0.05, 0.05) * h
    centres = [(cx, cy)] if objects == 1 else [
        (w * (i + 0.5) / objects + rng.uniform(-0.03, 0.03) * w, cy) for i in range(objects)]
    blobs = [blob_mask(w, h, x, y, radius, rng) for x, y in centres]
    mask = np.logical_or.reduce(blobs)
    # the shadow: the object's footprint (its silhouette shrunk about its centre) swept along the
    # light direction, so it leaves the object on the side away from the light
    drawn = rng.uniform(1.6, 2.4)   # drawn even when ``length`` is given: the scene's later draws stay the same
    length = radius * (drawn if length is None else length)
    dx, dy = np.cos(angle), np.sin(angle)
    foot = np.zeros((h, w), np.uint8)
    for blob, (x, y) in zip(blobs, centres):
        base = blob.astype(np.uint8)
        for t in np.linspace(0, 1, 24):
            k = 0.6 * (1 - 0.3 * t)
            affine = np.float32([[k, 0, (1 - k) * x + t * length * dx], [0, k, (1 - k) * y + t * length * dy]])
            foot |= cv2.warpAffine(base, affine, (w, h), flags=cv2.INTER_NEAREST)
    if hole:
        for x, y in centres:
            cv2.circle(foot, (int(round(x + 2 / 3 * length * dx)), int(round(y + 2 / 3 * length * dy))),
                       int(round(hole * radius)), 0, -1)
    penumbra = rng.uniform(1.5, 4.0) * soft
    if tip is not None and tip > penumbra:
        matte = _widening(foot, penumbra, tip, centres, (dx, dy), length)
    else:
        matte = cv2.GaussianBlur(foot.astype(np.float32), (0, 0), penumbra)
    matte[matte < 0.01] = 0
    darkening = (rng.uniform(0.35, 0.6) * strength * np.array([1 + sky / 2, 1, 1 - sky / 2])).astype(np.float32)
    share = matte if fade == 1.0 else matte * (1 - (1 - fade) * _along(w, h, centres, (dx, dy), length))
    shaded = bg.astype(np.float32) * (1 - share[..., None] * darkening)
    colour = np.array([[220, 40, 40], [40, 90, 220], [240, 200, 30], [40, 170, 80]][rng.integers(4)], np.float32)
    image = shaded
    for blob, (x, y) in zip(blobs, centres):
        shade = (1.1 - 0.3 * ((xx - x) * dx + (yy - y) * dy) / radius)[..., None]  # lit on the light's side
        image = paste(image, np.clip(colour * shade, 0, 255), blob)
    scene = _finish(image, mask, bg, rng, f"shadow-{ground_name}")
    return ShadowScene(scene.image, scene.mask, scene.background, scene.point, scene.box, scene.kind,
                       shadow=matte, darkening=darkening, angle=angle, penumbra=penumbra)


def _widening(foot: np.ndarray, penumbra: float, tip: float, centres: list[tuple[float, float]],
              direction: tuple[float, float], length: float) -> np.ndarray:
    """``foot`` (H×W uint8) blurred by a σ growing from ``penumbra`` at the nearest object's centre to ``tip``
    ``length`` px along the light's ``direction`` (a unit vector), linearly: blurred at nine σ between the
    two and interpolated per pixel."""
    h, w = foot.shape
    along = _along(w, h, centres, direction, length) * 8
    levels = np.stack([cv2.GaussianBlur(foot.astype(np.float32), (0, 0), float(sg))
                       for sg in np.linspace(penumbra, tip, 9)])
    low = np.minimum(along.astype(int), 7)
    frac = (along - low).astype(np.float32)
    below = np.take_along_axis(levels, low[None], 0)[0]
    above = np.take_along_axis(levels, (low + 1)[None], 0)[0]
    return below * (1 - frac) + above * frac


def _along(w: int, h: int, centres: list[tuple[float, float]], direction: tuple[float, float],
           length: float) -> np.ndarray:
    """H×W float32 in [0, 1]: how far along its shadow each pixel is, from the nearest object's centre (0) to
    ``length`` px along the light's ``direction`` (1)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nearest = np.argmin([np.hypot(xx - x, yy - y) for x, y in centres], axis=0)
    cx, cy = np.float32(centres)[nearest].transpose(2, 0, 1)
    return np.clip(((xx - cx) * direction[0] + (yy - cy) * direction[1]) / max(length, 1.0), 0, 1)

