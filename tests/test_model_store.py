"""The one model store (issue 20, item 2): bounded by bytes, least recently used dropped first, the newest
never; an evicted diffusion pipeline is freed; one load per store however many steps ask; the store is
handed in by the CLI, the server and each batch worker; one ``resolve_auto(kind)``; one autocast helper.
Tiny random-weight models through the real loaders. Offline."""
from __future__ import annotations

import gc
import io
import shutil
import sys
import time
import types
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import gradient_photo  # noqa: E402

from autoinpaint import EditOptions, Selection  # noqa: E402
from autoinpaint.errors import InputError  # noqa: E402
from autoinpaint.models.store import (ENV_BUDGET, ModelStore, default_budget, default_store,  # noqa: E402
                                      footprint, model_bytes)


def linear(n: int, seed: int = 0) -> "torch.nn.Module":
    """A module of exactly ``n * n * 4 + n * 4`` bytes (fp32 weight and bias)."""
    torch.manual_seed(seed)
    return torch.nn.Linear(n, n)


def size_of(n: int) -> int:
    return (n * n + n) * 4


@pytest.fixture
def home(offline_models):
    """Empty $AUTOINPAINT_HOME and Hugging Face cache: no model is present."""
    return offline_models / "home"


# ------------------------------------------------------------------------------------------ sizes, bound
def test_footprint_counts_modules_inside_wrappers_once_and_onnx_files(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    shared = linear(16)
    wrapper = types.SimpleNamespace(model=shared, graphs={"a": torch.nn.Sequential(shared)},
                                    embedding=torch.zeros(1000), pixels=np.zeros(1000))
    assert model_bytes(shared) == size_of(16)
    assert model_bytes(wrapper) == size_of(16)  # the same tensors twice: once; loose tensors/arrays: not models
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    wrapper.sessions = {("v", 0): ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])}
    assert model_bytes(wrapper) == size_of(16) + path.stat().st_size
    assert ("file", str(path.resolve())) in footprint(wrapper)


def test_byte_bound_and_least_recently_used_order():
    store = ModelStore(max_bytes=3 * size_of(32) + 10)
    for name in "abc":
        store.get(name, lambda name=name: linear(32, ord(name)))
    assert store.keys() == ["a", "b", "c"] and store.loads == 3 and store.nbytes == 3 * size_of(32)
    first = store.get("a", lambda: pytest.fail("loaded twice"))  # a hit: now the most recently used
    assert store.keys() == ["b", "c", "a"] and store.loads == 3
    store.get("d", lambda: linear(32, 4))  # 4 models > the bound: the least recently used (b) goes
    assert store.keys() == ["c", "a", "d"] and store.evictions == 1 and store.nbytes <= store.max_bytes
    assert store.get("a", lambda: pytest.fail("a was dropped")) is first
    store.get("big", lambda: linear(64))  # 4x one small model: everything older goes
    assert store.keys() == ["big"] and store.sizes() == {"big": size_of(64)}
    # shared tensors count once: a second entry on the same weights costs nothing more
    store = ModelStore(max_bytes=size_of(32) + 10)
    shared = store.get("base", lambda: linear(32))
    store.get("variant", lambda: torch.nn.Sequential(shared))
    assert store.keys() == ["base", "variant"] and store.nbytes == size_of(32)


def test_the_newest_model_is_never_evicted_even_over_the_budget():
    store = ModelStore(max_bytes=100)  # smaller than any model
    one = store.get("one", lambda: linear(32))
    assert store.keys() == ["one"] and store.nbytes > store.max_bytes  # held, alone
    store.get("two", lambda: linear(16))
    assert store.keys() == ["two"] and store.evictions == 1
    assert store.get("two", lambda: pytest.fail("reloaded")) is not one


