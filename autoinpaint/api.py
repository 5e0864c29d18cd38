"""The one pipeline behind the CLI, the batch runner, the web app and the Python API.

``edit_steps(action, options)`` are the steps after loading for ``remove``, ``replace``, ``fill`` or
``mask``; :func:`edit` runs them on an image in memory, :func:`run_edit` on a file (with the save
steps), :class:`~autoinpaint.editor.Editor` one stage at a time. Models are loaded once per process
(:mod:`autoinpaint.registry`), so editing many images costs the model load once.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .composite import Composite
from .detect import Detect, DetectParams
from .errors import InputError
from .image_io import ImageInput
from .inpaint import DEFAULT_PADDING_MASK_CROP, Inpaint, InpaintRequest, Progress
from .inpaint.lama import DEFAULT_MAX_SIDE as DEFAULT_LAMA_MAX_SIDE
from .io_steps import LoadImage, SaveImage, SaveMask, SavePreview
from .mask_ops import RefineMask, bbox
from .pipeline import Pipeline
from .quality import Assess
from .segment import Segment, SegmentParams
from .selection import Selection, clean_texts
from .state import EditState

ACTIONS = ("remove", "replace", "fill", "mask")
DEFAULT_MODEL = "sd15"


@dataclass(frozen=True)
class EditOptions:
    """Every knob of an edit; the CLI options and the web API's request fields map onto these names.

    Load-time fields pick and place models (``segmenter``, ``inpainter``, ``model``, ``detector``,
    ``device``, ``precision``, ``runtime``, ``dtype``, ``offload``, ``scheduler``, ``resolution``, ``cache``,
    ``lama_max_side``, ``trust_checkpoint``); the others are call-time values, so changing them never
    reloads a model (nor does ``lama_max_side``: inpainters on the same LaMa weights share one network).
    """

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
    runtime: str = "auto"  # the SAM prompt decoder's: auto (ONNX Runtime on the CPU when installed), torch, onnx
    cache: bool = True
    sam_select: str = "iou"
    sam_refine: int = 0
    # detection stage (text phrases → boxes; see autoinpaint.detect)
    detector: str = "auto"
    box_threshold: float | None = None
    text_threshold: float | None = None
    max_objects: int | None = None
    pick: str = "all"
    # inpainting stage
    inpainter: str = "auto"
    padding_mask_crop: int | None = DEFAULT_PADDING_MASK_CROP
    # LaMa: crops longer than this run downscaled; read TorchScript/pickled weights we do not publish
    lama_max_side: int = DEFAULT_LAMA_MAX_SIDE
    trust_checkpoint: bool = False
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
    resolution: int | str | None = None
    # input / output
    max_pixels: int | None = None
    overwrite: bool = False
    quiet: bool = False
    # trust (autoinpaint/quality.py): what a mask in doubt does: write it, skip the edit, or fail
    on_doubt: str = "write"

    def replace(self, **changes) -> "EditOptions":
        """A copy with ``changes``; unknown names are an InputError (bad input, exit 2 / HTTP 400)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------------ steps
def detect_step(o: EditOptions) -> Detect:
    """Text phrases → boxes (does nothing for a selection without ``texts``)."""
    return Detect(o.detector, DetectParams(o.box_threshold, o.text_threshold, o.pick, o.max_objects),
                  device=o.device)


def selection_steps(o: EditOptions) -> list:
    """Selection → object mask: detect (text → boxes), then segment."""
    return [detect_step(o), Segment(o.segmenter, o.max_pixels, SegmentParams(o.sam_select, o.sam_refine),
                                    device=o.device, precision=o.precision, cache=o.cache, runtime=o.runtime)]


def mask_step(o: EditOptions) -> RefineMask:
    """Object mask → alpha."""
    return RefineMask(o.dilate, o.erode, o.feather, o.blur, o.fill_holes, o.min_area)


def assess_step(o: EditOptions) -> Assess:
    """Mask → its confidence record (``state.metadata["quality"]``), and ``--on-doubt``."""
    return Assess(o.on_doubt)


