"""SAM 2.1, SAM, SAM-HQ and EdgeTAM through transformers (autoinpaint.segment.hf_sam): tiny random-weight
models of each family saved with ``save_pretrained`` (one laid out in the Hugging Face cache),
loaded through the same code path as the published checkpoints; the same prompt semantics as the
segment-anything path; the embedding cache across processes; missing and unsafe models."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_sam_fixtures import FAMILIES, install_in_hub_cache, save_sam_as_transformers, save_tiny  # noqa: E402
from sam_fixtures import TINY, assert_same_mask, build_sam_model, count_predict_calls, save_scene  # noqa: E402
from conftest import save_malicious_pickle  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from autoinpaint.errors import InputError  # noqa: E402
from autoinpaint.segment import SegmentParams, load_segmenter
from autoinpaint.models.embedding_cache import Embedding  # noqa: E402
from autoinpaint.segment.hf_sam import HFSamSegmenter  # noqa: E402
from autoinpaint.selection import Selection  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY_SAM2 = "facebook/sam2.1-hiera-tiny"  # the repo the alias sam2.1-tiny stands for
EDGETAM = "yonigozlan/EdgeTAM-hf"  # the repo the alias edgetam stands for
MULTISCALE = ("sam2", "edgetam")  # SAM 2's decoder: stretched square input, two high-resolution maps
SELECTIONS = {  # the prompt kinds of the CLI, on the scene below
    "point": Selection(points=((50, 40),)),
    "points+negative": Selection(points=((50, 40), (60, 45)), negatives=((5, 5),)),
    "two boxes+point": Selection(boxes=((10, 10, 60, 60), (65, 20, 115, 85)), points=((30, 30),)),
    "box+points": Selection(boxes=((10, 10, 60, 60),), points=((30, 30), (100, 70))),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny model folder per family (SAM 2 saved as the published sam2_video type)."""
    root = tmp_path_factory.mktemp("hf_sam")
    return {family: save_tiny(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 120×90 photo: a blue rectangle on a light background, mild noise."""
    return save_scene(tmp_path_factory.mktemp("scene"))


@pytest.fixture
def home(offline_models):
    """Empty $AUTOINPAINT_HOME and Hugging Face cache; in-process caches reset."""
    return offline_models


def segmenter(folder, **kw) -> HFSamSegmenter:
    return HFSamSegmenter(folder, device="cpu", precision=kw.pop("precision", "fp32"), **kw)


# -- loading -------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_loads_from_its_folder_through_the_registry(family, models, scene, home):
    seg = load_segmenter(str(models[family]), device="cpu", precision="fp32")
    assert isinstance(seg, HFSamSegmenter) and seg.family.name == family
    assert seg.name == f"{family}:{models[family]}"
    assert type(seg.model).__name__ == {"sam2": "Sam2Model", "sam": "SamModel", "sam-hq": "SamHQModel",
                                        "edgetam": "EdgeTamModel"}[family]
    emb = seg.embed(scene[1])
    names = {"sam2": {"features", "high_res_0", "high_res_1"}, "sam": {"features"},
             "sam-hq": {"features", "hq_features"}, "edgetam": {"features", "high_res_0", "high_res_1"}}[family]
    assert set(emb.tensors) == names and all(t.dtype == torch.float32 for t in emb.tensors.values())
    assert emb.original_size == (90, 120)
    # SAM pads the longest side to the square input, SAM 2 stretches to it
    assert emb.input_size == ((128, 128) if family in MULTISCALE else (48, 64))
    if family in MULTISCALE:  # the decoder's high-resolution maps: 1/4 and 1/8 of the input
        assert emb.tensors["high_res_0"].shape[-2:] == (32, 32) and emb.tensors["high_res_1"].shape[-2:] == (16, 16)
    result = seg.predict(emb, SELECTIONS["point"], SegmentParams())
    assert result.mask.shape == (90, 120) and result.mask.dtype == bool
    assert set(result.scores) == {"iou", "stability"} and 0 <= result.scores["stability"] <= 1


def test_hub_id_and_alias_load_from_the_hugging_face_cache_offline(models, scene, home, cli, capsys):
    from autoinpaint.log import configure

    snapshot = install_in_hub_cache(models["sam2"], home / "hf" / "hub", TINY_SAM2)
    by_alias = load_segmenter("sam2.1-tiny", device="cpu", precision="fp32")
    assert by_alias.folder == snapshot and by_alias.name == "sam2.1-tiny"
    by_id = load_segmenter(TINY_SAM2, device="cpu", precision="fp32")
    assert by_id.folder == snapshot and by_id.fingerprint == by_alias.fingerprint
    # the blob name is the content hash: the fingerprint of the cached copy does not depend on mtimes
    configure()
    assert load_segmenter("auto", device="cpu", precision="fp32").name == "sam2.1-tiny"
    assert "segmenter auto -> sam2.1-tiny" in capsys.readouterr().err
    rows = {r["name"]: r for r in json.loads(cli("models", "list", "--json").out)}
    assert rows["sam2.1-tiny"]["present"] and rows["sam2.1-tiny"]["path"] == str(snapshot)
    assert rows["sam2.1-tiny"]["hub_id"] == TINY_SAM2 and rows["sam2.1-tiny"]["size"] == 155_885_320
    assert not rows["sam2.1-small"]["present"] and rows["slimsam"]["hub_id"] == "Zigeng/SlimSAM-uniform-77"
    names = [r["name"] for r in json.loads(cli("models", "list", "--json").out) if r["kind"] == "segmenter"]
    assert names.index("sam2.1-tiny") < names.index("vit_b")  # auto prefers SAM 2.1 tiny on a CPU


def test_missing_model_exits_3_with_the_hf_download_command(home, scene, cli, tmp_path, monkeypatch):
    args = ["mask", scene[0], "--point", "50,40", "-o", tmp_path / "m.png"]
    r = cli(*args, "--segmenter", "sam2.1-tiny")
    assert r.code == 3 and r.err.startswith("Error:") and f"hf download {TINY_SAM2}" in r.err
    assert "HF_HUB_OFFLINE" in r.err  # opting in to downloads cannot override it
    monkeypatch.setenv("AUTOINPAINT_ALLOW_DOWNLOAD", "1")
    r = cli(*args, "--segmenter", "nobody/no-such-sam")
    assert r.code == 3 and "hf download nobody/no-such-sam" in r.err
    r = cli(*args, "--segmenter", str(tmp_path / "no" / "such" / "folder"))
    assert r.code == 3 and "no such file or folder" in r.err
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (bert / "model.safetensors").write_bytes(b"")
    r = cli(*args, "--segmenter", str(bert))
    assert r.code == 3 and "not a SAM model" in r.err
    r = cli("models", "download", "sam2.1-tiny")
    assert r.code == 3 and "HF_HUB_OFFLINE" in r.err
    assert not (tmp_path / "m.png").exists()


def test_edgetam_from_the_hub_cache_listed_first_for_auto_on_the_cpu(models, scene, home, cli, capsys, tmp_path,
                                                                      monkeypatch):
    """EdgeTAM (RepViT-M1 encoder via timm, random weights) by its alias from the Hugging Face cache,
    offline: masks through the CLI, listed with its size; ``auto`` picks it before SAM 2.1 tiny on the
    CPU, and SAM 2.1 tiny on an accelerator (quality first where the encoder is cheap)."""
    import autoinpaint.models.device as device
    from autoinpaint.log import configure

    out = tmp_path / "m.png"
    r = cli("mask", scene[0], "--segmenter", "edgetam", "--point", "50,40", "-o", out, "--json")
    assert r.code == 3 and f"hf download {EDGETAM}" in r.err and not out.exists()
    snapshot = install_in_hub_cache(models["edgetam"], home / "hf" / "hub", EDGETAM)
    install_in_hub_cache(models["sam2"], home / "hf" / "hub", TINY_SAM2)
    r = cli("mask", scene[0], "--segmenter", "edgetam", "--point", "50,40", "--box", "10,10,100,80",
            "--dilate", "0", "--feather", "0", "-o", out, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["segmenter"] == "edgetam" and out.is_file()
    from PIL import Image

    mask = np.asarray(Image.open(out)) > 0
    assert mask.shape == (90, 120) and mask.any()
    seg = load_segmenter("edgetam", device="cpu", precision="fp32")
    assert seg.folder == snapshot and seg.family.name == "edgetam" and type(seg.model).__name__ == "EdgeTamModel"
    rows = {r["name"]: r for r in json.loads(cli("models", "list", "--json").out)}
    assert rows["edgetam"]["present"] and rows["edgetam"]["hub_id"] == EDGETAM and rows["edgetam"]["size"] > 0
    configure()
    capsys.readouterr()
    assert load_segmenter("auto", device="cpu", precision="fp32").name == "edgetam"
    assert "segmenter auto -> edgetam" in capsys.readouterr().err
    monkeypatch.setattr(device, "resolve_device", lambda d="auto": "cuda")
    from autoinpaint.models.registry import resolve_auto

    assert resolve_auto("segmenter", "auto")[0] == "sam2.1-tiny"


def test_incomplete_weights_are_refused_not_filled_randomly(models, scene, home, cli, tmp_path):
    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    partial.mkdir()
    for f in models["sam"].iterdir():
        (partial / f.name).write_bytes(f.read_bytes())
    weights = load_file(partial / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("mask_decoder.")}, partial / "model.safetensors")
    r = cli("mask", scene[0], "--point", "50,40", "--segmenter", partial, "-o", tmp_path / "m.png")
    assert r.code == 3 and "lacks weights" in r.err and "mask_decoder." in r.err


def test_malicious_pickle_is_refused_with_exit_3_and_never_runs(models, scene, home, cli, tmp_path):
    marker = tmp_path / "pwned"

    evil = tmp_path / "evil_sam"
    evil.mkdir()
    (evil / "config.json").write_bytes((models["sam"] / "config.json").read_bytes())
    save_malicious_pickle(evil / "pytorch_model.bin", {"vision_encoder.pos_embed": torch.zeros(1)}, marker)
    r = cli("mask", scene[0], "--point", "50,40", "--segmenter", evil, "-o", tmp_path / "m.png")
    assert r.code == 3 and r.err.startswith("Error:") and "pickles" in r.err
    assert not marker.exists() and not (tmp_path / "m.png").exists()
    # beside safetensors weights the pickle is never opened either
    for f in models["sam"].iterdir():
        (evil / f.name).write_bytes(f.read_bytes())
    assert segmenter(evil, cache=False).predict(segmenter(evil, cache=False).embed(scene[1]),
                                                SELECTIONS["point"]).mask.shape == (90, 120)
    assert not marker.exists()
    torch.load(evil / "pytorch_model.bin", weights_only=False)  # control: an unsafe load runs the payload
    assert marker.exists()


def test_precision_policy_and_cache_key(models, scene, home, monkeypatch):
    import autoinpaint.models.device as device

    for faster, expected in ((True, "bf16"), (False, "fp32")):  # the project's one CPU policy decides
        monkeypatch.setattr(device, "cpu_bf16_is_faster", lambda remember=True, f=faster: f)
        assert segmenter(models["sam2"], precision="auto").precision == expected
    fp32, bf16 = segmenter(models["sam2"]), segmenter(models["sam2"], precision="bf16")
    assert fp32.embedding_key(scene[1]) != bf16.embedding_key(scene[1])
    emb32, emb16 = fp32.embed(scene[1]), bf16.embed(scene[1])
    assert fp32.encoder_runs == bf16.encoder_runs == 1 and emb16.features.dtype == torch.float32
    err = float((emb32.features - emb16.features).norm() / emb32.features.norm())
    assert 0 < err < 0.05  # bf16 autocast ran, and stayed close
    with pytest.raises(InputError, match="fp16"):
        segmenter(models["sam2"], precision="fp16")


# -- prompts: the same semantics on every path ---------------------------------------------------------

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """One tiny SAM as a segment-anything .pth and, with the same weights, as a transformers folder."""
    arch = dict(TINY, iou_head_depth=3)
    model = build_sam_model(**arch)
    root = tmp_path_factory.mktemp("converted")
    torch.save(model.state_dict(), root / "tiny.pth")
    return root / "tiny.pth", save_sam_as_transformers(arch, model.state_dict(), root / "hf")


def test_transformers_sam_gives_the_pth_path_masks_and_scores(converted, scene, home):
    """The same weights through segment-anything and through transformers: for every prompt kind,
    selection mode and refinement, the same masks (up to float rounding at a few edge pixels) and
    scores, from the same embedding; the transformers encoder's own embedding stays close."""
    from autoinpaint.segment.sam import SamSegmenter

    pth = SamSegmenter(converted[0], device="cpu", precision="fp32", cache=False)
    hf = segmenter(converted[1], cache=False)
    emb = pth.embed(scene[1])
    own = hf.embed(scene[1])
    assert own.input_size == emb.input_size
    assert float((own.features - emb.features).norm() / emb.features.norm()) < 0.01  # resize filters differ
    shared = Embedding({"features": emb.features}, emb.original_size, emb.input_size)
    for name, sel in SELECTIONS.items():
        for params in (SegmentParams(), SegmentParams(select="largest"), SegmentParams(select="smallest"),
                       SegmentParams(refine=2)):
            a, b = pth.predict(emb, sel, params), hf.predict(shared, sel, params)
            assert a.mask.any() and (a.mask != b.mask).sum() <= 3, (name, params)
            assert a.scores == pytest.approx(b.scores, abs=1e-4), (name, params)
            assert (a.mask != hf.predict(own, sel, params).mask).mean() < 0.01


def test_prompt_handling_is_the_same_for_every_family(models, converted, scene, home, monkeypatch):
    """Points, negatives, boxes (batched in one decoder call), points with boxes, selection modes and
    refinement passes reach every family's decoder the same way as the segment-anything path's."""
    from autoinpaint.segment.sam import SamSegmenter

    segs = {"pth": SamSegmenter(converted[0], device="cpu", precision="fp32", cache=False),
            **{family: segmenter(folder, cache=False) for family, folder in models.items()}}
    image = scene[1]
    records = {}
    for name, seg in segs.items():
        emb = seg.embed(image)
        calls = count_predict_calls(seg, monkeypatch)
        for sel in SELECTIONS.values():
            for params in (SegmentParams(), SegmentParams(select="smallest"), SegmentParams(refine=1)):
                result = seg.predict(emb, sel, params)
                assert result.mask.shape == (90, 120) and np.isfinite(result.scores["iou"])
        # boxes in one batch give each box's own mask, united
        both = seg.predict(emb, Selection(boxes=SELECTIONS["two boxes+point"].boxes)).mask
        first, second = (seg.predict(emb, Selection(boxes=(b,))).mask for b in SELECTIONS["two boxes+point"].boxes)
        assert np.mean(both != (first | second)) < 0.002, name
        largest = seg.predict(emb, SELECTIONS["point"], SegmentParams(select="largest")).mask.sum()
        smallest = seg.predict(emb, SELECTIONS["point"], SegmentParams(select="smallest")).mask.sum()
        assert largest >= smallest, name
        assert seg.encoder_runs == 1, name
        records[name] = [{**c, "mask_input": c["mask_input"] and c["mask_input"][:2]} for c in calls]
    expected = records.pop("pth")
    assert expected[0] == {"coords": (1, 1, 2), "boxes": None, "mask_input": None, "multimask": True}
    assert {"coords": (2, 1, 2), "boxes": (2, 4), "mask_input": None, "multimask": False} in expected
    assert {"coords": (2, 1, 2), "boxes": (2, 4), "mask_input": (2, 1), "multimask": False} in expected
    for name, calls in records.items():
        assert calls == expected, name


# -- the embedding cache across processes --------------------------------------------------------------

_SECOND_PROCESS = """
import json, sys
import transformers.models.sam.modeling_sam as s1, transformers.models.sam_hq.modeling_sam_hq as hq
import transformers.models.sam2.modeling_sam2 as s2, transformers.models.edgetam.modeling_edgetam as et
def boom(*a, **k): raise SystemExit('image encoder used')
s1.SamVisionEncoder.forward = hq.SamHQVisionEncoder.forward = s2.Sam2VisionModel.forward = boom
et.EdgeTamVisionModel.forward = boom
from autoinpaint.cli import run
for args in json.loads(sys.argv[1]):
    try:
        run(args)
    except SystemExit as exc:
        if exc.code:
            raise
"""


def test_cache_hit_in_a_second_process_skips_the_encoder_for_every_family(models, scene, home, tmp_path, cli,
                                                                          monkeypatch):
    """A repeat click from a new process: every family's image encoder is made to fail there, yet each
    mask is byte-identical to the first run's (SAM 2.1 loaded by its alias from the Hugging Face cache,
    offline, in both)."""
    install_in_hub_cache(models["sam2"], home / "hf" / "hub", TINY_SAM2)
    install_in_hub_cache(models["edgetam"], home / "hf" / "hub", EDGETAM)
    specs = {"sam2": "sam2.1-tiny", "sam": str(models["sam"]), "sam-hq": str(models["sam-hq"]), "edgetam": "edgetam"}

    def args(family: str, run: str) -> list[str]:
        return ["mask", str(scene[0]), "--segmenter", specs[family], "--point", "50,40", "--box", "10,10,60,60",
                "--dilate", "0", "--feather", "0", "--precision", "fp32", "-q", "-o", str(tmp_path / f"{family}-{run}.png")]

    for family in specs:  # the first run, in this process
        assert cli(*args(family, "a")).code == 0
    assert len(list((home / "home" / "cache" / "sam" / "embeddings").glob("*.safetensors"))) == 4
    env = {**os.environ, "AUTOINPAINT_HOME": str(home / "home"), "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    second = subprocess.run([sys.executable, "-c", _SECOND_PROCESS, json.dumps([args(f, "b") for f in specs])],
                            capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    for family in specs:
        assert (tmp_path / f"{family}-a.png").read_bytes() == (tmp_path / f"{family}-b.png").read_bytes(), family
    # control: without the cache the same guard trips, so it does guard the encoder
    import transformers.models.sam2.modeling_sam2 as s2

    def boom(*a, **k):
        raise SystemExit("image encoder used")

    monkeypatch.setattr(s2.Sam2VisionModel, "forward", boom)
    with pytest.raises(SystemExit, match="image encoder used"):
        segmenter(models["sam2"], cache=False).embed(scene[1])


def test_mask_upscaling_computes_only_the_window_yet_equals_full_interpolation():
    """The kept mask is upsampled only where it can be positive: the result equals thresholding
    PyTorch's full bilinear interpolation (SAM 1's pad-crop-resize and SAM 2's direct resize)."""
    from autoinpaint.segment.upscale import upscale_masks

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    for _ in range(12):
        logits = np.stack([(6 - np.hypot(yy - rng.uniform(0, 64), xx - rng.uniform(0, 64)) * rng.uniform(0.3, 2)
                            + rng.normal(0, 0.3, (64, 64))).astype(np.float32) for _ in range(int(rng.integers(1, 3)))])
        size = (int(rng.integers(300, 1500)), int(rng.integers(300, 2000)))
        for square, crop in ((None, None), (256, (int(256 * size[0] / max(size)), int(256 * size[1] / max(size))))):
            assert_same_mask(upscale_masks(logits, size, crop, square), logits, size, crop, square)
    assert not upscale_masks(-np.ones((1, 64, 64), np.float32), (900, 1200)).any()
