"""Fast text selection and few-step replace (issue 17, parts 3 and 4) on this machine; prints markdown tables
with the load average (also saved to benchmarks/results/fast_text.md).

Published architectures with random weights, nothing downloaded (same arithmetic as the trained models;
*quality* cannot be measured without trained weights, so these numbers are speed only):

* :func:`measure_detect` — a detector saved with ``save_pretrained`` and loaded through autoinpaint's loader:
  load time, then ``detect`` on a 1 MP and a 12 MP catalogue photo (median of ``repeats``, thresholds 0 so
  every box goes through post-processing); :func:`measure_detectors` (what this script runs) loads
  several and times them interleaved, call by call, so their ratio is measured side by side.
  ``omdet-turbo`` (timm Swin-T at 640², CLIP text encoder, 900 queries), ``grounding-dino-tiny`` (Swin-T
  + BERT-base at 800/1333 px), ``mm-grounding-dino-tiny`` (same input, MM Grounding DINO's heads).
* :func:`measure_replace` — the SD 1.5 inpainting architecture (860 M UNet) through the project's
  ``DiffusionInpainter`` on the same 512² crop of a 1 MP photo: the default (30 steps, guidance 7.5: two
  UNet passes per step) against ``--fast`` (a random LoRA with LCM-LoRA's rank fused through the real
  ``apply_loras``, the LCM scheduler, 4 steps, guidance 1: one pass per step). On a CPU 30 default steps
  take tens of minutes, so the default runs ``measured_steps`` steps and its 30-step time is extrapolated:
  the measured run (text encoder, VAE, pre/post, ``measured_steps`` UNet steps) + the remaining steps ×
  the measured seconds per step (median of the steps after the first, which pays one-off costs);
  ``--fast`` runs its 4 steps in full. The table says which is which.

    .venv/bin/python benchmarks/bench_fast_text.py
    .venv/bin/python benchmarks/bench_fast_text.py --detectors omdet-turbo --no-replace
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests", ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

WORKDIR = Path(os.environ.get("AUTOINPAINT_BENCH_DIR", "/tmp/bench_fast_text"))
DETECTORS = ("omdet-turbo", "grounding-dino-tiny", "mm-grounding-dino-tiny")
DEFAULT_STEPS, DEFAULT_GUIDANCE = 30, 7.5
LCM_RANK = 64  # latent-consistency/lcm-lora-sdv1-5's rank
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "time_emb_proj")


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _save_detector(name: str, folder: Path) -> Path:
    from detect_fixtures import save_grounding_dino, save_mm_grounding_dino, save_omdet_turbo

    build = {"omdet-turbo": save_omdet_turbo, "grounding-dino-tiny": save_grounding_dino,
             "mm-grounding-dino-tiny": save_mm_grounding_dino}[name]
    if not (folder / "model.safetensors").exists():
        build(folder, tiny=False)
    return folder


def _load_detector(name: str, workdir: Path):
    from autoinpaint.detect import load_detector

    import timm  # noqa: F401 - imports before the clock: load = reading and building the model
    import torch  # noqa: F401
    import transformers  # noqa: F401

    folder = _save_detector(name, workdir / f"{name}-random")
    t = time.perf_counter()
    detector = load_detector(str(folder), device="cpu")
    return detector, time.perf_counter() - t


def _time_detectors(loaded: dict, repeats: int, workdir: Path) -> list[dict]:
    """Interleaved timings (one call of each detector in turn, ``repeats`` rounds, medians), so that the
    machine's load weighs on every detector alike: ratios are measured side by side."""
    from bench_detect import PHRASE, photos, time_detection

    from autoinpaint.imaging.image_io import load_image

    images = {label.replace(" ", "").lower(): load_image(path)[0] for label, (path, _) in photos(workdir).items()}
    for detector, _ in loaded.values():
        detector.detect(images["1mp"], [PHRASE])  # warm-up (first-call allocations, the text caches)
    samples: dict = {(name, key): ([], []) for name in loaded for key in images}
    for _ in range(repeats):
        for key, image in images.items():
            for name, (detector, _) in loaded.items():
                total, forward, _ = time_detection(detector, image, 1)
                samples[name, key][0].append(total)
                samples[name, key][1].append(forward)
    records = []
    for name, (detector, load) in loaded.items():
        record = {"detector": name, "load_s": round(load, 2), "repeats": repeats, "threads": _threads(),
                  "parameters_m": round(sum(p.numel() for p in detector.model.parameters()) / 1e6, 1)}
        for key in images:
            totals, forwards = samples[name, key]
            record[f"detect_{key}_s"] = round(statistics.median(totals), 3)
            record[f"forward_{key}_s"] = round(statistics.median(forwards), 3)
        records.append(record)
    return records


