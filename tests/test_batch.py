"""``autoinpaint batch``: recipes, fault isolation, idempotent re-runs, kill -9 resume, formats, Ray."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from scenes import catalogue_photo  # noqa: E402

from autoinpaint.batch import Defaults, iter_tasks, open_manifest  # noqa: E402
from autoinpaint.batch.manifest import ManifestSnapshot  # noqa: E402
from autoinpaint.batch.plan import RunIndex  # noqa: E402
from autoinpaint.batch.recipe import Task, param_hash  # noqa: E402
from autoinpaint.selection import Selection  # noqa: E402

FAST = ["--segmenter", "classical", "--inpainter", "telea"]
W, H = 300, 200


def make_photos(folder: Path, n: int, start: int = 0, formats=("jpg", "png")) -> list[dict]:
    """n catalogue photos; returns [{'name', 'point'}]. JPEGs: quality 85, 4:2:0 (odd ones 4:4:4)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        scene = catalogue_photo(W, H, i)
        ext = formats[i % len(formats)]
        name = f"photo{i:02d}.{ext}"
        if ext == "jpg":
            Image.fromarray(scene.image).save(folder / name, quality=85, subsampling=2 if i % 4 == 0 else 0)
        else:
            Image.fromarray(scene.image).save(folder / name)
        out.append({"name": name, "point": [int(scene.point[0]), int(scene.point[1])]})
    return out


def write_jsonl(path: Path, rows: list, extra_lines: tuple[str, ...] = ()) -> Path:
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")
    return path


