"""Detector post-processing, pure numpy (no torch): the part after the model call, like transformers'
``post_process_grounded_object_detection``, kept apart so it can be tested on known answers.

* :func:`grounding_text` formats phrases the way Grounding DINO was trained on (``"a cat. a dog."``).
* :func:`phrase_spans`, :func:`decode_grounding_dino`: token logits → one phrase per box.
* :func:`decode_owl`: OWL-ViT / OWLv2 logits (one column per phrase).
* :func:`decode_omdet`: OmDet-Turbo class logits (one column per phrase, boxes of the stretched image).
* :func:`to_pixels`: normalised (cx, cy, w, h) → pixel (x0, y0, x1, y1); OWLv2 pads the image to a
  square at the bottom/right before resizing, so its boxes are fractions of the padded side.
* :func:`pick`: thresholds, per-phrase NMS, ``--pick``, ``--max-objects`` → :class:`Detections`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from .base import DetectParams, Detection, Detections


@dataclass
class Candidates:
    """Every box the model proposed (one per query), before any threshold.

    phrase_scores: (Q, P) how strongly each box matches each phrase's own words, in [0, 1].
    score: (Q,) box confidence in [0, 1], compared with ``box_threshold`` (for Grounding DINO the
        highest token probability, delimiters included, as the original code and transformers
        compute it; for OWL the best phrase's probability).
    boxes: (Q, 4) x0, y0, x1, y1 in pixels of the image, clipped to it.

    A box belongs to the phrase it matches best (:attr:`phrase`); its :attr:`text_score` is compared
    with ``text_threshold``.
    """

    phrase_scores: np.ndarray
    score: np.ndarray
    boxes: np.ndarray

    @property
    def phrase(self) -> np.ndarray:
        return self.phrase_scores.argmax(axis=1)

    @property
    def text_score(self) -> np.ndarray:
        return self.phrase_scores[np.arange(len(self.phrase_scores)), self.phrase]


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))  # -inf (padding) → 0


def grounding_text(phrases: Sequence[str]) -> str:
    """Grounding DINO's prompt: lower-case phrases, each ending in a dot: ``"price sticker. logo."``.
    Dots and question marks inside a phrase would split it (they are the model's phrase delimiters),
    so they become spaces."""
    cleaned = []
    for p in phrases:
        words = "".join(" " if c in ".?" else c for c in p.lower()).split()
        cleaned.append(" ".join(words))
    return " ".join(f"{p}." for p in cleaned)


def phrase_spans(input_ids: Sequence[int], delimiters: Sequence[int]) -> list[np.ndarray]:
    """Token positions of each phrase: the runs of tokens between delimiter tokens ([CLS], [SEP],
    ``.``, ``?``, [PAD]), in order, as Grounding DINO's own text attention mask groups them."""
    ids = np.asarray(input_ids).reshape(-1)
    is_delim = np.isin(ids, np.asarray(list(delimiters)))
    spans, start = [], None
    for i, d in enumerate(is_delim):
        if not d and start is None:
            start = i
        elif d and start is not None:
            spans.append(np.arange(start, i))
            start = None
    if start is not None:
        spans.append(np.arange(start, len(ids)))
    return spans


def to_pixels(boxes_cxcywh: np.ndarray, width: int, height: int, padded_square: bool = False) -> np.ndarray:
    """Normalised (cx, cy, w, h) boxes → (x0, y0, x1, y1) pixels of a ``width``×``height`` image,
    clipped to it. ``padded_square``: the model saw the image padded at the bottom/right to a
    ``max(width, height)`` square (OWLv2), so fractions are of that side, not of each dimension."""
    b = np.asarray(boxes_cxcywh, np.float64).reshape(-1, 4)
    xyxy = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                     b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], axis=1)
    sx, sy = (max(width, height),) * 2 if padded_square else (width, height)
    xyxy *= np.array([sx, sy, sx, sy], np.float64)
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
    return xyxy


