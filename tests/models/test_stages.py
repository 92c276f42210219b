"""The stage clock (akhbar.models.stages): each second to the innermost stage, nothing
measured outside a clock."""

from __future__ import annotations

import threading
import time

import pytest

from akhbar.models import stages
from akhbar.models.stages import clock, stage


class _Time:
    """A perf_counter the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


def test_each_second_goes_to_the_innermost_stage_and_the_stages_add_up(monkeypatch):
    fake = _Time()
    monkeypatch.setattr(stages, "time", fake)
    with clock() as seconds:
        fake.now += 1  # in no stage: the default, postprocess
        with stage("preprocess"):
            fake.now += 2
            with stage("encoder"):  # pauses preprocess
                fake.now += 4
            fake.now += 8
        with stage("side_models"):
            fake.now += 16
    assert seconds == {"preprocess": 10, "encoder": 4, "side_models": 16, "postprocess": 1}
    assert sum(seconds.values()) == fake.now - 100


def test_the_stages_of_real_time_add_up_to_at_most_the_wall_time():
    started = time.perf_counter()
    with clock() as seconds:
        with stage("encoder"):
            time.sleep(0.01)
    assert seconds["encoder"] >= 0.01
    assert sum(seconds.values()) <= time.perf_counter() - started


def test_outside_a_clock_stages_measure_nothing_and_clocks_are_per_thread():
    with stage("encoder"):  # no clock: a no-op
        pass
    seen = {}

    def other_thread() -> None:
        with stage("encoder"):  # this thread has no clock of its own
            time.sleep(0.02)
        seen["ok"] = True

    with clock() as seconds:
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert seen["ok"] and seconds["encoder"] == 0


def test_clocks_do_not_nest_and_the_default_is_a_stage():
    with clock():
        with pytest.raises(RuntimeError, match="already running"):
            with clock():
                pass
    with pytest.raises(ValueError, match="unknown stage"):
        with clock("tokenize"):
            pass
    with clock() as seconds:  # the clock on this thread was closed
        pass
    assert sum(seconds.values()) >= 0
