"""SAM stage benchmark on this machine; prints a markdown table (also saved to
benchmarks/results/sam.md).

Uses the vit_b architecture with random weights (the same arithmetic as the published model; no
download): the image encoder in fp32 vs the precision ``--precision auto`` picks here (time ratio,
relative error of the embeddings and of the mask logits), then ``autoinpaint mask`` on the same
photo twice, each in its own process, the second with a different point (segment-stage time from
``--json`` and whole wall time), and ``autoinpaint --help`` start-up time.

    .venv/bin/python benchmarks/bench_sam.py [--photo samples/coffee.jpg] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def rel_err(a, b) -> float:
    return float((a.float() - b.float()).norm() / a.float().norm())


def encoder_comparison(ckpt: Path, photo: Path, repeats: int) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from autoinpaint.segment.sam import SamSegmenter

    seg = SamSegmenter(ckpt, device="cpu", precision="auto", cache=False)
    chosen = seg.precision
    image = np.asarray(Image.open(photo).convert("RGB"))
    p = seg.predictor
    resized = p.transform.apply_image(image)
    x = seg.model.preprocess(torch.as_tensor(resized).permute(2, 0, 1)[None].float())
    encoder = seg.model.image_encoder
    times: dict[str, list[float]] = {"fp32": [], chosen: []}
    out = {}
    with torch.inference_mode():
        with seg._autocast():
            encoder(x)  # warm-up: the first call is slower
        for _ in range(repeats):
            for precision in dict.fromkeys(("fp32", chosen)):
                seg.precision = precision
                t = time.perf_counter()
                with seg._autocast():
                    out[precision] = encoder(x).float()
                times[precision].append(time.perf_counter() - t)
        logits = {}
        h, w = image.shape[:2]
        point = np.array([[w * 0.5, h * 0.5]])
        for precision, feats in out.items():
            p.features, p.original_size, p.input_size = feats, (h, w), resized.shape[:2]
            p.is_image_set = True
            _, _, low = p.predict(point, np.array([1]), multimask_output=True, return_logits=True)
            logits[precision] = torch.as_tensor(low)
    fp32, fast = min(times["fp32"]), min(times[chosen])
    masks = {k: v > 0 for k, v in logits.items()}
    inter = (masks["fp32"] & masks[chosen]).sum().item()
    union = (masks["fp32"] | masks[chosen]).sum().item()
    return {"chosen": chosen, "fp32_s": fp32, "chosen_s": fast, "speedup": fp32 / fast,
            "emb_err": rel_err(out["fp32"], out[chosen]),
            "logit_err": rel_err(logits["fp32"], logits[chosen]),
            "mask_iou": inter / union if union else 1.0}


def cli(args: list[str], env: dict) -> tuple[dict, float]:
    t = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "autoinpaint", *args], capture_output=True,
                            text=True, env={**os.environ, **env}, cwd=ROOT)
    wall = time.perf_counter() - t
    if result.returncode != 0:
        raise SystemExit(f"autoinpaint {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout), wall


_SPLIT = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from PIL import Image
from autoinpaint.segment import load_segmenter
from autoinpaint.selection import Selection
image = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
seg = load_segmenter(sys.argv[2])
t1 = time.perf_counter()
seg(image, Selection(points=((float(sys.argv[3]), float(sys.argv[4])),)))
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "call": t2 - t1, "encoder_runs": seg.encoder_runs}))
"""


