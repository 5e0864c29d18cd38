"""Find the cast shadow attached to the selected object (classical, no weights).

A cast shadow scales the ground's brightness and keeps its texture and chroma (or shifts it as the blue
sky, lighting it alone, does), so it is found as a ratio: the texture-smoothed image divided by the lit
ground's level (:mod:`.level`), a plane per channel fitted robustly to the unshadowed surroundings (a
quadratic surface where the ground curves away from a plane: a lens's vignetting; one per ground where
the window holds two grounds, of different colour or brightness: a kerb, a path beside a lawn,
:mod:`.grounds`). The shadow is the part of the darker region (all channels darkened alike, or in the
sky's way: :mod:`.evidence`) that touches the object, without dark texture joined to it by thin necks or
the lit holes that light through the object leaves in it, and only when its umbra is darker than the lit
ground's own darkest spots (a shadow at least 20 % darker; where none is found, nor a high sun's sliver,
one from 12 % darker that stands further out of the texture: an overcast sky's); where it stops at the
edge between two grounds of one colour (a building's shade beyond it), the ground beyond that edge,
placed on the photo's pixels, is left out (:mod:`.edge`).
Its matte is a soft step across the region's signed distance (smoothed at the texture's scale): the
outline's offset is fitted piece by piece along it (a smooth path, Viterbi) and the penumbra's width (σ)
globally, both against the finely measured ratio (:mod:`.outline`); the umbra's darkening is then fitted
by least squares under that matte.

Everything runs on a window around the object (a shadow is attached to it), searched on a copy of
at most ``WORK_SIZE`` px (:mod:`.window`); only the matte's own box is computed at full resolution, where
the outline is fitted again (:func:`~.outline.refine_outline`) when that copy is smaller than the photo.
When it is at most half the photo's size, the penumbra is fitted again too (its σ widening away from the
object where that explains it better: :func:`~.outline.fit_widening`), the lit level under the shadow follows
the ground around it, and the umbra's darkening is read from the ground's brightness statistics
(:mod:`.darkening`; a thin umbra's, a high sun's sliver, again on the finer copy the outline is fitted on).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging.pixels import grey, merge, to_rgb8
from ..mask.refine import disk
from .darkening import MIN_PIXELS, fade, statistic_weights, weighted_darkening
from .edge import PlacedEdge, place_edge
from .evidence import chroma_spread, expected_error, headings, sky_shape, texture_contrast
from .grounds import Grounds, two_grounds
from .level import DARK_MIN, lit_level
from .outline import (FINE, OFFSETS, PASSES, PENUMBRAS, LevelCost, fit_sigma, local_offsets, nearest_values,
                      normconv, refine_outline, step)
from .window import Window

REACH = 2.5              # the window: the object's box grown by this many times its size (the search's
                         # scale: its longest side, or THICK times its thickness when that is less;
THICK = 3.0              # a pole's shadow is as narrow as the pole)
WIDEN = 2                # ... and twice as far on a side the shadow runs out of, up to this many times
COARSE = 0.06            # σ of the texture smoothing that finds the shadow, a share of the object's size
OUTLINE_SMOOTH = 0.5     # σ of the smoothing of the region's outline (its signed distance), a share of that
LIT_MIN = 12.0           # grey level under which the ground is too dark to measure a shadow on
CHROMA_MAX = 0.08        # ... and its channels drop alike (ratio spread at most this): chroma kept, or
                         # as a sky-lit shadow's do (:func:`.evidence.sky_shape`), up to the same spread
NECK = 0.1               # dark texture joined by necks thinner than this share of the object's size is cut off
CONTACT_PX = 3           # a candidate touches the object when it comes this close (working px)
MATTE_MIN = 0.04         # matte below this (a darkening of a few grey levels at most) is left alone
COARSE_COPY = 0.5        # a working copy at most this share of the photo's size is too coarse for a sharp
                         # penumbra: its σ is fitted again on the finer copy, against a lit level that
                         # follows the ground around the shadow
LOCAL = 0.25             # ... smoothed over this share of the object's size
RING = 0.3               # ... and the umbra's darkening is measured against the ground this far around
                         # the shadow (a share of the object's size)
THIN_UMBRA = 8           # ... an umbra at most twice this many working px across is thin: read further in,
THIN_RING = 8            # and again on the outline's finer copy, against a ring this many working px wide
REFINE_SIZE = 384        # longest side (px) of the copy of the matte's box the outline is fitted again on
CONTRAST_MIN = 1.0       # an umbra no darker than the lit ground's own darkest spots (this many times
                         # theirs, :func:`.evidence.texture_contrast`) is texture, not a shadow
NARROW_CONTRAST = 2.5    # ... and opened with a narrower disk (which lets more dark texture through) only when
                         # its umbra is at least this many times as dark
SLIVER = 0.5             # nothing found: a high sun's sliver of shadow beside the object, as narrow as the
                         # smoothing, is looked for again at this share of the smoothing and the neck ...
SLIVER_REACH = 0.4       # ... in a window reaching this share of the object's size around it (a finer copy)
LIT_HOLE = 0.25          # light through the object (its handle, between its legs): a hole in the shadow, found
                         # where it is darker by under this share of the umbra's darkening, at half the coarse
HOLE_SPOT = 0.4          # scale, over a spot at least this many times the coarse σ in radius (a bright stone's
                         # or blade's spot in the umbra is smaller)
FAINT_MIN = 0.12         # nothing found, not even a sliver: a faint shadow (an overcast sky's, or one lit from
                         # around, 12-20 % darker) is looked for from this darkness ...
FAINT_CONTRAST = 1.3     # ... where its umbra stands out of the texture by this much (at 1.1-1.2, dark grass and
                         # bricks beside small objects that cast no shadow were taken)
ENCLOSE_CONTRAST = 1.4   # what the region encloses with the object is filled before its opening where the contrast
                         # is at least this (the doubt's "may be only dark texture" below it)
ONE_LIGHT = 0.5          # one sun casts the shadow to one side: a piece of the region beside the object headed
                         # over 60° (cosine under this) away from its largest piece, seen from the object's centre,
ONE_LIGHT_AREA = 0.25    # ... and under this share of that piece's area, is dark texture (not a second lamp's)


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
    the window's working copy: what is darker (:func:`_darker`), the shadow's region (:func:`_region`),
    where it stops at the edge of a darker ground (:func:`_stop_at_edge`), the lit level again
    (:func:`_relevel`), the lit holes (:func:`_lit_holes`), the outline (:func:`_fit_outline`), the
    umbra's darkening (:func:`_umbra`); then the matte at full resolution (:func:`_full_matte`), and, for
    the doubt signals, how the umbra's darkening changes away from the object (:func:`_fade`)."""
    none = (None, (False,) * 4)
    win = Window.around(image, mask, exclude, box, side, reach)
    if win.valid.sum() < 64:
        return none
    share = SLIVER if sliver else 1.0
    coarse = max(2.0, COARSE * share * side * win.scale)
    neck = max(2, int(round(NECK * share * side * win.scale)))
    dark = _darker(win, coarse, neck, NARROW_CONTRAST if sliver else FAINT_CONTRAST if faint else CONTRAST_MIN,
                   FAINT_MIN if faint else DARK_MIN)
    if dark is None:
        return none
    region = _region(win, dark, neck)
    if region is None:
        return none
    rim = 2   # working px: the shadow reaches the window's side (the photo's border is no cut)
    cut = tuple(bool(e.any()) and not f for e, f in zip(
        (region[:rim], region[-rim:], region[:, :rim], region[:, -rim:]), win.frame))
    not_ground = mask if exclude is None else mask | exclude
    edge = _stop_at_edge(image, not_ground, win, dark, region, coarse)
    lit, darkening, away = _relevel(edge, dark)
    valid, region = edge.valid, edge.region
    holes = _lit_holes(win.small, valid, lit, region, valid & ~away, float(darkening.mean()), coarse)
    if holes.any():
        region &= ~holes
        darkening = _around_holes(win.small, valid, lit, region, holes, coarse, darkening)
    signed, offset, sigma = _fit_outline(win.small, valid, win.near, lit, region, float(darkening.mean()), coarse)
    umbra = _umbra(win, valid, edge.mean, lit, away, signed, offset, sigma, darkening, side)
    found = _full_matte(image, not_ground, win, umbra, signed, offset, sigma, edge.placed)
    if found is None:
        return none
    box, matte, darkening = found
    seen = dark.candidate | region
    if win.others is not None:   # what the doubt signals measure: the shadow nearer this object than the others
        seen &= nearest_values(win.obj | win.others, win.obj)
    # measured on one ground (across two, the step between them would pass for it)
    fading = _fade(win, umbra) if dark.grounds is None else 0.0
    return ShadowMatte(box, matte, darkening, seen, win.obj, win.box, win.frame, dark.contrast, edge.ends_at_ground,
                       expected_error(image, not_ground, box, matte), fading), cut


