"""``--engine ray``: one streaming Ray Data pipeline for the whole batch.

::

    read: RecipeDatasource  ──►  map_batches(EditActor), one pool of N actors  ──►  driver: iter_batches
    (one read task on the        (each actor loads its models once and keeps      (a manifest record per
     driver's node runs the       them for the whole batch; the same               row as it comes back)
     planner: plan.py)            worker.execute_task as the local engine)

* **One dataset, read lazily**: the read task streams the planner's Tasks in groups (a dataset row
  is one group of rows for one Ray Data task; a block is one dataset row, handed on as soon as it is
  made: the dataset's target block size is set below one row, where Ray Data would otherwise gather a
  read task's output into 128 MB blocks). Nobody holds the list of rows. The read task runs on the
  driver's node (``supports_distributed_reads = False``): a local recipe and manifest live there.
* **One actor pool** for the whole batch: models are loaded once per actor (the process-wide model
  cache of :mod:`autoinpaint.models.registry` lives as long as the actor).
* **Backpressure**: Ray Data throttles by bytes, and a row is a few hundred bytes, so it alone would let
  the planner run far ahead of the actors. The :class:`Ledger` actor admits at most ``window`` rows
  between the planner and the driver's manifest; the planner waits for room. It also sizes the groups
  (rows per Ray Data task) from the measured edit time: Ray keeps a few kB of stats per task in the
  driver, so the number of tasks, not of rows, is what must stay small. Memory stays flat.
* **Fault isolation**: an actor that dies is restarted with its models; its block is retried once, and
  if that fails too the block is dropped and its rows (which the Ledger still holds) are recorded as
  failed (``WorkerDied``). The batch goes on.

Images are read and written by the actors: on a cluster, inputs and OUTDIR must be where every node
can reach them (an object store such as ``s3://…``, or a shared file system), and autoinpaint must be
installed on every node.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from typing import Generator

from ..errors import AutoinpaintError, InputError, ModelMissingError
from .plan import Plan, plan_tasks
from .recipe import Task
from .worker import base_record, execute_task, set_threads


class EditActor:
    """Ray Data callable class: groups of serialized Tasks → groups of manifest records (JSON lists).
    Each actor owns its model store."""

    def __init__(self, threads: int | None = None, model_memory: int | None = None):
        from ..models.store import ModelStore

        set_threads(threads)
        self.store = ModelStore(model_memory)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        records = [json.dumps([execute_task(Task.from_payload(t), self.store) for t in json.loads(group)],
                              default=str)
                   for group in batch["tasks"]]
        return {"first": batch["first"], "records": np.array(records, dtype=object)}


class Ledger:
    """The rows between the planner and the manifest.

    * Backpressure: at most ``window`` rows are admitted (the planner waits in :meth:`admit`).
    * Rows per Ray Data task: fixed, or (``rows_per_task=None``) chosen from the edit time the driver
      reports, so that a task holds about ``TASK_SECONDS`` of work, and at least 1/4096 of the rows
      recorded so far. Ray's cost per task (~10 ms of CPU, a few kB of driver memory for its stats)
      then stays small and the number of tasks grows only slowly with the number of rows.
    * Crash bookkeeping: the rows of a block lost with a dead actor are still here at the end.
    """

    TASK_SECONDS = 2.0
    MAX_ROWS_PER_TASK = 1024

    def __init__(self, workers: int, rows_per_task: int | None = None, window: int | None = None):
        import asyncio

        self.workers, self.fixed, self.fixed_window = workers, rows_per_task, window
        self.rows_per_task = rows_per_task or 1
        self.row_seconds: float | None = None
        self.pending: dict[int, list] = {}
        self.settled = 0
        self.peak = 0
        self.changed = asyncio.Condition()
        self.finished = False
        self.error: tuple[str, int] | None = None

    @property
    def window(self) -> int:
        return self.fixed_window or max(32, 8 * self.workers * self.rows_per_task)

    async def admit(self, rows: dict) -> tuple[int, int]:
        """Register ``{seq: [line, input, output, action]}`` once there is room; returns the rows per
        task to use now and how many rows to admit next time."""
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.pending) + len(rows) <= max(self.window, len(rows)))
            self.pending.update(rows)
            self.peak = max(self.peak, len(self.pending))
            return self.rows_per_task, max(self.rows_per_task, self.window // 4)

    async def settle(self, seqs: list, row_seconds: float | None = None) -> None:
        """The driver has recorded these rows (which took ``row_seconds`` each on average)."""
        async with self.changed:
            for seq in seqs:
                self.pending.pop(seq, None)
            self.settled += len(seqs)
            if row_seconds is not None:
                ema = self.row_seconds
                self.row_seconds = row_seconds if ema is None else 0.8 * ema + 0.2 * row_seconds
            if not self.fixed and self.row_seconds is not None:
                by_time = round(self.TASK_SECONDS / max(self.row_seconds, 1e-3))
                self.rows_per_task = max(1, min(self.MAX_ROWS_PER_TASK, max(by_time, self.settled // 4096)))
            self.changed.notify_all()

    async def finish(self, error: tuple[str, int] | None = None) -> None:
        """The planner is done (``error``: why it stopped early, and the exit code)."""
        self.finished, self.error = True, error

    async def state(self, settled: int) -> tuple[bool, tuple[str, int] | None, list, dict]:
        """(planner finished, its error, rows never recorded, stats) once the driver's ``settled`` rows
        are in (calls of an async actor may run out of order)."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.settled >= settled)
            stats = {"window": self.window, "peak_in_flight": self.peak, "rows_per_task": self.rows_per_task}
            return self.finished, self.error, list(self.pending.values()), stats


