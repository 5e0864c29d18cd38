"""Option groups shared by every command (click decorators), their conversion to the API's types, and
:func:`run_and_report`, the body every single-image command shares. Nothing here imports torch."""
from __future__ import annotations

import contextlib
import functools
import json

import click

from ..api import EditOptions
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

detector_options = _compose(
    click.option("--detector", default=EditOptions.detector, show_default=True,
                 metavar="auto|omdet-turbo|grounding-dino-tiny|mm-grounding-dino-tiny|grounding-dino-base|owlv2|"
                         "ID|PATH",
                 help="Model for --text (auto = the first one present here in that order, else omdet-turbo)."),
    click.option("--box-threshold", type=click.FloatRange(0, 1), default=None, metavar="F",
                 help="--text: keep boxes scoring at least F (default 0.30 OmDet-Turbo and Grounding DINO, "
                      "0.10 OWLv2)."),
    click.option("--text-threshold", type=click.FloatRange(0, 1), default=None, metavar="F",
                 help="--text, Grounding DINO: the phrase's own words must score at least F (default 0.25)."),
    click.option("--pick", type=click.Choice(["all", "best", "largest"]), default=EditOptions.pick,
                 show_default=True, help="--text: every detection, or the best / largest one of each phrase."),
    click.option("--max-objects", type=click.IntRange(min=1), default=None, metavar="N",
                 help="--text: keep at most N detections in all (highest scores first)."),
)

selection_options = _compose(prompt_options, detector_options)

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

shadow_option = click.option(
    "--shadow", is_flag=True, default=EditOptions.shadow,
    help="Take the object's cast shadow too: the darker region keeping the ground's colour that touches "
         "the object joins the mask (soft penumbra), and is relit, not painted over. --json adds "
         "shadow_pixels and shadow_darkening.")


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


_segmenter_option = click.option(
    "--segmenter", default="auto", show_default=True,
    metavar="auto|classical|sam|sam:vit_b|sam2.1-tiny|edgetam|NAME|HUB_ID|PATH",
    help="auto = the first SAM model present in the order of `autoinpaint models list` (on the CPU EdgeTAM "
         "first), else the classical OpenCV segmenter. NAME/HUB_ID/folder = a transformers SAM model.")
