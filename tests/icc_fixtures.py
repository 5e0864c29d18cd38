"""A small but real CMYK ICC profile (v2 output profile, Lab PCS, lut16 A2B0/B2A0 tags), built here
because no CMYK profile ships with the test environment. LittleCMS (PIL.ImageCms) accepts it."""
from __future__ import annotations

import struct

import numpy as np

_D50 = np.array([0.9642, 1.0, 0.8249])
_RGB2XYZ_D50 = np.array([[0.4360747, 0.3850649, 0.1430804],   # sRGB primaries, Bradford-adapted to D50
                         [0.2225045, 0.7168786, 0.0606169],
                         [0.0139322, 0.0971045, 0.7141733]])


def _lab_from_rgb(rgb: np.ndarray) -> np.ndarray:
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB2XYZ_D50.T / _D50
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _rgb_from_lab(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f ** 3 > 216 / 24389, f ** 3, (116 * f - 16) * 27 / 24389) * _D50
    lin = np.clip(xyz @ np.linalg.inv(_RGB2XYZ_D50).T, 0, 1)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def _lab16(lab: np.ndarray) -> np.ndarray:  # ICC v2 16-bit Lab encoding
    return np.stack([np.clip(lab[..., 0] * 65280 / 100, 0, 65535),
                     np.clip((lab[..., 1] + 128) * 256, 0, 65535),
                     np.clip((lab[..., 2] + 128) * 256, 0, 65535)], -1).round().astype(">u2")


def _lut16(n_in: int, n_out: int, grid: int, table: np.ndarray) -> bytes:
    ident = np.eye(3).flatten() * 65536
    head = b"mft2" + b"\0" * 4 + struct.pack(">BBBB", n_in, n_out, grid, 0)
    head += struct.pack(">9i", *ident.astype(int)) + struct.pack(">HH", 2, 2)
    curve = np.array([0, 65535], ">u2").tobytes()
    return head + curve * n_in + table.astype(">u2").tobytes() + curve * n_out


def _tag_text(text: str) -> bytes:
    return b"text" + b"\0" * 4 + text.encode() + b"\0"


def _tag_desc(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * 4 + b"\0" * 4 + b"\0" * 3 + b"\0" * 67


def cmyk_profile() -> bytes:
    """Bytes of an ICC profile for naive CMYK ink on an sRGB display (device CMYK ↔ Lab D50)."""
    g = 9
    v = np.linspace(0, 1, g)
    c, m, y, k = np.meshgrid(v, v, v, v, indexing="ij")
    rgb = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], -1).reshape(-1, 3)
    a2b = _lab16(_lab_from_rgb(rgb))
    g3 = 17
    u = np.linspace(0, 1, g3)
    L, A, B = np.meshgrid(u * 100, u * 255 - 128, u * 255 - 128, indexing="ij")
    rgb = _rgb_from_lab(np.stack([L, A, B], -1).reshape(-1, 3))
    kk = 1 - rgb.max(axis=1)
    denom = np.where(kk < 1, 1 - kk, 1)
    cmy = (1 - rgb - kk[:, None]) / denom[:, None]
    b2a = (np.clip(np.concatenate([cmy, kk[:, None]], 1), 0, 1) * 65535).round()
    tags = [(b"desc", _tag_desc("autoinpaint test CMYK")), (b"cprt", _tag_text("public domain")),
            (b"wtpt", b"XYZ " + b"\0" * 4 + struct.pack(">3i", *(np.round(_D50 * 65536).astype(int)))),
            (b"A2B0", _lut16(4, 3, g, a2b)), (b"B2A0", _lut16(3, 4, g3, b2a))]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"prtr" + b"CMYK" + b"Lab "
    header += b"\0" * 12 + b"acsp" + b"APPL" + b"\0" * 4 + b"\0" * 8 + b"\0" * 8 + struct.pack(">I", 0)
    header += struct.pack(">3i", *(np.round(_D50 * 65536).astype(int))) + b"lcms" + b"\0" * 44
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + data