def batch(*args, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoinpaint", "batch", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def records(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines() if line.strip()]


def snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
            if p.is_file() and p.name != "manifest.jsonl"}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One run of a recipe mixing good and bad rows, shared by several tests."""
    root = tmp_path_factory.mktemp("mixed")
    photos = make_photos(root / "in", 4)
    (root / "in" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    Image.new("L", (W, H), 0).save(root / "in" / "black_mask.png")
    rows = [{"input": f"in/{p['name']}", "points": [p["point"]]} for p in photos]
    rows += [
        {"input": "in/missing.jpg", "points": [[10, 10]]},                                       # line 5
        {"input": "in/corrupt.jpg", "point": "10,10"},                                          # line 6
        {"input": f"in/{photos[0]['name']}", "points": [[W + 50, 10]], "output": "outside{ext}"},  # line 7
        {"input": f"in/{photos[0]['name']}", "mask": "in/black_mask.png", "output": "empty{ext}"},  # line 8
    ]
    recipe = write_jsonl(root / "recipe.jsonl", rows, ('{"input": "in/x.jpg", "points": [[1, 2]',  # line 9
                                                       '{"input": "in/x.jpg", "dilate": "lots"}'))  # line 10
    result = batch("recipe.jsonl", "-o", "out", "--workers", "2", "--json", *FAST, cwd=root)
    return root, photos, recipe, result


def test_mixed_recipe_good_rows_written_bad_rows_recorded(mixed):
    root, photos, _, result = mixed
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (4, 0, 6)
    assert "Error: 6 of 10 rows failed" in result.stderr
    for p in photos:
        with Image.open(root / "out" / p["name"]) as im:
            im.load()
            assert im.size == (W, H)
    recs = {r["line"]: r for r in records(root / "out")}
    assert all(recs[i]["status"] == "done" and recs[i]["hash"] and recs[i]["timings"]["total"] > 0
               for i in range(1, 5))
    failed = {i: recs[i]["error"] for i in range(5, 11)}
    assert all(recs[i]["status"] == "failed" for i in failed)
    assert "no such file" in failed[5]
    assert "not an image" in failed[6]
    assert "outside the 300x200 image" in failed[7]
    assert "empty mask" in failed[8]
    assert failed[9].startswith("line 9: not valid JSON")
    assert failed[10].startswith("line 10:") and "dilate" in failed[10]
    assert not (root / "out" / "outside.jpg").exists() and not (root / "out" / "empty.jpg").exists()
    # the edit changed the sticker region and nothing far away from it
    src = np.asarray(Image.open(root / "in" / photos[1]["name"]).convert("RGB"), np.int16)
    out = np.asarray(Image.open(root / "out" / photos[1]["name"]).convert("RGB"), np.int16)
    x, y = photos[1]["point"]
    assert np.abs(out - src)[max(0, y - 5):y + 5, max(0, x - 5):x + 5].max() > 0
    assert np.array_equal(out[:5, :5], src[:5, :5])


def test_format_preserved(mixed):
    root, photos, _, _ = mixed
    for p in photos:
        with Image.open(root / "in" / p["name"]) as a, Image.open(root / "out" / p["name"]) as b:
            assert a.format == b.format
            if a.format == "JPEG":
                from PIL import JpegImagePlugin

                assert a.quantization == b.quantization
                assert JpegImagePlugin.get_sampling(a) == JpegImagePlugin.get_sampling(b)
            assert a.mode == b.mode


def test_rerun_is_idempotent(mixed):
    root, photos, _, _ = mixed
    before = snapshot(root / "out")
    n_before = len(records(root / "out"))
    result = batch("recipe.jsonl", "-o", "out", "--workers", "2", "--json", *FAST, cwd=root)
    assert result.returncode == 1  # the bad rows still fail
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (0, 4, 6)
    assert snapshot(root / "out") == before  # bytes and mtimes untouched
    new = records(root / "out")[n_before:]
    assert sorted(r["line"] for r in new if r["status"] == "skipped") == [1, 2, 3, 4]
    # a changed parameter re-does the rows (hash differs)
    result = batch("recipe.jsonl", "-o", "out", "--workers", "2", "--json", "--dilate", "3", *FAST, cwd=root)
    assert json.loads(result.stdout)["done"] == 4


def test_kill_9_then_resume_matches_clean_run(tmp_path):
    photos = make_photos(tmp_path / "in", 14)
    rows = [{"input": f"in/{p['name']}", "points": [p["point"]]} for p in photos]
    write_jsonl(tmp_path / "recipe.jsonl", rows)
    clean = batch("recipe.jsonl", "-o", "clean", "--workers", "2", "-q", *FAST, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr

    proc = subprocess.Popen([sys.executable, "-m", "autoinpaint", "batch", "recipe.jsonl", "-o", "out",
                             "--workers", "1", "-q", *FAST], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "out" / "manifest.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if manifest.exists() and manifest.read_text().count('"status": "done"') >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes
    proc.wait()
    # simulate the worst case too: a torn last manifest line
    with open(manifest, "a") as fh:
        fh.write('{"line": 99, "status": "do')
    done_before = sum(r["status"] == "done" for r in records_tolerant(manifest))
    assert 3 <= done_before < len(rows), "the run was not killed mid-way"

    resumed = batch("recipe.jsonl", "-o", "out", "--workers", "2", "--json", *FAST, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["failed"] == 0 and summary["done"] + summary["skipped"] == len(rows)
    assert summary["skipped"] >= done_before - 1  # at most one output raced the manifest
    for p in photos:
        out, ref = tmp_path / "out" / p["name"], tmp_path / "clean" / p["name"]
        with Image.open(out) as im:
            im.load()  # decodes fully: nothing truncated
        assert out.read_bytes() == ref.read_bytes()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def records_tolerant(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_relative_coordinates_csv_and_output_template(tmp_path):
    photos = make_photos(tmp_path / "in", 2, formats=("png",))
    lines = ["input,points,relative,output,dilate"]
    for p in photos:
        x, y = p["point"]
        lines.append(f'in/{p["name"]},"{x},{y}",false,px/{{stem}}{{ext}},6')
        lines.append(f'in/{p["name"]},"{(x + 0.5) / W:.6f},{(y + 0.5) / H:.6f}",true,rel/{{stem}}{{ext}},6')
    lines.append('in/*.png,"0.5,0.5;0.6,0.6",true,glob/{stem}_{line}{ext},')
    lines.append('in/photo00.png,"1.5,0.5",true,bad/{stem}{ext},')
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    result = batch("r.csv", "-o", "out", "--workers", "2", "--json", *FAST, cwd=tmp_path)
    assert result.returncode == 1
    recs = records(tmp_path / "out")
    by_out = {Path(r["output"]).relative_to(tmp_path / "out").as_posix(): r for r in recs}
    for p in photos:
        px, rel = by_out[f"px/{p['name']}"], by_out[f"rel/{p['name']}"]
        assert px["status"] == rel["status"] == "done"
        assert np.abs(np.subtract(px["bbox"], rel["bbox"])).max() <= 2
        assert abs(px["mask_pixels"] - rel["mask_pixels"]) <= 0.05 * px["mask_pixels"]
    assert {k for k in by_out if k.startswith("glob/")} == {"glob/photo00_6.png", "glob/photo01_6.png"}
    bad = [r for r in recs if r["status"] == "failed"]
    assert len(bad) == 1 and bad[0]["line"] == 7 and "not a relative coordinate" in bad[0]["error"]
    assert (tmp_path / "out" / "rel" / photos[0]["name"]).exists()


def test_folder_mode(tmp_path):
    make_photos(tmp_path / "shots", 3)
    (tmp_path / "shots" / "notes.txt").write_text("not an image")
    # every catalogue photo has its sticker near the product centre; a generous relative box selects it
    result = batch("shots", "-o", "out", "--rect", "0.05,0.05,0.95,0.95", "--relative", "--workers", "2",
                   "--json", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "manifest.jsonl", "photo00.jpg", "photo01.png", "photo02.jpg"]
    # no selection at all is a usage error
    result = batch("shots", "-o", "out2", cwd=tmp_path)
    assert result.returncode == 2 and "folder mode needs a selection" in result.stderr


def test_yaml_recipe_line_numbers_and_defaults(tmp_path):
    make_photos(tmp_path / "in", 1, formats=("png",))
    (tmp_path / "r.yaml").write_text(
        "rows:\n"
        "  - input: in/photo00.png\n"            # line 2
        "    points: [[150, 100]]\n"
        "    dilate: 3\n"
        "  - input: in/photo00.png\n"            # line 5
        "    bogus: 1\n"
        "  - in/photo00.png\n"                   # line 7: a bare path takes the default selection
        "  - input: in/photo00.png\n"            # line 8: same output as line 2
        "    box: '0.1,0.1,0.9,0.9'\n"
        "    relative: yes\n"
        "    output: '{parent}-{stem}.jpg'\n")
    defaults = Defaults(selection=Selection(points=((20.0, 30.0),)))
    tasks = list(iter_tasks(tmp_path / "r.yaml", tmp_path / "out", defaults))
    assert [t.line for t in tasks] == [2, 5, 7, 8]
    assert tasks[0].options.dilate == 3 and tasks[0].selection.points == ((150.0, 100.0),)
    assert tasks[1].error and "line 5" in tasks[1].error and "bogus" in tasks[1].error
    assert tasks[2].selection.points == ((20.0, 30.0),) and tasks[2].options.dilate == 8
    assert tasks[3].output == str(tmp_path / "out" / "in-photo00.jpg") and tasks[3].selection.relative
    hashes = {param_hash(t.input, t.selection, t.action, t.options, t.output) for t in tasks if not t.error}
    assert len(hashes) == 3
    assert Task.from_payload(tasks[3].to_payload()) == tasks[3]


def test_manifest_tolerates_torn_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"output": "a", "status": "done", "hash": "h1", "output_size": 3}\n{"output": "b", "sta')
    m = open_manifest(str(path))
    before = m.open()  # terminates the torn line; the snapshot is what earlier runs wrote
    m.append({"output": "c", "status": "done", "hash": "h2", "output_size": 1})
    m.close()
    assert [r["output"] for r in before.records()] == ["a"]
    index = RunIndex()
    index.load(ManifestSnapshot(str(path)).records())
    assert index.previous("a") == {"hash": "h1", "output_size": 3} and index.previous("c")["hash"] == "h2"
    assert index.previous("b") is None
    assert path.read_text().splitlines()[-1].startswith('{"output": "c"')


def test_ray_ledger_bounds_rows_in_flight_sizes_tasks_and_names_lost_rows():
    """The Ray engine's backpressure, task sizing and crash bookkeeping, without Ray: at most ``window``
    rows are admitted until the driver settles some; tasks grow to ~2 s of work; rows never settled
    are the ones a dead actor lost."""
    import asyncio

    from autoinpaint.batch.ray_engine import Ledger

    def rows(*seqs):
        return {i: [i + 1, f"in/{i}.jpg", f"out/{i}.jpg", "remove"] for i in seqs}

    async def scenario():
        ledger = Ledger(workers=2, window=4)
        assert await ledger.admit(rows(0, 1, 2, 3)) == (1, 1)
        blocked = asyncio.ensure_future(ledger.admit(rows(4)))
        await asyncio.sleep(0.05)
        assert not blocked.done()  # full: the planner waits
        await ledger.settle([0, 1], row_seconds=0.01)  # 10 ms a row: 200 rows make a 2 s task
        assert await asyncio.wait_for(blocked, 1) == (200, 200)
        await ledger.settle([2, 4])
        await ledger.finish(None)
        return await asyncio.wait_for(ledger.state(4), 1)

    finished, error, lost, stats = asyncio.run(scenario())
    assert finished and error is None and stats == {"window": 4, "peak_in_flight": 4, "rows_per_task": 200}
    assert lost == [[4, "in/3.jpg", "out/3.jpg", "remove"]]
    assert asyncio.run(_admit_once(Ledger(workers=2, rows_per_task=3))) == (3, 12)  # fixed: 8×2×3 / 4


async def _admit_once(ledger):
    return await ledger.admit({0: [1, "a", "b", "remove"]})


def test_ray_one_actor_pool_streams_the_batch_from_and_to_s3(ray_session, s3_server, tmp_path):
    """``--engine ray`` (joining the session's Ray with --ray-address): one Ray Data pipeline for the
    whole batch, reading from and writing to a bucket; more rows than a Ray task holds, each actor
    loads its models once, outputs byte-identical to the local engine's; the local engine resumes it."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("rayshop")
    photos = make_photos(tmp_path / "in", 4)
    for p in photos:
        fs.pipe_file(f"rayshop/in/{p['name']}", (tmp_path / "in" / p["name"]).read_bytes())
    rows = [{"input": f"in/{p['name']}", "points": [p["point"]], "output": "{stem}_{line}{ext}"}
            for _ in range(3) for p in photos]  # 12 rows, each photo 3 times
    rows.append({"input": "in/missing.png", "points": [[1, 1]]})
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"input": "in/x.jpg", "dilate": "lots"}\n'
    fs.pipe_file("rayshop/recipe.jsonl", text.encode())
    args = ["s3://rayshop/recipe.jsonl", "--manifest", "ray.jsonl", "--workers", "2", "--json", *FAST]
    local = batch("s3://rayshop/recipe.jsonl", "-o", "local", "--workers", "2", "--json", *FAST, cwd=tmp_path)
    ray = batch(*args, "-o", "s3://rayshop/ray", "--engine", "ray", "--ray-address", ray_session,
                "--rows-per-task", "2", cwd=tmp_path, timeout=180)
    assert local.returncode == ray.returncode == 1, ray.stderr[-2000:]
    assert "Error: 2 of 14 rows failed" in ray.stderr and "Traceback" not in ray.stderr
    summary = json.loads(ray.stdout)
    assert (summary["done"], summary["failed"], summary["engine"]) == (12, 2, "ray")
    recs = records_tolerant(tmp_path / "ray.jsonl")
    done = [r for r in recs if r["status"] == "done"]
    by_line = {r["line"]: r for r in recs if r["status"] == "failed"}
    assert "no such file" in by_line[13]["error"] and by_line[14]["error_type"] == "RecipeError"
    pids = {r["pid"] for r in done}
    assert len(pids) == 2  # one pool of two actors ...
    for pid in pids:
        mine = [r for r in done if r["pid"] == pid]
        assert len(mine) > 2  # ... each serving several Ray tasks of 2 rows ...
        assert max(r["model_loads"] for r in mine) == 2  # ... having loaded segmenter + inpainter once
    for r in done:
        name = Path(r["output"]).name
        assert fs.cat_file(f"rayshop/ray/{name}") == (tmp_path / "local" / name).read_bytes()
    # a batch started on Ray resumes with the local engine (and the other way round)
    again = batch(*args, "-o", "s3://rayshop/ray", cwd=tmp_path)
    assert json.loads(again.stdout)["skipped"] == 12
