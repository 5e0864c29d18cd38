"""The glue between the API's requests and an :class:`~autoinpaint.editor.Editor`: a click's mask
response, and the work of an edit job. Every stage runs in the Editor (the one pipeline)."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from ..api import EditOptions, backdrop_steps, default_output, inpaint_request
from ..errors import InputError
from ..imaging.display import alpha_png, alpha_u8, display_size, encode_display
from ..imaging.image_io import FORMAT_BY_SUFFIX, SUFFIX_BY_FORMAT
from ..mask.refine import bbox
from ..selection import Selection
from .errors import NotFound
from .jobs import Job
from .schemas import DetectRequest, EditRequest, MaskRequest, SelectionFields
from .sessions import Session

PASS_THROUGH = ("detections", "quality")  # filled by later stages (text prompts, mask doubt) when present


def mask_options(defaults: EditOptions, req: SelectionFields) -> dict:
    """Every mask-stage value: the request's, else the server's default (so a session never keeps
    a previous request's values)."""
    return {**{k: getattr(defaults, k) for k in req.MASK}, **req.options(req.MASK)}


def selection_of(req: SelectionFields) -> Selection:
    return Selection(**req.selection_values())


def mask(session: Session, req: MaskRequest, defaults: EditOptions) -> dict:
    """Segment ``req``'s selection (or, when only mask values changed, re-run the mask stage) and
    describe the alpha: pixel count, bbox, scores, timings and an 8-bit PNG at the display size."""
    import cv2

    t0 = time.perf_counter()
    editor = session.editor
    selection = selection_of(req)
    segment = req.options(req.SEGMENT + req.DETECT)
    key = (selection, tuple(sorted(segment.items())))
    with session.lock:
        if editor.state is None:
            raise NotFound(f"image {session.id} was closed to free memory: open it again")
        ready = editor.embedding_ready()
        before = dict(editor.state.timings)
        if session.last == key and editor.mask is not None:
            alpha = editor.refine(**mask_options(defaults, req))
        else:
            session.last = None
            editor.select(selection, **segment, **mask_options(defaults, req))
            alpha = editor.alpha
            session.last = key
        state = editor.state
        timings = {k: state.timings.get(k, 0.0) - before.get(k, 0.0) for k in ("load", "segment", "mask", "shadow")}
        metadata = dict(state.metadata)
        shadow = state.shadow
    t1 = time.perf_counter()
    h, w = alpha.shape
    box = bbox(alpha > 0)
    count = cv2.countNonZero(alpha[box[1]:box[3], box[0]:box[2]]) if box else 0  # alpha >= 0
    size = display_size(w, h, session.display_max_side)
    png = alpha_png(alpha, size, box)
    scores = metadata.get("segment_scores") or {}
    out = {
        "mask_pixels": count,
        "bbox": list(box) if box else None,
        "segmenter": metadata.get("segmenter") or ("drawn" if not selection.has_prompts else None),
        "score": scores.get("iou"),
        "scores": scores,
        "embedding_was_ready": ready,
        "alpha_size": list(size),
        "alpha_png": base64.b64encode(png).decode("ascii"),
    }
    if "shadow_pixels" in metadata:  # --shadow: the shadow's own part of the alpha, drawn in its own colour
        out["shadow_pixels"], out["shadow_darkening"] = metadata["shadow_pixels"], metadata["shadow_darkening"]
        out["shadow_png"] = base64.b64encode(alpha_png(shadow_part(alpha, shadow), size,
                                                       shadow.box if shadow else (0, 0, 0, 0))).decode("ascii")
    # as they are, made JSON-safe (a stage may leave NumPy numbers in its record)
    out.update({k: json.loads(json.dumps(metadata[k], default=_plain)) for k in PASS_THROUGH if k in metadata})
    timings["encode"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    out["timings"] = {k: round(v, 4) for k, v in timings.items() if v or k in ("segment", "mask")}
    return out


def shadow_part(alpha: np.ndarray, shadow) -> np.ndarray:
    """The part of ``alpha`` (H×W) that the cast shadow adds to the object's (zeros when none was found)."""
    part = np.zeros(alpha.shape, np.float32)
    if shadow is not None:
        x0, y0, x1, y1 = shadow.box
        part[y0:y1, x0:x1] = alpha[y0:y1, x0:x1] - shadow.object_alpha[y0:y1, x0:x1]
    return part


def detect(session: Session, req: DetectRequest) -> dict:
    """Find ``req.texts`` in the open photo and propose the boxes (full-resolution pixels, highest
    score first); nothing is selected. Nothing found is an answer: ``detections`` is empty and
    ``note`` says why (``no "price sticker" found (best score 0.18 < 0.30)``)."""
    t0 = time.perf_counter()
    editor = session.editor
    if editor.state is None:
        raise NotFound(f"image {session.id} was closed to free memory: open it again")
    found = editor.detect(req.texts, **req.options(req.DETECT))  # the session's options: the server's
    out = {"detections": [d.to_dict() for d in found], "missing": found.missing()}
    if found.missing():
        out["note"] = found.explain()
    out["timings"] = {"total": round(time.perf_counter() - t0, 4)}
    return out


def _plain(value):
    return value.item() if hasattr(value, "item") else (value.tolist() if hasattr(value, "tolist") else str(value))


def check_edit(req: EditRequest, defaults: EditOptions, size: tuple[int, int],
               offered: "Offered") -> EditOptions:
    """Validate an edit before queueing it (400 at once rather than a failed job): the selection
    against the image, the inpainter/model against what the server offers, the prompt."""
    selection_of(req).to_pixels(*size)
    options = defaults.replace(**mask_options(defaults, req), **req.options(req.SEGMENT + req.DETECT),
                               **req.options(req.INPAINT), **req.options(req.BACKGROUND))
    if options.inpainter in (None, "", "auto"):  # the server resolved auto once, at startup
        options = options.replace(inpainter=defaults.inpainter)
    offered.check(req.action, options)
    if req.action == "background":
        backdrop_steps(options)  # a colour that does not parse, a canvas over the pixel limit, ...
    else:
        inpaint_request(req.action, options)  # e.g. "replace needs --prompt TEXT"
    return options


@dataclass
class EditOutput:
    """What a finished edit job keeps: the encoded result (the input's format), its file name, the
    final alpha (uint8, full resolution), the display copy of the result and the ``--json`` record."""

    data: bytes
    media_type: str
    filename: str
    alpha: np.ndarray
    display: bytes
    display_type: str
    summary: dict


def edit_work(session: Session, req: EditRequest, options: EditOptions):
    """The work of an edit job: on a fork of the session (clicks go on meanwhile) select, apply,
    encode. Progress: segment 0–10 %, inpaint 10–90 % (per model step when it reports them)."""
    fork = session.editor.fork()
    selection = selection_of(req)
    action, name, max_side = req.action, session.name, session.display_max_side

    def work(job: Job) -> None:
        try:
            job.report(0.01, "segment")
            fork.options = options
            fork.select(selection)
            job.report(0.1, "inpaint")

            def progress(done: int, total: int) -> None:
                job.report(0.1 + 0.8 * done / max(total, 1), step=done, steps=total)

            fork.apply(action, progress=progress)
            job.report(0.9, "encode")
            fmt = fork.output_format()  # the input's, or PNG for a transparent cut-out of a JPEG
            data = fork.encode(fmt)
            shown, shown_type = encode_display(fork.display(max_side, result=True))
            alpha = alpha_u8(fork.alpha)
            job.check()
            job.result = EditOutput(data, MEDIA_TYPES.get(fmt, "application/octet-stream"),
                                    output_name(name, action, fmt), alpha, shown, shown_type,
                                    json.loads(json.dumps(fork.summary(), default=str)))
        finally:
            fork.close()

    return work


MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
               "BMP": "image/bmp", "GIF": "image/gif", "AVIF": "image/avif", "HEIF": "image/heic"}


def output_name(name: str, action: str, fmt: str) -> str:
    """``photo.jpg`` → ``photo.inpainted.jpg`` (the CLI's naming); the suffix changes only when the
    format written differs from the name's (an uploaded HEIC comes back as ``.png``)."""
    out = default_output(name, action)
    suffix = PurePath(name).suffix
    if FORMAT_BY_SUFFIX.get(suffix.lower()) == fmt:
        return out
    return (out[: -len(suffix)] if suffix else out) + SUFFIX_BY_FORMAT.get(fmt, ".png")


class Offered:
    """Which inpainters, diffusion models and LoRAs a request may name: the classical ones, LaMa (from the
    checkpoint folders only), the diffusion aliases, LoRA hub ids, and what the server was started with.
    Never an arbitrary path a client sends."""

    def __init__(self, options: EditOptions):
        from ..models.registry import CLASSICAL_INPAINTERS, DIFFUSION_ALIASES

        self.inpainters = ["auto", *CLASSICAL_INPAINTERS, "lama", *DIFFUSION_ALIASES]
        self.models = list(DIFFUSION_ALIASES)
        for extra, pool in ((options.inpainter, self.inpainters), (options.model, self.models)):
            if extra and extra not in pool:
                pool.append(extra)
        self.loras = set(options.lora)  # the server's own --lora may be paths; a request's may not

    def check(self, action: str, options: EditOptions) -> None:
        if options.inpainter not in self.inpainters:
            raise InputError(f"inpainter {options.inpainter!r} is not offered by this server: choose from "
                             f"{', '.join(self.inpainters)}")
        if options.model is not None and options.model not in self.models:
            raise InputError(f"model {options.model!r} is not offered by this server: choose from "
                             f"{', '.join(self.models)}")
        from ..inpaint.lora import is_local

        for spec in options.lora:
            if spec not in self.loras and is_local(spec):
                raise InputError(f"lora {spec!r}: a request may name hub ids (owner/name[:scale], from this "
                                 "server's Hugging Face cache) or the server's own --lora, never a path")
