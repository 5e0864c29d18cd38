"""LaMa removal (issue 11): spandrel's big-lama architecture with random weights, saved in every format
the loader reads (safetensors, a weights-only state dict, a Lightning-style checkpoint, a TorchScript
archive) and loaded through the real loader; the SHA-256 / trust rules; crop-and-stitch geometry and
exact pixels; ``auto``; the download and its conversion against a loopback server. Offline."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import gradient_photo as photo, save_malicious_pickle  # noqa: E402
from lama_fixtures import (build_lama, save_lightning, save_safetensors, save_state_dict,  # noqa: E402
                           save_torchscript)
from test_sam import http_server  # noqa: E402,F401 - the loopback Range server fixture

from autoinpaint.models import checkpoints  # noqa: E402
from autoinpaint.errors import AutoinpaintError, InputError, ModelMissingError  # noqa: E402
from autoinpaint.inpaint import load_inpainter  # noqa: E402
from autoinpaint.inpaint import lama as lama_module  # noqa: E402
from autoinpaint.inpaint.lama import LoadedLama, model_geometry  # noqa: E402
from autoinpaint.inpaint.lama_weights import conversion_path, read_lama_weights  # noqa: E402
from autoinpaint.models.store import default_store  # noqa: E402
from autoinpaint.models.registry import family_for, resolve_auto  # noqa: E402
from autoinpaint.models.weight_files import safetensors_keys  # noqa: E402

RECT = "300,150,330,180"  # in the 480×320 test photo
SMALL_CROP = ("--dilate", "2", "--feather", "2", "--padding-mask-crop", "8")  # a ~50 px crop: fast


@pytest.fixture
def lama_home(tmp_path, monkeypatch):
    """An empty $AUTOINPAINT_HOME (checkpoints, cache) and an empty default model store."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("AUTOINPAINT_HOME", str(home))
    monkeypatch.delenv("AUTOINPAINT_CACHE", raising=False)
    default_store().clear()
    yield home
    default_store().clear()


@pytest.fixture(scope="module")
def lama_model():
    return build_lama(0)


