"""Open-vocabulary detectors through transformers: ``AutoModelForZeroShotObjectDetection`` +
``AutoProcessor`` (Grounding DINO, MM Grounding DINO, OmDet-Turbo, OWLv2, OWL-ViT).

Where the model comes from follows :mod:`autoinpaint.models.hub` (the local Hugging Face cache only, exit 3
with the ``hf download`` command, ``AUTOINPAINT_ALLOW_DOWNLOAD=1``; a local ``save_pretrained``
folder; safetensors weights only). The model call is here; everything after it is the pure
:mod:`.postprocess`. torch and transformers are imported when a detector is loaded, not before.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, ModelMissingError
from ..log import notice
from ..models.hub import ModelSource, fetch_hint, require_safe_weights, resolve, snapshot_folder
from ..models.registry import DETECTOR_ALIASES
from .base import DetectParams, Detections
from .postprocess import decode_grounding_dino, decode_omdet, decode_owl, grounding_text, pick

GROUNDING_TYPES = ("grounding-dino", "mm-grounding-dino")
OWL_TYPES = ("owlv2", "owlvit")
OMDET_TYPES = ("omdet-turbo",)
# (box_threshold, text_threshold) defaults: Grounded-SAM's 0.30 / 0.25; OWL's usual 0.10; OmDet-Turbo:
# transformers' post-processing default 0.30
DEFAULT_THRESHOLDS = {"grounding-dino": (0.30, 0.25), "owl": (0.10, None), "omdet": (0.30, None)}


def working_size(width: int, height: int, size: dict) -> tuple[int, int]:
    """The size (w, h) a processor resizes a ``width``×``height`` image to, keeping its aspect (for a
    fixed ``height``/``width`` square like OWLv2's, the long side goes to that square's side, since
    the image is padded to a square first). Never larger than the image."""
    long_side, short_side = max(width, height), min(width, height)
    if size.get("shortest_edge"):
        scale = size["shortest_edge"] / short_side
        if size.get("longest_edge"):
            scale = min(scale, size["longest_edge"] / long_side)
    elif size.get("height") and size.get("width"):
        scale = max(size["height"], size["width"]) / long_side
    else:
        return width, height
    scale = min(scale, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink(image: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """``image`` (H×W×3 uint8) shrunk to ``target`` (w, h) by area averaging. A photo still at least 4×
    the target on both sides is first halved with ``cv2.pyrDown`` (a 5×5 Gaussian, then every other
    pixel: 12 MP → 640² in 0.6× the time of one INTER_AREA here, mean difference 0.1 grey level; content
    moves by at most half a source pixel per halving), then area-averaged to the target."""
    import cv2

    while image.shape[1] >= 4 * target[0] and image.shape[0] >= 4 * target[1]:
        image = cv2.pyrDown(image)
    return cv2.resize(image, target, interpolation=cv2.INTER_AREA)


def load_zero_shot_detector(spec: str, device: str = "auto") -> "ZeroShotDetector":
    """Registry loader: ``omdet-turbo``, ``grounding-dino-tiny``, ``grounding-dino-base``,
    ``mm-grounding-dino-tiny``, ``owlv2``, a hub id, or a
    local ``save_pretrained`` folder. Raises ModelMissingError (exit 3) when it is not on this
    machine or its weights are pickles, InputError for a single file."""
    source = resolve(spec, DETECTOR_ALIASES, marker="config.json", what="detector", flag="--detector")
    if source.kind == "file":
        raise InputError(f"--detector {spec}: a detector is a hub id or a save_pretrained folder "
                         "(config.json, preprocessor and tokenizer files, model.safetensors), not one file")
    folder = Path(source.location) if source.kind == "folder" else snapshot_folder(source.location)
    if folder is not None:
        require_safe_weights(folder, "detector")
    return ZeroShotDetector(source, device=device)


def legacy_backbone_config(folder: Path | None):
    """The config of a ``save_pretrained`` folder whose ``config.json`` names its timm backbone the old way
    (``backbone`` + ``backbone_kwargs``, ``backbone_config`` null: the published OmDet-Turbo checkpoint),
    with that backbone written out as a ``timm_backbone`` config; None for any other config.

    transformers 5 resolves such a ``backbone`` name by asking the Hub whether a repo of that name exists,
    which fails offline and is a network call on every load otherwise; the timm backbone config is what
    that lookup ends in for a timm model name. Nothing is downloaded either way (random init, then the
    checkpoint's weights)."""
    import json

    if folder is None:
        return None
    try:
        cfg = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(cfg, dict) and cfg.get("backbone") and cfg.get("backbone_config") is None
            and cfg.get("backbone_kwargs") and cfg.get("model_type") in OMDET_TYPES):
        return None
    from transformers import AutoConfig

    cfg = dict(cfg)
    cfg["backbone_config"] = {"model_type": "timm_backbone", "backbone": cfg.pop("backbone"),
                              **cfg.pop("backbone_kwargs")}
    for key in ("use_timm_backbone", "use_pretrained_backbone"):
        cfg.pop(key, None)
    return AutoConfig.for_model(**cfg)


