"""What a weights file is, read cheaply and without torch: the tensor names in a safetensors header,
whether a torch zip archive is TorchScript or a pickle, and the bytes of its pickle (never unpickled).

The registry's ``claims`` functions use these to tell one family's files from another's in
milliseconds (a header, a zip directory and one record; no weights are read).
"""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

MAX_HEADER = 64 << 20  # a safetensors header this long is not one
MAX_PICKLE = 32 << 20  # bytes of a pickle record read to look for names


def safetensors_keys(path: str | Path) -> set[str] | None:
    """Tensor names of a safetensors file (from its JSON header), or None when it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                return None
            (length,) = struct.unpack("<Q", head)
            if not 2 <= length <= MAX_HEADER:
                return None
            header = json.loads(f.read(length))
    except (OSError, ValueError):
        return None
    return {k for k in header if k != "__metadata__"} if isinstance(header, dict) else None


def torch_archive_kind(path: str | Path) -> str | None:
    """``torchscript`` (a ``torch.jit.save`` archive: it carries code), ``pickle`` (a ``torch.save``
    zip archive), ``legacy`` (a pre-1.6 ``torch.save`` file: a bare pickle), or None."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile:
        try:
            with open(path, "rb") as f:
                return "legacy" if f.read(2) in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") else None
        except OSError:
            return None
    except OSError:
        return None
    if any(n.split("/")[1:2] == ["code"] for n in names) and any(n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "pickle"
    return None


def pickle_bytes(path: str | Path, limit: int = MAX_PICKLE) -> bytes:
    """The raw bytes of a torch file's pickle (``data.pkl`` of a zip archive, else the file's start),
    at most ``limit`` bytes; b"" when unreadable. Only searched for names, never unpickled."""
    try:
        with zipfile.ZipFile(path) as z:
            record = next((n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1), None)
            if record is None:
                return b""
            with z.open(record) as f:
                return f.read(limit)
    except zipfile.BadZipFile:
        pass
    except OSError:
        return b""
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return b""