@pytest.fixture(scope="module")
def lama_files(lama_model, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lama")
    return {"safetensors": save_safetensors(lama_model, folder / "lama.safetensors"),
            "generator": save_safetensors(lama_model, folder / "lama-gen.safetensors", "generator.model."),
            "pth": save_state_dict(lama_model, folder / "lama.pth"),
            "ckpt": save_lightning(lama_model, folder / "best.ckpt")}


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(photo(480, 320)).save(path)
    return path


def rect_mask(w: int, h: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def direct(model, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The oracle: spandrel's network called by hand on the crop mirrored to a multiple of 8."""
    h, w = mask.shape
    H, W = max(16, -(-h // 8) * 8), max(16, -(-w // 8) * 8)
    img = np.pad(image, ((0, H - h), (0, W - w), (0, 0)), mode="symmetric")
    hole = np.pad(mask > 0, ((0, H - h), (0, W - w)), mode="symmetric")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(hole.astype(np.float32))[None, None]
    with torch.inference_mode():
        out = model(x, m).clamp(0, 1).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()[:h, :w]
    return np.where((mask > 0)[..., None], out, image)


def spy_on_jit(monkeypatch) -> list:
    calls = []
    real = torch.jit.load

    def load(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(torch.jit, "load", load)
    return calls


# ------------------------------------------------------------------------------------------ formats
def test_every_format_loads_the_same_weights_and_files_are_told_apart(lama_files, lama_model, lama_home,
                                                                      tmp_path):
    image, mask = photo(45, 37), rect_mask(45, 37, 12, 8, 30, 22)
    expected = direct(lama_model, image, mask)
    assert (expected[mask > 0] != image[mask > 0]).any()
    for name in ("safetensors", "generator", "pth"):
        path = lama_files[name]
        assert family_for("inpainter", str(path)).name == "lama", name
        inp = load_inpainter(str(path), device="cpu", dtype="fp32")
        result = inp.inpaint(image, mask)
        assert np.array_equal(result.image, expected), name
        assert result.metadata["model"] == path.name
    assert family_for("inpainter", str(lama_files["ckpt"])).name == "lama"
    assert family_for("inpainter", "lama").name == "lama"
    # other weight files are not LaMa's: they stay with the diffusion family
    from safetensors.torch import save_file

    other = tmp_path / "sd.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4)}, str(other))
    other_pt = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"first_stage_model.encoder.conv_in.weight": torch.zeros(2)}}, other_pt)
    assert family_for("inpainter", str(other)).name == "diffusion"
    assert family_for("inpainter", str(other_pt)).name == "diffusion"
    with pytest.raises(ModelMissingError, match="not a LaMa checkpoint"):
        read_lama_weights(other)


def test_torchscript_archive_is_read_only_when_trusted(tmp_path, lama_model, lama_home, cli, png, monkeypatch):
    archive = save_torchscript(lama_model, tmp_path / "big-lama.pt")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert family_for("inpainter", str(archive)).name == "lama"
    calls = spy_on_jit(monkeypatch)
    args = ["remove", png, "--rect", RECT, *SMALL_CROP, "--inpainter", archive, "--dtype", "fp32",
            "--json", "-o"]
    # an unknown digest and no --trust-checkpoint: exit 3 with the reason; TorchScript never loaded
    r = cli(*args, tmp_path / "refused.png")
    assert r.code == 3 and r.err.startswith("Error:") and "TorchScript" in r.err and "--trust-checkpoint" in r.err
    assert not calls and not (tmp_path / "refused.png").exists()
    # trusted by the flag: read once, converted to safetensors
    r = cli(*args, tmp_path / "trusted.png", "--trust-checkpoint")
    assert r.code == 0, r.err
    record = json.loads(r.out)
    assert record["inpainter"] == "lama" and record["model"] == "big-lama.pt" and calls == [str(archive)]
    converted = conversion_path(digest)
    assert converted.is_file() and converted.parent == lama_home / "cache" / "lama"
    # the next load of the same file (a fresh model store) reads the conversion: no flag, no TorchScript
    default_store().clear()
    r = cli(*args, tmp_path / "again.png")
    assert r.code == 0, r.err
    assert len(calls) == 1
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "again.png")),
                          np.asarray(Image.open(tmp_path / "trusted.png")))
    # a SHA-256 the registry publishes is trusted without the flag
    converted.unlink()
    default_store().clear()
    monkeypatch.setitem(checkpoints.KNOWN, "lama", dataclasses.replace(checkpoints.KNOWN["lama"], sha256=digest))
    weights = read_lama_weights(archive)
    assert weights.format == "torchscript" and len(calls) == 2 and converted.is_file()
    assert all(torch.equal(weights.state[k], v) for k, v in lama_model.state_dict().items())


def test_lightning_checkpoint_needs_trust_and_keeps_only_the_generator(lama_files, lama_model, lama_home):
    ckpt = lama_files["ckpt"]
    with pytest.raises(ModelMissingError, match="full unpickling") as err:
        read_lama_weights(ckpt)
    assert "--trust-checkpoint" in str(err.value) and err.value.exit_code == 3
    weights = read_lama_weights(ckpt, trust=True)  # its config class is not installed: an inert stand-in
    assert weights.format == "pickle"
    assert set(weights.state) == set(lama_model.state_dict())  # discriminator and losses dropped
    assert all(torch.equal(weights.state[k], v) for k, v in lama_model.state_dict().items())
    converted = conversion_path(weights.sha256)
    assert safetensors_keys(converted) == set(lama_model.state_dict())
    assert read_lama_weights(ckpt).source == converted  # later loads: the conversion, no trust needed


def test_malicious_pickle_is_refused_with_exit_3_and_never_runs(tmp_path, lama_home, cli, png):
    marker = tmp_path / "pwned"

    evil = tmp_path / "big-lama.ckpt"
    save_malicious_pickle(evil, {"state_dict": {"generator.model.1.bn_l.running_mean": torch.zeros(1)}}, marker)
    assert family_for("inpainter", str(evil)).name == "lama"  # its pickle names LaMa's keys
    out = tmp_path / "out.png"
    r = cli("remove", png, "--rect", RECT, *SMALL_CROP, "--inpainter", evil, "-o", out)
    assert r.code == 3, r.err
    assert r.err.startswith("Error:") and "unpickling" in r.err and len(r.err.strip().splitlines()) == 1
    assert not marker.exists() and not out.exists()
    torch.load(evil, weights_only=False)  # control: an unsafe load does run the payload
    assert marker.exists()


