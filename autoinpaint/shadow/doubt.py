"""The ``--shadow`` doubt signals: whether the cast shadows found are plausible (Assess, in
:mod:`autoinpaint.mask.assess`, adds them to the mask's confidence record).

A shadow is in doubt when it is over 3× the object's area, runs along a border of the photo further
than a shadow leaving the photo there covers, surrounds the object evenly (no light direction casts
that), stands little out of the ground's own texture, stops at the edge of a darker ground (a
building's shade, in which it would go on unseen), is expected to be off once relit
(:func:`.evidence.expected_error`, a JPEG's compression included) or gets lighter or darker away from the
object (:func:`.darkening.fade`). docs/shadow.md has what each threshold was set on.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .evidence import headings, relit_error

# when the cast shadow found is implausible (set by hand on the generated scenes of tests/test_shadow.py,
# not tuned on a benchmark)
SHADOW_AREA_MAX = 3.0    # a shadow over this many times the object's area
SHADOW_BORDER_SIDE = 0.25  # runs along a photo border: touches it over this share of the object's size
                           # more than a shadow crossing it would (its width there, :func:`_crossing`)
SHADOW_CROSSING = 0.5    # ... a shadow heading at a border within 60° of its normal (cosine at least this)
SHADOW_DIRECTION_MIN = 0.3  # one-sidedness (length of the mean direction from the object, 0..1)
SHADOW_CONTRAST_MIN = 1.4  # the umbra this many times as dark as the lit ground's darkest spots (below
                           # 1 no shadow is found); set on generated scenes with and without a shadow
SHADOW_CONTRAST_SURE = 2.0  # ... and under this, where the shadow is one, its outline and darkening are
                            # seldom right: 1 of 14 such bench scenes met the MAD target (480x360 gravel
                            # and grass; 2 of 96 at 640x480 and up stand out this little)
SHADOW_ERROR_MAX = 7.5   # grey levels: the relit shadow's expected error over this is doubt: the target (6)
                         # likely missed (84 % of the bench's results so flagged missed it)
SHADOW_FADE_MAX = 0.15   # the umbra's darkening changing by this share of itself away from the object is doubt:
                         # relit with one darkening, the ground there is left uneven
# where the outline or the darkening may be off, the reason says what corrects them
BY_HAND = " (correct it by hand: --shadow-grow and --shadow-strength, or the web app's Shadow sliders)"


def shadow_signals(shadows) -> dict[str, Any]:
    """Measure the cast shadows found by :func:`autoinpaint.shadow.find_shadows`: each one's signals
    (:func:`_shadow_signals`), the least plausible of them (the largest area, borders and expected
    error, the least direction and contrast)."""
    each = [_shadow_signals(p) for p in shadows.parts]
    worst = {"shadow_area": max, "shadow_borders": max, "shadow_direction": min, "shadow_contrast": min,
             "shadow_ends_at_ground": max, "shadow_error": max, "shadow_compression": max,
             "shadow_fade": lambda v: max(v, key=abs)}
    return {k: pick(s[k] for s in each) for k, pick in worst.items()}


def _shadow_signals(shadow) -> dict[str, Any]:
    """Measure a cast shadow found by :func:`autoinpaint.shadow.find_shadow` (its ``candidate`` and
    ``object`` on the working copy of its window, and which window sides are the photo's ``frame``)."""
    cand, obj = shadow.candidate & ~shadow.object, shadow.object
    area_obj = max(int(obj.sum()), 1)
    ys, xs = np.nonzero(obj)
    size = max(int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1) if ys.size else 1
    heading = headings(obj, cand.astype(np.int32), 2)[1]   # from the object's centre to the shadow (y, x)
    direction = float(np.hypot(*heading))
    sides = (cand[0], cand[-1], cand[:, 0], cand[:, -1])
    outward = ((-1, 0), (1, 0), (0, -1), (0, 1))   # each side's normal (y, x), out of the photo
    borders = sum(bool(edge) and int(side.sum()) >= max(3, SHADOW_BORDER_SIDE * size + _crossing(heading, out, ys, xs))
                  for edge, side, out in zip(shadow.frame, sides, outward))
    return {"shadow_area": round(float(cand.sum()) / area_obj, 3), "shadow_borders": int(borders),
            "shadow_direction": round(direction, 3), "shadow_contrast": round(float(shadow.contrast), 2),
            "shadow_ends_at_ground": bool(shadow.ends_at_ground),
            "shadow_error": relit_error(float(shadow.error), float(shadow.compression)),
            "shadow_compression": round(float(shadow.compression), 2), "shadow_fade": round(float(shadow.fade), 3)}


def _crossing(heading: np.ndarray, normal: tuple[int, int], ys: np.ndarray, xs: np.ndarray) -> float:
    """How much of a photo border (px) a shadow cast by the object (its pixels' rows ``ys`` and columns
    ``xs``) towards ``heading`` (the mean unit vector from the object to its shadow, y and x) covers
    where it leaves the photo: its width, the object's across the heading, over the cosine of the angle
    it meets the border at (outward ``normal``); 0 when it does not head at that border (cosine under
    ``SHADOW_CROSSING``). A shadow leaving the photo is no sign of doubt; one that runs along the
    border beyond that is."""
    length = float(np.hypot(*heading))
    if length < 1e-6:
        return 0.0
    uy, ux = heading / length
    cosine = uy * normal[0] + ux * normal[1]
    if cosine < SHADOW_CROSSING:
        return 0.0
    across = xs * uy - ys * ux   # position across the heading
    return float(np.ptp(across) + 1) / cosine if across.size else 0.0


def shadow_reasons(signals: dict) -> list[str]:
    """The doubt reasons of :func:`shadow_signals` (empty when the shadow is plausible)."""
    reasons = []
    if signals["shadow_area"] > SHADOW_AREA_MAX:
        reasons.append(f"the shadow found is {signals['shadow_area']:.1f}× the object's area")
    if signals["shadow_borders"]:
        n = signals["shadow_borders"]
        reasons.append(f"the shadow found runs along {n} border{'s' if n > 1 else ''} of the photo")
    if signals["shadow_direction"] < SHADOW_DIRECTION_MIN:
        reasons.append("the shadow found surrounds the object evenly: no light direction casts that")
    if signals["shadow_contrast"] < SHADOW_CONTRAST_MIN:
        reasons.append(f"the shadow found is hardly darker than the ground's own texture "
                       f"({signals['shadow_contrast']:.2f}× its darkest spots): it may be only that")
    elif signals["shadow_contrast"] < SHADOW_CONTRAST_SURE:
        reasons.append(f"the shadow found stands little out of the ground's own texture "
                       f"({signals['shadow_contrast']:.2f}× its darkest spots): its outline and darkening "
                       f"may be off{BY_HAND}")
    error, compression = signals["shadow_error"], signals["shadow_compression"]
    if error > SHADOW_ERROR_MAX and compression >= error / np.sqrt(2):   # the JPEG's the larger part
        reasons.append(f"the shadow found is relit from a JPEG's pixels: relighting scales up the compression's "
                       f"error with the darkening, leaving about {error:.0f} grey levels of error where it was")
    elif error > SHADOW_ERROR_MAX:
        jpeg = ", a JPEG's compression relit with it" if compression >= 1 else ""
        reasons.append(f"the shadow found is small for the ground's texture: its outline may be a pixel or two off, "
                       f"leaving about {error:.0f} grey levels of error where it was{jpeg}{BY_HAND}")
    if abs(signals["shadow_fade"]) >= SHADOW_FADE_MAX:
        way = "lighter" if signals["shadow_fade"] < 0 else "darker"
        reasons.append(f"the shadow found gets about {abs(signals['shadow_fade']):.0%} {way} away from the object: "
                       f"relit with one darkening, the ground there may be left uneven")
    if signals["shadow_ends_at_ground"]:
        reasons.append("the shadow found stops at the edge of a darker ground (a wall's or a building's shade?): "
                       "it may go on into it unseen")
    return reasons
