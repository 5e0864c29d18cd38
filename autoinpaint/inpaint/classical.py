"""Classical inpainters that need no weights: PatchMatch (pypatchmatch), OpenCV Telea and Navier–Stokes,
and ``hybrid``: PatchMatch's detail on a smooth fill's colours (the default, see benchmarks/)."""
from __future__ import annotations

import numpy as np

from .base import BaseInpainter, InpaintRequest, InpaintResult

METHODS = ("hybrid", "patchmatch", "telea", "ns")


def load_classical_inpainter(spec: str = "hybrid") -> "ClassicalInpainter":
    """Registry loader (:mod:`autoinpaint.models.registry`): ``hybrid``, ``patchmatch``, ``telea`` or ``ns``."""
    return ClassicalInpainter(spec)


class ClassicalInpainter(BaseInpainter):
    """``ClassicalInpainter("hybrid" | "patchmatch" | "telea" | "ns")``; see ``autoinpaint.inpaint.Inpainter``.

    ``hybrid`` = a smooth fill's low frequencies (:func:`~autoinpaint.inpaint.membrane.smooth_fill`,
    Gaussian σ ``detail_sigma`` px) + high frequencies copied from the surroundings, so the hole is as
    detailed as they are, texture a few pixels across included (stones, blades, the grain of paving; split
    at 2 px instead, the hole kept a third of it: a flat patch under fine cracks): PatchMatch's texture, or, where
    the ring around the hole is a plain backdrop (:attr:`~autoinpaint.inpaint.membrane.Backdrop.plain`), the
    backdrop's own grain (:func:`~autoinpaint.inpaint.grain.backdrop_grain`, milliseconds instead of
    PatchMatch's seconds).
    The result's metadata says which: ``hybrid_detail`` = ``grain`` or ``patchmatch``.

    Args:
        method: which algorithm.
        radius: neighbourhood radius in px for Telea / Navier–Stokes.
        patch_size: patch side in px for PatchMatch.
        seed: PatchMatch's random seed (same input → same output).
        detail_sigma: split between colour and detail for ``hybrid``, in px (the smooth fill carries what
            is wider: a backdrop's gradient or vignette; PatchMatch or the grain what is finer).
    """

    def __init__(self, method: str = "hybrid", radius: int = 5, patch_size: int = 7, seed: int = 0,
                 detail_sigma: float = 8.0):
        if method not in METHODS:
            raise ValueError(f"unknown classical inpainter {method!r}")
        self.name, self.radius, self.patch_size, self.seed = method, radius, patch_size, seed
        self.detail_sigma = detail_sigma

    def inpaint(self, image: np.ndarray, mask: np.ndarray,
                request: InpaintRequest | None = None) -> InpaintResult:
        """Fill ``mask`` (H×W uint8, 255 = fill) of ``image`` (H×W×3 uint8); the request's prompt
        fields do not apply to these methods."""
        if self.name == "patchmatch":
            return InpaintResult(self._patchmatch(image, mask))
        if self.name == "hybrid":
            filled, detail = self._hybrid(image, mask)
            return InpaintResult(filled, {"hybrid_detail": detail})
        return InpaintResult(self._opencv(image, mask, self.name))

    def _patchmatch(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from patchmatch import patch_match

        patch_match.set_random_seed(self.seed)  # deterministic output for the same input
        return patch_match.inpaint(image, mask, patch_size=self.patch_size)

    def _opencv(self, image: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
        import cv2

        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(np.ascontiguousarray(image), mask, self.radius, flag)

    def _hybrid(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
        import cv2

        from .grain import backdrop_grain
        from .membrane import fit_backdrop, membrane_fill, smooth_fill

        def low(im: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(im.astype(np.float32), (0, 0), self.detail_sigma)

        hole = mask > 0
        backdrop = fit_backdrop(image, hole)  # fitted once, for the colours and the grain
        if backdrop is None:  # no ring to fit (smooth_fill would only try again)
            colour, texture = membrane_fill(image, hole), None
        else:
            colour = smooth_fill(image, hole, backdrop=backdrop)
            texture = backdrop_grain(image, hole, backdrop, self.seed) if backdrop.plain else None
        detail = "grain" if texture is not None else "patchmatch"
        if texture is None:
            texture = self._patchmatch(image, mask)
        mixed = np.clip(np.rint(low(colour) + texture.astype(np.float32) - low(texture)), 0, 255).astype(np.uint8)
        return np.where(hole[..., None], mixed, image), detail

    def __repr__(self) -> str:
        return f"ClassicalInpainter({self.name!r})"
