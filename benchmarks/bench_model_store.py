"""What the model store frees: RSS of this process around the eviction of a diffusion pipeline.

A random-weight SD-1.5-shaped inpainting pipeline, scaled down (UNet channels 64/128/256/256 instead of
320/640/1280/1280; tiny VAE and text encoder from tests/diffusion_fixtures.py), is saved with
``save_pretrained`` and loaded through the real loader (``load_diffusion_inpainter``) into a
:class:`~autoinpaint.models.store.ModelStore`. Then a small model is loaded into the same store with
the bound lowered below the pipeline's size: the pipeline is evicted. RSS (``/proc/self/status``
VmRSS) is read after each stage, without and then with ``gc.collect()``, and the bytes of the torch
tensors still alive are counted; then the pipeline is loaded and evicted three more times.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_model_store.py

Prints a markdown table and the load average. Random weights: sizes and memory only, no quality.
"""
from __future__ import annotations

import gc
import os
import sys
import tempfile
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def live_tensor_bytes() -> int:
    """Bytes of every torch tensor the garbage collector can still reach (the store's small model included)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() on every object touches deprecated torch attributes
        return sum(t.numel() * t.element_size() for t in gc.get_objects() if isinstance(t, torch.Tensor))


def trim() -> None:
    """Hand the allocator's free pages back to the system (glibc), so RSS shows what is really held."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def build(folder: Path) -> None:
    import torch
    from diffusers import PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from diffusion_fixtures import _text_config, _tokenizer, _vae

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(64, 128, 256, 256), layers_per_block=2, sample_size=32,
                                in_channels=9, out_channels=4, cross_attention_dim=32, attention_head_dim=8,
                                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                  "CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                                "CrossAttnUpBlock2D"))
    tokenizer = _tokenizer()
    pipe = StableDiffusionInpaintPipeline(
        unet=unet, vae=_vae(), text_encoder=CLIPTextModel(_text_config(len(tokenizer))), tokenizer=tokenizer,
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)


def main() -> None:
    import torch

    from autoinpaint.inpaint.diffusion import load_diffusion_inpainter
    from autoinpaint.log import configure
    from autoinpaint.models.store import ModelStore

    configure(quiet=True)
    folder = Path(tempfile.mkdtemp(prefix="bench_store_")) / "sd"
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=build, args=(folder,))
    child.start()  # built in another process: this one's RSS starts without the builder's garbage
    child.join()
    gc.collect()
    import diffusers  # noqa: F401 - imported before the first reading, so it does not count as the model
    import transformers  # noqa: F401

    trim()
    rows = [("before loading", rss_mb(), None)]
    store = ModelStore(max_bytes=4 << 30)
    inpainter = load_diffusion_inpainter(str(folder), device="cpu", dtype="fp32", store=store)
    unet = weakref.ref(inpainter.pipe.unet)
    held = store.nbytes
    rows.append(("pipeline loaded (in the store)", rss_mb(), held))
    del inpainter  # what a finished edit does: only the store holds the pipeline now
    store.max_bytes = 1 << 20
    store.get("small", lambda: torch.nn.Linear(64, 64))
    rows.append(("evicted (reference counting only)", rss_mb(), store.nbytes))
    alive_before_gc = unet() is not None
    gc.collect()
    rows.append(("evicted, after gc.collect()", rss_mb(), store.nbytes))
    trim()
    rows.append(("evicted, after malloc_trim(0)", rss_mb(), store.nbytes))
    live = [live_tensor_bytes()]
    for cycle in range(3):  # load and evict again: freed memory is reused, RSS does not grow
        inpainter = load_diffusion_inpainter(str(folder), device="cpu", dtype="fp32", store=store)
        del inpainter
        store.get(("small", cycle), lambda: torch.nn.Linear(64, 64))
        gc.collect()
        trim()
        rows.append((f"load + evict again ({cycle + 1})", rss_mb(), store.nbytes))
        live.append(live_tensor_bytes())
    print(f"Pipeline in the store: {held / 2**20:.1f} MB (parameters + buffers of its components)")
    print()
    print("| stage | RSS MB | store MB |")
    print("|---|---:|---:|")
    for stage, rss, nbytes in rows:
        print(f"| {stage} | {rss:.0f} | {'' if nbytes is None else f'{nbytes / 2**20:.1f}'} |")
    print()
    print(f"UNet alive after the eviction, before gc: {alive_before_gc}; after gc: {unet() is not None}")
    print("live torch tensors after each eviction (MB): " + ", ".join(f"{b / 2**20:.2f}" for b in live))
    print(f"store: loads {store.loads}, evictions {store.evictions}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
