"""Diffusion inpainting stage: tiny random-weight pipelines saved with ``save_pretrained`` and loaded
through the same code path as real checkpoints (SD-1.5-style 9-channel, 4-channel, SDXL-style). Offline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the network

from autoinpaint.composite import Composite  # noqa: E402
from conftest import gradient_photo as photo  # noqa: E402
from autoinpaint.errors import InputError, ModelMissingError, ModelRuntimeError  # noqa: E402
from autoinpaint.inpaint import Inpaint, InpaintRequest  # noqa: E402
from autoinpaint.mask.refine import make_alpha  # noqa: E402
from autoinpaint.state import EditState  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffusion_fixtures import save_tiny_models  # noqa: E402

pytest.importorskip("diffusers")
ROOT = Path(__file__).resolve().parents[1]
STEPS = 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, str]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return save_tiny_models(tmp_path_factory.mktemp("tiny_diffusion"))
    finally:
        torch.set_num_threads(before)


def rect_mask(w: int, h: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def request(**kw) -> InpaintRequest:
    """Call-time values: a replace with a fixed seed and few steps unless said otherwise."""
    return InpaintRequest(**{"mode": "replace", "prompt": "a red rose", "steps": STEPS, "seed": 0, **kw})


def edit(image: np.ndarray, mask: np.ndarray, inpainter, padding: int | None = 16, feather: int = 3,
         **req) -> EditState:
    state = EditState(image=image, mask=mask, alpha=make_alpha(mask, dilate=feather, feather=feather))
    for step in (Inpaint(inpainter, padding, request(**req)), Composite()):
        state = step(state)
    return state


def load(path: str, **kw):
    """Load-time values only (the model, dtype, scheduler, ...)."""
    from autoinpaint.inpaint.diffusion import load_diffusion_inpainter

    kw.setdefault("dtype", "fp32")  # auto is bf16 where bf16 measures faster
    return load_diffusion_inpainter(path, **kw)


def assert_untouched_outside(state: EditState) -> None:
    keep = state.alpha == 0
    assert state.result.shape == state.image.shape and state.result.dtype == state.image.dtype
    assert np.array_equal(state.result[keep], state.image[keep])


# --------------------------------------------------------------------------- real (tiny) pipelines
@pytest.mark.parametrize("kind", ["sd9", "sd4", "sdxl"])
def test_odd_size_exact_outside_mask(tiny, kind):
    image = photo(623, 401)
    mask = rect_mask(623, 401, 300, 150, 360, 210)
    inp = load(tiny[kind])
    state = edit(image, mask, inp)
    assert_untouched_outside(state)
    inside = state.alpha == 1
    assert not np.array_equal(state.result[inside], image[inside])  # the model did paint the hole
    expected = {"sd9": "StableDiffusionInpaintPipeline", "sd4": "StableDiffusionInpaintPipeline",
                "sdxl": "StableDiffusionXLInpaintPipeline"}[kind]
    assert type(inp.pipe).__name__ == expected
    if kind == "sd4":
        assert inp.pipe.unet.config.in_channels == 4
    assert state.metadata["steps"] == STEPS and state.metadata["seed"] == 0
    assert state.metadata["device"] == "cpu" and state.metadata["dtype"] == "float32"


def test_large_photo_small_mask_and_16bit_rgba(tiny):
    image = photo(4000, 3000)
    mask = rect_mask(4000, 3000, 2000, 1500, 2040, 1530)
    inp = load(tiny["sd9"])
    state = edit(image, mask, inp)
    assert_untouched_outside(state)
    x0, y0, x1, y1 = state.crop
    assert (x1 - x0) == (y1 - y0) < 200  # only a small square crop went through the model
    deep = photo(623, 401, channels=4, dtype=np.uint16, seed=2)
    state = edit(deep, rect_mask(623, 401, 10, 10, 50, 40), inp)
    assert_untouched_outside(state)


def test_seed_determinism(tiny):
    image = photo(200, 150)
    mask = (rect_mask(200, 150, 80, 60, 120, 90) * 255).astype(np.uint8)
    inp = load(tiny["sd9"])
    a = inp.inpaint(image, mask, request(seed=7)).image
    b = inp.inpaint(image, mask, request(seed=7, prompt="a red rose")).image
    c = inp.inpaint(image, mask, request(seed=8)).image
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    rand = inp.inpaint(image, mask, request(seed=None))
    assert isinstance(rand.metadata["seed"], int)  # a random seed is drawn and reported


def test_model_loaded_once_and_scheduler_reuses_weights(tiny):
    a = load(tiny["sd9"])
    b = load(tiny["sd9"], resolution=256)
    assert a.pipe is b.pipe  # same process, same model: loaded once
    c = load(tiny["sd9"], scheduler="ddim")
    assert c.pipe is not a.pipe and c.pipe.unet is a.pipe.unet  # new scheduler, same weights
    assert type(c.pipe.scheduler).__name__ == "DDIMScheduler"
    image = photo(96, 96)
    mask = (rect_mask(96, 96, 30, 30, 60, 60) * 255).astype(np.uint8)
    assert c(image, mask, mode="replace", prompt="x", steps=STEPS, seed=0).shape == image.shape
    with pytest.raises(InputError):
        load(tiny["sd9"], scheduler="nope")


def test_sdxl_strength_clamp(tiny):
    sdxl, sd = load(tiny["sdxl"]), load(tiny["sd9"])
    values, notices = sdxl.generation(request(strength=1.0))
    assert values["strength"] == 0.99 and any("0.99" in n for n in notices)
    assert sdxl.generation(request(strength=0.5))[0]["strength"] == 0.5
    assert sd.generation(request(strength=1.0))[0]["strength"] == 1.0  # only SDXL is clamped
    image, mask = photo(96, 96), (rect_mask(96, 96, 30, 30, 60, 60) * 255).astype(np.uint8)
    result = sdxl.inpaint(image, mask, request(strength=1.0))
    assert result.metadata["strength"] == 0.99 and any("0.99" in n for n in result.metadata["notices"])


@pytest.mark.parametrize("where", ["top-left", "bottom-right", "left-edge"])
def test_crop_region_at_borders(tiny, where):
    w, h = 623, 401
    boxes = {"top-left": (0, 0, 30, 25), "bottom-right": (w - 30, h - 25, w, h), "left-edge": (0, 180, 12, 240)}
    mask = rect_mask(w, h, *boxes[where])
    inp = load(tiny["sd9"])
    state = edit(photo(w, h), mask, inp, padding=20)
    x0, y0, x1, y1 = state.crop
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    ys, xs = np.nonzero(state.alpha > 0)
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    assert x1 - x0 == y1 - y0  # grown to the model's square working resolution, shifted inside
    assert_untouched_outside(state)


def test_empty_mask_is_an_error(tiny):
    image = photo(64, 64)
    inp = load(tiny["sd9"])
    with pytest.raises(InputError, match="empty"):
        inp.inpaint(image, np.zeros((64, 64), np.uint8), request())
    with pytest.raises(InputError, match="empty"):
        edit(image, np.zeros((64, 64), bool), inp)


def test_remove_mode_runs_prefill(tiny, monkeypatch):
    from autoinpaint.inpaint import classical
    from autoinpaint.inpaint.diffusion import REMOVE_NEGATIVE_PROMPT, REMOVE_PROMPT, REMOVE_STRENGTH

    calls = []
    real = classical.ClassicalInpainter.inpaint

    def spy(self, image, mask, request=None):
        calls.append((self.name, image.shape, int((mask > 0).sum())))
        return real(self, image, mask, request)

    monkeypatch.setattr(classical.ClassicalInpainter, "inpaint", spy)
    inp = load(tiny["sd9"], prefill="telea")
    removal = InpaintRequest(mode="remove", steps=4, seed=0)
    values, _ = inp.generation(removal)
    assert (values["prompt"], values["negative_prompt"], values["strength"]) == (
        REMOVE_PROMPT, REMOVE_NEGATIVE_PROMPT, REMOVE_STRENGTH)
    state = edit(photo(300, 200), rect_mask(300, 200, 100, 80, 140, 120), inp, mode="remove", prompt=None)
    assert calls and calls[0][0] == "telea" and calls[0][2] > 0
    assert state.metadata["prefill"] == "telea" and state.metadata["diffusion_mode"] == "remove"
    assert_untouched_outside(state)
    custom, _ = inp.generation(InpaintRequest(mode="remove", prompt="grass", strength=0.3))
    assert (custom["prompt"], custom["strength"]) == ("grass", 0.3)  # defaults are overridable


# --------------------------------------------------------------------------------- fake pipelines
class _FakePipe:
    """Records its call; returns a fixed-size image like a pipeline that ignores height/width."""

    def __init__(self, out_size=(512, 512)):
        self.calls, self.out_size = [], out_size
        self.vae_scale_factor = 8
        self.scheduler = None

    def set_progress_bar_config(self, **kw):
        pass

    def __call__(self, prompt=None, image=None, mask_image=None, height=None, width=None,
                 num_inference_steps=50, guidance_scale=4.0, negative_prompt=None, generator=None,
                 output_type="pil"):
        self.calls.append(dict(prompt=prompt, image=image, mask_image=mask_image, height=height, width=width,
                               steps=num_inference_steps))

        class Out:
            images = [np.full((self.out_size[1], self.out_size[0], 3), 0.5, np.float32)]
        return Out()


class KandinskyV22InpaintCombinedPipeline(_FakePipe):
    pass


class StableDiffusionXLInpaintPipeline(_FakePipe):
    def __call__(self, prompt=None, image=None, mask_image=None, height=None, width=None, padding_mask_crop=None,
                 strength=1.0, num_inference_steps=50, guidance_scale=5.0, negative_prompt=None, generator=None,
                 output_type="pil", callback_on_step_end=None):
        self.calls.append(dict(strength=strength, padding_mask_crop=padding_mask_crop, height=height, width=width))

        class Out:
            images = [np.zeros((height, width, 3), np.float32)]
        return Out()


def test_pipeline_without_padding_mask_crop_is_stitched():
    from autoinpaint.inpaint.diffusion import DiffusionInpainter

    pipe = KandinskyV22InpaintCombinedPipeline(out_size=(512, 512))
    inp = DiffusionInpainter(pipe, model="fake", resolution=512)
    image = photo(623, 401)
    state = edit(image, rect_mask(623, 401, 590, 370, 623, 401), inp, prompt="x", strength=0.5)
    assert_untouched_outside(state)
    assert np.all(state.result[state.alpha == 1] == 128)  # the pipeline's output, resized to the crop
    call = pipe.calls[0]
    assert "padding_mask_crop" not in call and call["image"].size == (512, 512)
    assert call["mask_image"].size == (512, 512)
    assert "has no strength parameter" in state.metadata["notices"][0]


def test_fake_sdxl_gets_clamped_strength_and_multiple_of_8_sizes():
    from autoinpaint.inpaint.diffusion import DiffusionInpainter

    pipe = StableDiffusionXLInpaintPipeline()
    inp = DiffusionInpainter(pipe, model="fake")
    assert inp.resolution == (1024, 1024) and inp.crop_aspect == 1.0
    out = inp(photo(301, 123), (rect_mask(301, 123, 10, 10, 20, 20) * 255).astype(np.uint8), mode="replace",
              prompt="x")
    assert out.shape == (123, 301, 3)
    call = pipe.calls[0]
    assert call["strength"] == 0.99 and call["padding_mask_crop"] is None
    assert call["width"] % 8 == 0 and call["height"] % 8 == 0
    assert abs(call["width"] * call["height"] - 1024 * 1024) < 0.05 * 1024 * 1024  # aspect kept at ~1 MP


def test_thin_mask_survives_latent_downsampling():
    from autoinpaint.inpaint.diffusion import model_mask, working_size

    mask = np.zeros((300, 300), np.uint8)
    mask[150, 20:280] = 255  # a 1-px line
    m = model_mask(mask, (512, 512), 8)
    col = m[:, 256] > 0
    assert col.sum() >= 17  # dilated by one latent cell (8 px) each side
    assert set(np.unique(m)) <= {0, 255}
    assert working_size(512, 512, (512, 512)) == (512, 512)
    w, h = working_size(623, 401, (512, 512))
    assert w % 8 == 0 and h % 8 == 0 and abs(w / h - 623 / 401) < 0.05


def test_cuda_oom_becomes_model_runtime_error():
    import torch

    from autoinpaint.inpaint.diffusion import DiffusionInpainter

    class Oom(_FakePipe):
        def __call__(self, **kw):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    inp = DiffusionInpainter(Oom(), model="fake")
    with pytest.raises(ModelRuntimeError, match="--offload"):
        inp(photo(64, 64), (rect_mask(64, 64, 10, 10, 20, 20) * 255).astype(np.uint8), mode="replace", prompt="x")
    assert ModelRuntimeError.exit_code == 1


def test_device_policy_without_accelerator(capsys):
    from autoinpaint.models.device import cpu_bf16_is_faster, resolve_device
    from autoinpaint.inpaint.diffusion_loading import _place, resolve_dtype
    from autoinpaint.log import configure

    configure()
    assert resolve_device("cpu") == "cpu"
    assert resolve_dtype("auto", "cpu") == ("bfloat16" if cpu_bf16_is_faster() else "float32")
    assert resolve_dtype("auto", "cuda") == "float16" and resolve_dtype("fp32", "cpu") == "float32"
    assert resolve_dtype("bf16", "cpu") == "bfloat16"
    with pytest.raises(InputError):
        resolve_dtype("fp16", "cpu")

    class NoOffload:
        def enable_model_cpu_offload(self, **kw):
            raise AssertionError("offload attempted without an accelerator")

    assert _place(NoOffload(), "cpu", True, 512 * 512) == "off"
    assert "needs a GPU" in capsys.readouterr().err


def test_single_file_never_downloads(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    from autoinpaint.inpaint import diffusion, diffusion_loading

    ckpt = tmp_path / "my-inpaint.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 9, 3, 3)}, str(ckpt))
    with pytest.raises(ModelMissingError, match="hf download stable-diffusion-v1-5/stable-diffusion-inpainting"):
        diffusion.load_diffusion_inpainter(str(ckpt))

    seen = {}

    class Cls:
        __name__ = "StableDiffusionInpaintPipeline"

        @classmethod
        def from_single_file(cls, path, **kw):
            seen.update(kw, path=path)
            raise OSError("stop here")

    monkeypatch.setattr(diffusion_loading, "single_file_class", lambda path: (Cls, "some/repo", "inpainting"))
    with pytest.raises(ModelMissingError):
        diffusion.load_diffusion_inpainter(str(ckpt), config=str(tmp_path))
    assert seen["local_files_only"] is True and seen["config"] == str(tmp_path) and seen["path"] == str(ckpt)


def test_sources_and_missing_models(tmp_path):
    from autoinpaint.inpaint.diffusion import resolve_source

    with pytest.raises(ModelMissingError, match="hf download stable-diffusion-v1-5/stable-diffusion-inpainting"):
        resolve_source("sd15")  # an alias maps to its hub id, which is not in the (empty) cache
    with pytest.raises(ModelMissingError, match="hf download diffusers/stable-diffusion-xl-1.0-inpainting-0.1"):
        resolve_source("sdxl")
    with pytest.raises(ModelMissingError, match="model_index.json"):
        resolve_source(str(tmp_path))
    with pytest.raises(ModelMissingError, match="no such file"):
        resolve_source(str(tmp_path / "nope.safetensors"))
    with pytest.raises(InputError, match="unknown"):
        resolve_source("definitely-not-a-model")


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def png(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(photo(623, 401)).save(path)
    return path


def _read(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


def test_cli_replace_json(cli, tiny, png, tmp_path):
    out = tmp_path / "out.png"
    r = cli("replace", png, "--rect", "300,150,360,210", "--prompt", "a red rose", "--model", tiny["sd9"],
            "--steps", "2", "--seed", "3", "--dtype", "fp32", "--json", "-o", out)
    assert r.code == 0, r.err
    record = json.loads(r.out)
    for key in ("model", "device", "dtype", "seed", "steps", "timings"):
        assert key in record
    assert record["seed"] == 3 and record["steps"] == 2 and record["device"] == "cpu"
    assert "inpaint" in record["timings"]
    result, image = _read(out), _read(png)
    assert result.shape == image.shape
    untouched = np.ones(image.shape[:2], bool)
    untouched[150 - 20:210 + 20, 300 - 20:360 + 20] = False  # rect + dilate/feather margin
    assert np.array_equal(result[untouched], image[untouched])


def test_cli_replace_with_shadow_relights_the_old_shadow(cli, tiny, tmp_path):
    """``replace --shadow``: the model paints the object's place only; the old object's cast shadow is
    relit (the clean ground comes back, which a plain replace leaves dark) and nothing far from object
    and shadow changes."""
    from PIL import Image

    import scenes as S
    from autoinpaint.mask.refine import distance_outside

    sc = S.shadow_scene(480, 360, np.random.default_rng(1), "noise", angle=0.0)
    photo_path, mask_path = tmp_path / "photo.png", tmp_path / "object.png"
    Image.fromarray(sc.image).save(photo_path)
    Image.fromarray((sc.mask * 255).astype(np.uint8)).save(mask_path)
    common = ("--mask", mask_path, "--prompt", "a potted plant", "--model", tiny["sd9"], "--steps", "2",
              "--seed", "3", "--dtype", "fp32", "--json")
    r = cli("replace", photo_path, *common, "--shadow", "-o", tmp_path / "with.png")
    assert r.code == 0, r.err
    record = json.loads(r.out)
    assert record["shadow_pixels"] > 0.5 * (sc.shadow >= 0.5).sum() and 0.3 < record["shadow_darkening"] < 0.7
    r = cli("replace", photo_path, *common, "-o", tmp_path / "without.png")
    assert r.code == 0 and "shadow_pixels" not in json.loads(r.out), r.err
    result, plain = _read(tmp_path / "with.png"), _read(tmp_path / "without.png")
    clean = sc.background.astype(np.float32)
    core = (sc.shadow >= 0.5) & (distance_outside(sc.mask) > 16)   # beyond what the object's alpha replaces
    assert np.abs(result - clean)[core].mean() <= 6 < 25 < np.abs(plain - clean)[core].mean()
    far = distance_outside(sc.mask | (sc.shadow > 0)) > 40
    assert np.array_equal(result[far], sc.image[far]) and np.array_equal(plain[far], sc.image[far])


def test_cli_fill_and_diffusion_remove(cli, tiny, png, tmp_path):
    r = cli("fill", png, "--ellipse", "20,20,80,70", "--prompt", "a stone", "--model", tiny["sdxl"],
            "--steps", "2", "--seed", "1", "--dtype", "fp32", "--json", "-o", tmp_path / "fill.png")
    assert r.code == 0, r.err
    assert json.loads(r.out)["strength"] == 0.99
    r = cli("remove", png, "--rect", "300,150,360,210", "--inpainter", tiny["sd4"], "--steps", "3",
            "--seed", "2", "--dtype", "fp32", "--json", "-o", tmp_path / "removed.png")
    assert r.code == 0, r.err
    record = json.loads(r.out)
    assert record["prefill"] == "hybrid" and record["diffusion_mode"] == "remove"


def test_cli_errors(cli, png, tiny):
    r = cli("replace", png, "--rect", "10,10,50,50", "--prompt", "x", "--model", "nobody/no-such-model")
    assert r.code == 3 and "hf download nobody/no-such-model" in r.err
    r = cli("replace", png, "--rect", "10,10,50,50", "--prompt", "x", "--model", "./missing/model.safetensors")
    assert r.code == 3
    r = cli("replace", png, "--rect", "10,10,50,50", "--model", tiny["sd9"])
    assert r.code == 2 and "--prompt" in r.err
    r = cli("replace", png, "--rect", "10,10,50,50", "--prompt", "x", "--strength", "1.5")
    assert r.code == 2
    r = cli("fill", png, "--rect", "10,10,50,50", "--prompt", "x", "--model", tiny["sd9"], "--resolution", "12")
    assert r.code == 2


def test_cli_and_module_import_without_torch():
    code = ("import sys, autoinpaint.cli, autoinpaint.cli.replace, autoinpaint.inpaint.diffusion; "
            "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_concurrent_edits_on_one_cached_model_get_their_own_results(tiny):
    """Per-call values are arguments and results are return values: two edits running at once on one
    cached model (the registry hands both the same pipeline) each get exactly their own result."""
    from concurrent.futures import ThreadPoolExecutor

    from autoinpaint import EditOptions, Selection, edit as api_edit
    from autoinpaint.models.store import default_store

    image = photo(160, 120)
    sel = Selection(rects=((50, 40, 100, 80),))
    jobs = {"cat": dict(prompt="a cat", seed=1), "dog": dict(prompt="a dog", seed=2, guidance=3.0)}

    def run(name):
        o = EditOptions(model=tiny["sd9"], dtype="fp32", steps=STEPS, segmenter="classical", **jobs[name])
        return api_edit(image, sel, o, "replace")

    alone = {name: run(name) for name in jobs}
    loaded = len(default_store())
    with ThreadPoolExecutor(2) as pool:
        together = dict(zip(jobs, pool.map(run, jobs)))
    assert len(default_store()) == loaded  # no second copy of the model
    assert not np.array_equal(alone["cat"].result, alone["dog"].result)
    for name, job in jobs.items():
        assert np.array_equal(together[name].result, alone[name].result)
        assert together[name].metadata["seed"] == job["seed"]
        assert together[name].metadata["guidance"] == job.get("guidance", 7.5)
