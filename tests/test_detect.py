"""Text-prompted selection (``--text``): post-processing on known answers, the real loader and processors
with tiny random-weight Grounding DINO and OWLv2 models, the Detect step on every path (CLI, batch, API,
Editor), nothing-found answers, and the no-phrase path importing nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, gradient_photo

from autoinpaint.detect import DetectParams, Detection, Detections
from autoinpaint.detect.postprocess import (Candidates, decode_grounding_dino, decode_omdet, decode_owl,
                                            grounding_text, nms, phrase_spans, pick, to_pixels)
from autoinpaint.errors import InputError, ModelMissingError, NotFoundError
from autoinpaint.selection import Selection

FAST = ["--segmenter", "classical", "--inpainter", "telea"]
BERT_DELIMITERS = [0, 101, 102, 1012, 1029]  # [PAD], [CLS], [SEP], ".", "?"


# ------------------------------------------------------------------------------ pure post-processing
def test_normalised_boxes_to_pixels_plain_and_padded_square():
    # a 200×100 image; box centre (0.5, 0.5), size 0.2 × 0.4 of the image
    assert to_pixels([[0.5, 0.5, 0.2, 0.4]], 200, 100).tolist() == [[80, 30, 120, 70]]
    # OWLv2 saw the image padded to 200×200 at the bottom: fractions are of 200 px on both axes
    # (a plain mapping would put this box at y 12.5..32.5)
    assert to_pixels([[0.5, 0.25, 0.2, 0.2]], 200, 100, padded_square=True).tolist() == [[80, 30, 120, 70]]
    # portrait 100×200: padding on the right
    assert to_pixels([[0.25, 0.5, 0.1, 0.2]], 100, 200, padded_square=True).tolist() == [[40, 80, 60, 120]]
    # boxes reaching into the padding or past the border are clipped to the image
    assert to_pixels([[0.5, 0.75, 0.2, 0.2]], 200, 100, padded_square=True).tolist() == [[80, 100, 120, 100]]
    np.testing.assert_allclose(to_pixels([[0.05, 0.5, 0.2, 2.0]], 200, 100), [[0, 0, 30, 100]])


def test_grounding_dino_prompt_is_lower_case_phrases_ending_in_dots():
    assert grounding_text(["Price Sticker"]) == "price sticker."
    assert grounding_text(["a cat", "U.S.  flag?"]) == "a cat. u s flag."


def test_phrase_spans_follow_the_delimiter_tokens():
    # [CLS] price sticker . logo . [SEP]
    spans = phrase_spans([101, 7, 8, 1012, 9, 1012, 102], BERT_DELIMITERS)
    assert [s.tolist() for s in spans] == [[1, 2], [4]]


def grounding_logits(rows: list[dict], width: int = 12) -> np.ndarray:
    """Q×T logits: -8 everywhere, -inf past the 7-token prompt, ``{position: logit}`` per row."""
    out = np.full((len(rows), width), -8.0)
    out[:, 7:] = -np.inf
    for q, row in enumerate(rows):
        for pos, value in row.items():
            out[q, pos] = value
    return out


def test_grounding_dino_decode_attributes_each_box_to_its_best_phrase():
    ids = [101, 7, 8, 1012, 9, 1012, 102]  # "price sticker. logo."
    logits = grounding_logits([{1: 2.0, 2: 0.5}, {4: 1.0}, {0: 3.0, 2: -2.0}])  # query 2: only [CLS] is high
    boxes = np.array([[0.5, 0.5, 0.2, 0.2], [0.25, 0.25, 0.1, 0.1], [0.5, 0.5, 1.0, 1.0]])
    c = decode_grounding_dino(logits, boxes, ids, BERT_DELIMITERS, 2, 100, 50)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert c.phrase.tolist() == [0, 1, 0]
    np.testing.assert_allclose(c.score, [sig(2.0), sig(1.0), sig(3.0)])       # best token, delimiters included
    np.testing.assert_allclose(c.text_score, [sig(2.0), sig(1.0), sig(-2.0)])  # the phrase's own tokens
    np.testing.assert_allclose(c.boxes[0], [40, 20, 60, 30])
    # the [CLS]-only box passes the box threshold but not the text threshold: dropped
    found = pick(c, ["price sticker", "logo"], DetectParams(), 0.30, 0.25)
    assert [(d.phrase, round(d.score, 3)) for d in found] == [("price sticker", 0.881), ("logo", 0.731)]
    with pytest.raises(InputError, match="too long"):
        decode_grounding_dino(logits[:, :5], boxes, ids, BERT_DELIMITERS, 2, 100, 50)
    with pytest.raises(InputError, match="split"):
        decode_grounding_dino(logits, boxes, ids, BERT_DELIMITERS, 3, 100, 50)


def test_owl_decode_scores_each_phrase_column():
    logits = np.array([[2.0, -1.0], [-3.0, 0.0]])
    c = decode_owl(logits, np.array([[0.5, 0.25, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5]]), 200, 100)
    assert c.phrase.tolist() == [0, 1]
    np.testing.assert_allclose(c.score, 1 / (1 + np.exp(-np.array([2.0, 0.0]))))
    np.testing.assert_allclose(c.boxes[0], [80, 30, 120, 70])  # padded square by default (OWLv2)


def test_omdet_decode_maps_boxes_of_the_stretched_image():
    # OmDet-Turbo's processor stretches the image to 640×640: fractions are of each side, no padding
    logits = np.array([[2.0, -1.0], [-3.0, 0.0]])
    c = decode_omdet(logits, np.array([[0.5, 0.25, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5]]), 200, 100)
    assert c.phrase.tolist() == [0, 1]
    np.testing.assert_allclose(c.score, 1 / (1 + np.exp(-np.array([2.0, 0.0]))))
    np.testing.assert_allclose(c.boxes, [[80, 15, 120, 35], [50, 25, 150, 75]])
    found = pick(c, ["sticker", "logo"], DetectParams(), 0.30)
    assert [(d.phrase, d.box) for d in found] == [("sticker", (80, 15, 120, 35)), ("logo", (50, 25, 150, 75))]


def candidates(scores, boxes, phrases=None, n_phrases=1) -> Candidates:
    """Candidates whose box ``i`` matches phrase ``phrases[i]`` with ``scores[i]`` (others 0)."""
    phrases = phrases or [0] * len(scores)
    ps = np.zeros((len(scores), n_phrases))
    ps[np.arange(len(scores)), phrases] = scores
    return Candidates(ps, np.asarray(scores, float), np.asarray(boxes, float))


def test_thresholds_pick_max_objects_and_nms():
    boxes = [[10, 10, 50, 50], [12, 12, 52, 52], [100, 10, 200, 90], [300, 300, 310, 310], [0, 0, 0.5, 40]]
    c = candidates([0.9, 0.8, 0.6, 0.2, 0.95], boxes)
    # box 1 overlaps box 0 (IoU 0.82): suppressed; box 3 below 0.30; box 4 narrower than a pixel
    found = pick(c, ["sticker"], DetectParams(), 0.30)
    assert [d.box for d in found] == [(10, 10, 50, 50), (100, 10, 200, 90)]
    assert [d.box for d in pick(c, ["sticker"], DetectParams(pick="best"), 0.30)] == [(10, 10, 50, 50)]
    assert [d.box for d in pick(c, ["sticker"], DetectParams(pick="largest"), 0.30)] == [(100, 10, 200, 90)]
    assert len(pick(c, ["sticker"], DetectParams(box_threshold=0.1), 0.30)) == 3   # call-time override
    assert len(pick(c, ["sticker"], DetectParams(box_threshold=0.1, max_objects=2), 0.30)) == 2
    assert len(pick(c, ["sticker"], DetectParams(nms_iou=0.9), 0.30)) == 3         # 0.82 < 0.9: both kept
    assert nms(np.array(boxes[:3], float), np.array([0.9, 0.8, 0.6]), 0.5).tolist() == [0, 2]


def test_pick_is_per_phrase_and_max_objects_is_in_all():
    boxes = [[0, 0, 10, 10], [20, 0, 60, 40], [100, 0, 110, 10], [120, 0, 200, 80]]
    c = candidates([0.9, 0.5, 0.8, 0.4], boxes, phrases=[0, 0, 1, 1], n_phrases=2)
    best = pick(c, ["sticker", "logo"], DetectParams(pick="best"), 0.3)
    assert [(d.phrase, d.box[0]) for d in best] == [("sticker", 0), ("logo", 100)]
    largest = pick(c, ["sticker", "logo"], DetectParams(pick="largest"), 0.3)
    assert sorted((d.phrase, d.box[0]) for d in largest) == [("logo", 120), ("sticker", 20)]
    capped = pick(c, ["sticker", "logo"], DetectParams(max_objects=1), 0.3)
    assert [(d.phrase, d.score) for d in capped] == [("sticker", 0.9)]


def test_nothing_found_message():
    c = candidates([0.18, 0.05], [[0, 0, 10, 10], [20, 20, 40, 40]])
    found = pick(c, ["price sticker"], DetectParams(), 0.30)
    assert found == [] and isinstance(found, list)
    assert found.explain() == 'no "price sticker" found (best score 0.18 < 0.30)'
    # the score is rounded down: never "0.30 < 0.30"
    almost = pick(candidates([0.2999], [[0, 0, 10, 10]]), ["tag"], DetectParams(), 0.30)
    assert almost.explain() == 'no "tag" found (best score 0.29 < 0.30)'
    two = pick(candidates([0.1, 0.2], [[0, 0, 9, 9], [20, 0, 29, 9]], [0, 1], 2), ["a", "b"], DetectParams(), 0.3)
    assert two.explain() == 'no "a" or "b" found (best score 0.20 < 0.30)'
    partial = pick(candidates([0.9, 0.2], [[0, 0, 9, 9], [20, 0, 29, 9]], [0, 1], 2), ["a", "b"], DetectParams(), 0.3)
    assert partial.missing() == ["b"] and partial.explain() == 'no "b" found (best score 0.20 < 0.30)'
    text = pick(Candidates(np.array([[0.2]]), np.array([0.9]), np.array([[0, 0, 9, 9.0]])), ["a"],
                DetectParams(), 0.1, 0.25)
    assert text.explain() == 'no "a" found (best score 0.20 < text threshold 0.25)'


@pytest.mark.parametrize("kw", [{"pick": "first"}, {"max_objects": 0}, {"box_threshold": 1.5},
                                {"text_threshold": -0.1}, {"nms_iou": 0}])
def test_detect_params_are_validated(kw):
    with pytest.raises(InputError):
        DetectParams(**kw)


def test_selection_texts_are_validated_and_count_as_prompts():
    sel = Selection.from_strings(texts=["  price   sticker ", "Price sticker", "logo"])
    assert sel.texts == ("price sticker", "logo") and sel.has_prompts and not sel.is_empty
    assert sel.to_pixels(100, 100).texts == sel.texts
    assert sel.describe() == {"texts": ["price sticker", "logo"]}
    Selection(texts=("tag",), negatives=((5, 5),)).to_pixels(10, 10)  # a negative click may go with words
    for bad, msg in [(["..."], "no word"), (["x" * 201], "at most 200"), ([f"w{i}" for i in range(17)], "at most 16")]:
        with pytest.raises(InputError, match=msg):
            Selection.from_strings(texts=bad)


def test_detection_record():
    d = Detection("tag", 0.876543, (1.234, 2.0, 30.06, 40.0))
    assert d.to_dict() == {"phrase": "tag", "score": 0.8765, "box": [1.2, 2.0, 30.1, 40.0]}
    assert d.area == pytest.approx(28.826 * 38.0)


class FixedDetector:
    """A Detector (the interface, not a model) that always proposes the same candidates: the Detect
    step's own logic under test."""

    name, box_threshold, text_threshold = "fixed", 0.3, None

    def __init__(self, scores, boxes, phrases):
        self.c = candidates(scores, boxes, phrases, max(phrases) + 1)

    def detect(self, image, phrases, params):
        return pick(self.c, phrases, params, self.box_threshold, self.text_threshold)


