"""Typed request bodies of the JSON API. Field names are :class:`~autoinpaint.api.EditOptions` and
:class:`~autoinpaint.selection.Selection` names; an unknown key is a 400 (``extra="forbid"``).
Coordinates are full-resolution pixels of the EXIF-oriented image."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..selection import MAX_TEXTS

Point = tuple[float, float]
Box = tuple[float, float, float, float]
MAX_PROMPTS = 64  # clicks/boxes per request: plenty for a person, a bound for a script

_NonNeg = Field(default=None, ge=0)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenRequest(Strict):
    """``POST /api/images`` as JSON (FOLDER mode): a photo of the folder by relative path."""

    path: str = Field(min_length=1, max_length=4096)


class DetectFields(Strict):
    """Call-time values of a text detection (``DetectParams``); ``None`` = the server's default."""

    box_threshold: Optional[float] = Field(default=None, ge=0, le=1)
    text_threshold: Optional[float] = Field(default=None, ge=0, le=1)
    pick: Optional[Literal["all", "best", "largest"]] = None
    max_objects: Optional[int] = Field(default=None, ge=1, le=MAX_PROMPTS)

    DETECT: ClassVar[tuple[str, ...]] = ("box_threshold", "text_threshold", "pick", "max_objects")

    def options(self, names: tuple[str, ...]) -> dict:
        """The ``EditOptions`` overrides among ``names`` that the request sets."""
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


class DetectRequest(DetectFields):
    """``POST /api/images/{id}/detect``: phrases to find; the answer proposes boxes, selects nothing."""

    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS)


class SelectionFields(DetectFields):
    """What to select (``Selection``: clicks, boxes, drawn regions, phrases a detector turns into
    boxes) and how to turn it into the alpha (the mask stage); ``None`` = the server's default."""

    points: list[Point] = Field(default_factory=list, max_length=MAX_PROMPTS)
    negatives: list[Point] = Field(default_factory=list, max_length=MAX_PROMPTS)
    boxes: list[Box] = Field(default_factory=list, max_length=MAX_PROMPTS)
    rects: list[Box] = Field(default_factory=list, max_length=MAX_PROMPTS)
    ellipses: list[Box] = Field(default_factory=list, max_length=MAX_PROMPTS)
    texts: list[str] = Field(default_factory=list, max_length=MAX_TEXTS)
    # mask stage (px)
    dilate: Optional[int] = Field(default=None, ge=0, le=500)
    erode: Optional[int] = Field(default=None, ge=0, le=500)
    feather: Optional[int] = Field(default=None, ge=0, le=500)
    blur: Optional[float] = Field(default=None, ge=0, le=100)
    fill_holes: Optional[bool] = None
    min_area: Optional[int] = _NonNeg
    shadow: Optional[bool] = None  # take the object's cast shadow too (autoinpaint/shadow)
    # segmentation (call-time)
    sam_select: Optional[Literal["iou", "largest", "smallest"]] = None
    sam_refine: Optional[int] = Field(default=None, ge=0, le=5)

    SELECTION: ClassVar[tuple[str, ...]] = ("points", "negatives", "boxes", "rects", "ellipses", "texts")
    MASK: ClassVar[tuple[str, ...]] = ("dilate", "erode", "feather", "blur", "fill_holes", "min_area", "shadow")
    SEGMENT: ClassVar[tuple[str, ...]] = ("sam_select", "sam_refine")

    def selection_values(self) -> dict:
        """Keyword arguments of ``Selection``: lists become tuples (coordinates tuples of tuples).
        A new kind of prompt needs only its field here and its name in ``SELECTION``."""
        return {k: tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in getattr(self, k))
                for k in self.SELECTION}



class MaskRequest(SelectionFields):
    """``POST /api/images/{id}/mask``."""


class EditRequest(SelectionFields):
    """``POST /api/images/{id}/edit``: the selection, the action and its options."""

    action: Literal["remove", "replace", "fill", "background"] = "remove"
    inpainter: Optional[str] = Field(default=None, max_length=200)
    model: Optional[str] = Field(default=None, max_length=200)
    prompt: Optional[str] = Field(default=None, max_length=2000)
    negative_prompt: Optional[str] = Field(default=None, max_length=2000)
    steps: Optional[int] = Field(default=None, ge=1, le=500)
    guidance: Optional[float] = Field(default=None, ge=0, le=50)
    strength: Optional[float] = Field(default=None, gt=0, le=1)
    seed: Optional[int] = Field(default=None, ge=0, lt=2**63)
    scheduler: Optional[str] = Field(default=None, max_length=40)
    padding_mask_crop: Optional[int] = Field(default=None, ge=0, le=4096)
    # LoRAs fused into the model (hub ids from the server's cache, or the server's own --lora; never a
    # path), and the few-step mode (the family's LCM-LoRA, its scheduler, 4 steps, guidance 1)
    lora: Optional[list[Annotated[str, Field(min_length=1, max_length=300)]]] = Field(default=None, max_length=8)
    fast: Optional[bool] = None

    # background: keep the object, replace the rest (autoinpaint/cutout)
    color: Optional[str] = Field(default=None, max_length=40)
    backdrop_blur: Optional[float] = Field(default=None, ge=0, le=500)
    matte: Optional[int] = Field(default=None, ge=0, le=200)
    canvas: Optional[str] = Field(default=None, max_length=24)
    margin: Optional[float] = Field(default=None, ge=0, le=45)
    align: Optional[Literal["center", "bottom"]] = None
    min_side: Optional[int] = Field(default=None, ge=1, le=100_000)
    contact_shadow: Optional[Literal["none", "soft"]] = None
    shadow_opacity: Optional[float] = Field(default=None, ge=0, le=1)

    INPAINT: ClassVar[tuple[str, ...]] = ("inpainter", "model", "prompt", "negative_prompt", "steps", "guidance",
                                          "strength", "seed", "scheduler", "padding_mask_crop", "lora", "fast")
    BACKGROUND: ClassVar[tuple[str, ...]] = ("color", "backdrop_blur", "matte", "canvas", "margin", "align",
                                             "min_side", "contact_shadow", "shadow_opacity")
