"""``--shadow``: take the object's cast shadow with it (issue 19).

Three pipeline steps, composed by :mod:`autoinpaint.api` only when ``shadow`` is on (without it the
pipeline is the same as before, byte for byte):

``FindShadow`` (after the mask stage): the darker region keeping the ground's chroma (or shifting it
as the blue sky does) that touches the object, and stands out of the ground's own texture, becomes a
soft alpha beside the object's (:mod:`.find`, :mod:`.evidence`), for each object apart in the mask
(:mod:`.objects`);
``Deshadow`` (before ``Inpaint``): the inpainter fills only the object's hole, on the photo with the
shadow divided out, so the fill is lit ground (:mod:`.relight`);
``ShadowFill`` (after ``Inpaint``): the shadow's band becomes the relit ground and the composite's
rule holds: every pixel with alpha 0 stays the input's, bit for bit.
"""
from __future__ import annotations

from .find import ShadowMatte, find_shadow
from .objects import CastShadows, find_shadows
from .relight import Deshadow, ShadowFill, relight, shadow_alpha
from .steps import FindShadow

__all__ = ["CastShadows", "Deshadow", "FindShadow", "ShadowFill", "ShadowMatte", "find_shadow", "find_shadows",
           "relight", "shadow_alpha"]
