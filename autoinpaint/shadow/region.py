"""What is darker than the lit ground and touches the object, and the shadow's region in it (used by
:mod:`.find`, on the window's working copy).

At the coarse scale (a fraction of the object's size) the photo is divided by the lit ground's level
(:mod:`.level`; one per ground where the window holds two, :mod:`.grounds`): the candidates are the
ground at least 20 % darker whose channels darken alike, or as the blue sky lighting a shadow alone
darkens them (:mod:`.evidence`), that touches the object; their umbra has to stand out of the lit
ground's own darkest spots (:func:`.evidence.texture_contrast`). The region is the ground half-way
through the penumbra that touches the object, without dark texture joined to it by thin necks, nor
pieces beside the object that one sun could not have cast with it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging.pixels import grey
from ..mask.refine import disk
from .evidence import chroma_spread, headings, sky_shape, texture_contrast
from .grounds import Grounds, two_grounds
from .level import DARK_MIN, lit_level
from .outline import normconv
from .window import Window

LIT_MIN = 12.0           # grey level under which the ground is too dark to measure a shadow on
CHROMA_MAX = 0.08        # ... and its channels drop alike (ratio spread at most this): chroma kept, or
                         # as a sky-lit shadow's do (:func:`.evidence.sky_shape`), up to the same spread
CONTACT_PX = 3           # a candidate touches the object when it comes this close (working px)
NARROW_CONTRAST = 2.5    # the region is opened with a narrower disk (which lets more dark texture through)
                         # only where its umbra is at least this many times as dark as the lit ground's own
                         # darkest spots (:func:`.evidence.texture_contrast`)
ENCLOSE_CONTRAST = 1.4   # what the region encloses with the object is filled before its opening where the contrast
                         # is at least this (the doubt's "may be only dark texture" below it)
BRIDGE_CONTRAST = 2.0    # ... and where it is at least this, the opening decides the shadow's body on the region
                         # closed with the object: a lit hole cut into the shadow's side leaves the part beyond it
                         # joined by a strip thinner than the opening's disk (below 2, the doubt's "outline may be
                         # off", dark texture near the shadow is bridged too: at 1.4 a gravel scene lost a tenth)
HUG_CONTRAST = 5.0       # ... and where it is at least this (hardly any texture is that dark), the region's thin parts
                         # along the object are kept too, not only those near its body: a high sun's shadow is a
                         # crescent thinner than the opening's disk beside the object (at 2.5, dark texture along
                         # the object was taken on four scenes of the matrix)
ONE_LIGHT = 0.5          # one sun casts the shadow to one side: a piece of the region beside the object headed
                         # over 60° (cosine under this) away from its largest piece, seen from the object's centre,
ONE_LIGHT_AREA = 0.25    # ... and under this share of that piece's area, is dark texture (not a second lamp's)


@dataclass
class Darker:
    """What :func:`darker` finds on the working copy (H'×W' arrays): ``mean``, the copy smoothed at the
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


def darker(win: Window, coarse: float, neck: int, contrast_min: float, dark_min: float = DARK_MIN
           ) -> Darker | None:
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
    spread = chroma_spread(ratio, dark, sky_shape(ratio, dark, touching(valid & (dark >= dark_min), touch)))
    candidate = touching(valid & (dark >= dark_min) & (spread <= CHROMA_MAX), touch)
    if not candidate.any():
        return None
    core = candidate & (dark >= np.percentile(dark[candidate], 50))
    darkening = np.clip(np.median(1 - ratio[core], axis=0), 0.02, 0.95).astype(np.float32)
    neck_disk, smear = disk(neck), disk(int(2 * coarse + 6))
    around = cv2.dilate(candidate.astype(np.uint8), smear).astype(bool)
    contrast = texture_contrast(dark, valid & ~around, float(darkening.mean()), dark_min, neck_disk, int(coarse))
    if contrast < contrast_min:
        return None
    return Darker(mean, grounds, lit, dark, spread, touch, candidate, darkening, contrast, neck_disk, smear)


def find_region(win: Window, dark: Darker, neck: int, sliver: bool = False) -> np.ndarray | None:
    """The shadow's region (H'×W' bool, its holes filled; None when empty): the ground half-way through
    the penumbra (at the coarse scale an edge keeps its place) that touches the object, without dark
    texture joined to it by necks thinner than ``neck`` working px. Where the umbra stands out of the
    texture, the shadow beyond a lit hole cut into its side (``BRIDGE_CONTRAST``) and its thin parts along
    the object (``HUG_CONTRAST``) are kept; not in the ``sliver``'s search closer up (a sliver has no side
    for a hole to cut into, and is searched there at half the neck already)."""
    import cv2

    from ..mask.refine import fill_holes

    valid, touch = win.valid, dark.touch
    region = touching(valid & (dark.dark >= 0.5 * float(dark.darkening.mean())) & (dark.spread <= CHROMA_MAX), touch)
    # what it encloses with the object too (a lit hole beside the object, light through its handle, left
    # the shadow beyond joined by thin strips that the opening cut; :func:`.holes.lit_holes` opens it again),
    # where the umbra stands out of the texture (else it joined dark texture round lit stones)
    if dark.contrast >= ENCLOSE_CONTRAST:
        region = fill_holes(region | win.near) & valid
    # open the region (a disk a tenth of the object's size), keep what touches the object, and take back only
    # the region's pixels near that. Where the umbra stands well out of the texture, little texture is that
    # dark: a disk half as wide, which cuts less of the shadow's own thin parts off, then, when nothing is
    # left (a shadow thinner than that: a high sun's, mostly hidden behind the object, a sliver beside it),
    # a quarter. Where the umbra stands out of the texture, the body is decided on the region closed with the
    # object (a lit hole cut into the shadow's side left the part beyond it joined by a thin strip); only the
    # region's own pixels are taken back
    shape = region
    if not sliver and dark.contrast >= BRIDGE_CONTRAST:
        shape = cv2.morphologyEx((region | win.near).astype(np.uint8), cv2.MORPH_CLOSE, dark.disk).astype(bool) & valid
    for radius in (neck // 2, neck // 4) if dark.contrast >= NARROW_CONTRAST else (neck,):
        if radius < 1:
            break
        opener = dark.disk if radius == neck else disk(radius)
        beside = cv2.dilate(touch.astype(np.uint8), opener).astype(bool)   # the object, the opening's reach out
        body = touching(cv2.morphologyEx(shape.astype(np.uint8), cv2.MORPH_OPEN, opener).astype(bool), beside)
        if body.any():
            break
    keep = cv2.dilate(body.astype(np.uint8), opener).astype(bool)
    if not sliver and dark.contrast >= HUG_CONTRAST:   # the thin parts along the object too
        keep |= beside
    region = touching(region & keep, touch)
    region = one_light(fill_holes(region | win.near) & valid, win.near, win.obj)
    return region if region.any() else None


def one_light(region: np.ndarray, near: np.ndarray, obj: np.ndarray) -> np.ndarray:
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


def touching(cand: np.ndarray, touch: np.ndarray) -> np.ndarray:
    """The 8-connected parts of ``cand`` that meet ``touch``."""
    import cv2

    n, labels = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[touch & cand])
    return np.isin(labels, keep[keep > 0])
