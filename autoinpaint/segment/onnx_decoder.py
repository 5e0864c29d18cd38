"""The prompt decoder (prompt encoder + mask decoder) of every SAM family on ONNX Runtime.

A click costs one decoder call on the cached image embedding. PyTorch spends most of that time in
framework overhead for such small matmuls; ONNX Runtime runs the same graph in less (measured in
``benchmarks/bench_fast.py``). Each segmenter describes its decoder as a torch module per prompt
kind (:class:`Variant`: points or not, boxes or not, a mask input or not, several candidates or one),
which its torch path runs as well, so both runtimes compute the same function. A variant is exported
with ``torch.onnx.export`` the first time it is needed, once per weights file (the model's identity
key names the file), written atomically under ``cache_dir()/sam/onnx`` beside the embedding cache,
and then loaded by every later process. Dynamic axes: the number of prompts and of points.

``--runtime``: ``torch``, ``onnx``, or ``auto`` (ONNX Runtime on the CPU when ``onnxruntime`` is
installed, PyTorch on CUDA and MPS, where the decoder already runs on the accelerator). With ``auto``
an export failure falls back to PyTorch with a notice; with ``onnx`` it is an error (exit 3).
onnxruntime, onnx and torch are imported only when a decoder is exported or run.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from ..errors import InputError, ModelMissingError
from ..log import notice

RUNTIMES = ("auto", "torch", "onnx")
FORMAT = "12"  # bump when the exported decoder graphs change (2: cross-attention folded, fast_decoder.py;
#   3: opset 20, GELU as one operator; 4: SAM-HQ's HQ mask channels-last; 5: segment_anything's in token layout;
#   6: SAM-HQ's image embedding and positional encoding broadcast, not copied per prompt;
#   7: transformers SAM's in token layout; 8: SAM-HQ's upscaling in token layout, only its kept SAM masks;
#   9: transformers SAM and SAM-HQ without a mask input take the image side, fast_decoder.image_side_tensors;
#   10: segment_anything's too; 11: SAM-HQ's SAM masks read from its channels-last image;
#   12: SAM 1 families without a mask input upscale only the part of the grid the photo shows, fast_decoder.SHOWN)
ENCODER_FORMAT = "1"  # the same for the exported image encoders
# opset 20 has GELU as one operator, which ONNX Runtime runs in one pass; at 18 the exporter writes it out
# as Div, Erf, Add, Mul, Mul (five passes over the upscaled masks' features: a SAM-HQ ViT-B decoder call 64 → 58 ms)
DECODER_OPSET = 20
ENCODER_OPSET = 18  # the encoders' exports (ENCODER_FORMAT 1) stay as they were measured
MAX_POINTS = 4096  # upper bound of the dynamic axes (prompts per call, points per prompt, fast_decoder.SHOWN's)


class Variant(NamedTuple):
    """The prompt kind a decoder graph is exported for (python-level branches of the models)."""

    points: bool
    boxes: bool
    mask: bool
    multimask: bool

    @property
    def tag(self) -> str:
        return "".join(c if on else "-" for c, on in zip("pbmM", self))


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def resolve_runtime(runtime: str | None, device: str) -> str:
    """``torch`` or ``onnx`` for a decoder on ``device``: ``auto`` = ``$AUTOINPAINT_RUNTIME`` when set,
    else ONNX Runtime on the CPU when it is installed, else PyTorch; ``onnx`` without onnxruntime is
    ModelMissingError (exit 3)."""
    r = (runtime or "auto").lower()
    if r not in RUNTIMES:
        raise InputError(f"unknown --runtime {runtime!r}: use {', '.join(RUNTIMES)}")
    if r == "auto" and os.environ.get("AUTOINPAINT_RUNTIME", "").lower() in ("torch", "onnx"):
        r = os.environ["AUTOINPAINT_RUNTIME"].lower()
        if r == "onnx" and not onnxruntime_available():
            r = "torch"
    if r == "auto":
        return "onnx" if device == "cpu" and onnxruntime_available() else "torch"
    if r == "onnx" and not onnxruntime_available():
        raise ModelMissingError("--runtime onnx needs onnxruntime and onnx: pip install onnxruntime onnx "
                                "(or use --runtime torch)")
    return r


def onnx_dir() -> Path:
    from ..models.paths import cache_dir

    return cache_dir() / "sam" / "onnx"


class OnnxDecoder:
    """ONNX Runtime sessions of one model's prompt decoder, one per :class:`Variant`.

    identity: the model's identity key (weights fingerprint); names the exported files.
    make_module: ``make_module(variant) -> (torch module, example inputs)``: the module's forward takes
        named float32/int64 tensors as keyword arguments (the image embedding's tensors with batch 1,
        and ``coords`` B×N×2, ``labels`` B×N, ``boxes`` B×4, ``mask_input`` B×1×h×w as the variant
        has them, in the encoder input's pixel frame) and returns (logits B×C×h×w, IoU B×C).
    forced: True for ``--runtime onnx`` (an export failure raises); False for ``auto`` (it returns
        None, and the caller runs PyTorch, after one notice per variant).
    """

    def __init__(self, identity: str, make_module: Callable, forced: bool = False,
                 directory: Path | None = None, disabled_optimizers: tuple[str, ...] = ()) -> None:
        self.identity = identity
        self.make_module = make_module
        self.forced = forced
        self.disabled_optimizers = tuple(disabled_optimizers)
        self.directory = Path(directory) if directory else onnx_dir()
        self.exports = 0
        self._sessions: dict = {}
        self._failed: set[Variant] = set()
        self._lock = threading.Lock()

    def path(self, variant: Variant) -> Path:
        return self.directory / f"{self.identity}-{variant.tag}-v{FORMAT}.onnx"

    def run(self, variant: Variant, inputs: dict[str, np.ndarray], threads: int = 0
            ) -> tuple[np.ndarray, np.ndarray] | None:
        """(low-resolution logits B×C×h×w, IoU B×C) for ``inputs`` (numpy, named as the module's
        inputs), or None when this variant could not be exported (``auto``: run PyTorch instead).
        ``threads``: ONNX Runtime intra-op threads (0 = its default, all cores)."""
        session = self._session(variant, threads)
        if session is None:
            return None
        logits, iou = session.run(None, inputs)
        return logits, iou

    def _session(self, variant: Variant, threads: int):
        key = (variant, threads)
        held = self._sessions.get(key)
        if held is not None or variant in self._failed:
            return held
        with self._lock:
            if key in self._sessions or variant in self._failed:
                return self._sessions.get(key)
            path = self.path(variant)
            try:
                off = self.disabled_optimizers
                session = _reopen(path, threads, off)  # an unreadable file (corrupt, truncated) is exported again
                if session is None:
                    self._export(variant, path)
                    session = _open_session(path, threads, off)
                # both thread counts at once: the busy/idle rule may flip between clicks, and opening a
                # session then would cost a click tens of milliseconds
                other = 1 if threads == 0 else 0
                self._sessions[(variant, other)] = _open_session(path, other, off)
            except Exception as exc:  # the exporter raises many kinds; any failure means "no ONNX here"
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                if self.forced:
                    raise ModelMissingError(f"could not run the prompt decoder on ONNX Runtime ({first}); "
                                            "use --runtime torch") from None
                notice(f"ONNX export of the prompt decoder ({variant.tag}) failed ({first}); using PyTorch")
                self._failed.add(variant)
                return None
            self._sessions[key] = session
            return session

    def _export(self, variant: Variant, path: Path) -> None:
        import torch

        from .fast_decoder import SHOWN

        module, example = self.make_module(variant)
        batch = torch.export.Dim("prompts", min=1, max=MAX_POINTS)
        count = torch.export.Dim("points", min=1, max=MAX_POINTS)
        shown = {0: torch.export.Dim("shown_rows", min=1, max=MAX_POINTS),
                 1: torch.export.Dim("shown_columns", min=1, max=MAX_POINTS)}
        dims = {name: {0: batch, 1: count} if name in ("coords", "labels")
                else {0: batch} if name in ("boxes", "mask_input")
                else shown if name == SHOWN  # the part of the token grid the photo shows
                else None  # the image embedding: one image, expanded to the prompts inside the graph
                for name in example}
        notice(f"exporting the prompt decoder ({variant.tag}) to ONNX (once per model)")
        export_atomic(module, example, dims, path, ["logits", "iou"], DECODER_OPSET)
        self.exports += 1


def export_atomic(module, example: dict, dims: dict | None, path: Path, outputs: list[str], opset: int) -> None:
    """``torch.onnx.export`` (the dynamo exporter) of ``module`` called with the keyword tensors
    ``example``, with the dynamic axes ``dims``, at ONNX ``opset``, to ``path`` atomically (a temporary
    file, then a rename)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(module, (), kwargs=example, dynamo=True, input_names=list(example),
                                        output_names=outputs, dynamic_shapes=dims, external_data=False,
                                        verbose=False, opset_version=opset)
        program.save(tmp, external_data=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxEncoder:
    """An image encoder on ONNX Runtime, where that measured ≥ 1.3× faster than PyTorch here
    (``benchmarks/bench_fast.py``): exported once per weights file like the decoders.

    identity: the model's identity key. make_module: ``() -> (torch module, {"pixel_values": example})``;
    the module returns the encoder outputs named ``outputs``. forced: as :class:`OnnxDecoder`'s.
    """

    def __init__(self, identity: str, make_module: Callable, outputs: list[str], forced: bool = False,
                 directory: Path | None = None) -> None:
        self.identity, self.make_module, self.outputs, self.forced = identity, make_module, outputs, forced
        self.path = (Path(directory) if directory else onnx_dir()) / f"{identity}-encoder-v{ENCODER_FORMAT}.onnx"
        self.exports = 0
        self.failed = False
        self._session = None
        self._lock = threading.Lock()

    def run(self, pixel_values: np.ndarray) -> dict[str, np.ndarray] | None:
        """The encoder outputs by name for ``pixel_values`` (1×3×S×S float32), or None when the export
        failed (``auto``: the caller runs PyTorch)."""
        with self._lock:
            if self._session is None and not self.failed:
                try:
                    self._session = _reopen(self.path, 0)
                    if self._session is None:
                        module, example = self.make_module()
                        notice("exporting the image encoder to ONNX (once per model; it runs faster there)")
                        export_atomic(module, example, None, self.path, self.outputs, ENCODER_OPSET)
                        self.exports += 1
                        self._session = _open_session(self.path, 0)
                except Exception as exc:
                    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                    if self.forced:
                        raise ModelMissingError(f"could not run the image encoder on ONNX Runtime ({first}); "
                                                "use --runtime torch") from None
                    notice(f"ONNX export of the image encoder failed ({first}); using PyTorch")
                    self.failed = True
            session = self._session
        if session is None:
            return None
        return dict(zip(self.outputs, session.run(None, {"pixel_values": pixel_values})))


def _reopen(path: Path, threads: int, disabled_optimizers: tuple[str, ...] = ()):
    """A session on the exported file ``path``, or None when there is none or it is unreadable (then
    it is deleted, with a warning, and exported again)."""
    if not path.is_file():
        return None
    try:
        return _open_session(path, threads, disabled_optimizers)
    except Exception:  # onnxruntime raises its own error types for a corrupt model
        from ..log import warning

        warning(f"ignoring the unreadable ONNX export {path.name}; it will be rebuilt")
        path.unlink(missing_ok=True)
        return None


def _open_session(path: Path, threads: int, disabled_optimizers: tuple[str, ...] = (), spinning: bool = True):
    """An ONNX Runtime CPU session on ``path`` with ``threads`` intra-op threads (0 = its default), workers
    spinning only during a call (``spinning`` False: never, as before 2026-12-04; benchmarks compare the two),
    and ONNX Runtime's graph optimisations except ``disabled_optimizers`` (names of its fusions)."""
    import contextlib

    import onnxruntime as ort

    with contextlib.suppress(OSError):  # the cache's least-recently-used eviction goes by mtime
        os.utime(path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # ONNX Runtime's workers spin between its operators (a decoder call is ~200 small ones: waking sleeping
    # workers for each cost 41 → 34 ms medians, SAM ViT-B, 2 cores), but they must stop when the call ends: by
    # default they go on spinning after it, and the mask upscaling and RefineMask that follow on PyTorch/NumPy
    # then share the cores with them (2-thread bilinear upscaling right after: 12.1 ms, 5.8 ms with the stop)
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if spinning:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    extra = {"disabled_optimizers": list(disabled_optimizers)} if disabled_optimizers else {}
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"], **extra)


def onnx_threads(device: str) -> int:
    """ONNX Runtime intra-op threads for one decoder call: 1 on a busy CPU (as
    :func:`autoinpaint.models.device.decoder_threads` does for PyTorch), else its default (all cores)."""
    from ..models.device import cpu_is_busy

    return 1 if os.environ.get("AUTOINPAINT_DECODER_THREADS") == "1" or cpu_is_busy() else 0


def example_prompts(variant: Variant, side: int, mask_side: int) -> dict[str, np.ndarray]:
    """Example prompt inputs for an export: 2 prompts of 3 points (so neither axis is taken as 1)."""
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    if variant.points:
        out["coords"] = (rng.random((2, 3, 2)) * side).astype(np.float32)
        out["labels"] = np.array([[1, 0, -1], [1, 1, 0]], np.int64)
    if variant.boxes:
        out["boxes"] = np.array([[1, 2, side / 2, side / 2], [3, 4, side - 1, side - 2]], np.float32)
    if variant.mask:
        out["mask_input"] = rng.standard_normal((2, 1, mask_side, mask_side)).astype(np.float32)
    return out


class PromptDecoder:
    """A model's prompt decoder on the chosen runtime: one torch module per :class:`Variant`
    (``build(variant)``, run by the torch path and exported for ONNX Runtime), so both compute the
    same function.

    identity: the model's identity key (weights fingerprint). runtime: ``auto``, ``torch`` or
    ``onnx`` (:func:`resolve_runtime`). device: where the torch path runs.
    ``example(variant)``: example prompt inputs for an export (numpy, as :func:`example_prompts`).
    ``runtime`` after construction is the one in use: ``torch`` or ``onnx``. ``disabled_optimizers``:
    ONNX Runtime fusions to leave out for this model (where that measured faster, see the caller).
    """

    def __init__(self, identity: str, build: Callable, example: Callable, runtime: str | None = "auto",
                 device: str = "cpu", disabled_optimizers: tuple[str, ...] = ()) -> None:
        self.requested = (runtime or "auto").lower()
        self.runtime = resolve_runtime(runtime, device)
        self.device = device
        self._build = build
        self._example = example
        self._graphs: dict[Variant, object] = {}
        self.last_runtime = self.runtime  # which runtime the latest call used (onnx may fall back)
        self.onnx = (OnnxDecoder(identity, self._export_inputs, forced=self.requested == "onnx",
                                 disabled_optimizers=disabled_optimizers)
                     if self.runtime == "onnx" else None)

    def warm(self) -> None:
        """Export (once per model) and load the ONNX Runtime decoders of a click (one point, several
        candidates; and one candidate) ahead of the first click; nothing on PyTorch."""
        if self.onnx is not None:
            for multimask in (True, False):
                self.onnx._session(Variant(True, False, False, multimask), onnx_threads(self.device))

    def graph(self, variant: Variant):
        if variant not in self._graphs:
            import torch

            with torch.inference_mode(False), torch.no_grad():  # plain tensors: the exporter refuses inference ones
                self._graphs[variant] = self._build(variant).eval()
        return self._graphs[variant]

    def _export_inputs(self, variant: Variant):
        import torch

        example = {k: torch.from_numpy(v) for k, v in self._example(variant).items()}
        return self.graph(variant), example

    def __call__(self, variant: Variant, embedding: dict, prompts: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(logits B×C×h×w, IoU B×C) as numpy. ``embedding``: name → CPU float32 torch tensor
        (batch 1); ``prompts``: the variant's prompt arrays (:meth:`OnnxDecoder.run`)."""
        if self.onnx is not None:
            feeds = {k: v.numpy() for k, v in embedding.items()}
            feeds.update(prompts)
            out = self.onnx.run(variant, feeds, onnx_threads(self.device))
            if out is not None:
                self.last_runtime = "onnx"
                return out
        import torch

        from ..models.device import decoder_threads

        kwargs = {k: v.to(self.device, torch.float32) for k, v in embedding.items()}
        kwargs.update({k: torch.from_numpy(v).to(self.device) for k, v in prompts.items()})
        with torch.inference_mode(), decoder_threads(self.device):
            logits, iou = self.graph(variant)(**kwargs)
        self.last_runtime = "torch"
        return logits.float().cpu().numpy(), iou.float().cpu().numpy()
