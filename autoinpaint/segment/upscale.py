"""SAM's low-resolution mask logits → a full-resolution mask, for every SAM family.

The decoder predicts 256×256 logits; a click on a 12 MP photo then needs them bilinearly upsampled to
4000×3000, which alone costs about 65 ms on one CPU core. Only the pixels whose four source logits
include a positive one can come out positive, so the interpolation runs on that window of the output
and the rest is False: the same mask as ``F.interpolate(...) > 0`` (the same source indices and
weights as PyTorch's ``align_corners=False`` bilinear), for the cost of the object's bounding box.
"""
from __future__ import annotations

import numpy as np

_FULL_BELOW = 0.35  # window/image area above which one full F.interpolate is cheaper than gathers
_SMALL = 1 << 20  # pixels up to which the full interpolation costs under a millisecond or two


def _axis(n_in: int, n_out: int):
    """PyTorch's bilinear source indices and weights along one axis (``align_corners=False``):
    for each output index, the lower and upper source index and the weight of the upper one."""
    import torch

    src = ((torch.arange(n_out, dtype=torch.float32) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    lo = src.to(torch.int64)
    hi = torch.where(lo < n_in - 1, lo + 1, lo)
    return lo, hi, src - lo


def _span(lo, hi, first: int, last: int) -> tuple[int, int]:
    """The output range whose source indices touch [first, last] (contiguous: indices are monotone)."""
    import torch

    hit = ((lo >= first) & (lo <= last)) | ((hi >= first) & (hi <= last))
    where = torch.nonzero(hit).flatten()
    return int(where[0]), int(where[-1]) + 1


def upscale_masks(logits: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int] | None = None,
                  square: int | None = None) -> np.ndarray:
    """The union of the masks of ``logits`` (B×h×w low-resolution logits) at ``original_size`` (H, W).

    SAM 1 (``square`` given): the logits cover the ``square``×``square`` padded input; they are
    upsampled to it, cropped to ``input_size`` (the resized image) and upsampled to the image, as
    ``Sam.postprocess_masks`` and ``SamImageProcessor.post_process_masks`` do. SAM 2 (``square`` None):
    straight to the image, as ``Sam2ImageProcessor.post_process_masks`` does. Returns H×W bool."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))[:, None]
    if square is not None:
        t = F.interpolate(t, (square, square), mode="bilinear", align_corners=False)
        t = t[..., : input_size[0], : input_size[1]]
    t = t[:, 0]
    (h, w), (big_h, big_w) = t.shape[-2:], original_size
    out = np.zeros((big_h, big_w), bool)
    positive = t > 0
    if not bool(positive.any()):
        return out
    rows = torch.nonzero(positive.any(0).any(1)).flatten()
    cols = torch.nonzero(positive.any(0).any(0)).flatten()
    y_lo, y_hi, y_w = _axis(h, big_h)
    x_lo, x_hi, x_w = _axis(w, big_w)
    r0, r1 = _span(y_lo, y_hi, int(rows[0]), int(rows[-1]))
    c0, c1 = _span(x_lo, x_hi, int(cols[0]), int(cols[-1]))
    if (r1 - r0) * (c1 - c0) > _FULL_BELOW * big_h * big_w or big_h * big_w <= _SMALL:
        full = F.interpolate(t[:, None], (big_h, big_w), mode="bilinear", align_corners=False)[:, 0]
        return (full > 0).any(0).numpy()
    y_lo, y_hi, y_w = y_lo[r0:r1], y_hi[r0:r1], y_w[r0:r1, None]
    x_lo, x_hi, x_w = x_lo[c0:c1], x_hi[c0:c1], x_w[c0:c1]
    first = int(y_lo[0])  # the source rows the window reads, interpolated along x first (as PyTorch does)
    src = t[:, first: int(y_hi[-1]) + 1]
    across = src.index_select(2, x_lo) * (1 - x_w) + src.index_select(2, x_hi) * x_w  # B×rows×C
    window = across.index_select(1, y_lo - first) * (1 - y_w) + across.index_select(1, y_hi - first) * y_w
    out[r0:r1, c0:c1] = (window > 0).any(0).numpy()
    return out
