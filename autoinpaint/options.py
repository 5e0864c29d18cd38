"""The options schema: every option of an edit, declared once (help, default, bounds, parsing).

Fields grouped by pipeline stage (:data:`STAGES`; each stage's pydantic model is
:meth:`Stage.pydantic_model`, the flat one :func:`all_options`); each field says whether it is a
**load-time** value (``when="load"``: it picks or places a model, like diffusers' ``from_pretrained``
arguments; changing it loads another model) or a **call-time** value (``when="call"``: a value of one
run, like diffusers' ``__call__`` arguments). Everything else is derived from these fields:

* :class:`autoinpaint.api.EditOptions` (the flat bag the pipeline reads): its fields and defaults, and the
  validation of every value it is built with (:func:`validate`);
* the click options of every command (:mod:`autoinpaint.cli.options`: type, bounds as click ranges, choices,
  default, help, and the parsing of ``PX|WxH``-like values);
* the HTTP request models (:mod:`autoinpaint.server.schemas`: :func:`request_fields`, same names and bounds);
* recipe rows (:mod:`autoinpaint.batch.recipe`: :func:`parse`, so ``"1024x768"`` means what it means on the
  command line).

A field (:class:`Opt`) carries ``when``, ``stage``, and where relevant ``http`` (the request group
that accepts it: ``detect``, ``mask``, ``segment``, ``inpaint``, ``background``; absent = the server's own
setting, not a request's), ``metavar`` and ``show_default`` (for ``--help``). Nothing heavy is imported here:
the CLI's ``--help`` builds its options from these declarations, and pydantic is imported (and each stage's
model built, :meth:`Stage.pydantic_model`) only when a value is first validated.
"""
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Union

from .errors import InputError
from .inpaint import DEFAULT_PADDING_MASK_CROP  # no torch: constants and interfaces
from .inpaint.lama import DEFAULT_MAX_SIDE as DEFAULT_LAMA_MAX_SIDE

# the keys of autoinpaint.inpaint.diffusion_loading.SCHEDULERS (not imported here: --help stays light)
SCHEDULER_CHOICES = ("default", "ddim", "pndm", "euler", "euler-a", "dpm++", "dpm++-karras", "unipc", "lms",
                     "dpm++-sde", "heun", "ddpm", "deis", "lcm", "tcd")
DEFAULT_MODEL = "sd15"          # the diffusion model of replace / fill / a generated backdrop
MAX_DETECTIONS = 64             # --max-objects: detections kept in all (a bound for scripts too)
MAX_LORAS = 8
# SAM refinement passes: each feeds the kept mask's low-resolution logits back as mask_input, one decoder
# run per pass and per click; SAM was trained with two such mask-only rounds, and the logits settle
# within a few, so 5 bounds the cost of a click without cutting anything a model does with more.
MAX_SAM_REFINE = 5


@dataclass
class Opt:
    """One field of the schema, as declared (no pydantic here: ``--help`` reads these and never validates).
    :func:`model` turns a stage's fields into a pydantic model when a value is first checked."""

    default: Any
    description: str
    when: str = "call"
    http: str | None = None
    metavar: str | None = None
    show_default: bool | str = True
    bounds: dict = field(default_factory=dict)       # ge, le, gt, lt, max_length, min_length
    items: dict = field(default_factory=dict)        # bounds of each item of a tuple field (lora)
    parse: Callable[[Any], Any] | None = None        # text form → value, before the type check
    name: str = ""
    annotation: Any = None
    stage: str = ""

    @property
    def json_schema_extra(self) -> dict:
        return {"when": self.when, "http": self.http, "metavar": self.metavar, "show_default": self.show_default}


def option(default: Any, help: str, *, when: Literal["load", "call"] = "call", http: str | None = None,
           metavar: str | None = None, show_default: bool | str = True, items: dict | None = None,
           parse: Callable[[Any], Any] | None = None, **bounds: Any) -> Any:
    """A schema field: ``default``, ``help`` (the ``--help`` text), ``when`` (load or call time),
    ``http`` (the request group that accepts it), ``metavar``/``show_default`` for ``--help``, pydantic
    ``bounds`` (``ge``, ``le``, ``gt``, ``lt``, ``max_length``, ``min_length``; ``items``: each item's), and
    ``parse``: the value's text form (``"1024x768"``, ``"off"``), run before the type check."""
    return Opt(default, help, when, http, metavar, show_default, bounds, items or {}, parse)


