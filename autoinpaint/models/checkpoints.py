"""Known checkpoint files (SAM ``.pth``, LaMa's ``big-lama.pt``, ...): where they live, how to download
and verify them.

Checkpoints are looked for (and downloaded to) ``$AUTOINPAINT_HOME/checkpoints`` when
``AUTOINPAINT_HOME`` is set, else ``checkpoints/`` of the working directory and of the repository.
Downloads are resumable (HTTP ``Range``), SHA-256 verified and atomic: the file is written as
``NAME.part`` and renamed only once its size and digest match.

This module imports no torch, so ``autoinpaint models list`` stays fast.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import AutoinpaintError, InputError, ModelMissingError

_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable checkpoint file. ``size`` in bytes, ``sha256`` as lowercase hex; ``url``
    defaults to the Segment Anything release folder.

    md5: a second published digest (lowercase hex), checked too when given.
    converted, convert: for a file that can only be read by running code (TorchScript, full
        unpickling): the safetensors file it is converted to once, after its digests are verified, and
        the ``"module:function"`` that writes it (``function(source, dest) -> dest``). Every load reads
        the conversion.
    """

    name: str
    filename: str
    size: int
    sha256: str
    description: str = ""
    source_url: str | None = None
    md5: str | None = None
    converted: str | None = None
    convert: str | None = None

    @property
    def url(self) -> str:
        return self.source_url or _BASE_URL + self.filename


# Sizes and digests of the official Segment Anything release, as published by several independent
# projects (e.g. micro-sam's pooch registry); not re-downloaded here (no network).
KNOWN: dict[str, Checkpoint] = {c.name: c for c in (
    Checkpoint("vit_b", "sam_vit_b_01ec64.pth", 375_042_383,
               "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
               "SAM ViT-B, 91M parameters: fastest, recommended on CPU"),
    Checkpoint("vit_l", "sam_vit_l_0b3195.pth", 1_249_524_607,
               "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
               "SAM ViT-L, 308M parameters"),
    Checkpoint("vit_h", "sam_vit_h_4b8939.pth", 2_564_550_879,
               "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
               "SAM ViT-H, 636M parameters: best masks, slowest"),
    # big-lama as IOPaint distributes it (TorchScript). IOPaint publishes the MD5 (LAMA_MODEL_MD5 in
    # iopaint/model/lama.py); size and SHA-256 of the same file as published by several independent
    # projects that pin it; not re-downloaded here (no network). Both digests are checked.
    Checkpoint("lama", "big-lama.pt", 205_669_692,
               "344c77bbcb158f17dd143070d1e789f38a66c04202311ae3a258ef66667a9ea9",
               "LaMa big-lama (Apache-2.0), 51M parameters: learned object removal",
               "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt",
               md5="e3aa4aaa15225a33ec84f9f4bc47e500", converted="big-lama.safetensors",
               convert="autoinpaint.inpaint.lama_weights:convert_checkpoint"),
)}

def known(name: str) -> Checkpoint:
    """The registry entry for ``name`` (``vit_b``, ``vit_l``, ``vit_h``); InputError otherwise."""
    try:
        return KNOWN[name]
    except KeyError:
        raise InputError(f"unknown checkpoint {name!r}: choose one of {', '.join(KNOWN)}") from None


