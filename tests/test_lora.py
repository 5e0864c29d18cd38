"""Few-step replace: ``--lora ID|PATH[:SCALE]`` (tiny random LoRAs written in diffusers' LoRA safetensors
format, loaded and fused through the real path), the added schedulers, and ``--fast`` (a tiny LCM-LoRA
placed in a Hugging Face cache where the hub lookup finds it). Offline."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the network

from conftest import gradient_photo, save_malicious_pickle  # noqa: E402

from autoinpaint.errors import InputError, ModelMissingError  # noqa: E402
from autoinpaint.inpaint import InpaintRequest  # noqa: E402
from autoinpaint.inpaint.lora import FAST_LORAS, parse_lora, resolve_lora  # noqa: E402

pytest.importorskip("diffusers")
pytest.importorskip("peft")
from diffusion_fixtures import build_sd, save_tiny_lora, save_tiny_models  # noqa: E402
from hf_sam_fixtures import install_in_hub_cache  # noqa: E402

LCM_SD15 = FAST_LORAS["sd15"]
RECT = (30, 30, 60, 60)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny_lora")
    paths = save_tiny_models(root)
    paths["lora"] = str(save_tiny_lora(root / "lora", paths["sd9"], seed=1))
    paths["lora2"] = str(save_tiny_lora(root / "lora2", paths["sd9"], seed=2))
    paths["lcm"] = str(save_tiny_lora(root / "lcm", paths["sd9"], seed=3))
    return paths


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache, no downloads, no cached inpainters."""
    import huggingface_hub.constants as hf_constants

    from autoinpaint.models.store import default_store

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("AUTOINPAINT_ALLOW_DOWNLOAD", raising=False)
    default_store().clear()
    yield cache
    default_store().clear()


def load(path: str, **kw):
    from autoinpaint.inpaint.diffusion import load_diffusion_inpainter

    kw.setdefault("dtype", "fp32")
    return load_diffusion_inpainter(path, **kw)


def scene() -> tuple[np.ndarray, np.ndarray]:
    image = gradient_photo(96, 96)
    mask = np.zeros((96, 96), np.uint8)
    x0, y0, x1, y1 = RECT
    mask[y0:y1, x0:x1] = 255
    return image, mask


def request(**kw) -> InpaintRequest:
    return InpaintRequest(**{"mode": "replace", "prompt": "a red rose", "steps": 2, "seed": 0, **kw})


def count_unet_calls(pipe) -> list[int]:
    """Spy on ``pipe.unet``: the batch size of every forward (2 = with classifier-free guidance)."""
    calls: list[int] = []
    forward = pipe.unet.forward

    def spy(sample, *args, **kwargs):
        calls.append(int(sample.shape[0]))
        return forward(sample, *args, **kwargs)

    pipe.unet.forward = spy
    return calls


# ------------------------------------------------------------------------------------------- parsing
def test_parse_lora_specs():
    assert parse_lora("owner/name") == ("owner/name", 1.0)
    assert parse_lora("owner/name:0.5") == ("owner/name", 0.5)
    assert parse_lora("./my lora.safetensors:-1.25") == ("./my lora.safetensors", -1.25)
    assert parse_lora("/x/a:b.safetensors") == ("/x/a:b.safetensors", 1.0)  # not a number: part of the path
    for bad in ("", "  ", "owner/name:99", "owner/name:nan"):
        with pytest.raises(InputError):
            parse_lora(bad)


def test_edit_options_keep_loras_as_a_tuple():
    from autoinpaint import EditOptions
    from autoinpaint.batch.recipe import Task

    assert EditOptions(lora="a/b").lora == ("a/b",) and EditOptions(lora=["a/b", "c/d:0.5"]).lora == ("a/b", "c/d:0.5")
    with pytest.raises(InputError):
        EditOptions(lora=[1])
    task = Task(line=1, input="x.png", options=EditOptions(lora=("a/b:0.5",), fast=True, scheduler="tcd"))
    back = Task.from_payload(json.loads(json.dumps(task.to_payload())))
    assert back.options == task.options and back.options.lora == ("a/b:0.5",)


