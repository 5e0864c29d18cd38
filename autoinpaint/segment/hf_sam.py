"""SAM 2.1, SAM and SAM-HQ through transformers, behind the :class:`~.base.Segmenter` interface.

One implementation for every Hugging Face SAM checkpoint (``Sam2Model``, ``SamModel``,
``SamHQModel``): the image encoder runs once per image (:meth:`HFSamSegmenter.embed`, cached in
memory and on disk by :mod:`.embedding_cache`), each click runs only the prompt encoder and mask
decoder (:meth:`HFSamSegmenter.predict`), with the prompt handling every SAM family shares
(:func:`.prompts.run_prompts`). The families differ only in what the encoder hands the decoder
(:data:`FAMILIES`): SAM 1 one feature map, SAM-HQ also an early ViT feature map, SAM 2 two more
high-resolution maps; and in how the image is resized (SAM 1 pads the longest side to a square,
SAM 2 stretches to it).

Models come from :mod:`autoinpaint.models.hub` (a name of :data:`ALIASES`, a hub id from the local Hugging
Face cache, or a ``save_pretrained`` folder) and load from safetensors only. torch and transformers
are imported when a model is loaded, not before.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelMissingError
from ..log import logger, notice
from ..models import hub
from ..models.device import decoder_threads, resolve_device
from ..models.device import resolve_precision as _resolve_precision
from ..models.embedding_cache import CachedEncoder, Embedding, EmbeddingCache, image_key
from ..models.registry import HF_SAM_ALIASES as ALIASES
from ..selection import Selection
from .base import BaseSegmenter, ImageSideInputs, SegmentParams, SegmentResult
from .prompts import pad_points, run_prompts, scale_coords
from .sam import checkpoint_fingerprint
from .upscale import upscale_masks


@dataclass(frozen=True)
class SamFamily:
    """What differs between the SAM families that transformers implements.

    name: short name used in segmenter names (``sam2``, ``sam``, ``sam-hq``).
    model_types: ``config.json`` ``model_type`` values of the family (published SAM 2.1
        checkpoints are ``sam2_video``; their image part loads as ``Sam2Model``).
    processor: transformers image-processor class.
    pads: the encoder input is the image resized to its longest side and padded to a square
        (SAM 1, SAM-HQ), rather than stretched to the square (SAM 2, EdgeTAM).
    embedding: the names of the encoder outputs the decoder takes, in ``get_image_embeddings``'
        order (SAM 2 and EdgeTAM: two high-resolution maps, then the embedding; SAM-HQ: the
        embedding and an early ViT map).
    """

    name: str
    model_types: tuple[str, ...]
    processor: str
    pads: bool
    embedding: tuple[str, ...] = ("features",)

    @property
    def multiscale(self) -> bool:
        """SAM 2-style decoder: high-resolution maps, logits fed back clamped."""
        return "high_res_0" in self.embedding


_SAM2_MAPS = ("high_res_0", "high_res_1", "features")
# Families whose image encoder runs on ONNX Runtime with --runtime auto|onnx on the CPU (fp32): only where
# it measured >= 1.3x faster than PyTorch here (benchmarks/bench_fast.py; README "ONNX Runtime"): EdgeTAM's
# RepViT (ONNX Runtime folds its many BatchNorms into the convolutions). Not SAM 2.1's Hiera nor SAM's ViT.
ONNX_ENCODERS = ("edgetam",)
FAMILIES = (
    SamFamily("sam2", ("sam2", "sam2_video"), "Sam2ImageProcessor", pads=False, embedding=_SAM2_MAPS),
    # EdgeTAM: SAM 2's prompt encoder and mask decoder on a RepViT-M1 image encoder (timm)
    SamFamily("edgetam", ("edgetam", "edgetam_video"), "Sam2ImageProcessor", pads=False, embedding=_SAM2_MAPS),
    SamFamily("sam-hq", ("sam_hq",), "SamImageProcessor", pads=True, embedding=("features", "hq_features")),
    SamFamily("sam", ("sam",), "SamImageProcessor", pads=True),
)


def family_of(config: dict, where: str) -> SamFamily:
    """The :class:`SamFamily` of a ``config.json``; ModelMissingError for any other model."""
    model_type = str(config.get("model_type", ""))
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    raise ModelMissingError(f"{where} is not a SAM model (config.json model_type {model_type!r}; expected one "
                            f"of {', '.join(t for f in FAMILIES for t in f.model_types)})")


def load_hf_sam_segmenter(spec: str, device: str = "auto", precision: str = "auto",
                          cache: bool = True, runtime: str = "auto") -> "HFSamSegmenter":
    """An :class:`HFSamSegmenter` for ``spec``: a name of :data:`ALIASES` (``sam2.1-tiny``,
    ``sam-vit-base``, ``slimsam``, ``sam-hq-vit-base``, ``edgetam``, ...), a hub id, or a
    ``save_pretrained`` folder. ``runtime``: the prompt decoder's (:mod:`.onnx_decoder`).

    A hub model must be in the local Hugging Face cache (``AUTOINPAINT_ALLOW_DOWNLOAD=1`` lets it be
    downloaded, ``HF_HUB_OFFLINE`` forbids that); otherwise ModelMissingError (exit 3) with the
    ``hf download`` command. A folder whose weights are pickles is refused (exit 3)."""
    source = hub.resolve(spec, ALIASES, marker="config.json", what="SAM model", flag="--segmenter")
    options = {"device": device, "precision": precision, "cache": cache, "runtime": runtime}
    if source.kind == "file":
        raise InputError(f"{source.location}: a transformers SAM model is a folder (save_pretrained), "
                         "not a single file; a segment-anything checkpoint ends in .pth")
    if source.kind == "folder":
        return HFSamSegmenter(source.location, **options)
    folder = hub.snapshot_folder(source.location)
    if folder is None:
        notice(f"downloading {source.location} (allowed by AUTOINPAINT_ALLOW_DOWNLOAD)")
        folder = hub.download(source.location)
    name = spec.lower() if spec.lower() in ALIASES else source.location
    try:
        return HFSamSegmenter(folder, name=name, **options)
    except ModelMissingError as exc:  # e.g. only the config was fetched
        raise ModelMissingError(f"{exc}; {hub.fetch_hint(source.location, '--segmenter')}") from None


def folder_fingerprint(folder: Path) -> str:
    """The identity of a model folder for the embedding cache: its configs, and for each safetensors
    file the content hash the Hugging Face cache names its blob by, else size, modification time
    and the first and last MiB (:func:`.sam.checkpoint_fingerprint`)."""
    digest = hashlib.sha256()
    for name in ("config.json", "preprocessor_config.json"):
        if (folder / name).is_file():
            digest.update(name.encode() + (folder / name).read_bytes())
    for path in sorted(folder.rglob("*.safetensors")):
        real = path.resolve()
        digest.update(path.relative_to(folder).as_posix().encode())
        if re.fullmatch(r"[0-9a-f]{64}", real.name) and real.parent.name == "blobs":
            digest.update(real.name.encode())
        else:
            digest.update(f"{real.stat().st_mtime_ns}|{checkpoint_fingerprint(real)}".encode())
    return digest.hexdigest()[:32]


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' loading reports and progress bars only when notices are shown."""
    import logging

    from transformers.utils import logging as tlog

    quiet = not logger.isEnabledFor(logging.INFO)
    verbosity = tlog.get_verbosity()
    tlog.set_verbosity_error()  # unused video-memory weights of SAM 2.1 checkpoints are expected
    if quiet:
        tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(verbosity)
        if quiet:
            tlog.enable_progress_bar()


