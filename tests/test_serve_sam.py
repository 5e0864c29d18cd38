"""The web app on Segment Anything (a tiny random-weight SAM saved as a .pth, loaded through the
real code path): the embedding is computed once per photo in the background, and two pages on two
photos clicking at once each get their own photo's mask (the predictor swaps embeddings under a lock)."""
from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("segment_anything")
from fastapi.testclient import TestClient  # noqa: E402

from autoinpaint import EditOptions, Editor, InputError  # noqa: E402
from autoinpaint.server.app import create_app  # noqa: E402
from conftest import gradient_photo  # noqa: E402
from sam_fixtures import save_sam_checkpoint  # noqa: E402

POINTS = [(40, 30), (120, 90), (200, 60), (260, 200), (80, 180)]


def png(seed: int) -> bytes:
    img = gradient_photo(320, 240, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        x, y = rng.integers(0, 260), rng.integers(0, 190)
        img[y:y + 50, x:x + 60] = rng.integers(0, 255, 3)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def sam(tmp_path_factory):
    from autoinpaint.models.store import default_store
    from autoinpaint.models import embedding_cache

    home = tmp_path_factory.mktemp("samhome")
    mp = pytest.MonkeyPatch()
    mp.setenv("AUTOINPAINT_HOME", str(home))
    embedding_cache._MEMORY.clear()
    default_store().clear()
    ckpt = save_sam_checkpoint(home / "tiny_sam.pth")
    options = EditOptions(segmenter=str(ckpt), inpainter="telea", device="cpu", precision="fp32", cache=False,
                          dilate=0, feather=0)
    yield options
    default_store().clear()
    mp.undo()


def reference(options, data: bytes) -> dict:
    """Each point's alpha (uint8) on the photo alone, or None where the model predicts nothing."""
    ed = Editor(options).open(data)
    out = {}
    for p in POINTS:
        try:
            ed.select(points=[p])
            out[p] = np.round(ed.alpha * 255).astype(np.uint8)
        except InputError:
            out[p] = None
    return out


def test_two_photos_clicked_at_once_get_their_own_masks(sam):
    photos = {"a": png(1), "b": png(2)}
    refs = {k: reference(sam, v) for k, v in photos.items()}
    usable = [p for p in POINTS if refs["a"][p] is not None and refs["b"][p] is not None
              and not np.array_equal(refs["a"][p], refs["b"][p])]
    assert usable, "the tiny model gives no distinct masks for these photos"
    from autoinpaint.models import embedding_cache

    embedding_cache._MEMORY.clear()  # the server computes its own embeddings
    segmenter = Editor(sam).segment_step.segmenter  # the model the references ran, in the process's store
    runs = segmenter.encoder_runs
    from autoinpaint.models.store import default_store

    app = create_app(None, sam, store=default_store())  # handed to the server: its sessions share that model
    with TestClient(app, base_url="http://127.0.0.1") as c:
        ids = {k: c.post("/api/images", files={"file": (f"{k}.png", v)}).json()["id"] for k, v in photos.items()}
        for image_id in ids.values():  # opening started the embedding in the background
            for _ in range(600):
                if c.get(f"/api/images/{image_id}").json()["embedding"] == "ready":
                    break
                time.sleep(0.05)
        results, errors = [], []

        def clicks(name):
            try:
                for _ in range(3):
                    for p in usable:
                        r = c.post(f"/api/images/{ids[name]}/mask", json={"points": [list(p)]})
                        assert r.status_code == 200, r.text
                        m = r.json()
                        assert m["segmenter"].startswith("sam:") and m["score"] is not None
                        alpha = np.asarray(Image.open(io.BytesIO(base64.b64decode(m["alpha_png"]))))
                        results.append((name, p, alpha))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=clicks, args=(name,)) for name in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(results) == 6 * len(usable)
        for name, p, alpha in results:
            assert np.array_equal(alpha, refs[name][p]), (name, p)
        assert app.state.context.sessions.get(ids["a"]).editor.segment_step.segmenter is segmenter
        assert segmenter.encoder_runs == runs + 2  # once per photo: every click ran only the decoder
