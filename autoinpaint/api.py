"""The one pipeline behind the CLI, the batch runner, the web app and the Python API.

``edit_steps(action, options)`` are the steps after loading for ``remove``, ``replace``, ``fill``,
``mask`` or ``background`` (:func:`background_steps`: keep the object, replace everything else); :func:`edit` runs them on an image in memory, :func:`run_edit` on a file (with the save
steps), :class:`~autoinpaint.editor.Editor` one stage at a time. Models are loaded once per model store
(:mod:`autoinpaint.models.store`: ``store=`` on every function here, else the process default), so editing
many images costs the model load once.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .composite import Composite
from .detect import Detect, DetectParams
from .errors import InputError
from .imaging.image_io import ImageInput
from .imaging.io_steps import LoadImage, SaveImage, SaveMask, SavePreview
from .inpaint import Inpaint, InpaintRequest, Progress
from .mask.assess import Assess
from .mask.refine import InvertMask, RefineMask, bbox
from .options import DEFAULT_MODEL, FIELDS, validate
from .pipeline import Pipeline
from .segment import Segment, SegmentParams
from .selection import Selection, clean_texts
from .shadow import Deshadow, FindShadow, ShadowFill
from .state import EditState

if TYPE_CHECKING:
    from .models.store import ModelStore

ACTIONS = ("remove", "replace", "fill", "mask", "background")


def _replace(self, **changes) -> "EditOptions":
    """A copy with ``changes``; unknown names are an InputError (bad input, exit 2 / HTTP 400)."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(self, **changes)


def _to_dict(self) -> dict:
    return dataclasses.asdict(self)


def _validated(self) -> None:
    """Every value through the schema (bounds, choices, text forms such as ``resolution="1024x768"``):
    an InputError names each bad one; the parsed values are kept (``lora`` a tuple: one cached model per set)."""
    for name, value in validate(self.__dict__).items():
        object.__setattr__(self, name, value)


# Every knob of an edit, flat, as the pipeline's steps read them: made from the options schema
# (autoinpaint/options.py: names, defaults, bounds, help and load/call time are declared there, once).
EditOptions = dataclasses.make_dataclass(
    "EditOptions",
    [(name, f.annotation, dataclasses.field(default=f.default)) for name, f in FIELDS.items()],
    frozen=True,
    namespace={"__module__": __name__, "__post_init__": _validated, "replace": _replace, "to_dict": _to_dict,
               "__doc__": "Every knob of an edit; the CLI options, the web API's request fields and recipe "
                          "keys map onto these names. Fields, defaults and bounds come from "
                          ":mod:`autoinpaint.options` (its stages say which are load-time: they pick or "
                          "place a model; the others are call-time values, so changing them never reloads "
                          "a model)."})


# ------------------------------------------------------------------------------------------------ steps
def detect_step(o: EditOptions, store: ModelStore | None = None) -> Detect:
    """Text phrases → boxes (does nothing for a selection without ``texts``)."""
    return Detect(o.detector, DetectParams(o.box_threshold, o.text_threshold, o.pick, o.max_objects),
                  store=store, device=o.device)


def selection_steps(o: EditOptions, store: ModelStore | None = None) -> list:
    """Selection → object mask: detect (text → boxes), then segment."""
    return [detect_step(o, store), Segment(o.segmenter, o.max_pixels, SegmentParams(o.sam_select, o.sam_refine),
                                           store=store, device=o.device, precision=o.precision, cache=o.cache,
                                           runtime=o.runtime)]


def mask_step(o: EditOptions) -> RefineMask:
    """Object mask → alpha (with ``invert``, the holes were filled before the inversion)."""
    return RefineMask(o.dilate, o.erode, o.feather, o.blur, o.fill_holes and not o.invert, o.min_area)


def invert_steps(o: EditOptions) -> list:
    """``--invert``: the selection's complement (nothing without it)."""
    return [InvertMask(o.fill_holes)] if o.invert else []