def test_scheduler_choices_match_the_loader():
    from autoinpaint.cli.options import SCHEDULER_CHOICES
    from autoinpaint.inpaint.diffusion_loading import SCHEDULERS

    assert SCHEDULER_CHOICES == ["default", *SCHEDULERS]
    assert {"lcm", "tcd", "euler-a", "dpm++"} <= set(SCHEDULERS)


# ----------------------------------------------------------------------------------------- --lora
def test_lora_is_fused_deterministic_and_part_of_the_model(tiny):
    from autoinpaint.composite import Composite
    from autoinpaint.inpaint import Inpaint
    from autoinpaint.mask.refine import make_alpha
    from autoinpaint.state import EditState

    image, mask = scene()
    base = load(tiny["sd9"])
    plain = base.inpaint(image, mask, request()).image
    fused = load(tiny["sd9"], lora=(tiny["lora"],))
    assert fused.pipe is not base.pipe and fused.pipe.unet is not base.pipe.unet
    # fused, then unloaded: plain layers, no adapters left (a step costs what it costs without LoRA)
    assert not any("lora" in name for name, _ in fused.pipe.unet.named_parameters())
    a = fused.inpaint(image, mask, request())
    b = fused.inpaint(image, mask, request())
    assert np.array_equal(a.image, b.image)                          # seeds stay deterministic
    assert not np.array_equal(a.image, plain)                        # the LoRA changed the model
    assert not np.array_equal(a.image, fused.inpaint(image, mask, request(seed=1)).image)
    assert a.metadata["lora"] == [tiny["lora"]]
    # scale 0 fuses nothing: exactly the base model's result
    zero = load(tiny["sd9"], lora=(tiny["lora"] + ":0",))
    assert np.array_equal(zero.inpaint(image, mask, request()).image, plain)
    # two LoRAs, one weighted: yet another model
    both = load(tiny["sd9"], lora=(tiny["lora"], tiny["lora2"] + ":0.5"))
    assert not np.array_equal(both.inpaint(image, mask, request()).image, a.image)
    # the base pipeline never saw any of them
    again = load(tiny["sd9"])
    assert again.pipe is base.pipe and np.array_equal(again.inpaint(image, mask, request()).image, plain)
    # a new scheduler for the fused model reuses the fused weights, not the base ones
    ddim = load(tiny["sd9"], lora=(tiny["lora"],), scheduler="ddim")
    assert ddim.pipe.unet is fused.pipe.unet and type(ddim.pipe.scheduler).__name__ == "DDIMScheduler"
    # through the Inpaint and Composite steps: alpha-0 pixels stay exact
    alpha = make_alpha(mask > 0, dilate=3, feather=3)
    state = EditState(image=image, mask=mask > 0, alpha=alpha)
    for step in (Inpaint(fused, 16, request()), Composite()):
        state = step(state)
    keep = state.alpha == 0
    assert np.array_equal(state.result[keep], image[keep]) and not np.array_equal(state.result[~keep], image[~keep])


def test_new_schedulers_run(tiny):
    image, mask = scene()
    for name, cls in (("lcm", "LCMScheduler"), ("tcd", "TCDScheduler"), ("euler-a", "EulerAncestralDiscreteScheduler")):
        inp = load(tiny["sd9"], scheduler=name)
        assert type(inp.pipe.scheduler).__name__ == cls
        out = inp.inpaint(image, mask, request(steps=2))
        assert out.image.shape == image.shape and out.metadata["scheduler"] == name


