"""What goes behind the kept object: a colour, nothing (transparent), the photo blurred, or a scene
a diffusion model generates (through the same Inpaint step as ``replace``/``fill``).

The backdrop is ``state.backdrop``: H×W×4 float32, colour in the image's value scale (0..255 or
0..65535) and opacity 0..1. :class:`Cutout` then composites ``state.foreground`` over it with the
matte ``state.alpha`` into ``state.result``.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from ..imaging.formats import ALPHA_FORMATS, check_alpha_format
from ..state import EditState

DEFAULT_COLOR = "white"


def parse_color(value: str | None) -> tuple[int, int, int] | None:
    """``white`` | a CSS colour name | ``#RRGGBB`` | ``#RGB`` | ``transparent`` → (r, g, b) 0..255, or
    None for transparent; anything else is an InputError."""
    from PIL import ImageColor

    text = (value if value is not None else DEFAULT_COLOR).strip().lower()
    if text in ("transparent", "none", "alpha"):
        return None
    try:
        rgb = ImageColor.getrgb(text)
    except (ValueError, AttributeError):
        raise InputError(f"--color: cannot parse {value!r}; use white, a colour name, #RRGGBB or "
                         "transparent") from None
    if len(rgb) == 4 and rgb[3] != 255:
        raise InputError(f"--color {value!r}: use transparent for a see-through background")
    return tuple(int(c) for c in rgb[:3])


def backdrop_kind(color: str | None, prompt: str | None, blur: float) -> str:
    """``color``, ``transparent``, ``blur`` or ``scene``; more than one asked is an InputError."""
    asked = [name for name, on in (("--color", color is not None), ("--prompt", bool(prompt)),
                                   ("--blur", bool(blur))) if on]
    if len(asked) > 1:
        raise InputError(f"choose one background: {' or '.join(asked)}")
    if blur and blur < 0:
        raise InputError(f"--blur must be >= 0 px, got {blur}")
    if prompt:
        return "scene"
    if blur:
        return "blur"
    return "transparent" if parse_color(color) is None else "color"


class CheckOutput:
    """Pipeline step, right after loading: refuse, before any work is done, a transparent result
    into a format without alpha (JPEG, BMP, GIF), and any result into a GIF (256 colours cannot hold a
    photo on a new background; PNG can)."""

    name = "load"

    def __init__(self, transparent: bool):
        self.transparent = transparent

    def __call__(self, state):
        if state.output_path:
            from ..imaging.image_io import output_format

            fmt = output_format(state.output_path, state.info)
            if self.transparent:
                check_alpha_format(fmt)
            if fmt == "GIF":
                raise InputError("GIF holds 256 colours, too few for a photo on a new background: "
                                 "use -o NAME.png (or .jpg, .webp)")
        return state

    def __repr__(self) -> str:
        return f"CheckOutput(transparent={self.transparent})"


def _colour_channels(image: np.ndarray) -> np.ndarray:
    return image[..., :3] if image.shape[2] >= 3 else image[..., :1]


def blurred_backdrop(image: np.ndarray, alpha: np.ndarray, px: float) -> np.ndarray:
    """The photo blurred by a Gaussian of ``px`` (sigma, px), the object left out (a normalised
    convolution weighted by 1 − alpha, so the object's colours do not bleed into a halo).
    H×W×C colour, float32 in the image's scale."""
    import cv2

    colour = _colour_channels(image).astype(np.float32)
    weight = (1 - alpha).astype(np.float32)
    num = cv2.GaussianBlur(colour * weight[..., None], (0, 0), px)
    den = cv2.GaussianBlur(weight, (0, 0), px)
    if num.ndim == 2:
        num = num[..., None]
    plain = cv2.GaussianBlur(colour, (0, 0), px)
    if plain.ndim == 2:
        plain = plain[..., None]
    return np.where(den[..., None] > 1e-3, num / np.maximum(den, 1e-3)[..., None], plain)


class Backdrop:
    """Pipeline step: → ``state.backdrop`` (H×W×4 float32). ``kind``: ``color`` (``color``),
    ``transparent``, ``blur`` (``blur`` px) or ``scene`` (``scene``: an Inpaint step that generates
    everything outside the object's core on the whole frame)."""

    name = "backdrop"

    def __init__(self, kind: str, color: str | None = None, blur: float = 0.0, scene=None):
        self.kind, self.blur, self.scene = kind, float(blur), scene
        self.rgb = parse_color(color) if kind == "color" else None
        if kind == "scene" and scene is None:
            raise InputError("a generated background needs --prompt TEXT")

    def __call__(self, state):
        h, w = state.alpha.shape
        top = float(np.iinfo(state.image.dtype).max)
        out = np.zeros((h, w, 4), np.float32)
        if self.kind == "color":
            out[..., :3] = np.asarray(self.rgb, np.float32) * (top / 255)
            out[..., 3] = 1
        elif self.kind == "blur":
            colour = blurred_backdrop(state.image, state.alpha, self.blur)
            out[..., :3] = colour if colour.shape[2] == 3 else np.repeat(colour, 3, axis=2)
            out[..., 3] = 1
        elif self.kind == "scene":
            out[..., :3] = self._generate(state)
            out[..., 3] = 1
        state.backdrop = out
        state.metadata["background"] = self.kind if self.kind != "color" else "#%02x%02x%02x" % self.rgb
        return state

    def _generate(self, state) -> np.ndarray:
        """The diffusion model paints every pixel that is not the object's core, on the whole frame."""
        work = EditState(image=state.image, info=state.info, alpha=(state.alpha < 1).astype(np.float32),
                         metadata={}, timings=state.timings)
        if not (work.alpha > 0).any():
            raise InputError("the object covers the whole frame: there is no background to generate")
        work = self.scene(work)
        state.metadata.update({k: v for k, v in work.metadata.items()})
        x0, y0, x1, y1 = work.crop
        full = state.image.astype(np.float32).copy()
        full[y0:y1, x0:x1] = work.inpainted
        colour = _colour_channels(full)
        return colour if colour.shape[2] == 3 else np.repeat(colour, 3, axis=2)

    def __repr__(self) -> str:
        return f"Backdrop({self.kind!r}{', ' + repr(self.scene) if self.scene is not None else ''})"


class Cutout:
    """Pipeline step: ``state.foreground`` over ``state.backdrop`` with the matte ``state.alpha`` →
    ``state.result``. Where alpha is 1 the object's pixels are copied bit-identical; where it is 0 the
    backdrop's exactly. RGB (grey when both are grey), plus an alpha channel when the backdrop is
    not opaque; ``state.info`` is updated so the output is encoded as what it now is."""

    name = "composite"

    def __call__(self, state):
        from ..imaging.formats import _icc_fits, working_mode

        fg, a, back = state.foreground, state.alpha.astype(np.float32)[..., None], state.backdrop
        top = float(np.iinfo(fg.dtype).max)
        fcol = _colour_channels(fg)
        bcol = back[..., :3]
        grey = fcol.shape[2] == 1 and np.all(bcol[..., 0] == bcol[..., 1]) and np.all(bcol[..., 1] == bcol[..., 2])
        if grey:
            bcol = bcol[..., :1]
        elif fcol.shape[2] == 1:
            fcol = np.repeat(fcol, 3, axis=2)
        ba = back[..., 3:]
        out_a = a + ba * (1 - a)
        with np.errstate(invalid="ignore", divide="ignore"):
            mixed = (fcol * a + bcol * ba * (1 - a)) / out_a
        mixed = np.where(out_a > 0, mixed, 0)
        colour = np.clip(np.rint(mixed), 0, top).astype(fg.dtype)
        colour = np.where(a == 1, fcol, colour)                                     # the object, exact
        colour = np.where((a == 0) & (ba > 0), np.clip(np.rint(bcol), 0, top).astype(fg.dtype), colour)
        transparent = bool((back[..., 3] < 1).any())
        if transparent:
            alpha8 = np.clip(np.rint(out_a * top), 0, top).astype(fg.dtype)
            colour = np.concatenate([colour, alpha8], axis=2)
        state.result = np.ascontiguousarray(colour)
        mode = working_mode(state.result)
        info = state.info
        extra = {k: v for k, v in info.extra.items() if k not in ("transparency",)}
        extra["alpha_required"] = transparent
        extra["cutout"] = True  # a new background: a GIF's 256 colours cannot hold it (Editor writes PNG)
        state.info = dataclasses.replace(
            info, mode=mode, file_mode=None, native=None, palette=None, extra=extra,
            icc_profile=info.icc_profile if _icc_fits(info.icc_profile, mode) else None,
            compression=None if info.file_mode in ("1", "P") else info.compression)
        return state

    def __repr__(self) -> str:
        return "Cutout()"
