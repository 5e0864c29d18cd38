"""Every corrupt input is a clean error (issue 12, item 2): a seeded fuzz run through the real command
line (in-process) over PNG, JPEG, WebP, TIFF, GIF and BMP inputs, mask files and batch recipes.

Each image case must end with exit code 2 and one ``Error:`` line and nothing written, or with exit 0
and an output that decodes fully and keeps every pixel outside the mask: never exit 1, never a
traceback, never a temporary file left behind. ``--fuzz-cases N`` (or ``AUTOINPAINT_FUZZ_CASES``) sets
the mutations per input (default 24: about 500 cases in ~30 s); ``-s`` prints the outcome counts.
"""
from __future__ import annotations

import collections
import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from autoinpaint.imaging.image_io import load_image
from conftest import gradient_photo

W, H = 32, 24


@pytest.fixture
def cli(capfd):
    """Like conftest's ``cli``, capturing at the file-descriptor level: what C libraries (libpng,
    libtiff, OpenCV) print counts too."""
    from conftest import cli_runner

    return cli_runner(capfd)


ARGS = ["--rect", "4,4,12,12", "--inpainter", "telea", "--dilate", "1", "--feather", "0", "-q"]
LOSSLESS = {"PNG", "TIFF", "GIF", "BMP"}


def _pil(array, mode=None, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, fmt, **kw)
    return buf.getvalue()


def _cv2_16(channels: int, ext: str = ".png") -> bytes:
    a = gradient_photo(W, H, channels, np.uint16)
    ok, buf = cv2.imencode(ext, a[..., 0] if channels == 1 else cv2.cvtColor(a, cv2.COLOR_RGB2BGR))
    return buf.tobytes()


def seeds() -> dict[str, tuple[str, bytes]]:
    """One small valid file per format and mode: name -> (suffix, bytes)."""
    rgb, rgba, grey = gradient_photo(W, H), gradient_photo(W, H, 4), gradient_photo(W, H, 1)[..., 0]
    grey16 = gradient_photo(W, H, 1, np.uint16)[..., 0]
    return {
        "png-L": (".png", _pil(grey)), "png-RGB": (".png", _pil(rgb)), "png-RGBA": (".png", _pil(rgba)),
        "png-16grey": (".png", _cv2_16(1)), "png-16RGB": (".png", _cv2_16(3)),
        "jpeg-L": (".jpg", _pil(grey, fmt="JPEG")), "jpeg-RGB": (".jpg", _pil(rgb, fmt="JPEG", quality=85)),
        "webp-RGB": (".webp", _pil(rgb, fmt="WEBP", lossless=True)),
        "webp-RGBA": (".webp", _pil(rgba, fmt="WEBP", quality=80)),
        "tiff-L": (".tif", _pil(grey, fmt="TIFF")), "tiff-RGB": (".tif", _pil(rgb, fmt="TIFF", compression="tiff_lzw")),
        "tiff-RGBA": (".tif", _pil(rgba, fmt="TIFF")), "tiff-16grey": (".tif", _pil(grey16, fmt="TIFF")),
        "tiff-16RGB": (".tif", _cv2_16(3, ".tif")),
        "gif-P": (".gif", _pil(rgb, fmt="GIF")),
        "bmp-RGB": (".bmp", _pil(rgb, fmt="BMP")), "bmp-L": (".bmp", _pil(grey, fmt="BMP")),
    }