class HFSamSegmenter(ImageSideInputs, CachedEncoder, BaseSegmenter):
    """A transformers SAM model (SAM 2.x, SAM, SAM-HQ) as a segmenter.

    Arguments:
      folder (str or Path): a ``save_pretrained`` folder (``config.json`` and ``*.safetensors``;
        ``preprocessor_config.json`` if any) or a snapshot of the Hugging Face cache.
      name (str): what :attr:`name` reports (default: ``FAMILY:FOLDER``).
      device (str): ``auto``, ``cpu``, ``cuda`` or ``mps``.
      precision (str): ``auto``, ``fp32``, ``bf16`` or ``fp16``: autocast dtype of the image
        encoder (:func:`autoinpaint.models.device.resolve_precision`); the prompt encoder and mask
        decoder always run in fp32.
      cache (bool): also keep embeddings on disk (the in-process LRU is always on).
      runtime (str): ``auto``, ``torch`` or ``onnx``: where the prompt decoder runs
        (:mod:`.onnx_decoder`; ``auto`` = ONNX Runtime on the CPU when installed).

    ``embed(image)`` returns an :class:`~.embedding_cache.Embedding` whose tensors are the
    family's encoder outputs in fp32 (``features`` 1×256×64×64 for every family; SAM 2 and EdgeTAM add
    ``high_res_0`` 1×32×256×256 and ``high_res_1`` 1×64×128×128, SAM-HQ ``hq_features``
    1×32×256×256 (its decoder's HQ features, computed once per image from the ViT's early features:
    :func:`.fast_decoder.hq_features`), for the published 1024-pixel models).
    """

    def __init__(self, folder: str | Path, name: str | None = None, device: str = "auto",
                 precision: str = "auto", cache: bool = True, runtime: str = "auto") -> None:
        from .onnx_decoder import OnnxEncoder, PromptDecoder, example_prompts

        self.folder = Path(folder)
        hub.require_safe_weights(self.folder, what="SAM model")
        try:
            config = json.loads((self.folder / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelMissingError(f"cannot read {self.folder / 'config.json'}: {exc}") from None
        self.family = family_of(config, str(self.folder))
        self.name = name or f"{self.family.name}:{self.folder}"
        self.device = resolve_device(device)
        self.precision = _resolve_precision(precision, self.device, remember=cache, cuda="bf16", mps="fp32")
        self.cache = EmbeddingCache(disk=cache)
        self.fingerprint = folder_fingerprint(self.folder)
        self.encoder_runs = 0
        self._lock = threading.Lock()
        self.model = self._load_model()
        self.image_size = int(self.model.config.prompt_encoder_config.image_size)
        self.processor = self._load_processor()
        mask_side = 4 * int(self.model.config.prompt_encoder_config.image_size
                            // self.model.config.prompt_encoder_config.patch_size)
        self.decoder = PromptDecoder(f"hf-{self.family.name}-{self.fingerprint}", self._decoder_graph,
                                     lambda v: {**self._example_embedding(v), **example_prompts(v, self.image_size,
                                                                                                mask_side)},
                                     runtime, self.device)
        self.onnx_encoder = None
        if self.decoder.runtime == "onnx" and self.family.name in ONNX_ENCODERS and self.precision == "fp32":
            self.onnx_encoder = OnnxEncoder(f"hf-{self.family.name}-{self.fingerprint}", self._encoder_module,
                                            list(self.family.embedding), forced=self.decoder.requested == "onnx")

    # -- loading ------------------------------------------------------------------------------
    def _load_model(self):
        import torch
        from transformers import AutoModelForMaskGeneration

        try:
            with _quiet_transformers():
                model, info = AutoModelForMaskGeneration.from_pretrained(
                    str(self.folder), local_files_only=True, use_safetensors=True, dtype=torch.float32,
                    output_loading_info=True)
        except ImportError as exc:  # EdgeTAM's image encoder is a timm model
            raise ModelMissingError(f"the {self.family.name} model in {self.folder} needs a missing package "
                                    f"({str(exc).splitlines()[0][:160]}): pip install timm") from None
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelMissingError(f"cannot load the SAM model in {self.folder}: {first}") from None
        # transformers would fill missing or misshapen weights randomly: a silently wrong mask
        bad = sorted(info.get("missing_keys") or []) + [str(k) for k in info.get("mismatched_keys") or []]
        if bad:
            raise ModelMissingError(f"the SAM model in {self.folder} lacks weights or has weights of another "
                                    f"shape ({len(bad)}: {', '.join(bad[:3])}); it is incomplete or not this "
                                    "architecture")
        return model.eval().to(self.device)

    def _load_processor(self):
        """The folder's image processor (``preprocessor_config.json``), else the family's defaults
        at the model's input size."""
        import transformers

        cls = getattr(transformers, self.family.processor)
        if (self.folder / "preprocessor_config.json").is_file():
            with _quiet_transformers():
                return cls.from_pretrained(str(self.folder), local_files_only=True)
        side = self.image_size
        if self.family.pads:
            return cls(size={"longest_edge": side}, pad_size={"height": side, "width": side})
        return cls(size={"height": side, "width": side})

    # -- the image encoder ----------------------------------------------------------------------
    def _autocast(self):
        from ..models.device import autocast

        return autocast(self.device, self.precision)

    def embedding_key(self, image: np.ndarray) -> str:
        """Cache key: image content, model fingerprint (weights and configs), precision and (when it
        runs there) ONNX Runtime for the encoder; SAM-HQ's embedding holds its HQ features."""
        extra = ("onnx-encoder",) if self.onnx_encoder is not None else ()
        extra += ("hq-features",) if self.family.name == "sam-hq" else ()
        return image_key(image, "hf-sam", self.fingerprint, self.precision, *extra)

    def _encode(self, image: np.ndarray) -> Embedding:
        import torch

        if not image.flags.writeable:  # torch warns on read-only arrays (e.g. np.asarray of a PIL image)
            image = image.copy()
        inputs = self.processor(images=image, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device)
        if "reshaped_input_sizes" in inputs:
            input_size = tuple(int(v) for v in inputs["reshaped_input_sizes"][0])
        else:
            input_size = tuple(pixels.shape[-2:])
        fast = self.onnx_encoder.run(pixels.cpu().numpy()) if self.onnx_encoder is not None else None
        if fast is not None:
            tensors = {k: torch.from_numpy(v).contiguous() for k, v in fast.items()}
            return Embedding(tensors, tuple(image.shape[:2]), input_size)
        # one intra-op thread when the cores are busy: 1.15x faster for SAM 2.1 tiny's encoder at load ~4-10
        # here (benchmarks/bench_sam.py); all threads otherwise
        with self._autocast(), torch.inference_mode(), decoder_threads(self.device):
            out = self.model.get_image_embeddings(pixels)
        if self.family.multiscale:
            tensors = {"features": out[-1], "high_res_0": out[0], "high_res_1": out[1]}
        elif self.family.name == "sam-hq":
            from . import fast_decoder

            with torch.inference_mode(), decoder_threads(self.device):
                features = out[0].float()
                tensors = {"features": features,
                           "hq_features": fast_decoder.hq_features(self.model.mask_decoder, features, out[1][0].float())}
        else:
            tensors = {"features": out}
        tensors = {k: v.to(torch.float32).cpu().contiguous() for k, v in tensors.items()}
        return Embedding(tensors, tuple(image.shape[:2]), input_size)

    # -- prompts → mask -----------------------------------------------------------------------
    def predict(self, embedding: Embedding, selection: Selection,
                params: SegmentParams | None = None) -> SegmentResult:
        """Mask of the object(s) that ``selection`` (pixel coordinates) points at, with the model's
        predicted IoU and the stability score of the kept masks (the lowest over the prompts)."""
        params = params or SegmentParams()
        covered = tuple(n / self.image_size for n in embedding.input_size)  # SAM 1 pads to the square

        def decode(points, labels, boxes, multimask, mask_input, whole):
            return self._decode(embedding, points, labels, boxes, multimask, mask_input, whole)

        return run_prompts(selection, params, decode, lambda logits: self._upscale(embedding, logits), covered)

    def _decode(self, emb: Embedding, points: list[np.ndarray], labels: list[np.ndarray],
                boxes: np.ndarray | None, multimask: bool, mask_input: np.ndarray | None, whole: bool = True):
        """One decoder call for B prompts, each in its own batch row (so each may carry a mask
        input): returns low-resolution logits B×C×h×w and predicted IoU B×C as numpy (SAM 1 families: computed
        where the photo shows them, unless ``whole``)."""
        from .onnx_decoder import Variant

        prompts: dict[str, np.ndarray] = {}
        if max(len(c) for c in points):
            coords, labs = pad_points(points, labels)
            prompts["coords"] = scale_coords(coords, emb.original_size, emb.input_size)
            prompts["labels"] = labs.astype(np.int64)
        if boxes is not None:
            prompts["boxes"] = scale_coords(boxes, emb.original_size, emb.input_size)
        if mask_input is not None:
            prompts["mask_input"] = np.ascontiguousarray(mask_input, dtype=np.float32)
        variant = Variant("coords" in prompts, boxes is not None, mask_input is not None, bool(multimask))
        return self._decode_logits(emb, variant, prompts, whole)

    @property
    def _embedding_names(self) -> tuple[str, ...]:
        return self.family.embedding

    @property
    def _square(self) -> int | None:
        return self.image_size if self.family.pads else None

    def _example_embedding(self, variant) -> dict:
        """Zero encoder outputs of this model's shapes (batch 1), as ``variant``'s decoder graph takes
        them (:meth:`_decoder_inputs`), for an ONNX export."""
        import torch

        side = self.image_size
        with torch.inference_mode():
            out = self.model.get_image_embeddings(torch.zeros(1, 3, side, side, device=self.device))
        if self.family.multiscale:
            out = {"high_res_0": out[0], "high_res_1": out[1], "features": out[-1]}
        elif self.family.name == "sam-hq":  # HQ features: an eighth of the channels at 4× the grid
            channels, h, w = out[0].shape[1:]
            out = {"features": out[0], "hq_features": torch.zeros(1, channels // 8, 4 * h, 4 * w)}
        else:
            out = {"features": out}
        return self._export_inputs(variant, {k: np.zeros(tuple(v.shape), np.float32) for k, v in out.items()})

    def _encoder_module(self):
        """The image encoder as a module for an ONNX export: pixel values → the family's embedding
        tensors (in :attr:`SamFamily.embedding` order)."""
        import torch

        side = self.image_size
        return _encoder_class()(self.model).eval(), {"pixel_values": torch.zeros(1, 3, side, side)}

    def _decoder_graph(self, variant):
        """The torch module of one prompt kind (:class:`.onnx_decoder.Variant`): the model's own
        forward on the cached embedding, as every runtime runs it."""
        return _graph_class()(self.model, self.family, variant)

    def _upscale(self, emb: Embedding, logits: np.ndarray) -> np.ndarray:
        """Kept low-resolution logits B×h×w → the union of their masks at the image's H×W, as the
        family's processor post-processes (SAM: to the padded square, crop, to the image size;
        SAM 2: straight to the image size), computed only where the mask can be."""
        return upscale_masks(logits, tuple(emb.original_size), tuple(emb.input_size),
                             self.image_size if self.family.pads else None)

    def __repr__(self) -> str:
        return (f"HFSamSegmenter({str(self.folder)!r}, family={self.family.name!r}, device={self.device!r}, "
                f"precision={self.precision!r})")


@functools.lru_cache(maxsize=1)
def _encoder_class():
    import torch

    class HFEncoderGraph(torch.nn.Module):
        """``get_image_embeddings`` of a multiscale (SAM 2-style) model:
        1×3×S×S → (high_res_0, high_res_1, features)."""

        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return tuple(self.model.get_image_embeddings(pixel_values))

    return HFEncoderGraph


@functools.lru_cache(maxsize=1)
def _graph_class():
    """The torch module class (defined on first use: torch is imported only when a model loads)."""
    import torch

    from . import fast_decoder

    class HFDecoderGraph(torch.nn.Module):
        """Prompt encoder + mask decoder of a transformers SAM model for one prompt kind: the
        image embedding (batch 1) and the prompts (input-frame pixels) → (logits B×C×h×w, IoU B×C)."""

        def __init__(self, model, family: SamFamily, variant) -> None:
            super().__init__()
            fast_decoder.install(model)  # the same function with less work per click (SAM-HQ: given HQ features)
            self.model, self.family, self.variant = model, family, variant
            # SAM and SAM-HQ without a mask input take the image as fast_decoder.image_side_tensors gives it
            self.takes_image_side = not variant.mask and isinstance(
                model.mask_decoder, (fast_decoder.GivenHQFeatures, fast_decoder.TransformersTokenLayoutDecoder))

        def forward(self, features=None, coords=None, labels=None, boxes=None, mask_input=None, high_res_0=None,
                    high_res_1=None, hq_features=None, image_tokens=None, layer0_keys=None, layer0_values=None,
                    layer0_queries=None, shown_tokens=None):
            b = coords.shape[0] if coords is not None else boxes.shape[0]
            kwargs = {"multimask_output": self.variant.multimask}
            if coords is not None:
                kwargs["input_points"], kwargs["input_labels"] = coords[:, None], labels[:, None]
            if boxes is not None:
                kwargs["input_boxes"] = boxes[:, None]
            if image_tokens is not None:  # the image as fast_decoder.image_side_tensors gives it
                side = dict(zip(fast_decoder.IMAGE_SIDE, (image_tokens, layer0_keys, layer0_values, layer0_queries)))
                side[fast_decoder.SHOWN] = shown_tokens
                return self._from_image_side(side, kwargs, hq_features)
            if mask_input is not None:  # as SAM2ImagePredictor feeds logits back
                kwargs["input_masks"] = mask_input.clamp(-32.0, 32.0) if self.family.multiscale else mask_input
            # fast_decoder.GivenHQFeatures takes the image once, broadcast; SamModel checks that the
            # image and prompt batch sizes match
            if hq_features is None:
                features = features.expand(b, *features.shape[1:])
            if self.family.multiscale:
                # the high-resolution maps stay one image: the decoder adds them by broadcasting (an expand
                # copies 3 M floats per click in the exported graph)
                kwargs["image_embeddings"] = [high_res_0, high_res_1, features]
            else:
                kwargs["image_embeddings"] = features
            if hq_features is not None:  # read by fast_decoder.GivenHQFeatures
                kwargs["intermediate_embeddings"] = [hq_features]
            out = self.model(**kwargs)
            return out.pred_masks[:, 0], out.iou_scores[:, 0]

        def _from_image_side(self, side: dict, kwargs: dict, hq_features):
            """The model's forward without a mask input (prompt encoder, then mask decoder) with the image
            given as its first layer's inputs instead of the embedding."""
            m = self.model
            sparse, _ = m.prompt_encoder(input_points=kwargs.get("input_points"),
                                         input_labels=kwargs.get("input_labels"),
                                         input_boxes=kwargs.get("input_boxes"), input_masks=None)
            extra = ({"hq_token_only": False, "intermediate_embeddings": [hq_features]} if hq_features is not None
                     else {})
            masks, iou = m.mask_decoder(image_embeddings=None,
                                        image_positional_embeddings=m.get_image_wide_positional_embeddings(),
                                        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=None,
                                        multimask_output=self.variant.multimask, image_side=side, **extra)
            return masks[:, 0], iou[:, 0]

    return HFDecoderGraph


