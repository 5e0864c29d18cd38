"""De-shadowing: divide a cast shadow's darkening out of the ground (texture and chroma kept), so the
object's hole is filled from lit surroundings and the shadow's band becomes lit ground.

Copying neighbouring texture into a shadow band (what an inpainter does) cannot restore the ground
under it; relighting can: a pixel under the shadow is the lit ground times ``1 − matte·darkening``
(:class:`~autoinpaint.shadow.find.ShadowMatte`), so dividing by that factor gives the ground back.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..composite import blend
from ..imaging.pixels import merge

# The compositing alpha of the shadow: its matte times this, at most 1, so the whole shadow but the
# faint outer part of its penumbra is replaced outright, and the fill needed there to give the relit
# value through the blend stays within the pixel range (see ShadowFill).
ALPHA_GAIN = 3.0


def shadow_alpha(matte: np.ndarray) -> np.ndarray:
    """The shadow's compositing alpha (float32, 0..1) from its matte: soft only at the penumbra's rim."""
    return np.minimum(matte * ALPHA_GAIN, 1.0).astype(np.float32)


def colour_channels(pixels: np.ndarray) -> int:
    """How many of ``pixels``' channels (h×w×C) are colour: 3 for RGB(A), 1 for grey (with alpha)."""
    return 3 if pixels.shape[2] >= 3 else 1


def shade(matte: np.ndarray, darkening: np.ndarray, colours: int) -> np.ndarray:
    """h×w×``colours`` float32: the share of brightness a shadow of ``matte`` (h×w) and ``darkening`` (per
    RGB channel) takes, per colour channel (``colours`` = 3), or that of its mean darkening (1: grey)."""
    gains = darkening[:3] if colours == 3 else np.full(1, float(np.mean(darkening)), np.float32)
    return merge([matte * g for g in gains])


def divide(pixels: np.ndarray, shading: np.ndarray) -> np.ndarray:
    """``pixels`` (h×w×C, uint8 or uint16, C = 1..4) with ``shading`` (h×w×3 for RGB, h×w×1 for grey:
    :func:`shade`) divided out, in their own dtype; an alpha channel is kept."""
    c = colour_channels(pixels)
    out = pixels.copy()
    top = np.iinfo(pixels.dtype).max
    out[..., :c] = np.clip(np.rint(pixels[..., :c].astype(np.float32) / (1 - shading)), 0, top).astype(pixels.dtype)
    return out


def relight(pixels: np.ndarray, matte: np.ndarray, darkening: np.ndarray) -> np.ndarray:
    """``pixels`` (h×w×C, uint8 or uint16, C = 1..4) with the shadow divided out, in their own dtype.
    Colour channels are divided by ``1 − matte·darkening`` (per RGB channel; grey images by its mean);
    an alpha channel is kept."""
    return divide(pixels, shade(matte, darkening, colour_channels(pixels)))


class Deshadow:
    """Pipeline step (before ``Inpaint``): the inpainter sees the photo with the shadow divided out and
    only the object's alpha to fill, so the hole is filled from lit ground. Keeps the original image
    and alphas on ``state.shadow`` for :class:`ShadowFill`. Does nothing when no shadow was found."""

    name = "shadow"

    def __call__(self, state):
        found = state.shadow
        if found is None:
            return state
        # this edit's own record (a session may share the shadow it found with several applies)
        state.shadow = found = dataclasses.replace(found, original=state.image, alpha=state.alpha)
        relit = state.image.copy()
        for (x0, y0, x1, y1), shading in found.shades(colour_channels(relit)):
            relit[y0:y1, x0:x1] = divide(state.image[y0:y1, x0:x1], shading)
        state.image, state.alpha = relit, found.object_alpha
        return state

    def __repr__(self) -> str:
        return "Deshadow()"


class ShadowFill:
    """Pipeline step (after ``Inpaint``, before ``Composite``): the picture wanted is the relit photo
    with the inpainted object blended in by the object's alpha; this puts back the original image and
    the full alpha (object and shadow), and sets ``state.inpainted`` over the crop and the shadow's box
    to the values the composite's blend turns into that picture: every pixel with alpha 0 stays the
    input's, bit for bit."""

    name = "shadow"

    def __call__(self, state):
        found = state.shadow
        if found is None or getattr(found, "original", None) is None:
            return state
        relit, original, alpha = state.image, found.original, found.alpha
        cx0, cy0, cx1, cy1 = state.crop
        sx0, sy0, sx1, sy1 = found.box
        x0, y0, x1, y1 = min(cx0, sx0), min(cy0, sy0), max(cx1, sx1), max(cy1, sy1)
        # the picture wanted, which is also the fill where the alpha is 1 (where it is 0 the composite keeps
        # the input's pixels, whatever the fill holds there)
        fill = relit[y0:y1, x0:x1].copy()
        inner = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        fill[inner] = blend(relit[cy0:cy1, cx0:cx1], state.inpainted, found.object_alpha[cy0:cy1, cx0:cx1])
        a = alpha[y0:y1, x0:x1]
        soft = np.nonzero((a > 0) & (a < 1))   # the penumbra's rim and the object's feather: few pixels
        a = a[soft][:, None]
        orig = original[y0:y1, x0:x1][soft].astype(np.float32)
        top = np.iinfo(original.dtype).max
        wanted = fill[soft].astype(np.float32)
        fill[soft] = np.clip(np.rint((wanted - orig * (1 - a)) / np.maximum(a, 1e-6)), 0, top).astype(original.dtype)
        state.image, state.alpha = original, alpha
        state.inpainted, state.crop = fill, (x0, y0, x1, y1)
        found.original = found.alpha = None
        return state

    def __repr__(self) -> str:
        return "ShadowFill()"
