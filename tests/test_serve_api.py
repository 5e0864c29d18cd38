"""The web app's JSON API through an ASGI test client: happy paths, every error status, limits,
sessions, jobs (cancel, client gone), save beside the input, pass-through of later stages' records."""
from __future__ import annotations

import base64
import io
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from autoinpaint import EditOptions  # noqa: E402
from autoinpaint.server.app import create_app  # noqa: E402
from autoinpaint.server.config import Limits  # noqa: E402
from autoinpaint.server.jobs import JobManager  # noqa: E402
from conftest import gradient_photo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STICKER = ROOT / "samples" / "catalogue_sticker.jpg"
OPTIONS = EditOptions(segmenter="classical", inpainter="telea", model="autoinpaint-tests/no-such-model")
BASE = "http://127.0.0.1"
RECT = [100, 80, 160, 130]


def photo_png(w=320, h=240, seed=0) -> bytes:
    img = gradient_photo(w, h, seed=seed)
    img[80:130, 100:160] = (30, 40, 200)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served")
    shutil.copy(STICKER, root / "sticker.jpg")
    (root / "sub").mkdir()
    (root / "sub" / "small.png").write_bytes(photo_png())
    (root / "notes.txt").write_text("not a photo")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.png").write_bytes(photo_png(seed=5))
    (root / "link_out.png").symlink_to(outside / "secret.png")
    (root / "link_in.png").symlink_to(root / "sub" / "small.png")
    return root


@pytest.fixture(scope="module")
def client(folder):
    app = create_app(folder, OPTIONS, limits=Limits(max_upload_bytes=3_000_000, max_pixels=4_000_000), preload=False)
    with TestClient(app, base_url=BASE) as c:
        yield c


def upload(client, data: bytes, name: str = "photo.png"):
    return client.post("/api/images", files={"file": (name, data, "application/octet-stream")})


def wait(client, job: str, timeout: float = 30) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = client.get(f"/api/jobs/{job}").json()
        if status["status"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job} still {status}")


def decode_alpha(resp: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(resp["alpha_png"]))))


# ------------------------------------------------------------------------------------------- happy paths
def test_info_says_what_runs(client):
    info = client.get("/api/info").json()
    assert info["segmenter"] == "classical" and info["segmenter_classical"]
    assert "autoinpaint models download vit_b" in info["hint"]
    assert info["inpainter"] == "telea" and info["folder"] and not info["token_required"]
    assert "telea" in info["inpainters"] and info["defaults"]["dilate"] == 8


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="canvas"' in page.text
    for testid in ("file-input", "canvas", "remove", "replace", "prompt", "download", "mask-pixels"):
        assert f'data-testid="{testid}"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_upload_mask_refine_edit_download(client):
    data = photo_png()
    r = upload(client, data)
    assert r.status_code == 201
    image = r.json()
    assert (image["width"], image["height"], image["format"]) == (320, 240, "PNG")
    shown = client.get(image["display"]["url"])
    assert shown.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(shown.content)).size == (320, 240)

    r = client.post(f"/api/images/{image['id']}/mask", json={"rects": [RECT], "dilate": 0, "feather": 0})
    assert r.status_code == 200
    m = r.json()
    assert m["mask_pixels"] == 60 * 50 and m["bbox"] == RECT and m["segmenter"] == "drawn"
    alpha = decode_alpha(m)
    assert alpha.shape == (240, 320) and int((alpha > 0).sum()) == m["mask_pixels"]
    assert {"segment", "mask", "encode", "total"} <= set(m["timings"])

    wider = client.post(f"/api/images/{image['id']}/mask", json={"rects": [RECT], "dilate": 6}).json()
    assert wider["mask_pixels"] > m["mask_pixels"] and wider["timings"]["segment"] == 0  # mask stage only

    r = client.post(f"/api/images/{image['id']}/edit", json={"rects": [RECT], "action": "remove", "dilate": 4})
    assert r.status_code == 202
    status = wait(client, r.json()["job"])
    assert status["status"] == "done" and status["progress"] == 1
    job = status["job"]
    result = client.get(f"/api/jobs/{job}/result")
    assert result.headers["content-type"] == "image/png"
    assert "photo.inpainted.png" in result.headers["content-disposition"]
    out = np.asarray(Image.open(io.BytesIO(result.content)))
    final = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job}/alpha").content)))
    original = np.asarray(Image.open(io.BytesIO(data)))
    keep = final == 0
    assert keep.sum() > 0.9 * keep.size and np.array_equal(out[keep], original[keep])
    assert not np.array_equal(out[~keep], original[~keep])
    assert client.get(f"/api/jobs/{job}/summary").json()["inpainter"] == "telea"
    assert Image.open(io.BytesIO(client.get(f"/api/jobs/{job}/display").content)).size == (320, 240)


