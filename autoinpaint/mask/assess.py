"""The doubt signal: a confidence record for every mask, from cheap measurements (no model, a few ms).

:func:`assess` measures a mask against the image and the prompts that made it and gives a verdict,
``ok`` or ``doubt``, with the reasons in words ("covers 38% of the photo and runs along 2 borders").
The :class:`Assess` step (after the mask stage, in every pipeline of :mod:`autoinpaint.api`) stores it
in ``state.metadata["quality"]`` and applies ``--on-doubt``.

Signals (the record's ``signals``):

* ``area``: share of the image the mask covers; ``borders``: image borders it runs along (covers at
  least a tenth of that side); ``pieces``: separate parts of it (each at least 5 % of it);
* ``click_off``: the largest distance (px) from a positive click to the mask; ``negative_on``:
  negative clicks that lie on the mask; ``box_fill`` / ``box_spill``: the share of each box the
  mask fills (the lowest) and the share of the mask outside every box;
* ``edge``: share of the mask's outline that lies on an edge of the image (a leak cuts across flat
  areas or texture);
* ``part_of``: share of the mask's outline that borders another flat region which does not reach the
  image's border: the rest of a multi-coloured object, when the mask took only one of its colours;
* ``background``: share of the mask whose colour is one of the image border's colours (the backdrop
  seen through a handle, a patch of sky);
* ``enclosed`` / ``inner``: the click lies on a smaller flat region that the mask encloses (a sticker,
  when the product was selected), or next to a distinct flat region inside the clicked one (a label,
  when the click landed on the product beside it);
* the segmenter's own scores: SAM's predicted ``iou`` and ``stability``; the classical segmenter's
  ``separation`` (:func:`autoinpaint.segment.evidence.colour_separation`).
* with ``--shadow``, the cast shadow found (:func:`autoinpaint.shadow.doubt.shadow_signals`):
  ``shadow_area`` (its area over the object's), ``shadow_borders`` (photo borders it runs along) and
  ``shadow_direction`` (how one-sided it is: a light casts a shadow to one side; a dark ring all around
  the object is not one)
  ``shadow_contrast`` (its umbra's darkening over the lit ground's darkest spots' at the search's
  scale: near 1, the gaps of coarse texture next to the object may be all it is),
  ``shadow_ends_at_ground`` (it stops at the straight edge of a darker ground: a building's shade, in
  which it would go on unseen), ``shadow_error`` (the mean absolute error, grey levels, to expect
  where it was once relit: the ground's texture times its outline's length over its area,
  :func:`autoinpaint.shadow.evidence.expected_error`, in a JPEG with ``shadow_compression``, what its
  compression adds once relit: :func:`autoinpaint.shadow.evidence.compression_error`) and
  ``shadow_fade`` (how much its umbra's darkening changes away from the object, a share of it: relit
  with one darkening, the ground is left uneven; :func:`autoinpaint.shadow.darkening.fade`).

The thresholds were tuned on the scenes of ``benchmarks/bench_quality.py`` only (its tuning seeds;
the table there also reports other seeds), except SAM's, which are the defaults of
``SamAutomaticMaskGenerator`` (``pred_iou_thresh`` 0.88, ``stability_score_thresh`` 0.95).

A mask drawn by the user (``--rect``, ``--ellipse``, ``--mask`` only) is what was asked for, whatever
its shape or size (a background to replace may well cover most of the photo): it is in doubt only
when it covers almost all of it (over 95 %: an inverted mask file, a box in the wrong units), which
leaves no picture to fill it from.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..selection import Selection
from ..shadow.doubt import shadow_reasons, shadow_signals

ON_DOUBT = ("write", "skip", "fail")
WORK_SIZE = 512          # longest side (px) of the copy the colour signals are measured on
WORK_CACHE = 4           # images whose working copy is kept for the next click (:func:`work_image`)

# thresholds (see the module docstring for where they come from)
AREA_MAX = 0.5           # any mask covering more than this share is in doubt
AREA_BORDER = 0.2        # ... or more than this while running along a border
BORDER_SIDE = 0.1        # a mask "runs along" a border when it covers this share of that side
BORDERS_MAX = 1          # running along more borders than this is doubt
PIECE_MIN = 0.05         # a separate piece counts when it holds this share of the mask
CLICK_OFF_PX = 3.0       # a positive click farther than this (working px) from the mask
BOX_FILL_MIN = 0.15      # the mask fills less than this share of a box
BOX_SPILL_MAX = 0.2      # more than this share of the mask lies outside every box
PART_OF = (0.12, 0.9)    # outline share bordering another flat region: part of an object
PART_MIN = 0.03          # ... a flat region at least this big (share of the mask's area)
BACKGROUND_MAX = 0.6     # share of the mask in the border's colours
SEPARATION_MIN = 0.7     # classical segmenter's colour separation
EDGE_MIN = 0.9           # share of the outline that lies on an edge of the image
EDGE_STEP = 6            # Lab units per px: a gradient this strong is an edge
SAM_IOU_MIN = 0.88       # SamAutomaticMaskGenerator's pred_iou_thresh
SAM_STABILITY_MIN = 0.95  # SamAutomaticMaskGenerator's stability_score_thresh
DRAWN_AREA_MAX = 0.95     # a drawn selection leaving almost nothing to fill it from
ENCLOSED_MIN = 0.03      # the click's flat region, enclosed by a much larger mask, at least this big
INNER_FLAT = 0.15        # ... and partly flat (share off any edge): a label, not a block of text
INNER_MIN = 0.03         # a distinct region inside the clicked one, next to the click, this big
FLAT_STEP = 3            # Lab units between neighbours inside one flat region (on a blurred copy)


@dataclass
class Quality:
    """A mask's confidence record: ``verdict`` ``ok`` or ``doubt``, ``reasons`` (words, empty when
    ok), ``signals`` (the measurements, JSON-friendly)."""

    verdict: str = "ok"
    reasons: list[str] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)

    @property
    def doubt(self) -> bool:
        return self.verdict == "doubt"

    def message(self) -> str:
        """One line: ``the mask is in doubt: covers 38% of the photo and runs along 2 borders``."""
        return "the mask is in doubt: " + "; ".join(self.reasons) if self.doubt else "the mask looks right"

    def to_dict(self) -> dict:
        return asdict(self)


def assess(image: np.ndarray, mask: np.ndarray, selection: Selection, scores: dict | None = None,
           cache: bool = False) -> Quality:
    """Measure ``mask`` (H×W bool) made from ``selection`` (pixel coordinates) on ``image`` (H×W×C
    uint8/uint16 as decoded, or H×W×3 uint8 RGB); ``scores`` are the segmenter's own (``iou``,
    ``stability``, ``separation``). ``cache``: ``image`` is a pipeline's own array, not changed in
    place between calls (a session's clicks): its working copy is kept for the next call
    (:func:`work_image`)."""
    scores = scores or {}
    area = float(np.count_nonzero(mask) / mask.size)  # mask.mean() (an exact count over the size), 9× faster
    signals: dict[str, Any] = {"area": round(area, 4)}
    reasons: list[str] = []
    if not selection.has_prompts:
        signals["drawn"] = True
        if area > DRAWN_AREA_MAX:
            what = "the mask file" if selection.mask_path and not (selection.rects or selection.ellipses) \
                else "the drawn region"
            hint = " (is it inverted? white = selected)" if what == "the mask file" else ""
            reasons.append(f"{what} covers {_pct(area)} of the photo, leaving almost nothing to fill it from{hint}")
        return Quality("doubt" if reasons else "ok", reasons, signals)

    m, s = _work_mask(mask)
    sides = [m[0].mean(), m[-1].mean(), m[:, 0].mean(), m[:, -1].mean()]
    borders = int(sum(v >= BORDER_SIDE for v in sides))
    signals["borders"] = borders
    pieces = _pieces(m)
    signals["pieces"] = pieces
    if area > AREA_MAX or (area > AREA_BORDER and borders >= 1):
        reasons.append(f"covers {_pct(area)} of the photo" + (f" and runs along {borders} border"
                                                               f"{'s' if borders > 1 else ''}" if borders else ""))
    elif borders > BORDERS_MAX:
        reasons.append(f"runs along {borders} borders of the photo")
    if pieces > 1 and len(selection.points) + len(selection.boxes) < pieces:
        reasons.append(f"falls into {pieces} separate pieces")

    _prompt_signals(m, s, selection, signals, reasons)
    work = (lambda: work_image(image)) if cache else (lambda: WorkImage(image))
    colour = _colour_signals(work, m, [(x * s, y * s) for x, y in selection.points], signals)
    if colour.get("part_of") is not None and PART_OF[0] <= colour["part_of"] < PART_OF[1] \
            and not selection.boxes:
        reasons.append(f"may be only part of an object: {_pct(colour['part_of'])} of its outline borders "
                       f"another region")
    if colour.get("enclosed", 0) >= ENCLOSED_MIN:
        reasons.append(f"the click is on a smaller region inside the mask ({_pct(colour['enclosed'])} of it): "
                       f"was that the object?")
    if colour.get("inner", 0) >= INNER_MIN:
        reasons.append(f"the click is next to a distinct region inside it ({_pct(colour['inner'])} of it): "
                       f"was that the object?")
    if colour.get("edge", 1) < EDGE_MIN:
        reasons.append(f"its outline follows the photo's edges for only {_pct(colour['edge'])} of its length")
    if colour.get("background", 0) > BACKGROUND_MAX:
        reasons.append(f"{_pct(colour['background'])} of it has the colours of the photo's background")

    for key, value in scores.items():
        signals[key] = round(float(value), 4)
    if "iou" in scores and scores["iou"] < SAM_IOU_MIN:
        reasons.append(f"the segmenter's predicted IoU is only {scores['iou']:.2f}")
    if "stability" in scores and scores["stability"] < SAM_STABILITY_MIN:
        reasons.append(f"the mask is unstable (stability {scores['stability']:.2f})")
    if "separation" in scores and scores["separation"] < SEPARATION_MIN:
        reasons.append(f"its colours barely differ from its surroundings' (separation {scores['separation']:.2f})")
    return Quality("doubt" if reasons else "ok", reasons, signals)


def _pct(share: float) -> str:
    pct = 100 * share
    return f"{pct:.0f}%" if pct >= 1 or pct == 0 else f"{pct:.1f}%"


def _work_size(h: int, w: int) -> tuple[float, tuple[int, int]]:
    """(scale, (width, height)) of the working copy of an H×W image: longest side at most WORK_SIZE."""
    s = min(1.0, WORK_SIZE / max(h, w))
    return s, (max(1, round(w * s)), max(1, round(h * s)))


def _work_mask(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """(mask, scale) at the working size."""
    import cv2

    s, size = _work_size(*mask.shape)
    if s == 1.0:
        return mask, 1.0
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5, s


class WorkImage:
    """An image's working copy (``rgb``: H×W×3 uint8, longest side at most WORK_SIZE, area-averaged)
    and the planes the colour signals read on it: ``lab`` (Lab of a 5×5 blur: flat regions), ``sharp``
    (Lab gradient magnitude per px of a 3×3 blur) and ``grad`` (its 3×3 max). They depend on the image
    alone: a session's clicks share them (:func:`work_image`)."""

    def __init__(self, image: np.ndarray):
        import cv2

        from ..imaging.pixels import to_rgb8

        s, size = _work_size(*image.shape[:2])
        rgb = to_rgb8(image)
        self.rgb = rgb if s == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)

    @cached_property
    def lab(self) -> np.ndarray:
        import cv2

        return cv2.cvtColor(cv2.GaussianBlur(self.rgb, (5, 5), 0), cv2.COLOR_RGB2LAB)

    @cached_property
    def sharp(self) -> np.ndarray:
        import cv2

        lab3 = cv2.cvtColor(cv2.GaussianBlur(self.rgb, (3, 3), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
        return np.sqrt((cv2.Sobel(lab3, cv2.CV_32F, 1, 0) ** 2
                        + cv2.Sobel(lab3, cv2.CV_32F, 0, 1) ** 2).sum(axis=2)) / 8

    @cached_property
    def grad(self) -> np.ndarray:
        import cv2

        return cv2.dilate(self.sharp, np.ones((3, 3), np.uint8))  # max over 3×3: a pixel's misalignment


_work_images: "OrderedDict[int, tuple[weakref.ref, WorkImage]]" = OrderedDict()
_work_lock = threading.Lock()


def work_image(image: np.ndarray) -> WorkImage:
    """``WorkImage(image)``, kept for the next call with this very array (by identity, while it lives;
    the last WORK_CACHE images, ~3 MB each): the clicks of a session resize and filter their photo
    once. The array must not change in place meanwhile: the pipeline's steps never write into
    ``state.image`` (its embeddings rely on that too)."""
    key = id(image)
    with _work_lock:
        held = _work_images.get(key)
        if held is not None and held[0]() is image:
            _work_images.move_to_end(key)
            return held[1]
    work = WorkImage(image)
    with _work_lock:
        _work_images[key] = (weakref.ref(image), work)
        _work_images.move_to_end(key)
        while len(_work_images) > WORK_CACHE:
            _work_images.popitem(last=False)
    return work


def _pieces(m: np.ndarray) -> int:
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= PIECE_MIN * areas.sum()).sum())