def shadow_steps(o: EditOptions) -> list:
    """``--shadow``: the cast shadow attached to the object joins the alpha (nothing without it), corrected by
    ``--shadow-grow`` and ``--shadow-strength`` (an error without ``--shadow``: they would change nothing)."""
    if not o.shadow and (o.shadow_grow or o.shadow_strength != 1.0):
        raise InputError("--shadow-grow and --shadow-strength correct the cast shadow that --shadow takes: "
                         "add --shadow")
    return [FindShadow(o.shadow_grow, o.shadow_strength)] if o.shadow else []


def assess_step(o: EditOptions) -> Assess:
    """Mask → its confidence record (``state.metadata["quality"]``), and ``--on-doubt``."""
    return Assess(o.on_doubt)


def inpaint_request(action: str, o: EditOptions, progress: Progress | None = None) -> InpaintRequest:
    """The call-time values of an ``action`` (``remove``, ``replace`` or ``fill``)."""
    if action != "remove" and not o.prompt:
        raise InputError(f"{action} needs --prompt TEXT")
    return InpaintRequest(mode=action, prompt=o.prompt, negative_prompt=o.negative_prompt, steps=o.steps,
                          guidance=o.guidance, strength=o.strength, seed=o.seed, progress=progress)


def inpaint_step(action: str, o: EditOptions, progress: Progress | None = None,
                 store: ModelStore | None = None) -> Inpaint:
    """The ``Inpaint`` step of ``action``: ``remove`` uses ``--inpainter``, ``replace``/``fill`` the
    diffusion ``--model``. Load options go to whichever family the spec belongs to."""
    spec = o.inpainter if action == "remove" else (o.model or DEFAULT_MODEL)
    return Inpaint(spec, o.padding_mask_crop, inpaint_request(action, o, progress), store=store,
                   device=o.device, dtype=o.dtype, offload=o.offload or None, scheduler=o.scheduler,
                   resolution=o.resolution, precision=o.precision, lama_max_side=o.lama_max_side,
                   trust_checkpoint=o.trust_checkpoint or None, lora=o.lora or None, fast=o.fast or None)


def fill_steps(action: str, o: EditOptions, progress: Progress | None = None, shadow: bool = False,
               store: ModelStore | None = None) -> list:
    """Inpaint → composite; with a ``shadow`` the inpainter works on the de-shadowed photo and the
    shadow's band becomes the relit ground (:mod:`autoinpaint.shadow`)."""
    if shadow:
        return [Deshadow(), inpaint_step(action, o, progress, store), ShadowFill(), Composite()]
    return [inpaint_step(action, o, progress, store), Composite()]


def edit_steps(action: str = "remove", options: EditOptions | None = None,
               progress: Progress | None = None, store: ModelStore | None = None) -> list:
    """Every step after loading: select → mask (→ shadow) → assess (→ inpaint → composite)."""
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
    o = options or EditOptions()
    if action == "background":
        return background_steps(o, progress, store)
    steps = [*selection_steps(o, store), *invert_steps(o), mask_step(o), *shadow_steps(o), assess_step(o)]
    if action != "mask":
        steps += fill_steps(action, o, progress, o.shadow, store)
    return steps


def is_transparent(o: EditOptions) -> bool:
    """Whether a ``background`` edit with ``o`` leaves the background transparent."""
    from .cutout.backdrop import parse_color

    return not o.prompt and not o.backdrop_blur and parse_color(o.color) is None


OBJECT_MAX_HOLE = 0.01  # background: holes up to 1 % of the object's area are specks, larger ones openings


def object_step(o: EditOptions) -> RefineMask:
    """``background``: clean the kept object (erode, islands, specks of holes: an opening larger
    than 1 % of its area, like a mug's handle, shows the new background); no dilation or feather:
    the matte makes its edge."""
    return RefineMask(0, o.erode, 0, 0, o.fill_holes, o.min_area, max_hole=OBJECT_MAX_HOLE)


def background_steps(o: EditOptions, progress: Progress | None = None, store: ModelStore | None = None) -> list:
    """``background``: select → clean → assess → matte (edge alpha, foreground colours) → frame →
    backdrop (colour, transparent, blur, or a scene the diffusion ``--model`` paints from ``prompt``
    on the whole frame) → contact shadow → composite. The object is what is kept."""
    if o.invert:
        raise InputError("--invert applies to remove, replace, fill and mask, not to background")
    return [*selection_steps(o, store), object_step(o), assess_step(o), *backdrop_steps(o, progress, store)]