def test_detect_step_adds_boxes_and_reports_partial_and_total_misses():
    from autoinpaint.detect import Detect
    from autoinpaint.state import EditState

    image = np.zeros((100, 200, 3), np.uint8)
    fixed = FixedDetector([0.9, 0.2], [[20, 10, 60, 50], [100, 10, 150, 60]], [0, 1])
    state = EditState(image=image, selection=Selection(points=((0.5, 0.5),), relative=True,
                                                       texts=("sticker", "logo")))
    state = Detect(fixed)(state)
    sel = state.selection
    assert sel.texts == () and not sel.relative and sel.points == ((100.0, 50.0),)
    assert sel.boxes == ((20.0, 10.0, 60.0, 50.0),)
    assert state.metadata["detections"] == [{"phrase": "sticker", "score": 0.9, "box": [20.0, 10.0, 60.0, 50.0]}]
    assert state.metadata["not_found"] == {"logo": 0.2} and state.metadata["detector"] == "fixed"
    with pytest.raises(NotFoundError, match=r'^no "logo" found \(best score 0.20 < 0.30\)$'):
        Detect(FixedDetector([0.2], [[100, 10, 150, 60]], [0]))(EditState(image=image,
                                                                           selection=Selection(texts=("logo",))))
    # no phrase: nothing happens, the detector is not even loaded
    untouched = Selection(boxes=((1, 1, 5, 5),))
    assert Detect("no-such-detector")(EditState(image=image, selection=untouched)).selection is untouched