# ------------------------------------------------------------------------------------------- parsers
# Text forms a person types (the command line, a CSV cell); each raises InputError (a ValueError) on
# nonsense, so the CLI, HTTP and recipes report the same problem.

def _padding(value: Any) -> Any:
    """``64`` | ``"64"`` | ``"off"``/``"none"``/``"full"`` (the whole image) → px or None."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "off", "full"):
            return None
        try:
            return int(text)
        except ValueError:
            raise InputError(f"expected pixels or 'off', got {value!r}") from None
    return value


def _resolution(value: Any) -> Any:
    """``768`` | ``"768"`` | ``"1024x768"`` | ``"auto"`` → 768, ``"1024x768"`` or None (a square is an int)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(f"expected PX or WxH, got {value!r}")
    from .inpaint.diffusion import parse_resolution  # no torch: geometry only

    w, h = parse_resolution(value)
    return w if w == h else f"{w}x{h}"


def _color(value: Any) -> Any:
    """A colour the backdrop understands (``white``, a name, ``#RRGGBB``, ``transparent``), kept as text."""
    if value is None:
        return None
    from .cutout.backdrop import parse_color  # numpy only

    parse_color(str(value))
    return str(value)


def _canvas(value: Any) -> Any:
    """``square`` or ``WxH``, kept as text."""
    if value is None:
        return None
    from .cutout.framing import parse_canvas

    parse_canvas(str(value))
    return str(value)


def _loras(value: Any) -> Any:
    """One ``ID|PATH[:SCALE]`` or several (a list, or text separated by ``;``) → a tuple of specs."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(";")
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    return value  # pydantic says what is wrong with it


# how a person types a value (the command line, a CSV cell); a JSON request says it as a number / a list
TEXT_FORMS_FIELDS = ("padding_mask_crop", "lora")


# ---------------------------------------------------------------------------------------------- stages
class Stage:
    """A stage's options: class attributes made with :func:`option`, typed by annotations. ``pydantic_model()`` is
    the stage's pydantic model (built on first use: ``--help`` never imports pydantic)."""

    fields: dict[str, Opt] = {}

    def __init_subclass__(cls) -> None:
        hints = typing.get_type_hints(cls)
        cls.fields = {}
        for name in cls.__dict__.get("__annotations__", {}):
            opt = cls.__dict__[name]
            opt.name, opt.annotation = name, hints[name]
            cls.fields[name] = opt

    @classmethod
    def pydantic_model(cls):
        return _model(cls.__name__, tuple(cls.fields))


class SelectionOptions(Stage):
    """What the selection means (its prompts themselves are a :class:`~autoinpaint.selection.Selection`)."""

    invert: bool = option(False, "Act on everything but the selection (its complement): e.g. remove all but the "
                                 "clicked object.")


class DetectOptions(Stage):
    """Text phrases → boxes (:mod:`autoinpaint.detect`)."""

    detector: str = option(
        "auto", "Model for --text (auto = the first one present here in that order, else omdet-turbo).",
        when="load", max_length=300,
        metavar="auto|omdet-turbo|grounding-dino-tiny|mm-grounding-dino-tiny|grounding-dino-base|owlv2|ID|PATH")
    box_threshold: Optional[float] = option(
        None, "--text: keep boxes scoring at least F (default 0.30 OmDet-Turbo and Grounding DINO, 0.10 OWLv2).",
        http="detect", metavar="F", ge=0, le=1)
    text_threshold: Optional[float] = option(
        None, "--text, Grounding DINO: the phrase's own words must score at least F (default 0.25).",
        http="detect", metavar="F", ge=0, le=1)
    pick: Literal["all", "best", "largest"] = option(
        "all", "--text: every detection, or the best / largest one of each phrase.", http="detect")
    max_objects: Optional[int] = option(
        None, f"--text: keep at most N detections in all (highest scores first; 1-{MAX_DETECTIONS}).",
        http="detect", metavar="N", ge=1, le=MAX_DETECTIONS)