def backdrop_steps(o: EditOptions, progress: Progress | None = None, store: ModelStore | None = None) -> list:
    """``background`` after the object is selected: matte → frame → backdrop → contact shadow →
    composite (what :meth:`Editor.apply("background") <autoinpaint.editor.Editor.apply>` runs). Bad
    values (a colour, a canvas, a margin) raise InputError here, before any work."""
    from .cutout import Backdrop, ContactShadow, Cutout, Frame, Matte, backdrop_kind

    kind = backdrop_kind(o.color, o.prompt, o.backdrop_blur)
    scene = inpaint_step("fill", o.replace(padding_mask_crop=None), progress, store) if kind == "scene" else None
    return [Matte(o.matte), Frame(o.canvas, o.margin, o.align, o.min_side, o.max_pixels),
            Backdrop(kind, o.color, o.backdrop_blur, scene), ContactShadow(o.contact_shadow, o.shadow_opacity),
            Cutout()]


def build_pipeline(action: str = "remove", options: EditOptions | None = None,
                   mask_out: str | os.PathLike | None = None,
                   preview: str | os.PathLike | None = None, progress: Progress | None = None,
                   store: ModelStore | None = None) -> Pipeline:
    """Steps for ``action`` on a file: load → select → mask → (inpaint → composite →) save.

    ``mask`` writes the alpha as the output; the others write the edited image. ``mask_out`` and
    ``preview`` add steps that also write the final alpha and a side-by-side preview."""
    o = options or EditOptions()
    steps = [LoadImage(o.max_pixels), *edit_steps(action, o, progress, store)]
    if action == "background":
        from .cutout import CheckOutput

        steps.insert(1, CheckOutput(is_transparent(o)))  # a JPEG cannot be transparent: say so first
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
def default_output(input_path: str | os.PathLike, action: str, transparent: bool = False) -> str:
    """``photo.jpg`` → ``photo.inpainted.jpg`` (``photo.replaced.jpg``, ``photo.filled.jpg``,
    ``photo.background.jpg``; ``photo.mask.png`` for ``mask``), beside the input. A ``transparent``
    result of an input whose format has no alpha (JPEG, BMP, GIF) goes to ``photo.background.png``."""
    p = Path(input_path)
    if action == "mask":
        return str(p.with_name(p.stem + ".mask.png"))
    if action == "background":
        from .imaging.formats import ALPHA_FORMATS
        from .imaging.image_io import FORMAT_BY_SUFFIX

        ext = p.suffix if not transparent or FORMAT_BY_SUFFIX.get(p.suffix.lower()) in ALPHA_FORMATS else ".png"
        return str(p.with_name(f"{p.stem}.background{ext}"))
    done = {"remove": "inpainted", "replace": "replaced", "fill": "filled"}.get(action, action + "ed")
    return str(p.with_name(f"{p.stem}.{done}{p.suffix}"))


def edit(image: ImageInput, selection: Selection, options: EditOptions | None = None, action: str = "remove",
         progress: Progress | None = None, store: ModelStore | None = None) -> EditState:
    """Edit an image in memory (a path, encoded bytes, a PIL image or an array); writes nothing.
    Returns the final EditState: ``result`` (like ``image``: size, channels, bit depth), ``alpha``,
    ``info`` (to encode it like the input), ``metadata`` and ``timings``."""
    o = options or EditOptions()
    pipeline = Pipeline([LoadImage(o.max_pixels, source=image), *edit_steps(action, o, progress, store)])
    return pipeline(EditState(selection=selection))


