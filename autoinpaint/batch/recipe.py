"""Batch recipes: JSONL, CSV or YAML files (or a folder of images) streamed into :class:`Task` rows.

One recipe row names one image (a path, or a glob that expands to several rows) and may carry

* a selection: ``points`` / ``negatives`` / ``boxes`` / ``rects`` / ``ellipses`` (pixels, or fractions
  0..1 with ``relative: true``), ``mask`` (a mask file), ``text`` (a phrase, phrases separated by ``;``,
  or a list: a detector finds them; a row where nothing is found gets the status ``not_found``);
* ``action`` (``remove``, ``replace``, ``fill``, ``mask`` or ``background``) and the prompt fields
  (``prompt``, ``negative_prompt``, ...); a ``background`` row takes ``color``, ``blur`` (the backdrop's
  blur), ``matte``, ``canvas``, ``margin``, ``align``, ``min_side``, ``shadow`` (or
  ``contact_shadow``) and ``shadow_opacity``;
* any :class:`~autoinpaint.api.EditOptions` field as a per-row override (``dilate``, ``inpainter``, ...);
* ``output``: a path template with ``{stem}``, ``{ext}``, ``{parent}``, ``{name}``, ``{line}``; relative
  templates are inside the output folder; default ``{stem}{ext}`` (the input's own name and format).

Whatever a row leaves out comes from the command line (:class:`Defaults`). A malformed row becomes a
Task with ``error`` set (and its line number) instead of stopping the batch.

Rows are produced lazily: the recipe is read line by line (JSONL, CSV), YAML is parsed into nodes and
each row is built when it is reached, and images are never opened or ``stat``-ed here (the worker hashes
them: :func:`param_hash`). Recipes, inputs, masks and the output folder may be URLs (``s3://…``): every
path goes through :mod:`autoinpaint.imaging.storage`; relative paths are relative to the recipe's folder.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

from .. import options as schema
from ..api import ACTIONS, EditOptions
from ..errors import InputError
from ..imaging.image_io import FORMAT_BY_SUFFIX
from ..imaging.storage import (absolute, canonical, glob, has_magic, identity, is_dir, is_file, join, list_files,
                       open_binary, parent, same, suffix)
from ..imaging.storage import name as file_name
from ..selection import Selection, clean_texts, parse_numbers

RECIPE_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
                   ".yaml": "yaml", ".yml": "yaml"}
DEFAULT_TEMPLATE = "{stem}{ext}"
MASK_TEMPLATE = "{stem}.png"
HASH_VERSION = 1

_INPUT_KEYS = ("input", "image", "path")
_SELECTION_KEYS = {"point": "points", "points": "points", "negative": "negatives", "negatives": "negatives",
                   "box": "boxes", "boxes": "boxes", "rect": "rects", "rects": "rects",
                   "ellipse": "ellipses", "ellipses": "ellipses"}
_SHAPES = {"points": 2, "negatives": 2, "boxes": 4, "rects": 4, "ellipses": 4}
_TEXT_KEYS = ("text", "texts")
_IGNORED_KEYS = {"id", "note", "notes", "comment"}
_BACKGROUND_ALIASES = {"shadow": "contact_shadow", "blur": "backdrop_blur"}
# options added after HASH_VERSION 1 (issues 17-19): left out of the row hash while at their defaults
_LATER_OPTIONS = ("invert", "color", "backdrop_blur", "matte", "canvas", "margin", "align", "min_side",
                  "contact_shadow", "shadow_opacity", "shadow", "lora", "fast", "runtime")


@dataclass(frozen=True)
class Defaults:
    """What the command line gives every row: selection, action, options, output template."""

    selection: Selection = field(default_factory=Selection)
    options: EditOptions = field(default_factory=EditOptions)
    action: str = "remove"
    output: str | None = None  # template; None = DEFAULT_TEMPLATE (MASK_TEMPLATE for action mask)


@dataclass(frozen=True)
class Task:
    """One unit of work: edit ``input`` with ``selection`` and ``options``, write ``output``.

    ``error`` (and ``error_type``) is set, and the rest may be partial, when the row cannot run (a
    malformed recipe row, a duplicate output). ``previous`` is what the manifest says an earlier run
    wrote to ``output`` (``{"hash", "output_size"}``), so the worker can skip the row."""

    line: int
    input: str | None
    selection: Selection = field(default_factory=Selection)
    action: str = "remove"
    options: EditOptions = field(default_factory=EditOptions)
    output: str | None = None
    error: str | None = None
    error_type: str | None = None
    previous: dict | None = None

    @property
    def param_hash(self) -> str:
        """:func:`param_hash` of this row, computed when asked (it costs a ``stat`` or a HEAD request
        per file, so the worker asks, not the planner)."""
        return param_hash(self.input, self.selection, self.action, self.options, self.output)

    def to_payload(self) -> dict:
        """A JSON-friendly dict (for Ray rows); :meth:`from_payload` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_payload(cls, d: dict) -> "Task":
        s = d["selection"]
        sel = Selection(**{k: (tuple(tuple(v) for v in s[k]) if k in _SHAPES
                               else tuple(s[k]) if k == "texts" else s[k]) for k in s})
        return cls(**{**d, "selection": sel, "options": EditOptions(**d["options"])})