class SegmentOptions(Stage):
    """Clicks/boxes → object mask (:mod:`autoinpaint.segment`); ``device`` places every model."""

    segmenter: str = option(
        "auto", "auto = the first SAM model present in the order of `autoinpaint models list` (on the CPU "
                "EdgeTAM first), else the classical OpenCV segmenter. NAME/HUB_ID/folder = a transformers SAM "
                "model.", when="load", max_length=300,
        metavar="auto|classical|sam|sam:vit_b|sam2.1-tiny|edgetam|NAME|HUB_ID|PATH")
    device: Literal["auto", "cpu", "cuda", "mps"] = option("auto", "Where models run.", when="load")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option("auto", "SAM encoder precision.", when="load")
    runtime: Literal["auto", "torch", "onnx"] = option(
        "auto", "Where the SAM prompt decoder runs (each click): auto = ONNX Runtime on the CPU when onnxruntime "
                "is installed (exported once per model into the cache), PyTorch on CUDA/MPS.", when="load")
    cache: bool = option(True, "Use the SAM embedding cache (--no-cache: do not read or write it).", when="load")
    sam_select: Literal["iou", "largest", "smallest"] = option(
        "iou", "Which of SAM's candidate masks to keep: highest predicted IoU, largest or smallest.",
        http="segment")
    sam_refine: int = option(
        0, f"Extra SAM passes (0-{MAX_SAM_REFINE}) feeding the mask's low-res logits back as mask_input.",
        http="segment", metavar="N", ge=0, le=MAX_SAM_REFINE)


class MaskOptions(Stage):
    """Object mask → alpha (:mod:`autoinpaint.mask.refine`), the cast shadow (:mod:`autoinpaint.shadow`) and
    what a mask in doubt does (:mod:`autoinpaint.mask.assess`). Pixels."""

    dilate: int = option(8, "Grow the mask by PX pixels (covers halos and shadows at the edge).",
                         http="mask", metavar="PX", ge=0, le=500)
    erode: int = option(0, "Shrink the object mask by PX pixels first.", http="mask", metavar="PX", ge=0, le=500)
    feather: int = option(4, "Soft edge: alpha ramps from 1 to 0 over the outer PX pixels.",
                          http="mask", metavar="PX", ge=0, le=500)
    blur: float = option(0.0, "diffusers' mask_processor.blur(N): Gaussian blur of the mask.",
                         http="mask", metavar="N", ge=0, le=100)
    fill_holes: bool = option(True, "Fill holes inside the selected object.", http="mask")
    min_area: int = option(0, "Drop mask islands smaller than PX pixels.", http="mask", metavar="PX", ge=0)
    shadow: bool = option(
        False, "Take the object's cast shadow too: the darker region keeping the ground's colour that touches "
               "the object joins the mask (soft penumbra), and is relit, not painted over. --json adds "
               "shadow_pixels and shadow_darkening.", http="mask")
    shadow_grow: int = option(
        0, "--shadow: move the shadow's outline out by PX pixels (negative: in), where the one found stops short of "
           "the shadow (a dark rim is left) or runs past it (a bright rim).", http="mask", metavar="PX", ge=-50, le=50)
    shadow_strength: float = option(
        1.0, "--shadow: relight by F times the darkening found (over 1: a shadow still faintly there is lifted; "
             "under 1: ground relit too bright is toned down).", http="mask", metavar="F", ge=0.5, le=1.5)
    on_doubt: Literal["write", "skip", "fail"] = option(
        "write", "When the mask is in doubt (a 'Warning:' line says why): write the result anyway, skip "
                 "(write nothing, exit code 4; batch: record the row), or fail (exit code 2, write nothing).")


