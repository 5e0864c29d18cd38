"""Run a batch: stream Tasks, skip what is already done, edit the rest in a process pool (or on Ray),
and keep a JSONL manifest in the output folder.

Every image goes through the same :func:`autoinpaint.api.run_edit` as ``autoinpaint remove``; each worker
process loads its models once (the loaders cache them per process).

Bookkeeping (``OUTDIR/manifest.jsonl``, one record per row and run, appended by this process only):

* a record is one ``write()`` of one line on a file opened ``O_APPEND``, so a ``kill -9`` leaves at
  worst one torn last line, which the reader ignores and the next run terminates;
* outputs are written atomically by ``image_io.write_atomic`` (temporary file + rename);
* a row is skipped when the latest ``done`` record for its output has the same parameter hash and
  the output file exists with the recorded size, so a re-run after a crash does only what is missing.
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import AutoinpaintError, InputError
from .recipe import Defaults, Task, count_tasks, iter_tasks
from .review import save_thumbnails, write_page
from .worker import THREAD_VARS as _THREAD_VARS
from .worker import init_worker, base_record, execute_task

MANIFEST_NAME = "manifest.jsonl"


class BatchFailed(AutoinpaintError):
    """Some rows of a batch failed (exit code 1); the manifest has the details."""

    exit_code = 1


# ---------------------------------------------------------------------------------------------- manifest


class Manifest:
    """Append-only JSONL log of row results; tolerant of a torn last line."""

    def __init__(self, outdir: str | os.PathLike):
        self.path = Path(outdir) / MANIFEST_NAME
        self._fd: int | None = None

    def latest_done(self) -> dict[str, dict]:
        """output path → the latest record that produced it (status done or skipped)."""
        done: dict[str, dict] = {}
        if not self.path.exists():
            return done
        with open(self.path, "rb") as fh:
            for raw in fh:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue  # a torn line from a killed run
                if not isinstance(rec, dict) or not rec.get("output"):
                    continue
                if rec.get("status") in ("done", "skipped"):
                    done[rec["output"]] = {"hash": rec.get("hash"), "output_size": rec.get("output_size"),
                                           "timings": rec.get("timings")}
                elif rec.get("status") in ("failed", "not_found"):
                    done.pop(rec["output"], None)
        return done

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    os.write(self._fd, b"\n")  # terminate a torn line left by a killed run

    def append(self, record: dict) -> None:
        data = (json.dumps(record, default=str) + "\n").encode()
        os.write(self._fd, data)  # one write on an O_APPEND file: whole line or nothing

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None


# ------------------------------------------------------------------------------------------ driver side


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_local(tasks: Iterable[Task], workers: int, threads: int | None) -> Iterator[dict]:
    """Run tasks on a pool of ``workers`` processes, at most ``2 × workers`` in flight (streaming).

    A worker that dies (segfault, OOM kill) fails only the rows in flight; the pool is restarted."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    window = max(2, 2 * workers)
    # the thread-pool variables must be in the environment before a worker imports numpy / OpenCV
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    if threads:
        os.environ.update({var: str(threads) for var in _THREAD_VARS})
    it = iter(tasks)
    exhausted = False
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(threads,))
    pending: dict = {}
    try:
        while True:
            while not exhausted and len(pending) < window:
                try:
                    task = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending[pool.submit(execute_task, task)] = task
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                task = pending.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    rec = base_record(task)
                    rec.update(status="failed", error="the worker process died while editing this image "
                               "(crash or out of memory)", error_type="WorkerDied")
                    yield rec
            if broken:
                for fut, task in list(pending.items()):
                    rec = base_record(task)
                    rec.update(status="failed", error="the worker process pool died while this image was "
                               "queued", error_type="WorkerDied")
                    yield rec
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker,
                                           initargs=(threads,))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def run_batch(source: str | os.PathLike, outdir: str | os.PathLike, defaults: Defaults | None = None,
              workers: int | None = None, engine: str = "local", threads: int | None = None,
              progress: bool = True, quiet: bool = False, ray_address: str | None = None,
              cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
              log: Callable[[str], None] | None = None) -> dict:
    """Run a recipe file or folder into ``outdir``; returns the summary dict (see ``autoinpaint batch``).

    ``threads``: native threads per worker (default 1: outputs are then bit-identical whatever the
    number of workers or the load; more threads may let OpenCV's parallel reductions vary)."""
    defaults = defaults or Defaults()
    workers = workers or default_workers()
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}; choose local or ray")
    if threads is None:
        threads = 1  # multi-threaded OpenCV reductions may vary run to run; one thread is reproducible
    source, outdir = Path(source), Path(outdir)
    if not source.exists():
        raise InputError(f"{source}: no such recipe file or folder")
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    outdir = outdir.resolve()  # manifest keys are absolute output paths, whatever the cwd
    log = log or (lambda msg: None)

    _remove_stale_temp_files(outdir)
    total = count_tasks(source, outdir, defaults) if progress else None
    manifest = Manifest(outdir)
    previous = manifest.latest_done()
    counts = {"done": 0, "skipped": 0, "failed": 0, "not_found": 0}
    in_doubt = 0
    seen: dict[str, int] = {}

    from tqdm import tqdm

    bar = tqdm(total=total, unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               smoothing=0.1, desc="batch")
    manifest.open()
    started = time.perf_counter()

    def record(rec: dict) -> None:
        nonlocal in_doubt
        rec.setdefault("error", None)
        thumbs = rec.pop("thumbnails", None)
        if thumbs:  # a row in doubt: its thumbnails go to OUTDIR/review/, their paths to the manifest
            rec["thumbnails"] = save_thumbnails(outdir, rec, thumbs)
        rec["engine"] = engine
        rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        manifest.append(rec)
        counts[rec["status"]] += 1
        if rec.get("review"):
            in_doubt += 1
        bar.update(1)
        if rec["status"] == "failed":
            bar.set_postfix(failed=counts["failed"], refresh=False)
            if not quiet:
                where = f"line {rec['line']}" + (f" ({rec['input']})" if rec.get("input") else "")
                err = rec["error"] if rec["error"].startswith("line ") else f"{where}: {rec['error']}"
                (bar.write if progress else log)(f"failed: {err}")
        elif rec["status"] == "not_found" and not quiet:
            (bar.write if progress else log)(f"not found: line {rec['line']} ({rec['input']}): {rec['error']}")

    def to_run() -> Iterator[Task]:
        """Tasks that need work; malformed, duplicate and already-done rows are recorded on the way."""
        for task in iter_tasks(source, outdir, defaults):
            if task.error:
                rec = base_record(task)
                rec.update(status="failed", error=task.error, error_type="RecipeError")
                record(rec)
                continue
            if task.output in seen:
                rec = base_record(task)
                rec.update(status="failed", error_type="DuplicateOutput",
                           error=f"line {task.line}: output {task.output} is also the output of line "
                                 f"{seen[task.output]}; use an output template such as {{parent}}/{{stem}}{{ext}}")
                record(rec)
                continue
            seen[task.output] = task.line
            prev = previous.get(task.output)
            if prev and prev["hash"] == task.param_hash and _size(task.output) == prev.get("output_size"):
                rec = base_record(task)
                rec.update(status="skipped", output_size=prev.get("output_size"))
                record(rec)
                continue
            yield task

    try:
        if engine == "ray":
            from .ray_engine import run_ray

            results = run_ray(to_run(), workers=workers, address=ray_address, cpus_per_worker=cpus_per_worker,
                              gpus_per_worker=gpus_per_worker, threads=threads)
        else:
            results = run_local(to_run(), workers, threads)
        for rec in results:
            record(rec)
    finally:
        manifest.close()
        bar.close()
    seconds = time.perf_counter() - started
    page, in_review = write_page(outdir, manifest.path)  # rows in doubt, this run's and earlier ones
    return {"total": sum(counts.values()), **counts, "review": in_doubt, "in_review": in_review,
            "review_page": str(page) if in_review else None, "seconds": round(seconds, 3),
            "images_per_minute": round(counts["done"] / seconds * 60, 2) if seconds > 0 else 0.0,
            "engine": engine, "workers": workers, "outdir": str(outdir), "manifest": str(manifest.path)}


def _remove_stale_temp_files(outdir: Path) -> None:
    """Delete ``.NAME.XXXX.tmp`` files that ``write_atomic`` left in OUTDIR when a run was killed
    between creating and renaming them (finished outputs are never in this form)."""
    try:
        entries = list(os.scandir(outdir))
    except OSError:
        return
    for e in entries:
        if e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file(follow_symlinks=False):
            try:
                os.unlink(e.path)
            except OSError:
                pass


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None
