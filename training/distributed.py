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
    state = PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT)
    with state.main_process_first():
        yield


def finish() -> None:
    """The end of a distributed run: every process waits for the first to finish writing, then
    all leave the process group. A process that exits while its peers still hold the group
    aborts in gloo's threads ("terminate called without an active exception"). A plain run
    has no group: nothing to do."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
