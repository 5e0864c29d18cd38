"""The segmenter interface: :class:`Segmenter` (embed once, predict per prompt), its call-time
:class:`SegmentParams` and its :class:`SegmentResult`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import InputError
from ..options import MAX_SAM_REFINE
from ..selection import Selection

SELECT_MODES = ("iou", "largest", "smallest")


@dataclass(frozen=True)
class SegmentParams:
    """Call-time values of a prediction.

    select: which candidate mask to keep when a model proposes several: ``iou`` (highest predicted
        IoU), ``largest`` or ``smallest`` (area in pixels).
    refine: extra passes feeding the kept mask's low-resolution logits back as a mask prompt.
    multimask: ask for several candidates per prompt; None = the model's rule (an ambiguous single
        point, or ``select`` other than ``iou``).
    """

    select: str = "iou"
    refine: int = 0
    multimask: bool | None = None

    def __post_init__(self):
        if self.select not in SELECT_MODES:
            raise InputError(f"unknown mask selection {self.select!r}: use {', '.join(SELECT_MODES)}")
        if not 0 <= int(self.refine) <= MAX_SAM_REFINE:
            raise InputError(f"refine passes must be in 0..{MAX_SAM_REFINE}, got {self.refine}")


@dataclass
class SegmentResult:
    """What a prediction returns.

    mask: H×W bool, the selected object(s).
    scores: the model's own confidence, e.g. ``{"iou": 0.91, "stability": 0.95}`` (the lowest over
        the prompts); empty when the segmenter has none.
    """

    mask: np.ndarray
    scores: dict[str, float] = field(default_factory=dict)


class Segmenter(Protocol):
    """Turns prompts into an object mask.

    ``embed(image)``: ``image`` is H×W×3 uint8 RGB; returns an opaque embedding for ``predict``.
    ``predict(embedding, selection, params)``: ``selection`` in pixel coordinates, validated
    (``points``, ``negatives``, ``boxes``); returns a :class:`SegmentResult` with an H×W bool mask.
    ``name`` says which model it is (``classical``, ``sam:vit_b``, ...).
    """

    name: str

    def embed(self, image: np.ndarray) -> Any: ...

    def predict(self, embedding: Any, selection: Selection, params: SegmentParams) -> SegmentResult: ...


class BaseSegmenter:
    """Shared convenience: ``segmenter(image, selection, select=..., refine=...)`` → H×W bool mask."""

    name = "segmenter"

    def embed(self, image: np.ndarray) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, embedding: Any, selection: Selection, params: SegmentParams) -> SegmentResult:
        raise NotImplementedError  # pragma: no cover - interface

    def __call__(self, image: np.ndarray, selection: Selection, **params) -> np.ndarray:
        return self.predict(self.embed(image), selection, SegmentParams(**params)).mask


class ImageSideInputs:
    """Mixed into the SAM segmenters (``model``, ``device``, ``decoder``: a :class:`.onnx_decoder.PromptDecoder`;
    ``_embedding_names``: the embedding's tensors its decoder graphs take): whether a prompt kind's decoder
    graph takes the image side (what its first layer computes from the image alone,
    :func:`.fast_decoder.image_side_tensors`), and that side computed with the embedding, once per image
    (``embed`` calls :meth:`_prepare`: the web app's background thread, not the first click)."""

    _embedding_names: tuple[str, ...] = ("features",)

    def _decoder_inputs(self, emb, variant) -> dict:
        """The embedding's tensors ``variant``'s decoder graph takes (:attr:`_embedding_names`), its image side
        in place of ``features`` where the graph takes that."""
        names = self._embedding_names
        if not self._takes_image_side(variant):
            return {k: emb.tensors[k] for k in names}
        return {**{k: emb.tensors[k] for k in names if k != "features"}, **self._image_side(emb)}

    def _takes_image_side(self, variant) -> bool:
        return getattr(self.decoder.graph(variant), "takes_image_side", False)

    def _image_side(self, emb) -> dict:
        from .fast_decoder import image_side

        return image_side(self.model, emb, self.device)

    def _export_inputs(self, variant, inputs: dict) -> dict:
        """Example encoder outputs for an export (name → numpy, with ``features``), as ``variant``'s graph takes
        them: ``features`` replaced by its image side where the graph takes that."""
        if not self._takes_image_side(variant):
            return inputs
        import torch

        from .fast_decoder import image_side_tensors

        inputs = dict(inputs)
        with torch.inference_mode(False):
            side = image_side_tensors(self.model, torch.from_numpy(inputs.pop("features")).to(self.device))
        return {**inputs, **{k: v.detach().float().cpu().numpy() for k, v in side.items()}}

    def _prepare(self, emb) -> None:
        from .onnx_decoder import Variant

        if self._takes_image_side(Variant(True, False, False, True)):  # a click
            self._image_side(emb)
