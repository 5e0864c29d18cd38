"""Pipeline steps that read and write files: the input image, the output, the mask and a preview.

Files are paths or URLs (``s3://…``): every read and write goes through :mod:`autoinpaint.imaging.storage`.
"""
from __future__ import annotations

import os

from ..errors import InputError
from ..log import warning
from .image_io import ImageInput, decode_image, encode_mask, encode_with_notes, load_image, output_format
from .storage import is_remote, local_path, read_bytes, same, suffix, write_bytes


class LoadImage:
    """Pipeline step: ``source`` (or ``state.input_path``) → ``state.image`` (EXIF-oriented) and
    ``state.info``. ``source`` is anything :func:`~autoinpaint.imaging.image_io.load_image` takes: a path (or a
    URL, read through :mod:`autoinpaint.imaging.storage`), encoded bytes, a PIL image or an array."""

    name = "load"

    def __init__(self, max_pixels: int | None = None, source: "ImageInput | None" = None):
        self.max_pixels = max_pixels
        self.source = source

    def __call__(self, state):
        source = self.source if self.source is not None else state.input_path
        if source is None:
            raise InputError("no input image given")
        if isinstance(source, (str, os.PathLike)) and is_remote(source):
            spec = os.fspath(source)
            state.image, state.info = decode_image(read_bytes(spec), spec, self.max_pixels)
            state.info.path = state.input_path = spec
        elif isinstance(source, (str, os.PathLike)):
            state.image, state.info = load_image(local_path(source), self.max_pixels)
            state.input_path = os.fspath(source)
        else:
            state.image, state.info = load_image(source, self.max_pixels)
        return state

    def __repr__(self) -> str:
        return f"LoadImage(max_pixels={self.max_pixels})"


class SaveImage:
    """Pipeline step: write ``state.result`` to ``state.output_path`` like the input (format, quality,
    subsampling, bit depth, ICC, EXIF), atomically. Refuses to overwrite the input unless ``overwrite``."""

    name = "save"

    def __init__(self, overwrite: bool = False):
        self.overwrite = overwrite

    def __call__(self, state):
        out = state.output_path
        if out is None:
            raise InputError("no output path given")
        if not self.overwrite and state.input_path and same(out, state.input_path):
            raise InputError(f"refusing to overwrite the input {out} (pass --overwrite to allow it)")
        fmt = output_format(out, state.info)
        data, notes = encode_with_notes(state.result, state.info, fmt)
        for note in notes:
            warning(note)
        if notes:
            state.metadata["output_notes"] = notes
        write_bytes(out, data)
        state.metadata["output_format"] = fmt
        return state

    def __repr__(self) -> str:
        return f"SaveImage(overwrite={self.overwrite})"


class SaveMask:
    """Pipeline step: write ``state.alpha`` as an 8-bit grayscale PNG to ``path`` (or ``state.output_path``)."""

    name = "save"

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = path

    def __call__(self, state):
        path = self.path or state.output_path
        if state.input_path and same(path, state.input_path):
            raise InputError(f"refusing to overwrite the input {path} with a mask")
        write_bytes(path, encode_mask(state.alpha))
        return state

    def __repr__(self) -> str:
        return f"SaveMask({str(self.path)!r})" if self.path else "SaveMask()"


class SavePreview:
    """Pipeline step: write one picture ``input with prompts | mask overlay | result`` to ``path``."""

    name = "save"

    def __init__(self, path: str | os.PathLike):
        self.path = path

    def __call__(self, state):
        from .preview import render_preview

        write_bytes(self.path, render_preview(state, suffix(self.path)))
        return state

    def __repr__(self) -> str:
        return f"SavePreview({str(self.path)!r})"
