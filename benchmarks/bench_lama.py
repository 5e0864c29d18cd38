"""LaMa benchmark (issue 11, item 7): big-lama's speed and memory per crop size on this CPU, fp32 vs bf16,
beside the classical inpainters; and crop-and-stitch on a 12 MP photo vs a 1 MP photo.

The network is spandrel's LaMa architecture with big-lama's shapes (51 M parameters) and random weights,
saved as safetensors and loaded through the project's loader (``--inpainter PATH``): the same arithmetic
as the trained model. **Removal quality cannot be measured here**: there are no trained weights on this
machine (no network to model hubs), and random weights paint noise. Only time and memory are reported.

* **per crop**: a square photo-like crop of side S with a blob-shaped hole (≈ 12 % of the crop), run
  through ``LamaInpainter.inpaint`` (mirror padding to a multiple of 8, one forward pass) with
  ``--lama-max-side`` above S, so the model runs at S; ``hybrid`` and ``patchmatch`` on the same crops.
* **crop-and-stitch**: the same 120×90 object in the middle of a 12 MP and of a 1 MP photo
  (``benchmarks/bench_diffusion.py``'s photos), through ``RefineMask`` → ``Inpaint`` (64 px context) →
  ``Composite``; the 12 MP edit should cost at most 1.15× the 1 MP one.

Everything runs in one process, interleaved where it is compared; the load average is printed (the
machine is shared). Run under the benchmark lock:

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_lama.py               # ~20 min on 2 cores
    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_lama.py --sizes 256,512 --bf16-sizes 256
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # lama_fixtures: the random big-lama

from bench_diffusion import PeakRSS, photo, run_ours  # noqa: E402


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def crop(side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A photo-like ``side``² crop and a blob hole (union of three ellipses, ≈ 12 % of the area)."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    img = np.stack([0.3 + 0.4 * xx + 0.05 * np.sin(xx * 90), 0.3 + 0.4 * yy + 0.05 * np.sin(yy * 70),
                    0.5 + 0.1 * np.sin((xx + yy) * 40)], axis=2)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    mask = np.zeros((side, side), np.uint8)
    for cx, cy, a, b in ((0.5, 0.5, 0.16, 0.12), (0.42, 0.56, 0.09, 0.1), (0.58, 0.45, 0.1, 0.07)):
        cv2.ellipse(mask, (int(cx * side), int(cy * side)), (int(a * side), int(b * side)), 0, 0, 360, 255, -1)
    return np.clip(img * 255, 0, 255).astype(np.uint8), mask


def timed(fn, repeats: int, warmup: bool = True):
    """(best seconds of ``repeats`` runs, after one warm-up run unless ``warmup`` is False; peak RSS MiB;
    the last result)."""
    with PeakRSS() as mem:
        out = fn() if warmup else None
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
    return best, mem.peak, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256,512,1024,2048", help="crop sides, px")
    p.add_argument("--bf16-sizes", default="256",
                   help="crop sides timed in bf16 too, one run (on a CPU without bf16 instructions ~80× slower)")
    p.add_argument("--classical-sizes", default="256,512,1024,2048", help="crop sides for hybrid and patchmatch")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per crop ≤ 512 px (one above)")
    p.add_argument("--no-stitch", action="store_true", help="skip the 12 MP vs 1 MP section")
    args = p.parse_args()

    from lama_fixtures import build_lama, save_safetensors

    folder = Path(tempfile.mkdtemp(prefix="bench_lama_"))
    try:
        run(args, save_safetensors(build_lama(0), folder / "big-lama-random.safetensors"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args, weights: Path) -> None:
    import torch

    from autoinpaint.models.device import cpu_has_native_bf16, cpu_is_busy
    from autoinpaint.inpaint import load_inpainter
    from autoinpaint.inpaint.classical import ClassicalInpainter
    from autoinpaint.inpaint.lama import LamaInpainter

    sizes = [int(s) for s in args.sizes.split(",") if s]
    bf16_sizes = {int(s) for s in args.bf16_sizes.split(",") if s}
    classical_sizes = {int(s) for s in args.classical_sizes.split(",") if s}
    print(f"torch {torch.__version__}, CPU {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads, native bf16: {cpu_has_native_bf16()}, "
          f"load average {load_average()}, busy now: {cpu_is_busy()} (one LaMa thread while busy)")
    t = time.perf_counter()
    fp32 = load_inpainter(str(weights), device="cpu", dtype="fp32", lama_max_side=max(sizes))
    load_s = time.perf_counter() - t
    bf16 = load_inpainter(str(weights), device="cpu", dtype="bf16", lama_max_side=max(sizes))
    print(f"load (safetensors → spandrel LaMa, {sum(p.numel() for p in fp32.network.model.parameters()) / 1e6:.1f} M "
          f"parameters): {load_s:.2f} s\n")
    print("Removal quality is not measured: random weights (no trained big-lama on this machine).\n")

    print("### Time per crop (s, best of the timed runs) and peak RSS of the process (MiB)\n")
    print("| crop | LaMa fp32 s | LaMa bf16 s | bf16 time / fp32 time | bf16 vs fp32 mean abs diff (hole, /255) "
          "| hybrid s | patchmatch s | peak RSS MiB (LaMa fp32) | LaMa threads | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    hybrid, patchmatch = ClassicalInpainter("hybrid"), ClassicalInpainter("patchmatch")
    for side in sizes:
        image, mask = crop(side)
        repeats = args.repeats if side <= 512 else 1
        threads = fp32.network._threads() or torch.get_num_threads()
        t32, rss, out32 = timed(lambda: fp32.inpaint(image, mask), repeats)
        cells = [f"{t32:.2f}"]
        if side in bf16_sizes:  # one run: without bf16 instructions it is very slow
            t16, _, out16 = timed(lambda: bf16.inpaint(image, mask), 1, warmup=False)
            diff = np.abs(out16.image.astype(np.float32) - out32.image)[mask > 0].mean()
            cells += [f"{t16:.2f}", f"{t16 / t32:.1f}×", f"{diff:.2f}"]
        else:
            cells += ["not run", "", ""]
        for inp in (hybrid, patchmatch):
            cells.append(f"{timed(lambda: inp.inpaint(image, mask), 1, warmup=False)[0]:.2f}" if side in classical_sizes
                         else "not run")
        print(f"| {side}×{side} | " + " | ".join(cells) + f" | {rss:.0f} | {threads} | {load_average()} |",
              flush=True)

    if args.no_stitch:
        return
    print("\n### Crop-and-stitch: the same 120×90 object on a 12 MP and a 1 MP photo "
          "(RefineMask → Inpaint(LaMa fp32, 64 px context) → Composite)\n")
    from autoinpaint.inpaint import InpaintRequest

    lama: LamaInpainter = load_inpainter(str(weights), device="cpu", dtype="fp32")
    photos = {mp: photo(mp, seed=1) for mp in (12, 1)}
    best = {mp: float("inf") for mp in photos}
    shapes, peaks = {}, {}
    for _ in range(2):  # interleaved: 12, 1, 12, 1
        for mp, (image, mask) in photos.items():
            seconds, peak, _, shape, _ = run_ours(lama, image, mask, InpaintRequest())
            best[mp], shapes[mp], peaks[mp] = min(best[mp], seconds), shape, max(peak, peaks.get(mp, 0))
    print("| photo | size | edit s (best of 2) | peak RSS MiB | load avg |")
    print("|---|---|---|---|---|")
    for mp in photos:
        print(f"| {mp} MP | {shapes[mp][0]}×{shapes[mp][1]} | {best[mp]:.2f} | {peaks[mp]:.0f} | {load_average()} |")
    ratio = best[12] / best[1]
    print(f"\n12 MP / 1 MP = {ratio:.2f}× (target ≤ 1.15×: {'met' if ratio <= 1.15 else 'MISSED'})")


if __name__ == "__main__":
    main()
