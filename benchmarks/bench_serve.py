"""Web app latency: an HTTP client against a real ``autoinpaint serve`` (uvicorn, its own process);
prints a markdown table.

For each segmenter: open a photo (upload), wait until its embedding is ready, then 50 clicks, each
at a different point (so every one runs the segmenter; a repeated selection would only re-run the
mask stage): the ``/mask`` round trip as the client sees it (median, p95) and the server's own split
(segment = prompt decoder and mask upsampling, mask = RefineMask, encode = alpha PNG + base64).
Also the first click right after opening (it waits for the embedding) and the first click once the
embedding is ready, and the time ``POST /api/images`` takes for a 12 MP JPEG.

SAM is the ViT-B architecture with random weights (the same arithmetic as the published model;
built once into --workdir by ``tests/sam_fixtures.py``); masks of random weights are meaningless,
their cost is not.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_serve.py [--clicks 50] [--pause 0.3]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
STICKER = ROOT / "samples" / "catalogue_sticker.jpg"   # 1200×900 (1.08 MP); sticker at 527,442
POINT = (527, 442)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_12mp(workdir: Path) -> Path:
    """A 4000×3000 JPEG (q92, 2.8 MB): the sticker sample scaled up, with film-like grain."""
    import numpy as np
    from PIL import Image

    path = workdir / "photo_12mp_grain.jpg"
    if not path.exists():
        big = Image.open(STICKER).resize((4000, 3000), Image.Resampling.BICUBIC)
        noise = np.random.default_rng(0).normal(0, 6, (3000, 4000, 3)).astype(np.int16)
        noisy = np.asarray(big).astype(np.int16) + noise
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=92)
    return path


def variant(photo: Path, workdir: Path) -> Path:
    """``photo`` with one pixel changed, as a lossless PNG: its embedding is not in any cache."""
    import numpy as np
    from PIL import Image

    path = workdir / f"{photo.stem}_variant.png"
    if not path.exists():
        pixels = np.asarray(Image.open(photo).convert("RGB")).copy()
        pixels[0, 0] ^= 1
        Image.fromarray(pixels).save(path)
    return path


def vit_b(workdir: Path) -> Path:
    from sam_fixtures import save_sam_checkpoint

    path = workdir / "sam_vit_b_random.pth"
    if not path.exists():
        save_sam_checkpoint(path, tiny=False)
    return path


class Server:
    """``autoinpaint serve`` in its own process on a free port."""

    def __init__(self, segmenter: str, workdir: Path, extra: tuple[str, ...] = ()):
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOINPAINT_HOME": str(workdir / "home")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoinpaint", "serve", "--port", str(self.port), "--no-open", "-q",
             "--segmenter", segmenter, "--device", "cpu", "--no-cache", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        import httpx

        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=600)
        for _ in range(600):
            try:
                if self.http.get("/api/info").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        self.wait_for_segmenter()

    def wait_for_segmenter(self) -> None:
        for _ in range(1200):
            info = self.http.get("/api/info").json()
            if info.get("segmenter") or info.get("segmenter_error"):
                return
            time.sleep(0.1)

    def open(self, path: Path) -> tuple[dict, float]:
        data = path.read_bytes()
        t = time.perf_counter()
        r = self.http.post("/api/images", files={"file": (path.name, data)})
        elapsed = time.perf_counter() - t
        r.raise_for_status()
        return r.json(), elapsed

    def wait_ready(self, image_id: str) -> float:
        t = time.perf_counter()
        while self.http.get(f"/api/images/{image_id}").json()["embedding"] != "ready":
            time.sleep(0.02)
        return time.perf_counter() - t

    def click(self, image_id: str, point) -> tuple[float, dict]:
        t = time.perf_counter()
        r = self.http.post(f"/api/images/{image_id}/mask", json={"points": [list(point)]})
        elapsed = time.perf_counter() - t
        body = r.json()
        if r.status_code != 200 and "empty mask" not in body.get("error", ""):
            raise RuntimeError(body)
        return elapsed, body

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(30)


def clicks_around(center, n: int, w: int, h: int):
    """``n`` distinct points on a spiral around ``center``, inside the image."""
    import math

    cx, cy = center
    for i in range(n):
        r, a = 3 + 1.5 * i, i * 2.4
        yield (min(max(cx + r * math.cos(a), 0), w - 1), min(max(cy + r * math.sin(a), 0), h - 1))


def pct(values, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def measure(name: str, segmenter: str, photo: Path, clicks: int, workdir: Path, big: Path | None,
            pause: float) -> list[dict]:
    rows = []
    server = Server(segmenter, workdir)
    try:
        image, t_open = server.open(photo)
        # first click right after opening: waits for the embedding
        first_open, _ = server.click(image["id"], POINT)
        # the same photo with one pixel changed (a new embedding, not a cache hit): wait, then click
        image, _ = server.open(variant(photo, workdir))
        t_embed = server.wait_ready(image["id"])
        first_ready, _ = server.click(image["id"], (POINT[0] + 1, POINT[1]))
        times, parts = [], {"segment": [], "mask": [], "encode": [], "total": []}
        for p in clicks_around(POINT, clicks, image["width"], image["height"]):
            time.sleep(pause)
            elapsed, body = server.click(image["id"], p)
            times.append(elapsed)
            for k in parts:
                if "timings" in body:
                    parts[k].append(body["timings"].get(k, 0.0))
        drawn = []
        for i in range(20):  # no model: what HTTP, FastAPI, the mask stage and the PNG cost
            t = time.perf_counter()
            server.http.post(f"/api/images/{image['id']}/mask", json={"rects": [[480 + i, 410, 590, 470]]})
            drawn.append(time.perf_counter() - t)
        size = f"{image['width']}×{image['height']}"
        rows.append({"what": f"{name} server: /mask with a drawn rectangle (no model), {size}",
                     "median": statistics.median(drawn), "p95": pct(drawn, 0.95), "n": len(drawn),
                     "split": {}, "first": None})
        rows.append({"what": f"{name}: /mask round trip, {image['width']}×{image['height']}",
                     "median": statistics.median(times), "p95": pct(times, 0.95), "n": len(times),
                     "split": {k: statistics.median(v) for k, v in parts.items() if v},
                     "first": (first_open, first_ready), "open": t_open, "embed": t_embed})
        if big is not None:
            big_image, t_big = server.open(big)
            rows.append({"what": f"{name}: open a 12 MP JPEG ({big.stat().st_size / 1e6:.1f} MB upload)",
                         "median": t_big, "p95": None, "n": 1, "split": {}, "first": None})
            t_ready = server.wait_ready(big_image["id"])
            big_times, big_parts = [], []
            for p in clicks_around((POINT[0] * 10 / 3, POINT[1] * 10 / 3), 10, 4000, 3000):
                elapsed, body = server.click(big_image["id"], p)
                big_times.append(elapsed)
                big_parts.append(body.get("timings", {}))
            rows.append({"what": f"{name}: /mask round trip, 4000×3000 (embedding ready after +{t_ready:.1f} s)",
                         "median": statistics.median(big_times), "p95": pct(big_times, 0.95), "n": len(big_times),
                         "split": {k: statistics.median([t.get(k, 0.0) for t in big_parts])
                                   for k in ("segment", "mask", "encode", "total")}, "first": None})
    finally:
        server.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clicks", type=int, default=50)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_serve"))
    ap.add_argument("--sections", default="sam,classical")
    ap.add_argument("--pause", type=float, default=0.3,
                    help="seconds between clicks, a person's pace (back-to-back clicks keep a core busy, "
                         "and the SAM decoder then takes one thread by the load-average rule)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    big = photo_12mp(args.workdir)
    rows = []
    load_before = os.getloadavg()
    if "sam" in args.sections:
        rows += measure("SAM ViT-B", str(vit_b(args.workdir)), STICKER, args.clicks, args.workdir, big, args.pause)
    if "classical" in args.sections:
        rows += measure("classical", "classical", STICKER, args.clicks, args.workdir, None, args.pause)
    load_after = os.getloadavg()

    ms = lambda s: f"{1000 * s:.0f} ms" if s is not None else "–"  # noqa: E731
    print(f"\nautoinpaint serve, {os.cpu_count()} CPU cores, load average {load_before[0]:.2f} before / "
          f"{load_after[0]:.2f} after; HTTP client in another process (httpx, keep-alive); "
          f"{args.pause:g} s between clicks\n")
    print("| what | median | p95 | n | server split (median): segment / mask / encode / total |")
    print("|---|---|---|---|---|")
    for r in rows:
        split = " / ".join(ms(r["split"].get(k)) for k in ("segment", "mask", "encode", "total")) if r["split"] else ""
        print(f"| {r['what']} | {ms(r['median'])} | {ms(r['p95'])} | {r['n']} | {split} |")
    print()
    for r in rows:
        if r.get("first"):
            print(f"- {r['what'].split(':')[0]}: open {ms(r['open'])}; first click right after opening "
                  f"{ms(r['first'][0])} (it waits for the embedding, which takes {r['embed']:.1f} s alone); "
                  f"first click once the embedding is ready {ms(r['first'][1])}")


if __name__ == "__main__":
    main()