# ----------------------------------------------------------------------------------------------- reading


def recipe_kind(path: str | os.PathLike) -> str:
    kind = RECIPE_SUFFIXES.get(suffix(path).lower())
    if kind is None:
        raise InputError(f"{path}: unknown recipe format; use .jsonl, .csv or .yaml "
                         f"(or give a folder of images)")
    return kind


def iter_raw_rows(path: str | os.PathLike) -> Iterator[tuple[int, dict | None, str | None]]:
    """Yield ``(line, row_dict, error)`` for each row of a recipe file (a path or a URL), one at a time."""
    if not is_file(path):
        raise InputError(f"{path}: no such recipe file or folder")
    kind = recipe_kind(path)
    with open_binary(path) as fh:
        if kind == "jsonl":
            yield from _iter_jsonl(fh)
        elif kind == "csv":
            yield from _iter_csv(fh)
        else:
            yield from _iter_yaml(fh, str(path))


MAX_ROW_BYTES = 1 << 20  # a recipe row longer than this is recorded as malformed, not parsed


def _bad_utf8(raw: bytes) -> str | None:
    """None when ``raw`` is UTF-8, else where it is not (for the row's error)."""
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"


def _too_long(raw: bytes) -> str | None:
    return (f"the row is {len(raw):,} bytes, over the limit of {MAX_ROW_BYTES:,}" if len(raw) > MAX_ROW_BYTES
            else None)


def _iter_jsonl(fh: IO[bytes]):
    for number, raw in enumerate(fh, 1):
        problem = _too_long(raw) or _bad_utf8(raw)
        if problem:
            yield number, None, problem
            continue
        text = raw.decode("utf-8").strip().lstrip("\ufeff")
        if not text or text.startswith("#") or text.startswith("//"):
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        except RecursionError:
            yield number, None, "not valid JSON (nested too deeply)"
            continue
        if not isinstance(row, dict):
            yield number, None, f"expected a JSON object, got {type(row).__name__}"
            continue
        yield number, row, None


def _iter_csv(fh: IO[bytes]):
    reader = csv.reader(io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline=""))
    header = None
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, None, f"not valid CSV ({exc})"
            continue
        number = reader.line_num
        if any(_has_surrogates(c) for c in cells):
            bad = next(c for c in cells if _has_surrogates(c))
            raw = bad.encode("utf-8", "surrogateescape")
            yield number, None, _bad_utf8(raw) or "not valid UTF-8"
            continue
        if not cells or all(not c.strip() for c in cells) or cells[0].lstrip("\ufeff ").startswith("#"):
            continue
        if header is None:
            header = [c.strip().lstrip("\ufeff") for c in cells]
            continue
        if len(cells) > len(header):
            yield number, None, f"{len(cells)} cells but the header has {len(header)} columns"
            continue
        row = {k: v.strip() for k, v in zip(header, cells) if k and v.strip() != ""}
        yield number, row, None


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _iter_yaml(fh: IO[bytes], path: str):
    import yaml

    raw = fh.read()  # the recipe text only; rows are built one by one
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    bad_lines = {n for n, line in enumerate(raw.split(b"\n"), 1) if _bad_utf8(line) or _too_long(line)}
    if bad_lines:
        yield from _iter_yaml_items(text, raw, bad_lines, path)
        return
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError:
            root = None
            broken = True
        else:
            broken = False
        if broken:
            yield from _iter_yaml_items(text, raw, bad_lines, path)
            return
        if root is None:
            return
        nodes = root.value if isinstance(root, yaml.SequenceNode) else None
        if isinstance(root, yaml.MappingNode):
            for key, value in root.value:
                if key.value == "rows" and isinstance(value, yaml.SequenceNode):
                    nodes = value.value
        if nodes is None:
            raise InputError(f"{path}: a YAML recipe is a list of rows (or a mapping with a 'rows' list)")
        for node in nodes:
            yield _yaml_row(loader, node, node.start_mark.line + 1)
    finally:
        loader.dispose()


