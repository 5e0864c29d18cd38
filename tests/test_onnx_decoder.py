"""The prompt decoders on ONNX Runtime (autoinpaint.segment.onnx_decoder), for every SAM family: the
segment-anything ``.pth`` SAM and the transformers SAM, SAM-HQ, SAM 2.1 and EdgeTAM (tiny random
models saved in their published formats). The same logits (≤ 1e-3) and masks (IoU ≥ 0.999) as
PyTorch for a click, several points with a negative one and a box, and a ``--sam-refine`` mask-input
pass; exported once per weights file, atomically, beside the embedding cache; an export failure
falls back to PyTorch with a notice (``auto``) or exits 3 (``onnx``)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_sam_fixtures import FAMILIES, save_tiny  # noqa: E402
from sam_fixtures import record_decodes, save_sam_checkpoint, save_scene  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from autoinpaint.errors import InputError  # noqa: E402
from autoinpaint.segment import SegmentParams
from autoinpaint.models import embedding_cache  # noqa: E402
from autoinpaint.segment import onnx_decoder  # noqa: E402
from autoinpaint.selection import Selection  # noqa: E402

MIXED = (Selection(points=((50, 40), (60, 45)), negatives=((35, 30),), boxes=((20, 15, 95, 75),)),
         SegmentParams(refine=1))  # two decoder variants: points+box, then points+box+mask input
CLICK = (Selection(points=((50, 40),)), SegmentParams())  # one point: several candidates
CLICKED = ("pth", "sam2")  # each export costs seconds: the click variant on two families


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """Every family's tiny model: a ``.pth`` state dict and the transformers folders."""
    root = tmp_path_factory.mktemp("onnx_models")
    return {"pth": save_sam_checkpoint(root / "tiny_sam.pth"),
            **{family: save_tiny(family, root / family) for family in FAMILIES}}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return save_scene(tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory):
    """One cache folder for the module: each decoder variant is exported once, then reused."""
    return tmp_path_factory.mktemp("onnx_home")


