"""The web app's Shadow checkbox in a real browser (Playwright driving Debian's Chromium) against a real
uvicorn server: ticking it sends ``shadow: true``, the overlay draws the cast shadow in its own colour
(amber) apart from the object (blue), and Remove relights it; unticking takes it back out. Its two sliders
correct the shadow found by hand (``shadow_grow``, ``shadow_strength``)."""
from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")

import scenes as S  # noqa: E402
from autoinpaint.mask.refine import distance_outside  # noqa: E402
from test_serve_browser import ARGS, CHROMIUM, app_server, TOKEN, click_at, mask_pixels  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium; CI installs it)")
NAME = "pavement.png"


@pytest.fixture(scope="module")
def scene():
    return S.shadow_scene(480, 360, np.random.default_rng(1), "noise", angle=0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory, scene):
    from autoinpaint import EditOptions
    from autoinpaint.server.app import create_app

    folder = tmp_path_factory.mktemp("shadow-browser")
    Image.fromarray(scene.image).save(folder / NAME)
    app = create_app(folder, EditOptions(segmenter="classical", inpainter="telea"), token=TOKEN)
    with app_server(app) as url:
        yield url


@contextmanager
def opened(server: str):
    """A Chromium page on the web app with the scene's photo open: ``(page, errors)``, the page's uncaught
    errors collected (none is expected); the browser closed after."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1180, "height": 760}).new_page()
        page.set_default_timeout(120_000)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server}/?token={TOKEN}")
        page.get_by_test_id("file-list").get_by_text(NAME).click()
        page.wait_for_function("document.getElementById('canvas').width > 0")
        try:
            yield page, errors
        finally:
            browser.close()


def overlay_rgba(page, x: int, y: int) -> list[int]:
    """The overlay's pixel (display coordinates; the photo is shown 1:1 here)."""
    return page.evaluate(f"() => Array.from(window.autoinpaint.state.overlay.getContext('2d')"
                         f".getImageData({x}, {y}, 1, 1).data)")


def test_shadow_checkbox_overlay_and_remove(server, scene):
    h, w = scene.mask.shape
    beyond = (scene.shadow >= 0.9) & (distance_outside(scene.mask) > 16)   # shadow past the object's alpha
    ys, xs = np.nonzero(beyond)
    sx, sy = int(np.median(xs)), int(np.median(ys))
    ox, oy = scene.point
    with opened(server) as (page, errors):
        assert page.get_by_test_id("canvas").evaluate("c => [c.width, c.height]") == [w, h]
        with page.expect_request(lambda r: r.url.endswith("/mask")) as first:
            click_at(page, ox, oy, w, h)
        assert "shadow" not in first.value.post_data_json
        page.wait_for_function("Number(document.querySelector('[data-testid=mask-pixels]').textContent) > 0")
        plain = mask_pixels(page)
        assert overlay_rgba(page, sx, sy)[3] == 0                    # the shadow is not in the mask yet

        with page.expect_request(lambda r: r.url.endswith("/mask")) as ticked:
            page.get_by_test_id("shadow").check()
        assert ticked.value.post_data_json["shadow"] is True
        page.wait_for_function(f"Number(document.querySelector('[data-testid=mask-pixels]').textContent) > {plain}")
        assert "shadow" in page.get_by_test_id("shadow-info").text_content()
        amber, blue = overlay_rgba(page, sx, sy), overlay_rgba(page, ox, oy)
        # (a canvas keeps premultiplied alpha: colours read back within a few levels)
        assert np.abs(np.subtract(amber[:3], [255, 150, 0])).max() <= 3 and amber[3] > 100, amber  # the shadow
        assert np.abs(np.subtract(blue[:3], [20, 110, 255])).max() <= 3 and blue[3] > 100, blue     # the object

        with page.expect_request(lambda r: r.url.endswith("/edit")) as edit:
            page.get_by_test_id("remove").click()
        assert edit.value.post_data_json["shadow"] is True
        page.get_by_test_id("download").wait_for(state="visible", timeout=60_000)
        job = page.get_by_test_id("download").get_attribute("href").split("/")[3]
        result = np.asarray(Image.open(io.BytesIO(page.request.get(f"{server}/api/jobs/{job}/result").body())))
        clean = scene.background.astype(np.float32)
        assert np.abs(result.astype(np.float32) - clean)[beyond].mean() <= 6
        far = distance_outside(scene.mask | (scene.shadow >= 0.02)) > 40
        assert np.array_equal(result[far], scene.image[far])

        with page.expect_request(lambda r: r.url.endswith("/mask")) as unticked:
            page.get_by_test_id("shadow").uncheck()
        assert "shadow" not in unticked.value.post_data_json
        page.wait_for_function(f"Number(document.querySelector('[data-testid=mask-pixels]').textContent) === {plain}")
        assert page.get_by_test_id("shadow-info").text_content() == ""
    assert not errors, errors


