"""A registry of model families, what ``auto`` stands for, and loading through a model store.

Like spandrel's ``ArchSupport`` / ``ModelLoader`` and transformers' Auto mappings: each
:class:`Family` says which specs it claims (a name, a hub id, a file), and how to load one (a lazy
``module:function`` reference, so nothing heavy is imported to ask). :func:`load` finds the family
for a spec and loads the model once per :class:`~autoinpaint.models.store.ModelStore` (handed in by
the CLI, the server, a batch worker; else the process default), keyed by (kind, spec, load-time
options): two requests that differ only in call-time values (prompt, seed, ``sam_select``) share one
model. :func:`resolve_auto` says what ``auto`` stands for, for every kind.

:data:`KNOWN` lists the named models that ``autoinpaint models list`` shows and ``auto`` chooses
from. This module imports no torch.
"""
from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import InputError, ModelMissingError

if TYPE_CHECKING:
    from .store import ModelStore

KINDS = ("segmenter", "inpainter", "detector", "lora")


@dataclass(frozen=True)
class Family:
    """One model family.

    kind: ``segmenter``, ``inpainter`` or ``detector``.
    claims: ``claims(spec) -> bool``, cheap (no heavy import, at most a file stat).
    loader: ``"module:function"``; the function takes ``(spec, **load_options)`` and returns the model.
        A loader that also takes ``store`` keeps what it loads in that store itself (:func:`load`).
    """

    name: str
    kind: str
    claims: Callable[[str], bool]
    loader: str

    def load(self, spec: str, **options) -> Any:
        return self._function()(spec, **options)

    def _function(self) -> Callable[..., Any]:
        module, _, function = self.loader.partition(":")
        return getattr(importlib.import_module(module), function)

    def accepted(self, options: dict) -> dict:
        """The ``options`` this family's loader takes (a family ignores the others' load options,
        e.g. a classical inpainter the diffusion dtype); None values mean "default" and are dropped."""
        params = inspect.signature(self._function()).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return {k: v for k, v in options.items() if v is not None and k != "store"}
        return {k: v for k, v in options.items() if k in params and v is not None and k != "store"}

    def takes_store(self) -> bool:
        """Whether the loader keeps its heavy part in the store itself (it has a ``store`` parameter)."""
        return "store" in inspect.signature(self._function()).parameters


def _is_file_with(suffixes: tuple[str, ...]) -> Callable[[str], bool]:
    def claims(spec: str) -> bool:
        return spec.lower().endswith(suffixes) and Path(os.path.expanduser(spec)).is_file()
    return claims


def _names(*names: str) -> Callable[[str], bool]:
    return lambda spec: spec.lower() in names


def _sam_claims(spec: str) -> bool:
    s = spec.lower()
    return (s == "sam" or (s.startswith("sam:") and s[4:] in ("vit_b", "vit_l", "vit_h"))
            or s.endswith((".pth", ".pt")) or (s.endswith(".safetensors") and os.path.isfile(spec)))


def _hf_sam_claims(spec: str) -> bool:
    from .hub import is_hub_id

    return spec.lower() in HF_SAM_ALIASES or is_hub_id(spec) or os.path.isdir(os.path.expanduser(spec))


def _diffusion_claims(spec: str) -> bool:
    from .hub import is_hub_id

    s = os.path.expanduser(spec)
    return (spec.lower() in DIFFUSION_ALIASES or is_hub_id(spec)
            or (os.path.isdir(s) and os.path.isfile(os.path.join(s, "model_index.json")))
            or s.lower().endswith((".safetensors", ".ckpt", ".pt", ".pth", ".bin")))


# spandrel's LaMa detection keys (IOPaint's TorchScript / spandrel layout, LaMa's Lightning checkpoints)
LAMA_KEYS = ("model.model.1.bn_l.running_mean", "generator.model.1.bn_l.running_mean")
LAMA_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")


