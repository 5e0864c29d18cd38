"""One options schema (autoinpaint/options.py), four surfaces: for EVERY field of the schema, its default and
its bounds are the same on the command line (the click params of each command that has it, and a real run
that is out of bounds exits 2 with an ``Error:`` line), over HTTP (the request models, and a real request out
of bounds gets a 400 JSON error), in recipes (a row out of bounds is recorded with its line, a row at the
bound runs) and in ``EditOptions``. The values tried are made from the schema's own bounds and choices, so a
new field, or a surface declaring an option by hand, is checked without editing this file."""
from __future__ import annotations

import io
import json
import typing

import click
import numpy as np
import pytest
from PIL import Image

from autoinpaint import options as schema
from autoinpaint.api import EditOptions
from autoinpaint.batch import Defaults, iter_tasks
from autoinpaint.cli import main
from autoinpaint.selection import Selection

COMMANDS = ("remove", "mask", "replace", "fill", "background", "batch", "serve")
# click params that are not edit options: the selection's prompts (a Selection) and the process's own
# settings (where output goes, how it is reported, the batch engine, the web server)
SELECTION_PARAMS = {"points", "negatives", "boxes", "rects", "ellipses", "texts", "relative", "mask_path", "image"}
PROCESS_PARAMS = {"output", "mask_out", "preview", "as_json", "source", "outdir", "manifest", "workers", "engine",
                  "ray_address", "cpus_per_worker", "gpus_per_worker", "rows_per_task", "threads", "action",
                  "template", "folder", "host", "port", "open_browser", "token", "max_sessions", "session_memory",
                  "max_jobs", "edit_workers", "model_memory", "help"}
# text forms a person types, per parsed field: (accepted, rejected); every parser must have examples here
PARSED = {
    "resolution": (["64", "4096", "1024x768", 768, "auto"], ["63", "4097", "1024x", "12x4000"]),
    "padding_mask_crop": (["0", "4096", "off", 64], ["-1", "4097", "lots"]),
    "color": (["white", "#ff8800", "transparent"], ["nocolour", "#12345"]),
    "canvas": (["square", "2000x1500"], ["round", "0x10"]),
    "lora": ([["a/b:0.5"], ["a/b"] * schema.MAX_LORAS], [["a/b"] * (schema.MAX_LORAS + 1), ["a/" + "b" * 299]]),
}


def _kinds(name):
    ann = schema.FIELDS[name].annotation
    return {a for a in (ann, *typing.get_args(ann)) if a is not type(None)}


def values(name) -> tuple[list, list]:
    """(accepted, rejected) values of a field, from its bounds and choices (text parsers: :data:`PARSED`)."""
    if name in schema.PARSERS:
        return PARSED[name]
    choices, b, kinds = schema.choices(name), schema.bounds(name), _kinds(name)
    if choices:
        return [choices[0], choices[-1]], ["no-such-choice"]
    if bool in kinds:
        return [True, False], []  # a flag on the command line; "maybe" in a recipe: see the recipe test
    good, bad = [], []
    step = 1 if int in kinds else 0.5
    if "ge" in b:
        good.append(b["ge"])
        bad.append(b["ge"] - step)
    if "gt" in b:
        bad.append(b["gt"])
    if "le" in b:
        good.append(b["le"])
        bad.append(b["le"] + step)
    if "lt" in b:
        good.append(b["lt"] - 1)
        bad.append(b["lt"])
    if "max_length" in b:
        good.append("x" * b["max_length"])
        bad.append("x" * (b["max_length"] + 1))
    return good, bad


def cli_params(name):
    """(command name, click param) of every command whose option lands in ``name``."""
    return [(c, p) for c in COMMANDS for p in main.commands[c].params if p.name == name]


def cli_value(name, param, value):
    """``value`` through ``param`` as the command line parses it (type, ranges, callback)."""
    ctx = click.Context(main.commands["remove"])
    if param.multiple and not isinstance(value, (list, tuple)):
        value = [value]
    return param.process_value(ctx, [str(v) for v in value] if param.multiple else str(value))


def test_every_option_is_in_the_schema_and_every_schema_field_on_the_command_line():
    for c in COMMANDS:
        for p in main.commands[c].params:
            assert p.name in schema.FIELDS or p.name in SELECTION_PARAMS | PROCESS_PARAMS, (c, p.name)
    missing = [name for name in schema.FIELDS if not cli_params(name)]
    assert not missing, f"schema fields no command offers: {missing}"
    for name, f in schema.FIELDS.items():  # every field is documented and says when it applies
        assert f.description and schema.extra(name)["when"] in ("load", "call"), name


