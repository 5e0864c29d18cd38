"""The web app under load and over a long day: a real ``autoinpaint serve`` (uvicorn, its own process,
127.0.0.1), HTTP clients in this process; prints markdown tables.

* **Clicks, 1 vs 8 people.** Each person opens their own photos (catalogue photos, the classical
  segmenter), clicks ``--clicks`` times around the sticker (every click at a new point, so each runs
  the segmenter) and runs one remove. The same people and photos are run one after another (single
  client), then all at once (8 clients), on one server: the ratio of the click p95s is the figure
  (target ≤ 4×). Run with back-to-back clicks (the worst case) and with a person's pause between them.
  "server's own p95" is the p95 of the ``/mask`` handler's ``timings.total``: when it is close to the
  round trip, clicks wait inside the handler (for CPU), not in uvicorn's queue or thread pool.
* **Memory over a long day.** ``--photos`` photos opened one after another (each decoded, its display
  copy fetched, one click): the server's RSS after the 10th and after the last (target: ≤ 300 MB
  above the first), with ``--max-sessions`` (default 8) open photos kept.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_load.py [--clients 8] [--clicks 30]
        [--photos 200] [--size 640x480] [--big 3000x2000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serve_fixtures import ClientLog, ServeProcess, load, pct, person, photo_bytes, rss_bytes  # noqa: E402

FAST = ("--segmenter", "classical", "--inpainter", "telea", "-q")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clicks(server: ServeProcess, clients: int, photos_each: int, n_clicks: int, size, pause: float) -> dict:
    """The same people one after another, then all at once."""
    people = [[photo_bytes(*size, seed=c * photos_each + i) for i in range(photos_each)] for c in range(clients)]
    seq = []
    t0, c0 = time.perf_counter(), cpu_seconds(server.pid)
    for photos in people:
        log = ClientLog()
        person(server.url, photos, n_clicks, size, pause, log, time.monotonic() + 600)
        seq.append(log)
    t_seq, cpu_seq = time.perf_counter() - t0, cpu_seconds(server.pid) - c0
    t0, c0 = time.perf_counter(), cpu_seconds(server.pid)
    conc = load(server.url, clients, photos_each, n_clicks, size, pause, timeout=900)
    t_conc, cpu_conc = time.perf_counter() - t0, cpu_seconds(server.pid) - c0
    out = {}
    for name, logs, wall, cpu in (("1 client (one after another)", seq, t_seq, cpu_seq),
                                  (f"{clients} clients at once", conc, t_conc, cpu_conc)):
        lat = [c for log in logs for c in log.clicks]
        statuses = [s for log in logs for s in log.statuses]
        handler = [c for log in logs for c in log.server]
        out[name] = {"n": len(lat), "median": pct(lat, 0.5), "p95": pct(lat, 0.95), "max": max(lat),
                     "handler_p95": pct(handler, 0.95),
                     "5xx": sum(s >= 500 for s in statuses), "errors": sum(len(log.errors) for log in logs),
                     "jobs": f"{sum(j == 'done' for log in logs for j in log.jobs)}/{clients * photos_each}",
                     "wall": wall, "cpu": cpu}
    return out


def memory(photos: int, max_sessions: int, size, session_memory: int | None = None, point_seed: int = 5) -> dict:
    data, point = photo_bytes(*size, seed=point_seed, fmt="JPEG")
    extra = ("--session-memory", str(session_memory)) if session_memory else ()
    server = ServeProcess(*FAST, "--max-sessions", str(max_sessions), *extra)
    rss = {}
    try:
        start = rss_bytes(server.pid)
        with server.client() as http:
            for n in range(1, photos + 1):
                r = http.post("/api/images", files={"file": (f"shot{n}.jpg", data, "image/jpeg")})
                r.raise_for_status()
                image = r.json()
                http.get(image["display"]["url"]).raise_for_status()
                http.post(f"/api/images/{image['id']}/mask", json={"points": [list(point)]})
                if n in (1, 10, photos // 2, photos):
                    time.sleep(0.3)
                    rss[n] = rss_bytes(server.pid)
        peak = _peak(server.pid)
    finally:
        code = server.stop()
    return {"start": start, "rss": rss, "peak": peak, "exit": code, "bytes": len(data)}


def _peak(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--photos-each", type=int, default=2)
    ap.add_argument("--clicks", type=int, default=30)
    ap.add_argument("--size", default="640x480", help="photos of the click test (W×H)")
    ap.add_argument("--pauses", default="0,0.3", help="seconds between a person's clicks, one run each")
    ap.add_argument("--photos", type=int, default=200, help="photos opened one after another (memory)")
    ap.add_argument("--big", default="3000x2000", help="size of the memory test's photos (W×H)")
    ap.add_argument("--max-sessions", type=int, default=8)
    ap.add_argument("--session-memory", type=int, default=None, metavar="MB", help="serve --session-memory")
    ap.add_argument("--sections", default="clicks,memory")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    big = tuple(int(v) for v in args.big.lower().split("x"))
    load_before = os.getloadavg()
    runs = {}
    if "clicks" in args.sections:
        for pause in (float(p) for p in args.pauses.split(",")):
            server = ServeProcess(*FAST, "--max-sessions", str(args.clients * args.photos_each))
            try:
                runs[pause] = clicks(server, args.clients, args.photos_each, args.clicks, size, pause)
            finally:
                code = server.stop()
            runs[pause]["exit"] = code
    mem = memory(args.photos, args.max_sessions, big, args.session_memory) if "memory" in args.sections else None
    load_after = os.getloadavg()

    ms = lambda s: f"{1000 * s:.0f} ms"  # noqa: E731
    print(f"\nautoinpaint serve under load: {os.cpu_count()} CPU cores, load average {load_before[0]:.2f} "
          f"before / {load_after[0]:.2f} after; classical segmenter, telea; clients are threads of this "
          f"process (httpx, keep-alive), the server its own process\n")
    if runs:
        print(f"**Clicks**: {args.clients} people × {args.photos_each} photos ({size[0]}×{size[1]} PNG) × "
              f"{args.clicks} clicks + 1 remove each\n")
        print("| pause between clicks | run | clicks | median | p95 | max | server's own p95 | 5xx | errors | "
              "removes done | wall | server CPU |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for pause, res in runs.items():
            for name, r in res.items():
                if name == "exit":
                    continue
                print(f"| {pause:g} s | {name} | {r['n']} | {ms(r['median'])} | {ms(r['p95'])} | {ms(r['max'])} | "
                      f"{ms(r['handler_p95'])} | "
                      f"{r['5xx']} | {r['errors']} | {r['jobs']} | {r['wall']:.1f} s | {r['cpu']:.1f} s |")
        print()
        for pause, res in runs.items():
            single, many = (res[k] for k in res if k != "exit")
            print(f"- pause {pause:g} s: p95 {args.clients} clients / 1 client = "
                  f"{many['p95'] / single['p95']:.2f}× (target ≤ 4×); server exit code after SIGTERM "
                  f"{res['exit']}")
        print()
    if mem:
        mb = lambda b: f"{b / 2**20:.0f} MB"  # noqa: E731
        r = mem["rss"]
        print(f"**Memory**: {args.photos} photos ({big[0]}×{big[1]} JPEG, {mem['bytes'] / 1e3:.0f} kB each, "
              f"{big[0] * big[1] * 3 / 2**20:.0f} MB decoded) opened one after another, each shown and "
              f"clicked once; --max-sessions {args.max_sessions}"
              + (f" --session-memory {args.session_memory}" if args.session_memory else "") + "\n")
        print("| server RSS at start | after photo 1 | after 10 | after " + f"{args.photos // 2} | after {args.photos} | "
              f"growth 10 → {args.photos} | peak (VmHWM) |")
        print("|---|---|---|---|---|---|---|")
        print(f"| {mb(mem['start'])} | {mb(r[1])} | {mb(r[10])} | {mb(r[args.photos // 2])} | "
              f"{mb(r[args.photos])} | {(r[args.photos] - r[10]) / 2**20:+.0f} MB (target ≤ +300 MB) | "
              f"{mb(mem['peak'])} |")
        print(f"\nserver exit code after SIGTERM: {mem['exit']}")


if __name__ == "__main__":
    main()
