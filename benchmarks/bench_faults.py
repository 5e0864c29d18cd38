"""Batches under faults: what a worker killed mid-batch, a flaky bucket and a full disk cost; prints
markdown tables. Everything runs on this machine: the S3 server is moto on 127.0.0.1, the fault
injector is tests/flaky_proxy.py, the full disk a small tmpfs (root only).

* **worker**: ``--photos`` rows, ``--workers 2``; an undisturbed run, then the same batch with one
  worker process ``kill -9``-ed as soon as the first row is recorded: wall time, worker restarts,
  rows run again, records per row, outputs byte-identical or not. ``--engine ray`` likewise (one
  actor killed) with ``--sections ray``.
* **bucket**: the same rows read from and written to a bucket (manifest in the bucket too), through
  the proxy with no faults, then with every 5th request answered by a 503 or a reset connection:
  with the default client retries, and with ``AUTOINPAINT_S3_ATTEMPTS=1`` (botocore does not retry:
  autoinpaint.imaging.storage's own retries do all the work). Requests seen, faults injected, our retries.
* **disk**: OUTDIR on a 1 MiB tmpfs filled to leave room for about 3 outputs: rows done / failed
  (with the reason) / not started (the batch stops starting rows once the disk is full), the
  manifest's lines, then a resume once space is freed.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_faults.py [--photos 24] [--sections worker,bucket,disk,ray]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

FAST = ["--segmenter", "classical", "--inpainter", "telea"]


def photos(folder: Path, n: int) -> list[dict]:
    from test_batch import make_photos

    return make_photos(folder, n)


def write_recipe(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def records(manifest: Path) -> list[dict]:
    out = []
    for line in manifest.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def outputs(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".jpg", ".png")}


def run(args: list, cwd: Path, env: dict | None = None, kill_first: bool = False, manifest: Path | None = None):
    """``autoinpaint batch ARGS --json``; with ``kill_first``, SIGKILL the worker (pid of the first
    recorded row) as soon as that row is in ``manifest``. Returns (summary, seconds, victim pid)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "autoinpaint", "batch", *map(str, args), "--json"], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    while kill_first and victim is None and proc.poll() is None:
        done = [r for r in records(manifest) if r.get("status") == "done"] if manifest.exists() else []
        if done:
            victim = done[0]["pid"]
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.01)
    out, err = proc.communicate(timeout=1800)
    seconds = time.perf_counter() - t0
    if not out.strip():
        raise RuntimeError(err[-3000:])
    return json.loads(out), seconds, victim


def worker_section(work: Path, n: int, engine: str, ray_address: str | None) -> list[dict]:
    ph = photos(work / "in", n)
    write_recipe(work / "recipe.jsonl", [{"input": f"in/{p['name']}", "points": [p["point"]]} for p in ph])
    extra = ["--engine", engine, "--rows-per-task", "1"] + (["--ray-address", ray_address] if ray_address else []) \
        if engine == "ray" else []
    rows = []
    for name, kill in (("undisturbed", False), ("one worker kill -9'd", True)):
        out = work / f"{engine}-{'kill' if kill else 'clean'}"
        summary, seconds, victim = run(["recipe.jsonl", "-o", out, "--workers", "2", *extra, *FAST], work,
                                       kill_first=kill, manifest=out / "manifest.jsonl")
        recs = records(out / "manifest.jsonl")
        lines = [r["line"] for r in recs]
        rows.append({"engine": engine, "run": name, "rows": n, "done": summary["done"], "failed": summary["failed"],
                     "seconds": seconds,  # restarts are counted by the local pool only (Ray restarts its actors)
                     "restarts": summary.get("worker_restarts", "–") if engine == "local" else "–",
                     "rerun": summary.get("rows_rerun", "–") if engine == "local" else "–", "pids": len({r.get("pid") for r in recs}),
                     "once": sorted(lines) == list(range(1, n + 1)), "victim": victim, "out": out})
    rows[1]["identical"] = outputs(rows[1]["out"]) == outputs(rows[0]["out"])
    return rows


def bucket_section(work: Path, n: int) -> list[dict]:
    from moto.server import ThreadedMotoServer

    from flaky_proxy import FlakyProxy

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AUTOINPAINT_CACHE": str(work / "cache"), "AUTOINPAINT_MANIFEST_FLUSH_SECONDS": "0.5"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=f"http://{host}:{port}", skip_instance_cache=True)
    fs.mkdir("bench")
    ph = photos(work / "shots", n)
    for p in ph:
        fs.pipe_file(f"bench/shots/{p['name']}", (work / "shots" / p["name"]).read_bytes())
    write_recipe(work / "s3.jsonl", [{"input": f"s3://bench/shots/{p['name']}", "points": [p["point"]]} for p in ph])
    write_recipe(work / "local.jsonl", [{"input": f"shots/{p['name']}", "points": [p["point"]]} for p in ph])
    ref, _, _ = run(["local.jsonl", "-o", work / "local", "--workers", "2", *FAST], work)
    rows = []
    try:
        for name, every, attempts in (("no faults", 10**9, None), ("every 5th request fails", 5, None),
                                      ("every 5th fails, AUTOINPAINT_S3_ATTEMPTS=1", 5, "1")):
            key = f"run{len(rows)}"
            with FlakyProxy(f"http://{host}:{port}", every=every) as proxy:
                run_env = {**env, "AWS_ENDPOINT_URL": proxy.url, **({"AUTOINPAINT_S3_ATTEMPTS": attempts} if attempts else {})}
                summary, seconds, _ = run(["s3.jsonl", "-o", f"s3://bench/{key}", "--manifest",
                                           f"s3://bench/{key}/manifest.jsonl", "--workers", "2", *FAST], work, run_env)
            fs.invalidate_cache()
            recs = [json.loads(x) for x in fs.cat_file(f"bench/{key}/manifest.jsonl").decode().splitlines()]
            same = all(fs.cat_file(f"bench/{key}/{p['name']}") == (work / "local" / p["name"]).read_bytes() for p in ph)
            parts = [k for k in fs.find(f"bench/{key}") if ".parts/" in k or k.endswith(".tmp")]
            rows.append({"run": name, "rows": n, "done": summary["done"], "failed": summary["failed"],
                         "seconds": seconds, **proxy.counts, "ours": summary.get("storage_retries", 0),
                         "once": sorted(r["line"] for r in recs) == list(range(1, n + 1)), "identical": same,
                         "leftovers": len(parts)})
    finally:
        server.stop()
    return rows, ref