# -------------------------------------------------------------------------------------------- mutations


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_block(data: bytes, fmt: str, kind: str, payload: bytes) -> bytes | None:
    """``data`` with an ICC or EXIF block holding ``payload`` (empty, huge or garbage), or None where the
    format has no such block."""
    if fmt == "PNG":
        chunk = (_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(payload)) if kind == "icc"
                 else _png_chunk(b"eXIf", payload))
        return data[:33] + chunk + data[33:]
    if fmt == "JPEG":
        if kind == "exif":
            body = b"Exif\x00\x00" + payload[:65000]
            return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]
        segs, step = [], 65000
        parts = [payload[i:i + step] for i in range(0, max(len(payload), 1), step)] or [b""]
        for i, part in enumerate(parts[:255]):
            body = b"ICC_PROFILE\x00" + bytes([i + 1, min(len(parts), 255)]) + part
            segs.append(b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body)
        return data[:2] + b"".join(segs) + data[2:]
    if fmt in ("WEBP", "TIFF"):
        im = Image.open(io.BytesIO(data))
        buf = io.BytesIO()
        kw = {"lossless": True} if fmt == "WEBP" else {}
        try:
            im.save(buf, fmt, **({"icc_profile": payload} if kind == "icc" else {"exif": payload}), **kw)
        except Exception:  # noqa: BLE001 - PIL refuses to write this block: not a case
            return None
        return buf.getvalue()
    return None


