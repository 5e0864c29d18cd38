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
    ``_embedding_names``: the embedding's tensors its decoder graphs take; ``_square``: the side of SAM 1's padded
    input, None where the model does not pad): whether a prompt kind's decoder graph takes the image side (what
    its first layer computes from the image alone, :func:`.fast_decoder.image_side_tensors`), and that side
    computed with the embedding, once per image (``embed`` calls :meth:`_prepare`: the web app's background
    thread, not the first click)."""

    _embedding_names: tuple[str, ...] = ("features",)
    _square: int | None = None

    def _decode_logits(self, emb, variant, prompts: dict[str, np.ndarray], whole: bool):
        """One decoder call (:class:`.onnx_decoder.PromptDecoder`) → (logits B×C×h×w on the whole low-resolution
        grid, IoU B×C) as numpy. Unless ``whole``, a graph that takes the image side computes only the logits the
        photo shows (:func:`.fast_decoder.shown_tokens`); the rest of the grid is :data:`.fast_decoder.NOT_SHOWN`."""
        from .fast_decoder import SHOWN, on_grid

        inputs = self._decoder_inputs(emb, variant, whole)
        logits, iou = self.decoder(variant, inputs, prompts)
        return (on_grid(logits, 4 * int(emb.tensors["features"].shape[-1])) if SHOWN in inputs else logits), iou

    def _decoder_inputs(self, emb, variant, whole: bool = True) -> dict:
        """The embedding's tensors ``variant``'s decoder graph takes (:attr:`_embedding_names`), its image side
        in place of ``features`` where the graph takes that, with the part of the token grid to upscale
        (:data:`.fast_decoder.SHOWN`) unless ``whole``."""
        names = self._embedding_names
        if not self._takes_image_side(variant):
            return {k: emb.tensors[k] for k in names}
        inputs = {**{k: emb.tensors[k] for k in names if k != "features"}, **self._image_side(emb)}
        if self._square:
            inputs.update(self._shown(emb, whole))
        return inputs

    def _shown(self, emb, whole: bool) -> dict:
        """{:data:`.fast_decoder.SHOWN`: zeros shaped as the part of the token grid that ``emb``'s photo shows, or
        as the whole grid}."""
        import torch

        from .fast_decoder import SHOWN, shown_tokens

        key = f"{SHOWN}-whole" if whole else SHOWN
        shown = emb.derived.get(key)
        if shown is None:
            grid = int(emb.tensors["features"].shape[-1])
            size = (grid, grid) if whole else shown_tokens(emb.input_size, self._square, grid)
            shown = emb.derived.setdefault(key, torch.zeros(size))
        return {SHOWN: shown}

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

        from .fast_decoder import SHOWN, image_side_tensors

        inputs = dict(inputs)
        features = inputs.pop("features")
        with torch.inference_mode(False):
            side = image_side_tensors(self.model, torch.from_numpy(features).to(self.device))
        side = {k: v.detach().float().cpu().numpy() for k, v in side.items()}
        if self._square:  # the shown part's rows and columns, each below the grid's (a dynamic axis of the graph)
            grid = features.shape[-1]
            side[SHOWN] = np.zeros((grid - 3, grid - 1), np.float32)
        return {**inputs, **side}

    def _prepare(self, emb) -> None:
        from .onnx_decoder import Variant

        if self._takes_image_side(Variant(True, False, False, True)):  # a click
            self._image_side(emb)
