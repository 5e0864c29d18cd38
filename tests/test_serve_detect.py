"""Words on the web API: ``POST /detect`` proposes boxes from a real (tiny, random-weight) Grounding
DINO loaded through the real loader; ``texts`` in ``/mask`` and ``/edit`` select through the same
Detect step as the CLI; nothing found is an answer (200 with a note, or 422 when it was the whole
selection); a missing detector is a 503 that says how to get it."""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("transformers")
from fastapi.testclient import TestClient  # noqa: E402

from autoinpaint import EditOptions  # noqa: E402
from autoinpaint.server.app import create_app  # noqa: E402
from conftest import gradient_photo  # noqa: E402
from detect_fixtures import oracle_forward, save_grounding_dino  # noqa: E402

STICKER = (150, 40, 200, 80)
ANY = {"box_threshold": 0, "text_threshold": 0}


def photo_png() -> tuple[bytes, np.ndarray]:
    img = gradient_photo(240, 160) // 3   # dark, textured; the sticker is the one bright thing
    img[40:80, 150:200] = (250, 245, 240)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue(), img


@pytest.fixture(scope="module")
def detector_folder(tmp_path_factory) -> Path:
    return save_grounding_dino(tmp_path_factory.mktemp("gdino") / "gdino")


@pytest.fixture(scope="module")
def client(detector_folder):
    options = EditOptions(segmenter="classical", inpainter="telea", detector=str(detector_folder))
    with TestClient(create_app(None, options, preload=False), base_url="http://127.0.0.1") as c:
        yield c


def open_photo(client) -> str:
    data, _ = photo_png()
    return client.post("/api/images", files={"file": ("photo.png", data, "image/png")}).json()["id"]


def test_detect_proposes_the_real_models_boxes_and_selects_nothing(client, detector_folder):
    from autoinpaint.detect import DetectParams, load_detector

    image = open_photo(client)
    assert client.get("/api/info").json()["detector"] == "gdino"
    r = client.post(f"/api/images/{image}/detect", json={"texts": ["sticker", "logo"], **ANY, "max_objects": 4})
    assert r.status_code == 200, r.text
    out = r.json()
    _, img = photo_png()
    expected = load_detector(str(detector_folder)).detect(img, ["sticker", "logo"],
                                                          DetectParams(box_threshold=0, text_threshold=0,
                                                                       max_objects=4))
    assert out["detections"] == [d.to_dict() for d in expected] and 1 <= len(out["detections"]) <= 4
    assert all(0 <= d["box"][0] < d["box"][2] <= 240 and 0 <= d["box"][1] < d["box"][3] <= 160
               for d in out["detections"])
    scores = [d["score"] for d in out["detections"]]
    assert scores == sorted(scores, reverse=True)
    session = client.app.state.context.sessions.get(image)
    assert session.editor.mask is None  # proposals only: nothing was selected



@pytest.fixture
def oracle(client, detector_folder, monkeypatch):
    """The server's own detector (the instance in the server's model store, which its requests use) with
    the network's forward pass replaced by :func:`oracle_forward` (processor, box mapping, thresholds
    stay real): a known answer, the bright sticker."""
    from autoinpaint.detect import load_detector

    detector = load_detector(str(detector_folder), client.app.state.context.store, device=EditOptions().device)
    monkeypatch.setattr(detector.model, "forward", oracle_forward(detector))
    return detector


def test_a_kept_proposal_is_a_box_prompt_and_the_mask_covers_it(client, oracle):
    image = open_photo(client)
    out = client.post(f"/api/images/{image}/detect", json={"texts": ["sticker"], "box_threshold": 0.5}).json()
    (det,) = out["detections"]   # the decoys score below 0.5
    tol = 1.5 * 240 / 64         # one pixel of the model's 64-96 px input
    assert det["phrase"] == "sticker" and np.allclose(det["box"], STICKER, atol=tol), det
    m = client.post(f"/api/images/{image}/mask", json={"boxes": [det["box"]], "dilate": 0, "feather": 0})
    assert m.status_code == 200, m.text
    x0, y0, x1, y1 = m.json()["bbox"]
    assert np.allclose([x0, y0, x1, y1], STICKER, atol=tol + 2), m.json()["bbox"]


def test_nothing_found_is_an_answer(client):
    image = open_photo(client)
    r = client.post(f"/api/images/{image}/detect", json={"texts": ["price sticker"], "box_threshold": 1})
    assert r.status_code == 200
    out = r.json()
    assert out["detections"] == [] and out["missing"] == ["price sticker"]
    assert out["note"].startswith('no "price sticker" found (best score ') and out["note"].endswith("< 1.00)")
    # as the whole selection of a mask or an edit: 422 with the CLI's message, nothing queued
    m = client.post(f"/api/images/{image}/mask", json={"texts": ["price sticker"], "box_threshold": 1})
    assert m.status_code == 422 and m.json()["error"].startswith('no "price sticker" found')


def test_texts_select_through_the_detect_step_on_mask_and_edit(client, oracle):
    image = open_photo(client)
    body = {"texts": ["sticker"], "box_threshold": 0.5, "dilate": 2, "feather": 0}
    m = client.post(f"/api/images/{image}/mask", json=body)
    assert m.status_code == 200, m.text
    m = m.json()
    assert [d["phrase"] for d in m["detections"]] == ["sticker"] and m["mask_pixels"] > 0
    job = client.post(f"/api/images/{image}/edit", json={**body, "action": "remove"}).json()
    for _ in range(600):
        status = client.get(f"/api/jobs/{job['job']}").json()
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert status["status"] == "done", status
    result = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job['job']}/result").content)))
    alpha = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job['job']}/alpha").content)))
    _, img = photo_png()
    keep = alpha == 0
    assert np.array_equal(result[keep], img[keep]) and not np.array_equal(result[~keep], img[~keep])
    x0, y0, x1, y1 = STICKER
    assert result[y0 + 8:y1 - 8, x0 + 8:x1 - 8].mean() < 200   # the bright sticker is gone


@pytest.mark.parametrize("body, status, message", [
    ({"texts": []}, 400, "texts"),
    ({"texts": ["!!!"]}, 400, "has no word in it"),
    ({"texts": ["x" * 201]}, 400, "at most 200"),
    ({"texts": ["a"] * 17}, 400, "texts"),
    ({"texts": ["sticker"], "box_threshold": 2}, 400, "box_threshold"),
    ({"texts": ["sticker"], "pick": "first"}, 400, "pick"),
    ({"texts": ["sticker"], "detector": "/etc"}, 400, "unknown field 'detector'"),
])
def test_bad_detect_requests_are_400(client, body, status, message):
    image = open_photo(client)
    r = client.post(f"/api/images/{image}/detect", json=body)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_a_missing_detector_is_503_with_the_download_command(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("AUTOINPAINT_ALLOW_DOWNLOAD", raising=False)
    options = EditOptions(segmenter="classical", inpainter="telea", detector="autoinpaint-tests/no-such-detector")
    with TestClient(create_app(None, options, preload=False), base_url="http://127.0.0.1") as c:
        image = open_photo(c)
        r = c.post(f"/api/images/{image}/detect", json={"texts": ["sticker"]})
    assert r.status_code == 503 and "hf download autoinpaint-tests/no-such-detector" in r.json()["error"]
