"""A found cast shadow corrected by hand (``--shadow-grow``, ``--shadow-strength``): its outline moved out or
in, its darkening scaled.

On coarse texture the search (:mod:`.find`) places the outline to a pixel or two and reads the darkening to a
few per cent (docs/shadow.md, "Measured"); what that leaves shows: a dark rim where the outline stops short of
the shadow, a bright one where it runs past it, a shadow still faintly there, or ground relit too bright. A
person sees which, and corrects it with these.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .find import ShadowMatte
from .matte import MATTE_MIN


def adjust_shadow(part: ShadowMatte, shape: tuple[int, int], grow: int = 0, strength: float = 1.0
                  ) -> ShadowMatte | None:
    """``part`` with its outline moved out by ``grow`` px (in where negative) and its darkening times
    ``strength`` (kept within [0.02, 0.95]), in a photo of ``shape`` (H, W). The outline moves as every level
    line of the matte does under a grey dilation (erosion) by a disk of radius ``|grow|``: the penumbra keeps
    its profile. Returns ``part`` itself when nothing changes, None when shrinking leaves no shadow."""
    if grow == 0 and strength == 1.0:
        return part
    box, matte = part.box, part.matte
    if grow:
        import cv2

        r = abs(grow)
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        if grow > 0:   # room for the shadow to grow into, within the photo
            (x0, y0, x1, y1), (h, w) = box, shape
            box = (max(x0 - r, 0), max(y0 - r, 0), min(x1 + r, w), min(y1 + r, h))
            matte = np.pad(matte, ((y0 - box[1], box[3] - y1), (x0 - box[0], box[2] - x1)))
            matte = cv2.dilate(matte, disk)
        else:   # (beyond the box's sides the matte is 0 already, or the photo ends: a shadow that leaves it goes on)
            matte = cv2.erode(matte, disk)
        matte[matte < MATTE_MIN] = 0
        if not matte.any():
            return None
    darkening = np.clip(part.darkening * strength, 0.02, 0.95).astype(np.float32)
    return dataclasses.replace(part, box=box, matte=matte.astype(np.float32), darkening=darkening)
