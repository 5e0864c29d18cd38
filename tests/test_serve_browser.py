"""The page in a real browser (Playwright driving Debian's Chromium) against a real uvicorn server:
open a sample, click the object, watch the mask, undo, change the dilation, Remove, download, and
every pixel whose alpha is 0 equals the input's; Save writes beside the input; Shadow ticked paints the
object's cast shadow amber beside its blue.

``AUTOINPAINT_SCREENSHOT=docs/serve.png`` also saves the README's screenshot there."""
from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("AUTOINPAINT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TOKEN = "browser-test-token-5f1c2d"
SAMPLE = "catalogue_tag.png"   # PNG: the download decodes to exact pixels
POINT = (389, 584)             # the price sticker (samples/README.md)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium; CI installs it)")



@contextlib.contextmanager
def app_server(app):
    """The web app on uvicorn in a thread of this process, on a free 127.0.0.1 port; yields its URL."""
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as autoinpaint serve does
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()

@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """A tiny random-weight Grounding DINO loaded through the real loader, its network's forward pass
    replaced by ``oracle_forward`` (finds the bright sticker; processor and box mapping stay real)."""
    pytest.importorskip("transformers")
    from detect_fixtures import oracle_forward, save_grounding_dino

    from autoinpaint import EditOptions
    from autoinpaint.detect import load_detector

    folder = save_grounding_dino(tmp_path_factory.mktemp("gdino") / "gdino")
    loaded = load_detector(str(folder), device=EditOptions().device)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loaded.model, "forward", oracle_forward(loaded))
        yield folder


STICKER = (300, 120, 380, 180)  # the bright sticker of tagged.png


@pytest.fixture(scope="module")
def server(tmp_path_factory, detector):
    from autoinpaint import EditOptions
    from autoinpaint.server.app import create_app
    from conftest import gradient_photo

    folder = tmp_path_factory.mktemp("browser") / "samples"
    folder.mkdir()
    shutil.copy(ROOT / "samples" / SAMPLE, folder / SAMPLE)
    shutil.copy(ROOT / "samples" / "rocket.jpg", folder / "rocket.jpg")
    shutil.copy(ROOT / "samples" / "pavement_shadow.jpg", folder / "pavement_shadow.jpg")
    tagged = gradient_photo(480, 320) // 3
    x0, y0, x1, y1 = STICKER
    tagged[y0:y1, x0:x1] = (250, 245, 240)
    Image.fromarray(tagged).save(folder / "tagged.png")
    # a diffusion model that is in no cache: Fill fails fast and says how to get it (the README's
    # screenshot shows the default model's name instead)
    model = None if os.environ.get("AUTOINPAINT_SCREENSHOT") else "autoinpaint-tests/no-such-model"
    options = EditOptions(segmenter="classical", inpainter="telea", model=model, detector=str(detector),
                          box_threshold=0.5)
    from autoinpaint.models.store import default_store

    app = create_app(folder, options, token=TOKEN, store=default_store())  # where the oracle detector is
    with app_server(app) as url:
        yield url, folder


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1180, "height": 760}, accept_downloads=True)
        pg = context.new_page()
        pg.set_default_timeout(120_000)  # a busy shared CI machine can be slow; a hang still fails
        errors = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        assert not errors, errors
        browser.close()


def mask_pixels(page) -> int:
    return int(page.get_by_test_id("mask-pixels").text_content())


def on_screen(page, x: float, y: float, width: int, height: int) -> tuple[float, float]:
    """The screen point of photo pixel (x, y) (a ``width``×``height`` photo) on the page's canvas."""
    box = page.get_by_test_id("canvas").bounding_box()
    return box["x"] + box["width"] * x / width, box["y"] + box["height"] * y / height


def click_at(page, x: float, y: float, width: int, height: int, **kw) -> None:
    page.mouse.click(*on_screen(page, x + 0.5, y + 0.5, width, height), **kw)