# ------------------------------------------------------------------------------- pixels and geometry
@pytest.mark.parametrize("case", ["rgb8-odd-corner", "rgba8-right-border", "rgb16-bottom-border", "gray8"])
def test_exact_pixels_outside_the_mask(case, lama_files, lama_home):
    from autoinpaint.api import EditOptions, edit
    from autoinpaint.selection import Selection

    w, h = 53, 41
    channels, dtype = {"rgb8-odd-corner": (3, np.uint8), "rgba8-right-border": (4, np.uint8),
                       "rgb16-bottom-border": (3, np.uint16), "gray8": (1, np.uint8)}[case]
    image = photo(w, h, channels, dtype, seed=3)
    rect = {"rgb8-odd-corner": (0, 0, 14, 11), "rgba8-right-border": (40, 12, 53, 25),
            "rgb16-bottom-border": (20, 30, 34, 41), "gray8": (20, 15, 30, 25)}[case]
    options = EditOptions(inpainter=str(lama_files["safetensors"]), dtype="fp32", dilate=2, feather=2,
                          padding_mask_crop=6)
    state = edit(image, Selection(rects=(rect,)), options)
    assert state.metadata["inpainter"] == "lama"
    assert state.result.shape == image.shape and state.result.dtype == image.dtype
    keep = state.alpha == 0
    assert np.array_equal(state.result[keep], image[keep])
    assert (state.result[state.alpha == 1] != image[state.alpha == 1]).any()


def test_padding_downscale_and_one_network_per_weights(lama_files, lama_model, lama_home, monkeypatch):
    assert model_geometry(2048, 1000, 1024) == ((1024, 500), (1024, 504))
    assert model_geometry(13, 9, 1024) == ((13, 9), (16, 16))
    seen = []
    real = LoadedLama.__call__

    def spy(self, image, mask):
        seen.append((image.shape, mask.copy()))
        return real(self, image, mask)

    monkeypatch.setattr(LoadedLama, "__call__", spy)
    path = str(lama_files["safetensors"])
    small = load_inpainter(path, device="cpu", dtype="fp32", lama_max_side=32)
    full = load_inpainter(path, device="cpu", dtype="fp32")
    assert small.network is full.network and (small.max_side, full.max_side) == (32, 1024)
    # a 70×50 crop over the limit runs at 32×23 (padded to 32×24); the hole on the right border stays
    # a hole in the mirrored padding; only the hole takes the upscaled fill
    image, mask = photo(70, 50), rect_mask(70, 50, 50, 30, 70, 50)
    result = small.inpaint(image, mask)
    (shape, model_mask), = seen
    assert shape == (24, 32, 3) and result.metadata["downscaled"] and result.metadata["resolution"] == [32, 23]
    touched = np.zeros((24, 32), bool)  # model pixels whose footprint (70/32 px) meets rows 30-49, cols 50-69
    touched[13:, 22:] = True  # row 23 is the mirror of row 22
    assert np.array_equal(model_mask, touched)
    hole = mask > 0
    assert np.array_equal(result.image[~hole], image[~hole]) and (result.image[hole] != image[hole]).any()
    # a crop under the limit runs at its own size, mirrored up to a multiple of 8 (at least 16)
    seen.clear()
    tiny, tiny_mask = photo(13, 9), rect_mask(13, 9, 4, 2, 9, 7)
    assert np.array_equal(full.inpaint(tiny, tiny_mask).image, direct(lama_model, tiny, tiny_mask))
    assert seen[0][0] == (16, 16, 3)
    with pytest.raises(InputError, match="lama-max-side"):
        load_inpainter(path, lama_max_side=8)