def test_a_click_uses_the_segmenter(client):
    image = client.post("/api/images", json={"path": "sticker.jpg"}).json()
    assert image["path"] == "sticker.jpg" and image["format"] == "JPEG"
    m = client.post(f"/api/images/{image['id']}/mask", json={"points": [[527, 442]]}).json()
    assert m["segmenter"] == "classical" and 1000 < m["mask_pixels"] < 100_000
    x0, y0, x1, y1 = m["bbox"]
    assert x0 < 527 < x1 and y0 < 442 < y1


def test_pass_through_of_later_stages_records(client):
    """Records that later stages put in the state reach the /mask response as they are: the mask's
    doubt record (quality) and boxes proposed for words (detections)."""
    image = upload(client, photo_png()).json()
    body = {"rects": [RECT]}
    m = client.post(f"/api/images/{image['id']}/mask", json=body).json()
    session = client.app.state.context.sessions.get(image["id"])
    assert m["quality"] == session.editor.state.metadata["quality"] and m["quality"]["verdict"] in ("ok", "doubt")
    assert "detections" not in m
    session.editor.state.metadata["detections"] = [{"box": RECT, "label": "sticker", "score": np.float32(0.9)}]
    m = client.post(f"/api/images/{image['id']}/mask", json={**body, "dilate": 3}).json()
    assert m["detections"] == [{"box": RECT, "label": "sticker", "score": pytest.approx(0.9)}]


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("body, message", [
    ({"points": [[10, 10]], "dilatation": 3}, "unknown field 'dilatation'"),
    ({"points": [[5000, 10]]}, "--point 5000,10 is outside the 320x240 image"),
    ({"boxes": [[50, 50, 10, 10]]}, "inverted or empty"),
    ({}, "nothing selected"),
    ({"negatives": [[5, 5]]}, "--negative needs at least one --point"),
    ({"points": [[1, 2, 3]]}, "points.0"),
    ({"rects": [RECT], "dilate": -1}, "dilate"),
])
def test_bad_masks_are_400_with_the_cli_message(client, body, message):
    image = upload(client, photo_png()).json()
    r = client.post(f"/api/images/{image['id']}/mask", json=body)
    assert r.status_code == 400 and message in r.json()["error"], r.json()
    assert "Traceback" not in r.text


