"""The detector interface: :class:`Detector` (phrases → boxes), its call-time :class:`DetectParams`,
and what it returns (:class:`Detection`, :class:`Detections`). No torch here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..errors import InputError

PICK_MODES = ("all", "best", "largest")


@dataclass(frozen=True)
class Detection:
    """One object found for a phrase.

    phrase: the phrase as the user gave it. score: the detector's confidence in [0, 1].
    box: (x0, y0, x1, y1) in pixels of the EXIF-oriented image, half-open like ``--box``.
    """

    phrase: str
    score: float
    box: tuple[float, float, float, float]

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    def to_dict(self) -> dict:
        """JSON-friendly: ``{"phrase", "score" (4 decimals), "box" (0.1 px)}``."""
        return {"phrase": self.phrase, "score": round(float(self.score), 4),
                "box": [round(float(v), 1) for v in self.box]}


class Detections(list):
    """A ``list`` of :class:`Detection` (highest score first) that also knows why something is
    missing: ``best[phrase]`` is how well the best box matched each phrase's own words (kept or not),
    ``box_threshold``/``text_threshold`` are the thresholds that were applied."""

    def __init__(self, items=(), phrases: Sequence[str] = (), best: dict | None = None,
                 box_threshold: float = 0.0, text_threshold: float | None = None):
        super().__init__(items)
        self.phrases = tuple(phrases)
        self.best = dict(best or {})
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold

    def missing(self) -> list[str]:
        """The phrases with no detection."""
        found = {d.phrase for d in self}
        return [p for p in self.phrases if p not in found]

    def explain(self, phrases: Sequence[str] | None = None) -> str:
        """``no "price sticker" found (best score 0.18 < 0.30)`` for ``phrases`` (default: the missing ones).
        Scores are rounded down, so the comparison printed is the one that held."""
        phrases = list(phrases if phrases is not None else self.missing())
        names = " or ".join(f'"{p}"' for p in phrases)
        best = max((self.best.get(p, 0.0) for p in phrases), default=0.0)
        shown = f"{np.floor(best * 100) / 100:.2f}"
        if best < self.box_threshold:
            why = f"best score {shown} < {self.box_threshold:.2f}"
        elif self.text_threshold is not None and best < self.text_threshold:
            why = f"best score {shown} < text threshold {self.text_threshold:.2f}"
        else:
            why = f"best score {shown}, but on boxes that match another phrase better"
        return f"no {names} found ({why})"


@dataclass(frozen=True)
class DetectParams:
    """Call-time values of a detection.

    box_threshold: keep boxes scoring at least this (None: the detector's default, 0.30 for
        Grounding DINO, 0.10 for OWLv2).
    text_threshold: Grounding DINO only: the phrase's own tokens must score at least this (None:
        the detector's default, 0.25).
    pick: ``all`` (every detection above the thresholds), ``best`` (the highest-scoring one of each
        phrase) or ``largest`` (the largest box of each phrase).
    max_objects: keep at most this many detections in all (highest scores first); None = no limit.
    nms_iou: boxes of one phrase overlapping a higher-scoring one by more than this IoU are dropped.
    """

    box_threshold: float | None = None
    text_threshold: float | None = None
    pick: str = "all"
    max_objects: int | None = None
    nms_iou: float = 0.5

    def __post_init__(self):
        for name in ("box_threshold", "text_threshold"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise InputError(f"--{name.replace('_', '-')} must be in 0..1, got {value!r}")
        if self.pick not in PICK_MODES:
            raise InputError(f"unknown --pick {self.pick!r}: use {', '.join(PICK_MODES)}")
        if self.max_objects is not None and (not isinstance(self.max_objects, (int, np.integer))
                                             or self.max_objects < 1):
            raise InputError(f"--max-objects must be a positive integer, got {self.max_objects!r}")
        if not 0 < self.nms_iou <= 1:
            raise InputError(f"nms_iou must be in (0, 1], got {self.nms_iou!r}")


class Detector(Protocol):
    """Turns phrases into boxes.

    ``detect(image, phrases, params)``: ``image`` is H×W×3 uint8 RGB (EXIF-oriented), ``phrases``
    validated (:func:`autoinpaint.selection.clean_texts`); returns :class:`Detections` with boxes in
    pixels of ``image`` (empty when nothing passes the thresholds). ``name`` says which model it is;
    ``box_threshold``/``text_threshold`` are its defaults (``text_threshold`` None when the family
    has no per-token scores).
    """

    name: str
    box_threshold: float
    text_threshold: float | None

    def detect(self, image: np.ndarray, phrases: Sequence[str], params: DetectParams) -> Detections: ...