def test_missing_and_unsafe_loras_are_refused(tiny, hub_cache, tmp_path, cli):
    with pytest.raises(ModelMissingError, match="hf download someone/style-lora"):
        resolve_lora("someone/style-lora:0.8")
    with pytest.raises(ModelMissingError, match="no such file"):
        resolve_lora(str(tmp_path / "nowhere.safetensors"))
    marker = tmp_path / "ran"
    pickled = save_malicious_pickle(tmp_path / "lora.bin", {}, marker)
    with pytest.raises(ModelMissingError, match="safetensors"):
        resolve_lora(str(pickled))
    folder = tmp_path / "pickled_folder"
    folder.mkdir()
    save_malicious_pickle(folder / "pytorch_lora_weights.bin", {}, marker)
    with pytest.raises(ModelMissingError, match="pickle"):
        resolve_lora(str(folder))
    assert not marker.exists()  # nothing was unpickled
    not_a_lora = tmp_path / "other.safetensors"
    from safetensors.numpy import save_file

    save_file({"something.else": np.zeros((2, 2), np.float32)}, str(not_a_lora))
    with pytest.raises(ModelMissingError, match="does not fit"):
        load(tiny["sd9"], lora=(str(not_a_lora),))
    # the CLI: exit 3, the command that fetches it, nothing written
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(scene()[0]).save(src)
    r = cli("replace", src, "--rect", ",".join(map(str, RECT)), "--prompt", "x", "--model", tiny["sd9"],
            "--lora", "someone/style-lora", "--segmenter", "classical", "--dtype", "fp32", "-o", out)
    assert r.code == 3 and "hf download someone/style-lora" in r.err and not out.exists(), r.err
    assert "Traceback" not in r.err


# ----------------------------------------------------------------------------------------- --fast
def test_fast_uses_the_cached_lcm_lora_four_steps_one_unet_pass_each(tiny, hub_cache):
    from autoinpaint.inpaint.lora import fast_lora, model_family
    from autoinpaint.models.hub import resolve

    install_in_hub_cache(Path(tiny["lcm"]), hub_cache, LCM_SD15)
    image, mask = scene()
    fast = load(tiny["sd9"], fast=True)
    assert type(fast.pipe.scheduler).__name__ == "LCMScheduler"
    calls = count_unet_calls(fast.pipe)
    out = fast.inpaint(image, mask, InpaintRequest(mode="replace", prompt="a red rose", seed=5))
    assert (out.metadata["steps"], out.metadata["guidance"], out.metadata["fast"]) == (4, 1.0, True)
    assert out.metadata["lora"] == [LCM_SD15] and out.metadata["scheduler"] == "lcm"
    assert calls == [1, 1, 1, 1]  # guidance 1: no classifier-free guidance, one UNet pass per step
    again = fast.inpaint(image, mask, InpaintRequest(mode="replace", prompt="a red rose", seed=5))
    assert np.array_equal(out.image, again.image)
    # the LCM-LoRA file from the cache is the one fused: same result as naming it with --lora + lcm
    named = load(tiny["sd9"], lora=(str(Path(tiny["lcm"]) / "pytorch_lora_weights.safetensors"),),
                 scheduler="lcm")
    named_out = named.inpaint(image, mask, request(steps=4, guidance=1.0, seed=5))
    assert np.array_equal(named_out.image, out.image)
    # explicit values still win
    calls.clear()
    cfg = fast.inpaint(image, mask, request(steps=2, guidance=1.5))
    assert cfg.metadata["steps"] == 2 and calls == [2, 2]
    # families: SDXL gets the SDXL LCM-LoRA; SD 2.x (cross-attention 1024) has none
    assert model_family(resolve(tiny["sdxl"], marker="model_index.json")) == "sdxl"
    assert fast_lora(resolve(tiny["sdxl"], marker="model_index.json")) == FAST_LORAS["sdxl"]
    sd2 = hub_cache.parent / "sd2"
    (sd2 / "unet").mkdir(parents=True)
    (sd2 / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionInpaintPipeline"}))
    (sd2 / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 1024}))
    with pytest.raises(InputError, match="no published few-step LoRA"):
        fast_lora(resolve(str(sd2), marker="model_index.json"))


