"""What a batch worker runs, for both engines (the local process pool and Ray actors): one Task in, one
manifest record out, through the same :func:`autoinpaint.api.run_edit` as ``autoinpaint remove``.

The worker decides whether a row is done already: it hashes the row's parameters and input (a ``stat``,
or a HEAD request for an object, which is why this happens here, spread over the workers, and not in
the driver) and skips the row when the manifest's previous record has the same hash and the output
is there with the recorded size.

Each worker owns one model store (:class:`~autoinpaint.models.store.ModelStore`): a process of the local
pool makes it in :func:`init_worker`, a Ray actor holds its own; every row it runs loads its models there.
"""
from __future__ import annotations

import os
import sys
import time

from ..errors import AutoinpaintError, NotFoundError
from ..imaging.storage import make_parents, size
from .recipe import Task

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def base_record(task: Task) -> dict:
    return {"line": task.line, "input": task.input, "output": task.output, "action": task.action,
            "hash": None}


def execute_task(task: Task, store=None) -> dict:
    """Skip, or edit one image through ``autoinpaint.api.run_edit``; never raises: failures are records
    (``status`` done, skipped, not_found or failed; ``model_loads``: models this worker's store has
    loaded so far). ``store``: the worker's model store (None: this process's, :func:`worker_store`)."""
    from ..imaging import storage

    store = store if store is not None else worker_store()
    record = base_record(task)
    retries_before = storage.RETRIES
    t0 = time.perf_counter()
    if task.error:  # failed by the planner: a malformed row, a duplicate output
        record.update(status="failed", error=task.error, error_type=task.error_type or "RecipeError")
    else:
        try:
            _skip_or_edit(task, record, store)
        except NotFoundError as exc:  # --text matched nothing: an answer, counted apart from failures
            record.update(status="not_found", error=str(exc), error_type=type(exc).__name__)
        except AutoinpaintError as exc:
            record.update(status="failed", error=str(exc), error_type=type(exc).__name__)
        except MemoryError:
            record.update(status="failed", error="out of memory", error_type="MemoryError")
        except Exception as exc:  # noqa: BLE001 - fault isolation: one bad row never stops the batch
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            record.update(status="failed", error=f"unexpected {type(exc).__name__}: {msg}",
                          error_type=type(exc).__name__)
    record["seconds"] = round(time.perf_counter() - t0, 4)
    record["pid"] = os.getpid()
    record["model_loads"] = store.loads
    if storage.RETRIES > retries_before:
        record["storage_retries"] = storage.RETRIES - retries_before  # store calls retried for this row
    return record


def _skip_or_edit(task: Task, record: dict, store) -> None:
    from ..api import run_edit, summary

    record["hash"] = task.param_hash
    prev = task.previous
    if prev and prev.get("hash") == record["hash"] and size(task.output) == prev.get("output_size"):
        record.update(status="skipped", error=None, output_size=prev["output_size"])
        return
    make_parents(task.output)
    state = run_edit(task.input, task.selection, task.options.replace(quiet=True), task.action, task.output,
                     store=store)
    s = summary(state, task.action)
    record.update(status="done", error=None, timings=s["timings"], size=s["size"], mask_pixels=s["mask_pixels"],
                  bbox=s["bbox"], segmenter=s["segmenter"], inpainter=s["inpainter"],
                  output_size=None if state.stop else size(task.output))
    record.update(_review(state))
    record.update({k: s[k] for k in ("detections", "shadow_pixels", "shadow_darkening") if k in s})


def _review(state) -> dict:
    """A mask in doubt: ``review: true``, its reasons and thumbnails for OUTDIR/review.html; with
    ``--on-doubt skip`` nothing was written and the status is ``skipped``."""
    quality = state.metadata.get("quality") or {}
    if quality.get("verdict") != "doubt":
        return {"quality": {"verdict": quality.get("verdict", "ok")}} if quality else {}
    from .review import thumbnails

    return {"review": True, "quality": {"verdict": "doubt", "reasons": quality.get("reasons", [])},
            "written": not state.stop, "thumbnails": thumbnails(state),
            **({"status": "skipped", "skipped_because": "doubt"} if state.stop else {})}


def set_threads(threads: int | None) -> None:
    """Limit the native thread pools of this worker (OpenCV, and torch when loaded)."""
    if not threads:
        return
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


_PROCESS_STORE = None  # the model store of a local-pool worker process (made by init_worker)


def init_worker(threads: int | None, model_memory: int | None = None) -> None:
    """Initializer of a local-pool worker process: its thread limits and its own model store
    (``model_memory`` bytes; None: ``$AUTOINPAINT_MODEL_MEMORY`` or half the memory)."""
    global _PROCESS_STORE
    from ..models.store import ModelStore

    set_threads(threads)
    _PROCESS_STORE = ModelStore(model_memory)


def worker_store():
    """This worker process's model store (:func:`init_worker`'s; the process default elsewhere)."""
    from ..models.store import default_store

    return _PROCESS_STORE if _PROCESS_STORE is not None else default_store()
