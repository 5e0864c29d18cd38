"""Planning a batch: the recipe's Tasks as a stream, checked against this run and the earlier ones.

The planner runs where the rows are read: in the driver for the local engine, in the Ray read task (on
the driver's node) for the Ray engine. Its memory stays flat however long the recipe: what it must
remember (the outputs claimed so far in this run, the latest ``done`` record per output in the manifest)
lives in a private temporary SQLite database on disk, deleted when it is closed.

A Task leaves the planner as one of

* failed already (``error`` set): a malformed row, or a second row writing an output an earlier row of
  this run writes (``DuplicateOutput``);
* to run, with ``previous`` = the manifest's latest done record for its output (hash and size), so the
  worker skips it when nothing changed (the worker hashes the input, which may be a remote object).
"""
from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import Iterable, Iterator

from .manifest import ManifestSnapshot
from .recipe import Defaults, Task, iter_tasks

DONE_STATUSES = ("done", "skipped")  # records whose output is complete and current
RETRY_STATUSES = ("failed", "not_found")  # records after which the row runs again


@dataclass(frozen=True)
class Plan:
    """Everything the planner needs (picklable: it travels to the Ray read task)."""

    source: str
    outdir: str
    defaults: Defaults
    manifest: ManifestSnapshot


class RunIndex:
    """Outputs claimed in this run and the latest done record per output, on disk (flat memory)."""

    def __init__(self):
        self._db = sqlite3.connect("")  # "": a private temporary on-disk database, deleted on close
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE done (output TEXT PRIMARY KEY, hash TEXT, size INTEGER);"
            "CREATE TABLE claimed (output TEXT PRIMARY KEY, line INTEGER);")

    def load(self, records: Iterable[dict]) -> None:
        """Replay manifest records, oldest first: a done/skipped record sets its output's entry, a
        failed or not_found one clears it (such a row is always retried)."""
        for rec in records:
            output = rec.get("output")
            if not output:
                continue
            if rec.get("status") in DONE_STATUSES:
                self._db.execute("INSERT OR REPLACE INTO done VALUES (?, ?, ?)",
                                 (output, rec.get("hash"), rec.get("output_size")))
            elif rec.get("status") in RETRY_STATUSES:
                self._db.execute("DELETE FROM done WHERE output = ?", (output,))

    def previous(self, output: str) -> dict | None:
        row = self._db.execute("SELECT hash, size FROM done WHERE output = ?", (output,)).fetchone()
        return {"hash": row[0], "output_size": row[1]} if row else None

    def claim(self, output: str, line: int) -> int | None:
        """Claim ``output`` for ``line``; returns the line that claimed it first, if another did."""
        if self._db.execute("INSERT OR IGNORE INTO claimed VALUES (?, ?)", (output, line)).rowcount:
            return None
        return self._db.execute("SELECT line FROM claimed WHERE output = ?", (output,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()


def plan_tasks(plan: Plan) -> Iterator[Task]:
    """Stream the Tasks of ``plan`` in recipe order, failed already or annotated with ``previous``."""
    index = RunIndex()
    try:
        index.load(plan.manifest.records())
        for task in iter_tasks(plan.source, plan.outdir, plan.defaults):
            if task.error:
                yield task
                continue
            first = index.claim(task.output, task.line)
            if first is not None:
                yield dataclasses.replace(
                    task, error_type="DuplicateOutput",
                    error=f"line {task.line}: output {task.output} is also the output of line {first}; "
                          f"use an output template such as {{parent}}/{{stem}}{{ext}}")
                continue
            yield dataclasses.replace(task, previous=index.previous(task.output))
    finally:
        index.close()