def measure_detect(name: str, repeats: int = 3, workdir: Path | None = None) -> dict:
    """Load and detection seconds of detector ``name`` (one of :data:`DETECTORS`; published architecture,
    random weights, fp32, CPU). Returns ``{"detector", "parameters_m", "load_s", "detect_1mp_s",
    "detect_12mp_s", "forward_1mp_s", "forward_12mp_s", "repeats", "threads"}``."""
    from autoinpaint.models.store import default_store

    workdir = Path(workdir or WORKDIR)
    workdir.mkdir(parents=True, exist_ok=True)
    default_store().clear()
    (record,) = _time_detectors({name: _load_detector(name, workdir)}, repeats, workdir)
    default_store().clear()
    gc.collect()
    return record


def measure_detectors(names, repeats: int = 3, workdir: Path | None = None) -> list[dict]:
    """:func:`measure_detect` for several detectors, loaded together and timed interleaved (side by side)."""
    from autoinpaint.models.store import default_store

    workdir = Path(workdir or WORKDIR)
    workdir.mkdir(parents=True, exist_ok=True)
    default_store().clear()
    loaded = {name: _load_detector(name, workdir) for name in names}
    records = _time_detectors(loaded, repeats, workdir)
    del loaded
    default_store().clear()
    gc.collect()
    return records


