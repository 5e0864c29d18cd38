"""Batch editing: recipes (JSONL / CSV / YAML, or a folder), a resumable local process pool and a Ray engine.

>>> from autoinpaint.batch import Defaults, run_batch
>>> run_batch("recipe.jsonl", "out/", Defaults(), workers=2)  # doctest: +SKIP
"""
from .recipe import Defaults, Task, iter_tasks
from .runner import MANIFEST_NAME, BatchFailed, Manifest, run_batch

__all__ = ["Defaults", "Task", "iter_tasks", "run_batch", "Manifest", "MANIFEST_NAME", "BatchFailed"]