def test_one_load_per_key_under_concurrency():
    from concurrent.futures import ThreadPoolExecutor

    store, calls = ModelStore(), []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return linear(8)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: store.get("k", slow), range(4)))
    assert len(calls) == 1 and store.loads == 1 and all(g is got[0] for g in got)


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_BUDGET, "1.5")
    assert default_budget() == int(1.5 * 2**20) and ModelStore().max_bytes == int(1.5 * 2**20)
    monkeypatch.setenv(ENV_BUDGET, "lots")
    with pytest.raises(InputError, match=ENV_BUDGET):
        ModelStore()
    monkeypatch.delenv(ENV_BUDGET)
    import os

    assert default_budget() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


# ---------------------------------------------------------------------------------------- diffusion
@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> str:
    pytest.importorskip("diffusers")
    from diffusion_fixtures import build_sd

    folder = tmp_path_factory.mktemp("tiny_sd") / "sd9"
    build_sd(9).save_pretrained(folder)
    return str(folder)


def test_evicting_a_diffusion_pipeline_frees_its_unet(tiny_sd):
    """The pipeline itself is the store's entry: once dropped (and no step holds its inpainter), its UNet
    is gone. Another scheduler on the same weights shares them (counted once), a second entry."""
    from autoinpaint.inpaint.diffusion import load_diffusion_inpainter

    store = ModelStore(max_bytes=10**9)
    inp = load_diffusion_inpainter(tiny_sd, device="cpu", dtype="fp32", store=store)
    unet = weakref.ref(inp.pipe.unet)
    size = store.nbytes
    assert store.loads == 1 and size == model_bytes(inp.pipe) > 0
    again = load_diffusion_inpainter(tiny_sd, device="cpu", dtype="fp32", store=store)
    assert again.pipe is inp.pipe and store.loads == 1  # the same pipeline: loaded once
    euler = load_diffusion_inpainter(tiny_sd, device="cpu", dtype="fp32", scheduler="euler", store=store)
    assert euler.pipe is not inp.pipe and euler.pipe.unet is inp.pipe.unet and store.nbytes == size
    (key, _), (euler_key, _) = store.sizes().items()
    assert key[:2] == ("inpainter", "diffusion") and euler_key[-1] == "euler"
    del inp, again, euler
    store.max_bytes = size_of(8)
    store.get("next", lambda: linear(8))  # a new model over the (now tiny) bound: both pipelines go
    assert store.keys() == ["next"] and store.evictions == 2
    gc.collect()
    assert unet() is None


# ------------------------------------------------------------------------------ one load, many steps
@pytest.fixture(scope="module")
def lama_file(tmp_path_factory) -> str:
    pytest.importorskip("spandrel")
    from lama_fixtures import build_lama, save_safetensors

    return str(save_safetensors(build_lama(), tmp_path_factory.mktemp("lama") / "tiny-lama.safetensors"))


def test_two_steps_asking_for_one_model_load_it_once(lama_file, home):
    """Two Inpaint steps on the same LaMa weights with other ``lama_max_side`` (and a Segment step twice):
    one network, one entry (no second, nested key), each step its own max_side."""
    from autoinpaint.api import inpaint_step, selection_steps

    store = ModelStore(max_bytes=10**10)
    o = EditOptions(inpainter=lama_file, dtype="fp32", device="cpu", segmenter="classical")
    first = inpaint_step("remove", o.replace(lama_max_side=64), store=store).inpainter
    second = inpaint_step("remove", o.replace(lama_max_side=32), store=store).inpainter
    assert first.network is second.network and (first.max_side, second.max_side) == (64, 32)
    (key,) = [k for k in store.keys() if k[:2] == ("inpainter", "lama")]
    assert store.loads == 1 and key[2] == str(Path(lama_file).resolve())
    assert store.sizes()[key] == model_bytes(first.network.model) > 50_000_000  # big-lama's shapes
    seg = [selection_steps(o, store)[-1].segmenter for _ in range(2)]
    assert seg[0] is seg[1] and store.loads == 2
    assert not default_store().keys() or all(k[2] != lama_file for k in default_store().keys())


