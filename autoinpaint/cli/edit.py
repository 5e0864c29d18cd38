"""``autoinpaint remove`` and ``autoinpaint mask``."""
from __future__ import annotations

import json

import click

from .options import edit_command, options_from, selection_from
from .replace import diffusion_options


def run_and_report(image: str, action: str, kw: dict) -> None:
    """Shared body of every single-image command: build options, run the pipeline, report."""
    from ..api import run_edit, summary

    as_json = kw.pop("as_json")
    output, mask_out, preview = kw.pop("output"), kw.pop("mask_out", None), kw.pop("preview", None)
    selection = selection_from(kw)
    options = options_from(kw)
    if as_json:
        options = options.replace(quiet=True)
    state = run_edit(image, selection, options, action, output, mask_out, preview)
    record = summary(state, action)
    if as_json:
        click.echo(json.dumps(record))
    elif not options.quiet:
        click.echo(f"{action}: wrote {state.output_path} ({record['mask_pixels']} px edited, "
                   f"{record['timings']['total']:.2f} s)", err=True)


@click.command(epilog="Exit codes: 0 ok; 2 bad input or usage; 3 model missing; 1 unexpected.")
@click.argument("image", type=click.Path(dir_okay=False))
@edit_command
@diffusion_options
def remove(image: str, **kw) -> None:
    """Remove the selected object from IMAGE and fill the hole.

    Select with clicks (--point, --negative), boxes (--box) or drawn shapes (--rect, --ellipse,
    --mask). Only pixels under the (dilated, feathered) mask change; every other pixel stays
    bit-identical, and the output keeps the input's size, format, quality and bit depth.

    \b
    autoinpaint remove samples/catalogue_sticker.jpg --point 527,442 -o outputs/clean.jpg
    """
    run_and_report(image, "remove", kw)


@click.command(epilog="Exit codes: 0 ok; 2 bad input or usage; 3 model missing; 1 unexpected.")
@click.argument("image", type=click.Path(dir_okay=False))
@edit_command
def mask(image: str, **kw) -> None:
    """Write only the mask of the selection in IMAGE (8-bit PNG, 255 = selected).

    With --dilate 0 --feather 0 it is the raw segmentation.

    \b
    autoinpaint mask photo.jpg --point 412,300 --dilate 0 --feather 0 -o mask.png
    """
    run_and_report(image, "mask", kw)
