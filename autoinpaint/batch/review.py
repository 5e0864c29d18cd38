"""The review queue of a batch: the rows whose mask is in doubt (:mod:`autoinpaint.mask.assess`), listed in
``OUTDIR/review.html`` with the input, the mask over it and the result side by side, so a person
checks only those.

* A worker makes three small JPEG thumbnails of a row in doubt (:func:`thumbnails`, base64 so the
  record stays JSON for both engines);
* the driver writes them to ``OUTDIR/review/`` (:func:`save_thumbnails`) and keeps their paths in the
  row's manifest record (marked ``"review": true``; status ``done``, or ``skipped`` with ``--on-doubt
  skip``);
* :func:`write_page` builds the page from the manifest: every output whose latest record (a resumed
  row's ``skipped`` record does not count) is marked ``review``, from this run or an earlier one. The page
  is one self-contained HTML file with relative links: it opens offline.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import re
from pathlib import Path

import numpy as np

from ..errors import AutoinpaintError
from ..imaging.storage import exists, join, make_parents, read_bytes, relative, write_bytes
from ..imaging.storage import name as file_name
from .manifest import ManifestSnapshot

REVIEW_DIR = "review"
PAGE_NAME = "review.html"
THUMB_HEIGHT = 200
KINDS = ("input", "mask", "result")
_PAGE_FIELDS = ("line", "input", "output", "status", "review", "quality", "thumbnails", "written", "output_size")


def thumbnails(state, height: int = THUMB_HEIGHT) -> dict[str, str]:
    """Base64 JPEGs of the input with its prompts, the mask over it and the result (grey when nothing
    was written), at most ``height`` px high."""
    from PIL import Image

    from ..imaging.preview import panels

    out = {}
    for kind, panel in zip(KINDS, panels(state, height)):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(panel)).save(buf, format="JPEG", quality=80)
        out[kind] = base64.b64encode(buf.getvalue()).decode("ascii")
    return out


def save_thumbnails(outdir: str | os.PathLike, record: dict, thumbs: dict[str, str]) -> dict[str, str]:
    """Write a row's thumbnails to ``OUTDIR/review/`` (a folder or a URL); returns their paths relative
    to ``outdir``."""
    folder = join(outdir, REVIEW_DIR)
    stem = re.sub(r"[^\w.-]+", "_", Path(str(record.get("output") or "row")).stem)[:60]
    key = hashlib.sha256(str(record.get("output")).encode("utf-8", "replace")).hexdigest()[:8]
    paths = {}
    for kind, data in thumbs.items():
        if kind not in KINDS:
            continue
        name = f"{int(record.get('line') or 0):06d}-{stem}-{key}.{kind}.jpg"
        path = join(folder, name)
        make_parents(path)
        write_bytes(path, base64.b64decode(data))
        paths[kind] = f"{REVIEW_DIR}/{name}"
    return paths


def rows_in_review(manifest: str | os.PathLike) -> list[dict]:
    """The latest record of every output whose latest record (a resumed row's ``skipped`` record
    aside) is marked ``review``, in line order. ``manifest``: a path or a URL.

    Only the rows in doubt are kept while the manifest is read (and only the fields the page shows), so
    the memory is that of the review queue, not of the batch."""
    latest: dict[str, dict] = {}
    for rec in ManifestSnapshot(os.fspath(manifest)).records():
        if not rec.get("output"):
            continue
        if rec.get("status") == "skipped" and not rec.get("review"):
            continue  # resumed: the row's earlier record still says what it is
        if rec.get("review"):
            latest[rec["output"]] = {k: rec[k] for k in _PAGE_FIELDS if k in rec}
        else:
            latest.pop(rec["output"], None)
    return sorted(latest.values(), key=lambda r: (int(r.get("line") or 0), str(r.get("output"))))


def write_page(outdir: str | os.PathLike, manifest: str | os.PathLike) -> tuple[str, int]:
    """Write ``OUTDIR/review.html`` (atomically; OUTDIR may be a URL) from the manifest; returns its
    path and the number of rows listed. With no row in doubt no page is written, and a page left by an
    earlier run is rewritten to say so (it never lists rows that are no longer in doubt)."""
    rows = rows_in_review(manifest)
    page = join(outdir, PAGE_NAME)
    if rows or exists(page):
        text = render(rows, os.fspath(outdir)).encode("utf-8")
        try:
            same = read_bytes(page) == text
        except AutoinpaintError:
            same = False
        if not same:  # a resumed run that changes nothing leaves the page untouched
            write_bytes(page, text)
    return page, len(rows)


def render(rows: list[dict], outdir: str) -> str:
    """The page's HTML: one line per row (line, input, reasons, three thumbnails, output)."""
    def rel(p: str | None) -> str:
        return relative(p, outdir) if p else ""

    lines = []
    for r in rows:
        q = r.get("quality") or {}
        reasons = "".join(f"<li>{html.escape(str(x))}</li>" for x in q.get("reasons") or [])
        thumbs = r.get("thumbnails") or {}
        cells = "".join(
            f'<td><img src="{html.escape(thumbs[k])}" alt="{k}" loading="lazy"></td>' if k in thumbs
            else "<td class=none>no thumbnail</td>" for k in KINDS)
        written = r.get("written", True) and r.get("output_size") is not None
        out = (f'<a href="{html.escape(rel(r.get("output")))}">{html.escape(file_name(str(r.get("output"))))}</a>'
               if written else "<em>not written (--on-doubt skip)</em>")
        lines.append(f"<tr><td class=n>{html.escape(str(r.get('line')))}</td>"
                     f"<td class=p><a href=\"{html.escape(rel(r.get('input')))}\">"
                     f"{html.escape(str(r.get('input')))}</a><ul>{reasons}</ul>→ {out}</td>{cells}</tr>")
    body = "\n".join(lines) if lines else "<tr><td colspan=5>No row is in doubt.</td></tr>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autoinpaint: {len(rows)} rows to review</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 6px 8px; vertical-align: top; text-align: left; }}
td.n {{ color: #888; }} td.p {{ width: 22em; max-width: 26em; word-break: break-all; }}
ul {{ margin: .3em 0; padding-left: 1.2em; color: #a00; word-break: normal; }}
img {{ height: {THUMB_HEIGHT}px; display: block; }} td.none {{ color: #888; }}
</style></head><body>
<h1>{len(rows)} row{'' if len(rows) == 1 else 's'} to review</h1>
<p>Masks in doubt (autoinpaint's doubt signal): check each one; the others need no look.
Columns: recipe line, input and why, the input with its prompts, the mask over it, the result.</p>
<table><tr><th>line</th><th>input</th><th>input</th><th>mask</th><th>result</th></tr>
{body}
</table></body></html>
"""