class InpaintOptions(Stage):
    """Mask → filled image (:mod:`autoinpaint.inpaint`): which inpainter, on which crop."""

    inpainter: str = option(
        "auto", "auto = lama when its weights are present (autoinpaint models download lama), else hybrid "
                "(PatchMatch detail on smooth membrane colours; classical, no weights); PATH = LaMa weights, "
                "NAME/PATH = a diffusion model.", when="load", http="inpaint", max_length=200,
        metavar="auto|lama|hybrid|patchmatch|telea|ns|NAME|PATH")
    padding_mask_crop: Optional[int] = option(
        DEFAULT_PADDING_MASK_CROP, "Inpaint only a crop around the mask with PX pixels of context; 'off' = "
                                   "whole image.", http="inpaint", metavar="PX|off", ge=0, le=4096, parse=_padding)
    lama_max_side: int = option(
        DEFAULT_LAMA_MAX_SIDE, "LaMa: a crop whose long side is over PX runs downscaled to PX; the fill is "
                               "upscaled back into the hole only.", when="load", metavar="PX", ge=16)
    trust_checkpoint: bool = option(
        False, "LaMa: load weights that need TorchScript or unpickling (which can run code) even when their "
               "SHA-256 is not one autoinpaint publishes.", when="load")


class DiffusionOptions(Stage):
    """The diffusion model (``replace``, ``fill``, a generated backdrop, or ``remove`` with a diffusion
    ``--inpainter``): load-time = ``from_pretrained`` and what is fused into it; call-time = ``__call__``."""

    # sd15, as the command line always said (its batch rows' hashes stay); an HTTP request's None = the server's
    model: Optional[str] = option(
        DEFAULT_MODEL, "Diffusion model: an alias, a hub id (from the local cache), a diffusers folder or a "
                       ".safetensors/.ckpt file.", when="load", http="inpaint", max_length=200,
        metavar="sd15|sdxl|sd2|kandinsky22|ID|PATH")
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = option(
        "auto", "Diffusion weights' precision (auto: fp16 on CUDA/MPS; on the CPU bf16 when it has bf16 "
                "instructions (AMX/AVX512-BF16, measured 1.3-2x faster), else fp32). LaMa: fp32 or bf16, never "
                "fp16 (its FFTs do not support it).", when="load")
    offload: bool = option(False, "Model CPU offload (GPU only; also chosen automatically when free VRAM is "
                                  "short).", when="load")
    scheduler: Optional[Literal[SCHEDULER_CHOICES]] = option(
        None, "Noise scheduler (default: the model's own; --fast: lcm). lcm and tcd are few-step schedulers for "
              "distilled models and LoRAs.", when="load", http="inpaint")
    resolution: Union[int, str, None] = option(
        None, "Working resolution of the model (default: its native one, 512 SD 1.5, 1024 SDXL; 64-4096).",
        when="load", metavar="PX|WxH", parse=_resolution)
    lora: tuple[str, ...] = option(
        (), "Fuse a LoRA into the diffusion model (repeatable): a hub id from the local cache, a .safetensors "
            "file or a folder; SCALE weights it (default 1).", when="load", http="inpaint",
        metavar="ID|PATH[:SCALE]", max_length=MAX_LORAS, items={"min_length": 1, "max_length": 300},
        show_default=False, parse=_loras)
    fast: bool = option(
        False, "Few-step replace: the model family's LCM-LoRA (latent-consistency/lcm-lora-sdv1-5 or -sdxl, from "
               "the local cache) with the lcm scheduler, 4 steps and guidance 1 (one UNet pass per step); "
               "--steps/--guidance/--scheduler still override.", when="load", http="inpaint")
    prompt: Optional[str] = option(
        None, "What to paint in the mask (replace/fill: required). remove with a diffusion --inpainter: the "
              "background prompt (default: an 'empty background' prompt). background: the scene to generate.",
        http="inpaint", metavar="TEXT", max_length=2000)
    negative_prompt: Optional[str] = option(
        None, "What to avoid (default: 'bad anatomy, deformed, ugly, blurry, ...'; remove: object-ish words "
              "such as 'object, person, animal, text').", http="inpaint", metavar="TEXT", max_length=2000)
    steps: Optional[int] = option(None, "Denoising steps (default 30; --fast: 4).", http="inpaint", metavar="N",
                                  ge=1, le=500)
    guidance: Optional[float] = option(None, "Classifier-free guidance scale (default 7.5; --fast: 1, i.e. none).",
                                       http="inpaint", metavar="F", ge=0, le=50)
    strength: Optional[float] = option(
        None, "How much of the masked area is re-noised, 0..1 (default 1.0; SDXL max 0.99; remove: 0.6 over a "
              "classical pre-fill).", http="inpaint", metavar="F", gt=0, le=1)
    seed: Optional[int] = option(
        None, "Random seed: the same seed gives the same result (default: random, reported by --json).",
        http="inpaint", metavar="N", ge=0, lt=2**63)