def _fade(win: Window, umbra: _Umbra) -> float:
    """How much the umbra's darkening changes away from the object (:func:`.darkening.fade`), measured on the
    working copy's umbra where :func:`_umbra` read its statistics (where the umbra holds many texture
    units), its texture smoothed over the umbra alone (the lit ground beyond the penumbra left out); 0
    elsewhere and for a sliver's (its umbra is mostly the penumbra's reach)."""
    import cv2

    from ..mask.refine import bbox

    if umbra.core is None or umbra.thin:   # (an empty core is thin)
        return 0.0
    away = cv2.distanceTransform((~win.obj).astype(np.uint8), cv2.DIST_L2, 3)
    # smoothed over the umbra's box and the smoothing's reach around it only (the same values there)
    x0, y0, x1, y1 = _grown(bbox(umbra.core), int(round(2 * umbra.thickness)) + 1, umbra.core.shape)
    core = umbra.core[y0:y1, x0:x1]
    darker = 1 - grey(normconv(win.small[y0:y1, x0:x1], core, umbra.thickness / 2) / umbra.lit[y0:y1, x0:x1])
    return fade(darker[core], away[y0:y1, x0:x1][core])


@dataclass
class _Darker:
    """What :func:`_darker` finds on the working copy (H'×W' arrays): ``mean``, the copy smoothed at the
    coarse scale over the ground; ``grounds``, the window's two grounds or None; ``lit``, the lit ground's
    level (H'×W'×3); ``dark`` (1 − the ratio's mean over channels) and ``spread`` (its channels' spread
    about a shadow's), per pixel; ``touch``, the object grown by ``CONTACT_PX``; ``candidate``, the darker
    ground keeping its chroma that touches the object; ``darkening``, its darker half's (per channel);
    ``contrast``, that over the lit ground's own darkest spots; ``disk`` (the neck's) and ``smear``
    (how far the coarse smoothing carries a region's darkness), structuring elements."""

    mean: np.ndarray = field(repr=False)
    grounds: Grounds | None
    lit: np.ndarray = field(repr=False)
    dark: np.ndarray = field(repr=False)
    spread: np.ndarray = field(repr=False)
    touch: np.ndarray = field(repr=False)
    candidate: np.ndarray = field(repr=False)
    darkening: np.ndarray
    contrast: float
    disk: np.ndarray = field(repr=False)
    smear: np.ndarray = field(repr=False)


