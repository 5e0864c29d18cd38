"""``--engine ray``: the same Tasks run by Ray Data ``map_batches`` on an actor pool.

Each actor is one long-lived worker that edits images with :func:`autoinpaint.api.run_edit` (models
loaded once per actor, like a local worker process); actors ask for ``cpus_per_worker`` CPUs and
``gpus_per_worker`` GPUs each, so the same code fills a laptop or a cluster (``--ray-address``).

The driver streams the recipe in chunks of ``chunk_rows`` rows, so it never holds the whole recipe;
the results come back to the driver, which writes the manifest exactly as the local engine does.
Images are read and written by the actors at the paths in the recipe: on a cluster those paths must
be on storage every node sees (NFS, a mounted bucket) and autoinpaint must be installed on the nodes.
"""
from __future__ import annotations

import itertools
import json
import os
from typing import Iterable, Iterator

from ..errors import InputError
from .recipe import Task


class EditActor:
    """Ray Data callable class: a batch of serialized Tasks → a batch of manifest records."""

    def __init__(self, threads: int | None = None):
        from .worker import set_threads

        set_threads(threads)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from .worker import execute_task

        records = [json.dumps(execute_task(Task.from_payload(json.loads(t)))) for t in batch["task"]]
        return {"record": np.array(records, dtype=object)}


def init_ray(address: str | None, workers: int, cpus_per_worker: float, gpus_per_worker: float) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs Ray Data: pip install 'autoinpaint[ray]' "
                         "(or pip install 'ray[data]')") from None
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs = dict(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                  logging_level="ERROR")
    if address:
        ray.init(address=address, **kwargs)
    else:
        cpus = max(os.cpu_count() or 1, int(workers * cpus_per_worker + 0.999))
        ray.init(num_cpus=cpus, num_gpus=None if gpus_per_worker else 0, **kwargs)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
    except Exception:  # noqa: BLE001 - cosmetic settings that differ between Ray versions
        pass


def run_ray(tasks: Iterable[Task], workers: int, address: str | None = None, cpus_per_worker: float = 1.0,
            gpus_per_worker: float = 0.0, threads: int | None = None, chunk_rows: int = 256) -> Iterator[dict]:
    """Yield one manifest record per task, computed by a pool of ``workers`` Ray actors."""
    it = iter(tasks)
    while True:
        chunk = list(itertools.islice(it, chunk_rows))
        if not chunk:
            return
        init_ray(address, workers, cpus_per_worker, gpus_per_worker)  # only when there is work
        import ray

        items = [{"task": json.dumps(t.to_payload())} for t in chunk]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        extra = {"num_gpus": gpus_per_worker} if gpus_per_worker else {}
        ds = ds.map_batches(EditActor, fn_constructor_kwargs={"threads": threads}, batch_size=1,
                            batch_format="numpy", concurrency=min(workers, len(items)),
                            num_cpus=cpus_per_worker, **extra)
        for row in ds.iter_rows():
            yield json.loads(row["record"])


def shutdown() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
