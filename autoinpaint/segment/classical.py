"""Offline segmenter (no weights): flat-object detection for clicks, else OpenCV GrabCut seeded by
the clicks, negative clicks and boxes.

1. **A click on a flat object lying on a surface** (a price sticker on a product, a product on a
   studio backdrop): flood-fill the clicked colour region F (climbing out of a printed detail such
   as a digit on the label); when F is not tiny, away from the border, and the ring just around it
   is smooth, nearly uniform and of another colour, the object is the set of pixels *not* of the
   surface's colour connected to F (text on the label included, backdrop seen through a mug's handle
   excluded), redone at full resolution for exact edges. This is what makes a click on a sticker
   select the sticker rather than the whole product.
2. **Otherwise GrabCut.** Seeds: a disk under each click is sure foreground; each negative click
   makes the flat-colour region it lies on (at least a disk) sure background; a box makes everything
   outside it sure background. With clicks only, the image border is background where its colour
   differs from the clicked colours, and pixels closer to the clicked colours (k-means of a window
   around the click) than to the border's become probable foreground when connected to a click.
   The result keeps the connected parts that hold a click (or lie in a box), with small holes
   filled (large ones are background seen through the object).

GrabCut works on a copy downscaled to ``work_size`` px; its mask is scaled back with smooth edges.
Numbers: ``benchmarks/bench_foundation.py --sections seg``.
"""
from __future__ import annotations

import numpy as np

from ..selection import Selection
from .base import BaseSegmenter, SegmentParams, SegmentResult


def load_classical_segmenter(spec: str = "classical") -> "ClassicalSegmenter":
    """Registry loader (:mod:`autoinpaint.models.registry`): the classical segmenter needs no weights."""
    return ClassicalSegmenter()


