"""Shared fixtures: generated photos with known ground truth, and an in-process CLI runner."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # scenes.py: synthetic photos with ground truth


@pytest.fixture(autouse=True)
def notices_on_stderr():
    """Notices on stderr as the CLI shows them, whatever an earlier test or pytest's logging plugin set."""
    from autoinpaint.log import configure

    configure(quiet=False)
    yield


@pytest.fixture(autouse=True)
def decoder_runtime_torch(monkeypatch):
    """``--runtime auto`` means PyTorch in the tests (an ONNX export of a decoder costs seconds, per
    test home); tests/test_onnx_decoder.py runs every family on ONNX Runtime and compares."""
    monkeypatch.setenv("AUTOINPAINT_RUNTIME", "torch")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models are latency-bound: intra-op threads only spin (10× slower on a busy 2-core box). A module
    opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def offline_models(tmp_path, monkeypatch):
    """No model present and none downloadable: an empty ``$AUTOINPAINT_HOME`` (with its ``checkpoints/``) and
    Hugging Face cache, offline; the process's model store and in-memory embeddings emptied before and after.
    Yields ``tmp_path`` (the home is ``tmp_path / "home"``, the hub cache ``tmp_path / "hf" / "hub"``)."""
    import huggingface_hub.constants as hf_constants

    from autoinpaint.models import embedding_cache
    from autoinpaint.models.store import default_store

    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUTOINPAINT_CACHE", raising=False)
    monkeypatch.delenv("AUTOINPAINT_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    (tmp_path / "home" / "checkpoints").mkdir(parents=True)
    embedding_cache._MEMORY.clear()
    default_store().clear()
    yield tmp_path
    embedding_cache._MEMORY.clear()
    default_store().clear()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def cli_runner(capture):
    """``invoke(*args) -> CliResult``: run ``autoinpaint ARGS`` in-process through the real entry point,
    reading stdout and stderr from pytest's ``capture`` fixture (capsys, or capfd for C libraries' output)."""
    from autoinpaint.cli import run

    def invoke(*args: str) -> CliResult:
        capture.readouterr()
        try:
            run([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capture.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def cli(capsys):
    """Run ``autoinpaint ARGS`` in-process through the real entry point; returns code, stdout, stderr."""
    return cli_runner(capsys)


class Payload:
    """A pickled object whose unpickling creates the folder ``marker``: proof that a load ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def save_malicious_pickle(path: Path, tensors: dict, marker: Path) -> Path:
    """``torch.save`` of ``tensors`` (named like real weights) beside a :class:`Payload`."""
    import torch

    torch.save({**tensors, "x": Payload(marker)}, path)
    return path


def gradient_photo(w: int, h: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A smooth photo-like gradient with mild noise, H×W×C of ``dtype``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = [xx / w, yy / h, (xx + yy) / (w + h), 0.5 + 0.5 * np.sin(xx / 37.0)][:channels]
    img = np.stack(chans, axis=2) * 0.8 + 0.1 + rng.normal(0, 0.01, (h, w, channels))
    top = np.iinfo(dtype).max
    return np.clip(img * top, 0, top).astype(dtype)


@pytest.fixture
def sticker_jpeg(tmp_path) -> tuple[Path, object]:
    """A 640×480 catalogue photo (product + price sticker) saved as JPEG q85; returns (path, scene)."""
    import scenes
    from PIL import Image

    scene = scenes.sticker_scene(640, 480, np.random.default_rng(3))
    path = tmp_path / "catalogue.jpg"
    Image.fromarray(scene.image).save(path, quality=85, subsampling=2)
    return path, scene


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto in server mode) on 127.0.0.1 for the session; the usual AWS_*
    variables point every client at it: s3fs here, the CLI in subprocesses, Ray workers started later."""
    import logging
    import os

    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    saved = {k: os.environ.get(k) for k in [*env, "AWS_PROFILE"]}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(env)
    try:
        yield env["AWS_ENDPOINT_URL"]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture(scope="session")
def ray_session(s3_server):
    """One local Ray for every Ray test of the session (start-up is slow); its workers see the S3
    server. Yields the address a CLI subprocess joins with --ray-address."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from autoinpaint.batch.ray_engine import init_ray, shutdown

    init_ray(None, workers=2, cpus_per_worker=1.0, gpus_per_worker=0.0)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        shutdown()


def pytest_addoption(parser):
    parser.addoption("--fuzz-cases", type=int, default=None,
                     help="mutations per input in tests/test_fuzz.py (default 24, or $AUTOINPAINT_FUZZ_CASES)")


@pytest.fixture(scope="session")
def fuzz_cases(request) -> int:
    import os

    value = request.config.getoption("--fuzz-cases") or os.environ.get("AUTOINPAINT_FUZZ_CASES")
    return int(value) if value else 24
