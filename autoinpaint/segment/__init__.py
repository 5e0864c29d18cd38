"""Segmentation stage: the ``Segmenter`` interface, the ``Segment`` step and ``load_segmenter``."""
from __future__ import annotations

import functools
import sys
from typing import Protocol

import numpy as np

from ..errors import InputError
from ..pipeline import timed
from ..selection import Selection, draw_shapes


class Segmenter(Protocol):
    """Turns prompts into an object mask.

    ``__call__(image, selection)``: ``image`` is H×W×3 uint8 RGB; ``selection`` is in pixel
    coordinates and already validated (``points``, ``negatives``, ``boxes``); returns H×W bool.
    """

    name: str

    def __call__(self, image: np.ndarray, selection: Selection) -> np.ndarray: ...


class Segment:
    """Pipeline step: ``state.selection`` → ``state.mask`` (H×W bool).

    Points and boxes go to the segmenter (loaded only when there are any); drawn rectangles and
    ellipses and a ``--mask`` file are added as they are.

    Args:
        segmenter: a Segmenter, or a spec for :func:`load_segmenter` (``auto``, ``classical``,
            ``sam``, ``sam:vit_b``, a ``.pth`` path).
        load_options: passed to :func:`load_segmenter` (``device``, ``precision``, ``cache``, ``quiet``).
    """

    name = "segment"

    def __init__(self, segmenter: "Segmenter | str" = "auto", max_pixels: int | None = None, **load_options):
        self._spec = segmenter
        self._load_options = load_options
        self.max_pixels = max_pixels

    @property
    def segmenter(self) -> Segmenter:
        if isinstance(self._spec, str):
            self._spec = load_segmenter(self._spec, **self._load_options)
        return self._spec

    def __call__(self, state):
        from ..image_io import load_mask
        from ..inpaint import to_rgb8

        h, w = state.image.shape[:2]
        sel = state.selection.to_pixels(w, h)
        state.selection = sel
        mask = np.zeros((h, w), bool)
        if sel.has_prompts:
            segmenter = timed(state, "load", lambda: self.segmenter)
            mask |= segmenter(to_rgb8(state.image), sel)
            state.metadata["segmenter"] = segmenter.name
        if sel.rects or sel.ellipses:
            mask |= draw_shapes(sel, w, h)
        if sel.mask_path:
            mask |= load_mask(sel.mask_path, w, h, self.max_pixels)
        if not mask.any():
            raise InputError("the selection yields an empty mask: nothing to edit")
        state.mask = mask
        return state

    def __repr__(self) -> str:
        name = self._spec if isinstance(self._spec, str) else self._spec.name
        return f"Segment({name!r})"


@functools.lru_cache(maxsize=4)
def _load_cached(spec: str, options: tuple) -> Segmenter:
    if spec in ("classical", "grabcut"):
        from .classical import ClassicalSegmenter

        return ClassicalSegmenter()
    from .sam import load_sam_segmenter  # "sam", "sam:vit_b", "path/to/sam.pth"

    return load_sam_segmenter(spec, **dict(options))


def load_segmenter(spec: str = "auto", quiet: bool = False, **options) -> Segmenter:
    """Get a segmenter: ``auto`` (SAM when a checkpoint is found, else the classical one, and says
    which on stderr), ``classical``, ``sam``, ``sam:vit_b|vit_l|vit_h`` or a SAM ``.pth`` path.
    Loaded once per process and reused. A missing SAM checkpoint raises ModelMissingError (exit 3)."""
    if spec in (None, "", "auto"):
        try:
            from .sam import find_sam_checkpoint
            found = find_sam_checkpoint()
        except ImportError:
            found = None
        if found is not None:
            spec = str(found)
            note = f"SAM checkpoint {found}"
        else:
            spec = "classical"
            note = ("classical (OpenCV GrabCut; no SAM checkpoint found - "
                    "get one with: autoinpaint models download vit_b)")
        if not quiet:
            print(f"autoinpaint: segmenter auto -> {note}", file=sys.stderr)
    if spec in ("classical", "grabcut"):
        options = {}
    return _load_cached(spec, tuple(sorted(options.items())))
