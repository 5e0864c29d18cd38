"""A real ``autoinpaint serve`` process on 127.0.0.1 (uvicorn, its own process, a free port), and a
load generator of clients that open photos, click and remove: shared by tests/test_reliability_serve.py
and benchmarks/bench_load.py. Everything here talks to 127.0.0.1 only, in loops bounded in count and time.
"""
from __future__ import annotations

import io
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def photo_bytes(w: int, h: int, seed: int, fmt: str = "PNG") -> tuple[bytes, tuple[int, int]]:
    """A catalogue photo (product + price sticker) encoded as ``fmt``; returns (bytes, a point on the sticker)."""
    from PIL import Image
    from scenes import catalogue_photo

    scene = catalogue_photo(w, h, seed)
    buf = io.BytesIO()
    Image.fromarray(scene.image).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue(), (int(scene.point[0]), int(scene.point[1]))


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class ServeProcess:
    """``python -m autoinpaint serve ARGS --port 0`` with its stderr read in the background; stopped by
    :meth:`stop` (SIGTERM, then SIGKILL after ``timeout``) by its PID."""

    def __init__(self, *args: str, env: dict | None = None, timeout: float = 60.0):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoinpaint", "serve", "--port", "0", "--no-open", *map(str, args)],
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        self.url: str | None = None
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.stderr.append(line)
                m = re.search(r"autoinpaint serve: (http://127\.0\.0\.1:\d+)/", line)
                if m:
                    self.url = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(timeout)
        if self.url is None:
            self.stop()
            raise RuntimeError("the server did not start: " + "".join(self.stderr)[-2000:])
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if httpx.get(self.url + "/api/info", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the server does not answer: " + "".join(self.stderr)[-2000:])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self):
        import httpx

        return httpx.Client(base_url=self.url, timeout=120)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig``; returns the exit code (SIGKILL after ``timeout`` s: then the test fails on it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_job(http, job: str, timeout: float = 120.0) -> dict:
    """Poll ``/api/jobs/JOB`` until a final state (bounded by ``timeout``)."""
    end = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < end:
        r = http.get(f"/api/jobs/{job}")
        body = r.json()
        if r.status_code != 200 or body.get("status") in ("done", "failed", "cancelled"):
            return {"http": r.status_code, **body}
        time.sleep(0.05)
    return {"http": 0, **body, "timed_out": True}


def spiral(center: tuple[int, int], n: int, w: int, h: int):
    """``n`` distinct points around ``center`` inside a w×h image (every click runs the segmenter)."""
    cx, cy = center
    for i in range(n):
        r, a = 1 + 0.6 * i, i * 2.4
        yield [min(max(cx + r * math.cos(a), 0), w - 1), min(max(cy + r * math.sin(a), 0), h - 1)]


@dataclass
class ClientLog:
    """What one simulated person saw: every status code, click round trips (s), the server's own
    time for each click (its ``timings.total``, s), final job states."""

    statuses: list = field(default_factory=list)
    clicks: list = field(default_factory=list)
    server: list = field(default_factory=list)
    jobs: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def person(url: str, photos: list[tuple[bytes, tuple[int, int]]], clicks: int, size: tuple[int, int],
           pause: float, log: ClientLog, deadline: float) -> None:
    """One person: for each photo, upload it, click ``clicks`` times around its sticker, then remove
    what the last click selected and fetch the result. Bounded by ``deadline`` (monotonic)."""
    import httpx

    with httpx.Client(base_url=url, timeout=120) as http:
        for n, (data, point) in enumerate(photos):
            try:
                r = http.post("/api/images", files={"file": (f"p{n}.png", data, "image/png")})
                log.statuses.append(r.status_code)
                if r.status_code != 201:
                    log.errors.append(r.text[:200])
                    continue
                image = r.json()["id"]
                last = [point]
                for p in spiral(point, clicks, *size):
                    if time.monotonic() > deadline:
                        return
                    time.sleep(pause)
                    t = time.perf_counter()
                    r = http.post(f"/api/images/{image}/mask", json={"points": [p]})
                    log.clicks.append(time.perf_counter() - t)
                    log.statuses.append(r.status_code)
                    if r.status_code == 200:
                        last = [p]
                        log.server.append(r.json()["timings"]["total"])
                    elif "empty mask" not in r.text:
                        log.errors.append(r.text[:200])
                r = http.post(f"/api/images/{image}/edit", json={"points": last, "action": "remove"})
                log.statuses.append(r.status_code)
                if r.status_code != 202:
                    log.errors.append(r.text[:200])
                    continue
                final = wait_job(http, r.json()["job"], timeout=max(1.0, deadline - time.monotonic()))
                log.jobs.append(final.get("status"))
                if final.get("status") == "done":
                    r = http.get(f"/api/jobs/{final['job']}/result")
                    log.statuses.append(r.status_code)
            except httpx.HTTPError as exc:  # a dropped connection is a failure the test reports
                log.errors.append(f"{type(exc).__name__}: {exc}")


def load(url: str, clients: int, photos_each: int, clicks: int, size: tuple[int, int] = (320, 240),
         pause: float = 0.0, timeout: float = 120.0) -> list[ClientLog]:
    """``clients`` people at once, each with its own photos; returns their logs."""
    logs = [ClientLog() for _ in range(clients)]
    deadline = time.monotonic() + timeout
    threads = []
    for c in range(clients):
        photos = [photo_bytes(*size, seed=c * photos_each + i) for i in range(photos_each)]
        threads.append(threading.Thread(target=person, args=(url, photos, clicks, size, pause, logs[c], deadline)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    return logs


def pct(values, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]
