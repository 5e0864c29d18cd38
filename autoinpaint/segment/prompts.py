"""Prompt handling shared by every promptable segmenter (SAM, SAM 2.1, ...): pure numpy, no torch.

Like transformers' ``SamProcessor``, this is the part before and after the model call: how a
:class:`~autoinpaint.selection.Selection` becomes batched prompts, and which candidate mask is kept.
"""
from __future__ import annotations

import numpy as np

from ..selection import Selection

Group = tuple[list[np.ndarray], list[np.ndarray], "np.ndarray | None"]


def _inside(pts: np.ndarray, box) -> np.ndarray:
    return ((pts[:, 0] >= box[0]) & (pts[:, 0] <= box[2])
            & (pts[:, 1] >= box[1]) & (pts[:, 1] <= box[3]))


def split_prompts(sel: Selection) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """One prompt per box, holding the points and negative points inside it; the points outside
    every box form one more prompt with all negative points. Returns (points n×2 pixels, labels n
    with 1 = object and 0 = background, box (4,) or None) per prompt, boxed prompts first."""
    pos = np.asarray(sel.points, np.float32).reshape(-1, 2)
    neg = np.asarray(sel.negatives, np.float32).reshape(-1, 2)

    def prompt(p: np.ndarray, n: np.ndarray, box=None):
        return (np.concatenate([p, n]),
                np.concatenate([np.ones(len(p)), np.zeros(len(n))]).astype(np.float32),
                None if box is None else np.asarray(box, np.float32))

    used = np.zeros(len(pos), bool)
    prompts = []
    for b in sel.boxes:
        within = _inside(pos, b)
        used |= within
        prompts.append(prompt(pos[within], neg[_inside(neg, b)], b))
    if (~used).any():
        prompts.append(prompt(pos[~used], neg))
    return prompts


def group_prompts(sel: Selection) -> list[Group]:
    """Prompts batched for the decoder: all boxed prompts in one batch (B boxes), the unboxed one in
    another. Each group is (points per prompt, labels per prompt, boxes B×4 or None)."""
    prompts = split_prompts(sel)
    groups = []
    for group in ([q for q in prompts if q[2] is not None], [q for q in prompts if q[2] is None]):
        if group:
            boxes = np.stack([q[2] for q in group]) if group[0][2] is not None else None
            groups.append(([q[0] for q in group], [q[1] for q in group], boxes))
    return groups


def pad_points(points: list[np.ndarray], labels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged prompts: B×N×2 coordinates and B×N labels, padded with label -1 (no point)."""
    n = max((len(c) for c in points), default=0)
    coords = np.zeros((len(points), n, 2), np.float32)
    labs = -np.ones((len(points), n), np.float32)
    for i, (c, lab) in enumerate(zip(points, labels)):
        coords[i, :len(c)], labs[i, :len(c)] = c, lab
    return coords, labs


def wants_multimask(select: str, multimask: bool | None, group: Group) -> bool:
    """Several candidates for an ambiguous single click (SAM's advice), or whenever candidates are
    chosen by area; an explicit ``multimask`` wins."""
    if multimask is not None:
        return multimask
    points, _, boxes = group
    return select != "iou" or (boxes is None and len(points) == 1 and len(points[0]) == 1)


def choose_masks(masks: np.ndarray, iou: np.ndarray, select: str) -> np.ndarray:
    """Index of the kept candidate per prompt (B,): ``masks`` B×C×H×W, ``iou`` B×C predicted IoU;
    ``select`` is ``iou`` (highest predicted IoU), ``largest`` or ``smallest`` (non-empty) area."""
    if select == "iou" or masks.shape[1] == 1:
        return iou.argmax(1)
    area = masks.reshape(masks.shape[0], masks.shape[1], -1).sum(-1).astype(float)
    if select == "largest":
        return area.argmax(1)
    return np.where(area > 0, area, np.inf).argmin(1)


def scale_coords(coords: np.ndarray, original_size: tuple[int, int],
                 input_size: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates (…×2, x then y; boxes as …×4) of the ``original_size`` (H, W) image →
    coordinates of the resized encoder input of ``input_size`` (H, W), as every SAM processor does."""
    (h, w), (ih, iw) = original_size, input_size
    scale = np.array([iw / w, ih / h] * (coords.shape[-1] // 2), np.float32)
    return (np.asarray(coords, np.float32) * scale).astype(np.float32)


def stability_scores(logits: np.ndarray, threshold: float = 0.0, offset: float = 1.0) -> np.ndarray:
    """SAM's stability score per mask (…×h×w logits → …): the IoU of the masks thresholded at
    ``threshold + offset`` and ``threshold - offset`` (1.0 for an empty mask)."""
    flat = logits.reshape(*logits.shape[:-2], -1)
    inter = (flat > threshold + offset).sum(-1).astype(np.float64)
    union = (flat > threshold - offset).sum(-1).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def run_prompts(selection: Selection, params, decode, upscale,
                covered: tuple[float, float] = (1.0, 1.0)):
    """The prediction every SAM family shares: prompts → one H×W bool mask and its scores.

    ``decode(points, labels, boxes, multimask, mask_input, whole)`` runs the prompt encoder and mask
    decoder on one batch of prompts (as :func:`group_prompts` gives them, pixel coordinates;
    ``mask_input`` B×1×h×w low-resolution logits or None) and returns (low-resolution logits
    B×C×h×w, predicted IoU B×C) as numpy: computed where the photo shows them at least (``covered``), on
    the whole grid when ``whole`` (logits fed back as a mask input: ``refine``). ``upscale(logits B×h×w)
    -> H×W bool`` maps kept masks to the image and unites them; it runs once per group, for the kept masks
    only, so a 12 MP photo pays one full-resolution interpolation per click, not one per candidate.
    ``covered`` (fractions of height and width): the part of the low-resolution grid that shows the image
    (SAM 1 pads the input to a square), where ``largest``/``smallest`` measure area and the stability
    score is taken. ``params`` is a
    :class:`~.base.SegmentParams`.
    Returns a :class:`~.base.SegmentResult` with the lowest predicted IoU and stability score of
    the kept masks."""
    from .base import SegmentResult

    mask = None
    ious: list[float] = []
    stabilities: list[float] = []
    for group in group_prompts(selection):
        points, labels, boxes = group
        multimask = wants_multimask(params.select, params.multimask, group)
        logits, iou = decode(points, labels, boxes, multimask, None, params.refine > 0)
        vh, vw = (int(np.ceil(f * n)) for f, n in zip(covered, logits.shape[-2:]))
        rows = np.arange(len(points))
        best = choose_masks(logits[..., :vh, :vw] > 0, iou, params.select)
        kept, kept_iou = logits[rows, best], iou[rows, best]
        for _ in range(params.refine):
            logits, iou = decode(points, labels, boxes, False, kept[:, None], True)
            kept, kept_iou = logits[:, 0], iou[:, 0]
        united = upscale(kept)
        mask = united if mask is None else mask | united
        ious += kept_iou.tolist()
        stabilities += stability_scores(kept[..., :vh, :vw]).tolist()
    return SegmentResult(mask, {"iou": min(ious), "stability": min(stabilities)})
