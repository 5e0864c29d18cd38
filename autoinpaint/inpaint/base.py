"""The inpainter interface: :class:`Inpainter`, its call-time :class:`InpaintRequest` and its
:class:`InpaintResult`.

Load-time values (weights, device, dtype, working resolution) belong to an inpainter's constructor;
everything that may differ between two calls on one loaded model (prompt, seed, steps, what to do)
is an :class:`InpaintRequest`, and everything a call reports comes back in its
:class:`InpaintResult`, so concurrent calls on a shared model never see each other's values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from ..errors import EXIT_INTERRUPTED, AutoinpaintError, InputError

MODES = ("remove", "replace", "fill")

Progress = Callable[[int, int], None]
"""``progress(done, total)`` after each model step; raising :class:`Cancelled` in it stops the call."""


class Cancelled(AutoinpaintError):
    """The caller cancelled a running edit (raised from its progress callback)."""

    exit_code = EXIT_INTERRUPTED


@dataclass(frozen=True)
class InpaintRequest:
    """Call-time values. ``None`` means the inpainter's documented default for ``mode``.

    mode: ``remove`` (fill with background), ``replace`` / ``fill`` (paint what ``prompt`` says).
    prompt, negative_prompt, steps, guidance, strength, seed: generation parameters of prompted
        models (ignored by the classical inpainters).
    progress: called as ``progress(done, total)`` after each model step.
    """

    mode: str = "remove"
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    strength: float | None = None
    seed: int | None = None
    progress: Progress | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise InputError(f"unknown inpainting mode {self.mode!r}: {'|'.join(MODES)}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--steps must be >= 1, got {self.steps}")
        if self.guidance is not None and self.guidance < 0:
            raise InputError(f"--guidance must be >= 0, got {self.guidance}")
        if self.strength is not None and not 0 < self.strength <= 1:
            raise InputError(f"--strength must be in (0, 1], got {self.strength}")
        if self.seed is not None and not 0 <= int(self.seed) < 2**64:
            raise InputError(f"--seed must be in 0..2**64-1, got {self.seed}")


@dataclass
class InpaintResult:
    """``image``: H×W×3 uint8 RGB, the filled crop; ``metadata``: what this call did (seed drawn,
    steps, notices, ...), for ``--json``."""

    image: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


class Inpainter(Protocol):
    """Fills the hole of an image.

    ``inpaint(image, mask, request)``: ``image`` is H×W×3 uint8 RGB, ``mask`` H×W uint8 with 255 =
    fill, 0 = keep. Pixels outside the mask may change (the compositing stage restores them).

    Declared capabilities (class attributes, read by the ``Inpaint`` step):
      ``crop_aspect``: width/height of the working resolution; the crop is grown to it, like
        diffusers' ``get_crop_region`` (None: any aspect).
    """

    name: str
    crop_aspect: float | None

    def inpaint(self, image: np.ndarray, mask: np.ndarray, request: InpaintRequest) -> InpaintResult: ...


class BaseInpainter:
    """Defaults for the declared capabilities, and ``inpainter(image, mask, **request) -> array``."""

    name = "inpainter"
    crop_aspect: float | None = None

    def inpaint(self, image: np.ndarray, mask: np.ndarray, request: InpaintRequest) -> InpaintResult:
        raise NotImplementedError  # pragma: no cover - interface

    def __call__(self, image: np.ndarray, mask: np.ndarray, **request) -> np.ndarray:
        return self.inpaint(image, mask, InpaintRequest(**request)).image