def _prompt_signals(m: np.ndarray, s: float, selection: Selection, signals: dict, reasons: list) -> None:
    import cv2

    if not m.any():
        return
    h, w = m.shape
    clicks = [(min(int(y * s), h - 1), min(int(x * s), w - 1)) for x, y in selection.points]
    if all(m[c] for c in clicks):  # every click on the mask: 0 px away (no transform needed)
        off = [0.0] * len(clicks)
    else:
        outside = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3)
        off = [float(outside[c]) for c in clicks]
    if off:
        signals["click_off"] = round(max(off) / s, 1)
        far = [p for p, d in zip(selection.points, off) if d > CLICK_OFF_PX]
        if far:
            x, y = far[0]
            reasons.append(f"the click at {x:.0f},{y:.0f} is {max(off) / s:.0f} px away from the mask")
    on = [p for p in selection.negatives if m[min(int(p[1] * s), h - 1), min(int(p[0] * s), w - 1)]]
    if selection.negatives:
        signals["negative_on"] = len(on)
    if on:
        reasons.append(f"the negative click at {on[0][0]:.0f},{on[0][1]:.0f} is inside the mask")
    if selection.boxes:
        inside_any = np.zeros_like(m)
        fills = []
        for x0, y0, x1, y1 in selection.boxes:
            a0, b0 = int(x0 * s), int(y0 * s)
            a1, b1 = max(a0 + 1, int(np.ceil(x1 * s))), max(b0 + 1, int(np.ceil(y1 * s)))
            fills.append(float(m[b0:b1, a0:a1].mean()))
            inside_any[b0:b1, a0:a1] = True
        spill = float((m & ~inside_any).sum() / max(1, m.sum()))
        signals["box_fill"], signals["box_spill"] = round(min(fills), 4), round(spill, 4)
        if min(fills) < BOX_FILL_MIN:
            reasons.append(f"fills only {_pct(min(fills))} of the box")
        if spill > BOX_SPILL_MAX:
            reasons.append(f"{_pct(spill)} of it lies outside the box")


