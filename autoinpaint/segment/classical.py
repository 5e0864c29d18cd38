"""Offline segmenter (no weights): OpenCV GrabCut seeded by the clicks, negative clicks and boxes.

Seeds: a disk under each click is sure foreground, under each negative click sure background; a box
makes everything outside it sure background. With clicks only, the image border is taken as
background where its colour differs from the clicked colour, and pixels whose colour is far from
every border colour cluster become probable foreground (what a studio backdrop gives). GrabCut then
refines colour models and the boundary. The result keeps the connected parts that hold a click (or
lie in a box), with holes filled. Works on a copy downscaled to ``work_size`` px; the mask is scaled
back with smooth edges.
"""
from __future__ import annotations

import numpy as np

from ..selection import Selection


class ClassicalSegmenter:
    """GrabCut-based ``Segmenter`` (see ``autoinpaint.segment.Segmenter``).

    Args:
        work_size: longest side in px of the working copy (speed vs. edge precision).
        iterations: GrabCut iterations.
    """

    name = "classical"

    def __init__(self, work_size: int = 640, iterations: int = 5):
        self.work_size, self.iterations = work_size, iterations

    def __call__(self, image: np.ndarray, selection: Selection) -> np.ndarray:
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
            mask |= self._segment(small, sel.points, sel.negatives, None)
        elif sel.points:  # points outside every box still select their own object
            outside = [p for p in sel.points if not any(_inside(p, b) for b in sel.boxes)]
            if outside:
                mask |= self._segment(small, outside, sel.negatives, None)
        if scale < 1:
            up = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            mask = up >= 0.5
        return mask

    def _segment(self, img: np.ndarray, points, negatives, box) -> np.ndarray:
        import cv2

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
        clicked = np.array([lab[int(y), int(x)] for x, y in points])
        click_dist = np.min(np.linalg.norm(lab[..., None, :] - clicked[None, None], axis=-1), axis=-1)
        border_dist = np.median(dist[border])
        thresh = max(12.0, 3 * border_dist)
        fg_like = (dist > thresh) | (click_dist < 0.5 * thresh)
        # the probable foreground is the part of fg_like connected to a click
        n, labels = cv2.connectedComponents(fg_like.astype(np.uint8), connectivity=8)
        ids = {labels[int(y), int(x)] for x, y in points} - {0}
        if ids:
            gc[np.isin(labels, list(ids))] = cv2.GC_PR_FGD
        gc[border & (click_dist > thresh)] = cv2.GC_BGD
        return gc


def _keep_seeded(fg: np.ndarray, points, box) -> np.ndarray:
    """Keep components holding a click; with a box, components inside it; fill holes."""
    import cv2

    from ..mask_ops import fill_holes

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
    return fill_holes(keep[labels])


def _inside(p, b) -> bool:
    return b[0] <= p[0] < b[2] and b[1] <= p[1] < b[3]


def _scale_selection(sel: Selection, s: float) -> Selection:
    from dataclasses import replace

    if s == 1:
        return sel
    return replace(sel, points=tuple((x * s, y * s) for x, y in sel.points),
                   negatives=tuple((x * s, y * s) for x, y in sel.negatives),
                   boxes=tuple(tuple(v * s for v in b) for b in sel.boxes))