def search_dirs() -> list[Path]:
    """Directories searched for checkpoints, the download target first."""
    home = os.environ.get("AUTOINPAINT_HOME")
    if home:
        return [Path(home).expanduser() / "checkpoints", Path(home).expanduser()]
    dirs = [Path.cwd() / "checkpoints", Path(__file__).resolve().parents[1] / "checkpoints"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def find_checkpoint(name: str) -> Path | None:
    """Path of known checkpoint ``name`` in the checkpoint directories, or None."""
    filename = known(name).filename
    for directory in search_dirs():
        path = directory / filename
        if path.is_file():
            return path
    return None


def find_weights(name: str) -> Path | None:
    """The file loads read for known checkpoint ``name``: its safetensors conversion when one was
    written (:attr:`Checkpoint.converted`), else the downloaded file; None when neither is there."""
    ckpt = known(name)
    for directory in search_dirs():
        for filename in (ckpt.converted, ckpt.filename):
            if filename and (directory / filename).is_file():
                return directory / filename
    return None


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """The file's hex digest (SHA-256, or ``algorithm``: ``md5`` for a published MD5)."""
    digest = hashlib.new(algorithm, usedforsecurity=algorithm != "md5")
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, checkpoint: Checkpoint) -> str | None:
    """None when ``path`` has the expected size and SHA-256, else what is wrong."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != checkpoint.size:
        return f"size {size} bytes, expected {checkpoint.size} (truncated or a different file)"
    digest = file_digest(path)
    if digest != checkpoint.sha256:
        return f"SHA-256 {digest} does not match the expected {checkpoint.sha256}"
    md5 = file_digest(path, "md5") if checkpoint.md5 else None
    if md5 != checkpoint.md5:
        return f"MD5 {md5} does not match the published {checkpoint.md5}"
    return None


def download_file(url: str, dest: Path, size: int, sha256: str, progress: bool = True,
                  timeout: float = 30.0, md5: str | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request.

    The partial file is renamed to ``dest`` only when its size and SHA-256 (and ``md5`` when given)
    match; a mismatching download is deleted and raises AutoinpaintError (exit 1), as do network errors.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    digest = hashlib.sha256()
    if have:
        with open(part, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    if have < size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if have and response.status != 206:  # server ignored Range: start over
                    have, digest = 0, hashlib.sha256()
                with open(part, "ab" if have else "wb") as f, tqdm(
                        total=size, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=dest.name, disable=None if progress else True) as bar:
                    while block := response.read(1 << 16):
                        f.write(block)
                        digest.update(block)
                        bar.update(len(block))
                    f.flush()
                    os.fsync(f.fileno())
        except (urllib.error.URLError, OSError) as exc:
            raise AutoinpaintError(f"download of {url} failed: {exc}; run the same command again "
                                   f"to resume") from exc
    got = part.stat().st_size
    if got < size:
        raise AutoinpaintError(f"download of {url} stopped at {got} of {size} bytes; run the same "
                               "command again to resume")
    if got != size or digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise AutoinpaintError(f"download of {url} is corrupt ({got} bytes, SHA-256 "
                               f"{digest.hexdigest()}; expected {size} bytes, {sha256}); deleted")
    if md5 and file_digest(part, "md5") != md5:
        part.unlink(missing_ok=True)
        raise AutoinpaintError(f"download of {url} matches the SHA-256 but not the published MD5 {md5}; "
                               "deleted")
    os.replace(part, dest)
    return dest


def download(name: str, directory: Path | None = None, url: str | None = None,
             progress: bool = True) -> Path:
    """Download known checkpoint ``name`` into ``directory`` (default: the first search dir).
    A file already there and verified is kept as it is. A checkpoint with a conversion
    (:attr:`Checkpoint.converted`) is converted once after verification; the conversion's path is
    returned (and nothing is fetched when it is already there)."""
    ckpt = known(name)
    folder = Path(directory or search_dirs()[0])
    if ckpt.converted and (folder / ckpt.converted).is_file():
        return folder / ckpt.converted
    dest = folder / ckpt.filename
    if not (dest.is_file() and verify(dest, ckpt) is None):
        download_file(url or ckpt.url, dest, ckpt.size, ckpt.sha256, progress=progress, md5=ckpt.md5)
    return convert(name, dest)


def convert(name: str, path: Path) -> Path:
    """Run known checkpoint ``name``'s conversion on ``path`` (a verified copy of it), once: the
    converted file beside it; ``path`` itself when it has none."""
    ckpt = known(name)
    if not ckpt.convert:
        return Path(path)
    module, _, function = ckpt.convert.partition(":")
    return getattr(importlib.import_module(module), function)(Path(path), Path(path).with_name(ckpt.converted))


def status() -> list[dict]:
    """One JSON-friendly row per known checkpoint: name, file, size, sha256, url, path (or None)."""
    rows = []
    for ckpt in KNOWN.values():
        path = find_checkpoint(ckpt.name)
        rows.append({"name": ckpt.name, "file": ckpt.filename, "size": ckpt.size,
                     "sha256": ckpt.sha256, "url": ckpt.url, "description": ckpt.description,
                     "path": str(path) if path else None})
    return rows


def missing_error(what: str, name: str = "vit_b") -> ModelMissingError:
    """The error for an absent checkpoint, naming where it was looked for and how to get it."""
    dirs = ", ".join(str(d) for d in search_dirs())
    return ModelMissingError(f"{what} (looked in {dirs}); get one with: "
                             f"autoinpaint models download {name}")