def test_shadow_corrections_in_the_page(server, scene):
    """The shadow's two sliders show only while Shadow is ticked; moving them sends ``shadow_grow`` and
    ``shadow_strength`` (only when moved off their defaults): the grown shadow adds pixels, the stronger
    one's darkening reads higher; Remove sends them too; unticked, nothing of them is sent; a photo opened
    starts from its shadow as found."""
    h, w = scene.mask.shape
    ox, oy = scene.point
    with opened(server) as (page, errors):
        assert not page.get_by_test_id("shadow-adjust").is_visible()
        with page.expect_response(lambda r: r.url.endswith("/mask")):
            click_at(page, ox, oy, w, h)
        with page.expect_response(lambda r: r.url.endswith("/mask")) as ticked:
            page.get_by_test_id("shadow").check()
        assert page.get_by_test_id("shadow-adjust").is_visible()
        body = ticked.value.request.post_data_json
        assert body["shadow"] is True and "shadow_grow" not in body and "shadow_strength" not in body
        found = ticked.value.json()

        with page.expect_response(lambda r: r.url.endswith("/mask")) as grown:
            page.get_by_test_id("shadow-grow").fill("3")
        assert grown.value.request.post_data_json["shadow_grow"] == 3
        assert grown.value.json()["shadow_pixels"] > found["shadow_pixels"]
        assert page.locator("#shadow-grow-value").text_content() == "+3"
        with page.expect_response(lambda r: r.url.endswith("/mask")) as stronger:
            page.get_by_test_id("shadow-strength").fill("110")
        body = stronger.value.request.post_data_json
        assert body["shadow_strength"] == pytest.approx(1.1) and body["shadow_grow"] == 3
        darker = round(100 * stronger.value.json()["shadow_darkening"])
        page.wait_for_function(f"document.querySelector('[data-testid=shadow-info]').textContent"
                               f".includes('{darker}% darker')")
        assert darker > round(100 * grown.value.json()["shadow_darkening"])

        with page.expect_request(lambda r: r.url.endswith("/edit")) as edit:
            page.get_by_test_id("remove").click()
        body = edit.value.post_data_json
        assert (body["shadow"], body["shadow_grow"], body["shadow_strength"]) == (True, 3, pytest.approx(1.1))
        page.get_by_test_id("download").wait_for(state="visible", timeout=60_000)

        with page.expect_request(lambda r: r.url.endswith("/mask")) as unticked:
            page.get_by_test_id("shadow").uncheck()
        assert not {"shadow", "shadow_grow", "shadow_strength"} & set(unticked.value.post_data_json)
        assert not page.get_by_test_id("shadow-adjust").is_visible()

        # a photo opened (again): its shadow as found, not corrected as the last one's was
        page.get_by_test_id("file-list").get_by_text(NAME).click()
        page.wait_for_function("document.querySelector('[data-testid=mask-pixels]').textContent === '0'")
        page.get_by_test_id("shadow").check()
        with page.expect_request(lambda r: r.url.endswith("/mask")) as reopened:
            click_at(page, ox, oy, w, h)
        body = reopened.value.post_data_json
        assert body["shadow"] is True and not {"shadow_grow", "shadow_strength"} & set(body), body
        assert page.locator("#shadow-grow-value").text_content() == "0"
        assert page.locator("#shadow-strength-value").text_content() == "100"
    assert not errors, errors
