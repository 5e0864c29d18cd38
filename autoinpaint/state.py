"""The edit state that flows through the pipeline steps."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .selection import Selection


@dataclass
class ImageInfo:
    """What must be known about the input file to write the output the same way."""

    path: str | None = None
    format: str = "PNG"             # PIL format name: "PNG", "JPEG", "WEBP", "TIFF", ...
    mode: str = "RGB"               # PIL mode of the decoded pixels: L, LA, RGB, RGBA, I;16, RGB;16, RGBA;16
    icc_profile: bytes | None = None
    exif: bytes | None = None       # with the orientation tag reset to 1 (pixels are stored upright)
    jpeg_qtables: dict | None = None  # the file's quantisation tables, reused on save
    jpeg_quality: int | None = None  # estimated from the quantisation tables (for reports)
    jpeg_subsampling: int | None = None  # PIL's code: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
    dpi: tuple[float, float] | None = None
    orientation: int = 1            # EXIF orientation that was applied on load
    # the file's own representation, written back (autoinpaint/imaging/formats.py has the format x mode table)
    file_mode: str | None = None    # 1, L, LA, P, RGB, RGBA, CMYK, I;16, LA;16, RGB;16, RGBA;16 (None = mode)
    bits: int = 8                   # bits per channel in the file
    compression: str | None = None  # TIFF: PIL's name (tiff_lzw, packbits, jpeg, group4, ...)
    lossless: bool | None = None    # WebP: VP8L (True) or VP8 (False); None where it does not apply
    progressive: bool = False       # JPEG
    palette: np.ndarray | None = field(default=None, repr=False)  # P: N×4 uint8 RGBA (alpha from tRNS)
    native: np.ndarray | None = field(default=None, repr=False)
    # ^ the file's own pixel values (CMYK, palette indices), upright, when the pipeline works on RGB
    extra: dict[str, Any] = field(default_factory=dict)  # XMP, PNG text, GIF background, JPEG comment, tRNS


@dataclass
class EditState:
    """Everything one edit knows; each step reads some fields and fills others.

    image:  H×W×C array (C = 1, 2, 3 or 4), dtype uint8 or uint16, EXIF-oriented, as decoded.
    mask:   H×W bool, the selected object (segmentation, or the given/drawn mask).
    alpha:  H×W float32 in [0, 1]: 1 = replaced, 0 = kept bit-identical; after the mask stage.
    crop:   (x0, y0, x1, y1) half-open region that was inpainted (``padding_mask_crop``).
    inpainted: the inpainter's output for ``crop``, like ``image[y0:y1, x0:x1]``.
    result: H×W×C array like ``image``: the final composited picture.
    timings: seconds per stage (``load``, ``segment``, ``mask``, ``inpaint``, ``composite``, ``save``).
    embeddings: image embeddings by segmenter name (a value or a Future), so a further selection on
        the same state runs only the prompt decoder.
    stop: why the pipeline stopped before its last step (None: it ran to the end).
    foreground: ``background`` action: like ``image``, the kept object's colours with the old
        background taken out at its edge (the matte stage); ``alpha`` is then the object's opacity.
    backdrop: ``background`` action: H×W×4 float32, the new background's colour (the image's value
        scale) and opacity (0..1) that the object is composited over.
    shadow: with ``--shadow``, the objects' cast shadows (:class:`autoinpaint.shadow.CastShadows`) or
        None when none was found; always None without it.
    """

    input_path: str | None = None
    image: np.ndarray | None = None
    info: ImageInfo = field(default_factory=ImageInfo)
    selection: Selection = field(default_factory=Selection)
    mask: np.ndarray | None = None
    alpha: np.ndarray | None = None
    crop: tuple[int, int, int, int] | None = None
    inpainted: np.ndarray | None = None
    result: np.ndarray | None = None
    output_path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    embeddings: dict[str, Any] = field(default_factory=dict, repr=False)
    foreground: np.ndarray | None = field(default=None, repr=False)
    backdrop: np.ndarray | None = field(default=None, repr=False)
    shadow: Any = field(default=None, repr=False)
    stop: str | None = None  # set by a step to end the pipeline early (e.g. "doubt": --on-doubt skip)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image in pixels."""
        h, w = self.image.shape[:2]
        return w, h
