"""autoinpaint: point at an object in a photo and it is gone, or replaced by what you describe.

The pipeline is a chain of small steps (see the sub-modules, one per stage)::

    LoadImage → Segment → RefineMask → Inpaint → Composite → SaveImage

``remove(...)`` and ``run_edit(...)`` run the same pipeline as the ``autoinpaint`` command.
"""
from .api import EditOptions, build_pipeline, remove, run_edit, summary
from .composite import Composite, crop_region
from .errors import AutoinpaintError, InputError, ModelMissingError
from .inpaint import Inpaint, load_inpainter
from .io_steps import LoadImage, SaveImage, SaveMask, SavePreview
from .mask_ops import RefineMask
from .pipeline import Pipeline
from .segment import Segment, load_segmenter
from .selection import Selection
from .state import EditState

__version__ = "0.1.0"

__all__ = ["AutoinpaintError", "Composite", "EditOptions", "EditState", "Inpaint", "InputError", "LoadImage",
           "ModelMissingError", "Pipeline", "RefineMask", "SaveImage", "SaveMask", "SavePreview", "Segment",
           "Selection", "build_pipeline", "crop_region", "load_inpainter", "load_segmenter", "remove",
           "run_edit", "summary"]