def random_lcm_lora(unet, path: Path, rank: int = LCM_RANK, seed: int = 0) -> Path:
    """A random LoRA of ``rank`` on the UNet's linear layers (:data:`LORA_TARGETS`), in diffusers' LoRA
    safetensors format (``unet.<module>.lora.down/up.weight``), like LCM-LoRA's file. Fused, its values
    cost nothing per step; only load and fuse time depend on it."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(LORA_TARGETS):
            state[f"unet.{name}.lora.down.weight"] = torch.randn(rank, module.in_features, generator=gen) * 0.01
            state[f"unet.{name}.lora.up.weight"] = torch.randn(module.out_features, rank, generator=gen) * 0.01
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def measure_replace(fast: bool, measured_steps: int = 2, resolution: int = 512, workdir: Path | None = None) -> dict:
    """Seconds of one ``replace`` on the same crop (a 120×90 object in a 1 MP photo, run at ``resolution``²)
    with the SD 1.5 inpainting architecture (random weights, the project's CPU dtype rule). ``fast``: the
    LCM-LoRA way (random LoRA fused with ``apply_loras``, LCM scheduler, 4 steps, guidance 1), run in full;
    else the default (30 steps, guidance 7.5), of which ``measured_steps`` run and 30 are extrapolated.
    Returns ``{"mode", "steps", "guidance", "unet_passes_per_step", "measured_steps", "seconds_per_step",
    "other_s", "total_s", "extrapolated", "lora_fuse_s", "dtype", "resolution", "threads"}``."""
    import numpy as np
    import torch
    from bench_diffusion import photo, sd15_inpainting_random

    from autoinpaint.models.device import resolve_device
    from autoinpaint.inpaint import InpaintRequest
    from autoinpaint.inpaint.diffusion import DiffusionInpainter
    from autoinpaint.inpaint.diffusion_loading import _make_scheduler, resolve_dtype
    from autoinpaint.inpaint.lora import FAST_GUIDANCE, FAST_SCHEDULER, FAST_STEPS, Lora, apply_loras

    workdir = Path(workdir or WORKDIR)
    dtype = resolve_dtype("auto", resolve_device("cpu"))
    pipe = sd15_inpainting_random(dtype)
    fuse = 0.0
    if fast:
        path = random_lcm_lora(pipe.unet, workdir / "lcm-lora-random" / "pytorch_lora_weights.safetensors")
        t = time.perf_counter()
        apply_loras(pipe, (Lora(str(path), 1.0, "random LCM-LoRA"),))
        fuse = time.perf_counter() - t
        pipe.scheduler = _make_scheduler(pipe, FAST_SCHEDULER)
        inpainter = DiffusionInpainter(pipe, model="sd15-random", resolution=resolution, device="cpu", dtype=dtype,
                                       scheduler=FAST_SCHEDULER, fast=True, default_steps=FAST_STEPS,
                                       default_guidance=FAST_GUIDANCE, loras=("random LCM-LoRA",))
        steps, guidance = FAST_STEPS, FAST_GUIDANCE
    else:
        inpainter = DiffusionInpainter(pipe, model="sd15-random", resolution=resolution, device="cpu", dtype=dtype)
        steps, guidance = measured_steps, DEFAULT_GUIDANCE
    image, mask = photo(1.0)
    ys, xs = np.nonzero(mask)
    pad = 64  # the crop the Inpaint step cuts (padding_mask_crop 64, grown to a square)
    side = max(xs.max() - xs.min(), ys.max() - ys.min()) + 2 * pad
    cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2
    crop = (slice(cy - side // 2, cy - side // 2 + side), slice(cx - side // 2, cx - side // 2 + side))
    crop_image = np.ascontiguousarray(image[crop])
    crop_mask = (mask[crop] * 255).astype(np.uint8)

    passes: list[tuple[int, float]] = []
    forward = pipe.unet.forward

    def timed(sample, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return forward(sample, *args, **kwargs)
        finally:
            passes.append((int(sample.shape[0]), time.perf_counter() - t0))

    pipe.unet.forward = timed
    request = InpaintRequest(mode="replace", prompt="a red rose", steps=steps, guidance=guidance, seed=0)
    t = time.perf_counter()
    with torch.inference_mode():
        inpainter.inpaint(crop_image, crop_mask, request)
    total = time.perf_counter() - t
    unet_s = sum(s for _, s in passes)
    # the first pass pays one-off costs (oneDNN primitives): s/step is the median of the others
    per_step = statistics.median(s for _, s in passes[1:]) if len(passes) > 1 else unet_s
    other = total - unet_s
    record = {"mode": "fast" if fast else "default", "steps": FAST_STEPS if fast else DEFAULT_STEPS,
              "guidance": guidance, "unet_passes_per_step": passes[0][0] if passes else None,
              "measured_steps": len(passes), "seconds_per_step": round(per_step, 2), "other_s": round(other, 2),
              "lora_fuse_s": round(fuse, 2), "dtype": dtype, "resolution": resolution, "threads": _threads()}
    if fast:
        record.update(total_s=round(total, 1), extrapolated=False)
    else:
        record.update(total_s=round(total + (DEFAULT_STEPS - len(passes)) * per_step, 1), extrapolated=True,
                      measured_total_s=round(total, 1))
    del pipe, inpainter
    gc.collect()
    return record


def _load() -> str:
    a = os.getloadavg()
    return f"{a[0]:.1f} / {a[1]:.1f} / {a[2]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated, '' for none")
    parser.add_argument("--repeats", type=int, default=3, help="detection: median of N")
    parser.add_argument("--no-replace", action="store_true", help="skip the replace table")
    parser.add_argument("--measured-steps", type=int, default=2, help="default replace: steps actually run")
    parser.add_argument("--resolution", type=int, default=512, help="replace: working resolution (SD 1.5: 512)")
    args = parser.parse_args()
    import torch
    import transformers

    out = [f"Run on {os.cpu_count()} cores ({_threads()} torch threads), torch {torch.__version__}, transformers "
           f"{transformers.__version__}; load average at the start {_load()} (1 / 5 / 15 min; other processes "
           "slow every number). Random weights: speed only, no quality.", ""]
    print(out[0], flush=True)
    names = [n for n in args.detectors.split(",") if n]
    rows = measure_detectors(names, args.repeats) if names else []
    for r in rows:
        print(r, file=sys.stderr, flush=True)
    if rows:
        ref = next((r for r in rows if r["detector"] == "grounding-dino-tiny"), None)
        out += [f"Detection (`detect`, median of {args.repeats}, the detectors interleaved call by call, CPU "
                "fp32, thresholds 0; load = `load_detector` of the saved folder, imports excluded), load average "
                f"after: {_load()}", "",
                "| detector | parameters | load | 1 MP detect | 12 MP detect | 12 MP forward | "
                "vs grounding-dino-tiny (1 MP / 12 MP) |",
                "|---|---|---|---|---|---|---|"]
        for r in rows:
            ratio = (f"{r['detect_1mp_s'] / ref['detect_1mp_s']:.2f}× / "
                     f"{r['detect_12mp_s'] / ref['detect_12mp_s']:.2f}×" if ref else "-")
            out.append(f"| {r['detector']} | {r['parameters_m']:.0f}M | {r['load_s']:.1f} s | "
                       f"{r['detect_1mp_s']:.2f} s | {r['detect_12mp_s']:.2f} s | {r['forward_12mp_s']:.2f} s | "
                       f"{ratio} |")
        out.append("")
    if not args.no_replace:
        default = measure_replace(False, args.measured_steps, args.resolution)
        print(default, file=sys.stderr, flush=True)
        fast = measure_replace(True, resolution=args.resolution)
        print(fast, file=sys.stderr, flush=True)
        out += [f"Replace, SD 1.5 inpainting architecture (random weights, {default['dtype']}), the same "
                f"{args.resolution}² crop; load average after: {_load()}", "",
                "| mode | steps | guidance | UNet passes / step | s / step | outside the UNet | total | how |",
                "|---|---|---|---|---|---|---|---|"]
        for r in (default, fast):
            how = (f"extrapolated: {r['measured_steps']} steps run ({r['measured_total_s']} s) + "
                   f"{DEFAULT_STEPS - r['measured_steps']} × s/step" if r["extrapolated"]
                   else f"all {r['measured_steps']} steps run; LoRA fused in {r['lora_fuse_s']} s (load time)")
            out.append(f"| {r['mode']} | {r['steps']} | {r['guidance']} | {r['unet_passes_per_step']} | "
                       f"{r['seconds_per_step']} s | {r['other_s']} s | {r['total_s']} s | {how} |")
        out += ["", f"`--fast` / default: {fast['total_s'] / default['total_s']:.3f}× (target ≤ 0.15×)."]
    out += ["", f"Load average at the end: {_load()}."]
    text = "\n".join(out)
    print("\n".join(out[1:]))
    results = ROOT / "benchmarks" / "results" / "fast_text.md"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(text + "\n")


if __name__ == "__main__":
    main()