def _yaml_row(loader, node, number: int) -> tuple[int, dict | None, str | None]:
    import yaml

    try:
        row = loader.construct_document(node)
    except (yaml.YAMLError, RecursionError) as exc:
        return number, None, f"cannot read the row ({str(exc).splitlines()[0] if str(exc) else exc})"
    if isinstance(row, str):
        row = {"input": row}
    if not isinstance(row, dict):
        return number, None, f"expected a mapping, got {type(row).__name__}"
    return number, row, None


def _iter_yaml_items(text: str, raw: bytes, bad_lines: set[int], path: str):
    """A YAML list whose whole cannot be parsed (a broken row, bytes that are not UTF-8, an over-long
    line): each top-level ``- `` item is parsed on its own, so one bad row costs only that row."""
    import yaml

    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("- ") or line.rstrip() == "-"]
    if not starts:
        raise InputError(f"{path}: not valid YAML, and not a list of rows ('- input: ...' lines) that could be "
                         f"read one by one")
    for k, first in enumerate(starts):
        last = starts[k + 1] if k + 1 < len(starts) else len(lines)
        number = first + 1
        own = set(range(number, last + 1))
        if own & bad_lines:
            bad = min(own & bad_lines)
            line = raw.split(b"\n")[bad - 1]
            yield number, None, _too_long(line) or _bad_utf8(line) or "not valid UTF-8"
            continue
        chunk = "\n".join(lines[first:last])
        loader = yaml.SafeLoader(chunk)
        try:
            try:
                root = loader.get_single_node()
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {number + mark.line})" if mark else ""
                yield number, None, f"not valid YAML{where}: {getattr(exc, 'problem', None) or 'cannot parse'}"
                continue
            if not isinstance(root, yaml.SequenceNode) or len(root.value) != 1:
                yield number, None, "not valid YAML: expected one '- ' row"
                continue
            yield _yaml_row(loader, root.value[0], number)
        finally:
            loader.dispose()


# ----------------------------------------------------------------------------------------------- parsing


def _coords(value: Any, n: int, what: str) -> tuple[tuple[float, ...], ...]:
    """``"x,y"``, ``"x,y;x,y"``, ``[x, y]`` or ``[[x, y], ...]`` → tuple of n-tuples."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        parts = [p for p in value.replace("|", ";").split(";") if p.strip()]
        return tuple(parse_numbers(p, n, what) for p in parts)
    if isinstance(value, (list, tuple)):
        if len(value) == n and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return (parse_numbers(",".join(map(str, value)), n, what),)
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(parse_numbers(item, n, what))
            elif isinstance(item, (list, tuple)):
                out.append(parse_numbers(",".join(map(str, item)), n, what))
            else:
                raise InputError(f"{what} must be {n} numbers, got {item!r}")
        return tuple(out)
    raise InputError(f"{what} must be a string like '10,20' or a list of numbers, got {value!r}")


def _phrases(value: Any) -> tuple[str, ...]:
    """``"price sticker"``, ``"sticker; logo"`` or ``["sticker", "logo"]`` → validated phrases."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        value = [p for p in value.split(";") if p.strip()]
    if not isinstance(value, (list, tuple)):
        raise InputError(f"text must be a phrase or a list of phrases, got {value!r}")
    return clean_texts(value)


def _to_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off"):
        return False
    raise InputError(f"{what} must be true or false, got {value!r}")


def _coerce_option(name: str, value: Any) -> Any:
    """A recipe value (JSON/YAML scalar or list, or CSV text) through the options schema's field ``name``:
    the same parsing and bounds as the command line (``"1024x768"``, ``"off"``, ``"a/b:0.5; c/d"``).
    ``none``/``null``/``off`` is None where None is a value of the field."""
    if isinstance(value, str) and value.strip().lower() in ("none", "null", "off") and schema.optional(name):
        value = None
    if value is None and not schema.optional(name) and name != "lora":
        raise InputError(f"{name} cannot be empty")
    return schema.parse(name, value)


