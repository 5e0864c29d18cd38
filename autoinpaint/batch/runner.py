"""Run a batch: plan the Tasks as a stream, run them in a process pool (or on Ray), and record every
row in the manifest as it finishes.

Every image goes through the same :func:`autoinpaint.api.run_edit` as ``autoinpaint remove``; each worker
process (or Ray actor) loads its models once and keeps them for all its rows.

* Inputs, the recipe and OUTDIR may be paths or URLs (:mod:`autoinpaint.imaging.storage`); outputs are always
  written whole (a local temporary file + rename; one upload to an object store).
* The manifest (:mod:`.manifest`) is ``OUTDIR/manifest.jsonl`` for a local OUTDIR; for an OUTDIR in a
  store it is a local file under the cache folder unless ``manifest=`` names another path or a URL.
* A row is skipped when the manifest's latest ``done`` record for its output has the same parameter
  hash and the output exists with the recorded size, so a re-run after a crash does only what is missing.
* Statuses are open-ended: the summary counts whatever ``status`` the records carry.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

from ..errors import AutoinpaintError, InputError
from ..imaging.storage import (absolute, canonical, ensure_folder, exists, is_dir, is_file, is_remote, join, parent,
                       remove_stale_temp_files)
from ..models.paths import cache_dir
from .manifest import MANIFEST_NAME, open_manifest
from .plan import Plan, plan_tasks
from .recipe import Defaults, Task, count_tasks
from .review import save_thumbnails, write_page
from .worker import THREAD_VARS as _THREAD_VARS
from .worker import base_record, execute_task, init_worker

STATUSES = ("done", "skipped", "failed", "not_found")  # always in the summary; other statuses are counted as they come


class BatchFailed(AutoinpaintError):
    """Some rows of a batch failed (exit code 1, the base class's); the manifest has the details."""


# ------------------------------------------------------------------------------------------ driver side


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


MAX_WORKER_DEATHS = 2  # a row in flight when this many workers died is run alone; dying alone fails it


def run_local(tasks: Iterable[Task], workers: int, threads: int | None, stats: dict | None = None,
              run: Callable[[Task], dict] = execute_task, model_memory: int | None = None) -> Iterator[dict]:
    """Run tasks on a pool of ``workers`` processes, at most ``2 × workers`` in flight (streaming).

    A worker that dies (``kill -9``, segfault, OOM kill) breaks the pool: a new pool is started and
    the rows that were in flight are run again, so the batch completes in the same run and every row
    gets one record. A row that was in flight during ``MAX_WORKER_DEATHS`` deaths is a suspect: it
    runs alone, and if its worker dies again it is recorded as failed (``WorkerDied``), so one
    poisonous row cannot stop the batch. ``stats`` (when given) counts ``worker_restarts`` and
    ``rows_rerun``. ``run``: what a worker does with a Task (a module-level function). ``model_memory``:
    each worker's model store bound (bytes; None: ``$AUTOINPAINT_MODEL_MEMORY`` or half the memory)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    window = max(2, 2 * workers)
    stats = stats if stats is not None else {}
    stats.setdefault("worker_restarts", 0)
    stats.setdefault("rows_rerun", 0)
    # the thread-pool variables must be in the environment before a worker imports numpy / OpenCV
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    if threads:
        os.environ.update({var: str(threads) for var in _THREAD_VARS})
    it = iter(tasks)
    exhausted = False
    retry: list[Task] = []  # rows to run again after a worker death, oldest first
    deaths: dict[int, int] = {}  # id(task) -> worker deaths seen while it was in flight

    def finished_row(task: Task, rec: dict) -> dict:
        died = deaths.pop(id(task), 0)
        if died:
            rec["worker_deaths"] = died  # run again after its worker died (the row's only record)
        return rec

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker,
                                   initargs=(threads, model_memory))

    pool = new_pool()
    pending: dict = {}
    try:
        while True:
            broken = False
            while len(pending) < window and not broken:
                suspect_running = any(deaths.get(id(t), 0) >= MAX_WORKER_DEATHS for t in pending.values())
                if suspect_running:
                    break  # a suspect runs alone
                if retry:
                    if deaths.get(id(retry[0]), 0) >= MAX_WORKER_DEATHS and pending:
                        break  # wait until the pool is empty, then run the suspect alone
                    task = retry.pop(0)
                elif not exhausted:
                    try:
                        task = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    if task.error:  # failed by the planner: recorded without a trip to a worker
                        yield execute_task(task)
                        continue
                else:
                    break
                try:
                    pending[pool.submit(run, task)] = task
                except BrokenProcessPool:  # a worker died while idle
                    retry.insert(0, task)
                    broken = True
            if not pending and not broken:
                if retry:
                    continue
                break
            if pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    task = pending.pop(fut)
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        pending[fut] = task  # handled with the rest of the rows in flight below
                        continue
                    yield finished_row(task, rec)
            if broken:
                for fut in [f for f in pending if f.done() and not f.cancelled() and f.exception() is None]:
                    yield finished_row(pending.pop(fut), fut.result())  # done just before the pool broke
                lost = list(pending.values())
                pending.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                _remove_temp_files_of(lost)
                stats["worker_restarts"] += 1
                for task in lost:
                    deaths[id(task)] = deaths.get(id(task), 0) + 1
                    if len(lost) == 1 and deaths[id(task)] > MAX_WORKER_DEATHS:
                        deaths.pop(id(task))
                        rec = base_record(task)
                        rec.update(status="failed", error="the worker process died while editing this image, "
                                   f"{MAX_WORKER_DEATHS + 1} times (a crash or out of memory)",
                                   error_type="WorkerDied")
                        yield rec
                    else:
                        retry.append(task)
                        stats["rows_rerun"] += 1
                retry.sort(key=lambda t: t.line)
                pool = new_pool()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _disk_full(rec: dict) -> bool:
    """Whether a row failed because its output's disk (or quota) is full."""
    error = rec.get("error") or ""
    return any(os.strerror(code) in error for code in (errno.ENOSPC, errno.EDQUOT))


def _until(stop: Callable[[], bool], tasks: Iterable[Task]) -> Iterator[Task]:
    """``tasks`` until ``stop()`` says no more should start (the planner is closed then)."""
    try:
        for task in tasks:
            if stop():
                return
            yield task
    finally:
        getattr(tasks, "close", lambda: None)()


def _remove_temp_files_of(tasks: list[Task]) -> None:
    """A worker killed between writing an output's temporary file and renaming it leaves the
    temporary file: remove those in the output folders of the rows it had in flight (no worker is
    running at this point)."""
    for folder in {parent(t.output) for t in tasks if t.output and not is_remote(t.output)}:
        remove_stale_temp_files(folder)


def _absolute_paths(defaults: Defaults) -> Defaults:
    """``defaults`` with its local file names (``--mask``, model files) absolute: a worker (a Ray actor
    in particular) may run in another working directory."""
    sel, opts = defaults.selection, defaults.options
    if sel.mask_path:
        sel = dataclasses.replace(sel, mask_path=absolute(sel.mask_path))
    files = {k: absolute(v) for k in ("segmenter", "inpainter", "model")
             if isinstance(v := getattr(opts, k), str) and not is_remote(v) and exists(v)}
    return dataclasses.replace(defaults, selection=sel, options=opts.replace(**files) if files else opts)


def default_manifest(outdir: str) -> str:
    """``OUTDIR/manifest.jsonl`` for a local OUTDIR; for one in a store, a local file named after it
    under the cache folder (so the same command resumes without saying where)."""
    if not is_remote(outdir):
        return join(outdir, MANIFEST_NAME)
    key = hashlib.sha256(outdir.encode()).hexdigest()[:16]
    return str(cache_dir() / "batch" / key / MANIFEST_NAME)


def run_batch(source: str | os.PathLike, outdir: str | os.PathLike, defaults: Defaults | None = None,
              workers: int | None = None, engine: str = "local", threads: int | None = None,
              progress: bool = True, quiet: bool = False, ray_address: str | None = None,
              cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, rows_per_task: int | None = None,
              manifest: str | None = None, log: Callable[[str], None] | None = None,
              model_memory: int | None = None) -> dict:
    """Run a recipe file or folder into ``outdir`` (paths or URLs); returns the summary dict (see
    ``autoinpaint batch``). ``manifest``: where the records go (see :func:`default_manifest`);
    ``rows_per_task``: recipe rows per Ray Data task (Ray engine; default: about 2 s of work per task).

    ``threads``: native threads per worker (default 1: outputs are then bit-identical whatever the
    number of workers or the load; more threads may let OpenCV's parallel reductions vary).
    ``model_memory``: bytes of models each worker's store keeps (None: ``$AUTOINPAINT_MODEL_MEMORY`` MB,
    else half the memory)."""
    defaults = defaults or Defaults()
    workers = workers or default_workers()
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}; choose local or ray")
    if threads is None:
        threads = 1  # multi-threaded OpenCV reductions may vary run to run; one thread is reproducible
    source = os.fspath(source)
    if not (is_file(source) or is_dir(source)):
        raise InputError(f"{source}: no such recipe file or folder")
    source, defaults = absolute(source), _absolute_paths(defaults)  # Ray workers have another cwd
    ensure_folder(outdir)
    outdir = canonical(outdir)  # manifest keys are absolute output paths, whatever the cwd
    manifest_spec = manifest or default_manifest(outdir)
    if not is_remote(manifest_spec):
        manifest_spec = os.path.abspath(os.path.expanduser(manifest_spec))
    log = log or (lambda msg: None)

    remove_stale_temp_files(outdir)
    total = count_tasks(source, outdir, defaults) if progress else None
    book = open_manifest(manifest_spec)
    counts = dict.fromkeys(STATUSES, 0)
    in_doubt = 0
    faults: dict = {"worker_restarts": 0, "rows_rerun": 0, "storage_retries": 0, "manifest_reserve_used": False,
                    "stopped": None}

    from tqdm import tqdm

    bar = tqdm(total=total, unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               smoothing=0.1, desc="batch")
    plan = Plan(source, outdir, defaults, book.open())
    started = time.perf_counter()

    def record(rec: dict) -> None:
        nonlocal in_doubt
        rec.setdefault("error", None)
        thumbs = rec.pop("thumbnails", None)
        if thumbs:  # a row in doubt: its thumbnails go to OUTDIR/review/, their paths to the manifest
            try:
                rec["thumbnails"] = save_thumbnails(outdir, rec, thumbs)
            except (AutoinpaintError, OSError) as exc:  # e.g. a full disk: the record matters more
                rec["thumbnails_error"] = str(exc)
        rec["engine"] = engine
        rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        book.append(rec)
        faults["reserve"] = bool(getattr(book, "reserve_used", False))
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        faults["storage_retries"] += rec.get("storage_retries") or 0
        if rec.get("review"):
            in_doubt += 1
        bar.update(1)
        if rec["status"] == "failed" and not faults["stopped"] and (_disk_full(rec) or faults.get("reserve")):
            faults["stopped"] = "disk full"  # no new row starts: each would do its work, then fail to write
            if not quiet:
                (bar.write if progress else log)(f"{outdir} is full: no new row is started, the rows in flight "
                                                 f"finish")
        if rec["status"] == "failed":
            bar.set_postfix(failed=counts["failed"], refresh=False)
            if not quiet:
                where = f"line {rec['line']}" + (f" ({rec['input']})" if rec.get("input") else "")
                err = rec["error"] if rec["error"].startswith("line ") else f"{where}: {rec['error']}"
                (bar.write if progress else log)(f"failed: {err}")
        elif rec["status"] == "not_found" and not quiet:
            (bar.write if progress else log)(f"not found: line {rec['line']} ({rec['input']}): {rec['error']}")

    try:
        if engine == "ray":
            from .ray_engine import run_ray

            results = run_ray(plan, workers=workers, address=ray_address, cpus_per_worker=cpus_per_worker,
                              gpus_per_worker=gpus_per_worker, threads=threads, rows_per_task=rows_per_task,
                              model_memory=model_memory)
        else:
            tasks = _until(lambda: faults["stopped"] is not None, plan_tasks(plan))
            results = run_local(tasks, workers, threads, stats=faults, model_memory=model_memory)
        for rec in results:
            record(rec)
    finally:
        try:
            faults["manifest_reserve_used"] = bool(faults.pop("reserve", False))
            book.close()
        finally:
            bar.close()
    seconds = time.perf_counter() - started
    try:
        page, in_review = write_page(outdir, manifest_spec)  # rows in doubt, this run's and earlier ones
    except (AutoinpaintError, OSError) as exc:  # e.g. a full disk: the outputs and manifest are what count
        log(f"Warning: could not write the review page: {exc}")
        page, in_review = None, 0
    return {"total": sum(counts.values()), **counts, "review": in_doubt, "in_review": in_review,
            "review_page": str(page) if in_review else None, "seconds": round(seconds, 3),
            "images_per_minute": round(counts["done"] / seconds * 60, 2) if seconds > 0 else 0.0,
            "engine": engine, "workers": workers, "outdir": outdir, "manifest": manifest_spec, **faults}
