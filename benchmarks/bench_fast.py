"""Fast on the CPU (issue 17): one table, one run, with the load average.

Per segmenter family (published architecture, random weights, saved as the hub has it and loaded
through autoinpaint's loader, each in a fresh process, 1200×900 photo ``samples/catalogue_sticker.jpg``):
load, first click with ``--runtime auto`` (image encoder + prompt decoder + mask upscaling, as
``--json``'s segment time counts it; best of 2, after the very first click of the model, which
exports its ONNX graphs once and is shown apart), repeat click in process with the prompt decoder on
ONNX Runtime and on PyTorch (median of 9 clicks at different points), and the image encoder alone on
PyTorch and on ONNX Runtime with the same thread count (the ``≥ 1.3×`` rule for adopting ONNX for an
encoder).

Then, if ``benchmarks/bench_fast_text.py`` is importable (the OmDet-Turbo / few-step replace branch),
its detect and replace rows; and the web app: ``autoinpaint serve`` in its own process, SAM ViT-B
``.pth`` (random weights), the 1200×900 photo, clicks over HTTP at a person's pace (p50 / p95),
``--runtime onnx`` vs ``--runtime torch`` (bench_serve.py's client).

Masks of random weights are meaningless; their cost is not. Quality is not measured here.

    .venv/bin/python benchmarks/bench_fast.py [--clicks 30] [--families sam-vit-b-pth,edgetam,...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
PHOTO = ROOT / "samples" / "catalogue_sticker.jpg"  # 1200×900
FAMILIES = ("sam-vit-b-pth", "sam-vit-base", "sam-hq-vit-base", "sam2.1-tiny", "edgetam")


def save_family(name: str, workdir: Path) -> Path:
    """``name``'s published architecture with random weights, in the on-disk format it is published in."""
    if name == "sam-vit-b-pth":
        from bench_serve import vit_b

        return vit_b(workdir)
    folder = workdir / f"{name}-random"
    if (folder / "config.json").is_file():
        return folder
    if name == "edgetam":
        import torch
        import transformers as tf
        from hf_sam_fixtures import REPVIT

        config = tf.EdgeTamConfig(vision_config=tf.EdgeTamVisionConfig(backbone_config=tf.TimmWrapperConfig(**REPVIT)))
        torch.manual_seed(0)
        model = tf.EdgeTamModel(config).eval()  # 9.1 M parameters: the normal init is quick
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Embedding)):
                module.reset_parameters()
        model.save_pretrained(folder)
        return folder
    from bench_sam import save_random

    return save_random(name, folder)


_ROW = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, torch
from PIL import Image
from autoinpaint.segment import SegmentParams, embedding_cache
from autoinpaint.segment.hf_sam import HFSamSegmenter
from autoinpaint.segment.sam import SamSegmenter
from autoinpaint.segment.onnx_decoder import PromptDecoder
from autoinpaint.selection import Selection
path, photo, encoders = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
image = np.array(Image.open(photo).convert("RGB"))
h, w = image.shape[:2]
from autoinpaint.device import cpu_is_busy
t = time.perf_counter()
cls = SamSegmenter if path.endswith(".pth") else HFSamSegmenter
seg = cls(path, device="cpu", precision="fp32", cache=False, runtime="auto")  # what a user gets on the CPU
load = time.perf_counter() - t
def first_click():
    embedding_cache._MEMORY.clear()
    t = time.perf_counter()
    emb = seg.embed(image)
    seg.predict(emb, Selection(points=((w * 0.44, h * 0.49),)), SegmentParams())
    return time.perf_counter() - t, emb
export, emb = first_click()  # the very first: exports (once per model) the ONNX graphs it needs
seg.decoder.warm()
firsts = [first_click()[0] for _ in range(2)]
def clicks(n=9):
    times = []
    for i in range(n):
        x, y = w * (0.3 + 0.05 * i), h * (0.6 - 0.04 * i)
        t = time.perf_counter()
        seg.predict(emb, Selection(points=((x, y),)), SegmentParams())
        times.append(time.perf_counter() - t)
    return float(np.median(times))