def inpaint_request(action: str, o: EditOptions, progress: Progress | None = None) -> InpaintRequest:
    """The call-time values of an ``action`` (``remove``, ``replace`` or ``fill``)."""
    if action != "remove" and not o.prompt:
        raise InputError(f"{action} needs --prompt TEXT")
    return InpaintRequest(mode=action, prompt=o.prompt, negative_prompt=o.negative_prompt, steps=o.steps,
                          guidance=o.guidance, strength=o.strength, seed=o.seed, progress=progress)


def inpaint_step(action: str, o: EditOptions, progress: Progress | None = None) -> Inpaint:
    """The ``Inpaint`` step of ``action``: ``remove`` uses ``--inpainter``, ``replace``/``fill`` the
    diffusion ``--model``. Load options go to whichever family the spec belongs to."""
    spec = o.inpainter if action == "remove" else (o.model or DEFAULT_MODEL)
    return Inpaint(spec, o.padding_mask_crop, inpaint_request(action, o, progress),
                   device=o.device, dtype=o.dtype, offload=o.offload or None, scheduler=o.scheduler,
                   resolution=o.resolution, precision=o.precision, lama_max_side=o.lama_max_side,
                   trust_checkpoint=o.trust_checkpoint or None)


def edit_steps(action: str = "remove", options: EditOptions | None = None,
               progress: Progress | None = None) -> list:
    """Every step after loading: select → mask → assess (→ inpaint → composite)."""
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
    o = options or EditOptions()
    steps = [*selection_steps(o), mask_step(o), assess_step(o)]
    if action != "mask":
        steps += [inpaint_step(action, o, progress), Composite()]
    return steps


def build_pipeline(action: str = "remove", options: EditOptions | None = None,
                   mask_out: str | os.PathLike | None = None,
                   preview: str | os.PathLike | None = None, progress: Progress | None = None) -> Pipeline:
    """Steps for ``action`` on a file: load → select → mask → (inpaint → composite →) save.

    ``mask`` writes the alpha as the output; the others write the edited image. ``mask_out`` and
    ``preview`` add steps that also write the final alpha and a side-by-side preview."""
    o = options or EditOptions()
    steps = [LoadImage(o.max_pixels), *edit_steps(action, o, progress)]
    if action == "mask":
        steps.append(SaveMask())
    else:
        steps.append(SaveImage(o.overwrite))
        if mask_out:
            steps.append(SaveMask(mask_out))
    if preview:
        steps.append(SavePreview(preview))
    return Pipeline(steps)


# ------------------------------------------------------------------------------------------------ runs
def default_output(input_path: str | os.PathLike, action: str) -> str:
    """``photo.jpg`` → ``photo.inpainted.jpg`` (``photo.replaced.jpg``, ``photo.filled.jpg``;
    ``photo.mask.png`` for ``mask``), beside the input."""
    p = Path(input_path)
    if action == "mask":
        return str(p.with_name(p.stem + ".mask.png"))
    done = {"remove": "inpainted", "replace": "replaced", "fill": "filled"}.get(action, action + "ed")
    return str(p.with_name(f"{p.stem}.{done}{p.suffix}"))


def edit(image: ImageInput, selection: Selection, options: EditOptions | None = None, action: str = "remove",
         progress: Progress | None = None) -> EditState:
    """Edit an image in memory (a path, encoded bytes, a PIL image or an array); writes nothing.
    Returns the final EditState: ``result`` (like ``image``: size, channels, bit depth), ``alpha``,
    ``info`` (to encode it like the input), ``metadata`` and ``timings``."""
    o = options or EditOptions()
    pipeline = Pipeline([LoadImage(o.max_pixels, source=image), *edit_steps(action, o, progress)])
    return pipeline(EditState(selection=selection))


def run_edit(input_path: str | os.PathLike, selection: Selection, options: EditOptions | None = None,
             action: str = "remove", output: str | os.PathLike | None = None,
             mask_out: str | os.PathLike | None = None,
             preview: str | os.PathLike | None = None, progress: Progress | None = None) -> EditState:
    """Edit one image file and write the result; returns the final EditState (timings included)."""
    pipeline = build_pipeline(action, options, mask_out, preview, progress)
    state = EditState(input_path=str(input_path), selection=selection,
                      output_path=str(output or default_output(input_path, action)))
    return pipeline(state)