# --------------------------------------------------------------------------------------- defaults
def test_auto_uses_lama_only_when_its_weights_are_present(lama_files, lama_home, cli, png, tmp_path):
    from autoinpaint.inpaint.diffusion import DiffusionInpainter

    args = ["remove", png, "--rect", RECT, *SMALL_CROP, "--dtype", "fp32", "-o"]
    assert resolve_auto("inpainter", mode="remove")[0] == "hybrid"
    r = cli(*args, tmp_path / "classical.png")
    assert r.code == 0, r.err
    assert "inpainter auto -> hybrid" in r.err and "models download lama" in r.err
    weights = lama_home / "checkpoints" / "big-lama.safetensors"
    weights.parent.mkdir()
    shutil.copy(lama_files["safetensors"], weights)
    assert resolve_auto("inpainter", mode="remove")[0] == "lama"
    assert resolve_auto("inpainter", mode="replace")[0] == "hybrid"
    r = cli(*args, tmp_path / "lama.png")
    assert r.code == 0, r.err
    assert "inpainter auto -> lama" in r.err and str(weights) in r.err
    r = cli("models", "list", "--json")
    row = next(row for row in json.loads(r.out) if row["name"] == "lama")
    assert row["present"] and row["path"] == str(weights) and row["kind"] == "inpainter"
    # diffusion ``remove`` pre-fills the hole with what auto means for remove: LaMa now
    diffusion = DiffusionInpainter.__new__(DiffusionInpainter)
    diffusion.prefill = "auto"
    image, mask = photo(40, 32), rect_mask(40, 32, 10, 10, 25, 22)
    filled, name = diffusion._prefill(image, mask)
    assert name == "lama" and (filled[mask > 0] != image[mask > 0]).any()
    assert np.array_equal(filled[mask == 0], image[mask == 0])


def test_models_download_lama_verifies_and_converts_once(lama_files, lama_model, lama_home, cli, http_server,
                                                        monkeypatch):
    _, handler, url = http_server
    payload = lama_files["ckpt"].read_bytes()  # a file that needs unpickling, as big-lama.pt needs TorchScript
    handler.payload = payload
    entry = dataclasses.replace(checkpoints.KNOWN["lama"], size=len(payload),
                                sha256=hashlib.sha256(payload).hexdigest(), md5=hashlib.md5(payload).hexdigest())
    monkeypatch.setitem(checkpoints.KNOWN, "lama", entry)
    r = cli("models", "download", "lama", "--url", url, "--json")
    assert r.code == 0, r.err
    path = Path(json.loads(r.out)["path"])
    assert path == lama_home / "checkpoints" / "big-lama.safetensors"
    assert safetensors_keys(path) == set(lama_model.state_dict())
    assert (lama_home / "checkpoints" / "big-lama.pt").read_bytes() == payload
    assert cli("models", "verify", "lama").code == 0
    requests = len(handler.ranges)
    assert cli("models", "download", "lama", "--url", url).code == 0 and len(handler.ranges) == requests
    # a verified big-lama.pt without its conversion (put there by hand): ``lama`` converts it beside itself
    path.unlink()
    inp = load_inpainter("lama", device="cpu", dtype="fp32")
    assert inp.network.source == path and path.is_file() and inp.model == "lama"
    # the conversion alone is enough: verify passes, and loading unpickles nothing
    (lama_home / "checkpoints" / "big-lama.pt").unlink()
    r = cli("models", "verify", "lama", "--json")
    assert r.code == 0 and json.loads(r.out)[0]["path"] == str(path)
    default_store().clear()
    monkeypatch.setattr("autoinpaint.inpaint.lama_weights._unpickle", lambda path: pytest.fail("unpickled"))
    assert load_inpainter("lama", device="cpu", dtype="fp32").network.source == path
    # a download matching the SHA-256 but not the published MD5 is deleted
    monkeypatch.setitem(checkpoints.KNOWN, "lama", dataclasses.replace(entry, md5="0" * 32))
    with pytest.raises(AutoinpaintError, match="MD5"):
        checkpoints.download("lama", lama_home / "other", url=url, progress=False)
    assert not list((lama_home / "other").iterdir())