def test_models_list_shows_the_detectors(cli):
    r = cli("models", "list", "--json")
    assert r.code == 0
    rows = {row["name"]: row for row in json.loads(r.out) if row["kind"] == "detector"}
    assert list(rows) == ["omdet-turbo", "grounding-dino-tiny", "mm-grounding-dino-tiny", "grounding-dino-base",
                          "owlv2"]
    assert rows["omdet-turbo"]["hub_id"] == "omlab/omdet-turbo-swin-tiny-hf"
    assert rows["mm-grounding-dino-tiny"]["hub_id"] == "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det"
    assert rows["grounding-dino-tiny"]["hub_id"] == "IDEA-Research/grounding-dino-tiny"
    assert rows["owlv2"]["hub_id"] == "google/owlv2-base-patch16-ensemble"
    assert 600e6 < rows["grounding-dino-tiny"]["size"] < 700e6


def test_no_phrase_path_imports_neither_transformers_nor_torch():
    code = ("import sys, numpy as np\n"
            "from autoinpaint import remove\n"
            "from autoinpaint.api import EditOptions, selection_steps\n"
            "assert type(selection_steps(EditOptions())[0]).__name__ == 'Detect'\n"
            "img = np.full((60, 80, 3), 120, np.uint8); img[20:40, 30:50] = 250\n"
            "out = remove(img, points=[(40, 30)], segmenter='classical', inpainter='telea')\n"
            "assert out.shape == img.shape and (out != img).any()\n"
            "print(sorted(m for m in ('transformers', 'torch') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ tiny real models
pytest.importorskip("transformers")
from detect_fixtures import (oracle_forward, save_grounding_dino, save_mm_grounding_dino,  # noqa: E402
                             save_omdet_turbo, save_owlv2)

FAMILIES = ["grounding-dino", "owl", "omdet", "mm-grounding-dino"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("detectors")
    return {"grounding-dino": save_grounding_dino(root / "gdino"), "owl": save_owlv2(root / "owlv2"),
            "omdet": save_omdet_turbo(root / "omdet"), "mm-grounding-dino": save_mm_grounding_dino(root / "mmgd")}


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 240×160 PNG with a bright 'sticker' at (150, 40)-(200, 80)."""
    img = gradient_photo(240, 160)
    img[40:80, 150:200] = (250, 245, 240)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(img).save(path)
    return path, img


@pytest.fixture
def detector(models, request):
    from autoinpaint.detect import load_detector

    return load_detector(str(models[request.param]), device="cpu")


@pytest.mark.parametrize("detector", FAMILIES, indirect=True)
def test_real_loader_and_processor_match_transformers_post_processing(detector, photo):
    """Our numpy post-processing on the tiny model's real outputs gives transformers' own scores and boxes."""
    import torch

    _, img = photo
    phrases = ["price sticker", "logo"]
    raw = detector.forward(img, phrases)
    out = SimpleNamespace(logits=torch.as_tensor(raw["logits"])[None], pred_boxes=torch.as_tensor(raw["boxes"])[None])
    h, w = img.shape[:2]
    if detector.family == "omdet":
        assert type(detector.model).__name__ == "OmDetTurboForObjectDetection"
        q, p = raw["logits"].shape
        assert (q, p) == (20, 2)
        ours = decode_omdet(raw["logits"], raw["boxes"], w, h)
        out = SimpleNamespace(decoder_class_logits=torch.as_tensor(raw["logits"])[None],
                              decoder_coord_logits=torch.as_tensor(raw["boxes"])[None],
                              classes_structure=torch.tensor([p]))
        # every (box, phrase) pair, no NMS: transformers lists each box once per phrase
        ref = detector.processor.post_process_grounded_object_detection(
            out, text_labels=phrases, threshold=0.0, nms_threshold=1.0, target_sizes=[(h, w)], max_num_det=q * p)[0]
        assert len(ref["scores"]) == q * p
        theirs = {(int(lab), round(float(sc), 5)): bx for lab, sc, bx in
                  zip(ref["labels"], ref["scores"], ref["boxes"].numpy().astype(np.float64))}
        for k in range(q):  # each of our boxes is transformers' entry for its best phrase
            box = theirs[(int(ours.phrase[k]), round(float(ours.score[k]), 5))]
            np.testing.assert_allclose(ours.boxes[k], box, atol=1e-3)
        np.testing.assert_allclose(ours.phrase_scores, 1 / (1 + np.exp(-raw["logits"].astype(np.float64))))
    elif detector.family == "grounding-dino":
        ours = decode_grounding_dino(raw["logits"], raw["boxes"], raw["input_ids"], detector.delimiters, 2, w, h)
        ref = detector.processor.post_process_grounded_object_detection(
            out, torch.as_tensor(raw["input_ids"])[None], threshold=0.0, text_threshold=0.0, target_sizes=[(h, w)])[0]
    else:
        assert detector.padded_square  # OWLv2's processor pads to a square
        ours = decode_owl(raw["logits"], raw["boxes"], w, h, detector.padded_square)
        ref = detector.processor.post_process_grounded_object_detection(out, threshold=0.0, target_sizes=[(h, w)])[0]
        assert ref["labels"].tolist() == ours.phrase.tolist()
    if detector.family != "omdet":
        assert len(ref["scores"]) == len(ours.score)
        np.testing.assert_allclose(ours.score, ref["scores"].numpy(), rtol=1e-5)
        expected = ref["boxes"].numpy().astype(np.float64)
        expected[:, [0, 2]] = expected[:, [0, 2]].clip(0, w)
        expected[:, [1, 3]] = expected[:, [1, 3]].clip(0, h)
        np.testing.assert_allclose(ours.boxes, expected, atol=1e-3)

    if detector.family == "grounding-dino":
        expected_type = "mm-grounding-dino" if "mmgd" in str(detector.source.location) else "grounding-dino"
        assert detector.model.config.model_type == expected_type
    found = detector.detect(img, phrases, DetectParams(box_threshold=0, text_threshold=0))
    assert found and all(0 <= d.box[0] < d.box[2] <= w and 0 <= d.box[1] < d.box[3] <= h for d in found)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    assert {d.phrase for d in found} <= set(phrases)
    assert detector.detect(img, ["price sticker"], DetectParams(box_threshold=1.0)) == []


def exif_rotated_photo(path: Path) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A JPEG stored 180×300 (portrait) with EXIF orientation 6: shown 300×180 (landscape, not square),
    with a bright sticker at (210, 110)-(260, 150) of the shown image. Returns (shown pixels, box)."""
    shown = np.full((180, 300, 3), 60, np.uint8)
    shown[110:150, 210:260] = 250
    stored = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=95, exif=exif.tobytes())
    return shown, (210, 110, 260, 150)


@pytest.mark.parametrize("detector", FAMILIES, indirect=True)
def test_boxes_land_on_the_object_of_an_exif_rotated_non_square_photo(detector, tmp_path, monkeypatch):
    """Known answer through the whole pipeline: EXIF orientation, the real processor's resize (and OWLv2's
    padding to a square), box mapping, segmentation and removal."""
    from autoinpaint import remove

    path = tmp_path / "rotated.jpg"
    shown, (bx0, by0, bx1, by1) = exif_rotated_photo(path)
    monkeypatch.setattr(detector.model, "forward", oracle_forward(detector))
    state = remove(path, texts=["sticker"], detector=detector.name, segmenter="classical", inpainter="telea",
                   output=tmp_path / "out.png", device="cpu")
    (det,) = state.metadata["detections"]
    # one pixel of the model's input (64-96 px) is 3-5 px of this photo
    tol = 1.5 * max(300, 180) / 64
    assert det["phrase"] == "sticker" and det["score"] > 0.99
    assert np.allclose(det["box"], [bx0, by0, bx1, by1], atol=tol), det["box"]
    assert state.image.shape == (180, 300, 3)
    assert state.mask.sum() < 1.5 * (bx1 - bx0) * (by1 - by0)          # the sticker, not the photo
    assert (state.alpha[by0:by1, bx0:bx1] > 0).mean() > 0.99           # all of it, once dilated
    out = np.asarray(Image.open(tmp_path / "out.png"))
    keep = state.alpha == 0
    assert np.array_equal(out[keep], state.image[keep])
    assert out[by0 + 10:by1 - 10, bx0 + 10:bx1 - 10].mean() < 150  # the bright sticker is gone


def test_missing_and_unsafe_detectors_exit_3(tmp_path, monkeypatch, cli, photo):
    from autoinpaint.detect import load_detector
    from autoinpaint.models.store import default_store

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.delenv("AUTOINPAINT_ALLOW_DOWNLOAD", raising=False)
    default_store().clear()
    path, _ = photo
    out = tmp_path / "out.png"
    r = cli("remove", path, "--text", "sticker", "-o", out, *FAST)
    assert r.code == 3, r.err
    assert "hf download omlab/omdet-turbo-swin-tiny-hf" in r.err and not out.exists()  # auto's default
    for name, repo in [("grounding-dino-tiny", "IDEA-Research/grounding-dino-tiny"),
                       ("mm-grounding-dino-tiny", "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det")]:
        r = cli("remove", path, "--text", "sticker", "--detector", name, "-o", out, *FAST)
        assert r.code == 3 and f"hf download {repo}" in r.err and not out.exists(), r.err
    monkeypatch.setenv("AUTOINPAINT_ALLOW_DOWNLOAD", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline always wins
    with pytest.raises(ModelMissingError, match="HF_HUB_OFFLINE"):
        load_detector("owlv2")
    pickles = tmp_path / "pickled"
    pickles.mkdir()
    (pickles / "config.json").write_text('{"model_type": "grounding-dino"}')
    (pickles / "pytorch_model.bin").write_bytes(b"\x80\x04 not really")
    r = cli("mask", path, "--text", "sticker", "--detector", pickles, "-o", out, *FAST)
    assert r.code == 3 and "pickle" in r.err and not out.exists()
    r = cli("mask", path, "--text", "sticker", "--detector", tmp_path / "nowhere", "-o", out, *FAST)
    assert r.code == 3 and "no such file" in r.err


# ------------------------------------------------------------------------------ CLI, end to end
def test_cli_remove_with_text_runs_the_real_tiny_model(cli, models, photo, tmp_path):
    path, img = photo
    out, preview = tmp_path / "out.png", tmp_path / "preview.png"
    r = cli("remove", path, "--text", "sticker", "--detector", models["grounding-dino"], "--box-threshold", "0",
            "--text-threshold", "0", "--pick", "largest", "--json", "--preview", preview, "-o", out, *FAST)
    assert r.code == 0, r.err
    rec = json.loads(r.out)
    (det,) = rec["detections"]  # --pick largest: one box for the one phrase
    x0, y0, x1, y1 = det["box"]
    assert det["phrase"] == "sticker" and 0 <= det["score"] <= 1 and 0 <= x0 < x1 <= 240 and 0 <= y0 < y1 <= 160
    assert rec["detector"] == str(models["grounding-dino"]) and rec["segmenter"] == "classical"
    assert rec["timings"]["detect"] > 0 and "detect" in rec["timings"]
    result = np.asarray(Image.open(out))
    changed = np.any(result != img, axis=2)
    assert changed.any()
    # only pixels near the detected box may change (classical box segmentation + 8 px dilate + feather)
    pad = 8 + 4 + 1
    near = np.zeros_like(changed)
    near[max(0, int(y0) - pad):int(y1) + pad + 1, max(0, int(x0) - pad):int(x1) + pad + 1] = True
    assert not (changed & ~near).any()
    panel = np.asarray(Image.open(preview).convert("RGB"))
    assert ((panel[..., 0] == 255) & (panel[..., 1] == 0) & (panel[..., 2] == 255)).sum() > 20  # the labelled box


def test_cli_mask_with_text_and_owlv2_writes_the_mask_alone(cli, models, photo, tmp_path):
    path, _ = photo
    out = tmp_path / "mask.png"
    r = cli("mask", path, "--text", "sticker", "--text", "logo", "--detector", models["owl"], "--box-threshold", "0",
            "--max-objects", "1", "--dilate", "0", "--feather", "0", "--json", "-o", out, *FAST)
    assert r.code == 0, r.err
    (det,) = json.loads(r.out)["detections"]
    mask = np.asarray(Image.open(out))
    assert mask.shape == (160, 240) and mask.any()
    x0, y0, x1, y1 = det["box"]
    ys, xs = np.nonzero(mask)
    assert xs.min() >= int(x0) - 1 and xs.max() <= x1 + 1 and ys.min() >= int(y0) - 1 and ys.max() <= y1 + 1


def test_cli_nothing_found_exits_2_and_writes_nothing(cli, models, photo, tmp_path):
    path, _ = photo
    out, preview = tmp_path / "out.png", tmp_path / "p.png"
    r = cli("remove", path, "--text", "price sticker", "--detector", models["grounding-dino"], "--box-threshold",
            "1", "-o", out, "--preview", preview, *FAST)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err
    import re
    assert re.fullmatch(r'Error: no "price sticker" found \(best score 0\.\d\d < 1\.00\)', lines[0]), lines[0]
    assert not out.exists() and not preview.exists()


def test_every_selection_command_takes_text(cli):
    for command in ("remove", "mask", "replace", "fill", "batch"):
        r = cli(command, "--help")
        assert r.code == 0
        for flag in ("--text PHRASE", "--detector", "--box-threshold", "--text-threshold", "--pick", "--max-objects"):
            assert flag in r.out, (command, flag)


# ------------------------------------------------------------------------------ Python API and Editor
def test_api_and_editor_with_texts(models, photo, monkeypatch):
    from autoinpaint import Editor, EditOptions, remove
    from autoinpaint.detect import load_detector

    path, img = photo
    gd = str(models["grounding-dino"])
    result = remove(img, texts="sticker", detector=gd, box_threshold=0, text_threshold=0, pick="largest",
                    segmenter="classical", inpainter="telea", device="cpu")
    assert result.shape == img.shape and (result != img).any()
    with pytest.raises(NotFoundError, match='no "sticker" found'):
        remove(img, texts=["sticker"], detector=gd, box_threshold=1, segmenter="classical", inpainter="telea",
               device="cpu")

    img = (gradient_photo(240, 160) * 0.6).astype(np.uint8)  # darker than the sticker everywhere
    img[40:80, 150:200] = (250, 245, 240)
    ed = Editor(EditOptions(detector=gd, segmenter="classical", device="cpu")).open(img)
    found = ed.detect(["sticker", "logo"], box_threshold=0, text_threshold=0)  # the real tiny model
    assert isinstance(found, list) and len(found) > 1 and all(isinstance(d, Detection) for d in found)
    none = ed.detect("sticker", box_threshold=1)
    assert none == [] and isinstance(none, Detections) and none.explain().startswith('no "sticker" found')

    # the web page's flow, with the network's forward replaced by the oracle (everything else real)
    detector = load_detector(gd, device="cpu")
    monkeypatch.setattr(detector.model, "forward", oracle_forward(detector))
    proposals = ed.detect(["sticker"])
    assert len(proposals) == 1 and np.allclose(proposals[0].box, (150, 40, 200, 80), atol=6)
    sticker = np.zeros(img.shape[:2], bool)
    sticker[40:80, 150:200] = True
    kept = proposals  # the user keeps the proposal, the page selects it as a box
    mask = ed.select(boxes=[d.box for d in kept])
    assert (mask & sticker).sum() / (mask | sticker).sum() > 0.8
    same = ed.select(texts=["sticker"])
    assert np.array_equal(same, mask) and ed.summary()["detections"][0]["phrase"] == "sticker"
    ed.select(points=[(175, 60)])
    assert "detections" not in ed.summary()  # a later selection without words forgets the old detections


def test_detected_boxes_reach_sam(models, photo, tmp_path, monkeypatch):
    """Works with every segmenter: the detected boxes are SAM's box prompts."""
    from sam_fixtures import save_sam_checkpoint

    from autoinpaint import EditOptions, edit
    from autoinpaint.detect import load_detector
    from autoinpaint.segment.sam import SamSegmenter

    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path / "home"))
    ckpt = save_sam_checkpoint(tmp_path / "tiny_sam.pth")
    seen = []
    original = SamSegmenter.predict

    def spy(self, embedding, selection, params=None):
        seen.append(selection.boxes)
        return original(self, embedding, selection, params)

    monkeypatch.setattr(SamSegmenter, "predict", spy)
    path, _ = photo
    opts = EditOptions(detector=str(models["owl"]), segmenter=str(ckpt), box_threshold=0, max_objects=2,
                       device="cpu", precision="fp32", cache=False)
    try:
        state = edit(path, Selection(texts=("sticker",)), opts, "mask")
        assert state.metadata["segmenter"].startswith("sam")
    except InputError as exc:  # a random tiny SAM may predict an empty mask: the prompts still reached it
        assert "empty mask" in str(exc)
    expected = load_detector(str(models["owl"]), device="cpu").detect(
        np.asarray(Image.open(path).convert("RGB")), ["sticker"], DetectParams(box_threshold=0, max_objects=2))
    assert len(expected) == 2 and seen == [tuple(d.box for d in expected)]


