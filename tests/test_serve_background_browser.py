"""The page's Background section in a real browser (Playwright driving Debian's Chromium) against a
real uvicorn server: click the object, pick white (or transparent on a square canvas), Replace
background, download, and check the downloaded image's pixels: where the matte's alpha is 0 exactly
the colour, the object's core exactly the photo."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import scenes
from test_serve_browser import ARGS, CHROMIUM, app_server, click_at, pytestmark  # noqa: F401 - same skip rule

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
TOKEN = "background-browser-token-8d2e"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from autoinpaint import EditOptions
    from autoinpaint.server.app import create_app

    folder = tmp_path_factory.mktemp("bg_browser") / "photos"
    folder.mkdir()
    shot = scenes.studio_shot(400, 300, rng=np.random.default_rng(9))
    Image.fromarray(shot.image).save(folder / "product.png")
    app = create_app(folder, EditOptions(segmenter="classical", inpainter="telea"), token=TOKEN)
    with app_server(app) as url:
        yield url, folder, shot


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1180, "height": 900}, accept_downloads=True)
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        errors = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        assert not errors, errors
        browser.close()


def open_and_click(page, url, shot):
    page.goto(f"{url}/?token={TOKEN}")
    page.get_by_test_id("file-list").get_by_text("product.png").click()
    page.wait_for_function("document.getElementById('canvas').width > 0")
    h, w = shot.image.shape[:2]
    click_at(page, *shot.point, w, h)
    page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
    assert page.get_by_test_id("background").is_enabled()


def download(page):
    page.get_by_test_id("background").click()
    page.get_by_test_id("download").wait_for(state="visible", timeout=60_000)
    with page.expect_download() as dl:
        page.get_by_test_id("download").click()
    job = page.get_by_test_id("download").get_attribute("href").split("/")[3]
    return dl.value, job


def test_white_background_download(server, page):
    url, folder, shot = server
    open_and_click(page, url, shot)
    assert page.get_by_test_id("bg-kind").input_value() == "white"
    value, job = download(page)
    assert value.suggested_filename == "product.background.png"
    result = np.asarray(Image.open(value.path()))
    assert result.shape == shot.image.shape
    alpha = np.asarray(Image.open(io.BytesIO(page.request.get(f"{url}/api/jobs/{job}/alpha").body())))
    # the classical segmenter found the product: the matte agrees with the true alpha
    inter, union = ((alpha > 127) & (shot.alpha > 0.5)).sum(), ((alpha > 127) | (shot.alpha > 0.5)).sum()
    assert inter / union > 0.9
    assert (result[alpha == 0] == 255).all()                       # exactly white where alpha is 0
    import cv2

    core = cv2.erode((alpha == 255).astype(np.uint8), np.ones((19, 19), np.uint8)).astype(bool)
    assert core.sum() > 0.5 * (shot.alpha == 1).sum()
    assert np.array_equal(result[core], shot.image[core])          # the object's core is the photo's
    assert (result[shot.alpha == 0] == 255).mean() > 0.99


def test_transparent_square_canvas_and_framing_preview(server, page):
    url, folder, shot = server
    open_and_click(page, url, shot)
    page.get_by_test_id("bg-kind").select_option("transparent")
    page.get_by_test_id("bg-canvas").select_option("square")
    page.get_by_test_id("bg-margin").fill("10")
    # the preview draws the object's box in the square, inside the margins
    drawn = page.get_by_test_id("frame-preview").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] < 80 && d[i + 3] > 100) n++;"
        " return n; }")
    assert drawn > 500
    value, job = download(page)
    im = Image.open(value.path())
    assert im.mode == "RGBA" and im.width == im.height
    result = np.asarray(im)
    ys, xs = np.nonzero(result[..., 3] > 0)
    box_w, box_h = xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()
    assert abs(max(box_w, box_h) - 0.8 * im.width) <= 1              # fills the square less 2 × 10 %
    assert (result[:3, :, 3] == 0).all() and (result[:, :3, 3] == 0).all()
