"""Marketplace framing: place the kept object on a canvas (``square`` or ``WxH``) so that its box
fills the canvas less the margins, centred or standing on the bottom margin, optionally scaled up to
a minimum canvas side (never more than 2×).

Geometry only (OpenCV resizes); the new canvas area is filled later by the backdrop stage. At scale 1
the object's pixels are moved, not resampled, so its core stays bit-identical.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, TooLargeError
from ..mask.refine import bbox

MAX_UPSCALE = 2.0
DEFAULT_MARGIN = 5.0  # % of the canvas on each side, when framing is asked without --margin
ALIGNS = ("center", "bottom")


def parse_canvas(value: str | None) -> str | tuple[int, int] | None:
    """``square`` | ``WxH`` (pixels) | None → ``"square"``, ``(W, H)`` or None; else InputError."""
    if value is None or str(value).strip().lower() in ("", "none", "off"):
        return None
    text = str(value).strip().lower()
    if text == "square":
        return "square"
    m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise InputError(f"--canvas must be square or WxH in pixels (e.g. 2000x2000), got {value!r}")
    return int(m.group(1)), int(m.group(2))


def check_margin(margin: float | None) -> float | None:
    if margin is None:
        return None
    if not (0 <= float(margin) <= 45):
        raise InputError(f"--margin must be between 0 and 45 %, got {margin}")
    return float(margin)


@dataclass(frozen=True)
class Layout:
    """Where the object goes: ``scale`` (output px per input px), the canvas ``size`` (W, H) and the
    integer ``offset`` (x, y) of the scaled input image's top-left corner on the canvas."""

    scale: float
    size: tuple[int, int]
    offset: tuple[int, int]
    box: tuple[int, int, int, int]  # the object's box on the canvas (half-open, px)


def plan_layout(box: tuple[int, int, int, int], canvas: str | tuple[int, int] | None, margin: float,
                align: str, min_side: int | None, image_size: tuple[int, int],
                max_pixels: int | None = None) -> Layout:
    """The layout that puts the object ``box`` (x0, y0, x1, y1 in the input) on the canvas.

    ``canvas``: ``(W, H)``, ``"square"`` or None (the input's aspect ratio); a ``square``/None canvas
    is as large as the object at scale 1 needs, then grown to ``min_side`` (shorter side). The object
    box is scaled so that it fills the canvas less ``margin`` % on each side, on its longer side
    (it always fits whole)."""
    if align not in ALIGNS:
        raise InputError(f"--align must be one of {', '.join(ALIGNS)}, got {align!r}")
    bw, bh = box[2] - box[0], box[3] - box[1]
    keep = 1 - 2 * margin / 100
    if isinstance(canvas, tuple):
        cw, ch = canvas
        if min_side and min(cw, ch) < min_side:
            raise InputError(f"--canvas {cw}x{ch} is smaller than --min-side {min_side}")
        scale = min(cw * keep / bw, ch * keep / bh)
    else:
        aspect = 1.0 if canvas == "square" else image_size[0] / image_size[1]
        # the smallest canvas of this aspect whose inner area holds the box at scale 1
        ch = max(bh / keep, bw / keep / aspect)
        cw = ch * aspect
        scale = 1.0
        if min_side and min(cw, ch) < min_side:
            scale = min_side / min(cw, ch)
        cw, ch = max(int(math.ceil(cw * scale - 1e-6)), 1), max(int(math.ceil(ch * scale - 1e-6)), 1)
    from ..imaging.image_io import max_pixels_default

    limit = max_pixels or max_pixels_default()
    if cw * ch > limit:
        raise TooLargeError(f"the canvas {cw}x{ch} ({cw * ch} pixels) is over --max-pixels {limit}")
    if scale > MAX_UPSCALE + 1e-9:
        raise InputError(f"framing would upscale the object {scale:.2f}× (the most is {MAX_UPSCALE:g}×): "
                         f"use a larger photo, a smaller canvas or --min-side, or a larger --margin")
    sw, sh = bw * scale, bh * scale
    x = (cw - sw) / 2
    y = (ch - sh) / 2 if align == "center" else ch - ch * margin / 100 - sh
    ox, oy = int(round(x - box[0] * scale)), int(round(y - box[1] * scale))
    placed = (int(round(box[0] * scale)) + ox, int(round(box[1] * scale)) + oy,
              int(round(box[2] * scale)) + ox, int(round(box[3] * scale)) + oy)
    return Layout(scale=scale, size=(int(cw), int(ch)), offset=(ox, oy), box=placed)