class BackgroundOptions(Stage):
    """``background`` (:mod:`autoinpaint.cutout`): what the kept object is put on, its matted edge, its
    framing and its contact shadow."""

    color: Optional[str] = option(
        None, "The new background: a colour, or transparent (PNG, WebP, TIFF or AVIF output). Default white.",
        http="background", metavar="white|NAME|#RRGGBB|transparent", max_length=40, parse=_color)
    backdrop_blur: float = option(
        0.0, "Keep the photo's own background, blurred by a Gaussian of PX pixels (0 = not blurred).",
        http="background", metavar="PX", ge=0, le=500, show_default=False)
    matte: int = option(8, "Alpha matting in a band of PX pixels on each side of the mask's edge (hair, fur, "
                           "soft edges); 0 = a hard edge.", http="background", metavar="PX", ge=0, le=200)
    canvas: Optional[str] = option(
        None, "Put the object on a canvas of this shape (square: sized to the object; WxH: pixels). New "
              "canvas area takes the background.", http="background", metavar="square|WxH", max_length=24,
        parse=_canvas)
    margin: Optional[float] = option(
        None, "Margin on each side, in % of the canvas (0-45; default 5 when framing): the object's box fills "
              "the rest on its longer side.", http="background", metavar="PCT", ge=0, le=45)
    align: Literal["center", "bottom"] = option("center", "Centre the object, or stand it on the bottom margin.",
                                                http="background")
    min_side: Optional[int] = option(
        None, "The canvas's shorter side is at least PX: the object is scaled up (at most 2x; more is refused).",
        http="background", metavar="PX", ge=1, le=100_000)
    contact_shadow: Literal["none", "soft"] = option(
        "none", "A soft contact shadow under the object, made from its alpha.", http="background")
    shadow_opacity: float = option(0.5, "How dark the contact shadow is at its darkest, 0..1.",
                                   http="background", metavar="F", ge=0, le=1)


class OutputOptions(Stage):
    """Reading and writing (:mod:`autoinpaint.imaging.io_steps`): the pixel bound, overwriting, notices."""

    max_pixels: Optional[int] = option(
        None, "Refuse images over N pixels (default 100 million, or $AUTOINPAINT_MAX_PIXELS).",
        metavar="N", ge=1)
    overwrite: bool = option(False, "Allow the output to replace the input file.")
    quiet: bool = option(False, "No notices or progress on stderr.")


STAGES: dict[str, type[Stage]] = {
    "selection": SelectionOptions, "detect": DetectOptions, "segment": SegmentOptions, "mask": MaskOptions,
    "inpaint": InpaintOptions, "diffusion": DiffusionOptions, "background": BackgroundOptions,
    "output": OutputOptions,
}


# name → Opt (annotation, default, description, bounds, parser), stage by stage
FIELDS: dict[str, Opt] = {name: opt for model in STAGES.values() for name, opt in model.fields.items()}
for _stage, _model_cls in STAGES.items():
    for _opt in _model_cls.fields.values():
        _opt.stage = _stage
PARSERS = {name: f.parse for name, f in FIELDS.items() if f.parse}


# ------------------------------------------------------------------------------------------ reading it
def extra(name: str) -> dict:
    """The field's ``when``, ``http``, ``metavar``, ``show_default`` and ``stage``."""
    return {**FIELDS[name].json_schema_extra, "stage": FIELDS[name].stage}


def load_time(name: str) -> bool:
    return FIELDS[name].when == "load"


def bounds(name: str) -> dict[str, Any]:
    """The field's numeric and length bounds: ``{"ge": 0, "le": 5}`` (only those it has)."""
    return dict(FIELDS[name].bounds)


def choices(name: str) -> tuple | None:
    """The allowed values of a ``Literal`` field (None for others)."""
    ann = FIELDS[name].annotation
    for arg in (ann, *typing.get_args(ann)):
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return None


def optional(name: str) -> bool:
    """Whether None is a value of the field (for most: 'the stage's own default')."""
    return type(None) in typing.get_args(FIELDS[name].annotation)


def defaults() -> dict[str, Any]:
    return {name: f.default for name, f in FIELDS.items()}