def _darker(win: Window, coarse: float, neck: int, contrast_min: float, dark_min: float = DARK_MIN
            ) -> _Darker | None:
    """At the coarse scale (σ ``coarse``, working px: a fraction of the object's size), the ground at least
    ``dark_min`` darker than its lit level that keeps its chroma and touches the object, and how dark its
    umbra is; None when there is none, the ground is too dark to tell (``LIT_MIN``) or its umbra stands out
    of the texture by less than ``contrast_min`` (:func:`.evidence.texture_contrast`, with the dark areas as
    wide as the ``neck`` disk left out: other shadows)."""
    import cv2

    valid = win.valid
    mean = normconv(win.small, valid, coarse)
    grounds = two_grounds(mean, valid, coarse)
    lit = lit_level(mean, valid, grounds=grounds)
    if float(lit.mean()) < LIT_MIN:   # ground too dark to tell a shadow on it
        return None
    ratio = mean / lit                                   # H'×W'×3, 1 = lit, < 1 = darker
    dark = 1 - grey(ratio)
    touch = cv2.dilate(win.obj.astype(np.uint8), disk(CONTACT_PX + 2)).astype(bool)
    spread = chroma_spread(ratio, dark, sky_shape(ratio, dark, _touching(valid & (dark >= dark_min), touch)))
    candidate = _touching(valid & (dark >= dark_min) & (spread <= CHROMA_MAX), touch)
    if not candidate.any():
        return None
    core = candidate & (dark >= np.percentile(dark[candidate], 50))
    darkening = np.clip(np.median(1 - ratio[core], axis=0), 0.02, 0.95).astype(np.float32)
    neck_disk, smear = disk(neck), disk(int(2 * coarse + 6))
    around = cv2.dilate(candidate.astype(np.uint8), smear).astype(bool)
    contrast = texture_contrast(dark, valid & ~around, float(darkening.mean()), dark_min, neck_disk, int(coarse))
    if contrast < contrast_min:
        return None
    return _Darker(mean, grounds, lit, dark, spread, touch, candidate, darkening, contrast, neck_disk, smear)