def test_click_mask_remove_download(server, page, tmp_path):
    url, folder = server
    page.goto(f"{url}/?token={TOKEN}")          # once: the page keeps it as a cookie
    assert "token" not in page.url
    page.get_by_test_id("file-list").get_by_text(SAMPLE).click()
    page.wait_for_function("document.getElementById('canvas').width > 0")
    assert "classical" in page.get_by_test_id("models").text_content()
    assert "autoinpaint models download vit_b" in page.get_by_test_id("fallback-hint").text_content()
    original = np.asarray(Image.open(folder / SAMPLE))
    h, w = original.shape[:2]

    click_at(page, *POINT, w, h)
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
    first = mask_pixels(page)
    assert 2_000 < first < 0.1 * w * h
    click_at(page, 100, 100, w, h, button="right")  # a negative click far away, then undo it
    page.wait_for_function("document.querySelector('[data-testid=mask-info]').textContent !== ''")
    page.get_by_test_id("undo").click()
    page.wait_for_function(f"Number(document.querySelector('[data-testid=mask-pixels]').textContent) === {first}")
    page.get_by_test_id("dilate").fill("20")
    page.wait_for_function(f"Number(document.querySelector('[data-testid=mask-pixels]').textContent) > {first}")
    shot = os.environ.get("AUTOINPAINT_SCREENSHOT") or str(tmp_path / "serve.png")
    page.screenshot(path=shot, type="png")
    _shrink(shot)

    page.get_by_test_id("remove").click()
    page.get_by_test_id("download").wait_for(state="visible", timeout=60_000)
    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    assert download.value.suggested_filename == "catalogue_tag.inpainted.png"
    result = np.asarray(Image.open(download.value.path()))
    job = page.get_by_test_id("download").get_attribute("href").split("/")[3]
    alpha = np.asarray(Image.open(io.BytesIO(page.request.get(f"{url}/api/jobs/{job}/alpha").body())))
    keep = alpha == 0
    assert result.shape == original.shape and keep.sum() > 0.9 * keep.size
    assert np.array_equal(result[keep], original[keep])
    assert not np.array_equal(result[~keep], original[~keep])

    page.get_by_test_id("before-after").click()   # back to the photo with its mask, and forth
    page.get_by_test_id("before-after").click()
    page.get_by_test_id("save").click()
    page.wait_for_function("document.querySelector('[data-testid=saved]').textContent.startsWith('Saved')")
    assert (folder / "catalogue_tag.inpainted.png").is_file()


def test_upload_through_the_file_picker(server, page):
    page.goto(f"{server[0]}/?token={TOKEN}")   # each test loads the page: xdist may run it on its own worker
    page.get_by_test_id("file-input").set_input_files(str(ROOT / "samples" / "rocket.jpg"))
    page.wait_for_function("document.querySelector('[data-testid=photo-info]').textContent.startsWith('rocket.jpg')")
    assert "640×427 JPEG" in page.get_by_test_id("photo-info").text_content()
    canvas = page.get_by_test_id("canvas")
    assert canvas.evaluate("c => [c.width, c.height]") == [640, 427]
    box = canvas.bounding_box()   # drag = a box around the rocket
    page.mouse.move(box["x"] + box["width"] * 296 / 640, box["y"] + box["height"] * 100 / 427)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 320 / 640, box["y"] + box["height"] * 250 / 427, steps=4)
    page.mouse.move(box["x"] + box["width"] * 344 / 640, box["y"] + box["height"] * 412 / 427, steps=4)
    page.mouse.up()
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
    assert page.get_by_test_id("remove").is_enabled()
    # a drawn region for Fill: taken as it is; with no diffusion model here the job fails and says why
    page.get_by_test_id("clear").click()
    page.get_by_test_id("drag-mode").select_option("rect")
    page.get_by_test_id("dilate").fill("0")
    page.get_by_test_id("feather").fill("0")
    page.mouse.move(box["x"] + box["width"] * 40 / 640, box["y"] + box["height"] * 300 / 427)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 140 / 640, box["y"] + box["height"] * 400 / 427, steps=5)
    page.mouse.up()
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
    pixels = mask_pixels(page)
    assert 0.8 * 100 * 100 < pixels < 1.2 * 100 * 100  # the 100×100 px region itself
    page.get_by_test_id("prompt").fill("a potted plant")
    page.get_by_test_id("fill").click()
    page.wait_for_function("!document.querySelector('[data-testid=error]').hidden")
    assert "hf download" in page.get_by_test_id("error").text_content()


def test_find_by_words_proposes_boxes_to_keep_or_drop(server, page):
    url, folder = server
    page.goto(f"{url}/?token={TOKEN}")
    page.get_by_test_id("file-list").get_by_text("tagged.png").click()
    page.wait_for_function("document.querySelector('[data-testid=photo-info]').textContent.startsWith('tagged.png')")
    with page.expect_request(lambda r: r.url.endswith("/detect")) as detect_request:
        page.get_by_test_id("find-text").fill("sticker, logo")
        page.get_by_test_id("find-text").press("Enter")
    assert detect_request.value.post_data_json == {"texts": ["sticker", "logo"]}
    proposals = page.get_by_test_id("proposal")
    proposals.first.wait_for()
    assert proposals.count() == 1 and proposals.first.text_content().startswith("1. sticker")
    assert page.get_by_test_id("find-note").text_content().startswith('no "logo" found (best score 0.00')
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
    x0, y0, x1, y1 = STICKER
    assert 0.5 * (x1 - x0) * (y1 - y0) < mask_pixels(page) < 2 * (x1 - x0) * (y1 - y0)

    # dropped: no longer sent, nothing selected; kept again: sent as a box prompt
    page.get_by_test_id("proposal").first.locator("input").uncheck()
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) === 0")
    assert page.get_by_test_id("remove").is_disabled()
    with page.expect_request(lambda r: r.url.endswith("/mask")) as mask_request:
        page.get_by_test_id("proposal").first.locator("input").check()
    (box,) = mask_request.value.post_data_json["boxes"]
    assert np.allclose(box, STICKER, atol=1.5 * 480 / 64), box
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
    page.get_by_test_id("clear").click()
    assert page.get_by_test_id("proposal").count() == 0


