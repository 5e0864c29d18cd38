"""Detection stage: text phrases (``--text "price sticker"``) → boxes, before segmentation.

The ``Detect`` step runs an open-vocabulary detector (:mod:`.zero_shot`: OmDet-Turbo, Grounding DINO,
MM Grounding DINO, OWLv2 through transformers) on the selection's phrases and adds the boxes it finds to
the selection's boxes, so the ``Segment`` step that follows prompts SAM (any family) or the classical
segmenter with them, exactly as if the user had drawn them. With no phrase the step does nothing and imports nothing. A phrase that
matches nothing is an answer: :class:`~autoinpaint.errors.NotFoundError` (exit 2; a batch row's
status ``not_found``).

Load-time values (which model, device) are constructor arguments; call-time values (thresholds,
``pick``, ``max_objects``) are :class:`DetectParams`, so one loaded model serves every request.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import NotFoundError
from ..log import notice
from ..pipeline import timed
from .base import PICK_MODES, DetectParams, Detection, Detections, Detector

__all__ = ["PICK_MODES", "Detect", "DetectParams", "Detection", "Detections", "Detector", "load_detector"]


class Detect:
    """Pipeline step: ``state.selection.texts`` → boxes added to ``state.selection.boxes``.

    Also sets ``state.metadata["detections"]`` (``[{"phrase", "score", "box"}]``, what ``--json``
    lists and ``--preview`` draws), ``["detector"]``, and ``["not_found"]`` (phrase → best score) for
    phrases that matched nothing while others did. Raises NotFoundError when no phrase matched.

    Args:
        detector: a Detector, or a spec for :func:`load_detector` (``auto``, ``omdet-turbo``,
            ``grounding-dino-tiny``, ``owlv2``, a hub id, a folder).
        params: call-time values (:class:`DetectParams`).
        store: the :class:`~autoinpaint.models.store.ModelStore` the model loads into (None: the
            process default).
        load_options: passed to :func:`load_detector` (``device``).
    """

    name = "detect"

    def __init__(self, detector: "Detector | str" = "auto", params: DetectParams | None = None, store=None,
                 **load_options):
        self._spec = detector
        self._store = store
        self._load_options = load_options
        self.params = params or DetectParams()

    @property
    def detector(self) -> Detector:
        if isinstance(self._spec, str):
            self._spec = load_detector(self._spec, self._store, **self._load_options)
        return self._spec

    def __call__(self, state):
        for key in ("detections", "not_found"):  # an Editor re-selects on the same state
            state.metadata.pop(key, None)
        if not state.selection.texts:
            return state
        from ..imaging.pixels import to_rgb8

        h, w = state.image.shape[:2]
        sel = state.selection.to_pixels(w, h)  # validates the rest of the selection before any model loads
        detector = timed(state, "load", lambda: self.detector)
        found = detector.detect(to_rgb8(state.image), sel.texts, self.params)
        state.metadata["detector"] = detector.name
        state.metadata["detections"] = [d.to_dict() for d in found]
        if not found:
            raise NotFoundError(found.explain())
        missing = found.missing()
        if missing:
            state.metadata["not_found"] = {p: round(found.best.get(p, 0.0), 4) for p in missing}
            notice(found.explain(missing) + "; going on with the others")
        notice(f"detect: {len(found)} found: " + ", ".join(f'"{d.phrase}" {d.score:.2f}' for d in found))
        state.selection = replace(sel, boxes=sel.boxes + tuple(d.box for d in found), texts=())
        return state

    def __repr__(self) -> str:
        name = self._spec if isinstance(self._spec, str) else self._spec.name
        return f"Detect({name!r}, params={self.params})"


def load_detector(spec: str = "auto", store=None, **options) -> Detector:
    """Get a detector: ``auto`` (the first known detector present here, else omdet-turbo),
    ``omdet-turbo``, ``grounding-dino-tiny``, ``mm-grounding-dino-tiny``, ``grounding-dino-base``,
    ``owlv2``, a hub id (from the local Hugging Face
    cache) or a ``save_pretrained`` folder. ``options``: load-time values (``device``). Loaded once per
    ``store`` (:func:`autoinpaint.models.registry.load`; the process default when None); a missing model raises
    ModelMissingError (exit 3) with the command that fetches it."""
    from ..models.registry import load

    return load("detector", spec, store, **options)
