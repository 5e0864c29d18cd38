"""``autoinpaint replace`` and ``autoinpaint fill`` (diffusion), and the ``diffusion_options`` decorator that
every command running a diffusion model applies (``remove`` too, for ``--inpainter sd15|sdxl|ID|PATH``).

Both commands run through the same pipeline as ``remove`` (``run_and_report`` → ``api.run_edit``); only
the action differs. Nothing here imports torch or diffusers.
"""
from __future__ import annotations

import click

from .options import _compose, edit_command

SCHEDULER_CHOICES = ["default", "ddim", "pndm", "euler", "euler-a", "dpm++", "dpm++-karras", "unipc", "lms"]


def _resolution(ctx, param, value):
    if value is None or str(value).lower() in ("", "auto"):
        return None
    from ..errors import InputError
    from ..inpaint.diffusion import parse_resolution

    try:
        w, h = parse_resolution(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None
    return w if w == h else f"{w}x{h}"


diffusion_options = _compose(
    click.option("--prompt", default=None, metavar="TEXT",
                 help="What to paint in the mask (replace/fill: required). remove with a diffusion "
                      "--inpainter: the background prompt (default: an 'empty background' prompt)."),
    click.option("--negative-prompt", default=None, metavar="TEXT",
                 help="What to avoid (default: 'bad anatomy, deformed, ugly, blurry, ...'; remove: "
                      "object-ish words such as 'object, person, animal, text')."),
    click.option("--steps", type=click.IntRange(min=1), default=None, metavar="N",
                 help="Denoising steps (default 30)."),
    click.option("--guidance", type=click.FloatRange(min=0), default=None, metavar="F",
                 help="Classifier-free guidance scale (default 7.5)."),
    click.option("--strength", type=click.FloatRange(min=0, max=1, min_open=True), default=None, metavar="F",
                 help="How much of the masked area is re-noised, 0..1 (default 1.0; SDXL max 0.99; "
                      "remove: 0.6 over a classical pre-fill)."),
    click.option("--seed", type=click.IntRange(min=0), default=None, metavar="N",
                 help="Random seed: the same seed gives the same result (default: random, reported by --json)."),
    click.option("--dtype", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
                 help="Diffusion weights' precision (auto: fp16 on CUDA/MPS; on the CPU bf16 when it has "
                      "bf16 instructions (AMX/AVX512-BF16, measured 1.3-2x faster), else fp32)."),
    click.option("--offload", is_flag=True,
                 help="Model CPU offload (GPU only; also chosen automatically when free VRAM is short)."),
    click.option("--scheduler", default=None, type=click.Choice(SCHEDULER_CHOICES),
                 help="Noise scheduler (default: the model's own)."),
    click.option("--resolution", default=None, callback=_resolution, metavar="PX|WxH",
                 help="Working resolution of the model (default: its native one, 512 SD 1.5, 1024 SDXL)."),
)

model_option = click.option(
    "--model", default="sd15", show_default=True, metavar="sd15|sdxl|sd2|kandinsky22|ID|PATH",
    help="Diffusion model: an alias, a hub id (from the local cache), a diffusers folder or a "
         ".safetensors/.ckpt file.")

EPILOG = "Exit codes: 0 ok; 2 bad input or usage; 3 model missing; 1 unexpected."


@click.command(epilog=EPILOG)
@click.argument("image", type=click.Path(dir_okay=False))
@edit_command
@model_option
@diffusion_options
def replace(image: str, **kw) -> None:
    """Replace the selected object in IMAGE with what --prompt describes.

    The object is selected like for ``remove``; a diffusion model repaints a crop around it
    (--padding-mask-crop) at its working resolution, and only pixels under the mask change.

    \b
    autoinpaint replace photo.jpg --point 412,300 --prompt "a red rose" --seed 7 -o rose.jpg
    """
    from .edit import run_and_report  # lazy: edit.py imports diffusion_options from here

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
    from .edit import run_and_report  # lazy: edit.py imports diffusion_options from here

    run_and_report(image, "fill", kw)
