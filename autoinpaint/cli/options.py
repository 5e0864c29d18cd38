"""Option groups shared by every command (click decorators), their conversion to the API's types, and
:func:`run_and_report`, the body every single-image command shares. Nothing here imports torch."""
from __future__ import annotations

import contextlib
import functools
import json

import click

from .. import options as schema
from ..api import EditOptions
from ..errors import EXIT_SKIPPED
from ..selection import Selection


def _compose(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


prompt_options = _compose(
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
    click.option("--text", "texts", multiple=True, metavar="PHRASE",
                 help='Say what to select, e.g. --text "price sticker" (repeatable): a detector finds it and '
                      "its boxes go to the segmenter. Nothing found: exit 2, nothing written."),
)

def schema_option(name: str, *flags: str, **overrides):
    """A click option made from the options schema's field ``name`` (autoinpaint/options.py): its help,
    default, bounds (click ranges), choices and text parsing (a callback through the same field), so the
    command line accepts what the API, the web app and recipes accept. ``flags`` default to
    ``--name-with-dashes``; the value always lands in ``name``."""
    import typing

    field = schema.FIELDS[name]
    extra = schema.extra(name)
    kw = {"default": field.default, "help": field.description, "show_default": extra["show_default"],
          "metavar": extra["metavar"]}
    b, choices = schema.bounds(name), schema.choices(name)
    kinds = {a for a in (field.annotation, *typing.get_args(field.annotation)) if a is not type(None)}
    if name in schema.PARSERS:
        kw["callback"] = _parsed
        kw["type"] = click.STRING  # the text goes to the parser as typed (not inferred from the default)
        kw["multiple"] = tuple in {typing.get_origin(k) or k for k in kinds}
    elif choices:
        kw["type"] = click.Choice(list(choices))
        kw.pop("metavar")
    elif bool in kinds:
        kw.pop("metavar")
        if not any("/" in f for f in flags):  # --flag alone (--fill-holes/--no-fill-holes says its default)
            kw.update(is_flag=True, show_default=False)
    elif kinds & {int, float}:
        rng = click.IntRange if int in kinds else click.FloatRange
        kw["type"] = rng(min=b.get("ge", b.get("gt")), max=b.get("le", b.get("lt")), min_open="gt" in b,
                         max_open="lt" in b)
    kw.update(overrides)
    return click.option(*(flags or ("--" + name.replace("_", "-"),)), name, **kw)


def _parsed(ctx, param, value):
    """A value of a field with a text form (``--resolution 1024x768``, ``--padding-mask-crop off``,
    ``--color``, ``--canvas``, ``--lora``) parsed and bounded by the schema, as recipes and the API are."""
    from ..errors import InputError

    try:
        return schema.parse(param.name, value)
    except InputError as exc:
        raise click.BadParameter(_without_name(str(exc), param.name)) from None


def _without_name(message: str, name: str) -> str:
    """``"margin should be ..."`` / ``"margin: ..."`` / ``"--margin: ..."`` → ``"should be ..."`` (click
    names the option)."""
    flag = "--" + name.replace("_", "-")
    for prefix in (f"{name}: ", f"{name} ", f"{flag}: ", f"{flag} "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


detector_options = _compose(
    schema_option("detector"),
    schema_option("box_threshold"),
    schema_option("text_threshold"),
    schema_option("pick"),
    schema_option("max_objects"),
)

selection_options = _compose(prompt_options, detector_options)

mask_options = _compose(
    schema_option("dilate"),
    schema_option("erode"),
    schema_option("feather"),
    schema_option("blur"),
    schema_option("fill_holes", "--fill-holes/--no-fill-holes"),
    schema_option("min_area"),
)

shadow_option = _compose(schema_option("shadow"), schema_option("shadow_grow"), schema_option("shadow_strength"))

_segmenter_option = schema_option("segmenter")
_device_option = schema_option("device")
_precision_option = schema_option("precision")
_runtime_option = schema_option("runtime")
_no_cache_option = schema_option("cache", "--no-cache", flag_value=False)
_sam_select_option = schema_option("sam_select")
_sam_refine_option = schema_option("sam_refine")
_max_pixels_option = schema_option("max_pixels")

model_options = _compose(
    _segmenter_option,
    schema_option("inpainter"),
    schema_option("padding_mask_crop"),
    _device_option,
    _precision_option,
    _runtime_option,
    _no_cache_option,
    _sam_select_option,
    _sam_refine_option,
    _max_pixels_option,
    schema_option("lama_max_side"),
    schema_option("trust_checkpoint"),
)

# the segmentation models only (``background`` keeps the object: no inpainter, no crop)
segment_model_options = _compose(_segmenter_option, _device_option, _precision_option, _runtime_option,
                                 _no_cache_option, _sam_select_option, _sam_refine_option, _max_pixels_option)

output_options = _compose(
    click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Output file; its suffix picks the format (default: the input's, beside it)."),
    click.option("--mask-out", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Also write the final alpha as an 8-bit PNG."),
    click.option("--preview", type=click.Path(dir_okay=False), metavar="PATH",
                 help="Also write input+prompts | mask overlay | result side by side."),
    schema_option("overwrite"),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result and timings."),
    schema_option("quiet", "-q", "--quiet"),
)


doubt_option = schema_option("on_doubt")


def selection_from(kw: dict) -> Selection:
    """Pop the selection options out of a command's keyword arguments."""
    return Selection.from_strings(kw.pop("points"), kw.pop("negatives"), kw.pop("boxes"), kw.pop("rects"),
                                  kw.pop("ellipses"), kw.pop("mask_path"), kw.pop("relative"),
                                  texts=kw.pop("texts", ()))


def options_from(kw: dict) -> EditOptions:
    """Turn the remaining option values into EditOptions (unknown keys are left in ``kw``)."""
    return EditOptions(**{k: kw.pop(k) for k in list(kw) if k in schema.FIELDS})


invert_option = schema_option("invert")


def edit_command(f):
    """All option groups of an editing command, in help order."""
    return functools.wraps(f)(_compose(selection_options, mask_options, invert_option, model_options,
                                       output_options, doubt_option)(f))


SCHEDULER_CHOICES = list(schema.SCHEDULER_CHOICES)  # the keys of inpaint.diffusion_loading.SCHEDULERS

diffusion_settings = _compose(
    schema_option("negative_prompt"),
    schema_option("steps"),
    schema_option("guidance"),
    schema_option("strength"),
    schema_option("seed"),
    schema_option("dtype"),
    schema_option("offload"),
    schema_option("scheduler"),
    schema_option("lora"),
    schema_option("fast"),
    schema_option("resolution"),
)

diffusion_options = _compose(
    schema_option("prompt"),
    diffusion_settings,
)

model_option = schema_option("model")


@contextlib.contextmanager
def progress_bar(enabled: bool, desc: str = "denoising"):
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr (None when not ``enabled``)."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            import sys

            bar = tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr)
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def run_and_report(image: str, action: str, kw: dict) -> None:
    """Shared body of every single-image command: build options, run the pipeline, report. The models
    load into the process's store (:func:`autoinpaint.models.store.default_store`: a command is one
    process), handed to the pipeline here."""
    from ..api import run_edit, summary
    from ..log import configure
    from ..models.store import default_store

    as_json = kw.pop("as_json")
    output, mask_out, preview = kw.pop("output"), kw.pop("mask_out", None), kw.pop("preview", None)
    selection = selection_from(kw)
    options = options_from(kw)
    if as_json:
        options = options.replace(quiet=True)
    configure(quiet=options.quiet)
    with progress_bar(not options.quiet) as progress:
        state = run_edit(image, selection, options, action, output, mask_out, preview, progress,
                         store=default_store())
    record = summary(state, action)
    quality = state.metadata.get("quality") or {}
    if quality.get("verdict") == "doubt":  # one line, even when quiet: the result needs a look
        what = "skipped: nothing written" if state.stop else f"written anyway to {state.output_path}"
        click.echo(f"Warning: the mask is in doubt: {'; '.join(quality['reasons'])} ({what})", err=True)
    if as_json:
        click.echo(json.dumps(record))
    elif not options.quiet and not state.stop and action == "background":
        click.echo(f"{action}: wrote {state.output_path} ({record['mask_pixels']} px of the object kept, "
                   f"{record['timings']['total']:.2f} s)", err=True)
    elif not options.quiet and not state.stop:
        shadow = f", shadow {record['shadow_pixels']} px" if "shadow_pixels" in record else ""
        click.echo(f"{action}: wrote {state.output_path} ({record['mask_pixels']} px edited{shadow}, "
                   f"{record['timings']['total']:.2f} s)", err=True)
    if state.stop:
        raise click.exceptions.Exit(EXIT_SKIPPED)
