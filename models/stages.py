"""Where a scoring call's time goes: seconds per stage, measured only inside :func:`clock`.

The service reports each request's time split into stages (``/metrics``, ``make bench``), so
that the next speed-up is chosen by measurement. The scoring code marks where each stage runs
with ``with stage(...)``; outside a :func:`clock` that costs one thread-local look-up, so
evaluation and the batch scorer, which never open one, are not slowed.

Inside a clock each second goes to exactly one stage, the innermost one entered: a stage
entered inside another pauses the outer one. Time in no marked stage goes to the clock's
``default``, ``postprocess``: around
:meth:`Analyzer.analyze <akhbar.serving.core.analyzer.Analyzer.analyze>` (as the service
opens it), what runs outside the marked stages is turning outputs into results. So the
stages add up to the clock's wall time.

The stages:

* ``preprocess``: checking articles, sentence splitting, cleaning, evidence selection,
  tokenising, windowing and padding;
* ``encoder``: the encoder's forward pass and the task heads on its output;
* ``side_models``: the side models fused with the encoder (TF-IDF, sentence-encoder pair
  features; :mod:`akhbar.models.fusion`);
* ``postprocess``: pooling windows, calibration, choosing summary sentences, the results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("preprocess", "encoder", "side_models", "postprocess")

_local = threading.local()  # the clock open on this thread, if any


class _Clock:
    def __init__(self, default: str) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.running = [default]
        self.since = time.perf_counter()

    def switch(self, push: str | None) -> None:
        """Charge the time since the last switch to the running stage, then enter ``push``
        (or, with None, return to the stage it interrupted)."""
        now = time.perf_counter()
        self.seconds[self.running[-1]] += now - self.since
        self.since = now
        if push is None:
            self.running.pop()
        else:
            self.running.append(push)


@contextmanager
def clock(default: str = "postprocess") -> Iterator[dict[str, float]]:
    """Measure the stages of the code run inside, on this thread: yields ``{stage: seconds}``,
    complete once the block has ended. Clocks do not nest (the inner one would take the outer
    one's time)."""
    if default not in STAGES:
        raise ValueError(f"unknown stage {default!r}; choose from {', '.join(STAGES)}")
    if getattr(_local, "clock", None) is not None:
        raise RuntimeError("a stage clock is already running on this thread")
    _local.clock = timer = _Clock(default)
    try:
        yield timer.seconds
    finally:
        timer.switch(None)
        _local.clock = None


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Charge the time of the block to stage ``name`` when a clock runs on this thread."""
    timer = getattr(_local, "clock", None)
    if timer is None:
        yield
        return
    timer.switch(name)
    try:
        yield
    finally:
        timer.switch(None)