# ------------------------------------------------------------------------------------------ resolve_auto
def test_resolve_auto_per_kind_gives_what_the_three_old_functions_gave(home, lama_file, monkeypatch):
    from sam_fixtures import save_sam_checkpoint

    from autoinpaint.models import checkpoints
    from autoinpaint.models import registry
    from autoinpaint.models.registry import resolve_auto

    # nothing present: the classical segmenter, the default detector, the classical inpainter
    assert resolve_auto("segmenter")[0] == "classical" and "models download vit_b" in resolve_auto("segmenter")[1]
    assert resolve_auto("detector") == ("omdet-turbo", "omdet-turbo (the default; not on this machine yet)")
    assert resolve_auto("inpainter")[0] == "hybrid" and resolve_auto("inpainter", mode="replace")[0] == "hybrid"
    # present weights: a SAM .pth stands as its path, LaMa by its name (for remove only)
    sam = save_sam_checkpoint(home / "checkpoints" / checkpoints.KNOWN["vit_b"].filename)
    shutil.copy(lama_file, home / "checkpoints" / "big-lama.safetensors")
    spec, why = resolve_auto("segmenter", "cpu")
    assert spec == str(sam) and why.startswith("vit_b (")
    assert resolve_auto("inpainter")[0] == "lama" and resolve_auto("inpainter", mode="replace")[0] == "hybrid"
    # a hub detector present: its name
    monkeypatch.setattr(registry.KnownModel, "location",
                        lambda self: "/hub/omdet" if self.name == "omdet-turbo" else None)
    assert resolve_auto("detector") == ("omdet-turbo", "omdet-turbo (/hub/omdet)")
    with pytest.raises(InputError, match="auto is not defined"):
        resolve_auto("lora")
    # the loaders resolve through it
    store = ModelStore()
    monkeypatch.setattr(registry.KnownModel, "location", lambda self: None)
    from autoinpaint.inpaint import load_inpainter
    from autoinpaint.segment import load_segmenter

    assert load_segmenter("auto", store).name == "classical" and load_inpainter("auto", store).name == "hybrid"


