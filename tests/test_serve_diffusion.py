"""Long work through the web app: a diffusion replace (a tiny random-weight SD-1.5 inpainting
pipeline saved with ``save_pretrained``) reports its steps, can be cancelled mid-run, and a finished
one changes only the masked pixels."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("diffusers")
from fastapi.testclient import TestClient  # noqa: E402

from autoinpaint import EditOptions  # noqa: E402
from autoinpaint.server.app import create_app  # noqa: E402
from conftest import gradient_photo  # noqa: E402
from diffusion_fixtures import build_sd  # noqa: E402

RECT = [60, 40, 120, 90]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models are latency-bound
    folder = tmp_path_factory.mktemp("sd9")
    build_sd(9).save_pretrained(folder)
    options = EditOptions(segmenter="classical", inpainter="telea", model=str(folder), dtype="fp32")
    with TestClient(create_app(None, options, preload=False), base_url="http://127.0.0.1") as c:
        yield c
    torch.set_num_threads(before)


def test_replace_reports_steps_cancels_and_finishes(client):
    buf = io.BytesIO()
    original = gradient_photo(200, 150)
    Image.fromarray(original).save(buf, "PNG")
    image = client.post("/api/images", files={"file": ("p.png", buf.getvalue())}).json()
    url = f"/api/images/{image['id']}/edit"
    body = {"rects": [RECT], "action": "replace", "prompt": "a red rose", "seed": 3}

    job = client.post(url, json={**body, "steps": 400}).json()["job"]
    for _ in range(600):
        status = client.get(f"/api/jobs/{job}").json()
        if status.get("step", 0) >= 2:
            break
        time.sleep(0.05)
    # the model's own count (PNDM runs one step more than asked)
    assert status["status"] == "running" and status["steps"] in (400, 401) and 0.1 < status["progress"] < 0.9
    t0 = time.monotonic()
    assert client.delete(f"/api/jobs/{job}").status_code == 200
    while client.get(f"/api/jobs/{job}").json()["status"] == "running":
        time.sleep(0.05)
    final = client.get(f"/api/jobs/{job}").json()
    assert final["status"] == "cancelled" and final["step"] < 300 and time.monotonic() - t0 < 10
    assert client.get(f"/api/jobs/{job}/result").status_code == 409

    job = client.post(url, json={**body, "steps": 2}).json()["job"]
    while client.get(f"/api/jobs/{job}").json()["status"] in ("queued", "running"):
        time.sleep(0.05)
    assert client.get(f"/api/jobs/{job}").json()["status"] == "done"
    out = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job}/result").content)))
    alpha = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job}/alpha").content)))
    keep = alpha == 0
    assert np.array_equal(out[keep], original[keep]) and not np.array_equal(out[~keep], original[~keep])
    summary = client.get(f"/api/jobs/{job}/summary").json()
    assert summary["seed"] == 3 and summary["action"] == "replace"