def param_hash(input_path: str, selection: Selection, action: str, options: EditOptions, output: str) -> str:
    """Hash of everything that decides an output: the input's path and identity (size and modification
    time, or an object's ETag), the selection (and mask file identity), the action, every option except
    ``quiet``, the output path, the version. Costs a ``stat`` (an object store: a HEAD request) per file."""
    from .. import __version__ as version  # noqa: PLC0415

    opts = options.to_dict()
    opts.pop("quiet", None)
    for name in _LATER_OPTIONS:  # at their defaults they change nothing: manifests of older runs still match
        if opts.get(name) == schema.FIELDS[name].default:
            opts.pop(name)
    params = {"v": HASH_VERSION, "autoinpaint": version, "input": absolute(input_path),
              "input_id": identity(input_path), "selection": selection.describe(),
              "mask_id": identity(selection.mask_path), "action": action, "options": opts,
              "output": absolute(output)}
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def default_template(action: str, options: EditOptions) -> str:
    """``{stem}{ext}`` (the input's name and format); ``{stem}.png`` for a mask and for a transparent
    ``background`` cut-out (a JPEG cannot hold its alpha)."""
    if action == "mask":
        return MASK_TEMPLATE
    if action == "background":
        from ..api import is_transparent

        try:
            if is_transparent(options):
                return MASK_TEMPLATE
        except InputError:
            pass  # a colour that does not parse: the row fails with the CLI's message when it runs
    return DEFAULT_TEMPLATE


def render_output(template: str, input_path: str, outdir: str | os.PathLike, line: int) -> str:
    """The output of ``input_path``: ``template`` filled in, inside ``outdir`` unless absolute (or a URL)."""
    base = file_name(input_path)
    stem, ext = os.path.splitext(base)
    try:
        rendered = template.format(stem=stem, ext=ext, parent=file_name(parent(input_path)), name=base, line=line)
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(f"output template {template!r}: unknown field {exc} "
                         f"(use {{stem}}, {{ext}}, {{parent}}, {{name}}, {{line}})") from None
    return join(outdir, os.path.expanduser(rendered))


def _task_from_row(row: dict, line: int, base: str, outdir: str, defaults: Defaults) -> Iterator[Task]:
    row = {str(k).strip().replace("-", "_").lower(): v for k, v in row.items()}
    inputs = [row.pop(k) for k in _INPUT_KEYS if k in row]
    if len(inputs) != 1 or not isinstance(inputs[0], str) or not inputs[0].strip():
        raise InputError("each row needs one 'input' (an image path or a glob)")
    pattern = inputs[0].strip()
    sel_values: dict[str, Any] = {}
    for key in list(row):
        if key in _SELECTION_KEYS:
            target = _SELECTION_KEYS[key]
            sel_values[target] = sel_values.get(target, ()) + _coords(row.pop(key), _SHAPES[target], f"--{key}")
    for key in _TEXT_KEYS:
        if key in row:
            sel_values["texts"] = clean_texts(sel_values.get("texts", ()) + _phrases(row.pop(key)))
    mask = row.pop("mask", None)
    relative = row.pop("relative", None)
    action = str(row.pop("action", defaults.action)).strip().lower()
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
    template = row.pop("output", None) or defaults.output
    if action == "background":  # the command line's names: --shadow, --blur (the backdrop's, not the mask's)
        for alias, name in _BACKGROUND_ALIASES.items():
            if alias == "shadow" and str(row.get(alias)).strip().lower() not in ("none", "soft"):
                continue  # not a contact shadow's value: left to an option of that name, if any
            if alias in row:
                if name in row:
                    raise InputError(f"give {alias!r} or {name!r}, not both")
                row[name] = row.pop(alias)
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    if "no_cache" in row:
        overrides["cache"] = not _to_bool(row.pop("no_cache"), "no_cache")
    for key in list(row):
        if key in _IGNORED_KEYS or key.startswith("_"):
            row.pop(key)
        elif key in schema.FIELDS:
            try:
                overrides[key] = _coerce_option(key, row.pop(key))
            except InputError as exc:  # the row fails, but its output is still named in the manifest
                problems.append(str(exc))
    if row:
        raise InputError("; ".join([*problems, f"unknown field(s): {', '.join(sorted(row))}"]))
    options = defaults.options.replace(**overrides) if overrides else defaults.options
    template = template or default_template(action, options)

    try:
        selection, matches = _row_selection_and_inputs(sel_values, mask, relative, pattern, base, defaults)
    except (InputError, ValueError):
        if problems:  # a bad option value is the row's first problem
            raise InputError("; ".join(problems)) from None
        raise
    for path in matches:
        output = render_output(template, path, outdir, line)
        yield Task(line=line, input=path, selection=selection, action=action, options=options, output=output,
                   error=f"line {line}: {'; '.join(problems)}" if problems else None,
                   error_type="RecipeError" if problems else None)


