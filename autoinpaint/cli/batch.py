"""``autoinpaint batch``: run a recipe (or one selection over a folder) through the single-image pipeline."""
from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from ..errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNEXPECTED, exit_codes_help
from .background import batch_background_options
from .options import (diffusion_options, doubt_option, mask_options, model_option, model_options, options_from,
                      schema_option, selection_from, selection_options, shadow_option)

EPILOG = exit_codes_help({EXIT_OK: "every row done, skipped or not_found, i.e. its --text matched nothing: counted "
                                   "apart, nothing written for it; rows in doubt are marked review in the manifest "
                                   "and listed in OUTDIR/review.html",
                          EXIT_INPUT: "unreadable recipe, bad option, missing bucket",
                          EXIT_UNEXPECTED: "or some row failed: see the manifest"},
                         (EXIT_OK, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_UNEXPECTED))


@click.command(epilog=EPILOG)
@click.argument("source", metavar="RECIPE|DIR")
@click.option("-o", "--outdir", required=True, metavar="OUTDIR",
              help="Output folder (created), or a URL such as s3://bucket/cleaned.")
@click.option("--manifest", default=None, metavar="PATH|URL",
              help="Where the manifest goes (default OUTDIR/manifest.jsonl; for an OUTDIR in a store, a local "
                   "file in the cache folder). A URL keeps it in the store.")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Parallel workers (default: the number of cores).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local = a process pool on this machine; ray = Ray Data actors (pip install 'autoinpaint[ray]').")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Join this Ray cluster (e.g. ray://head:10001 or auto); default: start a local Ray.")
@click.option("--cpus-per-worker", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Ray: CPUs each actor reserves.")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Ray: GPUs each actor reserves (fractions share a GPU).")
@click.option("--rows-per-task", type=click.IntRange(min=1), default=None, metavar="N",
              help="Ray: recipe rows per Ray Data task (default: chosen from the measured edit time, about "
                   "2 s of work per task).")
@click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
              help="Native threads per worker (default 1, which keeps outputs bit-reproducible).")
@click.option("--model-memory", type=click.IntRange(min=0), default=None, metavar="MB",
              help="Bound on the loaded models each worker keeps, in MiB (least recently used dropped first; "
                   "the newest is always kept). Default: $AUTOINPAINT_MODEL_MEMORY, else half the memory.")
@click.option("--action", type=click.Choice(["remove", "replace", "fill", "mask", "background"]), default="remove",
              show_default=True, help="Default action for rows that do not say.")
@click.option("--output-template", "template", default=None, metavar="TEMPLATE",
              help="Default output path inside OUTDIR: {stem} {ext} {parent} {name} {line} "
                   "(default {stem}{ext}: the input's name and format).")
@selection_options
@mask_options
@shadow_option
@model_options
@diffusion_options
@model_option
@batch_background_options
@doubt_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@schema_option("quiet", "-q", "--quiet")
def batch(source: str, outdir: str, manifest: str | None, workers: int | None, engine: str,
          ray_address: str | None, cpus_per_worker: float, gpus_per_worker: float, rows_per_task: int | None,
          threads: int | None, model_memory: int | None, action: str, template: str | None, as_json: bool,
          quiet: bool, **kw) -> None:
    """Edit many images: one recipe row per image (JSONL, CSV or YAML), or every image in DIR.

    Selection, mask and model options given here are the defaults of every row; a row overrides any
    of them. Re-running skips rows already done with the same parameters, so a killed batch resumes.
    The recipe, its images and OUTDIR may be URLs (s3://, gs://, az://; https:// to read); credentials
    come from the store's usual environment variables and config files (AWS_ENDPOINT_URL too).

    \b
    autoinpaint batch recipe.jsonl -o cleaned/ --segmenter classical --workers 4
    autoinpaint batch shots/ --point 0.5,0.92 --relative -o cleaned/
    autoinpaint batch shots/ --text "price sticker" -o cleaned/
    autoinpaint batch shots/ --action background --box 0.1,0.1,0.9,0.9 --relative --canvas square -o white/
    autoinpaint batch recipe.csv -o cleaned/ --engine ray --ray-address auto
    autoinpaint batch s3://shop/recipe.csv -o s3://shop/cleaned --engine ray

    \b
    recipe.jsonl:
    {"input": "shots/a.jpg", "points": [[412, 300]]}
    {"input": "shots/b_*.jpg", "box": "0.1,0.8,0.3,0.95", "relative": true, "dilate": 12}
    {"input": "shots/c.jpg", "text": ["price sticker", "watermark"]}
    {"input": "shots/d.jpg", "points": [[412, 300]], "action": "background", "canvas": "square"}
    {"input": "shots/d.jpg", "points": [[640, 410]], "shadow": true}
    """
    from ..batch import BatchFailed, Defaults, run_batch

    selection = selection_from(kw)
    options = options_from(kw).replace(quiet=True)
    defaults = Defaults(selection=selection, options=options, action=action, output=template)
    with _stdout_for_json_only(as_json):
        try:
            result = run_batch(source, outdir, defaults, workers=workers, engine=engine, threads=threads,
                               progress=not (quiet or as_json), quiet=quiet or as_json, ray_address=ray_address,
                               cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                               rows_per_task=rows_per_task, manifest=manifest,
                               log=lambda msg: click.echo(msg, err=True),
                               model_memory=None if model_memory is None else model_memory * 2**20)
        finally:
            if engine == "ray":
                from ..batch.ray_engine import shutdown

                shutdown()
    if as_json:
        click.echo(json.dumps(result))
    elif not quiet:
        not_found = f", {result['not_found']} not found" if result.get("not_found") else ""
        click.echo(f"batch: {result['done']} done, {result['skipped']} skipped, {result['failed']} failed{not_found} of "
                   f"{result['total']} in {result['seconds']:.1f} s ({result['images_per_minute']:.1f} images/min), "
                   f"{result['review']} in doubt; manifest {result['manifest']}", err=True)
    if result.get("review_page"):
        n = result["in_review"]
        click.echo(f"Warning: {n} mask{' is' if n == 1 else 's are'} in doubt: check {'it' if n == 1 else 'them'} "
                   f"in {result['review_page']}", err=True)
    if result.get("stopped"):
        raise BatchFailed(f"{result['outdir']} is full: the batch stopped after {result['total']} rows "
                          f"({result['failed']} failed); free some space and run the same command again "
                          f"(it resumes); see {result['manifest']}")
    if result["failed"]:
        raise BatchFailed(f"{result['failed']} of {result['total']} rows failed; see {result['manifest']}")


@contextlib.contextmanager
def _stdout_for_json_only(as_json: bool):
    """With ``--json``, stdout carries the summary alone: while the batch runs, whatever a library
    prints there (Ray's driver prints its task-retry notes to stdout) goes to stderr."""
    if not as_json:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    real, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout = real
        os.dup2(saved, 1)
        os.close(saved)