clicks(2)
repeat_onnx = clicks()
assert seg.decoder.last_runtime == "onnx"
old = seg.decoder
seg.decoder = PromptDecoder("unused", old._build, old._example, "torch", "cpu")
clicks(2)
repeat_torch = clicks()
out = {"load": load, "first": min(firsts), "repeat_torch": repeat_torch, "repeat_onnx": repeat_onnx,
       "export": export, "encoder_runtime": "onnx" if getattr(seg, "onnx_encoder", None) else "torch",
       "params": sum(p.numel() for p in seg.model.parameters()),
       "encoder_torch": None, "encoder_onnx": None, "encoder_note": ""}
if encoders:
    import os, tempfile
    import onnxruntime as ort
    if isinstance(seg, SamSegmenter):
        seg._ensure_encoder()
        module = seg.model.image_encoder
        side = seg.config["img_size"]
    else:
        class Enc(torch.nn.Module):
            def __init__(s, m): super().__init__(); s.m = m
            def forward(s, x):
                out = s.m.get_image_embeddings(x)
                return tuple(out) if isinstance(out, (list, tuple)) else out
        module, side = Enc(seg.model).eval(), seg.image_size
    threads = 1 if cpu_is_busy() else (os.cpu_count() or 1)  # the same for both runtimes
    torch.set_num_threads(threads)
    out["encoder_threads"] = threads
    x = torch.randn(1, 3, side, side)
    with torch.inference_mode():
        module(x)
        times = []
        for _ in range(2):
            t = time.perf_counter(); ref = module(x); times.append(time.perf_counter() - t)
    out["encoder_torch"] = min(times)
    try:
        f = os.path.join(tempfile.mkdtemp(), "enc.onnx")
        t = time.perf_counter()
        with torch.no_grad():
            torch.onnx.export(module, (x,), dynamo=True, opset_version=18, verbose=False).save(f)
        out["encoder_export"] = time.perf_counter() - t
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        s = ort.InferenceSession(f, o, providers=["CPUExecutionProvider"])
        feeds = {s.get_inputs()[0].name: x.numpy()}
        s.run(None, feeds)
        times = []
        for _ in range(2):
            t = time.perf_counter(); s.run(None, feeds); times.append(time.perf_counter() - t)
        out["encoder_onnx"] = min(times)
    except Exception as exc:
        out["encoder_note"] = f"export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
