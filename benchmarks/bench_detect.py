"""Text-prompted selection benchmark on this machine; prints markdown tables (also saved to
benchmarks/results/detect.md).

The published architectures with random weights (no download; the same arithmetic as the trained
models): Grounding DINO tiny (Swin-T + BERT-base, 900 queries, 800/1333 px input) and OWLv2 base
(ViT-B/16 at 960x960, 3600 boxes), saved with ``save_pretrained`` and loaded through autoinpaint's
loader. Measured: load time, detection time at 1 MP and 12 MP (of which the network's forward
pass), then ``--text`` -> mask -> removed through the whole pipeline (``run_edit``) with the
classical and the SAM ViT-B (random weights) segmenters.

Detection *quality* cannot be measured here: trained weights cannot be downloaded on this machine,
and random weights find nothing in particular. For the detection timings the thresholds are 0 (every
box goes through post-processing). For the end-to-end timings the network runs in full (its time is
real), then its output for one query is replaced by the sticker's true box, so that the segment and
inpaint stages work on a realistic region instead of an arbitrary one. SAM with random weights still
segments an arbitrary region inside or around that box, so the SAM rows stop at the mask
(``autoinpaint mask``): inpainting an arbitrary region times nothing useful.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_detect.py [--workdir /tmp/bench_detect]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

SIZES = {"1 MP": (1155, 866), "12 MP": (4000, 3000)}
PHRASE = "price sticker"


def photos(workdir: Path) -> dict[str, tuple[Path, tuple[float, float, float, float]]]:
    """Catalogue photos (a product with a price sticker) and the sticker's normalised (cx, cy, w, h)."""
    import numpy as np
    from PIL import Image

    from scenes import sticker_scene

    out = {}
    for label, (w, h) in SIZES.items():
        path = workdir / f"catalogue_{w}x{h}.jpg"
        scene = sticker_scene(w, h, np.random.default_rng(7))
        if not path.exists():
            Image.fromarray(scene.image).save(path, quality=90)
        ys, xs = np.nonzero(scene.mask)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        out[label] = (path, ((x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h))
    return out


def plant_box(model, box):
    """Run the network in full, then make query 0 a sure detection of ``box`` (normalised cx, cy, w, h
    of the image, as Grounding DINO predicts): random weights find nothing, this gives the later stages
    the sticker to work on. Only the end-to-end table uses it."""
    import torch

    original = model.forward

    def forward(*args, input_ids=None, **kwargs):
        out = original(*args, input_ids=input_ids, **kwargs)
        out.pred_boxes[0, 0] = torch.tensor(box, dtype=out.pred_boxes.dtype)
        out.logits[0, 0, :input_ids.shape[1]] = 30.0
        return out

    model.forward = forward


def models(workdir: Path) -> dict[str, Path]:
    from detect_fixtures import save_grounding_dino, save_owlv2
    from sam_fixtures import save_sam_checkpoint

    paths = {"grounding-dino-tiny": workdir / "grounding-dino-tiny-random",
             "owlv2-base": workdir / "owlv2-base-random", "sam": workdir / "sam_vit_b_random.pth"}
    if not (paths["grounding-dino-tiny"] / "model.safetensors").exists():
        save_grounding_dino(paths["grounding-dino-tiny"], tiny=False)
    if not (paths["owlv2-base"] / "model.safetensors").exists():
        save_owlv2(paths["owlv2-base"], tiny=False)
    if not paths["sam"].exists():
        save_sam_checkpoint(paths["sam"], tiny=False)
    return paths


def time_detection(detector, image, repeats: int) -> tuple[float, float, int]:
    """Median seconds of ``detector.detect`` and of the network's forward pass inside it; boxes found."""
    from autoinpaint.detect import DetectParams

    model = detector.model
    original = model.forward
    spent: list[float] = []

    def timed_forward(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    model.forward = timed_forward
    try:
        totals = []
        for _ in range(repeats):
            t = time.perf_counter()
            found = detector.detect(image, [PHRASE], DetectParams(box_threshold=0, text_threshold=0))
            totals.append(time.perf_counter() - t)
    finally:
        del model.forward
    return statistics.median(totals), statistics.median(spent), len(found)


def detection_table(rows, repeats: int, load_start, imports: float) -> str:
    import torch
    import transformers

    now = os.getloadavg()
    lines = [
        f"Detection on this CPU ({os.cpu_count()} cores, torch {torch.__version__}, transformers "
        f"{transformers.__version__}), published architectures with random weights, fp32; load average "
        f"{load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f} at the start, {now[0]:.1f} / "
        f"{now[1]:.1f} / {now[2]:.1f} after this table (other processes slow every number). "
        f"`import torch, transformers`: {imports:.1f} s. Median of {repeats}; phrase \"{PHRASE}\".",
        "",
        "| detector | parameters | load | photo | size | detect (total) | network forward | pre/post-processing "
        "| boxes (threshold 0) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/bench_detect", help="random-weight models and photos (reused)")
    parser.add_argument("--repeats", type=int, default=3, help="detection timings: median of N")
    parser.add_argument("--detectors", default="grounding-dino-tiny,owlv2-base",
                        help="which detectors the first table times (comma-separated)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()

    os.environ.setdefault("AUTOINPAINT_HOME", str(workdir / "home"))
    t = time.perf_counter()
    import numpy as np  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    imports = time.perf_counter() - t
    paths = models(workdir)
    images = photos(workdir)

    from autoinpaint.api import EditOptions, run_edit
    from autoinpaint.detect import load_detector
    from autoinpaint.errors import InputError
    from autoinpaint.imaging.image_io import load_image
    from autoinpaint.selection import Selection

    rows = []
    for name in [n for n in args.detectors.split(",") if n]:
        t = time.perf_counter()
        detector = load_detector(str(paths[name]), device="cpu")
        load = time.perf_counter() - t
        params = sum(p.numel() for p in detector.model.parameters()) / 1e6
        arrays = {label: load_image(path)[0] for label, (path, _) in images.items()}
        detector.detect(arrays["1 MP"], [PHRASE])  # warm-up
        for label, image in arrays.items():
            total, forward, boxes = time_detection(detector, image, args.repeats)
            rows.append((name, f"{params:.0f}M", f"{load:.1f} s", label, f"{image.shape[1]}x{image.shape[0]}",
                         f"{total:.2f} s", f"{forward:.2f} s", f"{total - forward:.2f} s", str(boxes)))

    table1 = detection_table(rows, args.repeats, load_start, imports)
    print(table1, flush=True)

    e2e = []
    detector = load_detector(str(paths["grounding-dino-tiny"]), device="cpu")
    for seg_label, segmenter, action in (("classical", "classical", "remove"),
                                         ("SAM ViT-B", str(paths["sam"]), "mask")):
        for label, (path, box) in images.items():
            plant_box(detector.model, box)
            options = EditOptions(detector=str(paths["grounding-dino-tiny"]), segmenter=segmenter, pick="best",
                                  device="cpu", cache=False, quiet=True)
            suffix = ".png" if action == "mask" else path.suffix  # remove: the input's format
            out = workdir / f"{action}_{seg_label.replace(' ', '_')}_{label.replace(' ', '')}{suffix}"
            try:
                state = run_edit(path, Selection(texts=(PHRASE,)), options, action, output=out)
            except InputError as exc:  # random SAM weights may segment nothing in the box
                e2e.append((seg_label, label, *["-"] * 7, f"({exc})"))
                continue
            finally:
                del detector.model.forward
            tm = state.timings
            (det,) = state.metadata["detections"]
            x0, y0, x1, y1 = det["box"]
            inpaint = f"{tm['inpaint']:.2f}" if action == "remove" else "(mask only)"
            e2e.append((seg_label, label, f"{tm.get('load', 0):.2f}", f"{tm['detect']:.2f}", f"{tm['segment']:.2f}",
                        f"{tm['mask']:.2f}", inpaint, f"{tm['total']:.2f}",
                        f"{x1 - x0:.0f}x{y1 - y0:.0f}", f"{int((state.alpha > 0).sum()):,}"))

    lines = [
        "",
        "`--text` -> mask -> removed (`run_edit`, grounding-dino-tiny with the sticker's box planted in its "
        "output, --pick best, inpainter auto = hybrid, SAM --precision auto, no embedding cache; the SAM rows "
        "stop at the mask, its random weights segment an arbitrary region), seconds per stage, total = the "
        "whole edit including reading and writing the file; `load` = model loading in this run (the detector "
        "was loaded above; SAM on its first row):",
        "",
        "| segmenter | photo | load | detect | segment | mask | inpaint | total | detected box | mask px |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in e2e]
    load_end = os.getloadavg()
    lines += ["", f"Load average at the end: {load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f}. "
              "Detection quality cannot be measured here: without trained weights (no download on this machine) "
              "the network's boxes are arbitrary; these numbers are speed only."]
    table = table1 + "\n" + "\n".join(lines)
    print("\n".join(lines))
    out = ROOT / "benchmarks" / "results" / "detect.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
