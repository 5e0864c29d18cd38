"""Segment Anything (SAM) segmenter: points, negative points and boxes → an object mask.

Checkpoints are read with ``torch.load(..., weights_only=True)`` (or safetensors), so a file with
pickled code is refused, and the architecture is inferred from the state-dict shapes, so ViT-B,
ViT-L, ViT-H and smaller variants load through one code path. Image embeddings are cached in
process and on disk (:mod:`.embedding_cache`); on a cache hit neither the image encoder nor the
full checkpoint is loaded. torch is imported only when a SAM segmenter is loaded.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelMissingError
from ..models.checkpoints import KNOWN, find_checkpoint, missing_error
from ..models.device import resolve_device
from ..models.device import resolve_precision as _resolve_precision
from ..models.embedding_cache import CachedEncoder, Embedding, EmbeddingCache, image_key
from ..selection import Selection
from .base import BaseSegmenter, ImageSideInputs, SegmentParams, SegmentResult
from .prompts import pad_points, run_prompts
from .upscale import upscale_masks

_HEADS = ("prompt_encoder.", "mask_decoder.")
SAM_CHECKPOINTS = ("vit_b", "vit_l", "vit_h")  # fastest first


def find_sam_checkpoint(name: str | None = None) -> Path | None:
    """Path of SAM checkpoint ``name`` (``vit_b``, ``vit_l``, ``vit_h``) or of the first one found
    (fastest first) in the checkpoint directories; None when there is none."""
    for candidate in [name] if name else list(SAM_CHECKPOINTS):
        found = find_checkpoint(candidate)
        if found is not None:
            return found
    return None


def load_sam_segmenter(spec: str = "sam", device: str = "auto", precision: str = "auto",
                       cache: bool = True, runtime: str = "auto") -> "SamSegmenter":
    """A :class:`SamSegmenter` for ``spec``: ``sam`` (first checkpoint found), ``sam:vit_b``,
    ``sam:vit_l``, ``sam:vit_h``, or a checkpoint path (``.pth``/``.pt``/``.safetensors``).

    Raises ModelMissingError (exit 3) when the checkpoint is absent or unusable, InputError for an
    unknown spec.
    """
    spec = str(spec)
    if spec == "sam":
        path = find_sam_checkpoint()
        if path is None:
            raise missing_error("no SAM checkpoint found")
    elif spec.startswith("sam:") and spec[4:] in SAM_CHECKPOINTS:
        path = find_sam_checkpoint(spec[4:])
        if path is None:
            raise missing_error(f"SAM checkpoint {KNOWN[spec[4:]].filename} not found", spec[4:])
    elif spec.endswith((".pth", ".pt", ".safetensors")) or os.path.sep in spec:
        path = Path(spec.removeprefix("sam:")).expanduser()
        if not path.is_file():
            raise ModelMissingError(f"SAM checkpoint {path} does not exist; get one with: "
                                    "autoinpaint models download vit_b")
    else:
        raise InputError(f"unknown segmenter {spec!r}: use auto, classical, sam, "
                         f"sam:vit_b, sam:vit_l, sam:vit_h or a .pth path")
    return SamSegmenter(path, device=device, precision=precision, cache=cache, runtime=runtime)


# -- checkpoint reading and architecture inference ---------------------------------------------

def checkpoint_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """A content fingerprint read in milliseconds: SHA-256 of the size, the first and the last MiB.

    For a torch zip checkpoint the last MiB holds the zip central directory, which lists the
    CRC-32 of every tensor record, so any change of weights changes the fingerprint.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest.update(str(size).encode())
        digest.update(f.read(chunk))
        f.seek(max(size - chunk, 0))
        digest.update(f.read(chunk))
    return digest.hexdigest()[:32]


