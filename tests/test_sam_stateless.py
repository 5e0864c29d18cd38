"""The ``.pth`` SAM path is stateless (issue 20, item 3): the prompt encoder and mask decoder run on the
embedding they are given, with no ``SamPredictor`` and no lock, and give what ``SamPredictor`` gives."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sam_fixtures import save_sam_checkpoint, save_scene  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

from autoinpaint.segment import SegmentParams
from autoinpaint.models import embedding_cache  # noqa: E402
from autoinpaint.segment.sam import SamSegmenter  # noqa: E402
from autoinpaint.selection import Selection  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random-weight SAM ``.pth`` (loaded as the published ones are) and two different photos."""
    folder = tmp_path_factory.mktemp("stateless")
    checkpoint = save_sam_checkpoint(folder / "tiny_sam.pth")
    _, scene = save_scene(folder)
    other = np.ascontiguousarray(np.rot90(scene, 2))[:, 10:]  # another picture, another size (90×110)
    other[5:40, 5:50] = (230, 60, 40)
    return checkpoint, scene, other


@pytest.fixture
def seg(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path))
    embedding_cache._MEMORY.clear()
    yield SamSegmenter(tiny[0], device="cpu", precision="fp32", runtime="torch")
    embedding_cache._MEMORY.clear()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


SELECTIONS = [  # (selection, the same prompt as SamPredictor.predict's arguments)
    (Selection(points=((50, 40),)), dict(point_coords=[[50, 40]], point_labels=[1], multimask_output=True)),
    (Selection(points=((50, 40), (70, 50)), negatives=((5, 5),)),
     dict(point_coords=[[50, 40], [70, 50], [5, 5]], point_labels=[1, 1, 0], multimask_output=False)),
    (Selection(boxes=((25, 15, 95, 75),)), dict(box=[25, 15, 95, 75], multimask_output=False)),
    (Selection(boxes=((25, 15, 95, 75),), points=((60, 45),)),
     dict(point_coords=[[60, 45]], point_labels=[1], box=[25, 15, 95, 75], multimask_output=False)),
]


def test_stateless_path_gives_what_sam_predictor_gives(seg, tiny):
    """Same embedding as ``SamPredictor.set_image``, same low-resolution logits and IoU (≤ 1e-4), same
    kept mask (IoU ≥ 0.999) for points, negatives, a box and a box with a point; with a mask input too."""
    from segment_anything.predictor import SamPredictor

    assert not hasattr(seg, "predictor")
    for image in tiny[1:]:
        emb = seg.embed(image)
        ref = SamPredictor(seg.model)
        with torch.inference_mode():
            ref.set_image(image)
        assert tuple(ref.original_size) == emb.original_size and tuple(ref.input_size) == emb.input_size
        assert torch.equal(ref.features, emb.features)
        sizes = []
        for selection, args in SELECTIONS:
            args = {k: np.array(v, np.float32) if k != "multimask_output" else v for k, v in args.items()}
            masks, ref_iou, ref_low = ref.predict(**args, return_logits=True)
            points = [np.concatenate([np.array(selection.points, np.float32).reshape(-1, 2),
                                      np.array(selection.negatives, np.float32).reshape(-1, 2)])]
            labels = [args["point_labels"] if "point_labels" in args else np.zeros(0, np.float32)]
            boxes = args["box"][None] if "box" in args else None
            low, our_iou = seg._decode(emb, points, labels, boxes, args["multimask_output"])
            assert np.abs(low[0] - ref_low).max() <= 1e-4 and np.abs(our_iou[0] - ref_iou).max() <= 1e-4
            result = seg.predict(emb, selection, SegmentParams())
            expected = masks[int(ref_iou.argmax())] > 0
            assert result.mask.shape == image.shape[:2] and iou(result.mask, expected) >= 0.999
            assert result.scores["iou"] == pytest.approx(float(ref_iou.max()), abs=1e-4)
            sizes.append(int(expected.sum()))
            # a refinement pass: the kept logits back in as a mask prompt
            kept = ref_low[int(ref_iou.argmax())][None]
            _, _, ref_low2 = ref.predict(**{**args, "multimask_output": False}, mask_input=kept, return_logits=True)
            low2, _ = seg._decode(emb, points, labels, boxes, False, kept[None])
            assert np.abs(low2[0] - ref_low2).max() <= 1e-4
        assert any(0 < n < image.shape[0] * image.shape[1] for n in sizes)  # not all empty or full: a real check


def test_two_threads_predict_on_two_embeddings_at_once(seg, tiny, monkeypatch):
    """No lock around prediction: two threads are inside the decoder at the same time (a barrier both
    must reach), each on its own photo's embedding, and each gets exactly its own sequential answer."""
    selections = [s for s, _ in SELECTIONS]
    embeddings = [seg.embed(image) for image in tiny[1:]]
    expected = [[seg.predict(emb, s, SegmentParams()).mask for s in selections] for emb in embeddings]
    assert expected[0][0].shape != expected[1][0].shape  # an answer for the other photo could not pass

    barrier = threading.Barrier(2, timeout=20)
    original = seg._decode
    met = []
    local = threading.local()

    def decode(*args):
        if not getattr(local, "waited", False):  # each thread's first decoder call
            local.waited = True
            met.append(barrier.wait())  # raises BrokenBarrierError if the other thread cannot get in
        return original(*args)

    monkeypatch.setattr(seg, "_decode", decode)
    got: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            got[i] = [seg.predict(embeddings[i], s, SegmentParams()).mask for _ in range(3) for s in selections]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(met) == [0, 1]  # both threads were in the decoder at once
    for i in (0, 1):
        assert len(got[i]) == 3 * len(selections)
        for k, mask in enumerate(got[i]):
            np.testing.assert_array_equal(mask, expected[i][k % len(selections)])