def test_malformed_json_unknown_ids_and_routes(client):
    image = upload(client, photo_png()).json()
    r = client.post(f"/api/images/{image['id']}/mask", content=b"{bad json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    assert client.post("/api/images/nope/mask", json={"points": [[1, 1]]}).status_code == 404
    assert client.get("/api/jobs/nope").json() == {"error": "no job 'nope' (finished jobs are forgotten after a while)"}
    assert client.get("/api/nothing-here").json() == {"error": "not found"}
    r = client.post("/api/images", content=b"raw", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]
    r = upload(client, b"this is not an image", "x.jpg")
    assert r.status_code == 400 and "not an image" in r.json()["error"]
    r = client.post("/api/images", files={"other": ("a.png", photo_png())})
    assert r.status_code == 400 and "field 'file'" in r.json()["error"]


def test_edit_requests_are_checked_before_queueing(client):
    image = upload(client, photo_png()).json()
    url = f"/api/images/{image['id']}/edit"
    queued = len(client.app.state.context.jobs)
    r = client.post(url, json={"rects": [RECT], "action": "replace"})
    assert r.status_code == 400 and "replace needs --prompt" in r.json()["error"]
    r = client.post(url, json={"rects": [RECT], "inpainter": "/tmp/evil.ckpt"})
    assert r.status_code == 400 and "not offered" in r.json()["error"]
    r = client.post(url, json={"rects": [RECT], "model": "../x"})
    assert r.status_code == 400 and "not offered" in r.json()["error"]
    r = client.post(url, json={"rects": [RECT], "action": "explode"})
    assert r.status_code == 400 and "action" in r.json()["error"]
    r = client.post(url, json={"points": [[999, 1]]})
    assert r.status_code == 400 and "outside" in r.json()["error"]
    assert len(client.app.state.context.jobs) == queued  # none of them became a job


def test_a_missing_model_fails_the_job_with_its_message(client):
    image = upload(client, photo_png()).json()
    r = client.post(f"/api/images/{image['id']}/edit", json={"rects": [RECT], "action": "fill", "prompt": "a plant"})
    status = wait(client, r.json()["job"])
    assert status["status"] == "failed" and "hf download autoinpaint-tests/no-such-model" in status["error"]
    r = client.get(f"/api/jobs/{status['job']}/result")
    assert r.status_code == 409 and "failed" in r.json()["error"]


def test_unexpected_errors_are_500_without_a_traceback(folder, monkeypatch):
    from autoinpaint.editor import Editor

    app = create_app(folder, OPTIONS, preload=False)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        image = upload(c, photo_png()).json()
        monkeypatch.setattr(Editor, "select", lambda *a, **k: 1 / 0)
        r = c.post(f"/api/images/{image['id']}/mask", json={"rects": [RECT]})
    assert r.status_code == 500 and r.json() == {"error": "unexpected ZeroDivisionError: division by zero"}


# ------------------------------------------------------------------------------------------- limits
def test_upload_limits_and_decompression_bomb(client):
    r = upload(client, b"\0" * 3_100_000, "big.png")
    assert r.status_code == 413 and "over the limit" in r.json()["error"]
    bomb = io.BytesIO()
    Image.new("1", (5000, 5000)).save(bomb, "PNG")  # 25 MP in a few KB
    assert len(bomb.getvalue()) < 10_000
    r = upload(client, bomb.getvalue(), "bomb.png")
    assert r.status_code == 413 and "pixels is over the limit" in r.json()["error"]
    assert upload(client, photo_png()).status_code == 201  # the server is still up


def test_sessions_are_a_bounded_lru(folder):
    app = create_app(folder, OPTIONS, limits=Limits(max_sessions=2, max_session_bytes=10**9), preload=False)
    sessions = app.state.context.sessions
    with TestClient(app, base_url=BASE) as c:
        ids = [upload(c, photo_png(seed=i)).json()["id"] for i in range(3)]
        assert len(sessions) == 2
        assert c.get(f"/api/images/{ids[0]}").status_code == 404
        assert c.get(f"/api/images/{ids[2]}").status_code == 200
        c.get(f"/api/images/{ids[1]}")  # used: now the newest
        ids.append(upload(c, photo_png(seed=3)).json()["id"])
        assert c.get(f"/api/images/{ids[1]}").status_code == 200 and c.get(f"/api/images/{ids[2]}").status_code == 404
        assert c.delete(f"/api/images/{ids[1]}").status_code == 200 and len(sessions) == 1
    # by bytes: a 320×240 RGB photo is 230 KB, and its display copy as much; 600 KB holds one
    app = create_app(folder, OPTIONS, limits=Limits(max_sessions=8, max_session_bytes=600_000), preload=False)
    with TestClient(app, base_url=BASE) as c:
        for i in range(4):
            upload(c, photo_png(seed=i))
        assert len(app.state.context.sessions) == 1 and app.state.context.sessions.nbytes == 2 * 320 * 240 * 3
        image = upload(c, photo_png(seed=9)).json()["id"]  # a click adds the mask (1 B/px) and alpha (4 B/px)
        assert c.post(f"/api/images/{image}/mask", json={"rects": [RECT]}).status_code == 200
        assert app.state.context.sessions.nbytes >= (2 * 3 + 1 + 4) * 320 * 240


def test_a_sessions_bytes_count_its_sam_embedding_and_what_a_decoder_derived_from_it():
    import torch

    from autoinpaint.editor import Editor
    from autoinpaint.models.embedding_cache import Embedding
    from autoinpaint.server.sessions import held_bytes
    from autoinpaint.state import EditState

    image = np.zeros((240, 320, 3), np.uint8)
    editor = Editor(OPTIONS)
    editor.state = EditState(image=image)
    emb = Embedding({"features": torch.zeros(1, 256, 64, 64)}, (240, 320), (768, 1024))
    editor.state.embeddings["sam"] = emb
    assert held_bytes(editor) == image.nbytes + 4 * 256 * 64 * 64
    emb.derived["image_side"] = {"image_tokens": torch.zeros(1, 4096, 256), "layer0_keys": torch.zeros(1, 8, 16, 4096)}
    assert held_bytes(editor) == image.nbytes + 4 * (2 * 256 * 4096 + 8 * 16 * 4096)


# ------------------------------------------------------------------------------------------- jobs
def test_job_manager_cancel_and_client_gone():
    jobs = JobManager(workers=1, client_timeout=0.3, result_ttl=0.5)
    steps = []

    def slow(job):
        for i in range(200):
            job.report(i / 200, "inpaint", step=i, steps=200)
            steps.append(i)
            time.sleep(0.01)
        job.result = "x"

    running = jobs.submit(slow)
    queued = jobs.submit(slow)
    time.sleep(0.1)
    assert jobs.get(queued.id).status == "queued"
    jobs.cancel(queued.id)
    assert queued.status == "cancelled"  # at once
    assert running.status == "running" and running.to_dict()["steps"] == 200
    # nobody asks about `running` any more: after client_timeout it is cancelled, its result freed
    end = time.monotonic() + 5
    while running.status == "running" and time.monotonic() < end:
        time.sleep(0.05)
    assert running.status == "cancelled" and running.result is None and len(steps) < 200
    # a finished job nobody asks about is forgotten after result_ttl
    done = jobs.submit(lambda job: setattr(job, "result", "ok"))
    while jobs.get(done.id, touch=False).status != "done":
        time.sleep(0.02)
    time.sleep(0.9)
    jobs.reap()
    with pytest.raises(Exception, match="no job"):
        jobs.get(done.id)
    jobs.shutdown()


def test_cancel_through_the_api(folder):
    app = create_app(folder, OPTIONS, limits=Limits(workers=1), preload=False)
    with TestClient(app, base_url=BASE) as c:
        image = c.post("/api/images", json={"path": "sticker.jpg"}).json()
        body = {"points": [[527, 442]], "action": "remove"}
        first = c.post(f"/api/images/{image['id']}/edit", json=body).json()
        second = c.post(f"/api/images/{image['id']}/edit", json=body).json()
        r = c.delete(f"/api/jobs/{second['job']}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert c.get(f"/api/jobs/{second['job']}/result").status_code == 409
        c.delete(f"/api/jobs/{first['job']}")  # running: stops at its next step, its result dropped
        status = wait(c, first["job"])
        assert status["status"] == "cancelled"
        assert c.post(f"/api/jobs/{first['job']}/save").status_code == 409
    assert sorted(p.name for p in folder.iterdir() if "inpainted" in p.name) == []


def test_clicks_go_on_while_an_edit_runs(folder):
    app = create_app(folder, OPTIONS, preload=False)
    with TestClient(app, base_url=BASE) as c:
        image = upload(c, photo_png()).json()
        job = c.post(f"/api/images/{image['id']}/edit", json={"rects": [RECT], "dilate": 0, "feather": 0}).json()
        m = c.post(f"/api/images/{image['id']}/mask", json={"rects": [[10, 10, 30, 30]], "dilate": 0, "feather": 0})
        assert m.status_code == 200 and m.json()["mask_pixels"] == 400
        assert wait(c, job["job"])["status"] == "done"
        final = np.asarray(Image.open(io.BytesIO(c.get(f"/api/jobs/{job['job']}/alpha").content)))
        assert int((final > 0).sum()) == 60 * 50  # the edit kept its own selection


# ------------------------------------------------------------------------------------------- folder mode
def test_files_and_save_beside_the_input_never_overwrite(client, folder):
    listed = [f["path"] for f in client.get("/api/files").json()["files"]]
    assert listed == ["link_in.png", "sticker.jpg", "sub/small.png"]  # link_out.png points outside
    image = client.post("/api/images", json={"path": "sub/small.png"}).json()
    job = client.post(f"/api/images/{image['id']}/edit", json={"rects": [RECT]}).json()["job"]
    assert wait(client, job)["status"] == "done"
    (folder / "sub" / "small.inpainted.png").write_bytes(b"someone else's file")
    r = client.post(f"/api/jobs/{job}/save")
    assert r.status_code == 201 and r.json()["path"] == "sub/small.inpainted-2.png"
    assert (folder / "sub" / "small.inpainted.png").read_bytes() == b"someone else's file"
    again = client.post(f"/api/jobs/{job}/save").json()["path"]
    assert again == "sub/small.inpainted-3.png"
    saved = np.asarray(Image.open(folder / again))
    assert saved.shape == (240, 320, 3)
    assert not [p for p in (folder / "sub").iterdir() if p.name.endswith(".tmp")]
    uploaded = upload(client, photo_png()).json()
    job = client.post(f"/api/images/{uploaded['id']}/edit", json={"rects": [RECT]}).json()["job"]
    wait(client, job)
    r = client.post(f"/api/jobs/{job}/save")
    assert r.status_code == 409 and "download" in r.json()["error"]
    for p in (folder / "sub").glob("small.inpainted*"):
        p.unlink()


def test_two_pages_on_two_photos_get_their_own_masks(client):
    """Concurrent clicks on two photos: each response is that photo's mask (the classical segmenter
    keeps no state, SAM swaps embeddings under its lock: test_serve_sam covers it)."""
    a = upload(client, photo_png(seed=1)).json()["id"]
    img_b = gradient_photo(320, 240, seed=2)
    img_b[150:220, 20:90] = (200, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(img_b).save(buf, "PNG")
    b = upload(client, buf.getvalue()).json()["id"]
    want = {a: [100, 80, 160, 130], b: [20, 150, 90, 220]}
    results, errors = [], []

    def clicks(image_id, x, y):
        try:
            for _ in range(3):
                m = client.post(f"/api/images/{image_id}/mask", json={"points": [[x, y]], "dilate": 0, "feather": 0})
                results.append((image_id, m.json()["bbox"]))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=clicks, args=(a, 130, 105)), threading.Thread(target=clicks, args=(b, 55, 185))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    for image_id, box in results:
        assert box == want[image_id], (image_id, box)


def test_a_click_answer_is_the_plain_computation(client):
    """/mask's answer (the alpha PNG's bytes, pixel count, bbox, doubt record) is what the mask stage and
    the doubt signal give computed the plain way on the click's segmentation: the whole photo, the
    distance transform (commit 842c01e's formula), a fresh working copy of the photo. Clicks on the
    same photo in a row (its working copy kept), masks touching borders, the table and transform paths."""
    from autoinpaint.imaging.display import alpha_png, display_size
    from autoinpaint.imaging.pixels import to_rgb8
    from autoinpaint.mask.assess import assess
    from autoinpaint.mask.refine import bbox, fill_holes
    from autoinpaint.server.editing import selection_of
    from autoinpaint.server.schemas import MaskRequest
    from test_mask_ops import reference_alpha

    photo = gradient_photo(640, 480, seed=3)  # its working copy is scaled (longest side 512)
    photo[:200, :260] = (30, 40, 200)          # a block in the top-left corner
    photo[300:, 420:] = (200, 60, 30)          # one in the bottom-right corner
    photo[150:260, 300:380] = (240, 240, 40)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    image = upload(client, buf.getvalue()).json()
    session = client.app.state.context.sessions.get(image["id"])
    size = display_size(image["width"], image["height"], session.display_max_side)
    bodies = [{"points": [[100, 100]]}, {"points": [[100, 100]], "dilate": 20, "feather": 10},  # its mask stage
              {"points": [[500, 400]], "dilate": 3, "feather": 6}, {"points": [[340, 200]], "feather": 0},
              {"rects": [[0, 0, 600, 480]]}]
    measured = 0
    for body in bodies:
        m = client.post(f"/api/images/{image['id']}/mask", json=body).json()
        again = client.post(f"/api/images/{image['id']}/mask", json=body).json()  # the mask stage only
        obj = fill_holes(session.editor.mask)  # the server's defaults: fill holes, no erode, no min area
        alpha = reference_alpha(obj, body.get("dilate", 8), body.get("feather", 4))
        box = bbox(alpha > 0)
        assert m["mask_pixels"] == int((alpha > 0).sum()) and m["bbox"] == list(box)
        assert base64.b64decode(m["alpha_png"]) == alpha_png(alpha, size, box)
        quality = assess(to_rgb8(session.editor.image), obj, selection_of(MaskRequest.model_validate(body)),
                         m["scores"]).to_dict()
        assert m["quality"] == quality
        measured += "background" in quality["signals"]
        assert {k: v for k, v in again.items() if k not in ("timings", "embedding_was_ready")} == \
            {k: v for k, v in m.items() if k not in ("timings", "embedding_was_ready")}
    assert measured >= 3  # the colour signals, read on the kept working copy
