"""Option groups shared by every command (click decorators), and their conversion to the API's types."""
from __future__ import annotations

import functools

import click

from ..api import EditOptions
from ..selection import Selection


def _compose(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


selection_options = _compose(
    click.option("--point", "points", multiple=True, metavar="X,Y",
                 help="Click on the object (repeatable). Pixels of the EXIF-oriented image."),
    click.option("--negative", "negatives", multiple=True, metavar="X,Y",
                 help="Click on what must NOT be selected (repeatable)."),
    click.option("--box", "boxes", multiple=True, metavar="X0,Y0,X1,Y1",
                 help="Box around the object (repeatable; one mask each, united)."),
    click.option("--relative", is_flag=True, help="Coordinates are fractions 0..1 of width and height."),
    click.option("--mask", "mask_path", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Use this mask image (same size as the photo; white = selected)."),
    click.option("--rect", "rects", multiple=True, metavar="X0,Y0,X1,Y1",
                 help="Select a drawn rectangle (repeatable), like ImageDraw.rectangle."),
    click.option("--ellipse", "ellipses", multiple=True, metavar="X0,Y0,X1,Y1",
                 help="Select a drawn ellipse in this bounding box (repeatable)."),
)

mask_options = _compose(
    click.option("--dilate", type=click.IntRange(min=0), default=EditOptions.dilate, show_default=True,
                 metavar="PX", help="Grow the mask by PX pixels (covers halos and shadows at the edge)."),
    click.option("--erode", type=click.IntRange(min=0), default=EditOptions.erode, show_default=True,
                 metavar="PX", help="Shrink the object mask by PX pixels first."),
    click.option("--feather", type=click.IntRange(min=0), default=EditOptions.feather, show_default=True,
                 metavar="PX", help="Soft edge: alpha ramps from 1 to 0 over the outer PX pixels."),
    click.option("--blur", type=click.FloatRange(min=0), default=EditOptions.blur, show_default=True,
                 metavar="N", help="diffusers' mask_processor.blur(N): Gaussian blur of the mask."),
    click.option("--fill-holes/--no-fill-holes", default=EditOptions.fill_holes, show_default=True,
                 help="Fill holes inside the selected object."),
    click.option("--min-area", type=click.IntRange(min=0), default=EditOptions.min_area, show_default=True,
                 metavar="PX", help="Drop mask islands smaller than PX pixels."),
)


def _padding(ctx, param, value):
    if value is None or str(value).lower() in ("none", "off", "full"):
        return None
    try:
        px = int(value)
    except ValueError:
        raise click.BadParameter(f"expected pixels or 'off', got {value!r}") from None
    if px < 0:
        raise click.BadParameter("must be >= 0")
    return px


model_options = _compose(
    click.option("--segmenter", default="auto", show_default=True, metavar="auto|classical|sam|sam:vit_b|PATH",
                 help="auto = SAM when a checkpoint is found, else the classical OpenCV segmenter."),
    click.option("--inpainter", default="auto", show_default=True,
                 metavar="auto|hybrid|patchmatch|telea|ns|NAME|PATH",
                 help="auto = hybrid (PatchMatch detail on Navier-Stokes colours; classical, no weights); "
                      "NAME/PATH = a diffusion model."),
    click.option("--padding-mask-crop", default=str(EditOptions.padding_mask_crop), show_default=True,
                 callback=_padding, metavar="PX|off",
                 help="Inpaint only a crop around the mask with PX pixels of context; 'off' = whole image."),
    click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]),
                 help="Where models run."),
    click.option("--precision", default="auto", show_default=True,
                 type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="SAM encoder precision."),
    click.option("--no-cache", "no_cache", is_flag=True, help="Do not read or write the SAM embedding cache."),
    click.option("--sam-select", default="iou", show_default=True, type=click.Choice(["iou", "largest", "smallest"]),
                 help="Which of SAM's candidate masks to keep: highest predicted IoU, largest or smallest."),
    click.option("--sam-refine", default=0, show_default=True, type=click.IntRange(0, 5), metavar="N",
                 help="Extra SAM passes feeding the mask's low-res logits back as mask_input."),
    click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
                 help="Refuse images over N pixels (default 100 million, or $AUTOINPAINT_MAX_PIXELS)."),
)

output_options = _compose(
    click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Output file; its suffix picks the format (default: the input's, beside it)."),
    click.option("--mask-out", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Also write the final alpha as an 8-bit PNG."),
    click.option("--preview", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Also write input+prompts | mask overlay | result side by side."),
    click.option("--overwrite", is_flag=True, help="Allow the output to replace the input file."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result and timings."),
    click.option("-q", "--quiet", is_flag=True, help="No notices or progress on stderr."),
)


def selection_from(kw: dict) -> Selection:
    """Pop the selection options out of a command's keyword arguments."""
    return Selection.from_strings(kw.pop("points"), kw.pop("negatives"), kw.pop("boxes"), kw.pop("rects"),
                                  kw.pop("ellipses"), kw.pop("mask_path"), kw.pop("relative"))


def options_from(kw: dict) -> EditOptions:
    """Turn the remaining option values into EditOptions (unknown keys are left in ``kw``)."""
    fields = {f for f in EditOptions.__dataclass_fields__}
    values = {k: kw.pop(k) for k in list(kw) if k in fields}
    if "no_cache" in kw:
        values["cache"] = not kw.pop("no_cache")
    return EditOptions(**values)


def edit_command(f):
    """All option groups of an editing command, in help order."""
    return functools.wraps(f)(_compose(selection_options, mask_options, model_options, output_options)(f))
