"""``autoinpaint background``: keep the selected object, replace everything else (a colour,
transparent, the photo blurred, or a generated scene), with matted edges and marketplace framing.

Runs through the same pipeline as every command (``run_and_report`` → ``api.run_edit`` →
``api.background_steps``). Nothing here imports torch, OpenCV or pymatting.
"""
from __future__ import annotations

import click

from ..api import EditOptions
from ..errors import EXIT_INPUT, EXIT_MODEL_MISSING, EXIT_SKIPPED, exit_codes_help
from .options import (_compose, diffusion_settings, doubt_option, model_option, output_options,
                      run_and_report, segment_model_options, selection_options)

EPILOG = exit_codes_help({EXIT_INPUT: "a colour that does not parse, a margin outside 0-45 %, a canvas over "
                                      "--max-pixels, an upscale over 2x, a transparent result asked as JPEG; "
                                      "nothing is written",
                          EXIT_MODEL_MISSING: "--prompt", EXIT_SKIPPED: "--on-doubt skip"})


def _color(ctx, param, value):
    if value is None:
        return None
    from ..cutout.backdrop import parse_color
    from ..errors import InputError

    try:
        parse_color(value)
    except InputError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
    return value


def _canvas(ctx, param, value):
    if value is None:
        return None
    from ..cutout.framing import parse_canvas
    from ..errors import InputError

    try:
        parse_canvas(value)
    except InputError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
    return value


object_options = _compose(
    click.option("--erode", type=click.IntRange(min=0), default=EditOptions.erode, show_default=True,
                 metavar="PX", help="Shrink the object mask by PX pixels first."),
    click.option("--fill-holes/--no-fill-holes", default=EditOptions.fill_holes, show_default=True,
                 help="Fill holes inside the selected object."),
    click.option("--min-area", type=click.IntRange(min=0), default=EditOptions.min_area, show_default=True,
                 metavar="PX", help="Drop mask islands smaller than PX pixels."),
)

_color_option = click.option(
    "--color", "color", default=None, callback=_color, metavar="white|NAME|#RRGGBB|transparent",
    help="The new background: a colour, or transparent (PNG, WebP, TIFF or AVIF output). Default white.")
_matte_option = click.option(
    "--matte", type=click.IntRange(min=0), default=EditOptions.matte, show_default=True, metavar="PX",
    help="Alpha matting in a band of PX pixels on each side of the mask's edge (hair, fur, soft edges); "
         "0 = a hard edge.")

backdrop_options = _compose(
    _color_option,
    click.option("--prompt", default=None, metavar="TEXT",
                 help="Generate the background from TEXT with the diffusion --model (the whole frame "
                      "outside the object; the object's pixels are kept)."),
    click.option("--blur", "backdrop_blur", type=click.FloatRange(min=0, min_open=True), default=None,
                 metavar="PX", help="Keep the photo's own background, blurred by a Gaussian of PX pixels."),
    _matte_option,
)

framing_options = _compose(
    click.option("--canvas", default=None, callback=_canvas, metavar="square|WxH",
                 help="Put the object on a canvas of this shape (square: sized to the object; WxH: pixels). "
                      "New canvas area takes the background."),
    click.option("--margin", type=click.FloatRange(0, 45), default=None, metavar="PCT",
                 help="Margin on each side, in % of the canvas (0-45; default 5 when framing): the object's "
                      "box fills the rest on its longer side."),
    click.option("--align", type=click.Choice(["center", "bottom"]), default="center", show_default=True,
                 help="Centre the object, or stand it on the bottom margin."),
    click.option("--min-side", type=click.IntRange(min=1), default=None, metavar="PX",
                 help="The canvas's shorter side is at least PX: the object is scaled up (at most 2x; more "
                      "is refused)."),
)


def contact_shadow_options(flag: str):
    """The contact shadow's options: ``background --shadow none|soft``; ``batch --contact-shadow``
    (there ``--shadow`` takes a removed object's cast shadow)."""
    return _compose(
        click.option(flag, "contact_shadow", type=click.Choice(["none", "soft"]), default="none",
                     show_default=True, help="A soft contact shadow under the object, made from its alpha."),
        click.option("--shadow-opacity", type=click.FloatRange(0, 1), default=EditOptions.shadow_opacity,
                     show_default=True, metavar="F", help="How dark the contact shadow is at its darkest, 0..1."),
    )


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
    if kw.get("backdrop_blur") is None:
        kw["backdrop_blur"] = 0.0
    run_and_report(image, "background", kw)