# ------------------------------------------------------------------------------ batch
def test_recipe_text_key_folder_mode_and_payload(tmp_path):
    from autoinpaint.batch import Defaults, iter_tasks
    from autoinpaint.batch.recipe import Task

    for i in range(2):
        Image.fromarray(gradient_photo(40, 30)).save(tmp_path / f"p{i}.png")
    recipe = tmp_path / "r.csv"
    recipe.write_text('input,text,box,box_threshold,pick\np0.png,sticker; logo,,0.4,best\n'
                      'p1.png,,"1,1,20,20",,\n')
    tasks = list(iter_tasks(recipe, tmp_path / "out"))
    assert tasks[0].selection.texts == ("sticker", "logo") and tasks[0].options.box_threshold == 0.4
    assert tasks[0].options.pick == "best" and tasks[1].selection.texts == ()
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(json.dumps({"input": "p0.png", "text": ["price sticker"], "point": [5, 5]}) + "\n"
                     + json.dumps({"input": "p1.png", "text": "..."}) + "\n")
    good, bad = iter_tasks(jsonl, tmp_path / "out")
    assert good.selection.texts == ("price sticker",) and good.selection.points == ((5.0, 5.0),)
    assert bad.error and "no word" in bad.error
    back = Task.from_payload(json.loads(json.dumps(good.to_payload())))
    assert back.selection == good.selection and back.param_hash == good.param_hash
    # folder mode: --text is a selection for every image, and part of the parameter hash
    folder = list(iter_tasks(tmp_path, tmp_path / "out", Defaults(selection=Selection(texts=("sticker",)))))
    assert [t.selection.texts for t in folder] == [("sticker",), ("sticker",)]
    logo = list(iter_tasks(tmp_path, tmp_path / "out", Defaults(selection=Selection(texts=("logo",)))))
    assert logo[0].param_hash != folder[0].param_hash
    with pytest.raises(InputError, match="--text"):
        list(iter_tasks(tmp_path, tmp_path / "out", Defaults()))