print(json.dumps(out))
"""


def family_row(name: str, path: Path, encoders: bool, workdir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOINPAINT_HOME": str(workdir / "home")}
    result = subprocess.run([sys.executable, "-c", _ROW, str(path), str(PHOTO), "1" if encoders else "0"],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1][:200] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def web_clicks(runtime: str, workdir: Path, clicks: int, pause: float) -> dict:
    """p50 / p95 of ``/mask`` over HTTP, SAM ViT-B .pth, the 1200×900 photo, embedding ready."""
    from bench_serve import POINT, Server, clicks_around, pct, variant, vit_b

    server = Server(str(vit_b(workdir)), workdir, extra=("--runtime", runtime))
    try:
        image, _ = server.open(variant(PHOTO, workdir))
        server.wait_ready(image["id"])
        for p in clicks_around(POINT, 3, image["width"], image["height"]):  # warm-up (ONNX: export or load)
            server.click(image["id"], (p[0] + 200, p[1]))
        times, segment = [], []
        for p in clicks_around(POINT, clicks, image["width"], image["height"]):
            time.sleep(pause)
            elapsed, body = server.click(image["id"], p)
            times.append(elapsed)
            segment.append(body.get("timings", {}).get("segment", 0.0))
        return {"p50": statistics.median(times), "p95": pct(times, 0.95), "segment": statistics.median(segment),
                "n": len(times)}
    finally:
        server.close()


def text_rows() -> list[str] | None:
    try:
        import bench_fast_text  # written on the OmDet-Turbo / few-step replace branch
    except ImportError:
        return None
    rows = []
    for name in ("omdet-turbo", "grounding-dino-tiny"):
        try:
            r = bench_fast_text.measure_detect(name)
            rows.append(f"| detect {name} | load {r.get('load_s')} s | 1 MP {r.get('detect_1mp_s')} s | "
                        f"12 MP {r.get('detect_12mp_s')} s |")
        except Exception as exc:  # a benchmark row, not a crash
            rows.append(f"| detect {name} | failed: {exc} | | |")
    for fast in (False, True):
        try:
            r = bench_fast_text.measure_replace(fast)
            rows.append(f"| replace {'--fast' if fast else 'default'} | {r.get('steps')} steps | "
                        f"{r.get('total_s')} s{' (extrapolated)' if r.get('extrapolated') else ''} | |")
        except Exception as exc:
            rows.append(f"| replace {'--fast' if fast else 'default'} | failed: {exc} | | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_fast"))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--encoders", default="sam-vit-b-pth,sam2.1-tiny,edgetam",
                    help="families whose image encoder is also exported and timed on ONNX Runtime")
    ap.add_argument("--clicks", type=int, default=30)
    ap.add_argument("--pause", type=float, default=0.3)
    ap.add_argument("--no-web", action="store_true")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    import shutil

    shutil.rmtree(args.workdir / "home" / "cache" / "sam" / "onnx", ignore_errors=True)  # time the exports too
    load_before = os.getloadavg()
    t_start = time.time()
    rows = {}
    for name in filter(None, args.families.split(",")):
        path = save_family(name, args.workdir)
        rows[name] = family_row(name, path, name in args.encoders.split(","), args.workdir)
        print(f"{name}: {rows[name]}", file=sys.stderr, flush=True)
    texts = text_rows()
    web = {} if args.no_web else {rt: web_clicks(rt, args.workdir, args.clicks, args.pause) for rt in ("onnx", "torch")}
    load_after = os.getloadavg()

    ms = lambda s: "–" if s is None else f"{1000 * s:.0f} ms"  # noqa: E731
    sec = lambda s: "–" if s is None else f"{s:.2f} s"  # noqa: E731
    print(f"\nbench_fast: {os.cpu_count()} CPU cores, torch {__import__('torch').get_num_threads()} threads, "
          f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} before, "
          f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after ({time.time() - t_start:.0f} s); "
          "published architectures, random weights, fp32, 1200×900 photo\n")
    print("| segmenter | params | load | first click (auto: encoder) | repeat click torch | repeat click onnx | "
          "onnx/torch | very first click (ONNX exports) | encoder torch | encoder onnx | "
          "encoder torch/onnx (threads) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | | | | | | | | |")
            continue
        ratio = f"{r['repeat_onnx'] / r['repeat_torch']:.2f}×"
        enc_ratio = (f"{r['encoder_torch'] / r['encoder_onnx']:.2f}× ({r.get('encoder_threads')})"
                     if r.get("encoder_onnx") else r.get("encoder_note") or "–")
        print(f"| {name} | {r['params'] / 1e6:.1f} M | {sec(r['load'])} | {sec(r['first'])} ({r['encoder_runtime']}) "
              f"| {ms(r['repeat_torch'])} "
              f"| {ms(r['repeat_onnx'])} | {ratio} | {sec(r['export'])} | {sec(r['encoder_torch'])} | "
              f"{sec(r['encoder_onnx'])} | {enc_ratio} |")
    if all(name in rows and "error" not in rows[name] for name in ("edgetam", "sam2.1-tiny")):
        print(f"\nEdgeTAM first click / SAM 2.1 tiny first click: "
              f"{rows['edgetam']['first'] / rows['sam2.1-tiny']['first']:.2f}×")
    print("\n| text / replace (bench_fast_text.py) | | | |\n|---|---|---|---|")
    for line in texts if texts is not None else ["| detect, replace | n/a (not on this branch) | | |"]:
        print(line)
    if web:
        print(f"\n| web app /mask click, SAM ViT-B .pth, 1200×900, {args.pause:g} s between clicks | p50 | p95 | "
              "server segment (median) | n |\n|---|---|---|---|---|")
        for rt, r in web.items():
            print(f"| --runtime {rt} | {ms(r['p50'])} | {ms(r['p95'])} | {ms(r['segment'])} | {r['n']} |")


if __name__ == "__main__":
    main()
