"""A soft contact shadow under the kept object: its alpha squashed flat onto the floor line under
its box, blurred, and darkening the backdrop by ``opacity`` at most (a transparent backdrop gets a
semi-transparent black shadow)."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..mask.refine import bbox

SHADOWS = ("none", "soft")
SQUASH = 0.08   # the shadow's height, as a fraction of the object's height
SOFTNESS = 0.5  # Gaussian sigma, as a fraction of the shadow's height


def shadow_alpha(alpha: np.ndarray, opacity: float) -> np.ndarray:
    """H×W float32 shadow strength in [0, ``opacity``] from the object's alpha (H×W float32)."""
    import cv2

    box = bbox(alpha > 0)
    out = np.zeros(alpha.shape, np.float32)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    h, w = alpha.shape
    sh = max(int(round((y1 - y0) * SQUASH)), 2)
    flat = cv2.resize(alpha[y0:y1, x0:x1], (x1 - x0, sh), interpolation=cv2.INTER_AREA)
    flat = np.clip(flat * 1.5, 0, 1)  # squashing averages rows: bring the footprint back to solid
    top = y1 - sh // 2  # half of it under the object's base, half in front of it
    ys0, ys1 = max(top, 0), min(top + sh, h)
    if ys1 > ys0:
        out[ys0:ys1, x0:x1] = flat[ys0 - top:ys1 - top]
    sigma = max(sh * SOFTNESS, 1.0)
    out = cv2.GaussianBlur(out, (0, 0), sigma)
    peak = float(out.max())
    return (out / peak * opacity).astype(np.float32) if peak > 0 else out


class ContactShadow:
    """Pipeline step: darken ``state.backdrop`` under the object (``state.alpha``) with a soft
    contact shadow of at most ``opacity`` (0..1). ``kind`` ``none`` does nothing."""

    name = "shadow"

    def __init__(self, kind: str = "none", opacity: float = 0.5):
        if kind not in SHADOWS:
            raise InputError(f"--shadow must be one of {', '.join(SHADOWS)}, got {kind!r}")
        if not 0 <= opacity <= 1:
            raise InputError(f"--shadow-opacity must be between 0 and 1, got {opacity}")
        self.kind, self.opacity = kind, float(opacity)

    def __call__(self, state):
        if self.kind == "none" or self.opacity == 0:
            return state
        s = shadow_alpha(state.alpha, self.opacity)[..., None]
        back = state.backdrop
        back[..., :3] *= 1 - s
        back[..., 3:] = s + back[..., 3:] * (1 - s)
        state.metadata["contact_shadow"] = {"kind": self.kind, "opacity": self.opacity}
        return state

    def __repr__(self) -> str:
        return f"ContactShadow({self.kind!r}, opacity={self.opacity})"