def test_batch_not_found_rows_are_counted_apart_and_the_batch_goes_on(models, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("found", "absent", "coords", "again"):
        img = gradient_photo(120, 80)
        img[20:40, 60:90] = 250
        Image.fromarray(img).save(inputs / f"{name}.png")
    rows = [{"input": "in/found.png", "text": "sticker", "box_threshold": 0, "text_threshold": 0, "pick": "largest"},
            {"input": "in/absent.png", "text": ["price sticker", "logo"], "box_threshold": 1},
            {"input": "in/coords.png", "rect": "60,20,90,40"},
            {"input": "in/again.png", "text": "sticker", "box_threshold": 0, "text_threshold": 0,
             "pick": "largest"}]
    recipe = tmp_path / "recipe.jsonl"
    recipe.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "autoinpaint", "batch", recipe, "-o", out, "--workers", "1",
                        "--detector", models["grounding-dino"], "--device", "cpu", *FAST, "--json"],
                       capture_output=True, text=True, timeout=180, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr  # not_found is an answer: exit 0 when nothing failed
    summary = json.loads(r.stdout)
    assert (summary["done"], summary["not_found"], summary["failed"], summary["total"]) == (3, 1, 0, 4)
    recs = {Path(rec["input"]).stem: rec for rec in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert recs["absent"]["status"] == "not_found" and recs["absent"]["error_type"] == "NotFoundError"
    assert recs["absent"]["error"].startswith('no "price sticker" or "logo" found (best score 0.')
    assert recs["found"]["status"] == "done" and len(recs["found"]["detections"]) == 1
    assert recs["coords"]["status"] == "done" and "detections" not in recs["coords"]
    assert (out / "found.png").exists() and (out / "coords.png").exists() and not (out / "absent.png").exists()
    # one worker: the detector loaded for the first text row (imports included) is reused by the last
    assert recs["again"]["pid"] == recs["found"]["pid"]
    assert recs["again"]["timings"]["load"] < 0.2 * recs["found"]["timings"]["load"]


def test_working_size_follows_the_processor():
    from autoinpaint.detect.zero_shot import working_size

    assert working_size(4000, 3000, {"shortest_edge": 800, "longest_edge": 1333}) == (1067, 800)
    assert working_size(4000, 1000, {"shortest_edge": 800, "longest_edge": 1333}) == (1333, 333)
    assert working_size(3000, 4000, {"height": 960, "width": 960}) == (720, 960)   # OWLv2: long side → 960
    assert working_size(640, 480, {"height": 960, "width": 960}) == (640, 480)     # never enlarged
    assert working_size(640, 480, {}) == (640, 480)


def test_auto_takes_omdet_turbo_from_the_hub_cache_first(models, tmp_path, monkeypatch, cli):
    """`--detector auto` with OmDet-Turbo and Grounding DINO both in the Hugging Face cache: OmDet-Turbo,
    found by its alias through the real cache lookup and loaded through the real loader."""
    import huggingface_hub.constants

    from autoinpaint.models.store import default_store
    from autoinpaint.models.registry import resolve_auto
    from hf_sam_fixtures import install_in_hub_cache

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("AUTOINPAINT_ALLOW_DOWNLOAD", raising=False)
    default_store().clear()
    install_in_hub_cache(models["grounding-dino"], cache, "IDEA-Research/grounding-dino-tiny")
    assert resolve_auto("detector")[0] == "grounding-dino-tiny"
    install_in_hub_cache(models["omdet"], cache, "omlab/omdet-turbo-swin-tiny-hf")
    assert resolve_auto("detector")[0] == "omdet-turbo"
    rows = {r["name"]: r for r in json.loads(cli("models", "list", "--json").out)}
    assert rows["omdet-turbo"]["present"] and not rows["mm-grounding-dino-tiny"]["present"]
    from autoinpaint.detect import load_detector

    loaded = load_detector("omdet-turbo", device="auto")  # what the CLI's auto will load
    assert loaded.family == "omdet" and loaded.source.kind == "hub"
    monkeypatch.setattr(loaded.model, "forward", oracle_forward(loaded))  # the network finds the sticker
    img = (gradient_photo(240, 160) * 0.6).astype(np.uint8)  # darker than the sticker everywhere
    img[40:80, 150:200] = (250, 245, 240)
    path, out = tmp_path / "dark.png", tmp_path / "out.png"
    Image.fromarray(img).save(path)
    r = cli("mask", path, "--text", "sticker", "--json", "-o", out, *FAST)
    assert r.code == 0, r.err
    rec = json.loads(r.out)
    assert rec["detector"] == "omdet-turbo" and len(rec["detections"]) == 1 and out.exists()
    assert np.allclose(rec["detections"][0]["box"], (150, 40, 200, 80), atol=1.5 * 240 / 128)
    default_store().clear()


def test_published_omdet_config_naming_a_timm_backbone_loads_offline(tmp_path, monkeypatch):
    """The published OmDet-Turbo config names its backbone the old way (``backbone`` +
    ``backbone_kwargs``), which transformers 5 turns into a Hub lookup (fails offline): autoinpaint builds
    the timm backbone config itself, and the checkpoint's weights load into it."""
    import huggingface_hub.constants
    from safetensors import safe_open

    from autoinpaint.detect import load_detector
    from detect_fixtures import save_omdet_turbo_legacy

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    folder = save_omdet_turbo_legacy(tmp_path / "omdet-legacy")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["backbone_config"] is None and cfg["backbone"] == "swin_tiny_patch4_window7_224"
    detector = load_detector(str(folder), device="cpu")
    assert type(detector.model.vision_backbone.vision_backbone).__name__ == "TimmBackbone"
    with safe_open(str(folder / "model.safetensors"), "pt") as f:  # the checkpoint's weights, not a random init
        key = next(k for k in f.keys() if "vision_backbone" in k and k.endswith("weight"))
        assert np.array_equal(f.get_tensor(key).numpy(), detector.model.state_dict()[key].numpy())
    img = gradient_photo(240, 160)
    raw = detector.forward(img, ["sticker", "logo"])
    assert raw["logits"].shape == (20, 2) and raw["boxes"].shape == (20, 4)
    assert detector.detect(img, ["sticker"], DetectParams(box_threshold=0))