def _read_plan(plan: Plan, ledger):
    """The read task: the planner's Tasks in groups (a dataset row per group; ``first`` is the group's
    first sequence number), admitted by the ledger a chunk at a time."""
    import pyarrow as pa
    import ray

    def blocks(chunk: list[tuple[int, Task]]):
        size, next_chunk = ray.get(ledger.admit.remote({seq: [t.line, t.input, t.output, t.action]
                                                        for seq, t in chunk}))
        for i in range(0, len(chunk), size):
            group = chunk[i:i + size]
            tasks = json.dumps([t.to_payload() for _, t in group], default=str)
            yield pa.table({"first": [group[0][0]], "tasks": [tasks]})
        return next_chunk

    chunk: list[tuple[int, Task]] = []
    chunk_rows = 1  # the first row goes out at once; the ledger says how many to gather next
    try:
        for item in enumerate(plan_tasks(plan)):
            chunk.append(item)
            if len(chunk) >= chunk_rows:
                chunk_rows = yield from blocks(chunk)
                chunk = []
        if chunk:
            yield from blocks(chunk)
    except AutoinpaintError as exc:  # e.g. a recipe that turns out not to be valid YAML
        ray.get(ledger.finish.remote((str(exc), exc.exit_code)))
        return
    except Exception as exc:  # noqa: BLE001 - reported by the driver, not as a Ray traceback
        ray.get(ledger.finish.remote((f"unexpected {type(exc).__name__} while reading the recipe: {exc}", 1)))
        return
    ray.get(ledger.finish.remote(None))


def _datasource(plan: Plan, ledger):
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class RecipeDatasource(Datasource):
        """The batch's Tasks as one lazily read dataset (one streaming read task)."""

        def estimate_inmemory_data_size(self) -> None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list:
            meta = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
            return [ReadTask(lambda: _read_plan(plan, ledger), meta)]

        @property
        def supports_distributed_reads(self) -> bool:
            return False  # a local recipe and manifest are on the driver's node

    return RecipeDatasource()


