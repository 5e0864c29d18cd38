"""Segmentation stage: the ``Segmenter`` interface, the ``Segment`` step and ``load_segmenter``.

A segmenter works in two calls, like ``SamPredictor.set_image`` / ``predict``: :meth:`Segmenter.embed`
turns an image into an embedding once (the expensive part, cached), :meth:`Segmenter.predict` turns
prompts into a mask with it (cheap, once per click). Load-time values (checkpoint, device, precision)
are constructor arguments; call-time values (which candidate mask to keep, refinement passes) are
:class:`SegmentParams`, so one loaded model serves every request.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..pipeline import timed
from ..selection import draw_shapes
from .base import SELECT_MODES, BaseSegmenter, SegmentParams, SegmentResult, Segmenter

__all__ = ["SELECT_MODES", "BaseSegmenter", "Segment", "SegmentParams", "SegmentResult", "Segmenter",
           "embedding_for", "load_segmenter"]

class Segment:
    """Pipeline step: ``state.selection`` → ``state.mask`` (H×W bool).

    Points and boxes go to the segmenter (loaded only when there are any); drawn rectangles and
    ellipses and a ``--mask`` file are added as they are. The image embedding is kept in
    ``state.embeddings`` (by segmenter name), so running the step again on the same state with other
    prompts costs only the prediction.

    Args:
        segmenter: a Segmenter, or a spec for :func:`load_segmenter` (``auto``, ``classical``,
            ``sam``, ``sam:vit_b``, a ``.pth`` path, ...).
        max_pixels: pixel limit for a ``--mask`` file.
        params: call-time values (:class:`SegmentParams`).
        store: the :class:`~autoinpaint.models.store.ModelStore` the model loads into (None: the
            process default).
        load_options: passed to :func:`load_segmenter` (``device``, ``precision``, ``cache``).
    """

    name = "segment"

    def __init__(self, segmenter: "Segmenter | str" = "auto", max_pixels: int | None = None,
                 params: SegmentParams | None = None, store=None, **load_options):
        self._spec = segmenter
        self._store = store
        self._load_options = load_options
        self.max_pixels = max_pixels
        self.params = params or SegmentParams()

    @property
    def segmenter(self) -> Segmenter:
        if isinstance(self._spec, str):
            self._spec = load_segmenter(self._spec, self._store, **self._load_options)
        return self._spec

    def __call__(self, state):
        from ..imaging.image_io import load_mask
        from ..imaging.storage import read_bytes

        h, w = state.image.shape[:2]
        sel = state.selection.to_pixels(w, h)
        if sel.texts:  # a Detect step turns phrases into boxes first (api.selection_steps)
            raise InputError("text phrases need the Detect step before Segment")
        state.selection = sel
        mask = np.zeros((h, w), bool)
        if sel.has_prompts:
            segmenter = timed(state, "load", lambda: self.segmenter)
            embedding = embedding_for(state, segmenter)
            result = segmenter.predict(embedding, sel, self.params)
            mask |= result.mask
            state.metadata["segmenter"] = segmenter.name
            if result.scores:
                state.metadata["segment_scores"] = {k: round(float(v), 4) for k, v in result.scores.items()}
        if sel.rects or sel.ellipses:
            mask |= draw_shapes(sel, w, h)
        if sel.mask_path:
            mask |= load_mask(read_bytes(sel.mask_path), w, h, self.max_pixels, name=sel.mask_path)
        if not mask.any():
            raise InputError("the selection yields an empty mask: nothing to edit")
        state.mask = mask
        return state

    def __repr__(self) -> str:
        name = self._spec if isinstance(self._spec, str) else self._spec.name
        return f"Segment({name!r}, params={self.params})"


def embedding_for(state, segmenter: Segmenter) -> Any:
    """The embedding of ``state.image`` for ``segmenter``: from ``state.embeddings`` (a value, or a
    ``concurrent.futures.Future`` started by :class:`~autoinpaint.editor.Editor`), else computed now."""
    from ..imaging.pixels import to_rgb8

    held = state.embeddings.get(segmenter.name)
    if held is not None:
        return held.result() if hasattr(held, "result") else held
    embedding = segmenter.embed(to_rgb8(state.image))
    state.embeddings[segmenter.name] = embedding
    return embedding


def load_segmenter(spec: str = "auto", store=None, **options) -> Segmenter:
    """Get a segmenter: ``auto`` (the best model present, else the classical one; the choice is
    logged), ``classical``, ``sam``, ``sam:vit_b|vit_l|vit_h``, a SAM ``.pth`` path, a transformers
    SAM model (``sam2.1-tiny`` and the other names of ``autoinpaint models list``, a hub id, a
    ``save_pretrained`` folder: :mod:`.hf_sam`), or any name, hub id or path another registered
    family claims (:mod:`autoinpaint.models.registry`).

    ``options`` are load-time values (``device``, ``precision``, ``cache``, ``runtime``). Loaded once per
    ``store`` (:class:`~autoinpaint.models.store.ModelStore`; the process default when None) and reused.
    A missing model raises ModelMissingError (exit 3)."""
    from ..models.registry import load

    options.pop("quiet", None)  # older callers; notices go through logging now
    return load("segmenter", spec, store, **options)
