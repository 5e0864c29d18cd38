"""The ``--shadow`` step that finds the cast shadow after the mask stage (the de-shadowing steps
around the inpainter are in :mod:`.relight`)."""
from __future__ import annotations

import numpy as np

from ..imaging.image_io import block_origin
from .adjust import adjust_shadow
from .evidence import compression_error
from .objects import CastShadows, find_shadows
from .relight import shadow_alpha


class FindShadow:
    """Pipeline step (after ``RefineMask``): find the cast shadow attached to each object of
    ``state.mask`` and add them to ``state.alpha`` (soft: :func:`~.relight.shadow_alpha`), keeping them in
    ``state.shadow`` (:class:`~.objects.CastShadows`).

    Records ``shadow_pixels`` (pixels of the shadow outside the object) and ``shadow_darkening`` (the
    mean share of brightness the shadow takes from them, 0..1) in ``state.metadata``; both 0 when no
    shadow is found (the alpha is then the object's alone). A photo read from a JPEG file: what its
    compression adds to each shadow's error once relit, from its own quantisation tables
    (:func:`~.evidence.compression_error`), for the doubt verdict.

    ``grow`` (px) and ``strength``: each shadow found corrected by hand, its outline moved out (in where
    negative) and its darkening scaled (:func:`~.adjust.adjust_shadow`; ``--shadow-grow``, ``--shadow-strength``)."""

    name = "shadow"

    def __init__(self, grow: int = 0, strength: float = 1.0):
        self.grow, self.strength = grow, strength

    def __call__(self, state):
        state.shadow = None
        found = find_shadows(state.image, state.mask)
        if found is not None and (self.grow or self.strength != 1.0):
            parts = [adjust_shadow(p, state.mask.shape, self.grow, self.strength) for p in found.parts]
            parts = [p for p in parts if p is not None]
            found = CastShadows(parts) if parts else None
        pixels, darkening = 0, 0.0
        if found is not None:
            info = state.info
            if info.format == "JPEG" and info.jpeg_qtables:   # on the file's block grid, made upright
                origin = block_origin(info.orientation, state.image.shape[:2])
                for part in found.parts:
                    part.compression = compression_error(state.image, state.mask, part.box, part.matte, part.darkening,
                                                         info.jpeg_qtables, info.jpeg_subsampling, origin)
            found.object_alpha = state.alpha
            alpha, shaded = state.alpha.copy(), []
            # the objects' shadows apart: each in its own box (their common box is mostly ground no shadow darkens)
            for ((x0, y0, x1, y1), matte), (_, shading) in zip(found.pieces(lambda p: p.matte), found.shades(1)):
                alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], shadow_alpha(matte))
                shaded.append(shading[..., 0][(matte > 0) & ~state.mask[y0:y1, x0:x1]])
            state.alpha, state.shadow = alpha, found
            shaded = np.concatenate(shaded)
            pixels = len(shaded)
            if pixels:
                darkening = float(shaded.mean())
        state.metadata["shadow_pixels"] = pixels
        state.metadata["shadow_darkening"] = round(darkening, 4)
        return state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v, none in (("grow", self.grow, 0), ("strength", self.strength, 1.0))
                         if v != none)
        return f"FindShadow({args})"