def read_state_dict(path: Path) -> dict:
    """Tensors of a SAM checkpoint, safely: ``weights_only=True`` or safetensors.

    Raises ModelMissingError for pickled code, a truncated or unreadable file, or no tensors.
    """
    import torch

    path = Path(path)
    hint = "; get a good one with: autoinpaint models download vit_b"
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:  # legacy (non-zip) torch format cannot be memory-mapped
                if "mmap" not in str(exc):
                    raise
                state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelMissingError(f"refusing {path}: it contains pickled code, not only weights "
                                f"({first[:160]}){hint}") from None
    except Exception as exc:  # truncated zip, bad magic number, unreadable file, ...
        raise ModelMissingError(f"cannot read the checkpoint {path} (truncated or not a "
                                f"checkpoint: {str(exc).splitlines()[0][:160]}){hint}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelMissingError(f"{path} is not a SAM state dict{hint}")
    return state


def infer_config(state: dict, decoder_heads: int = 8) -> dict:
    """SAM architecture from state-dict shapes: encoder embed dim, depth, heads, window size,
    global attention blocks, patch and image size, MLP ratio; prompt embed dim, mask-input
    channels; decoder depth, MLP dim, attention downsampling, IoU head, mask outputs.

    The decoder transformer's head count leaves no trace in the shapes: ``decoder_heads``
    (8 in every published SAM). Raises ModelMissingError when the keys are not SAM's.
    """
    def shape(key: str) -> tuple[int, ...]:
        return tuple(state[key].shape)

    def count(prefix: str) -> int:
        return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})

    try:
        enc = "image_encoder."
        embed_dim, _, patch, _ = shape(enc + "patch_embed.proj.weight")
        grid = shape(enc + "pos_embed")[1]
        depth = count(enc + "blocks.")
        rel = [shape(f"{enc}blocks.{i}.attn.rel_pos_h")[0] for i in range(depth)]
        head_dim = shape(enc + "blocks.0.attn.rel_pos_h")[1]
        windows = {(r + 1) // 2 for r in rel if (r + 1) // 2 != grid}
        mask_chans = shape("prompt_encoder.mask_downscaling.3.weight")[0]
        prompt_dim = shape(enc + "neck.0.weight")[0]
        dec = "mask_decoder."
        internal = shape(dec + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight")[0]
        config = {
            "embed_dim": embed_dim, "depth": depth, "num_heads": embed_dim // head_dim,
            "patch_size": patch, "img_size": grid * patch,
            "mlp_ratio": shape(enc + "blocks.0.mlp.lin1.weight")[0] / embed_dim,
            "qkv_bias": enc + "blocks.0.attn.qkv.bias" in state,
            "window_size": windows.pop() if windows else 0,
            "global_attn_indexes": [i for i, r in enumerate(rel) if (r + 1) // 2 == grid],
            "prompt_embed_dim": prompt_dim, "mask_in_chans": mask_chans,
            "decoder_depth": count(dec + "transformer.layers."),
            "decoder_mlp_dim": shape(dec + "transformer.layers.0.mlp.lin1.weight")[0],
            "decoder_heads": decoder_heads,
            "attention_downsample_rate": prompt_dim // internal,
            "num_multimask_outputs": shape(dec + "mask_tokens.weight")[0] - 1,
            "iou_head_depth": count(dec + "iou_prediction_head.layers."),
            "iou_head_hidden_dim": shape(dec + "iou_prediction_head.layers.0.weight")[0],
        }
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as exc:
        raise ModelMissingError(f"not a SAM checkpoint (no {exc} of the expected shape); get one "
                                "with: autoinpaint models download vit_b") from None
    if windows or depth == 0:
        raise ModelMissingError("not a SAM checkpoint: inconsistent attention window sizes")
    return config


def arch_name(config: dict) -> str:
    """``vit_b``/``vit_l``/``vit_h`` for the published sizes, else e.g. ``vit_64x2``."""
    sizes = {(768, 12): "vit_b", (1024, 24): "vit_l", (1280, 32): "vit_h"}
    return sizes.get((config["embed_dim"], config["depth"]),
                     f"vit_{config['embed_dim']}x{config['depth']}")


def build_sam(config: dict, with_encoder: bool = True):
    """A ``segment_anything.modeling.Sam`` for ``config`` (from :func:`infer_config`), in eval
    mode; without the encoder a placeholder keeps ``img_size`` and refuses to run."""
    from functools import partial

    import torch
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)

    c = config
    grid = c["img_size"] // c["patch_size"]
    if with_encoder:
        encoder = ImageEncoderViT(
            img_size=c["img_size"], patch_size=c["patch_size"], embed_dim=c["embed_dim"],
            depth=c["depth"], num_heads=c["num_heads"], mlp_ratio=c["mlp_ratio"],
            out_chans=c["prompt_embed_dim"], qkv_bias=c["qkv_bias"],
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=c["window_size"], global_attn_indexes=tuple(c["global_attn_indexes"]))
    else:
        encoder = _encoder_placeholder(c["img_size"])
    sam = Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=c["prompt_embed_dim"], image_embedding_size=(grid, grid),
            input_image_size=(c["img_size"], c["img_size"]), mask_in_chans=c["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=c["num_multimask_outputs"],
            transformer=TwoWayTransformer(
                depth=c["decoder_depth"], embedding_dim=c["prompt_embed_dim"],
                mlp_dim=c["decoder_mlp_dim"], num_heads=c["decoder_heads"],
                attention_downsample_rate=c["attention_downsample_rate"]),
            transformer_dim=c["prompt_embed_dim"], iou_head_depth=c["iou_head_depth"],
            iou_head_hidden_dim=c["iou_head_hidden_dim"]),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


def _load_strict(module, state: dict, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelMissingError(f"{path} does not match the inferred SAM architecture "
                                f"({str(exc).splitlines()[0][:160]})") from None


def _encoder_placeholder(img_size: int):
    """Stands in for the image encoder on a cache hit: knows ``img_size``, never runs."""
    import torch

    class EncoderNotLoaded(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("the SAM image encoder is not loaded")

    placeholder = EncoderNotLoaded()
    placeholder.img_size = img_size
    return placeholder


# -- device and precision -------------------------------------------------------------------

def resolve_precision(precision: str, device: str, cache: bool = True) -> str:
    """SAM's encoder precision: ``auto`` → ``bf16`` on CUDA with bfloat16 support (else ``fp16``),
    ``fp32`` on MPS, and on the CPU the project's one rule (:func:`autoinpaint.models.device.resolve_precision`:
    ``bf16`` only where measured faster). An explicit ``fp32``/``bf16``/``fp16`` is kept (not fp16 on CPU)."""
    return _resolve_precision(precision, device, remember=cache, cuda="bf16", mps="fp32")


# -- the segmenter ------------------------------------------------------------------------------

class SamSegmenter(ImageSideInputs, CachedEncoder, BaseSegmenter):
    """Segment Anything behind the Segmenter interface: ``SamPredictor``'s two calls without its state.

    :meth:`embed` runs the image encoder once per image (or takes the embedding from the cache);
    :meth:`predict` runs only the prompt encoder and mask decoder on the embedding it is given (no
    state, no lock: threads may predict on different images at once). Points in one call are one
    prompt; several boxes are predicted in one decoder batch (one mask per box, each box together
    with the points and negative points inside it) and the masks are united. Points outside every
    box form one more prompt with all negative points (:func:`.prompts.run_prompts`, shared with
    the transformers families of :mod:`.hf_sam`).

    Arguments:
      checkpoint (str or Path): SAM checkpoint (``.pth`` state dict or ``.safetensors``).
      device (str): ``auto``, ``cpu``, ``cuda`` or ``mps``.
      precision (str): ``auto``, ``fp32``, ``bf16`` or ``fp16``: autocast dtype of the image
        encoder (the prompt encoder and mask decoder always run in fp32).
      cache (bool): use the on-disk embedding cache and checkpoint-head cache (the in-process
        LRU is always on).
      runtime (str): ``auto``, ``torch`` or ``onnx``: where the prompt decoder runs
        (:mod:`.onnx_decoder`; ``auto`` = ONNX Runtime on the CPU when installed).
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", precision: str = "auto",
                 cache: bool = True, runtime: str = "auto") -> None:
        from .onnx_decoder import PromptDecoder, example_prompts

        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise missing_error(f"SAM checkpoint {self.checkpoint} not found")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device, cache)
        self.cache = EmbeddingCache(disk=cache)
        self.fingerprint = checkpoint_fingerprint(self.checkpoint)
        self.encoder_runs = 0
        self._lock = threading.Lock()  # the image encoder runs one image at a time (prediction takes no lock)
        head = self.cache.get_head(self.fingerprint)
        if head is not None:
            self.config, tensors = head
            self.model = build_sam(self.config, with_encoder=False)
            for part in ("prompt_encoder", "mask_decoder"):
                _load_strict(getattr(self.model, part),
                             {k[len(part) + 1:]: v for k, v in tensors.items()
                              if k.startswith(part + ".")}, self.checkpoint)
            self.encoder_loaded = False
        else:
            state = read_state_dict(self.checkpoint)
            self.config = infer_config(state)
            self.model = build_sam(self.config)
            _load_strict(self.model, state, self.checkpoint)
            self.cache.put_head(self.fingerprint, self.config,
                                {k: v for k, v in state.items() if k.startswith(_HEADS)})
            self.encoder_loaded = True
        self.name = f"sam:{arch_name(self.config)}"
        self.model.to(self.device)
        from segment_anything.utils.transforms import ResizeLongestSide

        # stateless: coordinates map from an embedding's own original size (the encoder's input side)
        self.transform = ResizeLongestSide(self.config["img_size"])
        side, grid = self.config["img_size"], self.config["img_size"] // self.config["patch_size"]
        embedding = {"features": np.zeros((1, self.config["prompt_embed_dim"], grid, grid), np.float32)}
        # without ONNX Runtime's (Skip)LayerNorm fusions segment_anything's decoder graph runs 10-13 % faster here
        # (ViT-B, one click: 79.9 → 69.8 ms on 1 thread, 86.3 → 77.7 ms on 2, logits within 3e-7); the
        # transformers families' graphs gained nothing measurable, so they keep every fusion
        self.decoder = PromptDecoder(f"sam-{self.fingerprint}", self._decoder_graph,
                                     lambda v: {**self._export_inputs(v, embedding),
                                                **example_prompts(v, side, 4 * grid)},
                                     runtime, self.device, ("SkipLayerNormFusion", "LayerNormFusion"))

    def _ensure_encoder(self) -> None:
        """Load the image encoder from the full checkpoint (after a head-cache start)."""
        if self.encoder_loaded:
            return
        state = read_state_dict(self.checkpoint)
        encoder = build_sam(infer_config(state, self.config["decoder_heads"])).image_encoder
        _load_strict(encoder, {k[len("image_encoder."):]: v for k, v in state.items()
                               if k.startswith("image_encoder.")}, self.checkpoint)
        self.model.image_encoder = encoder.to(self.device)
        self.encoder_loaded = True

    def _autocast(self):
        from ..models.device import autocast

        return autocast(self.device, self.precision)

    def embedding_key(self, image: np.ndarray) -> str:
        """Cache key: image content, checkpoint fingerprint, precision and encoder size."""
        return image_key(image, self.fingerprint, self.precision, self.config["img_size"])

    def _encode(self, image: np.ndarray) -> Embedding:
        """``SamPredictor.set_image`` without the predictor: resize the longest side to the encoder's
        input (``ResizeLongestSide``), normalise and pad (``Sam.preprocess``), run the image encoder."""
        import torch

        self._ensure_encoder()
        resized = self.transform.apply_image(image)
        with self._autocast(), torch.inference_mode():
            pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
            features = self.model.image_encoder(self.model.preprocess(pixels))
        return Embedding({"features": features.to(torch.float32).cpu()}, tuple(image.shape[:2]),
                         tuple(resized.shape[:2]))

    def predict(self, embedding: Embedding, selection: Selection,
                params: SegmentParams | None = None) -> SegmentResult:
        """Mask of the object(s) that ``selection`` (pixel coordinates) points at, with SAM's
        predicted IoU and stability score of the kept masks (the lowest over the prompts).

        Stateless: everything a prediction needs is in ``embedding`` and the arguments, so threads
        may predict on different embeddings at once with one loaded model."""
        params = params or SegmentParams()
        covered = tuple(n / self.config["img_size"] for n in embedding.input_size)  # the rest is padding

        def decode(points, labels, boxes, multimask, mask_input, whole):
            return self._decode(embedding, points, labels, boxes, multimask, mask_input, whole)

        return run_prompts(selection, params, decode, lambda logits: self._upscale(embedding, logits), covered)

    def _decode(self, emb: Embedding, points: list[np.ndarray], labels: list[np.ndarray],
                boxes: np.ndarray | None, multimask: bool, mask_input: np.ndarray | None = None,
                whole: bool = True):
        """``SamPredictor.predict_torch`` without the upscaling and without the predictor's state: the
        prompt encoder and mask decoder on B prompts, on the embedding ``emb``. ``points[i]`` (n_i×2
        pixels) and ``labels[i]`` (1 = object, 0 = background) are padded with label -1 (no point) to a
        common length; ``boxes`` is B×4 (x0, y0, x1, y1) pixels or None; ``mask_input`` B×1×h×w
        low-resolution logits or None. Coordinates map to the encoder's input frame as
        ``SamPredictor`` maps them (``ResizeLongestSide``). Returns low-resolution logits B×C×h×w and
        predicted IoU B×C as numpy, computed where the photo shows them unless ``whole``."""
        from .onnx_decoder import Variant

        size = tuple(emb.original_size)
        prompts: dict[str, np.ndarray] = {}
        if max(len(c) for c in points):
            coords, labs = pad_points(points, labels)
            prompts["coords"] = self.transform.apply_coords(coords, size).astype(np.float32)
            prompts["labels"] = labs.astype(np.int64)
        if boxes is not None:
            prompts["boxes"] = self.transform.apply_boxes(boxes, size).astype(np.float32)
        if mask_input is not None:
            prompts["mask_input"] = np.ascontiguousarray(mask_input, dtype=np.float32)
        variant = Variant("coords" in prompts, boxes is not None, mask_input is not None, bool(multimask))
        return self._decode_logits(emb, variant, prompts, whole)

    @property
    def _square(self) -> int:
        return int(self.config["img_size"])

    def _decoder_graph(self, variant):
        """The torch module of one prompt kind (:class:`.onnx_decoder.Variant`), as every runtime runs it."""
        return _graph_class()(self.model, variant)

    def _upscale(self, emb: Embedding, logits: np.ndarray) -> np.ndarray:
        """Kept low-resolution logits B×h×w → the union of their masks at ``emb``'s image size
        (``Sam.postprocess_masks`` > 0, computed only where the mask can be)."""
        return upscale_masks(logits, tuple(emb.original_size), tuple(emb.input_size), self.config["img_size"])

    def __repr__(self) -> str:
        return (f"SamSegmenter({str(self.checkpoint)!r}, device={self.device!r}, "
                f"precision={self.precision!r})")


@functools.lru_cache(maxsize=1)
def _graph_class():
    """The torch module class (defined on first use: torch is imported only when a model loads)."""
    import torch

    from . import fast_decoder

    class SamDecoderGraph(torch.nn.Module):
        """``predict_torch`` without the upscaling, for one prompt kind: the image embedding
        1×C×h×w and the prompts (``coords`` B×N×2 and ``labels`` B×N with -1 = no point, ``boxes``
        B×4, ``mask_input`` B×1×4h×4w; input-frame pixels) → (logits B×C×4h×4w, IoU B×C)."""

        def __init__(self, model, variant) -> None:
            super().__init__()
            fast_decoder.install(model)  # the same function with less work per click
            self.prompt_encoder, self.mask_decoder, self.variant = model.prompt_encoder, model.mask_decoder, variant
            # without a mask input the image comes as fast_decoder.image_side_tensors gives it
            self.takes_image_side = (not variant.mask
                                     and isinstance(model.mask_decoder, fast_decoder.TokenLayoutDecoder))
            # depends on the weights only: once per model, not per click (a constant of the graph)
            self.register_buffer("dense_pe", model.prompt_encoder.get_dense_pe().detach().clone(), persistent=False)

        def forward(self, features=None, coords=None, labels=None, boxes=None, mask_input=None, image_tokens=None,
                    layer0_keys=None, layer0_values=None, layer0_queries=None, shown_tokens=None):
            points = None if coords is None else (coords, labels)
            sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
            if image_tokens is not None:  # fast_decoder.TokenLayoutDecoder, no mask input
                side = dict(zip(fast_decoder.IMAGE_SIDE, (image_tokens, layer0_keys, layer0_values, layer0_queries)))
                side[fast_decoder.SHOWN] = shown_tokens
                return self.mask_decoder(image_embeddings=None, image_pe=self.dense_pe, sparse_prompt_embeddings=sparse,
                                         dense_prompt_embeddings=None, multimask_output=self.variant.multimask,
                                         image_side=side)
            if mask_input is None:  # one embedding at every position: unexpanded, the decoder broadcasts it
                dense = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
            return self.mask_decoder(image_embeddings=features, image_pe=self.dense_pe,
                                     sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                     multimask_output=self.variant.multimask)

    return SamDecoderGraph
