"""Diffusion benchmark (issue 4, item 8): crop-and-stitch vs the recipe users copy, on photos of growing size.

A UNet, VAE and CLIP text encoder with the real Stable Diffusion 1.5 *inpainting* architecture (9-channel
UNet, 860 M parameters; same arithmetic as the real model) are built from their configs with random
weights: nothing is downloaded. Each photo has the same small object (120×90 px) in the middle.

* **ours**: the project's pipeline steps ``RefineMask`` → ``Inpaint(DiffusionInpainter)`` → ``Composite``
  (crop around the mask with ``padding_mask_crop`` = 64 px, crop resized to 512×512, stitched back);
* **recipe**: resize the whole photo and mask to 512×512, run the same pipeline, no crop (the output is
  512×512; for PSNR it is resized back to the photo's size, the recipe's best case).

Both run the same pipeline object with the same steps, guidance and seed, interleaved size by size in one
process so that time ratios are measured side by side. Memory is the peak RSS (sampled every 5 ms) during
the edit. PSNR is measured against the input on the pixels the edit must keep (alpha = 0).

    .venv/bin/python benchmarks/bench_diffusion.py                  # 0.25, 1, 4, 12 MP; 1 step (~5 min, 2 cores)
    .venv/bin/python benchmarks/bench_diffusion.py --steps 2 --sizes 0.25,12
    .venv/bin/python benchmarks/bench_diffusion.py --sizes "" --compare-dtypes  # one UNet step, fp32 vs bf16
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

DEVICE = "cpu"
OBJECT = (120, 90)  # w, h of the object, px
PADDING = 64


def sd15_inpainting_random(dtype="float32", device="cpu"):
    """StableDiffusionInpaintPipeline with the SD 1.5 inpainting architecture and random weights."""
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    from diffusion_fixtures import _tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
                                block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8,
                                cross_attention_dim=768,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                        block_out_channels=(128, 256, 512, 512),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                        num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                                        hidden_act="quick_gelu", bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=_tokenizer(),
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device, getattr(torch, dtype))


def photo(megapixels: float, seed: int = 0):
    """A 4:3 photo-like image (gradients + texture + noise) with a 120×90 object in the middle."""
    w = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 0.3 + 0.4 * xx / w + 0.05 * np.sin(xx / 13.0)
    img[..., 1] = 0.3 + 0.4 * yy / h + 0.05 * np.sin(yy / 17.0)
    img[..., 2] = 0.5 + 0.1 * np.sin((xx + yy) / 29.0)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    image = np.clip(img * 255, 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), bool)
    x0, y0 = w // 2 - OBJECT[0] // 2, h // 2 - OBJECT[1] // 2
    mask[y0:y0 + OBJECT[1], x0:x0 + OBJECT[0]] = True
    image[mask] = (200, 40, 40)
    return image, mask


class PeakRSS:
    """Peak resident memory (MiB) of this process while the block runs, sampled every 5 ms; on CUDA the
    peak GPU memory allocated by torch instead."""

    def __enter__(self):
        import psutil
        import torch

        self.cuda = torch.cuda.is_available() and DEVICE.startswith("cuda")
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

        self._proc, self._stop, self.peak = psutil.Process(), threading.Event(), 0
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss) / 2**20
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() / 2**20
        return False


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def run_ours(inpainter, image, mask, request):
    from autoinpaint.composite import Composite
    from autoinpaint.inpaint import Inpaint
    from autoinpaint.mask.refine import RefineMask
    from autoinpaint.pipeline import Pipeline
    from autoinpaint.state import EditState

    pipeline = Pipeline([RefineMask(dilate=8, feather=4), Inpaint(inpainter, PADDING, request), Composite()])
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        state = pipeline(EditState(image=image, mask=mask))
        seconds = time.perf_counter() - t0
    keep = state.alpha == 0
    return seconds, mem.peak, psnr(state.result[keep], image[keep]), state.result.shape[1::-1], state.alpha


def run_recipe(pipe, image, mask, alpha, steps, guidance, seed):
    """The copied recipe: ``pipe(prompt, image.resize((512, 512)), mask.resize((512, 512)))``."""
    import torch
    from PIL import Image

    h, w = image.shape[:2]
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        small = Image.fromarray(image).resize((512, 512))
        small_mask = Image.fromarray((alpha > 0).astype(np.uint8) * 255).resize((512, 512))
        out = pipe(prompt="a potted plant", image=small, mask_image=small_mask, num_inference_steps=steps,
                   guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        seconds = time.perf_counter() - t0
    back = np.asarray(out.resize((w, h), Image.BICUBIC))
    keep = alpha == 0
    return seconds, mem.peak, psnr(back[keep], image[keep]), out.size


def compare_dtypes(pipe):
    """One UNet forward (batch 2 = with guidance) at 512 px in fp32 and bf16."""
    import copy

    import torch

    rows = []
    for name in ("float32", "bfloat16"):
        unet = pipe.unet if name == "float32" else copy.deepcopy(pipe.unet).to(torch.bfloat16)
        dt = getattr(torch, name)
        x = torch.randn(2, 9, 64, 64, dtype=dt, device=pipe.unet.device)
        ctx = torch.randn(2, 77, 768, dtype=dt, device=pipe.unet.device)
        with torch.inference_mode():
            best = math.inf
            for _ in range(2):  # the first call includes one-time kernel selection
                t0 = time.perf_counter()
                unet(x, 999, encoder_hidden_states=ctx)
                best = min(best, time.perf_counter() - t0)
            rows.append((name, best))
        del unet
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0.25,1,4,12", help="photo sizes in megapixels")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--compare-dtypes", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size and method; the fastest is reported")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (memory column: peak GPU memory on cuda)")
    ap.add_argument("--dtype", default=None, help="float32 (CPU default) or float16 (CUDA default)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    dtype = args.dtype or ("float16" if args.device.startswith("cuda") else "float32")

    import torch

    from autoinpaint.inpaint import InpaintRequest
    from autoinpaint.inpaint.diffusion import DiffusionInpainter

    t0 = time.perf_counter()
    pipe = sd15_inpainting_random(dtype, args.device)
    build = time.perf_counter() - t0
    params = sum(p.numel() for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.parameters())
    inpainter = DiffusionInpainter(pipe, model="sd15-architecture (random weights)", device=args.device, dtype=dtype)
    request = InpaintRequest(mode="replace", prompt="a potted plant", steps=args.steps, guidance=args.guidance, seed=0)
    print(f"SD 1.5 inpainting architecture, random weights: {params / 1e6:.0f} M parameters, built in {build:.1f} s; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"{args.steps} step(s), guidance {args.guidance}, DDIM, {dtype} on {args.device}, best of {args.repeat}",
          flush=True)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    if sizes:  # warm-up (first-call allocations) at the smallest size
        image, mask = photo(min(sizes))
        run_ours(inpainter, image, mask, request)
    rows = []
    for mp in sizes:
        image, mask = photo(mp)
        h, w = image.shape[:2]
        ours = recipe = None
        for _ in range(args.repeat):  # interleaved; keep the fastest run of each (least disturbed)
            o = run_ours(inpainter, image, mask, request)
            r = run_recipe(pipe, image, mask, o[4], args.steps, args.guidance, 0)
            ours = o if ours is None or o[0] < ours[0] else ours
            recipe = r if recipe is None or r[0] < recipe[0] else recipe
        rows.append((mp, w, h, ours, recipe))
        print(f"  {mp:g} MP done: ours {ours[0]:.1f} s, recipe {recipe[0]:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        del image, mask

    if rows:
        print_table(rows, args.device)
    if args.compare_dtypes:
        print()
        print("| UNet forward, 512 px, batch 2 | seconds |")
        print("|---|---|")
        for name, sec in compare_dtypes(pipe):
            print(f"| {name} | {sec:.1f} |")


def print_table(rows, device) -> None:
    base_t, base_m = rows[0][3][0], rows[0][3][1]
    print()
    mem = "GPU mem" if device.startswith("cuda") else "RSS"
    print(f"| photo | ours: time (s) | ours: × smallest | ours: peak {mem} (MiB) | ours: PSNR outside mask | ours: output "
          f"| recipe: time (s) | recipe: peak {mem} (MiB) | recipe: PSNR outside mask | recipe: output |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mp, w, h, ours, recipe in rows:
        o_t, o_m, o_p, o_size, _ = ours
        r_t, r_m, r_p, r_size = recipe
        fmt = lambda p: "exact (inf)" if math.isinf(p) else f"{p:.1f} dB"  # noqa: E731
        print(f"| {mp:g} MP ({w}×{h}) | {o_t:.1f} | {o_t / base_t:.2f}× | {o_m:.0f} ({o_m / base_m:.2f}×) | "
              f"{fmt(o_p)} | {o_size[0]}×{o_size[1]} | {r_t:.1f} | {r_m:.0f} | {fmt(r_p)} | {r_size[0]}×{r_size[1]} |")


if __name__ == "__main__":
    main()
