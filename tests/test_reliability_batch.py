"""Batches under faults (issue 21): a worker process killed mid-batch (the pool replaces it and runs
its rows again, in the same run), a poisonous row that kills every worker it runs on, a flaky bucket
(a fault-injecting proxy in front of the moto S3 server), and a full disk under OUTDIR (a small tmpfs)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoinpaint.batch.recipe import Task
from autoinpaint.batch.runner import MAX_WORKER_DEATHS, run_local
from test_batch import FAST, batch, make_photos, records_tolerant, write_jsonl


def photo_rows(folder: Path, n: int, copies: int = 1) -> list[dict]:
    photos = make_photos(folder / "in", n)
    return [{"input": f"in/{p['name']}", "points": [p["point"]], "output": "{stem}_{line}{ext}"}
            for _ in range(copies) for p in photos]


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in (".jpg", ".png")}


def kill_first_worker(proc: subprocess.Popen, manifest: Path, wait_s: float, run_s: float) -> tuple[int, str, str]:
    """SIGKILL the process that wrote the first finished row of the running batch ``proc`` (a pool worker or a
    Ray actor, busy with its next row), then wait for the batch: (the killed pid, stdout, stderr). The batch's process group
    is killed if it outlives ``run_s``."""
    victim = None
    deadline = time.time() + wait_s
    while victim is None and time.time() < deadline and proc.poll() is None:
        done = [r for r in records_tolerant(manifest) if r.get("status") == "done"] if manifest.exists() else []
        if done:
            victim = done[0]["pid"]
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.01)
    try:
        out, err = proc.communicate(timeout=run_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert victim is not None, "no row finished before the batch ended"
    return victim, out, err


def test_kill_9_one_worker_mid_batch_the_batch_completes_in_the_same_run(tmp_path):
    rows = photo_rows(tmp_path, 8, copies=2)  # 16 rows
    write_jsonl(tmp_path / "recipe.jsonl", rows)
    clean = batch("recipe.jsonl", "-o", "clean", "--workers", "2", "-q", *FAST, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr

    proc = subprocess.Popen([sys.executable, "-m", "autoinpaint", "batch", "recipe.jsonl", "-o", "out",
                             "--workers", "2", "--json", *FAST], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = tmp_path / "out" / "manifest.jsonl"
    victim, out, err = kill_first_worker(proc, manifest, wait_s=60, run_s=120)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(out)
    assert summary["done"] == len(rows) and summary["failed"] == 0
    assert summary["worker_restarts"] == 1 and summary["rows_rerun"] >= 1  # the kill landed mid-batch
    recs = records_tolerant(manifest)
    assert sorted(r["line"] for r in recs) == list(range(1, len(rows) + 1))  # every row exactly once
    assert all(r["status"] == "done" for r in recs)
    assert sum(1 for r in recs if r.get("worker_deaths") == 1) == summary["rows_rerun"]
    after = [r for r in recs if r["pid"] != victim]
    assert {r["pid"] for r in after} - {r["pid"] for r in recs[:1]}, "no replacement worker did any row"
    assert outputs(tmp_path / "out") == outputs(tmp_path / "clean")  # byte-identical to an undisturbed run
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def _poisonous(task: Task) -> dict:
    """A worker's work where line 3 kills its process every time (a row that crashes a native library)."""
    if task.line == 3:
        os._exit(9)
    time.sleep(0.05)
    return {"line": task.line, "status": "done", "pid": os.getpid()}


def test_a_row_that_kills_every_worker_fails_alone_and_the_others_finish():
    tasks = [Task(line=i, input=f"in/{i}.png", output=f"/nonexistent/out/{i}.png") for i in range(1, 9)]
    stats: dict = {}
    recs = list(run_local(iter(tasks), workers=2, threads=1, stats=stats, run=_poisonous))
    by_line = {r["line"]: r for r in recs}
    assert sorted(r["line"] for r in recs) == list(range(1, 9))  # one record each
    assert by_line[3]["status"] == "failed" and by_line[3]["error_type"] == "WorkerDied"
    assert all(by_line[i]["status"] == "done" for i in by_line if i != 3)
    assert stats["worker_restarts"] == MAX_WORKER_DEATHS + 1  # twice among other rows, once alone


