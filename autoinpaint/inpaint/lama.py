"""LaMa (big-lama, Suvorov et al. 2022, Apache-2.0) for object removal, through spandrel's LaMa
architecture (the network is spandrel's, not a copy).

How a call works (the :class:`~autoinpaint.inpaint.Inpaint` step has already cut a crop around the
mask with ``padding_mask_crop`` px of context; the ``Composite`` step stitches the result back with the
soft alpha, so alpha-0 pixels stay bit-identical):

1. when the crop's long side is over ``max_side`` (``--lama-max-side``) it is downscaled (area
   interpolation) so the long side is ``max_side``; the model's mask is every pixel the hole touches;
2. the image is padded at the bottom and right to a multiple of 8 (at least 16 px) by mirroring, like
   IOPaint (``np.pad(..., "symmetric")``), and the mask likewise, so a hole on the border stays a hole;
3. one forward pass (fp32, or bfloat16 autocast: convolutions in bf16, the FFTs in fp32);
4. the fill is cut back to the crop size (upscaled with cubic interpolation if it was downscaled) and
   only the hole takes it; every other pixel of the crop is the input's.

Weights are read by :mod:`.lama_weights` (formats and the trust rule); the loaded network is kept once
per (file, device, precision) in the model store (:mod:`autoinpaint.models.store`), so inpainters that
differ only in ``max_side`` share it.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelMissingError, ModelRuntimeError
from ..log import notice
from ..models.device import cpu_has_native_bf16, cpu_is_busy, intra_op_threads, resolve_device, resolve_precision
from .base import BaseInpainter, InpaintRequest, InpaintResult

__all__ = ["DEFAULT_MAX_SIDE", "LamaInpainter", "LoadedLama", "load_lama_inpainter", "model_geometry",
           "resolve_lama_precision"]

DEFAULT_MAX_SIDE = 1024  # px; see benchmarks/bench_lama.py (time and memory per crop size on a CPU)
MIN_SIDE = 16  # three stride-2 stages, then 3×3 reflect-padded convolutions need 2 px: 16 px in
MULTIPLE = 8
FP16_REFUSAL = ("--dtype fp16: LaMa's Fourier convolutions (torch.fft) do not support float16 (on the CPU "
                "torch.fft raises 'Unsupported dtype Half'; cuFFT takes half only for power-of-two sizes, "
                "and spandrel marks LaMa supports_half=False); use fp32 or bf16")
BF16_TOLERANCE = 2 / 255  # mean |bf16 - fp32| in the hole that auto precision accepts
BF16_MIN_SPEEDUP = 1.15
BF16_PROBE = 128  # px side of the crop the bf16 check times


# ---------------------------------------------------------------------------------------------- geometry
def model_geometry(width: int, height: int, max_side: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((w, h) the crop is resized to, (W, H) it is padded to) for a ``width``×``height`` crop:
    the long side at most ``max_side``, then padded to multiples of 8, at least 16."""
    scale = min(1.0, max_side / max(width, height))
    w, h = (max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1 else (width, height)
    pad = tuple(max(MIN_SIDE, -(-v // MULTIPLE) * MULTIPLE) for v in (w, h))
    return (w, h), pad  # type: ignore[return-value]


def _pad(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    widths = [(0, h - array.shape[0]), (0, w - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="symmetric")


# ------------------------------------------------------------------------------------------------ network
@dataclass
class LoadedLama:
    """spandrel's LaMa module (weights loaded, eval mode) on ``device``, run in ``precision`` (``fp32``,
    or ``bf16`` autocast); ``lock`` serialises calls; ``source``: the weights file read."""

    model: Any
    device: str
    precision: str
    source: Path
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _threads(self) -> int | None:
        """Intra-op threads for one pass on the CPU: ``$AUTOINPAINT_LAMA_THREADS``, else one while
        other work occupies every core (:func:`~autoinpaint.models.device.cpu_is_busy`), else torch's."""
        if self.device != "cpu":
            return None
        forced = os.environ.get("AUTOINPAINT_LAMA_THREADS", "").strip()
        if forced.isdigit() and int(forced) > 0:
            return int(forced)
        return 1 if cpu_is_busy() else None

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 and H×W bool (H, W multiples of 8, ≥ 16) → the model's H×W×3 uint8 output."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div_(255)
        m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
        autocast = (torch.autocast(self.device.split(":")[0], torch.bfloat16) if self.precision == "bf16"
                    else contextlib.nullcontext())
        with self.lock, torch.inference_mode(), intra_op_threads(self._threads()):
            with autocast:
                out = self.model(x.to(self.device), m.to(self.device))
            out = out.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8)
            return out[0].permute(1, 2, 0).cpu().numpy()


def _build(weights, device: str, precision: str) -> LoadedLama:
    """spandrel's LaMa for ``weights``: built on the meta device (spandrel's strict load checks every
    key and shape there; no random initialisation of 51M parameters: 0.9 s instead of 7 s on a busy
    2-core CPU), then the file's tensors are assigned, in fp32."""
    import warnings

    import torch
    from spandrel.architectures.LaMa import LaMaArch

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter")
            descriptor = LaMaArch().load(weights.state)
        descriptor.model.load_state_dict(weights.state, strict=True, assign=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ModelMissingError(f"{weights.source} does not match spandrel's LaMa architecture "
                                f"({str(exc).strip().splitlines()[0][:160]})") from None
    if any(t.is_meta for t in (*descriptor.model.parameters(), *descriptor.model.buffers())):
        raise ModelMissingError(f"{weights.source}: spandrel's LaMa has tensors the file does not provide")
    for module in descriptor.model.modules():
        if type(module).__name__ == "FourierUnit":
            # under bf16 autocast the FFT's input would be bf16, which no FFT backend takes (CPU autocast
            # upcasts FFTs itself; CUDA's op list does not): hand it fp32, whatever the backend
            module.register_forward_pre_hook(lambda _module, args: (args[0].float(), *args[1:]))
    return LoadedLama(descriptor.model.float().eval().to(device), device, precision, weights.source)


def _probe(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic photo-like crop and a centred hole, for the precision and device checks."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.stack([xx, yy, 0.5 + 0.4 * np.sin(12 * xx) * np.cos(9 * yy)], axis=2)
    mask = np.zeros((size, size), bool)
    mask[size // 4: 3 * size // 4, size // 3: 2 * size // 3] = True
    return (image * 255).astype(np.uint8), mask


def _best_time(net: LoadedLama, image: np.ndarray, mask: np.ndarray, repeats: int = 2) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = net(image, mask)
        times.append(time.perf_counter() - t)
    return min(times), out


def bf16_check(net: LoadedLama) -> tuple[bool, str]:
    """(use bf16?, why) for LaMa on this CPU: bf16 autocast must be ≥ 1.15× faster than fp32 on a
    :data:`BF16_PROBE` px probe and its fill within 2/255 (mean) of fp32's."""
    image, mask = _probe(BF16_PROBE)
    fp32 = LoadedLama(net.model, net.device, "fp32", net.source, net.lock)
    bf16 = LoadedLama(net.model, net.device, "bf16", net.source, net.lock)
    t32, out32 = _best_time(fp32, image, mask)
    t16, out16 = _best_time(bf16, image, mask)
    err = float(np.abs(out16.astype(np.float32) - out32)[mask].mean()) / 255
    if t32 / t16 < BF16_MIN_SPEEDUP:
        return False, f"bf16 measured {t32 / t16:.2f}× the speed of fp32 for LaMa on this CPU: fp32"
    if err > BF16_TOLERANCE:
        return False, f"bf16 fill differs from fp32 by {err * 255:.1f}/255 on average: fp32"
    return True, f"bf16 ({t32 / t16:.2f}× faster than fp32, mean difference {err * 255:.2f}/255)"


def resolve_lama_precision(dtype: str | None, device: str) -> str:
    """``fp32`` or ``bf16`` for LaMa on ``device``; ``fp16`` is refused (InputError, exit 2).
    ``auto``: fp32 on CUDA and MPS; on the CPU fp32 unless it has bf16 instructions (without them
    bf16 autocast ran LaMa 81× slower here, benchmarks/bench_lama.py) and the project's CPU rule measures
    bf16 faster; the loader then times LaMa itself (:func:`bf16_check`)."""
    choice = str(dtype or "auto").lower()
    if choice in ("fp16", "float16", "half"):
        raise InputError(FP16_REFUSAL)
    if choice == "auto" and device == "cpu" and not cpu_has_native_bf16():
        return "fp32"
    return resolve_precision(dtype, device, cuda="fp32", mps="fp32", allowed=("fp32", "bf16"), flag="--dtype")


def load_network(path: Path, device: str = "auto", dtype: str | None = "auto", trust: bool = False) -> LoadedLama:
    """Read ``path`` (:func:`~autoinpaint.inpaint.lama_weights.read_lama_weights`) and place the
    network: on MPS a probe pass must succeed, else it runs on the CPU (with a notice); ``auto`` bf16
    on the CPU is kept only when :func:`bf16_check` passes."""
    from .lama_weights import read_lama_weights

    dev = resolve_device(device)
    precision = resolve_lama_precision(dtype, dev)
    weights = read_lama_weights(path, trust=trust)
    net = _build(weights, "cpu" if dev == "mps" else dev, precision)
    if dev == "mps":
        try:
            moved = LoadedLama(net.model.to("mps"), "mps", precision, net.source)
            moved(*_probe(32))
            net = moved
        except Exception as exc:  # noqa: BLE001 - an op LaMa needs is missing or fails on MPS
            notice(f"LaMa on MPS failed ({str(exc).strip().splitlines()[0][:120]}): running on the CPU")
            net = LoadedLama(net.model.to("cpu"), "cpu", resolve_lama_precision(dtype, "cpu"), net.source)
    if net.device == "cpu" and net.precision == "bf16" and str(dtype or "auto").lower() == "auto":
        use, why = bf16_check(net)
        notice(f"LaMa precision auto -> {why}")
        if not use:
            net.precision = "fp32"
    return net


# ---------------------------------------------------------------------------------------------- inpainter
class LamaInpainter(BaseInpainter):
    """An :class:`~autoinpaint.inpaint.base.Inpainter` around a loaded LaMa network.

    Args:
        network: a :class:`LoadedLama` (shared by every inpainter on the same weights).
        max_side: a crop whose long side is over this many px runs downscaled to it.
        model: display name (``lama`` or the file's name).
    """

    name = "lama"

    def __init__(self, network: LoadedLama, max_side: int = DEFAULT_MAX_SIDE, model: str = "lama"):
        if int(max_side) < MIN_SIDE:
            raise InputError(f"--lama-max-side must be >= {MIN_SIDE}, got {max_side}")
        self.network, self.max_side, self.model = network, int(max_side), model

    def inpaint(self, image: np.ndarray, mask: np.ndarray,
                request: InpaintRequest | None = None) -> InpaintResult:
        """Fill ``mask`` (H×W, >0 = fill) of ``image`` (H×W×3 uint8 RGB); pixels outside the mask
        are returned unchanged. The request's prompt fields do not apply to LaMa, and one forward pass
        has no steps to report progress on."""
        import cv2

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"LaMa expects H×W×3 uint8, got {image.shape} {image.dtype}")
        if mask.shape != image.shape[:2]:
            raise InputError(f"mask {mask.shape} does not match image {image.shape[:2]}")
        hole = mask > 0
        if not hole.any():
            raise InputError("the mask is empty: nothing to inpaint")
        h, w = hole.shape
        (mw, mh), padded = model_geometry(w, h, self.max_side)
        work, work_hole = image, hole
        if (mw, mh) != (w, h):
            work = cv2.resize(image, (mw, mh), interpolation=cv2.INTER_AREA)
            touched = cv2.resize(hole.astype(np.float32), (mw, mh), interpolation=cv2.INTER_AREA)
            work_hole = touched > 0
        try:
            out = self.network(_pad(work, padded), _pad(work_hole, padded))[:mh, :mw]
        except Exception as exc:  # noqa: BLE001
            from .diffusion_loading import _is_oom

            if _is_oom(exc):
                raise ModelRuntimeError(f"out of memory running LaMa at {padded[0]}x{padded[1]} on "
                                        f"{self.network.device}: lower --lama-max-side or use --device cpu") from None
            raise
        if (mw, mh) != (w, h):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        result = np.where(hole[..., None], out, image)
        return InpaintResult(np.ascontiguousarray(result), {
            "model": self.model, "device": self.network.device, "dtype": self.network.precision,
            "resolution": [mw, mh], "downscaled": (mw, mh) != (w, h)})

    def __repr__(self) -> str:
        return f"LamaInpainter({self.model!r}, max_side={self.max_side}, device={self.network.device!r})"


def lama_path(spec: str) -> Path:
    """The weights file of ``spec``: ``lama`` → the downloaded big-lama in the checkpoint folders (its
    safetensors conversion; a ``big-lama.pt`` put there by hand is verified and converted beside itself
    first), else the path itself. ModelMissingError (exit 3) when absent."""
    from ..models.checkpoints import KNOWN, convert, find_weights, missing_error, verify

    if spec.lower() == "lama":
        found = find_weights("lama")
        if found is None:
            raise missing_error("LaMa weights (big-lama) not found", "lama")
        if found.name == KNOWN["lama"].filename and verify(found, KNOWN["lama"]) is None:
            with contextlib.suppress(OSError):  # a read-only folder: the cache gets the conversion
                return convert("lama", found)
        return found
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelMissingError(f"LaMa weights {path} do not exist; get them with: autoinpaint models download lama")
    return path


def load_lama_inpainter(spec: str = "lama", *, device: str | None = "auto", dtype: str | None = "auto",
                        lama_max_side: int | None = None, trust_checkpoint: bool = False,
                        store=None) -> LamaInpainter:
    """Registry loader: a :class:`LamaInpainter` for ``spec`` (``lama`` or a weights file).

    ``dtype``: ``auto``/``fp32``/``bf16`` (``fp16`` is refused); ``lama_max_side``: default
    :data:`DEFAULT_MAX_SIDE`; ``trust_checkpoint``: read a TorchScript or pickled file whose SHA-256
    we do not publish. The network loads once per (file, device, precision) into ``store``
    (:class:`~autoinpaint.models.store.ModelStore`; the process default when None); the inpainter
    around it is made per call, so inpainters that differ only in ``max_side`` share it."""
    from ..models.store import resolve_store

    max_side = DEFAULT_MAX_SIDE if lama_max_side is None else int(lama_max_side)
    if max_side < MIN_SIDE:
        raise InputError(f"--lama-max-side must be >= {MIN_SIDE}, got {max_side}")
    path = lama_path(spec).resolve()
    dev = resolve_device(device)
    precision = resolve_lama_precision(dtype, dev)  # an unsupported choice fails before any loading
    stat = path.stat()
    key = ("inpainter", "lama", str(path), stat.st_size, stat.st_mtime_ns, dev, precision, str(dtype or "auto"))
    network = resolve_store(store).get(
        key, lambda: load_network(path, dev, dtype if dtype else "auto", trust_checkpoint))
    return LamaInpainter(network, max_side, "lama" if spec.lower() == "lama" else path.name)