def _row_selection_and_inputs(sel_values: dict, mask, relative, pattern: str, base: str, defaults: Defaults):
    """A row's selection (its own, else the command line's) and the input paths its pattern names."""
    if sel_values or mask:
        selection = Selection(mask_path=join(base, os.path.expanduser(str(mask))) if mask else None,
                              relative=defaults.selection.relative if relative is None
                              else _to_bool(relative, "relative"), **sel_values)
    else:
        selection = defaults.selection
        if relative is not None:
            selection = dataclasses.replace(selection, relative=_to_bool(relative, "relative"))
    if selection.is_empty:
        raise InputError("nothing selected: give points, boxes, text, rects, ellipses or a mask "
                         "(in the row or on the command line)")

    full = join(base, os.path.expanduser(pattern))
    if has_magic(pattern):
        matches = glob(full)
        if not matches:
            raise InputError(f"glob {pattern!r} matches no file")
    else:
        matches = [full]
    return selection, matches


def iter_tasks(source: str | os.PathLike, outdir: str | os.PathLike, defaults: Defaults | None = None,
               ) -> Iterator[Task]:
    """Stream the Tasks of a recipe file, or of every image in a folder (folder mode); paths or URLs."""
    defaults = defaults or Defaults()
    source = os.fspath(source)
    if is_dir(source):
        yield from _folder_tasks(source, os.fspath(outdir), defaults)
        return
    base = parent(canonical(source))
    for line, row, error in iter_raw_rows(source):
        if error is not None:
            yield Task(line=line, input=None, error=f"line {line}: {error}", error_type="RecipeError")
            continue
        try:
            yield from _task_from_row(row, line, base, os.fspath(outdir), defaults)
        except (InputError, ValueError, TypeError, OSError, RecursionError) as exc:  # one bad row, not the batch
            raw = row.get("input") or row.get("image") or row.get("path")
            yield Task(line=line, input=str(raw) if raw is not None else None, error=f"line {line}: {exc}",
                       error_type="RecipeError")


def image_files(folder: str) -> Iterator[str]:
    """The image files directly inside ``folder`` (by suffix), in name order; hidden files skipped."""
    for path in list_files(folder):
        if suffix(path).lower() in FORMAT_BY_SUFFIX:
            yield path


def _folder_tasks(folder: str, outdir: str, defaults: Defaults) -> Iterator[Task]:
    if defaults.selection.is_empty:
        raise InputError("folder mode needs a selection for every image: --point, --box, --text, --rect, "
                         "--ellipse or --mask (use --relative for fractions of the size)")
    if same(outdir, folder) and not defaults.output:
        raise InputError("the output folder is the input folder: outputs would replace the inputs; "
                         "choose another -o OUTDIR")
    template = defaults.output or default_template(defaults.action, defaults.options)
    for number, path in enumerate(image_files(folder), 1):
        try:
            output = render_output(template, path, outdir, number)
        except InputError as exc:
            yield Task(line=number, input=path, error=str(exc), error_type="RecipeError")
            continue
        yield Task(line=number, input=path, selection=defaults.selection, action=defaults.action,
                   options=defaults.options, output=output)


def count_tasks(source: str | os.PathLike, outdir: str | os.PathLike, defaults: Defaults | None = None) -> int:
    """How many Tasks :func:`iter_tasks` will yield (for the progress bar's ETA); streams too."""
    n = 0
    for _ in iter_tasks(source, outdir, defaults):
        n += 1
    return n
