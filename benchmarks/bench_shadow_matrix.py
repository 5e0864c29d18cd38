"""``--shadow``'s benchmark matrix (issue 19): every standard ``bench_shadow.py`` set, run side by side.

One place that says which sets "the matrix" is: the closing notes and ``docs/shadow.md`` count scenes
that meet all four targets over these sets. Each set is one ``bench_shadow.py --no-timing --no-band``
run with its own size, seeds and scene option; its table is saved as ``OUT/NAME.txt`` and the matrix
prints one line per set. ``--compare A B`` reads two saved runs (before and after a change) and prints,
per set, what moved::

    .venv/bin/python benchmarks/bench_shadow_matrix.py --out runs/matrix/before          # ~15 min, 2 cores
    .venv/bin/python benchmarks/bench_shadow_matrix.py --out runs/matrix/after --only small
    .venv/bin/python benchmarks/bench_shadow_matrix.py --compare runs/matrix/before runs/matrix/after
    .venv/bin/python benchmarks/bench_shadow_matrix.py --list

Columns: ``targets`` scenes meeting all four (cover >= 0.90, outside <= 0.10, MAD --shadow <= 6, far
pixels exact); ``MAD`` the mean MAD --shadow per ground (gravel, brick, grass, paving); ``doubt``
results that missed the targets with the verdict ``doubt``, of those that missed. Shadowless sets (the
same scenes, nothing casting a shadow): scenes where a shadow was taken, and of those how many without
doubt.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
GROUNDS = ("gravel", "brick", "grass", "noise")

# name: (group, bench_shadow.py arguments); --scenes last, so --scenes N can take its place
SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "480x360-1900": ("small", ("--size", "480x360", "--seed", "1900", "--scenes", "24")),
    "480x360-2000": ("small", ("--size", "480x360", "--seed", "2000", "--scenes", "24")),
    "480x360-2800": ("small", ("--size", "480x360", "--seed", "2800", "--scenes", "24")),
    "640x480-2500": ("small", ("--size", "640x480", "--seed", "2500", "--scenes", "24")),
    "640x480-2900": ("small", ("--size", "640x480", "--seed", "2900", "--scenes", "24")),
    "800x600-2400": ("small", ("--size", "800x600", "--seed", "2400", "--scenes", "24")),
    "800x600-2500": ("small", ("--size", "800x600", "--seed", "2500", "--scenes", "24")),
    "480x360-2000-sky0.3": ("small", ("--size", "480x360", "--seed", "2000", "--sky", "0.3", "--scenes", "24")),
    "1200x900-2400": ("large", ("--size", "1200x900", "--seed", "2400", "--scenes", "24")),
    "1200x900-2200": ("large", ("--size", "1200x900", "--seed", "2200", "--scenes", "24")),
    "1600x1200-2500": ("large", ("--size", "1600x1200", "--seed", "2500", "--scenes", "24")),
    "2400x1800-2700": ("large", ("--size", "2400x1800", "--seed", "2700", "--scenes", "12")),
    "4000x3000-2600": ("large", ("--size", "4000x3000", "--seed", "2600", "--object-scale", "0.6",
                                 "--scenes", "8")),
    "1600x1200-2500-soft3": ("options", ("--size", "1600x1200", "--seed", "2500", "--soft", "3", "--scenes", "12")),
    "1200x900-2400-soft3": ("options", ("--size", "1200x900", "--seed", "2400", "--soft", "3", "--scenes", "24")),
    "1200x900-2400-tip16": ("options", ("--size", "1200x900", "--seed", "2400", "--tip", "16", "--scenes", "24")),
    "1200x900-2300-length0.9": ("options", ("--size", "1200x900", "--seed", "2300", "--length", "0.9",
                                            "--scenes", "24")),
    "1200x900-2200-length1.2": ("options", ("--size", "1200x900", "--seed", "2200", "--length", "1.2",
                                            "--scenes", "24")),
    "1200x900-2400-objects2": ("options", ("--size", "1200x900", "--seed", "2400", "--objects", "2",
                                           "--scenes", "12")),
    "1200x900-2100-objects3": ("options", ("--size", "1200x900", "--seed", "2100", "--objects", "3",
                                           "--scenes", "12")),
    "1200x900-2400-sky0.3": ("options", ("--size", "1200x900", "--seed", "2400", "--sky", "0.3", "--scenes", "24")),
    "1200x900-2400-edge": ("options", ("--size", "1200x900", "--seed", "2400", "--edge", "--scenes", "24")),
    "1200x900-2400-shade0.5": ("options", ("--size", "1200x900", "--seed", "2400", "--shade", "0.5",
                                           "--scenes", "24")),
    "1200x900-2400-hole0.3": ("options", ("--size", "1200x900", "--seed", "2400", "--hole", "0.3", "--scenes", "24")),
    "1200x900-2400-vignette0.35": ("options", ("--size", "1200x900", "--seed", "2400", "--vignette", "0.35",
                                               "--scenes", "24")),
    "1200x900-2400-leave40": ("options", ("--size", "1200x900", "--seed", "2400", "--leave", "40", "--scenes", "24")),
    "1200x900-2400-length0.9": ("options", ("--size", "1200x900", "--seed", "2400", "--length", "0.9",
                                            "--scenes", "24")),
    "1200x900-2400-strength0.45": ("options", ("--size", "1200x900", "--seed", "2400", "--strength", "0.45",
                                               "--scenes", "24")),
    "1200x900-2400-jpeg85": ("options", ("--size", "1200x900", "--seed", "2400", "--jpeg", "85", "--scenes", "24")),
    "shadowless-480x360-3000": ("shadowless", ("--shadowless", "--size", "480x360", "--seed", "3000",
                                               "--scenes", "48")),
    "shadowless-480x360-3000-small": ("shadowless", ("--shadowless", "--size", "480x360", "--seed", "3000",
                                                     "--object-scale", "0.6", "--scenes", "48")),
    "shadowless-1200x900-2400": ("shadowless", ("--shadowless", "--size", "1200x900", "--seed", "2400",
                                                "--scenes", "24")),
}


def select(only: str | None) -> list[str]:
    """The sets named by ``only`` (comma-separated set names or groups; None: all), in the matrix's order."""
    if not only:
        return list(SETS)
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    unknown = wanted - set(SETS) - {group for group, _ in SETS.values()}
    if unknown:
        raise SystemExit(f"Error: no such set or group: {', '.join(sorted(unknown))} (see --list)")
    return [name for name, (group, _) in SETS.items() if name in wanted or group in wanted]