class ClassicalSegmenter(BaseSegmenter):
    """Flat-object + GrabCut ``Segmenter`` (see ``autoinpaint.segment.Segmenter``).

    Args:
        work_size: longest side in px of the working copy (speed vs. edge precision).
        iterations: GrabCut iterations.
    """

    name = "classical"

    def __init__(self, work_size: int = 640, iterations: int = 5):
        self.work_size, self.iterations = work_size, iterations

    def embed(self, image: np.ndarray) -> np.ndarray:
        """Nothing to precompute: the embedding is the image itself."""
        return image

    def predict(self, embedding: np.ndarray, selection: Selection,
                params: SegmentParams | None = None) -> SegmentResult:
        """Mask (H×W bool) of what ``selection`` points at in the image ``embedding``, with the
        segmenter's own evidence: ``separation`` (0..1), how well colour models of the object and of
        its surroundings tell them apart along the outline (:func:`.evidence.colour_separation`,
        measured on the working copy)."""
        mask = self.segment(embedding, selection)
        return SegmentResult(mask, {"separation": self.separation(embedding, mask)})

    def separation(self, image: np.ndarray, mask: np.ndarray) -> float:
        """:func:`.evidence.colour_separation` on a copy of at most ``work_size`` px."""
        import cv2

        from .evidence import colour_separation

        h, w = mask.shape
        scale = min(1.0, self.work_size / max(h, w))
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
        return colour_separation(image, mask)

    def segment(self, image: np.ndarray, selection: Selection) -> np.ndarray:
        """H×W×3 uint8 RGB + pixel-space selection → H×W bool mask."""
        import cv2

        h, w = image.shape[:2]
        scale = min(1.0, self.work_size / max(h, w))
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else image
        sel = _scale_selection(selection, scale)
        mask = np.zeros(small.shape[:2], bool)
        for box in sel.boxes:
            mask |= self._segment(small, sel.points, sel.negatives, box)
        if sel.points and not sel.boxes:
            flat = self._flat_objects(image, small, scale, sel.points, sel.negatives)
            if flat is not None:
                return flat if not sel.boxes else flat | _upscale(mask, w, h)
            mask |= self._segment(small, sel.points, sel.negatives, None)
        elif sel.points:  # points outside every box still select their own object
            outside = [p for p in sel.points if not any(_inside(p, b) for b in sel.boxes)]
            if outside:
                mask |= self._segment(small, outside, sel.negatives, None)
        return _upscale(mask, w, h) if scale < 1 else mask

    def _flat_objects(self, image, small, scale, points, negatives):
        """Every click on a flat-coloured object lying on a smooth surface of another colour (a price
        sticker on a product, a product on a backdrop): the union of those objects, at full
        resolution; None when any click is not on such an object (then GrabCut decides)."""
        import cv2

        h, w = image.shape[:2]
        lab_small = cv2.cvtColor(cv2.GaussianBlur(small, (3, 3), 0), cv2.COLOR_RGB2LAB)
        out = np.zeros((h, w), bool)
        for x, y in points:
            found = _flat_region(lab_small, (x, y))
            if found is None:
                return None
            filled, surface, thr = found
            obj = _off_surface(lab_small, filled, surface, thr)
            if any(obj[min(int(ny), obj.shape[0] - 1), min(int(nx), obj.shape[1] - 1)] for nx, ny in negatives):
                return None
            fine = _refine_full(image, obj, scale, surface, thr) if scale < 1 else obj
            out |= fine if fine is not None else _upscale(obj, w, h)
        return out

    def _segment(self, img: np.ndarray, points, negatives, box) -> np.ndarray:
        import cv2

        cv2.setRNGSeed(0)  # k-means / GrabCut initialisation: same input, same mask
        h, w = img.shape[:2]
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
        r = max(2, round(0.012 * min(h, w)))
        gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            gc[:] = cv2.GC_BGD
            gc[y0:y1, x0:x1] = cv2.GC_PR_FGD
            # a box hugs its object: a thin inner band is probably background
            band = max(1, round(0.02 * min(x1 - x0, y1 - y0)))
            inner = np.zeros((h, w), bool)
            inner[y0:y1, x0:x1] = True
            inner[y0 + band:y1 - band, x0 + band:x1 - band] = False
            gc[inner] = cv2.GC_PR_BGD
        else:
            gc = self._click_prior(lab, points, r)
        for x, y in points:
            cv2.circle(gc, (int(x), int(y)), r, int(cv2.GC_FGD), -1)
        if negatives:
            # a negative click excludes the flat-colour region it lies on (a disk where it is textured)
            lab8 = cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_RGB2LAB)
            for x, y in negatives:
                region = _flood(lab8, (x, y), FLAT_TOLERANCES[1])
                if region is not None and region.sum() <= 0.5 * h * w:
                    gc[region] = cv2.GC_BGD
            for x, y in points:  # the clicks themselves stay foreground, the negative disks background
                cv2.circle(gc, (int(x), int(y)), r, int(cv2.GC_FGD), -1)
            for x, y in negatives:
                cv2.circle(gc, (int(x), int(y)), r, int(cv2.GC_BGD), -1)
        if not ((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)).any():
            return np.ones((h, w), bool)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(np.ascontiguousarray(img), gc, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            pass  # degenerate colour models (e.g. a flat image): keep the seeds
        fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        return _keep_seeded(fg, points, box)

    def _click_prior(self, lab: np.ndarray, points, r: int) -> np.ndarray:
        """GrabCut labels from clicks alone: border = background, far-from-border colours = foreground."""
        import cv2

        h, w = lab.shape[:2]
        gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        bw = max(2, round(0.02 * min(h, w)))
        border = np.zeros((h, w), bool)
        border[:bw], border[-bw:], border[:, :bw], border[:, -bw:] = True, True, True, True
        samples = lab[border]
        k = min(6, len(samples))
        _, _, centers = cv2.kmeans(samples[:: max(1, len(samples) // 4000)], k, None,
                                   (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5), 2,
                                   cv2.KMEANS_PP_CENTERS)
        dist = np.min(np.linalg.norm(lab[..., None, :] - centers[None, None], axis=-1), axis=-1)
        # the clicked object's own colours: k-means of a window around each click
        win = max(3, round(0.03 * min(h, w)))
        near = np.zeros((h, w), bool)
        for x, y in points:
            near[max(0, int(y) - win):int(y) + win + 1, max(0, int(x) - win):int(x) + win + 1] = True
        near &= ~border
        csamples = lab[near] if near.any() else np.array([lab[int(y), int(x)] for x, y in points])
        kc = min(4, len(csamples))
        _, _, clicked = cv2.kmeans(np.ascontiguousarray(csamples, np.float32), kc, None,
                                   (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5), 2,
                                   cv2.KMEANS_PP_CENTERS)
        click_dist = np.min(np.linalg.norm(lab[..., None, :] - clicked[None, None], axis=-1), axis=-1)
        border_dist = np.median(dist[border])
        thresh = max(12.0, 3 * border_dist)
        # like the clicked colours more than the border's, or far from the border where the click is too
        fg_like = (click_dist < dist) & ((click_dist < thresh) | (dist > thresh))
        # the probable foreground is the part of fg_like connected to a click
        n, labels = cv2.connectedComponents(fg_like.astype(np.uint8), connectivity=8)
        ids = {labels[int(y), int(x)] for x, y in points} - {0}
        if ids:
            gc[np.isin(labels, list(ids))] = cv2.GC_PR_FGD
        gc[border & (click_dist > thresh)] = cv2.GC_BGD
        return gc


FLAT_TOLERANCES = (18, 12, 8)  # Lab units (OpenCV 8-bit scale), largest first


def _flood(lab: np.ndarray, point, tol: int) -> np.ndarray | None:
    """Pixels connected to ``point`` whose Lab colour is within ``tol`` of the clicked colour."""
    import cv2

    h, w = lab.shape[:2]
    x, y = int(point[0]), int(point[1])
    ff = np.zeros((h + 2, w + 2), np.uint8)
    seed = np.median(lab[max(0, y - 1):y + 2, max(0, x - 1):x + 2].reshape(-1, 3), axis=0)
    img = lab.copy()
    img[y, x] = seed.astype(np.uint8)
    cv2.floodFill(img, ff, (x, y), 0, (tol,) * 3, (tol,) * 3,
                  8 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    region = ff[1:-1, 1:-1].astype(bool)
    return region if region.any() else None


def _flat_region(lab: np.ndarray, point) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The clicked flat-colour region F (holes filled) when it is an object lying on a surface:
    F is not tiny, compact, away from the image border, and the ring just around it is smooth,
    nearly uniform and of another colour. When the click hits a detail (a digit printed on a price
    sticker), climbs to the surrounding flat region (the sticker), at most twice. Tries several colour
    tolerances, largest first. Returns (filled F, the surface's Lab colour, the colour distance
    beyond which a pixel is not the surface) or None."""
    import cv2

    from ..mask.refine import fill_holes

    h, w = lab.shape[:2]
    labf = lab.astype(np.float32)
    gx = cv2.Sobel(labf, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(labf, cv2.CV_32F, 0, 1, ksize=3) / 8
    grad = np.sqrt((gx ** 2 + gy ** 2).sum(axis=2))
    cx, cy = int(point[0]), int(point[1])
    r = max(2, round(0.006 * max(h, w)))
    k1 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    k2 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * r + 1, 4 * r + 1))
    min_area = max(16, 0.001 * h * w)
    seed_pt, grown = (cx, cy), np.zeros((h, w), bool)
    for _ in range(3):
        x, y = seed_pt
        seed = np.median(labf[max(0, y - 1):y + 2, max(0, x - 1):x + 2].reshape(-1, 3), axis=0)
        for tol in FLAT_TOLERANCES:
            region = _flood(lab, seed_pt, tol)
            if region is None:
                continue
            filled = fill_holes(region | grown)
            area = int(filled.sum())
            if not filled[cy, cx] or area < min_area or area > 0.35 * h * w or region.sum() < 0.6 * area:
                continue
            ys, xs = np.nonzero(filled)
            if xs.min() <= r or ys.min() <= r or xs.max() >= w - 1 - r or ys.max() >= h - 1 - r:
                continue  # touches the border: background or a cut-off object, GrabCut decides
            u8 = filled.astype(np.uint8)
            ring = (cv2.dilate(u8, k2) > 0) & ~(cv2.dilate(u8, k1) > 0)  # off the anti-aliased edge
            if ring.sum() < 8:
                continue
            colours = labf[ring]
            centre = np.median(colours, axis=0)
            spread = np.percentile(np.linalg.norm(colours - centre, axis=1), 90)
            smooth = np.percentile(grad[ring], 90)
            contrast = np.linalg.norm(centre - seed)
            if spread <= 20 and smooth <= 4 and contrast >= max(20, 2 * tol):
                return filled, centre, max(12.0, 1.5 * spread + 4)
        # not an object by itself: climb to the flat region around it
        region = _flood(lab, seed_pt, FLAT_TOLERANCES[1])
        if region is None:
            return None
        grown = fill_holes(region | grown)
        if grown.sum() > 0.35 * h * w:
            return None
        u8 = grown.astype(np.uint8)
        ring = (cv2.dilate(u8, np.ones((9, 9), np.uint8)) > 0) & ~grown
        if not ring.any():
            return None
        ry, rx = np.nonzero(ring)
        i = int(np.argmin(grad[ry, rx]))  # the flattest pixel around: inside the surrounding region
        seed_pt = (int(rx[i]), int(ry[i]))
    return None


def _off_surface(lab: np.ndarray, seed: np.ndarray, surface: np.ndarray, thr: float,
                 max_growth: float = 3.0) -> np.ndarray:
    """The object lying on the surface: the pixels whose colour is not the surface's, connected to
    ``seed`` (the flat region clicked), within its box grown by 30 %. Takes in what the flood fill
    missed (printed text, a glyph cutting the label's edge) and leaves out surface seen through the
    object (inside a mug's handle). Falls back to ``seed`` (holes filled) when that grows too much."""
    import cv2

    from ..mask.refine import bbox, fill_holes

    h, w = seed.shape
    x0, y0, x1, y1 = bbox(seed)
    mx, my = int(0.3 * (x1 - x0)) + 2, int(0.3 * (y1 - y0)) + 2
    x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    dist = np.linalg.norm(lab[y0:y1, x0:x1].astype(np.float32) - surface, axis=2)
    off = (dist > thr) | seed[y0:y1, x0:x1]
    n, labels = cv2.connectedComponents(off.astype(np.uint8), connectivity=4)
    ids = np.unique(labels[seed[y0:y1, x0:x1]])
    ids = ids[ids > 0]
    obj = np.zeros((h, w), bool)
    obj[y0:y1, x0:x1] = np.isin(labels, ids)
    if obj.sum() > max_growth * seed.sum():
        return fill_holes(seed)
    return _fill_small_holes(obj)


def _fill_small_holes(mask: np.ndarray, fraction: float = 0.02) -> np.ndarray:
    """Fill holes smaller than ``fraction`` of the object (printed details of the object's own
    colour family), keep larger ones (surface seen through the object)."""
    import cv2

    from ..mask.refine import fill_holes

    holes = fill_holes(mask) & ~mask
    if not holes.any():
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=4)
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < fraction * mask.sum()
    return mask | small[labels]


def _refine_full(image: np.ndarray, obj: np.ndarray, scale: float, surface, thr) -> np.ndarray | None:
    """The object found on the working copy, redone at full resolution for exact edges."""
    import cv2

    from ..mask.refine import bbox

    h, w = image.shape[:2]
    x0, y0, x1, y1 = bbox(obj)
    m = 4
    X0, Y0 = max(0, int((x0 - m) / scale)), max(0, int((y0 - m) / scale))
    X1, Y1 = min(w, int((x1 + m) / scale) + 1), min(h, int((y1 + m) / scale) + 1)
    if (X1 - X0) * (Y1 - Y0) > 6_000_000:
        return None
    lab = cv2.cvtColor(np.ascontiguousarray(image[Y0:Y1, X0:X1]), cv2.COLOR_RGB2LAB)  # unblurred: exact edges
    coarse = _upscale(obj, w, h)[Y0:Y1, X0:X1]
    k = 2 * int(np.ceil(1.5 / scale)) + 1
    dist = np.linalg.norm(lab.astype(np.float32) - surface, axis=2)
    off = dist > thr
    core = cv2.erode(coarse.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool) & off
    if not core.any():
        return None
    n, labels = cv2.connectedComponents(off.astype(np.uint8), connectivity=4)
    ids = np.unique(labels[core])
    region = _fill_small_holes(np.isin(labels, ids[ids > 0]))
    # must agree with the coarse object (else a leak at full resolution: keep the coarse one)
    if (region & coarse).sum() / max(1, (region | coarse).sum()) < 0.7:
        return None
    out = np.zeros((h, w), bool)
    out[Y0:Y1, X0:X1] = region
    return out


def _upscale(mask: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def _keep_seeded(fg: np.ndarray, points, box) -> np.ndarray:
    """Keep components holding a click; with a box, components inside it; fill holes."""
    import cv2


    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        return fg
    keep = np.zeros(n, bool)
    for x, y in points:
        keep[labels[int(y), int(x)]] = True
    if box is not None and not points:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep[1:] = areas >= 0.05 * areas.max()
    keep[0] = False
    return _fill_small_holes(keep[labels])


def _inside(p, b) -> bool:
    return b[0] <= p[0] < b[2] and b[1] <= p[1] < b[3]


def _scale_selection(sel: Selection, s: float) -> Selection:
    from dataclasses import replace

    if s == 1:
        return sel
    return replace(sel, points=tuple((x * s, y * s) for x, y in sel.points),
                   negatives=tuple((x * s, y * s) for x, y in sel.negatives),
                   boxes=tuple(tuple(v * s for v in b) for b in sel.boxes))