def _lama_claims(spec: str) -> bool:
    """``lama``, or a LaMa weights file told apart by its tensor names: a safetensors header, the
    pickle of a ``torch.save`` file, or the FFC module names of a TorchScript archive (no weights read)."""
    from .weight_files import pickle_bytes, safetensors_keys, torch_archive_kind

    if spec.lower() == "lama":
        return True
    path = os.path.expanduser(spec)
    if not (path.lower().endswith(LAMA_SUFFIXES) and os.path.isfile(path)):
        return False
    if path.lower().endswith(".safetensors"):
        return bool(set(LAMA_KEYS) & (safetensors_keys(path) or set()))
    kind = torch_archive_kind(path)
    if kind is None:
        return False
    data = pickle_bytes(path)
    if kind == "torchscript":  # attributes are pickled one level at a time: FFC's names
        return b"convl2l" in data and b"bn_l" in data
    return any(key.encode() in data for key in LAMA_KEYS)


def _detector_claims(spec: str) -> bool:
    from .hub import is_hub_id

    s = os.path.expanduser(spec)
    return spec.lower() in DETECTOR_ALIASES or is_hub_id(spec) or os.path.exists(s)


CLASSICAL_INPAINTERS = ("hybrid", "patchmatch", "telea", "ns")
DIFFUSION_ALIASES = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "sd-1.5": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "sd2": "stabilityai/stable-diffusion-2-inpainting",
    "sdxl": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    "kandinsky22": "kandinsky-community/kandinsky-2-2-decoder-inpaint",
}
DETECTOR_ALIASES = {
    "omdet-turbo": "omlab/omdet-turbo-swin-tiny-hf",
    "grounding-dino-tiny": "IDEA-Research/grounding-dino-tiny",
    "mm-grounding-dino-tiny": "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det",
    "grounding-dino-base": "IDEA-Research/grounding-dino-base",
    "owlv2": "google/owlv2-base-patch16-ensemble",
}

# transformers SAM checkpoints (autoinpaint.segment.hf_sam): name -> hub id
HF_SAM_ALIASES = {
    "sam2.1-tiny": "facebook/sam2.1-hiera-tiny",
    "sam2.1-small": "facebook/sam2.1-hiera-small",
    "sam2.1-base-plus": "facebook/sam2.1-hiera-base-plus",
    "sam2.1-large": "facebook/sam2.1-hiera-large",
    "sam-vit-base": "facebook/sam-vit-base",
    "sam-vit-large": "facebook/sam-vit-large",
    "sam-vit-huge": "facebook/sam-vit-huge",
    "slimsam": "Zigeng/SlimSAM-uniform-77",
    "sam-hq-vit-base": "syscv-community/sam-hq-vit-base",
    "sam-hq-vit-large": "syscv-community/sam-hq-vit-large",
    "sam-hq-vit-huge": "syscv-community/sam-hq-vit-huge",
    "edgetam": "yonigozlan/EdgeTAM-hf",  # the checkpoint transformers' EdgeTAM docs name
}

# First claim wins: specific names before hub ids and paths.
FAMILIES: list[Family] = [
    Family("classical", "segmenter", _names("classical", "grabcut"),
           "autoinpaint.segment.classical:load_classical_segmenter"),
    Family("sam", "segmenter", _sam_claims, "autoinpaint.segment.sam:load_sam_segmenter"),
    Family("hf-sam", "segmenter", _hf_sam_claims, "autoinpaint.segment.hf_sam:load_hf_sam_segmenter"),
    Family("classical", "inpainter", _names(*CLASSICAL_INPAINTERS),
           "autoinpaint.inpaint.classical:load_classical_inpainter"),
    Family("lama", "inpainter", _lama_claims, "autoinpaint.inpaint.lama:load_lama_inpainter"),
    Family("diffusion", "inpainter", _diffusion_claims,
           "autoinpaint.inpaint.diffusion:load_diffusion_inpainter"),
    Family("zero-shot", "detector", _detector_claims, "autoinpaint.detect.zero_shot:load_zero_shot_detector"),
]