def summary(state: EditState, action: str = "remove") -> dict:
    """The ``--json`` record of an edit."""
    alpha = state.alpha if state.alpha is not None else np.zeros((1, 1), np.float32)
    box = bbox(alpha > 0)
    keys = ("load", "segment", "mask", "inpaint", "composite", "save", "total")
    if "detections" in state.metadata:
        keys = ("load", "detect", *keys[1:])
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
    if state.stop:
        record["written"] = False  # --on-doubt skip: the edit stopped before anything was written
    return record


# ------------------------------------------------------------------------------------------ one-liners
def _selection(points=(), negatives=(), boxes=(), rects=(), ellipses=(), mask=None, relative=False,
               texts=()) -> Selection:
    return Selection(points=tuple(map(tuple, points)), negatives=tuple(map(tuple, negatives)),
                     boxes=tuple(map(tuple, boxes)), rects=tuple(map(tuple, rects)),
                     ellipses=tuple(map(tuple, ellipses)), mask_path=mask, relative=relative,
                     texts=clean_texts(texts))


def _run(image: ImageInput, action: str, selection: Selection, output, options: dict) -> Any:
    opts = EditOptions().replace(**options)
    if output is not None:
        if isinstance(image, (str, os.PathLike)):
            return run_edit(image, selection, opts, action, output)
        from .io_steps import SaveImage

        state = edit(image, selection, opts, action)
        state.output_path = str(output)
        return SaveImage(opts.overwrite)(state)
    state = edit(image, selection, opts, action)
    return result_like(state, image)


def result_like(state: EditState, image: ImageInput) -> Any:
    """The edited image in the input's kind: an array for an array, encoded bytes (the input's format
    and quality) for bytes, else a PIL image (an array for 16-bit colour, which PIL cannot hold)."""
    from .image_io import encode_image, to_pil

    if isinstance(image, np.ndarray):
        return state.result
    if isinstance(image, (bytes, bytearray, memoryview)):
        return encode_image(state.result, state.info, state.info.format)
    return to_pil(state.result)


def remove(image: ImageInput, points=(), negatives=(), boxes=(), rects=(), ellipses=(),
           mask: str | None = None, relative: bool = False, texts=(), output: str | os.PathLike | None = None,
           **options) -> Any:
    """Remove the selected object from ``image`` (a path, bytes, a PIL image or an array).

    ``texts``: phrases a detector turns into boxes (``texts=["price sticker"]``); nothing found
    raises NotFoundError. With ``output``: write it there (like the input: format, quality,
    metadata) and return the EditState. Without: return the edited image (see :func:`result_like`).
    Keyword ``options`` are :class:`EditOptions` fields (``dilate=12``, ``inpainter="telea"``,
    ``detector="owlv2"``, ``box_threshold=0.4``, ...)."""
    return _run(image, "remove", _selection(points, negatives, boxes, rects, ellipses, mask, relative, texts),
                output, options)


def replace(image: ImageInput, prompt: str, points=(), negatives=(), boxes=(), rects=(), ellipses=(),
            mask: str | None = None, relative: bool = False, texts=(), output: str | os.PathLike | None = None,
            **options) -> Any:
    """Replace the selected object with what ``prompt`` describes (a diffusion model, ``model=``);
    returns like :func:`remove`."""
    return _run(image, "replace", _selection(points, negatives, boxes, rects, ellipses, mask, relative, texts),
                output, {**options, "prompt": prompt})


def fill(image: ImageInput, prompt: str, rects=(), ellipses=(), mask: str | None = None, points=(),
         negatives=(), boxes=(), relative: bool = False, texts=(), output: str | os.PathLike | None = None,
         **options) -> Any:
    """Paint what ``prompt`` describes into a drawn region; returns like :func:`remove`."""
    return _run(image, "fill", _selection(points, negatives, boxes, rects, ellipses, mask, relative, texts),
                output, {**options, "prompt": prompt})