# ---------------------------------------------------------------------------------------------- autocast
def test_one_autocast_helper_for_both_sam_paths_is_right_for_every_cuda_index():
    from autoinpaint.models.device import autocast, autocast_args
    from autoinpaint.segment.hf_sam import HFSamSegmenter
    from autoinpaint.segment.sam import SamSegmenter

    assert autocast_args("cuda:1", "fp16") == ("cuda", "float16")  # the old .pth path said "cpu" here
    assert autocast_args("cuda", "bf16") == ("cuda", "bfloat16")
    assert autocast_args("cuda:0", "bf16") == ("cuda", "bfloat16")
    assert autocast_args("cpu", "bf16") == ("cpu", "bfloat16")
    for device, precision in (("cuda:1", "fp32"), ("cpu", "fp32"), ("mps", "fp16"), ("cpu", None)):
        assert autocast_args(device, precision) is None
    ctx = autocast("cpu", "bf16")
    assert isinstance(ctx, torch.autocast) and (ctx.device, ctx.fast_dtype) == ("cpu", torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available": the arguments are what is checked
        for cls in (SamSegmenter, HFSamSegmenter):
            made = cls._autocast(types.SimpleNamespace(device="cuda:1", precision="fp16"))
            assert isinstance(made, torch.autocast) and (made.device, made.fast_dtype) == ("cuda", torch.float16)
            assert not isinstance(cls._autocast(types.SimpleNamespace(device="mps", precision="fp16")),
                                  torch.autocast)


# ------------------------------------------------------------------------------- handed in by the owner
def photo_png(w: int = 160, h: int = 120) -> bytes:
    image = gradient_photo(w, h)
    image[40:80, 60:100] = (250, 245, 240)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def test_the_server_context_owns_the_store_its_clicks_load_into(monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from autoinpaint.server.app import create_app
    from autoinpaint.server.config import Limits

    default_store().clear()
    app = create_app(None, EditOptions(segmenter="classical", inpainter="telea"),
                     limits=Limits(model_memory=50 * 2**20), preload=False)
    ctx = app.state.context
    assert isinstance(ctx.store, ModelStore) and ctx.store.max_bytes == 50 * 2**20 and not ctx.store.keys()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        image = client.post("/api/images", files={"file": ("p.png", photo_png(), "application/octet-stream")}).json()
        r = client.post(f"/api/images/{image['id']}/mask", json={"points": [[80, 60]]})
        assert r.status_code == 200 and r.json()["segmenter"] == "classical"
        assert ("segmenter", "classical", "classical", ()) in ctx.store
        # an edit asking for "auto" gets the server's choice, not a second resolution
        r = client.post(f"/api/images/{image['id']}/edit",
                        json={"points": [[80, 60]], "action": "remove", "inpainter": "auto"})
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        for _ in range(400):
            if client.get(f"/api/jobs/{job}").json()["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
        assert client.get(f"/api/jobs/{job}/summary").json()["inpainter"] == "telea"
        assert ("inpainter", "classical", "telea", ()) in ctx.store
    assert not default_store().keys()  # nothing went to the process default
    assert not ctx.store.keys()  # the server let its models go when it stopped


def test_the_cli_hands_the_process_store_to_the_pipeline(cli, tmp_path, monkeypatch):
    from autoinpaint import api

    path = tmp_path / "p.png"
    path.write_bytes(photo_png())
    seen = []
    real = api.run_edit
    monkeypatch.setattr(api, "run_edit", lambda *a, **k: seen.append(k.get("store")) or real(*a, **k))
    default_store().clear()
    r = cli("mask", path, "--point", "80,60", "--segmenter", "classical", "-o", tmp_path / "m.png")
    assert r.code == 0, r.err
    assert seen == [default_store()] and ("segmenter", "classical", "classical", ()) in default_store()
    default_store().clear()


def test_each_batch_worker_owns_a_store(tmp_path):
    from autoinpaint.batch import worker
    from autoinpaint.batch.ray_engine import EditActor
    from autoinpaint.batch.recipe import Task

    path = tmp_path / "p.png"
    path.write_bytes(photo_png())
    default_store().clear()
    store = ModelStore()
    task = Task(line=1, input=str(path), selection=Selection(points=((80, 60),)), action="remove",
                options=EditOptions(segmenter="classical", inpainter="telea"), output=str(tmp_path / "o.png"))
    record = worker.execute_task(task, store)
    assert record["status"] == "done", record
    assert record["model_loads"] == 2 and len(store) == 2 and not default_store().keys()
    # a local-pool process makes its own in the initializer; a Ray actor holds its own (both bounded by
    # batch --model-memory)
    worker.init_worker(None, 3 * 2**20)
    try:
        made = worker.worker_store()
        assert isinstance(made, ModelStore) and made is not default_store() and made is not store
        assert made.max_bytes == 3 * 2**20
    finally:
        worker._PROCESS_STORE = None
    actors = EditActor(), EditActor(model_memory=2**20)
    assert isinstance(actors[0].store, ModelStore) and actors[0].store is not actors[1].store
    assert actors[1].store.max_bytes == 2**20


def test_batch_and_serve_take_a_model_memory_flag(cli, tmp_path, monkeypatch):
    import autoinpaint.batch as batch_package

    seen = {}

    def fake_run_batch(source, outdir, defaults, **kw):
        seen.update(kw)
        return {"failed": 0}

    monkeypatch.setattr(batch_package, "run_batch", fake_run_batch)
    (tmp_path / "in").mkdir()
    cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--model-memory", "64", "--rect", "1,1,5,5", "--json")
    assert seen["model_memory"] == 64 * 2**20
    r = cli("serve", "--model-memory", "-1")
    assert r.code == 2 and "--model-memory" in r.err
