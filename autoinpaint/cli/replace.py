"""``autoinpaint replace`` and ``autoinpaint fill`` (diffusion).

Both commands run through the same pipeline as ``remove`` (``run_and_report`` → ``api.run_edit``); only
the action differs. Nothing here imports torch or diffusers.
"""
from __future__ import annotations

import click

from .edit import EPILOG
from .options import diffusion_options, edit_command, model_option, run_and_report, shadow_option


@click.command(epilog=EPILOG)
@click.argument("image", type=click.Path(dir_okay=False))
@edit_command
@shadow_option
@model_option
@diffusion_options
def replace(image: str, **kw) -> None:
    """Replace the selected object in IMAGE with what --prompt describes.

    The object is selected like for ``remove``; a diffusion model repaints a crop around it
    (--padding-mask-crop) at its working resolution, and only pixels under the mask change. With
    --shadow the old object's cast shadow is relit (the ground under it comes back); the model paints
    only the object's place.

    \b
    autoinpaint replace photo.jpg --point 412,300 --prompt "a red rose" --seed 7 -o rose.jpg
    autoinpaint replace pavement.jpg --point 640,410 --shadow --prompt "a potted plant" -o plant.jpg
    """
    run_and_report(image, "replace", kw)


@click.command(epilog=EPILOG)
@click.argument("image", type=click.Path(dir_okay=False))
@edit_command
@model_option
@diffusion_options
def fill(image: str, **kw) -> None:
    """Paint what --prompt describes into a drawn region of IMAGE (--rect, --ellipse or --mask).

    \b
    autoinpaint fill photo.jpg --rect 100,80,260,240 --prompt "a potted plant" -o plant.jpg
    """
    run_and_report(image, "fill", kw)