@pytest.mark.parametrize("name", list(schema.FIELDS))
def test_cli_default_and_bounds_are_the_schema_s(name):
    default = schema.FIELDS[name].default
    assert getattr(EditOptions(), name) == default
    good, bad = values(name)
    for command, p in cli_params(name):
        got = tuple(p.default) if p.multiple else p.default
        assert got == default, (command, name, got, default)
        if isinstance(p.type, (click.IntRange, click.FloatRange)):
            b = schema.bounds(name)
            assert (p.type.min, p.type.max) == (b.get("ge", b.get("gt")), b.get("le", b.get("lt"))), (command, name)
            assert (p.type.min_open, p.type.max_open) == ("gt" in b, "lt" in b), (command, name)
        if isinstance(p.type, click.Choice):
            assert tuple(p.type.choices) == schema.choices(name), (command, name)
        for value in good:
            if p.is_flag:
                continue
            if isinstance(value, str) and "max_length" in schema.bounds(name):
                continue  # length: checked where the value becomes an EditOptions (below)
            parsed = cli_value(name, p, value)
            assert EditOptions(**{name: parsed}) == EditOptions(**{name: schema.parse(name, value)})
        for value in bad:
            if isinstance(value, str) and "max_length" in schema.bounds(name) and name not in schema.PARSERS:
                continue
            with pytest.raises(click.BadParameter):
                cli_value(name, p, value)


def _cli_args(command, name, value, tmp):
    p = dict(cli_params(name))[command]
    flag = next(o for o in p.opts if o.startswith("--"))
    args = [command] + (["recipe.jsonl", "-o", str(tmp / "out")] if command == "batch" else
                        [str(tmp / "missing.png")] if command != "serve" else [])
    for v in (value if isinstance(value, list) else [value]):
        args += [flag, str(v)]
    return args + (["--rect", "1,1,3,3"] if command != "serve" else [])


@pytest.mark.parametrize("name", [n for n in schema.FIELDS if values(n)[1]])
def test_cli_rejects_out_of_bounds_with_one_error_line_and_exit_2(name, cli, tmp_path):
    """Each rejected value on the first command that has the option: exit 2, one ``Error:`` line naming
    it, nothing written (the input file does not even exist: options are checked first)."""
    command = cli_params(name)[0][0]
    for value in values(name)[1]:
        r = cli(*_cli_args(command, name, value, tmp_path))
        assert r.code == 2, (name, value, r.err)
        assert r.err.startswith("Error: ") and r.err.count("\n") == 1, r.err
        p = dict(cli_params(name))[command]
        assert name in r.err or any(f"'{o}'" in r.err for o in p.opts), r.err
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- HTTP
pytest.importorskip("fastapi")
pytest.importorskip("httpx")


def _request_model(group):
    from autoinpaint.server.schemas import EditRequest, MaskRequest

    return {"detect": MaskRequest, "mask": MaskRequest, "segment": MaskRequest, "inpaint": EditRequest,
            "background": EditRequest}[group]


HTTP_FIELDS = [n for n in schema.FIELDS if schema.extra(n)["http"]]


def test_request_models_hold_exactly_the_schema_s_http_fields():
    from autoinpaint.server.schemas import EditRequest

    selection = {"points", "negatives", "boxes", "rects", "ellipses", "texts", "action"}
    assert set(EditRequest.model_fields) - selection == set(HTTP_FIELDS)
    groups = {g: EditRequest.DETECT if g == "detect" else getattr(EditRequest, g.upper())
              for g in ("detect", "mask", "segment", "inpaint", "background")}
    for name in HTTP_FIELDS:
        assert name in groups[schema.extra(name)["http"]], name


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from autoinpaint.server.app import create_app

    app = create_app(None, EditOptions(segmenter="classical", inpainter="telea"), preload=False)
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 48, 3), 128, np.uint8)).save(buf, "PNG")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        image = c.post("/api/images", files={"file": ("p.png", buf.getvalue(), "application/octet-stream")}).json()
        yield c, image["id"]


