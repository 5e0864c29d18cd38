"""Classical inpainters that need no weights: PatchMatch (pypatchmatch), OpenCV Telea and Navier–Stokes."""
from __future__ import annotations

import numpy as np


class ClassicalInpainter:
    """``ClassicalInpainter("patchmatch" | "telea" | "ns")``; see ``autoinpaint.inpaint.Inpainter``.

    Args:
        method: which algorithm.
        radius: neighbourhood radius in px for Telea / Navier–Stokes.
        patch_size: patch side in px for PatchMatch.
    """

    def __init__(self, method: str = "patchmatch", radius: int = 5, patch_size: int = 7, seed: int = 0):
        if method not in ("patchmatch", "telea", "ns"):
            raise ValueError(f"unknown classical inpainter {method!r}")
        self.name, self.radius, self.patch_size, self.seed = method, radius, patch_size, seed

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import cv2

        if self.name == "patchmatch":
            from patchmatch import patch_match

            patch_match.set_random_seed(self.seed)  # deterministic output for the same input
            return patch_match.inpaint(image, mask, patch_size=self.patch_size)
        flag = cv2.INPAINT_TELEA if self.name == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(np.ascontiguousarray(image), mask, self.radius, flag)

    def __repr__(self) -> str:
        return f"ClassicalInpainter({self.name!r})"
