"""The web app's JSON API for ``action: background`` (the same steps as the CLI): a transparent
cut-out of a JPEG comes back as PNG, bad values are a 400 (or 413) before any job is queued, and
a missing diffusion model fails the job with the ``hf download`` line."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import scenes

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from autoinpaint import EditOptions  # noqa: E402
from autoinpaint.server.app import create_app  # noqa: E402
from autoinpaint.server.config import Limits  # noqa: E402
from test_serve_api import upload, wait  # noqa: E402

OPTIONS = EditOptions(segmenter="classical", inpainter="telea", model="autoinpaint-tests/no-such-model")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("served_bg"), OPTIONS,
                     limits=Limits(max_upload_bytes=3_000_000, max_pixels=2_000_000), preload=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def shot():
    return scenes.studio_shot(320, 240, rng=np.random.default_rng(4))


def jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_transparent_cutout_of_a_jpeg_comes_back_as_png(client, shot):
    image = upload(client, jpeg(shot.image), "bottle.jpg").json()
    box = list(shot.box)
    r = client.post(f"/api/images/{image['id']}/edit",
                    json={"boxes": [box], "action": "background", "color": "transparent", "canvas": "square",
                          "margin": 10, "contact_shadow": "soft"})
    assert r.status_code == 202, r.text
    status = wait(client, r.json()["job"])
    assert status["status"] == "done", status
    result = client.get(f"/api/jobs/{status['job']}/result")
    assert result.headers["content-type"] == "image/png"
    assert "bottle.background.png" in result.headers["content-disposition"]
    im = Image.open(io.BytesIO(result.content))
    assert im.mode == "RGBA" and im.width == im.height
    summary = client.get(f"/api/jobs/{status['job']}/summary").json()
    assert summary["action"] == "background" and summary["framing"]["canvas"] == [im.width, im.height]
    assert summary["background"] == "transparent" and summary["contact_shadow"]["kind"] == "soft"


def test_white_background_through_the_api_matches_the_cli(client, shot, cli, tmp_path):
    png = io.BytesIO()
    Image.fromarray(shot.image).save(png, "PNG")
    image = upload(client, png.getvalue(), "bottle.png").json()
    mask = tmp_path / "mask.png"
    Image.fromarray((shot.mask * 255).astype(np.uint8)).save(mask)
    rect = list(shot.box)
    r = client.post(f"/api/images/{image['id']}/edit", json={"rects": [rect], "action": "background", "matte": 4})
    status = wait(client, r.json()["job"])
    assert status["status"] == "done", status
    served = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{status['job']}/result").content)))
    photo = tmp_path / "bottle.png"
    photo.write_bytes(png.getvalue())
    out = tmp_path / "cli.png"
    assert cli("background", photo, "--rect", ",".join(map(str, rect)), "--matte", "4", "-o", out).code == 0
    assert np.array_equal(served, np.asarray(Image.open(out)))


@pytest.mark.parametrize("body, status, words", [
    ({"color": "not-a-colour"}, 400, "--color"),
    ({"canvas": "5000x5000"}, 413, "max-pixels"),
    ({"canvas": "wide"}, 400, "--canvas"),
    ({"margin": 60}, 400, "margin"),
    ({"color": "red", "backdrop_blur": 3}, 400, "choose one background"),
])
def test_bad_values_are_refused_before_queueing(client, shot, body, status, words):
    image = upload(client, jpeg(shot.image)).json()
    queued = len(client.app.state.context.jobs)
    r = client.post(f"/api/images/{image['id']}/edit", json={"rects": [list(shot.box)], "action": "background", **body})
    assert r.status_code == status and words in r.json()["error"], r.text
    assert len(client.app.state.context.jobs) == queued


def test_generated_scene_without_the_model_fails_the_job_with_its_message(client, shot):
    image = upload(client, jpeg(shot.image)).json()
    r = client.post(f"/api/images/{image['id']}/edit",
                    json={"rects": [list(shot.box)], "action": "background", "prompt": "on a marble table"})
    status = wait(client, r.json()["job"])
    assert status["status"] == "failed" and "hf download autoinpaint-tests/no-such-model" in status["error"]
