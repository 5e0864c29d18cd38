"""The server's limits, in one place."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds on what one server holds and accepts.

    max_upload_bytes: request body size (an upload over it is a 413).
    max_pixels: pixels of one image (over it: 413); None = the pipeline's default (100 MP or
        ``$AUTOINPAINT_MAX_PIXELS``), or ``--max-pixels``.
    max_sessions / max_session_bytes: open images kept (LRU), and the bytes of their arrays (pixels,
        masks, results, display copies, embeddings).
    display_max_side: longest side of the display copy the page shows (px).
    workers: edits run at once; max_jobs: jobs kept (queued, running or finished).
    client_timeout: seconds without a request about a job before it is cancelled (client gone).
    result_ttl: seconds a finished job's result is kept after the last request about it.
    max_files: photos listed from FOLDER.
    shutdown_grace: seconds running edits get to finish when the server stops (then cancelled).
    model_memory: bytes of loaded models the server's store keeps (least recently used dropped first);
        None = ``$AUTOINPAINT_MODEL_MEMORY`` MB, else half the machine's memory
        (:mod:`autoinpaint.models.store`).
    """

    max_upload_bytes: int = 200 * 2**20
    max_pixels: int | None = None
    max_sessions: int = 8
    max_session_bytes: int = 2 * 2**30
    display_max_side: int = 2048
    workers: int = 1
    max_jobs: int = 32
    client_timeout: float = 120.0  # a hidden browser tab polls about once a minute
    result_ttl: float = 900.0
    max_files: int = 10_000
    shutdown_grace: float = 10.0
    model_memory: int | None = None
