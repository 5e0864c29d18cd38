"""Batch editing: recipes (JSONL / CSV / YAML, or a folder of images; paths or URLs), a resumable local
process pool and a streaming Ray Data engine.

>>> from autoinpaint.batch import Defaults, run_batch
>>> run_batch("recipe.jsonl", "out/", Defaults(), workers=2)  # doctest: +SKIP
>>> run_batch("s3://shop/recipe.csv", "s3://shop/cleaned", engine="ray")  # doctest: +SKIP
"""
from .manifest import MANIFEST_NAME, Manifest, open_manifest
from .recipe import Defaults, Task, iter_tasks
from .runner import BatchFailed, run_batch

__all__ = ["Defaults", "Task", "iter_tasks", "run_batch", "Manifest", "open_manifest", "MANIFEST_NAME",
           "BatchFailed"]
