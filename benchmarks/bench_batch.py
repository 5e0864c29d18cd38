"""Batch benchmark: throughput with 1 and 2 workers, peak memory at 50 vs 500 rows, Ray vs local.

Generated catalogue photos (``scenes.catalogue_photo``, 1–4 MP JPEGs) with the classical path
(``--segmenter classical --inpainter telea``), each configuration run through the real CLI
(``python -m autoinpaint batch``) into a fresh output folder. Peak RSS is the largest sum of the RSS
of the whole process tree (driver + workers), sampled every 50 ms. Prints a markdown table.

    python benchmarks/bench_batch.py                       # the full run: 200 photos, 50 vs 500 rows
    python benchmarks/bench_batch.py --photos 60 --no-ray  # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import catalogue_photo  # noqa: E402

FAST = ["--segmenter", "classical", "--inpainter", "telea"]
SIZES = [(1200, 900), (1600, 1200), (2000, 1500), (2300, 1700)]  # 1.1, 1.9, 3.0, 3.9 MP


def make_photos(folder: Path, n: int, sizes, seed0: int = 0) -> list[dict]:
    """Photos ``cat0000.jpg``... and their sticker points; reused from a previous run in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "points.json"
    known = json.loads(index.read_text()) if index.exists() else {}
    rows = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        path = folder / f"cat{i:04d}.jpg"
        key = f"{path.name}:{w}x{h}:{seed0 + i}"
        if key not in known or not path.exists():
            scene = catalogue_photo(w, h, seed0 + i)
            Image.fromarray(scene.image).save(path, quality=90)
            known[key] = [int(scene.point[0]), int(scene.point[1])]
        rows.append({"input": str(path), "points": [known[key]]})
    index.write_text(json.dumps(known))
    return rows


def write_recipe(path: Path, rows: list[dict]) -> Path:
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_batch(recipe: Path, outdir: Path, *extra: str) -> dict:
    """Run the CLI once; returns its JSON summary plus peak_rss_mb and wall seconds."""
    import psutil

    shutil.rmtree(outdir, ignore_errors=True)
    cmd = [sys.executable, "-m", "autoinpaint", "batch", str(recipe), "-o", str(outdir), "--json", *FAST, *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(ps))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    stop.set()
    t.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    summary.update(peak_rss_mb=peak[0] / 2**20, wall=wall)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=200, help="catalogue photos (1-4 MP) for throughput")
    ap.add_argument("--rows-small", type=int, default=50)
    ap.add_argument("--rows-large", type=int, default=500)
    ap.add_argument("--rss-size", default="640x480", help="photo size for the memory runs (WxH)")
    ap.add_argument("--rss-photos", type=int, default=20, help="distinct photos the memory rows cycle through")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--workdir", default=None, help="keep photos here (default: a temporary folder)")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_batch_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = make_photos(work / "photos", args.photos, SIZES)
    mp = np.mean([SIZES[i % len(SIZES)][0] * SIZES[i % len(SIZES)][1] for i in range(args.photos)]) / 1e6
    recipe = write_recipe(work / "photos.jsonl", rows)
    rw, rh = map(int, args.rss_size.lower().split("x"))
    small = make_photos(work / "small", args.rss_photos, [(rw, rh)], seed0=10_000)
    tmpl = "{stem}_{line}{ext}"
    rss_small = write_recipe(work / "rss_small.jsonl",
                             [dict(small[i % len(small)], output=tmpl) for i in range(args.rows_small)])
    rss_large = write_recipe(work / "rss_large.jsonl",
                             [dict(small[i % len(small)], output=tmpl) for i in range(args.rows_large)])
    print(f"generated {args.photos} photos (mean {mp:.1f} MP) + {args.rss_photos} of {rw}x{rh} "
          f"in {time.perf_counter() - t0:.0f} s under {work}", file=sys.stderr)

    results = {}
    for name, extra in [("local, 1 worker", ["--workers", "1"]),
                        (f"local, {args.workers} workers", ["--workers", str(args.workers)])]:
        results[name] = run_batch(recipe, work / "out", *extra)
        print(f"{name}: {results[name]['images_per_minute']:.1f} img/min", file=sys.stderr)
    if not args.no_ray:
        name = f"ray, {args.workers} actors"
        results[name] = run_batch(recipe, work / "out", "--engine", "ray", "--workers", str(args.workers))
        print(f"{name}: {results[name]['images_per_minute']:.1f} img/min", file=sys.stderr)
    mem = {}
    for n, rec in [(args.rows_small, rss_small), (args.rows_large, rss_large)]:
        mem[n] = run_batch(rec, work / "out_rss", "--workers", str(args.workers))
        print(f"{n} rows: peak RSS {mem[n]['peak_rss_mb']:.0f} MB", file=sys.stderr)

    one = results["local, 1 worker"]["images_per_minute"]
    many = results[f"local, {args.workers} workers"]["images_per_minute"]
    eff = many / (args.workers * one)
    print(f"\n### autoinpaint batch: {args.photos} catalogue photos (mean {mp:.1f} MP, JPEG q90), "
          f"classical path, {len(os.sched_getaffinity(0))} cores\n")
    print("| configuration | images | wall s | images/min | peak RSS (tree) MB |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['done']} | {r['seconds']:.1f} | {r['images_per_minute']:.1f} | {r['peak_rss_mb']:.0f} |")
    print("\n| metric | value | target |\n|---|---:|---|")
    print(f"| parallel efficiency, {args.workers} workers vs 1 | {eff:.0%} | ≥ 85% |")
    a, b = mem[args.rows_small]["peak_rss_mb"], mem[args.rows_large]["peak_rss_mb"]
    print(f"| peak RSS, {args.rows_small} rows → {args.rows_large} rows ({rw}x{rh}, {args.workers} workers) | "
          f"{a:.0f} → {b:.0f} MB ({b / a - 1:+.1%}) | ≤ +10% |")
    if not args.no_ray:
        ray = results[f"ray, {args.workers} actors"]["images_per_minute"]
        print(f"| Ray / local throughput ({args.workers} workers) | {ray / many:.0%} | — |")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
