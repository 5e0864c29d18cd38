"""An editing session on one image in memory: open, select (once per click), refine, apply, encode.

The core that the web app, notebooks and scripts share. It runs the very steps of
:mod:`autoinpaint.api` (no second implementation of any stage), one stage at a time, and keeps the
state between calls: the image embedding is computed once (in the background right after ``open``),
so every further click runs only the prompt decoder.

>>> ed = Editor(EditOptions(segmenter="classical")).open("samples/catalogue_sticker.jpg")
>>> mask = ed.select(points=[(527, 442)])           # H×W bool, the object
>>> alpha = ed.refine(dilate=10)                    # H×W float32, what will change
>>> result = ed.apply("remove")                     # H×W×C, like the input
>>> ed.save("outputs/clean.jpg")                    # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from .api import (ACTIONS, EditOptions, assess_step, backdrop_steps, detect_step, fill_steps, invert_steps,
                  mask_step, object_step, selection_steps, shadow_steps, summary)
from .detect import Detections
from .errors import InputError
from .imaging.display import DEFAULT_MAX_SIDE, display_copy
from .imaging.image_io import ImageInput, encode_image
from .imaging.io_steps import LoadImage
from .inpaint import Progress
from .options import FIELDS
from .pipeline import Pipeline, timed
from .selection import Selection, clean_texts
from .state import EditState

_SHADOW_FIXES = ("shadow_grow", "shadow_strength")
_MASK_FIELDS = ("dilate", "erode", "feather", "blur", "fill_holes", "min_area", "shadow", *_SHADOW_FIXES)
_EMBEDDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autoinpaint-embed")


class Editor:
    """One image, edited in steps.

    Args:
        options: the session's defaults (:class:`~autoinpaint.api.EditOptions`); each call may
            override call-time fields.
        store: the :class:`~autoinpaint.models.store.ModelStore` its models load into (None: the
            process default); a server hands in its own.
    """

    def __init__(self, options: EditOptions | None = None, store=None):
        self.options = options or EditOptions()
        self.store = store
        self.state: EditState | None = None
        self._object: np.ndarray | None = None  # the segmentation before the mask stage
        self.action = "mask"  # the last stage run, for summary()
        self._lock = threading.RLock()
        self._display: dict = {}  # (image|result, max_side) -> (pixels, their display copy)

    # ---------------------------------------------------------------------------------------- open
    def open(self, image: ImageInput, embed: bool = True) -> "Editor":
        """Load ``image`` (a path, encoded bytes, a PIL image or an array) and, when ``embed``,
        start computing its embedding for the segmenter in the background."""
        state = LoadImage(self.options.max_pixels, source=image)(EditState())
        with self._lock:
            self.state, self._object, self.action, self._display = state, None, "mask", {}
        if embed:
            self.start_embedding()
        return self

    def fork(self) -> "Editor":
        """A new session on the same image: pixels, file info and embeddings are shared (not
        copied), the selection and result are its own. A long ``apply`` runs on a fork while the
        original takes further clicks."""
        state = self._require()
        with self._lock:
            other = Editor(self.options, self.store)
            other.state = dataclasses.replace(state, metadata=dict(state.metadata), timings={},
                                              mask=None, alpha=None, crop=None, inpainted=None,
                                              result=None, shadow=None)
            other._object = None
        return other

    def close(self) -> None:
        """Release the image; a background embedding of it that has not started yet is cancelled."""
        with self._lock:
            if self.state is not None:
                # a fork shares the embeddings: drop only a computation that never started (a
                # fork then computes it itself when it needs it)
                held = self.state.embeddings
                for name in [k for k, v in held.items() if isinstance(v, Future) and v.cancel()]:
                    held.pop(name, None)
            self.state, self._object, self._display = None, None, {}

    def display(self, max_side: int | None = DEFAULT_MAX_SIDE, result: bool = False) -> np.ndarray:
        """A copy for a screen (:func:`autoinpaint.imaging.display.display_copy`): h×w×3 (×4 with alpha)
        uint8 sRGB, the longest side at most ``max_side`` px; of the result when ``result``
        (the image when nothing was applied). Kept, so asking again costs nothing."""
        state = self._require()
        pixels = state.result if result and state.result is not None else state.image
        key = ("result" if pixels is state.result else "image", max_side)
        held = self._display.get(key)
        if held is None or held[0] is not pixels:
            held = self._display[key] = (pixels, display_copy(pixels, state.info, max_side))
        return held[1]

    @property
    def segment_step(self):
        return selection_steps(self.options, self.store)[-1]

    def start_embedding(self) -> Future:
        """Compute the segmenter's embedding of the image in a background thread (one at a time per
        process); ``select`` waits for it. Returns the future."""
        state = self._require()
        step = self.segment_step
        segmenter = step.segmenter
        held = state.embeddings.get(segmenter.name)
        if isinstance(held, Future):
            return held
        if held is not None:
            done: Future = Future()
            done.set_result(held)
            return done
        from .imaging.pixels import to_rgb8

        future = _EMBEDDER.submit(segmenter.embed, to_rgb8(state.image))
        state.embeddings[segmenter.name] = future
        return future

    def embedding_ready(self) -> bool:
        """True when the segmenter's embedding is computed (a click then costs only the decoder)."""
        state = self._require()
        held = [v for v in state.embeddings.values()]
        return bool(held) and all(not isinstance(v, Future) or v.done() for v in held)

    # ---------------------------------------------------------------------------------------- stages
    def select(self, selection: Selection | None = None, *, points=(), negatives=(), boxes=(),
               rects=(), ellipses=(), texts=(), relative: bool = False, **options) -> np.ndarray:
        """Segment ``selection`` (or the prompts given as keywords; ``texts`` are phrases a detector
        turns into boxes first), then run the mask stage and the doubt signal (:meth:`quality`).
        Returns the object mask (H×W bool); ``refine`` and ``apply`` use it. Keyword ``options``
        override call-time fields (``sam_select``, ``sam_refine``, ``dilate``, ``box_threshold``,
        ``pick``, ...)."""
        if selection is None:
            selection = Selection(points=tuple(map(tuple, points)), negatives=tuple(map(tuple, negatives)),
                                  boxes=tuple(map(tuple, boxes)), rects=tuple(map(tuple, rects)),
                                  ellipses=tuple(map(tuple, ellipses)), relative=relative,
                                  texts=clean_texts(texts))
        opts = self._options(options)
        self._await_embeddings()
        with self._lock:
            state = self._require()
            state.selection = selection
            state = Pipeline([*selection_steps(opts, self.store), *invert_steps(opts)])(state)
            self._object = state.mask.copy()
            timed(state, "mask", lambda: mask_step(opts)(state))
            self._shadow(opts)
            assess_step(opts)(state)  # the doubt signal, before anything is written
            state.result = state.inpainted = state.crop = None
            return self._object

    def detect(self, phrases: "str | Sequence[str]", **params) -> Detections:
        """Run the detector on the open image and return what it finds, without selecting anything:
        a list of :class:`~autoinpaint.detect.Detection` (``phrase``, ``score``, ``box`` in pixels),
        highest score first; empty when nothing passes the thresholds (``.explain()`` then says
        why, e.g. ``no "price sticker" found (best score 0.18 < 0.30)``). A web page shows them as
        boxes the user keeps or drops, then calls ``select(boxes=[d.box for d in kept])``.
        Keyword ``params``: ``detector``, ``box_threshold``, ``text_threshold``, ``pick``,
        ``max_objects`` (EditOptions fields)."""
        from .imaging.pixels import to_rgb8

        step = detect_step(self._options(params), self.store)
        image = to_rgb8(self._require().image)
        # outside the lock, like apply: a detection takes seconds and the session stays usable
        return step.detector.detect(image, clean_texts(phrases), step.params)

    def refine(self, **mask_options) -> np.ndarray:
        """Re-run the mask stage on the last selection with other ``dilate``, ``erode``, ``feather``,
        ``blur``, ``fill_holes``, ``min_area``, ``shadow``, ``shadow_grow`` or ``shadow_strength``. Returns the alpha
        (H×W float32, 1 = replaced)."""
        unknown = set(mask_options) - set(_MASK_FIELDS)
        if unknown:
            raise InputError(f"unknown mask option(s): {', '.join(sorted(unknown))}")
        with self._lock:
            state = self._require()
            if self._object is None:
                raise InputError("nothing selected yet: select before refine")
            self.options = self.options.replace(**mask_options)
            if not self.options.shadow:   # the shadow's corrections go with it, unless given now
                self.options = self.options.replace(**{k: FIELDS[k].default for k in _SHADOW_FIXES
                                                       if k not in mask_options})
            state.mask = self._object.copy()
            timed(state, "mask", lambda: mask_step(self.options)(state))
            self._shadow(self.options)
            assess_step(self.options)(state)
            state.result = state.inpainted = state.crop = None
            return state.alpha

    def apply(self, action: str = "remove", progress: Progress | None = None, **options) -> np.ndarray:
        """Inpaint the selection: ``remove``, ``replace`` or ``fill`` (``prompt=...``); or
        ``background``: keep the selected object and replace everything else (``color=``,
        ``backdrop_blur=``, ``prompt=``, ``matte=``, ``canvas=``, ``margin=``, ... ; see
        :func:`autoinpaint.api.backdrop_steps`; with framing, the state then holds the canvas). Keyword
        ``options`` are EditOptions fields for this call (``prompt``, ``seed``, ``steps``,
        ``inpainter``, ...). ``progress(done, total)`` is called per model step; raising
        :class:`~autoinpaint.inpaint.Cancelled` in it stops the call. Returns the result (H×W×C,
        like the input); pixels with alpha 0 are bit-identical to the input's."""
        if action not in ACTIONS or action == "mask":
            raise InputError(f"unknown action {action!r}; choose remove, replace, fill or background")
        opts = self._options(options)
        with self._lock:
            state = self._require()
            if state.alpha is None:
                raise InputError("nothing selected yet: select before apply")
            work = dataclasses.replace(state, metadata=dict(state.metadata), timings=dict(state.timings), stop=None)
            if action == "background":  # the kept object is cleaned as the CLI does, from the segmentation
                work.mask = self._object.copy() if self._object is not None else state.mask
        # the model call runs outside the lock: the session stays usable (e.g. for a status query)
        if action == "background":
            if opts.invert:
                raise InputError("--invert applies to remove, replace, fill and mask, not to background")
            steps = [object_step(opts), *backdrop_steps(opts, progress, self.store)]
        else:  # a shadow found by the selection (--shadow) is relit, the object's hole filled from lit ground
            steps = fill_steps(action, opts, progress, work.shadow is not None, self.store)
        work = Pipeline(steps)(work)
        with self._lock:
            self.state = work
            self.action = action
        return work.result

    # ---------------------------------------------------------------------------------------- output
    def output_format(self) -> str:
        """The format :meth:`encode` writes by default: the input's, or PNG for a transparent
        ``background`` result of an input whose format has no alpha (JPEG, BMP, GIF) and for any
        ``background`` result of a GIF."""
        from .imaging.formats import ALPHA_FORMATS

        info = self._require().info
        if info.extra.get("alpha_required") and info.format not in ALPHA_FORMATS:
            return "PNG"
        if info.extra.get("cutout") and info.format == "GIF":
            return "PNG"
        return info.format

    def encode(self, fmt: str | None = None) -> bytes:
        """The result (or the image when nothing was applied) encoded like the input (format,
        quality, bit depth, ICC, EXIF), or as ``fmt`` (``PNG``, ``JPEG``, ...)."""
        state = self._require()
        pixels = state.result if state.result is not None else state.image
        return encode_image(pixels, state.info, (fmt or self.output_format()).upper())

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write the result to ``path`` atomically (its suffix picks the format, else the input's);
        refuses to replace the input unless ``overwrite``. Returns the format written."""
        from .imaging.io_steps import SaveImage

        state = self._require()
        if state.result is None:
            raise InputError("nothing applied yet: apply before save")
        work = dataclasses.replace(state, output_path=str(path), metadata=dict(state.metadata))
        SaveImage(overwrite)(work)
        return work.metadata["output_format"]

    def quality(self) -> dict | None:
        """The last selection's confidence record (``verdict`` ok|doubt, ``reasons``, ``signals``;
        :mod:`autoinpaint.mask.assess`), or None before a selection."""
        return self._require().metadata.get("quality")

    def summary(self) -> dict[str, Any]:
        """The ``--json`` record of the session's last stage."""
        state = self._require()
        return summary(state, self.action)

    # ---------------------------------------------------------------------------------------- state
    @property
    def image(self) -> np.ndarray:
        return self._require().image

    @property
    def mask(self) -> np.ndarray | None:
        return self._object

    @property
    def alpha(self) -> np.ndarray | None:
        return self._require().alpha

    @property
    def result(self) -> np.ndarray | None:
        return self._require().result

    @property
    def size(self) -> tuple[int, int]:
        return self._require().size

    def _await_embeddings(self) -> None:
        """Wait for a background embedding outside the session's lock, so that a fork (an edit
        job) or a status query need not wait for the encoder too."""
        state = self.state
        for held in list(state.embeddings.values()) if state is not None else ():
            if isinstance(held, Future) and not held.cancelled():
                try:
                    held.result()
                except Exception:  # noqa: BLE001 - the segment step raises it again, with its message
                    pass

    def _shadow(self, opts: EditOptions) -> None:
        """The ``--shadow`` step after the mask stage; without it no shadow of an earlier selection stays."""
        state = self.state
        state.shadow = None
        for key in ("shadow_pixels", "shadow_darkening"):
            state.metadata.pop(key, None)
        for step in shadow_steps(opts):
            timed(state, step.name, lambda: step(state))

    def _require(self) -> EditState:
        if self.state is None:
            raise InputError("no image open: call open(image) first")
        return self.state

    def _options(self, overrides: dict) -> EditOptions:
        return self.options.replace(**overrides) if overrides else self.options

