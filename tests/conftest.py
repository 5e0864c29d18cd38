"""Shared fixtures: generated photos with known ground truth, and an in-process CLI runner."""
from __future__ import annotations

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


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``autoinpaint ARGS`` in-process through the real entry point; returns code, stdout, stderr."""
    from autoinpaint.cli import run

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            run([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


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


def pytest_addoption(parser):
    parser.addoption("--fuzz-cases", type=int, default=None,
                     help="mutations per input in tests/test_fuzz.py (default 24, or $AUTOINPAINT_FUZZ_CASES)")


@pytest.fixture(scope="session")
def fuzz_cases(request) -> int:
    import os

    value = request.config.getoption("--fuzz-cases") or os.environ.get("AUTOINPAINT_FUZZ_CASES")
    return int(value) if value else 24
