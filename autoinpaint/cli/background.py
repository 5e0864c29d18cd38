"""``autoinpaint background``: keep the selected object, replace everything else (a colour,
transparent, the photo blurred, or a generated scene), with matted edges and marketplace framing.

Runs through the same pipeline as every command (``run_and_report`` → ``api.run_edit`` →
``api.background_steps``). Nothing here imports torch, OpenCV or pymatting.
"""
from __future__ import annotations

import click

from ..errors import EXIT_INPUT, EXIT_MODEL_MISSING, EXIT_SKIPPED, exit_codes_help
from .options import (_compose, diffusion_settings, doubt_option, model_option, output_options,
                      run_and_report, schema_option, segment_model_options, selection_options)

EPILOG = exit_codes_help({EXIT_INPUT: "a colour that does not parse, a margin outside 0-45 %, a canvas over "
                                      "--max-pixels, an upscale over 2x, a transparent result asked as JPEG; "
                                      "nothing is written",
                          EXIT_MODEL_MISSING: "--prompt", EXIT_SKIPPED: "--on-doubt skip"})


object_options = _compose(schema_option("erode"), schema_option("fill_holes", "--fill-holes/--no-fill-holes"),
                          schema_option("min_area"))

_color_option = schema_option("color")
_matte_option = schema_option("matte")

# --prompt: the scene to generate; --blur is the backdrop's here (the mask's --blur has no use: no fill)
backdrop_options = _compose(_color_option, schema_option("prompt"), schema_option("backdrop_blur", "--blur"),
                            _matte_option)

framing_options = _compose(schema_option("canvas"), schema_option("margin"), schema_option("align"),
                           schema_option("min_side"))


def contact_shadow_options(flag: str):
    """The contact shadow's options: ``background --shadow none|soft``; ``batch --contact-shadow``
    (there ``--shadow`` takes a removed object's cast shadow)."""
    return _compose(schema_option("contact_shadow", flag), schema_option("shadow_opacity"))


# ``autoinpaint batch``'s defaults for ``background`` rows (its --blur is the mask's; rows say ``blur``)
batch_background_options = _compose(_color_option, _matte_option, framing_options,
                                    contact_shadow_options("--contact-shadow"))


@click.command(epilog=EPILOG)
@click.argument("image", type=click.Path(dir_okay=False))
@selection_options
@object_options
@backdrop_options
@framing_options
@contact_shadow_options("--shadow")
@segment_model_options
@model_option
@diffusion_settings
@output_options
@doubt_option
def background(image: str, **kw) -> None:
    """Keep the selected object in IMAGE and replace its background.

    The object is selected like for ``remove`` (clicks, boxes, --text, drawn shapes, --mask) and is
    what is KEPT. Everything else becomes a colour (--color, default white), transparent
    (--color transparent), the photo blurred (--blur PX) or a scene generated from --prompt. Its
    edge is alpha-matted (--matte PX); its core pixels stay bit-identical. --canvas, --margin,
    --align and --min-side frame it for a marketplace; --shadow soft adds a contact shadow.

    \b
    autoinpaint background shoe.jpg --point 410,300 -o shoe.white.jpg
    autoinpaint background shoe.jpg --point 410,300 --color transparent -o shoe.png
    autoinpaint background shoe.jpg --box 120,80,700,560 --canvas 2000x2000 --margin 8 --shadow soft -o s.jpg
    autoinpaint background shoe.jpg --point 410,300 --prompt "on a marble table" --seed 7 -o scene.jpg
    """
    run_and_report(image, "background", kw)
