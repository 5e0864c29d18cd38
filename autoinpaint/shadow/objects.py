"""Several selected objects, each with its own cast shadow.

:func:`~.find.find_shadow` searches a window around the object it is given, scaled to that object's
size. A mask of several objects apart (``--text "bag" --max-objects 3``, two ``--box``) seen as one
object makes that window the whole photo and the search's scale the objects' spread: no shadow is
found. So the mask is split into its objects (parts close to each other are one object, specks are
no object of their own), each object's shadow is searched with the others left out of the ground, and
the shadows found are held together (:class:`CastShadows`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .find import ShadowMatte, find_shadow
from .relight import shade

SPECK = 0.05             # a mask part under this share of the largest part's area is no object of its own
JOIN = 0.05              # parts whose boxes, grown by this share of their longest side (+2 px), meet are one
                         # object (a part of one object split off by the segmentation)
MAX_OBJECTS = 16         # at most this many objects are searched (the largest)
GRID = 1024              # the mask is split on a copy of its box of at most this many px
MAX_PARTS = 4096         # a mask in more parts than this (or over 4 × MAX_OBJECTS large ones) is one selection


@dataclass
class CastShadows:
    """The cast shadows found for the selected objects (``parts``: one :class:`~.find.ShadowMatte` per
    object that casts one), over their common ``box`` (x0, y0, x1, y1, half-open, full-resolution px).

    matte: the box's h×w float32 coverage, the largest of the parts' (overlapping shadows of one sun
    darken the ground once). Set by the steps: the object's own alpha (``FindShadow``), and while the
    inpainter works on the relit photo, the original image and the full alpha (``Deshadow``)."""

    parts: list[ShadowMatte]
    object_alpha: np.ndarray | None = field(default=None, repr=False)
    original: np.ndarray | None = field(default=None, repr=False)
    alpha: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def box(self) -> tuple[int, int, int, int]:
        boxes = np.array([p.box for p in self.parts])
        return (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))

    def _over_box(self, values) -> np.ndarray:
        """The parts' arrays (``values(part)``, each over the part's box) over the common box, the
        largest where they overlap."""
        if len(self.parts) == 1:
            return values(self.parts[0])
        x0, y0, x1, y1 = self.box
        out = None
        for p in self.parts:
            v = values(p)
            if out is None:
                out = np.zeros((y1 - y0, x1 - x0, *v.shape[2:]), v.dtype)
            px0, py0, px1, py1 = p.box
            view = out[py0 - y0:py1 - y0, px0 - x0:px1 - x0]
            np.maximum(view, v, out=view)
        return out

    @cached_property
    def matte(self) -> np.ndarray:
        return self._over_box(lambda p: p.matte)

    def shade(self, colours: int) -> np.ndarray:
        """h×w×``colours`` float32 over the box: the share of brightness the shadows take (matte ·
        darkening, per RGB channel, or their mean for grey images); :func:`~.relight.divide` takes it out."""
        return self._over_box(lambda p: shade(p.matte, p.darkening, colours))

    def pieces(self, values) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        """The parts' arrays (``values(part)``, each over the part's box) in pieces, each with its box:
        the parts' own when no two of their boxes overlap (objects apart: their common box is mostly
        ground no shadow darkens), else one over the common box (the largest where they overlap)."""
        boxes = [p.box for p in self.parts]
        if any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
               for i, a in enumerate(boxes) for b in boxes[i + 1:]):
            return [(self.box, self._over_box(values))]
        return [(p.box, values(p)) for p in self.parts]

    def shades(self, colours: int) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        """:meth:`shade` in :meth:`pieces`."""
        return self.pieces(lambda p: shade(p.matte, p.darkening, colours))


def objects(mask: np.ndarray) -> list[np.ndarray]:
    """``mask`` (H×W bool) split into the objects apart in it (H×W bool each, the largest first): its
    8-connected parts, those whose boxes grown by ``JOIN`` of their longest side meet joined, specks
    (under ``SPECK`` of the largest part's area) given to the object of the part whose box centre is
    nearest theirs. One object, or a mask in too many pieces to be objects apart (``MAX_PARTS``):
    ``[mask]`` itself. Measured on a copy of the mask's box of at most ``GRID`` px (a pixel of it is set
    when any of its block is), so a 12 MP photo's one object costs a few ms."""
    import cv2

    from ..mask.refine import bbox

    box = bbox(mask)
    if box is None:
        return [mask]
    bx0, by0, bx1, by1 = box
    crop = mask[by0:by1, bx0:bx1]
    f = max(1, -(-max(bx1 - bx0, by1 - by0) // GRID))
    small = crop
    if f > 1:   # blocks of f×f px (the box padded to a multiple of f)
        ph, pw = -(-crop.shape[0] // f) * f, -(-crop.shape[1] // f) * f
        padded = cv2.copyMakeBorder(crop.view(np.uint8), 0, ph - crop.shape[0], 0, pw - crop.shape[1],
                                    cv2.BORDER_CONSTANT, value=0)
        # each block's max: a dilation by the block, its top-left corner kept (NumPy's max over a reshape of the
        # blocks took ~8 ms of a 12 MP photo's two objects)
        small = cv2.dilate(padded, np.ones((f, f), np.uint8), anchor=(0, 0))[::f, ::f] > 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(small.astype(np.uint8), connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    big = np.flatnonzero(area >= SPECK * area.max()) if n > 2 else []
    if len(big) < 2 or len(big) > MAX_OBJECTS * 4 or n > MAX_PARTS:
        return [mask]   # one object, or a selection in pieces (a fence, a pattern): no objects apart
    x0, y0 = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[1:, cv2.CC_STAT_WIDTH], y0 + stats[1:, cv2.CC_STAT_HEIGHT]
    grow = JOIN * np.maximum(x1 - x0, y1 - y0) + 2
    group = {int(i): int(i) for i in big}

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for a in big:
        for b in big:
            if a < b and (x0[a] - grow[a] <= x1[b] + grow[b] and x0[b] - grow[b] <= x1[a] + grow[a]
                          and y0[a] - grow[a] <= y1[b] + grow[b] and y0[b] - grow[b] <= y1[a] + grow[a]):
                group[root(int(b))] = root(int(a))
    roots = sorted({root(int(i)) for i in big}, key=lambda r: -sum(area[i] for i in big if root(int(i)) == r))
    if len(roots) == 1:
        return [mask]
    centres = np.stack([(x0 + x1) / 2, (y0 + y1) / 2], axis=1)
    # every part's object: its own, or for a speck the nearest part's
    nearest = big[np.argmin(np.hypot(*(centres[:, None, :] - centres[None, big, :]).transpose(2, 0, 1)), axis=1)]
    index = {r: k for k, r in enumerate(roots)}
    owner = np.zeros(n, np.uint8)   # label → object index + 1 (0: background, or past MAX_OBJECTS)
    for i in range(n - 1):
        k = index[root(i if i in group else int(nearest[i]))]
        owner[i + 1] = k + 1 if k < MAX_OBJECTS else 0
    which = owner[labels]
    if f > 1:
        which = np.repeat(np.repeat(which, f, axis=0), f, axis=1)[:by1 - by0, :bx1 - bx0]
    out = []
    for k in range(min(len(roots), MAX_OBJECTS)):
        # its own box (its parts' blocks): a 12 MP photo's three objects apart take ~2 ms less each
        mine = owner[1:] == k + 1
        ox0, oy0 = int(x0[mine].min()) * f, int(y0[mine].min()) * f
        ox1, oy1 = min(int(x1[mine].max()) * f, bx1 - bx0), min(int(y1[mine].max()) * f, by1 - by0)
        obj = np.zeros_like(mask)
        obj[by0 + oy0:by0 + oy1, bx0 + ox0:bx0 + ox1] = crop[oy0:oy1, ox0:ox1] & (which[oy0:oy1, ox0:ox1] == k + 1)
        out.append(obj)
    return out


def find_shadows(image: np.ndarray, mask: np.ndarray) -> CastShadows | None:
    """The cast shadows of the objects in ``mask`` (H×W bool) in ``image`` (H×W×C), each searched with the
    other objects left out of the ground (:func:`~.find.find_shadow`); None when none casts one. Objects
    apart are searched side by side in as many threads as OpenCV may use (one per CPU core, or a batch
    worker's ``--threads``): the searches are independent, and most of their time is NumPy's and
    OpenCV's, which let go of the GIL (three objects at 12 MP on two cores ~20 % faster). The shadows
    come in the objects' order, the same as searched one after another."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    def search(obj: np.ndarray) -> ShadowMatte | None:   # the others left out (obj is part of mask)
        return find_shadow(image, obj, None if obj is mask else mask ^ obj)

    parts = objects(mask)
    threads = min(len(parts), max(1, cv2.getNumThreads()))
    if threads == 1:
        found = [search(obj) for obj in parts]
    else:
        with ThreadPoolExecutor(threads) as pool:
            found = list(pool.map(search, parts))
    found = [part for part in found if part is not None]
    return CastShadows(found) if found else None
