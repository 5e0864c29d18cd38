"""SAM's low-resolution mask logits → a full-resolution mask, for every SAM family.

The decoder predicts 256×256 logits; a click on a 12 MP photo then needs them bilinearly upsampled to
4000×3000, which alone costs about 65 ms on one CPU core. Only the pixels whose four source logits
include a positive one can come out positive, so the interpolation runs on that window of the output
and the rest is False: the same mask as ``F.interpolate(...) > 0`` (the same source indices and
weights as PyTorch's ``align_corners=False`` bilinear), for the cost of the object's bounding box.
SAM 1's first step (256² → the 1024² padded input) is an exact 4× upsampling: it runs with
``F.interpolate`` itself, on the rows and columns the second step reads (plus one source row and
column of margin, so every value is the one the full interpolation computes, up to float rounding:
≤ 2.4e-7 apart measured; the masks equal the full interpolation's in the tests).
Which rows and columns hold a positive logit is found with NumPy on the low-resolution logits (a
torch ``any`` over a 1024² bool tensor cost ~4 ms a call here). Where that window would cover over a tenth
of the photo (a third above 4 MP), or the photo is at most 1 MP, OpenCV's bilinear resize does the whole
interpolation instead (:func:`_full`: the same weights; a large mask at 1200×900 in 1.3-1.8 ms instead of
2.8-4.2, at 12 MP 7.6-10.5 instead of 29-38, interleaved here). It can differ from PyTorch's only where the
interpolated logit is within float rounding of 0: 1 pixel of 1.08 M and 51 of 12 M on random logits.
"""
from __future__ import annotations

import threading

import numpy as np

_FULL_BELOW = 0.1  # window/image area above which one full resize (_full) is cheaper than gathers
_FULL_BELOW_LARGE = 0.35  # the same above _SCRATCH_MAX pixels, where the resize writes into fresh pages
_SMALL = 1 << 20  # pixels up to which the full resize costs about a millisecond
_SCRATCH_MAX = 1 << 22  # values (16 MB) of a resize's output kept between calls (_scratch)
_SCRATCH: dict[str, np.ndarray] = {}
_SCRATCH_LOCK = threading.Lock()


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
    if len(where) == 0:
        return 0, 0
    return int(where[0]), int(where[-1]) + 1