def init_ray(address: str | None, workers: int, cpus_per_worker: float, gpus_per_worker: float) -> None:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--engine ray needs Ray Data: pip install 'autoinpaint[ray]' "
                         "(or pip install 'ray[data]')") from None
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no "progress bars disabled", "finished in"
    warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")  # max_task_retries, below
    # "the operator only received 1 input(s)": our read is one streaming task that yields many blocks
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # no C++ notes on the driver's stderr
    kwargs = dict(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                  logging_level="ERROR")
    if address:
        _reachable(address)
    else:
        cpus = max(os.cpu_count() or 1, int(workers * cpus_per_worker + 0.999))
        kwargs.update(num_cpus=cpus, num_gpus=None if gpus_per_worker else 0)
        # Ray runs its workers at nice 15 by default; in the local Ray started for this batch they do all
        # the work, so they run at normal priority, like the local engine's processes
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        with _stderr_silenced():  # Ray's C++ start-up notes ("Set ray log level ...")
            ray.init(address=address, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise AutoinpaintError(f"cannot start or join {where}: {exc}") from None


def _reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast on a ``HOST:PORT`` (or ``ray://HOST:PORT``) nobody listens on: ``ray.init`` would
    retry for minutes. ``auto`` and other forms are left to Ray."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise InputError(f"--ray-address {address}: cannot reach a Ray cluster there "
                         f"({exc.strerror or exc})") from None


@contextmanager
def _stderr_silenced():
    """Point file descriptor 2 at /dev/null for a moment (native code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_ray(plan: Plan, workers: int, address: str | None = None, cpus_per_worker: float = 1.0,
            gpus_per_worker: float = 0.0, threads: int | None = None, rows_per_task: int | None = None,
            window: int | None = None, model_memory: int | None = None) -> Generator[dict, None, dict]:
    """Yield one manifest record per Task of ``plan``, computed by one pool of ``workers`` Ray actors;
    returns ``{"window", "peak_in_flight", "rows_per_task"}`` (the generator's return value).

    ``rows_per_task``: recipe rows per Ray Data task (default: chosen as the batch goes, see
    :class:`Ledger`); ``window``: rows between the planner and the driver at most (default
    ``8 × workers × rows_per_task``, at least 32); ``model_memory``: each actor's model store bound
    (bytes; None: ``$AUTOINPAINT_MODEL_MEMORY`` or half the memory)."""
    if rows_per_task is not None and rows_per_task < 1:
        raise InputError("--rows-per-task must be at least 1")
    init_ray(address, workers, cpus_per_worker, gpus_per_worker)
    import ray

    ledger = ray.remote(Ledger).options(num_cpus=0).remote(workers, rows_per_task, window)
    ds = ray.data.read_datasource(_datasource(plan, ledger), override_num_blocks=1, num_cpus=0)
    ctx = ds.context
    ctx.target_max_block_size = 1  # hand on every block as it is made (a block is one row: never sliced)
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.max_errored_blocks = -1  # a block lost with its actor: its rows are failed from the ledger
    extra = {"num_gpus": gpus_per_worker} if gpus_per_worker else {}
    # max_task_retries has no named parameter (yet): Ray Data's default, -1, would retry for ever a row
    # that kills its actor
    ds = ds.map_batches(EditActor, fn_constructor_kwargs={"threads": threads, "model_memory": model_memory},
                        batch_size=1,
                        batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                        num_cpus=cpus_per_worker, max_task_retries=1, **extra)
    settled = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for first, group in zip(batch["first"].tolist(), batch["records"]):
            records = json.loads(group)
            seconds = sum(r.get("seconds") or 0.0 for r in records) / len(records)
            ledger.settle.remote(list(range(first, first + len(records))), seconds)
            settled += len(records)
            yield from records
    finished, error, lost, stats = ray.get(ledger.state.remote(settled))
    ray.kill(ledger)
    if error:
        kind = {InputError.exit_code: InputError, ModelMissingError.exit_code: ModelMissingError}
        raise kind.get(error[1], AutoinpaintError)(error[0])
    for line, path, output, action in lost:
        rec = base_record(Task(line=line, input=path, output=output, action=action))
        rec.update(status="failed", error="the Ray actor editing this image died (crash or out of memory)",
                   error_type="WorkerDied")
        yield rec
    if not finished:
        raise AutoinpaintError("the Ray task reading the recipe died before the end; run the batch again "
                               "to do the rest")
    return stats


def shutdown() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