def disk_section(work: Path, n: int) -> dict | None:
    if os.geteuid() != 0:
        return None
    from test_reliability_batch import fill

    ph = photos(work / "in", n)
    write_recipe(work / "disk.jsonl", [{"input": f"in/{p['name']}", "points": [p["point"]]} for p in ph])
    run(["disk.jsonl", "-o", work / "disk-clean", "--workers", "1", *FAST], work)
    ref = outputs(work / "disk-clean")
    mnt = work / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)]).returncode:
        return None
    try:
        room = sum(-(-len(ref[p["name"]]) // 4096) * 4096 for p in ph[:3])
        filler = fill(mnt, leave=256 * 1024 + room + 8192)
        first, s1, _ = run(["disk.jsonl", "-o", mnt / "out", "--workers", "1", *FAST], work)
        recs = records(mnt / "out" / "manifest.jsonl")
        torn = len((mnt / "out" / "manifest.jsonl").read_text().splitlines()) - len(recs)
        reasons = sorted({r["error"].split(": ", 1)[-1] for r in recs if r["status"] == "failed"})
        filler.unlink()
        second, s2, _ = run(["disk.jsonl", "-o", mnt / "out", "--workers", "1", *FAST], work)
        same = outputs(mnt / "out") == ref
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
    return {"rows": n, "first": first, "torn": torn, "reasons": reasons, "second": second, "identical": same,
            "s1": s1, "s2": s2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--sections", default="worker,bucket,disk")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_faults_"))
    load_before = os.getloadavg()
    worker_rows, bucket_rows, disk = [], [], None
    try:
        if "worker" in args.sections:
            worker_rows += worker_section(work / "worker", args.photos, "local", None)
        if "ray" in args.sections:
            worker_rows += worker_section(work / "ray", args.photos, "ray", None)
        if "bucket" in args.sections:
            bucket_rows, _ = bucket_section(work / "bucket", args.photos)
        if "disk" in args.sections:
            disk = disk_section(work / "disk", 12)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"\nautoinpaint batch under faults: {os.cpu_count()} CPU cores, load average {load_before[0]:.2f} before / "
          f"{load_after[0]:.2f} after; catalogue photos 300×200, classical segmenter, telea, 2 workers\n")
    if worker_rows:
        print("| engine | run | rows | done | failed | wall | worker restarts | rows run again | worker PIDs seen | "
              "each row once in the manifest | outputs = undisturbed run |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in worker_rows:
            print(f"| {r['engine']} | {r['run']} | {r['rows']} | {r['done']} | {r['failed']} | {r['seconds']:.1f} s | "
                  f"{r['restarts']} | {r['rerun']} | {r['pids']} | {'yes' if r['once'] else 'NO'} | "
                  f"{'' if 'identical' not in r else ('yes' if r['identical'] else 'NO')} |")
        print()
    if bucket_rows:
        print("| bucket (inputs, outputs, manifest) | rows | done | failed | wall | requests | 503 | reset | "
              "our retries (workers) | each row once | outputs = local run | parts / temporary objects left |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in bucket_rows:
            print(f"| {r['run']} | {r['rows']} | {r['done']} | {r['failed']} | {r['seconds']:.1f} s | {r['requests']} | "
                  f"{r['503']} | {r['reset']} | {r['ours']} | {'yes' if r['once'] else 'NO'} | "
                  f"{'yes' if r['identical'] else 'NO'} | {r['leftovers']} |")
        print()
    if disk:
        f, s = disk["first"], disk["second"]
        print("| full disk (1 MiB tmpfs) | rows | done | skipped | failed | not started | torn manifest lines | "
              "manifest reserve given back | reason | outputs = clean run |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        print(f"| disk full | {disk['rows']} | {f['done']} | {f['skipped']} | {f['failed']} | {disk['rows'] - f['total']} "
              f"(stopped: {f.get('stopped')}) | {disk['torn']} | {'yes' if f.get('manifest_reserve_used') else 'no'} | "
              f"{'; '.join(disk['reasons'])} | |")
        print(f"| resume after freeing space | {disk['rows']} | {s['done']} | {s['skipped']} | {s['failed']} | "
              f"{disk['rows'] - s['total']} | | | | {'yes' if disk['identical'] else 'NO'} |")
    elif "disk" in args.sections:
        print("(disk: skipped: mounting a tmpfs needs root)")


if __name__ == "__main__":
    main()