def place(array: np.ndarray, layout: Layout, border: str = "zero", smooth: bool = True) -> np.ndarray:
    """``array`` (H×W or H×W×C) scaled by ``layout.scale`` and put on the canvas at its offset.
    ``border``: what the canvas holds outside the image, ``zero`` or ``replicate`` (its edge pixels)."""
    import cv2

    if layout.scale != 1.0:
        h, w = array.shape[:2]
        size = (max(int(round(w * layout.scale)), 1), max(int(round(h * layout.scale)), 1))
        interp = (cv2.INTER_AREA if layout.scale < 1 else cv2.INTER_CUBIC) if smooth else cv2.INTER_LINEAR
        src = array
        if array.dtype == np.bool_:
            src, interp = array.astype(np.uint8), cv2.INTER_NEAREST
        scaled = cv2.resize(src, size, interpolation=interp)
        if array.ndim == 3 and scaled.ndim == 2:
            scaled = scaled[..., None]
        if array.dtype == np.float32 and interp == cv2.INTER_CUBIC:
            scaled = np.clip(scaled, 0, 1)
        array = scaled.astype(array.dtype)
    cw, ch = layout.size
    ox, oy = layout.offset
    h, w = array.shape[:2]
    # the canvas rows/cols that come from the image, and where they come from
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + w, cw), min(oy + h, ch)
    if border == "replicate":
        ys = np.clip(np.arange(ch) - oy, 0, h - 1)
        xs = np.clip(np.arange(cw) - ox, 0, w - 1)
        return np.ascontiguousarray(array[ys][:, xs])
    out = np.zeros((ch, cw) + array.shape[2:], array.dtype)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = array[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return out


class Frame:
    """Pipeline step: when a ``canvas``, ``margin`` or ``min_side`` is asked, move ``state.image``,
    ``state.mask``, ``state.alpha`` and ``state.foreground`` onto the canvas (:func:`plan_layout`);
    the layout goes to ``state.metadata["framing"]``. Otherwise it does nothing."""

    name = "frame"

    def __init__(self, canvas: str | None = None, margin: float | None = None, align: str = "center",
                 min_side: int | None = None, max_pixels: int | None = None):
        self.canvas = parse_canvas(canvas)
        self.margin = check_margin(margin)
        if isinstance(self.canvas, tuple):  # a given size is checked at once, before any work
            from ..imaging.image_io import max_pixels_default

            limit = max_pixels or max_pixels_default()
            cw, ch = self.canvas
            if cw * ch > limit:
                raise TooLargeError(f"the canvas {cw}x{ch} ({cw * ch} pixels) is over --max-pixels {limit}")
        if align not in ALIGNS:
            raise InputError(f"--align must be one of {', '.join(ALIGNS)}, got {align!r}")
        if min_side is not None and min_side < 1:
            raise InputError(f"--min-side must be >= 1 px, got {min_side}")
        self.align, self.min_side, self.max_pixels = align, min_side, max_pixels

    @property
    def active(self) -> bool:
        return self.canvas is not None or self.margin is not None or bool(self.min_side)

    def __call__(self, state):
        if not self.active:
            return state
        box = bbox(state.alpha > 0)
        if box is None:
            raise InputError("the selection yields an empty mask: nothing to keep")
        margin = DEFAULT_MARGIN if self.margin is None else self.margin
        layout = plan_layout(box, self.canvas, margin, self.align, self.min_side, state.size, self.max_pixels)
        state.image = place(state.image, layout, border="replicate")
        state.foreground = place(state.foreground, layout)
        alpha = place(state.alpha, layout, smooth=False)  # linear: no overshoot past 0 or 1
        if layout.scale != 1.0:
            from .matte import snap

            snap(alpha)
        state.alpha = alpha
        state.mask = place(state.mask, layout)
        state.metadata["framing"] = {"canvas": list(layout.size), "scale": round(layout.scale, 6),
                                     "offset": list(layout.offset), "object_box": list(layout.box)}
        return state

    def __repr__(self) -> str:
        return (f"Frame(canvas={self.canvas!r}, margin={self.margin}, align={self.align!r}, "
                f"min_side={self.min_side})")