def run_edit(input_path: str | os.PathLike, selection: Selection, options: EditOptions | None = None,
             action: str = "remove", output: str | os.PathLike | None = None,
             mask_out: str | os.PathLike | None = None,
             preview: str | os.PathLike | None = None, progress: Progress | None = None,
             store: ModelStore | None = None) -> EditState:
    """Edit one image file and write the result; returns the final EditState (timings included).
    ``store``: where models load (:class:`~autoinpaint.models.store.ModelStore`; None: the process default)."""
    pipeline = build_pipeline(action, options, mask_out, preview, progress, store)
    state = EditState(input_path=str(input_path), selection=selection,
                      output_path=str(output or default_output(
                          input_path, action, action == "background" and is_transparent(options or EditOptions()))))
    return pipeline(state)


def summary(state: EditState, action: str = "remove") -> dict:
    """The ``--json`` record of an edit."""
    alpha = state.alpha if state.alpha is not None else np.zeros((1, 1), np.float32)
    box = bbox(alpha > 0)
    keys = ("load", "segment", "mask", "inpaint", "composite", "save", "total")
    if action == "background":
        keys = ("load", "segment", "mask", "matte", "frame", "backdrop", "shadow", "composite", "save", "total")
    if "detections" in state.metadata:
        keys = ("load", "detect", *keys[1:])
    if "shadow" in state.timings:  # --shadow: its steps' time, apart
        keys = (*keys[:keys.index("mask") + 1], "shadow", *keys[keys.index("mask") + 1:])
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
    store = options.pop("store", None)
    opts = EditOptions().replace(**options)
    if output is not None:
        if isinstance(image, (str, os.PathLike)):
            return run_edit(image, selection, opts, action, output, store=store)
        from .imaging.io_steps import SaveImage

        state = edit(image, selection, opts, action, store=store)
        state.output_path = str(output)
        return SaveImage(opts.overwrite)(state)
    state = edit(image, selection, opts, action, store=store)
    return result_like(state, image)


def result_like(state: EditState, image: ImageInput) -> Any:
    """The edited image in the input's kind: an array for an array, encoded bytes (the input's format
    and quality) for bytes, else a PIL image (an array for 16-bit colour, which PIL cannot hold)."""
    from .imaging.image_io import encode_image, to_pil

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
    ``detector="owlv2"``, ``box_threshold=0.4``, ``shadow=True`` to take the cast shadow too, ...), and
    ``store=`` (a :class:`~autoinpaint.models.store.ModelStore`; default: the process's)."""
    return _run(image, "remove", _selection(points, negatives, boxes, rects, ellipses, mask, relative, texts),
                output, options)


def replace(image: ImageInput, prompt: str, points=(), negatives=(), boxes=(), rects=(), ellipses=(),
            mask: str | None = None, relative: bool = False, texts=(), output: str | os.PathLike | None = None,
            **options) -> Any:
    """Replace the selected object with what ``prompt`` describes (a diffusion model, ``model=``);
    returns like :func:`remove`."""
    return _run(image, "replace", _selection(points, negatives, boxes, rects, ellipses, mask, relative, texts),
                output, {**options, "prompt": prompt})


def background(image: ImageInput, points=(), negatives=(), boxes=(), rects=(), ellipses=(),
               mask: str | None = None, relative: bool = False, texts=(), color: str | None = None,
               output: str | os.PathLike | None = None, **options) -> Any:
    """Keep the selected object of ``image`` and replace everything else: ``color`` (``"white"``,
    ``"#RRGGBB"``, ``"transparent"``; default white), or ``backdrop_blur=PX``, or ``prompt="..."``
    (a generated scene). Matted edges (``matte=PX``), framing (``canvas="square"``, ``margin=8``,
    ``align``, ``min_side``), ``contact_shadow="soft"``. Returns like :func:`remove` (a transparent
    result as RGBA)."""
    return _run(image, "background", _selection(points, negatives, boxes, rects, ellipses, mask, relative, texts),
                output, {**options, "color": color})


def fill(image: ImageInput, prompt: str, rects=(), ellipses=(), mask: str | None = None, points=(),
         negatives=(), boxes=(), relative: bool = False, texts=(), output: str | os.PathLike | None = None,
         **options) -> Any:
    """Paint what ``prompt`` describes into a drawn region; returns like :func:`remove`."""
    return _run(image, "fill", _selection(points, negatives, boxes, rects, ellipses, mask, relative, texts),
                output, {**options, "prompt": prompt})