_device_option = click.option("--device", default="auto", show_default=True,
                              type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Where models run.")
_precision_option = click.option("--precision", default="auto", show_default=True,
                                 type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="SAM encoder precision.")
_runtime_option = click.option(
    "--runtime", default="auto", show_default=True, type=click.Choice(["auto", "torch", "onnx"]),
    help="Where the SAM prompt decoder runs (each click): auto = ONNX Runtime on the CPU when onnxruntime is "
         "installed (exported once per model into the cache), PyTorch on CUDA/MPS.")
_no_cache_option = click.option("--no-cache", "no_cache", is_flag=True,
                                help="Do not read or write the SAM embedding cache.")
_sam_select_option = click.option(
    "--sam-select", default="iou", show_default=True, type=click.Choice(["iou", "largest", "smallest"]),
    help="Which of SAM's candidate masks to keep: highest predicted IoU, largest or smallest.")
_sam_refine_option = click.option(
    "--sam-refine", default=0, show_default=True, type=click.IntRange(0, 5), metavar="N",
    help="Extra SAM passes feeding the mask's low-res logits back as mask_input.")
_max_pixels_option = click.option(
    "--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
    help="Refuse images over N pixels (default 100 million, or $AUTOINPAINT_MAX_PIXELS).")

model_options = _compose(
    _segmenter_option,
    click.option("--inpainter", default="auto", show_default=True,
                 metavar="auto|lama|hybrid|patchmatch|telea|ns|NAME|PATH",
                 help="auto = lama when its weights are present (autoinpaint models download lama), else "
                      "hybrid (PatchMatch detail on Navier-Stokes colours; classical, no weights); "
                      "PATH = LaMa weights, NAME/PATH = a diffusion model."),
    click.option("--padding-mask-crop", default=str(EditOptions.padding_mask_crop), show_default=True,
                 callback=_padding, metavar="PX|off",
                 help="Inpaint only a crop around the mask with PX pixels of context; 'off' = whole image."),
    _device_option,
    _precision_option,
    _runtime_option,
    _no_cache_option,
    _sam_select_option,
    _sam_refine_option,
    _max_pixels_option,
    click.option("--lama-max-side", type=click.IntRange(min=16), default=EditOptions.lama_max_side,
                 show_default=True, metavar="PX",
                 help="LaMa: a crop whose long side is over PX runs downscaled to PX; the fill is "
                      "upscaled back into the hole only."),
    click.option("--trust-checkpoint", is_flag=True,
                 help="LaMa: load weights that need TorchScript or unpickling (which can run code) even "
                      "when their SHA-256 is not one autoinpaint publishes."),
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
    click.option("--overwrite", is_flag=True, help="Allow the output to replace the input file."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result and timings."),
    click.option("-q", "--quiet", is_flag=True, help="No notices or progress on stderr."),
)


doubt_option = click.option(
    "--on-doubt", "on_doubt", type=click.Choice(["write", "skip", "fail"]), default="write", show_default=True,
    help="When the mask is in doubt (a 'Warning:' line says why): write the result anyway, skip "
         "(write nothing, exit code 4; batch: record the row), or fail (exit code 2, write nothing).")


def selection_from(kw: dict) -> Selection:
    """Pop the selection options out of a command's keyword arguments."""
    return Selection.from_strings(kw.pop("points"), kw.pop("negatives"), kw.pop("boxes"), kw.pop("rects"),
                                  kw.pop("ellipses"), kw.pop("mask_path"), kw.pop("relative"),
                                  texts=kw.pop("texts", ()))


def options_from(kw: dict) -> EditOptions:
    """Turn the remaining option values into EditOptions (unknown keys are left in ``kw``)."""
    fields = {f for f in EditOptions.__dataclass_fields__}
    values = {k: kw.pop(k) for k in list(kw) if k in fields}
    if "no_cache" in kw:
        values["cache"] = not kw.pop("no_cache")
    return EditOptions(**values)


invert_option = click.option(
    "--invert", is_flag=True,
    help="Act on everything but the selection (its complement): e.g. remove all but the clicked object.")


def edit_command(f):
    """All option groups of an editing command, in help order."""
    return functools.wraps(f)(_compose(selection_options, mask_options, invert_option, model_options,
                                       output_options, doubt_option)(f))


EXIT_SKIPPED = 4  # --on-doubt skip: the mask was in doubt, nothing was written

# the keys of autoinpaint.inpaint.diffusion_loading.SCHEDULERS (not imported here: --help stays light)
SCHEDULER_CHOICES = ["default", "ddim", "pndm", "euler", "euler-a", "dpm++", "dpm++-karras", "unipc", "lms",
                     "dpm++-sde", "heun", "ddpm", "deis", "lcm", "tcd"]


def _resolution(ctx, param, value):
    if value is None or str(value).lower() in ("", "auto"):
        return None
    from ..errors import InputError
    from ..inpaint.diffusion import parse_resolution  # no torch: geometry only

    try:
        w, h = parse_resolution(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None
    return w if w == h else f"{w}x{h}"


diffusion_settings = _compose(
    click.option("--negative-prompt", default=None, metavar="TEXT",
                 help="What to avoid (default: 'bad anatomy, deformed, ugly, blurry, ...'; remove: "
                      "object-ish words such as 'object, person, animal, text')."),
    click.option("--steps", type=click.IntRange(min=1), default=None, metavar="N",
                 help="Denoising steps (default 30; --fast: 4)."),
    click.option("--guidance", type=click.FloatRange(min=0), default=None, metavar="F",
                 help="Classifier-free guidance scale (default 7.5; --fast: 1, i.e. none)."),
    click.option("--strength", type=click.FloatRange(min=0, max=1, min_open=True), default=None, metavar="F",
                 help="How much of the masked area is re-noised, 0..1 (default 1.0; SDXL max 0.99; "
                      "remove: 0.6 over a classical pre-fill)."),
    click.option("--seed", type=click.IntRange(min=0), default=None, metavar="N",
                 help="Random seed: the same seed gives the same result (default: random, reported by --json)."),
    click.option("--dtype", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
                 help="Diffusion weights' precision (auto: fp16 on CUDA/MPS; on the CPU bf16 when it has "
                      "bf16 instructions (AMX/AVX512-BF16, measured 1.3-2x faster), else fp32). LaMa: fp32 "
                      "or bf16, never fp16 (its FFTs do not support it)."),
    click.option("--offload", is_flag=True,
                 help="Model CPU offload (GPU only; also chosen automatically when free VRAM is short)."),
    click.option("--scheduler", default=None, type=click.Choice(SCHEDULER_CHOICES),
                 help="Noise scheduler (default: the model's own; --fast: lcm). lcm and tcd are few-step "
                      "schedulers for distilled models and LoRAs."),
    click.option("--lora", "lora", multiple=True, metavar="ID|PATH[:SCALE]",
                 help="Fuse a LoRA into the diffusion model (repeatable): a hub id from the local cache, a "
                      ".safetensors file or a folder; SCALE weights it (default 1)."),
    click.option("--fast", is_flag=True,
                 help="Few-step replace: the model family's LCM-LoRA (latent-consistency/lcm-lora-sdv1-5 or "
                      "-sdxl, from the local cache) with the lcm scheduler, 4 steps and guidance 1 (one UNet "
                      "pass per step); --steps/--guidance/--scheduler still override."),
    click.option("--resolution", default=None, callback=_resolution, metavar="PX|WxH",
                 help="Working resolution of the model (default: its native one, 512 SD 1.5, 1024 SDXL)."),
)

diffusion_options = _compose(
    click.option("--prompt", default=None, metavar="TEXT",
                 help="What to paint in the mask (replace/fill: required). remove with a diffusion "
                      "--inpainter: the background prompt (default: an 'empty background' prompt)."),
    diffusion_settings,
)

model_option = click.option(
    "--model", default="sd15", show_default=True, metavar="sd15|sdxl|sd2|kandinsky22|ID|PATH",
    help="Diffusion model: an alias, a hub id (from the local cache), a diffusers folder or a "
         ".safetensors/.ckpt file.")


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