def run_set(name: str, out: Path, scenes: int | None = None) -> float:
    """``bench_shadow.py`` on set ``name``, its output written to ``out/name.txt`` (atomically); seconds taken."""
    args = list(SETS[name][1])
    if scenes is not None:
        args[-1] = str(scenes)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / "bench_shadow.py"), "--no-timing", "--no-band", *args],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if done.returncode != 0:
        raise RuntimeError(f"{name}: bench_shadow.py exited {done.returncode}: {done.stderr.strip()[-500:]}")
    with tempfile.NamedTemporaryFile("w", dir=out, suffix=".part", delete=False) as part:
        part.write(done.stdout)
    os.replace(part.name, out / f"{name}.txt")
    return time.perf_counter() - start


def read_rows(path: Path) -> list[dict]:
    """The per-scene rows of a saved ``bench_shadow.py`` table (with a shadow, or ``--shadowless``)."""
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells or not cells[0].isdigit():
            continue
        if len(cells) >= 13:   # scene | ground | light | cover | outside | MAD | MAD all | ... | verdict | targets
            rows.append({"seed": int(cells[0]), "ground": cells[1], "cover": float(cells[3]),
                         "outside": float(cells[4]), "mad": float(cells[5]), "far": cells[9] == "yes",
                         "verdict": cells[11], "met": cells[12] == "met"})
        elif len(cells) == 8:   # scene | ground | taken px | share | contrast | verdict | texture | MAD taken
            rows.append({"seed": int(cells[0]), "ground": cells[1], "taken": int(cells[2]), "verdict": cells[5]})
    return rows


def summary(rows: list[dict]) -> dict:
    """One set's counts: scenes, all targets met, far pixels exact, misses in doubt, MAD means per ground;
    for a shadowless set, scenes where a shadow was taken and of those how many without doubt."""
    if rows and "taken" in rows[0]:
        taken = [r for r in rows if r["taken"]]
        return {"scenes": len(rows), "taken": len(taken), "taken_ok": sum(r["verdict"] == "ok" for r in taken)}
    missed = [r for r in rows if not r["met"]]
    means = {}
    for ground in GROUNDS:
        mads = [r["mad"] for r in rows if r["ground"] == ground]
        means[ground] = sum(mads) / len(mads) if mads else float("nan")
    return {"scenes": len(rows), "met": sum(r["met"] for r in rows), "far": sum(r["far"] for r in rows),
            "missed": len(missed), "doubt": sum(r["verdict"] == "doubt" for r in missed), "mad": means}