def test_flaky_bucket_every_5th_request_fails_the_batch_retries_and_does_every_row_once(s3_server, tmp_path):
    """Inputs, outputs and the manifest in a bucket behind a proxy that answers every 5th request with a
    503 or a reset connection: every row done once, outputs byte-identical to a local run, no partial
    object, a valid manifest (its parts folded)."""
    from flaky_proxy import FlakyProxy
    from test_storage import batch as batch_env
    from test_storage import s3, upload_photos

    fs = s3()
    bucket = "flaky"
    fs.mkdir(bucket)
    photos = upload_photos(fs, bucket, tmp_path / "shots", 5)
    rows = [{"input": f"s3://{bucket}/shots/{p['name']}", "points": [p["point"]]} for p in photos]
    write_jsonl(tmp_path / "recipe.jsonl", rows)
    write_jsonl(tmp_path / "local.jsonl", [{**r, "input": f"shots/{Path(r['input']).name}"} for r in rows])
    clean = batch("local.jsonl", "-o", "clean", "--workers", "2", "-q", *FAST, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    with FlakyProxy(s3_server, every=5) as proxy:
        env = {"AWS_ENDPOINT_URL": proxy.url, "AUTOINPAINT_MANIFEST_FLUSH_SECONDS": "0.2"}
        r = batch_env("recipe.jsonl", "-o", f"s3://{bucket}/out", "--manifest", f"s3://{bucket}/out/manifest.jsonl",
                      "--workers", "2", "--json", *FAST, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert proxy.counts["503"] >= 2 and proxy.counts["reset"] >= 2, proxy.counts  # faults did happen
    summary = json.loads(r.stdout)
    assert (summary["done"], summary["failed"]) == (len(rows), 0)
    fs.invalidate_cache()
    keys = sorted(k.split("/", 2)[2] for k in fs.find(f"{bucket}/out"))
    keys = [k for k in keys if k != "review.html" and not k.startswith("review/")]  # rows in doubt, if any
    assert keys == sorted([p["name"] for p in photos] + ["manifest.jsonl"])  # no part, no temporary name
    for p in photos:
        assert fs.cat_file(f"{bucket}/out/{p['name']}") == (tmp_path / "clean" / p["name"]).read_bytes()
    recs = [json.loads(line) for line in fs.cat_file(f"{bucket}/out/manifest.jsonl").decode().splitlines()]
    assert sorted(r["line"] for r in recs) == list(range(1, len(rows) + 1))  # every row exactly once
    assert all(r["status"] == "done" for r in recs)


class _FlakyFS:
    """A store whose calls fail ``fails`` times (a reset connection, then a 503 as botocore reports it)
    before they work; records every call."""

    def __init__(self, fails: int):
        self.fails, self.calls, self.objects = fails, [], {}

    def _maybe_fail(self, what: str) -> None:
        self.calls.append(what)
        if self.fails > 0:
            self.fails -= 1
            if self.fails % 2:
                raise ConnectionResetError(104, "Connection reset by peer")
            exc = Exception("An error occurred (SlowDown) when calling the PutObject operation")
            exc.response = {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}
            raise exc

    def pipe_file(self, path, data):
        self._maybe_fail("put")
        self.objects[path] = data

    def cat_file(self, path):
        self._maybe_fail("get")
        if path not in self.objects:
            raise FileNotFoundError(path)
        return self.objects[path]

    def invalidate_cache(self):
        pass


def test_our_retry_layer_backs_off_on_transient_failures_and_never_on_a_missing_object(monkeypatch):
    """Below botocore's own retries, autoinpaint.imaging.storage retries what the client gave up on: a reset
    connection, a 503 (with backoff), up to $AUTOINPAINT_STORAGE_RETRIES more tries; a missing object
    is an answer, not retried."""
    from autoinpaint.imaging import storage
    from autoinpaint.errors import InputError, StorageError

    store = _FlakyFS(fails=3)
    sleeps = []
    monkeypatch.setattr(storage, "_fs", lambda spec: (store, str(spec).split("://", 1)[1]))
    monkeypatch.setattr(storage.time, "sleep", sleeps.append)
    before = storage.RETRIES
    storage.write_bytes("s3://b/out/a.png", b"pixels")
    assert store.objects == {"b/out/a.png": b"pixels"} and store.calls == ["put"] * 4
    assert storage.RETRIES - before == 3 and len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]  # backoff
    with pytest.raises(InputError, match="no such file"):
        storage.read_bytes("s3://b/out/missing.png")
    assert store.calls[-1] == "get" and store.calls.count("get") == 1  # not retried
    store.fails = 9  # more than 3 retries: the failure is reported, once
    monkeypatch.setenv("AUTOINPAINT_STORAGE_RETRIES", "3")
    with pytest.raises(StorageError, match="cannot write s3://b/out/b.png"):
        storage.write_bytes("s3://b/out/b.png", b"x")
    assert "b/out/b.png" not in store.objects


# ------------------------------------------------------------------------------------------ a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted on ``tmp_path/disk`` (root only), unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs in this sandbox: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write a filler file until at most ``leave`` bytes are free on ``folder``'s file system."""
    filler = folder / "filler.bin"
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize - leave
    with open(filler, "wb") as fh:
        try:
            while free > 0:
                free -= fh.write(b"\xff" * min(free, 65536))
                fh.flush()
        except OSError:
            pass
    return filler


def test_manifest_appends_on_a_full_disk_never_tear_a_line(small_disk):
    from autoinpaint.batch.manifest import LocalManifest, ManifestFull

    book = LocalManifest(small_disk / "manifest.jsonl", reserve_bytes=16 * 1024)
    book.open()
    fill(small_disk)  # not one free byte
    with pytest.raises(OSError):
        (small_disk / "probe").write_bytes(b"x" * 8192)
    written = 0
    with pytest.raises(ManifestFull, match="free some space"):
        for i in range(10_000):
            book.append({"line": i, "status": "failed", "error": "No space left on device " + "x" * 200})
            written += 1
    book.close()
    assert book.reserve_used and written >= 16 * 1024 // 300  # the reserve held the records ...
    lines = (small_disk / "manifest.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == written  # ... whole lines only, the last one included
    assert [json.loads(x)["line"] for x in lines[:-1]] == list(range(written))


def test_full_disk_under_outdir_rows_fail_with_the_reason_and_a_resume_completes(small_disk, tmp_path):
    rows = photo_rows(tmp_path, 4, copies=2)  # 8 rows
    write_jsonl(tmp_path / "recipe.jsonl", rows)
    clean = batch("recipe.jsonl", "-o", "clean", "--workers", "1", "-q", *FAST, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    ref = outputs(tmp_path / "clean")
    first = sum(-(-len(ref[f"{Path(r['input']).stem}_{i}{Path(r['input']).suffix}"]) // 4096) * 4096
                for i, r in enumerate(rows[:3], 1))
    out = small_disk / "out"
    out.mkdir()
    filler = fill(small_disk, leave=256 * 1024 + first + 8192)  # the manifest's reserve, 3 outputs, a little
    full = batch("recipe.jsonl", "-o", out, "--workers", "1", "--json", *FAST, cwd=tmp_path)
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert f"Error: {out} is full: the batch stopped" in full.stderr and "run the same command again" in full.stderr
    summary = json.loads(full.stdout)
    assert summary["stopped"] == "disk full" and summary["done"] >= 1 and summary["failed"] >= 1
    assert summary["done"] + summary["failed"] < len(rows)  # no new row started once the disk was full
    recs = records_tolerant(out / "manifest.jsonl")
    assert len(recs) == len((out / "manifest.jsonl").read_text().splitlines())  # no torn line
    lines = sorted(r["line"] for r in recs)
    assert lines == list(range(1, len(recs) + 1))  # the first rows, each recorded once
    failed = [r for r in recs if r["status"] == "failed"]
    assert failed and all("No space left on device" in r["error"] for r in failed)
    assert not [p for p in out.iterdir() if p.name.endswith((".tmp", ".reserve"))]
    for r in recs:
        if r["status"] == "done":
            assert Path(r["output"]).read_bytes() == ref[Path(r["output"]).name]
        else:
            assert not Path(r["output"]).exists()

    filler.unlink()  # space is freed: the same command resumes and completes the batch
    resumed = batch("recipe.jsonl", "-o", out, "--workers", "1", "--json", *FAST, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = json.loads(resumed.stdout)
    assert (again["done"], again["skipped"], again["failed"]) == (len(rows) - summary["done"], summary["done"], 0)
    assert outputs(out) == ref


def test_kill_9_one_ray_actor_mid_batch_the_batch_completes(ray_session, tmp_path):
    """``--engine ray``: a Ray actor killed mid-batch is restarted (Ray Data's actors restart without
    limit) and the block it held runs again (``max_task_retries=1``): every row done once, outputs
    byte-identical to the local engine's."""
    rows = photo_rows(tmp_path, 10)  # 10 rows
    write_jsonl(tmp_path / "recipe.jsonl", rows)
    clean = batch("recipe.jsonl", "-o", "clean", "--workers", "2", "-q", *FAST, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    proc = subprocess.Popen([sys.executable, "-m", "autoinpaint", "batch", "recipe.jsonl", "-o", "out",
                             "--engine", "ray", "--ray-address", ray_session, "--rows-per-task", "1",
                             "--workers", "2", "--json", *FAST], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = tmp_path / "out" / "manifest.jsonl"
    _, out, err = kill_first_worker(proc, manifest, wait_s=120, run_s=180)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(out)
    assert (summary["done"], summary["failed"]) == (len(rows), 0)
    recs = records_tolerant(manifest)
    assert sorted(r["line"] for r in recs) == list(range(1, len(rows) + 1))  # every row exactly once
    assert len({r["pid"] for r in recs}) >= 3  # the killed actor, its sibling, and the restarted actor
    assert outputs(tmp_path / "out") == outputs(tmp_path / "clean")
