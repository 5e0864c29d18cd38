"""A thin container that chains steps (callables ``EditState -> EditState``) and times them."""
from __future__ import annotations

import time
from typing import Callable, Iterable, Protocol

from .state import EditState


class Step(Protocol):
    """One stage of an edit. ``name`` is the key its time is recorded under."""

    name: str

    def __call__(self, state: EditState) -> EditState: ...


class Pipeline:
    """Run steps in order, like ``sklearn.pipeline.Pipeline`` or ``torchvision.transforms.Compose``.

    >>> Pipeline([LoadImage("in.jpg"), Select(sel), Segment("auto"), RefineMask(), Inpaint("auto"),
    ...           Composite(), SaveImage("out.jpg")])(EditState())
    """

    def __init__(self, steps: Iterable[Step], on_step: Callable[[str, EditState], None] | None = None):
        self.steps = list(steps)
        self.on_step = on_step

    def __call__(self, state: EditState | None = None) -> EditState:
        state = state if state is not None else EditState()
        start = time.perf_counter()
        for step in self.steps:
            t0 = time.perf_counter()
            state = step(state)
            name = getattr(step, "name", type(step).__name__)
            state.timings[name] = state.timings.get(name, 0.0) + time.perf_counter() - t0
            if self.on_step is not None:
                self.on_step(name, state)
        state.timings["total"] = state.timings.get("total", 0.0) + time.perf_counter() - start
        return state

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(s) for s in self.steps)
        return f"Pipeline([\n    {inner}\n])"