def print_matrix(folder: Path, names: list[str]) -> None:
    """The matrix's table from the saved runs in ``folder``, then the totals."""
    print("| set | scenes | all targets | far exact | misses in doubt | MAD gravel / brick / grass / paving |")
    print("|---|---|---|---|---|---|")
    total = {"scenes": 0, "met": 0, "far": 0, "missed": 0, "doubt": 0}
    for name in names:
        path = folder / f"{name}.txt"
        if not path.exists():
            continue
        s = summary(read_rows(path))
        if "taken" in s:
            print(f"| {name} | {s['scenes']} | shadow taken on {s['taken']}, {s['taken_ok']} without doubt | | | |")
            continue
        for key in total:
            total[key] += s[key]
        mads = " / ".join(f"{s['mad'][g]:.2f}" for g in GROUNDS)
        print(f"| {name} | {s['scenes']} | {s['met']} | {s['far']} | {s['doubt']} of {s['missed']} | {mads} |")
    print(f"\nwith a shadow: all targets on {total['met']} of {total['scenes']} scenes; far pixels exact on "
          f"{total['far']}; the doubt on {total['doubt']} of the {total['missed']} that missed")


def compare(before: Path, after: Path, names: list[str], moved: float = 1.5) -> None:
    """Per set saved in both runs: all targets before → after, the MAD means, and the scenes whose MAD
    --shadow moved by over ``moved`` grey levels or whose far pixels stopped (or started) being exact."""
    print("| set | all targets | MAD gravel / brick / grass / paving | scenes that moved |")
    print("|---|---|---|---|")
    met = [0, 0]
    for name in names:
        a, b = before / f"{name}.txt", after / f"{name}.txt"
        if not (a.exists() and b.exists()):
            continue
        ra, rb = read_rows(a), read_rows(b)
        sa, sb = summary(ra), summary(rb)
        if "taken" in sa:
            print(f"| {name} | shadow taken on {sa['taken']} → {sb['taken']} ({sa['taken_ok']} → {sb['taken_ok']} "
                  f"without doubt) | | |")
            continue
        met[0] += sa["met"]
        met[1] += sb["met"]
        mads = " / ".join(f"{sa['mad'][g]:.2f} → {sb['mad'][g]:.2f}" for g in GROUNDS)
        by_seed = {r["seed"]: r for r in rb}
        changed = [f"{r['seed']} {r['mad']:.2f} → {by_seed[r['seed']]['mad']:.2f}" for r in ra
                   if r["seed"] in by_seed and (abs(by_seed[r["seed"]]["mad"] - r["mad"]) > moved
                                                 or by_seed[r["seed"]]["far"] != r["far"])]
        print(f"| {name} | {sa['met']} → {sb['met']} | {mads} | {', '.join(changed) or 'none'} |")
    print(f"\nall targets: {met[0]} → {met[1]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder the sets' tables are saved in (created)")
    parser.add_argument("--only", help="comma-separated set names or groups (small, large, options, shadowless)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="sets run at once")
    parser.add_argument("--scenes", type=int, help="scenes per set instead of each set's own (a quick look)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="compare two saved runs instead of running")
    parser.add_argument("--list", action="store_true", help="print the sets and their options")
    args = parser.parse_args(argv)
    names = select(args.only)
    if args.list:
        for name in names:
            group, options = SETS[name]
            print(f"{name:32s} {group:10s} {' '.join(options)}")
        return
    if args.compare:
        compare(*args.compare, names)
        return
    if args.out is None:
        parser.error("--out FOLDER is needed to run the matrix (or --compare, --list)")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:   # each set is its own process
        for name, seconds in zip(names, pool.map(lambda n: run_set(n, args.out, args.scenes), names)):
            print(f"{name}: {seconds:.0f} s", file=sys.stderr, flush=True)
    print(f"{len(names)} sets in {time.perf_counter() - start:.0f} s, tables in {args.out}", file=sys.stderr)
    print_matrix(args.out, names)


if __name__ == "__main__":
    main()