def _colour_signals(work: Callable[[], WorkImage], m: np.ndarray, clicks: list, signals: dict) -> dict:
    """``edge``, ``background``, ``part_of``, ``enclosed`` and ``inner`` (see the module docstring),
    measured on the working copy (``work()``, asked for only when measured); ``clicks`` in its
    coordinates."""
    area = int(m.sum())
    if area < 16 or area > 0.9 * m.size:
        return {}
    measure = _Measure(work(), m)
    out: dict[str, float] = {}
    for key, value in (("edge", measure.edge()), ("background", measure.background()),
                       ("part_of", measure.part_of())):
        if value is not None:
            out[key] = value
    out.update(measure.around_clicks(clicks))
    for key, value in out.items():
        signals[key] = round(value, 4)
    return out


def _nearest(px: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Distance of each of ``px`` (N×3 float32) to the nearest of ``centres`` (K×3 float32): the very
    values of ``np.linalg.norm(px[:, None] - centres[None], axis=2).min(axis=1)`` (float32, the channels
    summed left to right; the root of the least square is the least root), one centre at a time rather
    than on an N×K×3 array (~5× faster)."""
    least = None
    for c in centres:
        d = [px[:, k] - c[k] for k in range(3)]
        sq = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        least = sq if least is None else np.minimum(least, sq, out=least)
    return np.sqrt(least)


class _Measure:
    """The colour signals of a mask ``m`` (the working size) on an image's working copy."""

    def __init__(self, work: WorkImage, m: np.ndarray):
        self.m, self.area = m, int(m.sum())
        self.h, self.w = m.shape
        self.lab, self.sharp, self.grad = work.lab, work.sharp, work.grad
        self.centres = self._border_colours()

    def _border_colours(self) -> np.ndarray | None:
        """k-means centres (Lab) of the image border's colours outside the mask."""
        import cv2

        strip = max(2, int(0.02 * min(self.h, self.w)))
        border = np.zeros((self.h, self.w), bool)
        border[:strip], border[-strip:], border[:, :strip], border[:, -strip:] = True, True, True, True
        border &= ~self.m
        if border.sum() < 32:
            return None
        px = self.lab[border].reshape(-1, 3).astype(np.float32)
        px = px[:: max(1, len(px) // 4000)]
        cv2.setRNGSeed(0)
        _, _, centres = cv2.kmeans(px, min(6, len(px)), None,
                                   (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5), 2,
                                   cv2.KMEANS_PP_CENTERS)
        return centres

    def _backdrop_coloured(self, region: np.ndarray) -> bool:
        """The region's mean colour is one of the border's: background, not part of an object."""
        if self.centres is None:
            return False
        mean = self.lab[region].reshape(-1, 3).astype(np.float32).mean(axis=0)
        return bool(np.min(np.linalg.norm(self.centres - mean, axis=1)) < 12)

    def _flood(self, x: int, y: int, barrier: np.ndarray) -> np.ndarray:
        """The flat region around (x, y): neighbours within FLAT_STEP, not crossing ``barrier``."""
        import cv2

        flood = np.zeros((self.h + 2, self.w + 2), np.uint8)
        flood[1:-1, 1:-1] = barrier
        cv2.floodFill(self.lab.copy(), flood, (x, y), 0, (FLAT_STEP,) * 3, (FLAT_STEP,) * 3,
                      8 | cv2.FLOODFILL_MASK_ONLY | (2 << 8))
        return flood[1:-1, 1:-1] == 2

    def edge(self) -> float | None:
        """Share of the outline (the image frame aside) lying on an edge of the image."""
        import cv2

        m8 = self.m.astype(np.uint8)
        outline = (m8 - cv2.erode(m8, np.ones((3, 3), np.uint8))).astype(bool)
        outline[0], outline[-1], outline[:, 0], outline[:, -1] = False, False, False, False
        return float((self.grad[outline] > EDGE_STEP).mean()) if outline.sum() >= 8 else None

    def background(self) -> float | None:
        """Share of the mask within 12 Lab units of one of the border's colours."""
        if self.centres is None:
            return None
        # every step-th mask pixel, as self.lab[self.m][::step] (without gathering them all first)
        inner = self.lab.reshape(-1, 3)[np.flatnonzero(self.m)[:: max(1, self.area // 20000)]].astype(np.float32)
        return float((_nearest(inner, self.centres) < 12).mean())

    def part_of(self) -> float | None:
        """Share of a ring around the outline taken by flat regions that do not reach the image border
        and are not in its colours: the rest of an object the mask took one colour of."""
        import cv2

        width = max(4, int(0.05 * np.sqrt(self.area)))
        outside = cv2.distanceTransform((~self.m).astype(np.uint8), cv2.DIST_L2, 3)
        ring = (outside > 4) & (outside <= 4 + width)  # beyond the blurred edge, where a flood can start
        if ring.sum() < 16:
            return None
        ys, xs = np.nonzero(ring & (self.grad <= EDGE_STEP))
        cy, cx = np.nonzero(self.m)
        order = np.argsort(np.arctan2(ys - cy.mean(), xs - cx.mean()))
        seeds = order[np.linspace(0, len(order) - 1, min(32, len(order))).astype(int)]
        covered = np.zeros((self.h, self.w), bool)
        part = 0
        for i in seeds:
            x, y = int(xs[i]), int(ys[i])
            if covered[y, x]:
                continue
            region = self._flood(x, y, self.m)
            covered |= region
            touches = region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any()
            if not touches and region.sum() >= PART_MIN * self.area and not self._backdrop_coloured(region):
                part += int((region & ring).sum())
        return part / int(ring.sum())

    def around_clicks(self, clicks: list) -> dict[str, float]:
        """``enclosed``: the click is on a smaller flat region the mask encloses (a sticker, when the
        product was selected); ``inner``: the click's flat region encloses a distinct flat one next to
        the click (a label on a product, when the click missed it). Shares of the mask."""
        import cv2

        from .refine import fill_holes

        out = {"inner": 0.0}
        for x, y in clicks:
            x, y = min(int(x), self.w - 1), min(int(y), self.h - 1)
            if not self.m[y, x]:
                continue
            clicked = self._flood(x, y, ~self.m)
            region = fill_holes(clicked)
            if region.sum() < 0.5 * self.area:
                size = region.sum() / self.area
                ring = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~region
                depth = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3).max()
                if size >= ENCLOSED_MIN and ring.any() and self.m[ring].mean() > 0.98 \
                        and depth >= 0.2 * np.sqrt(region.sum()):
                    out["enclosed"] = max(out.get("enclosed", 0.0), float(size))
                continue  # else texture: nothing to say
            holes = region & ~clicked & self.m
            n, labels, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=8)
            near = np.zeros((self.h, self.w), np.uint8)
            cv2.circle(near, (x, y), max(3, int(0.15 * np.sqrt(self.area))), 1, -1)
            for i in range(1, n):
                size = stats[i, cv2.CC_STAT_AREA] / self.area
                if size < INNER_MIN or not (near.astype(bool) & (labels == i)).any():
                    continue
                hole = labels == i
                depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3).max()
                flat = float((self.sharp[hole] <= EDGE_STEP).mean())
                if depth < 0.2 * np.sqrt(hole.sum()) or flat < INNER_FLAT or self._backdrop_coloured(hole):
                    continue  # printed text (thin strokes, not flat), or the backdrop seen through the object
                out["inner"] = max(out["inner"], float(size))
        return out


def _shadow_explains_part_of(quality: Quality, work: Callable[[], WorkImage], mask: np.ndarray, shadow) -> None:
    """The "only part of an object" reason, when the region its outline borders is the object's own
    cast shadow: measured again on object and shadow together, it goes when that is below the
    threshold (``part_of_with_shadow`` records the value)."""
    prefix = "may be only part of an object"
    if not any(r.startswith(prefix) for r in quality.reasons):
        return
    x0, y0, x1, y1 = shadow.box
    union = mask.copy()
    union[y0:y1, x0:x1] |= shadow.matte >= 0.5
    m, _ = _work_mask(union)
    value = _Measure(work(), m).part_of() if 16 <= m.sum() <= 0.9 * m.size else None
    if value is not None:
        quality.signals["part_of_with_shadow"] = round(value, 4)
        if value < PART_OF[0]:
            quality.reasons = [r for r in quality.reasons if not r.startswith(prefix)]


class Assess:
    """Pipeline step: the confidence record of ``state.mask`` in ``state.metadata["quality"]``.

    ``on_doubt``: ``write`` (record it and go on), ``skip`` (record it and stop: nothing is written;
    ``state.metadata["skipped"]`` says why) or ``fail`` (raise :class:`Doubtful`, exit code 2)."""

    name = "assess"

    def __init__(self, on_doubt: str = "write"):
        if on_doubt not in ON_DOUBT:
            raise InputError(f"--on-doubt must be one of {', '.join(ON_DOUBT)}, got {on_doubt!r}")
        self.on_doubt = on_doubt

    def __call__(self, state):
        quality = assess(state.image, state.mask, state.selection, state.metadata.get("segment_scores"),
                         cache=True)
        if getattr(state, "shadow", None) is not None:  # --shadow found one: is it plausible?
            signals = shadow_signals(state.shadow)
            quality.signals.update(signals)
            quality.reasons += shadow_reasons(signals)
            _shadow_explains_part_of(quality, lambda: work_image(state.image), state.mask, state.shadow)
            quality.verdict = "doubt" if quality.reasons else "ok"
        state.metadata["quality"] = quality.to_dict()
        if quality.doubt and self.on_doubt == "fail":
            raise Doubtful(f"{quality.message()} (nothing written; --on-doubt write writes it anyway)")
        if quality.doubt and self.on_doubt == "skip":
            state.metadata["skipped"] = "doubt"
            state.stop = "doubt"
        return state

    def __repr__(self) -> str:
        return f"Assess(on_doubt={self.on_doubt!r})"


class Doubtful(InputError):
    """The mask is in doubt and ``--on-doubt fail`` was given (exit code 2)."""
