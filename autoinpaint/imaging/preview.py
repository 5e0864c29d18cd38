"""A side-by-side preview: the input with the prompts drawn (and the detections of ``--text`` with their
scores) | the mask over the input (with ``--shadow``, the cast shadow in amber apart from the object's
red) | the result, and under them the mask's verdict
(:mod:`autoinpaint.mask.assess`): "DOUBT: ..." in red, or "mask looks right"."""
from __future__ import annotations

import io

import numpy as np

OBJECT_TINT = (255, 0, 60)    # the mask over the input: the object (and its dilation) in red
SHADOW_TINT = (255, 160, 0)   # ... the cast shadow that --shadow takes with it in amber


def render_preview(state, suffix: str = ".png", height: int = 512) -> bytes:
    """Encode the three panels (each scaled to ``height`` px) as PNG, or JPEG for a .jpg suffix."""
    from PIL import Image

    prompts, overlay, result = panels(state, height)
    gap = np.full((prompts.shape[0], 6, 3), 255, np.uint8)
    panel = np.concatenate([prompts, gap, overlay, gap, result], axis=1)
    quality = state.metadata.get("quality")
    if quality:
        panel = np.concatenate([panel, _caption(quality, panel.shape[1])], axis=0)
    buf = io.BytesIO()
    fmt = "JPEG" if suffix.lower() in (".jpg", ".jpeg") else "PNG"
    Image.fromarray(panel).save(buf, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


def panels(state, height: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input with the prompts drawn, mask over the input, result), each H×W×3 uint8 RGB at most
    ``height`` px high; the result panel is grey when there is no result (nothing was written)."""
    import cv2

    from .pixels import to_rgb8

    base = to_rgb8(state.image)
    h, w = base.shape[:2]
    s = min(1.0, height / h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(base, size, interpolation=cv2.INTER_AREA)
    prompts = small.copy()
    sel = state.selection
    r = max(3, size[1] // 80)
    frame = state.metadata.get("framing")  # background on a canvas: prompts were given on the photo
    if frame:
        fs, (fox, foy) = frame["scale"], frame["offset"]
        sel = _moved(sel, fs, fox, foy)
        detections = [{**d, "box": [v * fs + (fox, foy)[i % 2] for i, v in enumerate(d["box"])]}
                      for d in state.metadata.get("detections", ())]
    else:
        detections = state.metadata.get("detections", ())
    for x0, y0, x1, y1 in sel.boxes + sel.rects:
        cv2.rectangle(prompts, (int(x0 * s), int(y0 * s)), (int(x1 * s), int(y1 * s)), (0, 160, 255), 2)
    for x0, y0, x1, y1 in sel.ellipses:
        cv2.ellipse(prompts, (int((x0 + x1) * s / 2), int((y0 + y1) * s / 2)),
                    (int((x1 - x0) * s / 2), int((y1 - y0) * s / 2)), 0, 0, 360, (0, 160, 255), 2)
    for (x, y), colour in [(p, (0, 220, 0)) for p in sel.points] + [(p, (230, 0, 0)) for p in sel.negatives]:
        cv2.circle(prompts, (int(x * s), int(y * s)), r, colour, -1)
        cv2.circle(prompts, (int(x * s), int(y * s)), r, (255, 255, 255), 1)
    for det in detections:  # --text: what the detector found, with its score
        x0, y0, x1, y1 = (int(v * s) for v in det["box"])
        cv2.rectangle(prompts, (x0, y0), (x1, y1), (255, 0, 255), 2)
        label = f"{det['phrase']} {det['score']:.2f}".encode("ascii", "replace").decode()
        scale = max(0.4, size[1] / 900)
        (tw, th), base_line = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y0 - 3 if y0 - th - base_line - 3 >= 0 else y1 + th + 3
        cv2.rectangle(prompts, (x0, ty - th - 2), (x0 + tw + 2, ty + base_line - 1), (255, 0, 255), -1)
        cv2.putText(prompts, label, (x0 + 1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    alpha = state.alpha if state.alpha is not None else state.mask.astype(np.float32)
    a = cv2.resize(alpha.astype(np.float32), size, interpolation=cv2.INTER_AREA)[..., None]
    shadow = getattr(state, "shadow", None)
    if shadow is not None and shadow.object_alpha is not None:  # --shadow: the shadow in its own colour
        own = cv2.resize(shadow.object_alpha.astype(np.float32), size, interpolation=cv2.INTER_AREA)[..., None]
        cast = np.clip(a - own, 0, 1)
        overlay = (small * (1 - 0.55 * a) + np.array(OBJECT_TINT) * 0.55 * own
                   + np.array(SHADOW_TINT) * 0.55 * cast).astype(np.uint8)
    else:
        overlay = (small * (1 - 0.55 * a) + np.array(OBJECT_TINT) * 0.55 * a).astype(np.uint8)
    result = cv2.resize(to_rgb8(state.result), size, interpolation=cv2.INTER_AREA) \
        if state.result is not None else np.full_like(small, 128)
    if state.result is not None and state.result.shape[2] in (2, 4) and state.info.extra.get("cutout"):
        result = _on_checkerboard(state.result, size)  # a transparent cut-out: show what is see-through
    return prompts, overlay, result


def _moved(sel, scale: float, ox: float, oy: float):
    """The selection's pixel coordinates as placed on a framing canvas (scaled, then shifted)."""
    import dataclasses

    def move(values):
        return tuple(tuple(v * scale + (ox, oy)[i % 2] for i, v in enumerate(item)) for item in values)

    return dataclasses.replace(sel, points=move(sel.points), negatives=move(sel.negatives), boxes=move(sel.boxes),
                               rects=move(sel.rects), ellipses=move(sel.ellipses))


def _on_checkerboard(result: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGBA/LA result (any dtype) over a grey checkerboard, H×W×3 uint8 at ``size``."""
    import cv2

    from .pixels import to_rgb8

    top = float(np.iinfo(result.dtype).max)
    colour = cv2.resize(to_rgb8(result), size, interpolation=cv2.INTER_AREA).astype(np.float32)
    a = cv2.resize(result[..., -1].astype(np.float32) / top, size, interpolation=cv2.INTER_AREA)[..., None]
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    board = np.where(((yy // 8 + xx // 8) % 2 == 0)[..., None], 205.0, 245.0)
    return np.clip(np.rint(colour * a + board * (1 - a)), 0, 255).astype(np.uint8)


def _caption(quality: dict, width: int) -> np.ndarray:
    """A strip under the panels: the mask's verdict (green ok, red doubt) and the reasons, wrapped."""
    import cv2

    doubt = quality.get("verdict") == "doubt"
    text = ("DOUBT: " + "; ".join(quality.get("reasons") or [])) if doubt else "mask looks right"
    text = text.encode("ascii", "replace").decode()
    scale, thick = 0.5, 1
    (cw, ch), _ = cv2.getTextSize("M", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    per_line = max(10, (width - 16) // max(cw, 1))
    lines, line = [], ""
    for word in text.split(" "):
        if len(line) + len(word) + 1 > per_line and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    strip = np.full((12 + len(lines) * (ch + 8), width, 3), (255, 235, 235) if doubt else (235, 250, 235), np.uint8)
    colour = (190, 0, 0) if doubt else (0, 120, 0)
    for i, line in enumerate(lines):
        cv2.putText(strip, line, (8, 8 + ch + i * (ch + 8)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick,
                    cv2.LINE_AA)
    return strip