@pytest.fixture
def home(onnx_home, monkeypatch):
    monkeypatch.setenv("AUTOINPAINT_HOME", str(onnx_home))
    monkeypatch.delenv("AUTOINPAINT_CACHE", raising=False)
    monkeypatch.delenv("AUTOINPAINT_RUNTIME", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedding_cache._MEMORY.clear()
    yield onnx_home
    embedding_cache._MEMORY.clear()


def make(family: str, path: Path, runtime: str):
    from autoinpaint.segment.hf_sam import HFSamSegmenter
    from autoinpaint.segment.sam import SamSegmenter

    cls = SamSegmenter if family == "pth" else HFSamSegmenter
    return cls(path, device="cpu", precision="fp32", cache=False, runtime=runtime)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("family", ("pth", *FAMILIES))
def test_onnx_runtime_gives_the_torch_logits_and_masks(family, weights, scene, home, monkeypatch):
    reference, fast = make(family, weights[family], "torch"), make(family, weights[family], "onnx")
    assert reference.decoder.runtime == "torch" and fast.decoder.runtime == "onnx"
    emb = reference.embed(scene[1])
    slow_out, fast_out = record_decodes(reference, monkeypatch), record_decodes(fast, monkeypatch)
    cases = {"points+negative+box, refined": MIXED, **({"click": CLICK} if family in CLICKED else {})}
    for name, (selection, params) in cases.items():
        slow_out.clear()
        fast_out.clear()
        a, b = reference.predict(emb, selection, params), fast.predict(emb, selection, params)
        assert fast.decoder.last_runtime == "onnx", name
        assert len(slow_out) == len(fast_out) >= (2 if params.refine else 1)
        for (la, ia), (lb, ib) in zip(slow_out, fast_out):
            assert la.shape == lb.shape and ia.shape == ib.shape
            assert np.abs(la - lb).max() <= 1e-3 and np.abs(ia - ib).max() <= 1e-3, (name, np.abs(la - lb).max())
        assert a.mask.shape == (90, 120) and a.mask.any(), name
        assert iou(a.mask, b.mask) >= 0.999, name
        assert a.scores == pytest.approx(b.scores, abs=1e-3)
    # exported once per weights file and prompt kind, atomically, beside the embedding cache
    files = sorted((home / "cache" / "sam" / "onnx").glob(f"*{fast.fingerprint}*.onnx"))
    assert len(files) == len(cases) + 1 and not list((home / "cache" / "sam" / "onnx").glob("*.tmp"))
    # GELU as one operator (opset 20), not the five-node Erf form an opset 18 export writes
    for file in (f for f in files if "-encoder-" not in f.name):
        ops = [node.op_type for node in onnx.load(str(file)).graph.node]
        assert "Gelu" in ops and "Erf" not in ops, file.name
    again = make(family, weights[family], "onnx")
    again.predict(again.embed(scene[1]), *MIXED)
    assert again.decoder.onnx.exports == 0 and again.decoder.last_runtime == "onnx"


def test_runtime_choice(monkeypatch):
    monkeypatch.delenv("AUTOINPAINT_RUNTIME", raising=False)
    resolve = onnx_decoder.resolve_runtime
    assert resolve("auto", "cpu") == "onnx" and resolve("auto", "cuda") == "torch" and resolve("auto", "mps") == "torch"
    assert resolve("torch", "cpu") == "torch" and resolve("onnx", "cpu") == "onnx"
    with pytest.raises(InputError, match="--runtime"):
        resolve("tensorrt", "cpu")


def test_runtime_onnx_without_onnxruntime_is_exit_3(weights, scene, home, cli, tmp_path, monkeypatch):
    from autoinpaint.models.store import default_store

    default_store().clear()
    monkeypatch.setattr(onnx_decoder, "onnxruntime_available", lambda: False)
    assert onnx_decoder.resolve_runtime("auto", "cpu") == "torch"
    r = cli("mask", scene[0], "--segmenter", weights["pth"], "--point", "50,40", "--runtime", "onnx",
            "-o", tmp_path / "m.png")
    assert r.code == 3 and r.err.startswith("Error:") and "onnxruntime" in r.err and not (tmp_path / "m.png").exists()


def test_export_failure_falls_back_with_a_notice_or_exits_3_when_forced(weights, scene, tmp_path, cli, monkeypatch):
    """An exporter that fails: ``auto`` makes the same mask with PyTorch and says so; ``onnx`` is exit 3."""
    from autoinpaint.models.store import default_store

    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path / "fresh"))  # nothing exported yet
    monkeypatch.delenv("AUTOINPAINT_RUNTIME", raising=False)
    default_store().clear()

    def broken(*a, **k):
        raise RuntimeError("exporter says no")

    monkeypatch.setattr(torch.onnx, "export", broken)
    args = ["mask", scene[0], "--segmenter", weights["sam2"], "--point", "50,40", "--dilate", "0", "--feather", "0"]
    r = cli(*args, "--runtime", "onnx", "-o", tmp_path / "forced.png")
    last = r.err.strip().splitlines()[-1]
    assert r.code == 3 and last.startswith("Error:") and "exporter says no" in last and "--runtime torch" in last
    assert not (tmp_path / "forced.png").exists()
    r = cli(*args, "-o", tmp_path / "auto.png")
    assert r.code == 0 and "ONNX export of the prompt decoder" in r.err and "using PyTorch" in r.err
    r = cli(*args, "--runtime", "torch", "-o", tmp_path / "torch.png")
    assert r.code == 0 and "ONNX" not in r.err
    assert (tmp_path / "auto.png").read_bytes() == (tmp_path / "torch.png").read_bytes()
    assert not list((tmp_path / "fresh").rglob("*.onnx*"))
    default_store().clear()


def test_runtime_is_an_edit_option_of_the_cli_and_recipes(tmp_path):
    from autoinpaint.api import EditOptions
    from autoinpaint.cli.options import options_from

    assert EditOptions().runtime == "auto" and EditOptions().replace(runtime="onnx").runtime == "onnx"
    assert options_from({"runtime": "torch"}).runtime == "torch"
    with pytest.raises(InputError):  # an unknown option name stays an input error
        EditOptions().replace(runtimes="onnx")


