"""Where this process stands in a run that ``torchrun`` or ``accelerate launch`` started.

Both launchers set ``RANK`` (0 for the first process; absent in a plain run), which is all
that deciding who writes needs before the ``Trainer`` and its process group exist; waiting
for the first process needs the group, which accelerate's ``PartialState`` starts (the
``Trainer`` then takes it over).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

# How long the other processes wait in a collective: the first may spend a long while on data
# stages alone (corpus, tokenizer, the teacher's embeddings) before training starts. The
# group keeps it, so a process that hangs mid-training is also noticed only this late.
WAIT = timedelta(hours=6)
# Seconds that replace WAIT when set. A run whose stages are known to be short (the tests)
# sets it, so that a collective only some processes reach fails with an error in that time
# instead of holding every process for hours.
TIMEOUT_ENV = "AKHBAR_DIST_TIMEOUT"


def wait() -> timedelta:
    """How long a process waits for the others in a collective: ``$AKHBAR_DIST_TIMEOUT``
    seconds when set, else ``WAIT``. Read when the process group starts, which keeps it."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return WAIT
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {value!r}")
    return timedelta(seconds=seconds)


def is_main_process() -> bool:
    """True in a plain run, and in the first process of a distributed one."""
    return int(os.environ.get("RANK", "0")) == 0


@contextmanager
def main_process_first() -> Iterator[None]:
    """The block runs in the first process, then in the others: a stage that writes files
    (a corpus, token ids, a step plan) is built once, and the others find it built. A plain
    run just runs the block."""
    if "RANK" not in os.environ:
        yield
        return
    import torch
    from accelerate import PartialState

    # cpu as the Trainer will ask (without it accelerate leaves CPU processes ungrouped).
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=wait())
    with state.main_process_first():
        yield


def finish() -> None:
    """The end of a distributed run: every process waits for the first to finish writing, then
    all leave the process group. A process that exits while its peers still hold the group
    aborts in gloo's threads ("terminate called without an active exception"). A plain run
    has no group: nothing to do.

    The wait is bounded by the group's timeout (:func:`wait`): a process that never arrives
    (one stuck in its writing, or in a collective the others never joined) makes the others
    fail with an error that says where they were, not wait silently."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError as exc:  # gloo's and NCCL's timeouts and lost peers
            raise RuntimeError(
                f"process {dist.get_rank()} of {dist.get_world_size()} waited at the end of the "
                "run for the others, and they did not all arrive within the group's timeout "
                f"({wait()}; {TIMEOUT_ENV} sets it) or one of them failed"
            ) from exc
        dist.destroy_process_group()
