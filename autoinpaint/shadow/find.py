"""Find the cast shadow attached to the selected object (classical, no weights): the search, step by step.

A cast shadow scales the ground's brightness and keeps its texture and chroma (or shifts it as the blue
sky, lighting it alone, does), so it is found as a ratio: the texture-smoothed image divided by the lit
ground's level (:mod:`.level`; a quadratic surface where the ground curves away from a plane, a lens's
vignetting; one per ground where the window holds two, :mod:`.grounds`). On a window around the object
(a shadow is attached to it), searched on a copy of at most ``WORK_SIZE`` px (:mod:`.window`):

1. what is darker and keeps the ground's chroma (:mod:`.evidence`), touches the object and stands out
   of the lit ground's own darkest spots, and the shadow's region in it, without dark texture joined to
   it by thin necks (:mod:`.region`);
2. where the region stops at the edge between two grounds of one colour (a building's shade beyond it),
   the ground beyond that edge, placed on the photo's pixels, left out (:mod:`.edge`);
3. the lit level again without the shadow, the umbra's darkening against it (:mod:`.umbra`), and the lit
   holes that light through the object leaves in the region (:mod:`.holes`);
4. the matte: a soft step across the region's signed distance, the outline's offset fitted piece by
   piece along it (a smooth path, Viterbi) and the penumbra's width (σ), on the working copy and again
   at the photo's resolution in the matte's own box (:mod:`.matte`, :mod:`.outline`); then the umbra's
   darkening once the outline is known (:mod:`.umbra`: from the ground's brightness statistics where the
   working copy is at most half the photo's size, :mod:`.darkening`; else by least squares).

Where nothing is found, the search is made again closer up for a high sun's sliver as narrow as the
smoothing, then from 12 % darker instead of 20 % for a faint shadow (an overcast sky's).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .edge import stop_at_edge
from .evidence import expected_error
from .holes import around_holes, lit_holes
from .level import DARK_MIN
from .matte import fit_outline, full_matte
from .outline import nearest_values
from .region import NARROW_CONTRAST, darker, find_region
from .umbra import read_umbra, relevel, umbra_fade
from .window import Window

REACH = 2.5              # the window: the object's box grown by this many times its size (the search's
                         # scale: its longest side, or THICK times its thickness when that is less;
THICK = 3.0              # a pole's shadow is as narrow as the pole)
WIDEN = 2                # ... and twice as far on a side the shadow runs out of, up to this many times
COARSE = 0.06            # σ of the texture smoothing that finds the shadow, a share of the object's size
NECK = 0.1               # dark texture joined by necks thinner than this share of the object's size is cut off
CONTRAST_MIN = 1.0       # an umbra no darker than the lit ground's own darkest spots (this many times
                         # theirs, :func:`.evidence.texture_contrast`) is texture, not a shadow
SLIVER = 0.5             # nothing found: a high sun's sliver of shadow beside the object, as narrow as the
                         # smoothing, is looked for again at this share of the smoothing and the neck ...
SLIVER_REACH = 0.4       # ... in a window reaching this share of the object's size around it (a finer copy)
FAINT_MIN = 0.12         # nothing found, not even a sliver: a faint shadow (an overcast sky's, or one lit from
                         # around, 12-20 % darker) is looked for from this darkness ...
FAINT_CONTRAST = 1.3     # ... where its umbra stands out of the texture by this much (at 1.1-1.2, dark grass and
                         # bricks beside small objects that cast no shadow were taken)


@dataclass
class ShadowMatte:
    """The cast shadow of the object.

    box: (x0, y0, x1, y1) half-open, full-resolution pixels, the matte's extent.
    matte: (y1−y0)×(x1−x0) float32 in [0, 1]: the shadow's soft coverage (1 = umbra).
    darkening: per RGB channel, the share of brightness the umbra takes away (0.4 = 40 % darker);
        a pixel's brightness is the lit ground's times ``1 − matte · darkening``.
    candidate, object: the working copy's candidate region (the part nearer this object than the
        other selected ones) and object (H'×W' bool, the window),
        ``window`` its full-resolution box, ``frame`` which of its sides (top, bottom, left,
        right) are the photo's borders, ``contrast`` how far the umbra stands out of the ground's
        own texture, ``ends_at_ground`` whether it stops at the edge of a darker ground (where it
        goes on is unseen there), ``error`` the result's expected error where it was (grey levels,
        :func:`.evidence.expected_error`), ``fade`` how much the umbra's darkening changes away from
        the object (:func:`.darkening.fade`; 0 where not measured) and ``compression`` what a JPEG's
        compression adds to that error once relit (:func:`.evidence.compression_error`; 0 for other
        photos): what the doubt signals measure (:mod:`.doubt`).
    """

    box: tuple[int, int, int, int]
    matte: np.ndarray = field(repr=False)
    darkening: np.ndarray
    candidate: np.ndarray = field(repr=False)
    object: np.ndarray = field(repr=False)
    window: tuple[int, int, int, int] = (0, 0, 0, 0)
    frame: tuple[bool, bool, bool, bool] = (False, False, False, False)
    contrast: float = 99.0   # the umbra's darkening over the lit ground's darkest spots' (.evidence)
    ends_at_ground: bool = False   # it stops at the edge of a darker ground (.grounds.ends_at_darker)
    error: float = 0.0   # the relit shadow's expected mean absolute error, grey levels (.evidence)
    fade: float = 0.0    # how much the umbra's darkening changes away from the object, a share (.darkening)
    compression: float = 0.0   # in a JPEG, the error relighting adds to ``error`` there (.evidence; set by FindShadow)


def find_shadow(image: np.ndarray, mask: np.ndarray, exclude: np.ndarray | None = None) -> ShadowMatte | None:
    """The cast shadow attached to ``mask`` (H×W bool, the object) in ``image`` (H×W×C, uint8 or uint16,
    as decoded; only the window around the object is converted to 8-bit RGB), or None when no darker
    region keeping the ground's chroma touches the object. ``exclude`` (H×W bool): more pixels that are
    not ground (the other selected objects), left out of every measure of it. A shadow that runs out of
    the window (a low sun's, longer than ``REACH`` times the object's size) is searched again in a
    window twice as far out on that side, up to ``WIDEN`` times."""
    from ..mask.refine import bbox

    box = bbox(mask)
    if box is None:
        return None
    side = _scale(mask, box)
    found = _widened(image, mask, exclude, box, side)
    if found is None:   # a high sun's sliver, as narrow as the search's smoothing: looked for again closer up
        found = _search(image, mask, exclude, box, side, (SLIVER_REACH,) * 4, sliver=True)[0]
    if found is None:   # a faint shadow (an overcast sky's, or one lit from around): looked for again, lighter
        found = _widened(image, mask, exclude, box, side, faint=True)
    return found


def _widened(image: np.ndarray, mask: np.ndarray, exclude: np.ndarray | None, box: tuple[int, int, int, int],
             side: int, faint: bool = False) -> ShadowMatte | None:
    """:func:`_search` in a window ``REACH`` times the object's size (``side``) around its ``box``, made again
    twice as far out on each side the shadow runs out of (a low sun's), up to ``WIDEN`` times."""
    reach = (REACH,) * 4   # top, bottom, left, right
    for widened in range(WIDEN + 1):
        found, cut = _search(image, mask, exclude, box, side, reach, faint=faint)
        if found is None or not any(cut) or widened == WIDEN:
            break
        reach = tuple(r * 2 if c else r for r, c in zip(reach, cut))
    return found


def _search(image: np.ndarray, mask: np.ndarray, exclude: np.ndarray | None, box: tuple[int, int, int, int],
            side: int, reach: tuple[float, float, float, float], sliver: bool = False, faint: bool = False
            ) -> tuple[ShadowMatte | None, tuple[bool, ...]]:
    """:func:`find_shadow` in a window reaching ``reach`` times the object's size (``side``, px: the
    search's scale) beyond its ``box`` (top, bottom, left, right), and which of the window's sides, not
    the photo's borders, the shadow runs out of. ``sliver``: smoothed and opened at ``SLIVER`` times the
    scale, and only where the umbra stands well out of the texture (``NARROW_CONTRAST``). ``faint``: candidates
    from ``FAINT_MIN`` darker, where the umbra stands out of the texture by ``FAINT_CONTRAST``. The steps, on
    the window's working copy: what is darker (:func:`.region.darker`), the shadow's region
    (:func:`.region.find_region`), where it stops at the edge of a darker ground (:func:`.edge.stop_at_edge`),
    the lit level again (:func:`.umbra.relevel`), the lit holes (:func:`.holes.lit_holes`), the outline
    (:func:`.matte.fit_outline`), the umbra's darkening (:func:`.umbra.read_umbra`); then the matte at full
    resolution (:func:`.matte.full_matte`), and, for the doubt signals, how the umbra's darkening changes away
    from the object (:func:`.umbra.umbra_fade`)."""
    none = (None, (False,) * 4)
    win = Window.around(image, mask, exclude, box, side, reach)
    if win.valid.sum() < 64:
        return none
    share = SLIVER if sliver else 1.0
    coarse = max(2.0, COARSE * share * side * win.scale)
    neck = max(2, int(round(NECK * share * side * win.scale)))
    dark = darker(win, coarse, neck, NARROW_CONTRAST if sliver else FAINT_CONTRAST if faint else CONTRAST_MIN,
                  FAINT_MIN if faint else DARK_MIN)
    if dark is None:
        return none
    region = find_region(win, dark, neck, sliver)
    if region is None:
        return none
    rim = 2   # working px: the shadow reaches the window's side (the photo's border is no cut)
    cut = tuple(bool(e.any()) and not f for e, f in zip(
        (region[:rim], region[-rim:], region[:, :rim], region[:, -rim:]), win.frame))
    not_ground = mask if exclude is None else mask | exclude
    edge = stop_at_edge(image, not_ground, win, dark, region, coarse)
    lit, darkening, away = relevel(edge, dark)
    valid, region = edge.valid, edge.region
    holes = lit_holes(win.small, valid, lit, region, valid & ~away, float(darkening.mean()), coarse)
    if holes.any():
        region &= ~holes
        darkening = around_holes(win.small, valid, lit, region, holes, coarse, darkening)
    signed, offset, sigma = fit_outline(win.small, valid, win.near, lit, region, float(darkening.mean()), coarse)
    umbra = read_umbra(win, valid, edge.mean, lit, away, signed, offset, sigma, darkening, side)
    found = full_matte(image, not_ground, win, umbra, signed, offset, sigma, edge.placed)
    if found is None:
        return none
    box, matte, darkening = found
    seen = dark.candidate | region
    if win.others is not None:   # what the doubt signals measure: the shadow nearer this object than the others
        seen &= nearest_values(win.obj | win.others, win.obj)
    # measured on one ground (across two, the step between them would pass for it)
    fading = umbra_fade(win, umbra) if dark.grounds is None else 0.0
    return ShadowMatte(box, matte, darkening, seen, win.obj, win.box, win.frame, dark.contrast, edge.ends_at_ground,
                       expected_error(image, not_ground, box, matte), fading), cut


def _scale(mask: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """The search's scale (px): the object's longest side, or ``THICK`` times its thickness (the widest
    disk in it) when that is less: a pole's shadow is as narrow as the pole, not as its height."""
    import cv2

    side = max(box[2] - box[0], box[3] - box[1])
    crop = mask[box[1]:box[3], box[0]:box[2]]
    f = max(1, side // 512)   # measured on every f-th pixel: a few ms for any object
    widest = 2 * f * float(cv2.distanceTransform(np.pad(crop[::f, ::f], 1).astype(np.uint8), cv2.DIST_L2, 3).max())
    return max(1, int(min(side, THICK * widest)))