def _region(win: Window, dark: _Darker, neck: int) -> np.ndarray | None:
    """The shadow's region (H'×W' bool, its holes filled; None when empty): the ground half-way through
    the penumbra (at the coarse scale an edge keeps its place) that touches the object, without dark
    texture joined to it by necks thinner than ``neck`` working px."""
    import cv2

    from ..mask.refine import fill_holes

    valid, touch = win.valid, dark.touch
    region = _touching(valid & (dark.dark >= 0.5 * float(dark.darkening.mean())) & (dark.spread <= CHROMA_MAX), touch)
    # what it encloses with the object too (a lit hole beside the object, light through its handle, left
    # the shadow beyond joined by thin strips that the opening cut; :func:`_lit_holes` opens it again),
    # where the umbra stands out of the texture (else it joined dark texture round lit stones)
    if dark.contrast >= ENCLOSE_CONTRAST:
        region = fill_holes(region | win.near) & valid
    # open the region (a disk a tenth of the object's size), keep what touches the object, and take back only
    # the region's pixels near that. Where the umbra stands well out of the texture, little texture is that
    # dark: a disk half as wide, which cuts less of the shadow's own thin parts off, then, when nothing is
    # left (a shadow thinner than that: a high sun's, mostly hidden behind the object, a sliver beside it),
    # a quarter
    for radius in (neck // 2, neck // 4) if dark.contrast >= NARROW_CONTRAST else (neck,):
        if radius < 1:
            break
        opener = dark.disk if radius == neck else disk(radius)
        body = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_OPEN, opener).astype(bool)
        body = _touching(body, cv2.dilate(touch.astype(np.uint8), opener).astype(bool))
        if body.any():
            break
    region = _touching(region & cv2.dilate(body.astype(np.uint8), opener).astype(bool), touch)
    region = _one_light(fill_holes(region | win.near) & valid, win.near, win.obj)
    return region if region.any() else None