@contextlib.contextmanager
def _quiet_transformers():
    """No loading bars or INFO/WARNING chatter from transformers while a detector loads."""
    from transformers.utils import logging as tlog

    verbosity, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(verbosity)
        if bars:
            tlog.enable_progress_bar()


class ZeroShotDetector:
    """A transformers zero-shot object detector behind the :class:`~autoinpaint.detect.Detector`
    interface.

    Grounding DINO reads one prompt of lower-case phrases ending in dots and scores every token; a box
    belongs to the phrase whose tokens score highest (``text_threshold`` applies to them). OWLv2 reads
    one query per phrase; it pads the image to a square at the bottom/right before resizing, so its
    boxes are mapped back with the padded side (:func:`~.postprocess.to_pixels`). OmDet-Turbo reads the
    phrases as class names (plus its task prompt ``Detect a, b.``) and scores each box against each
    class; its processor stretches the image to 640×640.

    Args:
        source: where the model is (:func:`autoinpaint.models.hub.resolve`).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``. Weights run in float32.
    """

    def __init__(self, source: ModelSource, device: str = "auto"):
        import torch  # noqa: F401 - fail here, not inside transformers, when torch is absent
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        from ..models.device import resolve_device

        self.source = source
        self.name = source.name
        local = source.local_files_only
        if not local:
            notice(f"downloading {source.location} (allowed by AUTOINPAINT_ALLOW_DOWNLOAD)")
        folder = Path(source.location) if source.kind == "folder" else snapshot_folder(source.location)
        try:
            with _quiet_transformers():
                config = legacy_backbone_config(folder)
                extra = {"config": config} if config is not None else {}
                self.processor = AutoProcessor.from_pretrained(source.location, local_files_only=local)
                # adapter_kwargs: with peft installed, the Auto class also looks for a PEFT adapter of a hub
                # id, and without this it asks the Hub even when the model is read from the cache
                self.model, info = AutoModelForZeroShotObjectDetection.from_pretrained(
                    source.location, local_files_only=local, use_safetensors=True, output_loading_info=True,
                    adapter_kwargs={"local_files_only": local}, **extra)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = fetch_hint(source.location, "--detector") if source.kind == "hub" else "check the folder"
            raise ModelMissingError(f"cannot load detector {source.name!r}: {first[:200]}; {hint}") from None
        missing = list(info.get("missing_keys") or [])
        if missing:
            raise ModelMissingError(f"detector {source.name!r}: its weights lack {len(missing)} tensors "
                                    f"(e.g. {missing[0]}); the folder does not match its config.json")
        model_type = self.model.config.model_type
        if model_type in GROUNDING_TYPES:
            self.family = "grounding-dino"
            self.delimiters = self._grounding_delimiters()
        elif model_type in OMDET_TYPES:
            self.family = "omdet"
        elif model_type in OWL_TYPES:
            self.family = "owl"
            # OWLv2 pads to a square before resizing; OWL-ViT stretches the image to a square
            self.padded_square = bool(getattr(self.processor.image_processor, "do_pad", False))
        else:
            raise ModelMissingError(f"detector {source.name!r} is a {model_type!r} model; autoinpaint detects "
                                    "with OmDet-Turbo, Grounding DINO (grounding-dino-tiny, -base), "
                                    "MM Grounding DINO or OWLv2/OWL-ViT")
        self.box_threshold, self.text_threshold = DEFAULT_THRESHOLDS[self.family]
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        self._lock = threading.Lock()  # one forward at a time: concurrent calls would fight over the cores

    def _grounding_delimiters(self) -> list[int]:
        """Token ids that separate phrases: the model's own list ([CLS], [SEP], ``.``, ``?``) and the
        tokenizer's, plus [PAD]."""
        tok = self.processor.tokenizer
        ids = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, *tok.convert_tokens_to_ids([".", "?"])}
        buffer = getattr(getattr(self.model, "model", None), "special_tokens", None)
        if buffer is not None:
            ids |= set(int(i) for i in buffer.tolist())
        return sorted(i for i in ids if i is not None and i >= 0)

    def forward(self, image: np.ndarray, phrases: Sequence[str]) -> dict:
        """The model call: raw outputs of one image as numpy — ``logits`` (Q×T token logits for
        Grounding DINO, Q×P for OWL and OmDet-Turbo), ``boxes`` (Q×4 normalised cx, cy, w, h) and ``input_ids``."""
        import torch
        from PIL import Image

        h, w = image.shape[:2]
        size = getattr(self.processor.image_processor, "size", None)  # a dict or transformers' SizeDict
        size = {k: size.get(k) if isinstance(size, dict) else getattr(size, k, None)
                for k in ("shortest_edge", "longest_edge", "height", "width")} if size is not None else {}
        if self.family == "omdet" and size.get("height") and size.get("width"):
            # its processor stretches the image to height×width (no padding): shrink each side to at most
            # that, in one area-averaging resize (a second resize in the processor would blur the edges)
            target = (min(w, size["width"]), min(h, size["height"]))
        else:
            target = working_size(w, h, size)
        if target != (w, h):
            # shrink a large photo to the processor's working size first (area averaging, like any
            # good downscale): at 12 MP OWLv2's own pad-blur-resize takes 4 s on two cores; boxes are
            # fractions of the image (or of its padded square), so they do not move
            image = shrink(image, target)
        pil = Image.fromarray(np.ascontiguousarray(image))
        if self.family == "grounding-dino":
            inputs = self.processor(images=pil, text=grounding_text(phrases), return_tensors="pt")
        elif self.family == "omdet":
            inputs = self.processor(images=pil, text=list(phrases), return_tensors="pt")
        else:
            # one query per phrase, padded/truncated to the text model's positions (16 for OWLv2)
            length = self.model.config.text_config.max_position_embeddings
            inputs = self.processor(images=pil, text=[list(phrases)], return_tensors="pt", padding="max_length",
                                    truncation=True, max_length=length)
        with self._lock, torch.inference_mode():
            outputs = self.model(**inputs.to(self.device))
        if self.family == "omdet":  # one logit column per phrase, like OWL
            return {"logits": outputs.decoder_class_logits[0].float().cpu().numpy(),
                    "boxes": outputs.decoder_coord_logits[0].float().cpu().numpy(),
                    "input_ids": inputs["classes_input_ids"].cpu().numpy()}
        return {"logits": outputs.logits[0].float().cpu().numpy(),
                "boxes": outputs.pred_boxes[0].float().cpu().numpy(),
                "input_ids": inputs["input_ids"][0].cpu().numpy()}

    def detect(self, image: np.ndarray, phrases: Sequence[str], params: DetectParams | None = None) -> Detections:
        """Boxes of ``phrases`` in ``image`` (H×W×3 uint8 RGB), in its pixels; see :class:`Detections`."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("a detector needs an H×W×3 uint8 RGB image")
        if not phrases:
            raise InputError("no --text phrase to detect")
        params = params or DetectParams()
        h, w = image.shape[:2]
        raw = self.forward(image, phrases)
        if self.family == "grounding-dino":
            candidates = decode_grounding_dino(raw["logits"], raw["boxes"], raw["input_ids"], self.delimiters,
                                               len(phrases), w, h)
        elif self.family == "omdet":
            candidates = decode_omdet(raw["logits"], raw["boxes"], w, h)
        else:
            candidates = decode_owl(raw["logits"], raw["boxes"], w, h, self.padded_square)
        return pick(candidates, phrases, params, self.box_threshold, self.text_threshold)

    def __repr__(self) -> str:
        return f"ZeroShotDetector({self.name!r}, family={self.family!r}, device={self.device!r})"
