"""A segmenter's own evidence for a mask it made, without a model: how well colour models of the
object and of its surroundings tell them apart along the mask's outline."""
from __future__ import annotations

import numpy as np

BINS = 8  # per Lab channel: 512 colour bins


def colour_separation(image: np.ndarray, mask: np.ndarray) -> float:
    """How well the object's colours and its surroundings' colours separate, 0..1.

    ``image`` H×W×3 uint8 RGB, ``mask`` H×W bool. A colour histogram (8×8×8 Lab bins) is taken of a
    band just inside the mask and of a ring just outside it (each about a tenth of the object's size
    wide); every band and ring pixel is classified by the likelier histogram. The score is
    sensitivity + specificity − 1 (Youden's J): 1 when the outline runs along a colour edge, near 0
    when it cuts through one colour or texture (the mask leaked into, or stopped inside, a region
    of the same colours). 1.0 for an empty or full mask (nothing to compare)."""
    import cv2

    area = int(mask.sum())
    if area == 0 or area == mask.size:
        return 1.0
    width = max(3, int(0.1 * np.sqrt(area)))
    m8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m8, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m8, cv2.DIST_L2, 3)
    band = (inside > 1.5) & (inside <= 1.5 + width)   # off the anti-aliased edge
    ring = (outside > 1.5) & (outside <= 1.5 + width)
    if band.sum() < 8 or ring.sum() < 8:
        return 1.0
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB)
    q = (lab // (256 // BINS)).astype(np.int32)
    index = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
    hi = np.bincount(index[band], minlength=BINS ** 3) + 0.5
    ho = np.bincount(index[ring], minlength=BINS ** 3) + 0.5
    pi, po = hi / hi.sum(), ho / ho.sum()
    sensitivity = float((pi[index[band]] > po[index[band]]).mean())
    specificity = float((po[index[ring]] > pi[index[ring]]).mean())
    return max(0.0, sensitivity + specificity - 1.0)