@pytest.mark.parametrize("name", HTTP_FIELDS)
def test_http_bounds_are_the_schema_s_and_out_of_bounds_is_a_400(name, client):
    c, image_id = client
    model = _request_model(schema.extra(name)["http"])
    assert model.model_fields[name].default is None  # None = the server's default: EditOptions' = the schema's
    good, bad = values(name)
    for value in good:
        if name in schema.TEXT_FORMS_FIELDS and isinstance(value, str) and not value.lstrip("-").isdigit():
            continue  # "off": a text form; JSON says null
        value = int(value) if name == "padding_mask_crop" else value
        got = getattr(model(**{name: value}), name)
        assert EditOptions(**{name: got}) == EditOptions(**{name: schema.parse(name, value)}), (name, value)
    endpoint = "edit" if schema.extra(name)["http"] in ("inpaint", "background") else "mask"
    for value in bad:
        value = int(value) if name == "padding_mask_crop" and value.lstrip("-").isdigit() else value
        r = c.post(f"/api/images/{image_id}/{endpoint}", json={"rects": [[1, 1, 5, 5]], name: value})
        assert r.status_code == 400, (name, value, r.status_code, r.text)
        assert name in r.json()["error"], r.json()


# -------------------------------------------------------------------------------------------- recipes
def _recipe_task(tmp_path, row: dict, kind="jsonl"):
    path = tmp_path / f"r.{kind}"
    if kind == "jsonl":
        path.write_text(json.dumps({"input": "a.jpg", "rects": "1,1,3,3", **row}) + "\n")
    else:
        keys = ["input", "rects", *row]
        path.write_text(",".join(keys) + "\n" + ",".join(['a.jpg', '"1,1,3,3"', *map(str, row.values())]) + "\n")
    [task] = iter_tasks(path, tmp_path / "out", Defaults(selection=Selection()))
    return task


@pytest.mark.parametrize("name", list(schema.FIELDS))
def test_recipe_rows_accept_at_the_bounds_and_reject_past_them(name, tmp_path):
    good, bad = values(name)
    if bool in _kinds(name):
        bad = ["maybe"]
    for value in good:
        task = _recipe_task(tmp_path, {name: value})
        assert task.error is None, (name, value, task.error)
        assert getattr(task.options, name) == schema.parse(name, value)
    for value in bad:
        task = _recipe_task(tmp_path, {name: value})
        assert task.error and task.error.startswith("line 1: ") and name in task.error, (name, value, task.error)


# ----------------------------------------------------------------------------------------- the two bugs
def test_sam_refine_has_one_bound_everywhere(cli, tmp_path):
    """It was 0-5 on the command line and over HTTP but 0-10 in SegmentParams: 5 everywhere now."""
    from autoinpaint.segment import SegmentParams
    from autoinpaint.server.schemas import MaskRequest

    top = schema.bounds("sam_refine")["le"]
    assert top == schema.MAX_SAM_REFINE == 5
    assert SegmentParams(refine=top).refine == top
    with pytest.raises(ValueError):
        SegmentParams(refine=top + 1)
    for _, p in cli_params("sam_refine"):
        assert p.type.max == top
    assert MaskRequest(sam_refine=top).sam_refine == top
    with pytest.raises(ValueError):
        MaskRequest(sam_refine=top + 1)
    assert _recipe_task(tmp_path, {"sam_refine": top}).options.sam_refine == top
    assert "sam_refine" in _recipe_task(tmp_path, {"sam_refine": top + 1}).error
    with pytest.raises(ValueError):
        EditOptions(sam_refine=top + 1)
    r = cli("mask", str(tmp_path / "x.png"), "--rect", "1,1,3,3", "--sam-refine", str(top + 1))
    assert r.code == 2 and r.err.startswith("Error: ")


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_recipe_resolution_wxh_is_accepted_like_the_cli(kind, tmp_path):
    """``resolution: "1024x768"`` failed with "must be an integer" in a recipe; the CLI took it."""
    p = dict(cli_params("resolution"))["replace"]
    on_cli = cli_value("resolution", p, "1024x768")
    task = _recipe_task(tmp_path, {"resolution": "1024x768"}, kind)
    assert task.error is None, task.error
    assert task.options.resolution == on_cli == "1024x768"
    square = _recipe_task(tmp_path, {"resolution": "768"}, kind).options.resolution
    assert square == cli_value("resolution", p, "768") == 768


def test_each_stage_is_a_pydantic_model_of_its_fields_and_load_time_is_marked():
    for stage, declared in schema.STAGES.items():
        model = declared.pydantic_model()
        assert set(model.model_fields) == set(declared.fields), stage
        assert model().model_dump() == {n: f.default for n, f in declared.fields.items()}, stage
    load = {n for n in schema.FIELDS if schema.load_time(n)}
    assert {"segmenter", "inpainter", "model", "device", "dtype", "lora", "fast", "resolution"} <= load
    assert not load & {"dilate", "prompt", "seed", "steps", "sam_refine", "color"}
