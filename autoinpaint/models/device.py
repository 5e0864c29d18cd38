"""Where models run and in which precision: one ``--device`` policy and one CPU precision policy for
every stage (torch imported only when called)."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import time

from ..errors import InputError

PRECISIONS = ("fp32", "bf16", "fp16")
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
_ALIASES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` → ``cuda`` when available, else ``mps``, else ``cpu``; an explicit choice
    (``cpu``, ``cuda``, ``cuda:N``, ``mps``) is checked. Raises InputError when it is unknown or absent."""
    import torch

    device = (device or "auto").lower()
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if not (device in ("cpu", "mps") or device == "cuda" or device.startswith("cuda:")):
        raise InputError(f"unknown --device {device!r}: use auto, cpu, cuda or mps")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device is available (use --device auto or cpu)")
    if device == "mps" and not has_mps:
        raise InputError("--device mps: MPS is not available (use --device auto or cpu)")
    return device


def resolve_precision(precision: str | None, device: str, remember: bool = True, cuda: str = "fp16",
                      mps: str = "fp16", allowed: tuple[str, ...] = PRECISIONS, flag: str = "--precision") -> str:
    """``fp32``, ``bf16`` or ``fp16`` for a model on ``device``.

    ``auto``: on the CPU, ``bf16`` when :func:`cpu_bf16_is_faster` (measured once per machine, whatever
    the model family), else ``fp32``; on CUDA the family's ``cuda`` choice (``bf16`` falls back to
    ``fp16`` where the GPU lacks bfloat16); on MPS the family's ``mps`` choice. An explicit choice is
    checked: ``fp16`` is refused on the CPU, and anything outside ``allowed``."""
    p = _ALIASES.get((precision or "auto").lower(), (precision or "auto").lower())
    if p != "auto" and p not in PRECISIONS:
        raise InputError(f"unknown {flag} {precision!r}: use auto, {', '.join(allowed)}")
    if p == "fp16" and device == "cpu":
        raise InputError(f"{flag} fp16 is not supported on the CPU: use bf16 or fp32")
    if p != "auto":
        if p not in allowed:
            raise InputError(f"{flag} {p} is not supported by this model: use {', '.join(allowed)}")
        return p
    if device.startswith("cuda"):
        import torch

        if cuda == "bf16" and not torch.cuda.is_bf16_supported():
            return "fp16" if "fp16" in allowed else "fp32"
        return cuda
    if device == "mps":
        return mps
    return "bf16" if "bf16" in allowed and cpu_bf16_is_faster(remember) else "fp32"


def autocast_args(device: str, precision: str | None) -> tuple[str, str] | None:
    """(device type, torch dtype name) that :func:`autocast` passes to ``torch.autocast`` for a model on
    ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``) in ``precision``; None when it runs as it is:
    ``fp32`` (or None), and on MPS (the models' MPS paths run without autocast). The device type is
    ``cuda`` for every CUDA index (``cuda:1`` included)."""
    if precision not in ("bf16", "fp16") or device == "mps" or device.startswith("mps:"):
        return None
    kind = "cuda" if device.split(":")[0] == "cuda" else "cpu"
    return kind, TORCH_DTYPES[precision]


def autocast(device: str, precision: str | None):
    """The autocast context of a model's forward pass (:func:`autocast_args`): ``torch.autocast`` in
    bf16/fp16 on the CPU or CUDA, a no-op otherwise. Used by both SAM paths (``.pth`` and transformers)."""
    args = autocast_args(device, precision)
    if args is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(args[0], dtype=getattr(torch, args[1]))


def torch_dtype(precision: str):
    """``fp32``/``bf16``/``fp16`` → the torch dtype."""
    import torch

    return getattr(torch, TORCH_DTYPES[precision])


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU reports bf16 instructions (AMX-BF16 or AVX512-BF16; Linux /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def cpu_bf16_is_faster(remember: bool = True) -> bool:
    """Time a ViT-like matmul workload in fp32 and under bfloat16 autocast on this CPU (≈0.3 s);
    True when bf16 is at least 1.2× faster. The answer is kept in ``cache_dir()/cpu_bf16.json``
    keyed by CPU capability, torch version and thread count."""
    import torch

    from .paths import cache_dir

    ident = f"{torch.backends.cpu.get_cpu_capability()}|{torch.__version__}|{torch.get_num_threads()}"
    record = cache_dir() / "cpu_bf16.json"
    try:
        saved = json.loads(record.read_text())
        if saved.get("id") == ident:
            return bool(saved["faster"])
    except (OSError, ValueError, KeyError):
        pass
    layer = torch.nn.Sequential(torch.nn.Linear(768, 3072), torch.nn.GELU(),
                                torch.nn.Linear(3072, 768))
    x = torch.randn(1024, 768)

    def best(autocast: bool) -> float:
        times = []
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            for _ in range(4):
                t = time.perf_counter()
                layer(x)
                times.append(time.perf_counter() - t)
        return min(times[1:])

    fp32, bf16 = best(False), best(True)
    faster = fp32 / bf16 >= 1.2
    if remember:
        with contextlib.suppress(OSError):
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"id": ident, "faster": faster, "fp32_s": fp32,
                                          "bf16_s": bf16}))
    return faster


_BUSY_TTL = 1.0  # s: a verdict is reused this long (sampling costs ~1.5 ms, once per click otherwise)
_busy: tuple[float, bool] | None = None


def cpu_is_busy() -> bool:
    """True when other runnable tasks already occupy every core: then one intra-op thread is faster
    than several (each OpenMP barrier waits for a thread that is not running; LaMa at 256 px here with
    other work on both cores: 4.5 s with 1 thread, 8.5 s with 2). Linux: the median of three reads of
    ``/proc/loadavg``'s instantaneous runnable count 0.5 ms apart (1.8 ms in all; 2 ms apart cost 6.4 ms,
    paid by every click at a person's pace), less the reader; elsewhere the 1-minute load
    average (which also counts the caller's own recent work). A verdict is reused for a second."""
    global _busy
    now = time.monotonic()
    if _busy is not None and now - _busy[0] < _BUSY_TTL:
        return _busy[1]
    verdict = _sample_busy()
    _busy = (now, verdict)
    return verdict


def _sample_busy() -> bool:
    cores = os.cpu_count() or 1
    try:
        samples = []
        for _ in range(3):
            with open("/proc/loadavg") as f:
                samples.append(int(f.read().split()[3].split("/")[0]) - 1)
            time.sleep(0.0005)
        return sorted(samples)[1] >= cores
    except (OSError, ValueError, IndexError):
        return hasattr(os, "getloadavg") and os.getloadavg()[0] > cores - 0.5


@contextlib.contextmanager
def intra_op_threads(count: int | None):
    """Run the block with ``count`` torch intra-op threads (None or the current count: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if count and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def decoder_threads(device: str):
    """One intra-op thread while a SAM prompt decoder (or a transformers SAM image encoder, measured
    1.15x faster so at load average 4-10) runs on a busy CPU: the decoder's matmuls are small, and
    with several threads a busy core stalls every OpenMP barrier (measured here with one other busy
    process: 1.07 s with 2 threads, 0.16 s with 1). On an idle CPU all threads are faster (0.075 s vs
    0.13 s here). Busy = :func:`cpu_is_busy` (runnable tasks right now, so a person's own recent
    clicks do not count); AUTOINPAINT_DECODER_THREADS=1 forces one thread."""
    one = device == "cpu" and (os.environ.get("AUTOINPAINT_DECODER_THREADS") == "1" or cpu_is_busy())
    with intra_op_threads(1 if one else None):
        yield
