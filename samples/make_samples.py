"""Regenerate the sample photos in this folder (deterministic).

    .venv/bin/python samples/make_samples.py

Catalogue photos are drawn by ``benchmarks/scenes.py``; real photos are copied from the
scikit-image wheel (public domain / CC0, see README.md here). Prints each file's documented point.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "benchmarks"))

import scenes  # noqa: E402


def main() -> None:
    points = {}
    for name, (w, h, seed, fmt) in {"catalogue_sticker.jpg": (1200, 900, 7, "JPEG"),
                                    "catalogue_tag.png": (900, 1200, 11, "PNG"),
                                    "catalogue_wide.jpg": (1600, 1000, 23, "JPEG")}.items():
        scene = scenes.sticker_scene(w, h, np.random.default_rng(seed))
        kw = {"quality": 90, "subsampling": 2} if fmt == "JPEG" else {}
        Image.fromarray(scene.image).save(HERE / name, format=fmt, **kw)
        points[name] = {"point": list(scene.point), "box": list(scene.box), "object": "price sticker"}
    for name, src, fmt in (("coffee.jpg", "coffee", "JPEG"), ("rocket.jpg", "rocket", "JPEG"),
                           ("chelsea.png", "chelsea", "PNG")):
        img = scenes.skimage_photo(src)
        Image.fromarray(img).save(HERE / name, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    # a bag-like object on paving with its soft cast shadow (autoinpaint remove --shadow)
    scene = scenes.shadow_scene(640, 480, np.random.default_rng(1), "noise", angle=0.0)
    Image.fromarray(scene.image).save(HERE / "pavement_shadow.jpg", format="JPEG", quality=92)
    points["pavement_shadow.jpg"] = {"point": list(scene.point), "box": list(scene.box), "object": "object with its shadow"}
    print(json.dumps(points, indent=1))


if __name__ == "__main__":
    main()