def test_fast_toggle_goes_with_replace(server, page):
    """The Fast checkbox is sent as ``fast`` with Replace (the server's model is in no cache here, so the
    job then fails and says how to get it)."""
    url, _ = server
    page.goto(f"{url}/?token={TOKEN}")
    page.get_by_test_id("file-list").get_by_text("tagged.png").click()
    page.wait_for_function("document.querySelector('[data-testid=photo-info]').textContent.startsWith('tagged.png')")
    assert not page.get_by_test_id("fast").is_checked()  # the server's default (no --fast)
    x0, y0, x1, y1 = STICKER
    click_at(page, (x0 + x1) / 2, (y0 + y1) / 2, 480, 320)
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
    page.get_by_test_id("prompt").fill("a red rose")
    for checked in (True, False):
        page.get_by_test_id("fast").set_checked(checked)
        with page.expect_request(lambda r: r.url.endswith("/edit") and r.method == "POST") as edit:
            page.get_by_test_id("replace").click()
        body = edit.value.post_data_json
        assert body["action"] == "replace" and body["fast"] is checked and body["prompt"] == "a red rose"
        page.wait_for_function("!document.querySelector('[data-testid=error]').hidden")
        assert "hf download" in page.get_by_test_id("error").text_content()


def test_shadow_checkbox_shows_the_shadow_in_amber(server, page):
    """Shadow ticked: the mask request asks for it, and the page paints the cast shadow amber beside the
    object's blue (on the canvas, pixel by pixel, against the photo); unticked, the shadow's pixels show
    the photo untouched."""
    url, folder = server
    page.goto(f"{url}/?token={TOKEN}")
    page.get_by_test_id("file-list").get_by_text("pavement_shadow.jpg").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=photo-info]').textContent.startsWith('pavement_shadow.jpg')")
    canvas = page.get_by_test_id("canvas")
    w, h = canvas.evaluate("c => [c.width, c.height]")
    page.get_by_test_id("shadow").check()
    with page.expect_response(lambda r: r.url.endswith("/mask") and r.status == 200) as answer:
        page.mouse.move(*on_screen(page, 222, 200, w, h))
        page.mouse.down()
        page.mouse.move(*on_screen(page, 290, 260, w, h), steps=4)
        page.mouse.move(*on_screen(page, 352, 324, w, h), steps=4)
        page.mouse.up()
    assert answer.value.request.post_data_json["shadow"] is True
    reply = answer.value.json()
    page.wait_for_function("document.querySelector('[data-testid=shadow-info]').textContent.includes('shadow')")
    assert f"shadow {reply['shadow_pixels']} px" in page.get_by_test_id("shadow-info").text_content()
    alpha = np.asarray(Image.open(io.BytesIO(base64.b64decode(reply["alpha_png"]))))
    shadow = np.asarray(Image.open(io.BytesIO(base64.b64decode(reply["shadow_png"]))))
    assert reply["shadow_pixels"] > 1000 and shadow.shape == alpha.shape == (h, w)

    def shown() -> np.ndarray:
        return np.array(canvas.evaluate("c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                                        ".data)"), np.uint8).reshape(h, w, 4)[..., :3].astype(np.float32)

    photo = np.asarray(Image.open(folder / "pavement_shadow.jpg").convert("RGB")).astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    inside_box = (xs > 216) & (xs < 358) & (ys > 194) & (ys < 330)   # the box drawn on the canvas too
    amber = (shadow >= 200) & (alpha >= 200) & ~inside_box
    blue = (alpha >= 250) & (shadow == 0) & inside_box & (xs > 230) & (xs < 344) & (ys > 208) & (ys < 316)
    assert amber.sum() > 300 and blue.sum() > 300
    tinted = shown()
    share = (alpha * 0.5).astype(np.float32)[..., None] / 255          # the page's wash: alpha / 2 over the photo
    off = {name: np.abs(tinted - (photo * (1 - share) + np.float32(colour) * share)).mean(axis=2)
           for name, colour in (("amber", (255, 150, 0)), ("blue", (20, 110, 255)))}
    assert off["amber"][amber].mean() < 6 < 30 < off["blue"][amber].mean(), off["amber"][amber].mean()
    assert off["blue"][blue].mean() < 6 < 30 < off["amber"][blue].mean(), off["blue"][blue].mean()

    with page.expect_response(lambda r: r.url.endswith("/mask") and r.status == 200) as answer:
        page.get_by_test_id("shadow").uncheck()
    assert "shadow" not in answer.value.request.post_data_json
    page.wait_for_function("document.querySelector('[data-testid=shadow-info]').textContent === ''")
    plain = shown()
    assert np.abs(plain - photo)[amber].mean() < 3          # the shadow's pixels: the photo, no tint


def _shrink(path: str) -> None:
    """Keep the screenshot small for the README (< 300 KB): a palette PNG."""
    im = Image.open(path).convert("RGB")
    im.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