# ------------------------------------------------------------------------------ device and precision
def test_fp16_is_refused_bf16_runs_and_auto_measures(lama_files, lama_home, cli, png, tmp_path, monkeypatch, capsys):
    import autoinpaint.models.device as device
    from autoinpaint.log import configure

    with pytest.raises(NotImplementedError, match="Half"):  # the reason: no half FFT kernel on the CPU
        torch.fft.rfftn(torch.zeros(8, 8, dtype=torch.float16))
    path = str(lama_files["safetensors"])
    with pytest.raises(InputError, match="fp16"):
        load_inpainter(path, device="cpu", dtype="fp16")
    r = cli("remove", png, "--rect", RECT, *SMALL_CROP, "--inpainter", path, "--dtype", "fp16",
            "-o", tmp_path / "x.png")
    assert r.code == 2 and "torch.fft" in r.err and not (tmp_path / "x.png").exists()
    image, mask = photo(24, 16), rect_mask(24, 16, 6, 4, 18, 12)  # small: bf16 is slow without bf16 instructions
    fp32 = load_inpainter(path, device="cpu", dtype="fp32").inpaint(image, mask)
    bf16 = load_inpainter(path, device="cpu", dtype="bf16").inpaint(image, mask)
    assert bf16.metadata["dtype"] == "bf16" and fp32.metadata["dtype"] == "fp32"
    diff = np.abs(bf16.image.astype(int) - fp32.image)[mask > 0]
    assert diff.mean() < 8 and np.array_equal(bf16.image[mask == 0], image[mask == 0])
    # auto on a CPU where the project's rule finds bf16 faster: LaMa itself is timed and compared
    assert lama_module.resolve_lama_precision("auto", "cpu") == (
        "fp32" if not device.cpu_has_native_bf16() else lama_module.resolve_lama_precision("auto", "cpu"))
    monkeypatch.setattr(lama_module, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(device, "cpu_bf16_is_faster", lambda remember=True: True)
    monkeypatch.setattr(lama_module, "BF16_PROBE", 16)
    default_store().clear()
    configure(quiet=False)  # notices on stderr, as the CLI shows them
    capsys.readouterr()
    verdicts = []
    real_check = lama_module.bf16_check
    monkeypatch.setattr(lama_module, "bf16_check", lambda net: verdicts.append(real_check(net)) or verdicts[-1])
    auto = load_inpainter(path, device="cpu", dtype="auto")
    (use, why), = verdicts
    assert f"LaMa precision auto -> {why}" in capsys.readouterr().err
    assert auto.network.precision == ("bf16" if use else "fp32")
    # MPS that fails (here: there is none) falls back to the CPU with a notice
    default_store().clear()
    monkeypatch.setattr(lama_module, "resolve_device", lambda d="auto": "mps" if d in ("auto", "mps") else d)
    fallback = load_inpainter(path, device="mps", dtype="fp32")
    assert fallback.network.device == "cpu" and "running on the CPU" in capsys.readouterr().err


# ---------------------------------------------------------------------------- api, batch, options
def test_api_batch_and_options_reach_lama(lama_files, lama_home, png, tmp_path):
    from autoinpaint import remove
    from autoinpaint.api import EditOptions, inpaint_step
    from autoinpaint.batch.recipe import iter_tasks
    from autoinpaint.batch.worker import execute_task

    path = str(lama_files["safetensors"])
    image = photo(64, 48)
    out = remove(image, rects=[(20, 14, 40, 30)], inpainter=path, lama_max_side=32, dtype="fp32", dilate=2,
                 feather=2)
    assert out.shape == image.shape and np.array_equal(out[:10], image[:10])
    step = inpaint_step("remove", EditOptions(inpainter=path, lama_max_side=48, dtype="fp32"))
    assert step.inpainter.max_side == 48 and step.inpainter.network.precision == "fp32"
    recipe = tmp_path / "recipe.csv"
    recipe.write_text("input,rect,inpainter,lama_max_side,trust_checkpoint,dtype\n"
                      f"{png},\"300,150,360,210\",{path},64,no,fp32\n")
    (task,) = iter_tasks(recipe, tmp_path / "out")
    assert task.options.lama_max_side == 64 and task.options.trust_checkpoint is False
    record = execute_task(task)
    assert record["status"] == "done", record
    assert record["inpainter"] == "lama"
