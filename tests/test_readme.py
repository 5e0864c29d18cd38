"""The README's examples run as written (Python blocks, and the `autoinpaint` command lines)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
COMMANDS = [c.strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)
            for c in block.replace("\\\n", " ").splitlines() if c.startswith(".venv/bin/autoinpaint")]


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    (tmp_path / "outputs").mkdir()
    return tmp_path


def test_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 2 and len(COMMANDS) >= 4
    assert "make demo" in README and "make test" in README


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[f"python{i}" for i in range(len(PYTHON_BLOCKS))])
def test_python_example_runs(workdir, code):
    r = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert any((workdir / "outputs").iterdir())


@pytest.mark.parametrize("command", COMMANDS, ids=[f"cli{i}" for i in range(len(COMMANDS))])
def test_cli_example_runs(workdir, command):
    args = shlex.split(command)[1:]  # drop ".venv/bin/autoinpaint"
    r = subprocess.run([sys.executable, "-m", "autoinpaint", *args], cwd=workdir, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "AUTOINPAINT_HOME": str(workdir / "home")})
    assert r.returncode == 0, r.stderr
    out = args[args.index("-o") + 1]
    assert (workdir / out).stat().st_size > 0
