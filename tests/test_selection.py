"""Selection parsing and validation against the image size."""
from __future__ import annotations

import numpy as np
import pytest

from autoinpaint.errors import InputError
from autoinpaint.selection import Selection, draw_shapes, parse_numbers


def test_parse_numbers():
    assert parse_numbers("12,34", 2, "--point") == (12.0, 34.0)
    assert parse_numbers(" 1.5, 2 ,3,4", 4, "--box") == (1.5, 2.0, 3.0, 4.0)
    for bad in ("12", "1,2,3", "a,b", "nan,1", ""):
        with pytest.raises(InputError, match="--point"):
            parse_numbers(bad, 2, "--point")


def test_relative_to_pixels():
    sel = Selection.from_strings(points=["0.5,0.25", "1,1"], boxes=["0,0,0.5,0.5"], relative=True)
    px = sel.to_pixels(200, 100)
    assert px.points == ((100.0, 25.0), (199, 99)) and px.boxes == ((0, 0, 100, 50),)
    assert not px.relative


@pytest.mark.parametrize("kw,msg", [
    ({"points": ["200,10"]}, "outside"),
    ({"points": ["-1,10"]}, "outside"),
    ({"boxes": ["10,10,5,50"]}, "inverted"),
    ({"boxes": ["10,10,10,50"]}, "inverted"),
    ({"boxes": ["0,0,201,50"]}, "outside"),
    ({"rects": ["0,0,20,101"]}, "outside"),
    ({"negatives": ["5,5"]}, "needs at least one"),
    ({}, "nothing selected"),
])
def test_validation_errors(kw, msg):
    with pytest.raises(InputError, match=msg):
        Selection.from_strings(**kw).to_pixels(200, 100)


def test_draw_shapes_like_imagedraw():
    from PIL import Image, ImageDraw

    sel = Selection(rects=((10, 10, 30, 20),), ellipses=((50, 20, 90, 60),))
    m = draw_shapes(sel, 100, 80)
    assert m[10:20, 10:30].all() and m[:, :10].sum() == 0 and m[20, 30] == 0
    ref = Image.new("L", (100, 80))
    ImageDraw.Draw(ref).ellipse((50, 20, 89, 59), fill=1)
    ell = np.asarray(ref).astype(bool)
    inter, union = (m[:, 40:] & ell[:, 40:]).sum(), (m[:, 40:] | ell[:, 40:]).sum()
    assert inter / union > 0.95