def split(photo: str, ckpt: Path, x: int, y: int, env: dict) -> dict:
    """In a fresh process: segmenter load (imports + weights) and the segmentation call alone."""
    result = subprocess.run([sys.executable, "-c", _SPLIT, photo, str(ckpt), str(x), str(y)],
                            capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT,
                            check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default=str(ROOT / "samples" / "coffee.jpg"))
    parser.add_argument("--repeats", type=int, default=2, help="encoder timings: best of N")
    args = parser.parse_args()

    from sam_fixtures import save_sam_checkpoint

    load0 = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = save_sam_checkpoint(tmp / "sam_vit_b_random.pth", tiny=False)
        env = {"AUTOINPAINT_HOME": str(tmp / "home"), "AUTOINPAINT_CACHE": str(tmp / "cache")}
        os.environ.update(env)
        enc = encoder_comparison(ckpt, Path(args.photo), args.repeats)

        from PIL import Image
        w, h = Image.open(args.photo).size
        base = ["mask", args.photo, "--segmenter", str(ckpt), "--json", "--dilate", "0",
                "--feather", "0", "-o", str(tmp / "mask.png")]
        first, first_wall = cli([*base, "--point", f"{w // 2},{h // 2}"], env)
        repeat, repeat_wall = cli([*base, "--point", f"{w // 3},{h // 3}"], env)
        # the same split without the CLI, on a fresh cache: load vs segmentation call
        env2 = {**env, "AUTOINPAINT_CACHE": str(tmp / "cache2")}
        s1 = split(args.photo, ckpt, w // 2, h // 2, env2)
        s2 = split(args.photo, ckpt, w // 3, h // 3, env2)
        help_times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "autoinpaint", "--help"], capture_output=True,
                           check=True, cwd=ROOT)
            help_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, segment_anything.predictor"],
                       check=True, cwd=ROOT)
        imports = time.perf_counter() - t

    seg1, seg2 = first["timings"]["segment"], repeat["timings"]["segment"]
    ok = lambda cond: "yes" if cond else "**no**"  # noqa: E731
    rows = [
        ("encoder fp32 (1024 px input)", f"{enc['fp32_s']:.2f} s", "", ""),
        (f"encoder {enc['chosen']} autocast (chosen by `--precision auto`)",
         f"{enc['chosen_s']:.2f} s", f"{enc['speedup']:.2f}x faster", ok(enc["speedup"] >= 1.4)),
        (f"{enc['chosen']} vs fp32: embedding relative error", f"{enc['emb_err']:.4f}", "", ""),
        (f"{enc['chosen']} vs fp32: mask logits relative error / mask IoU",
         f"{enc['logit_err']:.4f} / {enc['mask_iou']:.4f}", "", ""),
        ("`autoinpaint mask` first run: segment stage / wall", f"{seg1:.2f} s / {first_wall:.2f} s",
         "", ""),
        ("`autoinpaint mask` repeat run, other point: segment stage / wall",
         f"{seg2:.3f} s / {repeat_wall:.2f} s", f"segment {seg1 / seg2:.0f}x faster",
         f"{ok(seg1 / seg2 >= 50)} (>=50x); wall {ok(repeat_wall <= 5)} (<=5 s)"),
        ("segmenter load (imports + weights), first / repeat process",
         f"{s1['load']:.2f} s / {s2['load']:.2f} s", "", ""),
        ("segmentation call alone (no imports/load), first / repeat process",
         f"{s1['call']:.2f} s / {s2['call']:.3f} s", f"{s1['call'] / s2['call']:.0f}x faster",
         f"{ok(s1['call'] / s2['call'] >= 50)} (>=50x); encoder runs {s1['encoder_runs']} / "
         f"{s2['encoder_runs']}"),
        ("python -c 'import torch, segment_anything.predictor' (booked under the load timing, part of the wall time)",
         f"{imports:.2f} s", "", ""),
        ("`autoinpaint --help` start-up (best of 5)", f"{min(help_times):.2f} s", "",
         ok(min(help_times) <= 0.5)),
    ]
    lines = [f"SAM stage on this CPU ({os.cpu_count()} cores), vit_b architecture, random weights, "
             f"photo {Path(args.photo).name} {w}x{h}; load average {load0:.1f} at the start, "
             f"{os.getloadavg()[0]:.1f} at the end (other processes slow every number)", "",
             "| measurement | value | ratio | target met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "benchmarks" / "results" / "sam.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
