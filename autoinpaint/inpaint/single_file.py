"""Single-file diffusion checkpoints (``.safetensors`` / ``.ckpt``): which inpainting pipeline and which
diffusers configs they need. Used by the loader and by ``--fast`` (a model's family); diffusers is
imported when a file is read."""
from __future__ import annotations

from ..errors import ModelMissingError


def single_file_class(path: str):
    """Pick the inpainting pipeline class for a single checkpoint file and the diffusers repo that
    holds its component configs."""
    import diffusers
    from diffusers.loaders.single_file_utils import (DIFFUSERS_DEFAULT_PIPELINE_PATHS, infer_diffusers_model_type,
                                                     load_single_file_checkpoint)

    checkpoint = load_single_file_checkpoint(path, local_files_only=True)
    model_type = infer_diffusers_model_type(checkpoint)
    del checkpoint
    if model_type.startswith("xl_"):
        cls = diffusers.StableDiffusionXLInpaintPipeline
    elif model_type in ("v1", "v2", "inpainting", "inpainting_v2"):
        cls = diffusers.StableDiffusionInpaintPipeline
    else:
        raise ModelMissingError(f"{path}: single-file checkpoints of type {model_type!r} are not supported; "
                                "convert it to a diffusers folder (save_pretrained) and pass the folder")
    config = DIFFUSERS_DEFAULT_PIPELINE_PATHS[model_type]["pretrained_model_name_or_path"]
    return cls, config, model_type
