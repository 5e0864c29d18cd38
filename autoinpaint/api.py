"""The one pipeline behind the CLI, the batch runner and the Python API.

``build_pipeline(action, options)`` assembles the steps for ``remove``, ``replace``, ``fill`` or
``mask``; ``run_edit`` runs it on one image. Models are loaded once per process (the loaders cache
them), so calling ``run_edit`` for many images costs the model load once.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .composite import Composite
from .errors import InputError
from .inpaint import CLASSICAL, DEFAULT_PADDING_MASK_CROP, Inpaint
from .io_steps import LoadImage, SaveImage, SaveMask, SavePreview
from .mask_ops import RefineMask, bbox
from .pipeline import Pipeline
from .segment import Segment
from .selection import Selection
from .state import EditState

ACTIONS = ("remove", "replace", "fill", "mask")
DIFFUSION_FIELDS = ("prompt", "negative_prompt", "steps", "guidance", "strength", "seed", "device",
                    "dtype", "offload", "scheduler", "resolution")


@dataclass(frozen=True)
class EditOptions:
    """Every knob of an edit; the CLI options map onto these fields one to one."""

    # mask stage (px)
    dilate: int = 8
    erode: int = 0
    feather: int = 4
    blur: float = 0.0
    fill_holes: bool = True
    min_area: int = 0
    # segmentation stage
    segmenter: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    cache: bool = True
    sam_select: str = "iou"
    sam_refine: int = 0
    # inpainting stage
    inpainter: str = "auto"
    padding_mask_crop: int | None = DEFAULT_PADDING_MASK_CROP
    # diffusion (replace / fill, or remove with a diffusion inpainter)
    model: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    strength: float | None = None
    seed: int | None = None
    dtype: str = "auto"
    offload: bool = False
    scheduler: str | None = None
    resolution: int | None = None
    # input / output
    max_pixels: int | None = None
    overwrite: bool = False
    quiet: bool = False

    def replace(self, **changes) -> "EditOptions":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _inpaint_step(action: str, options: EditOptions) -> Inpaint:
    if action == "remove":
        spec = options.inpainter
        mode = "remove"
    else:
        spec = options.model or "sd15"
        mode = action
        if not options.prompt:
            raise InputError(f"{action} needs --prompt TEXT")
    if spec in CLASSICAL or spec in (None, "", "auto"):
        return Inpaint(spec or "auto", options.padding_mask_crop, quiet=options.quiet)
    extra = {k: getattr(options, k) for k in DIFFUSION_FIELDS if getattr(options, k) not in (None, False)}
    return Inpaint(spec, options.padding_mask_crop, mode=mode, quiet=options.quiet, **extra)


def build_pipeline(action: str = "remove", options: EditOptions | None = None,
                   mask_out: str | os.PathLike | None = None,
                   preview: str | os.PathLike | None = None) -> Pipeline:
    """Steps for ``action``: load → segment → mask → (inpaint → composite →) save.

    ``mask`` writes the alpha as the output; the others write the edited image. ``mask_out`` and
    ``preview`` add steps that also write the final alpha and a side-by-side preview."""
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
    o = options or EditOptions()
    steps = [
        LoadImage(o.max_pixels),
        Segment(o.segmenter, o.max_pixels, quiet=o.quiet, device=o.device, precision=o.precision, cache=o.cache,
                select=o.sam_select, refine=o.sam_refine),
        RefineMask(o.dilate, o.erode, o.feather, o.blur, o.fill_holes, o.min_area),
    ]
    if action == "mask":
        steps.append(SaveMask())
    else:
        steps += [_inpaint_step(action, o), Composite(), SaveImage(o.overwrite)]
        if mask_out:
            steps.append(SaveMask(mask_out))
    if preview:
        steps.append(SavePreview(preview))
    return Pipeline(steps)


def default_output(input_path: str | os.PathLike, action: str) -> str:
    """``photo.jpg`` → ``photo.inpainted.jpg`` (``photo.mask.png`` for ``mask``), beside the input."""
    p = Path(input_path)
    if action == "mask":
        return str(p.with_name(p.stem + ".mask.png"))
    return str(p.with_name(f"{p.stem}.{'inpainted' if action == 'remove' else action + 'd'}{p.suffix}"))


def run_edit(input_path: str | os.PathLike, selection: Selection, options: EditOptions | None = None,
             action: str = "remove", output: str | os.PathLike | None = None,
             mask_out: str | os.PathLike | None = None,
             preview: str | os.PathLike | None = None) -> EditState:
    """Edit one image file and write the result; returns the final EditState (timings included)."""
    pipeline = build_pipeline(action, options, mask_out, preview)
    state = EditState(input_path=str(input_path), selection=selection,
                      output_path=str(output or default_output(input_path, action)))
    return pipeline(state)


def summary(state: EditState, action: str = "remove") -> dict:
    """The ``--json`` record of an edit."""
    alpha = state.alpha if state.alpha is not None else np.zeros((1, 1), np.float32)
    box = bbox(alpha > 0)
    keys = ("load", "segment", "mask", "inpaint", "composite", "save", "total")
    record = {
        "action": action,
        "input": state.input_path,
        "output": state.output_path,
        "size": list(state.size) if state.image is not None else None,
        "mask_pixels": int((alpha > 0).sum()),
        "bbox": list(box) if box else None,
        "segmenter": state.metadata.get("segmenter"),
        "inpainter": state.metadata.get("inpainter"),
        "timings": {k: round(state.timings.get(k, 0.0), 4) for k in keys},
    }
    record.update({k: v for k, v in state.metadata.items() if k not in record and k != "output_format"})
    return record


def remove(image: str | os.PathLike, points=(), negatives=(), boxes=(), rects=(), ellipses=(),
           mask: str | None = None, relative: bool = False, output: str | os.PathLike | None = None,
           **options) -> EditState:
    """Remove the selected object from ``image`` and write ``output``; keyword ``options`` are
    :class:`EditOptions` fields (``dilate=12``, ``inpainter="telea"``, ...)."""
    sel = Selection(points=tuple(map(tuple, points)), negatives=tuple(map(tuple, negatives)),
                    boxes=tuple(map(tuple, boxes)), rects=tuple(map(tuple, rects)),
                    ellipses=tuple(map(tuple, ellipses)), mask_path=mask, relative=relative)
    return run_edit(image, sel, EditOptions().replace(**options), "remove", output)