def family_for(kind: str, spec: str) -> Family:
    """The family that claims ``spec`` for ``kind``; InputError naming the choices otherwise."""
    for family in FAMILIES:
        if family.kind == kind and family.claims(spec):
            return family
    if spec.startswith((".", "~", "/")) or os.sep in spec.replace("/", "") or spec.count("/") > 1:
        raise ModelMissingError(f"{kind} {spec!r}: no such file or folder")
    names = sorted({f.name for f in FAMILIES if f.kind == kind})
    raise InputError(f"unknown {kind} {spec!r}: use auto, a known name (autoinpaint models list), a hub id "
                     f"or a path ({', '.join(names)})")


# ------------------------------------------------------------------------------------------ loading
def load(kind: str, spec: str, store: "ModelStore | None" = None, **options) -> Any:
    """The model ``spec`` of ``kind`` with load-time ``options``, loaded once per ``store`` (the process
    default when None; :mod:`autoinpaint.models.store`). ``auto`` (or an empty spec) is first resolved by
    :func:`resolve_auto`, and the choice is logged.

    The store holds each model once, under one key: (kind, family, spec, load options) for most
    families; a family whose loader takes ``store`` (LaMa, diffusion) keeps its heavy part there under
    its own key (weights, device, precision, ...) and returns a light wrapper made per call, so that
    wrappers differing in call-time-like options (``lama_max_side``) share one network."""
    from ..log import notice
    from .store import resolve_store

    if spec in (None, "", "auto"):
        spec, why = resolve_auto(kind, options.get("device"))
        notice(f"{kind} auto -> {why}")
    family = family_for(kind, spec)
    options = family.accepted(options)
    store = resolve_store(store)
    if family.takes_store():
        return family.load(spec, store=store, **options)
    key = (kind, family.name, spec, tuple(sorted((k, repr(v)) for k, v in options.items())))
    return store.get(key, lambda: family.load(spec, **options))


# ------------------------------------------------------------------------------------------ auto
DEFAULT_CLASSICAL = "hybrid"  # best PSNR σ2 with detail as sharp as the surroundings in benchmarks/bench_foundation.py
DEFAULT_DETECTOR = "omdet-turbo"  # see the README, "Say what to remove": which detector and why
AUTO_REMOVE_FAMILIES = ("lama",)  # learned removal models ``auto`` may choose for ``remove``, best first
AUTO_KINDS = ("segmenter", "detector", "inpainter")


def resolve_auto(kind: str, device: str | None = "auto", mode: str = "remove") -> tuple[str, str]:
    """(spec, why) that ``auto`` stands for now, for ``kind``:

    - ``segmenter``: the first present model of :func:`known` (in the CPU order when ``device``
      resolves to the CPU and a CPU-first model is present), else the classical segmenter;
    - ``detector``: the first present known detector, else :data:`DEFAULT_DETECTOR` (whose loading
      then says how to get it);
    - ``inpainter``: for ``mode`` ``remove`` the first present known model of a family in
      :data:`AUTO_REMOVE_FAMILIES` (LaMa when its weights are in the checkpoint folders), else (and for
      other modes) :data:`DEFAULT_CLASSICAL` (no weights needed).
    """
    if kind == "segmenter":
        cpu = False
        if any(m.location() for m in known("segmenter") if m.name in CPU_FIRST):
            from .device import resolve_device

            cpu = resolve_device(device) == "cpu"
        for model in known("segmenter", cpu=cpu):
            where = model.location()
            if where is not None:
                spec = where if model.source.startswith("file:") else model.name
                return spec, f"{model.name} ({model.description}; {where})"
        return "classical", ("classical (OpenCV GrabCut; no SAM model found - "
                             "get one with: autoinpaint models download vit_b)")
    if kind == "detector":
        for model in known("detector"):
            where = model.location()
            if where is not None:
                return model.name, f"{model.name} ({where})"
        return DEFAULT_DETECTOR, f"{DEFAULT_DETECTOR} (the default; not on this machine yet)"
    if kind == "inpainter":
        if mode == "remove":
            for model in known("inpainter"):
                where = model.family in AUTO_REMOVE_FAMILIES and model.location()
                if where:
                    return model.name, f"{model.name} ({model.description}; {where})"
        return DEFAULT_CLASSICAL, (f"{DEFAULT_CLASSICAL} (classical, needs no weights; for learned removal get "
                                   "LaMa with: autoinpaint models download lama)")
    raise InputError(f"auto is not defined for {kind!r}: use one of {', '.join(AUTO_KINDS)}")