def test_models_list_shows_the_lcm_loras(tiny, hub_cache, cli):
    def rows():
        r = cli("models", "list", "--json")
        assert r.code == 0
        return {row["name"]: row for row in json.loads(r.out) if row["kind"] == "lora"}

    assert {name: row["hub_id"] for name, row in rows().items()} == {
        "lcm-lora-sdv1-5": FAST_LORAS["sd15"], "lcm-lora-sdxl": FAST_LORAS["sdxl"]}
    assert not rows()["lcm-lora-sdv1-5"]["present"]
    snapshot = install_in_hub_cache(Path(tiny["lcm"]), hub_cache, LCM_SD15)
    listed = rows()
    assert listed["lcm-lora-sdv1-5"]["path"] == str(snapshot) and not listed["lcm-lora-sdxl"]["present"]


def test_cli_replace_fast_and_missing_lcm_lora(tiny, hub_cache, tmp_path, cli):
    src = tmp_path / "in.png"
    image = scene()[0]
    Image.fromarray(image).save(src)
    out = tmp_path / "out.png"
    args = ["replace", src, "--rect", ",".join(map(str, RECT)), "--prompt", "a red rose", "--model", tiny["sd9"],
            "--segmenter", "classical", "--dtype", "fp32", "--fast", "--seed", "3"]
    r = cli(*args, "-o", out)
    assert r.code == 3 and f"hf download {LCM_SD15}" in r.err and not out.exists(), r.err
    install_in_hub_cache(Path(tiny["lcm"]), hub_cache, LCM_SD15)
    r = cli(*args, "--json", "-o", out)
    assert r.code == 0, r.err
    rec = json.loads(r.out)
    assert rec["fast"] is True and rec["steps"] == 4 and rec["guidance"] == 1.0 and rec["lora"] == [LCM_SD15]
    first = np.asarray(Image.open(out))
    alpha = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = rec["bbox"]
    alpha[y0:y1, x0:x1] = True
    assert np.array_equal(first[~alpha], image[~alpha]) and not np.array_equal(first[alpha], image[alpha])
    out2 = tmp_path / "out2.png"
    assert cli(*args, "-o", out2).code == 0
    assert np.array_equal(np.asarray(Image.open(out2)), first)  # same seed, same pixels
    # the Python API: the same pipeline, the same pixels
    from autoinpaint import replace

    result = replace(image, "a red rose", rects=[RECT], model=tiny["sd9"], segmenter="classical", dtype="fp32",
                     fast=True, seed=3)
    assert np.array_equal(result, first)


def test_recipe_keys_lora_scheduler_fast(tmp_path):
    from autoinpaint.batch import iter_tasks

    Image.fromarray(gradient_photo(40, 30)).save(tmp_path / "p.png")
    recipe = tmp_path / "r.csv"
    recipe.write_text('input,rect,action,prompt,lora,scheduler,fast\n'
                      'p.png,"1,1,20,20",replace,a rose,a/b:0.5; c/d,tcd,yes\n'
                      'p.png,"1,1,20,20",replace,a rose,,,\n')
    fast, plain = iter_tasks(recipe, tmp_path / "out")
    assert fast.options.lora == ("a/b:0.5", "c/d") and fast.options.scheduler == "tcd" and fast.options.fast
    assert plain.options.lora == () and not plain.options.fast
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(json.dumps({"input": "p.png", "rect": [1, 1, 20, 20], "action": "replace", "prompt": "x",
                                 "lora": ["a/b"], "fast": True}) + "\n"
                     + json.dumps({"input": "p.png", "rect": [1, 1, 20, 20], "fast": "maybe"}) + "\n")
    good, bad = iter_tasks(jsonl, tmp_path / "out")
    assert good.options.lora == ("a/b",) and good.options.fast
    assert bad.error and "fast" in bad.error
    assert good.param_hash != good.__class__(**{**good.__dict__,
                                                "options": good.options.replace(fast=False)}).param_hash