def _one_light(region: np.ndarray, near: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """``region`` (H'×W' bool) without the small pieces beside the object that one light could not have
    cast with its largest piece: outside ``near`` (the object grown by 2 px), an 8-connected piece whose
    mean heading from ``obj``'s centre is over 60° from the largest piece's (``ONE_LIGHT``) and whose area
    is under ``ONE_LIGHT_AREA`` of its area (a second lamp's shadow would be as large) is dark texture
    that touched the object (a 1200x900 gravel scene: 45 working px at 80°, which took ground 40-45 px
    beyond the shadow)."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats((region & ~near).astype(np.uint8), connectivity=8)
    if n <= 2 or not obj.any():
        return region
    heading = headings(obj, labels, n)
    heading /= np.maximum(np.hypot(heading[:, 0], heading[:, 1]), 1e-9)[:, None]
    area = stats[:, cv2.CC_STAT_AREA]
    main = 1 + int(np.argmax(area[1:]))
    keep = (heading @ heading[main] >= ONE_LIGHT) | (area >= ONE_LIGHT_AREA * area[main])
    keep[0] = False
    return (region & near) | keep[labels]


@dataclass
class _Edge:
    """The ground a shadow is measured on after :func:`_stop_at_edge`: ``valid``, ``region`` and ``mean``
    (H'×W', the beyond of the edge left out when it was placed), ``grounds`` (None once one is left),
    ``placed`` (the edge on the photo's pixels, or None) and ``ends_at_ground`` (the shadow stops there)."""

    valid: np.ndarray = field(repr=False)
    region: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    grounds: Grounds | None
    placed: PlacedEdge | None = None
    ends_at_ground: bool = False


def _stop_at_edge(image: np.ndarray, not_ground: np.ndarray, win: Window, dark: _Darker, region: np.ndarray,
                  coarse: float) -> _Edge:
    """A shadow that stops at the edge between two grounds of one colour (a building's shade beyond it):
    the edge placed on the photo's pixels (``not_ground``: H×W bool, the selected objects), the ground
    beyond it none of the shadow's from here on (``mean`` smoothed again at ``coarse`` without it)."""
    import cv2

    grounds = dark.grounds
    ground = None if grounds is None or grounds.edge is None else grounds.stays_on(region)
    if ground is None:
        return _Edge(win.valid, region, dark.mean, grounds)
    ends_at_ground = grounds.ends_at_darker(region, cv2.dilate(win.obj.astype(np.uint8), dark.smear).astype(bool))
    placed = place_edge(image, not_ground, win.box, win.scale, grounds.edge, ground == 0, grounds.rise, region,
                        float(dark.darkening.mean()))
    if placed is None:
        return _Edge(win.valid, region, dark.mean, grounds, None, ends_at_ground)
    valid = win.valid & (placed.on_working(win.valid.shape, win.scale) >= 0.5)   # one ground left
    return _Edge(valid, region & valid, normconv(win.small, valid, coarse), None, placed, ends_at_ground)


def _relevel(edge: _Edge, dark: _Darker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lit level again, over all the ground but the shadow (its penumbra and the coarse smoothing's
    reach too), and the umbra's darkening against it; with where that reach is (H'×W' bool). The search
    had to leave out every darker patch, which on coarse texture leaves the level too bright (under the
    shadow, on average: gravel +1.0 / +3.7 %, grass +1.1 / +2.4 % on the tuning / held-out scenes;
    refitted: +0.3 / +2.2, -0.1 / +1.6), so the darkening came out too strong and the outline too far out."""
    import cv2

    valid, region, mean = edge.valid, edge.region, edge.mean
    away = cv2.dilate(region.astype(np.uint8), dark.smear).astype(bool)
    if (valid & ~away).sum() < 64:
        return dark.lit, dark.darkening, away
    lit = lit_level(mean, valid & ~away, passes=1, grounds=edge.grounds)
    darker = 1 - grey(mean / lit)
    core = region & (darker >= np.percentile(darker[region], 50))
    return lit, np.clip(np.median(1 - (mean / lit)[core], axis=0), 0.02, 0.95).astype(np.float32), away


@dataclass
class _Umbra:
    """The umbra's ``darkening`` (per channel) found by :func:`_umbra`, the ``lit`` level the outline is
    refitted against (H'×W'×3), and where the ground's statistics gave it (:mod:`.darkening`; else None
    and 0): their ``weights``, the ``core`` they were read on (H'×W' bool: the matte's 0.95 line, a
    working pixel further in where the umbra is thin) and the umbra's ``thickness`` (working px, the
    widest disk in it)."""

    darkening: np.ndarray
    lit: np.ndarray = field(repr=False)
    weights: np.ndarray | None = None
    core: np.ndarray | None = field(default=None, repr=False)
    thickness: float = 0.0

    @property
    def thin(self) -> bool:
        """A sliver's umbra, read a working pixel further in (``THIN_UMBRA``)."""
        return self.core is not None and self.thickness <= THIN_UMBRA


def _umbra(win: Window, valid: np.ndarray, mean: np.ndarray, lit: np.ndarray, away: np.ndarray,
           signed: np.ndarray, offset: float, sigma: float, darkening: np.ndarray, side: int) -> _Umbra:
    """The umbra's darkening again, now that the outline is known (``signed``, ``offset``, ``sigma``:
    :func:`_fit_outline`'s): on a working copy at most ``COARSE_COPY`` of the photo's size, from the
    ground's brightness statistics, and the lit level then follows the ground around the shadow; else by
    least squares under the matte (``darkening`` where too little of it is seen). ``valid``, ``mean``,
    ``lit``, ``away``: the ground, the coarse mean, the lit level and the shadow's reach (H'×W')."""
    import cv2

    small, s = win.small, win.scale
    work_matte = step(signed - offset, max(sigma, 0.35))
    estimate, weights, umbra, thickness = None, None, None, 0.0
    if s <= COARSE_COPY:
        # the object is large in the photo, the umbra holds many texture units: the statistics of the
        # ground's brightness that stray least between patches of lit ground tell its darkening
        # (:mod:`.darkening`; at 1200x900, rms error on gravel 2.6 / 2.0 → 1.8 / 1.2 %, grass 2.0 / 2.3
        # → 2.0 / 1.8 against the least squares below, two sets of 6 scenes) ...
        edge = offset + 3 * max(sigma, 0.35) + 2
        outside = valid & (signed > edge)
        # the umbra: inside the matte's 0.95 line, a working pixel further in where the umbra is thin (a
        # sliver of shadow: there the penumbra in the umbra's statistics made the darkening 3-5 % too light)
        umbra = valid & (work_matte >= 0.95)
        thickness = float(cv2.distanceTransform(umbra.astype(np.uint8), cv2.DIST_L2, 3).max())
        if thickness <= THIN_UMBRA:
            umbra &= step(signed - offset + 1, max(sigma, 0.35)) >= 0.95
        ratio, ring = small / lit, outside & (signed <= edge + RING * side * s)
        weights = statistic_weights(ratio, umbra, ring, outside)
        if weights is not None:
            estimate = weighted_darkening(ratio[umbra], ratio[ring], weights)
        # ... and the lit level under the shadow follows the ground around it (the plane's departure,
        # interpolated): the refit of the outline measures against it, in the matte's box (and the working
        # px its interpolation reads around it), smoothed there from the ground within the smoothing's reach
        local = LOCAL * side * s
        x0, y0, x1, y1 = _grown(_reach_box(signed, offset, sigma), 5, lit.shape)
        X0, Y0, X1, Y1 = _grown((x0, y0, x1, y1), int(round(4 * local)) + 1, lit.shape)
        plane = normconv(grey(mean[Y0:Y1, X0:X1] / lit[Y0:Y1, X0:X1]), (valid & ~away)[Y0:Y1, X0:X1], local)
        lit = lit.copy()
        lit[y0:y1, x0:x1] *= merge([plane[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]] * 3)
    use = valid & (work_matte >= 0.5)
    if estimate is not None:
        darkening = estimate
    elif use.sum() >= 16:
        # least squares of image = lit · (1 − matte · darkening) over the shadow's half (texture averages out)
        m, l = work_matte[use][:, None], lit[use]
        refit = (m * l * (l - small[use])).sum(axis=0) / np.maximum((m * m * l * l).sum(axis=0), 1e-6)
        darkening = np.clip(refit, 0.02, 0.95).astype(np.float32)
    return _Umbra(darkening, lit, weights, umbra, thickness)


def _full_matte(image: np.ndarray, not_ground: np.ndarray, win: Window, umbra: _Umbra, signed: np.ndarray,
                offset: float, sigma: float, placed: PlacedEdge | None
                ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """The matte at full resolution, in its own box: the signed distance (the outline fitted again on the
    photo's pixels when the working copy is smaller: :func:`_refined`) through the step, cut where the
    shadow stops at a ``placed`` edge. Its box (x0, y0, x1, y1, full px), the matte (float32 in [0, 1],
    below ``MATTE_MIN`` set to 0) and the umbra's darkening (read again on the finer copy where the
    umbra is thin); None when nothing is left."""
    (wx0, wy0, wx1, wy1), s, darkening = win.box, win.scale, umbra.darkening
    rb = _reach_box(signed, offset, sigma)
    fx0, fy0 = max(int(rb[0] / s) - 2, 0), max(int(rb[1] / s) - 2, 0)
    fx1, fy1 = min(int(np.ceil(rb[2] / s)) + 2, wx1 - wx0), min(int(np.ceil(rb[3] / s)) + 2, wy1 - wy0)
    keep = None if placed is None else placed.on_box((fx0, fy0, fx1, fy1))   # the shadow's side of the edge
    if s < 1:
        # a thin umbra's darkening is read again where it is more than a pixel or two wide (not where the
        # shadow stops at a building's shade: the ring beyond it is partly that shade's)
        dist, sigma, finer = _refined(image, not_ground, (wx0, wy0), (fx0, fy0, fx1, fy1), signed, umbra.lit,
                                      offset, sigma, float(darkening.mean()), s, s <= COARSE_COPY,
                                      None if keep is None else keep < 0.5,
                                      umbra.weights if umbra.thin and keep is None else None)
        if finer is not None:
            darkening = finer
    else:
        dist, sigma = signed[fy0:fy1, fx0:fx1] - offset, max(sigma, 0.35)
    matte = step(dist, sigma)
    if keep is not None:   # cut where the shadow stops
        matte *= keep
    matte[matte < MATTE_MIN] = 0
    if not matte.any():
        return None
    return (wx0 + fx0, wy0 + fy0, wx0 + fx1, wy0 + fy1), np.clip(matte, 0, 1).astype(np.float32), darkening


def _reach_box(signed: np.ndarray, offset: float, sigma: float) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1, working px) of what the matte ``step(signed − offset, σ)`` reaches."""
    from ..mask.refine import bbox

    return bbox(signed <= offset + 3 * sigma + 4)


def _grown(box: tuple[int, int, int, int], px: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1) grown by ``px`` on each side, within an array of ``shape`` (H, W, ...)."""
    return max(box[0] - px, 0), max(box[1] - px, 0), min(box[2] + px, shape[1]), min(box[3] + px, shape[0])


def _fit_outline(small: np.ndarray, valid: np.ndarray, near: np.ndarray, lit: np.ndarray, region: np.ndarray,
                 darkening: float, coarse: float) -> tuple[np.ndarray, float, float]:
    """The shadow's outline on the working copy: the signed distance (H'×W' float32, working px, > 0
    outside) to the ``region``'s outline, its pieces' offsets fitted, and the offset and penumbra σ
    (working px) left to apply: ``step(signed − offset, σ)`` is the matte. ``small``: the working copy;
    ``valid``: the ground; ``near``: the object grown by 2 px; ``lit``: the lit ground's level;
    ``darkening``: the umbra's (mean over channels); ``coarse``: the search's smoothing σ."""
    import cv2

    # under the object next to the shadow: shadow too (the near band whose nearest ground is the region's,
    # not the band along the object's edge past the shadow's: that took ~40 px beside it at 12 MP)
    ring = near & cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    ring &= nearest_values(~near, region)
    inside = (region | ring).astype(np.uint8)
    signed = (cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
              - cv2.distanceTransform(inside, cv2.DIST_L2, 5)).astype(np.float32)  # working px, > 0 outside
    # the region's outline follows the texture's dark gaps at the coarse scale (wiggles a stone or a
    # brick wide) where a shadow's is smooth: smooth the signed distance (unless that takes most of a
    # thin region away); the pieces' offsets then follow the shadow's own shape
    smooth = cv2.GaussianBlur(signed, (0, 0), OUTLINE_SMOOTH * coarse)
    if (smooth <= 0).sum() >= 0.5 * inside.sum():
        signed, inside = smooth, (smooth <= 0).astype(np.uint8)
    fine = normconv(small, valid, FINE)
    raw = (1 - grey(fine / lit)) / darkening
    band = valid & (np.abs(signed) <= max(4.0, 2 * coarse))
    if band.sum() < 8:
        return signed, 0.0, 1.0
    d, r = signed[band], raw[band]
    thin = max(1, d.size // 4000)  # a global fit: a few thousand pixels of the band are plenty
    d, r = d[::thin], r[::thin]
    best, best_err = (0.0, 1.0), np.inf
    for offset in OFFSETS[::2]:  # whole px: the pieces refine it
        for sigma in PENUMBRAS:
            err = float(((step(d - offset, float(np.hypot(sigma, FINE))) - r) ** 2).mean())
            if err < best_err:
                best, best_err = (offset, sigma), err
    offset, sigma = best
    # the outline's offset, segment by segment along it: a shadow's outline is not the coarse one's
    for _ in range(PASSES):
        signed = signed - local_offsets(inside, signed, band, LevelCost(raw, float(np.hypot(sigma, FINE))), offset)
        offset = 0.0
        sigma = fit_sigma(signed[band][::thin], raw[band][::thin], PENUMBRAS)
    return signed, offset, sigma


def _refined(image: np.ndarray, mask: np.ndarray, corner: tuple[int, int], box: tuple[int, int, int, int],
             signed: np.ndarray, lit: np.ndarray, offset: float, sigma: float, darkening: float,
             s: float, fit_penumbra: bool, other: np.ndarray | None = None, weights: np.ndarray | None = None
             ) -> tuple[np.ndarray, float | np.ndarray, np.ndarray | None]:
    """The matte's signed distance (full px, over ``box``: the matte's box in the window whose top-left
    corner is ``corner``) and σ (full px), fitted again on a copy of the photo there of at most
    ``REFINE_SIZE`` px (the photo itself when it is smaller) on the ground (not ``mask``): ``signed``,
    ``lit``, ``offset`` and ``sigma`` are the working copy's (working px, downscaled by ``s``);
    ``fit_penumbra``: fit σ again too, widening away from the objects where that explains the photo
    better (σ then h×w float32, per pixel: :func:`.outline.fit_widening`); ``other``: (h×w bool over
    ``box``, full px) no ground of the shadow's either (beyond the edge it stops at). Third: with the
    statistics' ``weights`` (a thin umbra's), the umbra's darkening read on that copy against a ring
    ``THIN_RING`` working px wide beyond the penumbra (:func:`.darkening.weighted_darkening`); else None."""
    import cv2

    fx0, fy0, fx1, fy1 = box
    x0, y0, x1, y1 = corner[0] + fx0, corner[1] + fy0, corner[0] + fx1, corner[1] + fy1
    r = min(1.0, REFINE_SIZE / max(x1 - x0, y1 - y0))
    size = (max(1, round((x1 - x0) * r)), max(1, round((y1 - y0) * r)))
    xs = ((fx0 + (np.arange(size[0], dtype=np.float32) + 0.5) / r) * s - 0.5)[None, :].repeat(size[1], 0)
    ys = ((fy0 + (np.arange(size[1], dtype=np.float32) + 0.5) / r) * s - 0.5)[:, None].repeat(size[0], 1)
    dist = (cv2.remap(signed, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) - offset) * (r / s)
    lit = cv2.remap(lit, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def on_copy(region: np.ndarray) -> np.ndarray:   # h×w bool, full px → uint8 0/1 on the copy
        region = region.astype(np.uint8)
        return region if r == 1 else (cv2.resize(region * np.uint8(255), size, interpolation=cv2.INTER_AREA) > 2
                                      ).astype(np.uint8)

    crop, objects = to_rgb8(image[y0:y1, x0:x1]), mask[y0:y1, x0:x1]
    if r < 1:
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    obj = on_copy(objects if other is None else objects | other)
    ground = ~cv2.dilate(obj, disk(2)).astype(bool)
    # the distance from the objects, which the penumbra widens with
    near = obj if other is None else on_copy(objects)
    away = cv2.distanceTransform(1 - near, cv2.DIST_L2, 3) if fit_penumbra and near.any() else None
    dist, sigma = refine_outline(crop.astype(np.float32), ground, lit, dist, max(sigma, 0.35) * r / s, darkening,
                                 s / r, fit_penumbra, away)
    finer = None
    if weights is not None:
        edge = 3 * sigma + 2
        umbra = ground & (step(dist, sigma) >= 0.95)
        ring = ground & (dist > edge) & (dist <= edge + THIN_RING * r / s)
        if umbra.sum() >= MIN_PIXELS and ring.sum() >= MIN_PIXELS:
            ratio = crop / lit
            finer = weighted_darkening(ratio[umbra], ratio[ring], weights)
    if r < 1:
        dist = cv2.resize(dist, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        if not np.isscalar(sigma):
            sigma = cv2.resize(sigma, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return dist / r, sigma / r, finer


def _lit_holes(small: np.ndarray, valid: np.ndarray, lit: np.ndarray, region: np.ndarray, ground: np.ndarray,
               darkening: float, coarse: float) -> np.ndarray:
    """Lit holes in the shadow ``region`` (H'×W' bool, its holes filled): light through the object (its
    handle, between its legs). At half the coarse scale, the parts of it half-way lit or more that hold
    a spot lit as ``LIT_HOLE`` says, brighter than the umbra's texture can be (the ``ground``'s
    brightest spots, its 99th percentile, darkened by ``darkening``), in the lit ground's chroma (a
    white or painted thing lying in the shadow is no hole) and at least ``HOLE_SPOT`` times the coarse
    σ in radius (nor is a bright stone in the umbra). What it cannot tell from a hole: a thing lying in
    the shadow as coloured as the ground and brighter than any of it around."""
    from ..mask.refine import remove_small_islands

    none = np.zeros_like(region)
    channels = normconv(small, valid, max(1.0, coarse / 2)) / lit
    ratio = grey(channels)
    spot = np.pi * (HOLE_SPOT * coarse) ** 2
    seeds = region & (ratio >= 1 - LIT_HOLE * darkening)
    if seeds.sum() < spot or ground.sum() < 64:   # most shadows: no lit spot that large at all
        return none
    seeds &= ratio >= float(np.percentile(ratio[ground], 99)) * (1 - darkening)
    seeds &= chroma_spread(channels, 1 - ratio, None) <= CHROMA_MAX   # the ground's own chroma, lit
    seeds = remove_small_islands(seeds, int(np.ceil(spot)))
    if not seeds.any():
        return none
    return _touching(region & (ratio >= 1 - darkening / 2), seeds)


def _around_holes(small: np.ndarray, valid: np.ndarray, lit: np.ndarray, region: np.ndarray, holes: np.ndarray,
                  coarse: float, darkening: np.ndarray) -> np.ndarray:
    """The umbra's darkening again once the lit ``holes`` are cut out of the shadow's ``region`` (H'×W' bool,
    working copy): at the coarse scale their light spreads over the shadow around them, which is thin there
    (a handle's shadow is a ring round its hole), so the umbra came out too light and the outline's fit
    too sharp (1200x900, holes 0.3 of the object's radius: 1-12 % too light, σ 0-0.5 working px for a
    true 0.5-1.2). Read at half the coarse scale, on the region over half that scale in from its outline
    and beyond the coarse smoothing's reach from the holes (the median of the ratio there: what is left is
    the umbra); ``darkening`` where fewer than 16 working px are left."""
    import cv2

    rest = region & ~cv2.dilate(holes.astype(np.uint8), disk(int(np.ceil(coarse)))).astype(bool)
    rest &= cv2.erode(region.astype(np.uint8), disk(int(np.ceil(coarse / 2)))).astype(bool)
    if rest.sum() < 16:
        return darkening
    ratio = normconv(small, valid, max(1.0, coarse / 2)) / lit
    return np.clip(np.median(1 - ratio[rest], axis=0), 0.02, 0.95).astype(np.float32)


def _scale(mask: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """The search's scale (px): the object's longest side, or ``THICK`` times its thickness (the widest
    disk in it) when that is less: a pole's shadow is as narrow as the pole, not as its height."""
    import cv2

    side = max(box[2] - box[0], box[3] - box[1])
    crop = mask[box[1]:box[3], box[0]:box[2]]
    f = max(1, side // 512)   # measured on every f-th pixel: a few ms for any object
    widest = 2 * f * float(cv2.distanceTransform(np.pad(crop[::f, ::f], 1).astype(np.uint8), cv2.DIST_L2, 3).max())
    return max(1, int(min(side, THICK * widest)))


def _touching(cand: np.ndarray, touch: np.ndarray) -> np.ndarray:
    """The 8-connected parts of ``cand`` that meet ``touch``."""
    import cv2

    n, labels = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[touch & cand])
    return np.isin(labels, keep[keep > 0])
