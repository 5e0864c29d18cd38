"""autoinpaint: point at an object in a photo and it is gone, or replaced by what you describe.

The pipeline is a chain of small steps (see the sub-modules, one per stage)::

    LoadImage → Detect (text → boxes) → Segment → RefineMask → Inpaint → Composite → SaveImage

``remove(...)``, ``background(...)`` (keep the object, replace everything else), ``edit(...)`` and
``run_edit(...)`` run the same pipeline as the ``autoinpaint`` command; :class:`Editor` runs it one stage at a time on an image in memory (the web app's core).
Loaded models are kept in a :class:`ModelStore` (``store=``; the process's own by default).
"""
from .api import (EditOptions, background, build_pipeline, edit, edit_steps, fill, remove, replace, run_edit,
                  summary)
from .composite import Composite, crop_region
from .detect import Detect, DetectParams, Detection, load_detector
from .editor import Editor
from .errors import AutoinpaintError, InputError, ModelMissingError, NotFoundError
from .imaging.io_steps import LoadImage, SaveImage, SaveMask, SavePreview
from .inpaint import Inpaint, InpaintRequest, InpaintResult, load_inpainter
from .mask.refine import RefineMask
from .models.store import ModelStore
from .pipeline import Pipeline
from .segment import Segment, SegmentParams, SegmentResult, load_segmenter
from .selection import Selection
from .state import EditState

__version__ = "0.1.0"

__all__ = ["AutoinpaintError", "Composite", "EditOptions", "EditState", "Editor", "Inpaint", "InpaintRequest",
           "InpaintResult", "InputError", "LoadImage", "ModelMissingError", "Pipeline", "RefineMask", "SaveImage",
           "SaveMask", "SavePreview", "Segment", "SegmentParams", "SegmentResult", "Selection", "build_pipeline",
           "crop_region", "edit", "edit_steps", "fill", "load_inpainter", "load_segmenter", "remove", "replace",
           "run_edit", "summary"]
__all__ += ["background"]
__all__ += ["Detect", "DetectParams", "Detection", "NotFoundError", "load_detector"]
__all__ += ["ModelStore"]
