"""The few-step replace in the web app: the ``fast`` and ``lora`` fields of an edit (a tiny random-weight
SD-1.5 inpainting pipeline and a tiny LCM-LoRA placed in a Hugging Face cache), the Fast toggle of the page,
and LoRA paths refused from clients."""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
from fastapi.testclient import TestClient  # noqa: E402

from autoinpaint import EditOptions  # noqa: E402
from autoinpaint.inpaint.lora import FAST_LORAS  # noqa: E402
from autoinpaint.server.app import create_app  # noqa: E402
from conftest import gradient_photo  # noqa: E402
from diffusion_fixtures import build_sd, save_tiny_lora  # noqa: E402
from hf_sam_fixtures import install_in_hub_cache  # noqa: E402

RECT = [60, 40, 120, 90]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import huggingface_hub.constants as hf_constants
    import torch

    before, cache_before = torch.get_num_threads(), hf_constants.HF_HUB_CACHE
    torch.set_num_threads(1)  # tiny models are latency-bound
    root = tmp_path_factory.mktemp("fast")
    build_sd(9).save_pretrained(root / "sd9")
    lcm = save_tiny_lora(root / "lcm", str(root / "sd9"), seed=3)
    hf_constants.HF_HUB_CACHE = str(root / "hub")
    options = EditOptions(segmenter="classical", inpainter="telea", model=str(root / "sd9"), dtype="fp32")
    with TestClient(create_app(None, options, preload=False), base_url="http://127.0.0.1") as c:
        yield c, root, lcm
    hf_constants.HF_HUB_CACHE = cache_before
    torch.set_num_threads(before)


def upload(client, original: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(original).save(buf, "PNG")
    return client.post("/api/images", files={"file": ("p.png", buf.getvalue())}).json()["id"]


def finish(client, job: str) -> dict:
    for _ in range(1200):
        status = client.get(f"/api/jobs/{job}").json()
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_fast_field_runs_the_lcm_lora_or_says_how_to_get_it(setup):
    client, root, lcm = setup
    original = gradient_photo(200, 150)
    url = f"/api/images/{upload(client, original)}/edit"
    body = {"rects": [RECT], "action": "replace", "prompt": "a red rose", "seed": 3, "fast": True}
    assert client.get("/api/info").json()["defaults"]["fast"] is False

    # not in the server's Hugging Face cache yet: the job fails with the command that fetches it
    failed = finish(client, client.post(url, json=body).json()["job"])
    assert failed["status"] == "failed" and f"hf download {FAST_LORAS['sd15']}" in failed["error"]

    install_in_hub_cache(Path(lcm), root / "hub", FAST_LORAS["sd15"])
    runs = []
    for _ in range(2):
        job = client.post(url, json=body).json()["job"]
        assert finish(client, job)["status"] == "done"
        runs.append(client.get(f"/api/jobs/{job}/result").content)
    summary = client.get(f"/api/jobs/{job}/summary").json()
    assert summary["fast"] is True and summary["steps"] == 4 and summary["guidance"] == 1.0
    assert summary["lora"] == [FAST_LORAS["sd15"]] and summary["scheduler"] == "lcm"
    out = np.asarray(Image.open(io.BytesIO(runs[0])))
    alpha = np.asarray(Image.open(io.BytesIO(client.get(f"/api/jobs/{job}/alpha").content)))
    keep = alpha == 0
    assert np.array_equal(out[keep], original[keep]) and not np.array_equal(out[~keep], original[~keep])
    assert runs[0] == runs[1]  # same seed, same bytes

    # without the toggle: the default 30-step model, another result
    plain = client.post(url, json={**body, "fast": False, "steps": 2}).json()["job"]
    assert finish(client, plain)["status"] == "done"
    assert client.get(f"/api/jobs/{plain}/summary").json().get("fast") is None


@pytest.mark.parametrize("lora", [["/etc/passwd"], ["../weights.safetensors:0.5"], ["~/x.safetensors"]])
def test_lora_paths_from_clients_are_refused(setup, lora):
    client, _, _ = setup
    url = f"/api/images/{upload(client, gradient_photo(64, 48))}/edit"
    r = client.post(url, json={"rects": [[5, 5, 30, 30]], "action": "replace", "prompt": "x", "lora": lora})
    assert r.status_code == 400 and "never a path" in r.json()["error"], r.json()


@pytest.mark.parametrize("bad", [{"fast": "maybe"}, {"lora": "not-a-list"}, {"lora": ["a/b"] * 9}])
def test_bad_fast_and_lora_fields_are_4xx(setup, bad):
    client, _, _ = setup
    url = f"/api/images/{upload(client, gradient_photo(64, 48))}/edit"
    r = client.post(url, json={"rects": [[5, 5, 30, 30]], "action": "replace", "prompt": "x", **bad})
    assert 400 <= r.status_code < 500


def test_page_has_the_fast_toggle_and_sends_it(setup):
    client, _, _ = setup
    page = client.get("/").text
    assert '<input type="checkbox" id="fast" data-testid="fast">' in page
    script = client.get("/static/app.js")
    assert script.status_code == 200 and 'body.fast = $("fast").checked;' in script.text