def decode_grounding_dino(logits: np.ndarray, boxes: np.ndarray, input_ids: Sequence[int],
                          delimiters: Sequence[int], n_phrases: int, width: int, height: int) -> Candidates:
    """Grounding DINO output of one image → :class:`Candidates`.

    ``logits``: (Q, T) token logits (T = the model's ``max_text_len``, -inf past the text);
    ``boxes``: (Q, 4) normalised cx, cy, w, h; ``input_ids``: the prompt's tokens.
    A box's score is its highest token probability (as transformers' post-processing and the
    original code compute it); it is attributed to the phrase whose tokens score highest, and that
    phrase's best token probability is its ``text_score``."""
    logits = np.asarray(logits, np.float64)
    ids = np.asarray(input_ids).reshape(-1)
    if len(ids) > logits.shape[1]:
        raise InputError(f"the --text phrases are too long for this detector: {len(ids)} tokens, at most "
                         f"{logits.shape[1]}; use fewer or shorter phrases")
    spans = phrase_spans(ids, delimiters)
    if len(spans) != n_phrases:
        raise InputError(f"the detector's tokenizer split {n_phrases} phrase(s) into {len(spans)}; "
                         "use plain words in --text")
    probs = sigmoid(logits)
    per_phrase = np.stack([probs[:, s].max(axis=1) for s in spans], axis=1)  # (Q, P)
    return Candidates(per_phrase, probs.max(axis=1), to_pixels(boxes, width, height))


def decode_owl(logits: np.ndarray, boxes: np.ndarray, width: int, height: int,
               padded_square: bool = True) -> Candidates:
    """OWL-ViT / OWLv2 output of one image → :class:`Candidates`. ``logits``: (Q, P), one column per
    phrase; ``boxes``: (Q, 4) normalised cx, cy, w, h — of the padded square for OWLv2
    (``padded_square``), of the image itself for OWL-ViT."""
    probs = sigmoid(np.asarray(logits, np.float64).reshape(len(boxes), -1))
    return Candidates(probs, probs.max(axis=1), to_pixels(boxes, width, height, padded_square))


def decode_omdet(logits: np.ndarray, boxes: np.ndarray, width: int, height: int) -> Candidates:
    """OmDet-Turbo output of one image → :class:`Candidates`. ``logits``: (Q, P) ``decoder_class_logits``,
    one column per phrase (sigmoid, as transformers' ``post_process_grounded_object_detection``);
    ``boxes``: (Q, 4) ``decoder_coord_logits``, normalised cx, cy, w, h of the image itself (its processor
    stretches the image to 640×640, no padding). Each box goes to its best phrase (transformers may
    report one box once per phrase)."""
    return decode_owl(logits, boxes, width, height, padded_square=False)


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with (N, 4) boxes."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(box) + area(others) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        i, order = order[0], order[1:]
        keep.append(i)
        if len(order):
            order = order[box_iou(boxes[i], boxes[order]) <= iou]
    return np.asarray(keep, int)


def pick(candidates: Candidates, phrases: Sequence[str], params: DetectParams, box_threshold: float,
         text_threshold: float | None = None, min_size: float = 1.0) -> Detections:
    """Apply the thresholds (``params``' values, else the detector's defaults ``box_threshold`` and
    ``text_threshold``), drop boxes under ``min_size`` px wide or high, suppress duplicates per
    phrase (NMS), keep what ``params.pick`` asks for per phrase, then at most ``params.max_objects``
    in all. Returns :class:`Detections`, highest score first."""
    box_thr = params.box_threshold if params.box_threshold is not None else box_threshold
    text_thr = params.text_threshold if params.text_threshold is not None else text_threshold
    c = candidates
    phrase_of, text_score = c.phrase, c.text_score
    w, h = c.boxes[:, 2] - c.boxes[:, 0], c.boxes[:, 3] - c.boxes[:, 1]
    sized = (w >= min_size) & (h >= min_size)
    passed = sized & (c.score >= box_thr)
    if text_thr is not None:
        passed &= text_score >= text_thr
    best, kept = {}, []
    for k, phrase in enumerate(phrases):
        best[phrase] = float(c.phrase_scores[sized, k].max()) if sized.any() else 0.0
        idx = np.flatnonzero(passed & (phrase_of == k))
        if not len(idx):
            continue
        idx = idx[nms(c.boxes[idx], c.score[idx], params.nms_iou)]
        if params.pick == "best":
            idx = idx[:1]
        elif params.pick == "largest":
            idx = idx[[int(np.argmax(w[idx] * h[idx]))]]
        kept += [Detection(phrase, float(c.score[i]), tuple(float(v) for v in c.boxes[i])) for i in idx]
    kept.sort(key=lambda d: -d.score)
    if params.max_objects is not None:
        kept = kept[:params.max_objects]
    return Detections(kept, phrases, best, box_thr, text_thr)