def http_names(group: str) -> tuple[str, ...]:
    """The fields a request group (``detect``, ``mask``, ``segment``, ``inpaint``, ``background``) takes."""
    return tuple(name for name, f in FIELDS.items() if f.http == group)


# ------------------------------------------------------------------------- pydantic, on first use
def pydantic_field(name: str, *, request: bool = False) -> tuple[Any, Any]:
    """``(annotation, FieldInfo)`` of a field for ``pydantic.create_model``: its bounds, parser and help.
    ``request``: as an HTTP request field (optional, ``None`` = the server's default; JSON has lists and
    null, so the text forms, lora ``"a; b"`` and padding ``"off"``, stay the text surfaces')."""
    from typing import Annotated

    from pydantic import BeforeValidator, Field

    f = FIELDS[name]
    ann, bounds = f.annotation, f.bounds
    if f.items:  # tuple[str, ...] with bounded items
        (item, _), = [typing.get_args(ann)]
        ann = tuple[Annotated[item, Field(**f.items)], ...]
    if optional(name) and bounds:  # the bounds are the value's: None stays None
        inner = [a for a in typing.get_args(ann) if a is not type(None)]
        ann, bounds = Optional[Annotated[Union[tuple(inner)], Field(**bounds)]], {}
    if f.parse and not (request and name in TEXT_FORMS_FIELDS):
        ann = Annotated[ann, BeforeValidator(f.parse)]
    if request:
        ann = Optional[ann]
    return ann, Field(default=None if request else f.default, description=f.description,
                      json_schema_extra=f.json_schema_extra, **bounds)


@functools.lru_cache(maxsize=None)
def _model(model_name: str, names: tuple[str, ...]):
    from pydantic import ConfigDict, create_model

    return create_model(model_name, __config__=ConfigDict(extra="forbid", frozen=True),
                        **{n: pydantic_field(n) for n in names})


def all_options():
    """Every stage's fields in one flat pydantic model: what :class:`~autoinpaint.api.EditOptions` is
    validated by."""
    return _model("AllOptions", tuple(FIELDS))


@functools.lru_cache(maxsize=None)
def _adapter(name: str):
    from pydantic import TypeAdapter

    ann, info = pydantic_field(name)
    from typing import Annotated

    return TypeAdapter(Annotated[ann, info])


def describe_error(exc, name: str | None = None) -> str:
    """A pydantic ValidationError as one line: ``sam_refine should be less than or equal to 5, got 7``."""
    parts = []
    for e in exc.errors(include_url=False):
        where = ".".join(str(x) for x in e["loc"] if x not in ("function-before", "function-after"))
        if name and not where.startswith(name):
            where = f"{name}{'.' + where if where else ''}"
        msg = e["msg"]
        if msg.startswith("Value error, "):  # a parser's own message, which names the value (and its --flag)
            msg = msg[len("Value error, "):]
            parts.append(msg if msg.startswith("--") else f"{where}: {msg}")
            continue
        if msg.startswith("Input should be "):
            msg = "should be " + msg[len("Input should be "):]
        got = repr(e["input"])
        parts.append(f"{where} {msg[:1].lower()}{msg[1:]}, got {got if len(got) <= 60 else got[:57] + '...'}")
    return "; ".join(parts)


def parse(name: str, value: Any) -> Any:
    """One option's value through its field (text forms parsed, bounds checked); InputError on nonsense."""
    from pydantic import ValidationError

    if name not in FIELDS:
        raise InputError(f"unknown option {name!r}")
    try:
        return _adapter(name).validate_python(value)
    except ValidationError as exc:
        raise InputError(describe_error(exc, name)) from None


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Every option at once (all fields, as :class:`~autoinpaint.api.EditOptions` holds them) → the
    validated values; InputError naming each bad one."""
    from pydantic import ValidationError

    try:
        return dict(all_options().model_validate(values))
    except ValidationError as exc:
        raise InputError(describe_error(exc)) from None


def request_fields(group: str) -> dict[str, tuple[Any, Any]]:
    """The fields of a request group, for ``pydantic.create_model`` (see :func:`pydantic_field`)."""
    return {name: pydantic_field(name, request=True) for name in http_names(group)}
