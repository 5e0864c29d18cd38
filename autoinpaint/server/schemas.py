"""Typed request bodies of the JSON API. Field names are :class:`~autoinpaint.api.EditOptions` and
:class:`~autoinpaint.selection.Selection` names; an unknown key is a 400 (``extra="forbid"``). The option
fields (their bounds, parsing and help) come from the options schema, :mod:`autoinpaint.options` (a field's
``http`` group says which request takes it).
Coordinates are full-resolution pixels of the EXIF-oriented image."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from .. import options as schema
from ..selection import MAX_TEXTS

Point = tuple[float, float]
Box = tuple[float, float, float, float]
MAX_PROMPTS = 64  # clicks/boxes per request: plenty for a person, a bound for a script


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenRequest(Strict):
    """``POST /api/images`` as JSON (FOLDER mode): a photo of the folder by relative path."""

    path: str = Field(min_length=1, max_length=4096)


def _with_options(name: str, base: type[BaseModel], *groups: str) -> type[BaseModel]:
    """``base`` plus the option fields of ``groups``, made from the options schema (autoinpaint/options.py):
    the same names, bounds and parsing as the command line and recipes; each optional, ``None`` = the
    server's default."""
    fields = {k: v for g in groups for k, v in schema.request_fields(g).items()}
    return create_model(name, __base__=base, __module__=__name__, **fields)


class DetectFields(_with_options("_DetectOptions", Strict, "detect")):
    """Call-time values of a text detection (``DetectParams``); ``None`` = the server's default."""

    DETECT: ClassVar[tuple[str, ...]] = schema.http_names("detect")

    def options(self, names: tuple[str, ...]) -> dict:
        """The ``EditOptions`` overrides among ``names`` that the request sets."""
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


class DetectRequest(DetectFields):
    """``POST /api/images/{id}/detect``: phrases to find; the answer proposes boxes, selects nothing."""

    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS)


class SelectionFields(_with_options("_SelectionOptions", DetectFields, "mask", "segment")):
    """What to select (``Selection``: clicks, boxes, drawn regions, phrases a detector turns into
    boxes) and how to turn it into the alpha (the mask stage); ``None`` = the server's default."""

    points: list[Point] = Field(default_factory=list, max_length=MAX_PROMPTS)
    negatives: list[Point] = Field(default_factory=list, max_length=MAX_PROMPTS)
    boxes: list[Box] = Field(default_factory=list, max_length=MAX_PROMPTS)
    rects: list[Box] = Field(default_factory=list, max_length=MAX_PROMPTS)
    ellipses: list[Box] = Field(default_factory=list, max_length=MAX_PROMPTS)
    texts: list[str] = Field(default_factory=list, max_length=MAX_TEXTS)
    SELECTION: ClassVar[tuple[str, ...]] = ("points", "negatives", "boxes", "rects", "ellipses", "texts")
    MASK: ClassVar[tuple[str, ...]] = schema.http_names("mask")
    SEGMENT: ClassVar[tuple[str, ...]] = schema.http_names("segment")

    def selection_values(self) -> dict:
        """Keyword arguments of ``Selection``: lists become tuples (coordinates tuples of tuples).
        A new kind of prompt needs only its field here and its name in ``SELECTION``."""
        return {k: tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in getattr(self, k))
                for k in self.SELECTION}



class MaskRequest(SelectionFields):
    """``POST /api/images/{id}/mask``."""


class EditRequest(_with_options("_EditOptions", SelectionFields, "inpaint", "background")):
    """``POST /api/images/{id}/edit``: the selection, the action and its options."""

    action: Literal["remove", "replace", "fill", "background"] = "remove"
    INPAINT: ClassVar[tuple[str, ...]] = schema.http_names("inpaint")
    BACKGROUND: ClassVar[tuple[str, ...]] = schema.http_names("background")
