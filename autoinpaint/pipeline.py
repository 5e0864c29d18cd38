"""A thin container that chains steps (callables ``EditState -> EditState``) and times them."""
from __future__ import annotations

import time
from typing import Callable, Iterable, Protocol, TypeVar

from .state import EditState


T = TypeVar("T")


def timed(state: EditState, key: str, work: Callable[[], T]) -> T:
    """Run ``work()`` inside a step and book its seconds under ``state.timings[key]`` (the step's own
    time excludes them); e.g. a lazy model load inside ``Segment`` is booked under ``load``."""
    t0 = time.perf_counter()
    result = work()
    state.timings[key] = state.timings.get(key, 0.0) + time.perf_counter() - t0
    return result


class Step(Protocol):
    """One stage of an edit. ``name`` is the key its time is recorded under; time the step itself
    adds to ``state.timings`` under other keys (e.g. model loading under ``load``) is not counted twice."""

    name: str

    def __call__(self, state: EditState) -> EditState: ...


class Pipeline:
    """Run steps in order, like ``sklearn.pipeline.Pipeline`` or ``torchvision.transforms.Compose``.

    >>> Pipeline([LoadImage(), Detect(), Segment("auto"), RefineMask(), Assess(), Inpaint("auto"), Composite(),
    ...           SaveImage()])(EditState(input_path="in.jpg", selection=sel, output_path="out.jpg"))
    """

    def __init__(self, steps: Iterable[Step], on_step: Callable[[str, EditState], None] | None = None):
        self.steps = list(steps)
        self.on_step = on_step

    def __call__(self, state: EditState | None = None) -> EditState:
        state = state if state is not None else EditState()
        start = time.perf_counter()
        for step in self.steps:
            before = sum(state.timings.values())
            t0 = time.perf_counter()
            state = step(state)
            elapsed = time.perf_counter() - t0
            # a step may book part of its time under another key (model loading under "load")
            booked = sum(state.timings.values()) - before
            name = getattr(step, "name", type(step).__name__)
            state.timings[name] = state.timings.get(name, 0.0) + elapsed - booked
            if self.on_step is not None:
                self.on_step(name, state)
            if state.stop:  # a step ended the edit early (nothing after it runs, nothing is written)
                break
        state.timings["total"] = state.timings.get("total", 0.0) + time.perf_counter() - start
        return state

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: "int | str | slice") -> "Step | Pipeline":
        """A step by position or name, or a sub-pipeline: ``pipeline[:"mask"]`` runs up to and
        including the step named ``mask`` (string slice bounds are inclusive step names)."""
        if isinstance(index, slice):
            start, stop = self._position(index.start), self._position(index.stop, end=True)
            return Pipeline(self.steps[start:stop:index.step], self.on_step)
        return self.steps[self._position(index)]

    def _position(self, key, end: bool = False):
        if not isinstance(key, str):
            return key
        for i, step in enumerate(self.steps):
            if getattr(step, "name", type(step).__name__) == key:
                return i + 1 if end else i
        raise KeyError(f"no step named {key!r} in {[getattr(s, 'name', '?') for s in self.steps]}")

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(s) for s in self.steps)
        return f"Pipeline([\n    {inner}\n])"
