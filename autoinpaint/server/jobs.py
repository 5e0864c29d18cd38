"""Long work in worker threads: a job has a status, a progress and a result, and can be cancelled.

Statuses: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``. The work is a function
``work(job)`` that reports through :meth:`Job.report` (which raises
:class:`~autoinpaint.inpaint.Cancelled` once the job is cancelled, so a diffusion call stops at its
next step) and stores what it produced in ``job.result``. A client that stops asking about a job
for ``client_timeout`` seconds is taken to be gone: its job is cancelled. A finished job is
forgotten (its result freed) ``result_ttl`` seconds after it was last asked about, and at most
``max_jobs`` are kept: past it a new job is refused with 429 and a ``Retry-After`` estimated from
the measured job time. Nothing here writes a file.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import AutoinpaintError
from ..inpaint.base import Cancelled
from .errors import Busy, NotFound, status_of

log = logging.getLogger("autoinpaint.server")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass
class Job:
    """One unit of long work. ``progress`` is 0..1; ``step``/``steps`` the model's own count
    (diffusion steps) when it reports one; ``error``/``error_status`` say why it failed."""

    id: str
    kind: str = "edit"
    status: str = QUEUED
    progress: float = 0.0
    stage: str | None = None
    step: int | None = None
    steps: int | None = None
    error: str | None = None
    error_status: int | None = None
    result: Any = None
    info: dict = field(default_factory=dict)
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise Cancelled when the job was cancelled (call between stages)."""
        if self.cancel_event.is_set():
            raise Cancelled("cancelled")

    def report(self, progress: float | None = None, stage: str | None = None,
               step: int | None = None, steps: int | None = None) -> None:
        """Record progress (0..1) and stage; raises Cancelled once the job is cancelled."""
        if progress is not None:
            self.progress = min(max(float(progress), self.progress), 1.0)
        if stage is not None:
            self.stage = stage
        if steps is not None:
            self.step, self.steps = step, steps
        self.check()

    def to_dict(self) -> dict:
        out = {"job": self.id, "status": self.status, "progress": round(self.progress, 4),
               "stage": self.stage, "error": self.error}
        if self.steps is not None:
            out.update(step=self.step, steps=self.steps)
        if self.status == RUNNING and self.cancelled:
            out["cancel_requested"] = True
        out.update(self.info)
        return out


class JobManager:
    """Runs jobs on ``workers`` threads; see the module docstring for the lifetimes.

    Args:
        workers: jobs run at once (the rest wait, ``queued``).
        client_timeout: seconds without a status/result request after which a job is cancelled
            (its client is gone).
        result_ttl: seconds a finished job is kept after its last request.
        max_jobs: jobs kept at once; a new one beyond it is refused (429, ``Retry-After``) unless a
            finished one can go.
    """

    def __init__(self, workers: int = 1, client_timeout: float = 120.0, result_ttl: float = 900.0,
                 max_jobs: int = 32):
        self.client_timeout, self.result_ttl, self.max_jobs = client_timeout, result_ttl, max_jobs
        self.workers = max(1, workers)
        self.job_seconds: float | None = None  # moving average of a finished job's run time
        self.refused = 0  # jobs refused because the server was full (a figure for operators)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="autoinpaint-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="autoinpaint-reaper", daemon=True)
        self._reaper.start()

    # ------------------------------------------------------------------------------------------ api
    def submit(self, work: Callable[[Job], None], kind: str = "edit", **info) -> Job:
        """Queue ``work(job)``; returns the job (status ``queued``). Busy (429) when full."""
        self.reap()
        job = Job(secrets.token_urlsafe(12), kind, info=dict(info))
        with self._lock:
            if len(self._jobs) >= self.max_jobs:
                finished = [j for j in self._jobs.values() if j.status in FINISHED]
                if not finished:
                    self.refused += 1
                    raise Busy(f"{len(self._jobs)} jobs are queued or running (--max-jobs {self.max_jobs}): "
                               f"try again when one is done", retry_after=self._retry_after())
                self._jobs.pop(min(finished, key=lambda j: j.seen).id)
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str, touch: bool = True) -> Job:
        """The job ``job_id`` (a request about it counts as the client being there); NotFound (404)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are forgotten after a while)")
        if touch:
            job.seen = time.monotonic()
        return job

    def cancel(self, job_id: str) -> Job:
        """Ask ``job_id`` to stop: a queued job is cancelled at once, a running one at its next step."""
        job = self.get(job_id)
        self._cancel(job)
        return job

    def reap(self) -> None:
        """Cancel the jobs whose client is gone; forget finished jobs nobody asked about lately."""
        now = time.monotonic()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.status in FINISHED:
                if now - max(job.seen, job.finished or 0) > self.result_ttl:
                    with self._lock:
                        self._jobs.pop(job.id, None)
                    job.result = None
            elif now - job.seen > self.client_timeout and not job.cancelled:
                log.info("job %s: no client for %.0f s, cancelling", job.id, now - job.seen)
                self._cancel(job)

    def shutdown(self, grace: float = 0.0) -> None:
        """Stop: queued jobs are cancelled; running ones get ``grace`` seconds to finish, then are
        cancelled (they stop at their next step) and waited for, so no work outlives the server."""
        self._stop.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.status == QUEUED:
                self._cancel(job)
        end = time.monotonic() + grace
        while time.monotonic() < end and any(j.status == RUNNING for j in jobs):
            time.sleep(0.05)
        for job in jobs:
            self._cancel(job)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead × the mean job time / workers."""
        per_job = self.job_seconds if self.job_seconds is not None else 5.0
        ahead = sum(j.status in (QUEUED, RUNNING) for j in self._jobs.values())
        return int(min(60, max(1, round(per_job * max(1, ahead) / self.workers))))

    def __len__(self) -> int:
        return len(self._jobs)

    # ------------------------------------------------------------------------------------------ inside
    def _cancel(self, job: Job) -> None:
        job.cancel_event.set()
        with self._lock:
            if job.status == QUEUED:
                self._finish(job, CANCELLED)

    def _finish(self, job: Job, status: str, error: str | None = None, error_status: int | None = None) -> None:
        job.status, job.error, job.error_status = status, error, error_status
        job.finished = time.monotonic()
        if status == DONE and job.started is not None:
            took = job.finished - job.started
            self.job_seconds = took if self.job_seconds is None else 0.8 * self.job_seconds + 0.2 * took
        if status != DONE:
            job.result = None  # free what a failed or cancelled job held

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        with self._lock:
            if job.status != QUEUED:
                return
            job.status = RUNNING
            job.started = time.monotonic()
        try:
            job.check()
            work(job)
            job.check()  # cancelled during a step that could not stop: drop its result
        except Cancelled:
            self._finish(job, CANCELLED)
        except AutoinpaintError as exc:
            self._finish(job, FAILED, str(exc), status_of(exc))
        except Exception as exc:  # noqa: BLE001 - reported as the job's error, never a traceback
            log.exception("job %s failed", job.id)
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            self._finish(job, FAILED, f"unexpected {type(exc).__name__}: {first}", 500)
        else:
            job.progress = 1.0
            self._finish(job, DONE)

    def _reap_loop(self) -> None:
        period = max(0.05, min(self.client_timeout, self.result_ttl) / 4)
        while not self._stop.wait(min(period, 5.0)):
            try:
                self.reap()
            except Exception:  # noqa: BLE001 - the reaper must outlive any one bad job
                log.exception("job reaper")