def test_edgetam_image_encoder_runs_on_onnx_runtime_with_the_same_embedding(weights, scene, home):
    """EdgeTAM's encoder measured ≥ 1.3× faster on ONNX Runtime here, so ``auto`` runs it there on the
    CPU: the same embedding (relative error ≤ 1e-4) and mask; the other families keep PyTorch's."""
    reference, fast = make("edgetam", weights["edgetam"], "torch"), make("edgetam", weights["edgetam"], "auto")
    assert reference.onnx_encoder is None and fast.onnx_encoder is not None
    assert make("sam2", weights["sam2"], "onnx").onnx_encoder is None
    assert reference.embedding_key(scene[1]) != fast.embedding_key(scene[1])
    a, b = reference.embed(scene[1]), fast.embed(scene[1])
    assert fast.onnx_encoder.path.is_file() and set(a.tensors) == set(b.tensors)
    for name, t in a.tensors.items():
        assert b.tensors[name].shape == t.shape and b.tensors[name].dtype == torch.float32
        assert float((b.tensors[name] - t).norm() / t.norm()) <= 1e-4, name
    ma, mb = reference.predict(a, *MIXED).mask, fast.predict(b, *MIXED).mask
    assert ma.any() and iou(ma, mb) >= 0.999
    again = make("edgetam", weights["edgetam"], "onnx")
    again.embed(scene[1][::-1].copy())
    assert again.onnx_encoder.exports == 0 and again.encoder_runs == 1


def test_a_corrupt_export_is_rebuilt_and_cache_clear_removes_exports(weights, scene, tmp_path, monkeypatch, cli):
    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path / "h"))
    seg = make("pth", weights["pth"], "onnx")
    emb = seg.embed(scene[1])
    first = seg.predict(emb, *MIXED).mask
    files = list((tmp_path / "h" / "cache" / "sam" / "onnx").glob("*.onnx"))
    assert len(files) == 2 and seg.decoder.onnx.exports == 2
    files[0].write_bytes(files[0].read_bytes()[:1000])  # truncated
    again = make("pth", weights["pth"], "onnx")
    assert np.array_equal(again.predict(emb, *MIXED).mask, first) and again.decoder.onnx.exports == 1
    assert again.decoder.last_runtime == "onnx"
    r = cli("cache", "clear")
    assert r.code == 0 and not list((tmp_path / "h" / "cache" / "sam").rglob("*.onnx"))


_SECOND_PROCESS = """
import json, sys
import numpy as np, torch
def boom(*a, **k): raise SystemExit('exported again')
torch.onnx.export = boom
from autoinpaint.segment.sam import SamSegmenter
from autoinpaint.selection import Selection
from autoinpaint.segment import SegmentParams
from PIL import Image
weights, photo = sys.argv[1], sys.argv[2]
seg = SamSegmenter(weights, device="cpu", precision="fp32", cache=False, runtime="onnx")
points, negatives, boxes, refine = json.loads(sys.argv[3])
selection = Selection(points=tuple(map(tuple, points)), negatives=tuple(map(tuple, negatives)),
                      boxes=tuple(map(tuple, boxes)))
mask = seg.predict(seg.embed(np.asarray(Image.open(photo).convert("RGB"))), selection,
                   SegmentParams(refine=refine)).mask
print(json.dumps({"exports": seg.decoder.onnx.exports, "runtime": seg.decoder.last_runtime,
                  "mask": np.packbits(mask).tolist()}))
"""


def test_a_second_process_reuses_the_export(weights, scene, tmp_path, monkeypatch):
    """The decoder files one process exported are what the next process runs: there the exporter is made
    to fail, yet the same two variants (points+box, then with the mask input) run on ONNX Runtime, no
    export, the same mask; with the files removed, the same guard trips, so it does guard the export."""
    import json
    import os
    import subprocess

    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path / "h"))
    seg = make("pth", weights["pth"], "onnx")
    first = seg.predict(seg.embed(scene[1]), *MIXED).mask
    assert seg.decoder.onnx.exports == 2 and seg.decoder.last_runtime == "onnx"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "AUTOINPAINT_HOME": str(tmp_path / "h"), "PYTHONPATH": str(root)}

    def second():
        selection, params = MIXED
        prompts = json.dumps([selection.points, selection.negatives, selection.boxes, params.refine])
        return subprocess.run([sys.executable, "-c", _SECOND_PROCESS, str(weights["pth"]), str(scene[0]), prompts],
                              capture_output=True, text=True, env=env, timeout=300, cwd=root)

    out = second()
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["exports"] == 0 and got["runtime"] == "onnx"
    assert np.array_equal(np.unpackbits(np.array(got["mask"], np.uint8))[:first.size].reshape(first.shape), first)
    for file in (tmp_path / "h" / "cache" / "sam" / "onnx").glob("*.onnx"):
        file.unlink()
    out = second()
    assert out.returncode != 0 and "exported again" in out.stderr