def _extent(positive: np.ndarray) -> tuple[int, int, int, int] | None:
    """(first row, last row, first column, last column) holding a True of the h×w ``positive``, or None."""
    rows = np.flatnonzero(positive.any(1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(positive.any(0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _upsample_exact(t, rows: tuple[int, int], cols: tuple[int, int], factor: int):
    """Rows ``rows`` and columns ``cols`` (half-open, output pixels) of ``F.interpolate(t, scale factor)``
    for an integer ``factor`` (B×h×w → B×rows×cols), computed on the source block they read plus one
    source pixel of margin: the same source positions and weights as the full interpolation (multiples
    of 1/(2·factor), exact in float32; the clamping at a block edge only touches the margin's outputs,
    which are cropped away), so the same values up to the kernel's vectorised rounding (≤ 2.4e-7)."""
    import torch.nn.functional as F

    h, w = t.shape[-2:]
    y0, y1 = max(rows[0] // factor - 1, 0), min((rows[1] - 1) // factor + 2, h)
    x0, x1 = max(cols[0] // factor - 1, 0), min((cols[1] - 1) // factor + 2, w)
    block = F.interpolate(t[:, None, y0:y1, x0:x1], ((y1 - y0) * factor, (x1 - x0) * factor),
                          mode="bilinear", align_corners=False)[:, 0]
    return block[:, rows[0] - y0 * factor: rows[1] - y0 * factor, cols[0] - x0 * factor: cols[1] - x0 * factor]


def upscale_masks(logits: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int] | None = None,
                  square: int | None = None) -> np.ndarray:
    """The union of the masks of ``logits`` (B×h×w low-resolution logits) at ``original_size`` (H, W).

    SAM 1 (``square`` given): the logits cover the ``square``×``square`` padded input; they are
    upsampled to it, cropped to ``input_size`` (the resized image) and upsampled to the image, as
    ``Sam.postprocess_masks`` and ``SamImageProcessor.post_process_masks`` do. SAM 2 (``square`` None):
    straight to the image, as ``Sam2ImageProcessor.post_process_masks`` does. Returns H×W bool.
    On a busy CPU the interpolation runs on one torch thread, as the decoder does
    (:func:`autoinpaint.models.device.decoder_threads`: 9 ms instead of 24 ms for a large mask at load 5 here)."""
    from ..models.device import decoder_threads

    with decoder_threads("cpu"):
        return _upscale(logits, original_size, input_size, square)


def _upscale(logits: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int] | None,
             square: int | None) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    low = np.ascontiguousarray(logits, dtype=np.float32)
    big_h, big_w = original_size
    extent = _extent((low > 0).any(0))
    if extent is None:  # a bilinear value is a convex combination: no positive source, no positive pixel
        return np.zeros((big_h, big_w), bool)
    full_above = _FULL_BELOW if big_h * big_w <= _SCRATCH_MAX else _FULL_BELOW_LARGE
    if big_h * big_w <= _SMALL or _share(extent, low.shape[-2:], input_size, square) > full_above:
        return _full(low, original_size, input_size, square)
    out = np.zeros((big_h, big_w), bool)  # the window's pixels are set below; the rest stays False
    t = torch.from_numpy(low)
    h, w = t.shape[-2:]
    exact = square is not None and square % h == 0 and square % w == 0 and square // h == square // w
    if square is not None:
        ih, iw = input_size
        if exact:  # the positive part of the padded input's grid, cropped to the resized image
            y_lo, y_hi, _ = _axis(h, square)
            x_lo, x_hi, _ = _axis(w, square)
            pr0, pr1 = _span(y_lo, y_hi, extent[0], extent[1])
            pc0, pc1 = _span(x_lo, x_hi, extent[2], extent[3])
            pr1, pc1 = min(pr1, ih), min(pc1, iw)
            if pr0 >= pr1 or pc0 >= pc1:
                return out
        else:  # not an integer scale: the whole padded input, as before
            t = F.interpolate(t[:, None], (square, square), mode="bilinear", align_corners=False)[:, 0, :ih, :iw]
            positive = _extent((t > 0).any(0).numpy())
            if positive is None:
                return out
            pr0, pr1, pc0, pc1 = positive[0], positive[1] + 1, positive[2], positive[3] + 1
        h, w = ih, iw
    else:
        pr0, pr1, pc0, pc1 = extent[0], extent[1] + 1, extent[2], extent[3] + 1
    y_lo, y_hi, y_w = _axis(h, big_h)
    x_lo, x_hi, x_w = _axis(w, big_w)
    r0, r1 = _span(y_lo, y_hi, pr0, pr1 - 1)
    c0, c1 = _span(x_lo, x_hi, pc0, pc1 - 1)
    if (r1 - r0) * (c1 - c0) > full_above * big_h * big_w:
        return _full(low, original_size, input_size, square)
    y_lo, y_hi, y_w = y_lo[r0:r1], y_hi[r0:r1], y_w[r0:r1, None]
    x_lo, x_hi, x_w = x_lo[c0:c1], x_hi[c0:c1], x_w[c0:c1]
    first, last = int(y_lo[0]), int(y_hi[-1]) + 1  # the source rows and columns the window reads
    left, right = int(x_lo[0]), int(x_hi[-1]) + 1
    if exact:
        src = _upsample_exact(t, (first, last), (left, right), square // t.shape[-2])
    else:
        src = t[:, first:last, left:right]
    x_lo, x_hi = x_lo - left, x_hi - left
    # interpolated along x first (as PyTorch does)
    across = src.index_select(2, x_lo) * (1 - x_w) + src.index_select(2, x_hi) * x_w  # B×rows×C
    window = across.index_select(1, y_lo - first) * (1 - y_w) + across.index_select(1, y_hi - first) * y_w
    out[r0:r1, c0:c1] = (window > 0).numpy().any(0)
    return out


def _share(extent: tuple[int, int, int, int], low_size, input_size, square: int | None) -> float:
    """About how much of the photo the positive ``extent`` of the low-resolution logits (``low_size``)
    reaches once upsampled (one source pixel of margin each way), 0..1."""
    h, w = low_size
    if square is not None:  # the photo fills input_size of the square the logits cover
        h, w = h * input_size[0] / square, w * input_size[1] / square
    rows = min(1.0, (extent[1] - extent[0] + 3) / h)
    cols = min(1.0, (extent[3] - extent[2] + 3) / w)
    return rows * cols


def _full(low: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int] | None,
          square: int | None) -> np.ndarray:
    """The whole interpolation with OpenCV's bilinear resize (the same half-pixel source positions and
    weights as PyTorch's ``align_corners=False``), into arrays kept between calls (:func:`_scratch`): values
    within float rounding of PyTorch's (≤ 2.4e-7 measured), so a pixel can differ only where the interpolated
    logit is that close to 0."""
    import cv2

    big_h, big_w = original_size
    out = None
    kept = _SCRATCH_LOCK.acquire(blocking=False)  # another thread resizing at once allocates its own
    try:
        for one in low:
            if square is not None:
                one = cv2.resize(one, (square, square), dst=_scratch("square", (square, square), kept),
                                 interpolation=cv2.INTER_LINEAR)[:input_size[0], :input_size[1]]
            positive = cv2.resize(one, (big_w, big_h), dst=_scratch("image", (big_h, big_w), kept),
                                  interpolation=cv2.INTER_LINEAR) > 0
            out = positive if out is None else out | positive
    finally:
        if kept:
            _SCRATCH_LOCK.release()
    return out


def _scratch(name: str, shape: tuple[int, int], kept: bool) -> np.ndarray | None:
    """A float32 array of ``shape`` kept between calls (one per ``name`` in the process, used under
    ``_SCRATCH_LOCK``: ``kept`` says the caller holds it), up to :data:`_SCRATCH_MAX` values; None otherwise
    (OpenCV allocates). Fresh pages cost more than the resize itself: the two resizes of a 1200×900 click
    4.4-4.9 ms into new arrays, 1.5-1.7 ms into kept ones (medians of 60 here)."""
    if not kept or shape[0] * shape[1] > _SCRATCH_MAX:
        return None
    buf = _SCRATCH.get(name)
    if buf is None or buf.shape != shape:
        buf = _SCRATCH[name] = np.empty(shape, np.float32)
    return buf
