"""The in-memory core: ``Editor`` sessions, ``edit``/``remove`` on images in memory, pipeline slicing."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autoinpaint import EditOptions, Editor, InputError, Pipeline, Selection, edit, remove
from autoinpaint.api import build_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
STICKER = ROOT / "samples" / "catalogue_sticker.jpg"
CLASSICAL = EditOptions(segmenter="classical", inpainter="telea")


def test_editor_session_open_select_refine_apply_save(tmp_path):
    ed = Editor(CLASSICAL).open(STICKER)
    w, h = ed.size
    mask = ed.select(points=[(527, 442)])
    assert mask.shape == (h, w) and mask.dtype == bool and 1_000 < mask.sum() < 0.2 * w * h
    narrow = ed.alpha.copy()
    wide = ed.refine(dilate=20, feather=0)
    assert (wide > 0).sum() > (narrow > 0).sum() and np.array_equal(ed.mask, mask)  # the object is kept
    result = ed.apply("remove")
    keep = wide == 0
    assert result.shape == ed.image.shape and np.array_equal(result[keep], ed.image[keep])
    assert not np.array_equal(result[mask], ed.image[mask])
    out = tmp_path / "clean.jpg"
    assert ed.save(out) == "JPEG"
    written = Image.open(out)
    assert written.format == "JPEG" and written.size == (w, h)
    assert Image.open(io.BytesIO(ed.encode())).format == "JPEG"
    assert ed.summary()["mask_pixels"] == int((wide > 0).sum())


def test_editor_accepts_bytes_pil_and_arrays():
    data = STICKER.read_bytes()
    from_path = Editor(CLASSICAL).open(STICKER, embed=False).image
    for source in (data, Image.open(io.BytesIO(data)), from_path):
        ed = Editor(CLASSICAL).open(source, embed=False)
        assert np.array_equal(ed.image, from_path)
    grey16 = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20)
    ed = Editor(CLASSICAL).open(grey16)
    ed.select(rects=[(10, 10, 30, 30)])
    out = ed.apply("remove")
    assert out.dtype == np.uint16 and out.shape == (48, 64, 1)
    assert np.array_equal(out[ed.alpha == 0, 0], grey16[ed.alpha == 0])
    with pytest.raises(InputError, match="uint8 or uint16"):
        Editor().open(np.zeros((4, 4, 3), np.float32))


def test_editor_errors_are_input_errors():
    ed = Editor(CLASSICAL)
    with pytest.raises(InputError, match="no image open"):
        ed.select(points=[(1, 1)])
    ed.open(STICKER, embed=False)
    with pytest.raises(InputError, match="select before apply"):
        ed.apply("remove")
    with pytest.raises(InputError, match="outside"):
        ed.select(points=[(99_999, 1)])
    with pytest.raises(InputError, match="unknown option"):
        ed.select(points=[(527, 442)], dilatation=3)
    with pytest.raises(InputError, match="replace needs --prompt"):
        ed.select(points=[(527, 442)])
        ed.apply("replace")


def test_remove_returns_an_image_like_its_input(tmp_path):
    data = STICKER.read_bytes()
    sel = dict(rects=[(500, 420, 560, 470)], segmenter="classical", inpainter="telea")
    as_bytes = remove(data, **sel)
    assert isinstance(as_bytes, bytes) and Image.open(io.BytesIO(as_bytes)).format == "JPEG"
    array = np.asarray(Image.open(STICKER))
    as_array = remove(array, **sel)
    assert isinstance(as_array, np.ndarray) and as_array.shape == array.shape
    as_pil = remove(Image.open(STICKER), **sel)
    assert isinstance(as_pil, Image.Image) and as_pil.size == (array.shape[1], array.shape[0])
    state = remove(array, output=tmp_path / "o.png", **sel)
    assert (tmp_path / "o.png").is_file() and state.result.shape == array.shape
    # the same pixels whichever way the image came in (the file round trip is lossless here)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), as_array)


def test_edit_in_memory_equals_run_edit_on_a_file(tmp_path):
    from autoinpaint import run_edit

    sel = Selection(points=((527, 442),))
    mem = edit(STICKER.read_bytes(), sel, CLASSICAL)
    disk = run_edit(STICKER, sel, CLASSICAL, output=tmp_path / "o.jpg")
    assert np.array_equal(mem.result, disk.result) and np.array_equal(mem.alpha, disk.alpha)


def test_pipeline_slices_by_step_name():
    pipeline = build_pipeline("remove", CLASSICAL)
    names = [s.name for s in pipeline.steps]
    assert names == ["load", "detect", "segment", "mask", "assess", "inpaint", "composite", "save"]
    head = pipeline[:"mask"]
    assert isinstance(head, Pipeline) and [s.name for s in head.steps] == ["load", "detect", "segment", "mask"]
    assert pipeline["inpaint"].name == "inpaint"
    from autoinpaint import EditState

    state = head(EditState(input_path=str(STICKER), selection=Selection(points=((527, 442),))))
    assert state.alpha is not None and state.result is None
    with pytest.raises(KeyError):
        pipeline[:"nope"]


def test_a_second_click_reuses_the_embedding(tmp_path, monkeypatch):
    """With SAM (tiny random weights) the encoder runs once per image; further clicks only decode."""
    pytest.importorskip("segment_anything")
    from sam_fixtures import save_sam_checkpoint

    from autoinpaint.models.store import default_store
    from autoinpaint.models import embedding_cache

    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path))
    embedding_cache._MEMORY.clear()
    default_store().clear()
    ckpt = save_sam_checkpoint(tmp_path / "tiny.pth")
    ed = Editor(EditOptions(segmenter=str(ckpt), device="cpu", precision="fp32", cache=False))
    ed.open(np.asarray(Image.open(STICKER)))
    ed.start_embedding().result(timeout=60)
    assert ed.embedding_ready()
    seg = ed.segment_step.segmenter
    assert seg.encoder_runs == 1
    for x in (100, 300, 500):
        try:
            ed.select(points=[(x, 200)])
        except InputError:  # a random model may predict an empty mask for a click
            pass
    assert seg.encoder_runs == 1
    default_store().clear()
