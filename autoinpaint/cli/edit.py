"""``autoinpaint remove`` and ``autoinpaint mask``."""
from __future__ import annotations

import click

from ..errors import EXIT_INPUT, EXIT_SKIPPED, exit_codes_help
from .options import diffusion_options, edit_command, run_and_report, shadow_option

EPILOG = exit_codes_help({EXIT_INPUT: "or --on-doubt fail", EXIT_SKIPPED: "--on-doubt skip"})


@click.command(epilog=EPILOG)
@click.argument("image", type=click.Path(dir_okay=False))
@edit_command
@shadow_option
@diffusion_options
def remove(image: str, **kw) -> None:
    """Remove the selected object from IMAGE and fill the hole.

    Select with clicks (--point, --negative), boxes (--box), words (--text) or drawn shapes
    (--rect, --ellipse, --mask). Only pixels under the (dilated, feathered) mask change; every other
    pixel stays bit-identical, and the output keeps the input's size, format, quality and bit depth.

    \b
    autoinpaint remove samples/catalogue_sticker.jpg --point 527,442 -o outputs/clean.jpg
    autoinpaint remove photo.jpg --text "price sticker" -o clean.jpg
    autoinpaint remove pavement.jpg --point 640,410 --shadow -o clean.jpg
    """
    run_and_report(image, "remove", kw)


@click.command(epilog=EPILOG)
@click.argument("image", type=click.Path(dir_okay=False))
@edit_command
@shadow_option
def mask(image: str, **kw) -> None:
    """Write only the mask of the selection in IMAGE (8-bit PNG, 255 = selected).

    With --dilate 0 --feather 0 it is the raw segmentation; with --shadow the object's cast shadow is
    in it too (soft at its penumbra).

    \b
    autoinpaint mask photo.jpg --point 412,300 --dilate 0 --feather 0 -o mask.png
    """
    run_and_report(image, "mask", kw)