# ------------------------------------------------------------------------------------------ known models
@dataclass(frozen=True)
class KnownModel:
    """A named model that ``models list`` shows and ``auto`` may pick.

    source: a hub id (``hub:owner/name``) or a checkpoint name of :mod:`autoinpaint.models.checkpoints`
        (``file:vit_b``). size: bytes of the weights (published), for the listing. marker: the file of
        a hub snapshot that says it is there (a LoRA repo has no config.json).
    """

    name: str
    kind: str
    family: str
    source: str
    size: int
    description: str = ""
    marker: str = "config.json"

    def location(self) -> str | None:
        """Where it is on this machine (a path), or None when it is not present."""
        scheme, _, ref = self.source.partition(":")
        if scheme == "file":
            from .checkpoints import find_weights

            found = find_weights(ref)
            return str(found) if found else None
        if scheme == "hub":
            from .hub import snapshot_folder

            found = snapshot_folder(ref, self.marker)
            return str(found) if found else None
        return None


# Hub rows (transformers SAM, autoinpaint.segment.hf_sam): size = parameters of the published
# architecture x 4 bytes (fp32 safetensors, counted from the transformers model classes with the
# published configs), which matches the hub's listed model.safetensors sizes where we found them
# (sam-vit-base 375 MB, sam-hq-vit-base 379 MB, SlimSAM-uniform-77 38.9 MB, SAM 2 Hiera-T 156 MB);
# "approximate" in a description means no listing was found. The order is `auto`'s preference on
# CUDA/MPS; on the CPU the CPU_FIRST models come first. See the README ("SAM 2.1 and HF SAM",
# "EdgeTAM") for the measured CPU times and published quality behind it.
KNOWN: list[KnownModel] = [
    KnownModel("sam2.1-tiny", "segmenter", "hf-sam", "hub:facebook/sam2.1-hiera-tiny", 155_885_320,
               "SAM 2.1 Hiera-T (transformers), 38.9M parameters"),
    KnownModel("sam2.1-small", "segmenter", "hf-sam", "hub:facebook/sam2.1-hiera-small", 184_276_744,
               "SAM 2.1 Hiera-S (transformers), 46M parameters, size approximate"),
    KnownModel("sam2.1-base-plus", "segmenter", "hf-sam", "hub:facebook/sam2.1-hiera-base-plus", 323_436_040,
               "SAM 2.1 Hiera-B+ (transformers), 80.8M parameters, size approximate"),
    KnownModel("edgetam", "segmenter", "hf-sam", "hub:yonigozlan/EdgeTAM-hf", 55_649_224,
               "EdgeTAM (SAM 2 decoder on a RepViT-M1 encoder, transformers + timm), 9.1M parameters for "
               "images, size approximate (the video checkpoint, 13.9M); `auto`'s first choice on the CPU"),
    KnownModel("vit_b", "segmenter", "sam", "file:vit_b", 375_042_383,
               "SAM ViT-B (segment-anything .pth), 91M parameters"),
    KnownModel("sam-vit-base", "segmenter", "hf-sam", "hub:facebook/sam-vit-base", 374_942_912,
               "SAM ViT-B (transformers), 94M parameters"),
    KnownModel("sam-hq-vit-base", "segmenter", "hf-sam", "hub:syscv-community/sam-hq-vit-base", 379_227_328,
               "SAM-HQ ViT-B (transformers), 95M parameters"),
    KnownModel("slimsam", "segmenter", "hf-sam", "hub:Zigeng/SlimSAM-uniform-77", 38_895_136,
               "SlimSAM-77 (SAM ViT-B pruned, transformers), 9.7M parameters"),
    KnownModel("sam2.1-large", "segmenter", "hf-sam", "hub:facebook/sam2.1-hiera-large", 897_821_896,
               "SAM 2.1 Hiera-L (transformers), 224M parameters, size approximate"),
    KnownModel("vit_l", "segmenter", "sam", "file:vit_l", 1_249_524_607, "SAM ViT-L (.pth), 308M parameters"),
    KnownModel("sam-vit-large", "segmenter", "hf-sam", "hub:facebook/sam-vit-large", 1_249_372_352,
               "SAM ViT-L (transformers), 312M parameters, size approximate"),
    KnownModel("sam-hq-vit-large", "segmenter", "hf-sam", "hub:syscv-community/sam-hq-vit-large", 1_254_705_344,
               "SAM-HQ ViT-L (transformers), 314M parameters, size approximate"),
    KnownModel("vit_h", "segmenter", "sam", "file:vit_h", 2_564_550_879, "SAM ViT-H (.pth), 636M parameters"),
    KnownModel("sam-vit-huge", "segmenter", "hf-sam", "hub:facebook/sam-vit-huge", 2_564_363_456,
               "SAM ViT-H (transformers), 641M parameters, size approximate"),
    KnownModel("sam-hq-vit-huge", "segmenter", "hf-sam", "hub:syscv-community/sam-hq-vit-huge", 2_570_745_024,
               "SAM-HQ ViT-H (transformers), 643M parameters, size approximate"),
    KnownModel("lama", "inpainter", "lama", "file:lama", 205_669_692,
               "LaMa big-lama (spandrel), 51M parameters: learned object removal, `remove` default when present"),
    # detectors: `auto` takes the first present; OmDet-Turbo first for its CPU time (README "Say what to remove:
    # --text": measured with benchmarks/bench_fast_text.py), Grounding DINO tiny next (the old default)
    KnownModel("omdet-turbo", "detector", "zero-shot", "hub:omlab/omdet-turbo-swin-tiny-hf", 461_627_224,
               "OmDet-Turbo Swin-T (--text, fast), 115M parameters, size approximate"),
    KnownModel("grounding-dino-tiny", "detector", "zero-shot", "hub:IDEA-Research/grounding-dino-tiny",
               689_000_000, "Grounding DINO Swin-T (--text), 172M parameters"),
    KnownModel("mm-grounding-dino-tiny", "detector", "zero-shot",
               "hub:openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det", 689_002_512,
               "MM Grounding DINO Swin-T (--text, accurate), 172M parameters, size approximate"),
    KnownModel("grounding-dino-base", "detector", "zero-shot", "hub:IDEA-Research/grounding-dino-base",
               933_000_000, "Grounding DINO Swin-B (--text), 232M parameters"),
    KnownModel("owlv2", "detector", "zero-shot", "hub:google/owlv2-base-patch16-ensemble",
               620_000_000, "OWLv2 ViT-B/16 ensemble (--text), 155M parameters"),
    # few-step LoRAs (replace --fast, autoinpaint.inpaint.lora); sizes as the hub lists them (135 MB, 394 MB)
    KnownModel("lcm-lora-sdv1-5", "lora", "lcm-lora", "hub:latent-consistency/lcm-lora-sdv1-5", 135_000_000,
               "LCM-LoRA for SD 1.5 (replace --fast: 4 steps, no guidance), size as listed",
               marker="pytorch_lora_weights.safetensors"),
    KnownModel("lcm-lora-sdxl", "lora", "lcm-lora", "hub:latent-consistency/lcm-lora-sdxl", 394_000_000,
               "LCM-LoRA for SDXL (replace --fast: 4 steps, no guidance), size as listed",
               marker="pytorch_lora_weights.safetensors"),
]


CPU_FIRST = ("edgetam",)  # `auto` on the CPU: these first (0.23x SAM 2.1 tiny's encoder time; README)


def known(kind: str | None = None, cpu: bool = False) -> list[KnownModel]:
    """The known models of ``kind`` (all when None), in preference order for ``auto``; ``cpu``: the
    order on a CPU, where :data:`CPU_FIRST` come first (on CUDA/MPS the encoder's time matters less
    than its published quality)."""
    models = [m for m in KNOWN if kind is None or m.kind == kind]
    if cpu:
        models.sort(key=lambda m: m.name not in CPU_FIRST)
    return models