def mutations(data: bytes, fmt: str, n: int, rng: np.random.Generator):
    """Seeded mutations of a valid file: (label, bytes)."""
    size = len(data)
    offsets = sorted({*rng.integers(1, size, max(1, n // 3)).tolist(), 8, 16, 33, min(600, size - 1), size // 2,
                      size - 1})
    for k in offsets:
        yield "truncate", data[:k]
    head = min(64, size)
    for _ in range(max(1, n // 3)):
        b = bytearray(data)
        for pos in rng.integers(0, head, rng.integers(1, 4)):
            b[pos] ^= int(rng.integers(1, 256))
        yield "flip-header", bytes(b)
    for _ in range(max(1, n // 3)):
        b = bytearray(data)
        for pos in rng.integers(head, size, rng.integers(1, 9)) if size > head else []:
            b[pos] ^= int(rng.integers(1, 256))
        yield "flip-data", bytes(b)
    big = rng.integers(0, 256, 2_000_000, dtype=np.uint8).tobytes()
    for kind in ("icc", "exif"):
        for label, payload in (("empty", b""), ("huge", big), ("garbage", big[:3000])):
            out = with_block(data, fmt, kind, payload)
            if out is not None:
                yield f"{kind}-{label}", out


def check_run(cli, folder: Path, src: Path, out: Path, *extra: str, reference: np.ndarray | None = None,
              lossless: bool = True) -> int:
    """Run ``remove`` and check the outcome rules; returns the exit code."""
    alpha = folder / "alpha.png"
    r = cli("remove", src, *ARGS, *extra, "-o", out, "--mask-out", alpha)
    assert r.code in (0, 2), f"exit {r.code}: {r.err}"
    assert "Traceback" not in r.err and "Warning:" not in r.err.replace("Warning: the mask", "")
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers
    if r.code == 2:
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.err
        assert not out.exists() and not alpha.exists()
        return 2
    assert r.err == "", r.err
    with Image.open(out) as im:
        im.load()                                       # the output decodes fully
    result, _ = load_image(out)
    keep = np.asarray(Image.open(alpha)) == 0
    assert reference is not None and result.shape[:2] == reference.shape[:2] == keep.shape
    if lossless:  # the same lossless format: bit-identical outside the mask, in the file
        assert np.array_equal(result[keep], reference[keep])
    return 0


@pytest.fixture(scope="module")
def outcomes():
    table = collections.defaultdict(collections.Counter)
    yield table
    if table:
        print("\n| input | cases | exit 0 | exit 2 |\n|---|---|---|---|")
        for name, c in sorted(table.items()):
            print(f"| {name} | {sum(c.values())} | {c[0]} | {c[2]} |")
        total = collections.Counter()
        for name, c in table.items():
            if "(" not in name:
                total.update(c)
        print(f"| **all** | {sum(total.values())} | {total[0]} | {total[2]} |")


SEEDS = seeds()


@pytest.mark.parametrize("name", list(SEEDS))
def test_corrupt_image_is_a_clean_error(cli, tmp_path, fuzz_cases, outcomes, name):
    suffix, data = SEEDS[name]
    fmt = Image.open(io.BytesIO(data)).format
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    cases = list(mutations(data, fmt, fuzz_cases, rng))
    wrong = {".png": ".jpg", ".jpg": ".png", ".webp": ".tif", ".tif": ".gif", ".gif": ".bmp", ".bmp": ".webp"}
    cases.append(("wrong-extension", data))
    for i, (label, blob) in enumerate(cases):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        ext = wrong[suffix] if label == "wrong-extension" else suffix
        src, out = folder / f"in{ext}", folder / f"out{ext}"
        src.write_bytes(blob)
        try:
            reference, info = load_image(src)
        except ValueError:
            reference, info = None, None
        lossless = info is not None and info.format in LOSSLESS and Path(out).suffix == suffix \
            and info.format != "WEBP"
        code = check_run(cli, folder, src, out, reference=reference, lossless=lossless)
        outcomes[name][code] += 1
        outcomes[f"{name} ({label.split('-')[0]})"][code] += 1
    assert outcomes[name][0] >= 1  # the wrong extension (at least) still works


def test_corrupt_mask_file_is_a_clean_error(cli, tmp_path, fuzz_cases, outcomes):
    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_photo(W, H)).save(photo)
    reference, _ = load_image(photo)
    sel = np.zeros((H, W), np.uint8)
    sel[5:11, 5:11] = 255
    for name, data in (("mask-png", _pil(sel)), ("mask-jpeg", _pil(sel, fmt="JPEG")),
                       ("mask-tiff", _pil(sel, fmt="TIFF"))):
        fmt = Image.open(io.BytesIO(data)).format
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        for i, (label, blob) in enumerate(mutations(data, fmt, fuzz_cases, rng)):
            folder = tmp_path / f"{name}{i}"
            folder.mkdir()
            mask = folder / f"mask.{fmt.lower()}"
            mask.write_bytes(blob)
            out, alpha = folder / "out.png", folder / "alpha.png"
            r = cli("remove", photo, "--mask", mask, "--inpainter", "telea", "--dilate", "1", "--feather", "0",
                    "-q", "-o", out, "--mask-out", alpha)
            assert r.code in (0, 2), r.err
            assert "Traceback" not in r.err and [p.name for p in folder.iterdir() if p.suffix == ".tmp"] == []
            if r.code == 2:
                assert len(r.err.strip().splitlines()) == 1 and r.err.startswith("Error: ") and not out.exists()
            else:
                result, _ = load_image(out)
                keep = np.asarray(Image.open(alpha)) == 0
                assert np.array_equal(result[keep], reference[keep])
            outcomes[name][r.code] += 1


# ------------------------------------------------------------------------------------------------ recipes


@pytest.fixture(scope="module")
def recipe_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    (root / "in").mkdir()
    for name in ("plain.png", "fötö bild.png", "写真 1.png"):
        Image.fromarray(gradient_photo(W, H)).save(root / "in" / name)
    (root / "in" / "broken.png").write_bytes(_pil(gradient_photo(W, H))[:60])
    return root


GOOD_ROWS = [{"input": "in/plain.png", "rects": [[4, 4, 12, 12]]},
             {"input": "in/fötö bild.png", "rects": "4,4,12,12"},
             {"input": "in/写真 1.png", "rect": [4, 4, 12, 12], "output": "{stem} out{ext}"}]
BAD_JSONL = [b'{"input": "in/plain.png", "rects": [[4, 4, 12, 12]]',                 # unclosed
             b'{"input": "in/\xff\xfe.png", "rects": [[4, 4, 12, 12]]}',           # not UTF-8
             b'{"input": "' + b"a" * 10_000_000 + b'.png", "rects": [[4, 4, 12, 12]]}',  # a 10 MB line
             b"[" * 100_000,                                                         # nested too deeply
             b'["in/plain.png"]',                                                    # not an object
             b'{"input": "in/plain.png", "rects": [[4, 4, "x", 12]]}',               # bad coordinates
             b'{"input": "in/plain.png", "rects": [[4, 4, 12, 12]], "dilate": {"a": 1}}',  # bad option
             b'{"input": "in/nul\\u0000byte.png", "rects": [[4, 4, 12, 12]]}',        # a NUL in the path
             b'{"input": "in/broken.png", "rects": [[4, 4, 12, 12]]}',               # a corrupt image
             b'{"input": "in/missing .png", "rects": [[4, 4, 12, 12]]}']             # no such file


def _run_batch(cli, recipe: Path, outdir: Path) -> tuple[int, list[dict], str]:
    r = cli("batch", recipe, "-o", outdir, "--workers", "1", "--inpainter", "telea", "--dilate", "1",
            "--feather", "0", "-q")
    assert "Traceback" not in r.err
    records = [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]
    return r.code, records, r.err


def _check_batch(code, records, n_bad, outdir):
    assert code == 1                                   # some rows failed: documented exit code 1
    done = [r for r in records if r["status"] == "done"]
    failed = [r for r in records if r["status"] == "failed"]
    assert len(done) == len(GOOD_ROWS) and len(failed) == n_bad, [(r["line"], r["error"]) for r in failed]
    for rec in failed:
        assert rec["error"] and "unexpected" not in rec["error"] and len(rec["error"]) < 1000, rec["error"][:300]
    for rec in done:
        assert Path(rec["output"]).exists()
    assert not [p for p in outdir.rglob("*.tmp")]


def test_malformed_jsonl_rows_are_recorded_and_the_batch_goes_on(cli, recipe_images):
    recipe = recipe_images / "recipe.jsonl"
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in GOOD_ROWS[:1]] + BAD_JSONL \
        + [json.dumps(r, ensure_ascii=False).encode() for r in GOOD_ROWS[1:]]
    recipe.write_bytes(b"\n".join(lines) + b"\n")
    outdir = recipe_images / "out-jsonl"
    code, records, _ = _run_batch(cli, recipe, outdir)
    _check_batch(code, records, len(BAD_JSONL), outdir)
    errors = {r["line"]: r["error"] for r in records if r["status"] == "failed"}
    assert "UTF-8" in errors[3] and "over the limit" in errors[4] and "nested" in errors[5]


def test_malformed_csv_rows_are_recorded_and_the_batch_goes_on(cli, recipe_images):
    recipe = recipe_images / "recipe.csv"
    rows = [b"input,rects,output",
            "in/plain.png,\"4,4,12,12\",".encode(),
            b"in/\xff.png,\"4,4,12,12\",",                          # not UTF-8
            b"in/plain.png,\"" + b"4" * 10_000_000 + b"\",",       # a 10 MB field
            b"in/plain.png,4,4,12,12,too,many",                    # more cells than columns
            b"in/plain.png,\"4,4,x,12\",",                          # bad coordinates
            b"in/broken.png,\"4,4,12,12\",",                        # a corrupt image
            "in/fötö bild.png,\"4,4,12,12\",".encode(),
            "in/写真 1.png,\"4,4,12,12\",{stem} out{ext}".encode()]
    recipe.write_bytes(b"\n".join(rows) + b"\n")
    outdir = recipe_images / "out-csv"
    code, records, _ = _run_batch(cli, recipe, outdir)
    _check_batch(code, records, 5, outdir)


def test_malformed_yaml_rows_are_recorded_and_the_batch_goes_on(cli, recipe_images):
    recipe = recipe_images / "recipe.yaml"
    text = ("- input: in/plain.png\n  rects: [[4, 4, 12, 12]]\n"
            "- input: in/plain.png\n  rects: [[4, 4, 12, 12\n"           # a broken row
            "- {input: in/plain.png, rects: [[4, 4, 12, 12]], dilate: lots}\n"
            "- !!python/object:os.system {input: x}\n"                    # a tag the safe loader refuses
            "- input: in/fötö bild.png\n  rects: '4,4,12,12'\n").encode()
    text += b"- input: in/\xff.png\n  rects: '4,4,12,12'\n"              # not UTF-8
    text += b"- input: in/" + b"b" * 10_000_000 + b".png\n"               # a 10 MB line
    text += "- input: in/写真 1.png\n  rect: [4, 4, 12, 12]\n  output: '{stem} out{ext}'\n".encode()
    recipe.write_bytes(text)
    outdir = recipe_images / "out-yaml"
    code, records, _ = _run_batch(cli, recipe, outdir)
    _check_batch(code, records, 5, outdir)
