"""Selection prompts: points, negative points, boxes, drawn rectangles/ellipses, mask files and text
phrases (``--text``: a detector turns them into boxes before segmentation).

Coordinates are pixels of the EXIF-oriented image (x to the right, y down, origin at the top-left
corner), or fractions of the width/height in [0, 1] when ``relative`` is set.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .errors import InputError

Point = tuple[float, float]
Box = tuple[float, float, float, float]
MAX_TEXTS = 16          # phrases per selection
MAX_TEXT_CHARS = 200    # characters per phrase


def clean_texts(texts: "str | Sequence[str]") -> tuple[str, ...]:
    """Validate ``--text`` phrases: a string is one phrase; whitespace is collapsed; each phrase needs
    a letter or digit and at most :data:`MAX_TEXT_CHARS` characters; repeats are dropped; at most
    :data:`MAX_TEXTS` phrases. Raises InputError."""
    if isinstance(texts, str):
        texts = (texts,)
    out = []
    for t in texts:
        if not isinstance(t, str):
            raise InputError(f"--text must be a phrase (a string), got {t!r}")
        phrase = " ".join(t.split())
        if not any(c.isalnum() for c in phrase):
            raise InputError(f"--text {t!r} has no word in it: describe the object, e.g. --text \"price sticker\"")
        if len(phrase) > MAX_TEXT_CHARS:
            raise InputError(f"--text is {len(phrase)} characters long; at most {MAX_TEXT_CHARS}")
        if phrase.lower() not in (o.lower() for o in out):  # a repeated phrase adds nothing
            out.append(phrase)
    if len(out) > MAX_TEXTS:
        raise InputError(f"{len(out)} --text phrases; at most {MAX_TEXTS}")
    return tuple(out)


def parse_numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    """Parse ``"X,Y"`` / ``"X0,Y0,X1,Y1"`` into floats; raise InputError naming ``what``."""
    parts = [p.strip() for p in str(text).replace(" ", ",").split(",") if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count or not all(np.isfinite(values)):
        example = "X,Y" if count == 2 else "X0,Y0,X1,Y1"
        raise InputError(f"{what} must be {count} numbers like {example}, got {text!r}")
    return values


@dataclass(frozen=True)
class Selection:
    """What to edit. Prompts (points, negatives, boxes) go to a segmenter; drawn shapes and a
    mask file are used as they are; text phrases (``texts``) become boxes through a detector
    (:class:`~autoinpaint.detect.Detect`). Everything given is united into one mask."""

    points: tuple[Point, ...] = ()
    negatives: tuple[Point, ...] = ()
    boxes: tuple[Box, ...] = ()
    rects: tuple[Box, ...] = ()
    ellipses: tuple[Box, ...] = ()
    mask_path: str | None = None
    relative: bool = False
    texts: tuple[str, ...] = ()

    @classmethod
    def from_strings(cls, points: Sequence[str] = (), negatives: Sequence[str] = (),
                     boxes: Sequence[str] = (), rects: Sequence[str] = (),
                     ellipses: Sequence[str] = (), mask_path: str | None = None,
                     relative: bool = False, texts: Sequence[str] = ()) -> "Selection":
        """Build from command-line strings such as ``"120,80"`` and ``"10,10,200,150"``."""
        return cls(
            points=tuple(parse_numbers(p, 2, "--point") for p in points),
            negatives=tuple(parse_numbers(p, 2, "--negative") for p in negatives),
            boxes=tuple(parse_numbers(b, 4, "--box") for b in boxes),
            rects=tuple(parse_numbers(b, 4, "--rect") for b in rects),
            ellipses=tuple(parse_numbers(b, 4, "--ellipse") for b in ellipses),
            mask_path=mask_path, relative=relative, texts=clean_texts(texts))

    @property
    def has_prompts(self) -> bool:
        """True when a segmenter is needed (foreground points, boxes, or phrases that become boxes)."""
        return bool(self.points or self.boxes or self.texts)

    @property
    def has_drawn(self) -> bool:
        return bool(self.rects or self.ellipses or self.mask_path)

    @property
    def is_empty(self) -> bool:
        return not (self.has_prompts or self.has_drawn)

    def to_pixels(self, width: int, height: int) -> "Selection":
        """Return the selection in pixel coordinates, validated against a ``width``×``height`` image.

        Raises InputError for a point outside the image, an inverted or empty box, negative points
        without anything to select, or an empty selection.
        """
        if self.negatives and not self.has_prompts:
            raise InputError("--negative needs at least one --point, --box or --text to go with it")
        if self.is_empty:
            raise InputError("nothing selected: give --point, --box, --text, --rect, --ellipse or --mask")
        sx, sy = (width, height) if self.relative else (1.0, 1.0)
        unit = "relative" if self.relative else "pixel"

        def point(p: Point, what: str) -> Point:
            if self.relative and not (0 <= p[0] <= 1 and 0 <= p[1] <= 1):
                raise InputError(f"{what} {_fmt(p)} is not a relative coordinate in 0..1")
            x, y = p[0] * sx, p[1] * sy
            x, y = (min(x, width - 1), min(y, height - 1)) if self.relative else (x, y)
            if not (0 <= x < width and 0 <= y < height):
                raise InputError(f"{what} {_fmt(p)} is outside the {width}x{height} image")
            return (x, y)

        def box(b: Box, what: str) -> Box:
            if self.relative and not all(0 <= v <= 1 for v in b):
                raise InputError(f"{what} {_fmt(b)} is not in relative coordinates 0..1")
            x0, y0, x1, y1 = b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy
            if x1 <= x0 or y1 <= y0:
                raise InputError(f"{what} {_fmt(b)} is inverted or empty: need X0 < X1 and Y0 < Y1")
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise InputError(f"{what} {_fmt(b)} ({unit}) is outside the {width}x{height} image")
            return (x0, y0, x1, y1)

        return replace(
            self, relative=False,
            points=tuple(point(p, "--point") for p in self.points),
            negatives=tuple(point(p, "--negative") for p in self.negatives),
            boxes=tuple(box(b, "--box") for b in self.boxes),
            rects=tuple(box(b, "--rect") for b in self.rects),
            ellipses=tuple(box(b, "--ellipse") for b in self.ellipses),
            texts=clean_texts(self.texts))

    def describe(self) -> dict:
        """A JSON-friendly summary."""
        out = {k: [list(v) for v in getattr(self, k)]
               for k in ("points", "negatives", "boxes", "rects", "ellipses") if getattr(self, k)}
        if self.mask_path:
            out["mask"] = self.mask_path
        if self.texts:
            out["texts"] = list(self.texts)
        if self.relative:
            out["relative"] = True
        return out


def _fmt(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def draw_shapes(selection: Selection, width: int, height: int) -> np.ndarray:
    """Rasterise the drawn rectangles and ellipses of a pixel-space selection: H×W bool.

    Boxes are half-open like PIL's ``ImageDraw`` bounding boxes: ``(0, 0, 10, 10)`` covers 10×10 px.
    """
    mask = np.zeros((height, width), np.uint8)
    for x0, y0, x1, y1 in selection.rects:
        c0, r0 = int(np.floor(x0)), int(np.floor(y0))
        c1, r1 = int(np.ceil(x1)), int(np.ceil(y1))
        mask[r0:r1, c0:c1] = 1
    for x0, y0, x1, y1 in selection.ellipses:
        # pixel (i, j) covers [i, i+1) × [j, j+1): selected when its centre lies in the ellipse
        c0, r0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        c1, r1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
        yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64) + 0.5
        inside = (((xx - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2
                  + ((yy - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2) <= 1
        mask[r0:r1, c0:c1] |= inside.astype(np.uint8)
    return mask.astype(bool)
