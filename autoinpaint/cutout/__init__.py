"""The ``background`` action's stage (a cut-out): keep the selected object, replace everything else.

Steps (composed by :func:`autoinpaint.api.background_steps`, so the CLI, batch, web app and API run
the same ones): :class:`~.matte.Matte` (trimap + alpha matting, foreground colours) →
:class:`~.framing.Frame` (canvas, margin, align, min side) → :class:`~.backdrop.Backdrop` (colour,
transparent, blur, generated scene) → :class:`~.contact_shadow.ContactShadow` →
:class:`~.backdrop.Cutout` (the composite). Nothing heavy is imported here (pymatting is imported
when an edge is matted).
"""
from .backdrop import ALPHA_FORMATS, Backdrop, CheckOutput, Cutout, backdrop_kind, parse_color
from .contact_shadow import ContactShadow
from .framing import Frame, Layout, parse_canvas, plan_layout
from .matte import Matte, make_trimap

__all__ = ["ALPHA_FORMATS", "Backdrop", "CheckOutput", "ContactShadow", "Cutout", "Frame", "Layout", "Matte",
           "backdrop_kind", "make_trimap", "parse_canvas", "parse_color", "plan_layout"]
